//! The optional live query on a miss: when the index does not know a caller (someone added
//! since the last sync), ask the server once, within a hard bound, for entries holding that
//! number, extension or SIP address, and match them with the index's own rules.
//!
//! Consumes a normalized [`Party`]; produces a [`Lookup`] or nothing. The query runs on the
//! directory's worker (its one runtime); the caller waits at most the configured bound and
//! the query is cancelled when the bound passes, so a frozen server delays nothing further
//! and leaves no work behind. At most [`AT_ONCE`] queries talk to the server at a time. A
//! number the server did not find is not asked again for a while (negative cache). Every
//! value from the caller is escaped per RFC 4515 (`ldap_escape`) before it goes into a
//! filter, and whatever comes back is matched by a [`DirectoryIndex`], so a crafted caller id
//! can neither widen the search nor match anyone. Never fails: errors are logged and count
//! as "no answer".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ldap3::{Scope, SearchOptions};
use tokio::sync::Semaphore;

use super::connect::ServerKind;
use super::sync::{self, SyncSpec};
use super::worker::Worker;
use super::{LdapError, entry};
use crate::enrich::directory::{Directory as _, DirectoryIndex, Entry, Lookup, Role};
use crate::event::Party;

/// The most entries one live query reads (a number held by more people is ambiguous anyway).
const SIZE_LIMIT: i32 = 50;
/// The most numbers remembered as "not found" at once.
const NEGATIVE_CAPACITY: usize = 10_000;
/// The most live queries talking to the server at once; more wait for a turn (within their
/// bound).
pub(crate) const AT_ONCE: usize = 4;

/// The live query's settings, counter and negative cache.
pub(crate) struct LiveQuery {
    spec: Arc<SyncSpec>,
    bound: Duration,
    negative_ttl: Duration,
    negative: Mutex<HashMap<String, Instant>>,
    queries: Arc<AtomicU64>,
    turns: Arc<Semaphore>,
}

impl LiveQuery {
    pub fn new(spec: Arc<SyncSpec>, bound: Duration, negative_ttl: Duration) -> LiveQuery {
        LiveQuery {
            spec,
            bound,
            negative_ttl,
            negative: Mutex::new(HashMap::new()),
            queries: Arc::new(AtomicU64::new(0)),
            turns: Arc::new(Semaphore::new(AT_ONCE)),
        }
    }

    /// Live queries sent to the server so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Asks the server, on `worker`, about a party the index did not know; `None` when the
    /// server does not know them either, did not answer within the bound, or was not asked.
    pub fn lookup(&self, party: &Party, server: ServerKind, worker: &Worker) -> Option<Lookup> {
        let key = cache_key(party)?;
        let now = Instant::now();
        if self.negative.lock().unwrap_or_else(PoisonError::into_inner).get(&key).is_some_and(|&until| until > now) {
            return None;
        }
        let (spec, queries, turns, party) = (Arc::clone(&self.spec), Arc::clone(&self.queries), Arc::clone(&self.turns), party.clone());
        let ask = async move {
            let _turn = turns.acquire_owned().await;
            queries.fetch_add(1, Ordering::Relaxed);
            query(&spec, &party, server).await
        };
        match worker.wait_within(ask, self.bound) {
            Some(Ok(Some(found))) => Some(found),
            Some(Ok(None)) => {
                self.remember_nobody(key, now);
                None
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e.with_causes(), "ldap live query failed");
                None
            }
            // not in time (the query was cancelled): nothing is learnt
            None => None,
        }
    }

    fn remember_nobody(&self, key: String, now: Instant) {
        let mut negative = self.negative.lock().unwrap_or_else(PoisonError::into_inner);
        if negative.len() >= NEGATIVE_CAPACITY {
            negative.retain(|_, until| *until > now);
            if negative.len() >= NEGATIVE_CAPACITY {
                negative.clear();
            }
        }
        negative.insert(key, now + self.negative_ttl);
    }
}

/// One bounded search for the party's values, matched by a small index of what came back.
async fn query(spec: &SyncSpec, party: &Party, server: ServerKind) -> Result<Option<Lookup>, LdapError> {
    let Some(filter) = live_filter(spec, party, server) else {
        return Ok(None);
    };
    let mut session = spec.endpoint.open().await?;
    let searched = session
        .ldap
        .with_search_options(SearchOptions::new().sizelimit(SIZE_LIMIT))
        .with_timeout(session.timeout)
        .search(&spec.base_dn, Scope::Subtree, &filter, sync::requested_attributes(&spec.map))
        .await;
    let url = session.url.clone();
    session.close().await;
    let result = searched.map_err(|e| LdapError::Io { url: url.clone(), step: "live query", source: Box::new(e) })?;
    // 4 = sizeLimitExceeded: the entries read are still real holders of the value
    if result.1.rc != 0 && result.1.rc != 4 {
        return Err(LdapError::Search { url, base: spec.base_dn.clone(), filter, rc: result.1.rc, text: result.1.text });
    }
    let entries: Vec<Entry> = result.0.into_iter().filter_map(entry::decode).collect();
    let index = DirectoryIndex::build_with(entries, &spec.plan, spec.map.clone());
    Ok(match index.lookup(party) {
        Ok(Lookup::Unresolved) | Err(_) => None,
        Ok(found) => Some(found),
    })
}

/// `(&<objects>(|…))` over every attribute that could hold one of the party's values, each
/// value escaped; `None` when the party has nothing to look for.
fn live_filter(spec: &SyncSpec, party: &Party, server: ServerKind) -> Option<String> {
    let escape = |v: &str| ldap3::ldap_escape(v).into_owned();
    let numbers: Vec<String> =
        [&party.e164, &party.international, &party.national, &party.extension].into_iter().flatten().map(|v| escape(v)).collect();
    let e164 = party.e164.as_deref().map(escape);
    let extension = party.extension.as_deref().map(escape);
    let sip = party.sip.as_deref().map(escape);
    let mut any = String::new();
    for attribute in spec.map.specs().iter().filter(|s| sync::is_attribute_name(&s.name)) {
        let name = &attribute.name;
        let mut clause = |value: String| any.push_str(&format!("({name}={value})"));
        match attribute.role {
            Role::Phone(_) => {
                numbers.iter().for_each(|n| clause(n.clone()));
                if let Some(e164) = &e164 {
                    clause(format!("tel:{e164}"));
                    clause(format!("tel:{e164};*"));
                }
            }
            Role::Sip => sip.iter().for_each(|s| clause(format!("sip:{s}"))),
            Role::Mail => sip.iter().for_each(|s| clause(s.clone())),
            Role::Proxy => {
                sip.iter().for_each(|s| clause(format!("SIP:{s}")));
                extension.iter().chain(&e164).for_each(|n| clause(format!("EUM:{n};*")));
            }
            Role::ObjectGuid | Role::Display => {}
        }
    }
    if any.is_empty() {
        return None;
    }
    let objects = spec.filter.clone().unwrap_or_else(|| sync::objects_filter(server).to_owned());
    Some(format!("(&{objects}(|{any}))"))
}

/// What the negative cache remembers a party by; `None` when there is nothing to ask.
fn cache_key(party: &Party) -> Option<String> {
    if party.e164.is_none() && party.extension.is_none() && party.sip.is_none() {
        return None;
    }
    Some(format!("{:?}|{:?}|{:?}", party.e164, party.extension, party.sip))
}

#[cfg(test)]
mod tests {
    use super::super::connect::test_settings;
    use super::*;
    use crate::enrich::directory::{AttributeMap, AttributeSpec};
    use crate::event::PhoneLabel;
    use crate::phone::DialPlan;

    fn spec(map: AttributeMap) -> SyncSpec {
        let settings = test_settings("ldaps://dc1.contoso.com");
        SyncSpec::new(&settings, &DialPlan::new("US", None, 4, 7).expect("US"), map).expect("valid settings")
    }

    fn map() -> AttributeMap {
        AttributeMap::new([
            AttributeSpec { name: "mobile".into(), role: Role::Phone(PhoneLabel::Mobile) },
            AttributeSpec { name: "msRTCSIP-PrimaryUserAddress".into(), role: Role::Sip },
            AttributeSpec { name: "proxyAddresses".into(), role: Role::Proxy },
            AttributeSpec { name: "displayName".into(), role: Role::Display },
        ])
    }

    #[test]
    fn caller_values_are_escaped_and_only_widen_nothing() {
        let party = Party {
            e164: Some("+14255550187".into()),
            sip: Some("*)(mail=*".into()),
            extension: Some("4567)(x=*".into()),
            ..Party::default()
        };
        let filter = live_filter(&spec(map()), &party, ServerKind::Other).expect("something to ask");
        assert_eq!(
            filter,
            "(&(objectClass=inetOrgPerson)(|(mobile=+14255550187)(mobile=4567\\29\\28x=\\2a)(mobile=tel:+14255550187)\
             (mobile=tel:+14255550187;*)(msRTCSIP-PrimaryUserAddress=sip:\\2a\\29\\28mail=\\2a)\
             (proxyAddresses=SIP:\\2a\\29\\28mail=\\2a)(proxyAddresses=EUM:4567\\29\\28x=\\2a;*)(proxyAddresses=EUM:+14255550187;*)))"
        );
        assert!(ldap3::parse_filter(&filter).is_ok());
    }

    #[test]
    fn nothing_to_ask_means_no_query_and_no_cache_entry() {
        let anonymous = Party::from_raw(None);
        assert_eq!(live_filter(&spec(map()), &anonymous, ServerKind::ActiveDirectory), None);
        assert_eq!(cache_key(&anonymous), None);
    }

    #[test]
    fn an_unreachable_server_costs_at_most_the_bound_and_is_not_cached() {
        // nothing listens on port 9 of the loopback interface: refused at once
        let mut settings_spec = spec(map());
        let mut unreachable = test_settings("ldap://127.0.0.1:9");
        (unreachable.bind_dn, unreachable.bind_password) = (None, None);
        settings_spec.endpoint = super::super::connect::Endpoint::new(&unreachable).expect("valid");
        let live = LiveQuery::new(Arc::new(settings_spec), Duration::from_secs(2), Duration::from_secs(60));
        let worker = Worker::start().expect("starts");
        let party = Party { e164: Some("+14255550187".into()), ..Party::default() };
        assert_eq!(live.lookup(&party, ServerKind::Other, &worker), None);
        assert_eq!(live.lookup(&party, ServerKind::Other, &worker), None);
        assert_eq!(live.queries(), 2, "a failure is not remembered as \"nobody\"");
    }
}
