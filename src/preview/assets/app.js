// callnote preview: lists items, shows the selected one, follows /events. Every value is
// put into the page with textContent, never parsed as markup; the HTML part goes into a
// sandboxed frame served with its own script-forbidding CSP.
"use strict";
const $ = (id) => document.getElementById(id);
let selected = null;
let items = [];

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function getJson(url, options) {
  const r = await fetch(url, options);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function drawItems() {
  const list = $("items");
  const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  list.replaceChildren();
  let group = null;
  for (const item of items) {
    if (!words.every((w) => item.label.toLowerCase().includes(w))) continue;
    if (item.group !== group) {
      group = item.group;
      list.append(el("li", { sample: "Built-in samples", file: "Drop folder", upload: "Uploads" }[group], "group"));
    }
    const b = el("button", item.label);
    b.dataset.id = item.id;
    if (item.id === selected) b.classList.add("selected");
    b.addEventListener("click", () => select(item.id));
    const li = el("li");
    li.append(b);
    list.append(li);
  }
}

async function loadItems() {
  const body = await getJson("/api/items");
  // Redraw only when the list changed: a template edit must not rebuild it under the user.
  if (JSON.stringify(body.items) === JSON.stringify(items)) return;
  items = body.items;
  drawItems();
}

function select(id) {
  selected = id;
  drawItems();
  showItem();
}

function row(table, key, value) {
  const tr = el("tr");
  tr.append(el("td", key), el("td", value));
  table.append(tr);
}

function traceRows(table, prefix, value) {
  if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) return;
  if (typeof value === "object") {
    for (const [k, v] of Object.entries(value)) traceRows(table, prefix ? prefix + "." + k : k, v);
  } else {
    row(table, prefix, value);
  }
}

function showProblem(box, p) {
  const div = el("div", null, "problem");
  if (p.file) {
    div.append(el("span", p.file + ":" + p.line + ":" + p.col, "where"), document.createTextNode(" " + p.message));
    if (p.excerpt) div.append(el("pre", p.excerpt));
  } else {
    div.append(document.createTextNode(p.text));
  }
  box.append(div);
}

async function showItem() {
  if (!selected) return;
  let v;
  try {
    v = await getJson("/api/item?id=" + encodeURIComponent(selected));
  } catch (e) {
    $("error").hidden = false;
    $("error").replaceChildren(el("div", e.message));
    return;
  }
  if (v.id !== selected) return;
  $("hint").hidden = true;
  const problems = $("problems");
  problems.replaceChildren();
  problems.hidden = v.problems.length === 0;
  if (v.problems.length) problems.append(el("div", "Template problems (these files are left out until fixed):"));
  v.problems.forEach((p) => showProblem(problems, p));
  const error = $("error");
  error.replaceChildren();
  error.hidden = !v.error;
  if (v.error) {
    error.append(el("div", "This event does not render:"));
    showProblem(error, v.error);
  }
  const view = $("view");
  view.hidden = v.subject === undefined;
  if (v.subject === undefined) return;
  $("subject").textContent = v.subject;
  $("item-id").textContent = v.id;
  $("locale").textContent = v.locale;
  $("stale").hidden = !v.stale;
  if ($("html").getAttribute("src") !== v.html_url) $("html").setAttribute("src", v.html_url);
  $("text").textContent = v.text;
  const headers = $("headers");
  headers.replaceChildren();
  v.headers.forEach(([k, val]) => row(headers, k, val));
  const atts = $("attachments");
  atts.replaceChildren();
  if (v.attachments.length === 0) atts.append(el("li", "none"));
  v.attachments.forEach((a) => atts.append(el("li", a.file_name + " (" + a.content_type + ", " + a.size_bytes + " bytes)")));
  const trace = $("trace");
  trace.replaceChildren();
  traceRows(trace, "", v.trace);
  document.body.dataset.generation = v.generation;
}

function listen() {
  const source = new EventSource("/events");
  source.addEventListener("open", () => { $("status").textContent = "live"; });
  source.addEventListener("error", () => {
    $("status").textContent = "disconnected, retrying…";
    // Refused (too many open pages): the browser gives up on its own, so try again later.
    if (source.readyState === EventSource.CLOSED) setTimeout(listen, 5000);
  });
  source.addEventListener("change", (e) => {
    $("status").textContent = "live (generation " + e.data + ")";
    loadItems().then(showItem).catch(() => {});
  });
}

$("filter").addEventListener("input", drawItems);
$("upload").addEventListener("change", async () => {
  const file = $("upload").files[0];
  if (!file) return;
  try {
    const body = await getJson("/api/upload?name=" + encodeURIComponent(file.name), { method: "POST", body: await file.arrayBuffer() });
    $("upload-result").textContent = "uploaded";
    await loadItems();
    select(body.id);
  } catch (e) {
    $("upload-result").textContent = e.message;
  }
});
$("send-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("send-result").textContent = "sending…";
  try {
    const body = await getJson("/api/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: selected, to: $("send-to").value }),
    });
    $("send-result").textContent = (body.accepted ? "accepted" : "refused") + " via " + body.transport + "\n" + body.transcript;
  } catch (err) {
    $("send-result").textContent = "not sent: " + err.message;
  }
});
loadItems().catch((e) => { $("status").textContent = e.message; });
listen();
