//! The audit chain's checkpoints as stored (see [`crate::domain::anchor`]): the writer MACs
//! the head of each batch that appends events, and verification walks the chain and its
//! checkpoints together.
//!
//! A checkpoint costs a batch one HMAC over the head and one more write in its journal
//! value, not one per commit. It lands with the batch, so a crash never leaves events
//! without theirs. Before its first checkpoint a writer checks the head it will extend
//! against that head's checkpoint, since the data directory may have been rewritten while
//! Gatehouse was stopped: when no checkpoint of its key vouches for the head, it takes the
//! chain as found and its first checkpoint says so (`adopted`), which verification reports.

use std::fmt;
use std::sync::PoisonError;

use super::SledStore;
use super::journal::Staged;
use super::keys::*;
use crate::domain::anchor::{
    AnchorReport, AuditKey, ChainHead, Checkpoint, PublishedHead, verify_anchored,
};
use crate::domain::audit::AuditRecord;
use crate::store::StoreError;

/// The key the writer anchors the chain with, and the head it found unanchored, until its
/// first checkpoint records it.
pub(super) struct Anchor {
    key: AuditKey,
    adopt: Option<u64>,
}

/// What a writer found when it was given its audit key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anchoring {
    /// No events yet, or the head has a checkpoint of this key that matches.
    Continues { key: String },
    /// The head has none: events up to `head` are taken as found.
    Adopts {
        key: String,
        head: u64,
        why: Unanchored,
    },
}

/// Why the head a writer found has no checkpoint of its key that matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unanchored {
    /// No event was ever anchored: the data directory predates the key.
    NeverAnchored,
    /// The last checkpoint was made with another key (the key was changed).
    OtherKey(String),
    /// Events after `last` were written without the key.
    WrittenWithout { last: u64 },
    /// The head's checkpoint does not match it: the chain was rewritten.
    Mismatch,
}

impl Anchoring {
    /// Whether this is worth an operator's attention, and how much: a rewrite is an error.
    pub fn is_suspicious(&self) -> bool {
        matches!(
            self,
            Anchoring::Adopts {
                why: Unanchored::Mismatch | Unanchored::WrittenWithout { .. },
                ..
            }
        )
    }
}

impl fmt::Display for Anchoring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchoring::Continues { key } => write!(f, "the audit log is anchored by key {key}"),
            Anchoring::Adopts { key, head, why } => {
                let why = match why {
                    Unanchored::NeverAnchored => {
                        "no event was anchored yet (the log predates the audit key)".to_owned()
                    }
                    Unanchored::OtherKey(other) => {
                        format!("the last checkpoint was made with key {other} (the key changed)")
                    }
                    Unanchored::WrittenWithout { last } => format!(
                        "events after {last} were written without the audit key (or added by someone without it)"
                    ),
                    Unanchored::Mismatch => "the head does not match its checkpoint: the log was rewritten while Gatehouse was stopped; run `gatehouse audit verify`".to_owned(),
                };
                write!(
                    f,
                    "audit key {key} takes events 1-{head} as found, since {why}; `gatehouse audit verify` reports it"
                )
            }
        }
    }
}

impl SledStore {
    /// Anchors the audit chain with `key` from now on, and says what was found.
    pub fn anchor_with(&self, key: AuditKey) -> Result<Anchoring, StoreError> {
        let _writer = self.quiet();
        let id = key.id().to_owned();
        let head = self.audit_head()?.unwrap_or_else(ChainHead::genesis);
        let why = if head.seq == 0 {
            None
        } else {
            self.why_unanchored(&key, &head)?
        };
        let (adopt, anchoring) = match why {
            None => (None, Anchoring::Continues { key: id }),
            Some(why) => (
                Some(head.seq),
                Anchoring::Adopts {
                    key: id,
                    head: head.seq,
                    why,
                },
            ),
        };
        *self.anchor.lock().unwrap_or_else(PoisonError::into_inner) = Some(Anchor { key, adopt });
        Ok(anchoring)
    }

    /// Why no checkpoint of `key` vouches for `head`; `None` when one does.
    fn why_unanchored(
        &self,
        key: &AuditKey,
        head: &ChainHead,
    ) -> Result<Option<Unanchored>, StoreError> {
        let at = id_key(head.seq);
        let record: Option<AuditRecord> = match self.trees.audit.get(at)? {
            Some(bytes) => Some(decode(AUDIT, &at, &bytes)?),
            None => None,
        };
        let found = match self.trees.audit_checkpoints.get(at)? {
            Some(bytes) => Some(decode::<Checkpoint>(AUDIT_CHECKPOINTS, &at, &bytes)?),
            None => None,
        };
        if let Some(checkpoint) = found {
            let matches = key.vouches_for(&checkpoint, head.seq, &head.hash)
                && record.is_some_and(|r| r.hash == head.hash);
            return Ok(match () {
                () if matches => None,
                () if checkpoint.key == key.id() => Some(Unanchored::Mismatch),
                () => Some(Unanchored::OtherKey(checkpoint.key)),
            });
        }
        Ok(Some(match self.trees.audit_checkpoints.last()? {
            None => Unanchored::NeverAnchored,
            Some((last, bytes)) => {
                let checkpoint: Checkpoint = decode(AUDIT_CHECKPOINTS, &last, &bytes)?;
                if checkpoint.key == key.id() {
                    Unanchored::WrittenWithout {
                        last: seq_of(AUDIT_CHECKPOINTS, &last)?,
                    }
                } else {
                    Unanchored::OtherKey(checkpoint.key)
                }
            }
        }))
    }

    /// Adds to `staged` the checkpoint of the head it moves the chain to, if it appends
    /// events and an audit key is set.
    pub(super) fn seal(&self, staged: &mut Staged) {
        let mut anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(anchor) = anchor.as_mut() else {
            return;
        };
        let Some(Some(bytes)) = staged.get(META, AUDIT_HEAD_KEY) else {
            return;
        };
        let sealed = decode::<ChainHead>(META, AUDIT_HEAD_KEY, bytes).and_then(|head| {
            let checkpoint = anchor.key.checkpoint(&head, anchor.adopt);
            let at = id_key(head.seq);
            Ok((at, encode(AUDIT_CHECKPOINTS, &at, &checkpoint)?))
        });
        match sealed {
            Ok((at, checkpoint)) => {
                anchor.adopt = None;
                staged.set(AUDIT_CHECKPOINTS, at.to_vec(), Some(checkpoint.into()));
            }
            // The head was staged by this batch, so it decodes; should it not, the events
            // stay without a checkpoint, which verification reports.
            Err(error) => tracing::error!(%error, "could not checkpoint the audit chain"),
        }
    }

    /// Walks the chain and its checkpoints up to the head as it is now; see
    /// [`verify_anchored`].
    pub(super) fn verify_anchored(
        &self,
        published: &[PublishedHead],
    ) -> Result<AnchorReport, StoreError> {
        // Read with both writer locks: every batch up to this head has landed whole,
        // checkpoints included. Events and checkpoints written while we walk lie beyond.
        let (head, last_checkpoint) = {
            let _writer = self.quiet();
            let last = match self.trees.audit_checkpoints.last()? {
                Some((key, _)) => seq_of(AUDIT_CHECKPOINTS, &key)?,
                None => 0,
            };
            (self.audit_head()?, last)
        };
        let key = self
            .anchor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|a| a.key.clone());
        let mut record_failure = None;
        let records = self.trees.audit.iter().map_while(|item| {
            let read = item.map_err(StoreError::from).and_then(|(key, bytes)| {
                let position = seq_of(AUDIT, &key)?;
                Ok((position, decode::<AuditRecord>(AUDIT, &key, &bytes)?))
            });
            read.map_err(|e| record_failure = Some(e)).ok()
        });
        let mut checkpoint_failure = None;
        let checkpoints = self.trees.audit_checkpoints.iter().map_while(|item| {
            let read = item.map_err(StoreError::from).and_then(|(key, bytes)| {
                let seq = seq_of(AUDIT_CHECKPOINTS, &key)?;
                Ok((seq, decode::<Checkpoint>(AUDIT_CHECKPOINTS, &key, &bytes)?))
            });
            read.map_err(|e| checkpoint_failure = Some(e)).ok()
        });
        let checkpoints = checkpoints.take_while(|(seq, _)| *seq <= last_checkpoint);
        let verified =
            verify_anchored(records, checkpoints, head.as_ref(), key.as_ref(), published);
        match record_failure.or(checkpoint_failure) {
            Some(e) => Err(e),
            None => Ok(verified?),
        }
    }

    /// The chain head, once it is on disk, to be published.
    pub(super) fn durable_head(&self) -> Result<Option<ChainHead>, StoreError> {
        let (head, landed) = {
            let _writer = self.quiet();
            (self.audit_head()?, self.last_outbox_seq()?)
        };
        // The flush covers every batch landed before it started, this head's among them.
        self.durable(landed)?;
        Ok(head)
    }
}
