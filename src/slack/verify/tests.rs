//! Slack request signing against the official test vector, and the ways a request is refused;
//! the dedup key of each kind of Slack delivery.

use axum::http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::*;

// Slack's published vector ("Verifying requests from Slack"; python-slack-sdk's test).
const VECTOR_SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
const VECTOR_TIMESTAMP: i64 = 1531420618;
const VECTOR_BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const VECTOR_SIGNATURE: &str =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

fn signed_headers(timestamp: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).unwrap());
    headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
    headers
}

fn vector_headers() -> HeaderMap {
    signed_headers(&VECTOR_TIMESTAMP.to_string(), VECTOR_SIGNATURE)
}

#[test]
fn the_official_vector_is_signed_and_accepted() {
    assert_eq!(
        sign(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY),
        VECTOR_SIGNATURE
    );
    let verdict = verify(
        VECTOR_SECRET,
        &vector_headers(),
        VECTOR_BODY,
        VECTOR_TIMESTAMP + 10,
    );
    assert_eq!(verdict, Ok(()));
}

#[test]
fn a_forged_signature_is_refused() {
    let forged = sign(b"not-the-secret", VECTOR_TIMESTAMP, VECTOR_BODY);
    let headers = signed_headers(&VECTOR_TIMESTAMP.to_string(), &forged);
    let verdict = verify(VECTOR_SECRET, &headers, VECTOR_BODY, VECTOR_TIMESTAMP);
    assert_eq!(verdict, Err(Rejection::BadSignature));
}

#[test]
fn a_modified_body_is_refused() {
    let body = String::from_utf8(VECTOR_BODY.to_vec())
        .unwrap()
        .replace("user_id=U2CERLKJA", "user_id=U0ADMIN00");
    let verdict = verify(
        VECTOR_SECRET,
        &vector_headers(),
        body.as_bytes(),
        VECTOR_TIMESTAMP,
    );
    assert_eq!(verdict, Err(Rejection::BadSignature));
}

#[test]
fn a_six_minute_old_request_is_refused_as_stale() {
    let now = VECTOR_TIMESTAMP + 6 * 60;
    let verdict = verify(VECTOR_SECRET, &vector_headers(), VECTOR_BODY, now);
    assert_eq!(verdict, Err(Rejection::StaleTimestamp { skew_secs: 360 }));
    assert!(
        verdict
            .unwrap_err()
            .to_string()
            .contains("360 s in the past")
    );
}

#[test]
fn the_window_is_five_minutes_inclusive() {
    let edge = VECTOR_TIMESTAMP + 300;
    assert_eq!(
        verify(VECTOR_SECRET, &vector_headers(), VECTOR_BODY, edge),
        Ok(())
    );
    let verdict = verify(VECTOR_SECRET, &vector_headers(), VECTOR_BODY, edge + 1);
    assert_eq!(verdict, Err(Rejection::StaleTimestamp { skew_secs: 301 }));
}

#[test]
fn a_timestamp_beyond_the_window_in_the_future_is_refused() {
    let now = VECTOR_TIMESTAMP - 301;
    let verdict = verify(VECTOR_SECRET, &vector_headers(), VECTOR_BODY, now);
    assert_eq!(verdict, Err(Rejection::StaleTimestamp { skew_secs: -301 }));
    assert!(verdict.unwrap_err().to_string().contains("in the future"));
}

#[test]
fn a_missing_header_is_named() {
    let mut headers = vector_headers();
    headers.remove(SIGNATURE_HEADER);
    let verdict = verify(VECTOR_SECRET, &headers, VECTOR_BODY, VECTOR_TIMESTAMP);
    assert_eq!(verdict, Err(Rejection::MissingHeader(SIGNATURE_HEADER)));

    let mut headers = vector_headers();
    headers.remove(TIMESTAMP_HEADER);
    let verdict = verify(VECTOR_SECRET, &headers, VECTOR_BODY, VECTOR_TIMESTAMP);
    assert_eq!(verdict, Err(Rejection::MissingHeader(TIMESTAMP_HEADER)));
}

#[test]
fn a_non_numeric_timestamp_is_refused() {
    let headers = signed_headers("yesterday", VECTOR_SIGNATURE);
    let verdict = verify(VECTOR_SECRET, &headers, VECTOR_BODY, VECTOR_TIMESTAMP);
    assert_eq!(verdict, Err(Rejection::MalformedTimestamp));
}

#[test]
fn a_signature_without_v0_or_hex_is_refused_as_malformed() {
    let bare_hex = VECTOR_SIGNATURE.trim_start_matches("v0=");
    for signature in [bare_hex, "v1=00", "v0=zz", "v0="] {
        let headers = signed_headers(&VECTOR_TIMESTAMP.to_string(), signature);
        let verdict = verify(VECTOR_SECRET, &headers, VECTOR_BODY, VECTOR_TIMESTAMP);
        assert_eq!(verdict, Err(Rejection::MalformedSignature), "{signature}");
    }
}

#[test]
fn an_empty_secret_refuses_even_a_matching_signature() {
    let signature = sign(b"", VECTOR_TIMESTAMP, VECTOR_BODY);
    let headers = signed_headers(&VECTOR_TIMESTAMP.to_string(), &signature);
    let verdict = verify(b"", &headers, VECTOR_BODY, VECTOR_TIMESTAMP);
    assert_eq!(verdict, Err(Rejection::NoSecret));
}

#[test]
fn the_signature_never_appears_in_the_log_line() {
    let forged = sign(b"x", VECTOR_TIMESTAMP, VECTOR_BODY);
    let headers = signed_headers(&VECTOR_TIMESTAMP.to_string(), &forged);
    let rejection = verify(VECTOR_SECRET, &headers, VECTOR_BODY, VECTOR_TIMESTAMP).unwrap_err();
    let line = format!("{rejection} {rejection:?}");
    assert!(!line.contains(&forged[3..13]) && !line.contains(&VECTOR_SIGNATURE[3..13]));
}

// ---- delivery keys ----

fn content_type(value: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
    headers
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let encode = |text: &str| {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (byte as char).to_string()
                }
                b' ' => "+".to_owned(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    let pairs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    pairs.join("&").into_bytes()
}

fn event_callback(event_id: &str) -> Vec<u8> {
    json!({
        "token": "", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event": {"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home"},
        "event_id": event_id, "event_time": 1_700_000_000
    })
    .to_string()
    .into_bytes()
}

#[test]
fn an_events_api_retry_has_the_same_key_as_the_first_delivery() {
    let first = delivery_key(Endpoint::Events, &event_callback("Ev01"));
    assert_eq!(first.as_deref(), Some("event:Ev01"));
    let other = delivery_key(Endpoint::Events, &event_callback("Ev02"));
    assert_ne!(other, first);
}

#[test]
fn url_verification_has_no_delivery_key() {
    let body = br#"{"token":"t","challenge":"abc","type":"url_verification"}"#;
    assert_eq!(delivery_key(Endpoint::Events, body), None);
}

#[test]
fn a_slash_command_is_keyed_by_its_trigger() {
    let body = form(&[
        ("command", "/access"),
        ("text", "request prod-db admin for 2h"),
        ("user_id", "U1"),
        ("trigger_id", "398738663015.47445629121.803a0bc887"),
    ]);
    let key = delivery_key(Endpoint::Commands, &body);
    assert_eq!(
        key.as_deref(),
        Some("command:398738663015.47445629121.803a0bc887")
    );
    assert_eq!(
        delivery_key(Endpoint::Commands, VECTOR_BODY).as_deref(),
        Some("command:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    );
}

#[test]
fn a_button_click_is_keyed_by_trigger_and_action_time() {
    let payload = json!({
        "type": "block_actions", "user": {"id": "U2", "username": "bob", "team_id": "T1"},
        "api_app_id": "A1", "token": "", "trigger_id": "111.222.abc",
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": "D9"},
        "actions": [{"action_id": "approve", "block_id": "b", "value": "AR-12",
                     "type": "button", "action_ts": "1700000001.000200"}]
    });
    let body = form(&[("payload", &payload.to_string())]);
    let key = delivery_key(Endpoint::Interactions, &body);
    assert_eq!(
        key.as_deref(),
        Some("block_actions:111.222.abc:1700000001.000200")
    );
}

#[test]
fn view_submissions_and_closes_have_their_own_keys() {
    let submission = json!({"type": "view_submission", "trigger_id": "333.444.def",
        "user": {"id": "U1"}, "view": {"id": "V1", "callback_id": "request", "hash": "h"}});
    let closed = json!({"type": "view_closed", "user": {"id": "U1"}, "view": {"id": "V1"}});
    let suggestion = json!({"type": "block_suggestion", "value": "prod", "action_id": "resource"});
    let key = |p: &Value| {
        delivery_key(
            Endpoint::Interactions,
            &form(&[("payload", &p.to_string())]),
        )
    };
    assert_eq!(
        key(&submission).as_deref(),
        Some("view_submission:333.444.def")
    );
    assert_eq!(key(&closed).as_deref(), Some("view_closed:V1"));
    assert_eq!(key(&suggestion), None);
}

#[test]
fn payloads_with_empty_ids_have_no_key() {
    let payload = json!({"type": "block_actions", "trigger_id": "",
        "actions": [{"action_ts": ""}]});
    let body = form(&[("payload", &payload.to_string())]);
    assert_eq!(delivery_key(Endpoint::Interactions, &body), None);
    assert_eq!(delivery_key(Endpoint::Interactions, b"payload=%ZZ"), None);
    assert_eq!(delivery_key(Endpoint::Interactions, b""), None);
}

#[test]
fn a_body_is_read_the_way_its_endpoint_reads_it_and_no_other() {
    let event = event_callback("Ev01");
    let command = form(&[("user_id", "U1"), ("trigger_id", "111.222.abc")]);
    assert_eq!(delivery_key(Endpoint::Commands, &event), None);
    assert_eq!(delivery_key(Endpoint::Events, &command), None);
    assert_eq!(delivery_key(Endpoint::Interactions, &command), None);
}

#[test]
fn every_signed_body_that_acts_is_also_remembered_by_its_digest() {
    let command = form(&[("user_id", "U1"), ("trigger_id", "111.222.abc")]);
    let keys = delivery_keys(Endpoint::Commands, &command);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].starts_with("signed:") && keys[0].len() == "signed:".len() + 64);
    assert_eq!(keys[1], "command:111.222.abc");
    assert_eq!(
        delivery_keys(Endpoint::Commands, &command),
        keys,
        "same body, same keys"
    );

    // A body nothing can be read from acts on nothing, but it is still counted once.
    let unreadable = delivery_keys(Endpoint::Commands, b"text=no+trigger");
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert_ne!(unreadable[0], keys[0]);
    assert_eq!(
        delivery_keys(Endpoint::Events, &event_callback("Ev01")).len(),
        2
    );
}

#[test]
fn typeahead_and_url_verification_are_never_remembered() {
    let suggestion = json!({"type": "block_suggestion", "value": "prod", "action_id": "resource"});
    let body = form(&[("payload", &suggestion.to_string())]);
    assert_eq!(
        delivery_keys(Endpoint::Options, &body),
        Vec::<String>::new()
    );
    assert_eq!(
        delivery_keys(Endpoint::Interactions, &body),
        Vec::<String>::new()
    );
    let challenge = br#"{"token":"t","challenge":"abc","type":"url_verification"}"#;
    assert_eq!(
        delivery_keys(Endpoint::Events, challenge),
        Vec::<String>::new()
    );
}

#[test]
fn an_endpoint_takes_only_the_media_type_slack_sends_it() {
    let form_type = "application/x-www-form-urlencoded";
    for endpoint in [
        Endpoint::Commands,
        Endpoint::Interactions,
        Endpoint::Options,
    ] {
        assert!(endpoint.takes(&content_type(form_type)), "{endpoint:?}");
        assert!(endpoint.takes(&content_type(
            "Application/X-WWW-Form-URLEncoded; charset=utf-8"
        )));
        assert!(
            !endpoint.takes(&content_type("application/json")),
            "{endpoint:?}"
        );
        assert!(!endpoint.takes(&HeaderMap::new()), "{endpoint:?}");
    }
    assert!(Endpoint::Events.takes(&content_type("application/json")));
    assert!(Endpoint::Events.takes(&content_type("application/json; charset=utf-8")));
    for other in [form_type, "text/plain", "application/jsonx", ""] {
        assert!(!Endpoint::Events.takes(&content_type(other)), "{other:?}");
    }
}
