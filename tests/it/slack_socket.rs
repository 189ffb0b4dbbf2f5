//! Slack's Socket Mode from the outside: the real server on 127.0.0.1:0 with `[slack]` in
//! socket mode, getting its websocket URL from the fake Web API's `apps.connections.open` and
//! connecting to the fake Socket Mode server, which pushes envelopes and records the acks.
//! Covers a typed request and an approving click over the socket, acks within 3 s, a
//! redelivered envelope acting once, reconnecting after `disconnect` and after a dropped
//! connection, answering Slack's close frame when Slack closes first, and closing cleanly at
//! shutdown; and, with two replicas on PostgreSQL, an envelope Slack hands to the other
//! replica's connection acting once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_slack::FakeSlack;
use crate::fake_slack::socket::FakeSocket;
use crate::support::{TestApp, eventually, spawn_app_with};

const ALICE: &str = "U01ALICE";
const BOB: &str = "U0BOB";
const SLACK_ALLOWS: Duration = Duration::from_secs(3);

static IDS: AtomicU64 = AtomicU64::new(1);

struct Socket {
    app: TestApp,
    fake: FakeSlack,
    socket: FakeSocket,
}

/// The server in Socket Mode, connected once to the fake socket.
async fn start() -> Socket {
    start_on("").await
}

/// [`start`], with `store` (a `[store]` section) added to gatehouse.toml.
async fn start_on(store: &str) -> Socket {
    let fake = FakeSlack::start().await;
    let socket = FakeSocket::start().await;
    fake.set_socket_url(&socket.url());
    let api_url = fake.api_url();
    let app = spawn_app_with(|files| {
        files.enable_slack(&api_url, "unused-in-socket-mode");
        files.edit("gatehouse.toml", |text| {
            let http = "[slack]\nenabled = true\nmode = \"http\"\n";
            assert!(text.contains(http), "enable_slack changed");
            let socket = "[slack]\nenabled = true\nmode = \"socket\"\napp_token = \"xapp-test\"\n";
            format!("{}{store}", text.replacen(http, socket, 1))
        });
    })
    .await;
    socket.connected(1).await;
    Socket { app, fake, socket }
}

fn id(prefix: &str) -> String {
    format!("{prefix}-{}", IDS.fetch_add(1, Ordering::Relaxed))
}

/// A slash command's payload, as Socket Mode carries it (the HTTP form's fields as JSON).
fn command(user: &str, text: &str) -> Value {
    json!({
        "token": "x", "team_id": "T0FAKE", "channel_id": "C0GENERAL", "user_id": user,
        "user_name": "u", "command": "/access", "text": text,
        "response_url": "https://hooks.slack.test/1", "trigger_id": id("trigger"),
    })
}

/// A click on a card button.
fn click(user: &str, action_id: &str, value: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user},
        "trigger_id": id("trigger"),
        "channel": {"id": format!("D{user}")},
        "container": {"type": "message", "channel_id": format!("D{user}")},
        "actions": [{"action_id": action_id, "value": value, "type": "button",
                     "action_ts": format!("{}.000100", IDS.fetch_add(1, Ordering::Relaxed))}],
    })
}

impl Socket {
    /// Sends an envelope and returns its acknowledgement, checked to be within 3 s.
    async fn deliver(&self, envelope_id: &str, kind: &str, payload: Value) -> Value {
        let before = self.socket.acks_of(envelope_id, 0).await.len();
        self.socket.envelope(envelope_id, kind, payload);
        let acks = self.socket.acks_of(envelope_id, before + 1).await;
        let ack = &acks[before];
        assert!(
            ack.after < SLACK_ALLOWS,
            "acknowledged after {:?}",
            ack.after
        );
        ack.payload.clone()
    }

    async fn command(&self, user: &str, text: &str) -> Value {
        let envelope = id("env");
        self.deliver(&envelope, "slash_commands", command(user, text))
            .await
    }

    async fn request(&self, id: &str) -> Value {
        let (status, body) = self.app.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["request"].clone()
    }

    async fn requests(&self) -> usize {
        let (_, body) = self.app.get("/api/v1/requests").await;
        body["requests"].as_array().unwrap().len()
    }

    /// Polls until AR-1's current stage is `stage`.
    async fn stage_becomes(&self, stage: u64) {
        eventually(&format!("AR-1 at stage {stage}"), || async {
            let current = self.request("AR-1").await["current_stage"].clone();
            if current == stage {
                Ok(())
            } else {
                Err(format!("it is at stage {current}"))
            }
        })
        .await;
    }
}

#[tokio::test]
async fn the_bot_opens_its_socket_with_the_app_token() {
    let slack = start().await;
    let opened = slack.fake.calls_to("apps.connections.open");
    assert_eq!(opened.len(), 1);
    assert!(opened[0].ok(), "{:?}", opened[0].response);
    let (status, _) = slack.app.get("/slack/commands").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no /slack/* endpoints in socket mode"
    );
}

#[tokio::test]
async fn a_typed_request_over_the_socket_is_acknowledged_with_its_reply_within_3_s() {
    let slack = start().await;
    let reply = slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    let text = reply["text"].as_str().unwrap();
    assert!(text.starts_with("AR-1:"), "{text}");
    assert_eq!(slack.request("AR-1").await["requester"], "alice");
    assert!(
        slack.fake.violations().is_empty(),
        "{:#?}",
        slack.fake.violations()
    );
}

#[tokio::test]
async fn an_approving_click_over_the_socket_advances_the_stage() {
    let slack = start().await;
    slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    assert_eq!(slack.request("AR-1").await["current_stage"], 0);
    let envelope = id("env");
    let ack = slack
        .deliver(
            &envelope,
            "interactive",
            click(BOB, "gatehouse.approve", "AR-1"),
        )
        .await;
    assert_eq!(ack, Value::Null, "a click is acknowledged empty");
    slack.stage_becomes(1).await;
}

#[tokio::test]
async fn an_envelope_delivered_twice_acts_once() {
    let slack = start().await;
    let envelope = id("env");
    let payload = command(ALICE, "request prod-db read for 2h fixing replica lag");
    let first = slack
        .deliver(&envelope, "slash_commands", payload.clone())
        .await;
    let again = slack.deliver(&envelope, "slash_commands", payload).await;
    assert!(
        first["text"].as_str().unwrap().starts_with("AR-1:"),
        "{first}"
    );
    assert!(
        again["text"].as_str().unwrap().contains("already handled"),
        "{again}"
    );
    assert_eq!(slack.requests().await, 1);

    let click_id = id("env");
    let payload = click(BOB, "gatehouse.approve", "AR-1");
    slack
        .deliver(&click_id, "interactive", payload.clone())
        .await;
    slack.deliver(&click_id, "interactive", payload).await;
    slack.stage_becomes(1).await;
    let request = slack.request("AR-1").await;
    let approvals = request["plan"]["stages"][0]["approvals"]
        .as_array()
        .unwrap();
    assert_eq!(approvals.len(), 1, "{request}");
}

/// Several replicas on PostgreSQL each keep a socket open, and Slack hands an envelope that was
/// not acknowledged (its replica died holding it) to another connection: the other replica
/// acts on it only if the first did not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn an_envelope_redelivered_to_another_replica_acts_once() {
    let database = crate::real::postgres::Postgres::start().await;
    database.execute("CREATE DATABASE gatehouse").await;
    let store = format!(
        "\n[store]\nbackend = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:{}/gatehouse?sslmode=disable\"\n",
        database.port
    );
    let one = start_on(&store).await;
    let other = start_on(&store).await;

    let envelope = id("env");
    let payload = command(ALICE, "request prod-db read for 2h fixing replica lag");
    let first = one
        .deliver(&envelope, "slash_commands", payload.clone())
        .await;
    let again = other.deliver(&envelope, "slash_commands", payload).await;
    assert!(
        first["text"].as_str().unwrap().starts_with("AR-1:"),
        "{first}"
    );
    assert!(
        again["text"].as_str().unwrap().contains("already handled"),
        "{again}"
    );
    assert_eq!(other.requests().await, 1, "one request, seen from both");
    assert_eq!(one.requests().await, 1);

    let click_id = id("env");
    let payload = click(BOB, "gatehouse.approve", "AR-1");
    other
        .deliver(&click_id, "interactive", payload.clone())
        .await;
    one.deliver(&click_id, "interactive", payload).await;
    one.stage_becomes(1).await;
    let request = other.request("AR-1").await;
    let approvals = request["plan"]["stages"][0]["approvals"]
        .as_array()
        .unwrap();
    assert_eq!(approvals.len(), 1, "{request}");
    one.app.stop().await;
    other.app.stop().await;
}

#[tokio::test]
async fn after_disconnect_or_a_dropped_connection_the_bot_reconnects_and_keeps_working() {
    let slack = start().await;
    slack.socket.disconnect();
    slack.socket.connected(2).await;
    assert_eq!(slack.fake.calls_to("apps.connections.open").len(), 2);
    let reply = slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    assert!(
        reply["text"].as_str().unwrap().starts_with("AR-1:"),
        "{reply}"
    );

    slack.socket.drop_connection();
    slack.socket.connected(3).await;
    assert_eq!(slack.fake.calls_to("apps.connections.open").len(), 3);
    let envelope = id("env");
    slack
        .deliver(
            &envelope,
            "interactive",
            click(BOB, "gatehouse.approve", "AR-1"),
        )
        .await;
    slack.stage_becomes(1).await;
}

#[tokio::test]
async fn when_slack_closes_first_the_bot_answers_with_its_close_frame_and_comes_back() {
    let slack = start().await;
    slack.socket.close_connection(1001);
    slack.socket.connected(2).await;
    assert_eq!(
        slack.socket.closes_answered(),
        (1, 0),
        "Slack's close frame was answered (RFC 6455 §5.5.1)"
    );
    let reply = slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    assert!(
        reply["text"].as_str().unwrap().starts_with("AR-1:"),
        "{reply}"
    );
}

#[tokio::test]
async fn shutdown_closes_the_socket_cleanly() {
    let slack = start().await;
    let Socket { app, socket, .. } = slack;
    app.stop().await;
    assert_eq!(socket.clean_closes(), 1);
    assert_eq!(socket.connections(), 1);
}

/// Polls `/readyz` until it answers `status`; its body.
async fn ready_becomes(app: &TestApp, status: StatusCode) -> Value {
    eventually(&format!("/readyz to answer {status}"), || async {
        let (now, body) = app.get("/readyz").await;
        if now == status {
            Ok(body)
        } else {
            Err(format!("it answers {now} {body}"))
        }
    })
    .await
}

#[tokio::test]
async fn ready_once_slack_said_hello_and_counted_in_metrics() {
    let slack = start().await;
    let body = ready_becomes(&slack.app, StatusCode::OK).await;
    assert_eq!(body["platforms"]["slack"], "connected", "{body}");
    let (_, metrics) = slack.app.get("/metrics").await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("gatehouse_platform_connected{platform=\"slack\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_platform_calls_total{platform=\"slack\",method=\"apps.connections.open\",outcome=\"ok\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn not_ready_while_the_socket_cannot_connect() {
    let fake = FakeSlack::start().await;
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    fake.set_socket_url(&format!("ws://{}/", nowhere.local_addr().unwrap()));
    drop(nowhere);
    let api_url = fake.api_url();
    let app = spawn_app_with(|files| {
        files.enable_slack(&api_url, "unused-in-socket-mode");
        files.edit("gatehouse.toml", |text| {
            let http = "[slack]\nenabled = true\nmode = \"http\"\n";
            let socket = "[slack]\nenabled = true\nmode = \"socket\"\napp_token = \"xapp-test\"\n";
            text.replacen(http, socket, 1)
        });
    })
    .await;
    // Give it time to try (and fail) at least once.
    eventually("a try to open the socket", || {
        std::future::ready(!fake.calls_to("apps.connections.open").is_empty())
    })
    .await;
    let body = ready_becomes(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["store"], "ok", "{body}");
    assert_eq!(body["platforms"]["slack"], "disconnected", "{body}");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "alive all the same");
}
