//! How records and index entries are laid out as bytes in the sled trees.
//!
//! Keys are chosen so that sled's lexicographic order is the order we read in: ids and
//! sequence numbers are big-endian u64, time-ordered keys are big-endian milliseconds since
//! the epoch (negative times clamped to 0) followed by the id, and person-index keys are the
//! person id's bytes, a 0x00 separator, then the id. Values are JSON; requests and grants are
//! wrapped as `{"v": <CAS version>, "due": <millis, requests only>, "r": <record>}` so that a
//! write can check the version and find the index entries of the previous state.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::ids::PersonId;
use crate::store::StoreError;

pub(crate) const REQUESTS: &str = "requests";
pub(crate) const REQUESTS_BY_PERSON: &str = "requests_by_person";
pub(crate) const PENDING_BY_DUE: &str = "pending_by_due";
/// Pending requests by the approvers of their current stage (person index, schema 6).
pub(crate) const PENDING_BY_APPROVER: &str = "pending_by_approver";
pub(crate) const GRANTS: &str = "grants";
pub(crate) const GRANTS_BY_EXPIRY: &str = "grants_by_expiry";
pub(crate) const GRANTS_BY_PERSON: &str = "grants_by_person";
pub(crate) const AUDIT: &str = "audit";
pub(crate) const OUTBOX: &str = "outbox";
/// Idempotency key → outbox sequence, so that an effect already queued is not queued again.
pub(crate) const OUTBOX_KEYS: &str = "outbox_keys";
pub(crate) const CAMPAIGNS: &str = "campaigns";
/// Posted messages by what they are about (`CardKey` as JSON) → `Vec<PostedCard>`.
pub(crate) const CARDS: &str = "cards";
/// Platform delivery ids already handled → until when they are remembered (millis).
pub(crate) const SEEN: &str = "seen";
/// Emergency grants whose post-hoc review waits, by when its reviewers are reminded next.
pub(crate) const REVIEWS_BY_DUE: &str = "reviews_by_due";
pub(crate) const META: &str = "meta";
/// Outbox entries by their next attempt (`time_key(next_attempt_at, seq)`), so that finding
/// what is due reads only that, however many entries wait for a later retry.
pub(crate) const OUTBOX_BY_DUE: &str = "outbox_by_due";
/// Live grants whose grantee is still owed an expiry warning, by expiry.
pub(crate) const WARNINGS_BY_DUE: &str = "warnings_by_due";
/// Audit seq → [`crate::domain::anchor::Checkpoint`] of the chain at that event: one per
/// batch that appended events while an audit key was configured (schema 5).
pub(crate) const AUDIT_CHECKPOINTS: &str = "audit_checkpoints";

/// Live grants by id (schema 8): the admin's Grants page in the order grants were made,
/// read without passing over the ones that ended.
pub(crate) const GRANTS_LIVE: &str = "grants_live";

/// The batch being applied, kept until the next one so that a crash midway is completed
/// when the store opens again (see `journal`). Not part of a backup.
pub(crate) const JOURNAL: &str = "journal";

/// Every tree, in the order backups list them.
pub(crate) const TREE_NAMES: [&str; 19] = [
    REQUESTS,
    REQUESTS_BY_PERSON,
    PENDING_BY_DUE,
    GRANTS,
    GRANTS_BY_EXPIRY,
    GRANTS_BY_PERSON,
    AUDIT,
    OUTBOX,
    OUTBOX_KEYS,
    CAMPAIGNS,
    REVIEWS_BY_DUE,
    CARDS,
    SEEN,
    META,
    OUTBOX_BY_DUE,
    WARNINGS_BY_DUE,
    AUDIT_CHECKPOINTS,
    PENDING_BY_APPROVER,
    GRANTS_LIVE,
];

/// `meta` keys.
pub(crate) const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
pub(crate) const AUDIT_HEAD_KEY: &[u8] = b"audit_head";
pub(crate) const LAST_REQUEST_ID: &[u8] = b"last_id/request";
pub(crate) const LAST_GRANT_ID: &[u8] = b"last_id/grant";
pub(crate) const LAST_OUTBOX_SEQ: &[u8] = b"last_seq/outbox";
pub(crate) const LAST_CAMPAIGN_ID: &[u8] = b"last_id/campaign";
/// The [`crate::domain::grant::GrantTally`] of every stored grant (schema 4).
pub(crate) const GRANT_TALLY_KEY: &[u8] = b"grant_tally";

/// The `cards` key of what a set of cards is about.
pub(crate) fn card_key(key: &crate::domain::card::CardKey) -> Vec<u8> {
    key.to_string().into_bytes()
}

/// The `meta` key of a named moment.
pub(crate) fn mark_key(name: &str) -> Vec<u8> {
    format!("mark/{name}").into_bytes()
}

/// An empty index value: the key says everything.
pub(crate) const EMPTY: &[u8] = &[];

/// A request or grant as stored, with its compare-and-swap version.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored<R> {
    pub v: u64,
    /// Requests only: the `pending_by_due` entry written with this version, so the next
    /// write can remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<u64>,
    pub r: R,
}

/// The last audit record written; the next one chains from it.
pub(crate) type AuditHead = crate::domain::anchor::ChainHead;

pub(crate) fn millis(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp_millis()).unwrap_or(0)
}

pub(crate) fn from_millis(ms: u64) -> DateTime<Utc> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(crate) fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(crate) fn time_key(ms: u64, id: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&ms.to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

/// The greatest time key at `until`, for an inclusive range scan.
pub(crate) fn time_key_upper(until: DateTime<Utc>) -> [u8; 16] {
    time_key(millis(until), u64::MAX)
}

pub(crate) fn split_time_key(tree: &str, key: &[u8]) -> Result<(DateTime<Utc>, u64), StoreError> {
    match (key.get(..8).and_then(be_u64), key.get(8..).and_then(be_u64)) {
        (Some(ms), Some(id)) => Ok((from_millis(ms), id)),
        _ => Err(corrupt(tree, key, "a time key must be 16 bytes")),
    }
}

pub(crate) fn person_prefix(person: &PersonId) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(person.as_str().len() + 9);
    prefix.extend_from_slice(person.as_str().as_bytes());
    prefix.push(0);
    prefix
}

pub(crate) fn person_key(person: &PersonId, id: u64) -> Vec<u8> {
    let mut key = person_prefix(person);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The id at the end of a person-index key.
pub(crate) fn person_key_id(tree: &str, key: &[u8]) -> Result<u64, StoreError> {
    key.len()
        .checked_sub(8)
        .and_then(|start| be_u64(&key[start..]))
        .ok_or_else(|| corrupt(tree, key, "a person key must end with an 8-byte id"))
}

/// A big-endian u64 from exactly 8 bytes.
pub(crate) fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// Reads an 8-byte key (an id or a sequence number).
pub(crate) fn seq_of(tree: &str, key: &[u8]) -> Result<u64, StoreError> {
    be_u64(key).ok_or_else(|| corrupt(tree, key, "the key must be 8 bytes"))
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &str,
    key: &[u8],
    value: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|source| StoreError::Corrupt {
        what: describe(tree, key),
        source,
    })
}

pub(crate) fn encode<T: Serialize>(
    tree: &str,
    key: &[u8],
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|source| StoreError::Corrupt {
        what: describe(tree, key),
        source,
    })
}

/// The u64 counter `key` of `meta` holds, read as `value` (0 when absent).
pub(crate) fn counter(key: &[u8], value: Option<&[u8]>) -> Result<u64, StoreError> {
    match value {
        None => Ok(0),
        Some(bytes) => be_u64(bytes).ok_or_else(|| corrupt(META, key, "a counter must be 8 bytes")),
    }
}

/// A record that is not JSON-shaped but still wrong (a key of the wrong length).
pub(crate) fn corrupt(tree: &str, key: &[u8], why: &str) -> StoreError {
    StoreError::Corrupt {
        what: describe(tree, key),
        source: serde::de::Error::custom(why),
    }
}

/// Names a stored record for an operator: the tree, and the key as a number when it is one.
fn describe(tree: &str, key: &[u8]) -> String {
    match be_u64(key) {
        Some(n) => format!("{tree} key {n}"),
        None => match std::str::from_utf8(key) {
            Ok(text) if !text.chars().any(char::is_control) => format!("{tree} key {text:?}"),
            _ => format!("{tree} key 0x{}", hex::encode(key)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_keys_sort_by_time_then_id() {
        let early = Utc.timestamp_opt(1_000, 0).unwrap();
        let late = Utc.timestamp_opt(2_000, 0).unwrap();
        assert!(time_key(millis(early), 9) < time_key(millis(late), 1));
        assert!(time_key(millis(early), 1) < time_key(millis(early), 2));
        assert!(time_key(millis(late), u64::MAX) <= time_key_upper(late));
        assert_eq!(
            split_time_key("t", &time_key(millis(late), 7)).unwrap(),
            (late, 7)
        );
    }

    #[test]
    fn times_before_the_epoch_are_clamped_to_zero() {
        let before = Utc.timestamp_opt(-5, 0).unwrap();
        assert_eq!(millis(before), 0);
    }

    #[test]
    fn person_keys_group_by_person_and_end_with_the_id() {
        let ann = PersonId::new("ann");
        let key = person_key(&ann, 42);
        assert!(key.starts_with(&person_prefix(&ann)));
        assert!(!key.starts_with(&person_prefix(&PersonId::new("an"))));
        assert_eq!(person_key_id("t", &key).unwrap(), 42);
    }

    #[test]
    fn a_corrupt_record_is_named_by_tree_and_key() {
        let err = decode::<AuditHead>(REQUESTS, &id_key(5), b"{not json").unwrap_err();
        assert!(err.to_string().contains("requests key 5"), "{err}");
        let err = corrupt(META, b"audit_head", "too short");
        assert!(err.to_string().contains("meta key \"audit_head\""), "{err}");
    }
}
