//! What the fake refuses, limit by limit, as Discord would: message bodies (content, embeds,
//! components, flags, nonce, mentions) and command overwrites. Each refusal is 400 with Discord's
//! nested `errors` and is recorded as a violation at the same path.

use serde_json::{Value, json};

use super::tests::{card, send};
use super::{APPLICATION_ID, CHANNEL_ID, FakeDiscord, GUILD_ID};

fn button(id: &str) -> Value {
    json!({"type": 2, "style": 1, "label": "Go", "custom_id": id})
}

fn row(items: Vec<Value>) -> Value {
    json!({"type": 1, "components": items})
}

fn embed_with(field: &str, value: Value) -> Value {
    let mut embed = json!({"title": "AR-1"});
    embed[field] = value;
    json!({"embeds": [embed]})
}

/// The error node at a dotted path of a 50035 body.
fn at<'a>(body: &'a Value, path: &str) -> &'a Value {
    let mut node = &body["errors"];
    for key in path.split('.').filter(|k| !k.is_empty()) {
        node = &node[key];
    }
    &node["_errors"][0]
}

#[tokio::test]
async fn message_bodies_are_checked_limit_by_limit() {
    let fake = FakeDiscord::start().await;
    let fields: Vec<Value> = (0..26)
        .map(|i| json!({"name": format!("f{i}"), "value": "v"}))
        .collect();
    let rows: Vec<Value> = (0..6)
        .map(|i| row(vec![button(&format!("b{i}"))]))
        .collect();
    let buttons: Vec<Value> = (0..6).map(|i| button(&format!("b{i}"))).collect();
    let big = |n: usize| json!({"description": "d".repeat(n)});
    let select = json!({"type": 3, "custom_id": "s", "options": [{"label": "a", "value": "a"}]});
    let cases = [
        (
            json!({"content": "x".repeat(2001)}),
            "content",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            json!({"embeds": vec![json!({"title": "t"}); 11]}),
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            embed_with("title", json!("t".repeat(257))),
            "embeds.0.title",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            embed_with("description", json!("d".repeat(4097))),
            "embeds.0.description",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            embed_with("fields", json!(fields)),
            "embeds.0.fields",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            embed_with("fields", json!([{"name": "n".repeat(257), "value": "v"}])),
            "embeds.0.fields.0.name",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            embed_with("fields", json!([{"name": "n", "value": "v".repeat(1025)}])),
            "embeds.0.fields.0.value",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            embed_with("footer", json!({"text": "f".repeat(2049)})),
            "embeds.0.footer.text",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            embed_with("author", json!({"name": "a".repeat(257)})),
            "embeds.0.author.name",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            embed_with("color", json!(0x100_0000)),
            "embeds.0.color",
            "NUMBER_TYPE_MAX",
        ),
        (
            embed_with("timestamp", json!("yesterday")),
            "embeds.0.timestamp",
            "DATE_TIME_TYPE_PARSE",
        ),
        (
            json!({"embeds": [big(4000), big(2001)]}),
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
        ),
        (
            json!({"components": rows}),
            "components",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            json!({"components": [row(buttons)]}),
            "components.0.components",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            json!({"components": [row(vec![select, button("b")])]}),
            "components.0.components",
            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
        ),
        (
            json!({"components": [row(vec![button("a"), button("a")])]}),
            "components.0.components.1.custom_id",
            "COMPONENT_CUSTOM_ID_DUPLICATED",
        ),
        (
            json!({"components": [row(vec![button(&"c".repeat(101))])]}),
            "components.0.components.0.custom_id",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            json!({"components": [row(vec![json!({"type": 2, "style": 1, "label": "l".repeat(81), "custom_id": "a"})])]}),
            "components.0.components.0.label",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            json!({"components": [row(vec![json!({"type": 2, "style": 6, "label": "x", "custom_id": "a"})])]}),
            "components.0.components.0.style",
            "BASE_TYPE_CHOICES",
        ),
        (
            json!({"components": [row(vec![json!({"type": 2, "style": 5, "label": "x"})])]}),
            "components.0.components.0.url",
            "BUTTON_COMPONENT_URL_REQUIRED",
        ),
        (
            json!({"components": [row(vec![json!({"type": 2, "style": 5, "label": "x", "url": "https://x.y", "custom_id": "a"})])]}),
            "components.0.components.0.custom_id",
            "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED",
        ),
        (
            json!({"components": [row(vec![json!({"type": 2, "style": 1, "label": "x"})])]}),
            "components.0.components.0.custom_id",
            "BASE_TYPE_REQUIRED",
        ),
        (
            json!({"components": [button("loose")]}),
            "components.0.type",
            "UNION_TYPE_CHOICES",
        ),
        (
            json!({"content": "x", "flags": 64}),
            "flags",
            "MESSAGE_FLAGS_INVALID",
        ),
        (
            json!({"content": "x", "nonce": "n".repeat(26)}),
            "nonce",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            json!({"content": "x", "allowed_mentions": {"parse": ["users"], "users": ["1"]}}),
            "allowed_mentions",
            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
        ),
    ];
    let path = format!("/channels/{CHANNEL_ID}/messages");
    for (body, where_, code) in &cases {
        let (status, answer) = send(&fake, "POST", &path, body.clone()).await;
        assert_eq!(
            (status, answer["code"].as_u64()),
            (400, Some(50035)),
            "{where_}: {answer}"
        );
        assert_eq!(at(&answer, where_)["code"], *code, "{where_}: {answer}");
        let recorded = fake.violations().pop().unwrap().violations;
        assert!(
            recorded
                .iter()
                .any(|v| v.starts_with(&format!("{where_}: "))),
            "{recorded:?}"
        );
    }
    let (status, answer) = send(&fake, "POST", &path, json!({"content": ""})).await;
    assert_eq!(
        (status, answer),
        (
            400,
            json!({"code": 50006, "message": "Cannot send an empty message"})
        )
    );
    assert!(fake.messages(CHANNEL_ID).is_empty());
    assert_eq!(fake.violations().len(), cases.len() + 1);

    // The limits themselves pass, and so does a card.
    let fields: Vec<Value> = (0..25)
        .map(|i| json!({"name": format!("f{i}"), "value": "v"}))
        .collect();
    let full = json!({"content": "x".repeat(2000), "embeds": [{"title": "t".repeat(256), "fields": fields}],
        "components": (0..5).map(|r| row((0..5).map(|b| button(&format!("{r}-{b}"))).collect())).collect::<Vec<_>>()});
    for body in [
        full,
        card("AR-1"),
        json!({"embeds": [big(4096)]}),
        json!({"content": "x", "nonce": 17, "flags": 4096}),
    ] {
        let (status, answer) = send(&fake, "POST", &path, body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let message = &fake.messages(CHANNEL_ID)[0];
    let edit = format!("{path}/{}", message.id);
    let (status, answer) = send(
        &fake,
        "PATCH",
        &edit,
        json!({"embeds": vec![json!({"title": "t"}); 11]}),
    )
    .await;
    assert_eq!(
        (status, at(&answer, "embeds")["code"].as_str()),
        (400, Some("BASE_TYPE_MAX_LENGTH"))
    );
    assert!(fake.edits(CHANNEL_ID, &message.id).is_empty());
}

/// One of the examples of Discord's developer docs vendored under tests/fixtures/discord
/// (CC-BY-SA-4.0, see the NOTICE there).
pub(super) fn fixture(name: &str) -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = dir.join("tests/fixtures/discord").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_docs_example_commands_are_accepted() {
    let fake = FakeDiscord::start().await;
    let names = ["00", "01", "03", "05", "09"];
    let commands: Vec<Value> = names
        .iter()
        .map(|n| fixture(&format!("application-commands__{n}.json")))
        .collect();
    let path = format!("/applications/{APPLICATION_ID}/commands");
    let (status, answer) = send(&fake, "PUT", &path, json!(commands)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(fake.commands().len(), 5);
}

fn command(name: &str, options: Value) -> Value {
    json!({"name": name, "description": "Ask for access", "type": 1, "options": options})
}

fn option(kind: u64, name: &str) -> Value {
    json!({"type": kind, "name": name, "description": "d"})
}

#[tokio::test]
async fn command_overwrites_are_checked_like_discord() {
    let fake = FakeDiscord::start().await;
    let many: Vec<Value> = (0..26).map(|i| option(3, &format!("o{i}"))).collect();
    let choices: Vec<Value> = (0..26)
        .map(|i| json!({"name": format!("c{i}"), "value": format!("c{i}")}))
        .collect();
    let mut required_late = vec![option(3, "first"), option(3, "second")];
    required_late[1]["required"] = json!(true);
    let mut both = option(3, "resource");
    both["autocomplete"] = json!(true);
    both["choices"] = json!([{"name": "a", "value": "a"}]);
    let mut auto_bool = option(5, "flag");
    auto_bool["autocomplete"] = json!(true);
    let mut many_choices = option(3, "pick");
    many_choices["choices"] = json!(choices);
    let cases = [
        (command("Access", json!([])), "0.name"),
        (command("access request", json!([])), "0.name"),
        (command(&"a".repeat(33), json!([])), "0.name"),
        (json!({"name": "access", "type": 1}), "0.description"),
        (
            json!({"name": "access", "description": "d".repeat(101)}),
            "0.description",
        ),
        (
            json!({"name": "Approve", "type": 3, "description": "no"}),
            "0.description",
        ),
        (command("access", json!(many)), "0.options"),
        (
            command("access", json!([option(1, "request"), option(3, "loose")])),
            "0.options",
        ),
        (
            command(
                "access",
                json!([{"type": 2, "name": "g", "description": "d", "options": [option(3, "x")]}]),
            ),
            "0.options.0.options.0.type",
        ),
        (
            command(
                "access",
                json!([{"type": 1, "name": "s", "description": "d", "options": [option(1, "deeper")]}]),
            ),
            "0.options.0.options.0.type",
        ),
        (
            command("access", json!(required_late)),
            "0.options.1.required",
        ),
        (command("access", json!([both])), "0.options.0.autocomplete"),
        (
            command("access", json!([auto_bool])),
            "0.options.0.autocomplete",
        ),
        (
            command("access", json!([many_choices])),
            "0.options.0.choices",
        ),
        (
            command("access", json!([option(12, "x")])),
            "0.options.0.type",
        ),
        (
            command("access", json!([option(3, "x"), option(3, "x")])),
            "0.options.1.name",
        ),
        (json!([command("access", json!([]))]), "0"),
    ];
    let global = format!("/applications/{APPLICATION_ID}/commands");
    for (body, where_) in &cases {
        let body = if body.is_array() {
            json!([body[0]["name"], 1])
        } else {
            json!([body])
        };
        let (status, answer) = send(&fake, "PUT", &global, body.clone()).await;
        assert_eq!(
            (status, answer["code"].as_u64()),
            (400, Some(50035)),
            "{body}: {answer}"
        );
        assert!(at(&answer, where_).is_object(), "{where_}: {answer}");
    }
    assert!(fake.commands().is_empty());

    let mut blep = fixture("application-commands__01.json");
    let mut access = command(
        "access",
        json!([{"type": 1, "name": "request", "description": "Ask", "options": [
        {"type": 3, "name": "resource", "description": "What", "required": true, "autocomplete": true},
        {"type": 4, "name": "hours", "description": "How long", "min_value": 1, "max_value": 24}]}]),
    );
    let (status, first) = send(&fake, "PUT", &global, json!([access, blep])).await;
    assert_eq!(status, 200, "{first}");
    let read: Vec<serenity::model::application::Command> =
        serde_json::from_value(first.clone()).unwrap();
    assert_eq!(read.len(), 2);
    access["description"] = json!("Ask for access, again");
    blep["name"] = json!("blep2");
    let (_, second) = send(&fake, "PUT", &global, json!([access, blep])).await;
    assert_eq!(
        second[0]["id"], first[0]["id"],
        "an overwritten command keeps its id"
    );
    assert_ne!(second[1]["id"], first[1]["id"]);
    assert_eq!(fake.commands()[0]["description"], "Ask for access, again");
    let guild = format!("/applications/{APPLICATION_ID}/guilds/{GUILD_ID}/commands");
    let (status, _) = send(&fake, "PUT", &guild, json!([command("access", json!([]))])).await;
    assert_eq!(status, 200);
    assert_eq!(fake.guild_commands(GUILD_ID)[0]["guild_id"], GUILD_ID);
    let (status, _) = send(&fake, "PUT", "/applications/42/commands", json!([])).await;
    assert_eq!(status, 403);
}
