//! Reading every matching entry: a subtree search with the Simple Paged Results control
//! (RFC 2696), so a server's size limit (AD: 1,000 per page) never truncates the result.
//!
//! Consumes an open [`Session`]; sends each [`Entry`] to a channel as it arrives (the
//! index is built while the pages come in) and returns [`FetchStats`]. Every wait for the next entry is
//! bounded by the search timeout. Referrals and intermediate messages are skipped, never
//! followed. A search that ends with an error result (size limit, no such base, …) is an
//! error, not a short result: a partial directory must never replace a complete one.
//! Errors: [`LdapError`].

use std::time::{Duration, Instant};

use ldap3::Scope;
use ldap3::adapters::PagedResults;

use tokio::sync::mpsc::Sender;

use super::LdapError;
use super::connect::Session;
use super::entry;
use crate::enrich::directory::Entry;

/// AD's default MaxPageSize; larger pages are refused or cut by most servers.
pub const PAGE_SIZE: i32 = 1000;

/// What one complete search returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub entries: usize,
    /// Referrals the server returned (skipped: the sync reads one naming context).
    pub referrals_skipped: usize,
    /// Entries that could not be decoded.
    pub malformed_skipped: usize,
    pub elapsed: Duration,
}

/// Pages through `base` (subtree) with `filter`, asking for `attributes`, and sends every
/// entry to `sink`. Stops early (with the stats so far) if the receiver is gone.
pub async fn fetch_into(
    session: &mut Session,
    base: &str,
    filter: &str,
    attributes: &[String],
    sink: &Sender<Entry>,
) -> Result<FetchStats, LdapError> {
    ldap3::parse_filter(filter).map_err(|_| LdapError::Filter(filter.to_owned()))?;
    let started = Instant::now();
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
        match entry::decode(item) {
            Some(entry) => {
                fetched.entries += 1;
                if sink.send(entry).await.is_err() {
                    break;
                }
            }
            None => fetched.malformed_skipped += 1,
        }
    }
    let result = stream.finish().await;
    if result.rc != 0 {
        return Err(LdapError::Search { url, base: base.to_owned(), filter: filter.to_owned(), rc: result.rc, text: result.text });
    }
    fetched.elapsed = started.elapsed();
    Ok(fetched)
}
