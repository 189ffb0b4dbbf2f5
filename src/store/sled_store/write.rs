//! The one write path: a `Commit` applied in a single sled transaction over every tree it
//! touches — records with their version check, indexes, the audit chain and the outbox.
//! Either all of it lands or none of it does.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::keys::*;
use crate::domain::audit::AuditRecord;
use crate::domain::card::PostedCard;
use crate::domain::grant::Grant;
use crate::domain::request::AccessRequest;
use crate::domain::review::Campaign;
use crate::store::{Commit, Expect, OutboxEntry, Receipt, RequestWrite, StoreError};

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// The trees of one transaction, by name.
pub(super) struct Tx<'a> {
    pub requests: &'a TransactionalTree,
    pub requests_by_person: &'a TransactionalTree,
    pub pending_by_due: &'a TransactionalTree,
    pub grants: &'a TransactionalTree,
    pub grants_by_expiry: &'a TransactionalTree,
    pub grants_by_person: &'a TransactionalTree,
    pub audit: &'a TransactionalTree,
    pub outbox: &'a TransactionalTree,
    pub outbox_keys: &'a TransactionalTree,
    pub campaigns: &'a TransactionalTree,
    pub reviews_by_due: &'a TransactionalTree,
    pub cards: &'a TransactionalTree,
    pub meta: &'a TransactionalTree,
    pub outbox_by_due: &'a TransactionalTree,
    pub warnings_by_due: &'a TransactionalTree,
}

/// A commit waiting for the writer lock. Whichever writer takes the lock applies every
/// commit queued by then, in one transaction (see [`super::SledStore::apply`]).
pub(super) struct Job {
    commit: Commit,
    done: Option<u64>,
    queued_at: DateTime<Utc>,
    result: Mutex<Option<Result<Receipt, StoreError>>>,
}

impl Job {
    pub(super) fn new(commit: Commit, done: Option<u64>) -> Arc<Self> {
        // Effects are due as soon as they are queued: at the time of the change when it says
        // (the engine's clock), else now.
        let queued_at = commit.events.first().map_or_else(Utc::now, |e| e.at);
        Arc::new(Job {
            commit,
            done,
            queued_at,
            result: Mutex::new(None),
        })
    }

    fn finish(&self, result: Result<Receipt, StoreError>) {
        *self.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
    }

    pub(super) fn take(&self) -> Option<Result<Receipt, StoreError>> {
        self.result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl super::SledStore {
    /// Applies `commit`, first removing the completed outbox entry `done` if given, and
    /// returns once it is durable.
    ///
    /// Commits are applied one transaction at a time under `writer`, so that the audit chain
    /// grows in commit order. Writers that arrive while the lock is held queue their commit;
    /// the next to take the lock applies all of them in one transaction (a commit that finds
    /// a record changed is left out of it with `Conflict`, as it would be alone), and the
    /// others find their result done when they get the lock. Under load, one transaction and
    /// one lock hand-off then serve many commits, and one flush covers them all.
    pub(super) fn apply(&self, commit: Commit, done: Option<u64>) -> Result<Receipt, StoreError> {
        let job = Job::new(commit, done);
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(job.clone());
        let guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        // Still unapplied: it is in the queue, since only a writer holding the lock empties
        // it, and that writer records every result before letting go.
        let result = match job.take() {
            Some(result) => result,
            None => {
                let batch = std::mem::take(
                    &mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner),
                );
                self.apply_batch(&batch);
                // Only a writer that panicked while applying it can have lost it.
                job.take().unwrap_or_else(|| {
                    Err(StoreError::Sled(sled::Error::ReportableBug(
                        "a commit was lost by a writer that panicked while applying it".to_owned(),
                    )))
                })
            }
        };
        drop(guard);
        let receipt = result?;
        self.durable()?;
        Ok(receipt)
    }

    /// Applies `batch` and records each job's result. Together in one transaction when they
    /// can be; when that fails (a record that cannot be read or written), each alone, so that
    /// one bad commit fails only itself.
    pub(super) fn apply_batch(&self, batch: &[Arc<Job>]) {
        if let [job] = batch {
            let result = self.in_transaction(|tx| {
                if let Some(seq) = job.done {
                    tx.remove_effect(seq)?;
                }
                tx.write(&job.commit, job.queued_at)
            });
            job.finish(result);
            return;
        }
        let together = self.in_transaction(|tx| {
            let mut results = Vec::with_capacity(batch.len());
            for job in batch {
                if tx.conflicts(&job.commit, job.done)? {
                    results.push(Err(StoreError::Conflict));
                    continue;
                }
                if let Some(seq) = job.done {
                    tx.remove_effect(seq)?;
                }
                results.push(Ok(tx.write(&job.commit, job.queued_at)?));
            }
            Ok(results)
        });
        match together {
            Ok(results) => {
                for (job, result) in batch.iter().zip(results) {
                    job.finish(result);
                }
            }
            Err(_) => {
                for job in batch {
                    self.apply_batch(std::slice::from_ref(job));
                }
            }
        }
    }

    /// Runs `work` in one transaction over every tree a commit writes.
    fn in_transaction<T>(&self, work: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, StoreError> {
        let t = &self.trees;
        let trees = [
            &t.requests,
            &t.requests_by_person,
            &t.pending_by_due,
            &t.grants,
            &t.grants_by_expiry,
            &t.grants_by_person,
            &t.audit,
            &t.outbox,
            &t.outbox_keys,
            &t.campaigns,
            &t.reviews_by_due,
            &t.cards,
            &t.meta,
            &t.outbox_by_due,
            &t.warnings_by_due,
        ];
        trees[..]
            .transaction(|view| {
                let [r, rp, pd, g, ge, gp, a, o, ok, c, rd, cd, m, od, wd] = &view[..] else {
                    unreachable!("one view per tree of the transaction");
                };
                work(&Tx {
                    requests: r,
                    requests_by_person: rp,
                    pending_by_due: pd,
                    grants: g,
                    grants_by_expiry: ge,
                    grants_by_person: gp,
                    audit: a,
                    outbox: o,
                    outbox_keys: ok,
                    campaigns: c,
                    reviews_by_due: rd,
                    cards: cd,
                    meta: m,
                    outbox_by_due: od,
                    warnings_by_due: wd,
                })
            })
            .map_err(from_tx)
    }
}

/// Unwraps an aborted transaction into the store error it aborted with.
pub(super) fn from_tx(err: TransactionError<StoreError>) -> StoreError {
    match err {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

pub(super) fn fail<T>(err: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(err))
}

/// The version a write produces, or `Conflict` when the stored one is not what was expected.
fn next_version(expect: Expect, stored: Option<u64>) -> TxResult<u64> {
    match (expect, stored) {
        (Expect::New, None) => Ok(1),
        (Expect::Version(v), Some(s)) if v == s => Ok(v + 1),
        _ => fail(StoreError::Conflict),
    }
}

/// Reads a u64 counter of `meta` (0 when absent).
pub(super) fn read_counter(meta: &TransactionalTree, key: &[u8]) -> TxResult<u64> {
    counter(key, meta.get(key)?.as_deref()).or_else(fail)
}

fn get_decoded<T: serde::de::DeserializeOwned>(
    tree: &TransactionalTree,
    name: &str,
    key: &[u8],
) -> TxResult<Option<T>> {
    match tree.get(key)? {
        None => Ok(None),
        Some(bytes) => decode(name, key, &bytes).map(Some).or_else(fail),
    }
}

fn put<T: serde::Serialize>(
    tree: &TransactionalTree,
    name: &str,
    key: &[u8],
    value: &T,
) -> TxResult<()> {
    let bytes = encode(name, key, value).or_else(fail)?;
    tree.insert(key, bytes)?;
    Ok(())
}

/// Only the version of a stored record, without reading the record itself.
#[derive(serde::Deserialize)]
struct VersionOnly {
    v: u64,
}

impl Tx<'_> {
    /// Whether `commit` would fail with `Conflict` now: a record it expects is at another
    /// version, or the effect it completes is no longer queued. Checked before any of its
    /// writes, so that a commit left out of a batch leaves nothing behind.
    fn conflicts(&self, commit: &Commit, done: Option<u64>) -> TxResult<bool> {
        if let Some(seq) = done
            && self.outbox.get(id_key(seq))?.is_none()
        {
            return Ok(true);
        }
        let stale =
            |tree: &TransactionalTree, name: &str, id: u64, expect: Expect| -> TxResult<bool> {
                let key = id_key(id);
                let stored: Option<VersionOnly> = get_decoded(tree, name, &key)?;
                Ok(next_version(expect, stored.map(|s| s.v)).is_err())
            };
        for write in &commit.requests {
            if stale(self.requests, REQUESTS, write.request.id.0, write.expect)? {
                return Ok(true);
            }
        }
        for (grant, expect) in &commit.grants {
            if stale(self.grants, GRANTS, grant.id.0, *expect)? {
                return Ok(true);
            }
        }
        for (campaign, expect) in &commit.campaigns {
            if stale(self.campaigns, CAMPAIGNS, campaign.id.0, *expect)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn write(&self, commit: &Commit, queued_at: DateTime<Utc>) -> TxResult<Receipt> {
        for write in &commit.requests {
            self.write_request(write)?;
        }
        for (grant, expect) in &commit.grants {
            self.write_grant(grant, *expect)?;
        }
        for (campaign, expect) in &commit.campaigns {
            let key = id_key(campaign.id.0);
            let old: Option<Stored<Campaign>> = get_decoded(self.campaigns, CAMPAIGNS, &key)?;
            let v = next_version(*expect, old.map(|o| o.v))?;
            put(
                self.campaigns,
                CAMPAIGNS,
                &key,
                &Stored {
                    v,
                    due: None,
                    r: campaign,
                },
            )?;
        }
        for (about, card) in &commit.cards {
            let key = card_key(about);
            let mut posted: Vec<PostedCard> =
                get_decoded(self.cards, CARDS, &key)?.unwrap_or_default();
            // One effect posts one card per recipient on each platform that reaches them.
            let known = |p: &PostedCard| {
                p.effect_key == card.effect_key
                    && p.recipient == card.recipient
                    && p.platform == card.platform
            };
            if !posted.iter().any(known) {
                posted.push(card.clone());
            }
            put(self.cards, CARDS, &key, &posted)?;
        }
        for (name, at) in &commit.marks {
            put(self.meta, META, &mark_key(name), at)?;
        }
        let audit_seqs = self.append_events(commit)?;
        self.queue_effects(commit, queued_at)?;
        Ok(Receipt { audit_seqs })
    }

    fn write_request(&self, write: &RequestWrite) -> TxResult<()> {
        let request = &write.request;
        let key = id_key(request.id.0);
        let old: Option<Stored<AccessRequest>> = get_decoded(self.requests, REQUESTS, &key)?;
        let v = next_version(write.expect, old.as_ref().map(|o| o.v))?;
        match &old {
            Some(old) => {
                if let Some(due) = old.due {
                    self.pending_by_due
                        .remove(&time_key(due, request.id.0)[..])?;
                }
            }
            None => {
                self.requests_by_person
                    .insert(person_key(&request.requester, request.id.0), EMPTY)?;
            }
        }
        let due = write.due.map(millis);
        if let Some(due) = due {
            self.pending_by_due
                .insert(&time_key(due, request.id.0)[..], EMPTY)?;
        }
        put(
            self.requests,
            REQUESTS,
            &key,
            &Stored { v, due, r: request },
        )
    }

    fn write_grant(&self, grant: &Grant, expect: Expect) -> TxResult<()> {
        let key = id_key(grant.id.0);
        let old: Option<Stored<Grant>> = get_decoded(self.grants, GRANTS, &key)?;
        let v = next_version(expect, old.as_ref().map(|o| o.v))?;
        match &old {
            Some(old) => {
                if let Some(expires_at) = old.r.expires_at {
                    self.grants_by_expiry
                        .remove(&time_key(millis(expires_at), grant.id.0)[..])?;
                }
                if let Some(reminder) = old.r.review_reminder() {
                    self.reviews_by_due
                        .remove(&time_key(millis(reminder), grant.id.0)[..])?;
                }
                if let Some(expires_at) = old.r.warning_owed() {
                    self.warnings_by_due
                        .remove(&time_key(millis(expires_at), grant.id.0)[..])?;
                }
            }
            None => {
                self.grants_by_person
                    .insert(person_key(&grant.person, grant.id.0), EMPTY)?;
            }
        }
        if let (true, Some(expires_at)) = (grant.state.is_live(), grant.expires_at) {
            self.grants_by_expiry
                .insert(&time_key(millis(expires_at), grant.id.0)[..], EMPTY)?;
        }
        if let Some(reminder) = grant.review_reminder() {
            self.reviews_by_due
                .insert(&time_key(millis(reminder), grant.id.0)[..], EMPTY)?;
        }
        if let Some(expires_at) = grant.warning_owed() {
            self.warnings_by_due
                .insert(&time_key(millis(expires_at), grant.id.0)[..], EMPTY)?;
        }
        put(
            self.grants,
            GRANTS,
            &key,
            &Stored {
                v,
                due: None,
                r: grant,
            },
        )
    }

    fn append_events(&self, commit: &Commit) -> TxResult<Vec<u64>> {
        if commit.events.is_empty() {
            return Ok(Vec::new());
        }
        let mut head: AuditHead =
            get_decoded(self.meta, META, AUDIT_HEAD_KEY)?.unwrap_or_else(AuditHead::genesis);
        let mut seqs = Vec::with_capacity(commit.events.len());
        for event in &commit.events {
            let seq = head.seq + 1;
            let record = AuditRecord::chain(seq, &head.hash, event.clone());
            put(self.audit, AUDIT, &id_key(seq), &record)?;
            head = AuditHead {
                seq,
                hash: record.hash,
            };
            seqs.push(seq);
        }
        put(self.meta, META, AUDIT_HEAD_KEY, &head)?;
        Ok(seqs)
    }

    fn queue_effects(&self, commit: &Commit, queued_at: DateTime<Utc>) -> TxResult<()> {
        if commit.effects.is_empty() {
            return Ok(());
        }
        let mut last = read_counter(self.meta, LAST_OUTBOX_SEQ)?;
        for effect in &commit.effects {
            let seq = last + 1;
            let key = effect.idempotency_key(seq);
            if self.outbox_keys.get(key.as_bytes())?.is_some() {
                continue;
            }
            let entry = OutboxEntry {
                seq,
                key,
                effect: effect.clone(),
                attempts: 0,
                next_attempt_at: queued_at,
                last_error: None,
            };
            put(self.outbox, OUTBOX, &id_key(seq), &entry)?;
            self.outbox_by_due
                .insert(&time_key(millis(queued_at), seq)[..], EMPTY)?;
            self.outbox_keys
                .insert(entry.key.as_bytes(), &id_key(seq)[..])?;
            last = seq;
        }
        self.meta.insert(LAST_OUTBOX_SEQ, &id_key(last)[..])?;
        Ok(())
    }

    /// Removes a completed effect and its key; `Conflict` when it is no longer queued
    /// (another worker completed it), so its outcome is not recorded twice.
    fn remove_effect(&self, seq: u64) -> TxResult<()> {
        let key = id_key(seq);
        let Some(entry) = get_decoded::<OutboxEntry>(self.outbox, OUTBOX, &key)? else {
            return fail(StoreError::Conflict);
        };
        self.outbox.remove(&key[..])?;
        self.outbox_keys.remove(entry.key.as_bytes())?;
        self.outbox_by_due
            .remove(&time_key(millis(entry.next_attempt_at), seq)[..])?;
        Ok(())
    }
}
