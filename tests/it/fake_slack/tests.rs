//! The fake's own tests, over plain HTTP with reqwest: it keeps state like Slack, refuses what
//! Slack refuses, records everything and serves the faults a test scripts.

use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};

use super::{APP_TOKEN, BOT_TOKEN, FakeSlack, Fault};

pub(super) fn http(timeout: Duration) -> reqwest::Client {
    gatehouse::app::install_tls_provider();
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

/// POSTs JSON `args` with `token` (none when `None`); the status and the decoded answer.
async fn call_with(
    fake: &FakeSlack,
    token: Option<&str>,
    method: &str,
    args: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http(Duration::from_secs(5))
        .post(format!("{}/{method}", fake.api_url()))
        .json(&args);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

pub(super) async fn call(fake: &FakeSlack, method: &str, args: Value) -> Value {
    call_with(fake, Some(BOT_TOKEN), method, args).await.2
}

pub(super) fn card(text: &str) -> Value {
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": "AR-12",
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "reject", "style": "danger", "value": "AR-12",
             "text": {"type": "plain_text", "text": "Reject"}}]}
    ])
}

#[tokio::test]
async fn a_posted_message_can_be_updated_and_reads_back_updated() {
    let fake = FakeSlack::start().await;
    let first = call(
        &fake,
        "chat.postMessage",
        json!({"channel": "D1", "text": "AR-12", "blocks": card("*AR-12*")}),
    )
    .await;
    let second = call(
        &fake,
        "chat.postMessage",
        json!({"channel": "D1", "text": "AR-13"}),
    )
    .await;
    assert_eq!(first["ok"], true, "{first}");
    let (ts1, ts2) = (
        first["ts"].as_str().unwrap(),
        second["ts"].as_str().unwrap(),
    );
    assert!(ts1 < ts2 && ts1.parse::<f64>().unwrap() < ts2.parse::<f64>().unwrap());

    let done =
        json!([{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@U2>"}}]);
    let updated = call(
        &fake,
        "chat.update",
        json!({"channel": "D1", "ts": ts1, "text": "approved", "blocks": done}),
    )
    .await;
    assert_eq!(updated["ok"], true, "{updated}");

    let messages = fake.messages_in("D1");
    assert_eq!(messages.len(), 2);
    assert_eq!((messages[0].ts.as_str(), messages[0].edits), (ts1, 1));
    assert_eq!(messages[0].text.as_deref(), Some("approved"));
    assert_eq!(messages[0].blocks.as_ref(), Some(&done));
    assert_eq!(messages[1].edits, 0);
    let posts = fake.calls_to("chat.postMessage");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].args["blocks"], card("*AR-12*"));
    assert!(
        posts
            .iter()
            .all(|c| c.ok() && c.violations.is_empty() && c.fault.is_none())
    );
    assert!(posts[0].at <= posts[1].at);
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn updating_an_unknown_message_fails_like_slack() {
    let fake = FakeSlack::start().await;
    let posted = call(
        &fake,
        "chat.postMessage",
        json!({"channel": "D1", "text": "x"}),
    )
    .await;
    let ts = posted["ts"].as_str().unwrap();
    let wrong_ts = call(
        &fake,
        "chat.update",
        json!({"channel": "D1", "ts": "1.000001", "text": "y"}),
    )
    .await;
    let wrong_channel = call(
        &fake,
        "chat.update",
        json!({"channel": "D2", "ts": ts, "text": "y"}),
    )
    .await;
    for answer in [wrong_ts, wrong_channel] {
        assert_eq!(answer, json!({"ok": false, "error": "message_not_found"}));
    }
    assert_eq!(
        fake.calls_to("chat.update")[0].error(),
        Some("message_not_found")
    );
    assert_eq!(fake.messages_in("D1")[0].text.as_deref(), Some("x"));
}

#[tokio::test]
async fn a_rate_limited_call_gets_429_with_retry_after_then_succeeds() {
    let fake = FakeSlack::start().await;
    fake.fail_next(
        "chat.postMessage",
        2,
        Fault::RateLimited {
            retry_after_secs: 3,
        },
    );
    let args = json!({"channel": "D1", "text": "x"});
    for _ in 0..2 {
        let (status, headers, body) =
            call_with(&fake, Some(BOT_TOKEN), "chat.postMessage", args.clone()).await;
        assert_eq!((status, body["error"].as_str()), (429, Some("ratelimited")));
        assert_eq!(headers["retry-after"], "3");
    }
    let (status, _, body) = call_with(&fake, Some(BOT_TOKEN), "chat.postMessage", args).await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)));
    let faults: Vec<_> = fake
        .calls()
        .into_iter()
        .map(|c| (c.fault, c.status))
        .collect();
    let limited = Some(Fault::RateLimited {
        retry_after_secs: 3,
    });
    assert_eq!(
        faults,
        [(limited.clone(), 429), (limited, 429), (None, 200)]
    );
    assert_eq!(
        fake.messages_in("D1").len(),
        1,
        "a refused call posts nothing"
    );
}

#[tokio::test]
async fn server_errors_timeouts_and_dropped_connections_are_served_and_change_nothing() {
    let fake = FakeSlack::start().await;
    fake.fail_next("chat.postMessage", 1, Fault::ServerError);
    fake.fail_next("chat.postMessage", 1, Fault::Timeout);
    fake.fail_next("chat.postMessage", 1, Fault::Drop);
    fake.set_slow_delay(Duration::from_secs(5));
    let client = http(Duration::from_millis(300));
    let post = || {
        client
            .post(format!("{}/chat.postMessage", fake.api_url()))
            .header(AUTHORIZATION, format!("Bearer {BOT_TOKEN}"))
            .json(&json!({"channel": "D1", "text": "x"}))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 500);
    assert!(post().await.unwrap_err().is_timeout());
    let dropped = post().await.unwrap_err();
    assert!(
        dropped.is_request() && !dropped.is_timeout() && dropped.status().is_none(),
        "{dropped:?}"
    );
    assert_eq!(post().await.unwrap().status(), 200);

    let calls = fake.calls();
    let seen: Vec<_> = calls.iter().map(|c| (c.fault.clone(), c.status)).collect();
    let expected = [
        (Some(Fault::ServerError), 500),
        (Some(Fault::Timeout), 504),
        (Some(Fault::Drop), 0),
        (None, 200),
    ];
    assert_eq!(seen, expected);
    assert_eq!(fake.messages_in("D1").len(), 1);
}

#[tokio::test]
async fn a_lost_response_posts_and_history_shows_the_message_with_its_metadata() {
    let fake = FakeSlack::start().await;
    fake.fail_next("chat.postMessage", 1, Fault::LostResponse);
    let metadata = json!({"event_type": "gatehouse_effect", "event_payload": {"key": "k1"}});
    let lost = http(Duration::from_secs(5))
        .post(format!("{}/chat.postMessage", fake.api_url()))
        .header(AUTHORIZATION, format!("Bearer {BOT_TOKEN}"))
        .json(&json!({"channel": "D1", "text": "x", "metadata": metadata}))
        .send()
        .await
        .unwrap_err();
    assert!(lost.is_request() && lost.status().is_none(), "{lost:?}");
    call(
        &fake,
        "chat.postMessage",
        json!({"channel": "D1", "text": "y"}),
    )
    .await;
    let calls = fake.calls();
    assert_eq!(calls[0].fault, Some(Fault::LostResponse));
    assert_eq!(calls[0].status, 0);
    let stored = fake.messages_in("D1");
    assert_eq!(stored.len(), 2, "the lost post was applied");
    assert_eq!(stored[0].metadata.as_ref(), Some(&metadata));

    let args = json!({"channel": "D1", "limit": 1});
    let history = call(&fake, "conversations.history", args).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(history["messages"][0]["text"], "y", "newest first");
    let args = json!({"channel": "D1", "include_all_metadata": "true"});
    let history = call(&fake, "conversations.history", args).await;
    assert_eq!(history["messages"][1]["ts"], stored[0].ts);
    assert_eq!(history["messages"][1]["metadata"], metadata);
    let history = call(&fake, "conversations.history", json!({"channel": "D1"})).await;
    assert!(history["messages"][1].get("metadata").is_none());
    assert!(fake.violations().is_empty());
}

#[tokio::test]
async fn calls_without_the_right_token_are_refused() {
    let fake = FakeSlack::start().await;
    let args = json!({"channel": "D1", "text": "x"});
    for (token, error) in [
        (None, "not_authed"),
        (Some("hunter2"), "invalid_auth"),
        (Some(APP_TOKEN), "not_allowed_token_type"),
    ] {
        let (status, _, body) = call_with(&fake, token, "chat.postMessage", args.clone()).await;
        assert_eq!((status, body), (200, json!({"ok": false, "error": error})));
    }
    let (_, _, body) = call_with(&fake, Some(BOT_TOKEN), "apps.connections.open", json!({})).await;
    assert_eq!(body["error"], "not_allowed_token_type");
    let (_, _, body) = call_with(&fake, Some(APP_TOKEN), "apps.connections.open", json!({})).await;
    assert_eq!(body["error"], "fake_socket_url_not_set");
    fake.set_socket_url("ws://127.0.0.1:1/link");
    let (_, _, body) = call_with(&fake, Some(APP_TOKEN), "apps.connections.open", json!({})).await;
    assert_eq!(body, json!({"ok": true, "url": "ws://127.0.0.1:1/link"}));
    assert!(fake.messages_in("D1").is_empty());
}

#[tokio::test]
async fn more_than_fifty_blocks_are_refused_and_the_violation_recorded() {
    let fake = FakeSlack::start().await;
    let blocks: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
    let answer = call(
        &fake,
        "chat.postMessage",
        json!({"channel": "D1", "text": "x", "blocks": blocks}),
    )
    .await;
    assert_eq!(answer["error"], "invalid_blocks");
    let violations = fake.violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(
        violations[0].violations,
        ["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]
    );
    assert_eq!(
        answer["response_metadata"]["messages"][0],
        violations[0].violations[0]
    );
    assert!(fake.messages_in("D1").is_empty());
}

#[tokio::test]
async fn a_fake_on_its_own_thread_shows_each_call_to_its_tap_and_forgets_calls_when_told() {
    let fake = FakeSlack::start_on_own_thread();
    let (seen, started) = (
        std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
        fake.started(),
    );
    let noted = seen.clone();
    fake.tap(move |call| {
        let arrived = started + call.at;
        noted.lock().unwrap().push((call.method.clone(), arrived));
    });
    let before = std::time::Instant::now();
    let answer = call(&fake, "auth.test", json!({})).await;
    assert_eq!(answer["ok"], true, "{answer}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0, "auth.test");
        assert!(seen[0].1 <= std::time::Instant::now());
    }
    assert!(started <= before);
    assert_eq!(fake.calls().len(), 1);
    fake.forget_calls();
    assert!(fake.calls().is_empty());
}
