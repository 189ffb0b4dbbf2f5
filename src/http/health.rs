//! What operators and orchestrators poll, without a token: `/healthz` (the process answers),
//! `/readyz` (the store answers and every platform that keeps a connection is connected;
//! see [`crate::metrics::Readiness`]) and `/metrics` (Prometheus text format).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use crate::metrics::StoreGauges;
use crate::store::Store;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Alive: the process serves HTTP. Nothing else is looked at, so a slow store or a lost
/// chat connection never gets a healthy process restarted.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready for traffic: 200 when the store answers and every connecting platform is
/// connected, else 503; the body says which part is not.
pub async fn readyz<S: Store>(State(state): State<Arc<ApiState<S>>>) -> (StatusCode, Json<Value>) {
    let store = state
        .blocking(|engine| engine.store().requests(true, 1).map_err(ApiError::internal))
        .await
        .is_ok();
    let platforms = state.engine.metrics().readiness().platforms();
    let connected = platforms.values().all(|up| *up);
    let platforms: serde_json::Map<String, Value> = platforms
        .into_iter()
        .map(|(name, up)| (name, json!(if up { "connected" } else { "disconnected" })))
        .collect();
    let body = json!({
        "store": if store { "ok" } else { "unavailable" },
        "platforms": platforms,
    });
    let status = if store && connected {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Every metric, with the store's gauges read now.
pub async fn metrics<S: Store>(State(state): State<Arc<ApiState<S>>>) -> Response {
    let gauges = state
        .blocking(|engine| StoreGauges::read(engine.store()).map_err(ApiError::internal))
        .await;
    match gauges {
        Ok(gauges) => {
            let text = state.engine.metrics().render(&gauges);
            ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response()
        }
        Err(error) => error.into_response(),
    }
}
