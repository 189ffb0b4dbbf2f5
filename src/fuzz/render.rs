//! People's text in messages: the escaping filters keep it from formatting, linking or
//! pinging, and every template renders it into JSON the platform accepts, within its limits.

use std::sync::OnceLock;

use serde_json::Value;

use crate::chat::render::{
    RenderError, Templates, discord, discord_code, enforce_discord_limits, enforce_limits, mrkdwn,
    sample_contexts,
};

const ZWSP: char = '\u{200b}';

/// The three escaping filters on any text.
pub fn escape(data: &[u8]) {
    let text = super::text(data);

    let slack = mrkdwn(&text);
    assert!(!slack.contains(['<', '>']), "{slack:?}");
    let undone = slack
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    assert_eq!(undone, text, "Slack shows what was typed");

    let markdown = discord(&text);
    assert_inert(&markdown);
    let mut escaped = false;
    for c in markdown.chars() {
        if !escaped && "*_~`|[]".contains(c) {
            panic!("an unescaped {c:?} formats: {markdown:?}");
        }
        escaped = !escaped && c == '\\';
    }
    if !text.contains(ZWSP) {
        assert_eq!(
            shown_by_discord(&markdown),
            text,
            "Discord shows what was typed"
        );
    }

    let code = discord_code(&text);
    assert!(!code.contains('`'), "{code:?}");
    assert_inert(&code);
}

/// Input: a byte choosing a template and its sample context, a byte choosing which of the
/// context's people's texts to replace, then the text people typed, put in their place.
pub fn render(data: &[u8]) {
    let contexts = contexts();
    let (name, sample) = &contexts[super::pick(data.first(), 0..contexts.len())];
    let mask = data.get(1).copied().unwrap_or(0xff);
    let typed = super::text(data.get(2..).unwrap_or_default());
    if typed.trim().is_empty() {
        // Nothing people write into a card is empty: names, reasons and ids are required.
        return;
    }
    let mut context = sample.clone();
    let mut leaf = 0;
    replace_texts(&mut context, &typed, mask, &mut leaf);
    match templates().render(name, &context) {
        Ok(rendered) if name.starts_with("slack/") => slack_message(&rendered),
        Ok(rendered) => discord_message(&rendered),
        // Ids and state are never people's text; grown past what a button or a modal can
        // carry they are refused rather than cut, which is the promise.
        Err(RenderError::CustomId { .. } | RenderError::Metadata { .. }) => {}
        Err(error) => panic!("{name} with {typed:?}: {error}"),
    }
}

fn slack_message(rendered: &Value) {
    let mut again = rendered.clone();
    assert_eq!(enforce_limits(&mut again), Ok(()));
    assert_eq!(&again, rendered, "within Block Kit's limits");
    let blocks = rendered["blocks"].as_array().map_or(0, Vec::len);
    assert!(blocks <= 100, "{blocks} blocks");
    if let Some(text) = rendered["text"].as_str() {
        assert_no_slack_markup(text);
    }
    visit(rendered, &mut |object| {
        if object.get("type").and_then(Value::as_str) == Some("mrkdwn") {
            assert_no_slack_markup(object["text"].as_str().unwrap_or_default());
        }
    });
}

/// In mrkdwn, `<…>` is a mention, a link or a date; the templates write only dates.
fn assert_no_slack_markup(text: &str) {
    for (at, _) in text.match_indices('<') {
        assert!(text[at..].starts_with("<!date^"), "markup in {text:?}");
    }
}

fn discord_message(rendered: &Value) {
    let mut again = rendered.clone();
    assert_eq!(enforce_discord_limits(&mut again), Ok(()));
    assert_eq!(&again, rendered, "within Discord's limits");
    let content = rendered["content"].as_str().unwrap_or_default();
    assert!(content.chars().count() <= 2000);
    assert_inert(content);
    for embed in rendered["embeds"].as_array().into_iter().flatten() {
        let fields = embed["fields"].as_array().into_iter().flatten();
        let texts = [&embed["title"], &embed["description"]]
            .into_iter()
            .chain(fields.flat_map(|f| [&f["name"], &f["value"]]));
        texts.filter_map(Value::as_str).for_each(assert_inert);
    }
}

/// No `<@…>`, `<#…>`, `<@&…>` or `</…>` and no `@everyone` or `@here`: a zero-width space
/// follows every `<` and such an `@`, except in the `<t:…>` timestamps templates write.
fn assert_inert(text: &str) {
    for (at, _) in text.match_indices('<') {
        let rest = &text[at + 1..];
        let timestamp = rest.strip_prefix("t:").is_some_and(|r| {
            r.split_once('>')
                .is_some_and(|(inside, _)| inside.split(':').all(|p| !p.is_empty() && p.is_ascii()))
        });
        assert!(rest.starts_with(ZWSP) || timestamp, "a mention in {text:?}");
    }
    let lower = text.to_lowercase();
    assert!(
        !lower.contains("@everyone") && !lower.contains("@here"),
        "a mass mention in {text:?}"
    );
}

/// What Discord shows for escaped markdown: a backslash shows the character after it, and
/// the zero-width spaces inserted after `<` and a mass mention's `@` are not there to read.
fn shown_by_discord(markdown: &str) -> String {
    let mut shown = String::new();
    let mut chars = markdown.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => shown.extend(chars.next()),
            '<' | '@' => {
                shown.push(c);
                if chars.peek() == Some(&ZWSP) {
                    chars.next();
                }
            }
            c => shown.push(c),
        }
    }
    shown
}

/// The keys of a context whose texts come from people or from outside (names, reasons,
/// justifications, outcomes, a connector's error); ids and states are Gatehouse's own.
const PEOPLE_TEXT: &[&str] = &[
    "name",
    "justification",
    "reason",
    "outcome",
    "error",
    "ended",
    "changes",
    "lines",
    "label",
    "stage",
];

/// Replaces the people's texts of `value` whose position is set in `mask` by `typed`.
fn replace_texts(value: &mut Value, typed: &str, mask: u8, leaf: &mut u32) {
    match value {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_texts(item, typed, mask, leaf)),
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let texts = match item {
                    Value::String(text) => vec![text],
                    Value::Array(items) => items.iter_mut().filter_map(string_mut).collect(),
                    other => {
                        replace_texts(other, typed, mask, leaf);
                        continue;
                    }
                };
                if !PEOPLE_TEXT.contains(&key.as_str()) {
                    continue;
                }
                for text in texts {
                    if mask & (1 << (*leaf % 8)) != 0 {
                        typed.clone_into(text);
                    }
                    *leaf += 1;
                }
            }
        }
        _ => {}
    }
}

fn string_mut(value: &mut Value) -> Option<&mut String> {
    match value {
        Value::String(text) => Some(text),
        _ => None,
    }
}

fn visit(value: &Value, each: &mut impl FnMut(&serde_json::Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            each(map);
            map.values().for_each(|v| visit(v, each));
        }
        Value::Array(items) => items.iter().for_each(|v| visit(v, each)),
        _ => {}
    }
}

fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| Templates::builtin().expect("the built-in templates load"))
}

fn contexts() -> &'static [(&'static str, Value)] {
    static CONTEXTS: OnceLock<Vec<(&'static str, Value)>> = OnceLock::new();
    CONTEXTS.get_or_init(sample_contexts)
}
