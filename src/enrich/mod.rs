//! Enrichment: an [`Event`] from intake -> the same event with every party normalized
//! (E.164, national/international formats, extension, SIP), the numbers in its voice mail
//! preview made dialable, and, with a directory, resolved
//! (status, name, label, matched attribute, person, candidates); the recipient completed
//! from the directory (mail address, display name, preferred language, SIP address) when the
//! event names them only by SIP URI, EUM proxy or objectGUID.
//!
//! Never fails and never guesses: a directory that cannot answer gives
//! `directory_unavailable` (logged), several matching people give `ambiguous` with every
//! candidate, and recipient fields already in the event are never overwritten.
//! Numbers are read and formatted by [`crate::phone`].

pub mod contacts;
pub mod directory;

use crate::event::{CallerStatus, Event, Party, PartySource, Recipient, Unmatched};
use crate::phone::{self, DialPlan};
use contacts::ContactBook;
use directory::{Directory, DirectoryError, DirectoryIndex, Lookup, Steps};

/// Normalizes every party of `event` and, when a directory is given, looks them up and
/// completes the recipient.
pub fn enrich(event: &mut Event, plan: &DialPlan, directory: Option<&dyn Directory>) {
    enrich_with(event, plan, directory, None);
}

/// [`enrich`] that also asks the recipient's own contacts (found by the recipient's mail
/// address, once the directory has completed it), between the directory's exact steps and
/// its suffix step. One recipient's contacts never resolve another recipient's callers.
pub fn enrich_with(event: &mut Event, plan: &DialPlan, directory: Option<&dyn Directory>, contacts: Option<&dyn ContactBook>) {
    if let Some(transcript) = event.transcript.as_mut() {
        phone::dial_transcript_numbers(transcript, plan);
    }
    if let Some(directory) = directory {
        complete_recipient(&mut event.recipient, directory);
    }
    let book = contacts.zip(event.recipient.address.as_deref()).and_then(|(contacts, mail)| contacts.of(mail));
    resolve_party_with(&mut event.caller, plan, directory, book.as_deref());
    if let Some(target) = event.target.as_mut() {
        resolve_party_with(target, plan, directory, book.as_deref());
    }
}

/// Normalizes one party from its `raw` value and, with a directory, resolves it. Without a
/// directory the status is `not_looked_up` (`anonymous` for an anonymous party).
pub fn resolve_party(party: &mut Party, plan: &DialPlan, directory: Option<&dyn Directory>) {
    resolve_party_with(party, plan, directory, None);
}

/// [`resolve_party`] with one recipient's contacts: the directory's exact steps (E.164,
/// SIP, extension), then the contacts by the same keys, then the directory's suffix step.
/// The first step that finds anyone decides; a directory match is never replaced.
pub fn resolve_party_with(party: &mut Party, plan: &DialPlan, directory: Option<&dyn Directory>, contacts: Option<&DirectoryIndex>) {
    phone::normalize_party(party, plan);
    party.name = None;
    party.label = None;
    party.matched_attribute = None;
    party.person = None;
    party.candidates = Vec::new();
    party.source = None;
    party.reason = None;
    if party.status == CallerStatus::Anonymous {
        return;
    }
    if directory.is_none() && contacts.is_none() {
        party.status = CallerStatus::NotLookedUp;
        return;
    }
    let contacts = contacts.map(|c| c as &dyn Directory);
    let steps = [
        (directory, Steps::Exact, PartySource::Directory),
        (contacts, Steps::Exact, PartySource::Contacts),
        (directory, Steps::Suffix, PartySource::Directory),
    ];
    let mut failure: Option<DirectoryError> = None;
    for (source, steps, kind) in steps {
        let Some(source) = source else { continue };
        match source.lookup_steps(party, steps) {
            Ok(Lookup::Unresolved) => {}
            Ok(found) => return apply(party, found, kind),
            Err(error) => failure = failure.or(Some(error)),
        }
    }
    party.status = match failure {
        Some(error) => {
            tracing::warn!(error = %error, raw = party.raw.as_deref().unwrap_or(""), "directory lookup failed");
            party.reason = Some(Unmatched { summary: error.to_string(), ..Unmatched::default() });
            CallerStatus::DirectoryUnavailable
        }
        None => {
            // Without a directory, say only which keys were tried: the contacts' own values
            // are the recipient's business.
            let explained = directory.map(|d| d.explain_unresolved(party));
            party.reason = Some(explained.unwrap_or_else(|| Unmatched::tried(directory::party_key_names(party), Vec::new())));
            CallerStatus::Unresolved
        }
    };
}

/// Records a resolved or ambiguous outcome and where it came from.
fn apply(party: &mut Party, found: Lookup, source: PartySource) {
    party.source = Some(source);
    party.status = match found {
        Lookup::Resolved(person, candidate) => {
            party.name = person.display_name.clone();
            party.label = candidate.label;
            party.matched_attribute = Some(candidate.matched_attribute.clone());
            party.person = Some(*person);
            party.candidates = vec![candidate];
            CallerStatus::Resolved
        }
        Lookup::Ambiguous(candidates) => {
            party.candidates = candidates;
            CallerStatus::Ambiguous
        }
        Lookup::Unresolved => {
            party.source = None;
            CallerStatus::Unresolved
        }
    };
}

/// Fills the recipient's missing address, name, culture and SIP address from their
/// directory entry (found by objectGUID, address, SIP address or EUM proxy).
pub fn complete_recipient(recipient: &mut Recipient, directory: &dyn Directory) {
    let person = match directory.find_recipient(recipient) {
        Ok(Some(person)) => person,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(error = %error, "directory lookup of the recipient failed");
            return;
        }
    };
    let fill = |slot: &mut Option<String>, value: Option<String>| {
        if slot.as_deref().is_none_or(|s| s.trim().is_empty()) && value.is_some() {
            *slot = value;
        }
    };
    fill(&mut recipient.address, person.mail);
    fill(&mut recipient.name, person.display_name);
    fill(&mut recipient.culture, person.preferred_language);
    fill(&mut recipient.sip, person.sip);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{PartyKind, PhoneLabel};
    use directory::{DirectoryError, DirectoryIndex, Entry};

    fn plan() -> DialPlan {
        DialPlan::new("US", Some("9"), 4, 7).expect("US")
    }

    fn index() -> DirectoryIndex {
        let mut olivia = Entry::new("uid=ochen");
        olivia.push_text("displayName", "Olivia Chen");
        olivia.push_text("mail", "olivia.chen@contoso.com");
        olivia.push_text("telephoneNumber", "+1 425 555 0100");
        olivia.push_text("preferredLanguage", "en-US");
        olivia.push_text("msRTCSIP-PrimaryUserAddress", "sip:olivia.chen@contoso.com");
        DirectoryIndex::build([olivia], &plan())
    }

    struct Down;
    impl Directory for Down {
        fn lookup(&self, _: &Party) -> Result<Lookup, DirectoryError> {
            Err(DirectoryError::Unavailable("ldap://dc1: connection refused".into()))
        }
        fn find_recipient(&self, _: &Recipient) -> Result<Option<crate::event::Person>, DirectoryError> {
            Err(DirectoryError::Unavailable("ldap://dc1: connection refused".into()))
        }
    }

    #[test]
    fn resolved_party_carries_person_label_and_single_candidate() {
        let mut party = Party::from_raw(Some("+14255550100".into()));
        resolve_party(&mut party, &plan(), Some(&index()));
        assert_eq!(party.status, CallerStatus::Resolved);
        assert_eq!(party.name.as_deref(), Some("Olivia Chen"));
        assert_eq!(party.label, Some(PhoneLabel::Work));
        assert_eq!(party.matched_attribute.as_deref(), Some("telephoneNumber"));
        assert_eq!(party.candidates.len(), 1);
        assert_eq!(party.person.as_ref().and_then(|p| p.mail.as_deref()), Some("olivia.chen@contoso.com"));
    }

    #[test]
    fn statuses_without_directory_anonymous_and_unavailable() {
        let mut party = Party::from_raw(Some("+14255550100".into()));
        resolve_party(&mut party, &plan(), None);
        assert_eq!((party.status, party.e164.as_deref()), (CallerStatus::NotLookedUp, Some("+14255550100")));

        let mut party = Party::from_raw(None);
        resolve_party(&mut party, &plan(), Some(&index()));
        assert_eq!((party.kind, party.status), (PartyKind::Anonymous, CallerStatus::Anonymous));

        let mut party = Party::from_raw(Some("+14255550100".into()));
        resolve_party(&mut party, &plan(), Some(&Down));
        assert_eq!((party.status, party.name.as_deref()), (CallerStatus::DirectoryUnavailable, None));
        assert_eq!(party.reason.map(|r| r.summary).as_deref(), Some("directory unavailable: ldap://dc1: connection refused"));

        let mut party = Party::from_raw(Some("+14255550199".into()));
        resolve_party(&mut party, &plan(), Some(&index()));
        assert_eq!((party.status, party.candidates.len()), (CallerStatus::Unresolved, 0));
        assert_eq!(party.reason.map(|r| r.tried), Some(vec!["e164 +14255550199".to_owned()]));
    }

    #[test]
    fn recipient_by_sip_gets_missing_fields_only() {
        let mut recipient = Recipient { sip: Some("olivia.chen@contoso.com".into()), name: Some("O. Chen".into()), ..Recipient::default() };
        complete_recipient(&mut recipient, &index());
        assert_eq!(recipient.address.as_deref(), Some("olivia.chen@contoso.com"));
        assert_eq!(recipient.name.as_deref(), Some("O. Chen"));
        assert_eq!(recipient.culture.as_deref(), Some("en-US"));

        let mut unknown = Recipient { sip: Some("nobody@contoso.com".into()), ..Recipient::default() };
        complete_recipient(&mut unknown, &index());
        assert_eq!(unknown, Recipient { sip: Some("nobody@contoso.com".into()), ..Recipient::default() });
        complete_recipient(&mut unknown, &Down);
        assert_eq!(unknown.address, None);
    }

    fn contacts(cards: &str) -> DirectoryIndex {
        contacts::index(contacts::vcard::parse(cards).expect("cards"), &plan())
    }

    const MARISOL: &str = "BEGIN:VCARD\nVERSION:3.0\nFN:Marisol Vega\nORG:Fabrikam\nTITLE:Buyer\nTEL;TYPE=CELL:+1 206 555 0142\nTEL;TYPE=WORK:+1 425 555 0100\nEND:VCARD\n";

    #[test]
    fn a_contact_resolves_after_the_directory_exact_steps_and_never_replaces_it() {
        let book = contacts(MARISOL);
        let mut party = Party::from_raw(Some("+12065550142".into()));
        resolve_party_with(&mut party, &plan(), Some(&index()), Some(&book));
        assert_eq!((party.status, party.source), (CallerStatus::Resolved, Some(PartySource::Contacts)));
        assert_eq!((party.name.as_deref(), party.label), (Some("Marisol Vega"), Some(PhoneLabel::Mobile)));
        let person = party.person.expect("person");
        assert_eq!((person.company.as_deref(), person.title.as_deref()), (Some("Fabrikam"), Some("Buyer")));

        // Olivia's directory number is also in Marisol's card: the directory wins.
        let mut party = Party::from_raw(Some("+14255550100".into()));
        resolve_party_with(&mut party, &plan(), Some(&index()), Some(&book));
        assert_eq!((party.name.as_deref(), party.source), (Some("Olivia Chen"), Some(PartySource::Directory)));

        // Without contacts (another recipient), the caller stays unresolved.
        let mut party = Party::from_raw(Some("+12065550142".into()));
        resolve_party_with(&mut party, &plan(), Some(&index()), None);
        assert_eq!((party.status, party.source), (CallerStatus::Unresolved, None));
    }

    #[test]
    fn contacts_answer_while_the_directory_is_down_and_two_contacts_are_ambiguous() {
        let mut party = Party::from_raw(Some("+12065550142".into()));
        resolve_party_with(&mut party, &plan(), Some(&Down), Some(&contacts(MARISOL)));
        assert_eq!((party.status, party.name.as_deref()), (CallerStatus::Resolved, Some("Marisol Vega")));

        let twice = format!("{MARISOL}{}", MARISOL.replace("Marisol Vega", "M. Vega (home)"));
        let mut party = Party::from_raw(Some("+12065550142".into()));
        resolve_party_with(&mut party, &plan(), None, Some(&contacts(&twice)));
        assert_eq!((party.status, party.candidates.len(), party.source), (CallerStatus::Ambiguous, 2, Some(PartySource::Contacts)));

        let mut party = Party::from_raw(Some("+12065550199".into()));
        resolve_party_with(&mut party, &plan(), None, Some(&contacts(MARISOL)));
        assert_eq!(party.status, CallerStatus::Unresolved);
        assert_eq!(party.reason.map(|r| r.tried), Some(vec!["e164 +12065550199".to_owned()]));
    }
}
