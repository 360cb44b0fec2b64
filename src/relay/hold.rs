//! What the relay holds back (`[digest]`, see [`crate::spool::digest`]): repeated missed
//! calls from one caller folded into one digest, and missed calls a voicemail of the same
//! call replaces.
//!
//! [`Holds`] is the in-memory book of what is held, by (recipient, caller) — a *window*
//! per pair, open from a missed call until `window` passes without another. The journal
//! decides; the book is rebuilt from it at start-up ([`Holds::rebuild`]):
//!
//! - a missed call in an open window is held (`held` record) instead of sent; the first
//!   call of a window is sent at once (or held alone for `hold_missed`);
//! - when the window closes (or `max_calls`/`max_hold` is reached) the first held call
//!   becomes the digest's *leader*: a `gathers` record names every held call the digest
//!   carries, then the leader goes through the usual attempt → sent path, and only after
//!   its `sent` record each member is recorded `folded` and finished;
//! - a voicemail takes the held calls with its CallId (or, with `replace_same_caller`, the
//!   caller's recent ones) the same way: `gathers`, its attempt, then `replaced`.
//!
//! So a crash repeats at most the leader's delivery (the usual at-least-once window, under
//! the same Message-ID, carrying the same calls); no held call is lost or sent twice.
//! Pure bookkeeping: no I/O here; the callers write the records ([`super::item`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;

use crate::event::{Event, Kind};
use crate::spool::{DigestSettings, ItemStatus, State};

/// What to do with an item's event now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Prepare and send it as it is.
    Send,
    /// Hold it (after its `held` record): in its digest, or `alone` for `hold_missed`.
    Hold { key: String, alone: bool },
    /// Send it carrying these held items (a voicemail replacing them), after its `gathers`.
    Replace(Taken),
}

/// Held calls taken out of the book for a voicemail, oldest first, each with its window's
/// key (for [`Holds::give_back`], should the voicemail's `gathers` record fail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taken {
    held: Vec<(String, HeldCall)>,
}

impl Taken {
    /// The ids of the calls taken.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.held.iter().map(|(_, h)| h.id.clone()).collect()
    }
}

/// A digest whose window has closed: every held call it carries, oldest first (the first
/// is its leader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closed {
    key: String,
    held: Vec<HeldCall>,
}

impl Closed {
    /// The ids of its calls, the leader first.
    pub(crate) fn members(&self) -> Vec<String> {
        self.held.iter().map(|h| h.id.clone()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HeldCall {
    id: String,
    call_id: String,
    at: Timestamp,
    alone: bool,
}

/// The missed calls of one (recipient, caller) pair.
#[derive(Debug)]
struct Window {
    /// When the last missed call of the pair came (on the relay's clock).
    last_call: Timestamp,
    /// Held calls, oldest first.
    held: Vec<HeldCall>,
}

#[derive(Debug, Default)]
struct Book {
    windows: HashMap<String, Window>,
    /// Calls held alone whose `hold_missed` is over: the next pass sends them.
    released: HashSet<String>,
}

/// The book of held items (see the module documentation).
#[derive(Debug)]
pub(crate) struct Holds {
    settings: DigestSettings,
    book: std::sync::Mutex<Book>,
}

impl Holds {
    /// The book of what the journal says is held: every item whose last record is `held`,
    /// except those a gathering item already carries.
    pub(crate) fn rebuild(settings: DigestSettings, open: &HashMap<String, ItemStatus>) -> Holds {
        let carried: HashSet<&String> = open.values().flat_map(|s| &s.members).collect();
        let mut book = Book::default();
        for (id, status) in open {
            if let State::Held { key, call_id, alone } = &status.last
                && !carried.contains(id)
            {
                let window = book.windows.entry(key.clone()).or_insert(Window { last_call: status.last_at, held: Vec::new() });
                window.last_call = window.last_call.max(status.last_at);
                window.held.push(HeldCall { id: id.clone(), call_id: call_id.clone(), at: status.last_at, alone: *alone });
            }
        }
        for window in book.windows.values_mut() {
            window.held.sort_by(oldest_first);
        }
        Holds { settings, book: std::sync::Mutex::new(book) }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides what to do with item `id`'s event, seen `now`, and notes a hold in the book
    /// (the caller writes the record, and calls [`Self::unhold`] if it cannot).
    pub(crate) fn route(&self, id: &str, event: &Event, now: Timestamp) -> Route {
        let Some(key) = self.key(id, event) else { return Route::Send };
        match event.kind {
            Kind::MissedCall if self.settings.holds_anything() => self.route_missed(id, key, &event.call_id, now),
            Kind::Voicemail => {
                let taken = self.take_for_voicemail(&key, &event.call_id, now);
                if taken.held.is_empty() { Route::Send } else { Route::Replace(taken) }
            }
            _ => Route::Send,
        }
    }

    /// Whether a voicemail `event` would replace held calls now (nothing is taken).
    pub(crate) fn would_replace(&self, id: &str, event: &Event, now: Timestamp) -> bool {
        let Some(key) = self.key(id, event).filter(|_| event.kind == Kind::Voicemail) else { return false };
        let recipient = recipient_part(&key);
        let recent = self.settings.replace_same_caller.map(|d| sub(now, d));
        let book = self.book();
        book.windows
            .iter()
            .filter(|(k, _)| recipient_part(k) == recipient)
            .any(|(k, w)| w.held.iter().any(|h| replaces(h, &event.call_id, *k == key, recent)))
    }

    fn route_missed(&self, id: &str, key: String, call_id: &str, now: Timestamp) -> Route {
        let s = &self.settings;
        let mut book = self.book();
        let held = |alone| HeldCall { id: id.to_owned(), call_id: call_id.to_owned(), at: now, alone };
        if let (Some(window), Some(length)) = (book.windows.get_mut(&key), s.window)
            && now < add(window.last_call, length)
        {
            window.last_call = window.last_call.max(now);
            window.held.push(held(false));
            return Route::Hold { key, alone: false };
        }
        let alone = !s.hold_missed.is_zero();
        let window = book.windows.entry(key.clone()).or_insert(Window { last_call: now, held: Vec::new() });
        window.last_call = now;
        if alone {
            window.held.push(held(true));
            Route::Hold { key, alone: true }
        } else {
            Route::Send
        }
    }

    /// The held calls a voicemail of `key` with `call_id` replaces, taken out of the book.
    fn take_for_voicemail(&self, key: &str, call_id: &str, now: Timestamp) -> Taken {
        let recipient = recipient_part(key);
        let recent = self.settings.replace_same_caller.map(|d| sub(now, d));
        let mut book = self.book();
        let mut held: Vec<(String, HeldCall)> = Vec::new();
        for (window_key, window) in book.windows.iter_mut().filter(|(k, _)| recipient_part(k) == recipient) {
            let same_caller = window_key == key;
            let (take, keep): (Vec<HeldCall>, Vec<HeldCall>) =
                std::mem::take(&mut window.held).into_iter().partition(|h| replaces(h, call_id, same_caller, recent));
            window.held = keep;
            held.extend(take.into_iter().map(|h| (window_key.clone(), h)));
        }
        held.sort_by(|a, b| oldest_first(&a.1, &b.1));
        Taken { held }
    }

    /// Puts taken calls back (the voicemail's `gathers` record could not be written).
    pub(crate) fn give_back(&self, taken: Taken) {
        self.put_back(taken.held);
    }

    /// Puts closed digests back (a `gathers` record could not be written).
    pub(crate) fn reopen(&self, closed: impl IntoIterator<Item = Closed>) {
        self.put_back(closed.into_iter().flat_map(|c| c.held.into_iter().map(move |h| (c.key.clone(), h))));
    }

    /// Puts held calls back into their windows (by key), each window oldest first.
    fn put_back(&self, calls: impl IntoIterator<Item = (String, HeldCall)>) {
        let mut book = self.book();
        for (key, h) in calls {
            let window = book.windows.entry(key).or_insert(Window { last_call: h.at, held: Vec::new() });
            window.held.push(h);
            window.held.sort_by(oldest_first);
        }
    }

    /// Forgets a hold whose record could not be written (the item stays claimed and is
    /// routed again on the next pass).
    pub(crate) fn unhold(&self, id: &str) {
        let mut book = self.book();
        for window in book.windows.values_mut() {
            window.held.retain(|h| h.id != id);
        }
    }

    /// Whether the held item `id` may be sent now (its `hold_missed` is over); if so, it is
    /// taken: no voicemail can replace it any more.
    pub(crate) fn take_released(&self, id: &str) -> bool {
        self.book().released.remove(id)
    }

    /// Whether the held item `id` is due to be sent alone (released, not yet taken).
    pub(crate) fn is_released(&self, id: &str) -> bool {
        self.book().released.contains(id)
    }

    /// Closes what is due at `now`: digests whose window closed (or that reached
    /// `max_calls`/`max_hold`), returned for their `gathers` record; calls held alone whose
    /// `hold_missed` is over are released. Windows with nothing held that have closed go.
    pub(crate) fn close_due(&self, now: Timestamp) -> Vec<Closed> {
        let s = &self.settings;
        let mut book = self.book();
        let Book { windows, released } = &mut *book;
        let mut closed = Vec::new();
        for (key, window) in windows.iter_mut() {
            let (alone_due, rest): (Vec<HeldCall>, Vec<HeldCall>) =
                std::mem::take(&mut window.held).into_iter().partition(|h| h.alone && now >= add(h.at, s.hold_missed));
            released.extend(alone_due.into_iter().map(|h| h.id));
            window.held = rest;
            if self.digest_due(window, now) {
                let (members, keep): (Vec<HeldCall>, Vec<HeldCall>) = std::mem::take(&mut window.held).into_iter().partition(|h| !h.alone);
                window.held = keep;
                closed.push(Closed { key: key.clone(), held: members });
            }
        }
        windows.retain(|_, w| !w.held.is_empty() || s.window.is_some_and(|length| now < add(w.last_call, length)));
        closed
    }

    fn digest_due(&self, window: &Window, now: Timestamp) -> bool {
        let s = &self.settings;
        let mut members = window.held.iter().filter(|h| !h.alone);
        let Some(first) = members.next() else { return false };
        let count = 1 + members.count();
        count >= s.max_calls || now >= add(first.at, s.max_hold) || s.window.is_none_or(|length| now >= add(window.last_call, length))
    }

    /// When the next hold falls due (a window closes, a `max_hold` or `hold_missed` ends);
    /// calls already released are not counted.
    pub(crate) fn next_due(&self) -> Option<Timestamp> {
        let s = &self.settings;
        let book = self.book();
        let mut due: Option<Timestamp> = None;
        let mut at = |t: Timestamp| due = Some(due.map_or(t, |d| d.min(t)));
        for window in book.windows.values() {
            for h in &window.held {
                at(if h.alone { add(h.at, s.hold_missed) } else { add(h.at, s.max_hold) });
            }
            if let Some(length) = s.window
                && window.held.iter().any(|h| !h.alone)
            {
                at(add(window.last_call, length));
            }
        }
        // Calls released are taken by the listing that released them (the close comes first
        // in every listing); one whose folder has gone meanwhile must not keep this due.
        due
    }

    /// How many calls are held (gauge).
    pub(crate) fn count(&self) -> usize {
        self.book().windows.values().map(|w| w.held.len()).sum()
    }

    /// The (recipient, caller) pair an event is held with; `None` when it is never held
    /// with another (no recipient address, or an anonymous caller unless `merge_anonymous`:
    /// then its own key, so `hold_missed` still applies but nothing joins it).
    fn key(&self, id: &str, event: &Event) -> Option<String> {
        let recipient = event.recipient.address.as_deref().map(|a| a.trim().to_lowercase()).filter(|a| !a.is_empty())?;
        let caller = match caller_identity(event) {
            Some(caller) => caller,
            None if self.settings.merge_anonymous => "anonymous".to_owned(),
            None => format!("anonymous call {id}"),
        };
        Some(format!("{recipient}{SEPARATOR}{caller}"))
    }
}

/// Between the recipient and the caller in a key (neither contains it: addresses and
/// normalized numbers have no spaces around a `|`).
const SEPARATOR: &str = " | ";

fn recipient_part(key: &str) -> &str {
    key.split_once(SEPARATOR).map_or(key, |(r, _)| r)
}

/// Held calls in the order they came (ties by id, so the order is stable).
fn oldest_first(a: &HeldCall, b: &HeldCall) -> std::cmp::Ordering {
    (a.at, &a.id).cmp(&(b.at, &b.id))
}

/// Who called, as stable as the directory allows: the person found (by mail, SIP or name),
/// else the number as normalized, else as written; `None` for an anonymous caller.
fn caller_identity(event: &Event) -> Option<String> {
    let caller = &event.caller;
    let person = caller.person.as_ref().and_then(|p| {
        p.mail.as_deref().or(p.sip.as_deref()).or(p.display_name.as_deref()).map(|who| format!("person {}", who.to_lowercase()))
    });
    person
        .or_else(|| caller.e164.as_ref().map(|n| format!("number {n}")))
        .or_else(|| caller.raw.as_deref().map(|raw| format!("as written {}", raw.trim().to_lowercase())))
}

/// Whether a voicemail of `call_id` replaces the held call `h`: the same call, or (with
/// `replace_same_caller`, `recent` its start) a recent call of its own caller.
fn replaces(h: &HeldCall, call_id: &str, same_caller: bool, recent: Option<Timestamp>) -> bool {
    h.call_id == call_id || (same_caller && recent.is_some_and(|from| h.at >= from))
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

fn sub(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_sub(d).unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Party;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn call(kind: Kind, call_id: &str, from: Option<&str>, to: &str) -> Event {
        let mut event = Event::new(kind, "MissedCall", call_id);
        event.caller = Party::from_raw(from.map(str::to_owned));
        event.caller.e164 = from.map(str::to_owned);
        event.recipient.address = Some(to.to_owned());
        event
    }

    fn holds(window: u64, hold_missed: u64) -> Holds {
        let settings = DigestSettings {
            window: (window > 0).then(|| Duration::from_secs(window)),
            max_calls: 4,
            max_hold: Duration::from_secs(600),
            hold_missed: Duration::from_secs(hold_missed),
            ..DigestSettings::default()
        };
        Holds::rebuild(settings, &HashMap::new())
    }

    const A: &str = "+12895550147";
    const B: &str = "+12895550199";
    const TO: &str = "hannah@contoso.com";

    #[test]
    fn the_first_call_goes_at_once_and_the_next_ones_wait_for_the_window_to_close() {
        let h = holds(300, 0);
        let missed = |n: i64| call(Kind::MissedCall, &format!("c{n}"), Some(A), TO);
        assert_eq!(h.route("i0", &missed(0), t(0)), Route::Send);
        for n in 1..3 {
            assert!(matches!(h.route(&format!("i{n}"), &missed(n), t(30 * n)), Route::Hold { alone: false, .. }));
        }
        assert_eq!(h.close_due(t(60 + 299)), vec![], "the window runs from the last call");
        assert_eq!(h.next_due(), Some(t(60 + 300)));
        let closed = h.close_due(t(60 + 300));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].members(), ["i1", "i2"], "the first held call leads");
        assert_eq!(h.count(), 0);
        assert_eq!(h.route("i9", &missed(9), t(2000)), Route::Send, "a new window after the old one closed");
    }

    #[test]
    fn callers_are_held_apart_and_anonymous_callers_never_together() {
        let h = holds(300, 0);
        for (n, from) in [A, B, A, B].iter().enumerate() {
            h.route(&format!("i{n}"), &call(Kind::MissedCall, &format!("c{n}"), Some(from), TO), t(n as i64));
        }
        let mut closed = h.close_due(t(1000));
        closed.sort_by_key(|c| c.members());
        let members: Vec<Vec<String>> = closed.iter().map(Closed::members).collect();
        assert_eq!(members, [vec!["i2".to_owned()], vec!["i3".to_owned()]]);
        for n in 0..3 {
            assert_eq!(h.route(&format!("a{n}"), &call(Kind::MissedCall, "x", None, TO), t(2000 + n)), Route::Send);
        }
    }

    #[test]
    fn max_calls_closes_a_digest_early() {
        let h = holds(300, 0);
        for n in 0..6 {
            h.route(&format!("i{n}"), &call(Kind::MissedCall, &format!("c{n}"), Some(A), TO), t(n));
        }
        let closed = h.close_due(t(6));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].members().len(), 5, "more than max_calls by the time the pass looked: all go");
    }

    #[test]
    fn a_voicemail_takes_the_held_call_with_its_call_id() {
        let h = holds(0, 60);
        assert!(matches!(h.route("m", &call(Kind::MissedCall, "same", Some(A), TO), t(0)), Route::Hold { alone: true, .. }));
        assert!(matches!(h.route("o", &call(Kind::MissedCall, "other", Some(B), TO), t(1)), Route::Hold { alone: true, .. }));
        let Route::Replace(taken) = h.route("v", &call(Kind::Voicemail, "same", Some(A), TO), t(5)) else { panic!("replaces") };
        assert_eq!(taken.ids(), ["m"]);
        assert_eq!(h.close_due(t(61)), vec![]);
        assert!(h.take_released("o") && !h.take_released("m"));
    }

    #[test]
    fn a_book_is_rebuilt_from_the_journal_without_the_calls_already_gathered() {
        let held = |call_id: &str, at| {
            let state = State::Held { key: "k".into(), call_id: call_id.into(), alone: false };
            let mut s = ItemStatus::new(at, state.clone());
            s.apply(at, &state);
            s
        };
        let mut leader = ItemStatus::new(t(0), State::Gathers { members: vec!["a".into()] });
        leader.apply(t(0), &State::Gathers { members: vec!["a".into()] });
        let open = HashMap::from([("a".to_owned(), held("ca", t(1))), ("b".to_owned(), held("cb", t(2))), ("l".to_owned(), leader)]);
        let h = Holds::rebuild(DigestSettings { window: Some(Duration::from_secs(60)), ..DigestSettings::default() }, &open);
        assert_eq!(h.count(), 1);
        assert_eq!(h.close_due(t(62)).iter().map(Closed::members).collect::<Vec<_>>(), [vec!["b".to_owned()]]);
    }
}
