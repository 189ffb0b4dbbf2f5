//! The write path: commits applied in batches, one SQL transaction per batch, as the sled
//! store applies them under its writer lock.
//!
//! Every batch first locks the chain's head row (`audit_head … FOR UPDATE`), so that batches
//! from every replica take turns: the audit chain stays one line, outbox seqs follow commit
//! order, and the records a batch reads cannot change under it (every writer takes that lock
//! first, so none waits for another in a different order). Within a replica, commits that
//! arrive while a batch is being applied wait and go together in the next one, so that one
//! transaction (and one fsync of PostgreSQL's log) serves many. Each commit of a batch runs
//! under a savepoint: one that finds a record changed is rolled back alone with `Conflict`,
//! as it would be alone. Work only the leader may do (the outbox's completions and retries,
//! the scheduler's commits) also checks the lease's fencing token in the same transaction,
//! holding the `leader` row against a takeover until it commits.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
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
use crate::domain::request::AccessRequest;
use crate::domain::review::Campaign;
use crate::store::sled_store::keys::millis;
use crate::store::{Commit, Expect, OutboxEntry, Receipt, RequestWrite, StoreError, WriteStats};

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

fn is_leader_work() -> bool {
    LEADER_WORK.with(Cell::get)
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
        let fence = if leader || is_leader_work() {
            self.fence.token()?
        } else {
            None
        };
        // As on sled: effects are due from the time of the change, by the engine's clock (never
        // the wall clock); a commit that does not say when (a store test's) is due at once.
        let queued_at = match &work {
            Work::Commit { commit, .. } => commit
                .events
                .first()
                .map(|e| e.at)
                .or(commit.at)
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            Work::Retry { at, .. } => *at,
        };
        let job = Arc::new(Job {
            work,
            queued_at,
            fence,
            result: Mutex::new(None),
        });
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(job.clone());
        let guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let result = match job.take() {
            Some(result) => result,
            None => {
                let batch = std::mem::take(
                    &mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner),
                );
                let started = Instant::now();
                self.apply_batch(&batch);
                self.applied
                    .commits
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.applied.batches.fetch_add(1, Ordering::Relaxed);
                self.applied
                    .busy_micros
                    .fetch_add(micros(started.elapsed()), Ordering::Relaxed);
                job.take().unwrap_or_else(|| {
                    Err(StoreError::Database(
                        "a commit was lost by a writer that panicked while applying it".to_owned(),
                    ))
                })
            }
        };
        drop(guard);
        result
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
                    job.finish(Err(match &e {
                        StoreError::Conflict => StoreError::Conflict,
                        StoreError::Deposed => StoreError::Deposed,
                        other => {
                            StoreError::Database(other.to_string().replacen("the database ", "", 1))
                        }
                    }));
                }
            }
        }
    }
}

/// What a batch has moved so far; restored when one of its commits is rolled back.
#[derive(Clone)]
struct Moved {
    head: ChainHead,
    last_outbox: u64,
    /// The grant tally, once read.
    tally: Option<GrantTally>,
}

/// Applies the jobs inside the open transaction and commits it; each job's result. A
/// single job that fails fails the batch (`Err`), so that its transaction rolls back.
async fn land(
    conn: &mut Conn,
    batch: &[Arc<Job>],
    anchor: Option<&mut super::anchor::Anchor>,
    applied: &Applied,
) -> Result<Vec<Result<Receipt, StoreError>>, StoreError> {
    // The transaction and the lock every batch takes first, in one round trip.
    let rows = conn
        .simple_rows(
            "BEGIN; SELECT seq, hash, last_outbox_seq FROM audit_head WHERE id = 1 FOR UPDATE",
        )
        .await?;
    let missing = || StoreError::Database("the audit_head row is missing or damaged".to_owned());
    let row = rows.first().ok_or_else(missing)?;
    let number = |i: usize| -> Result<u64, StoreError> {
        row.get(i)
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .ok_or_else(missing)
    };
    let start = Moved {
        head: ChainHead {
            seq: number(0)?,
            hash: row.get(1).cloned().flatten().ok_or_else(missing)?,
        },
        last_outbox: number(2)?,
        tally: None,
    };
    let token = if batch.iter().any(|job| job.fence.is_some()) {
        let row = conn
            .query_opt("SELECT token FROM leader WHERE id = 1 FOR SHARE", &[])
            .await?;
        row.map(|r| r.get::<_, i64>(0) as u64)
    } else {
        None
    };
    let alone = batch.len() == 1;
    let mut moved = start.clone();
    let mut results = Vec::with_capacity(batch.len());
    // The savepoint of the last commit that landed, released with the next one's taken.
    let mut release = false;
    for job in batch {
        if job.fence.is_some() && job.fence != token {
            if alone {
                return Err(StoreError::Deposed);
            }
            results.push(Err(StoreError::Deposed));
            continue;
        }
        if alone {
            results.push(Ok(stage(conn, job, &mut moved).await?));
            continue;
        }
        conn.simple(if std::mem::take(&mut release) {
            "RELEASE SAVEPOINT job; SAVEPOINT job"
        } else {
            "SAVEPOINT job"
        })
        .await?;
        let before = moved.clone();
        match stage(conn, job, &mut moved).await {
            Ok(receipt) => {
                release = true;
                results.push(Ok(receipt));
            }
            Err(e) => {
                conn.simple("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")
                    .await?;
                moved = before;
                results.push(Err(e));
            }
        }
    }
    if let (Some(anchor), true) = (anchor, moved.head.seq != start.head.seq) {
        let checkpoint = anchor.checkpoint(&moved.head);
        let text = json("audit_checkpoints", &checkpoint)?;
        let seq = moved.head.seq as i64;
        conn.execute(
            "INSERT INTO audit_checkpoints (seq, checkpoint) VALUES ($1, $2)",
            &[&seq, &text],
        )
        .await?;
    }
    if let Some(tally) = moved.tally.filter(|_| moved.tally != start.tally) {
        let text = json("meta", &tally)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('grant_tally', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&text],
        )
        .await?;
    }
    // The head moves with the commit, in its round trip (its values are numbers and the hex
    // of a hash this writer computed: nothing in them is SQL).
    let mut finish = String::new();
    if moved.head != start.head || moved.last_outbox != start.last_outbox {
        if !moved.head.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Database(format!(
                "the audit head hash {:?} is not hex",
                moved.head.hash
            )));
        }
        finish = format!(
            "UPDATE audit_head SET seq = {}, hash = '{}', last_outbox_seq = {} WHERE id = 1; ",
            moved.head.seq, moved.head.hash, moved.last_outbox
        );
    }
    finish.push_str("COMMIT");
    let committing = Instant::now();
    conn.simple(&finish).await?;
    applied
        .commit_micros
        .fetch_add(micros(committing.elapsed()), Ordering::Relaxed);
    Ok(results)
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

async fn stage(conn: &mut Conn, job: &Job, moved: &mut Moved) -> Result<Receipt, StoreError> {
    match &job.work {
        Work::Commit { commit, done } => {
            if let Some(seq) = done {
                let seq = *seq as i64;
                let removed = conn
                    .execute("DELETE FROM outbox WHERE seq = $1", &[&seq])
                    .await?;
                if removed == 0 {
                    return Err(StoreError::Conflict);
                }
            }
            write(conn, commit, job.queued_at, moved).await
        }
        Work::Retry { seq, at, error } => {
            let seq = *seq as i64;
            let row = conn
                .query_opt("SELECT entry FROM outbox WHERE seq = $1", &[&seq])
                .await?;
            let Some(row) = row else {
                return Ok(Receipt::default());
            };
            let mut entry: OutboxEntry = parse(|| format!("outbox seq {seq}"), row.get(0))?;
            entry.attempts = entry.attempts.saturating_add(1);
            entry.next_attempt_at = *at;
            entry.last_error = Some(error.clone());
            let text = json("outbox", &entry)?;
            conn.execute(
                "UPDATE outbox SET next_attempt_at = $2, entry = $3 WHERE seq = $1",
                &[&seq, &ms(*at), &text],
            )
            .await?;
            Ok(Receipt::default())
        }
    }
}

async fn write(
    conn: &mut Conn,
    commit: &Commit,
    queued_at: DateTime<Utc>,
    moved: &mut Moved,
) -> Result<Receipt, StoreError> {
    write_requests(conn, &commit.requests).await?;
    write_grants(conn, &commit.grants, moved).await?;
    write_campaigns(conn, &commit.campaigns).await?;
    for (about, card) in &commit.cards {
        let key = about.to_string();
        let row = conn
            .query_opt("SELECT cards FROM cards WHERE key = $1", &[&key])
            .await?;
        let mut posted: Vec<PostedCard> = match row {
            Some(row) => parse(|| format!("cards key {key:?}"), row.get(0))?,
            None => Vec::new(),
        };
        // One effect posts one card per recipient on each platform that reaches them.
        let known = |p: &PostedCard| {
            p.effect_key == card.effect_key
                && p.recipient == card.recipient
                && p.platform == card.platform
        };
        if !posted.iter().any(known) {
            posted.push(card.clone());
        }
        let text = json("cards", &posted)?;
        conn.execute(
            "INSERT INTO cards (key, cards) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET cards = EXCLUDED.cards",
            &[&key, &text],
        )
        .await?;
    }
    for (name, at) in &commit.marks {
        let text = json("marks", at)?;
        conn.execute(
            "INSERT INTO marks (name, at) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at",
            &[name, &text],
        )
        .await?;
    }
    let audit_seqs = append_events(conn, commit, moved).await?;
    queue_effects(conn, commit, queued_at, moved).await?;
    Ok(Receipt { audit_seqs })
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> u64) -> Vec<i64> {
    items.iter().map(|item| id(item) as i64).collect()
}

async fn versions(
    conn: &mut Conn,
    sql: &'static str,
    ids: &[i64],
) -> Result<HashMap<i64, i64>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = conn.query(sql, &[&ids]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn write_requests(conn: &mut Conn, writes: &[RequestWrite]) -> Result<(), StoreError> {
    // The version is checked by the write itself: a row written means it matched (a later
    // write of the same request in this commit sees the earlier one, as on sled).
    for write in writes {
        let request: &AccessRequest = &write.request;
        let id = request.id.0 as i64;
        let body = json("requests", request)?;
        let due = write.due.map(ms);
        let awaiting: Vec<&str> = request.awaiting().map(PersonId::as_str).collect();
        let written = match write.expect {
            Expect::New => {
                conn.execute(
                    "INSERT INTO requests (id, version, person, pending, due, awaiting, body) \
                     VALUES ($1, 1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                    &[
                        &id,
                        &request.requester.as_str(),
                        &request.is_pending(),
                        &due,
                        &awaiting,
                        &body,
                    ],
                )
                .await?
            }
            Expect::Version(v) => {
                let v = v as i64;
                conn.execute(
                    "UPDATE requests SET version = version + 1, pending = $3, due = $4, \
                     awaiting = $5, body = $6 WHERE id = $1 AND version = $2",
                    &[&id, &v, &request.is_pending(), &due, &awaiting, &body],
                )
                .await?
            }
        };
        if written == 0 {
            return Err(StoreError::Conflict);
        }
    }
    Ok(())
}

async fn write_grants(
    conn: &mut Conn,
    writes: &[(Grant, Expect)],
    moved: &mut Moved,
) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    let ids = ids(writes, |(g, _)| g.id.0);
    let rows = conn
        .query(
            "SELECT id, version, body FROM grants WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    let mut stored: HashMap<i64, (i64, GrantTally)> = HashMap::new();
    for row in rows {
        let id: i64 = row.get(0);
        let old: Grant = parse(|| format!("grants key {id}"), row.get(2))?;
        stored.insert(id, (row.get(1), GrantTally::of(&old)));
    }
    if moved.tally.is_none() {
        let row = conn
            .query_opt("SELECT value FROM meta WHERE key = 'grant_tally'", &[])
            .await?;
        moved.tally = Some(match row {
            Some(row) => parse(|| "meta key \"grant_tally\"".to_owned(), row.get(0))?,
            None => GrantTally::default(),
        });
    }
    for (grant, expect) in writes {
        let id = grant.id.0 as i64;
        let old = stored.get(&id).copied();
        let version = next_version(*expect, old.map(|(v, _)| v))?;
        let before = old.map(|(_, t)| t).unwrap_or_default();
        let after = GrantTally::of(grant);
        if before != after {
            moved.tally = moved.tally.map(|tally| tally.moved(before, after));
        }
        stored.insert(id, (version, after));
        let body = json("grants", grant)?;
        let expiry = grant.expires_at.filter(|_| grant.state.is_live()).map(ms);
        let review = grant.review_reminder().map(ms);
        let warning = grant.warning_owed().map(ms);
        conn.execute(
            "INSERT INTO grants (id, version, person, live, expiry, review_due, warning_due, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET \
             version = EXCLUDED.version, live = EXCLUDED.live, expiry = EXCLUDED.expiry, \
             review_due = EXCLUDED.review_due, warning_due = EXCLUDED.warning_due, \
             body = EXCLUDED.body",
            &[
                &id,
                &version,
                &grant.person.as_str(),
                &grant.is_live(),
                &expiry,
                &review,
                &warning,
                &body,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn write_campaigns(conn: &mut Conn, writes: &[(Campaign, Expect)]) -> Result<(), StoreError> {
    let ids = ids(writes, |(c, _)| c.id.0);
    let mut stored = versions(
        conn,
        "SELECT id, version FROM campaigns WHERE id = ANY($1)",
        &ids,
    )
    .await?;
    for (campaign, expect) in writes {
        let id = campaign.id.0 as i64;
        let version = next_version(*expect, stored.get(&id).copied())?;
        stored.insert(id, version);
        let body = json("campaigns", campaign)?;
        conn.execute(
            "INSERT INTO campaigns (id, version, open, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, \
             open = EXCLUDED.open, body = EXCLUDED.body",
            &[&id, &version, &campaign.is_open(), &body],
        )
        .await?;
    }
    Ok(())
}

async fn append_events(
    conn: &mut Conn,
    commit: &Commit,
    moved: &mut Moved,
) -> Result<Vec<u64>, StoreError> {
    if commit.events.is_empty() {
        return Ok(Vec::new());
    }
    let mut seqs = Vec::with_capacity(commit.events.len());
    let mut texts = Vec::with_capacity(commit.events.len());
    for event in &commit.events {
        let seq = moved.head.seq + 1;
        let record = AuditRecord::chain(seq, &moved.head.hash, event.clone());
        texts.push(json("audit", &record)?);
        moved.head = ChainHead {
            seq,
            hash: record.hash,
        };
        seqs.push(seq);
    }
    let at: Vec<i64> = seqs.iter().map(|s| *s as i64).collect();
    conn.execute(
        "INSERT INTO audit (seq, record) SELECT * FROM unnest($1::bigint[], $2::text[])",
        &[&at, &texts],
    )
    .await?;
    Ok(seqs)
}

async fn queue_effects(
    conn: &mut Conn,
    commit: &Commit,
    queued_at: DateTime<Utc>,
    moved: &mut Moved,
) -> Result<(), StoreError> {
    if commit.effects.is_empty() {
        return Ok(());
    }
    let once_keys: Vec<String> = commit
        .effects
        .iter()
        .filter(|e| e.once_per_key())
        .map(|e| e.idempotency_key(0))
        .collect();
    let mut known: HashSet<String> = if once_keys.is_empty() {
        HashSet::new()
    } else {
        let rows = conn
            .query(
                "SELECT key FROM outbox WHERE once AND key = ANY($1)",
                &[&once_keys],
            )
            .await?;
        rows.iter().map(|r| r.get(0)).collect()
    };
    let (mut seqs, mut keys, mut once, mut entries) = (vec![], vec![], vec![], vec![]);
    let mut last = moved.last_outbox;
    for effect in &commit.effects {
        let seq = last + 1;
        let key = effect.idempotency_key(seq);
        // Only effects that happen once per key are looked up by it; the others' keys embed
        // their seq, so none can be queued twice.
        let is_once = effect.once_per_key();
        if is_once && !known.insert(key.clone()) {
            continue;
        }
        let entry = OutboxEntry {
            seq,
            key: key.clone(),
            effect: effect.clone(),
            attempts: 0,
            next_attempt_at: queued_at,
            last_error: None,
        };
        seqs.push(seq as i64);
        keys.push(key);
        once.push(is_once);
        entries.push(json("outbox", &entry)?);
        last = seq;
    }
    if seqs.is_empty() {
        return Ok(());
    }
    let due = ms(queued_at);
    conn.execute(
        "INSERT INTO outbox (seq, key, once, next_attempt_at, entry) \
         SELECT s, k, o, $4, e FROM unnest($1::bigint[], $2::text[], $3::boolean[], $5::text[]) \
         AS t(s, k, o, e)",
        &[&seqs, &keys, &once, &due, &entries],
    )
    .await?;
    moved.last_outbox = last;
    Ok(())
}
