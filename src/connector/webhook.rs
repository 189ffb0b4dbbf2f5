//! The `webhook` connector: POSTs each call as JSON to the configured `url`, signed with the
//! connector's `secret` so that the receiver knows it comes from Gatehouse and is fresh.
//!
//! **The request.** `POST <url>` (redirects are not followed) with the headers
//! `Content-Type: application/json`, `Idempotency-Key: <key>` (the same on every retry of one
//! grant or revoke: a receiver may drop repeats) and
//! `X-Gatehouse-Signature: t=<unix seconds>,v1=<64 lowercase hex digits>`. The body is a
//! [`ConnectorCall`] plus `sent_at`, the same unix seconds as `t`:
//! `{"action":"grant","grant":"G-7","person":{"id":"alice","email":"alice@example.com",
//! "slack":"U01","discord":null},"resource":"prod-db","role":"admin",
//! "expires_at":"2027-01-01T10:00:00Z","idempotency_key":"provision:G-7","sent_at":1798797600}`.
//!
//! **Verifying it** (what [`verify`] does, the scheme Stripe uses):
//! 1. split the header on `,` and each part at its first `=`; take `t` and every `v1`;
//! 2. compute HMAC-SHA256 keyed with the secret's UTF-8 bytes over `<t>.<body>`: the `t` text
//!    from the header, a dot, then the raw body bytes exactly as received, before any parsing;
//! 3. compare its lowercase hex with each `v1` in constant time; one must be equal;
//! 4. refuse a `t` more than a few minutes (say 300 s) from your clock, so that a captured
//!    request cannot be replayed later.
//!
//! **The answer.** 2xx means done: do the action idempotently (granting what already exists
//! or revoking what is already gone is a success, for a person you do not know too). A
//! failed grant is followed by a revoke with `"undo": true`, so that whatever the receiver did
//! before failing is taken back. 429, 5xx, a timeout or no connection make
//! Gatehouse retry with backoff; after a 429 with `Retry-After` (seconds or an HTTP date),
//! no call to this connector starts until that wait is over. Any other status (4xx, or a 3xx) is a permanent failure: the
//! grant is marked failed, or the revocation alerted, with the first 1 KB of the response
//! body, so answer 4xx only when retrying cannot help and say why in the body.

use std::time::Duration as StdDuration;

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome,
    check_action, truncate,
};
use crate::config::{ConnectorConfig, Secret};
use crate::domain::ids::ConnectorId;
use crate::engine::{Clock, SystemClock};

pub const SIGNATURE_HEADER: &str = "X-Gatehouse-Signature";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// How much of a refusing receiver's body goes into the error.
const BODY_EXCERPT: usize = 1024;

pub struct WebhookConnector {
    id: ConnectorId,
    url: reqwest::Url,
    /// The url without query or credentials: what errors show, since a query may hold a token.
    shown: String,
    secret: Secret,
    timeout: StdDuration,
    client: reqwest::Client,
}

/// The body: the call and when it was signed.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(flatten)]
    call: &'a ConnectorCall,
    sent_at: i64,
}

impl WebhookConnector {
    /// A webhook with its own HTTP client; `timeout` bounds each whole request.
    pub fn new(
        id: ConnectorId,
        url: &str,
        secret: Secret,
        timeout: StdDuration,
    ) -> Result<Self, ConnectorSetupError> {
        let bad_url = |reason: String| ConnectorSetupError::BadUrl {
            id: id.clone(),
            url: url.to_owned(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad_url(format!("the scheme is {}", parsed.scheme())));
        }
        if secret.is_empty() {
            return Err(ConnectorSetupError::MissingSecret { id });
        }
        let setup = |reason: String| ConnectorSetupError::Client {
            id: id.clone(),
            reason,
        };
        let client = crate::tls::http_client(None)
            .map_err(|e| setup(e.to_string()))?
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| setup(error_chain(&e)))?;
        let shown = format!("{}{}", parsed.origin().ascii_serialization(), parsed.path());
        Ok(Self {
            id,
            url: parsed,
            shown,
            secret,
            timeout,
            client,
        })
    }

    pub(super) fn from_config(config: &ConnectorConfig) -> Result<Self, ConnectorSetupError> {
        let id = config.id.clone();
        let url = config
            .url
            .as_deref()
            .ok_or_else(|| ConnectorSetupError::MissingUrl { id: id.clone() })?;
        let secret = config
            .secret
            .clone()
            .ok_or_else(|| ConnectorSetupError::MissingSecret { id: id.clone() })?;
        Self::new(id, url, secret, config.timeout.to_std())
    }

    async fn send(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        check_action(&self.id, call, method)?;
        // The receiver compares `t` with its own wall clock, so this is the real time.
        let sent_at = SystemClock.now().timestamp();
        let body = serde_json::to_vec(&Body { call, sent_at }).map_err(|e| {
            ConnectorError::Permanent(format!(
                "webhook `{}`: cannot encode the call: {e}",
                self.id
            ))
        })?;
        let signature = sign(self.secret.expose().as_bytes(), sent_at, &body);
        let what = format!("the {} of {}", call.action, call.grant);
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, &call.idempotency_key)
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| self.request_failed(&what, e))?;

        let status = response.status();
        if status.is_success() {
            return Ok(Outcome {
                detail: format!("HTTP {}", status.as_u16()),
            });
        }
        let retry_after = retry_after(
            response.headers().get(reqwest::header::RETRY_AFTER),
            SystemClock.now(),
        );
        let excerpt = body_excerpt(response).await;
        let answered = format!(
            "webhook `{}` at {} answered {what} with HTTP {status}",
            self.id, self.shown
        );
        let answered = if excerpt.is_empty() {
            answered
        } else {
            format!("{answered}: {excerpt}")
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            Err(ConnectorError::RateLimited {
                message: format!("{answered} (will retry)"),
                retry_after,
            })
        } else if status.is_server_error() {
            Err(ConnectorError::Transient(format!(
                "{answered} (will retry)"
            )))
        } else {
            Err(ConnectorError::Permanent(answered))
        }
    }

    fn request_failed(&self, what: &str, error: reqwest::Error) -> ConnectorError {
        let error = error.without_url();
        let (id, shown) = (&self.id, &self.shown);
        if error.is_builder() {
            return ConnectorError::Permanent(format!(
                "webhook `{id}`: cannot build the request for {what}: {}",
                error_chain(&error)
            ));
        }
        let message = if error.is_timeout() {
            format!(
                "webhook `{id}` at {shown} did not answer {what} within the {:?} timeout",
                self.timeout
            )
        } else if error.is_connect() {
            format!(
                "webhook `{id}` could not connect to {shown} for {what}: {}",
                error_chain(&error)
            )
        } else {
            format!(
                "webhook `{id}` at {shown}: {what} failed: {}",
                error_chain(&error)
            )
        };
        ConnectorError::Transient(format!("{message} (will retry)"))
    }
}

impl Connector for WebhookConnector {
    fn grant<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.send(call, Action::Grant))
    }

    fn revoke<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.send(call, Action::Revoke))
    }
}

/// The longest wait a `Retry-After` is taken at: a receiver asking for more is waited a day.
const MAX_RETRY_AFTER: StdDuration = StdDuration::from_secs(86_400);

/// A `Retry-After` header's wait: seconds (`120`), or an HTTP date (`Wed, 21 Oct 2026
/// 07:28:00 GMT`) counted from `now`; at most a day. `None` when absent or unreadable.
fn retry_after(
    value: Option<&reqwest::header::HeaderValue>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<StdDuration> {
    let text = value?.to_str().ok()?.trim();
    let wait = match text.parse::<u64>() {
        Ok(seconds) => StdDuration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
            (at.with_timezone(&chrono::Utc) - now)
                .to_std()
                .unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The start of a response body, read only as far as the excerpt needs. The status decides
/// what happens; a body that cannot be read (or times out) only loses the excerpt.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > BODY_EXCERPT {
            break;
        }
    }
    truncate(String::from_utf8_lossy(&bytes).trim(), BODY_EXCERPT)
}

/// An error and its causes, which reqwest keeps out of its own `Display`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// The `X-Gatehouse-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(signature(secret, timestamp.to_string().as_bytes(), body))
    )
}

/// Checks an `X-Gatehouse-Signature` header against the raw `body`, accepting a `t` at most
/// `tolerance_secs` away from `now_unix`. The error says what was wrong, for a log line; it
/// is not meant to be shown to the sender.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: u64,
) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", v1)) => candidates.push(v1),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("the signature has no timestamp (t=)")?;
    if candidates.is_empty() {
        return Err("the signature has no v1 signature");
    }
    let sent_at: i64 = timestamp
        .parse()
        .map_err(|_| "the signature's timestamp is not a number")?;
    if now_unix.abs_diff(sent_at) > tolerance_secs {
        return Err("the signature's timestamp is too far from now");
    }
    let expected = signature(secret, timestamp.as_bytes(), body);
    let mut matched = false;
    for candidate in candidates {
        // Rotating secrets means several v1 values: compare them all.
        if let Ok(bytes) = hex::decode(candidate) {
            matched |= bool::from(bytes.ct_eq(&expected));
        }
    }
    if matched {
        Ok(())
    } else {
        Err("the signature does not match the body")
    }
}

/// HMAC-SHA256(secret, "<timestamp>.<body>").
fn signature(secret: &[u8], timestamp: &[u8], body: &[u8]) -> [u8; 32] {
    crate::hmac::hmac_sha256(secret, &[timestamp, b".", body])
}

#[cfg(test)]
mod tests;
