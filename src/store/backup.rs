//! Backups: one consistent snapshot of everything stored, as a versioned JSON Lines file.
//!
//! ```text
//! {"gatehouse_backup":1,"schema":3,"created_at":"2026-11-26T09:00:00Z","version":"0.1.0"}
//! {"tree":"requests","key":"0000000000000001","value":"{\"v\":3,\"r\":{…}}"}
//! {"tree":"grants_by_expiry","key":"0000019ac2…","value":""}
//! {"tree":"meta","key":"6c6173745f69642f72657175657374","value_hex":"0000000000000001"}
//! …
//! {"end":{"entries":812,"sha256":"…"}}
//! ```
//!
//! - The first line says what this is: `gatehouse_backup` is the format version (this build
//!   reads 1), `schema` the data's [`super::SCHEMA_VERSION`]; a newer one of either is refused.
//! - Then one line per stored key of every tree, exactly as stored: the key in hex, the value
//!   as a string when it is UTF-8 (records are JSON, so they stay readable) or in hex
//!   (`value_hex`) when not (counters).
//! - The last line counts the entries and gives the SHA-256 of every byte before it, so a
//!   truncated or damaged file is refused. It is not a signature: anyone can recompute it,
//!   which is why a restore also verifies the audit chain (with its checkpoints, when an
//!   audit key is configured) and refuses a backup whose audit log was edited, saying where
//!   the chain breaks, or whose requests and grants say otherwise than their audit events.

use std::io::{BufRead, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{SCHEMA_VERSION, StoreError};
use crate::domain::anchor::AnchorReport;
use crate::domain::audit::ChainError;
use crate::domain::replay::Disagreement;

/// The backup format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("this store cannot take backups")]
    Unsupported,
    #[error("cannot read or write the backup: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is not a Gatehouse backup, or it is damaged, at line {line}: {why}")]
    Malformed { line: usize, why: String },
    #[error("the backup ends before its last line: it is incomplete (truncated?)")]
    Truncated,
    #[error(
        "the backup's checksum does not match its content: it was damaged or edited after it was taken"
    )]
    Checksum,
    #[error(
        "the backup was written by a newer Gatehouse (format {found}; this build reads up to {supported}); restore it with that version"
    )]
    FormatTooNew { found: u32, supported: u32 },
    #[error(
        "the backup holds data of schema {found}; this build knows up to {supported}; restore it with the Gatehouse that wrote it"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("the backup's audit log does not verify, so it is refused: {0}")]
    Chain(#[from] ChainError),
    /// Not a `source`: the sentence already says it, and the CLI prints sources after it.
    #[error("the backup's records disagree with its audit log, so it is refused: {0}")]
    Disagrees(Disagreement),
    #[error(
        "the data directory {0} is not empty; restore into an empty one, or pass --force (the current contents are moved aside, not deleted)"
    )]
    NotEmpty(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Disagreement> for BackupError {
    fn from(disagreement: Disagreement) -> Self {
        BackupError::Disagrees(disagreement)
    }
}

/// The first line of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    #[serde(rename = "gatehouse_backup")]
    pub format: u32,
    pub schema: u32,
    pub created_at: DateTime<Utc>,
    /// The Gatehouse version that wrote it.
    pub version: String,
}

impl Header {
    /// The header of a backup of `schema` taken at `created_at`.
    pub fn at(schema: u32, created_at: DateTime<Utc>) -> Self {
        Header {
            format: FORMAT_VERSION,
            schema,
            created_at,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// One stored key and its value, exactly as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tree: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A backup read back and checked for completeness (not yet for its audit chain).
#[derive(Clone, Debug)]
pub struct Backup {
    pub header: Header,
    pub entries: Vec<Entry>,
}

/// What a backup holds, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub requests: usize,
    pub grants: usize,
    pub audit_events: u64,
    pub entries: usize,
    /// How much of the audit log its checkpoints anchor.
    pub anchor: AnchorReport,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} grants, {} audit events (chain verified), {} entries",
            self.requests, self.grants, self.audit_events, self.entries
        )
    }
}

/// Writes `backup` in the format above.
pub fn write(backup: &Backup, out: &mut impl Write) -> Result<(), BackupError> {
    let mut writer = Writer::new(out, &backup.header)?;
    for entry in &backup.entries {
        writer.entry(&entry.tree, &entry.key, &entry.value)?;
    }
    writer.finish()?;
    Ok(())
}

/// Writes a backup line by line as its entries are read, hashing as it goes, so that a
/// store can write one of any size without holding it in memory.
pub struct Writer<W: Write> {
    out: W,
    hasher: Sha256,
    entries: usize,
}

impl<W: Write> Writer<W> {
    /// Starts a backup with its header line.
    pub fn new(out: W, header: &Header) -> Result<Self, BackupError> {
        let mut writer = Self {
            out,
            hasher: Sha256::new(),
            entries: 0,
        };
        let header = serde_json::to_value(header).map_err(std::io::Error::other)?;
        writer.line(&header)?;
        Ok(writer)
    }

    /// One stored key and its value.
    pub fn entry(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), BackupError> {
        let line = match std::str::from_utf8(value) {
            Ok(text) => json!({"tree": tree, "key": hex::encode(key), "value": text}),
            Err(_) => {
                json!({"tree": tree, "key": hex::encode(key), "value_hex": hex::encode(value)})
            }
        };
        self.line(&line)?;
        self.entries += 1;
        Ok(())
    }

    /// Ends the backup with the count and checksum line; the output and the entry count.
    pub fn finish(mut self) -> Result<(W, usize), BackupError> {
        let sum = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let end = json!({"end": {"entries": self.entries, "sha256": sum}});
        let mut bytes = serde_json::to_vec(&end).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.out.write_all(&bytes)?;
        self.out.flush()?;
        Ok((self.out, self.entries))
    }

    fn line(&mut self, value: &Value) -> Result<(), BackupError> {
        let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.hasher.update(&bytes);
        self.out.write_all(&bytes)?;
        Ok(())
    }
}

/// A backup written to a file that has no name (it goes when closed), positioned at its
/// start, with what it holds.
#[derive(Debug)]
pub struct Spooled {
    pub file: std::fs::File,
    pub header: Header,
    pub entries: usize,
}

/// Reads a backup, refusing one that is not complete, was damaged, or is too new. The
/// audit chain is verified by the store that restores it.
pub fn read(input: impl BufRead) -> Result<Backup, BackupError> {
    let mut hasher = Sha256::new();
    let mut header: Option<Header> = None;
    let mut entries = Vec::new();
    for (index, line) in input.split(b'\n').enumerate() {
        let number = index + 1;
        let bytes = line?;
        let malformed = |why: String| BackupError::Malformed { line: number, why };
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
        let Some(found) = &header else {
            let read: Header = serde_json::from_value(value)
                .map_err(|e| malformed(format!("not a backup header: {e}")))?;
            if read.format > FORMAT_VERSION {
                return Err(BackupError::FormatTooNew {
                    found: read.format,
                    supported: FORMAT_VERSION,
                });
            }
            if read.schema > SCHEMA_VERSION {
                return Err(BackupError::SchemaTooNew {
                    found: read.schema,
                    supported: SCHEMA_VERSION,
                });
            }
            hasher.update(&bytes);
            hasher.update(b"\n");
            header = Some(read);
            continue;
        };
        if let Some(end) = value.get("end") {
            let count = end["entries"].as_u64();
            let sum = end["sha256"].as_str();
            if count != Some(entries.len() as u64) || sum != Some(&hex::encode(hasher.finalize())) {
                return Err(BackupError::Checksum);
            }
            return Ok(Backup {
                header: found.clone(),
                entries,
            });
        }
        hasher.update(&bytes);
        hasher.update(b"\n");
        entries.push(entry(&value).map_err(malformed)?);
    }
    Err(if header.is_none() {
        BackupError::Malformed {
            line: 1,
            why: "the file is empty".to_owned(),
        }
    } else {
        BackupError::Truncated
    })
}

fn entry(value: &Value) -> Result<Entry, String> {
    let text = |name: &str| value.get(name).and_then(Value::as_str);
    let tree = text("tree").ok_or("no `tree`")?.to_owned();
    let key = hex::decode(text("key").ok_or("no `key`")?).map_err(|e| format!("key: {e}"))?;
    let value = match (text("value"), text("value_hex")) {
        (Some(value), None) => value.as_bytes().to_vec(),
        (None, Some(hex)) => hex::decode(hex).map_err(|e| format!("value_hex: {e}"))?,
        _ => return Err("an entry needs exactly one of `value` and `value_hex`".to_owned()),
    };
    Ok(Entry { tree, key, value })
}

/// `gatehouse-20261126T090000Z.backup.jsonl`: a file name for a backup taken at `at`.
pub fn file_name(at: DateTime<Utc>) -> String {
    let stamp = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    format!("gatehouse-{}.backup.jsonl", stamp.replace([':', '-'], ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Clock, SystemClock};

    fn sample() -> Backup {
        Backup {
            header: Header::at(SCHEMA_VERSION, Clock::now(&SystemClock)),
            entries: vec![
                Entry {
                    tree: "requests".into(),
                    key: 1u64.to_be_bytes().to_vec(),
                    value: br#"{"v":1,"r":"caf\u00e9 \"quoted\""}"#.to_vec(),
                },
                Entry {
                    tree: "meta".into(),
                    key: b"last_id/request".to_vec(),
                    value: vec![0, 0, 0xff, 0xfe, 0, 0, 0, 1],
                },
                Entry {
                    tree: "grants_by_expiry".into(),
                    key: vec![1, 2, 3],
                    value: Vec::new(),
                },
            ],
        }
    }

    fn written(backup: &Backup) -> String {
        let mut out = Vec::new();
        write(backup, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_backup_reads_back_byte_for_byte() {
        let backup = sample();
        let text = written(&backup);
        assert_eq!(text.lines().count(), 5, "header, three entries, end");
        assert!(
            text.contains("\"value_hex\":\"0000fffe00000001\""),
            "{text}"
        );
        let back = read(text.as_bytes()).unwrap();
        assert_eq!(back.header, backup.header);
        assert_eq!(back.entries, backup.entries);
    }

    #[test]
    fn a_truncated_or_edited_backup_is_refused() {
        let text = written(&sample());
        let without_end: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert!(matches!(
            read(without_end.as_bytes()),
            Err(BackupError::Truncated)
        ));
        let edited = text.replace("quoted", "QUOTED");
        assert!(matches!(
            read(edited.as_bytes()),
            Err(BackupError::Checksum)
        ));
        let garbage = "hello\n";
        let err = read(garbage.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn a_backup_from_a_newer_gatehouse_is_refused() {
        let mut backup = sample();
        backup.header.schema = SCHEMA_VERSION + 1;
        let err = read(written(&backup).as_bytes()).unwrap_err();
        assert!(matches!(err, BackupError::SchemaTooNew { .. }), "{err}");
        backup.header.schema = SCHEMA_VERSION;
        backup.header.format = FORMAT_VERSION + 1;
        let err = read(written(&backup).as_bytes()).unwrap_err();
        assert!(matches!(err, BackupError::FormatTooNew { .. }), "{err}");
    }

    #[test]
    fn backup_file_names_sort_by_time() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T09:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(file_name(at), "gatehouse-20261126T090500Z.backup.jsonl");
    }
}
