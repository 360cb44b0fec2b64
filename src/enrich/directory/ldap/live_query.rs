//! The optional live query on a miss: when the index does not know a caller (someone added
//! since the last sync), ask the server once, within a hard bound, for entries holding that
//! number, extension or SIP address, and match them with the index's own rules.
//!
//! Consumes a normalized [`Party`]; produces a [`Lookup`] or nothing. The caller waits at most
//! the configured bound (a dedicated thread does the network I/O, so a frozen server delays
//! nothing further); a number the server did not find is not asked again for a while
//! (negative cache). Every value from the caller is escaped per RFC 4515 (`ldap_escape`)
//! before it goes into a filter, and whatever comes back is matched by a [`DirectoryIndex`],
//! so a crafted caller id can neither widen the search nor match anyone. Never fails: errors
//! are logged and count as "no answer".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ldap3::{Scope, SearchOptions};

use super::connect::ServerKind;
use super::sync::{self, SyncSpec};
use super::{LdapError, entry};
use crate::enrich::directory::{Directory as _, DirectoryIndex, Entry, Lookup, Role};
use crate::event::Party;

/// The most entries one live query reads (a number held by more people is ambiguous anyway).
const SIZE_LIMIT: i32 = 50;
/// The most numbers remembered as "not found" at once.
const NEGATIVE_CAPACITY: usize = 10_000;

/// What the worker answers.
type Answer = Result<Option<Lookup>, ()>;

struct Request {
    party: Party,
    server: ServerKind,
    deadline: Instant,
    reply: mpsc::SyncSender<Answer>,
}

/// The live-query worker and its negative cache.
pub(crate) struct LiveQuery {
    requests: mpsc::Sender<Request>,
    bound: Duration,
    negative_ttl: Duration,
    negative: Mutex<HashMap<String, Instant>>,
    queries: Arc<AtomicU64>,
}

impl LiveQuery {
    /// Starts the worker thread; it ends when this is dropped.
    pub fn spawn(spec: Arc<SyncSpec>, bound: Duration, negative_ttl: Duration) -> LiveQuery {
        let (requests, incoming) = mpsc::channel::<Request>();
        let queries = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&queries);
        let spawned = std::thread::Builder::new()
            .name("ldap-live-query".into())
            .spawn(move || worker(&spec, &incoming, &counter));
        if let Err(e) = spawned {
            // Without the thread every request fails at once: lookups stay index-only.
            tracing::warn!(error = %e, "ldap live query thread not started; lookups use the index only");
        }
        LiveQuery {
            requests,
            bound,
            negative_ttl,
            negative: Mutex::new(HashMap::new()),
            queries,
        }
    }

    /// Live queries sent to the server so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Asks the server about a party the index did not know; `None` when the server does
    /// not know them either, did not answer within the bound, or was not asked.
    pub fn lookup(&self, party: &Party, server: ServerKind) -> Option<Lookup> {
        let key = cache_key(party)?;
        let now = Instant::now();
        let mut negative = self.negative.lock().unwrap_or_else(PoisonError::into_inner);
        if negative.get(&key).is_some_and(|&until| until > now) {
            return None;
        }
        drop(negative);
        let (reply, answer) = mpsc::sync_channel(1);
        let deadline = now + self.bound;
        self.requests
            .send(Request {
                party: party.clone(),
                server,
                deadline,
                reply,
            })
            .ok()?;
        match answer.recv_timeout(self.bound) {
            Ok(Ok(Some(found))) => Some(found),
            Ok(Ok(None)) => {
                negative = self.negative.lock().unwrap_or_else(PoisonError::into_inner);
                if negative.len() >= NEGATIVE_CAPACITY {
                    negative.retain(|_, until| *until > now);
                    if negative.len() >= NEGATIVE_CAPACITY {
                        negative.clear();
                    }
                }
                negative.insert(key, now + self.negative_ttl);
                None
            }
            // the server could not be asked, or not in time: nothing is learnt
            Ok(Err(())) | Err(_) => None,
        }
    }
}

/// Answers requests one at a time on a private runtime until the sender is gone.
fn worker(spec: &SyncSpec, incoming: &mpsc::Receiver<Request>, queries: &AtomicU64) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(error = %e, "ldap live query runtime not started; lookups use the index only");
            return;
        }
    };
    while let Ok(request) = incoming.recv() {
        let remaining = request.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            continue; // the caller has given up already
        }
        queries.fetch_add(1, Ordering::Relaxed);
        let answer = runtime
            .block_on(async { tokio::time::timeout(remaining, query(spec, &request.party, request.server)).await });
        let answer = match answer {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) => {
                tracing::debug!(error = %e.with_causes(), "ldap live query failed");
                Err(())
            }
            Err(_) => Err(()),
        };
        let _ = request.reply.try_send(answer);
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
        .search(
            &spec.base_dn,
            Scope::Subtree,
            &filter,
            sync::requested_attributes(&spec.map),
        )
        .await;
    let url = session.url.clone();
    session.close().await;
    let result = searched.map_err(|e| LdapError::Io {
        url: url.clone(),
        step: "live query",
        source: Box::new(e),
    })?;
    // 4 = sizeLimitExceeded: the entries read are still real holders of the value
    if result.1.rc != 0 && result.1.rc != 4 {
        return Err(LdapError::Search {
            url,
            base: spec.base_dn.clone(),
            filter,
            rc: result.1.rc,
            text: result.1.text,
        });
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
    let numbers: Vec<String> = [&party.e164, &party.international, &party.national, &party.extension]
        .into_iter()
        .flatten()
        .map(|v| escape(v))
        .collect();
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
    let objects = spec
        .filter
        .clone()
        .unwrap_or_else(|| sync::objects_filter(server).to_owned());
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
    use crate::phone::DialPlan;
    use crate::event::PhoneLabel;

    fn spec(map: AttributeMap) -> SyncSpec {
        let settings = test_settings("ldaps://dc1.contoso.com");
        SyncSpec::new(&settings, &DialPlan::new("US", None, 4, 7).expect("US"), map).expect("valid settings")
    }

    fn map() -> AttributeMap {
        AttributeMap::new([
            AttributeSpec {
                name: "mobile".into(),
                role: Role::Phone(PhoneLabel::Mobile),
            },
            AttributeSpec {
                name: "msRTCSIP-PrimaryUserAddress".into(),
                role: Role::Sip,
            },
            AttributeSpec {
                name: "proxyAddresses".into(),
                role: Role::Proxy,
            },
            AttributeSpec {
                name: "displayName".into(),
                role: Role::Display,
            },
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
        let live = LiveQuery::spawn(Arc::new(settings_spec), Duration::from_secs(2), Duration::from_secs(60));
        let party = Party {
            e164: Some("+14255550187".into()),
            ..Party::default()
        };
        assert_eq!(live.lookup(&party, ServerKind::Other), None);
        assert_eq!(live.lookup(&party, ServerKind::Other), None);
        assert_eq!(live.queries(), 2, "a failure is not remembered as \"nobody\"");
    }
}
