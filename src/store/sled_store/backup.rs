//! Backing up and restoring a sled data directory in the format of [`crate::store::backup`].
//!
//! A snapshot is consistent because it is read while holding the writer lock every commit
//! takes: no commit lands halfway through it. (Only the id counters and the delivery-dedup
//! tree are written outside that lock; a snapshot may hold an id counter a step ahead of the
//! records, which merely skips an id.) The lock is held while the trees are copied, into
//! memory or into a spool file on local disk, never while a client downloads the copy, so a
//! slow reader never holds up commits.
//!
//! A restore verifies the backup's audit chain before it touches anything, builds the new
//! database beside the data directory, checks it opens and verifies, and only then moves it
//! into place; with `force`, what was there is moved aside, never deleted.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::{Clock, SystemClock};

use super::SledStore;
use super::keys::*;
use std::collections::{BTreeMap, BTreeSet};

use crate::domain::anchor::{AuditKey, Checkpoint, verify_anchored};
use crate::domain::audit::{AuditEvent, AuditRecord};
use crate::domain::grant::Grant;
use crate::domain::ids::{GrantId, RequestId};
use crate::domain::replay::{AuditedGrant, AuditedRequest, Disagreement};
use crate::domain::request::AccessRequest;
use crate::store::backup::{Backup, BackupError, Header, Spooled, Summary, Writer};

/// Backups spooled so far by this process, to name their files apart.
static SPOOLS: AtomicU64 = AtomicU64::new(0);
use crate::store::{SCHEMA_VERSION, Store, StoreError};

impl SledStore {
    /// Everything stored, read back into memory from [`SledStore::write_backup`], for tests
    /// that look inside a backup or tamper with it.
    #[cfg(test)]
    pub fn backup(&self) -> Result<Backup, BackupError> {
        let (bytes, _, _) = self.write_backup(Vec::new())?;
        crate::store::backup::read(&bytes[..])
    }

    /// Everything stored, read in one consistent view and written to `out` as it is read;
    /// the output, the header written and the number of entries.
    pub fn write_backup<W: Write>(&self, out: W) -> Result<(W, Header, usize), BackupError> {
        let guard = self.quiet();
        // A backup is dated by the wall clock, for the operator who keeps it.
        let header = Header::at(self.schema()?, SystemClock.now());
        let mut writer = Writer::new(out, &header)?;
        self.each_entry(|tree, key, value| writer.entry(tree, key, value))?;
        drop(guard);
        let (out, entries) = writer.finish()?;
        Ok((out, header, entries))
    }

    /// [`SledStore::write_backup`] to a file without a name in the data directory (the
    /// temporary directory for a temporary store), which goes when it is closed: a backup
    /// of any size then costs disk for as long as it is being sent, and no memory.
    pub(super) fn spool_backup(&self) -> Result<Spooled, BackupError> {
        let dir = self.dir.clone().unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!(
            ".backup-{}-{}",
            std::process::id(),
            SPOOLS.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        let (out, header, entries) = self.write_backup(BufWriter::new(file))?;
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Spooled {
            file,
            header,
            entries,
        })
    }

    /// Calls `visit` with every stored key of every tree, in the order of `TREE_NAMES`.
    /// The caller holds the writer lock, so that no commit lands halfway through.
    fn each_entry(
        &self,
        mut visit: impl FnMut(&str, &[u8], &[u8]) -> Result<(), BackupError>,
    ) -> Result<(), BackupError> {
        for (name, tree) in self.trees.named() {
            for item in tree.iter() {
                let (key, value) = item.map_err(StoreError::from)?;
                visit(name, &key, &value)?;
            }
        }
        Ok(())
    }

    fn schema(&self) -> Result<u32, StoreError> {
        let bytes = self.trees.meta.get(SCHEMA_VERSION_KEY)?;
        Ok(bytes
            .and_then(|b| <[u8; 4]>::try_from(&b[..]).ok())
            .map_or(SCHEMA_VERSION, u32::from_be_bytes))
    }

    /// Restores `backup` into the data directory `dir`, which must be missing or empty
    /// unless `force` (then its contents are moved to `<dir>.before-restore-<time>`). The
    /// server must be stopped: a directory in use is refused.
    /// The backup must pass [`verify`] with `key`, the audit key of the configuration.
    pub fn restore(
        dir: &Path,
        backup: &Backup,
        force: bool,
        key: Option<&AuditKey>,
    ) -> Result<Summary, BackupError> {
        let summary = verify(backup, key)?;
        let occupied = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
        if occupied && !force {
            return Err(BackupError::NotEmpty(dir.display().to_string()));
        }
        if occupied {
            // Refuses (with "is another Gatehouse running on it?") while a server holds it.
            drop(SledStore::open(dir)?);
        }
        let staging = sibling(dir, "restoring");
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        write_database(&staging, backup)?;
        {
            let restored = SledStore::open(&staging)?;
            restored.verify_audit()?;
        }
        if occupied {
            let aside = sibling(
                dir,
                &format!(
                    "before-restore-{}",
                    SystemClock.now().format("%Y%m%dT%H%M%SZ")
                ),
            );
            std::fs::rename(dir, &aside)?;
            tracing::info!(kept = %aside.display(), "the previous data directory was moved aside");
        } else if dir.exists() {
            std::fs::remove_dir(dir)?;
        }
        std::fs::rename(&staging, dir)?;
        Ok(summary)
    }
}

/// `<dir>.<suffix>`, beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

fn write_database(path: &Path, backup: &Backup) -> Result<(), BackupError> {
    let db = sled::Config::new()
        .path(path)
        .open()
        .map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
    for entry in &backup.entries {
        let tree = db.open_tree(&entry.tree).map_err(StoreError::from)?;
        tree.insert(&entry.key[..], &entry.value[..])
            .map_err(StoreError::from)?;
    }
    db.flush().map_err(StoreError::from)?;
    Ok(())
}

/// Checks what a backup holds before anything is written: only trees Gatehouse knows; an
/// audit chain that verifies from the first event to the recorded head, with checkpoints
/// that `key` (when given) vouches for; and requests and grants that say what their audit
/// events say ([`crate::domain::replay`]), with the index the scheduler revokes by.
pub fn verify(backup: &Backup, key: Option<&AuditKey>) -> Result<Summary, BackupError> {
    let known = TREE_NAMES;
    let mut summary = Summary {
        entries: backup.entries.len(),
        ..Summary::default()
    };
    let mut audit = Vec::new();
    let mut checkpoints = Vec::new();
    let mut head: Option<AuditHead> = None;
    let mut records = Records::default();
    for (index, entry) in backup.entries.iter().enumerate() {
        let tree = entry.tree.as_str();
        if !known.contains(&tree) {
            return Err(BackupError::Malformed {
                line: index + 2,
                why: format!("`{tree}` is not a tree Gatehouse keeps"),
            });
        }
        let (key, value) = (&entry.key[..], &entry.value[..]);
        match tree {
            REQUESTS => {
                summary.requests += 1;
                records
                    .requests
                    .push(decode::<Stored<AccessRequest>>(tree, key, value)?.r);
            }
            GRANTS => {
                summary.grants += 1;
                records
                    .grants
                    .push(decode::<Stored<Grant>>(tree, key, value)?.r);
            }
            GRANTS_BY_EXPIRY => {
                records.by_expiry.insert(key.to_vec());
            }
            AUDIT => {
                let seq = seq_of(AUDIT, key)?;
                let record: AuditRecord = decode(AUDIT, key, value)?;
                audit.push((seq, record));
            }
            AUDIT_CHECKPOINTS => {
                let seq = seq_of(tree, key)?;
                checkpoints.push((seq, decode::<Checkpoint>(tree, key, value)?));
            }
            META if key == AUDIT_HEAD_KEY => {
                head = Some(decode(META, AUDIT_HEAD_KEY, value)?);
            }
            _ => {}
        }
    }
    // Trees are written key by key in order, but a hand-made file need not be.
    audit.sort_by_key(|(seq, _)| *seq);
    checkpoints.sort_by_key(|(seq, _)| *seq);
    let events: Vec<&AuditEvent> = audit.iter().map(|(_, r)| &r.event).collect();
    let anchor = verify_anchored(audit.iter().cloned(), checkpoints, head.as_ref(), key, &[])?;
    summary.audit_events = anchor.events;
    summary.anchor = anchor;
    records.check(&events)?;
    Ok(summary)
}

/// The records of a backup that its audit log must account for.
#[derive(Default)]
struct Records {
    requests: Vec<AccessRequest>,
    grants: Vec<Grant>,
    /// The keys of `grants_by_expiry`.
    by_expiry: BTreeSet<Vec<u8>>,
}

impl Records {
    /// Every request and grant agrees with its audit events, every request and grant the
    /// events name is there, and every live grant with an end is where the scheduler looks
    /// for what to revoke.
    fn check(&self, events: &[&AuditEvent]) -> Result<(), Disagreement> {
        let mut about_grant: BTreeMap<GrantId, Vec<&AuditEvent>> = BTreeMap::new();
        let mut about_request: BTreeMap<RequestId, Vec<&AuditEvent>> = BTreeMap::new();
        for event in events {
            if let Some(grant) = event.grant {
                about_grant.entry(grant).or_default().push(event);
            }
            if let Some(request) = event.request {
                about_request.entry(request).or_default().push(event);
            }
        }
        for grant in &self.grants {
            let events = about_grant.remove(&grant.id).unwrap_or_default();
            let audited = AuditedGrant::replay(&events).ok_or(Disagreement::Unaudited {
                record: grant.id.to_string(),
                missing: "grant_created",
            })?;
            audited.check(grant)?;
            if let (true, Some(expires_at)) = (grant.is_live(), grant.expires_at)
                && !self
                    .by_expiry
                    .contains(&time_key(millis(expires_at), grant.id.0)[..])
            {
                return Err(Disagreement::Field {
                    record: grant.id.to_string(),
                    field: "entry in grants_by_expiry",
                    stored: "missing (it would never be revoked)".to_owned(),
                    audited: format!("one at {}", expires_at.to_rfc3339()),
                });
            }
        }
        for request in &self.requests {
            let events = about_request.remove(&request.id).unwrap_or_default();
            let audited = AuditedRequest::replay(&events).ok_or(Disagreement::Unaudited {
                record: request.id.to_string(),
                missing: "request_submitted",
            })?;
            audited.check(request)?;
        }
        if let Some(grant) = about_grant.keys().next() {
            return Err(Disagreement::Missing {
                record: grant.to_string(),
            });
        }
        if let Some(request) = about_request.keys().next() {
            return Err(Disagreement::Missing {
                record: request.to_string(),
            });
        }
        Ok(())
    }
}
