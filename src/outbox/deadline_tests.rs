//! How long the worker waits: an attempt nobody answers gives up at its deadline and is retried;
//! a platform's `Retry-After` counts from when its answer arrived.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::TimeDelta;

use super::attempt::Next;
use super::*;
use crate::connector::{BoxFuture, Connector, ConnectorCall, ConnectorError, Connectors, Outcome};
use crate::domain::effect::{Alert, Effect};
use crate::domain::ids::GrantId;
use crate::domain::policy::tests::{example_directory, example_policy};
use crate::domain::request::Changes;
use crate::domain::validation::Ask;
use crate::engine::testing::who;
use crate::engine::{Clock, Engine, FakeClock, SystemClock};
use crate::store::{Commit, OutboxEntry, SledStore};

fn engine(clock: Arc<FakeClock>) -> Arc<Engine> {
    Arc::new(Engine::new(
        Arc::new(SledStore::temporary().unwrap()),
        example_policy(),
        example_directory(),
        clock,
    ))
}

/// A clock a minute ahead of the real now, from which effects committed without events are
/// due: they are due on it.
fn clock() -> Arc<FakeClock> {
    Arc::new(FakeClock::at(SystemClock.now() + TimeDelta::minutes(1)))
}

fn queue(engine: &Engine, effect: Effect) -> OutboxEntry {
    engine
        .commit(Commit {
            effects: vec![effect],
            ..Commit::default()
        })
        .unwrap();
    engine.store().outbox(1).unwrap().remove(0)
}

fn entry(engine: &Engine, seq: u64) -> OutboxEntry {
    let outbox = engine.store().outbox(100).unwrap();
    outbox.into_iter().find(|e| e.seq == seq).unwrap()
}

/// Runs `work` on a paused clock, failing (rather than hanging) if it has not ended an hour in.
async fn within_an_hour<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(StdDuration::from_secs(3600), work)
        .await
        .expect("still waiting an hour later")
}

/// A chat platform that takes every delivery and never answers.
struct Silent;

impl ChatPort for Silent {
    fn deliver<'a>(
        &'a self,
        _effect: &'a Effect,
        _key: &'a str,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        Box::pin(std::future::pending())
    }
}

/// The worker's deadline for a connector not built from gatehouse.toml.
const UNKNOWN_CONNECTOR_DEADLINE: StdDuration = StdDuration::from_secs(90);

/// A provisioning target that takes every call and never answers.
struct Hanging;

impl Connector for Hanging {
    fn grant<'a>(&'a self, _: &'a ConnectorCall) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(std::future::pending())
    }

    fn revoke<'a>(
        &'a self,
        _: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_message_nobody_answers_gives_up_at_its_deadline_and_is_retried() {
    let engine = engine(clock());
    let alert = Effect::Alert {
        alert: Alert::EmergencyGranted { grant: GrantId(1) },
    };
    let queued = queue(&engine, alert);
    let worker = Worker::new(engine.clone(), Connectors::default(), Arc::new(Silent));
    let started = tokio::time::Instant::now();
    within_an_hour(worker.run_due()).await.unwrap();
    assert_eq!(started.elapsed(), CHAT_DEADLINE);
    let retried = entry(&engine, queued.seq);
    assert_eq!(retried.attempts, 1);
    let error = retried.last_error.unwrap();
    assert!(error.contains("no answer within 120s"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_connector_call_nobody_answers_gives_up_at_its_deadline_and_is_retried() {
    let engine = engine(Arc::new(FakeClock::at(crate::engine::testing::start())));
    let ask = Ask {
        requester: "alice".into(),
        resource: "prod-db".into(),
        role: "read".into(),
        duration: Some("1h".parse().unwrap()),
        justification: "x".into(),
        ..Ask::default()
    };
    let request = engine.submit(&who("alice"), ask).unwrap().request.id;
    for approver in ["bob", "carol"] {
        let changes = Changes::default();
        engine.approve(&who(approver), request, &changes).unwrap();
    }
    let provision = engine.store().outbox(100).unwrap();
    let provision = provision
        .into_iter()
        .find(|e| matches!(e.effect, Effect::Provision { .. }))
        .expect("approved: the grant is to be provisioned");
    let mut connectors = Connectors::default();
    connectors.insert("log".into(), Arc::new(Hanging));
    let chat = Arc::new(crate::outbox::RecordingChat::default());
    let worker = Worker::new(engine.clone(), connectors, chat);

    let started = tokio::time::Instant::now();
    let next = within_an_hour(worker.attempt(&provision)).await.unwrap();
    assert_eq!(started.elapsed(), UNKNOWN_CONNECTOR_DEADLINE);
    let Next::Retry(_, error) = next else {
        panic!("a call past its deadline is retried")
    };
    assert!(error.contains("gave no answer within 90s"), "{error}");
}

/// A chat platform whose answer takes `slow` (on the engine's clock), and is a 429 asking to
/// wait `retry_after`.
struct SlowlyRateLimited {
    clock: Arc<FakeClock>,
    slow: TimeDelta,
    retry_after: StdDuration,
}

impl ChatPort for SlowlyRateLimited {
    fn deliver<'a>(
        &'a self,
        _effect: &'a Effect,
        _key: &'a str,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        self.clock.advance(self.slow);
        let limited = ChatError::rate_limited("429", Some(self.retry_after));
        Box::pin(async move { Err(limited) })
    }
}

#[tokio::test]
async fn a_429_is_waited_out_from_when_it_arrived() {
    let clock = clock();
    let engine = engine(clock.clone());
    let alert = Effect::Alert {
        alert: Alert::EmergencyGranted { grant: GrantId(1) },
    };
    let queued = queue(&engine, alert);
    let chat = SlowlyRateLimited {
        clock: clock.clone(),
        slow: TimeDelta::milliseconds(1500),
        retry_after: StdDuration::from_secs(1),
    };
    let worker = Worker::new(engine.clone(), Connectors::default(), Arc::new(chat));
    let started = engine.now();
    worker.run_due().await.unwrap();
    let answered = started + TimeDelta::milliseconds(1500);
    let retry = entry(&engine, queued.seq).next_attempt_at;
    assert!(
        retry >= answered + TimeDelta::seconds(1),
        "retried {} after the 429 arrived, asked to wait 1 s",
        retry - answered
    );
}
