//! `AnyStore`: the store `[store] backend` chose, sled or PostgreSQL. The engine holds
//! either as an `Arc<dyn Store>` ([`AnyStore::shared`]); what remains here is what only the
//! concrete store offers: anchoring, a backup written to any `Write`, and the PostgreSQL
//! store's lease for leadership.

use std::ops::Deref;
use std::sync::Arc;

use super::backup::BackupError;
use super::{Anchoring, PgStore, SledStore, Store, StoreError};
use crate::domain::anchor::AuditKey;

pub enum AnyStore {
    Sled(SledStore),
    Postgres(PgStore),
}

/// Either store is a [`Store`]: `any_store.commit(…)` calls the one that runs.
impl Deref for AnyStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        match self {
            AnyStore::Sled(store) => store,
            AnyStore::Postgres(store) => store,
        }
    }
}

impl AnyStore {
    /// Anchors the audit chain with `key` from now on, and says what was found.
    pub fn anchor_with(&self, key: AuditKey) -> Result<Anchoring, StoreError> {
        match self {
            AnyStore::Sled(store) => store.anchor_with(key),
            AnyStore::Postgres(store) => store.anchor_with(key),
        }
    }

    /// Everything stored, in one consistent view, written to `out` as a backup; the output,
    /// the header written and the number of entries.
    pub fn write_backup<W: std::io::Write>(
        &self,
        out: W,
    ) -> Result<(W, super::backup::Header, usize), BackupError> {
        match self {
            AnyStore::Sled(store) => store.write_backup(out),
            AnyStore::Postgres(store) => store.write_backup(out),
        }
    }

    /// The PostgreSQL store, when that is what runs.
    pub fn postgres(&self) -> Option<&PgStore> {
        match self {
            AnyStore::Postgres(store) => Some(store),
            AnyStore::Sled(_) => None,
        }
    }

    /// Where the store is, for the log: `sled` or `postgres host:port/dbname`.
    pub fn describe(&self) -> String {
        match self {
            AnyStore::Sled(_) => "sled".to_owned(),
            AnyStore::Postgres(store) => format!("postgres {}", store.shown()),
        }
    }

    /// The store for the engine, and the PostgreSQL store again for the lease when that is
    /// what runs.
    pub fn shared(self) -> (Arc<dyn Store>, Option<Arc<PgStore>>) {
        match self {
            AnyStore::Sled(store) => (Arc::new(store), None),
            AnyStore::Postgres(store) => {
                let store = Arc::new(store);
                (store.clone(), Some(store))
            }
        }
    }
}
