//! A directory whose index can be replaced while lookups run: the LDAP refresh builds a new
//! [`DirectoryIndex`] off to the side and swaps it in; a lookup in flight keeps the index it
//! started with (an `Arc`), so it never sees half of a sync.
//!
//! Consumes built indexes; implements [`Directory`] by delegating to the current one. Never
//! fails by itself (a poisoned lock still holds a complete index, which is used).

use std::sync::{Arc, PoisonError, RwLock};

use super::{Directory, DirectoryError, DirectoryIndex, Lookup, Steps};
use crate::event::{Party, Person, Recipient, Unmatched};

/// The current index, replaceable atomically.
#[derive(Debug)]
pub(crate) struct LiveDirectory {
    current: RwLock<Arc<DirectoryIndex>>,
}

impl LiveDirectory {
    pub fn new(index: DirectoryIndex) -> LiveDirectory {
        LiveDirectory { current: RwLock::new(Arc::new(index)) }
    }

    /// The index lookups use now.
    pub fn current(&self) -> Arc<DirectoryIndex> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `index` in place for every later lookup; returns the one it replaces.
    pub fn replace(&self, index: DirectoryIndex) -> Arc<DirectoryIndex> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, Arc::new(index))
    }
}

impl Directory for LiveDirectory {
    fn lookup(&self, party: &Party) -> Result<Lookup, DirectoryError> {
        self.current().lookup(party)
    }

    fn lookup_steps(&self, party: &Party, steps: Steps) -> Result<Lookup, DirectoryError> {
        self.current().lookup_steps(party, steps)
    }

    fn find_recipient(&self, recipient: &Recipient) -> Result<Option<Person>, DirectoryError> {
        self.current().find_recipient(recipient)
    }

    fn explain_unresolved(&self, party: &Party) -> Unmatched {
        self.current().explain_unresolved(party)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Entry;
    use super::*;
    use crate::phone::{self, DialPlan};

    #[test]
    fn a_replaced_index_answers_later_lookups_and_earlier_holders_keep_theirs() {
        let plan = DialPlan::new("US", None, 4, 7).expect("US");
        let person = |name: &str| {
            let mut e = Entry::new(format!("cn={name}"));
            e.push_text("displayName", name);
            e.push_text("telephoneNumber", "+1 425 555 0100");
            e
        };
        let live = LiveDirectory::new(DirectoryIndex::build([person("Olivia Chen")], &plan));
        let mut party = crate::event::Party::from_raw(Some("+14255550100".into()));
        phone::normalize_party(&mut party, &plan);
        let name = |lookup: Lookup| match lookup {
            Lookup::Resolved(p, _) => p.display_name,
            _ => None,
        };
        let before = live.current();
        let old = live.replace(DirectoryIndex::build([person("Darnell Brooks")], &plan));
        assert!(Arc::ptr_eq(&before, &old));
        assert_eq!(name(live.lookup(&party).expect("in memory")).as_deref(), Some("Darnell Brooks"));
        assert_eq!(name(before.lookup(&party).expect("in memory")).as_deref(), Some("Olivia Chen"));
    }
}
