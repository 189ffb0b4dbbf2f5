//! The fake's HTTP side. Every request is recorded, whatever becomes of it. In order: the route
//! ([`super::routes::resolve`]); a scripted or random fault (a lost response is applied first);
//! the bot token (`Authorization: Bot <token>`, 401 otherwise; the interaction and webhook
//! routes authenticate by their token, as on Discord); the JSON body (400 code 50109 if it is
//! not JSON); then the route itself, which validates and applies.

use std::sync::Arc;

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::conn::{self, KillSwitch};
use super::routes::{self, Outcome};
use super::state::{Call, Fault, Route};
use super::{BOT_TOKEN, Shared};

const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let incoming = conn::split(listener, shared.clone());
    let app = Router::new().fallback(handle).with_state(shared);
    let service = app.into_make_service_with_connect_info::<KillSwitch>();
    axum::serve(incoming, service).await.unwrap();
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(switch): ConnectInfo<KillSwitch>,
    request: Request,
) -> Response {
    let at = shared.started.elapsed();
    let now = Instant::now();
    let (parts, body) = request.into_parts();
    let (route, params) = routes::resolve(&parts.method, parts.uri.path());
    let query = parts.uri.query().unwrap_or("").to_owned();
    let bytes = to_bytes(body, BODY_LIMIT).await.unwrap_or_default();
    let parsed: Result<Value, String> = if bytes.is_empty() {
        Ok(Value::Null)
    } else {
        let mime = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let mime = mime.unwrap_or("").split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            Err(format!(
                "content type {mime:?}; the fake takes JSON bodies only"
            ))
        } else {
            serde_json::from_slice(&bytes).map_err(|e| format!("the body is not JSON: {e}"))
        }
    };
    let mut call = Call {
        route,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        body: parsed.clone().unwrap_or(Value::Null),
        at,
        fault: None,
        violations: Vec::new(),
        status: 0,
        response: Value::Null,
    };
    let fault = pick_fault(&shared, route);
    let lost = fault == Some(Fault::LostResponse);
    if let Some(fault) = fault.filter(|_| !lost) {
        return inject(&shared, call, fault, switch).await;
    }
    let outcome = {
        let mut state = shared.lock();
        let outcome = match (authenticate(route, &parts.headers), parsed) {
            (Err(why), _) => Outcome::refused(401, 0, "401: Unauthorized", why),
            (Ok(()), Err(why)) => {
                Outcome::refused(400, 50109, "The request body contains invalid JSON.", why)
            }
            (Ok(()), Ok(body)) => routes::apply(&mut state, route, &params, &body, &query, now, at),
        };
        call.violations = outcome.violations.clone();
        call.status = if lost { 0 } else { outcome.status };
        call.response = outcome.body.clone();
        call.fault = lost.then_some(Fault::LostResponse);
        state.calls.push(call);
        outcome
    };
    shared.changed.notify_waiters();
    if lost {
        // Applied, as above; the answer never arrives.
        switch.kill();
        return StatusCode::OK.into_response();
    }
    respond(outcome)
}

fn respond(outcome: Outcome) -> Response {
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::OK);
    let mut response = if outcome.body.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(outcome.body)).into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", "5"),
        ("x-ratelimit-remaining", "4"),
        ("x-ratelimit-reset-after", "1.000"),
        ("x-ratelimit-bucket", "fakebucket"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Interaction callbacks and webhook routes need no bot token (their token is in the path),
/// but a wrong one is still refused; everything else wants `Bot <BOT_TOKEN>`.
fn authenticate(route: Route, headers: &HeaderMap) -> Result<(), String> {
    let given = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let by_token = matches!(
        route,
        Route::CreateInteractionResponse
            | Route::GetOriginalWebhookMessage
            | Route::UpdateOriginalWebhookMessage
            | Route::ExecuteWebhook
            | Route::UpdateWebhookMessage
    );
    match given {
        None if by_token => Ok(()),
        None => Err("no Authorization header".into()),
        Some(value) if value.strip_prefix("Bot ") == Some(BOT_TOKEN) => Ok(()),
        Some(value) if value.starts_with("Bot ") => Err("a wrong bot token".into()),
        Some(_) => Err("Authorization is not `Bot <token>`".into()),
    }
}

/// The fault this call meets: a queued one first, else maybe a random one.
fn pick_fault(shared: &Shared, route: Route) -> Option<Fault> {
    let mut state = shared.lock();
    if let Some(fault) = state.faults.get_mut(&route).and_then(|q| q.pop_front()) {
        return Some(fault);
    }
    if !route.mutates() {
        return None;
    }
    let (draw, percent, faults) = state.next_random()?;
    let hit = (draw % 100) < u64::from(percent);
    hit.then(|| faults[((draw >> 32) % faults.len() as u64) as usize].clone())
}

async fn inject(shared: &Shared, mut call: Call, fault: Fault, switch: KillSwitch) -> Response {
    let (status, body) = match &fault {
        Fault::RateLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"message": "You are being rate limited.",
                   "retry_after": retry_after.as_secs_f64(), "global": false}),
        ),
        Fault::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "500: Internal Server Error", "code": 0}),
        ),
        Fault::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            json!({"message": "504: Gateway Timeout", "code": 0}),
        ),
        Fault::Drop | Fault::LostResponse => (StatusCode::OK, Value::Null),
    };
    let dropped = matches!(fault, Fault::Drop | Fault::LostResponse);
    call.status = if dropped { 0 } else { status.as_u16() };
    call.response = body.clone();
    call.fault = Some(fault.clone());
    let slow_delay = {
        let mut state = shared.lock();
        state.calls.push(call);
        state.slow_delay
    };
    shared.changed.notify_waiters();
    match fault {
        Fault::RateLimited { retry_after } => {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let headers = [
                (RETRY_AFTER.as_str(), secs.to_string()),
                ("x-ratelimit-scope", "user".to_owned()),
                ("x-ratelimit-global", "false".to_owned()),
            ];
            (status, headers, axum::Json(body)).into_response()
        }
        Fault::ServerError => (status, axum::Json(body)).into_response(),
        Fault::Timeout => {
            tokio::time::sleep(slow_delay).await;
            (status, axum::Json(body)).into_response()
        }
        Fault::Drop | Fault::LostResponse => {
            // Writing this answer fails, and hyper closes the connection.
            switch.kill();
            status.into_response()
        }
    }
}
