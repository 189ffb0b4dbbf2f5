//! The fake's own tests, continued: Block Kit rules, form bodies, and the methods beyond
//! posting (DMs, ephemeral messages, modals, App Home, users).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use super::tests::{call, card, http};
use super::{BOT_TOKEN, FakeSlack};

#[tokio::test]
async fn block_kit_rules_are_checked_field_by_field() {
    let fake = FakeSlack::start().await;
    let cases = [
        (
            json!({"channel": "D1", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]}),
            "invalid_blocks",
            "[ERROR] must be plain_text [json-pointer:/blocks/0/text/type]",
        ),
        (
            json!({"channel": "D1", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]}),
            "invalid_blocks",
            "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            json!({"channel": "D1", "blocks": [{"type": "section"}]}),
            "invalid_blocks",
            "[ERROR] must provide either text or fields [json-pointer:/blocks/0]",
        ),
        (
            json!({"channel": "D1", "blocks": [{"type": "actions", "elements": [{"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": ""}}]}]}),
            "invalid_blocks",
            "[ERROR] must be more than 0 characters [json-pointer:/blocks/0/elements/0/text/text]",
        ),
        (
            json!({"channel": "D1", "blocks": [{"type": "carousel"}]}),
            "invalid_blocks",
            "[ERROR] unsupported block type: carousel [json-pointer:/blocks/0/type]",
        ),
        (
            json!({"text": "no channel"}),
            "invalid_arguments",
            "[ERROR] missing required field: channel",
        ),
        (
            json!({"channel": "D1"}),
            "no_text",
            "[ERROR] one of text, blocks or attachments is required",
        ),
    ];
    for (args, error, line) in cases {
        let answer = call(&fake, "chat.postMessage", args.clone()).await;
        assert_eq!(answer["error"], error, "{args}");
        assert_eq!(answer["response_metadata"]["messages"][0], line, "{args}");
    }
    assert_eq!(fake.violations().len(), 7);
}

/// A form body with `blocks` as JSON text, the way Slack's older clients post.
#[tokio::test]
async fn form_bodies_are_accepted_and_recorded_as_json() {
    let fake = FakeSlack::start().await;
    let body = format!(
        "channel=U7&text=hello+there&blocks={}",
        encode(&card("AR-1").to_string())
    );
    let answer: Value = http(Duration::from_secs(5))
        .post(format!("{}/chat.postMessage", fake.api_url()))
        .header(AUTHORIZATION, format!("Bearer {BOT_TOKEN}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["channel"], FakeSlack::dm_channel("U7"), "{answer}");
    let recorded = &fake.calls_to("chat.postMessage")[0];
    assert_eq!(recorded.args["blocks"], card("AR-1"));
    assert_eq!(
        fake.messages_in(&FakeSlack::dm_channel("U7"))[0]
            .text
            .as_deref(),
        Some("hello there")
    );
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn dms_views_and_users_behave_like_slack() {
    let fake = FakeSlack::start().await;
    let dm = call(&fake, "conversations.open", json!({"users": "U1"})).await;
    assert_eq!(dm["channel"]["id"], FakeSlack::dm_channel("U1"));
    let ephemeral = call(
        &fake,
        "chat.postEphemeral",
        json!({"channel": "C1", "user": "U1", "text": "only you"}),
    )
    .await;
    assert_eq!(ephemeral["ok"], true);

    let modal = json!({"type": "modal", "callback_id": "request", "title": {"type": "plain_text", "text": "Request access"},
        "blocks": [{"type": "input", "block_id": "why", "label": {"type": "plain_text", "text": "Why?"},
                    "element": {"type": "plain_text_input", "action_id": "why"}}]});
    let refused = call(
        &fake,
        "views.open",
        json!({"trigger_id": "1.2.3", "view": modal}),
    )
    .await;
    assert_eq!(
        refused["error"], "invalid_arguments",
        "an input block needs a submit button"
    );
    let mut modal = modal;
    modal["submit"] = json!({"type": "plain_text", "text": "Ask"});
    let opened = call(
        &fake,
        "views.open",
        json!({"trigger_id": "1.2.3", "view": modal}),
    )
    .await;
    let (id, hash) = (
        opened["view"]["id"].as_str().unwrap(),
        opened["view"]["hash"].as_str().unwrap(),
    );
    let updated = call(
        &fake,
        "views.update",
        json!({"view_id": id, "hash": hash, "view": modal}),
    )
    .await;
    assert_eq!(updated["view"]["id"], id);
    let stale = call(
        &fake,
        "views.update",
        json!({"view_id": id, "hash": hash, "view": modal}),
    )
    .await;
    assert_eq!(stale["error"], "hash_conflict");
    let gone = call(
        &fake,
        "views.update",
        json!({"view_id": "V404", "view": modal}),
    )
    .await;
    assert_eq!(gone["error"], "not_found");

    let home = json!({"type": "home", "blocks": card("your requests")});
    let published = call(
        &fake,
        "views.publish",
        json!({"user_id": "U1", "view": home}),
    )
    .await;
    assert_eq!(published["ok"], true, "{published}");
    assert_eq!(
        fake.home_view("U1").unwrap()["blocks"],
        card("your requests")
    );

    assert_eq!(
        call(&fake, "users.info", json!({"user": "U1"})).await["error"],
        "user_not_found"
    );
    fake.add_user(json!({"id": "U1", "name": "alice", "profile": {"email": "alice@example.com"}}));
    let user = call(&fake, "users.info", json!({"user": "U1"})).await;
    assert_eq!(user["user"]["profile"]["email"], "alice@example.com");
    assert_eq!(
        call(&fake, "chat.postMesage", json!({})).await["error"],
        "unknown_method"
    );
}
