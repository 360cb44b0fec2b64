//! The browser for the end-to-end test: headless Chromium through chromedriver, driven with
//! `fantoccini` (W3C WebDriver over plain HTTP on loopback, so no TLS stack). Adds what the
//! test reads best: waits with a deadline in seconds, the text of a selector, a frame's
//! text, screenshots saved under tests/artifacts/, and a session closed even when the test
//! fails half-way.

use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub struct Browser {
    /// `None` once closed.
    client: Option<Client>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts headless Chromium through the chromedriver at `url` (`http://127.0.0.1:PORT`).
    pub async fn start(url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let binary = std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut args: Vec<String> = [
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
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let options = json!({ "binary": binary, "args": args });
        let capabilities =
            serde_json::Map::from_iter([("browserName".to_owned(), json!("chrome")), ("goog:chromeOptions".to_owned(), options)]);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("no WebDriver session at {url}: {e}"));
        Browser { client: Some(client), _profile: profile }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The first element matching `css`, if any.
    pub async fn find(&self, css: &str) -> Option<Element> {
        match self.client().find(Locator::Css(css)).await {
            Ok(element) => Some(element),
            Err(e) if e.is_no_such_element() => None,
            Err(e) => panic!("find `{css}`: {e}"),
        }
    }

    /// Waits up to `secs` for an element matching `css`.
    pub async fn wait_find(&self, css: &str, secs: u64) -> Element {
        let wait = self.client().wait().at_most(Duration::from_secs(secs)).every(Duration::from_millis(100));
        wait.for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element `{css}` after {secs} s: {e}"))
    }

    pub async fn click(&self, element: &Element) {
        element.click().await.expect("click");
    }

    pub async fn type_into(&self, element: &Element, text: &str) {
        element.send_keys(text).await.expect("type");
    }

    /// The visible text of the first element matching `css` ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        match self.find(css).await {
            Some(element) => element.text().await.unwrap_or_else(|e| panic!("text of `{css}`: {e}")),
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

    /// The text of the body of the frame `css`.
    pub async fn frame_text(&self, css: &str) -> String {
        self.wait_find(css, 5).await.enter_frame().await.expect("enter the frame");
        let text = self.text("body").await;
        self.client().enter_parent_frame().await.expect("leave the frame");
        text
    }

    /// Saves a PNG screenshot of the window as `tests/artifacts/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let bytes = self.client().screenshot().await.expect("a screenshot");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
        std::fs::create_dir_all(&dir).expect("artifacts dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("write screenshot");
        path
    }

    pub async fn quit(mut self) {
        if let Some(client) = self.client.take() {
            client.close().await.expect("close the session");
        }
    }
}

impl Drop for Browser {
    /// A test that failed half-way still closes its browser. The session's own task runs on
    /// the test's runtime, which is still up while the test unwinds: the close is asked for
    /// from a thread of its own and awaited there (5 s at most).
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        let close = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().ok()?;
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), client.close()).await.ok()?.ok() })
        });
        let _ = close.join();
    }
}
