//! `PgStore`: the `Store` on a PostgreSQL database that several replicas share.
//!
//! One table per record type (`schema`), with sled's index trees as indexed columns; one
//! write path that applies commits in batches, one transaction each (`write`); the audit
//! chain's checkpoints (`anchor`); backups in sled's format, so that an installation moves
//! between the two stores both ways (`backup`); and the lease that says which replica
//! leads (`lease`). The `Store` is synchronous: `client` runs the queries on a small runtime
//! of the store's own and waits for them on the calling thread.

mod anchor;
mod backup;
mod client;
mod lease;
mod read;
mod schema;
mod write;

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub use client::PgConfig;
pub use lease::{LEASE_TTL, Lease};
pub use schema::PG_SCHEMA_VERSION;
pub use write::{is_leader_work, leader_work, leader_work_if};

use self::client::{CALL_LIMIT, Pool};
use self::write::{Work, json, ms, parse};
use super::backup::{BackupError, Spooled};
use super::{
    Commit, Finished, GrantList, OutboxEntry, Receipt, RequestList, Sequence, Store, StoreError,
    Versioned, Window, WriteStats,
};
use crate::domain::anchor::{AnchorReport, ChainHead, PublishedHead};
use crate::domain::audit::AuditRecord;
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::grant::{Grant, GrantTally};
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::domain::request::AccessRequest;
use crate::domain::review::Campaign;
use crate::domain::session::Session;

pub struct PgStore {
    pool: Pool,
    /// Held while a batch of this replica's commits is applied.
    writer: Mutex<()>,
    /// Work waiting for `writer`, applied together by the next writer to take it.
    waiting: Mutex<Vec<std::sync::Arc<write::Job>>>,
    applied: write::Applied,
    /// The audit key batches are checkpointed with, once given.
    anchor: Mutex<Option<anchor::Anchor>>,
    /// The lease's token, while this replica leads.
    fence: lease::Fence,
}

impl PgStore {
    /// Connects to the database and brings its schema up to date (refusing a newer one).
    pub fn open(config: PgConfig) -> Result<Self, StoreError> {
        let store = Self::connect(config)?;
        let shown = store.pool.shown().to_owned();
        store
            .pool
            .run(CALL_LIMIT, async |conn| schema::migrate(conn, &shown).await)?;
        Ok(store)
    }

    /// Connects without migrating: for `gatehouse migrate` to say what it would do.
    fn connect(config: PgConfig) -> Result<Self, StoreError> {
        Ok(Self {
            pool: Pool::new(config)?,
            writer: Mutex::new(()),
            waiting: Mutex::new(Vec::new()),
            applied: write::Applied::default(),
            anchor: Mutex::new(None),
            fence: lease::Fence::default(),
        })
    }

    /// Runs the schema migrations on the database; the schema it held before.
    pub fn migrate(config: PgConfig) -> Result<(u32, String), StoreError> {
        let store = Self::connect(config)?;
        let shown = store.pool.shown().to_owned();
        let before = store
            .pool
            .run(CALL_LIMIT, async |conn| schema::migrate(conn, &shown).await)?;
        Ok((before, shown))
    }

    /// `host:port/dbname`.
    pub fn shown(&self) -> &str {
        self.pool.shown()
    }

    /// Whether this replica may do leader work now: always, until leases are in force.
    pub fn leads(&self) -> bool {
        self.fence.held()
    }

    /// Runs one read on a pooled connection.
    fn read<T>(
        &self,
        work: impl AsyncFnOnce(&mut client::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.run(CALL_LIMIT, work)
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    crate::store::sled_store::keys::from_millis(ms.max(0) as u64)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store for PgStore {
    fn session(&self, key: &str) -> Result<Option<Session>, StoreError> {
        let key = key.to_owned();
        let text = self.read(async |conn| {
            let row = conn
                .query_opt("SELECT session FROM web_sessions WHERE key = $1", &[&key])
                .await?;
            Ok(row.map(|r| r.get::<_, String>(0)))
        })?;
        text.map(|text| parse(|| "web_sessions".to_owned(), &text))
            .transpose()
    }

    fn put_session(&self, key: &str, session: &Session, _flush: bool) -> Result<(), StoreError> {
        // Committed on its own, so durable whether asked or not (a page view's touch costs
        // one small transaction), and found at once by every replica.
        let (key, text) = (key.to_owned(), json("web_sessions", session)?);
        self.read(async |conn| {
            conn.execute(
                "INSERT INTO web_sessions (key, session) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET session = EXCLUDED.session",
                &[&key, &text],
            )
            .await?;
            Ok(())
        })
    }

    fn end_session(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.read(async |conn| {
            let ended = conn
                .execute("DELETE FROM web_sessions WHERE key = $1", &[&key])
                .await?;
            Ok(ended == 1)
        })
    }

    fn sessions(&self) -> Result<Vec<(String, Session)>, StoreError> {
        let rows = self.read(async |conn| {
            let rows = conn
                .query("SELECT key, session FROM web_sessions ORDER BY key", &[])
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>())
        })?;
        rows.into_iter()
            .map(|(key, text)| Ok((key, parse(|| "web_sessions".to_owned(), &text)?)))
            .collect()
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
        let sql = match seq {
            Sequence::Request => "SELECT nextval('request_ids')",
            Sequence::Grant => "SELECT nextval('grant_ids')",
            Sequence::Campaign => "SELECT nextval('campaign_ids')",
        };
        self.read(async |conn| {
            let row = conn.query_opt(sql, &[]).await?;
            Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
        })
    }

    fn request(&self, id: RequestId) -> Result<Option<Versioned<AccessRequest>>, StoreError> {
        self.versioned(
            "SELECT version, body FROM requests WHERE id = $1",
            "requests",
            id.0,
        )
    }

    fn grant(&self, id: GrantId) -> Result<Option<Versioned<Grant>>, StoreError> {
        self.versioned(
            "SELECT version, body FROM grants WHERE id = $1",
            "grants",
            id.0,
        )
    }

    fn grants_by_id(&self, ids: &[GrantId]) -> Result<Vec<Versioned<Grant>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<i64> = ids.iter().map(|id| id.0 as i64).collect();
        // One round trip for the lot (the outbox looks up a page of revocations at once).
        let rows = self.read(async |conn| {
            let rows = conn
                .query(
                    "SELECT id, version, body FROM grants WHERE id = ANY($1)",
                    &[&wanted],
                )
                .await?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    (
                        r.get::<_, i64>(0),
                        r.get::<_, i64>(1),
                        r.get::<_, String>(2),
                    )
                })
                .collect::<Vec<_>>())
        })?;
        let mut found = HashMap::with_capacity(rows.len());
        for (id, version, body) in rows {
            let grant = parse(|| format!("grants key {id}"), &body)?;
            found.insert(
                id,
                Versioned {
                    value: grant,
                    version: version as u64,
                },
            );
        }
        Ok(wanted
            .iter()
            .filter_map(|id| found.get(id).cloned())
            .collect())
    }

    fn requests_of(&self, person: &PersonId) -> Result<Vec<AccessRequest>, StoreError> {
        let person = person.as_str().to_owned();
        self.bodies(
            "SELECT id, body FROM requests WHERE person = $1 ORDER BY id DESC",
            "requests key",
            &[&person],
        )
    }

    fn pending_for_approver(&self, person: &PersonId) -> Result<Vec<AccessRequest>, StoreError> {
        let person = person.as_str().to_owned();
        self.bodies(
            "SELECT id, body FROM requests WHERE awaiting @> ARRAY[$1::text] ORDER BY id DESC",
            "requests key",
            &[&person],
        )
    }

    fn grants_of(&self, person: &PersonId) -> Result<Vec<Grant>, StoreError> {
        let person = person.as_str().to_owned();
        self.bodies(
            "SELECT id, body FROM grants WHERE person = $1 ORDER BY id DESC",
            "grants key",
            &[&person],
        )
    }

    fn requests(&self, pending_only: bool, limit: usize) -> Result<Vec<AccessRequest>, StoreError> {
        let sql = if pending_only {
            "SELECT id, body FROM requests WHERE pending ORDER BY id DESC LIMIT $1"
        } else {
            "SELECT id, body FROM requests ORDER BY id DESC LIMIT $1"
        };
        self.bodies(sql, "requests key", &[&self::limit(limit)])
    }

    fn grants(&self, live_only: bool, limit: usize) -> Result<Vec<Grant>, StoreError> {
        let sql = if live_only {
            "SELECT id, body FROM grants WHERE live ORDER BY id DESC LIMIT $1"
        } else {
            "SELECT id, body FROM grants ORDER BY id DESC LIMIT $1"
        };
        self.bodies(sql, "grants key", &[&self::limit(limit)])
    }

    fn grants_where(
        &self,
        keep: &dyn Fn(&Grant) -> bool,
        limit: usize,
    ) -> Result<Vec<Grant>, StoreError> {
        self.newest_grants_where(keep, limit)
    }

    fn grant_tally(&self) -> Result<GrantTally, StoreError> {
        let text = self.read(async |conn| {
            let row = conn
                .query_opt("SELECT value FROM meta WHERE key = 'grant_tally'", &[])
                .await?;
            Ok(row.map(|r| r.get::<_, String>(0)))
        })?;
        match text {
            Some(text) => parse(|| "meta key \"grant_tally\"".to_owned(), &text),
            None => Ok(GrantTally::default()),
        }
    }

    fn pending_due(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, RequestId)>, StoreError> {
        let due = self.due_until(
            "SELECT due, id FROM requests WHERE due IS NOT NULL AND due <= $1 ORDER BY due, id LIMIT $2",
            until,
            limit,
        )?;
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
        let due = self.due_until(
            "SELECT expiry, id FROM grants WHERE expiry IS NOT NULL AND expiry <= $1 ORDER BY expiry, id LIMIT $2",
            until,
            limit,
        )?;
        Ok(due.into_iter().map(|(at, id)| (at, GrantId(id))).collect())
    }

    fn reviews_due(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError> {
        let due = self.due_until(
            "SELECT review_due, id FROM grants WHERE review_due IS NOT NULL AND review_due <= $1 ORDER BY review_due, id LIMIT $2",
            until,
            limit,
        )?;
        Ok(due.into_iter().map(|(at, id)| (at, GrantId(id))).collect())
    }

    fn next_review_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.first_time(
            "SELECT min(review_due) FROM grants WHERE $1::bigint IS NULL OR review_due > $1",
            None,
        )
    }

    fn next_pending_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.first_time(
            "SELECT min(due) FROM requests WHERE $1::bigint IS NULL OR due > $1",
            None,
        )
    }

    fn warnings_due(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, GrantId)>, StoreError> {
        let (after, until, limit) = (ms(after), ms(until), self::limit(limit));
        self.read(async |conn| {
            let rows = conn
                .query(
                    "SELECT warning_due, id FROM grants WHERE warning_due > $1 AND warning_due <= $2 \
                     ORDER BY warning_due, id LIMIT $3",
                    &[&after, &until, &limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| (at(r.get(0)), GrantId(r.get::<_, i64>(1) as u64)))
                .collect())
        })
    }

    fn next_warning_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.first_time(
            "SELECT min(warning_due) FROM grants WHERE $1::bigint IS NULL OR warning_due > $1",
            Some(after),
        )
    }

    fn next_effect_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.first_time(
            "SELECT min(next_attempt_at) FROM outbox WHERE $1::bigint IS NULL OR next_attempt_at > $1",
            None,
        )
    }

    fn campaign(&self, id: CampaignId) -> Result<Option<Versioned<Campaign>>, StoreError> {
        self.versioned(
            "SELECT version, body FROM campaigns WHERE id = $1",
            "campaigns",
            id.0,
        )
    }

    fn campaigns(&self, open_only: bool) -> Result<Vec<Versioned<Campaign>>, StoreError> {
        let sql = if open_only {
            "SELECT id, version, body FROM campaigns WHERE open ORDER BY id DESC"
        } else {
            "SELECT id, version, body FROM campaigns ORDER BY id DESC"
        };
        let rows = self.read(async |conn| {
            let rows = conn.query(sql, &[]).await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, i64>(0),
                        r.get::<_, i64>(1),
                        r.get::<_, String>(2),
                    )
                })
                .collect::<Vec<_>>())
        })?;
        rows.into_iter()
            .map(|(id, version, body)| {
                Ok(Versioned {
                    value: parse(|| format!("campaigns key {id}"), &body)?,
                    version: version as u64,
                })
            })
            .collect()
    }

    fn mark(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let name = name.to_owned();
        let text = self.read(async |conn| {
            let row = conn
                .query_opt("SELECT at FROM marks WHERE name = $1", &[&name])
                .await?;
            Ok(row.map(|r| r.get::<_, String>(0)))
        })?;
        text.map(|text| parse(|| format!("marks {name:?}"), &text))
            .transpose()
    }

    fn cards(&self, key: &CardKey) -> Result<Vec<PostedCard>, StoreError> {
        let key = key.to_string();
        let text = self.read(async |conn| {
            let row = conn
                .query_opt("SELECT cards FROM cards WHERE key = $1", &[&key])
                .await?;
            Ok(row.map(|r| r.get::<_, String>(0)))
        })?;
        match text {
            Some(text) => parse(|| format!("cards key {key:?}"), &text),
            None => Ok(Vec::new()),
        }
    }

    fn first_delivery(&self, key: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let (key, until) = (key.to_owned(), ms(until));
        // Committed on its own (a delivery whose work commits nothing): whichever replica a
        // repeat reaches finds it.
        self.read(async |conn| {
            let inserted = conn
                .execute(
                    "INSERT INTO seen (key, until) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                    &[&key, &until],
                )
                .await?;
            Ok(inserted == 1)
        })
    }

    fn delivered(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.read(async |conn| {
            let row = conn
                .query_opt("SELECT 1 FROM seen WHERE key = $1", &[&key])
                .await?;
            Ok(row.is_some())
        })
    }

    fn any_delivered(&self, keys: &[String]) -> Result<bool, StoreError> {
        let keys = keys.to_vec();
        // One round trip for a delivery's ids (a slash command has two), planned for them:
        // see `Conn::query_planned`.
        self.read(async |conn| {
            let rows = conn
                .query_planned(
                    "SELECT 1 FROM seen WHERE key = ANY($1) LIMIT 1",
                    &[(&keys, tokio_postgres::types::Type::TEXT_ARRAY)],
                )
                .await?;
            Ok(!rows.is_empty())
        })
    }

    fn forget_deliveries(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let now = ms(now);
        self.read(async |conn| {
            let gone = conn
                .execute("DELETE FROM seen WHERE until < $1", &[&now])
                .await?;
            Ok(gone as usize)
        })
    }

    fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        self.apply(Work::Commit { commit, done: None }, false)
    }

    fn audit(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let (from, limit) = (from.min(i64::MAX as u64) as i64, self::limit(limit));
        self.bodies(
            "SELECT seq, record FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2",
            "audit seq",
            &[&from, &limit],
        )
    }

    fn verify_audit_against(
        &self,
        published: &[PublishedHead],
    ) -> Result<AnchorReport, StoreError> {
        self.verify_anchored(published)
    }

    fn chain_head(&self) -> Result<Option<ChainHead>, StoreError> {
        let head = self.head()?;
        Ok((head.seq > 0).then_some(head))
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
        // Only the leader starts attempts: a replica that is not hands out nothing.
        if !self.fence.held() {
            return Ok(Vec::new());
        }
        self.due_entries(now, limit, skip)
    }

    fn effects_waiting(&self, now: DateTime<Utc>) -> Result<Vec<OutboxEntry>, StoreError> {
        let now = ms(now);
        self.bodies(
            "SELECT seq, entry FROM outbox WHERE next_attempt_at > $1 ORDER BY seq",
            "outbox seq",
            &[&now],
        )
    }

    fn next_effect_due_after(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.first_time(
            "SELECT min(next_attempt_at) FROM outbox WHERE $1::bigint IS NULL OR next_attempt_at > $1",
            Some(after),
        )
    }

    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.bodies(
            "SELECT seq, entry FROM outbox ORDER BY seq LIMIT $1",
            "outbox seq",
            &[&self::limit(limit)],
        )
    }

    fn effects_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        // Only the leader starts attempts: a replica that is not reads nothing to attempt.
        if !self.fence.held() {
            return Ok(Vec::new());
        }
        // Every batch takes the head lock before it numbers its entries, so batches commit in
        // seq order: a read that sees an entry sees every committed one before it, and none
        // with a smaller seq commits later.
        let (after, limit) = (after.min(i64::MAX as u64) as i64, self::limit(limit));
        self.bodies(
            "SELECT seq, entry FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
            "outbox seq",
            &[&after, &limit],
        )
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
        self.apply_all(works, true)
            .into_iter()
            .map(|result| result.map(drop))
            .collect()
    }

    fn newest_effect(&self) -> Result<Option<u64>, StoreError> {
        self.read(async |conn| {
            let row = conn.query_opt("SELECT max(seq) FROM outbox", &[]).await?;
            Ok(row
                .and_then(|r| r.get::<_, Option<i64>>(0))
                .map(|s| s as u64))
        })
    }

    fn complete_effect(&self, seq: u64, then: Commit) -> Result<(), StoreError> {
        self.apply(
            Work::Commit {
                commit: then,
                done: Some(seq),
            },
            true,
        )
        .map(drop)
    }

    fn retry_effect(
        &self,
        seq: u64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.apply(
            Work::Retry {
                seq,
                at: next_attempt_at,
                error: error.to_owned(),
            },
            true,
        )
        .map(drop)
    }

    fn backup_file(&self) -> Result<Spooled, BackupError> {
        self.spool_backup()
    }

    fn write_stats(&self) -> WriteStats {
        self.applied.stats()
    }
}
