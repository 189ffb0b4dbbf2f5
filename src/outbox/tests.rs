//! The worker against a recording chat and a real signed-webhook receiver that fails, times
//! out and recovers: every card and every grant or revoke happens exactly once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{TimeDelta, TimeZone, Utc};

use super::*;
use crate::config::Secret;
use crate::connector::webhook::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER, WebhookConnector, verify};
use crate::connector::{Action, Connectors};
use crate::domain::effect::{Alert, Effect};
use crate::domain::grant::GrantState;
use crate::domain::ids::{GrantId, RequestId};
use crate::domain::policy::tests::{example_directory, example_policy};
use crate::domain::request::{Changes, RequestState};
use crate::domain::validation::Ask;
use crate::engine::testing::who;
use crate::engine::{Clock, Engine, FakeClock, SystemClock};
use crate::store::SledStore;

const SECRET: &str = "whsec-outbox-test-0123";

#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    Fail,
    Refuse,
    /// Applies the change, then answers too late.
    Slow,
}

/// A provisioning target that verifies signatures and applies each idempotency key once.
#[derive(Clone, Default)]
struct Target {
    script: Arc<Mutex<VecDeque<Answer>>>,
    applied: Arc<Mutex<BTreeMap<String, (Action, u64)>>>,
    deliveries: Arc<Mutex<usize>>,
}

impl Target {
    fn then(&self, answers: &[Answer]) {
        self.script.lock().unwrap().extend(answers);
    }

    /// (action, grant) of every change applied, once each.
    fn applied(&self) -> Vec<(Action, u64)> {
        self.applied.lock().unwrap().values().cloned().collect()
    }

    fn deliveries(&self) -> usize {
        *self.deliveries.lock().unwrap()
    }
}

async fn hook(
    State(target): State<Target>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if verify(
        SECRET.as_bytes(),
        &header(SIGNATURE_HEADER),
        &body,
        SystemClock.now().timestamp(),
        300,
    )
    .is_err()
    {
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    *target.deliveries.lock().unwrap() += 1;
    let answer = target
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Ok);
    let apply = || {
        let call: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let action = if call["action"] == "grant" {
            Action::Grant
        } else {
            Action::Revoke
        };
        let grant: GrantId = call["grant"].as_str().unwrap().parse().unwrap();
        target
            .applied
            .lock()
            .unwrap()
            .entry(header(IDEMPOTENCY_HEADER))
            .or_insert((action, grant.0));
    };
    match answer {
        Answer::Ok => {
            apply();
            (StatusCode::OK, "done".into())
        }
        Answer::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "database is down".into()),
        Answer::Refuse => (StatusCode::BAD_REQUEST, "no such role on the target".into()),
        Answer::Slow => {
            apply();
            tokio::time::sleep(StdDuration::from_millis(800)).await;
            (StatusCode::OK, "late".into())
        }
    }
}

/// Serves `target` on a free local port; its url.
async fn serve(target: Target) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(hook)).with_state(target);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/hook")
}

struct Rig {
    engine: Arc<Engine>,
    clock: Arc<FakeClock>,
    chat: Arc<RecordingChat>,
    worker: Worker,
    target: Target,
}

async fn rig_on(store: SledStore) -> Rig {
    rig_with(store, Target::default()).await
}

/// A rig whose connector reaches `target` (one that may have lived through a crash).
async fn rig_with(store: SledStore, target: Target) -> Rig {
    crate::app::install_tls_provider();
    let clock = Arc::new(FakeClock::at(
        Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap(),
    ));
    let engine = Arc::new(Engine::new(
        Arc::new(store),
        example_policy(),
        example_directory(),
        clock.clone(),
    ));
    let url = serve(target.clone()).await;
    let webhook = WebhookConnector::new(
        "log".into(),
        &url,
        Secret::new(SECRET),
        StdDuration::from_millis(300),
    )
    .unwrap();
    let mut connectors = Connectors::default();
    connectors.insert("log".into(), Arc::new(webhook));
    let chat = Arc::new(RecordingChat::default());
    let worker = Worker::new(engine.clone(), connectors, chat.clone());
    Rig {
        engine,
        clock,
        chat,
        worker,
        target,
    }
}

impl Rig {
    /// Runs the worker, moving the clock past every retry, until the outbox is empty.
    async fn drain(&self) {
        for _ in 0..100 {
            self.worker.run_due().await.unwrap();
            let (store, now) = (self.engine.store(), self.engine.now());
            match store.next_effect_due().unwrap() {
                None => return,
                Some(at) if at > now => self.clock.set(at),
                // Due, but behind an older entry of its lane that waits: on to that one.
                Some(_) => {
                    if let Some(at) = store.next_effect_due_after(now).unwrap() {
                        self.clock.set(at);
                    }
                }
            }
        }
        panic!(
            "the outbox never emptied: {:?}",
            self.engine.store().outbox(10).unwrap()
        );
    }

    fn grant_state(&self, id: GrantId) -> GrantState {
        self.engine.store().grant(id).unwrap().unwrap().value.state
    }
}

/// alice asks for prod-db read; bob and carol approve; the grant it made.
fn approved(engine: &Engine) -> (RequestId, GrantId) {
    let ask = Ask {
        requester: "alice".into(),
        resource: "prod-db".into(),
        role: "read".into(),
        duration: Some("1h".parse().unwrap()),
        justification: "replica lag".into(),
        ..Ask::default()
    };
    let id = engine.submit(&who("alice"), ask).unwrap().request.id;
    engine
        .approve(&who("bob"), id, &Changes::default())
        .unwrap();
    let done = engine
        .approve(&who("carol"), id, &Changes::default())
        .unwrap();
    let RequestState::Approved { grant, .. } = done.request.state else {
        panic!("{:?}", done.request.state)
    };
    (id, grant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_grant_and_revoke_reaches_the_target_once_while_it_fails_times_out_and_recovers() {
    let rig = rig_on(SledStore::temporary().unwrap()).await;
    rig.target
        .then(&[Answer::Fail, Answer::Slow, Answer::Fail, Answer::Ok]);
    let (_, grant) = approved(&rig.engine);
    rig.drain().await;
    assert!(matches!(rig.grant_state(grant), GrantState::Active { .. }));

    rig.target.then(&[Answer::Slow, Answer::Fail]);
    rig.engine.end_early(&who("alice"), grant).unwrap();
    rig.drain().await;
    assert!(matches!(rig.grant_state(grant), GrantState::Revoked { .. }));

    let applied = rig.target.applied();
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert!(
        applied.contains(&(Action::Grant, grant.0)) && applied.contains(&(Action::Revoke, grant.0))
    );
    assert!(
        rig.target.deliveries() >= 5,
        "the failures were real: {}",
        rig.target.deliveries()
    );
    let provisioned = rig
        .engine
        .store()
        .audit(1, 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action.name() == "grant_provisioned")
        .count();
    assert_eq!(provisioned, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_platform_that_is_down_delays_cards_but_not_decisions() {
    let rig = rig_on(SledStore::temporary().unwrap()).await;
    rig.chat.fail_next(5);
    let ask = Ask {
        requester: "alice".into(),
        resource: "prod-db".into(),
        role: "read".into(),
        duration: Some("1h".parse().unwrap()),
        justification: "x".into(),
        ..Ask::default()
    };
    let id = rig.engine.submit(&who("alice"), ask).unwrap().request.id;
    rig.worker.run_due().await.unwrap();
    assert!(rig.chat.delivered().is_empty(), "the platform is down");
    rig.engine
        .approve(&who("bob"), id, &Changes::default())
        .unwrap();
    rig.drain().await;
    let cards: Vec<_> = rig
        .chat
        .delivered()
        .into_iter()
        .filter(|e| matches!(e, Effect::ApprovalCard { .. }))
        .collect();
    assert_eq!(
        cards.len(),
        3,
        "bob's card, then carol's and dora's: {cards:?}"
    );
    assert!(rig.chat.attempts() > rig.chat.delivered().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_grant_is_taken_back_then_fails_and_is_alerted() {
    let rig = rig_on(SledStore::temporary().unwrap()).await;
    rig.target.then(&[Answer::Refuse]);
    let (_, grant) = approved(&rig.engine);
    rig.drain().await;
    let GrantState::Failed { error, .. } = rig.grant_state(grant) else {
        panic!("{:?}", rig.grant_state(grant))
    };
    assert!(error.contains("no such role on the target"), "{error}");
    assert!(rig.chat.delivered().iter().any(|e| matches!(
        e,
        Effect::Alert {
            alert: Alert::ProvisioningFailed { .. }
        }
    )));
    // The target may have changed something before refusing: a revoke follows the failure.
    assert_eq!(rig.target.applied(), [(Action::Revoke, grant.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_that_keeps_failing_is_alerted_and_retried_daily_until_it_works() {
    let rig = rig_on(SledStore::temporary().unwrap()).await;
    let (_, grant) = approved(&rig.engine);
    rig.drain().await;
    rig.engine.end_early(&who("alice"), grant).unwrap();
    rig.target.then(&[Answer::Fail; REVOKE_ATTEMPTS as usize]);
    for _ in 0..REVOKE_ATTEMPTS {
        rig.worker.run_due().await.unwrap();
        let next = rig.engine.store().next_effect_due().unwrap().unwrap();
        rig.clock.set(next.max(rig.engine.now()));
    }
    assert!(
        matches!(rig.grant_state(grant), GrantState::Revoking { attempts, .. } if attempts == REVOKE_ATTEMPTS)
    );
    let alerts = rig
        .engine
        .store()
        .outbox(100)
        .unwrap()
        .into_iter()
        .filter(|e| {
            matches!(
                e.effect,
                Effect::Alert {
                    alert: Alert::RevocationFailed { .. }
                }
            )
        })
        .count();
    assert_eq!(alerts, 1);
    let retry = rig
        .engine
        .store()
        .outbox(100)
        .unwrap()
        .into_iter()
        .find(|e| matches!(e.effect, Effect::Deprovision { .. }))
        .unwrap();
    assert!(
        retry.next_attempt_at - rig.engine.now() >= TimeDelta::hours(23),
        "retried daily"
    );
    rig.drain().await;
    assert!(matches!(rig.grant_state(grant), GrantState::Revoked { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_call_and_its_result_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (request, grant, target) = {
        let rig = rig_on(SledStore::open(dir.path()).unwrap()).await;
        let (request, grant) = approved(&rig.engine);
        // The worker calls the target, and Gatehouse dies before writing the result.
        let entry = rig
            .engine
            .store()
            .outbox(100)
            .unwrap()
            .into_iter()
            .find(|e| e.effect == Effect::Provision { grant })
            .unwrap();
        rig.worker.attempt(&entry).await.unwrap();
        (request, grant, rig.target.clone())
    };
    let rig = rig_with(SledStore::open(dir.path()).unwrap(), target.clone()).await;
    let stored = rig.engine.store().request(request).unwrap().unwrap().value;
    assert!(
        matches!(stored.state, RequestState::Approved { .. }),
        "the acknowledged approvals survived"
    );
    rig.drain().await;
    assert!(matches!(rig.grant_state(grant), GrantState::Active { .. }));
    assert_eq!(
        target.applied(),
        vec![(Action::Grant, grant.0)],
        "granted once, though called twice"
    );
    assert_eq!(target.deliveries(), 2);
}

#[test]
fn the_retry_policy_stops_growing_at_max_backoff() {
    assert_eq!(Some(RETRY.max()), MAX_BACKOFF.to_std().ok());
}

#[test]
fn max_backoff_caps_every_wait_jitter_included() {
    let max = TimeDelta::seconds(1);
    for attempts in 0..30 {
        let wait = backoff_within(attempts, 7, max);
        assert!(wait <= TimeDelta::milliseconds(1500), "{attempts}: {wait}");
        assert!(wait >= TimeDelta::milliseconds(500), "{attempts}: {wait}");
    }
}

/// Records the attempt number each delivery was given.
#[derive(Default)]
struct Attempts(Mutex<Vec<(String, u32)>>);

impl ChatPort for Attempts {
    fn deliver<'a>(
        &'a self,
        _effect: &'a Effect,
        key: &'a str,
        attempt: u32,
    ) -> crate::connector::BoxFuture<'a, Result<Posted, ChatError>> {
        self.0.lock().unwrap().push((key.to_owned(), attempt));
        Box::pin(async { Ok(Vec::new()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_message_queued_before_it_is_delivered_as_a_retry() {
    let clock = Arc::new(FakeClock::at(
        Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap(),
    ));
    let store = SledStore::temporary().unwrap();
    let engine = Arc::new(Engine::new(
        Arc::new(store),
        example_policy(),
        example_directory(),
        clock,
    ));
    let ask = |requester: &str| Ask {
        requester: requester.into(),
        resource: "prod-db".into(),
        role: "read".into(),
        duration: Some("1h".parse().unwrap()),
        justification: "x".into(),
        ..Ask::default()
    };
    // Queued by a process that may have been posting bob's card when it was killed.
    let before = engine
        .submit(&who("alice"), ask("alice"))
        .unwrap()
        .request
        .id;
    let chat = Arc::new(Attempts::default());
    let mut worker = Worker::new(engine.clone(), Connectors::default(), chat.clone());
    worker.resume().unwrap();
    let after = engine.submit(&who("dan"), ask("dan")).unwrap().request.id;
    worker.run_due().await.unwrap();

    let given = chat.0.lock().unwrap().clone();
    let card = |id: RequestId| format!("card:{id}:0:bob");
    let attempt = |key: &str| given.iter().find(|(k, _)| k == key).map(|(_, a)| *a);
    assert_eq!(attempt(&card(before)), Some(2), "{given:?}");
    assert_eq!(attempt(&card(after)), Some(1), "{given:?}");
}
