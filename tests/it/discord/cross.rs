//! One organisation, two chats: Slack and Discord enabled together, each person reached
//! where their `notify` says. Dan asks in Discord; bob and carol, on Slack only, decide in
//! Slack; dora, a co-owner who chose Discord, has her card there. The decision taken in
//! Slack reaches dan in Discord, and every card on both platforms ends up closed.

use gatehouse::slack::verify::sign;
use serde_json::json;

use super::{DAN, DORA, Rig, buttons, eventually};
use crate::fake_discord::Interaction;
use crate::fake_slack::FakeSlack;
use crate::slack_inbound::{SECRET, click_body, now};

#[tokio::test]
async fn a_request_made_in_discord_is_decided_in_slack_and_both_sides_are_updated() {
    let slack = FakeSlack::start().await;
    let slack_api = slack.api_url();
    let rig = Rig::start("gateway", |files| {
        files.enable_slack(&slack_api, SECRET);
        files.edit("directory.toml", |text| {
            text.replace(
                "id = \"dora\"\n",
                &format!("id = \"dora\"\ndiscord = \"{DORA}\"\nnotify = [\"discord\"]\n"),
            )
        });
    })
    .await;
    rig.fake.wait_identified().await;

    let asked = Interaction::command(
        DAN,
        "request",
        &[
            ("resource", json!("staging-db")),
            ("role", json!("read")),
            ("duration", json!("2h")),
            ("reason", json!("asked in Discord")),
        ],
    );
    let said = rig.say(asked).await;
    assert!(said.contains("AR-1"), "{said}");

    // Bob's card is in Slack, where he is; none went to Discord for him.
    let posted_to = |user: &str| {
        slack
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| {
                c.args["channel"]
                    .as_str()
                    .is_some_and(|ch| ch.contains(user))
            })
            .count()
    };
    eventually("bob's Slack card", || (posted_to("BOB") >= 1).then_some(())).await;
    let click = |user: &str| {
        let body = click_body(user, "gatehouse.approve", "AR-1");
        let at = now();
        let signature = sign(SECRET.as_bytes(), at, body.as_bytes());
        let (http, base) = (rig.app.http.clone(), rig.app.base.clone());
        async move {
            let response = http
                .post(format!("{base}/slack/interactions"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", at.to_string())
                .header("x-slack-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
        }
    };
    click("U0BOB").await;

    // Stage two: carol in Slack, dora in Discord.
    let doras = rig.card_with(DORA, "gatehouse.approve|AR-1").await;
    eventually("carol's Slack card", || {
        (posted_to("CAROL") >= 1).then_some(())
    })
    .await;
    click("U0CAROL").await;
    rig.grant_state_becomes("G-1", "active").await;

    // Dan hears of it in Discord; dora's Discord card is closed; the Slack cards too.
    rig.dm_containing(DAN, "G-1").await;
    eventually("dora's Discord card closed", || {
        let now = rig.fake.message(&doras.channel_id, &doras.id)?;
        buttons(&now).is_empty().then_some(())
    })
    .await;
    eventually("the Slack cards updated", || {
        let updates = slack.calls_to("chat.update");
        let closed = |user: &str| {
            updates.iter().any(|c| {
                c.args["channel"]
                    .as_str()
                    .is_some_and(|ch| ch.contains(user))
                    && !c.args["blocks"].to_string().contains("gatehouse.approve")
            })
        };
        (closed("BOB") && closed("CAROL")).then_some(())
    })
    .await;
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
    assert_eq!(
        rig.fake.violations().len(),
        0,
        "{:?}",
        rig.fake.violations()
    );
}
