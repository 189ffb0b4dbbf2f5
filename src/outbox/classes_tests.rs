//! Chat and each connector have capacity of their own. A connector that never answers
//! delays no card, no alert and no other connector; each connector keeps to its
//! `max_concurrent`, `max_per_second` and the `Retry-After` it asks for; revocations go
//! before grants; a connector that takes many revocations at once gets them together.
//! Time is tokio's, paused: the assertions are about order and counts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

use super::lanes_tests::TokioClock;
use super::*;
use crate::connector::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorRegistry, Connectors,
    Limits, Outcome,
};
use crate::domain::diagnostic::Source;
use crate::domain::effect::{Alert, Effect};
use crate::domain::grant::{Grant, GrantState, RevokeReason};
use crate::domain::ids::{GrantId, RequestId};
use crate::domain::policy::tests::{EXAMPLE_POLICY, example_directory};
use crate::domain::policy::{Policy, PolicyContext, parse_policy};
use crate::engine::{Clock, Engine, SystemClock};
use crate::store::{Commit, Expect, SledStore};

/// The example policy, but grafana's grants go through connector `slow` and github's
/// through `quick`.
fn policy() -> Policy {
    policy_where_grafana_goes_through("slow")
}

/// The example policy, but grafana's grants go through connector `grafana` and github's
/// through `quick`.
fn policy_where_grafana_goes_through(grafana: &str) -> Policy {
    let text = EXAMPLE_POLICY
        .replacen(
            "connector = \"log\"",
            &format!("connector = \"{grafana}\""),
            1,
        )
        .replacen("connector = \"log\"", "connector = \"quick\"", 1);
    let directory = example_directory();
    let cx = PolicyContext {
        directory: &directory,
        connectors: None,
        now: SystemClock.now(),
    };
    parse_policy(&Source::new("policy.toml", &text), &cx)
        .expect("the policy loads")
        .0
}

fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(
        Arc::new(SledStore::temporary().unwrap()),
        policy(),
        example_directory(),
        Arc::new(TokioClock::new()),
    ))
}

/// What a target was asked, and how it answered.
#[derive(Default)]
struct Log {
    /// Every call as it started: what, for which grant, when, how many ran then.
    started: Vec<(Action, GrantId, Instant, usize)>,
    running: usize,
    most: usize,
    answered: usize,
    /// The size of each `revoke_many` call.
    batches: Vec<usize>,
}

/// A provisioning target whose calls answer only while it is open, and as scripted.
struct Target {
    open: watch::Sender<bool>,
    log: Mutex<Log>,
    /// Answers for the next calls, before the default (success).
    script: Mutex<VecDeque<ConnectorError>>,
    /// How many revocations one call takes (1: one at a time).
    batch: usize,
}

impl Target {
    fn new(open: bool) -> Arc<Self> {
        Self::taking(open, 1)
    }

    fn taking(open: bool, batch: usize) -> Arc<Self> {
        Arc::new(Self {
            open: watch::Sender::new(open),
            log: Mutex::default(),
            script: Mutex::default(),
            batch,
        })
    }

    fn open(&self) {
        self.open.send_replace(true);
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }

    fn then(&self, answer: ConnectorError) {
        self.script.lock().unwrap().push_back(answer);
    }

    async fn answer(&self, calls: &[&ConnectorCall]) -> Vec<Result<Outcome, ConnectorError>> {
        {
            let mut log = self.log();
            let running = log.running;
            for call in calls {
                log.started
                    .push((call.action, call.grant, Instant::now(), running + 1));
            }
            log.running += 1;
            log.most = log.most.max(log.running);
        }
        // A call takes a while, so that calls overlap up to the limit.
        tokio::time::sleep(StdDuration::from_millis(10)).await;
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        let scripted = self.script.lock().unwrap().pop_front();
        let mut log = self.log();
        log.running -= 1;
        log.answered += calls.len();
        calls
            .iter()
            .map(|call| match &scripted {
                Some(error) => Err(error.clone()),
                None => Ok(Outcome {
                    detail: format!("{} {}", call.action, call.grant),
                }),
            })
            .collect()
    }

    fn grants_started(&self, action: Action) -> Vec<GrantId> {
        let log = self.log();
        let started = log.started.iter().filter(|(a, ..)| *a == action);
        started.map(|(_, grant, ..)| *grant).collect()
    }
}

impl Connector for Target {
    fn grant<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(async move { self.answer(&[call]).await.remove(0) })
    }

    fn revoke<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(async move { self.answer(&[call]).await.remove(0) })
    }

    fn revoke_batch(&self) -> usize {
        self.batch
    }

    fn revoke_many<'a>(
        &'a self,
        calls: &'a [ConnectorCall],
    ) -> BoxFuture<'a, Vec<Result<Outcome, ConnectorError>>> {
        Box::pin(async move {
            self.log().batches.push(calls.len());
            let calls: Vec<&ConnectorCall> = calls.iter().collect();
            self.answer(&calls).await
        })
    }
}

fn limited(max_concurrent: usize, max_per_second: Option<f64>) -> Limits {
    Limits {
        max_concurrent,
        max_per_second,
    }
}

/// Connectors `slow` and `quick`, with their limits.
fn connectors(slow: (&Arc<Target>, Limits), quick: (&Arc<Target>, Limits)) -> Connectors {
    let mut connectors = Connectors::default();
    for (id, (target, limits)) in [("slow", slow), ("quick", quick)] {
        connectors.insert(id.into(), Arc::clone(target) as Arc<dyn Connector>);
        connectors.limit(&id.into(), limits);
    }
    connectors
}

/// Grant `id` of `resource` (grafana goes through `slow`, github through `quick`).
fn grant(id: u64, resource: &str, state: GrantState, now: DateTime<Utc>) -> Grant {
    Grant {
        id: GrantId(id),
        person: "dan".into(),
        resource: resource.into(),
        role: if resource == "grafana" {
            "viewer"
        } else {
            "member"
        }
        .into(),
        request: RequestId(id),
        granted_at: now,
        expires_at: Some(now + TimeDelta::hours(1)),
        emergency: false,
        review: None,
        warned_at: None,
        state,
    }
}

/// Queues the provisioning of grants `ids` of `resource`.
fn provisions(engine: &Engine, resource: &str, ids: impl Iterator<Item = u64>) {
    let now = engine.now();
    let mut commit = Commit::default();
    for id in ids {
        let grant = grant(id, resource, GrantState::Provisioning, now);
        commit.effects.push(Effect::Provision { grant: grant.id });
        commit.grants.push((grant, Expect::New));
    }
    engine.commit(commit).unwrap();
}

/// Queues the revocation of grants `ids` of `resource`.
fn revocations(engine: &Engine, resource: &str, ids: impl Iterator<Item = u64>) {
    let now = engine.now();
    let mut commit = Commit::default();
    for id in ids {
        let revoking = GrantState::Revoking {
            reason: RevokeReason::Expired,
            since: now,
            attempts: 0,
        };
        let grant = grant(id, resource, revoking, now);
        commit.effects.push(Effect::Deprovision { grant: grant.id });
        commit.grants.push((grant, Expect::New));
    }
    engine.commit(commit).unwrap();
}

fn card_and_alert(engine: &Engine) -> [Effect; 2] {
    let effects = [
        Effect::ApprovalCard {
            request: RequestId(500),
            approver: "bob".into(),
            stage: 0,
        },
        Effect::Alert {
            alert: Alert::EmergencyGranted {
                grant: GrantId(500),
            },
        },
    ];
    engine
        .commit(Commit {
            effects: effects.to_vec(),
            ..Commit::default()
        })
        .unwrap();
    effects
}

fn state(engine: &Engine, id: u64) -> &'static str {
    let grant = engine.store().grant(GrantId(id)).unwrap().unwrap();
    grant.value.state.name()
}

/// A running worker, stopped when dropped.
struct Running {
    stop: watch::Sender<bool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

fn run(
    engine: &Arc<Engine>,
    connectors: impl Into<ConnectorRegistry>,
    chat: Arc<RecordingChat>,
) -> Running {
    let worker = Worker::new(engine.clone(), connectors, chat);
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(worker.run(shutdown));
    Running { stop }
}

/// Polls `done` every 10 ms of the paused clock until it holds (a minute at most: less than a
/// connector's deadline, so that no call under way is given up on meanwhile).
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(start_paused = true)]
async fn a_connector_that_never_answers_delays_no_card_or_alert_and_runs_no_more_than_its_limit() {
    let engine = engine();
    let (slow, quick) = (Target::new(false), Target::new(true));
    provisions(&engine, "grafana", 1..=40);
    let [card, alert] = card_and_alert(&engine);
    let chat = Arc::new(RecordingChat::default());
    let connectors = connectors((&slow, limited(4, None)), (&quick, limited(4, None)));
    let _worker = run(&engine, connectors, chat.clone());

    until("the card and the alert are delivered", || {
        let delivered = chat.delivered();
        delivered.contains(&card) && delivered.contains(&alert)
    })
    .await;
    until("four calls are under way", || slow.log().started.len() == 4).await;
    tokio::time::sleep(StdDuration::from_secs(10)).await;
    {
        let log = slow.log();
        assert_eq!(
            log.answered, 0,
            "queued after 40 grants, delivered before any answer"
        );
        assert_eq!(
            log.started.len(),
            4,
            "four calls at once, the others queued"
        );
    }
    // The connector answers: the forty are given, never more than four at once.
    slow.open();
    until("every grant is active", || {
        (1..=40).all(|id| state(&engine, id) == "active")
    })
    .await;
    let log = slow.log();
    assert_eq!((log.started.len(), log.most), (40, 4));
}

#[tokio::test(start_paused = true)]
async fn one_connector_that_never_answers_holds_back_no_other() {
    let engine = engine();
    let (slow, quick) = (Target::new(false), Target::new(true));
    provisions(&engine, "grafana", 1..=10);
    provisions(&engine, "github", 11..=20);
    let chat = Arc::new(RecordingChat::default());
    let connectors = connectors((&slow, limited(2, None)), (&quick, limited(2, None)));
    let _worker = run(&engine, connectors, chat);

    until("quick's grants are all active", || {
        (11..=20).all(|id| state(&engine, id) == "active")
    })
    .await;
    assert_eq!(slow.log().answered, 0);
    assert!((1..=10).all(|id| state(&engine, id) == "provisioning"));
    assert_eq!(quick.log().most, 2, "quick kept to its own limit");
}

#[tokio::test(start_paused = true)]
async fn revocations_go_before_grants_queued_earlier_on_a_saturated_connector() {
    let engine = engine();
    let (slow, quick) = (Target::new(true), Target::new(true));
    provisions(&engine, "grafana", 1..=5);
    revocations(&engine, "grafana", 6..=10);
    let chat = Arc::new(RecordingChat::default());
    let connectors = connectors((&slow, limited(1, None)), (&quick, limited(1, None)));
    let _worker = run(&engine, connectors, chat);

    until("everything is done", || {
        (1..=10).all(|id| matches!(state(&engine, id), "active" | "revoked"))
    })
    .await;
    let order: Vec<Action> = slow.log().started.iter().map(|(a, ..)| *a).collect();
    assert_eq!(
        order,
        [[Action::Revoke; 5], [Action::Grant; 5]].concat(),
        "access past its end is taken back before new access is given"
    );
}

#[tokio::test(start_paused = true)]
async fn calls_start_no_faster_than_the_rate_a_connector_allows() {
    let engine = engine();
    let (slow, quick) = (Target::new(true), Target::new(true));
    provisions(&engine, "grafana", 1..=9);
    let chat = Arc::new(RecordingChat::default());
    let connectors = connectors((&slow, limited(100, Some(2.0))), (&quick, limited(1, None)));
    let started = Instant::now();
    let _worker = run(&engine, connectors, chat);

    until("every grant is active", || {
        (1..=9).all(|id| state(&engine, id) == "active")
    })
    .await;
    let log = slow.log();
    let within = |seconds: u64| {
        let by = started + StdDuration::from_secs(seconds);
        log.started.iter().filter(|(.., at, _)| *at < by).count()
    };
    // Two at once (a second's worth), then one every half second.
    assert_eq!(
        (within(1), within(2), within(3), log.started.len()),
        (3, 5, 7, 9)
    );
}

#[tokio::test(start_paused = true)]
async fn a_connector_asking_to_wait_gets_no_call_until_then_and_others_go_on() {
    let engine = engine();
    let (slow, quick) = (Target::new(true), Target::new(true));
    slow.then(ConnectorError::RateLimited {
        message: "HTTP 429".into(),
        retry_after: Some(StdDuration::from_secs(30)),
    });
    provisions(&engine, "grafana", 1..=3);
    provisions(&engine, "github", 11..=13);
    let chat = Arc::new(RecordingChat::default());
    let connectors = connectors((&slow, limited(1, None)), (&quick, limited(1, None)));
    let _worker = run(&engine, connectors, chat);

    until("slow's grants are all active", || {
        (1..=3).all(|id| state(&engine, id) == "active")
    })
    .await;
    assert!((11..=13).all(|id| state(&engine, id) == "active"));
    let log = slow.log();
    let refused_at = log.started[0].2;
    let next_at = log.started[1].2;
    assert!(
        next_at >= refused_at + StdDuration::from_secs(30),
        "a call started {:?} after the 429 that asked for 30 s",
        next_at - refused_at
    );
    let quick_done = quick.log().started.iter().map(|(.., at, _)| *at).max();
    assert!(
        quick_done.is_some_and(|at| at < refused_at + StdDuration::from_secs(30)),
        "quick was held back by slow's wait"
    );
}

#[tokio::test(start_paused = true)]
async fn due_revocations_go_together_to_a_connector_that_takes_many_at_once() {
    let engine = engine();
    let slow = Target::taking(true, 8);
    let quick = Target::new(true);
    revocations(&engine, "grafana", 1..=20);
    let chat = Arc::new(RecordingChat::default());
    let connectors = connectors((&slow, limited(1, None)), (&quick, limited(1, None)));
    let _worker = run(&engine, connectors, chat);

    until("every grant is revoked", || {
        (1..=20).all(|id| state(&engine, id) == "revoked")
    })
    .await;
    assert_eq!(slow.log().batches, [8, 8, 4]);
    let mut revoked = slow.grants_started(Action::Revoke);
    revoked.sort();
    assert_eq!(
        revoked,
        (1..=20).map(GrantId).collect::<Vec<_>>(),
        "each once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_lowers_a_limit_holds_from_the_next_call_on() {
    let engine = engine();
    let (slow, quick) = (Target::new(false), Target::new(true));
    provisions(&engine, "grafana", 1..=10);
    let chat = Arc::new(RecordingChat::default());
    let registry = ConnectorRegistry::new(connectors(
        (&slow, limited(4, None)),
        (&quick, limited(4, None)),
    ));
    let _worker = run(&engine, registry.clone(), chat);
    until("four calls are under way", || slow.log().running == 4).await;

    registry.replace(connectors(
        (&slow, limited(1, None)),
        (&quick, limited(1, None)),
    ));
    slow.open();
    until("every grant is active", || {
        (1..=10).all(|id| state(&engine, id) == "active")
    })
    .await;
    let log = slow.log();
    let after_reload: Vec<usize> = log.started[4..]
        .iter()
        .map(|(.., at_once)| *at_once)
        .collect();
    assert_eq!(
        after_reload, [1; 6],
        "one at a time once the reload said so"
    );
}

#[tokio::test(start_paused = true)]
async fn calls_queued_for_a_resource_moved_to_another_connector_count_against_the_one_they_go_to() {
    let engine = engine();
    let (slow, quick) = (Target::new(false), Target::new(true));
    provisions(&engine, "grafana", 1..=6);
    let connectors = connectors((&slow, limited(1, None)), (&quick, limited(2, None)));
    let _worker = run(&engine, connectors, Arc::new(RecordingChat::default()));
    until("slow has its one call under way", || {
        slow.log().started.len() == 1
    })
    .await;

    // A reload moves grafana to `quick`; a commit wakes the worker.
    engine.replace_world(
        policy_where_grafana_goes_through("quick"),
        example_directory(),
    );
    provisions(&engine, "github", 7..=7);
    until(
        "the rest of grafana's grants and github's are given",
        || quick.log().answered == 6,
    )
    .await;
    let mut given = quick.grants_started(Action::Grant);
    given.sort();
    assert_eq!(given, (2..=7).map(GrantId).collect::<Vec<_>>());
    assert_eq!(
        slow.log().started.len(),
        1,
        "only the call under way at the reload went to slow"
    );
    assert!(
        quick.log().most <= 2,
        "calls queued before the reload keep to quick's limit: {} ran at once",
        quick.log().most
    );
    assert_eq!(state(&engine, 1), "provisioning");
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_holds_few_entries_at_a_time_still_does_every_one_once_and_in_order() {
    let engine = engine();
    let (slow, quick) = (Target::new(true), Target::new(true));
    provisions(&engine, "github", 1..=30);
    let cards: Vec<Effect> = (1..=10)
        .map(|request| Effect::ApprovalCard {
            request: RequestId(request),
            approver: "bob".into(),
            stage: 0,
        })
        .collect();
    engine
        .commit(Commit {
            effects: cards.clone(),
            ..Commit::default()
        })
        .unwrap();
    provisions(&engine, "github", 31..=40);
    let chat = Arc::new(RecordingChat::default());
    let connectors = connectors((&slow, limited(4, None)), (&quick, limited(4, None)));
    let worker = Worker::new(engine.clone(), connectors, chat.clone()).with_window(4);
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(worker.run(shutdown));

    until("every grant is given and every card posted", || {
        quick.log().answered == 40 && chat.delivered().len() == 10
    })
    .await;
    assert_eq!(
        quick.grants_started(Action::Grant),
        (1..=40).map(GrantId).collect::<Vec<_>>(),
        "each once, oldest first, though four were read at a time"
    );
    let delivered = chat.delivered();
    for card in &cards {
        let times = delivered.iter().filter(|d| *d == card).count();
        assert_eq!(times, 1, "{card:?} delivered {times} times");
    }
    assert_eq!(chat.attempts(), 10, "the cards too, each once");
    assert!((1..=40).all(|id| state(&engine, id) == "active"));
    until("the outbox is empty", || {
        engine.store().outbox(1).unwrap().is_empty()
    })
    .await;
}
