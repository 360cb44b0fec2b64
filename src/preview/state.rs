//! The preview's state: the current template set and its load problems, the drop folder's
//! listing, the uploads, the last good rendering of each item, and a generation number that
//! grows at every change (open pages follow it through server-sent events).
//!
//! Consumes template folders, header files and uploaded bytes; produces the JSON views the
//! page shows. Uploads live in memory only. Never panics on a poisoned lock (the data is
//! still consistent: every update is a single assignment).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::Settings;
use super::items::{self, Source};
use crate::deliver::Deliver;
use crate::event::Event;
use crate::intake::{IntakeOptions, Parsed};
use crate::pipeline::{Pipeline, Prepared};
use crate::render::{TemplateProblem, Templates};

/// At most this many uploads are kept (the oldest goes first).
const MAX_UPLOADS: usize = 50;

/// Makes the bytes of a sample's side file (audio, fax) for "send test".
pub(crate) type SideFileMaker = fn(&Event) -> Option<Vec<u8>>;

/// Everything the page reads and changes.
pub struct Preview {
    settings: Settings,
    pipeline: Pipeline,
    side_file: SideFileMaker,
    inner: Mutex<Inner>,
    changes: watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    problems: Vec<TemplateProblem>,
    dropped: BTreeMap<String, PathBuf>,
    uploads: Vec<(String, Event)>,
    next_upload: usize,
    /// The last successful view and HTML part of each item id.
    last_good: HashMap<String, (Value, String)>,
}

impl Preview {
    pub(super) fn new(settings: Settings, pipeline: Pipeline, side_file: SideFileMaker) -> Preview {
        let inner = Inner { generation: 1, ..Inner::default() };
        let preview = Preview { settings, pipeline, side_file, inner: Mutex::new(inner), changes: watch::channel(1).0 };
        let problems = preview.load_templates();
        let dropped = preview.list_drop_folder();
        let mut inner = preview.lock();
        (inner.problems, inner.dropped) = (problems, dropped);
        drop(inner);
        preview
    }

    pub(super) fn settings(&self) -> &Settings {
        &self.settings
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows the generation (server-sent events).
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn bump(&self, inner: &mut Inner) {
        inner.generation += 1;
        self.changes.send_replace(inner.generation);
    }

    /// Loads the template folder again (keeping whatever loads) and tells open pages.
    pub(crate) fn reload_templates(&self) {
        let problems = self.load_templates();
        let mut inner = self.lock();
        inner.problems = problems;
        self.bump(&mut inner);
    }

    /// Lists the drop folder again and tells open pages.
    pub(crate) fn rescan_drop_folder(&self) {
        let dropped = self.list_drop_folder();
        let mut inner = self.lock();
        inner.dropped = dropped;
        self.bump(&mut inner);
    }

    /// Lays the template folder over the built-in set; returns its problems.
    fn load_templates(&self) -> Vec<TemplateProblem> {
        let Some(dir) = &self.settings.templates_dir else {
            return Vec::new();
        };
        let (templates, problems) = Templates::from_dir_lenient(dir);
        self.pipeline.replace_templates(templates);
        problems
    }

    fn list_drop_folder(&self) -> BTreeMap<String, PathBuf> {
        self.settings.drop_dir.as_deref().map(items::list_drop_folder).unwrap_or_default()
    }

    /// The list the page shows: `[{id, label, group}]`, samples first.
    pub(crate) fn items_json(&self) -> Value {
        let inner = self.lock();
        let samples = crate::samples::NAMES.iter().map(|n| json!({ "id": format!("sample/{n}"), "label": n, "group": "sample" }));
        let files = inner.dropped.keys().map(|n| json!({ "id": format!("file/{n}"), "label": n, "group": "file" }));
        let uploads = inner
            .uploads
            .iter()
            .map(|(id, e)| json!({ "id": id, "label": format!("{} ({})", &id["upload/".len()..], e.kind), "group": "upload" }));
        json!({ "generation": inner.generation, "items": samples.chain(files).chain(uploads).collect::<Vec<_>>() })
    }

    /// The load problems of the template folder now.
    pub fn problems(&self) -> Vec<TemplateProblem> {
        self.lock().problems.clone()
    }

    fn source(&self, id: &str) -> Option<Source> {
        if let Some(name) = id.strip_prefix("sample/") {
            return crate::samples::NAMES.iter().find(|n| **n == name).map(|n| Source::Sample(n));
        }
        let inner = self.lock();
        if let Some(name) = id.strip_prefix("file/") {
            return inner.dropped.get(name).map(|p| Source::File(p.clone()));
        }
        inner.uploads.iter().find(|(u, _)| u == id).map(|(u, e)| Source::Upload { name: u.clone(), event: Box::new(e.clone()) })
    }

    /// The view of item `id` through the current templates, or `None` for an unknown id.
    /// On failure it carries the error and, marked `stale`, the last good rendering.
    pub(crate) fn view(&self, id: &str) -> Option<Value> {
        let source = self.source(id)?;
        let (generation, load_problems) = {
            let inner = self.lock();
            (inner.generation, inner.problems.clone())
        };
        let problems: Vec<Value> = load_problems.iter().map(items::problem_json).collect();
        let html_url = format!("/html?id={}&g={generation}", encode(id));
        let outcome = match items::event_of(&self.pipeline, &source) {
            Err(message) => Err(json!({ "text": message })),
            Ok((event, path)) => self.pipeline.prepare_event_with(event, &path, None).map_err(|e| items::error_json(&e, &load_problems)),
        };
        let (mut view, error, stale) = match outcome {
            Ok(prepared) => {
                let view = items::rendered_view(&prepared);
                self.lock().last_good.insert(id.to_owned(), (view.clone(), prepared.rendered.html));
                (view, Value::Null, false)
            }
            Err(error) => match self.lock().last_good.get(id) {
                Some((view, _)) => (view.clone(), error, true),
                None => (json!({}), error, false),
            },
        };
        if let Some(object) = view.as_object_mut() {
            object.insert("id".into(), json!(id));
            object.insert("generation".into(), json!(generation));
            object.insert("html_url".into(), json!(html_url));
            object.insert("error".into(), error);
            object.insert("stale".into(), json!(stale));
            object.insert("problems".into(), json!(problems));
        }
        Some(view)
    }

    /// The HTML part of item `id`: rendered now, else the last good one, else `None`.
    pub fn html(&self, id: &str) -> Option<String> {
        let source = self.source(id)?;
        let now = items::event_of(&self.pipeline, &source)
            .ok()
            .and_then(|(event, path)| self.pipeline.prepare_event_with(event, &path, None).ok())
            .map(|p| p.rendered.html);
        now.or_else(|| self.lock().last_good.get(id).map(|(_, html)| html.clone()))
    }

    /// Parses an uploaded header file in memory, enriches it and lists it; returns its id.
    pub fn upload(&self, name: &str, bytes: &[u8]) -> Result<String, String> {
        let name: String = crate::event::safe_file_stem(name);
        let config = self.pipeline.config();
        let options = IntakeOptions { sent_time_zone: config.timezone.clone(), low_confidence: config.transcript_low_confidence };
        // A path that names the upload in messages; nothing is read from or written to it.
        let path = Path::new("upload").join(&name);
        let mut event = match crate::intake::parse(bytes, &path, &options) {
            Ok(Parsed::Event(event)) => *event,
            Ok(Parsed::Skipped(message_type)) => {
                return Err(format!("{name}: skipped: {message_type} is not a notification"));
            }
            Err(e) => return Err(items::chain(&e)),
        };
        event.attachment = None;
        self.pipeline.enrich(&mut event);
        let mut inner = self.lock();
        inner.next_upload += 1;
        let id = format!("upload/{}-{name}", inner.next_upload);
        inner.uploads.push((id.clone(), event));
        if inner.uploads.len() > MAX_UPLOADS {
            inner.uploads.remove(0);
        }
        self.bump(&mut inner);
        Ok(id)
    }

    /// Sends item `id` to `to` through the configured delivery, as `send-test` does (a test
    /// message for exactly that address); returns `{transcript, accepted, transport}`, or an
    /// HTTP status and a message. Preparing the message and the transport reads files, so it
    /// runs off the runtime.
    pub async fn send(self: &Arc<Self>, id: &str, to: &str) -> Result<Value, (u16, String)> {
        let (this, id, to) = (self.clone(), id.to_owned(), to.to_owned());
        let (prepared, transport) = off_runtime(move || this.prepare_send(&id, &to)).await.ok_or_else(busy)??;
        let result = prepared.deliver(transport.as_ref()).await;
        let _ = transport.close().await;
        match result {
            Ok(receipt) => {
                Ok(json!({ "transcript": receipt.transcript(), "accepted": receipt.refused.is_empty(), "transport": transport.describe() }))
            }
            Err(e) => Err((502, items::chain(&e))),
        }
    }

    /// The test message for "send test" and the transport to send it with.
    fn prepare_send(&self, id: &str, to: &str) -> Result<(Prepared, Box<dyn Deliver>), (u16, String)> {
        let delivery = self.settings.delivery.clone().ok_or((409, "no [delivery] in the configuration: send test is off".to_owned()))?;
        let to: lettre::Address = to.trim().parse().map_err(|e| (422, format!("`{to}`: not a mail address: {e}")))?;
        let source = self.source(id).ok_or_else(|| (404, format!("no item `{id}`")))?;
        let (mut event, path) = items::event_of(&self.pipeline, &source).map_err(|e| (422, e))?;
        self.pipeline.readdress(&mut event, &to);
        let side_file = match &source {
            Source::File(_) => None,
            _ => (self.side_file)(&event),
        };
        if let (Some(att), Some(bytes)) = (&mut event.attachment, &side_file) {
            att.size_bytes = bytes.len() as u64;
        }
        let prepared = self.pipeline.prepare_test(event, &path, side_file).map_err(|e| (422, items::chain(&e)))?;
        let transport = crate::deliver::from_settings(&delivery).map_err(|e| (409, items::chain(&e)))?;
        Ok((prepared, transport))
    }
}

/// Runs blocking work (file reads, parsing, rendering) on the blocking pool, so the threads
/// that accept and answer connections stay free. `None` when the work panicked (a bug,
/// logged) or the runtime is shutting down.
pub(super) async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::error!("preview: a request's work failed: {e}");
            None
        }
    }
}

/// The answer when [`off_runtime`] gives nothing.
pub(super) fn busy() -> (u16, String) {
    (500, "the request could not be completed (see the log)".to_owned())
}

/// Percent-encodes everything but unreserved characters (for ids in URLs).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_for_urls() {
        assert_eq!(encode("sample/missed_call/x é"), "sample%2Fmissed_call%2Fx%20%C3%A9");
    }
}
