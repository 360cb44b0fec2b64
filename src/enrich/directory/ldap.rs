//! The LDAP / Active Directory source: pages the directory into the same [`DirectoryIndex`]
//! the LDIF and CSV files build, so LDAP gives exactly their answers, and keeps it fresh.
//!
//! Consumes [`LdapSettings`] (`[directory]` with an `ldap://` / `ldaps://` source) and the
//! dial plan; produces an [`LdapDirectory`] implementing [`Directory`]. Lookups read the
//! current index, an `Arc` swapped atomically after each complete sync: plain synchronous
//! code that enters no runtime and waits for nothing, so a slow or dead domain controller can
//! never delay a notification. Everything that talks to the server (first sync, refreshes,
//! the optional live query on a miss, [`LdapOptions::live_query`]) runs on the directory's
//! one worker, a single runtime thread owned by the directory and stopped when it is dropped;
//! a lookup that asks live waits for the worker's answer at most the query's bound. While a refresh
//! runs or fails, the previous index keeps answering; after a restart with the server down,
//! the last snapshot does. Only with no index at all does a lookup fail
//! ([`DirectoryError::Unavailable`], which enrichment turns into `directory_unavailable`).
//! Caller data reaches a filter only escaped (RFC 4515). Errors: [`LdapError`].

mod check;
mod connect;
mod entry;
mod error;
mod fetch;
mod live_query;
mod snapshot;
mod sync;
mod worker;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

pub(crate) use check::directory_check_blocking;
pub use check::{check_entries, directory_check};
pub use connect::ServerKind;
pub use error::LdapError;
pub(crate) use sync::SyncReport;
pub use sync::default_filter;

use super::{AttributeMap, Directory, DirectoryError, DirectoryIndex, LiveDirectory, Lookup, Steps};
use crate::enrich::directory::settings::LdapSettings;
use crate::event::{Party, Person, Recipient, Unmatched};
use crate::phone::DialPlan;
use live_query::LiveQuery;
use sync::SyncSpec;
use worker::Worker;

/// Where the index being served came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// No index yet: lookups answer `directory_unavailable`.
    None,
    /// A sync with the server.
    Sync { at: SystemTime },
    /// The snapshot file, after a failed first sync.
    Snapshot { path: PathBuf, synced_at: String },
}

/// The state of the source, for logs, `/healthz` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub origin: Origin,
    /// People in the index being served.
    pub people: usize,
    /// The last sync that succeeded.
    pub last_sync: Option<SyncReport>,
    /// The last failure (`{:#}` of the error), cleared by the next success.
    pub last_error: Option<String>,
    /// Failed syncs since the last success.
    pub consecutive_failures: u32,
    /// Live queries sent to the server on index misses.
    pub live_queries: u64,
}

/// Choices beyond the `[directory]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapOptions {
    /// Which attributes mean what (default: Active Directory's).
    pub map: AttributeMap,
    /// On an index miss, ask the server live, waiting at most this long (default: never).
    pub live_query: Option<Duration>,
    /// How long a number the live query did not find is not asked again.
    pub negative_ttl: Duration,
}

impl Default for LdapOptions {
    fn default() -> Self {
        LdapOptions { map: AttributeMap::default(), live_query: None, negative_ttl: Duration::from_secs(600) }
    }
}

/// An LDAP directory served from memory, with its own worker for everything that talks to
/// the server.
pub struct LdapDirectory {
    state: Arc<State>,
    live_query: Option<LiveQuery>,
    /// The one runtime of this directory: first sync, refreshes, live queries. Dropping the
    /// directory drops it, which stops the refresher and any query at once.
    worker: Worker,
}

/// What the directory shares with the tasks on its worker.
struct State {
    spec: Arc<SyncSpec>,
    refresh: Duration,
    /// Set by the first sync or snapshot; each later sync replaces its index.
    live: OnceLock<LiveDirectory>,
    health: Mutex<Health>,
    /// One sync at a time.
    syncing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LdapDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("url", &self.state.spec.endpoint.url)
            .field("base_dn", &self.state.spec.base_dn)
            .finish_non_exhaustive()
    }
}

impl LdapDirectory {
    /// Checks the settings, syncs once (or, if the server cannot be reached, loads the
    /// snapshot; or, without one, starts empty), then refreshes every `settings.refresh`
    /// until the directory is dropped. The work runs on the directory's own worker; the
    /// caller's runtime only awaits it. Fails on configuration problems and on errors that
    /// retrying cannot fix (refused bind or certificate, bad base DN or filter): those need
    /// an admin, not a retry.
    pub async fn start(settings: &LdapSettings, plan: &DialPlan) -> Result<Arc<LdapDirectory>, LdapError> {
        LdapDirectory::start_with(settings, plan, LdapOptions::default()).await
    }

    /// [`LdapDirectory::start`] with other options (attribute map, live query).
    pub async fn start_with(settings: &LdapSettings, plan: &DialPlan, options: LdapOptions) -> Result<Arc<LdapDirectory>, LdapError> {
        let directory = LdapDirectory::new(settings, plan, options)?;
        let state = Arc::clone(&directory.state);
        directory.worker.run(async move { state.first_sync().await }).await??;
        directory.keep_refreshing();
        Ok(Arc::new(directory))
    }

    /// For synchronous commands (`parse`, `render`): the first sync (or snapshot), waited
    /// for on this thread, with no refresh afterwards. Safe to call from any thread, inside
    /// a tokio runtime or not.
    pub fn open_blocking(settings: &LdapSettings, plan: &DialPlan) -> Result<Arc<LdapDirectory>, LdapError> {
        LdapDirectory::open_blocking_with(settings, plan, LdapOptions::default())
    }

    /// [`LdapDirectory::open_blocking`] with other options.
    pub fn open_blocking_with(settings: &LdapSettings, plan: &DialPlan, options: LdapOptions) -> Result<Arc<LdapDirectory>, LdapError> {
        let directory = LdapDirectory::new(settings, plan, options)?;
        let state = Arc::clone(&directory.state);
        directory.worker.wait(async move { state.first_sync().await })??;
        Ok(Arc::new(directory))
    }

    /// For long-running callers that open the directory before (or without) a tokio runtime
    /// of their own, like the relay: [`LdapDirectory::open_blocking_with`], then refreshes
    /// every `settings.refresh` until the directory is dropped.
    pub fn open_refreshing(settings: &LdapSettings, plan: &DialPlan, options: LdapOptions) -> Result<Arc<LdapDirectory>, LdapError> {
        let directory = LdapDirectory::open_blocking_with(settings, plan, options)?;
        directory.keep_refreshing();
        Ok(directory)
    }

    fn new(settings: &LdapSettings, plan: &DialPlan, options: LdapOptions) -> Result<LdapDirectory, LdapError> {
        let spec = Arc::new(SyncSpec::new(settings, plan, options.map)?);
        let live_query = options.live_query.map(|bound| LiveQuery::new(Arc::clone(&spec), bound, options.negative_ttl));
        let state = State {
            spec,
            refresh: settings.refresh.max(Duration::from_secs(1)),
            live: OnceLock::new(),
            health: Mutex::new(Health {
                origin: Origin::None,
                people: 0,
                last_sync: None,
                last_error: None,
                consecutive_failures: 0,
                live_queries: 0,
            }),
            syncing: tokio::sync::Mutex::new(()),
        };
        Ok(LdapDirectory { state: Arc::new(state), live_query, worker: Worker::start()? })
    }

    /// Starts the refresher on the worker; it ends when the directory is dropped.
    fn keep_refreshing(&self) {
        self.worker.spawn(refresh_loop(Arc::clone(&self.state)));
    }

    /// Syncs now (waiting for a sync already running) and swaps the new index in on
    /// success. On failure the index being served stays. The sync runs on the directory's
    /// worker whatever runtime awaits this.
    pub async fn refresh_now(&self) -> Result<SyncReport, LdapError> {
        let state = Arc::clone(&self.state);
        self.worker.run(async move { state.refresh_now().await }).await?
    }

    /// The index being served, if any.
    pub fn index(&self) -> Option<Arc<DirectoryIndex>> {
        self.state.live.get().map(LiveDirectory::current)
    }

    /// Where the index came from, the last sync and the last error.
    pub fn health(&self) -> Health {
        let mut health = self.state.health();
        health.live_queries = self.live_query.as_ref().map_or(0, LiveQuery::queries);
        health
    }
}

impl State {
    async fn first_sync(&self) -> Result<(), LdapError> {
        let error = match self.refresh_now().await {
            Ok(_) => return Ok(()),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => e,
        };
        let Some(path) = &self.spec.snapshot else {
            tracing::warn!(error = %error.with_causes(), "ldap directory not reachable and no snapshot configured; callers are directory_unavailable until a sync succeeds");
            return Ok(());
        };
        match snapshot::load(path, &self.spec.base_dn) {
            Ok((header, entries)) => {
                let index = DirectoryIndex::build_with(entries, &self.spec.plan, self.spec.map.clone());
                tracing::warn!(
                    error = %error.with_causes(), snapshot = %path.display(), synced = %header.synced_at, people = index.len(),
                    "ldap directory not reachable; serving the last snapshot until a sync succeeds"
                );
                self.swap(index, Origin::Snapshot { path: path.clone(), synced_at: header.synced_at });
            }
            Err(e) => tracing::warn!(
                error = %error.with_causes(), snapshot_error = %e.with_causes(),
                "ldap directory not reachable and the snapshot is not usable; callers are directory_unavailable until a sync succeeds"
            ),
        }
        Ok(())
    }

    async fn refresh_now(&self) -> Result<SyncReport, LdapError> {
        let _one_at_a_time = self.syncing.lock().await;
        match sync::run(&self.spec).await {
            Ok((index, report)) => {
                tracing::info!(
                    url = %self.spec.endpoint.url, entries = report.entries, people = report.people,
                    phone_values = report.phone_values, elapsed_ms = report.elapsed.as_millis() as u64, "ldap directory synced"
                );
                self.swap(index, Origin::Sync { at: SystemTime::now() });
                let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
                health.last_sync = Some(report.clone());
                health.last_error = None;
                health.consecutive_failures = 0;
                Ok(report)
            }
            Err(e) => {
                let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
                health.last_error = Some(e.with_causes());
                health.consecutive_failures = health.consecutive_failures.saturating_add(1);
                Err(e)
            }
        }
    }

    fn swap(&self, index: DirectoryIndex, origin: Origin) {
        let people = index.len();
        let mut fresh = Some(index);
        let live = self.live.get_or_init(|| LiveDirectory::new(fresh.take().expect("taken at most once")));
        if let Some(index) = fresh {
            live.replace(index);
        }
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        health.origin = origin;
        health.people = people;
    }

    fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The delay before the next sync: the refresh interval after a success, a growing
    /// retry delay (5 s, 10 s, 20 s …, never above the interval) after failures.
    fn next_delay(&self) -> Duration {
        retry_delay(self.health().consecutive_failures, self.refresh)
    }

    fn current(&self) -> Result<&LiveDirectory, DirectoryError> {
        self.live.get().ok_or_else(|| {
            let reason = self.health().last_error.unwrap_or_else(|| "not synced yet".into());
            DirectoryError::Unavailable(format!("{}: no directory data yet: {reason}", self.spec.endpoint.url))
        })
    }
}

impl Directory for LdapDirectory {
    fn lookup(&self, party: &Party) -> Result<Lookup, DirectoryError> {
        match self.lookup_steps(party, Steps::Exact)? {
            Lookup::Unresolved => self.lookup_steps(party, Steps::Suffix),
            found => Ok(found),
        }
    }

    /// The exact steps ask the server for someone added since the last sync; the suffix
    /// step reads the synced copy only.
    fn lookup_steps(&self, party: &Party, steps: Steps) -> Result<Lookup, DirectoryError> {
        let found = self.state.current()?.lookup_steps(party, steps)?;
        if steps == Steps::Suffix {
            return Ok(found);
        }
        if found != Lookup::Unresolved {
            return Ok(found);
        }
        // Someone added since the last sync? Ask the server, within the bound, if allowed.
        let Some(live) = &self.live_query else { return Ok(found) };
        let server = self.state.health.lock().unwrap_or_else(PoisonError::into_inner).last_sync.as_ref().map(|s| s.server);
        match server {
            Some(server) => Ok(live.lookup(party, server, &self.worker).unwrap_or(Lookup::Unresolved)),
            None => Ok(found),
        }
    }

    fn find_recipient(&self, recipient: &Recipient) -> Result<Option<Person>, DirectoryError> {
        self.state.current()?.find_recipient(recipient)
    }

    fn explain_unresolved(&self, party: &Party) -> Unmatched {
        match self.state.current() {
            Ok(live) => live.explain_unresolved(party),
            Err(error) => Unmatched { summary: error.to_string(), ..Unmatched::default() },
        }
    }
}

fn retry_delay(failures: u32, interval: Duration) -> Duration {
    if failures == 0 {
        return interval;
    }
    let backoff = Duration::from_secs(5).saturating_mul(1 << failures.saturating_sub(1).min(10));
    backoff.min(interval)
}

/// Refreshes forever; runs on the directory's worker, which cancels it when the directory
/// is dropped.
async fn refresh_loop(state: Arc<State>) {
    loop {
        tokio::time::sleep(state.next_delay()).await;
        if let Err(e) = state.refresh_now().await {
            let health = state.health();
            tracing::warn!(
                error = %e.with_causes(), failures = health.consecutive_failures, people_served = health.people,
                "ldap directory refresh failed; still serving the previous index"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_never_passes_the_interval() {
        let interval = Duration::from_secs(900);
        let delays: Vec<u64> = (0..9).map(|f| retry_delay(f, interval).as_secs()).collect();
        assert_eq!(delays, vec![900, 5, 10, 20, 40, 80, 160, 320, 640]);
        assert_eq!(retry_delay(12, interval), interval);
        assert_eq!(retry_delay(u32::MAX, interval), interval);
        assert_eq!(retry_delay(3, Duration::from_secs(2)), Duration::from_secs(2));
    }
}
