//! Requests to the real server signed the way Slack signs them: slash commands, button
//! clicks and modal submissions.

use std::sync::atomic::{AtomicU64, Ordering};

use gatehouse::slack::verify::sign;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, read};

static TRIGGERS: AtomicU64 = AtomicU64::new(1);

fn trigger() -> String {
    format!(
        "13345224609.{}.conformance",
        TRIGGERS.fetch_add(1, Ordering::Relaxed)
    )
}

fn encode(text: &str) -> String {
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

pub struct Signed<'a> {
    pub app: &'a TestApp,
    pub secret: &'a str,
    /// Where Slack would have Gatehouse answer later: the fake's `response_url` endpoint.
    pub response_url: String,
}

impl Signed<'_> {
    async fn post(&self, path: &str, body: String) -> (StatusCode, Value) {
        let at = chrono::Utc::now().timestamp();
        let response = self
            .app
            .http
            .post(format!("{}{path}", self.app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", at.to_string())
            .header(
                "x-slack-signature",
                sign(self.secret.as_bytes(), at, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    /// `/access <text>` typed by `user`.
    pub async fn command(&self, user: &str, text: &str) -> (StatusCode, Value) {
        let body = format!(
            "token=x&team_id=T0FAKE&team_domain=fake&channel_id=C0GENERAL&channel_name=general\
             &user_id={user}&user_name=u&command=%2Faccess&text={}&api_app_id=A0GATE\
             &response_url={}&trigger_id={}",
            encode(text),
            encode(&self.response_url),
            trigger()
        );
        self.post("/slack/commands", body).await
    }

    async fn interact(&self, payload: Value) -> (StatusCode, Value) {
        let body = format!("payload={}", encode(&payload.to_string()));
        self.post("/slack/interactions", body).await
    }

    /// `user` clicks button `action_id` (value `value`) on a card in their DMs.
    pub async fn click(&self, user: &str, action_id: &str, value: &str) {
        let now = chrono::Utc::now().timestamp();
        let payload = json!({
            "type": "block_actions",
            "user": {"id": user},
            "api_app_id": "A0GATE",
            "team": {"id": "T0FAKE"},
            "trigger_id": trigger(),
            "response_url": self.response_url,
            "channel": {"id": format!("D{user}")},
            "container": {"type": "message", "channel_id": format!("D{user}"),
                          "message_ts": format!("{now}.000100")},
            "actions": [{"action_id": action_id, "block_id": "decide", "value": value,
                         "type": "button", "action_ts": format!("{now}.000200")}],
        });
        let answer = self.interact(payload).await;
        assert_eq!(
            answer,
            (StatusCode::OK, Value::String(String::new())),
            "{user} clicking {action_id} on {value}"
        );
    }

    /// `user` submits modal `callback_id` with `values`.
    pub async fn submit(&self, user: &str, callback_id: &str, metadata: &str, values: Value) {
        let payload = json!({
            "type": "view_submission",
            "user": {"id": user},
            "api_app_id": "A0GATE",
            "team": {"id": "T0FAKE"},
            "trigger_id": trigger(),
            "view": {"id": "V0CONFORM", "callback_id": callback_id,
                     "private_metadata": metadata, "state": {"values": values}},
        });
        let answer = self.interact(payload).await;
        assert_eq!(
            answer,
            (StatusCode::OK, Value::String(String::new())),
            "{user} submitting {callback_id}"
        );
    }
}
