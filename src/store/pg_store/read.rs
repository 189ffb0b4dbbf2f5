//! Read helpers shared by the `Store` methods: versioned records, newest-first listings,
//! time-index range scans and outbox entries. Each is one statement, so each reads one
//! consistent snapshot.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;

use super::PgStore;
use super::write::{ms, parse};
use crate::domain::grant::Grant;
use crate::domain::request::AccessRequest;
use crate::store::{GrantList, OutboxEntry, RequestList, StoreError, Versioned, Window};

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

    /// The records `sql` selects as `(key, body)`, in its order; `what` names a key in
    /// errors ("grants key", "outbox seq").
    pub(super) fn bodies<R: DeserializeOwned>(
        &self,
        sql: &'static str,
        what: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<R>, StoreError> {
        let rows = self.read(async |conn| {
            let rows = conn.query(sql, params).await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>())
        })?;
        rows.into_iter()
            .map(|(key, body)| parse(|| format!("{what} {key}"), &body))
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

/// The statement that reads one [`Window`] of a list, ascending or descending: each takes
/// the person (or nothing), the mark to start beyond and the limit, and reads through the
/// list's index (`requests_by_person`, `pending_by_approver`, `grants_by_person`,
/// `grants_by_expiry`).
fn window_sql(list: Listed, ascending: bool) -> &'static str {
    match (list, ascending) {
        (Listed::RequestsOf, true) => {
            "SELECT id, body FROM requests WHERE person = $1 AND id > $2 ORDER BY id LIMIT $3"
        }
        (Listed::RequestsOf, false) => {
            "SELECT id, body FROM requests WHERE person = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        }
        (Listed::Awaiting, true) => {
            "SELECT id, body FROM requests WHERE awaiting @> ARRAY[$1::text] AND id > $2 ORDER BY id LIMIT $3"
        }
        (Listed::Awaiting, false) => {
            "SELECT id, body FROM requests WHERE awaiting @> ARRAY[$1::text] AND id < $2 ORDER BY id DESC LIMIT $3"
        }
        (Listed::GrantsOf, true) => {
            "SELECT id, body FROM grants WHERE person = $1 AND id > $2 ORDER BY id LIMIT $3"
        }
        (Listed::GrantsOf, false) => {
            "SELECT id, body FROM grants WHERE person = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        }
        (Listed::Live, true) => {
            "SELECT id, body FROM grants WHERE live AND $1::bigint IS NOT NULL AND id > $2 ORDER BY id LIMIT $3"
        }
        (Listed::Live, false) => {
            "SELECT id, body FROM grants WHERE live AND $1::bigint IS NOT NULL AND id < $2 ORDER BY id DESC LIMIT $3"
        }
        (Listed::LiveByEnd, true) => {
            "SELECT id, body FROM grants WHERE expiry IS NOT NULL AND (expiry, id) > ($1, $2) ORDER BY expiry, id LIMIT $3"
        }
        (Listed::LiveByEnd, false) => {
            "SELECT id, body FROM grants WHERE expiry IS NOT NULL AND (expiry, id) < ($1, $2) ORDER BY expiry DESC, id DESC LIMIT $3"
        }
    }
}

#[derive(Clone, Copy)]
enum Listed {
    RequestsOf,
    Awaiting,
    GrantsOf,
    Live,
    LiveByEnd,
}

impl PgStore {
    pub(super) fn requests_in_window(
        &self,
        list: &RequestList,
        window: Window,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let (listed, person) = match list {
            RequestList::Of(person) => (Listed::RequestsOf, person),
            RequestList::AwaitingApprover(person) => (Listed::Awaiting, person),
        };
        let sql = window_sql(listed, window.ascending);
        let person_text = person.as_str().to_owned();
        let after = beyond(window).1;
        let rows = self.window_rows(sql, &person_text, &after, window.limit)?;
        rows.into_iter()
            .map(|(id, body)| parse(|| format!("requests key {id}"), &body))
            .collect()
    }

    pub(super) fn grants_in_window(
        &self,
        list: &GrantList,
        window: Window,
    ) -> Result<Vec<Grant>, StoreError> {
        let (at, id) = beyond(window);
        let rows = match list {
            GrantList::Of(person) => {
                let sql = window_sql(Listed::GrantsOf, window.ascending);
                self.window_rows(sql, &person.as_str().to_owned(), &id, window.limit)?
            }
            GrantList::Live => {
                let sql = window_sql(Listed::Live, window.ascending);
                self.window_rows(sql, &at, &id, window.limit)?
            }
            GrantList::LiveByEnd => {
                let sql = window_sql(Listed::LiveByEnd, window.ascending);
                self.window_rows(sql, &at, &id, window.limit)?
            }
        };
        rows.into_iter()
            .map(|(id, body)| parse(|| format!("grants key {id}"), &body))
            .collect()
    }

    fn window_rows<A: ToSql + Sync, B: ToSql + Sync>(
        &self,
        sql: &'static str,
        first: &A,
        second: &B,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(async |conn| {
            let rows = conn.query(sql, &[first, second, &limit]).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }
}

/// Where a window starts, as the columns compare: its mark, or before every row (ascending)
/// or after every row (descending).
fn beyond(window: Window) -> (i64, i64) {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    match (window.after, window.ascending) {
        (Some(mark), _) => (clamp(mark.at_ms), clamp(mark.id)),
        (None, true) => (i64::MIN, i64::MIN),
        (None, false) => (i64::MAX, i64::MAX),
    }
}
