//! `AnyStore`: the store `[store] backend` chose, sled or PostgreSQL, behind the one
//! `Store` trait, so that the server is built once for either.

use chrono::{DateTime, Utc};

use super::backup::{BackupError, Spooled};
use super::{
    Anchoring, Commit, OutboxEntry, PgStore, Receipt, Sequence, SledStore, Store, StoreError,
    Versioned, WriteStats,
};
use crate::domain::anchor::{AnchorReport, AuditKey, ChainHead, PublishedHead};
use crate::domain::audit::AuditRecord;
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::grant::{Grant, GrantTally};
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::domain::request::AccessRequest;
use crate::domain::review::Campaign;

/// Calls the same method on whichever store runs.
macro_rules! each {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            AnyStore::Sled(store) => store.$method($($arg),*),
            AnyStore::Postgres(store) => store.$method($($arg),*),
        }
    };
}

pub enum AnyStore {
    Sled(SledStore),
    Postgres(PgStore),
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
        each!(self.write_backup(out))
    }

    /// The PostgreSQL store, when that is what runs.
    pub fn postgres(&self) -> Option<&PgStore> {
        match self {
            AnyStore::Postgres(store) => Some(store),
            AnyStore::Sled(_) => None,
        }
    }

    /// Where the store is, for the log: the data directory or `host:port/dbname`.
    pub fn describe(&self) -> String {
        match self {
            AnyStore::Sled(_) => "sled".to_owned(),
            AnyStore::Postgres(store) => format!("postgres {}", store.shown()),
        }
    }
}

impl Store for AnyStore {
    fn next_id(&self, seq: Sequence) -> Result<u64, StoreError> {
        each!(self.next_id(seq))
    }
    fn request(&self, id: RequestId) -> Result<Option<Versioned<AccessRequest>>, StoreError> {
        each!(self.request(id))
    }
    fn grant(&self, id: GrantId) -> Result<Option<Versioned<Grant>>, StoreError> {
        each!(self.grant(id))
    }
    fn requests_of(&self, person: &PersonId) -> Result<Vec<AccessRequest>, StoreError> {
        each!(self.requests_of(person))
    }
    fn grants_of(&self, person: &PersonId) -> Result<Vec<Grant>, StoreError> {
        each!(self.grants_of(person))
    }
    fn requests(&self, pending_only: bool, limit: usize) -> Result<Vec<AccessRequest>, StoreError> {
        each!(self.requests(pending_only, limit))
    }
    fn grants(&self, live_only: bool, limit: usize) -> Result<Vec<Grant>, StoreError> {
        each!(self.grants(live_only, limit))
    }
    fn grants_where(
        &self,
        keep: &dyn Fn(&Grant) -> bool,
        limit: usize,
    ) -> Result<Vec<Grant>, StoreError> {
        each!(self.grants_where(keep, limit))
    }
    fn grant_tally(&self) -> Result<GrantTally, StoreError> {
        each!(self.grant_tally())
    }
    fn pending_due(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, RequestId)>, StoreError> {
        each!(self.pending_due(until, limit))
    }
    fn grants_expiring(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError> {
        each!(self.grants_expiring(until, limit))
    }
    fn reviews_due(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError> {
        each!(self.reviews_due(until, limit))
    }
    fn next_review_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        each!(self.next_review_due())
    }
    fn next_pending_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        each!(self.next_pending_due())
    }
    fn warnings_due(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError> {
        each!(self.warnings_due(after, until, limit))
    }
    fn next_warning_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        each!(self.next_warning_after(after))
    }
    fn next_effect_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        each!(self.next_effect_due())
    }
    fn campaign(&self, id: CampaignId) -> Result<Option<Versioned<Campaign>>, StoreError> {
        each!(self.campaign(id))
    }
    fn campaigns(&self, open_only: bool) -> Result<Vec<Versioned<Campaign>>, StoreError> {
        each!(self.campaigns(open_only))
    }
    fn mark(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        each!(self.mark(name))
    }
    fn cards(&self, key: &CardKey) -> Result<Vec<PostedCard>, StoreError> {
        each!(self.cards(key))
    }
    fn first_delivery(&self, key: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        each!(self.first_delivery(key, until))
    }
    fn forget_deliveries(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        each!(self.forget_deliveries(now))
    }
    fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        each!(self.commit(commit))
    }
    fn audit(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        each!(self.audit(from, limit))
    }
    fn verify_audit_against(
        &self,
        published: &[PublishedHead],
    ) -> Result<AnchorReport, StoreError> {
        each!(self.verify_audit_against(published))
    }
    fn chain_head(&self) -> Result<Option<ChainHead>, StoreError> {
        each!(self.chain_head())
    }
    fn due_effects(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        each!(self.due_effects(now, limit))
    }
    fn due_effects_except(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        skip: &dyn Fn(u64) -> bool,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        each!(self.due_effects_except(now, limit, skip))
    }
    fn effects_waiting(&self, now: DateTime<Utc>) -> Result<Vec<OutboxEntry>, StoreError> {
        each!(self.effects_waiting(now))
    }
    fn next_effect_due_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        each!(self.next_effect_due_after(after))
    }
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        each!(self.outbox(limit))
    }
    fn newest_effect(&self) -> Result<Option<u64>, StoreError> {
        each!(self.newest_effect())
    }
    fn complete_effect(&self, seq: u64, then: Commit) -> Result<(), StoreError> {
        each!(self.complete_effect(seq, then))
    }
    fn retry_effect(
        &self,
        seq: u64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        each!(self.retry_effect(seq, next_attempt_at, error))
    }
    fn backup_file(&self) -> Result<Spooled, BackupError> {
        each!(self.backup_file())
    }
    fn halted(&self) -> Option<String> {
        each!(self.halted())
    }
    fn write_stats(&self) -> WriteStats {
        each!(self.write_stats())
    }
}
