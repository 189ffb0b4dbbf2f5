//! A Slack message as plain text, the way a person would read it in Slack: for the log, where
//! Gatehouse writes its cards, DMs and alerts when no chat platform is enabled. Headers and
//! sections are lines, a field reads `Label: value`, context elements are joined with ` · `,
//! buttons are `[Approve] [Reject]`. Slack's markup is undone where it would only be noise
//! (`&amp;`, `<url|label>`, `<!date^…|fallback>`, the emoji shortcodes of the built-in
//! templates); `*bold*` and `` `code` `` are kept, as plain text writes them too.

use serde_json::Value as Json;

/// `message` (Block Kit: `text` and `blocks`) as lines of plain text.
pub fn slack_plain_text(message: &Json) -> String {
    let Some(blocks) = message.get("blocks").and_then(Json::as_array) else {
        return unmark(text_of(message.get("text")));
    };
    let mut lines: Vec<String> = Vec::new();
    for block in blocks {
        let kind = block.get("type").and_then(Json::as_str).unwrap_or_default();
        match kind {
            "header" => lines.push(unmark(text_of(block.get("text")))),
            "section" => {
                let mut text = unmark(text_of(block.get("text")));
                if let Some(label) = block.get("accessory").and_then(element) {
                    text = format!("{text} {label}").trim().to_owned();
                }
                if !text.is_empty() {
                    lines.push(text);
                }
                for field in items(block, "fields") {
                    lines.push(field_line(&unmark(text_of(Some(field)))));
                }
            }
            "context" => {
                let texts: Vec<String> = items(block, "elements")
                    .map(|e| unmark(text_of(Some(e))))
                    .filter(|t| !t.is_empty())
                    .collect();
                lines.push(texts.join(" · "));
            }
            "actions" => {
                let buttons: Vec<String> = items(block, "elements").filter_map(element).collect();
                lines.push(buttons.join(" "));
            }
            "divider" => lines.push("---".to_owned()),
            "input" => {
                let label = unmark(text_of(block.get("label")));
                lines.push(format!("{label}: ____"));
            }
            // Images and anything newer: nothing a text line could show.
            _ => {}
        }
    }
    lines.retain(|l| !l.trim().is_empty());
    lines.join("\n")
}

/// The elements of `key` in `block`.
fn items<'a>(block: &'a Json, key: &str) -> impl Iterator<Item = &'a Json> {
    block
        .get(key)
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
}

/// The text of a text object (`{"type": "mrkdwn", "text": …}`) or of a plain string.
fn text_of(value: Option<&Json>) -> &str {
    match value {
        Some(Json::String(text)) => text,
        Some(object) => object
            .get("text")
            .and_then(Json::as_str)
            .unwrap_or_default(),
        None => "",
    }
}

/// An interactive element as it shows: a button's label in brackets, a menu's placeholder.
fn element(element: &Json) -> Option<String> {
    let kind = element.get("type").and_then(Json::as_str)?;
    match kind {
        "button" => Some(format!("[{}]", unmark(text_of(element.get("text"))))),
        kind if kind.ends_with("_select") || kind == "overflow" => {
            let placeholder = unmark(text_of(element.get("placeholder")));
            Some(format!("[{} ▾]", placeholder.trim_end_matches('…')))
        }
        "image" | "plain_text" | "mrkdwn" => None,
        _ => None,
    }
}

/// A field written `*Label*\nvalue` reads `Label: value`; anything else, its lines joined.
fn field_line(text: &str) -> String {
    if let Some((first, rest)) = text.split_once('\n') {
        let label = first.trim();
        if label.len() > 2 && label.starts_with('*') && label.ends_with('*') {
            let rest = rest.lines().collect::<Vec<_>>().join(" ");
            return format!("{}: {rest}", &label[1..label.len() - 1]);
        }
    }
    text.lines().collect::<Vec<_>>().join(" ")
}

/// Slack's markup undone where plain text has no use for it: links and dates show their
/// label or fallback, mentions their id, escaped characters themselves, and the built-in
/// templates' emoji shortcodes the emoji.
fn unmark(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('>') {
            Some(end) => {
                let inside = &after[..end];
                out.push_str(&link_text(inside));
                rest = &after[end + 1..];
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    emoji(&out)
}

/// What `<…>` shows: `<url|label>` its label, `<!date^…|fallback>` its fallback,
/// `<@U123>` and `<#C123>` the id, a bare `<url>` the URL.
fn link_text(inside: &str) -> String {
    if let Some((_, label)) = inside.split_once('|') {
        return label.to_owned();
    }
    match inside.chars().next() {
        Some('@' | '#') => inside.to_owned(),
        Some('!') => format!("@{}", &inside[1..]),
        _ => inside.to_owned(),
    }
}

/// The shortcodes the built-in templates use, as the emoji Slack shows; others stay as
/// written, which Slack users read as well.
const EMOJI: &[(&str, &str)] = &[
    (":alarm_clock:", "⏰"),
    (":bar_chart:", "📊"),
    (":bell:", "🔔"),
    (":busts_in_silhouette:", "👥"),
    (":heavy_multiplication_x:", "✖️"),
    (":hourglass:", "⌛"),
    (":hourglass_flowing_sand:", "⏳"),
    (":inbox_tray:", "📥"),
    (":information_source:", "ℹ️"),
    (":key:", "🔑"),
    (":lock:", "🔒"),
    (":mag:", "🔍"),
    (":no_entry:", "⛔"),
    (":no_entry_sign:", "🚫"),
    (":pencil2:", "✏️"),
    (":rotating_light:", "🚨"),
    (":triangular_flag_on_post:", "🚩"),
    (":warning:", "⚠️"),
    (":wave:", "👋"),
    (":white_check_mark:", "✅"),
    (":x:", "❌"),
];

fn emoji(text: &str) -> String {
    if !text.contains(':') {
        return text.to_owned();
    }
    EMOJI.iter().fold(text.to_owned(), |text, (code, emoji)| {
        text.replace(code, emoji)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::chat::render::{Templates, sample_contexts};

    #[test]
    fn an_approval_card_reads_as_its_lines_with_buttons_in_brackets() {
        let card = json!({
            "text": "fallback",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": ":key: Access request AR-1"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Alice Ng* asks for *Read* on *Prod &amp; friends*."}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Who*\nAlice Ng (`alice`)"},
                    {"type": "mrkdwn", "text": "*How long*\n2h"}
                ]},
                {"type": "context", "elements": [
                    {"type": "mrkdwn", "text": ":busts_in_silhouette: *Manager approval* · stage 1 of 2"},
                    {"type": "mrkdwn", "text": "Asked <!date^1798794000^{date_short_pretty} at {time}|2027-01-01 09:00 UTC>"}
                ]},
                {"type": "divider"},
                {"type": "actions", "elements": [
                    {"type": "button", "action_id": "gatehouse.approve", "value": "AR-1", "text": {"type": "plain_text", "text": "Approve"}},
                    {"type": "button", "action_id": "gatehouse.reject", "value": "AR-1", "text": {"type": "plain_text", "text": "Reject"}}
                ]}
            ]
        });
        assert_eq!(
            slack_plain_text(&card),
            "🔑 Access request AR-1\n\
             *Alice Ng* asks for *Read* on *Prod & friends*.\n\
             Who: Alice Ng (`alice`)\n\
             How long: 2h\n\
             👥 *Manager approval* · stage 1 of 2 · Asked 2027-01-01 09:00 UTC\n\
             ---\n\
             [Approve] [Reject]"
        );
    }

    #[test]
    fn a_message_without_blocks_is_its_text_and_links_show_their_labels() {
        let message = json!({"text": "See <https://gatehouse.example.com/r/AR-1|AR-1> &lt;now&gt;, <@U0BOB>"});
        assert_eq!(slack_plain_text(&message), "See AR-1 <now>, @U0BOB");
    }

    /// Every built-in Slack message, with sample data, reads as text: no JSON, no markup
    /// left but bold and code, and its buttons in brackets.
    #[test]
    fn every_slack_message_template_reads_as_plain_text() {
        let templates = Templates::builtin().unwrap();
        let mut seen = 0;
        for (name, context) in sample_contexts() {
            if !name.starts_with("slack/") || name.contains("modal") || name.contains("home") {
                continue;
            }
            let message = templates.render(name, &context).unwrap();
            let text = slack_plain_text(&message);
            assert!(!text.trim().is_empty(), "{name}: {message}");
            for noise in ["{\"", "&amp;", "&lt;", "<!date", "\"type\""] {
                assert!(!text.contains(noise), "{name}: `{noise}` in\n{text}");
            }
            let buttons = message.to_string().matches("\"button\"").count();
            assert_eq!(
                text.matches('[').count(),
                buttons,
                "{name}: every button in brackets:\n{text}"
            );
            seen += 1;
        }
        assert!(seen >= 10, "{seen} messages");
    }
}
