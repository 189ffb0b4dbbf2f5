//! Interaction builders: every shape reads as serenity's `Interaction` and carries every field
//! of the examples in Discord's docs. The signing helper verifies with the public key it hands
//! out. (Callbacks are in `tests_callbacks`.)

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Value, json};
use serenity::all::{CommandDataOptionValue, Interaction as SerenityInteraction};

use super::{APPLICATION_ID, CHANNEL_ID, FakeDiscord, GUILD_ID, Interaction, public_key_hex, sign};

fn read(body: &Value) -> SerenityInteraction {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}: {body:#}"))
}

#[tokio::test]
async fn every_builder_reads_as_a_serenity_interaction() {
    let fake = FakeDiscord::start().await;
    let options = [
        ("resource", json!("prod-db")),
        ("hours", json!(2)),
        ("urgent", json!(true)),
    ];
    let command = fake.prepare(Interaction::command("111", "request", &options));
    let SerenityInteraction::Command(read_command) = read(&command.body) else {
        panic!()
    };
    assert_eq!(read_command.token, command.token);
    assert_eq!(read_command.user.id.get(), 111);
    assert!(read_command.guild_id.is_none());
    assert_eq!(
        read_command.channel_id.to_string(),
        fake.dm_channel_of("111").unwrap()
    );
    let CommandDataOptionValue::SubCommand(given) = &read_command.data.options[0].value else {
        panic!()
    };
    assert_eq!(
        (given[0].name.as_str(), given[1].value.as_i64()),
        ("resource", Some(2))
    );

    let guild = fake.prepare(Interaction::command("222", "group list", &[]).in_guild(GUILD_ID));
    let SerenityInteraction::Command(in_guild) = read(&guild.body) else {
        panic!()
    };
    assert_eq!(
        in_guild.guild_id.map(|g| g.to_string()).as_deref(),
        Some(GUILD_ID)
    );
    assert_eq!(in_guild.user.id.get(), 222, "member.user becomes the user");
    assert_eq!(in_guild.channel_id.to_string(), CHANNEL_ID);

    let typing = fake.prepare(Interaction::autocomplete(
        "111",
        "request",
        &[("resource", json!("pro"))],
        "resource",
    ));
    let SerenityInteraction::Autocomplete(auto) = read(&typing.body) else {
        panic!()
    };
    assert_eq!(auto.data.autocomplete().unwrap().value, "pro");

    let click = fake.prepare(Interaction::button(
        "111",
        CHANNEL_ID,
        "1300000000000999999",
        "approve:AR-1",
    ));
    let SerenityInteraction::Component(click) = read(&click.body) else {
        panic!()
    };
    assert_eq!(click.data.custom_id, "approve:AR-1");
    assert_eq!(click.message.id.get(), 1_300_000_000_000_999_999);

    let modal = fake.prepare(Interaction::modal_submit(
        "111",
        "request_form",
        &[("reason", "on call")],
    ));
    let SerenityInteraction::Modal(modal) = read(&modal.body) else {
        panic!()
    };
    assert_eq!(modal.data.custom_id, "request_form");
    let serenity::all::ActionRowComponent::InputText(input) =
        &modal.data.components[0].components[0]
    else {
        panic!()
    };
    assert_eq!(
        (input.custom_id.as_str(), input.value.as_deref()),
        ("reason", Some("on call"))
    );

    let named = Interaction::command("111", "", &[])
        .named("gatehouse")
        .locale("de")
        .in_channel("777");
    let named = fake.prepare(named.in_guild(GUILD_ID));
    let SerenityInteraction::Command(named) = read(&named.body) else {
        panic!()
    };
    assert_eq!(
        (named.data.name.as_str(), named.locale.as_str()),
        ("gatehouse", "de")
    );
    assert_eq!(named.channel_id.get(), 777);

    let ping = fake.prepare(Interaction::ping());
    assert!(matches!(read(&ping.body), SerenityInteraction::Ping(_)));
    assert_eq!(ping.body["application_id"], APPLICATION_ID);
    assert_ne!(command.token, guild.token);
}

/// Every key of `docs` is in `ours`, recursively through objects.
fn covers(ours: &Value, docs: &Value, at: &str) {
    let (Some(ours), Some(docs)) = (ours.as_object(), docs.as_object()) else {
        return;
    };
    for (key, value) in docs {
        let here = format!("{at}.{key}");
        let Some(mine) = ours.get(key) else {
            panic!("{here} is in Discord's example but not in the fake's interaction");
        };
        if !matches!(key.as_str(), "resolved" | "options") {
            covers(mine, value, &here);
        }
    }
}

#[tokio::test]
async fn builders_carry_every_field_of_the_docs_examples() {
    let fake = FakeDiscord::start().await;
    let guild =
        fake.prepare(Interaction::command("1", "", &[("cardname", json!("x"))]).in_guild(GUILD_ID));
    covers(
        &guild.body,
        &super::tests_rules::fixture("application-commands__02.json"),
        "",
    );
    // A user command: all but its data (target_id, resolved), which a slash command lacks.
    let mut user_command = super::tests_rules::fixture("application-commands__04.json");
    user_command.as_object_mut().unwrap().remove("data");
    covers(&guild.body, &user_command, "");
    let auto = fake.prepare(Interaction::autocomplete(
        "1",
        "",
        &[("variant", json!("x"))],
        "variant",
    ));
    covers(
        &auto.body,
        &super::tests_rules::fixture("application-commands__08.json"),
        "",
    );
    assert_eq!(auto.body["data"]["options"][0]["focused"], true);
}

#[test]
fn signatures_verify_with_the_public_key_handed_out() {
    let key: [u8; 32] = hex::decode(public_key_hex()).unwrap().try_into().unwrap();
    let key = VerifyingKey::from_bytes(&key).unwrap();
    let body = br#"{"type":1}"#;
    let (signature, timestamp) = sign(1_767_225_600, body);
    assert_eq!(timestamp, "1767225600");
    let signature: [u8; 64] = hex::decode(signature).unwrap().try_into().unwrap();
    let signed = [timestamp.as_bytes(), body].concat();
    key.verify(&signed, &Signature::from_bytes(&signature))
        .unwrap();
    assert!(
        key.verify(
            b"1767225601{\"type\":1}",
            &Signature::from_bytes(&signature)
        )
        .is_err()
    );
}
