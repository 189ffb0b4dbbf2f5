//! HTTP mode, inbound: `POST /discord/interactions`. Every request is authenticated first
//! (Ed25519 over timestamp + body, with a freshness window, against the engine's clock) and
//! refused with a bare 401 otherwise — Discord itself probes the endpoint with bad
//! signatures and expects exactly that. A PING is answered with a PONG; any other
//! interaction id seen before is a replay and refused too. What is left is answered in the
//! HTTP response, deferred when it takes longer than Discord waits.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::interaction::{self, Kind};
use super::respond::{Responder, Seen};
use super::verify::verify;
use crate::http::{BodyLimit, read_body};

/// An interaction: JSON with the message clicked in (2,000 characters of text, 6,000 of
/// embeds) and the users and roles it names.
const INTERACTION_BODY: BodyLimit = BodyLimit::kib(256);

/// The interactions endpoint, ready to be merged into the server's router.
pub fn router(responder: Arc<Responder>) -> Router {
    Router::new()
        .route(
            "/discord/interactions",
            post(handle).layer(from_fn_with_state(INTERACTION_BODY, read_body)),
        )
        .with_state(responder)
}

async fn handle(
    State(responder): State<Arc<Responder>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(key) = responder.discord().public_key.as_ref() else {
        tracing::error!("discord.public_key is not set; refusing /discord/interactions");
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let now = responder.facade().now().timestamp();
    if let Err(rejection) = verify(key, &headers, &body, now) {
        tracing::warn!(%rejection, "refused a request to /discord/interactions");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let incoming = match interaction::parse(&body) {
        Ok(incoming) => incoming,
        Err(error) => {
            tracing::warn!(%error, "a signed Discord request Gatehouse cannot read");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    if incoming.kind == Kind::Ping {
        return Json(json!({ "type": 1 })).into_response();
    }
    let responder = match responder.seen(&incoming.id).await {
        Ok(Seen::First(responder)) => responder,
        Ok(Seen::Again) => {
            tracing::warn!(interaction = %incoming.id, "refused a replayed Discord interaction");
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Err(error) => {
            tracing::error!(%error, "cannot record a Discord interaction");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    Json(responder.callback(incoming).await).into_response()
}
