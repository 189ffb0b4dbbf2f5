use serde_json::{Value as Json, json};

use super::discord_rules::problems;
use super::{render, templates};
use crate::chat::actions::{CardAction, inputs};
use crate::chat::render::discord_ids::ModalId;
use crate::chat::render::{BUILTIN, discord, discord_code, sample_contexts};
use crate::chat::views::{EphemeralView, FieldView, samples};
use crate::domain::ids::{GrantId, RequestId};

fn discord_contexts() -> Vec<(&'static str, Json)> {
    sample_contexts()
        .into_iter()
        .filter(|(name, _)| name.starts_with("discord/"))
        .collect()
}

/// Every button's `(label, style, action)`, row by row.
fn buttons(message: &Json) -> Vec<Vec<(String, u64, CardAction)>> {
    let rows = message["components"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    rows.iter()
        .map(|row| {
            let children = row["components"].as_array().cloned().unwrap_or_default();
            children
                .iter()
                .filter(|b| b["type"] == 2)
                .map(|b| {
                    let id = b["custom_id"].as_str().unwrap_or_default();
                    let action = CardAction::from_custom_id(id)
                        .unwrap_or_else(|| panic!("button {b} is not a card action"));
                    let label = b["label"].as_str().unwrap_or_default().to_owned();
                    (label, b["style"].as_u64().unwrap_or_default(), action)
                })
                .collect()
        })
        .collect()
}

/// Every text input's custom_id, in order.
fn inputs_of(modal: &Json) -> Vec<String> {
    let rows = modal["components"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .map(|row| {
            row["components"][0]["custom_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Every string in a rendered message, where Discord shows text.
fn strings(value: &Json, found: &mut Vec<String>) {
    match value {
        Json::String(s) => found.push(s.clone()),
        Json::Object(obj) => obj.values().for_each(|v| strings(v, found)),
        Json::Array(items) => items.iter().for_each(|v| strings(v, found)),
        _ => {}
    }
}

#[test]
fn every_discord_template_renders_with_every_sample_into_what_discord_accepts() {
    let contexts = discord_contexts();
    for (name, _) in BUILTIN.iter().filter(|(n, _)| n.starts_with("discord/")) {
        assert!(
            contexts.iter().any(|(n, _)| n == name),
            "{name} has no sample"
        );
    }
    let slack: Vec<&str> = BUILTIN
        .iter()
        .filter_map(|(n, _)| n.strip_prefix("slack/"))
        .filter(|n| *n != "app_home.j2")
        .collect();
    for name in slack {
        let discord = format!("discord/{name}");
        assert!(
            BUILTIN.iter().any(|(n, _)| *n == discord),
            "{discord} is missing"
        );
    }
    let t = templates();
    for (name, context) in contexts {
        let message = t.render(name, &context).unwrap_or_else(|e| panic!("{e}"));
        let wrong = problems(&message);
        assert!(wrong.is_empty(), "{name}: {wrong:?}\n{message:#}");
    }
}

#[test]
fn every_notice_and_alert_kind_has_its_own_discord_message() {
    for notice in samples::sample_notices() {
        let message = render("discord/notice.j2", json!({ "notice": notice }));
        assert!(
            !message.to_string().contains("news for you"),
            "{} has no message",
            notice.kind
        );
    }
    for alert in samples::sample_alerts() {
        let message = render("discord/alert.j2", json!({ "alert": alert }));
        assert!(
            !message.to_string().contains("Gatehouse alert"),
            "{} has no message",
            alert.kind
        );
    }
}

#[test]
fn every_discord_button_reads_back_as_the_action_it_stands_for() {
    let (r, g) = (RequestId(12), GrantId(7));
    let card = render(
        "discord/approval_card.j2",
        json!({ "request": samples::sample_request() }),
    );
    let expected = vec![vec![
        ("Approve".to_owned(), 3, CardAction::Approve(r)),
        ("Reject".to_owned(), 4, CardAction::Reject(r)),
        (
            "Approve with changes".to_owned(),
            2,
            CardAction::ApproveWithChanges(r),
        ),
    ]];
    assert_eq!(buttons(&card), expected);
    assert_eq!(
        card["components"][0]["components"][0]["custom_id"],
        "gatehouse.approve|AR-12"
    );
    let decided = json!({ "request": samples::sample_decided_request() });
    let decided = render("discord/approval_card_decided.j2", decided);
    assert_eq!(
        decided["components"],
        json!([]),
        "editing the card removes its buttons"
    );
    let review = render(
        "discord/review_card.j2",
        json!({ "item": samples::sample_campaign_item() }),
    );
    let actions: Vec<&'static str> = buttons(&review)
        .concat()
        .iter()
        .map(|(_, _, a)| a.action_id())
        .collect();
    assert_eq!(actions, ["gatehouse.keep", "gatehouse.revoke"]);
    let notice = |kind: &str| {
        let notices = samples::sample_notices();
        let n = notices.iter().find(|n| n.kind == kind).cloned();
        render("discord/notice.j2", json!({ "notice": n }))
    };
    let actions = |m: &Json| -> Vec<CardAction> {
        buttons(m).concat().into_iter().map(|(_, _, a)| a).collect()
    };
    assert_eq!(
        actions(&notice("expiry_warning")),
        [CardAction::Extend(g), CardAction::EndNow(g)]
    );
    let emergency = GrantId(8);
    assert_eq!(
        actions(&notice("emergency_review")),
        [CardAction::Confirm(emergency), CardAction::Flag(emergency)]
    );
    assert_eq!(actions(&notice("submitted")), [CardAction::Cancel(r)]);
    assert_eq!(actions(&notice("approval_reminder")).len(), 3);
    assert!(actions(&notice("approved")).is_empty());
    let card = json!({ "card": samples::sample_decided_grant_card() });
    assert_eq!(
        render("discord/grant_card_decided.j2", card)["components"],
        json!([])
    );
    for (name, context) in discord_contexts() {
        buttons(&render(name, context));
    }
}

#[test]
fn every_discord_modal_says_in_its_custom_id_what_it_is_about() {
    let parse = |m: &Json| ModalId::parse(m["custom_id"].as_str().unwrap_or_default());
    let chosen = render(
        "discord/request_modal.j2",
        json!({ "modal": samples::sample_request_modal() }),
    );
    assert_eq!(chosen["custom_id"], "gatehouse.request|prod-db|admin");
    assert_eq!(
        parse(&chosen),
        Some(ModalId::Request {
            chosen: Some(("prod-db".into(), "admin".into()))
        })
    );
    let field = format!("{}ticket", inputs::FIELD_PREFIX);
    assert_eq!(
        inputs_of(&chosen),
        [inputs::DURATION, inputs::JUSTIFICATION, field.as_str()]
    );
    let blank = json!({ "modal": samples::sample_blank_request_modal() });
    let blank = render("discord/request_modal.j2", blank);
    assert_eq!(parse(&blank), Some(ModalId::Request { chosen: None }));
    assert_eq!(
        inputs_of(&blank),
        [
            inputs::RESOURCE,
            inputs::ROLE,
            inputs::DURATION,
            inputs::JUSTIFICATION
        ]
    );
    let resource = json!({ "modal": samples::sample_resource_only_request_modal() });
    let resource = render("discord/request_modal.j2", resource);
    let rows = &resource["components"];
    assert_eq!(
        rows[0]["components"][0]["value"], "prod-db",
        "the chosen resource is filled in"
    );
    assert_eq!(
        rows[1]["components"][0]["placeholder"],
        "One of read, admin"
    );
    let reject = render(
        "discord/reject_modal.j2",
        json!({ "modal": samples::sample_reject_modal() }),
    );
    assert_eq!(parse(&reject), Some(ModalId::Reject(RequestId(12))));
    assert_eq!(inputs_of(&reject), [inputs::REJECT_REASON]);
    let changes = render(
        "discord/changes_modal.j2",
        json!({ "modal": samples::sample_changes_modal() }),
    );
    assert_eq!(parse(&changes), Some(ModalId::Changes(RequestId(12))));
    assert_eq!(
        inputs_of(&changes),
        [
            inputs::CHANGES_DURATION,
            inputs::CHANGES_ROLE,
            inputs::CHANGES_REASON
        ]
    );
    let role = &changes["components"][1]["components"][0];
    assert!(
        role["placeholder"]
            .as_str()
            .is_some_and(|p| p.starts_with("One of read")),
        "{role}"
    );
    let extend = render(
        "discord/extend_modal.j2",
        json!({ "modal": samples::sample_extend_modal() }),
    );
    assert_eq!(parse(&extend), Some(ModalId::Extend(GrantId(7))));
    assert_eq!(
        inputs_of(&extend),
        [inputs::EXTEND_DURATION, inputs::EXTEND_REASON]
    );
}

#[test]
fn a_request_modal_asks_for_at_most_three_template_fields() {
    let mut modal = samples::sample_request_modal();
    let field = modal.fields[0].clone();
    modal.fields = (0..6)
        .map(|i| crate::chat::views::ModalFieldView {
            id: format!("f{i}"),
            ..field.clone()
        })
        .collect();
    let rendered = render("discord/request_modal.j2", json!({ "modal": modal }));
    assert_eq!(rendered["components"].as_array().map(Vec::len), Some(5));
    assert!(problems(&rendered).is_empty(), "{:?}", problems(&rendered));
}

#[test]
fn a_justification_full_of_markdown_and_everyone_renders_inert() {
    let nasty = "@everyone @here <@123> <@&456> <#789> **bold** _it_ ~~gone~~ ||spoiler|| `code`\n# Heading\n> quote\n- item\n1. first\n[click](https://evil.example) https://evil.example \\o/";
    let mut request = samples::sample_request();
    request.justification = nasty.to_owned();
    request.requester.name = "Mallory @everyone <@1>".to_owned();
    request.fields[0].value = nasty.to_owned();
    let mut reply = EphemeralView {
        text: nasty.to_owned(),
        ..samples::sample_ephemeral()
    };
    reply.lines.push(nasty.to_owned());
    let notices = samples::sample_notices();
    let mut reminder = notices
        .iter()
        .find(|n| n.kind == "approval_reminder")
        .cloned();
    if let Some(r) = reminder.as_mut().and_then(|n| n.request.as_mut()) {
        r.justification = nasty.to_owned();
    }
    let rendered = [
        render(
            "discord/approval_card.j2",
            json!({ "request": request.clone() }),
        ),
        render(
            "discord/approval_card_decided.j2",
            json!({ "request": request }),
        ),
        render("discord/notice.j2", json!({ "notice": reminder })),
        render("discord/ephemeral.j2", json!({ "reply": reply })),
    ];
    let description = rendered[0]["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default();
    let escaped = "@\u{200b}everyone @\u{200b}here <\u{200b}@123> <\u{200b}@&456> <\u{200b}#789> \\*\\*bold\\*\\* \\_it\\_ \\~\\~gone\\~\\~ \\|\\|spoiler\\|\\| \\`code\\`\n\\# Heading\n\\> quote\n\\- item\n1\\. first\n\\[click\\](https\\://evil.example) https\\://evil.example \\\\o/";
    assert!(description.ends_with(escaped), "{description}");
    for message in &rendered {
        assert!(problems(message).is_empty(), "{:?}", problems(message));
        let mut texts = Vec::new();
        strings(message, &mut texts);
        for text in texts {
            for inert in [
                "@everyone",
                "@here",
                "<@",
                "<#",
                "[click](",
                "**bold",
                "https://evil",
                "\n#",
                "\n-",
                "\n1.",
            ] {
                assert!(!text.contains(inert), "{inert} in {text}");
            }
        }
    }
}

#[test]
fn discord_escapes_markdown_and_mentions_but_leaves_plain_text_alone() {
    assert_eq!(
        discord("prod-db (2h) for INC-4211: fix lag"),
        "prod-db (2h) for INC-4211: fix lag"
    );
    assert_eq!(
        discord("  - a\n10. b\nc - d # e > f"),
        "  \\- a\n10\\. b\nc - d # e > f"
    );
    assert_eq!(
        discord("a_b*c~d`e|f[g]h\\i"),
        "a\\_b\\*c\\~d\\`e\\|f\\[g\\]h\\\\i"
    );
    assert_eq!(
        discord("@Everyone @hereby mail@example.com"),
        "@\u{200b}Everyone @\u{200b}hereby mail@example.com"
    );
    assert_eq!(discord_code("a`b <@1> c_d"), "a\u{2cb}b <\u{200b}@1> c_d");
    let env = super::environment();
    let out = env.render_str(
        "{{ x|discord }}|{{ y|discord_code }}",
        minijinja::context! { x => "\"*\"\n", y => () },
    );
    assert_eq!(out.ok().as_deref(), Some("\\\"\\\\*\\\"\\n|"));
}

#[test]
fn a_3000_character_justification_yields_a_message_within_limits() {
    let mut request = samples::sample_request();
    request.justification = "lag_on *primary* ".repeat(177)[..3000].to_owned();
    request.fields = (0..30)
        .map(|i| FieldView {
            label: format!("Field {i}"),
            value: "v".repeat(1500),
        })
        .collect();
    let notices = samples::sample_notices();
    let mut reminder = notices
        .iter()
        .find(|n| n.kind == "approval_reminder")
        .cloned();
    if let Some(r) = reminder.as_mut().and_then(|n| n.request.as_mut()) {
        r.justification = request.justification.clone();
    }
    let reply = EphemeralView {
        text: request.justification.clone(),
        lines: vec![request.justification.clone()],
        ..EphemeralView::default()
    };
    let rendered = [
        render(
            "discord/approval_card.j2",
            json!({ "request": request.clone() }),
        ),
        render(
            "discord/approval_card_decided.j2",
            json!({ "request": request }),
        ),
        render("discord/notice.j2", json!({ "notice": reminder })),
        render("discord/ephemeral.j2", json!({ "reply": reply })),
    ];
    for message in &rendered {
        assert!(problems(message).is_empty(), "{:?}", problems(message));
    }
    let card = &rendered[0];
    let fields = card["embeds"][0]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(fields.len(), 24);
    assert_eq!(fields[21]["value"], "and 13 more fields");
    assert!(
        fields[22]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Stage")),
        "the stage stays"
    );
    assert_eq!(
        card["embeds"][0]["fields"][0]["value"], "Alice Ng (`alice`)",
        "short fields stay whole"
    );
    assert_eq!(buttons(card).concat().len(), 3, "the buttons stay");
    let content = rendered[3]["content"].as_str().unwrap_or_default();
    assert!(content.ends_with('…') && content.chars().count() == 2000);
}

#[test]
fn a_sentence_keeps_its_code_spans_as_code_and_escapes_the_rest() {
    use crate::chat::render::escape::discord_sentence;
    assert_eq!(
        discord_sentence("`duration`: `2 hours` is not a duration"),
        "`duration`: `2 hours` is not a duration",
        "no backslash shows before a backtick"
    );
    assert_eq!(
        discord_sentence("`a*b` and *c* <@1>"),
        "`a*b` and \\*c\\* <\u{200b}@1>"
    );
    assert_eq!(
        discord_sentence("`<@1>` @everyone"),
        "`<\u{200b}@1>` @\u{200b}everyone",
        "a code span pings nobody either"
    );
    assert_eq!(
        discord_sentence("`x` is `y`z` odd"),
        discord("`x` is `y`z` odd"),
        "unpaired backticks: all escaped"
    );
    let reply = EphemeralView {
        text: "`duration`: `2 hours` is not a duration".to_owned(),
        ..EphemeralView::default()
    };
    let shown = render("discord/ephemeral.j2", json!({ "reply": reply }));
    assert_eq!(shown["content"], "`duration`: `2 hours` is not a duration");
}
