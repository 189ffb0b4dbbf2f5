//! Slack's HTTP mode from the outside: the real server on 127.0.0.1:0 with `[slack]` enabled
//! against the fake Slack Web API, and requests signed the way Slack signs them. Covers the
//! text flow from `/access request` to an active grant, signatures, stale and replayed
//! deliveries, and clicks from people who may not decide.

use std::sync::atomic::{AtomicU64, Ordering};

use gatehouse::slack::verify::sign;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_slack::FakeSlack;
use crate::support::{TestApp, eventually, read, spawn_app_with};

mod limits;
mod modal;
mod replay;

pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const ALICE: &str = "U01ALICE";
const BOB: &str = "U0BOB";
const CAROL: &str = "U0CAROL";
const DAN: &str = "U0DAN";

static TRIGGERS: AtomicU64 = AtomicU64::new(1);

struct Slack {
    app: TestApp,
    fake: FakeSlack,
}

/// The server with Slack on, and dan given a Slack id so his clicks reach Gatehouse.
async fn start() -> Slack {
    let fake = FakeSlack::start().await;
    let api_url = fake.api_url();
    let app = spawn_app_with(|files| {
        files.enable_slack(&api_url, SECRET);
        files.edit("directory.toml", |text| {
            text.replace("id = \"dan\"\n", "id = \"dan\"\nslack = \"U0DAN\"\n")
        });
    })
    .await;
    Slack { app, fake }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn trigger() -> String {
    format!("trigger-{}", TRIGGERS.fetch_add(1, Ordering::Relaxed))
}

/// A slash command's form body, as Slack sends it.
fn command_body(user: &str, text: &str) -> String {
    format!(
        "token=x&team_id=T0FAKE&channel_id=C0GENERAL&user_id={user}&user_name=u&command=%2Faccess&text={}&response_url=https%3A%2F%2Fhooks.slack.test%2F1&trigger_id={}",
        encode(text),
        trigger()
    )
}

/// A click on a card button, as Slack sends it.
pub fn click_body(user: &str, action_id: &str, value: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user},
        "trigger_id": trigger(),
        "channel": {"id": format!("D{user}")},
        "container": {"type": "message", "channel_id": format!("D{user}")},
        "actions": [{"action_id": action_id, "value": value, "type": "button",
                     "action_ts": format!("{}.000100", now())}],
    });
    format!("payload={}", encode(&payload.to_string()))
}

impl Slack {
    async fn post_at(
        &self,
        path: &str,
        body: &str,
        at: i64,
        signature: &str,
    ) -> (StatusCode, Value) {
        let content_type = if body.starts_with('{') {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let response = self
            .app
            .http
            .post(format!("{}{path}", self.app.base))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", at.to_string())
            .header("x-slack-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        read(response).await
    }

    async fn post(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let at = now();
        let signature = sign(SECRET.as_bytes(), at, body.as_bytes());
        self.post_at(path, body, at, &signature).await
    }

    async fn command(&self, user: &str, text: &str) -> (StatusCode, Value) {
        self.post("/slack/commands", &command_body(user, text))
            .await
    }

    async fn click(&self, user: &str, action_id: &str, value: &str) -> StatusCode {
        let (status, body) = self
            .post("/slack/interactions", &click_body(user, action_id, value))
            .await;
        assert_eq!(
            body,
            Value::String(String::new()),
            "a click is answered empty"
        );
        status
    }

    async fn request(&self, id: &str) -> Value {
        let (status, body) = self.app.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["request"].clone()
    }

    /// The state of `grant` once it is `wanted` (the outbox works in the background).
    async fn grant_state_becomes(&self, grant: &str, wanted: &str) -> Value {
        eventually(&format!("{grant} {wanted}"), || async {
            let (_, body) = self.app.get(&format!("/api/v1/grants/{grant}")).await;
            let state = body["grant"]["state"]["state"].clone();
            if state == wanted {
                Ok(state)
            } else {
                Err(format!("it is {state}"))
            }
        })
        .await
    }

    /// The ephemeral messages `user` has been shown so far, once `count` have arrived.
    async fn ephemerals_to(&self, user: &str, count: usize) -> Vec<String> {
        let what = format!("{count} ephemeral message(s) shown to {user}");
        eventually(&what, || {
            let texts: Vec<String> = self
                .fake
                .calls_to("chat.postEphemeral")
                .iter()
                .filter(|c| c.args["user"] == user)
                .map(|c| c.args["text"].as_str().unwrap_or_default().to_owned())
                .collect();
            std::future::ready((texts.len() >= count).then_some(texts))
        })
        .await
    }
}

#[tokio::test]
async fn a_typed_request_becomes_an_active_grant_after_two_clicked_approvals() {
    let slack = start().await;
    let (status, body) = slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response_type"], "ephemeral");
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("AR-1:"), "{text}");
    assert!(text.contains("sent to"), "{text}");

    assert_eq!(
        slack.click(BOB, "gatehouse.approve", "AR-1").await,
        StatusCode::OK
    );
    assert_eq!(slack.request("AR-1").await["current_stage"], 1);
    assert_eq!(
        slack.click(CAROL, "gatehouse.approve", "AR-1").await,
        StatusCode::OK
    );
    let request = slack.request("AR-1").await;
    assert_eq!(request["state"]["state"], "approved", "{request}");
    let grant = request["state"]["grant"].as_str().unwrap().to_owned();

    assert_eq!(slack.grant_state_becomes(&grant, "active").await, "active");
    let told = slack.ephemerals_to(CAROL, 1).await;
    assert!(told[0].contains("You approved AR-1"), "{told:?}");
    assert!(
        slack.fake.violations().is_empty(),
        "{:#?}",
        slack.fake.violations()
    );
}

#[tokio::test]
async fn a_privileged_request_passes_two_stages_and_a_clicked_quorum_of_two() {
    let slack = start().await;
    let (status, body) = slack
        .command(
            ALICE,
            "request prod-db admin for 2h INC-4211 primary is down",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["text"].as_str().unwrap().starts_with("AR-1:"),
        "{body}"
    );
    assert_eq!(slack.request("AR-1").await["fields"]["ticket"], "INC-4211");
    for approver in [BOB, CAROL, "U0SAM"] {
        assert_eq!(
            slack.click(approver, "gatehouse.approve", "AR-1").await,
            StatusCode::OK
        );
    }
    let request = slack.request("AR-1").await;
    assert_eq!(
        request["state"]["state"], "pending",
        "one of two security approvals: {request}"
    );
    assert_eq!(
        slack.click("U0SUE", "gatehouse.approve", "AR-1").await,
        StatusCode::OK
    );
    let request = slack.request("AR-1").await;
    assert_eq!(request["state"]["state"], "approved", "{request}");
    let approvals: Vec<&str> = request["plan"]["stages"][2]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["by"].as_str().unwrap())
        .collect();
    assert_eq!(approvals, ["sam", "sue"]);
}

#[tokio::test]
async fn forged_and_stale_requests_are_refused_with_401() {
    let slack = start().await;
    let body = command_body(ALICE, "request prod-db read for 2h fixing replica lag");
    let forged = sign(b"not-the-secret", now(), body.as_bytes());
    let (status, answer) = slack
        .post_at("/slack/commands", &body, now(), &forged)
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::UNAUTHORIZED, Value::String(String::new()))
    );

    let stale = now() - 6 * 60;
    let signature = sign(SECRET.as_bytes(), stale, body.as_bytes());
    let (status, _) = slack
        .post_at("/slack/commands", &body, stale, &signature)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for path in ["/slack/interactions", "/slack/events", "/slack/options"] {
        let (status, _) = slack.post_at(path, "payload=%7B%7D", now(), &forged).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (_, requests) = slack.app.get("/api/v1/requests").await;
    assert_eq!(requests["requests"], json!([]));
}

#[tokio::test]
async fn a_replayed_request_is_refused_with_401_and_asks_only_once() {
    let slack = start().await;
    let body = command_body(ALICE, "request prod-db read for 2h fixing replica lag");
    let at = now();
    let signature = sign(SECRET.as_bytes(), at, body.as_bytes());
    let (first, _) = slack
        .post_at("/slack/commands", &body, at, &signature)
        .await;
    let (again, _) = slack
        .post_at("/slack/commands", &body, at, &signature)
        .await;
    assert_eq!((first, again), (StatusCode::OK, StatusCode::UNAUTHORIZED));
    let (_, requests) = slack.app.get("/api/v1/requests").await;
    assert_eq!(requests["requests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_retried_event_is_acknowledged_once_more_without_acting_twice() {
    let slack = start().await;
    let event = json!({
        "type": "event_callback", "event_id": "Ev0RETRY", "team_id": "T0FAKE",
        "event": {"type": "app_home_opened", "user": ALICE, "tab": "home"},
    })
    .to_string();
    let send = |retry: Option<&'static str>| {
        let at = now();
        let signature = sign(SECRET.as_bytes(), at, event.as_bytes());
        let mut request = slack
            .app
            .http
            .post(format!("{}/slack/events", slack.app.base))
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", at.to_string())
            .header("x-slack-signature", signature)
            .body(event.clone());
        if let Some(retry) = retry {
            request = request
                .header("x-slack-retry-num", retry)
                .header("x-slack-retry-reason", "http_timeout");
        }
        request.send()
    };
    assert_eq!(send(None).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        send(Some("1")).await.unwrap().status(),
        StatusCode::OK,
        "Slack's retry is acknowledged"
    );
    assert_eq!(
        send(None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "a bare repeat is a replay"
    );
    // The retry and the replay were refused before the acknowledgement: once the first
    // delivery's publish is there, nothing else will come.
    eventually("the Home tab published", || {
        std::future::ready(!slack.fake.calls_to("views.publish").is_empty())
    })
    .await;
    assert_eq!(
        slack.fake.calls_to("views.publish").len(),
        1,
        "the Home tab was published once"
    );
}

#[tokio::test]
async fn clicks_from_a_non_approver_the_requester_and_a_double_click_decide_nothing_more() {
    let slack = start().await;
    slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    let before = slack.request("AR-1").await;

    assert_eq!(
        slack.click(DAN, "gatehouse.approve", "AR-1").await,
        StatusCode::OK
    );
    let told = slack.ephemerals_to(DAN, 1).await;
    assert!(told[0].contains("not an approver"), "{told:?}");
    assert_eq!(slack.request("AR-1").await, before);

    assert_eq!(
        slack.click(ALICE, "gatehouse.approve", "AR-1").await,
        StatusCode::OK
    );
    let told = slack.ephemerals_to(ALICE, 1).await;
    assert!(told[0].contains("you cannot approve"), "{told:?}");
    assert_eq!(slack.request("AR-1").await, before);

    slack.click(BOB, "gatehouse.approve", "AR-1").await;
    slack.click(CAROL, "gatehouse.approve", "AR-1").await;
    slack.click(CAROL, "gatehouse.approve", "AR-1").await;
    let told = slack.ephemerals_to(CAROL, 2).await;
    assert!(
        told.iter().any(|t| t.contains("already approved")),
        "{told:?}"
    );
    let request = slack.request("AR-1").await;
    assert_eq!(request["state"]["state"], "approved");
    let approvals = request["plan"]["stages"][1]["approvals"]
        .as_array()
        .unwrap();
    assert_eq!(approvals.len(), 1, "{request}");
}

#[tokio::test]
async fn help_and_an_unknown_slack_user_get_sentences() {
    let slack = start().await;
    let (status, body) = slack.command(ALICE, "help").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response_type"], "ephemeral");
    assert!(body["text"].as_str().unwrap().contains("/access"), "{body}");
    assert!(body["blocks"].as_array().is_some_and(|b| !b.is_empty()));

    let (status, body) = slack.command("U0STRANGER", "list").await;
    assert_eq!(status, StatusCode::OK);
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("does not know you yet"), "{text}");
    assert!(text.contains("U0STRANGER"), "{text}");
}

#[tokio::test]
async fn a_typo_is_explained_and_list_and_pending_show_the_request() {
    let slack = start().await;
    let (_, body) = slack.command(ALICE, "reqest prod-db read").await;
    assert!(
        body["text"].as_str().unwrap().contains("is not a command"),
        "{body}"
    );
    slack
        .command(
            ALICE,
            "request prod-db read for 2h fixing &lt;replica&gt; lag",
        )
        .await;
    let (_, mine) = slack.command(ALICE, "list").await;
    assert!(mine.to_string().contains("AR-1"), "{mine}");
    let (_, bobs) = slack.command(BOB, "pending").await;
    assert!(bobs.to_string().contains("AR-1"), "{bobs}");
    let (_, carols) = slack.command(CAROL, "pending").await;
    assert!(!carols.to_string().contains("AR-1"), "{carols}");
    let request = slack.request("AR-1").await;
    assert_eq!(request["justification"], "fixing <replica> lag");
}
