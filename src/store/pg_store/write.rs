//! The write path: commits applied in batches, one SQL transaction per batch, as the sled
//! store applies them under its writer lock.
//!
//! Every batch first locks the chain's head row (`audit_head … FOR UPDATE`), so that batches
//! from every replica take turns: the audit chain stays one line, outbox seqs follow commit
//! order, and the records a batch reads cannot change under it (every writer takes that lock
//! first, so none waits for another in a different order). Within a replica, commits that
//! arrive while a batch is being applied wait and go together in the next one, so that one
//! transaction (and one fsync of PostgreSQL's log) serves many.
//!
//! A batch is three round trips however many commits it holds: the lock, pipelined with one
//! read per table of every record its commits check (versions, the outbox entries they
//! complete, the once-per-key effects they queue, the cards they add to); then, with the
//! commits checked and applied in memory in order, one multi-row statement per table,
//! pipelined with the `COMMIT`. A commit that finds a record changed is refused alone with
//! `Conflict` and writes nothing, as it would alone: what it checks cannot change under the
//! batch. Work only the leader may do (the outbox's completions and retries, the
//! scheduler's commits) also checks the lease's fencing token in the same transaction,
//! holding the `leader` row against a takeover until it commits.
//!
//! Those two locks are why a batch's transaction may not stand idle for long: a replica cut
//! off from the database in the middle of one (a partition holds its connection open and
//! silent, so the server never hears it go) would otherwise hold every replica's writes and
//! the lease for as long as the server keeps the dead connection. The server ends such a
//! transaction once it has waited three seconds for its client ([`BEGIN_BATCH`]), well before the lease
//! of a cut-off leader could expire and another replica take over.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::PgStore;
use super::client::{CALL_LIMIT, Conn};
use crate::domain::anchor::ChainHead;
use crate::domain::audit::AuditRecord;
use crate::domain::card::PostedCard;
use crate::domain::grant::{Grant, GrantTally};
use crate::domain::ids::PersonId;
use crate::store::sled_store::keys::millis;
use crate::store::{Commit, Expect, OutboxEntry, Receipt, StoreError, WriteStats};
use futures_util::future::Either;
use tokio_postgres::types::{ToSql, Type};

thread_local! {
    static LEADER_WORK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` as work only the leader may do: the commits it makes on a PostgreSQL store
/// check, in their transaction, that this replica still holds the lease (the scheduler's
/// passes run so). Other stores ignore it.
pub fn leader_work<T>(work: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            LEADER_WORK.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(LEADER_WORK.with(|flag| flag.replace(true)));
    work()
}

/// Whether the calling thread is running leader work ([`leader_work`]). A thread started
/// for part of that work is not, unless it is told so: see [`leader_work_if`].
pub fn is_leader_work() -> bool {
    LEADER_WORK.with(Cell::get)
}

/// Runs `work` as leader work when `leader` (what [`is_leader_work`] said on the thread that
/// handed it over), as plain work otherwise.
pub fn leader_work_if<T>(leader: bool, work: impl FnOnce() -> T) -> T {
    if leader { leader_work(work) } else { work() }
}

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

/// Work waiting for the writer; see [`PgStore::apply`].
pub(super) struct Job {
    work: Work,
    queued_at: DateTime<Utc>,
    /// The lease token this work must still hold when it commits, if it is leader work.
    fence: Option<u64>,
    result: Mutex<Option<Result<Receipt, StoreError>>>,
}

impl Job {
    fn take(&self) -> Option<Result<Receipt, StoreError>> {
        self.result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn finish(&self, result: Result<Receipt, StoreError>) {
        *self.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
    }
}

/// What the writer did, for [`WriteStats`].
#[derive(Default)]
pub(super) struct Applied {
    commits: AtomicU64,
    batches: AtomicU64,
    busy_micros: AtomicU64,
    commit_micros: AtomicU64,
}

fn micros(took: Duration) -> u64 {
    u64::try_from(took.as_micros()).unwrap_or(u64::MAX)
}

impl Applied {
    pub(super) fn stats(&self) -> WriteStats {
        let batches = self.batches.load(Ordering::Relaxed);
        WriteStats {
            commits: self.commits.load(Ordering::Relaxed),
            batches,
            busy: Duration::from_micros(self.busy_micros.load(Ordering::Relaxed)),
            flushes: batches,
            flushing: Duration::from_micros(self.commit_micros.load(Ordering::Relaxed)),
        }
    }
}

impl PgStore {
    /// Does `work` and returns once it is committed (durable: PostgreSQL has flushed its log).
    pub(super) fn apply(&self, work: Work, leader: bool) -> Result<Receipt, StoreError> {
        let mut results = self.apply_all(vec![work], leader);
        results
            .pop()
            .unwrap_or_else(|| Err(StoreError::Database("a write gave no result".to_owned())))
    }

    /// Does every one of `works`, each succeeding or failing alone as [`PgStore::apply`]
    /// would, in one batch (with whatever else is queued) and one transaction; their results,
    /// in order, once committed. Leader work carries the lease's token as it is now, all of
    /// it the same: a replica that no longer leads is refused every one (`Deposed`).
    pub(super) fn apply_all(
        &self,
        works: Vec<Work>,
        leader: bool,
    ) -> Vec<Result<Receipt, StoreError>> {
        let fence = if leader || is_leader_work() {
            match self.fence.token() {
                Ok(token) => token,
                Err(e) => return works.iter().map(|_| Err(same_failure(&e))).collect(),
            }
        } else {
            None
        };
        let jobs: Vec<Arc<Job>> = works
            .into_iter()
            .map(|work| {
                // As on sled: effects are due from the time of the change, by the engine's
                // clock (never the wall clock); a commit that does not say when (a store
                // test's) is due at once.
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
                    fence,
                    result: Mutex::new(None),
                })
            })
            .collect();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(jobs.iter().cloned());
        let guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut results: Vec<Option<Result<Receipt, StoreError>>> =
            jobs.iter().map(|job| job.take()).collect();
        // Any still unapplied is in the queue, since only a writer holding the lock empties
        // it, and that writer records every result before letting go.
        if results.iter().any(Option::is_none) {
            let batch =
                std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
            let started = Instant::now();
            self.apply_batch(&batch);
            self.applied
                .commits
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.applied.batches.fetch_add(1, Ordering::Relaxed);
            self.applied
                .busy_micros
                .fetch_add(micros(started.elapsed()), Ordering::Relaxed);
            for (result, job) in results.iter_mut().zip(&jobs) {
                if result.is_none() {
                    *result = job.take();
                }
            }
        }
        drop(guard);
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(StoreError::Database(
                        "a commit was lost by a writer that panicked while applying it".to_owned(),
                    ))
                })
            })
            .collect()
    }

    /// Applies `batch` in one transaction and gives each job its result.
    fn apply_batch(&self, batch: &[Arc<Job>]) {
        let mut anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
        let applied = &self.applied;
        let landed = self.pool.run(CALL_LIMIT, async |conn| {
            match land(conn, batch, anchor.as_mut(), applied).await {
                Ok(results) => Ok(results),
                Err(e) => {
                    let _ = conn.simple("ROLLBACK").await;
                    Err(e)
                }
            }
        });
        match landed {
            Ok(results) => {
                if let Some(anchor) = anchor.as_mut() {
                    anchor.landed();
                }
                for (job, result) in batch.iter().zip(results) {
                    job.finish(result);
                }
            }
            Err(e) => {
                for job in batch {
                    job.finish(Err(same_failure(&e)));
                }
            }
        }
    }
}

/// `error` again, for each of the writes it fails.
fn same_failure(error: &StoreError) -> StoreError {
    match error {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Deposed => StoreError::Deposed,
        other => StoreError::Database(other.to_string().replacen("the database ", "", 1)),
    }
}

pub(super) fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Corrupt {
        what: what.to_owned(),
        source,
    })
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    what: impl FnOnce() -> String,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        what: what(),
        source,
    })
}

/// The version a write produces, or `Conflict` when the stored one is not what was expected.
fn next_version(expect: Expect, stored: Option<i64>) -> Result<i64, StoreError> {
    match (expect, stored) {
        (Expect::New, None) => Ok(1),
        (Expect::Version(v), Some(s)) if v as i64 == s => Ok(s + 1),
        _ => Err(StoreError::Conflict),
    }
}

/// A time as the store's time columns hold it: milliseconds, as sled's time keys.
pub(super) fn ms(at: DateTime<Utc>) -> i64 {
    millis(at) as i64
}

/// What a batch reads before it writes: the records its commits check and change, read at
/// once after the head lock (nothing else writes them until the batch commits: every writer
/// takes that lock first), and updated in memory as each commit of the batch lands.
struct State {
    head: ChainHead,
    last_outbox: u64,
    /// Request id → version.
    requests: HashMap<i64, i64>,
    /// Grant id → version and tally contribution.
    grants: HashMap<i64, (i64, GrantTally)>,
    /// Campaign id → version.
    campaigns: HashMap<i64, i64>,
    /// The outbox entries the batch completes, retries or queues, by seq (`None`: gone).
    outbox: HashMap<i64, Option<OutboxEntry>>,
    /// Which of those were stored before the batch.
    stored: HashSet<i64>,
    /// The once-per-key effect keys queued, among those the batch asks about.
    once_keys: HashSet<String>,
    /// Posted cards by key, for the keys the batch records a card under.
    cards: HashMap<String, Vec<PostedCard>>,
    /// The delivery ids recorded, among those the batch's commits carry.
    seen: HashSet<String>,
    /// The grant tally, when the batch writes a grant.
    tally: Option<GrantTally>,
    token: Option<u64>,
}

/// What the batch writes, one multi-row statement per table (the last write of a record wins).
#[derive(Default)]
struct Rows {
    requests: BTreeMap<i64, RequestRow>,
    grants: BTreeMap<i64, GrantRow>,
    campaigns: BTreeMap<i64, (i64, bool, String)>,
    cards: BTreeSet<String>,
    marks: BTreeMap<String, String>,
    /// Delivery ids to record, with the time they are remembered until.
    seen: BTreeMap<String, i64>,
    audit: Vec<(i64, String)>,
    /// Outbox seqs changed (queued, retried or completed).
    outbox: BTreeSet<i64>,
}

struct RequestRow {
    version: i64,
    person: String,
    pending: bool,
    due: Option<i64>,
    /// `AccessRequest::awaiting` as a JSON array (the statement makes it a `text[]`).
    awaiting: String,
    body: String,
}

struct GrantRow {
    version: i64,
    person: String,
    live: bool,
    expiry: Option<i64>,
    review: Option<i64>,
    warning: Option<i64>,
    body: String,
}

/// The statements of a batch's first round trip: after the lock, what its commits read.
const READ_REQUESTS: &str = "SELECT id, version FROM requests WHERE id = ANY($1)";
const READ_GRANTS: &str = "SELECT id, version, body FROM grants WHERE id = ANY($1)";
const READ_CAMPAIGNS: &str = "SELECT id, version FROM campaigns WHERE id = ANY($1)";
const READ_OUTBOX: &str = "SELECT seq, entry FROM outbox WHERE seq = ANY($1)";
const READ_ONCE_KEYS: &str = "SELECT key FROM outbox WHERE once AND key = ANY($1)";
const READ_CARDS: &str = "SELECT key, cards FROM cards WHERE key = ANY($1)";
/// Planned for its keys each time (`Conn::query_planned`), not prepared.
const READ_SEEN: &str = "SELECT key FROM seen WHERE key = ANY($1)";
const READ_TALLY: &str = "SELECT value FROM meta WHERE key = 'grant_tally'";
/// How every batch starts: the transaction, how long the server waits on its client
/// between statements before ending it (under half the lease: see the module
/// documentation; a batch waits on nothing but its own computing, milliseconds), and the
/// lock on the chain's head.
const BEGIN_BATCH: &str = "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '3s'; \
     SELECT seq, hash, last_outbox_seq FROM audit_head WHERE id = 1 FOR UPDATE";

const READ_TOKEN: &str = "SELECT token FROM leader WHERE id = 1 FOR SHARE";

/// Applies the jobs in one transaction and commits it: each job's result. Three round
/// trips whatever the batch holds: the lock with everything the commits read, pipelined;
/// then every write, one multi-row statement per table, pipelined with the `COMMIT`.
/// A commit that finds a record changed, or an effect already completed, is refused alone
/// (`Conflict`) and writes nothing, as under a savepoint; the records it checks cannot
/// change under the batch, since every writer takes the head lock first.
async fn land(
    conn: &mut Conn,
    batch: &[Arc<Job>],
    anchor: Option<&mut super::anchor::Anchor>,
    applied: &Applied,
) -> Result<Vec<Result<Receipt, StoreError>>, StoreError> {
    let mut state = read(conn, batch).await?;
    let start = (state.head.clone(), state.last_outbox, state.tally);
    let mut rows = Rows::default();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        results.push(match check(job, &state) {
            Ok(()) => Ok(apply(job, &mut state, &mut rows)?),
            Err(refused) => Err(refused),
        });
    }
    let checkpoint = match anchor {
        Some(anchor) if state.head.seq != start.0.seq => {
            Some(json("audit_checkpoints", &anchor.checkpoint(&state.head))?)
        }
        _ => None,
    };
    write_rows(conn, &state, &rows, checkpoint, &start, applied).await?;
    Ok(results)
}

/// The lock, and what the batch's commits read, in one round trip.
async fn read(conn: &mut Conn, batch: &[Arc<Job>]) -> Result<State, StoreError> {
    let (mut requests, mut grants, mut campaigns, mut seqs, mut once_keys, mut cards) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut deliveries: Vec<&str> = vec![];
    for job in batch {
        match &job.work {
            Work::Commit { commit, done } => {
                requests.extend(commit.requests.iter().map(|w| w.request.id.0 as i64));
                grants.extend(commit.grants.iter().map(|(g, _)| g.id.0 as i64));
                campaigns.extend(commit.campaigns.iter().map(|(c, _)| c.id.0 as i64));
                seqs.extend(done.map(|seq| seq as i64));
                once_keys.extend(
                    commit
                        .effects
                        .iter()
                        .filter(|e| e.once_per_key())
                        .map(|e| e.idempotency_key(0)),
                );
                cards.extend(commit.cards.iter().map(|(about, _)| about.to_string()));
                deliveries.extend(commit.deliveries.iter().map(|(key, _)| key.as_str()));
            }
            Work::Retry { seq, .. } => seqs.push(*seq as i64),
        }
    }
    let fenced = batch.iter().any(|job| job.fence.is_some());
    // Prepared first (once per connection), so that the reads below go out together.
    let mut statements = HashMap::new();
    for (sql, wanted) in [
        (READ_REQUESTS, !requests.is_empty()),
        (READ_GRANTS, !grants.is_empty()),
        (READ_CAMPAIGNS, !campaigns.is_empty()),
        (READ_OUTBOX, !seqs.is_empty()),
        (READ_ONCE_KEYS, !once_keys.is_empty()),
        (READ_CARDS, !cards.is_empty()),
        (READ_TALLY, !grants.is_empty()),
        (READ_TOKEN, fenced),
    ] {
        if wanted {
            statements.insert(sql, conn.statement(sql).await?);
        }
    }
    let conn = &*conn;
    let asked: [(&'static str, Vec<&(dyn ToSql + Sync)>); 8] = [
        (READ_REQUESTS, vec![&requests]),
        (READ_GRANTS, vec![&grants]),
        (READ_CAMPAIGNS, vec![&campaigns]),
        (READ_OUTBOX, vec![&seqs]),
        (READ_ONCE_KEYS, vec![&once_keys]),
        (READ_CARDS, vec![&cards]),
        (READ_TALLY, vec![]),
        (READ_TOKEN, vec![]),
    ];
    let prepared = asked.iter().filter_map(|(sql, params)| {
        let statement = statements.get(sql)?;
        Some(Either::Left(async move {
            (*sql, conn.query_prepared(statement, params).await)
        }))
    });
    // `READ_SEEN` is planned for its keys each time: see `Conn::query_planned`.
    let deliveries = &deliveries;
    let seen = (!deliveries.is_empty()).then(|| {
        Either::Right(async move {
            let keys: &(dyn ToSql + Sync) = deliveries;
            (
                READ_SEEN,
                conn.query_planned(READ_SEEN, &[(keys, Type::TEXT_ARRAY)])
                    .await,
            )
        })
    });
    let reads = prepared.chain(seen);
    // The transaction and the lock every batch takes first, then the reads behind it.
    let (locked, answers) = futures_util::future::join(
        conn.simple_rows(BEGIN_BATCH),
        futures_util::future::join_all(reads),
    )
    .await;
    let locked = locked?;
    let missing = || StoreError::Database("the audit_head row is missing or damaged".to_owned());
    let row = locked.first().ok_or_else(missing)?;
    let number = |i: usize| -> Result<u64, StoreError> {
        row.get(i)
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .ok_or_else(missing)
    };
    let mut state = State {
        head: ChainHead {
            seq: number(0)?,
            hash: row.get(1).cloned().flatten().ok_or_else(missing)?,
        },
        last_outbox: number(2)?,
        requests: HashMap::new(),
        grants: HashMap::new(),
        campaigns: HashMap::new(),
        outbox: HashMap::new(),
        stored: HashSet::new(),
        once_keys: HashSet::new(),
        cards: HashMap::new(),
        seen: HashSet::new(),
        tally: None,
        token: None,
    };
    for (sql, answer) in answers {
        let found = answer?;
        match sql {
            READ_REQUESTS => state.requests.extend(
                found
                    .iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))),
            ),
            READ_GRANTS => {
                for row in &found {
                    let id: i64 = row.get(0);
                    let old: Grant = parse(|| format!("grants key {id}"), row.get(2))?;
                    state.grants.insert(id, (row.get(1), GrantTally::of(&old)));
                }
            }
            READ_CAMPAIGNS => state.campaigns.extend(
                found
                    .iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))),
            ),
            READ_OUTBOX => {
                for row in &found {
                    let seq: i64 = row.get(0);
                    let entry: OutboxEntry = parse(|| format!("outbox seq {seq}"), row.get(1))?;
                    state.outbox.insert(seq, Some(entry));
                    state.stored.insert(seq);
                }
            }
            READ_ONCE_KEYS => state.once_keys.extend(found.iter().map(|r| r.get(0))),
            READ_SEEN => state.seen.extend(found.iter().map(|r| r.get(0))),
            READ_CARDS => {
                for row in &found {
                    let key: String = row.get(0);
                    let posted = parse(|| format!("cards key {key:?}"), row.get(1))?;
                    state.cards.insert(key, posted);
                }
            }
            READ_TALLY => {
                state.tally = Some(match found.first() {
                    Some(row) => parse(|| "meta key \"grant_tally\"".to_owned(), row.get(0))?,
                    None => GrantTally::default(),
                });
            }
            _ => state.token = found.first().map(|r| r.get::<_, i64>(0) as u64),
        }
    }
    Ok(state)
}

/// Whether `job` may land on `state`: `Deposed` when it is leader work of a replica that no
/// longer holds the lease, `Conflict` when a record it writes has changed or the effect it
/// completes is no longer queued, `Delivered` when a delivery it records already is.
fn check(job: &Job, state: &State) -> Result<(), StoreError> {
    if job.fence.is_some() && job.fence != state.token {
        return Err(StoreError::Deposed);
    }
    let Work::Commit { commit, done } = &job.work else {
        return Ok(());
    };
    if let Some(seq) = done
        && !matches!(state.outbox.get(&(*seq as i64)), Some(Some(_)))
    {
        return Err(StoreError::Conflict);
    }
    if commit
        .deliveries
        .iter()
        .any(|(key, _)| state.seen.contains(key))
    {
        return Err(StoreError::Delivered);
    }
    // A later write of the same record in this commit sees the earlier one, as on sled.
    let mut seen = HashMap::new();
    for write in &commit.requests {
        let id = write.request.id.0 as i64;
        let stored = seen.get(&id).or(state.requests.get(&id)).copied();
        seen.insert(id, next_version(write.expect, stored)?);
    }
    let mut seen = HashMap::new();
    for (grant, expect) in &commit.grants {
        let id = grant.id.0 as i64;
        let stored = seen
            .get(&id)
            .or(state.grants.get(&id).map(|(v, _)| v))
            .copied();
        seen.insert(id, next_version(*expect, stored)?);
    }
    let mut seen = HashMap::new();
    for (campaign, expect) in &commit.campaigns {
        let id = campaign.id.0 as i64;
        let stored = seen.get(&id).or(state.campaigns.get(&id)).copied();
        seen.insert(id, next_version(*expect, stored)?);
    }
    Ok(())
}

/// Lands `job`, which [`check`] let through, on `state` and `rows`.
fn apply(job: &Job, state: &mut State, rows: &mut Rows) -> Result<Receipt, StoreError> {
    let (commit, done) = match &job.work {
        Work::Commit { commit, done } => (commit, done),
        Work::Retry { seq, at, error } => {
            let seq = *seq as i64;
            // Nothing when it was completed meanwhile (by someone else).
            if let Some(Some(entry)) = state.outbox.get_mut(&seq) {
                entry.attempts = entry.attempts.saturating_add(1);
                entry.next_attempt_at = *at;
                entry.last_error = Some(error.clone());
                rows.outbox.insert(seq);
            }
            return Ok(Receipt::default());
        }
    };
    if let Some(seq) = done {
        let seq = *seq as i64;
        if let Some(Some(entry)) = state.outbox.insert(seq, None) {
            state.once_keys.remove(&entry.key);
        }
        rows.outbox.insert(seq);
    }
    for write in &commit.requests {
        let request = &write.request;
        let id = request.id.0 as i64;
        let version = next_version(write.expect, state.requests.get(&id).copied())?;
        state.requests.insert(id, version);
        let awaiting: Vec<&str> = request.awaiting().map(PersonId::as_str).collect();
        rows.requests.insert(
            id,
            RequestRow {
                version,
                person: request.requester.as_str().to_owned(),
                pending: request.is_pending(),
                due: write.due.map(ms),
                awaiting: json("requests", &awaiting)?,
                body: json("requests", request)?,
            },
        );
    }
    for (grant, expect) in &commit.grants {
        let id = grant.id.0 as i64;
        let old = state.grants.get(&id).copied();
        let version = next_version(*expect, old.map(|(v, _)| v))?;
        let (before, after) = (
            old.map(|(_, t)| t).unwrap_or_default(),
            GrantTally::of(grant),
        );
        if before != after {
            state.tally = state.tally.map(|tally| tally.moved(before, after));
        }
        state.grants.insert(id, (version, after));
        rows.grants.insert(
            id,
            GrantRow {
                version,
                person: grant.person.as_str().to_owned(),
                live: grant.is_live(),
                expiry: grant.expires_at.filter(|_| grant.state.is_live()).map(ms),
                review: grant.review_reminder().map(ms),
                warning: grant.warning_owed().map(ms),
                body: json("grants", grant)?,
            },
        );
    }
    for (campaign, expect) in &commit.campaigns {
        let id = campaign.id.0 as i64;
        let version = next_version(*expect, state.campaigns.get(&id).copied())?;
        state.campaigns.insert(id, version);
        rows.campaigns.insert(
            id,
            (version, campaign.is_open(), json("campaigns", campaign)?),
        );
    }
    for (about, card) in &commit.cards {
        let key = about.to_string();
        let posted = state.cards.entry(key.clone()).or_default();
        // One effect posts one card per recipient on each platform that reaches them.
        let known = |p: &PostedCard| {
            p.effect_key == card.effect_key
                && p.recipient == card.recipient
                && p.platform == card.platform
        };
        if !posted.iter().any(known) {
            posted.push(card.clone());
        }
        rows.cards.insert(key);
    }
    for (name, at) in &commit.marks {
        rows.marks.insert(name.clone(), json("marks", at)?);
    }
    for (key, until) in &commit.deliveries {
        state.seen.insert(key.clone());
        rows.seen.insert(key.clone(), ms(*until));
    }
    let mut audit_seqs = Vec::with_capacity(commit.events.len());
    for event in &commit.events {
        let seq = state.head.seq + 1;
        let record = AuditRecord::chain(seq, &state.head.hash, event.clone());
        rows.audit.push((seq as i64, json("audit", &record)?));
        state.head = ChainHead {
            seq,
            hash: record.hash,
        };
        audit_seqs.push(seq);
    }
    for effect in &commit.effects {
        let seq = state.last_outbox + 1;
        let key = effect.idempotency_key(seq);
        // Only effects that happen once per key are looked up by it; the others' keys embed
        // their seq, so none can be queued twice.
        if effect.once_per_key() && !state.once_keys.insert(key.clone()) {
            continue;
        }
        let entry = OutboxEntry {
            seq,
            key,
            effect: effect.clone(),
            attempts: 0,
            next_attempt_at: job.queued_at,
            last_error: None,
        };
        state.outbox.insert(seq as i64, Some(entry));
        rows.outbox.insert(seq as i64);
        state.last_outbox = seq;
    }
    Ok(Receipt { audit_seqs })
}

const WRITE_REQUESTS: &str = "INSERT INTO requests (id, version, person, pending, due, awaiting, body) \
     SELECT i, v, p, pe, d, ARRAY(SELECT json_array_elements_text(a::json)), b FROM \
     unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], $5::bigint[], $6::text[], $7::text[]) \
     AS t(i, v, p, pe, d, a, b) \
     ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, pending = EXCLUDED.pending, \
     due = EXCLUDED.due, awaiting = EXCLUDED.awaiting, body = EXCLUDED.body";
const WRITE_GRANTS: &str = "INSERT INTO grants (id, version, person, live, expiry, review_due, warning_due, body) \
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], $5::bigint[], \
     $6::bigint[], $7::bigint[], $8::text[]) \
     ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, live = EXCLUDED.live, \
     expiry = EXCLUDED.expiry, review_due = EXCLUDED.review_due, \
     warning_due = EXCLUDED.warning_due, body = EXCLUDED.body";
const WRITE_CAMPAIGNS: &str = "INSERT INTO campaigns (id, version, open, body) \
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::boolean[], $4::text[]) \
     ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, open = EXCLUDED.open, \
     body = EXCLUDED.body";
const WRITE_CARDS: &str = "INSERT INTO cards (key, cards) SELECT * FROM unnest($1::text[], $2::text[]) \
     ON CONFLICT (key) DO UPDATE SET cards = EXCLUDED.cards";
const WRITE_MARKS: &str = "INSERT INTO marks (name, at) SELECT * FROM unnest($1::text[], $2::text[]) \
     ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at";
// A key recorded meanwhile by `first_delivery` (a delivery whose work committed nothing, on
// another replica: it does not take the head lock) is kept.
const WRITE_SEEN: &str = "INSERT INTO seen (key, until) SELECT * FROM unnest($1::text[], $2::bigint[]) \
     ON CONFLICT (key) DO NOTHING";
const WRITE_AUDIT: &str =
    "INSERT INTO audit (seq, record) SELECT * FROM unnest($1::bigint[], $2::text[])";
const WRITE_CHECKPOINT: &str = "INSERT INTO audit_checkpoints (seq, checkpoint) VALUES ($1, $2)";
const DELETE_OUTBOX: &str = "DELETE FROM outbox WHERE seq = ANY($1)";
const RETRY_OUTBOX: &str = "UPDATE outbox SET next_attempt_at = t.n, entry = t.e \
     FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS t(s, n, e) WHERE outbox.seq = t.s";
const QUEUE_OUTBOX: &str = "INSERT INTO outbox (seq, key, once, next_attempt_at, entry) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::bigint[], $5::text[])";
const WRITE_TALLY: &str = "INSERT INTO meta (key, value) VALUES ('grant_tally', $1) \
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
const WRITE_HEAD: &str =
    "UPDATE audit_head SET seq = $1, hash = $2, last_outbox_seq = $3 WHERE id = 1";

/// Every write of the batch and its `COMMIT`, pipelined: sent together, answered together.
async fn write_rows(
    conn: &mut Conn,
    state: &State,
    rows: &Rows,
    checkpoint: Option<String>,
    start: &(ChainHead, u64, Option<GrantTally>),
    applied: &Applied,
) -> Result<(), StoreError> {
    let requests = &rows.requests;
    let r = (
        requests.keys().copied().collect::<Vec<i64>>(),
        requests.values().map(|r| r.version).collect::<Vec<_>>(),
        requests
            .values()
            .map(|r| r.person.as_str())
            .collect::<Vec<_>>(),
        requests.values().map(|r| r.pending).collect::<Vec<_>>(),
        requests.values().map(|r| r.due).collect::<Vec<_>>(),
        requests
            .values()
            .map(|r| r.awaiting.as_str())
            .collect::<Vec<_>>(),
        requests
            .values()
            .map(|r| r.body.as_str())
            .collect::<Vec<_>>(),
    );
    let grants = &rows.grants;
    let g = (
        grants.keys().copied().collect::<Vec<i64>>(),
        grants.values().map(|g| g.version).collect::<Vec<_>>(),
        grants
            .values()
            .map(|g| g.person.as_str())
            .collect::<Vec<_>>(),
        grants.values().map(|g| g.live).collect::<Vec<_>>(),
        grants.values().map(|g| g.expiry).collect::<Vec<_>>(),
        grants.values().map(|g| g.review).collect::<Vec<_>>(),
        grants.values().map(|g| g.warning).collect::<Vec<_>>(),
        grants.values().map(|g| g.body.as_str()).collect::<Vec<_>>(),
    );
    let campaigns = &rows.campaigns;
    let c = (
        campaigns.keys().copied().collect::<Vec<i64>>(),
        campaigns.values().map(|c| c.0).collect::<Vec<_>>(),
        campaigns.values().map(|c| c.1).collect::<Vec<_>>(),
        campaigns.values().map(|c| c.2.as_str()).collect::<Vec<_>>(),
    );
    let mut cards = (Vec::new(), Vec::new());
    for key in &rows.cards {
        cards.0.push(key.as_str());
        cards.1.push(json("cards", &state.cards[key])?);
    }
    let marks = (
        rows.marks.keys().map(String::as_str).collect::<Vec<_>>(),
        rows.marks.values().map(String::as_str).collect::<Vec<_>>(),
    );
    let seen = (
        rows.seen.keys().map(String::as_str).collect::<Vec<_>>(),
        rows.seen.values().copied().collect::<Vec<_>>(),
    );
    let audit = (
        rows.audit.iter().map(|a| a.0).collect::<Vec<_>>(),
        rows.audit.iter().map(|a| a.1.as_str()).collect::<Vec<_>>(),
    );
    // Completed entries go before new ones: a once-per-key effect queued again after its
    // entry was completed in the same batch reuses the key.
    let (mut deleted, mut retried, mut queued) = (
        vec![],
        (vec![], vec![], vec![]),
        (vec![], vec![], vec![], vec![], vec![]),
    );
    for seq in &rows.outbox {
        match (&state.outbox[seq], state.stored.contains(seq)) {
            (None, true) => deleted.push(*seq),
            (None, false) => {}
            (Some(entry), true) => {
                retried.0.push(*seq);
                retried.1.push(ms(entry.next_attempt_at));
                retried.2.push(json("outbox", entry)?);
            }
            (Some(entry), false) => {
                queued.0.push(*seq);
                queued.1.push(entry.key.as_str());
                queued.2.push(entry.effect.once_per_key());
                queued.3.push(ms(entry.next_attempt_at));
                queued.4.push(json("outbox", entry)?);
            }
        }
    }
    let checkpoint = checkpoint.map(|text| (state.head.seq as i64, text));
    let tally = match state.tally.filter(|_| state.tally != start.2) {
        Some(tally) => Some(json("meta", &tally)?),
        None => None,
    };
    let head_moved = state.head != start.0 || state.last_outbox != start.1;
    let head = (
        state.head.seq as i64,
        state.head.hash.as_str(),
        state.last_outbox as i64,
    );
    let planned: Vec<(&'static str, Vec<&(dyn ToSql + Sync)>)> = [
        (
            WRITE_REQUESTS,
            !r.0.is_empty(),
            vec![
                &r.0 as &(dyn ToSql + Sync),
                &r.1,
                &r.2,
                &r.3,
                &r.4,
                &r.5,
                &r.6,
            ],
        ),
        (
            WRITE_GRANTS,
            !g.0.is_empty(),
            vec![
                &g.0 as &(dyn ToSql + Sync),
                &g.1,
                &g.2,
                &g.3,
                &g.4,
                &g.5,
                &g.6,
                &g.7,
            ],
        ),
        (
            WRITE_CAMPAIGNS,
            !c.0.is_empty(),
            vec![&c.0 as &(dyn ToSql + Sync), &c.1, &c.2, &c.3],
        ),
        (
            WRITE_CARDS,
            !cards.0.is_empty(),
            vec![&cards.0 as &(dyn ToSql + Sync), &cards.1],
        ),
        (
            WRITE_MARKS,
            !marks.0.is_empty(),
            vec![&marks.0 as &(dyn ToSql + Sync), &marks.1],
        ),
        (
            WRITE_SEEN,
            !seen.0.is_empty(),
            vec![&seen.0 as &(dyn ToSql + Sync), &seen.1],
        ),
        (
            WRITE_AUDIT,
            !audit.0.is_empty(),
            vec![&audit.0 as &(dyn ToSql + Sync), &audit.1],
        ),
        (
            DELETE_OUTBOX,
            !deleted.is_empty(),
            vec![&deleted as &(dyn ToSql + Sync)],
        ),
        (
            RETRY_OUTBOX,
            !retried.0.is_empty(),
            vec![&retried.0 as &(dyn ToSql + Sync), &retried.1, &retried.2],
        ),
        (
            QUEUE_OUTBOX,
            !queued.0.is_empty(),
            vec![
                &queued.0 as &(dyn ToSql + Sync),
                &queued.1,
                &queued.2,
                &queued.3,
                &queued.4,
            ],
        ),
    ]
    .into_iter()
    .filter(|(_, wanted, _)| *wanted)
    .map(|(sql, _, params)| (sql, params))
    .chain(
        checkpoint
            .as_ref()
            .map(|(seq, text)| (WRITE_CHECKPOINT, vec![seq as &(dyn ToSql + Sync), text])),
    )
    .chain(
        tally
            .as_ref()
            .map(|text| (WRITE_TALLY, vec![text as &(dyn ToSql + Sync)])),
    )
    .chain(head_moved.then(|| {
        (
            WRITE_HEAD,
            vec![&head.0 as &(dyn ToSql + Sync), &head.1, &head.2],
        )
    }))
    .collect();
    let mut statements = Vec::with_capacity(planned.len());
    for (sql, _) in &planned {
        statements.push(conn.statement(sql).await?);
    }
    let conn = &*conn;
    let writes = planned
        .iter()
        .zip(&statements)
        .map(|((_, params), statement)| conn.execute_prepared(statement, params));
    let committing = Instant::now();
    let (written, committed) = futures_util::future::join(
        futures_util::future::join_all(writes),
        conn.simple("COMMIT"),
    )
    .await;
    // A statement that failed made the `COMMIT` a rollback: its error is the batch's.
    for result in written {
        result?;
    }
    committed?;
    applied
        .commit_micros
        .fetch_add(micros(committing.elapsed()), Ordering::Relaxed);
    Ok(())
}
