//! The running worker takes effects of different lanes at once, never two of one lane, and
//! keeps each lane in the order its effects were queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use tokio::sync::watch;

use super::*;
use crate::connector::{BoxFuture, Connectors};
use crate::domain::effect::{Alert, Effect, Lane, Notice};
use crate::domain::ids::{GrantId, RequestId};
use crate::domain::policy::tests::{example_directory, example_policy};
use crate::engine::{Clock, Engine, SystemClock};
use crate::store::{Commit, SledStore};

/// A chat that takes a while over each delivery and records who was delivering at once.
#[derive(Default)]
struct Slow {
    state: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    now: usize,
    most: usize,
    lanes: HashMap<Lane, usize>,
    lane_most: usize,
    order: Vec<Effect>,
}

impl ChatPort for Slow {
    fn deliver<'a>(
        &'a self,
        effect: &'a Effect,
        _key: &'a str,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        Box::pin(async move {
            {
                let mut seen = self.state.lock().unwrap();
                seen.now += 1;
                seen.most = seen.most.max(seen.now);
                let in_lane = seen.lanes.entry(effect.lane()).or_default();
                *in_lane += 1;
                let in_lane = *in_lane;
                seen.lane_most = seen.lane_most.max(in_lane);
                seen.order.push(effect.clone());
            }
            tokio::time::sleep(StdDuration::from_millis(40)).await;
            let mut seen = self.state.lock().unwrap();
            seen.now -= 1;
            *seen.lanes.get_mut(&effect.lane()).unwrap() -= 1;
            Ok(Vec::new())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_of_different_lanes_run_at_once_and_each_lane_in_order() {
    // The real clock: the worker sleeps in real time between attempts.
    let engine = Arc::new(Engine::new(
        Arc::new(SledStore::temporary().unwrap()),
        example_policy(),
        example_directory(),
        Arc::new(SystemClock),
    ));
    let mut effects = Vec::new();
    for n in 1..=6 {
        // One lane: the security channel.
        effects.push(Effect::Alert {
            alert: Alert::EmergencyGranted { grant: GrantId(n) },
        });
        // Six lanes: one person each.
        effects.push(Effect::Notify {
            to: format!("person-{n}").as_str().into(),
            notice: Notice::Cancelled {
                request: RequestId(n),
            },
        });
    }
    // One lane: a request's card, then its refresh.
    effects.push(Effect::ApprovalCard {
        request: RequestId(99),
        approver: "bob".into(),
        stage: 0,
    });
    effects.push(Effect::RefreshCards {
        request: RequestId(99),
    });
    let queued = effects.len();
    engine
        .commit(Commit {
            effects: effects.clone(),
            ..Commit::default()
        })
        .unwrap();

    let chat = Arc::new(Slow::default());
    let worker = Worker::new(engine.clone(), Connectors::default(), chat.clone());
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(worker.run(shutdown));
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
    while !engine.store().outbox(1).unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never emptied"
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();

    let seen = chat.state.lock().unwrap();
    assert_eq!(seen.order.len(), queued, "each effect delivered once");
    assert!(
        seen.most > 4,
        "only {} deliveries at once: lanes did not run concurrently",
        seen.most
    );
    assert_eq!(seen.lane_most, 1, "two effects of one lane ran at once");
    let in_lane =
        |lane: Lane| -> Vec<&Effect> { seen.order.iter().filter(|e| e.lane() == lane).collect() };
    let queued_in =
        |lane: Lane| -> Vec<&Effect> { effects.iter().filter(|e| e.lane() == lane).collect() };
    assert_eq!(in_lane(Lane::Security), queued_in(Lane::Security));
    let request = Lane::Cards(crate::domain::card::CardKey::Request {
        request: RequestId(99),
    });
    assert_eq!(in_lane(request.clone()), queued_in(request));
}

#[test]
fn notices_with_buttons_share_the_lane_of_the_cards_they_are_recorded_with() {
    let request = RequestId(7);
    let submitted = Effect::Notify {
        to: "alice".into(),
        notice: Notice::Submitted { request },
    };
    assert_eq!(
        submitted.lane(),
        Effect::RefreshCards { request }.lane(),
        "a refresh must not run beside the post of a Cancel button it should close"
    );
    let grant = GrantId(3);
    let warning = Effect::Notify {
        to: "alice".into(),
        notice: Notice::ExpiryWarning {
            grant,
            expires_at: crate::engine::testing::start(),
        },
    };
    assert_eq!(warning.lane(), Effect::RefreshGrantCards { grant }.lane());
    assert_eq!(
        Effect::Provision { grant }.lane(),
        Effect::Deprovision { grant }.lane()
    );
    assert_ne!(
        Effect::Provision { grant }.lane(),
        Effect::RefreshGrantCards { grant }.lane(),
        "a slow connector does not hold up the grant's cards"
    );
}

/// The engine's clock, following tokio's (paused in these tests, so waits take no time).
pub(super) struct TokioClock {
    start: chrono::DateTime<chrono::Utc>,
    at: tokio::time::Instant,
}

impl TokioClock {
    /// A minute ahead of the real now, from which effects committed without events are due.
    pub(super) fn new() -> Self {
        Self {
            start: SystemClock.now() + chrono::TimeDelta::minutes(1),
            at: tokio::time::Instant::now(),
        }
    }
}

impl crate::engine::Clock for TokioClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let elapsed = chrono::TimeDelta::from_std(self.at.elapsed()).unwrap_or_default();
        self.start + elapsed
    }
}

/// A chat that refuses the first delivery of `refuse` as a platform that is down, and
/// records the key of every delivery tried, in order.
struct RefusingOnce {
    refuse: String,
    refused: Mutex<bool>,
    tried: Mutex<Vec<String>>,
}

impl RefusingOnce {
    fn new(refuse: &str) -> Self {
        Self {
            refuse: refuse.to_owned(),
            refused: Mutex::new(false),
            tried: Mutex::new(Vec::new()),
        }
    }
}

impl ChatPort for RefusingOnce {
    fn deliver<'a>(
        &'a self,
        _effect: &'a Effect,
        key: &'a str,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        self.tried.lock().unwrap().push(key.to_owned());
        let mut refused = self.refused.lock().unwrap();
        let refuse = key == self.refuse && !*refused;
        *refused |= refuse;
        Box::pin(async move {
            match refuse {
                true => Err(ChatError::transient("the platform is down (test)")),
                false => Ok(Vec::new()),
            }
        })
    }
}

/// Runs `worker` until the outbox is empty (an hour of the paused clock at most).
async fn run_until_empty(engine: &Engine, worker: Worker) {
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(worker.run(shutdown));
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(3600);
    while !engine.store().outbox(1).unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox never emptied"
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
}

fn two_refreshes_of_one_request(engine: &Engine) {
    let refresh = Effect::RefreshCards {
        request: RequestId(7),
    };
    engine
        .commit(Commit {
            effects: vec![refresh.clone(), refresh],
            ..Commit::default()
        })
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_lane_keeps_its_order_while_its_oldest_waits_for_a_retry() {
    let engine = Arc::new(Engine::new(
        Arc::new(SledStore::temporary().unwrap()),
        example_policy(),
        example_directory(),
        Arc::new(TokioClock::new()),
    ));
    two_refreshes_of_one_request(&engine);
    let chat = Arc::new(RefusingOnce::new("effect:1"));
    let worker = Worker::new(engine.clone(), Connectors::default(), chat.clone());
    run_until_empty(&engine, worker).await;
    assert_eq!(
        *chat.tried.lock().unwrap(),
        ["effect:1", "effect:1", "effect:2"],
        "the later refresh ran before the earlier one was retried"
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_a_lane_still_waits_for_its_oldest() {
    let engine = Arc::new(Engine::new(
        Arc::new(SledStore::temporary().unwrap()),
        example_policy(),
        example_directory(),
        Arc::new(TokioClock::new()),
    ));
    two_refreshes_of_one_request(&engine);
    // An earlier process tried the first, failed, and stopped.
    let retry_at = engine.now() + chrono::TimeDelta::seconds(30);
    engine.store().retry_effect(1, retry_at, "down").unwrap();
    let chat = Arc::new(RefusingOnce::new("none"));
    let worker = Worker::new(engine.clone(), Connectors::default(), chat.clone());
    run_until_empty(&engine, worker).await;
    assert_eq!(*chat.tried.lock().unwrap(), ["effect:1", "effect:2"]);
}
