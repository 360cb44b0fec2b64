//! Reading every matching entry: a subtree search with the Simple Paged Results control
//! (RFC 2696), so a server's size limit (AD: 1,000 per page) never truncates the result.
//!
//! Consumes an open [`Session`]; sends each [`Entry`] to a channel as it arrives (the
//! index is built while the pages come in) and returns [`FetchStats`]. Entries are decoded
//! on a blocking thread of their own, in order, so the runtime thread only reads the wire
//! (reading, decoding and indexing run side by side). Every wait for the next entry is
//! bounded by the search timeout. Referrals and intermediate messages are skipped, never
//! followed. A search that ends with an error result (size limit, no such base, …) is an
//! error, not a short result: a partial directory must never replace a complete one.
//! Errors: [`LdapError`].

use std::time::{Duration, Instant};

use ldap3::adapters::PagedResults;
use ldap3::{ResultEntry, Scope};

use tokio::sync::mpsc::{Receiver, Sender};

use super::LdapError;
use super::connect::Session;
use super::entry;
use crate::enrich::directory::Entry;

/// AD's default MaxPageSize; larger pages are refused or cut by most servers.
pub(crate) const PAGE_SIZE: i32 = 1000;
/// Entries handed to the decoder at once (one wake-up of its thread per batch, not per entry).
const DECODE_BATCH: usize = 256;
/// Batches read from the wire and not yet decoded, at most.
const DECODE_QUEUE: usize = 8;

/// What one complete search returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FetchStats {
    pub entries: usize,
    /// Referrals the server returned (skipped: the sync reads one naming context).
    pub referrals_skipped: usize,
    /// Entries that could not be decoded.
    pub malformed_skipped: usize,
    pub elapsed: Duration,
}

/// Pages through `base` (subtree) with `filter`, asking for `attributes`, and sends every
/// entry to `sink`. Stops early (with the stats so far) if the receiver is gone.
pub(crate) async fn fetch_into(
    session: &mut Session,
    base: &str,
    filter: &str,
    attributes: &[String],
    sink: &Sender<Entry>,
) -> Result<FetchStats, LdapError> {
    ldap3::parse_filter(filter).map_err(|_| LdapError::Filter(filter.to_owned()))?;
    let started = Instant::now();
    let (queue, waiting) = tokio::sync::mpsc::channel::<Vec<ResultEntry>>(DECODE_QUEUE);
    let decoded = sink.clone();
    let decoder = tokio::task::spawn_blocking(move || decode_all(waiting, &decoded));
    let read = read_raw(session, base, filter, attributes, queue).await;
    let (entries, malformed) = match decoder.await {
        Ok(counts) => counts,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => (0, 0), // the runtime is stopping: the sync is being dropped anyway
    };
    let mut fetched = read?;
    fetched.entries = entries;
    fetched.malformed_skipped = malformed;
    fetched.elapsed = started.elapsed();
    Ok(fetched)
}

/// Decodes what `waiting` receives into `sink`, in order, until either side is gone;
/// returns the entries decoded and the malformed ones skipped.
fn decode_all(mut waiting: Receiver<Vec<ResultEntry>>, sink: &Sender<Entry>) -> (usize, usize) {
    let (mut decoded, mut malformed) = (0, 0);
    while let Some(batch) = waiting.blocking_recv() {
        for raw in batch {
            match entry::decode(raw) {
                Some(entry) => {
                    if sink.blocking_send(entry).is_err() {
                        return (decoded, malformed);
                    }
                    decoded += 1;
                }
                None => malformed += 1,
            }
        }
    }
    (decoded, malformed)
}

/// The search itself: sends every search result entry, undecoded and in batches, to `queue`
/// (dropped at the end, which ends the decoder). Counts referrals; the caller fills in the
/// rest.
async fn read_raw(
    session: &mut Session,
    base: &str,
    filter: &str,
    attributes: &[String],
    queue: Sender<Vec<ResultEntry>>,
) -> Result<FetchStats, LdapError> {
    let url = session.url.clone();
    let timeout = session.timeout;
    let timed_out = |step| LdapError::Timeout { url: url.clone(), step, after: timeout };
    let io = |step, source| LdapError::Io { url: url.clone(), step, source: Box::new(source) };

    let mut stream = tokio::time::timeout(
        timeout,
        session.ldap.with_timeout(timeout).streaming_search_with(
            PagedResults::new(PAGE_SIZE),
            base,
            Scope::Subtree,
            filter,
            attributes.to_vec(),
        ),
    )
    .await
    .map_err(|_| timed_out("search"))?
    .map_err(|e| match e {
        ldap3::LdapError::Timeout { .. } => timed_out("search"),
        other => io("search", other),
    })?;

    let mut fetched = FetchStats::default();
    let mut batch = Vec::with_capacity(DECODE_BATCH);
    loop {
        let next = tokio::time::timeout(timeout, stream.next()).await.map_err(|_| timed_out("search"))?;
        let item = match next {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(ldap3::LdapError::Timeout { .. }) => return Err(timed_out("search")),
            Err(other) => return Err(io("search", other)),
        };
        if item.is_ref() {
            fetched.referrals_skipped += 1;
            continue;
        }
        if item.is_intermediate() {
            continue;
        }
        batch.push(item);
        if batch.len() == DECODE_BATCH && queue.send(std::mem::replace(&mut batch, Vec::with_capacity(DECODE_BATCH))).await.is_err() {
            break;
        }
    }
    if !batch.is_empty() {
        let _ = queue.send(batch).await;
    }
    drop(queue);
    let result = stream.finish().await;
    if result.rc != 0 {
        return Err(LdapError::Search { url, base: base.to_owned(), filter: filter.to_owned(), rc: result.rc, text: result.text });
    }
    Ok(fetched)
}
