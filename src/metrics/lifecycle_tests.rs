//! The metrics of a whole life: a request approved after half an hour, its grant provisioned,
//! expired and revoked 45 s late, a refused request and a pending one, on the engine's
//! fake clock and the real outbox worker.

use std::sync::Arc;

use chrono::TimeDelta;

use super::*;
use crate::connector::{Connectors, LogConnector};
use crate::domain::request::{Changes, RequestState};
use crate::engine::testing::{ask, engine_on, who};
use crate::outbox::{RecordingChat, Worker};
use crate::store::SledStore;

#[tokio::test]
async fn a_request_is_measured_from_submission_to_revocation() {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    let mut connectors = Connectors::default();
    connectors.insert("log".into(), Arc::new(LogConnector::new("log".into())));
    let chat = Arc::new(RecordingChat::default());
    let worker = Worker::new(engine.clone(), connectors, chat.clone());
    let metrics = engine.metrics().clone();

    let id = engine
        .submit(&who("alice"), ask("alice", "prod-db", "read", "1h"))
        .unwrap()
        .request
        .id;
    let pending = StoreGauges::read(engine.store()).unwrap();
    assert_eq!(pending.pending_by_stage.get(&1), Some(&1));
    clock.advance(TimeDelta::minutes(10));
    engine
        .approve(&who("bob"), id, &Changes::default())
        .unwrap();
    let pending = StoreGauges::read(engine.store()).unwrap();
    assert_eq!(pending.pending_by_stage.get(&2), Some(&1), "now at stage 2");
    clock.advance(TimeDelta::minutes(20));
    let done = engine
        .approve(&who("carol"), id, &Changes::default())
        .unwrap();
    let RequestState::Approved { grant, .. } = done.request.state else {
        panic!("{:?}", done.request.state)
    };
    let approved = [("type", "temporary"), ("outcome", "approved")];
    assert_eq!(metrics.counter(&REQUESTS, &approved), 1);
    assert_eq!(
        metrics.observations(&DECISION_SECONDS, &[("outcome", "approved")]),
        1
    );

    worker.run_due().await.unwrap();
    let live = StoreGauges::read(engine.store()).unwrap();
    assert_eq!(live.grants_by_state.get("active"), Some(&1));
    assert!(live.pending_by_stage.is_empty());
    let granted = [("connector", "log"), ("action", "grant"), ("outcome", "ok")];
    assert_eq!(metrics.counter(&CONNECTOR_CALLS, &granted), 1);

    let expires_at = engine
        .store()
        .grant(grant)
        .unwrap()
        .unwrap()
        .value
        .expires_at;
    clock.set(expires_at.unwrap() + TimeDelta::seconds(45));
    assert_eq!(engine.revoke_expired_grants(10).unwrap(), 1);
    let revoking = StoreGauges::read(engine.store()).unwrap();
    assert_eq!(
        revoking.grants_by_state.get("revoking"),
        Some(&1),
        "a grant being taken back is still held"
    );
    worker.run_due().await.unwrap();
    assert_eq!(metrics.observations(&REVOCATION_LAG_SECONDS, &[]), 1);
    let text = metrics.render(&StoreGauges::read(engine.store()).unwrap());
    // Sums are floats: written `1800.0` or `1800`, they are the same number to Prometheus.
    let value = |name: &str, labels: &[(&str, &str)]| super::registry::sample(&text, name, labels);
    assert_eq!(
        value(
            "gatehouse_request_decision_seconds_sum",
            &[("outcome", "approved")]
        ),
        Some(1800.0),
        "{text}"
    );
    assert_eq!(
        value("gatehouse_revocation_lag_seconds_sum", &[]),
        Some(45.0),
        "{text}"
    );
    assert!(
        text.contains("gatehouse_grants_live{state=\"active\"} 0\n"),
        "{text}"
    );
    let writes = engine.store().write_stats();
    assert!(writes.commits >= 5, "{writes:?}");
    assert!(
        text.contains(&format!(
            "gatehouse_store_commits_total {}\n",
            writes.commits
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "gatehouse_store_flushes_total {}\n",
            writes.flushes
        )),
        "{text}"
    );

    let refused = engine.submit(&who("alice"), ask("alice", "prod-db", "read", "90d"));
    assert!(refused.is_err());
    let refused = [("type", "temporary"), ("outcome", "refused")];
    assert_eq!(metrics.counter(&REQUESTS, &refused), 1);
}

#[test]
fn emergency_and_auto_approved_requests_are_counted_by_type() {
    let (engine, _clock) = engine_on(SledStore::temporary().unwrap());
    let emergency = crate::domain::validation::Ask {
        emergency: true,
        ..ask("alice", "prod-db", "read", "30m")
    };
    engine.submit(&who("alice"), emergency).unwrap();
    engine
        .submit(&who("dan"), ask("dan", "grafana", "editor", "30m"))
        .unwrap();
    let metrics = engine.metrics();
    let emergency = [("type", "emergency"), ("outcome", "emergency")];
    assert_eq!(metrics.counter(&REQUESTS, &emergency), 1);
    let auto = [("type", "temporary"), ("outcome", "auto_approved")];
    assert_eq!(metrics.counter(&REQUESTS, &auto), 1);
    assert_eq!(
        metrics.observations(&DECISION_SECONDS, &[("outcome", "approved")]),
        0,
        "no human decided"
    );
}

#[tokio::test]
async fn a_retried_effect_is_counted_and_left_waiting() {
    let (engine, _clock) = engine_on(SledStore::temporary().unwrap());
    let chat = Arc::new(RecordingChat::default());
    let worker = Worker::new(engine.clone(), Connectors::default(), chat.clone());
    engine
        .submit(&who("alice"), ask("alice", "prod-db", "read", "1h"))
        .unwrap();
    let queued = StoreGauges::read(engine.store()).unwrap().outbox_depth;
    assert!(queued > 0);
    chat.fail_next(100);
    worker.run_due().await.unwrap();
    let gauges = StoreGauges::read(engine.store()).unwrap();
    assert_eq!(gauges.outbox_depth, queued);
    let outbox = engine.store().outbox(100).unwrap();
    let lanes: std::collections::HashSet<_> = outbox.iter().map(|e| e.effect.lane()).collect();
    assert_eq!(
        gauges.outbox_retrying,
        lanes.len() as u64,
        "the oldest of each lane was tried; the others wait behind it"
    );
    let retries = engine
        .metrics()
        .counter(&OUTBOX_RETRIES, &[("effect", "approval_card")]);
    assert!(retries >= 1, "{retries}");
}
