//! The fake's HTTP side: `GET|POST /api/{method}` with JSON, form or query arguments. In order:
//! a scripted or random fault (a lost response is applied first), the
//! bearer token, the arguments, the method's existence, validation ([`super::blocks`]), then the method itself
//! ([`super::methods`]). Every request is recorded, whatever becomes of it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{ConnectInfo, FromRequest, Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use super::killable::{KillSwitch, KillableListener};
use super::{Call, Fault, Shared, blocks, methods};

const BODY_LIMIT: usize = 16 * 1024 * 1024;
const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(30);

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/api/{method}", get(api).post(api))
        .with_state(shared);
    let service = app.into_make_service_with_connect_info::<KillSwitch>();
    axum::serve(KillableListener(listener), service)
        .await
        .unwrap();
}

async fn api(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(switch): ConnectInfo<KillSwitch>,
    Path(method): Path<String>,
    request: Request,
) -> Response {
    let at = shared.started.elapsed();
    let (parts, body) = request.into_parts();
    let parsed = match to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => parse_args(&parts, bytes).await,
        Err(_) => Err(("invalid_form_data", "the body could not be read".to_owned())),
    };
    let mut call = Call {
        method: method.clone(),
        args: Value::Object(parsed.clone().unwrap_or_default()),
        at,
        fault: None,
        violations: Vec::new(),
        status: 200,
        response: Value::Null,
    };
    let fault = shared.lock().next_fault(&method);
    let lost = fault == Some(Fault::LostResponse);
    if let Some(fault) = fault.filter(|_| !lost) {
        return inject(&shared, call, fault, switch).await;
    }
    let mut state = shared.lock();
    let response = match (authenticate(&method, &parts.headers), parsed) {
        (Err(error), _) => methods::failure(error),
        (Ok(()), Err((error, problem))) => {
            call.violations.push(format!("[ERROR] {problem}"));
            methods::failure(error)
        }
        (Ok(()), Ok(_)) if !methods::METHODS.contains(&method.as_str()) => {
            call.violations
                .push(format!("[ERROR] unknown method {method}"));
            methods::failure("unknown_method")
        }
        (Ok(()), Ok(args)) => match blocks::check(&method, &args) {
            Err(refusal) => {
                let answer = json!({"ok": false, "error": refusal.error,
                    "response_metadata": {"messages": refusal.messages}});
                call.violations = refusal.messages;
                answer
            }
            Ok(()) => methods::apply(&mut state, &method, &args),
        },
    };
    call.response = response.clone();
    if lost {
        // Applied, as above; the answer never arrives.
        call.fault = Some(Fault::LostResponse);
        call.status = 0;
        state.record(call);
        switch.kill();
        return StatusCode::OK.into_response();
    }
    state.record(call);
    Json(response).into_response()
}

/// Bot-token methods want `xoxb-`; Socket Mode's `apps.connections.open` wants `xapp-`.
fn authenticate(method: &str, headers: &HeaderMap) -> Result<(), &'static str> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or("not_authed")?;
    let wanted = if method == "apps.connections.open" {
        "xapp-"
    } else {
        "xoxb-"
    };
    if token.starts_with(wanted) {
        Ok(())
    } else if ["xoxb-", "xapp-", "xoxp-"]
        .iter()
        .any(|kind| token.starts_with(kind))
    {
        Err("not_allowed_token_type")
    } else {
        Err("invalid_auth")
    }
}

type ParseError = (&'static str, String);

/// Query arguments, then the body's (JSON object or form); JSON sent as text in `blocks`,
/// `view` or `attachments` (as form bodies must) is parsed.
async fn parse_args(parts: &Parts, bytes: Bytes) -> Result<Map<String, Value>, ParseError> {
    let mut args = Map::new();
    let Query(query) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map_err(|e| ("invalid_form_data", e.body_text()))?;
    args.extend(query.into_iter().map(|(k, v)| (k, Value::String(v))));
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !bytes.is_empty() {
        match mime.to_ascii_lowercase().as_str() {
            "application/json" => match serde_json::from_slice(&bytes) {
                Ok(Value::Object(body)) => args.extend(body),
                Ok(_) => return Err(("invalid_json", "the JSON body is not an object".into())),
                Err(e) => return Err(("invalid_json", format!("the body is not JSON: {e}"))),
            },
            "application/x-www-form-urlencoded" => {
                // A POST: for a GET, axum's Form reads the query string instead.
                let request = Request::builder()
                    .method(Method::POST)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(bytes))
                    .map_err(|e| ("invalid_form_data", e.to_string()))?;
                let Form(form) = Form::<Vec<(String, String)>>::from_request(request, &())
                    .await
                    .map_err(|e| ("invalid_form_data", e.body_text()))?;
                args.extend(form.into_iter().map(|(k, v)| (k, Value::String(v))));
            }
            other => {
                return Err((
                    "invalid_form_data",
                    format!("unsupported content type {other:?}"),
                ));
            }
        }
    }
    for name in ["blocks", "view", "attachments"] {
        if let Some(Value::String(text)) = args.get(name) {
            let parsed = serde_json::from_str(text)
                .map_err(|_| ("invalid_arguments", format!("{name} is not valid JSON")))?;
            args.insert(name.to_owned(), parsed);
        }
    }
    Ok(args)
}

async fn inject(shared: &Shared, mut call: Call, fault: Fault, switch: KillSwitch) -> Response {
    let (status, body) = match &fault {
        Fault::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            methods::failure("ratelimited"),
        ),
        Fault::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            methods::failure("internal_error"),
        ),
        Fault::Timeout => (StatusCode::GATEWAY_TIMEOUT, methods::failure("timeout")),
        Fault::Drop | Fault::LostResponse => (StatusCode::OK, Value::Null),
    };
    // A dropped connection answers nothing: status 0.
    call.status = if matches!(fault, Fault::Drop | Fault::LostResponse) {
        0
    } else {
        status.as_u16()
    };
    call.response = body.clone();
    call.fault = Some(fault.clone());
    let slow_delay = {
        let mut state = shared.lock();
        state.record(call);
        state.slow_delay.unwrap_or(DEFAULT_SLOW_DELAY)
    };
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let retry_after = [(RETRY_AFTER, retry_after_secs.to_string())];
            (status, retry_after, Json(body)).into_response()
        }
        Fault::ServerError => (status, Json(body)).into_response(),
        Fault::Timeout => {
            tokio::time::sleep(slow_delay).await;
            (status, Json(body)).into_response()
        }
        Fault::Drop | Fault::LostResponse => {
            // Writing this answer fails, and hyper closes the connection.
            switch.kill();
            status.into_response()
        }
    }
}
