//! The store: requests, grants, indexes, the audit chain and the outbox, behind one trait so
//! that another backend can come later without touching the engine.
//!
//! Error contract: `StoreError::Conflict` comes only from `commit` and `complete_effect`, when
//! an expected version no longer matches (someone else changed the record: reload and retry)
//! or the completed effect is no longer queued (someone else completed it).
//! `StoreError::Delivered` comes only from `commit`, when a platform delivery it records
//! ([`Commit::deliveries`]) already is: its work was done, so it is not retried.
//! A successful `commit` is durable: it has been flushed to disk before it returns.

pub mod any;
pub mod backup;
pub mod export;
mod pg_store;
mod sled_store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::anchor::{AnchorReport, ChainHead, PublishedHead};
use crate::domain::audit::{AuditEvent, AuditRecord, ChainError};
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::effect::Effect;
use crate::domain::grant::{Grant, GrantTally};
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::domain::request::AccessRequest;
use crate::domain::review::Campaign;
use crate::domain::session::Session;

pub use any::AnyStore;
pub use pg_store::{
    LEASE_TTL, Lease, PG_SCHEMA_VERSION, PgConfig, PgStore, is_leader_work, leader_work,
    leader_work_if,
};
pub use sled_store::{Anchoring, SledStore, Unanchored, verify_backup};

/// The schema version this build writes; a data directory with a newer one is refused.
pub const SCHEMA_VERSION: u32 = 8;

/// A record with the version it was read at, for compare-and-swap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// What a write expects to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The record must not exist yet.
    New,
    /// The record must still be at this version.
    Version(u64),
}

/// Everything one use case changes, applied atomically or not at all.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    /// Requests to write; `due` is the next moment the scheduler must look at a pending
    /// request (reminder, escalation or expiry), `None` once it is no longer pending.
    pub requests: Vec<RequestWrite>,
    pub grants: Vec<(Grant, Expect)>,
    pub events: Vec<AuditEvent>,
    pub effects: Vec<Effect>,
    /// Access-review campaigns to write.
    pub campaigns: Vec<(Campaign, Expect)>,
    /// Named moments to remember, such as when a cron job last ran.
    pub marks: Vec<(String, DateTime<Utc>)>,
    /// Messages posted, to be found again when they must be updated.
    pub cards: Vec<(CardKey, PostedCard)>,
    /// The platform delivery ids (a Slack retry's, a repeated interaction's) whose work this
    /// commit is, each remembered until its time: recorded in the same commit as the work, so
    /// that a crash or a failure before it commits leaves the delivery to be done again. The
    /// commit is refused whole ([`StoreError::Delivered`]) when one is already recorded.
    pub deliveries: Vec<(String, DateTime<Utc>)>,
    /// When the change was made, by the engine's clock ([`crate::engine::Engine::commit`]
    /// sets it): effects queued without an audit event to date them are due from then.
    pub at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct RequestWrite {
    pub request: AccessRequest,
    pub expect: Expect,
    pub due: Option<DateTime<Utc>>,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
            && self.grants.is_empty()
            && self.events.is_empty()
            && self.effects.is_empty()
            && self.campaigns.is_empty()
            && self.marks.is_empty()
            && self.cards.is_empty()
            && self.deliveries.is_empty()
    }
}

/// What a commit produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Sequence numbers given to the audit events, in order.
    pub audit_seqs: Vec<u64>,
}

/// An effect waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub seq: u64,
    pub key: String,
    pub effect: Effect,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// What became of one attempt at an outbox entry, to be recorded.
#[derive(Clone, Debug)]
pub enum Finished {
    /// Done: the entry leaves the outbox, with `then` applied in the same write
    /// ([`Store::complete_effect`]).
    Done { seq: u64, then: Commit },
    /// Failed: it is tried again at `at` ([`Store::retry_effect`]).
    Retry {
        seq: u64,
        at: DateTime<Utc>,
        error: String,
    },
}

impl Finished {
    /// The outbox entry it is about.
    pub fn seq(&self) -> u64 {
        match self {
            Finished::Done { seq, .. } | Finished::Retry { seq, .. } => *seq,
        }
    }
}

/// One page of a list read by index, for the web portal's tables: the rows strictly beyond
/// `after` in the list's order (from its start when `None`), at most `limit`, read
/// ascending or descending. A page goes on from the last row the one before it showed, so
/// it costs what it shows, however long the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub after: Option<Mark>,
    pub ascending: bool,
    pub limit: usize,
}

/// A row's place in a list: its id and, in a list ordered by a time (grants by their end),
/// that time in milliseconds since the epoch (0 in lists ordered by id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark {
    pub at_ms: u64,
    pub id: u64,
}

/// Lists of requests read a [`Window`] at a time, each in id (that is, submission) order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestList {
    /// A person's requests (`requests_by_person`).
    Of(PersonId),
    /// The pending requests whose current stage lists the person among its approvers
    /// (`pending_by_approver`), as [`Store::pending_for_approver`] finds them.
    AwaitingApprover(PersonId),
}

/// Lists of grants read a [`Window`] at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantList {
    /// A person's grants, in id order (`grants_by_person`).
    Of(PersonId),
    /// Live grants in id order (`grants_live`, in both stores).
    Live,
    /// Live grants that have an end, by that end and then id (`grants_by_expiry`).
    LiveByEnd,
}

/// The place of `grant` in [`GrantList::LiveByEnd`] (and in id order, with `at_ms` unused).
pub fn end_mark(grant: &Grant) -> Mark {
    Mark {
        at_ms: grant
            .expires_at
            .map_or(0, |at| u64::try_from(at.timestamp_millis()).unwrap_or(0)),
        id: grant.id.0,
    }
}

/// Which sequence an id comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequence {
    Request,
    Grant,
    Campaign,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the record changed while this change was being made")]
    Conflict,
    /// A commit for a platform delivery whose work another commit did first: its `Display`
    /// is what the person reads.
    #[error("that was already handled")]
    Delivered,
    #[error(
        "the data directory {path} was written by a newer Gatehouse (schema {found}, this build knows up to {supported}); run the newer version or restore a backup"
    )]
    SchemaTooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("cannot open the data directory {path}: {source}; is another Gatehouse running on it?")]
    Open { path: String, source: sled::Error },
    #[error(
        "writing stopped after a storage error left a batch half applied ({0}); restart Gatehouse, which completes the batch from its journal as it opens the data directory"
    )]
    Halted(String),
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("a stored record could not be read ({what}): {source}")]
    Corrupt {
        what: String,
        source: serde_json::Error,
    },
    #[error("the audit log is not intact: {0}")]
    Chain(#[from] ChainError),
    #[error("the database {0}")]
    Database(String),
    #[error("cannot set up the store: {what} {why}")]
    Setup { what: String, why: String },
    #[error(
        "this replica is no longer the leader (another took over): the scheduler and the outbox run there now"
    )]
    Deposed,
    #[error(
        "the database {shown} holds Gatehouse schema {found}, newer than this build knows ({supported}); run the newer version, or restore a backup into an empty database"
    )]
    DatabaseTooNew {
        shown: String,
        found: u32,
        supported: u32,
    },
}

pub trait Store: Send + Sync + 'static {
    /// The next id of a sequence; never handed out twice, even after a crash, to anything
    /// committed: it is durable once the commit that uses it is.
    fn next_id(&self, seq: Sequence) -> Result<u64, StoreError>;

    fn request(&self, id: RequestId) -> Result<Option<Versioned<AccessRequest>>, StoreError>;
    fn grant(&self, id: GrantId) -> Result<Option<Versioned<Grant>>, StoreError>;
    /// The grants of `ids` that exist, in the order of `ids` (one read where the store can
    /// batch it: the outbox looks up a page of grants at once).
    fn grants_by_id(&self, ids: &[GrantId]) -> Result<Vec<Versioned<Grant>>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.extend(self.grant(*id)?);
        }
        Ok(found)
    }

    /// A person's requests, newest first.
    fn requests_of(&self, person: &PersonId) -> Result<Vec<AccessRequest>, StoreError>;
    /// The pending requests whose current stage lists `person` among its approvers
    /// ([`AccessRequest::awaiting`]), newest first, however many requests are pending: read
    /// from an index that `commit` keeps in the same transaction as the requests, so that
    /// the cost grows with what is returned, not with what is stored. Whether `person` may
    /// decide each one now (not their own, not counted in an earlier stage) is the engine's
    /// to check ([`AccessRequest::check_decider`]).
    fn pending_for_approver(&self, person: &PersonId) -> Result<Vec<AccessRequest>, StoreError>;
    /// A person's grants, newest first.
    fn grants_of(&self, person: &PersonId) -> Result<Vec<Grant>, StoreError>;
    /// Requests newest first; only pending ones when `pending_only`.
    fn requests(&self, pending_only: bool, limit: usize) -> Result<Vec<AccessRequest>, StoreError>;
    /// Grants newest first; only live ones (provisioning, active) when `live_only`.
    fn grants(&self, live_only: bool, limit: usize) -> Result<Vec<Grant>, StoreError>;
    /// Grants newest first that pass `keep`, at most `limit`; only those are held in memory.
    fn grants_where(
        &self,
        keep: &dyn Fn(&Grant) -> bool,
        limit: usize,
    ) -> Result<Vec<Grant>, StoreError>;
    /// Counts over every stored grant, kept up to date by `commit` (not counted on read).
    fn grant_tally(&self) -> Result<GrantTally, StoreError>;

    /// Pending requests due at or before `until`, earliest first (from `pending_by_due`).
    fn pending_due(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, RequestId)>, StoreError>;
    /// Live grants expiring at or before `until`, earliest first (from `grants_by_expiry`).
    fn grants_expiring(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError>;

    /// Emergency grants whose reviewers must be reminded at or before `until`, earliest first.
    fn reviews_due(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError>;
    /// The earliest such reminder.
    fn next_review_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The earliest `due` of any pending request, for the scheduler's next wake.
    fn next_pending_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Live grants whose grantee is still owed an expiry warning ([`Grant::warning_owed`]),
    /// expiring after `after` and at or before `until`, earliest first.
    fn warnings_due(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError>;
    /// The earliest expiry strictly after `after` of a grant still owed a warning.
    fn next_warning_after(&self, after: DateTime<Utc>)
    -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The earliest `next_attempt_at` in the outbox.
    fn next_effect_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    fn campaign(&self, id: CampaignId) -> Result<Option<Versioned<Campaign>>, StoreError>;
    /// Campaigns newest first; only open ones when `open_only`.
    fn campaigns(&self, open_only: bool) -> Result<Vec<Versioned<Campaign>>, StoreError>;
    /// A moment remembered with `Commit::marks`.
    fn mark(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Every message posted about `key`, in the order they were posted.
    fn cards(&self, key: &CardKey) -> Result<Vec<PostedCard>, StoreError>;

    /// Records a platform delivery id (a Slack retry, a repeated interaction) and says
    /// whether it is the first time it is seen; it is remembered until `until`. For a
    /// delivery whose work commits nothing: one that commits records its ids in that commit
    /// ([`Commit::deliveries`]).
    fn first_delivery(&self, key: &str, until: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Whether a platform delivery id is recorded (by a commit or by `first_delivery`).
    fn delivered(&self, key: &str) -> Result<bool, StoreError>;
    /// Whether any of `keys` is recorded (one read where the store can batch it).
    fn any_delivered(&self, keys: &[String]) -> Result<bool, StoreError> {
        for key in keys {
            if self.delivered(key)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
    /// Forgets delivery ids remembered until before `now`; how many.
    fn forget_deliveries(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;

    /// A web portal session by its key (a hash of the cookie's secret, never the secret).
    /// Sessions are not audited, not in backups (a restore signs everyone out), and each
    /// write is flushed on its own.
    fn session(&self, key: &str) -> Result<Option<Session>, StoreError>;
    /// Writes a session; `flush` makes it durable before returning (a sign-in), else it is
    /// durable with the next flush (a page view moving `last_seen`).
    fn put_session(&self, key: &str, session: &Session, flush: bool) -> Result<(), StoreError>;
    /// Ends a session; whether there was one.
    fn end_session(&self, key: &str) -> Result<bool, StoreError>;
    /// Every session with its key: as many as people signed in.
    fn sessions(&self) -> Result<Vec<(String, Session)>, StoreError>;

    /// One page of a list of requests, read from its index ([`Window`]).
    fn requests_window(
        &self,
        list: &RequestList,
        window: Window,
    ) -> Result<Vec<AccessRequest>, StoreError>;
    /// One page of a list of grants, read from its index ([`Window`]).
    fn grants_window(&self, list: &GrantList, window: Window) -> Result<Vec<Grant>, StoreError>;

    /// Applies a change atomically and durably, chaining its audit events.
    fn commit(&self, commit: Commit) -> Result<Receipt, StoreError>;

    /// Audit records with `seq >= from`, in order, at most `limit`.
    fn audit(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;
    /// Walks the whole chain with its checkpoints, checking them with the audit key the
    /// store was given, and that it holds every head in `published`; what it found, when
    /// nothing is wrong ([`crate::domain::anchor::verify_anchored`]).
    fn verify_audit_against(&self, published: &[PublishedHead])
    -> Result<AnchorReport, StoreError>;
    /// Walks the whole chain; the number of events when intact.
    fn verify_audit(&self) -> Result<u64, StoreError> {
        self.verify_audit_against(&[]).map(|report| report.events)
    }
    /// The chain head, once it is on disk, to publish out of band (digest, alerts); `None`
    /// before the first event.
    fn chain_head(&self) -> Result<Option<ChainHead>, StoreError>;

    /// Outbox entries whose next attempt is due at or before `now`: the `limit` that have
    /// been due longest, oldest (queued first) first. Only entries whose commit is durable:
    /// one applied but not yet flushed is left for when it is, since an effect carried out
    /// for a commit a crash then loses (a grant provisioned that Gatehouse never knew of)
    /// could not be taken back.
    fn due_effects(&self, now: DateTime<Utc>, limit: usize)
    -> Result<Vec<OutboxEntry>, StoreError>;
    /// [`Store::due_effects`] without the entries whose seq `skip` names (those under way),
    /// which are passed over without being read.
    fn due_effects_except(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        skip: &dyn Fn(u64) -> bool,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Outbox entries whose next attempt is strictly after `now`: those waiting to be tried
    /// again, oldest (queued first) first.
    fn effects_waiting(&self, now: DateTime<Utc>) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The earliest `next_attempt_at` in the outbox strictly after `after`.
    fn next_effect_due_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Outbox entries queued after `after` (a greater seq), oldest first, at most `limit`,
    /// due or not; only entries whose commit is durable, as for [`Store::due_effects`]. A
    /// reader that asks again after the last seq it was given finds every entry once: none
    /// with a smaller seq becomes durable later. The default reads the whole outbox, which is
    /// right for a backend whose commits are durable when they return, but slow: override it.
    fn effects_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self
            .outbox(usize::MAX)?
            .into_iter()
            .filter(|entry| entry.seq > after)
            .take(limit)
            .collect())
    }
    /// Every outbox entry, oldest first (for tests and the admin API).
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The seq of the newest entry in the outbox; `None` when it is empty.
    fn newest_effect(&self) -> Result<Option<u64>, StoreError>;
    /// The effect is done: remove it (together with `then`, applied atomically).
    fn complete_effect(&self, seq: u64, then: Commit) -> Result<(), StoreError>;
    /// The effect failed: try again at `next_attempt_at`.
    fn retry_effect(
        &self,
        seq: u64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Records many attempts, each as [`Store::complete_effect`] or [`Store::retry_effect`]
    /// would and each succeeding or failing alone (a `Conflict` for one leaves the others
    /// recorded); one result per attempt, in order. A backend that can shares one write and
    /// one flush among them; the default records them one by one.
    fn finish_effects(&self, finished: Vec<Finished>) -> Vec<Result<(), StoreError>> {
        finished
            .into_iter()
            .map(|finished| match finished {
                Finished::Done { seq, then } => self.complete_effect(seq, then),
                Finished::Retry { seq, at, error } => self.retry_effect(seq, at, &error),
            })
            .collect()
    }

    /// Everything stored, read in one consistent view, for `GET /api/v1/backup` (see
    /// [`crate::store::backup`]), written to a file as it is read so that a backup of any
    /// size takes a line of memory, not the whole store. A backend that cannot answers
    /// [`backup::BackupError::Unsupported`].
    fn backup_file(&self) -> Result<backup::Spooled, backup::BackupError> {
        Err(backup::BackupError::Unsupported)
    }

    /// Why the store can no longer write, when it cannot: a write failed halfway
    /// ([`StoreError::Halted`]), and only a restart mends it. Cheap: it reads no data.
    fn halted(&self) -> Option<String> {
        None
    }

    /// What the store's writer has done since the store opened (for `/metrics`).
    fn write_stats(&self) -> WriteStats {
        WriteStats::default()
    }
}

/// What a store's writer has done since it opened. Commits are applied by one writer at a
/// time, in batches: how busy that writer is tells whether the store, rather than the CPU
/// or the disk, is what limits how many commits per second Gatehouse can take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Writes applied: commits, outbox completions and retries.
    pub commits: u64,
    /// Batches those were applied in (commits that arrive together share one).
    pub batches: u64,
    /// Time the writer spent applying batches. On sled a batch is staged while the one
    /// before it lands, and both count, so this can grow up to twice as fast as the clock.
    pub busy: std::time::Duration,
    /// Flushes to disk, each covering every batch applied before it started.
    pub flushes: u64,
    /// Time spent in those flushes.
    pub flushing: std::time::Duration,
}
