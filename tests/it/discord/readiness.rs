//! What `/readyz` and `gatehouse_platform_connected` say about the Discord gateway: Discord is
//! counted from the moment the server answers, a command registration Discord keeps failing
//! holds nobody off the gateway (and `/readyz` says it is being retried), and an outage of the
//! gateway turns `/readyz` to 503 until serenity has a session again.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::{Rig, everyone_on_discord};
use crate::fake_discord::{Fault, GUILD_ID, Interaction, Route};
use crate::support::{TestApp, eventually_within};

/// Polls `/readyz` (for `secs` seconds at most) until `done` holds for its answer; the answer.
async fn readyz_until(
    app: &TestApp,
    secs: u64,
    what: &str,
    done: impl Fn(StatusCode, &Value) -> bool,
) -> (StatusCode, Value) {
    eventually_within(what, Duration::from_secs(secs), || async {
        let (status, body) = app.get("/readyz").await;
        if done(status, &body) {
            Ok((status, body))
        } else {
            Err(format!("/readyz says {status} {body}"))
        }
    })
    .await
}

/// `gatehouse_platform_connected` for Discord, as `/metrics` shows it.
async fn discord_gauge(app: &TestApp) -> String {
    let (_, metrics) = app.get("/metrics").await;
    let metrics = metrics.as_str().unwrap().to_owned();
    let line = metrics
        .lines()
        .find(|line| line.starts_with("gatehouse_platform_connected{platform=\"discord\"}"));
    line.unwrap_or_else(|| panic!("no Discord gauge in {metrics}"))
        .to_owned()
}

#[tokio::test]
async fn discord_counts_from_the_start_and_a_failing_registration_keeps_nobody_off_the_gateway() {
    let fake = crate::fake_discord::FakeDiscord::start().await;
    for _ in 0..3 {
        fake.fail_next(Route::BulkSetGuildApplicationCommands, Fault::ServerError);
    }
    let api_url = fake.api_url();
    let app = crate::support::spawn_app_with(|files| {
        files.enable_discord(&api_url, "gateway", &crate::fake_discord::public_key_hex());
        everyone_on_discord(files);
    })
    .await;

    let (status, body) = app.get("/readyz").await;
    let discord = &body["platforms"]["discord"];
    assert!(
        discord == "disconnected" || (discord == "connected" && status == StatusCode::OK),
        "Discord is counted as soon as the server answers: {status} {body}"
    );

    fake.wait_identified().await;
    assert!(
        fake.guild_commands(GUILD_ID).is_empty(),
        "the gateway connected while the registration was still failing"
    );
    let (_, body) = readyz_until(&app, 10, "Discord connected", |status, _| {
        status == StatusCode::OK
    })
    .await;
    assert_eq!(body["platforms"]["discord"], "connected", "{body}");
    assert_ne!(body["commands"]["discord"], "registered", "{body}");

    let (status, body) = readyz_until(&app, 20, "the command registered", |_, body| {
        body["commands"]["discord"] == "registered"
    })
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(fake.guild_commands(GUILD_ID)[0]["name"], "access");
    assert_eq!(
        fake.calls_to(Route::BulkSetGuildApplicationCommands).len(),
        4,
        "three failures, then the registration"
    );
}

#[tokio::test]
async fn readyz_follows_the_gateway_session_through_an_outage() {
    let rig = Rig::gateway().await;
    readyz_until(&rig.app, 10, "ready", |status, _| status == StatusCode::OK).await;
    assert!(discord_gauge(&rig.app).await.ends_with(" 1"));

    // Discord closes the session's connection and refuses every handshake for a while.
    rig.fake.refuse_connections(true);
    rig.fake.close_connection(4000);
    rig.fake.wait_refused(1).await;
    let (_, body) = readyz_until(&rig.app, 10, "not ready in the outage", |status, _| {
        status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert_eq!(body["platforms"]["discord"], "disconnected", "{body}");
    assert_eq!(body["store"], "ok", "{body}");
    assert!(discord_gauge(&rig.app).await.ends_with(" 0"));

    // Discord is back: serenity gets a session again, and so does /readyz.
    rig.fake.refuse_connections(false);
    let (_, body) = readyz_until(&rig.app, 40, "ready after the outage", |status, _| {
        status == StatusCode::OK
    })
    .await;
    assert_eq!(body["platforms"]["discord"], "connected", "{body}");
    assert!(discord_gauge(&rig.app).await.ends_with(" 1"));
    let answer = rig.say(Interaction::command(super::DAN, "help", &[])).await;
    assert!(!answer.is_empty(), "the bot answers on the new session");
}
