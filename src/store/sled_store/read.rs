//! Read helpers shared by the `Store` methods: versioned records, person indexes, newest-first
//! listings and time-index range scans. Reads take no lock; sled gives each a consistent view
//! of a single key. A reader may see a batch half applied (see `journal`), but a record is
//! always written before the index entries that point at it, and readers skip an index entry
//! whose record has gone.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::SledStore;
use super::keys::*;
use crate::domain::ids::PersonId;
use crate::store::{OutboxEntry, StoreError, Versioned};

impl SledStore {
    pub(super) fn versioned<R: DeserializeOwned>(
        tree: &sled::Tree,
        name: &str,
        id: u64,
    ) -> Result<Option<Versioned<R>>, StoreError> {
        let key = id_key(id);
        match tree.get(key)? {
            None => Ok(None),
            Some(bytes) => {
                let stored: Stored<R> = decode(name, &key, &bytes)?;
                Ok(Some(Versioned {
                    value: stored.r,
                    version: stored.v,
                }))
            }
        }
    }

    /// The records a person index points at, newest (highest id) first.
    pub(super) fn of_person<R: DeserializeOwned>(
        index: &sled::Tree,
        index_name: &str,
        records: &sled::Tree,
        name: &str,
        person: &PersonId,
    ) -> Result<Vec<R>, StoreError> {
        let mut found = Vec::new();
        for item in index.scan_prefix(person_prefix(person)).rev() {
            let (key, _) = item?;
            let id = person_key_id(index_name, &key)?;
            if let Some(v) = Self::versioned::<R>(records, name, id)? {
                found.push(v.value);
            }
        }
        Ok(found)
    }

    /// Records newest first that pass `keep`, at most `limit`.
    pub(super) fn newest<R: DeserializeOwned>(
        tree: &sled::Tree,
        name: &str,
        limit: usize,
        keep: impl Fn(&R) -> bool,
    ) -> Result<Vec<R>, StoreError> {
        let mut found = Vec::new();
        for item in tree.iter().rev() {
            if found.len() >= limit {
                break;
            }
            let (key, bytes) = item?;
            let stored: Stored<R> = decode(name, &key, &bytes)?;
            if keep(&stored.r) {
                found.push(stored.r);
            }
        }
        Ok(found)
    }

    /// Entries of a time index up to `until` inclusive, earliest first.
    pub(super) fn due_until(
        tree: &sled::Tree,
        name: &str,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, u64)>, StoreError> {
        tree.range(..=time_key_upper(until))
            .take(limit)
            .map(|item| split_time_key(name, &item?.0))
            .collect()
    }

    /// The time of a time index's first entry strictly after `after`, or of its very first
    /// entry when `after` is `None`.
    pub(super) fn first_time(
        tree: &sled::Tree,
        name: &str,
        after: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let first = match after {
            None => tree.first()?,
            Some(after) => tree.range(time_key_upper(after)..).next().transpose()?,
        };
        first
            .map(|(key, _)| Ok(split_time_key(name, &key)?.0))
            .transpose()
    }

    /// The earliest `next_attempt_at` in the outbox that passes `keep`, read from every entry.
    pub(super) fn first_effect_due(
        &self,
        keep: impl Fn(DateTime<Utc>) -> bool,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut first: Option<DateTime<Utc>> = None;
        for entry in self.outbox_entries() {
            let at = entry?.next_attempt_at;
            if keep(at) && first.is_none_or(|first| at < first) {
                first = Some(at);
            }
        }
        Ok(first)
    }

    pub(super) fn outbox_entries(
        &self,
    ) -> impl Iterator<Item = Result<OutboxEntry, StoreError>> + '_ {
        self.trees.outbox.iter().map(|item| {
            let (key, bytes) = item?;
            decode(OUTBOX, &key, &bytes)
        })
    }

    pub(super) fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        match self.trees.meta.get(AUDIT_HEAD_KEY)? {
            None => Ok(None),
            Some(bytes) => decode(META, AUDIT_HEAD_KEY, &bytes).map(Some),
        }
    }
}
