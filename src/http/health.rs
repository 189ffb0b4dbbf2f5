//! What operators and orchestrators poll, without a token: `/healthz` (the process answers
//! and its store can still write), `/readyz` (the store answers and every platform that keeps
//! a connection is connected; see [`crate::metrics::Readiness`]) and `/metrics` (Prometheus
//! text format).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Alive: the process serves HTTP, and its store has not stopped writing after a write that
/// failed halfway, which only a restart mends (the restart completes the write from the
/// journal). Nothing else is looked at, and nothing is read, so a slow store or a lost chat
/// connection never gets a healthy process restarted.
pub async fn healthz(State(state): State<Arc<ApiState>>) -> (StatusCode, String) {
    match state.facade.halted() {
        None => (StatusCode::OK, "ok".to_owned()),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store stopped writing ({why}); restart Gatehouse"),
        ),
    }
}

/// Ready for traffic: 200 when the store answers and every platform that keeps a connection
/// is connected, else 503. The body says which part is not: the store, each enabled platform
/// (`connected`, `disconnected`, or `http` for one that receives over HTTP) and, for Discord,
/// where the registration of its command stands (see [`crate::metrics::Registration`]).
pub async fn readyz(State(state): State<Arc<ApiState>>) -> (StatusCode, Json<Value>) {
    let halted = state.facade.halted().is_some();
    let store = !halted && state.facade.ping_store().await.is_ok();
    let readiness = state.facade.metrics().readiness();
    let platforms = readiness.platforms();
    let connected = platforms.values().all(|link| link.is_ready());
    let platforms: serde_json::Map<String, Value> = platforms
        .into_iter()
        .map(|(name, link)| (name, json!(link.as_str())))
        .collect();
    let mut body = json!({
        "store": if halted { "halted" } else if store { "ok" } else { "unavailable" },
        "platforms": platforms,
    });
    let commands: serde_json::Map<String, Value> = readiness
        .registrations()
        .into_iter()
        .map(|(name, registration)| (name, json!(registration.as_str())))
        .collect();
    if !commands.is_empty() {
        body["commands"] = Value::Object(commands);
    }
    // A standby is ready: it serves every front end; only the scheduler and the outbox wait.
    if let Some(role) = readiness.role() {
        body["role"] = json!(role);
    }
    let status = if store && connected {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Every metric, with the store's gauges read now.
pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    match state.facade.gauges().await {
        Ok(gauges) => {
            let text = state.facade.metrics().render(&gauges);
            ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response()
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AdminConfig;
    use crate::engine::Facade;
    use crate::engine::testing::{engine_on, engine_sharing};
    use crate::http::{Reloaded, Reloader};
    use crate::store::SledStore;

    struct NoReload;

    impl Reloader for NoReload {
        fn reload(&self) -> Result<Reloaded, Vec<String>> {
            Err(vec!["not in this test".to_owned()])
        }
    }

    #[tokio::test]
    async fn readiness_names_every_platform_and_waits_only_for_connections() {
        let (engine, _) = engine_on(SledStore::temporary().unwrap());
        let state = ApiState::new(
            Facade::new(engine),
            AdminConfig::default(),
            Arc::new(NoReload),
        );
        let (status, Json(body)) = readyz(State(state.clone())).await;
        assert_eq!(status, StatusCode::OK, "no platform: ready with the store");
        assert_eq!(body, json!({"store": "ok", "platforms": {}}));

        let readiness = state.facade.metrics().readiness();
        readiness.over_http("slack");
        readiness.expect("discord");
        readiness.registration("discord", crate::metrics::Registration::Retrying);
        let (status, Json(body)) = readyz(State(state.clone())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(
            body,
            json!({"store": "ok", "platforms": {"slack": "http", "discord": "disconnected"},
                   "commands": {"discord": "retrying"}})
        );

        readiness.connected("discord");
        let (status, Json(body)) = readyz(State(state)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a retried registration is no reason for 503"
        );
        assert_eq!(body["platforms"]["discord"], "connected", "{body}");
    }

    #[tokio::test]
    async fn a_store_that_stopped_writing_fails_liveness_and_readiness() {
        let store = Arc::new(SledStore::temporary().unwrap());
        let (engine, _) = engine_sharing(store.clone());
        let state = ApiState::new(
            Facade::new(engine),
            AdminConfig::default(),
            Arc::new(NoReload),
        );
        assert_eq!(healthz(State(state.clone())).await.0, StatusCode::OK);
        assert_eq!(readyz(State(state.clone())).await.0, StatusCode::OK);

        let disk = sled::Error::Unsupported("the disk went away".to_owned());
        store.halt(&disk);
        let (status, text) = healthz(State(state.clone())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            text.contains("the disk went away") && text.contains("restart"),
            "{text}"
        );
        let (status, Json(body)) = readyz(State(state)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["store"], "halted", "{body}");
    }
}
