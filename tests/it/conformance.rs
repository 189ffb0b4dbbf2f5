//! Every call Gatehouse makes to Slack, checked by the official conformance kit (kept outside
//! this repository, see `conformance/fake.rs`): its fake Slack Web API runs as a child process, validating each
//! call against Slack's published method descriptions and Block Kit as slack_sdk models it.
//! The real server drives a whole flow against it — a typed request, a refused click, four
//! clicked approvals through two stages and a quorum of two, a second request rejected
//! through its modal, and a revoke through the admin API — and not one recorded call may
//! carry a violation, not even a warning.
//!
//! Needs the kit (`GATEHOUSE_CONFORMANCE_KIT`) and a Python with its requirements.txt
//! (`GATEHOUSE_CONFORMANCE_PYTHON`): ignored under a plain `cargo test`, run by `.ci/run`.

mod discord;
mod fake;
mod signed;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::spawn_app_with;
use fake::{OfficialFake, is, method};
use signed::Signed;

const SECRET: &str = "conformance-signing-secret-0123";
const ALICE: &str = "U01ALICE";

/// Gatehouse's answer to a slash command: ephemeral, and its text.
fn ephemeral_text(answer: &(StatusCode, Value)) -> &str {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::OK, "{body}");
    assert_eq!(body["response_type"], "ephemeral", "{body}");
    body["text"].as_str().unwrap()
}

/// Whether `user` was sent a card with buttons for `request`.
fn card_for(calls: &[Value], user: &str, request: &str) -> bool {
    let opened = calls.iter().any(|c| is(c, "conversations.open", user));
    opened
        && calls.iter().any(|c| {
            is(c, "chat.postMessage", "gatehouse.approve") && is(c, "chat.postMessage", request)
        })
}

fn count(calls: &[Value], name: &str) -> usize {
    calls.iter().filter(|c| method(c) == name).count()
}

#[tokio::test]
#[ignore = "needs the conformance kit; .ci/run sets it up"]
async fn a_whole_slack_flow_makes_no_call_the_official_conformance_fake_faults() {
    let fake = OfficialFake::start().await;
    let api_url = fake.api_url();
    let app = spawn_app_with(|files| files.enable_slack(&api_url, SECRET)).await;
    let slack = Signed {
        app: &app,
        secret: SECRET,
        response_url: fake.response_url(),
    };

    // Alice asks in text; bob, her manager, gets the first card.
    let answer = slack
        .command(
            ALICE,
            "request prod-db admin for 2h INC-4211 fixing replica lag",
        )
        .await;
    let text = ephemeral_text(&answer);
    assert!(text.starts_with("AR-1:"), "{text}");
    fake.until("bob's card for AR-1", |c| card_for(c, "U0BOB", "AR-1"))
        .await;

    // Finn may not decide: he is told so, ephemerally, and nothing changes.
    slack.click("U0FINN", "gatehouse.approve", "AR-1").await;
    fake.until("finn's refusal", |c| {
        c.iter().any(|c| is(c, "chat.postEphemeral", "U0FINN"))
    })
    .await;
    let (_, body) = app.get("/api/v1/requests/AR-1").await;
    assert_eq!(body["request"]["current_stage"], 0, "{body}");

    // Manager, owner, then the security quorum of two.
    slack.click("U0BOB", "gatehouse.approve", "AR-1").await;
    fake.until("carol's card", |c| card_for(c, "U0CAROL", "AR-1"))
        .await;
    slack.click("U0CAROL", "gatehouse.approve", "AR-1").await;
    fake.until("sam's and sue's cards", |c| {
        card_for(c, "U0SAM", "AR-1") && card_for(c, "U0SUE", "AR-1")
    })
    .await;
    slack.click("U0SAM", "gatehouse.approve", "AR-1").await;
    slack.click("U0SUE", "gatehouse.approve", "AR-1").await;
    let (_, body) = app.get("/api/v1/requests/AR-1").await;
    assert_eq!(body["request"]["state"]["state"], "approved", "{body}");
    let grant = body["request"]["state"]["grant"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.until("alice told AR-1 is approved, and the security alert", |c| {
        c.iter().any(|c| is(c, "chat.postMessage", "AR-1 approved"))
            && c.iter().any(|c| is(c, "chat.postMessage", "C0SECURITY"))
    })
    .await;

    // A second request, rejected through the Reject modal.
    let answer = slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    assert!(ephemeral_text(&answer).starts_with("AR-2:"), "{answer:?}");
    fake.until("bob's card for AR-2", |c| {
        c.iter().any(|c| {
            is(c, "chat.postMessage", "gatehouse.reject") && is(c, "chat.postMessage", "AR-2")
        })
    })
    .await;
    slack.click("U0BOB", "gatehouse.reject", "AR-2").await;
    fake.until("the reject modal", |c| {
        c.iter().any(|c| is(c, "views.open", "AR-2"))
    })
    .await;
    let reason =
        json!({"reason": {"reject.reason": {"type": "plain_text_input", "value": "no ticket"}}});
    slack
        .submit("U0BOB", "gatehouse.reject", "AR-2", reason)
        .await;
    let (_, body) = app.get("/api/v1/requests/AR-2").await;
    assert_eq!(body["request"]["state"]["state"], "rejected", "{body}");
    fake.until("alice told AR-2 is rejected", |c| {
        c.iter().any(|c| is(c, "chat.postMessage", "AR-2 rejected"))
    })
    .await;

    // Carol, an owner of prod-db, revokes the grant through the admin API.
    let (status, body) = app
        .post(
            &format!("/api/v1/grants/{grant}/revoke"),
            json!({"as": "carol", "reason": "replica lag fixed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    fake.until("alice told her grant ended", |c| {
        c.iter()
            .any(|c| is(c, "chat.postMessage", &format!("{grant} ended")))
    })
    .await;
    fake.settle(Duration::from_millis(500)).await;

    let logged = fake.logged();
    assert_eq!(
        logged.len(),
        fake.calls().await.len() + logged.iter().filter(|c| c["platform"] != "slack").count(),
        "the log and GET /__calls disagree"
    );
    let faulted: Vec<&Value> = logged
        .iter()
        .filter(|c| c["violations"].as_array().is_none_or(|v| !v.is_empty()))
        .collect();
    assert!(
        faulted.is_empty(),
        "{} of {} calls broke Slack's rules: {:#}",
        faulted.len(),
        logged.len(),
        Value::Array(faulted.into_iter().cloned().collect())
    );
    assert!(
        logged.iter().all(|c| c["platform"] != "discord"),
        "Discord is off, yet was called"
    );

    let calls = fake.calls().await;
    let methods: BTreeSet<&str> = calls.iter().map(method).collect();
    let tally: Vec<String> = methods
        .iter()
        .map(|m| format!("{m} ×{}", count(&calls, m)))
        .collect();
    eprintln!(
        "conformance: {} calls, zero violations: {}",
        logged.len(),
        tally.join(", ")
    );
    for expected in [
        "conversations.open",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "views.open",
    ] {
        assert!(
            methods.contains(expected),
            "{expected} never called: {methods:?}"
        );
    }
    // Seven cards for AR-1 (bob; carol, dora; sam, sue, sid) and bob's for AR-2, each
    // closed by chat.update at least once.
    assert!(count(&calls, "chat.update") >= 8, "{methods:?}");
    let (_, body) = app.get(&format!("/api/v1/grants/{grant}")).await;
    assert_eq!(body["grant"]["state"]["state"], "revoked", "{body}");
    app.stop().await;
}
