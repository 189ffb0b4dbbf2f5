//! Discord's limits, enforced on a rendered message or modal by cutting and wrapping rather
//! than refused, so that whatever a template under templates/discord/ produces, Discord
//! accepts it. The one thing never cut is a `custom_id`: a cut id would misfire, so a long
//! one is an error.

use serde_json::{Map, Value};

use super::discord_ids::MAX_CUSTOM_ID;

/// What [`enforce_discord_limits`] cannot fix by cutting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LongCustomId {
    pub custom_id: String,
}

const CONTENT: usize = 2000;
const EMBEDS: usize = 10;
const EMBED_TOTAL: usize = 6000;
const FIELDS: usize = 25;
const ROWS: usize = 5;
const BUTTONS_PER_ROW: usize = 5;
const ACTION_ROW: u64 = 1;
const BUTTON: u64 = 2;
const TEXT_INPUT: u64 = 4;

/// Fits a rendered Discord message (`content`, `embeds`, `components`) or modal (`custom_id`,
/// `title`, `components`) into Discord's limits. Messages: content 2000 characters; at most
/// 10 embeds, each with title 256, description 4096, 25 fields (the overflow becomes "…and
/// N more") of name 256 and value 1024, footer 2048 and author 256, and 6000 characters of
/// embed text in all (the longest texts are shortened first); buttons wrap five to a row,
/// at most five rows are kept, and a label has 80 characters. Modals: title 45, one text
/// input per row and at most five rows, labels 45, placeholders 100, values 4000. Cut text
/// ends in "…", on a character boundary and not inside a `<t:…>` token or after a lone
/// escaping backslash; empty texts Discord refuses become "—". Selects and other
/// components are left as they are.
pub fn enforce_discord_limits(root: &mut Value) -> Result<(), LongCustomId> {
    let Some(obj) = root.as_object_mut() else {
        return Ok(());
    };
    if obj.contains_key("custom_id") {
        modal(obj);
    } else {
        message(obj);
    }
    long_custom_id(root)
}

fn message(obj: &mut Map<String, Value>) {
    if obj
        .get("content")
        .and_then(Value::as_str)
        .is_some_and(|c| c.trim().is_empty())
    {
        obj.remove("content");
    }
    string(obj.get_mut("content"), CONTENT);
    if let Some(Value::Array(embeds)) = obj.get_mut("embeds") {
        if embeds.len() > EMBEDS {
            tracing::warn!(
                embeds = embeds.len(),
                "a Discord message holds 10 embeds; dropping the rest"
            );
            embeds.truncate(EMBEDS);
        }
        embeds.iter_mut().for_each(embed);
        fit_embed_total(embeds);
    }
    if let Some(Value::Array(components)) = obj.get_mut("components") {
        button_rows(components);
        components.iter_mut().for_each(button_labels);
    }
}

fn embed(e: &mut Value) {
    let Some(obj) = e.as_object_mut() else {
        return;
    };
    for key in ["title", "description"] {
        if obj
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|t| t.trim().is_empty())
        {
            obj.remove(key);
        }
    }
    string(obj.get_mut("title"), 256);
    string(obj.get_mut("description"), 4096);
    // What Discord fills in on its side, written out so that a message reads back the way
    // it was sent (the conformance kit checks its echo against Discord's response schema).
    obj.entry("type").or_insert_with(|| "rich".into());
    if let Some(Value::Object(footer)) = obj.get_mut("footer") {
        nonempty(footer.get_mut("text"), 2048);
    }
    if let Some(Value::Object(author)) = obj.get_mut("author") {
        nonempty(author.get_mut("name"), 256);
    }
    if let Some(Value::Array(fields)) = obj.get_mut("fields") {
        if fields.len() > FIELDS {
            let dropped = fields.len() - (FIELDS - 1);
            fields.truncate(FIELDS - 1);
            fields.push(serde_json::json!({ "name": "…", "value": format!("and {dropped} more") }));
        }
        for field in fields.iter_mut().filter_map(Value::as_object_mut) {
            nonempty(field.get_mut("name"), 256);
            nonempty(field.get_mut("value"), 1024);
            field.entry("inline").or_insert(false.into());
        }
    }
}

/// The texts Discord counts towards an embed's 6000 characters.
fn embed_texts(embed: &mut Value) -> Vec<&mut String> {
    let mut texts = Vec::new();
    let Some(obj) = embed.as_object_mut() else {
        return texts;
    };
    for (key, value) in obj.iter_mut() {
        match (key.as_str(), value) {
            ("title" | "description", Value::String(s)) => texts.push(s),
            ("footer", Value::Object(o)) | ("author", Value::Object(o)) => {
                let inner = if key == "footer" { "text" } else { "name" };
                if let Some(Value::String(s)) = o.get_mut(inner) {
                    texts.push(s);
                }
            }
            ("fields", Value::Array(fields)) => {
                for field in fields.iter_mut().filter_map(Value::as_object_mut) {
                    for (k, v) in field.iter_mut() {
                        if let ("name" | "value", Value::String(s)) = (k.as_str(), v) {
                            texts.push(s);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    texts
}

/// Shortens the longest embed texts of a message, all to the same length, until the
/// embeds hold 6000 characters in all; short texts (who, what, the stage) stay whole.
fn fit_embed_total(embeds: &mut [Value]) {
    let mut texts: Vec<&mut String> = embeds.iter_mut().flat_map(embed_texts).collect();
    let mut lengths: Vec<usize> = texts.iter().map(|t| t.chars().count()).collect();
    if lengths.iter().sum::<usize>() <= EMBED_TOTAL {
        return;
    }
    // The largest cap that fits: every text longer than it is cut to it.
    lengths.sort_unstable();
    let (mut below, mut cap) = (0, 1);
    for (i, &len) in lengths.iter().enumerate() {
        let rest = lengths.len() - i;
        if below + len * rest > EMBED_TOTAL {
            cap = ((EMBED_TOTAL - below) / rest).max(1);
            break;
        }
        below += len;
    }
    for text in &mut texts {
        cut(text, cap);
    }
}

/// Buttons five to a row: a row of more wraps onto new rows, buttons outside a row are put
/// in rows, empty rows go, and rows beyond five are dropped (with a log).
fn button_rows(components: &mut Vec<Value>) {
    let mut rows: Vec<Value> = Vec::with_capacity(components.len());
    let mut loose: Vec<Value> = Vec::new();
    let flush = |loose: &mut Vec<Value>, rows: &mut Vec<Value>| {
        for chunk in loose.chunks(BUTTONS_PER_ROW) {
            rows.push(serde_json::json!({ "type": ACTION_ROW, "components": chunk }));
        }
        loose.clear();
    };
    for component in components.drain(..) {
        match kind(&component) {
            Some(BUTTON) => loose.push(component),
            Some(ACTION_ROW) => {
                flush(&mut loose, &mut rows);
                let children = component["components"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let all_buttons = children.iter().all(|c| kind(c) == Some(BUTTON));
                if children.is_empty() {
                    continue;
                } else if all_buttons && children.len() > BUTTONS_PER_ROW {
                    for chunk in children.chunks(BUTTONS_PER_ROW) {
                        let mut row = component.clone();
                        row["components"] = Value::Array(chunk.to_vec());
                        rows.push(row);
                    }
                } else {
                    rows.push(component);
                }
            }
            _ => {
                flush(&mut loose, &mut rows);
                rows.push(component);
            }
        }
    }
    flush(&mut loose, &mut rows);
    let row_count = rows.iter().filter(|r| kind(r) == Some(ACTION_ROW)).count();
    if row_count > ROWS {
        tracing::warn!(
            rows = row_count,
            "a Discord message holds 5 rows of buttons; dropping the rest"
        );
        let mut kept = 0;
        rows.retain(|r| {
            let row = kind(r) == Some(ACTION_ROW);
            kept += usize::from(row);
            !row || kept <= ROWS
        });
    }
    *components = rows;
}

fn button_labels(row: &mut Value) {
    if let Some(Value::Array(children)) = row.get_mut("components") {
        for button in children.iter_mut().filter(|c| kind(c) == Some(BUTTON)) {
            string(button.get_mut("label"), 80);
        }
    }
}

fn modal(obj: &mut Map<String, Value>) {
    nonempty(obj.get_mut("title"), 45);
    let Some(Value::Array(components)) = obj.get_mut("components") else {
        return;
    };
    // A modal's row holds one text input.
    let mut rows: Vec<Value> = Vec::with_capacity(components.len());
    for component in components.drain(..) {
        let children = component["components"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let inputs = children.iter().all(|c| kind(c) == Some(TEXT_INPUT));
        match kind(&component) {
            Some(ACTION_ROW) if children.is_empty() => {}
            Some(ACTION_ROW) if inputs && children.len() > 1 => {
                rows.extend(
                    children.into_iter().map(
                        |input| serde_json::json!({ "type": ACTION_ROW, "components": [input] }),
                    ),
                );
            }
            Some(TEXT_INPUT) => {
                rows.push(serde_json::json!({ "type": ACTION_ROW, "components": [component] }));
            }
            _ => rows.push(component),
        }
    }
    if rows.len() > ROWS {
        tracing::warn!(
            rows = rows.len(),
            "a Discord modal holds 5 inputs; dropping the rest"
        );
        rows.truncate(ROWS);
    }
    for row in &mut rows {
        if let Some(Value::Array(children)) = row.get_mut("components") {
            children.iter_mut().for_each(text_input);
        }
    }
    *components = rows;
}

fn text_input(input: &mut Value) {
    if kind(input) != Some(TEXT_INPUT) {
        return;
    }
    let Some(obj) = input.as_object_mut() else {
        return;
    };
    nonempty(obj.get_mut("label"), 45);
    string(obj.get_mut("placeholder"), 100);
    let clamp =
        |v: Option<&Value>, lowest: u64| v.and_then(Value::as_u64).map(|n| n.clamp(lowest, 4000));
    let max = clamp(obj.get("max_length"), 1);
    let min = clamp(obj.get("min_length"), 0).map(|n| n.min(max.unwrap_or(4000)));
    if let Some(max) = max {
        obj.insert("max_length".to_owned(), max.into());
    }
    if let Some(min) = min {
        obj.insert("min_length".to_owned(), min.into());
    }
    let room = usize::try_from(max.unwrap_or(4000)).unwrap_or(4000);
    string(obj.get_mut("value"), room);
}

/// The first `custom_id` anywhere in `value` longer than Discord allows.
fn long_custom_id(value: &Value) -> Result<(), LongCustomId> {
    match value {
        Value::Object(obj) => {
            let id = obj.get("custom_id").and_then(Value::as_str);
            if let Some(id) = id.filter(|id| id.chars().count() > MAX_CUSTOM_ID) {
                return Err(LongCustomId {
                    custom_id: id.to_owned(),
                });
            }
            obj.values().try_for_each(long_custom_id)
        }
        Value::Array(items) => items.iter().try_for_each(long_custom_id),
        _ => Ok(()),
    }
}

fn kind(component: &Value) -> Option<u64> {
    component.get("type").and_then(Value::as_u64)
}

/// A text Discord refuses empty: a dash says "nothing" without an API error.
fn nonempty(s: Option<&mut Value>, max: usize) {
    if let Some(Value::String(s)) = s {
        if s.trim().is_empty() {
            *s = "—".to_owned();
        }
        cut(s, max);
    }
}

fn string(s: Option<&mut Value>, max: usize) {
    if let Some(Value::String(s)) = s {
        cut(s, max);
    }
}

/// Cuts `s` to at most `max` characters, the last being "…".
fn cut(s: &mut String, max: usize) {
    if s.chars().count() <= max {
        return;
    }
    let mut kept: String = s.chars().take(max.saturating_sub(1)).collect();
    // Half of `<t:1798794000:f>` would show as raw characters.
    let token = kept
        .rfind('<')
        .filter(|&i| kept.len() - i <= 24 && !kept[i..].contains('>'));
    if let Some(lt) = token {
        kept.truncate(lt);
    }
    // A backslash left last would escape the ellipsis, and show if it escaped itself.
    let backslashes = kept.len() - kept.trim_end_matches('\\').len();
    if backslashes % 2 == 1 {
        kept.pop();
    }
    kept.push('…');
    *s = kept;
}
