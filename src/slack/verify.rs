//! Is this request really from Slack, and have we seen it before? [`verify`] checks Slack's
//! request signature (HMAC-SHA256 with the app's signing secret over `v0:<timestamp>:<body>`,
//! sent as `X-Slack-Signature: v0=<hex>` with `X-Slack-Request-Timestamp`), refusing
//! timestamps more than five minutes from now in either direction so that a captured request
//! cannot be replayed later. [`delivery_keys`] name one delivery, so that Slack's retries of it
//! (and any replay inside the window) can be recognised by the store's `seen` tree; the
//! [`Endpoint`] a request was sent to, not its unsigned `Content-Type`, says how its body is
//! read.
//!
//! Time is a parameter (`now_unix`): nothing here reads the clock.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;
use subtle::ConstantTimeEq;

/// `X-Slack-Signature`: `v0=` and 64 hex digits.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// `X-Slack-Request-Timestamp`: unix seconds, as text, exactly as signed.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// How far (seconds) a request's timestamp may be from now, in the past or the future.
pub const WINDOW_SECS: u64 = 5 * 60;

/// Why a request was refused. Its `Display` is for the log line; the caller answers a bare 401.
/// It never carries the presented or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no signing secret is configured; every Slack request is refused")]
    NoSecret,
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {0} header is not valid text")]
    UnreadableHeader(&'static str),
    #[error("the X-Slack-Request-Timestamp header is not unix seconds")]
    MalformedTimestamp,
    #[error("the request timestamp is {} s in the {}, outside the {WINDOW_SECS} s window",
        .skew_secs.unsigned_abs(), if *.skew_secs > 0 { "past" } else { "future" })]
    StaleTimestamp {
        /// now − timestamp: positive for an old request, negative for one from the future.
        skew_secs: i64,
    },
    #[error("the X-Slack-Signature header is not v0=<64 hex digits>")]
    MalformedSignature,
    #[error("the signature does not match the body")]
    BadSignature,
}

/// Accepts a request only if it carries a fresh timestamp and Slack's signature over exactly
/// these body bytes (before any parsing). Checks run cheapest first; the signature comparison
/// is constant-time.
pub fn verify(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), Rejection> {
    if secret.is_empty() {
        return Err(Rejection::NoSecret);
    }
    let timestamp = header(headers, TIMESTAMP_HEADER)?;
    let signature = header(headers, SIGNATURE_HEADER)?;
    let sent_at: i64 = timestamp
        .parse()
        .map_err(|_| Rejection::MalformedTimestamp)?;
    let skew_secs = now_unix.saturating_sub(sent_at);
    if skew_secs.unsigned_abs() > WINDOW_SECS {
        return Err(Rejection::StaleTimestamp { skew_secs });
    }
    let mut presented = [0u8; 32];
    signature
        .strip_prefix("v0=")
        .and_then(|hex_digits| hex::decode_to_slice(hex_digits, &mut presented).ok())
        .ok_or(Rejection::MalformedSignature)?;
    // The timestamp is signed as the header's text, not as the number it parses to.
    let expected = mac(secret, timestamp.as_bytes(), body);
    if bool::from(expected.ct_eq(&presented)) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

/// The `X-Slack-Signature` value Slack would send for `body` at `timestamp`: `v0=<hex>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp.to_string().as_bytes(), body);
    format!("v0={}", hex::encode(digest))
}

/// Where a Slack request was sent. The endpoint, never the `Content-Type` header (which is
/// not signed), says how a body is read: for dedup here and by the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/slack/commands`: a form.
    Commands,
    /// `/slack/interactions`: a form whose `payload` field holds JSON.
    Interactions,
    /// `/slack/options`: the same form, for typeahead only.
    Options,
    /// `/slack/events`: JSON.
    Events,
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

impl Endpoint {
    /// The media type Slack sends to this endpoint.
    pub fn media_type(self) -> &'static str {
        match self {
            Endpoint::Events => JSON,
            Endpoint::Commands | Endpoint::Interactions | Endpoint::Options => FORM,
        }
    }

    /// Whether `headers` declare [`Endpoint::media_type`] (parameters such as `charset`
    /// aside). Anything else is refused: a body is read one way per endpoint only.
    pub fn takes(self, headers: &HeaderMap) -> bool {
        headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(self.media_type()))
    }
}

/// Every key one delivery is remembered by; a key already remembered makes it a repeat.
/// Empty when answering the body twice is harmless (typeahead, url_verification).
/// Otherwise `signed:<SHA-256 of the body>` — the signature covers exactly these bytes and
/// the timestamp window, so a captured request counts once whatever its unsigned headers
/// say, and Slack's retries (re-signed, same body) are recognised — plus [`delivery_key`].
pub fn delivery_keys(endpoint: Endpoint, body: &[u8]) -> Vec<String> {
    if changes_nothing(endpoint, body) {
        return Vec::new();
    }
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
    let mut keys = vec![format!("signed:{digest}")];
    keys.extend(delivery_key(endpoint, body));
    keys
}

/// The dedup key of one Slack delivery by what it says, the same over HTTP and Socket Mode,
/// or `None` when there is nothing to deduplicate (url_verification, typeahead, unreadable
/// bodies):
/// - Events API (JSON): `event:<event_id>`. `X-Slack-Retry-Num` is deliberately not part of
///   the key: a retry carries the same `event_id` and must map to the same key.
/// - Interactions (form field `payload`): `block_actions:<trigger_id>:<action_ts>` (first
///   action), `view_closed:<view.id>` (no trigger there), otherwise `<type>:<trigger_id>`.
/// - Slash commands (form): `command:<trigger_id>`.
pub fn delivery_key(endpoint: Endpoint, body: &[u8]) -> Option<String> {
    match endpoint {
        Endpoint::Events => {
            let event: Value = serde_json::from_slice(body).ok()?;
            text(&event, &["event_id"]).map(|id| format!("event:{id}"))
        }
        Endpoint::Interactions => interaction_key(&interaction(body)?),
        Endpoint::Options => None,
        Endpoint::Commands => form_field(body, "trigger_id")
            .filter(|trigger| !trigger.is_empty())
            .map(|trigger| format!("command:{trigger}")),
    }
}

/// Whether acting on this body twice is harmless: typeahead answers with options, and
/// url_verification with the challenge it carries.
fn changes_nothing(endpoint: Endpoint, body: &[u8]) -> bool {
    let kind = |value: &Value| text(value, &["type"]).map(str::to_owned);
    match endpoint {
        Endpoint::Options => true,
        Endpoint::Commands => false,
        Endpoint::Interactions => {
            interaction(body).and_then(|p| kind(&p)).as_deref() == Some("block_suggestion")
        }
        Endpoint::Events => {
            let event = serde_json::from_slice::<Value>(body).ok();
            event.and_then(|e| kind(&e)).as_deref() == Some("url_verification")
        }
    }
}

/// The JSON of an interaction form's `payload` field.
fn interaction(body: &[u8]) -> Option<Value> {
    serde_json::from_str(&form_field(body, "payload")?).ok()
}

fn interaction_key(payload: &Value) -> Option<String> {
    let kind = text(payload, &["type"])?;
    match kind {
        "block_actions" => {
            let trigger = text(payload, &["trigger_id"])?;
            let action_ts = payload
                .get("actions")?
                .get(0)
                .and_then(|action| text(action, &["action_ts"]))?;
            Some(format!("block_actions:{trigger}:{action_ts}"))
        }
        "view_closed" => text(payload, &["view", "id"]).map(|id| format!("view_closed:{id}")),
        // Typeahead requests change nothing; answering one twice is harmless.
        "block_suggestion" => None,
        _ => text(payload, &["trigger_id"]).map(|trigger| format!("{kind}:{trigger}")),
    }
}

/// A non-empty string at `path` in `value`.
fn text<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(value, |at, key| at.get(key))?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// The first value of `key` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], key: &str) -> Option<String> {
    body.split(|&byte| byte == b'&').find_map(|pair| {
        let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        (percent_decode(name)? == key)
            .then(|| percent_decode(value))
            .flatten()
    })
}

fn percent_decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let mut decoded = [0u8; 1];
                hex::decode_to_slice(rest.get(..2)?, &mut decoded).ok()?;
                out.push(decoded[0]);
                rest = &rest[2..];
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Rejection> {
    headers
        .get(name)
        .ok_or(Rejection::MissingHeader(name))?
        .to_str()
        .map_err(|_| Rejection::UnreadableHeader(name))
}

/// HMAC-SHA256(secret, "v0:<timestamp>:<body>").
fn mac(secret: &[u8], timestamp: &[u8], body: &[u8]) -> [u8; 32] {
    crate::hmac::hmac_sha256(secret, &[b"v0:", timestamp, b":", body])
}

#[cfg(test)]
mod tests;
