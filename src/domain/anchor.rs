//! Anchoring the audit chain. The hash chain alone finds an event edited in place, but
//! someone who can write the data directory (or a backup) can rewrite events and rebuild
//! every hash after them. Two things close that:
//!
//! - **Checkpoints.** With an audit key, kept outside the data directory, the writer MACs
//!   the chain head of every batch it lands (HMAC-SHA256 over the event's sequence number
//!   and hash). Since each hash covers every event before it, a checkpoint vouches for the
//!   whole chain up to its event; a rewrite without the key cannot make checkpoints that
//!   match, and events added after the last checkpoint stand out.
//! - **Published heads.** The digest and the security alerts carry the chain head
//!   (`2198:9f86d081884c7d65`). A chain that no longer holds a head published earlier was
//!   rewritten or cut back, even by someone holding the key.
//!
//! A writer that finds a head no checkpoint of its key vouches for (a data directory from
//! before the key, a new key, or events written without it) cannot check what it extends:
//! its first checkpoint says so (`adopted`), and verification reports it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::audit::{AuditRecord, ChainError, GENESIS_HASH, verify_chain};

/// The shortest audit key accepted, in characters: `openssl rand -hex 32` gives 64.
pub const MIN_KEY_CHARS: usize = 32;

/// Hex digits of a hash shown in messages, and the fewest a published head may give:
/// 64 bits, which no one finds a collision for by trying.
pub const SHORT_HASH: usize = 16;

/// What a checkpoint MAC covers, so that the key's MACs mean nothing anywhere else.
const CHECKPOINT_CONTEXT: &[u8] = b"gatehouse audit checkpoint v1\0";
const KEY_ID_CONTEXT: &[u8] = b"gatehouse audit key id v1";

/// The secret that anchors the audit chain, and its id (which checkpoints name).
#[derive(Clone)]
pub struct AuditKey {
    id: String,
    secret: Vec<u8>,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditKey({})", self.id)
    }
}

impl AuditKey {
    /// The key `secret` (its bytes, as configured). Its id is derived from it, so that a
    /// checkpoint names the key that made it and a rotated key is told apart.
    pub fn new(secret: &[u8]) -> Self {
        let id = hex::encode(&mac(secret, &[KEY_ID_CONTEXT])[..4]);
        Self {
            id,
            secret: secret.to_vec(),
        }
    }

    /// Eight hex digits naming the key (not the key: an HMAC of a fixed text under it).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The checkpoint of `head`; `adopted` is the head this writer found unanchored.
    pub fn checkpoint(&self, head: &ChainHead, adopted: Option<u64>) -> Checkpoint {
        Checkpoint {
            key: self.id.clone(),
            mac: hex::encode(self.mac(head.seq, &head.hash, adopted)),
            adopted,
        }
    }

    /// Whether `checkpoint` is this key's, for the event `seq` with hash `hash`.
    pub fn vouches_for(&self, checkpoint: &Checkpoint, seq: u64, hash: &str) -> bool {
        let Ok(given) = hex::decode(&checkpoint.mac) else {
            return false;
        };
        let expected = self.mac(seq, hash, checkpoint.adopted);
        checkpoint.key == self.id && bool::from(given.as_slice().ct_eq(&expected[..]))
    }

    fn mac(&self, seq: u64, hash: &str, adopted: Option<u64>) -> [u8; 32] {
        let adopted = adopted.map_or([0xff; 8], u64::to_be_bytes);
        mac(
            &self.secret,
            &[
                CHECKPOINT_CONTEXT,
                &seq.to_be_bytes(),
                hash.as_bytes(),
                &adopted,
            ],
        )
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        unreachable!("HMAC takes a key of any length")
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A keyed MAC of the chain at one event, stored beside the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The id of the key that made it.
    pub key: String,
    pub mac: String,
    /// The head (its seq) the writer found when it began and could not check: no
    /// checkpoint of its key vouched for it. Events up to it were taken as found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<u64>,
}

/// The last event of the chain: its sequence number and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl ChainHead {
    /// Before the first event.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }

    /// `2198:9f86d081884c7d65`: what messages show, and enough for `--head`.
    pub fn short(&self) -> String {
        let hash: String = self.hash.chars().take(SHORT_HASH).collect();
        format!("{}:{hash}", self.seq)
    }
}

impl fmt::Display for ChainHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// A head published out of band (a digest, an alert) that the chain must still hold: the
/// event's sequence number and its hash, or the first [`SHORT_HASH`] or more hex digits of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedHead {
    pub seq: u64,
    pub hash: String,
}

/// Why a published head could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an audit head; write the event number and at least {SHORT_HASH} hex digits of its hash, as messages show it: 2198:9f86d081884c7d65"
)]
pub struct NotAHead(String);

impl FromStr for PublishedHead {
    type Err = NotAHead;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || NotAHead(text.to_owned());
        let (seq, hash) = text.trim().split_once(':').ok_or_else(bad)?;
        let seq = seq
            .trim()
            .trim_start_matches('#')
            .parse()
            .map_err(|_| bad())?;
        let hash = hash.trim().to_ascii_lowercase();
        if !(SHORT_HASH..=64).contains(&hash.len()) || !hash.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(bad());
        }
        Ok(Self { seq, hash })
    }
}

impl fmt::Display for PublishedHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// A writer taking over a chain it could not check: at the checkpoint of event `at`, it
/// took events up to `found` as they were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoption {
    pub at: u64,
    pub found: u64,
    /// The last event a checkpoint of the key vouched for before it (0: none).
    pub after: u64,
}

/// What verifying the chain found, besides that it is intact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorReport {
    pub events: u64,
    /// The last event, when there is one.
    pub head: Option<ChainHead>,
    /// The id of the key checked with, when one is configured.
    pub key: Option<String>,
    /// The last event a checkpoint of the key vouches for (0: none).
    pub anchored_through: u64,
    /// Checkpoints of the key checked.
    pub checkpoints: u64,
    pub adoptions: Vec<Adoption>,
    /// Checkpoints of other keys, which could not be checked, by key id.
    pub other_keys: BTreeMap<String, u64>,
    /// Published heads found in the chain.
    pub published: Vec<String>,
}

impl AnchorReport {
    /// What an auditor should know, one sentence each: which part is anchored, what was
    /// taken as found, what could not be checked.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        match &self.key {
            None => notes.push(
                "not anchored: no [audit] key is configured, so a rewrite of the whole log by \
                 someone who can write the data directory or a backup would not be found; \
                 check it against a published head with --head"
                    .to_owned(),
            ),
            Some(key) if self.events == 0 => {
                notes.push(format!(
                    "no events yet; key {key} anchors them as they are written"
                ));
            }
            Some(key) if self.anchored_through == 0 => notes.push(format!(
                "not anchored yet: no checkpoint of key {key} covers the {} events (they were \
                 written before the key was configured, or with another key); Gatehouse \
                 anchors them as found with its next write",
                self.events
            )),
            Some(key) => notes.push(format!(
                "anchored: events 1-{} by key {key} ({} checkpoint{})",
                self.anchored_through,
                self.checkpoints,
                plural(self.checkpoints)
            )),
        }
        for adoption in &self.adoptions {
            let from = adoption.after + 1;
            if from <= adoption.found {
                notes.push(format!(
                    "events {from}-{} were not anchored when written: they were taken as found \
                     at event {} (written before the key, with another key, or without it); \
                     only a head published before then proves them",
                    adoption.found, adoption.at
                ));
            }
        }
        for (key, count) in &self.other_keys {
            notes.push(format!(
                "{count} checkpoint{} of key {key} not checked: that key is not the one configured",
                plural(*count)
            ));
        }
        for head in &self.published {
            notes.push(format!("published head {head} is in the chain"));
        }
        notes
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Walks stored records in position order with the checkpoints stored beside them (in
/// sequence order) and checks, besides the chain itself ([`verify_chain`]):
/// - that the last event has the hash recorded as the head with each commit;
/// - that every checkpoint of `key` matches its event, that none lies beyond the last
///   event, and that no event after the first checkpoint of `key` lacks one up to the head;
/// - that each published head is in the chain.
///
/// Only events up to `head` are read when it is given (later ones are still being written).
pub fn verify_anchored<R, C>(
    records: R,
    checkpoints: C,
    head: Option<&ChainHead>,
    key: Option<&AuditKey>,
    published: &[PublishedHead],
) -> Result<AnchorReport, ChainError>
where
    R: IntoIterator<Item = (u64, AuditRecord)>,
    C: IntoIterator<Item = (u64, Checkpoint)>,
{
    let until = head.map_or(u64::MAX, |h| h.seq);
    let mut walk = Walk {
        checkpoints: checkpoints.into_iter().peekable(),
        key,
        published,
        report: AnchorReport {
            key: key.map(|k| k.id().to_owned()),
            ..AnchorReport::default()
        },
        last_hash: None,
        failure: None,
    };
    // Every record is read, so that a checkpoint beyond the head can be told apart: one of
    // a batch landing as we walk has its events, one left after events were removed not.
    let stored = std::cell::Cell::new(0);
    let records = records
        .into_iter()
        .inspect(|(position, _)| stored.set(stored.get().max(*position)))
        .filter(|(position, _)| *position <= until)
        .inspect(|(_, record)| walk.see(record));
    let events = verify_chain(records, head.map(|h| h.seq))?;
    walk.finish(events, head, stored.get())
}

struct Walk<'k, C: Iterator<Item = (u64, Checkpoint)>> {
    checkpoints: std::iter::Peekable<C>,
    key: Option<&'k AuditKey>,
    published: &'k [PublishedHead],
    report: AnchorReport,
    last_hash: Option<String>,
    /// The first checkpoint or published head that does not match.
    failure: Option<ChainError>,
}

impl<C: Iterator<Item = (u64, Checkpoint)>> Walk<'_, C> {
    fn fail(&mut self, error: ChainError) {
        self.failure.get_or_insert(error);
    }

    fn see(&mut self, record: &AuditRecord) {
        let seq = record.seq;
        while self.checkpoints.next_if(|(at, _)| *at < seq).is_some() {}
        if let Some((_, checkpoint)) = self.checkpoints.next_if(|(at, _)| *at == seq) {
            self.check(seq, &record.hash, &checkpoint);
        }
        for head in self.published.iter().filter(|h| h.seq == seq) {
            if record.hash.starts_with(&head.hash) {
                self.report.published.push(head.to_string());
            } else {
                self.fail(ChainError::NotPublished {
                    seq,
                    published: head.hash.clone(),
                    found: record.hash.chars().take(head.hash.len()).collect(),
                });
            }
        }
        self.last_hash = Some(record.hash.clone());
    }

    fn check(&mut self, seq: u64, hash: &str, checkpoint: &Checkpoint) {
        match self.key {
            Some(key) if key.id() == checkpoint.key => {
                if !key.vouches_for(checkpoint, seq, hash) {
                    self.fail(ChainError::CheckpointMismatch {
                        seq,
                        key: checkpoint.key.clone(),
                    });
                    return;
                }
                if let Some(found) = checkpoint.adopted {
                    self.report.adoptions.push(Adoption {
                        at: seq,
                        found,
                        after: self.report.anchored_through,
                    });
                }
                self.report.anchored_through = seq;
                self.report.checkpoints += 1;
            }
            _ => {
                *self
                    .report
                    .other_keys
                    .entry(checkpoint.key.clone())
                    .or_default() += 1
            }
        }
    }

    /// `stored`: the highest position of any stored record, walked or not.
    fn finish(
        mut self,
        events: u64,
        head: Option<&ChainHead>,
        stored: u64,
    ) -> Result<AnchorReport, ChainError> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        // A checkpoint after the last event is left from events that were removed, unless
        // it is of a batch that landed after the head was read.
        let until = head.map_or(u64::MAX, |h| h.seq);
        if let Some((beyond, _)) = self
            .checkpoints
            .find(|(at, _)| *at > events && (*at <= until || *at > stored))
        {
            return Err(ChainError::Truncated {
                last: events,
                expected: beyond,
            });
        }
        if let Some(head) = head
            && head.seq == events
            && self
                .last_hash
                .as_ref()
                .is_some_and(|last| *last != head.hash)
        {
            return Err(ChainError::Rewritten { seq: head.seq });
        }
        if let Some(beyond) = self.published.iter().find(|h| h.seq > events) {
            return Err(ChainError::PublishedBeyond {
                seq: beyond.seq,
                last: events,
            });
        }
        let anchored = self.report.anchored_through;
        if let Some(key) = self.key
            && anchored > 0
            && anchored < events
        {
            return Err(ChainError::Unanchored {
                from: anchored + 1,
                to: events,
                key: key.id().to_owned(),
            });
        }
        self.report.events = events;
        self.report.head = self.last_hash.map(|hash| ChainHead { seq: events, hash });
        Ok(self.report)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::audit::{Actor, AuditAction, AuditEvent};
    use crate::domain::ids::RequestId;

    fn key() -> AuditKey {
        AuditKey::new(b"a key nobody who edits the data directory holds")
    }

    fn event(n: u64, reason: &str) -> AuditEvent {
        let at = Utc.timestamp_opt(1_700_000_000 + n as i64, 0).unwrap();
        AuditEvent::new(at, Actor::System, AuditAction::RequestExpired)
            .request(RequestId(n))
            .reason(reason)
    }

    /// `n` events chained from the genesis hash, as a writer (or a forger) makes them.
    fn chain(events: impl IntoIterator<Item = AuditEvent>) -> Vec<(u64, AuditRecord)> {
        let mut prev = GENESIS_HASH.to_owned();
        events
            .into_iter()
            .zip(1..)
            .map(|(event, seq)| {
                let record = AuditRecord::chain(seq, &prev, event);
                prev = record.hash.clone();
                (seq, record)
            })
            .collect()
    }

    fn events(n: u64) -> Vec<AuditEvent> {
        (1..=n).map(|i| event(i, "on call")).collect()
    }

    fn head(records: &[(u64, AuditRecord)]) -> ChainHead {
        let (seq, last) = records.last().unwrap();
        ChainHead {
            seq: *seq,
            hash: last.hash.clone(),
        }
    }

    /// Checkpoints of `key` at each of `at`, as a writer landing batches ending there makes.
    fn checkpoints(
        key: &AuditKey,
        records: &[(u64, AuditRecord)],
        at: &[u64],
    ) -> Vec<(u64, Checkpoint)> {
        at.iter()
            .map(|&seq| {
                let record = &records[seq as usize - 1].1;
                let head = ChainHead {
                    seq,
                    hash: record.hash.clone(),
                };
                (seq, key.checkpoint(&head, None))
            })
            .collect()
    }

    #[test]
    fn a_chain_checkpointed_by_its_key_is_anchored_to_its_head() {
        let records = chain(events(6));
        let marks = checkpoints(&key(), &records, &[2, 5, 6]);
        let report = verify_anchored(
            records.clone(),
            marks,
            Some(&head(&records)),
            Some(&key()),
            &[],
        )
        .unwrap();
        assert_eq!(
            (report.events, report.anchored_through, report.checkpoints),
            (6, 6, 3)
        );
        assert_eq!(report.head, Some(head(&records)));
        assert_eq!(
            report.notes(),
            [format!(
                "anchored: events 1-6 by key {} (3 checkpoints)",
                key().id()
            )]
        );
    }

    #[test]
    fn a_chain_rewritten_with_fresh_hashes_is_refused_with_the_key_and_only_flagged_without() {
        let genuine = chain(events(6));
        let marks = checkpoints(&key(), &genuine, &[3, 6]);
        let mut rewritten = events(6);
        rewritten[1] = event(2, "routine check");
        let forged = chain(rewritten);
        let forged_head = head(&forged);

        let err = verify_anchored(
            forged.clone(),
            marks.clone(),
            Some(&forged_head),
            Some(&key()),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err,
            ChainError::CheckpointMismatch {
                seq: 3,
                key: key().id().to_owned()
            }
        );
        assert!(err.to_string().contains("without the key"), "{err}");

        let report = verify_anchored(forged, marks, Some(&forged_head), None, &[]).unwrap();
        assert_eq!(report.events, 6);
        let notes = report.notes();
        assert!(
            notes[0].starts_with("not anchored: no [audit] key"),
            "{notes:?}"
        );
        assert!(
            notes[1].contains(&format!("2 checkpoints of key {} not checked", key().id())),
            "{notes:?}"
        );
    }

    #[test]
    fn events_added_after_the_last_checkpoint_are_refused() {
        let records = chain(events(6));
        let marks = checkpoints(&key(), &records, &[2, 4]);
        let err = verify_anchored(
            records.clone(),
            marks,
            Some(&head(&records)),
            Some(&key()),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err,
            ChainError::Unanchored {
                from: 5,
                to: 6,
                key: key().id().to_owned()
            }
        );
    }

    #[test]
    fn a_checkpoint_beyond_the_last_event_shows_the_log_was_cut_back() {
        let records = chain(events(6));
        let marks = checkpoints(&key(), &records, &[3, 6]);
        let cut: Vec<_> = records[..3].to_vec();
        let err =
            verify_anchored(cut.clone(), marks, Some(&head(&cut)), Some(&key()), &[]).unwrap_err();
        assert_eq!(
            err,
            ChainError::Truncated {
                last: 3,
                expected: 6
            }
        );
    }

    #[test]
    fn a_head_that_does_not_name_the_last_event_shows_a_rewrite() {
        let genuine = chain(events(4));
        let recorded = head(&genuine);
        let mut rewritten = events(4);
        rewritten[3] = event(4, "routine check");
        let err =
            verify_anchored(chain(rewritten), Vec::new(), Some(&recorded), None, &[]).unwrap_err();
        assert_eq!(err, ChainError::Rewritten { seq: 4 });
    }

    #[test]
    fn a_published_head_must_still_be_in_the_chain() {
        let genuine = chain(events(6));
        let published: PublishedHead = head(&genuine).short().parse().unwrap();
        let earlier: PublishedHead = ChainHead {
            seq: 4,
            hash: genuine[3].1.hash.clone(),
        }
        .to_string()
        .parse()
        .unwrap();
        let both = [earlier.clone(), published.clone()];
        let report = verify_anchored(genuine.clone(), Vec::new(), None, None, &both).unwrap();
        assert_eq!(
            report.published,
            [earlier.to_string(), published.to_string()]
        );

        // Rewritten by someone holding the key: checkpoints match, the published head not.
        let mut rewritten = events(6);
        rewritten[1] = event(2, "routine check");
        let forged = chain(rewritten);
        let marks = checkpoints(&key(), &forged, &[6]);
        let err = verify_anchored(
            forged.clone(),
            marks,
            Some(&head(&forged)),
            Some(&key()),
            &both,
        )
        .unwrap_err();
        assert!(
            matches!(err, ChainError::NotPublished { seq: 4, .. }),
            "{err}"
        );

        // Cut back to event 3: the head published at event 6 is gone.
        let cut = genuine[..3].to_vec();
        let err = verify_anchored(cut, Vec::new(), None, None, &[published]).unwrap_err();
        assert_eq!(err, ChainError::PublishedBeyond { seq: 6, last: 3 });
    }

    #[test]
    fn a_published_head_is_a_number_and_at_least_sixteen_hex_digits() {
        let head: PublishedHead = " 2198:9F86D081884C7D65 ".parse().unwrap();
        assert_eq!(head.to_string(), "2198:9f86d081884c7d65");
        for bad in [
            "2198",
            "2198:9f86d081",
            "x:9f86d081884c7d65",
            "7:9f86d081884c7d6z",
        ] {
            let err = bad.parse::<PublishedHead>().unwrap_err();
            assert!(err.to_string().contains("2198:9f86d081884c7d65"), "{err}");
        }
    }

    #[test]
    fn a_writer_that_took_over_an_unanchored_chain_is_reported() {
        let records = chain(events(6));
        let mut marks = checkpoints(&key(), &records, &[2]);
        let taken = ChainHead {
            seq: 6,
            hash: records[5].1.hash.clone(),
        };
        marks.push((6, key().checkpoint(&taken, Some(5))));
        let report = verify_anchored(
            records.clone(),
            marks,
            Some(&head(&records)),
            Some(&key()),
            &[],
        )
        .unwrap();
        assert_eq!(
            report.adoptions,
            [Adoption {
                at: 6,
                found: 5,
                after: 2
            }]
        );
        let notes = report.notes();
        assert!(
            notes[1].starts_with("events 3-5 were not anchored when written"),
            "{notes:?}"
        );

        // Stripping the adoption from the checkpoint to hide it breaks its MAC.
        let mut stripped = checkpoints(&key(), &records, &[2]);
        let mut hidden = key().checkpoint(&taken, Some(5));
        hidden.adopted = None;
        stripped.push((6, hidden));
        let err = verify_anchored(
            records.clone(),
            stripped,
            Some(&head(&records)),
            Some(&key()),
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(err, ChainError::CheckpointMismatch { seq: 6, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_key_is_named_by_an_id_that_is_not_the_key_and_is_never_shown() {
        let other = AuditKey::new(b"another key, after a rotation");
        assert_eq!(key().id().len(), 8);
        assert_ne!(key().id(), other.id());
        assert_eq!(
            key().id(),
            AuditKey::new(b"a key nobody who edits the data directory holds").id()
        );
        assert_eq!(format!("{:?}", key()), format!("AuditKey({})", key().id()));
        let head = ChainHead {
            seq: 1,
            hash: "ab".repeat(32),
        };
        assert!(!other.vouches_for(&key().checkpoint(&head, None), 1, &head.hash));
        assert!(key().vouches_for(&key().checkpoint(&head, None), 1, &head.hash));
    }
}
