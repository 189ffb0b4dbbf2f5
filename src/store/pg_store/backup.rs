//! Backups of a PostgreSQL store in the sled store's format (see [`crate::store::backup`]):
//! every table written as the trees and keys sled would hold, indexes included. So a backup
//! taken from either store restores into either, and `gatehouse migrate` moves an
//! installation between them both ways by taking a backup from one and restoring it into the
//! other, verified on the way (audit chain, checkpoints, records against their events).
//!
//! A backup reads one snapshot (a `REPEATABLE READ` transaction) while commits go on. A
//! restore fills an empty database in one transaction, from the index-free part of the
//! backup (index columns are computed from the records, as a commit computes them).

use std::io::{BufWriter, Seek, SeekFrom, Write};

use super::PgStore;
use super::client::Conn;
use super::write::{json, ms, parse};
use crate::domain::anchor::{AuditKey, ChainHead};
use crate::domain::grant::{Grant, GrantTally};
use crate::domain::request::AccessRequest;
use crate::domain::review::Campaign;
use crate::engine::{Clock, SystemClock};
use crate::store::backup::{Backup, BackupError, Header, Spooled, Summary, Writer};
use crate::store::sled_store::keys::*;
use crate::store::{OutboxEntry, SCHEMA_VERSION, Store, StoreError, verify_backup};

/// How long taking or restoring a backup may take.
const BACKUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);
/// Rows inserted per statement by a restore.
const CHUNK: usize = 1_000;

type Out<'w, W> = &'w mut Writer<W>;

impl PgStore {
    /// Everything stored, read in one snapshot and written to `out` in sled's layout; the
    /// output, the header and the number of entries.
    pub fn write_backup<W: Write>(&self, out: W) -> Result<(W, Header, usize), BackupError> {
        // A backup is dated by the wall clock, for the operator who keeps it.
        let header = Header::at(SCHEMA_VERSION, SystemClock.now());
        let mut writer = Writer::new(out, &header)?;
        self.pool.run(BACKUP_LIMIT, async |conn| {
            conn.simple("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            let written = snapshot(conn, &mut writer).await;
            let _ = conn.simple("COMMIT").await;
            written.map_err(|e| match e {
                BackupError::Store(e) => e,
                other => StoreError::Database(other.to_string()),
            })
        })?;
        let (out, entries) = writer.finish()?;
        Ok((out, header, entries))
    }

    /// [`PgStore::write_backup`] to an unnamed temporary file.
    pub(super) fn spool_backup(&self) -> Result<Spooled, BackupError> {
        let file = tempfile_in_tmp()?;
        let (out, header, entries) = self.write_backup(BufWriter::new(file))?;
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Spooled {
            file,
            header,
            entries,
        })
    }

    /// Restores `backup` into this store's database, which must hold nothing yet. The
    /// backup must pass [`verify_backup`] with `key`; the database then verifies as well.
    pub fn restore(&self, backup: &Backup, key: Option<&AuditKey>) -> Result<Summary, BackupError> {
        let summary = verify_backup(backup, key)?;
        let shown = self.shown().to_owned();
        self.pool.run(BACKUP_LIMIT, async |conn| {
            conn.simple("BEGIN").await?;
            let filled = fill(conn, backup, &shown).await;
            match filled {
                Ok(()) => conn.simple("COMMIT").await,
                Err(e) => {
                    let _ = conn.simple("ROLLBACK").await;
                    Err(e)
                }
            }
        })?;
        self.verify_audit()?;
        Ok(summary)
    }
}

fn tempfile_in_tmp() -> std::io::Result<std::fs::File> {
    static SPOOLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SPOOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(".gatehouse-backup-{}-{n}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Writes every tree, in the order of `TREE_NAMES`.
async fn snapshot<W: Write>(conn: &mut Conn, out: Out<'_, W>) -> Result<(), BackupError> {
    let requests = conn
        .query(
            "SELECT id, version, person, due, body FROM requests ORDER BY id",
            &[],
        )
        .await?;
    for row in &requests {
        let (id, version, due, body): (i64, i64, Option<i64>, String) =
            (row.get(0), row.get(1), row.get(3), row.get(4));
        let r: AccessRequest = parse(|| format!("requests key {id}"), &body)?;
        let stored = Stored {
            v: version as u64,
            due: due.map(|d| d as u64),
            r,
        };
        out.entry(
            REQUESTS,
            &id_key(id as u64),
            &encode(REQUESTS, &[], &stored)?,
        )?;
    }
    for row in &requests {
        let (id, person): (i64, String) = (row.get(0), row.get(2));
        let key = person_key(&crate::domain::ids::PersonId::new(&person), id as u64);
        out.entry(REQUESTS_BY_PERSON, &key, EMPTY)?;
    }
    for row in &requests {
        if let Some(due) = row.get::<_, Option<i64>>(3) {
            out.entry(
                PENDING_BY_DUE,
                &time_key(due as u64, row.get::<_, i64>(0) as u64),
                EMPTY,
            )?;
        }
    }
    drop(requests);
    let grants = conn
        .query(
            "SELECT id, version, person, expiry, review_due, warning_due, body FROM grants ORDER BY id",
            &[],
        )
        .await?;
    let mut live = Vec::new();
    for row in &grants {
        let (id, version, body): (i64, i64, String) = (row.get(0), row.get(1), row.get(6));
        let r: Grant = parse(|| format!("grants key {id}"), &body)?;
        if r.is_live() {
            live.push(id as u64);
        }
        let stored = Stored {
            v: version as u64,
            due: None,
            r,
        };
        out.entry(GRANTS, &id_key(id as u64), &encode(GRANTS, &[], &stored)?)?;
    }
    time_index(out, GRANTS_BY_EXPIRY, &grants, 3)?;
    for row in &grants {
        let (id, person): (i64, String) = (row.get(0), row.get(2));
        let key = person_key(&crate::domain::ids::PersonId::new(&person), id as u64);
        out.entry(GRANTS_BY_PERSON, &key, EMPTY)?;
    }
    for row in conn
        .query("SELECT seq, record FROM audit ORDER BY seq", &[])
        .await?
    {
        let seq: i64 = row.get(0);
        out.entry(AUDIT, &id_key(seq as u64), row.get::<_, &str>(1).as_bytes())?;
    }
    let outbox = conn
        .query(
            "SELECT seq, key, once, next_attempt_at, entry FROM outbox ORDER BY seq",
            &[],
        )
        .await?;
    for row in &outbox {
        let seq: i64 = row.get(0);
        out.entry(
            OUTBOX,
            &id_key(seq as u64),
            row.get::<_, &str>(4).as_bytes(),
        )?;
    }
    for row in &outbox {
        if row.get::<_, bool>(2) {
            let seq: i64 = row.get(0);
            out.entry(
                OUTBOX_KEYS,
                row.get::<_, &str>(1).as_bytes(),
                &id_key(seq as u64),
            )?;
        }
    }
    for row in conn
        .query("SELECT id, version, body FROM campaigns ORDER BY id", &[])
        .await?
    {
        let (id, version, body): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
        let r: Campaign = parse(|| format!("campaigns key {id}"), &body)?;
        let stored = Stored {
            v: version as u64,
            due: None,
            r,
        };
        out.entry(
            CAMPAIGNS,
            &id_key(id as u64),
            &encode(CAMPAIGNS, &[], &stored)?,
        )?;
    }
    time_index(out, REVIEWS_BY_DUE, &grants, 4)?;
    for row in conn
        .query("SELECT key, cards FROM cards ORDER BY key", &[])
        .await?
    {
        out.entry(
            CARDS,
            row.get::<_, &str>(0).as_bytes(),
            row.get::<_, &str>(1).as_bytes(),
        )?;
    }
    for row in conn
        .query("SELECT key, until FROM seen ORDER BY key", &[])
        .await?
    {
        let until: i64 = row.get(1);
        out.entry(
            SEEN,
            row.get::<_, &str>(0).as_bytes(),
            &(until as u64).to_be_bytes(),
        )?;
    }
    meta(conn, out).await?;
    time_index(out, WARNINGS_BY_DUE, &grants, 5)?;
    for row in conn
        .query(
            "SELECT seq, checkpoint FROM audit_checkpoints ORDER BY seq",
            &[],
        )
        .await?
    {
        let seq: i64 = row.get(0);
        out.entry(
            AUDIT_CHECKPOINTS,
            &id_key(seq as u64),
            row.get::<_, &str>(1).as_bytes(),
        )?;
    }
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for row in conn
        .query(
            "SELECT id, awaiting FROM requests WHERE awaiting <> '{}'",
            &[],
        )
        .await?
    {
        let (id, awaiting): (i64, Vec<String>) = (row.get(0), row.get(1));
        for person in awaiting {
            keys.push(person_key(
                &crate::domain::ids::PersonId::new(&person),
                id as u64,
            ));
        }
    }
    keys.sort_unstable();
    for key in keys {
        out.entry(PENDING_BY_APPROVER, &key, EMPTY)?;
    }
    for id in live {
        out.entry(GRANTS_LIVE, &id_key(id), EMPTY)?;
    }
    Ok(())
}

/// The entries of a time index over grants: column `at` of each row that has it.
fn time_index<W: Write>(
    out: Out<'_, W>,
    tree: &str,
    grants: &[tokio_postgres::Row],
    at: usize,
) -> Result<(), BackupError> {
    let mut keys: Vec<[u8; 16]> = grants
        .iter()
        .filter_map(|row| {
            let due: Option<i64> = row.get(at);
            due.map(|due| time_key(due as u64, row.get::<_, i64>(0) as u64))
        })
        .collect();
    keys.sort_unstable();
    for key in keys {
        out.entry(tree, &key, EMPTY)?;
    }
    Ok(())
}

async fn meta<W: Write>(conn: &mut Conn, out: Out<'_, W>) -> Result<(), BackupError> {
    let mut meta: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    meta.push((
        SCHEMA_VERSION_KEY.to_vec(),
        SCHEMA_VERSION.to_be_bytes().to_vec(),
    ));
    let head = conn
        .query_opt(
            "SELECT seq, hash, last_outbox_seq FROM audit_head WHERE id = 1",
            &[],
        )
        .await?;
    if let Some(row) = head {
        let (seq, hash, last): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
        if seq > 0 {
            let head = ChainHead {
                seq: seq as u64,
                hash,
            };
            meta.push((
                AUDIT_HEAD_KEY.to_vec(),
                encode(META, AUDIT_HEAD_KEY, &head)?,
            ));
        }
        if last > 0 {
            meta.push((LAST_OUTBOX_SEQ.to_vec(), id_key(last as u64).to_vec()));
        }
    }
    for (key, sequence) in [
        (
            LAST_REQUEST_ID,
            "SELECT last_value, is_called FROM request_ids",
        ),
        (LAST_GRANT_ID, "SELECT last_value, is_called FROM grant_ids"),
        (
            LAST_CAMPAIGN_ID,
            "SELECT last_value, is_called FROM campaign_ids",
        ),
    ] {
        if let Some(row) = conn.query_opt(sequence, &[]).await? {
            let (value, called): (i64, bool) = (row.get(0), row.get(1));
            if called {
                meta.push((key.to_vec(), id_key(value as u64).to_vec()));
            }
        }
    }
    if let Some(row) = conn
        .query_opt("SELECT value FROM meta WHERE key = 'grant_tally'", &[])
        .await?
    {
        meta.push((
            GRANT_TALLY_KEY.to_vec(),
            row.get::<_, String>(0).into_bytes(),
        ));
    }
    for row in conn.query("SELECT name, at FROM marks", &[]).await? {
        meta.push((mark_key(row.get(0)), row.get::<_, String>(1).into_bytes()));
    }
    meta.sort();
    for (key, value) in meta {
        out.entry(META, &key, &value)?;
    }
    Ok(())
}

/// The time columns of grants and their bodies, as a restore inserts them.
type Times = (
    Vec<Option<i64>>,
    Vec<Option<i64>>,
    Vec<Option<i64>>,
    Vec<String>,
);

/// What a restore inserts, table by table.
#[derive(Default)]
struct Rows {
    requests: Vec<(i64, i64, String, bool, Option<i64>, String)>,
    /// (request id, approver) for every approver a pending request awaits.
    awaiting: Vec<(i64, String)>,
    grants: Vec<(Grant, i64)>,
    campaigns: Vec<(i64, i64, bool, String)>,
    audit: Vec<(i64, String)>,
    checkpoints: Vec<(i64, String)>,
    outbox: Vec<(i64, String, bool, i64, String)>,
    cards: Vec<(String, String)>,
    seen: Vec<(String, i64)>,
    marks: Vec<(String, String)>,
    head: Option<ChainHead>,
    /// Whether the backup keeps a grant tally (sled keeps one from the first grant on).
    tally: bool,
    last_outbox: u64,
    ids: Vec<(&'static str, u64)>,
}

fn text(tree: &str, key: &[u8], value: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(value.to_vec()).map_err(|_| corrupt(tree, key, "not UTF-8 text"))
}

fn rows(backup: &Backup) -> Result<Rows, StoreError> {
    let mut rows = Rows::default();
    for entry in &backup.entries {
        let (tree, key, value) = (entry.tree.as_str(), &entry.key[..], &entry.value[..]);
        match tree {
            REQUESTS => {
                let stored: Stored<AccessRequest> = decode(tree, key, value)?;
                let r = &stored.r;
                rows.requests.push((
                    r.id.0 as i64,
                    stored.v as i64,
                    r.requester.as_str().to_owned(),
                    r.is_pending(),
                    stored.due.map(|d| d as i64),
                    json(tree, r)?,
                ));
                rows.awaiting.extend(
                    r.awaiting()
                        .map(|person| (r.id.0 as i64, person.as_str().to_owned())),
                );
            }
            GRANTS => {
                let stored: Stored<Grant> = decode(tree, key, value)?;
                rows.grants.push((stored.r, stored.v as i64));
            }
            CAMPAIGNS => {
                let stored: Stored<Campaign> = decode(tree, key, value)?;
                let c = &stored.r;
                rows.campaigns
                    .push((c.id.0 as i64, stored.v as i64, c.is_open(), json(tree, c)?));
            }
            AUDIT => rows
                .audit
                .push((seq_of(tree, key)? as i64, text(tree, key, value)?)),
            AUDIT_CHECKPOINTS => rows
                .checkpoints
                .push((seq_of(tree, key)? as i64, text(tree, key, value)?)),
            OUTBOX => {
                let entry: OutboxEntry = decode(tree, key, value)?;
                rows.outbox.push((
                    entry.seq as i64,
                    entry.key.clone(),
                    entry.effect.once_per_key(),
                    ms(entry.next_attempt_at),
                    text(tree, key, value)?,
                ));
            }
            CARDS => rows
                .cards
                .push((text(tree, key, key)?, text(tree, key, value)?)),
            SEEN => {
                let until = be_u64(value).ok_or_else(|| corrupt(tree, key, "not 8 bytes"))?;
                rows.seen.push((text(tree, key, key)?, until as i64));
            }
            META => match key {
                AUDIT_HEAD_KEY => rows.head = Some(decode(tree, key, value)?),
                GRANT_TALLY_KEY => rows.tally = true,
                LAST_OUTBOX_SEQ => rows.last_outbox = counter(key, Some(value))?,
                LAST_REQUEST_ID => rows.ids.push(("request_ids", counter(key, Some(value))?)),
                LAST_GRANT_ID => rows.ids.push(("grant_ids", counter(key, Some(value))?)),
                LAST_CAMPAIGN_ID => rows.ids.push(("campaign_ids", counter(key, Some(value))?)),
                _ => {
                    if let Some(name) = key.strip_prefix(b"mark/") {
                        rows.marks
                            .push((text(tree, key, name)?, text(tree, key, value)?));
                    }
                }
            },
            // Indexes and the outbox's key index are columns here, computed from records.
            _ => {}
        }
    }
    Ok(rows)
}

/// Fills the empty database with `backup`, inside the open transaction.
async fn fill(conn: &mut Conn, backup: &Backup, shown: &str) -> Result<(), StoreError> {
    let occupied = conn
        .query_opt(
            "SELECT (SELECT count(*) FROM audit) + (SELECT count(*) FROM requests) \
             + (SELECT count(*) FROM grants) + (SELECT count(*) FROM outbox)",
            &[],
        )
        .await?
        .is_some_and(|r| r.get::<_, i64>(0) > 0);
    if occupied {
        return Err(StoreError::Setup {
            what: format!("the database {shown}"),
            why: "already holds Gatehouse data; restore or migrate into an empty database"
                .to_owned(),
        });
    }
    let rows = rows(backup)?;
    for chunk in rows.requests.chunks(CHUNK) {
        let (ids, versions, people, pending, due, bodies) = unzip6(chunk);
        conn.execute(
            "INSERT INTO requests (id, version, person, pending, due, body) SELECT * FROM \
             unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], $5::bigint[], $6::text[])",
            &[&ids, &versions, &people, &pending, &due, &bodies],
        )
        .await?;
    }
    for chunk in rows.awaiting.chunks(CHUNK) {
        let (ids, people): (Vec<i64>, Vec<String>) = chunk.iter().cloned().unzip();
        conn.execute(
            "UPDATE requests SET awaiting = awaiting || u.people FROM (SELECT id, array_agg(person) AS people \
             FROM unnest($1::bigint[], $2::text[]) AS x(id, person) GROUP BY id) AS u \
             WHERE requests.id = u.id",
            &[&ids, &people],
        )
        .await?;
    }
    let mut tally = GrantTally::default();
    for chunk in rows.grants.chunks(CHUNK) {
        let mut cols: (Vec<i64>, Vec<i64>, Vec<String>, Vec<bool>) = Default::default();
        let mut times: Times = Default::default();
        for (grant, version) in chunk {
            tally = tally.moved(GrantTally::default(), GrantTally::of(grant));
            cols.0.push(grant.id.0 as i64);
            cols.1.push(*version);
            cols.2.push(grant.person.as_str().to_owned());
            cols.3.push(grant.is_live());
            times
                .0
                .push(grant.expires_at.filter(|_| grant.state.is_live()).map(ms));
            times.1.push(grant.review_reminder().map(ms));
            times.2.push(grant.warning_owed().map(ms));
            times.3.push(json(GRANTS, grant)?);
        }
        conn.execute(
            "INSERT INTO grants (id, version, person, live, expiry, review_due, warning_due, body) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], \
             $5::bigint[], $6::bigint[], $7::bigint[], $8::text[])",
            &[
                &cols.0, &cols.1, &cols.2, &cols.3, &times.0, &times.1, &times.2, &times.3,
            ],
        )
        .await?;
    }
    // Counted from the grants rather than taken on trust; kept where the backup kept one.
    if rows.tally || !rows.grants.is_empty() {
        let tally = json(META, &tally)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('grant_tally', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&tally],
        )
        .await?;
    }
    for (id, version, open, body) in &rows.campaigns {
        conn.execute(
            "INSERT INTO campaigns (id, version, open, body) VALUES ($1, $2, $3, $4)",
            &[id, version, open, body],
        )
        .await?;
    }
    for chunk in rows.audit.chunks(CHUNK) {
        let (seqs, texts): (Vec<i64>, Vec<String>) = chunk.iter().cloned().unzip();
        conn.execute(
            "INSERT INTO audit (seq, record) SELECT * FROM unnest($1::bigint[], $2::text[])",
            &[&seqs, &texts],
        )
        .await?;
    }
    for chunk in rows.checkpoints.chunks(CHUNK) {
        let (seqs, texts): (Vec<i64>, Vec<String>) = chunk.iter().cloned().unzip();
        conn.execute(
            "INSERT INTO audit_checkpoints (seq, checkpoint) SELECT * FROM unnest($1::bigint[], $2::text[])",
            &[&seqs, &texts],
        )
        .await?;
    }
    for (seq, key, once, at, entry) in &rows.outbox {
        conn.execute(
            "INSERT INTO outbox (seq, key, once, next_attempt_at, entry) VALUES ($1, $2, $3, $4, $5)",
            &[seq, key, once, at, entry],
        )
        .await?;
    }
    for (key, cards) in &rows.cards {
        conn.execute(
            "INSERT INTO cards (key, cards) VALUES ($1, $2)",
            &[key, cards],
        )
        .await?;
    }
    for chunk in rows.seen.chunks(CHUNK) {
        let (keys, until): (Vec<String>, Vec<i64>) = chunk.iter().cloned().unzip();
        conn.execute(
            "INSERT INTO seen (key, until) SELECT * FROM unnest($1::text[], $2::bigint[]) \
             ON CONFLICT (key) DO NOTHING",
            &[&keys, &until],
        )
        .await?;
    }
    for (name, at) in &rows.marks {
        conn.execute(
            "INSERT INTO marks (name, at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at",
            &[name, at],
        )
        .await?;
    }
    let head = rows.head.unwrap_or_else(ChainHead::genesis);
    let newest = rows.outbox.iter().map(|o| o.0 as u64).max().unwrap_or(0);
    let (seq, last) = (head.seq as i64, rows.last_outbox.max(newest) as i64);
    conn.execute(
        "UPDATE audit_head SET seq = $1, hash = $2, last_outbox_seq = $3 WHERE id = 1",
        &[&seq, &head.hash, &last],
    )
    .await?;
    for (sequence, last) in rows.ids {
        let sql = match sequence {
            "request_ids" => "SELECT setval('request_ids', $1)",
            "grant_ids" => "SELECT setval('grant_ids', $1)",
            _ => "SELECT setval('campaign_ids', $1)",
        };
        if last > 0 {
            conn.execute(sql, &[&(last as i64)]).await?;
        }
    }
    Ok(())
}

#[allow(clippy::type_complexity)]
fn unzip6(
    rows: &[(i64, i64, String, bool, Option<i64>, String)],
) -> (
    Vec<i64>,
    Vec<i64>,
    Vec<String>,
    Vec<bool>,
    Vec<Option<i64>>,
    Vec<String>,
) {
    let mut out: (
        Vec<i64>,
        Vec<i64>,
        Vec<String>,
        Vec<bool>,
        Vec<Option<i64>>,
        Vec<String>,
    ) = Default::default();
    for (a, b, c, d, e, f) in rows.iter().cloned() {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
        out.3.push(d);
        out.4.push(e);
        out.5.push(f);
    }
    out
}
