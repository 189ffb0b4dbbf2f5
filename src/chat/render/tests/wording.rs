//! The wording of the messages people read, as they read it: each message rendered from
//! its sample and reduced to its visible text (header, sections, fields, buttons), compared
//! with a snapshot under `snapshots/`. A change of wording shows up as a change of one of
//! those files; `UPDATE_SNAPSHOTS=1 cargo test --lib wording` writes them anew, to be read
//! before they are committed.

use std::path::PathBuf;

use serde_json::{Value as Json, json};

use super::render;
use crate::chat::views::{EphemeralView, NoticeView, samples};

/// The text a Slack message shows, block by block: headers, sections and their fields,
/// context lines, and buttons as `[label]`.
fn slack_text(message: &Json) -> String {
    let mut lines = Vec::new();
    for block in message["blocks"].as_array().into_iter().flatten() {
        let text = |v: &Json| v["text"].as_str().unwrap_or_default().to_owned();
        match block["type"].as_str() {
            Some("header" | "section") => {
                if !block["text"].is_null() {
                    lines.push(text(&block["text"]));
                }
                for field in block["fields"].as_array().into_iter().flatten() {
                    lines.push(text(field));
                }
            }
            Some("context") => {
                for element in block["elements"].as_array().into_iter().flatten() {
                    lines.push(text(element));
                }
            }
            Some("actions") => {
                let labels: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|b| format!("[{}]", text(&b["text"])))
                    .collect();
                lines.push(labels.join(" "));
            }
            _ => {}
        }
    }
    format!(
        "notification: {}\n---\n{}\n",
        message["text"].as_str().unwrap_or_default(),
        lines.join("\n")
    )
}

/// The text a Discord message shows: its content, then each embed's title, description,
/// fields (`name: value`) and footer, then buttons as `[label]`.
fn discord_text(message: &Json) -> String {
    let mut lines = vec![message["content"].as_str().unwrap_or_default().to_owned()];
    for embed in message["embeds"].as_array().into_iter().flatten() {
        lines.push("---".to_owned());
        for key in ["title", "description"] {
            if let Some(text) = embed[key].as_str() {
                lines.push(text.to_owned());
            }
        }
        for field in embed["fields"].as_array().into_iter().flatten() {
            let (name, value) = (&field["name"], &field["value"]);
            lines.push(format!("{}: {}", name.as_str().unwrap_or_default(), value));
        }
        if let Some(footer) = embed["footer"]["text"].as_str() {
            lines.push(format!("({footer})"));
        }
    }
    for row in message["components"].as_array().into_iter().flatten() {
        let labels: Vec<String> = row["components"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| format!("[{}]", b["label"].as_str().unwrap_or_default()))
            .collect();
        lines.push(labels.join(" "));
    }
    format!("{}\n", lines.join("\n"))
}

/// Compares `text` with the snapshot `name`, or writes it when `UPDATE_SNAPSHOTS` is set.
fn assert_snapshot(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/chat/render/tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let Ok(expected) = std::fs::read_to_string(&path) else {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1 to write it, then read it:\n{text}",
            path.display()
        );
    };
    assert!(
        expected == text,
        "{name} reads differently from its snapshot {}:\n--- snapshot\n{expected}\n--- now\n{text}",
        path.display()
    );
}

/// The notice of `kind` among the samples of one kind per variant and of other states.
fn notice(kind: &str, nth: usize) -> NoticeView {
    samples::sample_notices()
        .into_iter()
        .chain(samples::sample_notice_states())
        .filter(|n| n.kind == kind)
        .nth(nth)
        .unwrap_or_else(|| panic!("no sample {kind} notice #{nth}"))
}

/// Both platforms' rendering of `template` with `context`, snapshotted as `name`.
fn assert_reads(name: &str, template: &str, context: &Json) {
    let slack = render(&format!("slack/{template}.j2"), context.clone());
    assert_snapshot(&format!("{name}.slack"), &slack_text(&slack));
    let discord = render(&format!("discord/{template}.j2"), context.clone());
    assert_snapshot(&format!("{name}.discord"), &discord_text(&discord));
}

#[test]
fn the_requester_hears_who_changed_what_from_what_to_what_and_why() {
    let changed = notice("changed", 0);
    assert_reads("notice-changed", "notice", &json!({ "notice": changed }));
}

#[test]
fn the_approved_notice_lists_every_change_made_along_the_way() {
    let approved = notice("approved", 0);
    assert_reads("notice-approved", "notice", &json!({ "notice": approved }));
    let extended = notice("extended", 1);
    assert_reads("notice-extended", "notice", &json!({ "notice": extended }));
}

#[test]
fn emergency_access_is_told_as_granted_not_as_approved() {
    let granted = notice("approved", 1);
    assert_reads(
        "notice-emergency-granted",
        "notice",
        &json!({ "notice": granted }),
    );
}

#[test]
fn the_emergency_review_and_alert_say_who_what_how_long_and_why() {
    let review = notice("emergency_review", 0);
    assert_reads(
        "notice-emergency-review",
        "notice",
        &json!({ "notice": review }),
    );
    let alert = samples::sample_alerts()
        .into_iter()
        .find(|a| a.kind == "emergency_granted");
    assert_reads(
        "alert-emergency-granted",
        "alert",
        &json!({ "alert": alert }),
    );
}

#[test]
fn the_submitted_dm_names_the_approvers_and_shrinks_to_a_status_line_once_decided() {
    let pending = notice("submitted", 0);
    assert_reads("notice-submitted", "notice", &json!({ "notice": pending }));
    let decided = notice("submitted", 1);
    assert_reads(
        "notice-submitted-decided",
        "notice",
        &json!({ "notice": decided }),
    );
}

#[test]
fn the_approval_card_names_who_it_waits_for() {
    let request = samples::sample_request();
    assert_reads(
        "approval-card",
        "approval_card",
        &json!({ "request": request }),
    );
}

#[test]
fn a_reply_shows_code_as_code_on_both_platforms() {
    let reply = EphemeralView {
        text: "`duration`: `2 hours` is not a duration; write it like 90s, 15m, 2h, 1h30m or 7d"
            .to_owned(),
        lines: vec!["payments/approver allows at most 8h; ask for 8h or less".to_owned()],
        blocks: Vec::new(),
    };
    assert_reads("reply-code", "ephemeral", &json!({ "reply": reply }));
}
