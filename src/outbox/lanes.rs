//! A lane's order across retries: "one at a time, oldest first" also holds while the oldest
//! waits for its next attempt. An entry that failed and waits keeps every younger entry of its
//! lane waiting too (a refresh of a request's cards queued after a refresh that Slack refused
//! runs after that one is retried, not before), until it leaves the outbox.
//!
//! The younger entries found due behind a waiting one are held here by seq, so the store passes
//! over them without reading them at every pass (a platform down for an hour can leave many);
//! they are let go, to be read again, when the entry they wait for leaves.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::domain::effect::Lane;

#[derive(Debug, Default)]
pub(super) struct LaneOrder {
    /// The entries waiting for a later attempt, by lane.
    waiting: HashMap<Lane, BTreeSet<u64>>,
    /// Due entries held behind a waiting one, by lane; and all of them, for the store to skip.
    held: HashMap<Lane, Vec<u64>>,
    held_seqs: HashSet<u64>,
}

impl LaneOrder {
    /// `seq` of `lane` failed and waits for its next attempt.
    pub(super) fn waits(&mut self, seq: u64, lane: Lane) {
        self.waiting.entry(lane).or_default().insert(seq);
    }

    /// `seq` of `lane` left the outbox (or may have: the store said its record changed), so
    /// whatever was held behind it is read again.
    pub(super) fn left(&mut self, seq: u64, lane: &Lane) {
        if let Some(waiting) = self.waiting.get_mut(lane) {
            waiting.remove(&seq);
            if waiting.is_empty() {
                self.waiting.remove(lane);
            }
        }
        for seq in self.held.remove(lane).unwrap_or_default() {
            self.held_seqs.remove(&seq);
        }
    }

    /// Whether due entry `seq` of `lane` must wait for an older entry of its lane; if so it
    /// is held until that one leaves.
    pub(super) fn holds(&mut self, seq: u64, lane: &Lane) -> bool {
        let behind = self
            .waiting
            .get(lane)
            .and_then(BTreeSet::first)
            .is_some_and(|oldest| *oldest < seq);
        if behind && self.held_seqs.insert(seq) {
            self.held.entry(lane.clone()).or_default().push(seq);
        }
        behind
    }

    /// The seqs held now: due, but not to be read until their lane lets them go.
    pub(super) fn held(&self) -> &HashSet<u64> {
        &self.held_seqs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::GrantId;

    #[test]
    fn younger_entries_wait_behind_a_waiting_one_until_it_leaves() {
        let lane = Lane::Access(GrantId(1));
        let other = Lane::Access(GrantId(2));
        let mut order = LaneOrder::default();
        order.waits(3, lane.clone());
        assert!(!order.holds(3, &lane), "the waiting one itself goes first");
        assert!(!order.holds(2, &lane), "an older one is not behind it");
        assert!(order.holds(5, &lane));
        assert!(!order.holds(6, &other), "other lanes go on");
        assert_eq!(order.held(), &HashSet::from([5]));

        order.waits(3, lane.clone());
        assert!(order.holds(5, &lane), "still behind after another failure");
        order.left(3, &lane);
        assert!(order.held().is_empty());
        assert!(!order.holds(5, &lane));
    }
}
