//! Request bodies, read in full before a handler sees them and bounded three ways: by the
//! route's own limit ([`BodyLimit`]; 413, refused from `Content-Length` before a byte is
//! read), by the server's body timeout (408, so a client trickling a body is cut off), and by
//! the memory all bodies being received may take together ([`BodyRules`]; 503), so that slow
//! or large uploads on many connections cannot take the server's memory. Bodies are the only
//! request data kept across reads; headers are bounded by the connection (see `server`).
//!
//! Routes take the layer as
//! `.route_layer(from_fn_with_state(BodyLimit::kib(64), read_body))`, after any layer that
//! should run first (the admin API checks the token before reading a body).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;
use super::server::Throttle;

/// The largest body a route takes, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    pub const fn kib(kib: usize) -> Self {
        Self(kib * 1024)
    }
}

/// What the server allows every body: a time to arrive in and a share of one memory budget.
/// The server puts it on each request as an extension; a request without one (a router used
/// on its own) is bounded by its route's limit only.
#[derive(Clone, Debug)]
pub struct BodyRules {
    timeout: Duration,
    memory: Arc<Semaphore>,
    budget: usize,
}

impl BodyRules {
    /// Bodies must arrive within `timeout`, and may hold `memory` bytes together.
    pub fn new(timeout: Duration, memory: usize) -> Self {
        let memory = memory.min(Semaphore::MAX_PERMITS);
        Self {
            timeout,
            memory: Arc::new(Semaphore::new(memory)),
            budget: memory,
        }
    }

    /// The bytes bodies being received hold now.
    pub fn held_bytes(&self) -> usize {
        self.budget.saturating_sub(self.memory.available_permits())
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyRefusal {
    #[error("the request body is larger than this call takes (at most {} KiB); send less", .0 / 1024)]
    TooLarge(usize),
    #[error("the request body did not arrive within {} s; send it at once", .0.as_secs())]
    TooSlow(Duration),
    #[error("the server is receiving too many request bodies at once; try again in a moment")]
    Busy,
    #[error("the request body could not be read: {0}")]
    Broken(String),
}

impl IntoResponse for BodyRefusal {
    fn into_response(self) -> Response {
        let status = match &self {
            BodyRefusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyRefusal::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            BodyRefusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
            BodyRefusal::Broken(_) => StatusCode::BAD_REQUEST,
        };
        let mut response = ApiError::new(status, self.to_string()).into_response();
        if self == BodyRefusal::Busy {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The middleware: reads the body under the rules, then hands the handler a request whose
/// body is the bytes read. The body's share of the memory budget is held until the handler
/// has answered.
pub async fn read_body(State(limit): State<BodyLimit>, request: Request, next: Next) -> Response {
    let rules = request.extensions().get::<BodyRules>().cloned();
    let (parts, body) = request.into_parts();
    match read(body, &parts.headers, limit, rules.as_ref()).await {
        Ok((bytes, _held)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(refusal) => {
            static BUSY: Throttle = Throttle::new();
            if refusal == BodyRefusal::Busy && BUSY.ready() {
                tracing::warn!(
                    path = %parts.uri.path(),
                    "the memory for request bodies is in use; refusing bodies with 503"
                );
            }
            tracing::debug!(%refusal, path = %parts.uri.path(), "refused a request body");
            refusal.into_response()
        }
    }
}

/// Reads `body` whole under `limit` and `rules`: the bytes and the memory they hold.
pub async fn read(
    body: Body,
    headers: &HeaderMap,
    BodyLimit(max): BodyLimit,
    rules: Option<&BodyRules>,
) -> Result<(Bytes, Held), BodyRefusal> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(BodyRefusal::TooLarge(max));
    }
    let deadline = rules.map(|r| (tokio::time::Instant::now() + r.timeout, r.timeout));
    let mut held = Held::default();
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunks = body.into_data_stream();
    loop {
        let next = match deadline {
            Some((at, timeout)) => tokio::time::timeout_at(at, chunks.next())
                .await
                .map_err(|_| BodyRefusal::TooSlow(timeout))?,
            None => chunks.next().await,
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|error| BodyRefusal::Broken(error.to_string()))?;
        let needed = buffer.len() + chunk.len();
        if needed > max {
            return Err(BodyRefusal::TooLarge(max));
        }
        if needed > buffer.capacity() {
            // Grow by doubling, never past the limit, and count the growth before making it.
            let capacity = needed.max(buffer.capacity() * 2).max(1024).min(max);
            if let Some(rules) = rules {
                held.add(rules, capacity - buffer.capacity())?;
            }
            buffer.reserve_exact(capacity - buffer.len());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok((Bytes::from(buffer), held))
}

/// The share of the body memory budget one body holds; returned when dropped.
#[derive(Debug, Default)]
pub struct Held(Option<OwnedSemaphorePermit>);

impl Held {
    fn add(&mut self, rules: &BodyRules, bytes: usize) -> Result<(), BodyRefusal> {
        let bytes = u32::try_from(bytes).map_err(|_| BodyRefusal::Busy)?;
        let more = rules
            .memory
            .clone()
            .try_acquire_many_owned(bytes)
            .map_err(|_| BodyRefusal::Busy)?;
        match &mut self.0 {
            Some(permit) => permit.merge(more),
            None => self.0 = Some(more),
        }
        Ok(())
    }

    /// Bytes of the budget held.
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

#[cfg(test)]
mod tests;
