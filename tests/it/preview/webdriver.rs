//! Just enough of the W3C WebDriver protocol to drive chromedriver from a test: a session
//! with headless Chromium, navigation, elements (find, click, text, type), frames and
//! screenshots. JSON over the tests' little HTTP client; no extra crates.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts headless Chromium through the chromedriver at `url` (`http://127.0.0.1:PORT`).
    pub async fn start(url: &str) -> Browser {
        let driver: SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("CHROMEDRIVER_URL is http://IP:PORT");
        let profile = tempfile::tempdir().expect("profile dir");
        let binary = std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1100",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": binary, "args": args },
        }}});
        let reply = call(driver, "POST", "/session", Some(caps)).await;
        let session = reply["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {reply}")).to_owned();
        Browser { driver, session, _profile: profile }
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(self.driver, method, &format!("/session/{}{path}", self.session), body).await
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// The first element matching `css`, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let r = call_raw(
            self.driver,
            "POST",
            &format!("/session/{}/element", self.session),
            Some(json!({ "using": "css selector", "value": css })),
        )
        .await;
        r.get(ELEMENT).and_then(Value::as_str).map(str::to_owned)
    }

    /// Waits up to `secs` for an element matching `css`.
    pub async fn wait_find(&self, css: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            assert!(Instant::now() < deadline, "no element `{css}` after {secs} s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, element: &str) {
        self.cmd("POST", &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        self.cmd("POST", &format!("/element/{element}/value"), Some(json!({ "text": text }))).await;
    }

    /// The visible text of the first element matching `css` ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        match self.find(css).await {
            Some(e) => {
                self.cmd("GET", &format!("/element/{e}/text"), None).await.as_str().unwrap_or_default().to_owned()
            }
            None => String::new(),
        }
    }

    /// Waits up to `secs` until the text of `css` satisfies `ok`; returns it and the wait.
    pub async fn wait_text(&self, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> (String, Duration) {
        let start = Instant::now();
        loop {
            let text = self.text(css).await;
            if ok(&text) {
                return (text, start.elapsed());
            }
            assert!(start.elapsed() < Duration::from_secs(secs), "`{css}` still reads {text:?} after {secs} s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `body` with the frame `css` as the current browsing context.
    pub async fn frame_text(&self, css: &str) -> String {
        let frame = self.wait_find(css, 5).await;
        self.cmd("POST", "/frame", Some(json!({ "id": { ELEMENT: frame } }))).await;
        let text = self.text("body").await;
        self.cmd("POST", "/frame/parent", Some(json!({}))).await;
        text
    }

    /// Saves a PNG screenshot of the window as `tests/artifacts/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64::Engine as _;
        let png = self.cmd("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 screenshot"))
            .expect("valid base64");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
        std::fs::create_dir_all(&dir).expect("artifacts dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("write screenshot");
        path
    }

    pub async fn quit(mut self) {
        call(self.driver, "DELETE", &format!("/session/{}", self.session), None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    /// A test that failed half-way still closes its browser (a blocking DELETE, 5 s at most).
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        if self.session.is_empty() {
            return;
        }
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(&self.driver, Duration::from_secs(5)) else { return };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session, self.driver
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read(&mut [0u8; 1024]);
        }
    }
}

/// A WebDriver command; panics on a WebDriver error. Returns `value`.
async fn call(driver: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let value = call_raw(driver, method, path, body).await;
    if let Some(error) = value.get("error") {
        panic!("webdriver {method} {path}: {error}: {}", value["message"]);
    }
    value
}

/// A WebDriver command; returns `value`, errors included.
async fn call_raw(driver: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let extra: &[&str] = if body.is_empty() { &[] } else { &["Content-Type: application/json"] };
    let reply = client::request(driver, method, path, extra, body.as_bytes()).await;
    let mut json = reply.json();
    json["value"].take()
}
