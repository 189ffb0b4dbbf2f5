//! `SledStore`: the `Store` on an embedded sled database in one data directory.
//!
//! One tree per record type and per index, as in docs/architecture.md "Storage" (its sled layout), plus
//! `meta` (schema version, audit head, id and outbox counters) and `outbox_keys`
//! (idempotency key → outbox seq; kept in its own tree so the outbox stays a plain
//! seq-ordered list). Byte layouts are in `keys`; the single write path is in `write`.
//! sled locks the directory, so one process owns it.

mod anchor;
mod backup;
pub use anchor::{Anchoring, Unanchored};
pub use backup::verify as verify_backup;
mod durable;
mod journal;
pub(crate) mod keys;
mod pages;
mod read;
mod sessions;
#[cfg(test)]
mod tests;
mod write;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};

use self::journal::JOURNAL_KEY;
use self::keys::*;
use self::write::Work;
use super::backup::{BackupError, Spooled};
use super::{
    Commit, Finished, GrantList, OutboxEntry, Receipt, RequestList, SCHEMA_VERSION, Sequence,
    Store, StoreError, Versioned, Window, WriteStats,
};
use crate::domain::anchor::{AnchorReport, ChainHead, PublishedHead};
use crate::domain::audit::AuditRecord;
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::grant::{Grant, GrantTally};
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::domain::request::AccessRequest;
use crate::domain::review::Campaign;
use crate::domain::session::Session;

/// How many times opening waits 50 ms for a directory lock another holder is releasing.
const LOCK_RETRIES: usize = 20;

/// The page cache used by `open`; Gatehouse's working set is small.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

pub struct SledStore {
    db: sled::Db,
    /// The data directory; `None` for a temporary store.
    dir: Option<std::path::PathBuf>,
    trees: Trees,
    /// The batch being applied (see `journal`).
    journal: sled::Tree,
    /// Held while a batch of commits is staged, so audit seqs follow commit order.
    stager: Mutex<()>,
    /// Held while a batch lands, so batches land whole, one at a time, in staging order.
    lander: Mutex<()>,
    /// The parts of the batch landing now, which the next batch is staged on top of.
    in_flight: Mutex<Vec<std::sync::Arc<journal::Staged>>>,
    /// Work waiting for `stager`, staged together by the next writer to take it.
    waiting: Mutex<Vec<std::sync::Arc<write::Job>>>,
    /// Flushes shared by concurrent writers (group commit); see [`SledStore::durable`].
    flushes: durable::GroupFlush,
    /// What the writer applied so far.
    applied: write::Applied,
    /// The last outbox seq known to be on disk. Entries after it were applied by a commit
    /// whose flush has not finished, and are not handed out to run: an effect carried out
    /// before its commit is durable could be for a grant a crash then forgets.
    durable_outbox: AtomicU64,
    /// Why writing stopped: a batch reached the journal but not all of its trees. Only a
    /// restart, which completes the batch from the journal, writes again.
    halted: OnceLock<String>,
    /// The audit key batches are checkpointed with, once given (see `anchor`).
    anchor: Mutex<Option<anchor::Anchor>>,
}

struct Trees {
    requests: sled::Tree,
    requests_by_person: sled::Tree,
    pending_by_due: sled::Tree,
    grants: sled::Tree,
    grants_by_expiry: sled::Tree,
    grants_by_person: sled::Tree,
    audit: sled::Tree,
    outbox: sled::Tree,
    outbox_keys: sled::Tree,
    campaigns: sled::Tree,
    reviews_by_due: sled::Tree,
    cards: sled::Tree,
    seen: sled::Tree,
    meta: sled::Tree,
    outbox_by_due: sled::Tree,
    warnings_by_due: sled::Tree,
    audit_checkpoints: sled::Tree,
    pending_by_approver: sled::Tree,
    grants_live: sled::Tree,
}

impl Trees {
    fn open(db: &sled::Db) -> sled::Result<Self> {
        Ok(Self {
            requests: db.open_tree(REQUESTS)?,
            requests_by_person: db.open_tree(REQUESTS_BY_PERSON)?,
            pending_by_due: db.open_tree(PENDING_BY_DUE)?,
            grants: db.open_tree(GRANTS)?,
            grants_by_expiry: db.open_tree(GRANTS_BY_EXPIRY)?,
            grants_by_person: db.open_tree(GRANTS_BY_PERSON)?,
            audit: db.open_tree(AUDIT)?,
            outbox: db.open_tree(OUTBOX)?,
            outbox_keys: db.open_tree(OUTBOX_KEYS)?,
            campaigns: db.open_tree(CAMPAIGNS)?,
            reviews_by_due: db.open_tree(REVIEWS_BY_DUE)?,
            cards: db.open_tree(CARDS)?,
            seen: db.open_tree(SEEN)?,
            meta: db.open_tree(META)?,
            outbox_by_due: db.open_tree(OUTBOX_BY_DUE)?,
            warnings_by_due: db.open_tree(WARNINGS_BY_DUE)?,
            audit_checkpoints: db.open_tree(AUDIT_CHECKPOINTS)?,
            pending_by_approver: db.open_tree(PENDING_BY_APPROVER)?,
            grants_live: db.open_tree(GRANTS_LIVE)?,
        })
    }

    /// Every tree with its name, in the order of `TREE_NAMES`.
    fn named(&self) -> [(&'static str, &sled::Tree); 19] {
        [
            (REQUESTS, &self.requests),
            (REQUESTS_BY_PERSON, &self.requests_by_person),
            (PENDING_BY_DUE, &self.pending_by_due),
            (GRANTS, &self.grants),
            (GRANTS_BY_EXPIRY, &self.grants_by_expiry),
            (GRANTS_BY_PERSON, &self.grants_by_person),
            (AUDIT, &self.audit),
            (OUTBOX, &self.outbox),
            (OUTBOX_KEYS, &self.outbox_keys),
            (CAMPAIGNS, &self.campaigns),
            (REVIEWS_BY_DUE, &self.reviews_by_due),
            (CARDS, &self.cards),
            (SEEN, &self.seen),
            (META, &self.meta),
            (OUTBOX_BY_DUE, &self.outbox_by_due),
            (WARNINGS_BY_DUE, &self.warnings_by_due),
            (AUDIT_CHECKPOINTS, &self.audit_checkpoints),
            (PENDING_BY_APPROVER, &self.pending_by_approver),
            (GRANTS_LIVE, &self.grants_live),
        ]
    }

    /// The tree called `name`.
    fn by_name(&self, name: &str) -> Option<&sled::Tree> {
        self.named()
            .into_iter()
            .find_map(|(known, tree)| (known == name).then_some(tree))
    }

    fn all_empty(&self) -> bool {
        self.named().iter().all(|(_, t)| t.is_empty())
    }
}

impl SledStore {
    /// Opens (or creates) the data directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens `dir` with a page cache of `cache_bytes`.
    pub fn open_with(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let path = dir.display().to_string();
        let config = sled::Config::new().path(dir).cache_capacity(cache_bytes);
        Self::from_config(&config, path, Some(dir.to_owned()))
    }

    /// A store that lives in a temporary directory removed on drop, for tests.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_config(
            &sled::Config::new().temporary(true),
            "(temporary)".to_owned(),
            None,
        )
    }

    fn from_config(
        config: &sled::Config,
        path: String,
        dir: Option<std::path::PathBuf>,
    ) -> Result<Self, StoreError> {
        // A process that just let go of the directory (a restart, or a store dropped a moment
        // ago in this process) may hold its lock a little longer: wait for it briefly.
        let mut opened = config.open();
        for _ in 0..LOCK_RETRIES {
            match &opened {
                Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    opened = config.open();
                }
                _ => break,
            }
        }
        let opened = opened.and_then(|db| Ok((Trees::open(&db)?, db.open_tree(JOURNAL)?, db)));
        let (trees, journal, db) = opened.map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let store = Self {
            db,
            dir,
            trees,
            journal,
            stager: Mutex::new(()),
            lander: Mutex::new(()),
            in_flight: Mutex::new(Vec::new()),
            waiting: Mutex::new(Vec::new()),
            flushes: durable::GroupFlush::default(),
            applied: write::Applied::default(),
            durable_outbox: AtomicU64::new(0),
            halted: OnceLock::new(),
            anchor: Mutex::new(None),
        };
        store.check_schema(path)?;
        store.replay_journal()?;
        store.prune_outbox_keys()?;
        // Everything opened is on disk already.
        store
            .durable_outbox
            .store(store.last_outbox_seq()?, Ordering::SeqCst);
        Ok(store)
    }

    fn check_schema(&self, path: String) -> Result<(), StoreError> {
        let Some(bytes) = self.trees.meta.get(SCHEMA_VERSION_KEY)? else {
            if !self.trees.all_empty() {
                return Err(corrupt(
                    META,
                    SCHEMA_VERSION_KEY,
                    "missing in a data directory that holds records",
                ));
            }
            self.trees
                .meta
                .insert(SCHEMA_VERSION_KEY, &SCHEMA_VERSION.to_be_bytes()[..])?;
            self.db.flush()?;
            return Ok(());
        };
        let found = <[u8; 4]>::try_from(&bytes[..])
            .map(u32::from_be_bytes)
            .map_err(|_| {
                corrupt(
                    META,
                    SCHEMA_VERSION_KEY,
                    "the schema version must be 4 bytes",
                )
            })?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            self.migrate(found)?;
        }
        Ok(())
    }

    /// Brings a data directory of schema `from` up to [`SCHEMA_VERSION`]. Schema 2 added two
    /// indexes (`outbox_by_due`, `warnings_by_due`), built here from the records they index
    /// (`outbox_by_due` no longer: see schema 7).
    /// Schema 3 added the journal, which needs nothing built: the version says that the
    /// directory may hold a batch to complete, which an older build would not do.
    /// Schema 4 added the grant tally, counted here from every grant once; an older build
    /// would not keep it up to date. Schema 5 added audit checkpoints, which need nothing
    /// built: the version keeps out an older build, which would append events without them.
    /// Schema 6 added `pending_by_approver`, built here from the pending requests; an older
    /// build would not keep it up to date. Schema 7 stopped keeping `outbox_by_due` (emptied
    /// here): the version keeps out an older build, whose worker found due effects through it.
    /// Schema 8 added `grants_live`, built here from the grants; an older build would not
    /// keep it up to date.
    /// The version is written only once the rest is flushed, so a crash midway starts over.
    fn migrate(&self, from: u32) -> Result<(), StoreError> {
        tracing::info!(from, to = SCHEMA_VERSION, "upgrading the data directory");
        if from < 2 {
            self.build_schema_2_indexes()?;
        }
        if from < 4 {
            self.count_grants()?;
        }
        if from < 6 {
            self.build_approver_index()?;
        }
        if from < 7 {
            self.trees.outbox_by_due.clear()?;
        }
        if from < 8 {
            self.build_live_index()?;
        }
        self.trees
            .meta
            .insert(SCHEMA_VERSION_KEY, &SCHEMA_VERSION.to_be_bytes()[..])?;
        self.db.flush()?;
        Ok(())
    }

    fn build_schema_2_indexes(&self) -> Result<(), StoreError> {
        self.rebuild_grant_index(&self.trees.warnings_by_due, |grant| {
            let expires_at = grant.warning_owed()?;
            Some(time_key(millis(expires_at), grant.id.0).to_vec())
        })
    }

    /// Lists every live grant in `grants_live`, reading every grant once.
    fn build_live_index(&self) -> Result<(), StoreError> {
        self.rebuild_grant_index(&self.trees.grants_live, |grant| {
            grant.is_live().then(|| id_key(grant.id.0).to_vec())
        })
    }

    /// Empties `index`, then lists in it the key `entry` gives each grant that has one,
    /// reading every grant once.
    fn rebuild_grant_index(
        &self,
        index: &sled::Tree,
        entry: impl Fn(&Grant) -> Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        index.clear()?;
        for item in self.trees.grants.iter() {
            let (key, bytes) = item?;
            let stored: Stored<Grant> = decode(GRANTS, &key, &bytes)?;
            if let Some(at) = entry(&stored.r) {
                index.insert(at, EMPTY)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    /// Lists every pending request under the approvers of its current stage, reading every
    /// request once.
    fn build_approver_index(&self) -> Result<(), StoreError> {
        let t = &self.trees;
        t.pending_by_approver.clear()?;
        for item in t.requests.iter() {
            let (key, bytes) = item?;
            let stored: Stored<AccessRequest> = decode(REQUESTS, &key, &bytes)?;
            for approver in stored.r.awaiting() {
                t.pending_by_approver
                    .insert(person_key(approver, stored.r.id.0), EMPTY)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    fn count_grants(&self) -> Result<(), StoreError> {
        let mut tally = GrantTally::default();
        for item in self.trees.grants.iter() {
            let (key, bytes) = item?;
            let stored: Stored<Grant> = decode(GRANTS, &key, &bytes)?;
            tally = tally.moved(GrantTally::default(), GrantTally::of(&stored.r));
        }
        let bytes = encode(META, GRANT_TALLY_KEY, &tally)?;
        self.trees.meta.insert(GRANT_TALLY_KEY, bytes)?;
        self.db.flush()?;
        Ok(())
    }

    /// Completes the batch a crash interrupted, if any: applies the journal's writes again
    /// (see `journal` for why that is safe) and flushes them.
    fn replay_journal(&self) -> Result<(), StoreError> {
        let Some(bytes) = self.journal.get(JOURNAL_KEY)? else {
            return Ok(());
        };
        let ops = journal::decode(&bytes)?;
        tracing::info!(
            writes = ops.len(),
            "completing the last batch of writes from the journal"
        );
        for op in ops {
            self.write_op(op.tree, &op.key, op.value)?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// Removes the `outbox_keys` entries of effects that do not happen once per key, and
    /// any whose entry is gone. Builds before c7a2019 indexed every effect's key; a
    /// completion now removes only the keys of effects that happen once per key (the others'
    /// keys embed their seq and are never looked up), so an entry queued by such a build and
    /// completed by this one would otherwise leave its key behind. The tree holds only the
    /// keys of queued once-per-key effects, so this reads little.
    fn prune_outbox_keys(&self) -> Result<(), StoreError> {
        let mut pruned = 0usize;
        for item in self.trees.outbox_keys.iter() {
            let (key, seq) = item?;
            let keep = match self.trees.outbox.get(&seq)? {
                Some(bytes) => decode::<OutboxEntry>(OUTBOX, &seq, &bytes)?
                    .effect
                    .once_per_key(),
                None => false,
            };
            if !keep {
                self.trees.outbox_keys.remove(&key)?;
                pruned += 1;
            }
        }
        if pruned > 0 {
            tracing::info!(pruned, "removed outbox keys that nothing looks up");
            self.db.flush()?;
        }
        Ok(())
    }

    /// Stops all writing after a batch was journaled but not applied in full.
    pub(crate) fn halt(&self, error: &sled::Error) {
        tracing::error!(%error, "a batch was journaled but not fully applied; writes stop until a restart");
        let _ = self.halted.set(error.to_string());
    }

    fn check_not_halted(&self) -> Result<(), StoreError> {
        match self.halted.get() {
            None => Ok(()),
            Some(why) => Err(StoreError::Halted(why.clone())),
        }
    }

    /// Returns once everything this thread wrote is on disk. Concurrent writers share the
    /// flush (group commit), so a write is never acknowledged before it is durable, yet a
    /// busy store does not queue one fsync per commit.
    ///
    /// `landed` is the last outbox seq of the batches applied by then, read under the landing
    /// lock right after they landed: entries up to it are on disk once the flush is done.
    /// (Read after the lock is let go, the counter could name the entries of a batch another
    /// writer is landing, counter first; a reader trusting the watermark would then pass
    /// over them.)
    fn durable(&self, landed: u64) -> Result<(), StoreError> {
        self.flushes.durable(|| self.db.flush().map(drop))?;
        self.durable_outbox.fetch_max(landed, Ordering::SeqCst);
        Ok(())
    }

    /// The seq of the last outbox entry applied (0 when none ever was).
    fn last_outbox_seq(&self) -> Result<u64, StoreError> {
        let value = self.trees.meta.get(LAST_OUTBOX_SEQ)?;
        counter(LAST_OUTBOX_SEQ, value.as_deref())
    }

    /// How many flushes have been started, for tests of group commit.
    #[cfg(test)]
    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.flushes()
    }

    /// A raw tree, for tests that tamper with what is stored.
    #[cfg(test)]
    pub(crate) fn tree(&self, name: &str) -> sled::Tree {
        self.db.open_tree(name).expect("tree opens")
    }
}

impl Store for SledStore {
    fn session(&self, key: &str) -> Result<Option<Session>, StoreError> {
        self.web_session(key)
    }

    fn put_session(&self, key: &str, session: &Session, flush: bool) -> Result<(), StoreError> {
        self.put_web_session(key, session, flush)
    }

    fn end_session(&self, key: &str) -> Result<bool, StoreError> {
        self.end_web_session(key)
    }

    fn sessions(&self) -> Result<Vec<(String, Session)>, StoreError> {
        self.web_sessions()
    }

    fn requests_window(
        &self,
        list: &RequestList,
        window: Window,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        self.requests_in_window(list, window)
    }

    fn grants_window(&self, list: &GrantList, window: Window) -> Result<Vec<Grant>, StoreError> {
        self.grants_in_window(list, window)
    }

    fn next_id(&self, seq: Sequence) -> Result<u64, StoreError> {
        let key = match seq {
            Sequence::Request => LAST_REQUEST_ID,
            Sequence::Grant => LAST_GRANT_ID,
            Sequence::Campaign => LAST_CAMPAIGN_ID,
        };
        // One key, so a compare-and-swap loop: a transaction would make sled write two log
        // buffers of its own for it.
        let meta = &self.trees.meta;
        let id = loop {
            let current = meta.get(key)?;
            let last = counter(key, current.as_deref())?;
            let next = last + 1;
            if meta
                .compare_and_swap(key, current, Some(&id_key(next)[..]))?
                .is_ok()
            {
                break next;
            }
        };
        // Not flushed here: the commit that uses the id is, and its flush covers this write.
        // An id whose commit never happened may be handed out again after a crash, which is
        // harmless, since nothing durable or acknowledged ever carried it.
        Ok(id)
    }

    fn request(&self, id: RequestId) -> Result<Option<Versioned<AccessRequest>>, StoreError> {
        Self::versioned(&self.trees.requests, REQUESTS, id.0)
    }

    fn grant(&self, id: GrantId) -> Result<Option<Versioned<Grant>>, StoreError> {
        Self::versioned(&self.trees.grants, GRANTS, id.0)
    }

    fn requests_of(&self, person: &PersonId) -> Result<Vec<AccessRequest>, StoreError> {
        let t = &self.trees;
        Self::of_person(
            &t.requests_by_person,
            REQUESTS_BY_PERSON,
            &t.requests,
            REQUESTS,
            person,
        )
    }

    fn pending_for_approver(&self, person: &PersonId) -> Result<Vec<AccessRequest>, StoreError> {
        let t = &self.trees;
        let listed: Vec<AccessRequest> = Self::of_person(
            &t.pending_by_approver,
            PENDING_BY_APPROVER,
            &t.requests,
            REQUESTS,
            person,
        )?;
        // A reader may see a batch half applied: the record is what counts.
        Ok(listed
            .into_iter()
            .filter(|r| r.awaiting().any(|a| a == person))
            .collect())
    }

    fn grants_of(&self, person: &PersonId) -> Result<Vec<Grant>, StoreError> {
        let t = &self.trees;
        Self::of_person(
            &t.grants_by_person,
            GRANTS_BY_PERSON,
            &t.grants,
            GRANTS,
            person,
        )
    }

    fn requests(&self, pending_only: bool, limit: usize) -> Result<Vec<AccessRequest>, StoreError> {
        Self::newest(
            &self.trees.requests,
            REQUESTS,
            limit,
            |r: &AccessRequest| !pending_only || r.is_pending(),
        )
    }

    fn grants(&self, live_only: bool, limit: usize) -> Result<Vec<Grant>, StoreError> {
        self.grants_where(&|g| !live_only || g.is_live(), limit)
    }

    fn grants_where(
        &self,
        keep: &dyn Fn(&Grant) -> bool,
        limit: usize,
    ) -> Result<Vec<Grant>, StoreError> {
        Self::newest(&self.trees.grants, GRANTS, limit, keep)
    }

    fn write_stats(&self) -> WriteStats {
        let (commits, batches, busy) = self.applied.read();
        let (flushes, flushing) = self.flushes.done();
        WriteStats {
            commits,
            batches,
            busy,
            flushes,
            flushing,
        }
    }

    fn grant_tally(&self) -> Result<GrantTally, StoreError> {
        match self.trees.meta.get(GRANT_TALLY_KEY)? {
            Some(bytes) => decode(META, GRANT_TALLY_KEY, &bytes),
            None => Ok(GrantTally::default()),
        }
    }

    fn pending_due(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, RequestId)>, StoreError> {
        let due = Self::due_until(&self.trees.pending_by_due, PENDING_BY_DUE, until, limit)?;
        Ok(due
            .into_iter()
            .map(|(at, id)| (at, RequestId(id)))
            .collect())
    }

    fn grants_expiring(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError> {
        let due = Self::due_until(&self.trees.grants_by_expiry, GRANTS_BY_EXPIRY, until, limit)?;
        Ok(due.into_iter().map(|(at, id)| (at, GrantId(id))).collect())
    }

    fn reviews_due(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError> {
        let due = Self::due_until(&self.trees.reviews_by_due, REVIEWS_BY_DUE, until, limit)?;
        Ok(due.into_iter().map(|(at, id)| (at, GrantId(id))).collect())
    }

    fn next_review_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Self::first_time(&self.trees.reviews_by_due, REVIEWS_BY_DUE, None)
    }

    fn cards(&self, key: &CardKey) -> Result<Vec<PostedCard>, StoreError> {
        let key = card_key(key);
        match self.trees.cards.get(&key)? {
            None => Ok(Vec::new()),
            Some(bytes) => decode(CARDS, &key, &bytes),
        }
    }

    fn first_delivery(&self, key: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let value = millis(until).to_be_bytes();
        let first = self
            .trees
            .seen
            .compare_and_swap(key.as_bytes(), None as Option<&[u8]>, Some(&value[..]))?
            .is_ok();
        // Not flushed here: only a delivery that changes nothing is recorded so (one that
        // changes something records its ids in its commit), and a repeat of it after a
        // crash that forgot it changes nothing either.
        Ok(first)
    }

    fn delivered(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.trees.seen.contains_key(key.as_bytes())?)
    }

    fn forget_deliveries(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let now = millis(now);
        let mut forgotten = 0;
        for item in self.trees.seen.iter() {
            let (key, value) = item?;
            if be_u64(&value).is_none_or(|until| until < now) {
                self.trees.seen.remove(key)?;
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }

    fn next_pending_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Self::first_time(&self.trees.pending_by_due, PENDING_BY_DUE, None)
    }

    fn warnings_due(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError> {
        self.trees
            .warnings_by_due
            .range(time_key_upper(after)..=time_key_upper(until))
            .take(limit)
            .map(|item| {
                let (at, id) = split_time_key(WARNINGS_BY_DUE, &item?.0)?;
                Ok((at, GrantId(id)))
            })
            .collect()
    }

    fn next_warning_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Self::first_time(&self.trees.warnings_by_due, WARNINGS_BY_DUE, Some(after))
    }

    fn next_effect_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.first_effect_due(|_| true)
    }

    fn campaign(&self, id: CampaignId) -> Result<Option<Versioned<Campaign>>, StoreError> {
        Self::versioned(&self.trees.campaigns, CAMPAIGNS, id.0)
    }

    fn campaigns(&self, open_only: bool) -> Result<Vec<Versioned<Campaign>>, StoreError> {
        let mut found = Vec::new();
        for item in self.trees.campaigns.iter().rev() {
            let (key, bytes) = item?;
            let stored: Stored<Campaign> = decode(CAMPAIGNS, &key, &bytes)?;
            if !open_only || stored.r.is_open() {
                found.push(Versioned {
                    value: stored.r,
                    version: stored.v,
                });
            }
        }
        Ok(found)
    }

    fn mark(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let key = mark_key(name);
        match self.trees.meta.get(&key)? {
            None => Ok(None),
            Some(bytes) => decode(META, &key, &bytes).map(Some),
        }
    }

    fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        self.apply(Work::Commit { commit, done: None })
    }

    fn audit(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.trees
            .audit
            .range(id_key(from)..)
            .take(limit)
            .map(|item| {
                let (key, bytes) = item?;
                decode(AUDIT, &key, &bytes)
            })
            .collect()
    }

    fn verify_audit_against(
        &self,
        published: &[PublishedHead],
    ) -> Result<AnchorReport, StoreError> {
        self.verify_anchored(published)
    }

    fn chain_head(&self) -> Result<Option<ChainHead>, StoreError> {
        self.durable_head()
    }

    fn due_effects(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.due_effects_except(now, limit, &|_| false)
    }

    fn due_effects_except(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        skip: &dyn Fn(u64) -> bool,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        // The outbox keeps no index by due time (see `write`): the product's worker reads it
        // in seq order; this reads it whole.
        let durable = self.durable_outbox.load(Ordering::SeqCst);
        let mut due = Vec::new();
        for entry in self.outbox_entries() {
            let entry = entry?;
            // Not durable yet: it runs once its commit's flush is done (the commit then
            // wakes the worker).
            if entry.next_attempt_at <= now && entry.seq <= durable && !skip(entry.seq) {
                due.push(entry);
            }
        }
        due.sort_by_key(|entry| (millis(entry.next_attempt_at), entry.seq));
        due.truncate(limit);
        due.sort_by_key(|entry| entry.seq);
        Ok(due)
    }

    fn effects_waiting(&self, now: DateTime<Utc>) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut waiting = Vec::new();
        for entry in self.outbox_entries() {
            let entry = entry?;
            if entry.next_attempt_at > now {
                waiting.push(entry);
            }
        }
        Ok(waiting)
    }

    fn next_effect_due_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.first_effect_due(|at| at > after)
    }

    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_entries().take(limit).collect()
    }

    fn effects_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let durable = self.durable_outbox.load(Ordering::SeqCst);
        let Some(first) = after.checked_add(1).filter(|first| *first <= durable) else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for item in self.trees.outbox.range(id_key(first)..=id_key(durable)) {
            if entries.len() >= limit {
                break;
            }
            let (key, bytes) = item?;
            entries.push(decode::<OutboxEntry>(OUTBOX, &key, &bytes)?);
        }
        Ok(entries)
    }

    fn finish_effects(&self, finished: Vec<Finished>) -> Vec<Result<(), StoreError>> {
        let works = finished
            .into_iter()
            .map(|finished| match finished {
                Finished::Done { seq, then } => Work::Commit {
                    commit: then,
                    done: Some(seq),
                },
                Finished::Retry { seq, at, error } => Work::Retry { seq, at, error },
            })
            .collect();
        self.apply_all(works)
            .into_iter()
            .map(|result| result.map(drop))
            .collect()
    }

    fn newest_effect(&self) -> Result<Option<u64>, StoreError> {
        match self.trees.outbox.last()? {
            Some((key, _)) => be_u64(&key)
                .map(Some)
                .ok_or_else(|| corrupt(OUTBOX, &key, "an outbox key must be 8 bytes")),
            None => Ok(None),
        }
    }

    fn complete_effect(&self, seq: u64, then: Commit) -> Result<(), StoreError> {
        self.apply(Work::Commit {
            commit: then,
            done: Some(seq),
        })
        .map(drop)
    }

    fn backup_file(&self) -> Result<Spooled, BackupError> {
        self.spool_backup()
    }

    fn halted(&self) -> Option<String> {
        self.halted.get().cloned()
    }

    fn retry_effect(
        &self,
        seq: u64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.apply(Work::Retry {
            seq,
            at: next_attempt_at,
            error: error.to_owned(),
        })
        .map(drop)
    }
}

impl Drop for SledStore {
    /// A clean close: every batch is applied, so the journal has nothing left to complete.
    /// (sled flushes as the database closes.)
    fn drop(&mut self) {
        if self.halted.get().is_none()
            && let Err(error) = self.journal.remove(JOURNAL_KEY)
        {
            tracing::warn!(%error, "could not clear the journal; the next start applies it again");
        }
    }
}
