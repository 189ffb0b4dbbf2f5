//! Callbacks follow Discord's rules: 3 s to answer, once, with a type the interaction allows
//! and data within the limits of modals and autocomplete results, then 15 minutes of
//! `@original` and follow-ups on the interaction's token.

use std::time::Duration;

use serde_json::{Value, json};

use super::tests::send;
use super::{APPLICATION_ID, CHANNEL_ID, FakeDiscord, GUILD_ID, Interaction};

async fn answer(fake: &FakeDiscord, id: &str, token: &str, body: Value) -> (u16, Value) {
    send(
        fake,
        "POST",
        &format!("/interactions/{id}/{token}/callback"),
        body,
    )
    .await
}

#[tokio::test]
async fn an_interaction_is_answered_once() {
    let fake = FakeDiscord::start().await;
    let sent = fake.prepare(Interaction::command("111", "list", &[]));
    let (status, body) = answer(&fake, &sent.id, &sent.token, json!({"type": 5})).await;
    assert_eq!((status, body), (204, Value::Null));
    assert!(fake.original(&sent.token).unwrap().loading());
    let (status, body) = answer(
        &fake,
        &sent.id,
        &sent.token,
        json!({"type": 4, "data": {"content": "x"}}),
    )
    .await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(40060)));
    assert_eq!(
        body["message"],
        "Interaction has already been acknowledged."
    );
    let (status, body) = answer(&fake, "1234", &sent.token, json!({"type": 5})).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"message": "Unknown interaction", "code": 10062})
        )
    );
    assert_eq!(fake.callback(&sent.id).await, json!({"type": 5}));
    assert_eq!(
        fake.violations().len(),
        2,
        "a second answer and an unknown id are client bugs"
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_after_three_seconds_is_an_unknown_interaction() {
    let fake = FakeDiscord::start().await;
    let late = fake.prepare(Interaction::command("111", "list", &[]));
    let in_time = fake.prepare(Interaction::command("111", "list", &[]));
    tokio::time::advance(Duration::from_millis(2900)).await;
    let (status, _) = answer(&fake, &in_time.id, &in_time.token, json!({"type": 5})).await;
    assert_eq!(status, 204);
    tokio::time::advance(Duration::from_millis(200)).await;
    let (status, body) = answer(&fake, &late.id, &late.token, json!({"type": 5})).await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(10062)));
    assert!(fake.violations()[0].violations[0].contains("3 s allowed"));

    // The token's webhook lives 15 minutes from the interaction.
    let edit = format!(
        "/webhooks/{APPLICATION_ID}/{}/messages/@original",
        in_time.token
    );
    let (status, _) = send(&fake, "PATCH", &edit, json!({"content": "done"})).await;
    assert_eq!(status, 200);
    tokio::time::advance(Duration::from_secs(15 * 60)).await;
    let (status, body) = send(&fake, "PATCH", &edit, json!({"content": "later"})).await;
    assert_eq!((status, body["code"].as_u64()), (401, Some(50027)));
    assert_eq!(fake.original(&in_time.token).unwrap().content, "done");
}

#[tokio::test]
async fn each_interaction_type_takes_only_its_own_response_types() {
    let fake = FakeDiscord::start().await;
    let modal = json!({"type": 9, "data": {"custom_id": "m", "title": "Why?", "components": [
        {"type": 1, "components": [{"type": 4, "custom_id": "reason", "style": 2, "label": "Reason"}]}]}});
    let choices =
        json!({"type": 8, "data": {"choices": [{"name": "prod-db", "value": "prod-db"}]}});
    let cases = [
        (
            Interaction::modal_submit("1", "m", &[("reason", "x")]),
            modal.clone(),
            false,
        ),
        (
            Interaction::command("1", "list", &[]),
            choices.clone(),
            false,
        ),
        (
            Interaction::command("1", "list", &[]),
            json!({"type": 7, "data": {"content": "x"}}),
            false,
        ),
        (
            Interaction::command("1", "list", &[]),
            json!({"type": 1}),
            false,
        ),
        (
            Interaction::autocomplete("1", "request", &[("resource", json!("p"))], "resource"),
            json!({"type": 4, "data": {"content": "x"}}),
            false,
        ),
        (
            Interaction::modal_submit("1", "m", &[]),
            json!({"type": 6}),
            false,
        ),
        (Interaction::command("1", "request", &[]), modal, true),
        (
            Interaction::autocomplete("1", "request", &[("resource", json!("p"))], "resource"),
            choices,
            true,
        ),
        (
            Interaction::modal_submit("1", "m", &[]).on_message(CHANNEL_ID, "99"),
            json!({"type": 6}),
            true,
        ),
        (Interaction::ping(), json!({"type": 1}), true),
        (
            Interaction::command("1", "list", &[]),
            json!({"type": 11}),
            false,
        ),
    ];
    for (builder, body, accepted) in cases {
        let sent = fake.prepare(builder);
        let (status, answer) = answer(&fake, &sent.id, &sent.token, body.clone()).await;
        assert_eq!(status == 204, accepted, "{body} → {status} {answer}");
        if !accepted {
            assert_eq!(answer["code"], 50035, "{answer}");
        }
    }
}

#[tokio::test]
async fn modals_and_autocomplete_results_are_checked_against_discords_limits() {
    let fake = FakeDiscord::start().await;
    let input = |id: &str| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "style": 1, "label": "Reason"}]});
    let rows: Vec<Value> = (0..6).map(|i| input(&format!("f{i}"))).collect();
    let cases = [
        (
            json!({"custom_id": "m", "title": "t".repeat(46), "components": [input("a")]}),
            "data.title",
        ),
        (
            json!({"custom_id": "m", "title": "t", "components": rows}),
            "data.components",
        ),
        (
            json!({"custom_id": "m", "title": "t", "components": [input("a"), input("a")]}),
            "data.components.1.components.0.custom_id",
        ),
        (
            json!({"custom_id": "m", "title": "t", "components": [{"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 3, "label": "x"}]}]}),
            "data.components.0.components.0.style",
        ),
        (
            json!({"custom_id": "m", "title": "t", "components": [{"type": 1, "components": [{"type": 4, "custom_id": "a", "style": 1, "label": "x", "max_length": 4001}]}]}),
            "data.components.0.components.0.max_length",
        ),
        (
            json!({"custom_id": "m", "title": "t", "components": [{"type": 1, "components": [{"type": 2, "custom_id": "a", "style": 1, "label": "x"}]}]}),
            "data.components.0",
        ),
    ];
    for (data, path) in cases {
        let sent = fake.prepare(Interaction::command("1", "request", &[]));
        let (status, _) = answer(
            &fake,
            &sent.id,
            &sent.token,
            json!({"type": 9, "data": data}),
        )
        .await;
        assert_eq!(status, 400, "{path}");
        let last = fake.violations().pop().unwrap();
        assert!(
            last.violations[0].starts_with(&format!("{path}:")),
            "{:?}",
            last.violations
        );
    }
    let many: Vec<Value> = (0..26)
        .map(|i| json!({"name": format!("r{i}"), "value": format!("r{i}")}))
        .collect();
    for (choices, path) in [
        (json!(many), "data.choices"),
        (json!([{"name": "", "value": "x"}]), "data.choices.0.name"),
        (
            json!([{"name": "x", "value": "v".repeat(101)}]),
            "data.choices.0.value",
        ),
    ] {
        let sent = fake.prepare(Interaction::autocomplete(
            "1",
            "request",
            &[("resource", json!(""))],
            "resource",
        ));
        let (status, body) = answer(
            &fake,
            &sent.id,
            &sent.token,
            json!({"type": 8, "data": {"choices": choices}}),
        )
        .await;
        assert_eq!(status, 400);
        let mut node = &body["errors"];
        for key in path.split('.') {
            node = &node[key];
        }
        assert!(node["_errors"].is_array(), "{path}: {body}");
    }
}

#[tokio::test]
async fn followups_and_original_edits_are_kept_per_token() {
    let fake = FakeDiscord::start().await;
    let sent = fake.prepare(Interaction::command("111", "list", &[]).in_guild(GUILD_ID));
    let hook = format!("/webhooks/{APPLICATION_ID}/{}", sent.token);
    let (status, body) = send(&fake, "POST", &hook, json!({"content": "too early"})).await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(10015)));
    let (status, _) = send(
        &fake,
        "PATCH",
        &format!("{hook}/messages/@original"),
        json!({"content": "x"}),
    )
    .await;
    assert_eq!(status, 404);

    answer(
        &fake,
        &sent.id,
        &sent.token,
        json!({"type": 5, "data": {"flags": 64}}),
    )
    .await;
    let (status, _) = send(
        &fake,
        "PATCH",
        &format!("{hook}/messages/@original"),
        json!({"content": "3 pending"}),
    )
    .await;
    assert_eq!(status, 200);
    let original = fake.original(&sent.token).unwrap();
    assert!(original.ephemeral() && !original.loading() && original.content == "3 pending");
    assert_eq!(original.channel_id, CHANNEL_ID);
    let (_, first) = send(&fake, "POST", &hook, json!({"content": "one", "flags": 64})).await;
    send(&fake, "POST", &hook, json!({"embeds": [{"title": "two"}]})).await;
    let (status, _) = send(
        &fake,
        "PATCH",
        &format!("{hook}/messages/{}", first["id"].as_str().unwrap()),
        json!({"content": "one!"}),
    )
    .await;
    assert_eq!(status, 200);
    let followups = fake.followups(&sent.token);
    assert_eq!(followups.len(), 2);
    assert_eq!(
        (followups[0].content.as_str(), followups[0].ephemeral()),
        ("one!", true)
    );
    let (status, _) = send(
        &fake,
        "GET",
        &format!("{hook}/messages/@original"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &fake,
        "POST",
        &format!("/webhooks/{APPLICATION_ID}/nonsense"),
        json!({"content": "x"}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        fake.violations().len(),
        3,
        "early follow-up, early edit, unknown token"
    );
}

#[tokio::test]
async fn update_message_edits_the_clicked_card() {
    let fake = FakeDiscord::start().await;
    let (_, card) = send(
        &fake,
        "POST",
        &format!("/channels/{CHANNEL_ID}/messages"),
        super::tests::card("AR-3"),
    )
    .await;
    let id = card["id"].as_str().unwrap();
    let click =
        fake.prepare(Interaction::button("2", CHANNEL_ID, id, "approve:AR-3").in_guild(GUILD_ID));
    assert_eq!(
        click.body["message"]["components"][0]["components"][0]["custom_id"],
        "approve:AR-3"
    );
    let update = json!({"type": 7, "data": {"content": "AR-3 approved", "components": []}});
    let (status, _) = answer(&fake, &click.id, &click.token, update.clone()).await;
    assert_eq!(status, 204);
    assert_eq!(fake.edits(CHANNEL_ID, id), [update["data"].clone()]);
    assert_eq!(fake.original(&click.token).unwrap().id, id);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}
