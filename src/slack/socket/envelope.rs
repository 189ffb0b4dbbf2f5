//! One Socket Mode envelope: read from its text frame, acknowledged, deduplicated and handed
//! to the shared handlers. Slack redelivers an envelope that is not acknowledged within 3 s,
//! so envelopes whose answer is always empty (clicks, events) are acknowledged before any
//! work; those whose answer carries something (a slash command's reply, a modal's errors,
//! typeahead options) get [`ANSWER_WITHIN`] to produce it, and are acknowledged empty if
//! that passes, a slash command's reply then following by chat.postEphemeral. Repeats are
//! recognised by the envelope id and by the same delivery keys HTTP mode uses.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::slack::http::Inbound;
use crate::slack::verify::{Endpoint, delivery_key};

/// How long an answer may take before the envelope is acknowledged without it (Slack
/// allows 3 s; the rest is margin for the round trip).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// An envelope that carries work.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub envelope_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub payload: Value,
    #[serde(default)]
    pub accepts_response_payload: bool,
}

/// What a text frame is.
#[derive(Debug)]
pub enum Read {
    Hello,
    /// Slack wants us to reconnect; the reason as given (`refresh_requested`, `warning`, …).
    Disconnect(String),
    Work(Envelope),
    /// Not an envelope Gatehouse can read; logged.
    Unreadable,
}

pub fn read(text: &str) -> Read {
    let frame: Value = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(error) => {
            tracing::warn!(%error, "a Socket Mode frame that is not JSON");
            return Read::Unreadable;
        }
    };
    match frame["type"].as_str() {
        Some("hello") => Read::Hello,
        Some("disconnect") => {
            let reason = frame["reason"].as_str().unwrap_or("unknown");
            Read::Disconnect(reason.to_owned())
        }
        _ => match serde_json::from_value::<Envelope>(frame) {
            Ok(envelope) => Read::Work(envelope),
            Err(error) => {
                tracing::warn!(%error, "a Socket Mode envelope Gatehouse cannot read");
                Read::Unreadable
            }
        },
    }
}

/// Acknowledges `envelope` on `acks` and acts on it once.
pub async fn handle(inbound: Arc<Inbound>, envelope: Envelope, acks: UnboundedSender<String>) {
    let ack = |answer: Option<Value>| {
        let mut frame = json!({ "envelope_id": envelope.envelope_id });
        if let Some(answer) = answer.filter(|_| envelope.accepts_response_payload) {
            frame["payload"] = answer;
        }
        // A closed channel means the connection is gone; Slack will redeliver elsewhere.
        let _ = acks.send(frame.to_string());
    };
    let payload = envelope.payload.clone();
    match (envelope.kind.as_str(), answers(&envelope)) {
        ("slash_commands", _) => {
            let Some(first) = first(&inbound, &envelope).await else {
                return ack(Some(inbound.already_handled()));
            };
            let user = text(&payload, "user_id");
            let channel = text(&payload, "channel_id");
            let work = tokio::spawn(async move { first.slash_command(payload).await });
            match answer_in_time(work).await {
                Answer::InTime(reply) if envelope.accepts_response_payload || reply.is_none() => {
                    ack(reply)
                }
                Answer::InTime(reply) => {
                    ack(None);
                    late(&inbound, &user, &channel, reply);
                }
                Answer::Late(work) => {
                    ack(None);
                    late(&inbound, &user, &channel, work.await.ok().flatten());
                }
            }
        }
        ("interactive", true) => {
            let Some(first) = first(&inbound, &envelope).await else {
                return ack(None);
            };
            let work = tokio::spawn(async move { first.interaction(payload).await });
            match answer_in_time(work).await {
                Answer::InTime(answer) => ack(answer),
                Answer::Late(_) => {
                    ack(None);
                    tracing::warn!("an interaction's answer came too late for Slack");
                }
            }
        }
        ("interactive", false) => {
            ack(None);
            if let Some(first) = first(&inbound, &envelope).await {
                first.interaction(payload).await;
            }
        }
        ("events_api", _) => {
            ack(None);
            if let Some(first) = first(&inbound, &envelope).await {
                first.event(payload);
            }
        }
        (kind, _) => {
            tracing::debug!(kind, "a Socket Mode envelope Gatehouse does not act on");
            ack(None);
        }
    }
}

/// Whether Slack waits for this interaction's answer (a modal's errors, typeahead options);
/// the others are acknowledged before anything is done.
fn answers(envelope: &Envelope) -> bool {
    matches!(
        envelope.payload["type"].as_str(),
        Some("view_submission" | "block_suggestion")
    )
}

enum Answer {
    InTime(Option<Value>),
    Late(tokio::task::JoinHandle<Option<Value>>),
}

async fn answer_in_time(mut work: tokio::task::JoinHandle<Option<Value>>) -> Answer {
    match tokio::time::timeout(ANSWER_WITHIN, &mut work).await {
        Ok(Ok(answer)) => Answer::InTime(answer),
        Ok(Err(error)) => {
            tracing::error!(%error, "handling a Socket Mode envelope panicked");
            Answer::InTime(None)
        }
        Err(_) => Answer::Late(work),
    }
}

/// A slash command's reply that could not go with the acknowledgement.
fn late(inbound: &Arc<Inbound>, user: &str, channel: &str, reply: Option<Value>) {
    if let Some(reply) = reply {
        inbound.reply_late(user, channel, &reply);
    }
}

/// The handlers for this delivery when it is the first: neither its envelope id nor (as in
/// HTTP mode) its delivery key was seen before; `None` for a repeat. Its ids are recorded
/// with the work's commit ([`Inbound::first_delivery`]).
async fn first(inbound: &Arc<Inbound>, envelope: &Envelope) -> Option<Arc<Inbound>> {
    let mut keys = vec![format!("socket:{}", envelope.envelope_id)];
    keys.extend(http_key(envelope));
    inbound.first_delivery(keys).await
}

/// The key [`delivery_key`] gives the same delivery made over HTTP, from the body HTTP mode
/// would have received.
fn http_key(envelope: &Envelope) -> Option<String> {
    let payload = &envelope.payload;
    let (endpoint, body) = match envelope.kind.as_str() {
        "events_api" => (Endpoint::Events, payload.to_string()),
        "interactive" => (
            Endpoint::Interactions,
            format!("payload={}", encode(&payload.to_string())),
        ),
        "slash_commands" => (
            Endpoint::Commands,
            format!("trigger_id={}", encode(&text(payload, "trigger_id"))),
        ),
        _ => return None,
    };
    delivery_key(endpoint, body.as_bytes())
}

/// Percent-encodes everything but unreserved characters, as a form body would carry it.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn text(payload: &Value, key: &str) -> String {
    payload[key].as_str().unwrap_or_default().to_owned()
}

#[cfg(any(test, feature = "testing"))]
/// The `slack_socket` fuzz target (see [`crate::fuzz`]): a text frame is read as one thing,
/// and the key a delivery gets is the one HTTP mode gives the same delivery, whatever the
/// ids hold (percent-encoding them for the form body loses nothing).
pub fn fuzz_envelope(data: &[u8]) {
    let frame = String::from_utf8_lossy(data);
    let Read::Work(envelope) = read(&frame) else {
        return;
    };
    let id = |key: &str| Some(text(&envelope.payload, key)).filter(|id| !id.is_empty());
    let key = http_key(&envelope);
    match envelope.kind.as_str() {
        "slash_commands" => assert_eq!(key, id("trigger_id").map(|t| format!("command:{t}"))),
        "events_api" => assert_eq!(key, id("event_id").map(|e| format!("event:{e}"))),
        "interactive" if envelope.payload["type"] == "block_suggestion" => assert_eq!(key, None),
        "interactive" | "hello" | "disconnect" => {}
        _ => assert_eq!(key, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str, payload: Value) -> Envelope {
        Envelope {
            envelope_id: "e-1".to_owned(),
            kind: kind.to_owned(),
            payload,
            accepts_response_payload: true,
        }
    }

    #[test]
    fn deliveries_get_the_keys_http_mode_gives_them() {
        let command = envelope("slash_commands", json!({"trigger_id": "13.45 &x=y"}));
        assert_eq!(http_key(&command).as_deref(), Some("command:13.45 &x=y"));
        let event = envelope("events_api", json!({"event_id": "Ev1", "event": {}}));
        assert_eq!(http_key(&event).as_deref(), Some("event:Ev1"));
        let click = envelope(
            "interactive",
            json!({"type": "block_actions", "trigger_id": "t+1",
                   "actions": [{"action_ts": "1.5"}]}),
        );
        assert_eq!(http_key(&click).as_deref(), Some("block_actions:t+1:1.5"));
    }

    #[test]
    fn hello_disconnect_and_work_are_told_apart() {
        assert!(matches!(read(r#"{"type":"hello"}"#), Read::Hello));
        let disconnect = read(r#"{"type":"disconnect","reason":"refresh_requested"}"#);
        assert!(matches!(disconnect, Read::Disconnect(r) if r == "refresh_requested"));
        let work = read(r#"{"type":"events_api","envelope_id":"e","payload":{}}"#);
        assert!(matches!(work, Read::Work(e) if e.envelope_id == "e"));
        assert!(matches!(read("not json"), Read::Unreadable));
    }
}
