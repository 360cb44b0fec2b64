//! One full sync: connect and bind, pick the filter, page through the directory and build
//! a new [`DirectoryIndex`] while the pages arrive (and write the snapshot beside it).
//!
//! Consumes a [`SyncSpec`]; produces the index and a [`SyncReport`], or an [`LdapError`]
//! and nothing: an incomplete search never yields an index, and its snapshot is discarded.
//! A snapshot that cannot be written does not fail the sync (it is reported and logged).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::LdapError;
use super::connect::{Endpoint, ServerKind, Session};
use super::fetch::{self, FetchStats};
use super::snapshot::{SnapshotHeader, SnapshotWriter};
use crate::enrich::directory::settings::LdapSettings;
use crate::enrich::directory::{AttributeMap, DirectoryIndex, Entry, Role};
use crate::phone::DialPlan;

/// Active Directory: enabled users (bit 2 of userAccountControl clear) and contacts.
const AD_OBJECTS: &str =
    "(|(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))(objectClass=contact))";
/// Other servers (OpenLDAP): people.
const LDAP_OBJECTS: &str = "(objectClass=inetOrgPerson)";

/// Everything a sync needs; built once from the settings.
pub(crate) struct SyncSpec {
    pub endpoint: Endpoint,
    pub base_dn: String,
    /// The configured filter; `None` picks [`default_filter`] for the server found.
    pub filter: Option<String>,
    pub plan: DialPlan,
    pub map: AttributeMap,
    pub snapshot: Option<PathBuf>,
}

impl SyncSpec {
    /// Checks the settings (URL, TLS, CA file, filter syntax) without connecting.
    pub fn new(settings: &LdapSettings, plan: &DialPlan, map: AttributeMap) -> Result<SyncSpec, LdapError> {
        let filter = settings.filter.clone().filter(|f| !f.trim().is_empty());
        if let Some(filter) = &filter
            && ldap3::parse_filter(filter).is_err()
        {
            return Err(LdapError::Filter(filter.clone()));
        }
        Ok(SyncSpec {
            endpoint: Endpoint::new(settings)?,
            base_dn: settings.base_dn.clone(),
            filter,
            plan: plan.clone(),
            map,
            snapshot: settings.snapshot.clone(),
        })
    }
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub server: ServerKind,
    /// The filter used (configured or default).
    pub filter: String,
    /// Entries the server returned.
    pub entries: usize,
    /// People in the new index (entries with at least one number or address).
    pub people: usize,
    /// Values of phone attributes seen (a multi-valued attribute counts each value).
    pub phone_values: usize,
    pub referrals_skipped: usize,
    pub malformed_skipped: usize,
    pub elapsed: Duration,
    /// Why the snapshot was not written, when one is configured and that failed.
    pub snapshot_problem: Option<String>,
}

/// The default search filter for a server: its people that have any number, SIP or mail
/// attribute of the map (the same people the file directory keeps).
pub fn default_filter(server: ServerKind, map: &AttributeMap) -> String {
    let objects = objects_filter(server);
    let any: String = map
        .specs()
        .iter()
        .filter(|s| matches!(s.role, Role::Phone(_) | Role::Sip | Role::Mail | Role::Proxy))
        .filter(|s| is_attribute_name(&s.name))
        .map(|s| format!("({}=*)", s.name))
        .collect();
    format!("(&{objects}(|{any}))")
}

/// The kind of objects that are people on a server (the first half of the default filter).
pub(super) fn objects_filter(server: ServerKind) -> &'static str {
    match server {
        ServerKind::ActiveDirectory => AD_OBJECTS,
        ServerKind::Other => LDAP_OBJECTS,
    }
}

/// The attributes a sync asks for: the map's, when they are valid attribute descriptions.
pub(crate) fn requested_attributes(map: &AttributeMap) -> Vec<String> {
    map.names().filter(|n| is_attribute_name(n)).map(str::to_owned).collect()
}

/// RFC 4512 `descr` (letter, then letters, digits, hyphens) or a numeric OID.
pub(super) fn is_attribute_name(name: &str) -> bool {
    let descr = name.starts_with(|c: char| c.is_ascii_alphabetic()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !name.is_empty() && name.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    descr || oid
}

/// Counts the values of phone attributes in an entry.
pub(super) fn phone_values(entry: &Entry, map: &AttributeMap) -> usize {
    entry.attributes.iter().filter(|(name, _)| map.id(name).is_some_and(|id| matches!(map.spec(id).role, Role::Phone(_)))).count()
}

/// Runs one sync.
pub(crate) async fn run(spec: &SyncSpec) -> Result<(DirectoryIndex, SyncReport), LdapError> {
    let started = Instant::now();
    let mut session = spec.endpoint.open().await?;
    let result = search_and_build(&mut session, spec).await;
    session.close().await;
    result.map(|(index, mut report)| {
        report.elapsed = started.elapsed();
        (index, report)
    })
}

async fn search_and_build(session: &mut Session, spec: &SyncSpec) -> Result<(DirectoryIndex, SyncReport), LdapError> {
    let server = session.server_kind().await?;
    let filter = spec.filter.clone().unwrap_or_else(|| default_filter(server, &spec.map));
    let attributes = requested_attributes(&spec.map);

    let mut snapshot_problem = None;
    let writer = match &spec.snapshot {
        Some(path) => {
            let header = SnapshotHeader {
                source: spec.endpoint.url.clone(),
                base_dn: spec.base_dn.clone(),
                filter: filter.clone(),
                synced_at: jiff::Timestamp::now().to_string(),
            };
            SnapshotWriter::create(path, &header).map_err(|e| snapshot_problem = Some(e.with_causes())).ok()
        }
        None => None,
    };

    // The index is built on a blocking thread while the pages arrive, so the entries of a
    // large directory are never all in memory at once.
    let (sink, mut source) = tokio::sync::mpsc::channel::<Entry>(1024);
    let plan = spec.plan.clone();
    let map = spec.map.clone();
    let builder = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let mut write_problem = None;
        let mut phone = 0;
        let index = {
            let entries = std::iter::from_fn(|| source.blocking_recv()).inspect(|entry| {
                phone += phone_values(entry, &map);
                if let Some(w) = writer.as_mut()
                    && let Err(e) = w.write(entry)
                {
                    write_problem = Some(e.with_causes());
                    if let Some(w) = writer.take() {
                        w.discard();
                    }
                }
            });
            DirectoryIndex::build_with(entries, &plan, map.clone())
        };
        (index, phone, writer, write_problem)
    });
    let fetched: Result<FetchStats, LdapError> = fetch::fetch_into(session, &spec.base_dn, &filter, &attributes, &sink).await;
    drop(sink);
    let (index, phone_values, writer, write_problem) = match builder.await {
        Ok(built) => built,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let fetched = match fetched {
        Ok(fetched) => fetched,
        Err(e) => {
            if let Some(w) = writer {
                w.discard();
            }
            return Err(e);
        }
    };
    snapshot_problem = snapshot_problem.or(write_problem);
    if let Some(writer) = writer
        && let Err(e) = writer.commit()
    {
        snapshot_problem = Some(e.with_causes());
    }
    if let Some(problem) = &snapshot_problem {
        tracing::warn!(problem, "ldap snapshot not written");
    }
    let report = SyncReport {
        server,
        filter,
        entries: fetched.entries,
        people: index.len(),
        phone_values,
        referrals_skipped: fetched.referrals_skipped,
        malformed_skipped: fetched.malformed_skipped,
        elapsed: fetched.elapsed,
        snapshot_problem,
    };
    Ok((index, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_filters_ask_for_people_with_any_number_or_address() {
        let map = AttributeMap::active_directory();
        let other = default_filter(ServerKind::Other, &map);
        assert!(
            other
                .starts_with("(&(objectClass=inetOrgPerson)(|(msRTCSIP-PrimaryUserAddress=*)(proxyAddresses=*)(mail=*)(telephoneNumber=*)"),
            "{other}"
        );
        assert!(other.ends_with("(otherPager=*)))"), "{other}");
        assert!(!other.contains("displayName") && !other.contains("objectGUID"), "{other}");
        let ad = default_filter(ServerKind::ActiveDirectory, &map);
        assert!(ad.starts_with(&format!("(&{AD_OBJECTS}(|")), "{ad}");
        assert!(ldap3::parse_filter(&ad).is_ok() && ldap3::parse_filter(&other).is_ok());
    }

    #[test]
    fn attribute_names_that_could_change_a_filter_are_never_used() {
        use crate::enrich::directory::AttributeSpec;
        use crate::event::PhoneLabel;
        let map = AttributeMap::new([
            AttributeSpec { name: "mobile".into(), role: Role::Phone(PhoneLabel::Mobile) },
            AttributeSpec { name: "x)(objectClass=*".into(), role: Role::Phone(PhoneLabel::Work) },
            AttributeSpec { name: "2.5.4.20".into(), role: Role::Phone(PhoneLabel::Work) },
        ]);
        assert_eq!(default_filter(ServerKind::Other, &map), "(&(objectClass=inetOrgPerson)(|(mobile=*)(2.5.4.20=*)))");
        assert_eq!(requested_attributes(&map), vec!["mobile".to_owned(), "2.5.4.20".to_owned()]);
    }
}
