//! The tables, and the versioned migrations that make them. Every tree of the sled store has
//! its table here; sled's index trees are indexed columns of the records they index (a
//! partial index where sled keeps only some records, such as live grants by expiry).
//!
//! Migrations run as a replica opens the store (and with `gatehouse migrate`), one
//! transaction each, under an advisory lock so that replicas starting together take turns;
//! `gatehouse_schema` says which ran. A database with a newer schema than this build knows
//! is refused, as sled refuses a newer data directory.

use super::client::Conn;
use crate::store::StoreError;

/// The newest schema this build knows.
pub const PG_SCHEMA_VERSION: u32 = 2;

/// Held while migrating, so that only one replica migrates at a time.
const MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573; // "gatehous"

/// Migration `n` brings schema `n - 1` to `n`.
const MIGRATIONS: [&str; PG_SCHEMA_VERSION as usize] = [
    r#"
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE marks (name text PRIMARY KEY, at text NOT NULL);

CREATE TABLE requests (
    id bigint PRIMARY KEY,
    version bigint NOT NULL,
    person text NOT NULL,
    pending boolean NOT NULL,
    due bigint,
    -- The approvers of the current stage of a pending request (`AccessRequest::awaiting`).
    awaiting text[] NOT NULL DEFAULT '{}',
    body text NOT NULL
);
CREATE INDEX requests_by_person ON requests (person, id);
CREATE INDEX pending_by_approver ON requests USING gin (awaiting);
CREATE INDEX pending_by_due ON requests (due, id) WHERE due IS NOT NULL;
CREATE INDEX requests_pending ON requests (id) WHERE pending;

CREATE TABLE grants (
    id bigint PRIMARY KEY,
    version bigint NOT NULL,
    person text NOT NULL,
    live boolean NOT NULL,
    expiry bigint,
    review_due bigint,
    warning_due bigint,
    body text NOT NULL
);
CREATE INDEX grants_by_person ON grants (person, id);
CREATE INDEX grants_by_expiry ON grants (expiry, id) WHERE expiry IS NOT NULL;
CREATE INDEX reviews_by_due ON grants (review_due, id) WHERE review_due IS NOT NULL;
CREATE INDEX warnings_by_due ON grants (warning_due, id) WHERE warning_due IS NOT NULL;
CREATE INDEX grants_live ON grants (id) WHERE live;

CREATE TABLE campaigns (
    id bigint PRIMARY KEY,
    version bigint NOT NULL,
    open boolean NOT NULL,
    body text NOT NULL
);

CREATE TABLE audit (seq bigint PRIMARY KEY, record text NOT NULL);
CREATE TABLE audit_checkpoints (seq bigint PRIMARY KEY, checkpoint text NOT NULL);
-- The head of the chain and the last outbox seq: every commit that appends locks this row,
-- so that the chain stays one line across replicas and outbox seqs follow commit order.
CREATE TABLE audit_head (
    id int PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    hash text NOT NULL,
    last_outbox_seq bigint NOT NULL
);
INSERT INTO audit_head VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

CREATE TABLE outbox (
    seq bigint PRIMARY KEY,
    key text NOT NULL,
    once boolean NOT NULL,
    next_attempt_at bigint NOT NULL,
    entry text NOT NULL
);
CREATE UNIQUE INDEX outbox_keys ON outbox (key) WHERE once;
CREATE INDEX outbox_by_due ON outbox (next_attempt_at, seq);

CREATE TABLE cards (key text PRIMARY KEY, cards text NOT NULL);
CREATE TABLE seen (key text PRIMARY KEY, until bigint NOT NULL);
CREATE INDEX seen_until ON seen (until);

CREATE SEQUENCE request_ids;
CREATE SEQUENCE grant_ids;
CREATE SEQUENCE campaign_ids;

-- Who runs the scheduler and the outbox: the holder of an unexpired lease. `token` grows at
-- every takeover; work only the leader may do checks it in the same transaction.
CREATE TABLE leader (
    id int PRIMARY KEY CHECK (id = 1),
    holder text,
    token bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
INSERT INTO leader VALUES (1, NULL, 0, '-infinity');
"#,
    r#"
-- Web portal sessions by key (a hash of the cookie's secret): no record of Gatehouse's, so
-- neither audited nor in backups; a restore signs everyone out.
CREATE TABLE web_sessions (key text PRIMARY KEY, session text NOT NULL);
"#,
];

/// The schema the database holds (0 when Gatehouse never ran on it).
pub(super) async fn version(conn: &mut Conn) -> Result<u32, StoreError> {
    conn.simple("CREATE TABLE IF NOT EXISTS gatehouse_schema (version integer NOT NULL)")
        .await?;
    let row = conn
        .query_opt("SELECT max(version) FROM gatehouse_schema", &[])
        .await?;
    let found: Option<i32> = row.and_then(|r| r.get(0));
    Ok(found.map_or(0, |v| v.max(0) as u32))
}

/// Brings the database up to [`PG_SCHEMA_VERSION`]; the schema it found.
pub(super) async fn migrate(conn: &mut Conn, shown: &str) -> Result<u32, StoreError> {
    conn.simple("BEGIN").await?;
    let done = migrate_locked(conn, shown).await;
    match &done {
        Ok(_) => conn.simple("COMMIT").await?,
        Err(_) => {
            let _ = conn.simple("ROLLBACK").await;
        }
    }
    done
}

async fn migrate_locked(conn: &mut Conn, shown: &str) -> Result<u32, StoreError> {
    conn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let found = version(conn).await?;
    if found > PG_SCHEMA_VERSION {
        return Err(StoreError::DatabaseTooNew {
            shown: shown.to_owned(),
            found,
            supported: PG_SCHEMA_VERSION,
        });
    }
    for to in found + 1..=PG_SCHEMA_VERSION {
        tracing::info!(to, database = shown, "migrating the database schema");
        conn.simple(MIGRATIONS[to as usize - 1]).await?;
        let to = to as i32;
        conn.execute("INSERT INTO gatehouse_schema (version) VALUES ($1)", &[&to])
            .await?;
    }
    Ok(found)
}
