//! Every call Gatehouse makes to Discord, checked by the official conformance kit: its fake
//! Discord REST API validates each call against Discord's OpenAPI description. Gatehouse
//! runs in HTTP mode (the kit has no gateway), so each interaction's answer comes back in
//! the HTTP response; the test hands every one of those to the kit's callback endpoint too,
//! so that what Gatehouse answers is checked as strictly as what it posts. The flow: the
//! command registered, a typed request, autocomplete, two stages of clicked approvals, the
//! cards closed, a second request rejected through its modal, and a revoke.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::fake::OfficialFake;
use crate::discord::{BOB, CAROL, DAN, everyone_on_discord};
use crate::fake_discord::{FakeDiscord, Interaction, public_key_hex, sign};
use crate::support::{TestApp, read, spawn_app_with};

/// Interactions built by our fake's builders, signed, and POSTed to Gatehouse; every
/// answer is checked by the kit.
struct Client<'a> {
    app: &'a TestApp,
    kit: &'a OfficialFake,
    builder: FakeDiscord,
}

impl Client<'_> {
    async fn send(&self, interaction: Interaction) -> Value {
        let sent = self.builder.prepare(interaction);
        let body = sent.body.to_string();
        let (signature, timestamp) = sign(chrono::Utc::now().timestamp(), &body);
        let response = self
            .app
            .http
            .post(format!("{}/discord/interactions", self.app.base))
            .header("content-type", "application/json")
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", timestamp)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, answer) = read(response).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        self.kit
            .check_callback(&sent.id, &sent.token, &answer)
            .await;
        answer
    }
}

/// Whether a message with `words` was posted (`POST …/messages`).
fn posted(calls: &[Value], words: &str) -> bool {
    calls.iter().any(|c| {
        c["method"] == "POST"
            && c["path"].as_str().is_some_and(|p| p.ends_with("/messages"))
            && c["body"].to_string().contains(words)
    })
}

fn edits(calls: &[Value]) -> usize {
    calls.iter().filter(|c| c["method"] == "PATCH").count()
}

#[tokio::test]
#[ignore = "needs the conformance kit; .ci/run sets it up"]
async fn a_whole_discord_flow_makes_no_call_the_official_conformance_fake_faults() {
    let kit = OfficialFake::start().await;
    let api_url = kit.discord_api_url();
    let app = spawn_app_with(|files| {
        files.enable_discord(&api_url, "http", &public_key_hex());
        everyone_on_discord(files);
    })
    .await;
    let client = Client {
        app: &app,
        kit: &kit,
        builder: FakeDiscord::start().await,
    };
    kit.until_discord("the command registered", |c| {
        c.iter().any(|c| c["method"] == "PUT")
    })
    .await;

    let typed = Interaction::autocomplete(DAN, "request", &[("resource", json!("db"))], "resource");
    let choices = client.send(typed).await;
    assert_eq!(choices["type"], 8, "{choices}");

    let asked = Interaction::command(
        DAN,
        "request",
        &[
            ("resource", json!("staging-db")),
            ("role", json!("read")),
            ("duration", json!("2h")),
            ("reason", json!("checking a migration")),
        ],
    );
    let answer = client.send(asked).await;
    assert!(answer.to_string().contains("AR-1"), "{answer}");
    kit.until_discord("bob's card", |c| posted(c, "gatehouse.approve|AR-1"))
        .await;

    let click = |user: &str, custom_id: &str| Interaction::button(user, "1", "2", custom_id);
    client.send(click(BOB, "gatehouse.approve|AR-1")).await;
    kit.until_discord("the owners' cards", |c| {
        c.iter()
            .filter(|c| c["body"].to_string().contains("gatehouse.approve|AR-1"))
            .count()
            >= 3
    })
    .await;
    client.send(click(CAROL, "gatehouse.approve|AR-1")).await;
    let (_, body) = app.get("/api/v1/requests/AR-1").await;
    assert_eq!(body["request"]["state"]["state"], "approved", "{body}");
    let grant = body["request"]["state"]["grant"]
        .as_str()
        .unwrap()
        .to_owned();
    kit.until_discord("three cards closed and dan told", |c| {
        edits(c) >= 3 && posted(c, &grant)
    })
    .await;

    // A second request, rejected through the modal.
    let asked = Interaction::command(
        DAN,
        "request",
        &[
            ("resource", json!("staging-db")),
            ("role", json!("write")),
            ("duration", json!("1h")),
            ("reason", json!("a schema change")),
        ],
    );
    client.send(asked).await;
    kit.until_discord("bob's card for AR-2", |c| {
        posted(c, "gatehouse.reject|AR-2")
    })
    .await;
    let modal = client.send(click(BOB, "gatehouse.reject|AR-2")).await;
    assert_eq!(modal["type"], 9, "{modal}");
    let custom_id = modal["data"]["custom_id"].as_str().unwrap();
    let submitted = Interaction::modal_submit(BOB, custom_id, &[("reject.reason", "no ticket")]);
    client.send(submitted).await;
    let (_, body) = app.get("/api/v1/requests/AR-2").await;
    assert_eq!(body["request"]["state"]["state"], "rejected", "{body}");

    let (status, body) = app
        .post(
            &format!("/api/v1/grants/{grant}/revoke"),
            json!({"as": "carol", "reason": "migration checked"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    kit.until_discord("dan told his grant ended", |c| {
        posted(c, &format!("{grant} ended"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let calls = kit.discord_calls().await;
    let faulted: Vec<&Value> = calls
        .iter()
        .filter(|c| c["violations"].as_array().is_none_or(|v| !v.is_empty()))
        .collect();
    assert!(
        faulted.is_empty(),
        "{} of {} calls broke Discord's rules: {:#}",
        faulted.len(),
        calls.len(),
        Value::Array(faulted.into_iter().cloned().collect())
    );
    let callbacks = calls
        .iter()
        .filter(|c| c["path"].as_str().is_some_and(|p| p.ends_with("/callback")))
        .count();
    assert_eq!(callbacks, 7, "every answer was checked");
    eprintln!(
        "conformance: {} Discord calls, zero violations ({} edits)",
        calls.len(),
        edits(&calls)
    );
    app.stop().await;
}
