//! Read helpers shared by the `Store` methods: versioned records, newest-first listings,
//! time-index range scans and outbox entries. Each is one statement, so each reads one
//! consistent snapshot.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;

use super::PgStore;
use super::write::{ms, parse};
use crate::domain::grant::Grant;
use crate::store::{OutboxEntry, StoreError, Versioned};

/// How many grants `grants_where` reads at a time.
const PAGE: i64 = 500;

impl PgStore {
    pub(super) fn versioned<R: DeserializeOwned>(
        &self,
        sql: &'static str,
        table: &'static str,
        id: u64,
    ) -> Result<Option<Versioned<R>>, StoreError> {
        let id = id as i64;
        let row = self.read(async |conn| {
            let row = conn.query_opt(sql, &[&id]).await?;
            Ok(row.map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1))))
        })?;
        row.map(|(version, body)| {
            Ok(Versioned {
                value: parse(|| format!("{table} key {id}"), &body)?,
                version: version as u64,
            })
        })
        .transpose()
    }

    /// The records `sql` selects as `(id, body)`, in its order.
    pub(super) fn bodies<R: DeserializeOwned, P: ToSql + Sync>(
        &self,
        sql: &'static str,
        table: &'static str,
        param: &P,
    ) -> Result<Vec<R>, StoreError> {
        let rows = self.read(async |conn| {
            let rows = conn.query(sql, &[param]).await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>())
        })?;
        rows.into_iter()
            .map(|(id, body)| parse(|| format!("{table} key {id}"), &body))
            .collect()
    }

    /// Grants newest first that pass `keep`, at most `limit`, read a page at a time.
    pub(super) fn newest_grants_where(
        &self,
        keep: &dyn Fn(&Grant) -> bool,
        limit: usize,
    ) -> Result<Vec<Grant>, StoreError> {
        let mut found = Vec::new();
        let mut before = i64::MAX;
        while found.len() < limit {
            let page: Vec<(i64, String)> = self.read(async |conn| {
                let rows = conn
                    .query(
                        "SELECT id, body FROM grants WHERE id < $1 ORDER BY id DESC LIMIT $2",
                        &[&before, &PAGE],
                    )
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            let last = page.len() < PAGE as usize;
            for (id, body) in page {
                before = id;
                let grant: Grant = parse(|| format!("grants key {id}"), &body)?;
                if keep(&grant) {
                    found.push(grant);
                    if found.len() >= limit {
                        break;
                    }
                }
            }
            if last {
                break;
            }
        }
        Ok(found)
    }

    /// `(time, id)` rows of a time index up to `until`, earliest first.
    pub(super) fn due_until(
        &self,
        sql: &'static str,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, u64)>, StoreError> {
        let (until, limit) = (ms(until), super::limit(limit));
        self.read(async |conn| {
            let rows = conn.query(sql, &[&until, &limit]).await?;
            Ok(rows
                .iter()
                .map(|r| (super::at(r.get(0)), r.get::<_, i64>(1) as u64))
                .collect())
        })
    }

    /// The smallest time `sql` finds strictly after `after` (any, when `None`).
    pub(super) fn first_time(
        &self,
        sql: &'static str,
        after: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let after = after.map(ms);
        self.read(async |conn| {
            let row = conn.query_opt(sql, &[&after]).await?;
            Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)).map(super::at))
        })
    }

    /// Outbox entries `sql` selects as `(seq, entry)`.
    pub(super) fn entries<P: ToSql + Sync>(
        &self,
        sql: &'static str,
        param: &P,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = self.read(async |conn| {
            let rows = conn.query(sql, &[param]).await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>())
        })?;
        rows.into_iter()
            .map(|(seq, entry)| parse(|| format!("outbox seq {seq}"), &entry))
            .collect()
    }

    /// The `limit` entries due longest at `now`, passing over those `skip` names, oldest
    /// (queued first) first.
    pub(super) fn due_entries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        skip: &dyn Fn(u64) -> bool,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let now = ms(now);
        let page = super::limit(limit.max(16));
        let mut due = Vec::new();
        let (mut after_at, mut after_seq) = (i64::MIN, i64::MIN);
        'pages: while due.len() < limit {
            let rows: Vec<(i64, i64, String)> = self.read(async |conn| {
                let rows = conn
                    .query(
                        "SELECT next_attempt_at, seq, entry FROM outbox WHERE next_attempt_at <= $1 \
                         AND (next_attempt_at, seq) > ($2, $3) ORDER BY next_attempt_at, seq LIMIT $4",
                        &[&now, &after_at, &after_seq, &page],
                    )
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
            })?;
            let last = (rows.len() as i64) < page;
            for (at, seq, entry) in rows {
                (after_at, after_seq) = (at, seq);
                if skip(seq as u64) {
                    continue;
                }
                due.push(parse::<OutboxEntry>(
                    || format!("outbox seq {seq}"),
                    &entry,
                )?);
                if due.len() >= limit {
                    break 'pages;
                }
            }
            if last {
                break;
            }
        }
        due.sort_by_key(|entry| entry.seq);
        Ok(due)
    }
}
