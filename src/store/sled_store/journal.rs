//! The journal that makes a batch of commits atomic without a sled transaction.
//!
//! Why not a transaction: each sled transaction (and each `apply_batch`) seals the log
//! buffer twice, which costs two writes and wakes every idle sled IO thread twice; and from
//! the first transaction on, every read in the process takes a global lock that a
//! transaction holds exclusively while it runs. Under load that was most of a commit's cost.
//!
//! How a batch lands instead:
//! 1. under the staging lock, its writes are staged ([`Staged`]): the final value of each
//!    key it writes; the reads of the batch see what it staged before them, then what the
//!    batch still landing staged, then the trees;
//! 2. under the landing lock (batches land one at a time, in the order they were staged),
//!    the whole batch, encoded as one value, replaces the single key of the `journal` tree:
//!    one sled insert, atomic on its own;
//! 3. and each write is applied to its tree.
//!
//! After a crash sled recovers a prefix of its log. If any write of step 3 survived, the
//! journal value of its batch did too, and every earlier batch survived whole. Opening the
//! store therefore applies the journal's batch again ([`super::SledStore::replay_journal`]):
//! a write is a final value, not an increment, so applying it twice is applying it once.
//! Nothing else writes the keys a batch writes (ids and delivery ids live in keys of their
//! own). A clean close removes the journal.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use sled::IVec;

use super::keys::{TREE_NAMES, corrupt};
use crate::store::StoreError;

/// The one key of the `journal` tree.
pub(super) const JOURNAL_KEY: &[u8] = b"batch";

/// The first bytes of an encoded batch: the format, should it ever change.
const MAGIC: &[u8] = b"GHJ1";

/// A batch lands once it has staged this much, and the rest of it goes into the next: a
/// sled value over about an eighth of a log segment is written as a file of its own.
pub(super) const LAND_AT_BYTES: usize = 48 * 1024;

/// One staged write: `value` `None` removes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Op {
    pub tree: &'static str,
    pub key: Vec<u8>,
    pub value: Option<IVec>,
}

/// Writes staged, one per key: each key where it was first written, with the last value
/// written to it. A batch of commits rewrites some keys in every commit (the audit head,
/// the outbox counter), and only their last value needs to land; keeping the first place
/// keeps a record ahead of the index entries that a later write put after it.
#[derive(Default)]
pub(super) struct Staged {
    ops: Vec<Op>,
    /// The position in `ops` of each key, by tree (so that a lookup borrows the key
    /// instead of copying it). A batch writes to a handful of trees, so they are looked up
    /// in a short list rather than hashed.
    at: Vec<(&'static str, Positions)>,
    bytes: usize,
}

/// Where each key of one tree is in [`Staged::ops`].
type Positions = HashMap<Vec<u8>, usize, BuildHasherDefault<KeyHasher>>;

/// A fast hash of the keys a batch stages (`FxHash`'s mixing step, eight bytes at a time).
/// The writer hashes every key it stages or reads several times, and SipHash took a tenth
/// of its time. SipHash guards a map against keys chosen to collide; here a part of a
/// batch holds at most [`LAND_AT_BYTES`] of writes, so even keys that all collide cost a
/// few milliseconds, once.
#[derive(Default, Clone, Copy)]
pub(super) struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Staged {
    /// Where `tree`'s positions are in `at`.
    fn tree_at(&self, tree: &'static str) -> Option<usize> {
        self.at
            .iter()
            .position(|(name, _)| std::ptr::eq(*name, tree) || *name == tree)
    }

    /// What the batch staged for `key`: `None` when nothing, `Some(None)` when a removal.
    pub fn get(&self, tree: &'static str, key: &[u8]) -> Option<Option<&IVec>> {
        self.at[self.tree_at(tree)?]
            .1
            .get(key)
            .map(|&at| self.ops[at].value.as_ref())
    }

    pub fn set(&mut self, tree: &'static str, key: Vec<u8>, value: Option<IVec>) {
        let size = |value: &Option<IVec>| value.as_ref().map_or(0, |v| v.len());
        let index = self.tree_at(tree).unwrap_or_else(|| {
            self.at.push((tree, Positions::default()));
            self.at.len() - 1
        });
        match self.at[index].1.entry(key) {
            Entry::Occupied(place) => {
                let op = &mut self.ops[*place.get()];
                self.bytes = self.bytes - size(&op.value) + size(&value);
                op.value = value;
            }
            Entry::Vacant(place) => {
                let key = place.key().clone();
                self.bytes += tree.len() + key.len() + size(&value) + 10;
                place.insert(self.ops.len());
                self.ops.push(Op { tree, key, value });
            }
        }
    }

    /// Stages everything `later` staged, after what is staged here.
    pub fn absorb(&mut self, later: Staged) {
        for op in later.ops {
            self.set(op.tree, op.key, op.value);
        }
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// About how many bytes the encoded batch takes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The batch as one journal value: the magic, then per write the tree name's length
    /// (1 byte) and name, the key's length (4 bytes, big-endian) and key, then 0 for a
    /// removal or 1, the value's length (4 bytes) and the value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + self.bytes);
        out.extend_from_slice(MAGIC);
        for op in &self.ops {
            out.push(op.tree.len() as u8);
            out.extend_from_slice(op.tree.as_bytes());
            put_bytes(&mut out, &op.key);
            match &op.value {
                None => out.push(0),
                Some(value) => {
                    out.push(1);
                    put_bytes(&mut out, value);
                }
            }
        }
        out
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("a key or value under 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The writes of an encoded batch, in order; a journal that does not decode is corrupt.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<Op>, StoreError> {
    let damaged = |why: &str| corrupt(super::keys::JOURNAL, JOURNAL_KEY, why);
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| damaged("the journal does not start with GHJ1"))?;
    let mut ops = Vec::new();
    while let Some((&len, after)) = rest.split_first() {
        let (name, after) = take(after, usize::from(len)).ok_or_else(|| damaged("cut short"))?;
        let tree = TREE_NAMES
            .into_iter()
            .find(|known| known.as_bytes() == name)
            .ok_or_else(|| damaged("a write names a tree this build does not know"))?;
        let (key, after) = take_sized(after).ok_or_else(|| damaged("cut short"))?;
        let (value, after) = match after.split_first() {
            Some((0, after)) => (None, after),
            Some((1, after)) => {
                let (value, after) = take_sized(after).ok_or_else(|| damaged("cut short"))?;
                (Some(IVec::from(value)), after)
            }
            _ => return Err(damaged("a write is neither a value nor a removal")),
        };
        ops.push(Op {
            tree,
            key: key.to_vec(),
            value,
        });
        rest = after;
    }
    Ok(ops)
}

fn take(bytes: &[u8], len: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= len).then(|| bytes.split_at(len))
}

fn take_sized(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take(bytes, 4)?;
    let len = u32::from_be_bytes(len.try_into().ok()?);
    take(rest, usize::try_from(len).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_store::keys::{GRANTS, META, OUTBOX};

    fn staged() -> Staged {
        let mut staged = Staged::default();
        staged.set(GRANTS, vec![0, 1], Some(IVec::from(&b"first"[..])));
        staged.set(OUTBOX, vec![9; 8], None);
        staged.set(META, b"audit_head".to_vec(), Some(IVec::from(&[][..])));
        staged.set(GRANTS, vec![0, 1], Some(IVec::from(&b"second"[..])));
        staged
    }

    #[test]
    fn a_batch_reads_back_the_last_value_it_staged() {
        let staged = staged();
        assert_eq!(
            staged.get(GRANTS, &[0, 1]),
            Some(Some(&IVec::from(&b"second"[..])))
        );
        assert_eq!(staged.get(OUTBOX, &[9; 8]), Some(None));
        assert_eq!(staged.get(OUTBOX, &[8; 8]), None);
    }

    #[test]
    fn a_batch_decodes_to_its_last_write_of_each_key_in_first_written_order() {
        let staged = staged();
        assert_eq!(decode(&staged.encode()).unwrap(), staged.ops());

        let mut later = Staged::default();
        later.set(OUTBOX, vec![9; 8], Some(IVec::from(&b"back"[..])));
        let mut both = staged;
        both.absorb(later);
        // One write per key, where it was first written, with its last value.
        let keys: Vec<_> = both.ops().iter().map(|op| op.key.clone()).collect();
        assert_eq!(keys, [vec![0, 1], vec![9; 8], b"audit_head".to_vec()]);
        assert_eq!(both.ops()[0].value, Some(IVec::from(&b"second"[..])));
        assert_eq!(
            both.get(OUTBOX, &[9; 8]),
            Some(Some(&IVec::from(&b"back"[..])))
        );
        assert_eq!(decode(&both.encode()).unwrap(), both.ops());
    }

    #[test]
    fn a_damaged_journal_is_an_error_that_names_it() {
        let encoded = staged().encode();
        for damaged in [
            &encoded[..encoded.len() - 1],
            &encoded[4..],
            &[b"GHJ1".as_slice(), &[4], b"nope", &[0, 0, 0, 0, 0]].concat(),
            &[b"GHJ1".as_slice(), &[4], b"meta", &[0, 0, 0, 0, 7]].concat(),
        ] {
            let err = decode(damaged).unwrap_err();
            assert!(err.to_string().contains("journal key \"batch\""), "{err}");
        }
    }
}
