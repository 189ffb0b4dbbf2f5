//! The one write path: commits applied under one writer lock, a batch at a time, each batch
//! made atomic by the journal (see `journal`) — records with their version check, indexes,
//! the audit chain and the outbox. Either all of a commit lands or none of it does.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sled::IVec;

use super::durable::micros;
use super::journal::{self, JOURNAL_KEY, Staged};
use super::keys::*;
use super::{SledStore, Trees};
use crate::domain::audit::AuditRecord;
use crate::domain::card::PostedCard;
use crate::domain::grant::{Grant, GrantTally};
use crate::domain::ids::PersonId;
use crate::domain::request::AccessRequest;
use crate::domain::review::Campaign;
use crate::store::{Commit, Expect, OutboxEntry, Receipt, RequestWrite, StoreError};

/// What a writer asks for.
pub(super) enum Work {
    /// Apply `commit`, first removing the completed outbox entry `done` if given.
    Commit { commit: Commit, done: Option<u64> },
    /// Try the outbox entry `seq` again at `at`, after it failed with `error`.
    Retry {
        seq: u64,
        at: DateTime<Utc>,
        error: String,
    },
}

/// What the writer applied, for [`crate::store::WriteStats`].
#[derive(Default)]
pub(super) struct Applied {
    commits: AtomicU64,
    batches: AtomicU64,
    busy_micros: AtomicU64,
}

impl Applied {
    fn count(&self, commits: usize, took: Duration) {
        self.commits.fetch_add(commits as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.busy_micros.fetch_add(micros(took), Ordering::Relaxed);
    }

    /// Commits and batches applied, and the time applying them took.
    pub(super) fn read(&self) -> (u64, u64, Duration) {
        (
            self.commits.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed),
            Duration::from_micros(self.busy_micros.load(Ordering::Relaxed)),
        )
    }
}

/// Work waiting for the writer. Whichever writer takes the staging lock stages all the work
/// queued by then, as one batch (see [`SledStore::apply`]).
pub(super) struct Job {
    work: Work,
    queued_at: DateTime<Utc>,
    /// Set once a writer has taken the job into its batch.
    claimed: AtomicBool,
    outcome: Mutex<Outcome>,
    ended: Condvar,
}

/// What became of a job: its result once known, and the last outbox seq landed with it.
#[derive(Default)]
struct Outcome {
    result: Option<Result<Receipt, StoreError>>,
    landed: u64,
    ended: bool,
}

impl Job {
    pub(super) fn new(work: Work) -> Arc<Self> {
        // Effects are due as soon as they are queued: at the time of the change (the engine's
        // clock, never the wall clock, which a test's clock may be far from). A commit that
        // does not say when (a store test's) is due at once.
        let queued_at = match &work {
            Work::Commit { commit, .. } => commit
                .events
                .first()
                .map(|e| e.at)
                .or(commit.at)
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            Work::Retry { at, .. } => *at,
        };
        Arc::new(Job {
            work,
            queued_at,
            claimed: AtomicBool::new(false),
            outcome: Mutex::new(Outcome::default()),
            ended: Condvar::new(),
        })
    }

    /// A commit, for tests of batches.
    #[cfg(test)]
    pub(super) fn commit(commit: Commit) -> Arc<Self> {
        Self::new(Work::Commit { commit, done: None })
    }

    /// Stages the job's writes in `tx`; an error leaves the job out of the batch.
    fn stage(&self, tx: &mut Tx<'_>) -> Result<Receipt, StoreError> {
        match &self.work {
            Work::Commit { commit, done } => {
                if let Some(seq) = done {
                    tx.remove_effect(*seq)?;
                }
                tx.write(commit, self.queued_at)
            }
            Work::Retry { seq, at, error } => {
                tx.retry_effect(*seq, *at, error)?;
                Ok(Receipt::default())
            }
        }
    }

    /// Gives the job its result, `landed` being the last outbox seq on the trees by then,
    /// and wakes whoever waits for it.
    fn finish(&self, result: Result<Receipt, StoreError>, landed: u64) {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        *outcome = Outcome {
            result: Some(result),
            landed,
            ended: true,
        };
        self.ended.notify_all();
    }

    /// Waits until the job has its result; the result and the outbox seq landed with it.
    fn wait(&self) -> (Result<Receipt, StoreError>, u64) {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        while !outcome.ended {
            outcome = self
                .ended
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let result = outcome.result.take().unwrap_or_else(|| {
            Err(StoreError::Sled(sled::Error::ReportableBug(
                "a commit's result was taken twice".to_owned(),
            )))
        });
        (result, outcome.landed)
    }

    /// The job's result, once it has one (for tests of batches).
    #[cfg(test)]
    pub(super) fn take(&self) -> Option<Result<Receipt, StoreError>> {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .result
            .take()
    }
}

/// Gives every job its result even when a writer panics while it has them, so that nobody
/// waits forever for a job its writer dropped.
struct Finishing(Vec<Arc<Job>>);

impl Drop for Finishing {
    fn drop(&mut self) {
        for job in &self.0 {
            let ended = job
                .outcome
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .ended;
            if !ended {
                job.finish(
                    Err(StoreError::Sled(sled::Error::ReportableBug(
                        "a commit was lost by a writer that panicked while applying it".to_owned(),
                    ))),
                    0,
                );
            }
        }
    }
}

/// One part of a staged batch, with the jobs whose writes it holds and their receipts.
pub(super) type Part<'a> = (Arc<Staged>, Vec<(&'a Arc<Job>, Receipt)>);

/// Both writer locks: no batch is being staged or landing, and every batch staged has
/// landed whole.
pub(super) struct Quiet<'a> {
    _stager: MutexGuard<'a, ()>,
    _lander: MutexGuard<'a, ()>,
}

impl SledStore {
    /// Does `work` and returns once it is durable.
    ///
    /// Batches are staged one at a time under the staging lock, so that the audit chain
    /// grows in commit order, and land one at a time under the landing lock, in the order
    /// they were staged. Writers that arrive while a batch is being staged queue their
    /// work; the next to take the staging lock stages all of it in one batch (a commit that
    /// finds a record changed is left out of it with `Conflict`, as it would be alone), and
    /// the others wait for their result. A batch is staged on top of the one still landing
    /// (see [`Tx::get`]), so that one core stages while another lands. Under load, one
    /// journal write serves many commits, and one flush covers them all.
    pub(super) fn apply(&self, work: Work) -> Result<Receipt, StoreError> {
        let mut results = self.apply_all(vec![work]);
        results.pop().unwrap_or_else(|| {
            Err(StoreError::Sled(sled::Error::ReportableBug(
                "a write gave no result".to_owned(),
            )))
        })
    }

    /// Does every one of `works`, each succeeding or failing alone as [`SledStore::apply`]
    /// would, in one batch (with whatever else is queued) and one flush; their results, in
    /// order, once they are durable.
    pub(super) fn apply_all(&self, works: Vec<Work>) -> Vec<Result<Receipt, StoreError>> {
        let jobs: Vec<Arc<Job>> = works.into_iter().map(Job::new).collect();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(jobs.iter().cloned());
        let unclaimed = || jobs.iter().any(|job| !job.claimed.load(Ordering::Acquire));
        if unclaimed() {
            let stager = self.stager.lock().unwrap_or_else(PoisonError::into_inner);
            // Any still unclaimed is in the queue, since only a writer holding the staging
            // lock empties it.
            if unclaimed() {
                let batch = std::mem::take(
                    &mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner),
                );
                for job in &batch {
                    job.claimed.store(true, Ordering::Release);
                }
                let finishing = Finishing(batch);
                self.stage_and_land(&finishing.0, stager);
            }
        }
        let mut landed = 0;
        let results: Vec<_> = jobs
            .iter()
            .map(|job| {
                let (result, at) = job.wait();
                landed = landed.max(at);
                result
            })
            .collect();
        let durable = self.durable(landed);
        results
            .into_iter()
            .map(|result| {
                let receipt = result?;
                match &durable {
                    Ok(()) => Ok(receipt),
                    Err(e) => Err(same_failure(e)),
                }
            })
            .collect()
    }

    /// Both writer locks, for a reader that needs every batch staged to have landed whole
    /// (the audit head, a backup).
    pub(super) fn quiet(&self) -> Quiet<'_> {
        let stager = self.stager.lock().unwrap_or_else(PoisonError::into_inner);
        let lander = self.lander.lock().unwrap_or_else(PoisonError::into_inner);
        Quiet {
            _stager: stager,
            _lander: lander,
        }
    }

    /// Applies `batch` and records each job's result, staging and landing it in one go (for
    /// tests of batches).
    #[cfg(test)]
    pub(super) fn apply_batch(&self, batch: &[Arc<Job>]) {
        let stager = self.stager.lock().unwrap_or_else(PoisonError::into_inner);
        self.stage_and_land(batch, stager);
    }

    /// Stages `batch` under the staging lock `stager`, then lands it under the landing lock,
    /// letting the next writer stage as soon as this batch is handed to the landing lock.
    fn stage_and_land(&self, batch: &[Arc<Job>], stager: MutexGuard<'_, ()>) {
        let started = Instant::now();
        let parts = self.stage_batch(batch);
        let staging = started.elapsed();
        let lander = self.lander.lock().unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        // The batch before this one has landed; this one is what the next stages on top of.
        *self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            parts.iter().map(|(staged, _)| staged.clone()).collect();
        drop(stager);
        for (staged, jobs) in parts {
            self.land_jobs(&staged, jobs);
        }
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        drop(lander);
        self.applied.count(batch.len(), staging + started.elapsed());
    }

    /// Stages each job of `batch` on top of the jobs before it, and of the batch still
    /// landing; the parts to land, in order. A job that fails is left out and fails alone.
    pub(super) fn stage_batch<'a>(&self, batch: &'a [Arc<Job>]) -> Vec<Part<'a>> {
        let mut below: Vec<Arc<Staged>> = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut parts = Vec::new();
        let mut staged = Staged::default();
        let mut landing = Vec::new();
        for job in batch {
            if let Err(e) = self.check_not_halted() {
                job.finish(Err(e), 0);
                continue;
            }
            let mut tx = Tx {
                trees: &self.trees,
                below: &below,
                batch: &staged,
                mine: Staged::default(),
            };
            match job.stage(&mut tx) {
                Ok(receipt) => {
                    let mine = tx.mine;
                    staged.absorb(mine);
                    landing.push((job, receipt));
                }
                Err(e) => job.finish(Err(e), 0),
            }
            if staged.bytes() >= journal::LAND_AT_BYTES {
                let mut full = std::mem::take(&mut staged);
                self.seal(&mut full);
                let full = Arc::new(full);
                below.push(full.clone());
                parts.push((full, std::mem::take(&mut landing)));
            }
        }
        if !staged.is_empty() || !landing.is_empty() {
            self.seal(&mut staged);
            parts.push((Arc::new(staged), landing));
        }
        parts
    }

    /// Lands `staged` and gives the jobs that staged it their result.
    pub(super) fn land_jobs(&self, staged: &Staged, jobs: Vec<(&Arc<Job>, Receipt)>) {
        let landed = self
            .check_not_halted()
            .and_then(|()| self.land(staged).map_err(StoreError::Sled))
            .and_then(|()| self.last_outbox_seq());
        for (job, receipt) in jobs {
            match &landed {
                Ok(seq) => job.finish(Ok(receipt), *seq),
                Err(e) => job.finish(Err(same_failure(e)), 0),
            }
        }
    }

    /// Writes `staged` to the journal, then to its trees. Once the journal is written the
    /// batch must land: a failure after that halts the store, and the next open completes
    /// the batch from the journal.
    fn land(&self, staged: &Staged) -> Result<(), sled::Error> {
        if staged.is_empty() {
            return Ok(());
        }
        self.journal.insert(JOURNAL_KEY, staged.encode())?;
        for op in staged.ops() {
            if let Err(e) = self.write_op(op.tree, &op.key, op.value.clone()) {
                self.halt(&e);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Stages `job` and journals it, but applies only its first `applied` writes, as a crash
    /// midway would leave it once they reached the disk; then flushes. How many writes the
    /// job has.
    #[cfg(test)]
    pub(super) fn land_partly(&self, job: &Arc<Job>, applied: usize) -> usize {
        let mut tx = Tx {
            trees: &self.trees,
            below: &[],
            batch: &Staged::default(),
            mine: Staged::default(),
        };
        job.stage(&mut tx).expect("the job stages");
        let ops = tx.mine.ops();
        self.journal
            .insert(JOURNAL_KEY, tx.mine.encode())
            .expect("journal written");
        for op in &ops[..applied] {
            self.write_op(op.tree, &op.key, op.value.clone())
                .expect("write applied");
        }
        self.db.flush().expect("flushed");
        ops.len()
    }

    /// One write of a batch, to its tree.
    pub(super) fn write_op(
        &self,
        tree: &'static str,
        key: &[u8],
        value: Option<IVec>,
    ) -> Result<(), sled::Error> {
        let tree = self.trees.by_name(tree).ok_or_else(|| {
            sled::Error::ReportableBug(format!("a write to the unknown tree {tree}"))
        })?;
        match value {
            Some(value) => tree.insert(key, value).map(drop),
            None => tree.remove(key).map(drop),
        }
    }
}

/// `error` again, for each of the writes a failed flush leaves unacknowledged.
fn same_failure(error: &StoreError) -> StoreError {
    match error {
        StoreError::Sled(e) => StoreError::Sled(e.clone()),
        StoreError::Halted(why) => StoreError::Halted(why.clone()),
        other => StoreError::Sled(sled::Error::ReportableBug(other.to_string())),
    }
}

/// The writes of one job, staged on top of those of the jobs before it in its batch.
pub(super) struct Tx<'a> {
    trees: &'a Trees,
    /// What the batches staged before this one and not yet landed write, oldest first.
    below: &'a [Arc<Staged>],
    batch: &'a Staged,
    mine: Staged,
}

impl Tx<'_> {
    /// The value of `key` as the job sees it: what it staged, else what the batch staged,
    /// else what the latest of the batches still landing staged, else what is stored. (A
    /// batch that has landed wrote to its trees what it staged, so reading it either way is
    /// the same.)
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        if let Some(staged) = self
            .mine
            .get(tree, key)
            .or_else(|| self.batch.get(tree, key))
            .or_else(|| self.below.iter().rev().find_map(|b| b.get(tree, key)))
        {
            return Ok(staged.cloned());
        }
        let stored = self
            .trees
            .by_name(tree)
            .ok_or_else(|| corrupt(tree, key, "no such tree"))?;
        Ok(stored.get(key)?)
    }

    fn insert(&mut self, tree: &'static str, key: &[u8], value: impl Into<IVec>) {
        self.mine.set(tree, key.to_vec(), Some(value.into()));
    }

    fn remove(&mut self, tree: &'static str, key: &[u8]) {
        self.mine.set(tree, key.to_vec(), None);
    }

    fn get_decoded<T: serde::de::DeserializeOwned>(
        &self,
        tree: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.get(tree, key)? {
            None => Ok(None),
            Some(bytes) => decode(tree, key, &bytes).map(Some),
        }
    }

    fn put<T: serde::Serialize>(
        &mut self,
        tree: &'static str,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = encode(tree, key, value)?;
        self.insert(tree, key, bytes);
        Ok(())
    }

    /// A u64 counter of `meta` (0 when absent).
    fn counter(&self, key: &'static [u8]) -> Result<u64, StoreError> {
        counter(key, self.get(META, key)?.as_deref())
    }
}

/// The version a write produces, or `Conflict` when the stored one is not what was expected.
fn next_version(expect: Expect, stored: Option<u64>) -> Result<u64, StoreError> {
    match (expect, stored) {
        (Expect::New, None) => Ok(1),
        (Expect::Version(v), Some(s)) if v == s => Ok(v + 1),
        _ => Err(StoreError::Conflict),
    }
}

// Within a job, a record is staged before the index entries that point at it, so that a
// reader, which may see a batch half applied, never follows an index to a missing record.
impl Tx<'_> {
    fn write(&mut self, commit: &Commit, queued_at: DateTime<Utc>) -> Result<Receipt, StoreError> {
        for (key, until) in &commit.deliveries {
            if self.get(SEEN, key.as_bytes())?.is_some() {
                return Err(StoreError::Delivered);
            }
            self.insert(SEEN, key.as_bytes(), &millis(*until).to_be_bytes()[..]);
        }
        for write in &commit.requests {
            self.write_request(write)?;
        }
        for (grant, expect) in &commit.grants {
            self.write_grant(grant, *expect)?;
        }
        for (campaign, expect) in &commit.campaigns {
            let key = id_key(campaign.id.0);
            let old: Option<Stored<Campaign>> = self.get_decoded(CAMPAIGNS, &key)?;
            let v = next_version(*expect, old.map(|o| o.v))?;
            let stored = Stored {
                v,
                due: None,
                r: campaign,
            };
            self.put(CAMPAIGNS, &key, &stored)?;
        }
        for (about, card) in &commit.cards {
            let key = card_key(about);
            let mut posted: Vec<PostedCard> = self.get_decoded(CARDS, &key)?.unwrap_or_default();
            // One effect posts one card per recipient on each platform that reaches them.
            let known = |p: &PostedCard| {
                p.effect_key == card.effect_key
                    && p.recipient == card.recipient
                    && p.platform == card.platform
            };
            if !posted.iter().any(known) {
                posted.push(card.clone());
            }
            self.put(CARDS, &key, &posted)?;
        }
        for (name, at) in &commit.marks {
            self.put(META, &mark_key(name), at)?;
        }
        let audit_seqs = self.append_events(commit)?;
        self.queue_effects(commit, queued_at)?;
        Ok(Receipt { audit_seqs })
    }

    fn write_request(&mut self, write: &RequestWrite) -> Result<(), StoreError> {
        let request = &write.request;
        let key = id_key(request.id.0);
        let old: Option<Stored<AccessRequest>> = self.get_decoded(REQUESTS, &key)?;
        let v = next_version(write.expect, old.as_ref().map(|o| o.v))?;
        let due = write.due.map(millis);
        self.put(REQUESTS, &key, &Stored { v, due, r: request })?;
        let before: BTreeSet<&PersonId> = old.iter().flat_map(|o| o.r.awaiting()).collect();
        let after: BTreeSet<&PersonId> = request.awaiting().collect();
        for gone in before.difference(&after) {
            self.remove(PENDING_BY_APPROVER, &person_key(gone, request.id.0));
        }
        for new in after.difference(&before) {
            self.insert(PENDING_BY_APPROVER, &person_key(new, request.id.0), EMPTY);
        }
        match &old {
            Some(old) => {
                if let Some(due) = old.due {
                    self.remove(PENDING_BY_DUE, &time_key(due, request.id.0));
                }
            }
            None => self.insert(
                REQUESTS_BY_PERSON,
                &person_key(&request.requester, request.id.0),
                EMPTY,
            ),
        }
        if let Some(due) = due {
            self.insert(PENDING_BY_DUE, &time_key(due, request.id.0), EMPTY);
        }
        Ok(())
    }

    fn write_grant(&mut self, grant: &Grant, expect: Expect) -> Result<(), StoreError> {
        let key = id_key(grant.id.0);
        let old: Option<Stored<Grant>> = self.get_decoded(GRANTS, &key)?;
        let v = next_version(expect, old.as_ref().map(|o| o.v))?;
        let stored = Stored {
            v,
            due: None,
            r: grant,
        };
        self.put(GRANTS, &key, &stored)?;
        let before = old
            .as_ref()
            .map(|o| GrantTally::of(&o.r))
            .unwrap_or_default();
        let after = GrantTally::of(grant);
        if before != after {
            let tally: GrantTally = self.get_decoded(META, GRANT_TALLY_KEY)?.unwrap_or_default();
            self.put(META, GRANT_TALLY_KEY, &tally.moved(before, after))?;
        }
        match &old {
            Some(old) => {
                if let Some(expires_at) = old.r.expires_at {
                    self.remove(GRANTS_BY_EXPIRY, &time_key(millis(expires_at), grant.id.0));
                }
                if let Some(reminder) = old.r.review_reminder() {
                    self.remove(REVIEWS_BY_DUE, &time_key(millis(reminder), grant.id.0));
                }
                if let Some(expires_at) = old.r.warning_owed() {
                    self.remove(WARNINGS_BY_DUE, &time_key(millis(expires_at), grant.id.0));
                }
            }
            None => self.insert(
                GRANTS_BY_PERSON,
                &person_key(&grant.person, grant.id.0),
                EMPTY,
            ),
        }
        match (
            grant.state.is_live(),
            old.as_ref().is_some_and(|o| o.r.state.is_live()),
        ) {
            (true, false) => self.insert(GRANTS_LIVE, &key, EMPTY),
            (false, true) => self.remove(GRANTS_LIVE, &key),
            _ => {}
        }
        if let (true, Some(expires_at)) = (grant.state.is_live(), grant.expires_at) {
            self.insert(
                GRANTS_BY_EXPIRY,
                &time_key(millis(expires_at), grant.id.0),
                EMPTY,
            );
        }
        if let Some(reminder) = grant.review_reminder() {
            self.insert(
                REVIEWS_BY_DUE,
                &time_key(millis(reminder), grant.id.0),
                EMPTY,
            );
        }
        if let Some(expires_at) = grant.warning_owed() {
            self.insert(
                WARNINGS_BY_DUE,
                &time_key(millis(expires_at), grant.id.0),
                EMPTY,
            );
        }
        Ok(())
    }

    fn append_events(&mut self, commit: &Commit) -> Result<Vec<u64>, StoreError> {
        if commit.events.is_empty() {
            return Ok(Vec::new());
        }
        let mut head: AuditHead = self
            .get_decoded(META, AUDIT_HEAD_KEY)?
            .unwrap_or_else(AuditHead::genesis);
        let mut seqs = Vec::with_capacity(commit.events.len());
        for event in &commit.events {
            let seq = head.seq + 1;
            let record = AuditRecord::chain(seq, &head.hash, event.clone());
            self.put(AUDIT, &id_key(seq), &record)?;
            head = AuditHead {
                seq,
                hash: record.hash,
            };
            seqs.push(seq);
        }
        self.put(META, AUDIT_HEAD_KEY, &head)?;
        Ok(seqs)
    }

    fn queue_effects(
        &mut self,
        commit: &Commit,
        queued_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if commit.effects.is_empty() {
            return Ok(());
        }
        let mut last = self.counter(LAST_OUTBOX_SEQ)?;
        for effect in &commit.effects {
            let seq = last + 1;
            let key = effect.idempotency_key(seq);
            // Only effects that happen once per key are looked up and indexed by it; the
            // others' keys embed their seq, so none can be queued twice.
            let once = effect.once_per_key();
            if once && self.get(OUTBOX_KEYS, key.as_bytes())?.is_some() {
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
            // Not indexed by due time: the worker reads the outbox in seq order and keeps
            // its own schedule, so such an index cost two writes per effect for nothing.
            self.put(OUTBOX, &id_key(seq), &entry)?;
            if once {
                self.insert(OUTBOX_KEYS, entry.key.as_bytes(), &id_key(seq)[..]);
            }
            last = seq;
        }
        self.insert(META, LAST_OUTBOX_SEQ, &id_key(last)[..]);
        Ok(())
    }

    /// Removes a completed effect and its key; `Conflict` when it is no longer queued
    /// (another worker completed it), so its outcome is not recorded twice.
    fn remove_effect(&mut self, seq: u64) -> Result<(), StoreError> {
        let key = id_key(seq);
        let Some(entry) = self.get_decoded::<OutboxEntry>(OUTBOX, &key)? else {
            return Err(StoreError::Conflict);
        };
        // Only keys that deduplicate are indexed (the store prunes older builds' others as
        // it opens), and `outbox_by_due` is empty since schema 7: a removal of a key that is
        // not there would still cost the batch a journaled write and sled a lookup.
        if entry.effect.once_per_key() {
            self.remove(OUTBOX_KEYS, entry.key.as_bytes());
        }
        self.remove(OUTBOX, &key);
        Ok(())
    }

    /// Records a failed attempt of an effect and when to try again; nothing when it was
    /// completed meanwhile (by someone else).
    fn retry_effect(
        &mut self,
        seq: u64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let key = id_key(seq);
        let Some(mut entry) = self.get_decoded::<OutboxEntry>(OUTBOX, &key)? else {
            return Ok(());
        };
        entry.attempts = entry.attempts.saturating_add(1);
        entry.next_attempt_at = next_attempt_at;
        entry.last_error = Some(error.to_owned());
        self.put(OUTBOX, &key, &entry)?;
        Ok(())
    }
}
