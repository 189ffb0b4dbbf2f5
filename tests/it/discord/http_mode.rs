//! Discord's HTTP mode: interactions POSTed to `/discord/interactions`, signed with Ed25519
//! the way Discord signs them. Only a valid, fresh, first-seen request is answered; a PING
//! gets a PONG; a command is answered in the HTTP response itself.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{BOB, DAN, Rig, everyone_on_discord};
use crate::fake_discord::{Interaction, sign};
use crate::support::read;

impl Rig {
    async fn http() -> Rig {
        Rig::start("http", everyone_on_discord).await
    }

    /// POSTs `body` with the given signature headers.
    async fn post_signed(
        &self,
        body: &str,
        signature: &str,
        timestamp: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .app
            .http
            .post(format!("{}/discord/interactions", self.app.base))
            .header("content-type", "application/json")
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", timestamp)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        read(response).await
    }

    /// Signs `body` now and POSTs it.
    async fn post_interaction(&self, body: &str) -> (StatusCode, Value) {
        let (signature, timestamp) = sign(chrono::Utc::now().timestamp(), body);
        self.post_signed(body, &signature, &timestamp).await
    }
}

#[tokio::test]
async fn a_signed_ping_gets_a_pong() {
    let rig = Rig::http().await;
    let ping = rig.fake.prepare(Interaction::ping());
    let (status, body) = rig.post_interaction(&ping.body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"type": 1}));
}

#[tokio::test]
async fn forged_stale_and_replayed_requests_are_refused_with_401() {
    let rig = Rig::http().await;
    let command = rig
        .fake
        .prepare(Interaction::command(DAN, "list", &[]))
        .body
        .to_string();
    let now = chrono::Utc::now().timestamp();

    let (signature, timestamp) = sign(now, &command);
    let forged = command.replace("list", "help");
    let (status, _) = rig.post_signed(&forged, &signature, &timestamp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a changed body");
    let (status, _) = rig
        .post_signed(&command, &"0".repeat(128), &timestamp)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a made-up signature");

    let (signature, timestamp) = sign(now - 6 * 60, &command);
    let (status, _) = rig.post_signed(&command, &signature, &timestamp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "six minutes old");

    let (signature, timestamp) = sign(now, &command);
    let (status, body) = rig.post_signed(&command, &signature, &timestamp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], 4, "{body}");
    let (status, _) = rig.post_signed(&command, &signature, &timestamp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the same request again");
}

#[tokio::test]
async fn a_command_is_answered_in_the_response_and_its_card_is_clickable() {
    let rig = Rig::http().await;
    let request = Interaction::command(
        DAN,
        "request",
        &[
            ("resource", json!("staging-db")),
            ("role", json!("read")),
            ("duration", json!("1h")),
            ("reason", json!("over HTTP")),
        ],
    );
    let sent = rig.fake.prepare(request);
    let (status, body) = rig.post_interaction(&sent.body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["flags"], 64, "{body}");
    assert!(
        body["data"]["content"].as_str().unwrap().contains("AR-1"),
        "{body}"
    );

    let card = rig.card_with(BOB, "gatehouse.approve|AR-1").await;
    let click = rig.fake.prepare(Interaction::button(
        BOB,
        &card.channel_id,
        &card.id,
        "gatehouse.approve|AR-1",
    ));
    let (status, body) = rig.post_interaction(&click.body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let said = body["data"]["content"].as_str().unwrap();
    assert!(said.contains("You approved AR-1"), "{said}");
    assert_eq!(
        rig.fake.violations().len(),
        0,
        "{:?}",
        rig.fake.violations()
    );
}

#[tokio::test]
async fn a_replay_with_other_headers_is_still_refused_since_the_id_is_signed() {
    let rig = Rig::http().await;
    let command = rig
        .fake
        .prepare(Interaction::command(DAN, "list", &[]))
        .body
        .to_string();
    let (signature, timestamp) = sign(chrono::Utc::now().timestamp(), &command);
    let (status, _) = rig.post_signed(&command, &signature, &timestamp).await;
    assert_eq!(status, StatusCode::OK);
    // What a replayer can change without breaking the signature: the unsigned headers and
    // the letter case of the signature's hex digits.
    for (content_type, signature) in [
        ("text/plain", signature.clone()),
        ("application/x-www-form-urlencoded", signature.clone()),
        ("application/json", signature.to_uppercase()),
    ] {
        let response = rig
            .app
            .http
            .post(format!("{}/discord/interactions", rig.app.base))
            .header("content-type", content_type)
            .header("x-signature-ed25519", &signature)
            .header("x-signature-timestamp", &timestamp)
            .body(command.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{content_type}"
        );
    }
}
