//! The long-running relay. In `own` mode a dispatcher claims each file as soon as its
//! file-system event names it and a slot is free ([`super::stream`]), and lists the folder
//! in full at start-up and every rescan interval (events are not delivered on SMB/NFS
//! shares); in `tap` mode a full pass runs at start-up, then whenever the folder changes,
//! a deferred item falls due, or the rescan interval passes. SIGTERM and Ctrl-C stop claiming and let
//! the items in flight finish; SIGHUP, or a change in the template folder, reloads the
//! templates, keeping the set in use when the new one does not pass `check`. `/metrics` and `/healthz` are served on `[server] listen`.
//!
//! A pass is logged at info only when it handled items; once a busy spell is over (2 s
//! without work) the relay gives its free memory back ([`super::memory`]).
//!
//! Consumes an open [`Relay`]; produces passes until told to stop. Never stops on a
//! per-item failure; returns [`RelayError`] only when the spool itself cannot be read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::stream::{Feed, Hooks};
use super::{PassReport, Relay, RelayError, Stages, StagesHandle};

/// What the service needs besides the relay.
pub struct ServiceOptions {
    /// The folder to watch (the spool).
    pub dir: PathBuf,
    pub rescan: Duration,
    /// A template folder whose changes trigger a reload, like SIGHUP.
    pub templates_dir: Option<PathBuf>,
    /// Builds new stages from the configuration file and the template folder (which must
    /// pass `check`); on SIGHUP and template changes. An error keeps the stages in use.
    pub reload: Option<Reload>,
    /// Where `/metrics` and `/healthz` are served (`[server] listen`).
    pub listen: Option<std::net::SocketAddr>,
}

/// See [`ServiceOptions::reload`].
pub type Reload = Arc<dyn Fn() -> Result<Stages, String> + Send + Sync>;

/// Runs until SIGTERM/SIGINT, then returns (items parked or deferred on the way are
/// normal operation, visible in the journal and `/metrics`, not a failure of the service).
pub async fn serve(relay: &Relay, options: ServiceOptions) -> Result<(), RelayError> {
    let stop = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    spawn_signal_handlers(stop.clone(), wake.clone(), relay.stages(), options.reload.clone(), options.templates_dir.clone())?;
    let (names, received) = mpsc::channel(NAME_QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let on_change = on_spool_change(relay.streams().then_some(names), overflow.clone(), wake.clone());
    // Kept alive for the whole run; without events the rescan still finds everything.
    let watcher = match watch(&options.dir, notify::RecursiveMode::NonRecursive, on_change) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %options.dir.display(), error = %e, "no file-system events; rescanning only");
            None
        }
    };
    if let Some(addr) = options.listen {
        let listener = super::metrics::bind(addr).await.map_err(|source| RelayError::Listen { addr, source })?;
        tokio::spawn(super::metrics::serve(listener, relay.metrics()));
        tracing::info!(%addr, "serving /metrics and /healthz");
    }
    tracing::info!(dir = %options.dir.display(), "relay started");
    let mut memory = MemoryRelease::default();
    if relay.streams() {
        let feed = Feed { names: watcher.is_some().then_some(received), overflow, wake, stop };
        let mut round = |report: &PassReport| {
            log_pass(report);
            memory.after(relay, report)
        };
        relay.stream(feed, Hooks { rescan: options.rescan, next_due: &|| relay.next_due(), round: &mut round }).await?;
    } else {
        while !stop.load(Ordering::SeqCst) {
            let report = relay.pass(Some(&stop)).await?;
            log_pass(&report);
            let memory_wait = memory.after(relay, &report);
            let until_due = relay.next_due().map(|due| due.duration_since(jiff::Timestamp::now()).unsigned_abs()).unwrap_or(options.rescan);
            let wait = until_due.min(options.rescan).min(memory_wait.unwrap_or(Duration::MAX)).max(Duration::from_millis(20));
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
    tracing::info!("relay stopped");
    Ok(())
}

/// How many names of changed files wait for the dispatcher at most; beyond, a full
/// listing of the folder replaces them.
const NAME_QUEUE: usize = 4096;

/// What a change in the spool folder does: queue the names it carries for the streaming
/// dispatcher (`names`), flagging an overflow (or an event that names none) for a full
/// listing; without a dispatcher, wake the pass loop.
fn on_spool_change(
    names: Option<mpsc::Sender<PathBuf>>,
    overflow: Arc<AtomicBool>,
    wake: Arc<Notify>,
) -> impl Fn(notify::Event) + Send + 'static {
    move |event| {
        let Some(names) = &names else { return wake.notify_one() };
        if event.need_rescan() || event.paths.iter().any(|path| names.try_send(path.clone()).is_err()) {
            overflow.store(true, Ordering::SeqCst);
            wake.notify_one();
        }
    }
}

/// A pass is logged at info only when it acted on an item; passes that only found
/// deferred items not yet due (several a second while files arrive) at debug.
fn log_pass(report: &PassReport) {
    if report.handled() > 0 {
        tracing::info!(?report, "pass done");
    } else if *report != PassReport::default() {
        tracing::debug!(?report, "pass done");
    }
}

/// When to give memory back: once per busy spell, at the first pass with nothing to do
/// after [`MemoryRelease::AFTER`] without work (by then the idle blocking threads have
/// ended and handed their pages back, see [`super::memory`]).
#[derive(Default)]
struct MemoryRelease {
    /// When the last pass that handled items ended, until memory is released after it.
    busy_until: Option<std::time::Instant>,
}

impl MemoryRelease {
    const AFTER: Duration = super::memory::BLOCKING_KEEP_ALIVE.saturating_add(Duration::from_secs(1));

    /// After a pass or round: gives memory back when due; returns how long until a
    /// release would be due, if one is pending.
    fn after(&mut self, relay: &Relay, report: &PassReport) -> Option<Duration> {
        if self.due(report) {
            relay.release_memory();
            wake_workers();
        }
        self.wait()
    }

    fn due(&mut self, report: &PassReport) -> bool {
        if report.handled() > 0 {
            self.busy_until = Some(std::time::Instant::now());
            return false;
        }
        let due = self.busy_until.is_some_and(|at| at.elapsed() >= Self::AFTER);
        if due {
            self.busy_until = None;
        }
        due
    }

    /// How long until a release would be due, if one is pending.
    fn wait(&self) -> Option<Duration> {
        self.busy_until.map(|at| Self::AFTER.saturating_sub(at.elapsed()))
    }
}

/// Gives each runtime worker a task, so that it parks again and returns its free pages.
fn wake_workers() {
    for _ in 0..tokio::runtime::Handle::current().metrics().num_workers() {
        tokio::spawn(async {});
    }
}

/// Calls `on_change` on any change in `dir` (not on reads); an error of the watcher counts
/// as a change that names nothing.
fn watch(
    dir: &Path,
    mode: notify::RecursiveMode,
    on_change: impl Fn(notify::Event) + Send + 'static,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event) if matches!(event.kind, notify::EventKind::Access(_)) => {}
        Ok(event) => on_change(event),
        Err(_) => on_change(notify::Event::new(notify::EventKind::Other).set_flag(notify::event::Flag::Rescan)),
    })?;
    watcher.watch(dir, mode)?;
    Ok(watcher)
}

fn spawn_signal_handlers(
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    stages: StagesHandle,
    rebuild: Option<Reload>,
    templates_dir: Option<PathBuf>,
) -> Result<(), RelayError> {
    use tokio::signal::unix::{SignalKind, signal};
    let sig = |kind| signal(kind).map_err(|source| RelayError::Signals { source });
    let (mut term, mut int, mut hup) = (sig(SignalKind::terminate())?, sig(SignalKind::interrupt())?, sig(SignalKind::hangup())?);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping: finishing the items in flight");
        stop.store(true, Ordering::SeqCst);
        wake.notify_one();
    });
    // SIGHUP and (below) any change in the template folder ask for a reload; one task does
    // them, after a short pause so that an editor's burst of writes is read once, whole.
    let reload = Arc::new(Notify::new());
    let on_hup = reload.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            on_hup.notify_one();
        }
    });
    let watcher = match &templates_dir {
        Some(dir) => match watch(dir, notify::RecursiveMode::Recursive, {
            let reload = reload.clone();
            move |_| reload.notify_one()
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "template changes are not watched; use SIGHUP");
                None
            }
        },
        None => None,
    };
    tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            reload.notified().await;
            let Some(rebuild) = rebuild.clone() else {
                tracing::info!("nothing to reload");
                continue;
            };
            tokio::time::sleep(Duration::from_millis(200)).await;
            match tokio::task::spawn_blocking(move || rebuild()).await {
                Ok(Ok(new)) => {
                    stages.replace(new);
                    tracing::info!("configuration and templates reloaded");
                }
                Ok(Err(reason)) => {
                    tracing::error!(%reason, "reload refused; keeping the configuration and templates in use");
                }
                Err(e) => tracing::error!(error = %e, "reload failed; keeping the configuration and templates in use"),
            }
        }
    });
    Ok(())
}
