//! The webhook connector against a real receiver on 127.0.0.1:0 that verifies every
//! signature with [`verify`], and the signature scheme itself.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;

use super::*;
use crate::connector::tests::sample_call;

const SECRET: &str = "whsec-test-0123456789";

/// What the receiver saw of one accepted request.
#[derive(Clone, Debug)]
struct Seen {
    body: serde_json::Value,
    idempotency_key: String,
    content_type: String,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn hook(
    State(receiver): State<Receiver>,
    Path(behaviour): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, String) {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = SystemClock.now().timestamp();
    if let Err(why) = verify(SECRET.as_bytes(), &text(SIGNATURE_HEADER), &body, now, 300) {
        return (StatusCode::UNAUTHORIZED, HeaderMap::new(), why.to_owned());
    }
    receiver.seen.lock().unwrap().push(Seen {
        body: serde_json::from_slice(&body).unwrap(),
        idempotency_key: text(IDEMPOTENCY_HEADER),
        content_type: text(header::CONTENT_TYPE.as_str()),
    });
    let mut answer_headers = HeaderMap::new();
    let (status, answer) = match behaviour.as_str() {
        "ok" => (StatusCode::OK, "granted".to_owned()),
        "fail" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "database is down".to_owned(),
        ),
        "busy" => (StatusCode::TOO_MANY_REQUESTS, String::new()),
        "busy-for-a-while" => {
            answer_headers.insert(header::RETRY_AFTER, "7".parse().unwrap());
            (StatusCode::TOO_MANY_REQUESTS, "slow down".to_owned())
        }
        "refuse" => (
            StatusCode::BAD_REQUEST,
            "unknown role admin on prod-db".to_owned(),
        ),
        "ramble" => (StatusCode::UNPROCESSABLE_ENTITY, "x".repeat(5000)),
        "moved" => {
            answer_headers.insert(header::LOCATION, "/hooks/ok".parse().unwrap());
            (StatusCode::TEMPORARY_REDIRECT, String::new())
        }
        "slow" => {
            tokio::time::sleep(StdDuration::from_secs(3)).await;
            (StatusCode::OK, "late".to_owned())
        }
        other => (StatusCode::NOT_FOUND, format!("no behaviour {other}")),
    };
    (status, answer_headers, answer)
}

/// A receiver on a free local port; the base url to reach it.
async fn receiver() -> (String, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/hooks/{behaviour}", post(hook))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), receiver)
}

fn webhook(url: &str, secret: &str, timeout: StdDuration) -> WebhookConnector {
    WebhookConnector::new("hook".into(), url, Secret::new(secret), timeout).unwrap()
}

async fn grant_at(behaviour: &str) -> (Result<Outcome, ConnectorError>, Receiver) {
    let (base, receiver) = receiver().await;
    let connector = webhook(
        &format!("{base}/hooks/{behaviour}"),
        SECRET,
        StdDuration::from_secs(5),
    );
    (connector.grant(&sample_call(Action::Grant)).await, receiver)
}

fn permanent(result: Result<Outcome, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Permanent(message)) => message,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn transient(result: Result<Outcome, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Transient(message)) => message,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_signed_grant_arrives_once_with_its_headers_and_succeeds() {
    let (result, receiver) = grant_at("ok").await;

    assert_eq!(result.unwrap().detail, "HTTP 200");
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].idempotency_key, "provision:G-7");
    assert_eq!(seen[0].content_type, "application/json");
    let body = &seen[0].body;
    assert_eq!(body["action"], "grant");
    assert_eq!(body["grant"], "G-7");
    assert_eq!(body["person"]["email"], "alice@example.com");
    assert_eq!(body["expires_at"], "2027-01-01T10:00:00Z");
    assert!(body["sent_at"].is_i64(), "{body}");
}

#[tokio::test]
async fn a_revoke_goes_to_the_same_url_with_its_own_action_and_key() {
    let (base, receiver) = receiver().await;
    let connector = webhook(
        &format!("{base}/hooks/ok"),
        SECRET,
        StdDuration::from_secs(5),
    );

    connector
        .execute(&sample_call(Action::Revoke))
        .await
        .unwrap();

    let seen = receiver.seen();
    assert_eq!(seen[0].body["action"], "revoke");
    assert_eq!(seen[0].idempotency_key, "deprovision:G-7:12");
}

#[tokio::test]
async fn a_server_error_is_transient_and_says_what_the_receiver_said() {
    let message = transient(grant_at("fail").await.0);
    assert!(message.contains("HTTP 500"), "{message}");
    assert!(message.contains("database is down"), "{message}");
}

#[tokio::test]
async fn too_many_requests_is_transient_and_carries_the_wait_asked_for() {
    let (result, _) = grant_at("busy").await;
    let Err(error @ ConnectorError::RateLimited { .. }) = result else {
        panic!("expected a 429 to be rate limited, got {result:?}")
    };
    assert!(error.is_transient());
    assert!(error.to_string().contains("HTTP 429"), "{error}");
    assert_eq!(error.retry_after(), None, "no Retry-After, no wait asked");

    let (result, _) = grant_at("busy-for-a-while").await;
    let error = result.unwrap_err();
    assert_eq!(error.retry_after(), Some(StdDuration::from_secs(7)));
    assert!(error.to_string().contains("slow down"), "{error}");
}

#[test]
fn retry_after_is_read_as_seconds_or_as_a_date_and_capped_at_a_day() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-10-21T07:28:00Z")
        .unwrap()
        .to_utc();
    let header = |text: &str| reqwest::header::HeaderValue::from_str(text).unwrap();
    assert_eq!(
        retry_after(Some(&header("120")), now),
        Some(StdDuration::from_secs(120))
    );
    assert_eq!(
        retry_after(Some(&header("Wed, 21 Oct 2026 07:29:30 GMT")), now),
        Some(StdDuration::from_secs(90))
    );
    assert_eq!(
        retry_after(Some(&header("Wed, 21 Oct 2026 07:00:00 GMT")), now),
        Some(StdDuration::ZERO),
        "a date passed asks for no wait"
    );
    assert_eq!(
        retry_after(Some(&header("9999999")), now),
        Some(StdDuration::from_secs(86_400))
    );
    assert_eq!(retry_after(Some(&header("soon")), now), None);
    assert_eq!(retry_after(None, now), None);
}

#[tokio::test]
async fn a_refusal_is_permanent_and_carries_the_response_body() {
    let message = permanent(grant_at("refuse").await.0);
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(
        message.contains("unknown role admin on prod-db"),
        "{message}"
    );
}

#[tokio::test]
async fn a_long_refusal_body_is_cut_to_one_kilobyte() {
    let message = permanent(grant_at("ramble").await.0);
    assert!(message.ends_with("… [cut]"), "{message}");
    assert!(message.len() < 1024 + 200, "{} bytes", message.len());
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_permanent() {
    let (result, receiver) = grant_at("moved").await;
    let message = permanent(result);
    assert!(message.contains("HTTP 307"), "{message}");
    assert_eq!(receiver.seen().len(), 1);
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_transient() {
    let (base, _receiver) = receiver().await;
    let connector = webhook(
        &format!("{base}/hooks/slow"),
        SECRET,
        StdDuration::from_millis(300),
    );
    let message = transient(connector.grant(&sample_call(Action::Grant)).await);
    assert!(message.contains("300ms timeout"), "{message}");
}

#[tokio::test]
async fn a_closed_port_is_transient_and_the_query_stays_out_of_the_message() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let connector = webhook(
        &format!("http://{address}/hooks?token=hunter2"),
        SECRET,
        StdDuration::from_secs(5),
    );

    let message = transient(connector.grant(&sample_call(Action::Grant)).await);

    assert!(message.contains("could not connect"), "{message}");
    assert!(
        message.contains(&format!("http://{address}/hooks")),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_receiver_with_another_secret_refuses_the_call() {
    let (base, receiver) = receiver().await;
    let connector = webhook(
        &format!("{base}/hooks/ok"),
        "not-the-secret",
        StdDuration::from_secs(5),
    );
    let message = permanent(connector.grant(&sample_call(Action::Grant)).await);
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(message.contains("does not match"), "{message}");
    assert!(receiver.seen().is_empty());
}

#[test]
fn the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() {
    // Computed independently: hmac.new(b"s3cret", b'1700000000.{"action":"grant"}', sha256)
    let header = sign(b"s3cret", 1_700_000_000, br#"{"action":"grant"}"#);
    assert_eq!(
        header,
        "t=1700000000,v1=9c8082942af3b4645bed767ed6b1441d832d2e1cb336967a416ff5a1f3a54b32"
    );
}

#[test]
fn verify_accepts_what_sign_made_within_the_tolerance() {
    let header = sign(b"s3cret", 1_000, b"{}");
    assert_eq!(verify(b"s3cret", &header, b"{}", 1_000, 300), Ok(()));
    assert_eq!(verify(b"s3cret", &header, b"{}", 1_300, 300), Ok(()));
}

#[test]
fn verify_rejects_a_tampered_body() {
    let header = sign(b"s3cret", 1_000, br#"{"role":"read"}"#);
    assert_eq!(
        verify(b"s3cret", &header, br#"{"role":"admin"}"#, 1_000, 300),
        Err("the signature does not match the body")
    );
}

#[test]
fn verify_rejects_a_wrong_secret() {
    let header = sign(b"s3cret", 1_000, b"{}");
    assert!(verify(b"other", &header, b"{}", 1_000, 300).is_err());
}

#[test]
fn verify_rejects_a_stale_or_future_timestamp() {
    let header = sign(b"s3cret", 1_000, b"{}");
    let too_far = Err("the signature's timestamp is too far from now");
    assert_eq!(verify(b"s3cret", &header, b"{}", 1_301, 300), too_far);
    assert_eq!(verify(b"s3cret", &header, b"{}", 699, 300), too_far);
}

#[test]
fn verify_rejects_a_timestamp_changed_after_signing() {
    let header = sign(b"s3cret", 1_000, b"{}").replace("t=1000", "t=1001");
    assert!(verify(b"s3cret", &header, b"{}", 1_000, 300).is_err());
}

#[test]
fn verify_accepts_any_of_several_signatures_for_secret_rotation() {
    let old = sign(b"old", 1_000, b"{}");
    let new = sign(b"new", 1_000, b"{}");
    let v1_new = new.split_once(",v1=").unwrap().1;
    let header = format!("{old},v1={v1_new}");
    assert_eq!(verify(b"new", &header, b"{}", 1_000, 300), Ok(()));
    assert_eq!(verify(b"old", &header, b"{}", 1_000, 300), Ok(()));
}

#[test]
fn verify_rejects_malformed_headers() {
    for header in ["", "v1=00", "t=1000", "t=soon,v1=00", "t=1000,v1=zz"] {
        assert!(
            verify(b"s3cret", header, b"{}", 1_000, 300).is_err(),
            "{header}"
        );
    }
}
