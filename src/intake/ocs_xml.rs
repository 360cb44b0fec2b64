//! OCS 2007 R2 / Lync `UserNotification` XML -> [`Notification`].
//!
//! Consumes the XML text (the `OCSNotificationData` value, the bare XML line of a 2010
//! header, or a whole standalone file); produces the notification's facts with the values
//! as written (trimmed), and the event [`Kind`] its `Event/@type` and `TargetClass` give.
//! Elements are found by name under `UserNotification` and `Event`, in any order; unknown
//! elements are ignored; a repeated element is an error. Never accepts a DTD, never expands
//! an entity other than the five predefined ones and character references. Values are
//! cleaned of control characters (a `&#13;&#10;` becomes a space, see
//! [`flatten_controls`]); ids, addresses and parties over [`MAX_ID_CHARS`] are refused. Returns
//! [`XmlProblem`] (an [`IntakeErrorKind`] with the byte offset where it was found).

use std::borrow::Cow;

use jiff::Timestamp;
use quick_xml::events::BytesStart;
use quick_xml::{Reader, XmlVersion};

use super::error::IntakeErrorKind;
use super::values::{MAX_ID_CHARS, parse_ocs_time, parse_priority, within};
use super::xml::{Piece, XmlError, next_piece};
use crate::event::{Importance, Kind, flatten_controls};

const ROOT: &str = "UserNotification";

/// The elements read, with the parent they must appear under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    User,
    EumProxyAddress,
    Time,
    RecipientObjectGuid,
    CallId,
    From,
    Subject,
    Priority,
    Target,
    TargetClass,
    MissedReason,
}

const SLOTS: usize = 11;
const ROOT_CHILDREN: [Slot; 4] = [Slot::User, Slot::EumProxyAddress, Slot::Time, Slot::RecipientObjectGuid];
const EVENT_CHILDREN: [Slot; 7] =
    [Slot::CallId, Slot::From, Slot::Subject, Slot::Priority, Slot::Target, Slot::TargetClass, Slot::MissedReason];

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::User => "User",
            Slot::EumProxyAddress => "EumProxyAddress",
            Slot::Time => "Time",
            Slot::RecipientObjectGuid => "RecipientObjectGuid",
            Slot::CallId => "CallId",
            Slot::From => "From",
            Slot::Subject => "Subject",
            Slot::Priority => "Priority",
            Slot::Target => "Target",
            Slot::TargetClass => "TargetClass",
            Slot::MissedReason => "MissedReason",
        }
    }

    fn find(among: &[Slot], name: &[u8]) -> Option<Slot> {
        among.iter().copied().find(|s| s.name().as_bytes() == name)
    }

    /// Whether the value may reach a mail header (and so is bounded by [`MAX_ID_CHARS`]).
    fn bounded(self) -> bool {
        !matches!(self, Slot::Subject | Slot::MissedReason)
    }
}

/// What the XML says, values as written (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notification {
    /// From `Event/@type` (+ `TargetClass` for answered).
    pub kind: Kind,
    /// `<User>`, e.g. `sip:hannah.whitaker@contoso.com`.
    pub user: String,
    pub eum_proxy: Option<String>,
    pub time: Option<Timestamp>,
    pub object_guid: Option<String>,
    pub call_id: Option<String>,
    /// `Event/From` verbatim (a SIP or tel URI); `None` when absent.
    pub from: Option<String>,
    pub subject: Option<String>,
    pub priority: Option<Importance>,
    pub target: Option<String>,
    pub missed_reason: Option<String>,
}

/// A problem and the byte offset in the XML text where it was found.
#[derive(Debug)]
pub(crate) struct XmlProblem {
    pub offset: usize,
    pub kind: IntakeErrorKind,
}

/// The OCS wording of a shared XML reading error.
fn xml_error(e: XmlError) -> IntakeErrorKind {
    match e {
        XmlError::Malformed(e) => IntakeErrorKind::MalformedXml(e),
        XmlError::Dtd => IntakeErrorKind::DtdNotAllowed,
        XmlError::UndefinedEntity(name) => IntakeErrorKind::UndefinedEntity { name },
    }
}

fn problem(offset: u64, kind: IntakeErrorKind) -> XmlProblem {
    XmlProblem { offset: usize::try_from(offset).unwrap_or(usize::MAX), kind }
}

/// A value read from the XML and where its element started.
#[derive(Debug, Default)]
struct Found {
    value: String,
    offset: u64,
}

/// The element whose text is being collected.
struct Capture {
    slot: Slot,
    depth: usize,
    text: String,
    offset: u64,
}

#[derive(Default)]
struct Walk {
    depth: usize,
    /// Names of the open elements (for "unexpected end inside `<From>`").
    open: Vec<String>,
    root_seen: bool,
    root_closed: bool,
    in_event: bool,
    /// Offset of `<Event>` and its `type` attribute, once seen.
    event: Option<(u64, Option<String>)>,
    capture: Option<Capture>,
    found: [Option<Found>; SLOTS],
}

/// Parses a `UserNotification` document.
pub(crate) fn parse(xml: &str) -> Result<Notification, XmlProblem> {
    let mut reader = Reader::from_str(xml);
    let mut walk = Walk::default();
    loop {
        let (at, piece) = next_piece(&mut reader).map_err(|(at, e)| problem(at, xml_error(e)))?;
        match piece {
            Piece::Start(e) => walk.start(&e, at, false)?,
            Piece::Empty(e) => walk.start(&e, at, true)?,
            Piece::End => walk.end()?,
            Piece::Text(text) => walk.text(&text, at)?,
            Piece::Eof => break,
        }
    }
    walk.finish(xml.len() as u64)
}

impl Walk {
    fn start(&mut self, e: &BytesStart<'_>, at: u64, empty: bool) -> Result<(), XmlProblem> {
        let name = e.name();
        let name = name.as_ref();
        if self.depth == 0 {
            if self.root_closed {
                return Err(problem(at, IntakeErrorKind::XmlOutsideRoot));
            }
            if name != ROOT.as_bytes() {
                let found = String::from_utf8_lossy(name).into_owned();
                return Err(problem(at, IntakeErrorKind::WrongRootElement { found }));
            }
            self.root_seen = true;
        } else if self.depth == 1 && name == b"Event" {
            if self.event.is_some() {
                return Err(problem(at, IntakeErrorKind::DuplicateElement { name: "Event" }));
            }
            self.event = Some((at, event_type(e).map_err(|err| problem(at, IntakeErrorKind::MalformedXml(err)))?));
            self.in_event = !empty;
        } else if self.capture.is_none() {
            let slot = match self.depth {
                1 => Slot::find(&ROOT_CHILDREN, name),
                2 if self.in_event => Slot::find(&EVENT_CHILDREN, name),
                _ => None,
            };
            if let Some(slot) = slot {
                if self.found[slot as usize].is_some() {
                    return Err(problem(at, IntakeErrorKind::DuplicateElement { name: slot.name() }));
                }
                self.capture = Some(Capture { slot, depth: self.depth, text: String::new(), offset: at });
            }
        }
        if empty {
            self.close_capture_at(self.depth)?;
            if self.depth == 0 {
                self.root_closed = true;
            }
        } else {
            self.open.push(String::from_utf8_lossy(name).into_owned());
            self.depth += 1;
        }
        Ok(())
    }

    /// An end tag; quick-xml has already checked that it matches the open element.
    fn end(&mut self) -> Result<(), XmlProblem> {
        self.depth = self.depth.saturating_sub(1);
        self.open.pop();
        self.close_capture_at(self.depth)?;
        if self.depth == 1 {
            self.in_event = false;
        }
        if self.depth == 0 {
            self.root_closed = true;
        }
        Ok(())
    }

    fn close_capture_at(&mut self, depth: usize) -> Result<(), XmlProblem> {
        if self.capture.as_ref().is_some_and(|c| c.depth == depth)
            && let Some(c) = self.capture.take()
        {
            // kept as it is (no copy) unless trimming or cleaning changes it
            let unchanged = matches!(flatten_controls(c.text.trim()), Cow::Borrowed(b) if b.len() == c.text.len());
            let value = if unchanged { c.text } else { flatten_controls(c.text.trim()).into_owned() };
            if c.slot.bounded()
                && let Err(chars) = within(&value, MAX_ID_CHARS)
            {
                let kind = IntakeErrorKind::XmlValueTooLong { name: c.slot.name(), chars, max: MAX_ID_CHARS };
                return Err(problem(c.offset, kind));
            }
            self.found[c.slot as usize] = Some(Found { value, offset: c.offset });
        }
        Ok(())
    }

    fn text(&mut self, text: &str, at: u64) -> Result<(), XmlProblem> {
        if self.depth == 0 && !text.trim().is_empty() {
            return Err(problem(at, IntakeErrorKind::XmlOutsideRoot));
        }
        if let Some(c) = &mut self.capture {
            c.text.push_str(text);
        }
        Ok(())
    }

    fn finish(mut self, end: u64) -> Result<Notification, XmlProblem> {
        if let Some(inside) = self.open.pop() {
            return Err(problem(end, IntakeErrorKind::XmlUnexpectedEnd { inside }));
        }
        if !self.root_seen {
            return Err(problem(0, IntakeErrorKind::MissingElement { name: ROOT }));
        }
        let mut take = |slot: Slot| self.found[slot as usize].take().filter(|f| !f.value.is_empty());
        let user = take(Slot::User).ok_or_else(|| problem(0, IntakeErrorKind::MissingElement { name: "User" }))?;
        let (event_at, event_type) = self.event.take().ok_or_else(|| problem(0, IntakeErrorKind::MissingElement { name: "Event" }))?;
        let event_type = event_type.ok_or_else(|| problem(event_at, IntakeErrorKind::MissingEventType))?;
        let target = take(Slot::Target);
        let kind = event_kind(&event_type, take(Slot::TargetClass), event_at)?;
        if kind != Kind::MissedCall && target.is_none() {
            return Err(problem(event_at, IntakeErrorKind::MissingElement { name: "Target" }));
        }
        let priority = match take(Slot::Priority) {
            Some(p) => Some(
                parse_priority(&p.value).ok_or_else(|| problem(p.offset, IntakeErrorKind::UnknownPriority { value: p.value.clone() }))?,
            ),
            None => None,
        };
        let time = match take(Slot::Time) {
            Some(t) => {
                Some(parse_ocs_time(&t.value).ok_or_else(|| problem(t.offset, IntakeErrorKind::InvalidTime { value: t.value.clone() }))?)
            }
            None => None,
        };
        Ok(Notification {
            kind,
            user: user.value,
            eum_proxy: take(Slot::EumProxyAddress).map(|f| f.value),
            time,
            object_guid: take(Slot::RecipientObjectGuid).map(|f| f.value),
            call_id: take(Slot::CallId).map(|f| f.value),
            from: take(Slot::From).map(|f| f.value),
            subject: take(Slot::Subject).map(|f| f.value),
            priority,
            target: target.map(|f| f.value),
            missed_reason: take(Slot::MissedReason).map(|f| f.value),
        })
    }
}

/// The unescaped `type` attribute of `<Event>`, if any.
fn event_type(e: &BytesStart<'_>) -> Result<Option<String>, quick_xml::Error> {
    for attr in e.attributes() {
        let attr = attr?;
        if attr.key.as_ref() == b"type" {
            return Ok(Some(attr.normalized_value(XmlVersion::Implicit1_0)?.trim().to_owned()));
        }
    }
    Ok(None)
}

/// `missed` / `forbidden` / `answered` + `Primary`|`Secondary`, all case-insensitive.
fn event_kind(event_type: &str, target_class: Option<Found>, at: u64) -> Result<Kind, XmlProblem> {
    if event_type.eq_ignore_ascii_case("missed") {
        Ok(Kind::MissedCall)
    } else if event_type.eq_ignore_ascii_case("forbidden") {
        Ok(Kind::CallNotForwarded)
    } else if event_type.eq_ignore_ascii_case("answered") {
        let class = target_class.ok_or_else(|| problem(at, IntakeErrorKind::MissingTargetClass))?;
        if class.value.eq_ignore_ascii_case("primary") {
            Ok(Kind::CallForwarded)
        } else if class.value.eq_ignore_ascii_case("secondary") {
            Ok(Kind::TeamPickup)
        } else {
            Err(problem(class.offset, IntakeErrorKind::UnknownTargetClass { value: class.value }))
        }
    } else {
        Err(problem(at, IntakeErrorKind::UnknownEventType { value: event_type.to_owned() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(event_attrs: &str, event_body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"us-ascii\"?><UserNotification><User>sip:a@contoso.com</User>\
             <Time>2011-02-11 01:29:39Z</Time><Event{event_attrs}>{event_body}</Event></UserNotification>"
        )
    }

    fn err(xml: &str) -> String {
        parse(xml).unwrap_err().kind.to_string()
    }

    #[test]
    fn missed_with_every_element_in_any_order() {
        let xml = "<UserNotification>\n  <Event type=\"MISSED\">\n    <MissedReason> CallerReleased </MissedReason>\
                   <From>sip:+12895550147@contoso.com;user=phone</From><CallId>c1</CallId>\
                   <Subject>R&#233;union &amp; budget <![CDATA[<b>]]></Subject><Priority>Emergency</Priority>\
                   </Event>\n  <RecipientObjectGuid>g</RecipientObjectGuid><EumProxyAddress>EUM:a@contoso.com;phone-context=DP</EumProxyAddress>\
                   <Unknown><User>not me</User></Unknown><User>sip:a@contoso.com</User></UserNotification>\n";
        let n = parse(xml).unwrap();
        assert_eq!(n.kind, Kind::MissedCall);
        assert_eq!(n.user, "sip:a@contoso.com");
        assert_eq!(n.eum_proxy.as_deref(), Some("EUM:a@contoso.com;phone-context=DP"));
        assert_eq!(n.object_guid.as_deref(), Some("g"));
        assert_eq!(n.call_id.as_deref(), Some("c1"));
        assert_eq!(n.from.as_deref(), Some("sip:+12895550147@contoso.com;user=phone"));
        assert_eq!(n.subject.as_deref(), Some("Réunion & budget <b>"));
        assert_eq!(n.priority, Some(Importance::High));
        assert_eq!(n.missed_reason.as_deref(), Some("CallerReleased"));
        assert_eq!(n.time, None);
        assert_eq!(n.target, None);
    }

    #[test]
    fn answered_and_forbidden_kinds() {
        let body = "<Target>sip:t@contoso.com</Target><TargetClass>Primary</TargetClass>";
        assert_eq!(parse(&doc(" type=\"answered\"", body)).unwrap().kind, Kind::CallForwarded);
        let body = "<Target>sip:t@contoso.com</Target><TargetClass>secondary</TargetClass>";
        assert_eq!(parse(&doc(" type='Answered'", body)).unwrap().kind, Kind::TeamPickup);
        let n = parse(&doc(" type=\"forbidden\"", "<Target>tel:+1</Target><Priority>non-urgent</Priority>")).unwrap();
        assert_eq!((n.kind, n.priority, n.target.as_deref()), (Kind::CallNotForwarded, Some(Importance::Low), Some("tel:+1")));
        assert_eq!(n.time.map(|t| t.to_string()).as_deref(), Some("2011-02-11T01:29:39Z"));
    }

    #[test]
    fn event_problems() {
        assert_eq!(err(&doc("", "")), "missing event type: `<Event>` has no `type` attribute");
        assert_eq!(err(&doc(" type=\"rang\"", "")), "unknown event type `rang` (expected missed, answered or forbidden)");
        assert_eq!(err(&doc(" type=\"answered\"", "<Target>x</Target>")), "answered event without `<TargetClass>` (Primary or Secondary)");
        assert_eq!(
            err(&doc(" type=\"answered\"", "<Target>x</Target><TargetClass>Tertiary</TargetClass>")),
            "unknown TargetClass `Tertiary` (expected Primary or Secondary)"
        );
        assert_eq!(err(&doc(" type=\"forbidden\"", "")), "missing element `<Target>` in OCS XML");
        assert_eq!(
            err(&doc(" type=\"missed\"", "<Priority>whenever</Priority>")),
            "unknown Priority `whenever` (expected normal, urgent, emergency or non-urgent)"
        );
        assert_eq!(err(&doc(" type=\"missed\"", "<From>a</From><From>b</From>")), "duplicate element `<From>` in OCS XML");
        assert_eq!(err("<UserNotification><User>u</User></UserNotification>"), "missing element `<Event>` in OCS XML");
        assert_eq!(
            err("<UserNotification><User> </User><Event type=\"missed\"/></UserNotification>"),
            "missing element `<User>` in OCS XML"
        );
        assert_eq!(
            err("<UserNotification><User>u</User><Time>soon</Time><Event type=\"missed\"/></UserNotification>"),
            "invalid Time `soon` (expected yyyy-MM-dd HH:mm:ssZ)"
        );
    }

    #[test]
    fn self_closing_event_has_a_type() {
        let n =
            parse("<UserNotification><User>u</User><Event type=\"missed\"/><CallId>not under Event</CallId></UserNotification>").unwrap();
        assert_eq!((n.kind, n.call_id), (Kind::MissedCall, None));
    }

    #[test]
    fn structure_problems() {
        assert_eq!(err("<Notification/>"), "root element is `<Notification>`, expected `<UserNotification>`");
        assert_eq!(err("<!-- nothing -->"), "missing element `<UserNotification>` in OCS XML");
        assert_eq!(err(&(doc(" type=\"missed\"", "") + "<x/>")), "malformed XML: content outside the root element");
        assert_eq!(err("junk<UserNotification/>"), "malformed XML: content outside the root element");
        let truncated = "<UserNotification><User>u</User><Event type=\"missed\"><From>sip:+1425555";
        let p = parse(truncated).unwrap_err();
        assert_eq!(p.kind.to_string(), "malformed XML: unexpected end of input inside `<From>`");
        assert_eq!(p.offset, truncated.len());
        let p = parse("<UserNotification><User>u</Event></UserNotification>").unwrap_err();
        assert_eq!(p.kind.to_string(), "malformed XML");
        assert_eq!(
            std::error::Error::source(&p.kind).map(|s| s.to_string()).as_deref(),
            Some("ill-formed document: expected `</User>`, but `</Event>` was found")
        );
    }

    #[test]
    fn dtd_and_entities_are_refused() {
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE UserNotification [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;\">]>\
                    <UserNotification><User>&b;</User></UserNotification>";
        let p = parse(bomb).unwrap_err();
        assert_eq!(p.kind.to_string(), "DTD not allowed in OCS XML (`<!DOCTYPE …>`); entities are never expanded");
        assert_eq!(p.offset, 21);
        assert_eq!(err("<UserNotification><User>&nbsp;</User></UserNotification>"), "undefined entity `&nbsp;` in OCS XML");
        assert_eq!(err("<UserNotification><Event type=\"&x;\"/></UserNotification>"), "malformed XML");
    }
}
