use serde_json::json;

use super::chars;
use crate::chat::render::enforce_limits;

#[test]
fn blocks_beyond_the_limit_become_and_n_more_and_the_buttons_stay() {
    let section = json!({ "type": "section", "text": { "type": "mrkdwn", "text": "x" } });
    let mut blocks = vec![section; 80];
    blocks.push(json!({ "type": "actions", "elements": [] }));
    let mut message = json!({ "text": "t", "blocks": blocks });
    assert_eq!(enforce_limits(&mut message), Ok(()));
    let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
    assert_eq!(blocks.len(), 50);
    assert_eq!(blocks[48]["elements"][0]["text"], "…and 32 more");
    assert_eq!(blocks[49]["type"], "actions");
}

#[test]
fn every_length_limit_is_met_by_cutting_on_a_character_boundary() {
    let text = |s: String| json!({ "type": "plain_text", "text": s });
    let md = |s: String| json!({ "type": "mrkdwn", "text": s });
    let button = json!({ "type": "button", "action_id": "a", "text": text("é".repeat(100)), "value": "v".repeat(2100),
        "confirm": { "title": text("t".repeat(120)), "text": text("t".repeat(400)), "confirm": text("c".repeat(40)), "deny": text("d".repeat(40)) } });
    let option = json!({ "text": text("o".repeat(80)), "value": "v".repeat(200) });
    let mut view = json!({
        "type": "modal", "title": text("t".repeat(40)), "submit": text("s".repeat(30)), "close": text(String::new()),
        "private_metadata": "m".repeat(3000),
        "blocks": [
            { "type": "header", "text": text("é".repeat(200)) },
            { "type": "section", "text": md(format!("{}&amp;", "a".repeat(2996))), "fields": vec![md("f".repeat(2100)); 12] },
            { "type": "section", "text": md(format!("{}<!date^1^{{time}}|x>", "a".repeat(2990))), "accessory": button.clone() },
            { "type": "actions", "elements": vec![button; 30] },
            { "type": "context", "elements": vec![md("c".into()); 12] },
            { "type": "input", "label": text("l".repeat(2100)), "element": {
                "type": "static_select", "placeholder": text("p".repeat(200)), "options": vec![option; 150] } },
            { "type": "input", "label": text("l".into()), "element": {
                "type": "plain_text_input", "max_length": 5000, "initial_value": "i".repeat(4000) } }
        ]
    });
    assert_eq!(enforce_limits(&mut view), Ok(()));
    let b = &view["blocks"];
    assert_eq!(chars(&view["title"]["text"]), 24);
    assert!(
        view["title"]["text"]
            .as_str()
            .is_some_and(|t| t.ends_with('…'))
    );
    assert_eq!(chars(&view["submit"]["text"]), 24);
    assert_eq!(view["close"]["text"], "—", "Slack refuses empty text");
    assert_eq!(chars(&b[0]["text"]["text"]), 150);
    assert!(
        b[0]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("éé"))
    );
    assert!(
        b[1]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.ends_with("a…")),
        "no half escape"
    );
    assert_eq!(b[1]["fields"].as_array().map(Vec::len), Some(10));
    assert_eq!(b[1]["fields"][9]["text"], "…and 3 more");
    assert_eq!(chars(&b[1]["fields"][0]["text"]), 2000);
    assert!(
        b[2]["text"]["text"]
            .as_str()
            .is_some_and(|t| t.ends_with("a…")),
        "no half token"
    );
    let accessory = &b[2]["accessory"];
    assert_eq!(
        (
            chars(&accessory["text"]["text"]),
            chars(&accessory["value"])
        ),
        (75, 2000)
    );
    let confirm = &accessory["confirm"];
    let lengths: Vec<usize> = ["title", "text", "confirm", "deny"]
        .iter()
        .map(|k| chars(&confirm[k]["text"]))
        .collect();
    assert_eq!(lengths, [100, 300, 30, 30]);
    assert_eq!(b[3]["elements"].as_array().map(Vec::len), Some(25));
    assert_eq!(b[4]["elements"].as_array().map(Vec::len), Some(10));
    assert_eq!(chars(&b[5]["label"]["text"]), 2000);
    let select = &b[5]["element"];
    assert_eq!(chars(&select["placeholder"]["text"]), 150);
    assert_eq!(select["options"].as_array().map(Vec::len), Some(100));
    assert_eq!(
        (
            chars(&select["options"][0]["text"]["text"]),
            chars(&select["options"][0]["value"])
        ),
        (75, 150)
    );
    assert_eq!(b[6]["element"]["max_length"], 3000);
    assert_eq!(chars(&b[6]["element"]["initial_value"]), 3000);
}

#[test]
fn state_too_long_for_private_metadata_is_refused_rather_than_cut() {
    let mut view = json!({ "type": "modal", "private_metadata": "m".repeat(3001), "blocks": [] });
    assert_eq!(enforce_limits(&mut view), Err(3001));
}
