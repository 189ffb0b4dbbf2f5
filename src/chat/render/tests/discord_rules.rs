//! What Discord accepts, as a checker independent of the renderer: the rules of Discord's
//! OpenAPI description of POST /channels/{id}/messages and of a MODAL interaction response,
//! plus the limits Discord enforces beyond it (2000 characters of content for a bot, 6000 of
//! embed text, five rows). It reads no file: the rules are written out here.

use serde_json::Value as Json;

const MESSAGE_KEYS: &[&str] = &["content", "embeds", "components", "flags", "tts"];
const EMBED_KEYS: &[&str] = &[
    "type",
    "title",
    "description",
    "url",
    "color",
    "timestamp",
    "fields",
    "footer",
    "author",
    "image",
    "thumbnail",
];

fn len(v: &Json) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Whatever is wrong with `value` as a message body or a modal; empty when Discord takes it.
pub(super) fn problems(value: &Json) -> Vec<String> {
    let mut found = Vec::new();
    let Some(obj) = value.as_object() else {
        return vec![format!("not an object: {value}")];
    };
    if obj.contains_key("custom_id") {
        modal(value, &mut found);
    } else {
        message(value, &mut found);
    }
    found
}

fn text(found: &mut Vec<String>, at: &str, v: &Json, min: usize, max: usize) {
    match v {
        Json::String(_) if (min..=max).contains(&len(v)) => {}
        Json::String(_) => found.push(format!("{at}: {} characters, not {min}..={max}", len(v))),
        _ => found.push(format!("{at}: not a string: {v}")),
    }
}

fn message(value: &Json, found: &mut Vec<String>) {
    for key in value.as_object().into_iter().flat_map(|o| o.keys()) {
        if !MESSAGE_KEYS.contains(&key.as_str()) {
            found.push(format!("unknown message key `{key}`"));
        }
    }
    if let Some(content) = value.get("content") {
        text(found, "content", content, 1, 2000);
    }
    let embeds = value.get("embeds").map(|e| e.as_array().cloned());
    let embeds = match embeds {
        Some(None) => {
            found.push("embeds: not a list".into());
            Vec::new()
        }
        Some(Some(embeds)) => embeds,
        None => Vec::new(),
    };
    if embeds.len() > 10 {
        found.push(format!("{} embeds", embeds.len()));
    }
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        total += embed(&format!("embeds/{i}"), e, found);
    }
    if total > 6000 {
        found.push(format!("{total} characters of embed text"));
    }
    let rows = value.get("components").map(|c| c.as_array().cloned());
    let rows = match rows {
        Some(None) => {
            found.push("components: not a list".into());
            Vec::new()
        }
        Some(Some(rows)) => rows,
        None => Vec::new(),
    };
    if rows.len() > 5 {
        found.push(format!("{} rows of components", rows.len()));
    }
    for (i, row) in rows.iter().enumerate() {
        let at = format!("components/{i}");
        let children = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"] != 1 || !(1..=5).contains(&children.len()) {
            found.push(format!(
                "{at}: not an action row of 1 to 5 components: {row}"
            ));
        }
        for (j, b) in children.iter().enumerate() {
            let at = format!("{at}/components/{j}");
            if b["type"] != 2 {
                continue;
            }
            if !b["style"].as_u64().is_some_and(|s| (1..=5).contains(&s)) {
                found.push(format!("{at}: button style {}", b["style"]));
            }
            if b["style"] != 5 {
                text(found, &format!("{at}/custom_id"), &b["custom_id"], 1, 100);
            }
            text(found, &format!("{at}/label"), &b["label"], 1, 80);
        }
    }
    let nonempty = |key: &str| value[key].as_array().is_some_and(|l| !l.is_empty());
    if value.get("content").is_none() && !nonempty("embeds") && !nonempty("components") {
        found.push("an empty message".into());
    }
}

/// Checks one embed and returns how many characters of text it holds.
fn embed(at: &str, e: &Json, found: &mut Vec<String>) -> usize {
    for key in e.as_object().into_iter().flat_map(|o| o.keys()) {
        if !EMBED_KEYS.contains(&key.as_str()) {
            found.push(format!("{at}: unknown embed key `{key}`"));
        }
    }
    let mut total = 0;
    for (key, max) in [("title", 256), ("description", 4096)] {
        if let Some(v) = e.get(key) {
            text(found, &format!("{at}/{key}"), v, 1, max);
            total += len(v);
        }
    }
    let color = e.get("color");
    if color.is_some_and(|c| c.as_u64().is_none_or(|c| c > 0xFF_FFFF)) {
        found.push(format!("{at}/color: {color:?}"));
    }
    for (key, inner, max) in [("footer", "text", 2048), ("author", "name", 256)] {
        if let Some(v) = e.get(key) {
            text(found, &format!("{at}/{key}/{inner}"), &v[inner], 1, max);
            total += len(&v[inner]);
        }
    }
    let fields = e["fields"].as_array().cloned().unwrap_or_default();
    if fields.len() > 25 {
        found.push(format!("{at}: {} fields", fields.len()));
    }
    for (i, f) in fields.iter().enumerate() {
        text(found, &format!("{at}/fields/{i}/name"), &f["name"], 1, 256);
        text(
            found,
            &format!("{at}/fields/{i}/value"),
            &f["value"],
            1,
            1024,
        );
        if !f.get("inline").is_none_or(Json::is_boolean) {
            found.push(format!("{at}/fields/{i}/inline: {}", f["inline"]));
        }
        total += len(&f["name"]) + len(&f["value"]);
    }
    total
}

fn modal(value: &Json, found: &mut Vec<String>) {
    text(found, "custom_id", &value["custom_id"], 1, 100);
    text(found, "title", &value["title"], 1, 45);
    let rows = value["components"].as_array().cloned().unwrap_or_default();
    if !(1..=5).contains(&rows.len()) {
        found.push(format!("a modal of {} rows", rows.len()));
    }
    for (i, row) in rows.iter().enumerate() {
        let at = format!("components/{i}");
        let inputs = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"] != 1 || inputs.len() != 1 || inputs[0]["type"] != 4 {
            found.push(format!("{at}: not a row of one text input: {row}"));
            continue;
        }
        let input = &inputs[0];
        let at = format!("{at}/components/0");
        text(
            found,
            &format!("{at}/custom_id"),
            &input["custom_id"],
            1,
            100,
        );
        text(found, &format!("{at}/label"), &input["label"], 1, 45);
        if !input["style"].as_u64().is_some_and(|s| s == 1 || s == 2) {
            found.push(format!("{at}/style: {}", input["style"]));
        }
        for (key, max) in [("placeholder", 100), ("value", 4000)] {
            if let Some(v) = input.get(key) {
                text(found, &format!("{at}/{key}"), v, 0, max);
            }
        }
        if !input.get("required").is_none_or(Json::is_boolean) {
            found.push(format!("{at}/required: {}", input["required"]));
        }
        let bound = |key: &str, lowest: u64| {
            input
                .get(key)
                .is_none_or(|n| n.as_u64().is_some_and(|n| (lowest..=4000).contains(&n)))
        };
        if !bound("min_length", 0) || !bound("max_length", 1) {
            found.push(format!("{at}: min_length or max_length out of 0..=4000"));
        }
    }
}
