//! Lists a page at a time, for the web portal: a page goes on beyond the last row the one
//! before it showed, reading the tree or index from there rather than from its end.

use std::ops::Bound;

use super::SledStore;
use super::keys::{
    GRANTS, GRANTS_BY_EXPIRY, GRANTS_BY_PERSON, GRANTS_LIVE, PENDING_BY_APPROVER, REQUESTS,
    REQUESTS_BY_PERSON, id_key, person_key, person_key_id, person_prefix, seq_of, split_time_key,
    time_key,
};
use crate::domain::grant::Grant;
use crate::domain::request::AccessRequest;
use crate::store::{GrantList, RequestList, StoreError, Window};

impl SledStore {
    pub(super) fn requests_in_window(
        &self,
        list: &RequestList,
        window: Window,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let (index, name, person) = match list {
            RequestList::Of(person) => (&self.trees.requests_by_person, REQUESTS_BY_PERSON, person),
            RequestList::AwaitingApprover(person) => {
                (&self.trees.pending_by_approver, PENDING_BY_APPROVER, person)
            }
        };
        let after = window.after.map(|m| person_key(person, m.id));
        let mut found = Vec::new();
        for key in keys_in_window(index, &person_prefix(person), after, window.ascending) {
            if found.len() >= window.limit {
                break;
            }
            let id = person_key_id(name, &key?)?;
            let Some(request) =
                Self::versioned::<AccessRequest>(&self.trees.requests, REQUESTS, id)?
            else {
                continue;
            };
            // A reader may see a batch half applied: the record is what counts.
            let listed = match list {
                RequestList::Of(_) => true,
                RequestList::AwaitingApprover(person) => {
                    request.value.awaiting().any(|a| a == person)
                }
            };
            if listed {
                found.push(request.value);
            }
        }
        Ok(found)
    }

    pub(super) fn grants_in_window(
        &self,
        list: &GrantList,
        window: Window,
    ) -> Result<Vec<Grant>, StoreError> {
        let mut found = Vec::new();
        let (keys, keyed) = match list {
            GrantList::Of(person) => {
                let after = window.after.map(|m| person_key(person, m.id));
                let keys = keys_in_window(
                    &self.trees.grants_by_person,
                    &person_prefix(person),
                    after,
                    window.ascending,
                );
                (keys, Keyed::Person)
            }
            GrantList::Live => {
                let after = window.after.map(|m| id_key(m.id).to_vec());
                let keys = keys_in_window(&self.trees.grants_live, &[], after, window.ascending);
                (keys, Keyed::Id)
            }
            GrantList::LiveByEnd => {
                let after = window.after.map(|m| time_key(m.at_ms, m.id).to_vec());
                let keys =
                    keys_in_window(&self.trees.grants_by_expiry, &[], after, window.ascending);
                (keys, Keyed::End)
            }
        };
        for key in keys {
            if found.len() >= window.limit {
                break;
            }
            let key = key?;
            let id = match keyed {
                Keyed::End => split_time_key(GRANTS_BY_EXPIRY, &key)?.1,
                Keyed::Person => person_key_id(GRANTS_BY_PERSON, &key)?,
                Keyed::Id => seq_of(GRANTS_LIVE, &key)?,
            };
            let Some(grant) = Self::versioned::<Grant>(&self.trees.grants, GRANTS, id)? else {
                continue;
            };
            // The index entry of a grant that ended may outlive it for the length of a batch.
            if keyed == Keyed::Person || grant.value.is_live() {
                found.push(grant.value);
            }
        }
        Ok(found)
    }
}

/// What a key of the tree read holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keyed {
    Id,
    Person,
    End,
}

/// The keys of `tree` that start with `prefix`, strictly beyond `after` in the direction
/// asked, read lazily.
fn keys_in_window(
    tree: &sled::Tree,
    prefix: &[u8],
    after: Option<Vec<u8>>,
    ascending: bool,
) -> Box<dyn Iterator<Item = Result<sled::IVec, sled::Error>>> {
    let start = Bound::Included(prefix.to_vec());
    let end = match prefix_end(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let range = match (after, ascending) {
        (Some(after), true) => tree.range((Bound::Excluded(after), end)),
        (Some(after), false) => tree.range((start, Bound::Excluded(after))),
        (None, _) => tree.range((start, end)),
    };
    let keys = range.map(|item| item.map(|(key, _)| key));
    match ascending {
        true => Box::new(keys),
        false => Box::new(keys.rev()),
    }
}

/// The least key above every key that starts with `prefix`; `None` for the empty prefix
/// (or one of all 0xff bytes), which nothing bounds.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
