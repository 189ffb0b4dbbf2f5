//! The audit chain's checkpoints on PostgreSQL, as the sled store keeps them (see
//! `sled_store::anchor` and [`crate::domain::anchor`]): each batch that appends events
//! stores the MAC of the head it moved the chain to, in the same transaction, and
//! verification walks the chain and its checkpoints together, page by page.

use std::cell::RefCell;
use std::sync::PoisonError;

use super::PgStore;
use super::client::CALL_LIMIT;
use super::write::parse;
use crate::domain::anchor::{
    AnchorReport, AuditKey, ChainHead, Checkpoint, PublishedHead, verify_anchored,
};
use crate::domain::audit::AuditRecord;
use crate::store::{Anchoring, StoreError, Unanchored};

/// How many records verification reads at a time.
const PAGE: i64 = 2_000;

/// The key batches are checkpointed with, and the head found unanchored until the first
/// checkpoint records it.
pub(super) struct Anchor {
    key: AuditKey,
    adopt: Option<u64>,
    /// Whether the batch being applied made a checkpoint (which records `adopt`).
    made: bool,
}

impl Anchor {
    /// The checkpoint of `head`, made by the batch being applied.
    pub(super) fn checkpoint(&mut self, head: &ChainHead) -> Checkpoint {
        self.made = true;
        self.key.checkpoint(head, self.adopt)
    }

    /// The batch committed: a checkpoint it made has recorded what was adopted.
    pub(super) fn landed(&mut self) {
        if std::mem::take(&mut self.made) {
            self.adopt = None;
        }
    }
}

impl PgStore {
    /// Anchors the audit chain with `key` from now on, and says what was found.
    pub fn anchor_with(&self, key: AuditKey) -> Result<Anchoring, StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let id = key.id().to_owned();
        let head = self.head()?;
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
        *self.anchor.lock().unwrap_or_else(PoisonError::into_inner) = Some(Anchor {
            key,
            adopt,
            made: false,
        });
        Ok(anchoring)
    }

    /// The head as committed (genesis before the first event).
    pub(super) fn head(&self) -> Result<ChainHead, StoreError> {
        self.pool.run(CALL_LIMIT, async |conn| {
            let row = conn
                .query_opt("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
                .await?;
            Ok(match row {
                Some(row) => ChainHead {
                    seq: row.get::<_, i64>(0) as u64,
                    hash: row.get(1),
                },
                None => ChainHead::genesis(),
            })
        })
    }

    fn why_unanchored(
        &self,
        key: &AuditKey,
        head: &ChainHead,
    ) -> Result<Option<Unanchored>, StoreError> {
        let at = head.seq as i64;
        let (record, found, last) = self.pool.run(CALL_LIMIT, async |conn| {
            let record = conn
                .query_opt("SELECT record FROM audit WHERE seq = $1", &[&at])
                .await?
                .map(|r| r.get::<_, String>(0));
            let found = conn
                .query_opt(
                    "SELECT checkpoint FROM audit_checkpoints WHERE seq = $1",
                    &[&at],
                )
                .await?
                .map(|r| r.get::<_, String>(0));
            let last = conn
                .query_opt(
                    "SELECT seq, checkpoint FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
                    &[],
                )
                .await?
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
            Ok((record, found, last))
        })?;
        let record: Option<AuditRecord> = record
            .map(|text| parse(|| format!("audit seq {at}"), &text))
            .transpose()?;
        if let Some(text) = found {
            let checkpoint: Checkpoint = parse(|| format!("audit_checkpoints seq {at}"), &text)?;
            let matches = key.vouches_for(&checkpoint, head.seq, &head.hash)
                && record.is_some_and(|r| r.hash == head.hash);
            return Ok(match () {
                () if matches => None,
                () if checkpoint.key == key.id() => Some(Unanchored::Mismatch),
                () => Some(Unanchored::OtherKey(checkpoint.key)),
            });
        }
        Ok(Some(match last {
            None => Unanchored::NeverAnchored,
            Some((seq, text)) => {
                let checkpoint: Checkpoint =
                    parse(|| format!("audit_checkpoints seq {seq}"), &text)?;
                if checkpoint.key == key.id() {
                    Unanchored::WrittenWithout { last: seq as u64 }
                } else {
                    Unanchored::OtherKey(checkpoint.key)
                }
            }
        }))
    }

    /// Walks the chain and its checkpoints up to the head as it is now.
    pub(super) fn verify_anchored(
        &self,
        published: &[PublishedHead],
    ) -> Result<AnchorReport, StoreError> {
        // One statement, one snapshot: the head and the last checkpoint of the same batch.
        let (head, last_checkpoint) = self
            .pool
            .run(CALL_LIMIT, async |conn| {
                let row = conn
                    .query_opt(
                        "SELECT seq, hash, (SELECT coalesce(max(seq), 0) FROM audit_checkpoints) \
                     FROM audit_head WHERE id = 1",
                        &[],
                    )
                    .await?;
                Ok(row.map(|r| {
                    (
                        ChainHead {
                            seq: r.get::<_, i64>(0) as u64,
                            hash: r.get(1),
                        },
                        r.get::<_, i64>(2),
                    )
                }))
            })?
            .unwrap_or((ChainHead::genesis(), 0));
        let head = (head.seq > 0).then_some(head);
        let key = self
            .anchor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|a| a.key.clone());
        let failure = RefCell::new(None);
        let fail = |e: StoreError| {
            failure.borrow_mut().get_or_insert(e);
        };
        let records = self
            .pages(
                "SELECT seq, record FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                i64::MAX,
                &failure,
            )
            .map_while(|(seq, text)| {
                parse::<AuditRecord>(|| format!("audit seq {seq}"), &text)
                    .map(|r| (seq as u64, r))
                    .map_err(fail)
                    .ok()
            });
        let checkpoints = self
            .pages(
                "SELECT seq, checkpoint FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT $2",
                last_checkpoint,
                &failure,
            )
            .map_while(|(seq, text)| {
                parse::<Checkpoint>(|| format!("audit_checkpoints seq {seq}"), &text)
                    .map(|c| (seq as u64, c))
                    .map_err(fail)
                    .ok()
            });
        let verified =
            verify_anchored(records, checkpoints, head.as_ref(), key.as_ref(), published);
        match failure.into_inner() {
            Some(e) => Err(e),
            None => Ok(verified?),
        }
    }

    /// The rows `(seq, text)` of `sql` (which pages by `seq > $1 … LIMIT $2`) up to `until`,
    /// read a page at a time; a failed read ends them and is left in `failure`.
    fn pages<'a>(
        &'a self,
        sql: &'static str,
        until: i64,
        failure: &'a RefCell<Option<StoreError>>,
    ) -> impl Iterator<Item = (i64, String)> + 'a {
        let mut after = 0_i64;
        let mut page: std::vec::IntoIter<(i64, String)> = Vec::new().into_iter();
        let mut done = false;
        std::iter::from_fn(move || {
            loop {
                if let Some(row) = page.next() {
                    if row.0 > until {
                        return None;
                    }
                    after = row.0;
                    return Some(row);
                }
                if done {
                    return None;
                }
                let read = self.pool.run(CALL_LIMIT, async |conn| {
                    let rows = conn.query(sql, &[&after, &PAGE]).await?;
                    Ok(rows
                        .iter()
                        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
                        .collect::<Vec<_>>())
                });
                match read {
                    Ok(rows) => {
                        done = (rows.len() as i64) < PAGE;
                        page = rows.into_iter();
                    }
                    Err(e) => {
                        failure.borrow_mut().get_or_insert(e);
                        return None;
                    }
                }
            }
        })
    }
}
