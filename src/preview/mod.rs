//! `callnote preview`: a local web page for admins editing templates. It lists the built-in
//! sample events, the header files in a watched drop folder and files uploaded on the page,
//! and shows the selected one rendered through the current templates: subject, the HTML part
//! in a sandboxed frame, the text part, the headers, the attachments and the enrichment
//! trace. Template files are polled every 250 ms; a change reloads them and tells open pages
//! through server-sent events. A template problem is shown with file, line, column and
//! excerpt, beside the last good rendering. A "send test" action sends the selected event
//! through the configured delivery, like `callnote send-test`.
//!
//! Consumes a [`Pipeline`] (config, directory, templates) and [`Settings`]; produces an HTTP
//! server on a socket. It must never bind beyond loopback without `allow_remote`, never read
//! a file named by the page (ids are looked up in lists it made itself), never write an
//! uploaded file anywhere (uploads are parsed in memory), and never put an unescaped value
//! into its page (the page sets text with `textContent`; the HTML part is served alone, in a
//! sandboxed frame, with a CSP that forbids scripts). Errors: [`PreviewError`].
//!
//! Served with axum on hyper's HTTP/1.1 (see `server` for connections, `routes` for the
//! routes, `http` for the policy every request passes). No client can starve the others
//! ([`Limits`]): connections are capped (the rest wait in the listen backlog, holding no file
//! descriptor of ours), live-update streams have a smaller cap of their own (one more is
//! answered 503, and the page retries later), a client has a few seconds to send a request
//! and to take each write, an idle connection is closed, a stream is closed after a while
//! (the page reconnects by itself), bodies are bounded, and parsing, rendering and file
//! reads run on the blocking pool, never on the threads that accept and answer connections.

mod http;
pub mod items;
mod routes;
mod server;
mod state;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::deliver::DeliverySettings;
use crate::pipeline::Pipeline;
pub(crate) use state::{Preview, SideFileMaker};

/// How the preview runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Needed to listen on anything but a loopback address.
    pub allow_remote: bool,
    /// The admin's template folder, laid over the built-in set and watched; none: built-in only.
    pub templates_dir: Option<PathBuf>,
    /// A folder whose header files (`*.txt`, `*.xml`) are listed and watched.
    pub drop_dir: Option<PathBuf>,
    /// The delivery "send test" uses; none: the action says delivery is not configured.
    pub delivery: Option<DeliverySettings>,
    /// Caps and timeouts of connections (the defaults suit an admin's browser).
    pub limits: Limits,
}

/// How many clients the preview serves at once and how long it waits for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once, live-update streams included; further ones wait in the
    /// listen backlog until one ends.
    pub max_connections: usize,
    /// Live-update streams (`/events`, one per open page) at once; one more is answered 503.
    /// Smaller than `max_connections`, so pages always have connections left for requests.
    pub max_streams: usize,
    /// Time a client has to send a request's head, and again its body; a connection that
    /// sends nothing (new, or kept open after a response) is closed after it.
    pub request_timeout: Duration,
    /// Time a client has to take each write of a response or event; a client that stops
    /// reading is closed after it.
    pub write_timeout: Duration,
    /// A live-update stream is closed after this long; the page reconnects by itself, so a
    /// stream left behind by a vanished client cannot stay for ever.
    pub stream_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 64,
            max_streams: 16,
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            stream_lifetime: Duration::from_secs(600),
        }
    }
}

/// Why the preview cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("--listen {0}: not a loopback address; pass --allow-remote to serve other machines (the page can send mail)")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the drop folder is not a readable folder", .0.display())]
    DropDir(PathBuf),
    #[error("{}: the templates folder is not a readable folder", .0.display())]
    TemplatesDir(PathBuf),
}

/// A bound preview server: its address, and the future that serves it.
pub struct Server {
    pub addr: SocketAddr,
    pub preview: Arc<Preview>,
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Checks the settings, loads the templates and binds the socket (not yet serving).
    /// `side_file` makes the bytes of a sample's attachment for "send test".
    pub async fn bind(settings: Settings, pipeline: Pipeline, side_file: SideFileMaker) -> Result<Server, PreviewError> {
        if !settings.listen.ip().is_loopback() && !settings.allow_remote {
            return Err(PreviewError::NotLoopback(settings.listen));
        }
        if let Some(dir) = &settings.drop_dir
            && !dir.is_dir()
        {
            return Err(PreviewError::DropDir(dir.clone()));
        }
        if let Some(dir) = &settings.templates_dir
            && !dir.is_dir()
        {
            return Err(PreviewError::TemplatesDir(dir.clone()));
        }
        let listener =
            tokio::net::TcpListener::bind(settings.listen).await.map_err(|source| PreviewError::Bind { addr: settings.listen, source })?;
        let addr = listener.local_addr().map_err(|source| PreviewError::Bind { addr: settings.listen, source })?;
        let preview = Arc::new(Preview::new(settings, pipeline, side_file));
        Ok(Server { addr, preview, listener })
    }

    /// Serves until the task is dropped: accepts connections and polls the folders.
    pub async fn serve(self) {
        // The folders as they are now (a few `stat` calls, before the first request).
        let seen = watch::Seen::now(&self.preview);
        let watcher = tokio::spawn(watch::poll(self.preview.clone(), seen));
        server::accept_loop(self.listener, self.preview, self.addr).await;
        watcher.abort();
    }
}
