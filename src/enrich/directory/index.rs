//! The in-memory directory index: [`Entry`] values from any source -> hash tables from
//! normalized keys to people, built once (at load or sync) so that a lookup never scans.
//!
//! Matching (spec §6.4): E.164, then SIP address, then extension, then (only for a caller id
//! too short to be a full number) the trailing `min_suffix_digits` digits; the first step with
//! any hit decides. Every person found is reported with the attribute that matched (the first
//! in the [`AttributeMap`] when several did); two or more people are `Ambiguous`, never a
//! pick. Stored values that do not read under the dial plan have no key and never match;
//! they, and numbers held by several people, are collected as [`LoadWarning`]s. Every kept
//! value is cleaned once, here ([`crate::event::flattened`]): no line break or bidi override
//! from the directory reaches a template.
//!
//! Memory: each person is two allocations ([`StoredPerson`]); tables map a `u64` (the E.164
//! digits, the extension digits, or a hash of a SIP/mail address, verified on a hit) to a
//! span of one shared posting list. The index is immutable: to refresh, build a new one and
//! swap an `Arc<DirectoryIndex>`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::mem::size_of;

use serde::{Deserialize, Serialize};

use super::attributes::AttributeMap;
use super::keys::{self, Key};
use super::store::StoredPerson;
use super::{Directory, DirectoryError, Entry, EntryView, Lookup, Steps, ValueView, guid};
use crate::event::{Candidate, Party, PartyKind, Person, Recipient, Unmatched};
use crate::phone::{self, DialPlan, Parsed, Source};

/// A problem found while indexing, for admins (`directory-check`). Loading goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadWarning {
    /// A value that does not read as its attribute says (a number under the dial plan, a
    /// SIP or mail address, a GUID). It will never match.
    Unreadable { entry: String, attribute: String, value: String, region: String },
    /// The same number, extension or objectGUID is held by several entries: lookups of it
    /// are ambiguous. `holders` are `dn (attribute)`.
    Shared {
        #[serde(deserialize_with = "shared_kind")]
        kind: KeyKind,
        value: String,
        holders: Vec<String>,
    },
    /// An entry's values passed 16 MiB; the rest were dropped.
    Oversized { entry: String },
    /// More entries than the index can number (2^24); this one and the rest were ignored.
    TooManyEntries { first_ignored: String },
}

impl std::fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadWarning::Unreadable { entry, attribute, value, region } => {
                write!(f, "{entry}: {attribute} `{value}` does not read under the {region} dial plan; it will never match")
            }
            LoadWarning::Shared { kind, value, holders } => {
                write!(f, "{kind} {value} is held by {} entries: {}; lookups of it are ambiguous", holders.len(), holders.join(", "))
            }
            LoadWarning::Oversized { entry } => write!(f, "{entry}: values larger than 16 MiB were dropped"),
            LoadWarning::TooManyEntries { first_ignored } => {
                write!(f, "{first_ignored}: more than 16777215 entries; the rest were ignored")
            }
        }
    }
}

/// The kinds of key a [`LoadWarning::Shared`] names, read back from a cache as the same
/// static names.
fn shared_kind<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<&'static str, D::Error> {
    let kind = String::deserialize(deserializer)?;
    SHARED_KINDS.into_iter().find(|k| *k == kind).ok_or_else(|| serde::de::Error::custom(format!("unknown key kind `{kind}`")))
}

/// A key kind's name (spelled through an alias, so serde does not take it for borrowed input).
type KeyKind = &'static str;

const SHARED_KINDS: [&str; 3] = ["number", "extension", "objectGUID"];

/// A table from keys to their postings. Hashed with aHash (randomly keyed per process, as
/// std's SipHash is, but several times cheaper on a `u64`): building the tables of a
/// 100,000-person directory hashes ~770,000 keys, and reading them back from the cache
/// hashes them all again.
type KeyMap<K> = HashMap<K, Span, ahash::RandomState>;

/// Where a key's postings are in the shared list.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Span {
    start: u32,
    len: u32,
}

/// The hash tables, one per key kind (GUIDs apart: they are 128-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    E164,
    Extension,
    Sip,
    Mail,
    Suffix,
}

const TABLES: usize = 5;
const MAX_PEOPLE: usize = 1 << 24;

/// Where a key lives: its table and its `u64` slot, or `None` for a GUID or a key too long to
/// encode (never stored, so never found).
fn slot(key: &Key) -> Option<(Table, u64)> {
    let hashed = |s: &str| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.hash(&mut h);
        h.finish()
    };
    match key {
        Key::E164(e164) => Some((Table::E164, digit_code(e164.strip_prefix('+')?)?)),
        Key::Extension(d) => Some((Table::Extension, digit_code(d)?)),
        Key::Suffix(d) => Some((Table::Suffix, digit_code(d)?)),
        Key::Sip(s) => Some((Table::Sip, hashed(s))),
        Key::Mail(s) => Some((Table::Mail, hashed(s))),
        Key::Guid(_) => None,
    }
}

/// A digit string up to 18 long as a number behind a leading 1 (`0042` -> 10042), which keeps
/// its leading zeros; `None` for a longer string or one with a non-digit.
fn digit_code(digits: &str) -> Option<u64> {
    if digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(1, |code, b| code * 10 + u64::from(b - b'0')))
}

/// Where one posting of a stored key goes.
#[derive(Debug, Clone, Copy)]
enum Posted {
    Coded(Table, u64),
    Guid(u128),
}

/// Adds where the postings of a stored key go: its slot, and for a number also its trailing
/// digits' slot.
fn post(key: &Key, attr: u8, min_suffix_digits: usize, posted: &mut Vec<(Posted, u8)>) {
    if let Key::E164(e164) = key
        && let Some(code) = phone::suffix(e164, min_suffix_digits).and_then(digit_code)
    {
        posted.push((Posted::Coded(Table::Suffix, code), attr));
    }
    match (key, slot(key)) {
        (Key::Guid(g), _) => posted.push((Posted::Guid(*g), attr)),
        (_, Some((table, code))) => posted.push((Posted::Coded(table, code), attr)),
        (_, None) => {}
    }
}

/// A posting: person index (24 bits) and attribute id (8 bits).
fn posting(person: usize, attr: u8) -> u32 {
    u32::try_from(person).expect("person < 2^24") << 8 | u32::from(attr)
}

fn unpack(posting: u32) -> (usize, u8) {
    ((posting >> 8) as usize, (posting & 0xFF) as u8)
}

/// The normalized, immutable directory. Implements [`Directory`].
#[derive(Debug, Clone)]
pub struct DirectoryIndex {
    plan: DialPlan,
    map: AttributeMap,
    people: Vec<StoredPerson>,
    postings: Vec<u32>,
    tables: [KeyMap<u64>; TABLES],
    guids: KeyMap<u128>,
    warnings: Vec<LoadWarning>,
    /// Unreadable stored numbers by their trailing digits (the dial plan's suffix length):
    /// indexes into `warnings`, so an unresolved caller can be told about look-alikes.
    unreadable_by_suffix: HashMap<String, Vec<u32>>,
}

impl DirectoryIndex {
    /// Indexes `entries` under `plan` with the Active Directory attribute map.
    pub fn build(entries: impl IntoIterator<Item = Entry>, plan: &DialPlan) -> DirectoryIndex {
        DirectoryIndex::build_with(entries, plan, AttributeMap::default())
    }

    /// Indexes `entries` under `plan` with a given attribute map. Entries that no key could
    /// ever find (no number, address or GUID) are not kept.
    pub fn build_with(entries: impl IntoIterator<Item = Entry>, plan: &DialPlan, map: AttributeMap) -> DirectoryIndex {
        let mut builder = Builder::new(plan, &map);
        entries.into_iter().for_each(|entry| builder.push(entry));
        builder.finish(plan.clone(), map.clone())
    }

    /// How many people the index holds.
    pub fn len(&self) -> usize {
        self.people.len()
    }

    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }

    /// Problems found while indexing, in load order (shared keys last, by key).
    pub fn warnings(&self) -> &[LoadWarning] {
        &self.warnings
    }

    /// The dial plan the index was built under.
    pub fn dial_plan(&self) -> &DialPlan {
        &self.plan
    }

    /// The attribute map the index was built with.
    pub fn attribute_map(&self) -> &AttributeMap {
        &self.map
    }

    /// An estimate of the heap bytes the index holds (tables at their allocated capacity,
    /// allocator overhead not counted), for the memory benchmark and `directory-check`.
    pub fn heap_bytes(&self) -> usize {
        fn table<K, V, S>(t: &HashMap<K, V, S>) -> usize {
            // hashbrown: buckets ≈ capacity × 8/7, one control byte each.
            t.capacity() * 8 / 7 * (size_of::<(K, V)>() + 1)
        }
        let people = self.people.capacity() * size_of::<StoredPerson>() + self.people.iter().map(StoredPerson::heap_bytes).sum::<usize>();
        let warnings: usize = self.warnings.iter().map(|w| size_of::<LoadWarning>() + w.to_string().len()).sum();
        people
            + self.postings.capacity() * size_of::<u32>()
            + self.tables.iter().map(table).sum::<usize>()
            + table(&self.guids)
            + warnings
            + self.map.heap_bytes()
    }

    /// The postings of a key, verified when the table is hashed.
    fn holders(&self, key: &Key) -> Vec<u32> {
        let span = match (key, slot(key)) {
            (Key::Guid(g), _) => self.guids.get(g),
            (_, Some((table, code))) => self.tables[table as usize].get(&code),
            (_, None) => None,
        };
        let Some(&Span { start, len }) = span else { return Vec::new() };
        let list = &self.postings[start as usize..(start + len) as usize];
        let hashed = matches!(key, Key::Sip(_) | Key::Mail(_));
        list.iter().copied().filter(|&p| !hashed || self.holds(p, key)).collect()
    }

    /// Whether the person of `posting` really has `key` in that attribute (hash collisions).
    fn holds(&self, posting: u32, key: &Key) -> bool {
        let (person, attr) = unpack(posting);
        let role = self.map.spec(attr).role;
        self.people[person].values_of(attr).any(|v| keys::of_text(role, v, &self.plan).is_ok_and(|ks| ks.contains(key)))
    }

    /// One `(person, best attribute)` per person, in person order. Postings of a key are
    /// sorted by person then attribute id, so the first of each person is its best.
    fn best_per_person(holders: &[u32]) -> Vec<(usize, u8)> {
        let mut best: Vec<(usize, u8)> = Vec::new();
        for &p in holders {
            let (person, attr) = unpack(p);
            if best.last().is_none_or(|&(last, _)| last != person) {
                best.push((person, attr));
            }
        }
        best
    }

    fn candidate(&self, person: &Person, attr: u8) -> Candidate {
        let spec = self.map.spec(attr);
        Candidate {
            display_name: person.display_name.clone(),
            mail: person.mail.clone(),
            label: spec.role.label(),
            matched_attribute: spec.name.clone(),
        }
    }

    /// The lookup keys of a party, in matching order.
    fn party_keys(&self, party: &Party) -> Vec<Key> {
        let mut keys = Vec::new();
        if party.kind == PartyKind::Anonymous {
            return keys;
        }
        keys.extend(party.e164.clone().map(Key::E164));
        keys.extend(party.sip.as_deref().and_then(|s| keys::sip(s, &self.plan).ok()).map(Key::Sip));
        keys.extend(party.extension.clone().map(Key::Extension));
        if party.e164.is_none()
            && party.kind == PartyKind::Number
            && let Some(Parsed::Partial(digits)) = party.raw.as_deref().map(|raw| phone::parse(raw, &self.plan, Source::Caller))
        {
            keys.extend(phone::suffix(&digits, self.plan.min_suffix_digits).map(|s| Key::Suffix(s.to_owned())));
        }
        keys
    }

    fn find(&self, party: &Party) -> Lookup {
        self.find_steps(party, Steps::All)
    }

    fn find_steps(&self, party: &Party, steps: Steps) -> Lookup {
        for key in self.party_keys(party).into_iter().filter(|key| steps.includes(key)) {
            let best = Self::best_per_person(&self.holders(&key));
            let mut found: Vec<(Person, Candidate)> = best
                .into_iter()
                .map(|(person, attr)| {
                    let person = self.people[person].person(&self.map);
                    let candidate = self.candidate(&person, attr);
                    (person, candidate)
                })
                .collect();
            match found.len() {
                0 => continue,
                1 => {
                    let (person, candidate) = found.remove(0);
                    return Lookup::Resolved(Box::new(person), candidate);
                }
                _ => {
                    let mut candidates: Vec<Candidate> = found.into_iter().map(|(_, c)| c).collect();
                    candidates.sort_by(|a, b| (&a.display_name, &a.mail).cmp(&(&b.display_name, &b.mail)));
                    return Lookup::Ambiguous(candidates);
                }
            }
        }
        Lookup::Unresolved
    }

    /// The keys tried for `party` and the unreadable stored values ending in its digits.
    fn explain(&self, party: &Party) -> Unmatched {
        let tried = self.party_keys(party).iter().filter_map(Key::shown).collect();
        let digits = party.e164.as_deref().or(party.raw.as_deref()).map(digits_of).unwrap_or_default();
        let unreadable = phone::suffix(&digits, self.plan.min_suffix_digits)
            .and_then(|suffix| self.unreadable_by_suffix.get(suffix))
            .map(|found| found.iter().map(|&i| self.warnings[i as usize].to_string()).collect())
            .unwrap_or_default();
        Unmatched::tried(tried, unreadable)
    }

    fn recipient(&self, recipient: &Recipient) -> Option<Person> {
        let mut keys = Vec::new();
        keys.extend(recipient.object_guid.as_deref().and_then(guid::from_text).map(Key::Guid));
        keys.extend(recipient.address.as_deref().and_then(|a| keys::mail(a).ok()).map(Key::Mail));
        keys.extend(recipient.sip.as_deref().and_then(|s| keys::sip(s, &self.plan).ok()).map(Key::Sip));
        if let Some(eum) = recipient.eum_proxy.as_deref() {
            keys.extend(keys::of_text(super::Role::Proxy, eum, &self.plan).unwrap_or_default());
        }
        keys.iter().find_map(|key| match Self::best_per_person(&self.holders(key)).as_slice() {
            [(person, _)] => Some(self.people[*person].fields(&self.map)),
            _ => None,
        })
    }
}

/// What a cache file keeps of an index (all but the dial plan and the attribute map), as
/// written; [`Parts`] is the same read back.
#[derive(Serialize)]
pub(super) struct PartsRef<'a> {
    people: &'a [StoredPerson],
    postings: &'a [u32],
    tables: &'a [KeyMap<u64>; TABLES],
    guids: &'a KeyMap<u128>,
    warnings: &'a [LoadWarning],
    unreadable_by_suffix: &'a HashMap<String, Vec<u32>>,
}

/// An index's parts as read back from a cache file: not trusted until
/// [`DirectoryIndex::from_parts`] has checked them.
#[derive(Serialize, Deserialize)]
pub(super) struct Parts {
    people: Vec<StoredPerson>,
    /// Open to the cache's tests, which damage it.
    pub(super) postings: Vec<u32>,
    tables: [KeyMap<u64>; TABLES],
    guids: KeyMap<u128>,
    warnings: Vec<LoadWarning>,
    unreadable_by_suffix: HashMap<String, Vec<u32>>,
}

impl DirectoryIndex {
    /// The parts a cache file keeps.
    pub(super) fn parts(&self) -> PartsRef<'_> {
        PartsRef {
            people: &self.people,
            postings: &self.postings,
            tables: &self.tables,
            guids: &self.guids,
            warnings: &self.warnings,
            unreadable_by_suffix: &self.unreadable_by_suffix,
        }
    }

    /// An index from parts read back from a cache, once every index in them is checked to be
    /// in range (so no lookup can panic on them); else what is wrong.
    pub(super) fn from_parts(parts: Parts, plan: DialPlan, map: AttributeMap) -> Result<DirectoryIndex, &'static str> {
        let attributes = map.specs().len();
        if parts.people.len() > MAX_PEOPLE || !parts.people.iter().all(|p| p.is_sound(attributes)) {
            return Err("a person's values are out of range");
        }
        let posting_ok = |&p: &u32| unpack(p).0 < parts.people.len() && usize::from(unpack(p).1) < attributes;
        if !parts.postings.iter().all(posting_ok) {
            return Err("a posting names no person or attribute");
        }
        let span_ok = |s: &Span| s.start.checked_add(s.len).is_some_and(|end| end as usize <= parts.postings.len());
        if !parts.tables.iter().flat_map(HashMap::values).chain(parts.guids.values()).all(span_ok) {
            return Err("a key's postings are out of range");
        }
        if !parts.unreadable_by_suffix.values().flatten().all(|&i| (i as usize) < parts.warnings.len()) {
            return Err("a look-alike names no warning");
        }
        let Parts { people, postings, tables, guids, warnings, unreadable_by_suffix } = parts;
        Ok(DirectoryIndex { plan, map, people, postings, tables, guids, warnings, unreadable_by_suffix })
    }
}

impl Directory for DirectoryIndex {
    fn lookup(&self, party: &Party) -> Result<Lookup, DirectoryError> {
        Ok(self.find(party))
    }

    fn lookup_steps(&self, party: &Party, steps: Steps) -> Result<Lookup, DirectoryError> {
        Ok(self.find_steps(party, steps))
    }

    fn find_recipient(&self, recipient: &Recipient) -> Result<Option<Person>, DirectoryError> {
        Ok(self.recipient(recipient))
    }

    fn explain_unresolved(&self, party: &Party) -> Unmatched {
        self.explain(party)
    }
}

/// One entry read under the dial plan, ready for [`Builder::commit`].
pub(super) struct Prepared {
    dn: String,
    /// The kept values; `None` when no key could ever find the entry (it is not kept).
    stored: Option<StoredPerson>,
    /// Where its postings go, with the attribute of each.
    posted: Vec<(Posted, u8)>,
    /// Its values that do not read (and whether they were cut), in order.
    warnings: Vec<LoadWarning>,
}

/// Collects people and `(key, posting)` pairs, then groups them into tables. Takes one
/// entry at a time, so a source can stream.
pub(super) struct Builder<'a> {
    plan: &'a DialPlan,
    map: &'a AttributeMap,
    people: Vec<StoredPerson>,
    /// Each kept person's DN, for warnings, back to back (one allocation, not one per
    /// person); dropped when the index is built.
    dns: String,
    /// Where each kept person's DN ends in `dns`.
    dn_ends: Vec<usize>,
    pairs: [Vec<(u64, u32)>; TABLES],
    guid_pairs: Vec<(u128, u32)>,
    warnings: Vec<LoadWarning>,
    /// [`MAX_PEOPLE`] reached: later entries are ignored (one warning).
    full: bool,
}

impl<'a> Builder<'a> {
    pub(super) fn new(plan: &'a DialPlan, map: &'a AttributeMap) -> Builder<'a> {
        Builder {
            plan,
            map,
            people: Vec::new(),
            dns: String::new(),
            dn_ends: Vec::new(),
            pairs: Default::default(),
            guid_pairs: Vec::new(),
            warnings: Vec::new(),
            full: false,
        }
    }

    /// Adds one entry; past [`MAX_PEOPLE`] kept people, warns once and ignores the rest.
    pub(super) fn push(&mut self, entry: Entry) {
        let prepared = Builder::prepare(self.plan, self.map, &entry.view());
        self.commit(prepared);
    }

    /// The work of adding `entry` that needs no other entry (reading its values under the
    /// plan, cleaning and packing them), so a loader can do it on another thread than the
    /// one that [`Builder::commit`]s.
    pub(super) fn prepare(plan: &DialPlan, map: &AttributeMap, entry: &EntryView<'_>) -> Prepared {
        // Sized once for the entry (grown a push at a time they were ~800,000 reallocations
        // over a 100,000-person load): a kept value per attribute at most; postings are
        // fewer than attributes in a usual entry (display attributes post none).
        let mut kept: Vec<(u8, Cow<'_, str>)> = Vec::with_capacity(entry.attributes.len());
        let mut posted: Vec<(Posted, u8)> = Vec::with_capacity(entry.attributes.len());
        let mut keyed = false;
        let mut warnings = Vec::new();
        for (name, value) in &entry.attributes {
            let Some(attr) = map.id(name) else { continue };
            let spec = map.spec(attr);
            match keys::of_value(spec.role, value, plan) {
                Ok(keys) => {
                    keyed |= !keys.is_empty();
                    keys.iter().for_each(|key| post(key, attr, plan.min_suffix_digits, &mut posted));
                }
                Err(keys::Unreadable) => warnings.push(LoadWarning::Unreadable {
                    entry: entry.dn.to_string(),
                    attribute: spec.name.clone(),
                    value: shown(value),
                    region: plan.region.clone(),
                }),
            }
            let text = match value {
                ValueView::Text(text) => Some(Cow::Borrowed(text.as_ref())),
                ValueView::Binary(bytes) if spec.role == super::Role::ObjectGuid => {
                    guid::from_bytes(bytes).map(guid::to_text).map(Cow::Owned)
                }
                ValueView::Binary(bytes) => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
            };
            // Cleaned once here, where every source's values enter: a display name can hold
            // line breaks (base64 in LDIF) or bidi overrides, which must never reach a mail.
            kept.extend(text.map(|t| (attr, flattened(t))));
        }
        let stored = keyed.then(|| StoredPerson::pack(&kept));
        if stored.as_ref().is_some_and(|(_, complete)| !complete) {
            warnings.push(LoadWarning::Oversized { entry: entry.dn.to_string() });
        }
        Prepared { dn: entry.dn.to_string(), stored: stored.map(|(person, _)| person), posted, warnings }
    }

    /// Adds a prepared entry; past [`MAX_PEOPLE`] kept people, warns once and ignores the rest.
    pub(super) fn commit(&mut self, prepared: Prepared) {
        if self.people.len() >= MAX_PEOPLE {
            if !self.full {
                self.full = true;
                self.warnings.push(LoadWarning::TooManyEntries { first_ignored: prepared.dn });
            }
            return;
        }
        let Prepared { dn, stored, posted, warnings } = prepared;
        self.warnings.extend(warnings);
        let Some(stored) = stored else { return };
        let person = self.people.len();
        for (to, attr) in posted {
            let p = posting(person, attr);
            match to {
                Posted::Coded(table, code) => self.pairs[table as usize].push((code, p)),
                Posted::Guid(g) => self.guid_pairs.push((g, p)),
            }
        }
        // Copied here, on the thread that keeps the index: the prepared values were made on
        // a parsing thread amid its short-lived buffers, and kept there they would hold
        // those threads' pages, mostly empty, for as long as the index lives (~20 MB of
        // resident memory for 100,000 people).
        self.people.push(stored.clone());
        self.dns.push_str(&dn);
        self.dn_ends.push(self.dns.len());
    }

    pub(super) fn finish(mut self, plan: DialPlan, map: AttributeMap) -> DirectoryIndex {
        let mut pairs = std::mem::take(&mut self.pairs);
        let mut guid_pairs = std::mem::take(&mut self.guid_pairs);
        // Sorting is most of this: the tables are sorted two at a time when there is a
        // second core (half of the pairs each way; the layout is the same either way).
        let [e164, extension, sip, mail, suffix] = &mut pairs;
        both(
            move || [e164, extension, suffix].into_iter().for_each(sort_dedup),
            || {
                [sip, mail].into_iter().for_each(sort_dedup);
                sort_dedup(&mut guid_pairs);
            },
        );
        // Shared keys are read off the sorted pairs, so that the DNs (only needed to name
        // their holders) are gone before the tables are built: that is the load's peak.
        let [number, extension_kind, guid_kind] = SHARED_KINDS;
        self.warn_shared(number, &pairs[Table::E164 as usize], |code| format!("+{}", &code.to_string()[1..]));
        self.warn_shared(extension_kind, &pairs[Table::Extension as usize], |code| code.to_string()[1..].to_owned());
        self.warn_shared(guid_kind, &guid_pairs, |g| guid::to_text(*g));
        (self.dns, self.dn_ends) = Default::default();
        // Each table's postings (its deduplicated pairs) take their own stretch of the list,
        // known now, so the tables are built two at a time as well: the numbers' tables,
        // and the addresses' and GUIDs'.
        let [e164, extension, sip, mail, suffix] = pairs;
        let lens = [e164.len(), extension.len(), suffix.len(), sip.len(), mail.len(), guid_pairs.len()];
        let mut postings = vec![0; lens.iter().sum()];
        let [e164_to, extension_to, suffix_to, sip_to, mail_to, guids_to] = stretches(&mut postings, lens);
        let ([e164, extension, suffix], (sip, mail, guids)) = both(
            move || [group(e164, e164_to), group(extension, extension_to), group(suffix, suffix_to)],
            move || (group(sip, sip_to), group(mail, mail_to), group(guid_pairs, guids_to)),
        );
        let tables = [e164, extension, sip, mail, suffix];
        let unreadable_by_suffix = self.unreadable_by_suffix(plan.min_suffix_digits);
        DirectoryIndex { plan, map, people: self.people, postings, tables, guids, warnings: self.warnings, unreadable_by_suffix }
    }

    /// Every unreadable value with enough digits, by its trailing `n` digits.
    fn unreadable_by_suffix(&self, n: usize) -> HashMap<String, Vec<u32>> {
        let mut by_suffix: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, warning) in self.warnings.iter().enumerate() {
            let LoadWarning::Unreadable { value, .. } = warning else { continue };
            let digits = digits_of(value);
            if let (Some(suffix), Ok(i)) = (phone::suffix(&digits, n), u32::try_from(i)) {
                by_suffix.entry(suffix.to_owned()).or_default().push(i);
            }
        }
        by_suffix
    }

    /// The DN of kept person `person`.
    fn dn(&self, person: usize) -> &str {
        let start = person.checked_sub(1).map_or(0, |before| self.dn_ends[before]);
        &self.dns[start..self.dn_ends[person]]
    }

    /// Warns about every key held by two or more entries, in key order, from its sorted
    /// `(key, posting)` pairs.
    fn warn_shared<K: Ord>(&mut self, kind: &'static str, sorted: &[(K, u32)], show: impl Fn(&K) -> String) {
        for run in sorted.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
            let postings: Vec<u32> = run.iter().map(|&(_, p)| p).collect();
            let people = DirectoryIndex::best_per_person(&postings);
            if people.len() > 1 {
                let holders = people.iter().map(|&(p, attr)| format!("{} ({})", self.dn(p), self.map.spec(attr).name)).collect();
                self.warnings.push(LoadWarning::Shared { kind, value: show(&run[0].0), holders });
            }
        }
    }
}

/// Sorts `(key, posting)` pairs and drops repeats, for [`group`]. The growth slack stays:
/// it was never written, so it is not resident, and giving it back would copy the pairs.
fn sort_dedup<K: Ord>(pairs: &mut Vec<(K, u32)>) {
    pairs.sort_unstable();
    pairs.dedup();
}

/// `first()` and `second()`, the first on a thread of its own when there is a second core.
fn both<A: Send, B>(first: impl FnOnce() -> A + Send, second: impl FnOnce() -> B) -> (A, B) {
    if !std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
        return (first(), second());
    }
    std::thread::scope(|scope| {
        let first = scope.spawn(first);
        let second = second();
        (first.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), second)
    })
}

/// `list` cut into consecutive stretches of `lens` (which add up to its length), each with
/// the place where it starts in `list`.
fn stretches<const N: usize>(mut list: &mut [u32], lens: [usize; N]) -> [(usize, &mut [u32]); N] {
    let mut start = 0;
    lens.map(|len| {
        let (stretch, rest) = std::mem::take(&mut list).split_at_mut(len);
        list = rest;
        start += len;
        (start - len, stretch)
    })
}

/// Lays each key's postings out contiguously in `to` (a stretch as long as `pairs`, which
/// are sorted by [`sort_dedup`]), which starts at `base` in the index's postings.
fn group<K: Copy + Ord + Hash>(pairs: Vec<(K, u32)>, (base, to): (usize, &mut [u32])) -> KeyMap<K> {
    let distinct = pairs.chunk_by(|a, b| a.0 == b.0).count();
    let mut table = KeyMap::with_capacity_and_hasher(distinct, ahash::RandomState::new());
    let mut at = 0;
    for run in pairs.chunk_by(|a, b| a.0 == b.0) {
        let (Ok(start), Ok(len)) = (u32::try_from(base + at), u32::try_from(run.len())) else { break };
        if start.checked_add(len).is_none() {
            break;
        }
        to[at..at + run.len()].iter_mut().zip(run).for_each(|(slot, &(_, posting))| *slot = posting);
        at += run.len();
        table.insert(run[0].0, Span { start, len });
    }
    table
}

/// The ASCII digits of a text, in order (`07700 900456` -> `07700900456`).
fn digits_of(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// A value as shown in a warning.
fn shown(value: &ValueView<'_>) -> String {
    match value {
        ValueView::Text(text) => text.to_string(),
        ValueView::Binary(bytes) => format!("<{} bytes>", bytes.len()),
    }
}

/// [`crate::event::flatten_controls`] of a value that may be borrowed: unchanged (no copy)
/// when clean.
fn flattened(value: Cow<'_, str>) -> Cow<'_, str> {
    // The bytes `flatten_controls` looks for first, scanned without an early exit so that the
    // scan is vectorised: nearly every directory value has none of them.
    let suspect = value.bytes().fold(false, |any, b| any | (b < 0x20) | (b == 0x7F) | (b == 0xC2) | (b == 0xE2));
    if !suspect {
        return value;
    }
    match crate::event::flatten_controls(&value) {
        Cow::Borrowed(_) => value,
        Cow::Owned(clean) => Cow::Owned(clean),
    }
}

#[cfg(test)]
mod tests;
