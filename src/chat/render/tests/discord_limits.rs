use std::fs;

use serde_json::{Value as Json, json};

use super::chars;
use super::discord_rules::problems;
use crate::chat::render::{LongCustomId, RenderError, Templates, enforce_discord_limits};
use crate::chat::views::samples;

fn button(i: usize) -> Json {
    json!({ "type": 2, "style": 2, "label": format!("Button {i}"), "custom_id": format!("b{i}") })
}

fn row_sizes(message: &Json) -> Vec<usize> {
    let rows = message["components"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    rows.iter()
        .map(|r| r["components"].as_array().map_or(0, Vec::len))
        .collect()
}

#[test]
fn seven_buttons_become_two_rows() {
    let buttons: Vec<Json> = (0..7).map(button).collect();
    let mut message =
        json!({ "content": "c", "components": [{ "type": 1, "components": buttons }] });
    assert_eq!(enforce_discord_limits(&mut message), Ok(()));
    assert_eq!(row_sizes(&message), [5, 2]);
    assert_eq!(
        message["components"][1]["components"][1]["custom_id"], "b6",
        "order is kept"
    );
    assert!(problems(&message).is_empty(), "{:?}", problems(&message));
}

#[test]
fn buttons_beyond_five_rows_are_dropped_and_loose_buttons_get_a_row() {
    let rows: Vec<Json> = (0..7)
        .map(|i| json!({ "type": 1, "components": [button(i)] }))
        .collect();
    let mut message = json!({ "content": "c", "components": rows });
    assert_eq!(enforce_discord_limits(&mut message), Ok(()));
    assert_eq!(row_sizes(&message), [1, 1, 1, 1, 1]);
    let loose: Vec<Json> = (0..3).map(button).collect();
    let mut message = json!({ "content": "c", "components": loose });
    assert_eq!(enforce_discord_limits(&mut message), Ok(()));
    assert_eq!(row_sizes(&message), [3]);
}

#[test]
fn a_custom_id_too_long_is_refused_rather_than_cut() {
    let id = format!("gatehouse.approve|{}", "9".repeat(90));
    let mut message = json!({ "content": "c", "components": [{ "type": 1, "components": [
        { "type": 2, "style": 3, "label": "Approve", "custom_id": id.clone() }] }] });
    assert_eq!(
        enforce_discord_limits(&mut message),
        Err(LongCustomId { custom_id: id })
    );
}

#[test]
fn every_message_length_limit_is_met_by_cutting_on_a_character_boundary() {
    let field = |n: usize| json!({ "name": "n".repeat(300), "value": "é".repeat(n) });
    let embed = json!({
        "title": "t".repeat(300), "description": format!("{} <t:1798794000:f>", "d".repeat(4080)),
        "fields": (0..30).map(|_| field(2000)).collect::<Vec<_>>(),
        "footer": { "text": "" }, "author": { "name": "a".repeat(300) }
    });
    let mut message = json!({
        "content": "c".repeat(2500),
        "embeds": vec![embed; 12],
        "components": [{ "type": 1, "components": [{ "type": 2, "style": 1, "label": "l".repeat(100), "custom_id": "x" }] }]
    });
    assert_eq!(enforce_discord_limits(&mut message), Ok(()));
    assert!(problems(&message).is_empty(), "{:?}", problems(&message));
    assert_eq!(chars(&message["content"]), 2000);
    assert_eq!(message["embeds"].as_array().map(Vec::len), Some(10));
    let first = &message["embeds"][0];
    assert_eq!(first["fields"].as_array().map(Vec::len), Some(25));
    assert_eq!(first["fields"][24]["value"], "and 6 more");
    assert_eq!(first["footer"]["text"], "—", "Discord refuses empty text");
    assert_eq!(
        chars(&message["components"][0]["components"][0]["label"]),
        80
    );
}

#[test]
fn the_longest_embed_texts_are_shortened_first_to_fit_six_thousand() {
    let mut message = json!({ "embeds": [{
        "title": "Short title",
        "description": format!("{}<t:1798794000:f>{}", "d".repeat(3000), "d".repeat(1000)),
        "fields": [
            { "name": "Who", "value": "Alice" },
            { "name": "Long", "value": "v".repeat(1024) },
            { "name": "Longer", "value": format!("{}\\*", "w".repeat(1000)) }
        ]
    }] });
    assert_eq!(enforce_discord_limits(&mut message), Ok(()));
    assert!(problems(&message).is_empty(), "{:?}", problems(&message));
    let embed = &message["embeds"][0];
    assert_eq!(embed["fields"][0]["value"], "Alice");
    assert_eq!(embed["title"], "Short title");
    let description = embed["description"].as_str().unwrap_or_default();
    assert!(
        description.ends_with("d…") && chars(&embed["description"]) > 3000,
        "{description}"
    );
    assert_eq!(chars(&embed["fields"][1]["value"]), 1024, "under the cap");
}

#[test]
fn a_modal_keeps_five_rows_of_one_text_input_within_their_limits() {
    let input = |i: usize| {
        json!({ "type": 4, "custom_id": format!("i{i}"), "style": 1,
        "label": "l".repeat(60), "placeholder": "p".repeat(150), "value": "v".repeat(5000), "max_length": 9000 })
    };
    let mut modal = json!({
        "custom_id": "gatehouse.request", "title": "t".repeat(60),
        "components": [{ "type": 1, "components": (0..7).map(input).collect::<Vec<_>>() }]
    });
    assert_eq!(enforce_discord_limits(&mut modal), Ok(()));
    assert!(problems(&modal).is_empty(), "{:?}", problems(&modal));
    assert_eq!(row_sizes(&modal), [1, 1, 1, 1, 1]);
    let first = &modal["components"][0]["components"][0];
    assert_eq!((chars(&modal["title"]), chars(&first["label"])), (45, 45));
    assert_eq!(
        (chars(&first["placeholder"]), chars(&first["value"])),
        (100, 4000)
    );
    assert_eq!(first["max_length"], 4000);
}

#[test]
fn a_broken_discord_override_is_reported_by_check_and_the_built_in_is_used() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap_or(dir.path())).expect("mkdir");
        fs::write(path, text).expect("write");
    };
    write(
        "discord/approval_card.j2",
        "{\"content\": \"{{ request.id }}\",\n\"embeds\": [}",
    );
    write("discord/help.j2", "{\"blocks\": []}");
    write(
        "discord/reject_modal.j2",
        "{\"custom_id\": \"gatehouse.reject|{{ modal.request.id }}|{{ modal.request.justification * 3 }}\", \"title\": \"t\", \"components\": [{\"type\": 1, \"components\": [{\"type\": 4, \"custom_id\": \"reject.reason\", \"style\": 2, \"label\": \"Reason\"}]}]}",
    );
    let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    let problems = t.check();
    let reported = |start: &str| problems.iter().any(|p| p.starts_with(start));
    assert!(
        reported("template `discord/approval_card.j2` rendered invalid JSON at line 2"),
        "{problems:?}"
    );
    assert!(
        reported("template `discord/help.j2` rendered a message with no `content`"),
        "{problems:?}"
    );
    assert!(
        reported("template `discord/reject_modal.j2` rendered a custom_id of"),
        "{problems:?}"
    );
    let card = t.render(
        "discord/approval_card.j2",
        json!({ "request": samples::sample_request() }),
    );
    let card = card.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        card["components"][0]["components"][0]["custom_id"],
        "gatehouse.approve|AR-12"
    );
    let modal = t.render(
        "discord/reject_modal.j2",
        json!({ "modal": samples::sample_reject_modal() }),
    );
    assert_eq!(
        modal.ok().map(|m| m["custom_id"].clone()),
        Some(json!("gatehouse.reject|AR-12"))
    );
    let context = json!({ "help": samples::sample_help() });
    let context = minijinja::Value::from(minijinja::value::Serde(&context));
    let err = super::super::render_in(&t.env, "discord/help.j2", &context);
    assert!(matches!(err, Err(RenderError::Shape { .. })), "{err:?}");
}
