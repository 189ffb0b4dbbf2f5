//! What the worker knows of the outbox, and which entries may start: the order of each lane,
//! and per pool of capacity (chat, each connector) the entries that are due, most urgent
//! first.
//!
//! The worker reads each entry once, in seq order, as it is queued ([`Store::effects_after`]
//! from the newest seq it has read), and keeps it here until it leaves the outbox; attempts
//! and retries are mirrored here as they are written. So finding what may start costs no
//! store read, and a card queued behind a thousand provisioning calls is found at once.
//!
//! **Windows.** What is kept is bounded: chat messages and connector calls each have a
//! window of at most [`WINDOW`] entries ([`Side`]). A side whose window is full reads no
//! further; once half of it has left, it reads on from where it stopped (passing over the
//! other side's entries, which that side has read already). So a restart that finds
//! hundreds of thousands of effects queued holds a few thousand of them, not all; and since
//! each side reads its own entries in seq order without gaps, every lane still goes oldest
//! first. Connector calls flooding the outbox never stop a card or an alert from being read;
//! but past [`WINDOW`] calls queued ahead of it, a call waits to be read even when its own
//! connector is idle.
//!
//! **Lanes** ([`Lane`]): one at a time, oldest first, even while the oldest waits for its
//! next attempt. Only the oldest entry of a lane (its head) is ever due or running; the
//! younger ones wait behind it, unread by anyone, until it leaves.
//!
//! **Pools**: chat messages and the calls of each connector have separate capacity, so
//! that a slow target holds back only its own calls. Within a pool the due lane heads go by
//! [`Class`] (alerts before other messages, revocations before grants), then by seq.
//!
//! [`Store::effects_after`]: crate::store::Store::effects_after

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::effect::{Class, Lane};
use crate::domain::ids::{ConnectorId, ResourceId};
use crate::store::OutboxEntry;

/// How many entries each side keeps in memory at most.
pub(super) const WINDOW: usize = 8192;

/// The two halves of the outbox that are read and kept apart: chat messages and connector
/// calls. Which side an entry is on follows from its effect alone (its class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Chat,
    Connector,
}

impl Side {
    pub(super) fn of(entry: &OutboxEntry) -> Side {
        if entry.effect.class().is_chat() {
            Side::Chat
        } else {
            Side::Connector
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Chat => 0,
            Side::Connector => 1,
        }
    }
}

/// How far one side has read, and how much of its window is used.
#[derive(Debug, Default)]
struct Window {
    /// Every entry of this side with a seq up to this one is known, or has left.
    read_to: u64,
    /// Entries of this side known now.
    known: usize,
    /// Full: it reads nothing more until half of it has left.
    full: bool,
}

/// Whose capacity an effect uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Pool {
    /// Cards, DMs and alerts.
    Chat,
    /// The calls of one connector; `None` for grants of a resource without one (nothing
    /// is called).
    Connector(Option<ConnectorId>),
}

#[derive(Debug)]
struct Known {
    entry: OutboxEntry,
    lane: Lane,
    class: Class,
    pool: Pool,
    /// The resource a connector call is about, whose connector may change with a reload.
    resource: Option<ResourceId>,
    /// Handed out to run, and not yet finished or written back.
    running: bool,
}

#[derive(Debug)]
pub(super) struct Queue {
    known: HashMap<u64, Known>,
    /// The seqs of every known entry, by lane: the first is the lane's head.
    lanes: HashMap<Lane, BTreeSet<u64>>,
    /// Lane heads not running and not yet due, by when they are.
    waiting: BTreeSet<(DateTime<Utc>, u64)>,
    /// Lane heads not running and due, by pool, most urgent first.
    ready: HashMap<Pool, BTreeSet<(Class, u64)>>,
    /// How far each side has read ([`Side::index`]).
    windows: [Window; 2],
    /// The entries a side keeps at most ([`WINDOW`]).
    window: usize,
}

impl Default for Queue {
    fn default() -> Self {
        Self::with_window(WINDOW)
    }
}

impl Queue {
    /// A queue whose sides keep at most `window` entries each.
    pub(super) fn with_window(window: usize) -> Self {
        Self {
            known: HashMap::new(),
            lanes: HashMap::new(),
            waiting: BTreeSet::new(),
            ready: HashMap::new(),
            windows: Default::default(),
            window: window.max(2),
        }
    }

    /// How many entries are known (read and not yet gone).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.known.len()
    }

    /// The seq after which to read next: where the side that has read least, of those with
    /// room, stopped; `None` when no side has room. A full side has room again once half of
    /// its window has left, so that it reads on in large steps.
    pub(super) fn read_after(&mut self) -> Option<u64> {
        let half = self.window / 2;
        let mut after: Option<u64> = None;
        for window in &mut self.windows {
            if window.full && window.known <= half {
                window.full = false;
            }
            if !window.full {
                after = Some(after.map_or(window.read_to, |a| a.min(window.read_to)));
            }
        }
        after
    }

    /// Whether `entry`, read after [`Queue::read_after`], is to be learned: its side has not
    /// read it yet and has room. Entries must be offered in seq order; one that finds its
    /// side full stops that side there, to read on from it later.
    pub(super) fn admit(&mut self, entry: &OutboxEntry) -> bool {
        let window = self.window;
        let side = &mut self.windows[Side::of(entry).index()];
        let admitted = if entry.seq <= side.read_to || side.full {
            false
        } else if side.known >= window {
            side.full = true;
            false
        } else {
            side.known += 1;
            true
        };
        for side in &mut self.windows {
            if !side.full {
                side.read_to = side.read_to.max(entry.seq);
            }
        }
        admitted
    }

    /// An entry read from the outbox, whose calls go to `pool` (about `resource`, for a
    /// connector call). Entries are read in seq order, so a new one is the youngest of its
    /// lane.
    pub(super) fn learn(
        &mut self,
        mut entry: OutboxEntry,
        pool: Pool,
        resource: Option<ResourceId>,
        now: DateTime<Utc>,
    ) {
        let seq = entry.seq;
        if self.known.contains_key(&seq) {
            return;
        }
        // Kept in memory for every queued entry: the error is in the store, for people.
        entry.last_error = None;
        let lane = entry.effect.lane();
        let class = entry.effect.class();
        let in_lane = self.lanes.entry(lane.clone()).or_default();
        in_lane.insert(seq);
        let head = in_lane.first() == Some(&seq);
        self.known.insert(
            seq,
            Known {
                entry,
                lane,
                class,
                pool,
                resource,
                running: false,
            },
        );
        if head {
            self.place(seq, now);
        }
    }

    /// Files lane head `seq` (not running) as due or waiting.
    fn place(&mut self, seq: u64, now: DateTime<Utc>) {
        let Some(known) = self.known.get(&seq) else {
            return;
        };
        let at = known.entry.next_attempt_at;
        if at <= now {
            let ready = self.ready.entry(known.pool.clone()).or_default();
            ready.insert((known.class, seq));
        } else {
            self.waiting.insert((at, seq));
        }
    }

    /// Makes ready every waiting head whose moment has come.
    pub(super) fn release(&mut self, now: DateTime<Utc>) {
        while let Some(&(at, seq)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            self.place(seq, now);
        }
    }

    /// When the next waiting head is due.
    pub(super) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.waiting.first().map(|(at, _)| *at)
    }

    /// The pools with due entries, in a stable order.
    pub(super) fn pools_ready(&self) -> Vec<Pool> {
        let mut pools: Vec<Pool> = self
            .ready
            .iter()
            .filter(|(_, ready)| !ready.is_empty())
            .map(|(pool, _)| pool.clone())
            .collect();
        pools.sort();
        pools
    }

    /// The class of the most urgent due entry of `pool`.
    pub(super) fn peek(&self, pool: &Pool) -> Option<Class> {
        self.ready.get(pool)?.first().map(|(class, _)| *class)
    }

    /// Hands out the most urgent due entry of `pool`, to run.
    pub(super) fn take(&mut self, pool: &Pool) -> Option<OutboxEntry> {
        let (_, seq) = self.ready.get_mut(pool)?.pop_first()?;
        self.run(seq)
    }

    /// Hands out up to `n` more due entries of `pool` of class `class`, oldest first (to run
    /// together with one just taken).
    pub(super) fn take_more(&mut self, pool: &Pool, class: Class, n: usize) -> Vec<OutboxEntry> {
        let Some(ready) = self.ready.get_mut(pool) else {
            return Vec::new();
        };
        let seqs: Vec<u64> = ready
            .range((class, 0)..=(class, u64::MAX))
            .take(n)
            .map(|(_, seq)| *seq)
            .collect();
        for seq in &seqs {
            ready.remove(&(class, *seq));
        }
        seqs.into_iter().filter_map(|seq| self.run(seq)).collect()
    }

    /// Hands out the most urgent due entry of any pool that `pick` accepts.
    pub(super) fn take_any(&mut self, pick: impl Fn(u64) -> bool) -> Option<OutboxEntry> {
        let (pool, key) = self
            .ready
            .iter()
            .filter_map(|(pool, ready)| {
                let first = ready.iter().find(|(_, seq)| pick(*seq))?;
                Some((pool.clone(), *first))
            })
            .min_by_key(|(_, key)| *key)?;
        self.ready.get_mut(&pool)?.remove(&key);
        self.run(key.1)
    }

    fn run(&mut self, seq: u64) -> Option<OutboxEntry> {
        let known = self.known.get_mut(&seq)?;
        known.running = true;
        Some(known.entry.clone())
    }

    /// Files every connector call again under the connector its resource has now (a reload
    /// may have moved it to another): a call counts against the limits of the connector it
    /// will go to. Calls under way stay counted where they started.
    pub(super) fn repool(&mut self, pool_of: impl Fn(&ResourceId) -> Pool) {
        for (seq, known) in &mut self.known {
            let Some(resource) = &known.resource else {
                continue;
            };
            let pool = pool_of(resource);
            if pool == known.pool {
                continue;
            }
            let was_ready = self
                .ready
                .get_mut(&known.pool)
                .is_some_and(|ready| ready.remove(&(known.class, *seq)));
            if was_ready {
                let ready = self.ready.entry(pool.clone()).or_default();
                ready.insert((known.class, *seq));
            }
            known.pool = pool;
        }
    }

    /// Entry `seq` left the outbox: the next of its lane is up.
    pub(super) fn left(&mut self, seq: u64, now: DateTime<Utc>) {
        let Some(known) = self.known.remove(&seq) else {
            return;
        };
        let side = &mut self.windows[Side::of(&known.entry).index()];
        side.known = side.known.saturating_sub(1);
        self.waiting.remove(&(known.entry.next_attempt_at, seq));
        if let Some(ready) = self.ready.get_mut(&known.pool) {
            ready.remove(&(known.class, seq));
        }
        let Some(in_lane) = self.lanes.get_mut(&known.lane) else {
            return;
        };
        in_lane.remove(&seq);
        match in_lane.first().copied() {
            None => {
                self.lanes.remove(&known.lane);
            }
            Some(head) => {
                let waiting_or_ready = self.known.get(&head).is_some_and(|h| !h.running);
                if waiting_or_ready {
                    self.place(head, now);
                }
            }
        }
    }

    /// Entry `seq` failed and its retry at `at` is written: it waits, and its lane with it.
    pub(super) fn retried(&mut self, seq: u64, at: DateTime<Utc>, now: DateTime<Utc>) {
        if let Some(known) = self.known.get_mut(&seq) {
            known.entry.attempts = known.entry.attempts.saturating_add(1);
        }
        self.again(seq, at, now);
    }

    /// Entry `seq` is tried again at `at`, nothing having been written (the attempt could not
    /// read or write the store, or found its record changed).
    pub(super) fn again(&mut self, seq: u64, at: DateTime<Utc>, now: DateTime<Utc>) {
        let Some(known) = self.known.get_mut(&seq) else {
            return;
        };
        known.running = false;
        // The store keeps due times to the millisecond: so does the queue, or an entry read
        // back from the store, or a clock set to the stored time, would find it not yet due.
        known.entry.next_attempt_at = at.trunc_subsecs(3);
        self.place(seq, now);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::effect::{Alert, Effect};
    use crate::domain::ids::{GrantId, RequestId};

    fn at(seconds: i64) -> DateTime<Utc> {
        crate::engine::testing::start() + TimeDelta::seconds(seconds)
    }

    fn entry(seq: u64, effect: Effect, due: DateTime<Utc>) -> OutboxEntry {
        OutboxEntry {
            seq,
            key: effect.idempotency_key(seq),
            effect,
            attempts: 0,
            next_attempt_at: due,
            last_error: None,
        }
    }

    fn card(request: u64) -> Effect {
        Effect::ApprovalCard {
            request: RequestId(request),
            approver: "bob".into(),
            stage: 0,
        }
    }

    fn alert(grant: u64) -> Effect {
        Effect::Alert {
            alert: Alert::EmergencyGranted {
                grant: GrantId(grant),
            },
        }
    }

    fn hook() -> Pool {
        Pool::Connector(Some("hook".into()))
    }

    fn seqs(entries: &[OutboxEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_card_queued_behind_many_connector_calls_is_handed_out_at_once() {
        let mut queue = Queue::default();
        for seq in 1..=1000 {
            let provision = Effect::Provision {
                grant: GrantId(seq),
            };
            queue.learn(entry(seq, provision, at(0)), hook(), None, at(0));
        }
        queue.learn(entry(1001, card(1), at(0)), Pool::Chat, None, at(0));
        assert_eq!(queue.pools_ready(), [Pool::Chat, hook()]);
        assert_eq!(queue.take(&Pool::Chat).map(|e| e.seq), Some(1001));
        assert_eq!(queue.take(&hook()).map(|e| e.seq), Some(1));
    }

    #[test]
    fn alerts_go_before_older_messages_and_revocations_before_older_grants() {
        let mut queue = Queue::default();
        let now = at(0);
        queue.learn(entry(1, card(1), now), Pool::Chat, None, now);
        queue.learn(entry(2, alert(1), now), Pool::Chat, None, now);
        let provision = Effect::Provision { grant: GrantId(5) };
        queue.learn(entry(3, provision, now), hook(), None, now);
        let deprovision = Effect::Deprovision { grant: GrantId(6) };
        queue.learn(entry(4, deprovision, now), hook(), None, now);
        assert_eq!(queue.peek(&Pool::Chat), Some(Class::Alert));
        assert_eq!(queue.take(&Pool::Chat).map(|e| e.seq), Some(2));
        assert_eq!(queue.take(&Pool::Chat).map(|e| e.seq), Some(1));
        assert_eq!(queue.take(&hook()).map(|e| e.seq), Some(4));
        assert_eq!(queue.take(&hook()).map(|e| e.seq), Some(3));
        assert_eq!(queue.take(&hook()), None);
    }

    #[test]
    fn a_lane_hands_out_its_next_entry_only_once_the_one_before_has_left() {
        let mut queue = Queue::default();
        let now = at(0);
        let grant = GrantId(9);
        queue.learn(
            entry(1, Effect::Provision { grant }, now),
            hook(),
            None,
            now,
        );
        queue.learn(
            entry(2, Effect::Deprovision { grant }, now),
            hook(),
            None,
            now,
        );
        assert_eq!(
            queue.take(&hook()).map(|e| e.seq),
            Some(1),
            "the revocation does not overtake the grant of its own lane"
        );
        assert_eq!(queue.take(&hook()), None, "one at a time per lane");
        queue.retried(1, at(30), now);
        queue.release(at(10));
        assert_eq!(queue.take(&hook()), None, "the lane waits for its oldest");
        assert_eq!(queue.next_due(), Some(at(30)));
        queue.release(at(30));
        let retried = queue.take(&hook()).unwrap();
        assert_eq!((retried.seq, retried.attempts), (1, 1));
        queue.left(1, at(31));
        assert_eq!(queue.take(&hook()).map(|e| e.seq), Some(2));
        queue.left(2, at(31));
        assert_eq!(queue.len(), 0);
        assert!(queue.lanes.is_empty() && queue.waiting.is_empty());
    }

    #[test]
    fn due_revocations_are_handed_out_together_oldest_first() {
        let mut queue = Queue::default();
        let now = at(0);
        for seq in 1..=5 {
            let grant = GrantId(seq);
            queue.learn(
                entry(seq, Effect::Deprovision { grant }, now),
                hook(),
                None,
                now,
            );
        }
        let provision = Effect::Provision { grant: GrantId(9) };
        queue.learn(entry(6, provision, now), hook(), None, now);
        let first = queue.take(&hook()).unwrap();
        let more = queue.take_more(&hook(), Class::Revoke, 10);
        assert_eq!((first.seq, seqs(&more)), (1, vec![2, 3, 4, 5]));
        assert_eq!(queue.take(&hook()).map(|e| e.seq), Some(6));
    }

    #[test]
    fn an_entry_learned_again_is_known_once() {
        let mut queue = Queue::default();
        let now = at(0);
        queue.learn(entry(4, card(1), now), Pool::Chat, None, now);
        queue.learn(entry(4, card(1), now), Pool::Chat, None, now);
        assert_eq!(queue.len(), 1);
        assert!(queue.take(&Pool::Chat).is_some());
        assert_eq!(queue.take(&Pool::Chat), None);
    }

    /// Offers `entries` as the worker reads them: those admitted are learned.
    fn read(queue: &mut Queue, entries: Vec<(OutboxEntry, Pool)>) -> Vec<u64> {
        let after = queue.read_after().expect("a side has room");
        let mut learned = Vec::new();
        for (entry, pool) in entries.into_iter().filter(|(e, _)| e.seq > after) {
            if queue.admit(&entry) {
                learned.push(entry.seq);
                queue.learn(entry, pool, None, at(0));
            }
        }
        learned
    }

    /// Revocations 1..=10 and cards 11..=14, then revocations 15..=16: an outbox that a
    /// restart finds.
    fn backlog() -> Vec<(OutboxEntry, Pool)> {
        let revoke = |seq| {
            let deprovision = Effect::Deprovision {
                grant: GrantId(seq),
            };
            (entry(seq, deprovision, at(0)), hook())
        };
        let mut entries: Vec<_> = (1..=10).map(revoke).collect();
        entries.extend((11..=14).map(|seq| (entry(seq, card(seq), at(0)), Pool::Chat)));
        entries.extend((15..=16).map(revoke));
        entries
    }

    #[test]
    fn each_side_keeps_at_most_its_window_and_reads_on_once_half_of_it_has_left() {
        let mut queue = Queue::with_window(4);
        assert_eq!(
            read(&mut queue, backlog()),
            [1, 2, 3, 4, 11, 12, 13, 14],
            "four calls and four cards: the calls' window is full, the cards are read anyway"
        );
        assert_eq!(queue.len(), 8);
        queue.left(1, at(1));
        assert_eq!(
            queue.read_after(),
            Some(16),
            "one call gone is not half the window: only the cards' side reads on"
        );
        queue.left(2, at(1));
        assert_eq!(
            queue.read_after(),
            Some(4),
            "the calls read on from where they stopped"
        );
        assert_eq!(
            read(&mut queue, backlog()),
            [5, 6],
            "the cards are not read twice"
        );
        let taken: Vec<u64> = std::iter::from_fn(|| queue.take(&hook()).map(|e| e.seq)).collect();
        assert_eq!(taken, [3, 4, 5, 6], "oldest first, none missed");
        for seq in [3, 4, 5, 6] {
            queue.left(seq, at(2));
        }
        assert_eq!(read(&mut queue, backlog()), [7, 8, 9, 10]);
        for seq in 7..=10 {
            queue.left(seq, at(3));
        }
        assert_eq!(read(&mut queue, backlog()), [15, 16]);
        assert_eq!(queue.read_after(), Some(16), "every entry read once");
    }

    #[test]
    fn a_reload_files_calls_under_the_connector_their_resource_has_now() {
        let mut queue = Queue::default();
        let now = at(0);
        let other = Pool::Connector(Some("other".into()));
        let grafana: ResourceId = "grafana".into();
        let github: ResourceId = "github".into();
        for (seq, resource) in [(1, &grafana), (2, &github), (3, &grafana)] {
            let provision = Effect::Provision {
                grant: GrantId(seq),
            };
            queue.learn(
                entry(seq, provision, now),
                hook(),
                Some(resource.clone()),
                now,
            );
        }
        assert_eq!(queue.take(&hook()).map(|e| e.seq), Some(1), "under way");
        queue.repool(|resource| {
            if *resource == grafana {
                other.clone()
            } else {
                hook()
            }
        });
        assert_eq!(queue.take(&hook()).map(|e| e.seq), Some(2));
        assert_eq!(
            queue.take(&hook()),
            None,
            "grafana's calls left the old connector"
        );
        assert_eq!(queue.take(&other).map(|e| e.seq), Some(3));
        queue.left(1, now);
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn any_pool_gives_its_most_urgent_first_and_skips_what_is_refused() {
        let mut queue = Queue::default();
        let now = at(0);
        let provision = Effect::Provision { grant: GrantId(1) };
        queue.learn(entry(1, provision, now), hook(), None, now);
        queue.learn(entry(2, card(1), now), Pool::Chat, None, now);
        queue.learn(entry(3, alert(1), now), Pool::Chat, None, now);
        assert_eq!(queue.take_any(|seq| seq != 3).map(|e| e.seq), Some(2));
        assert_eq!(queue.take_any(|_| true).map(|e| e.seq), Some(3));
        assert_eq!(queue.take_any(|_| true).map(|e| e.seq), Some(1));
    }
}
