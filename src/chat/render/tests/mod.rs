use serde_json::{Value as Json, json};

use super::escape::environment;
use super::*;
use crate::chat::actions::CardAction;
use crate::chat::views::{EphemeralView, FieldView, HomeView, samples};

mod audit_head;
mod discord;
mod discord_limits;
mod discord_rules;
mod limits;
mod overrides;
mod portal_links;
mod wording;

fn templates() -> Templates {
    Templates::builtin().expect("the built-in templates compile")
}

fn render(name: &str, context: Json) -> Json {
    templates()
        .render(name, &context)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every object of `kind` (`button`, `section`, …) anywhere in `value`.
fn all_of<'a>(value: &'a Json, kind: &str, found: &mut Vec<&'a Json>) {
    match value {
        Json::Object(obj) => {
            if obj.get("type").is_some_and(|t| t == kind) {
                found.push(value);
            }
            obj.values().for_each(|v| all_of(v, kind, found));
        }
        Json::Array(items) => items.iter().for_each(|v| all_of(v, kind, found)),
        _ => {}
    }
}

fn buttons(value: &Json) -> Vec<CardAction> {
    let mut found = Vec::new();
    all_of(value, "button", &mut found);
    found
        .iter()
        .map(|b| {
            let (id, value) = (b["action_id"].as_str(), b["value"].as_str());
            CardAction::parse(id.unwrap_or_default(), value.unwrap_or_default())
                .unwrap_or_else(|| panic!("button {b} is not a card action"))
        })
        .collect()
}

fn mrkdwn_texts(value: &Json) -> Vec<String> {
    let mut found = Vec::new();
    all_of(value, "mrkdwn", &mut found);
    found
        .iter()
        .map(|t| t["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn chars(value: &Json) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

#[test]
fn every_template_renders_block_kit_json_with_sample_data() {
    let t = templates();
    assert_eq!(t.check(), Vec::<String>::new());
    let contexts = sample_contexts();
    for (name, _) in BUILTIN {
        assert!(
            contexts.iter().any(|(n, _)| n == name),
            "{name} has no sample"
        );
    }
    for (name, context) in contexts
        .into_iter()
        .filter(|(n, _)| n.starts_with("slack/"))
    {
        let message = t.render(name, &context).unwrap_or_else(|e| panic!("{e}"));
        let blocks = message["blocks"].as_array().map_or(0, Vec::len);
        assert!((1..=50).contains(&blocks), "{name}: {blocks} blocks");
    }
}

#[test]
fn every_notice_and_alert_kind_has_its_own_message() {
    let notices = samples::sample_notices();
    let kinds: Vec<&str> = notices.iter().map(|n| n.kind).collect();
    assert_eq!(kinds.len(), 12, "one sample per Notice variant: {kinds:?}");
    for notice in notices {
        let text = render("slack/notice.j2", json!({ "notice": notice }))["text"].to_string();
        assert!(
            !text.contains("News from Gatehouse"),
            "{} has no message",
            notice.kind
        );
    }
    let alerts = samples::sample_alerts();
    assert_eq!(
        alerts.len(),
        10,
        "one sample per Alert variant but Impersonation, which has its own template"
    );
    for alert in alerts {
        let text = render("slack/alert.j2", json!({ "alert": alert }))["text"].to_string();
        assert!(
            !text.contains("Gatehouse alert"),
            "{} has no message",
            alert.kind
        );
    }
}

#[test]
fn every_button_reads_back_as_the_action_it_stands_for() {
    let ids =
        |v: &Json| -> Vec<&'static str> { buttons(v).iter().map(|a| a.action_id()).collect() };
    let card = render(
        "slack/approval_card.j2",
        json!({ "request": samples::sample_request() }),
    );
    assert_eq!(
        ids(&card),
        [
            "gatehouse.approve",
            "gatehouse.reject",
            "gatehouse.approve_with_changes"
        ]
    );
    let decided = json!({ "request": samples::sample_decided_request() });
    assert!(ids(&render("slack/approval_card_decided.j2", decided)).is_empty());
    let review = render(
        "slack/review_card.j2",
        json!({ "item": samples::sample_campaign_item() }),
    );
    assert_eq!(ids(&review), ["gatehouse.keep", "gatehouse.revoke"]);
    let home = render(
        "slack/app_home.j2",
        json!({ "home": samples::sample_home() }),
    );
    for id in [
        "gatehouse.extend",
        "gatehouse.end_now",
        "gatehouse.cancel",
        "gatehouse.approve",
    ] {
        assert!(ids(&home).contains(&id), "home lacks {id}");
    }
    let notices = samples::sample_notices();
    let by_kind = |kind: &str| {
        notices
            .iter()
            .find(|n| n.kind == kind)
            .map(|n| json!({ "notice": n }))
    };
    let warning = render(
        "slack/notice.j2",
        by_kind("expiry_warning").unwrap_or_default(),
    );
    assert_eq!(ids(&warning), ["gatehouse.extend", "gatehouse.end_now"]);
    let emergency = render(
        "slack/notice.j2",
        by_kind("emergency_review").unwrap_or_default(),
    );
    assert_eq!(ids(&emergency), ["gatehouse.confirm", "gatehouse.flag"]);
    for (name, context) in sample_contexts() {
        if name.starts_with("slack/") {
            buttons(&render(name, context));
        }
    }
}

#[test]
fn a_huge_request_still_fits_block_kit() {
    let mut request = samples::sample_request();
    request.justification = "lag ".repeat(2500);
    request.fields = (0..80)
        .map(|i| FieldView {
            label: format!("Field {i}"),
            value: "v".repeat(2500),
        })
        .collect();
    let card = render(
        "slack/approval_card.j2",
        json!({ "request": request.clone() }),
    );
    let blocks = card["blocks"].as_array().cloned().unwrap_or_default();
    assert!(blocks.len() <= 50);
    assert_eq!(
        blocks.last().map(|b| b["type"].clone()),
        Some(json!("actions"))
    );
    let mut sections = Vec::new();
    all_of(&card, "section", &mut sections);
    for s in sections {
        assert!(chars(&s["text"]["text"]) <= 3000);
        let fields = s["fields"].as_array().cloned().unwrap_or_default();
        assert!(fields.len() <= 10);
        assert!(fields.iter().all(|f| chars(&f["text"]) <= 2000));
    }
    let home = HomeView {
        approvals: vec![request; 80],
        ..samples::sample_home()
    };
    let home = render("slack/app_home.j2", json!({ "home": home }));
    let blocks = home["blocks"].as_array().cloned().unwrap_or_default();
    assert_eq!(blocks.len(), 100, "a view holds up to 100 blocks");
    let last = blocks.last().map(|b| b["elements"][0]["text"].clone());
    assert!(last.is_some_and(|t| t.as_str().is_some_and(|t| t.starts_with("…and "))));
}

#[test]
fn text_people_type_cannot_break_the_json_or_ping_anyone() {
    let nasty = "say \"hi\"\\\n<!channel> *now* & <https://evil.example|click>";
    let mut request = samples::sample_request();
    request.justification = nasty.to_owned();
    request.requester.name = "Mallory \"<@U0BOSS>\"".to_owned();
    request.fields[0].value = nasty.to_owned();
    let mut reply = EphemeralView {
        text: nasty.to_owned(),
        ..samples::sample_ephemeral()
    };
    reply.lines.push(nasty.to_owned());
    let rendered = [
        render(
            "slack/approval_card.j2",
            json!({ "request": request.clone() }),
        ),
        render(
            "slack/approval_card_decided.j2",
            json!({ "request": request.clone() }),
        ),
        render(
            "slack/reject_modal.j2",
            json!({ "modal": { "request": request, "private_metadata": nasty } }),
        ),
        render("slack/ephemeral.j2", json!({ "reply": reply })),
    ];
    let escaped = "say \"hi\"\\\n&lt;!channel&gt; *now* &amp; &lt;https://evil.example|click&gt;";
    assert!(mrkdwn_texts(&rendered[0]).contains(&format!("*Why*\n{escaped}")));
    assert_eq!(
        rendered[2]["private_metadata"], nasty,
        "state survives verbatim"
    );
    for message in &rendered {
        for text in mrkdwn_texts(message) {
            assert!(
                !text.contains("<!channel>") && !text.contains("<@U0BOSS>"),
                "{text}"
            );
            assert!(!text.contains("<https"), "{text}");
        }
    }
}

/// Found by the `render` fuzz target: the `text` beside the blocks (what notifications
/// show, which Slack reads as mrkdwn too) carried names and outcomes unescaped.
#[test]
fn a_slack_cards_notification_text_cannot_ping_anyone() {
    let nasty = "Mallory <!channel> <@U0BOSS>";
    let mut request = samples::sample_request();
    request.requester.name = nasty.to_owned();
    let mut decided = samples::sample_decided_request();
    decided.outcome = Some(nasty.to_owned());
    let mut item = samples::sample_campaign_item();
    item.grant.person.name = nasty.to_owned();
    let mut card = samples::sample_decided_grant_card();
    card.outcome = nasty.to_owned();
    let rendered = [
        render("slack/approval_card.j2", json!({ "request": request })),
        render(
            "slack/approval_card_decided.j2",
            json!({ "request": decided }),
        ),
        render("slack/review_card.j2", json!({ "item": item })),
        render("slack/grant_card_decided.j2", json!({ "card": card })),
    ];
    for message in &rendered {
        let text = message["text"].as_str().unwrap_or_default();
        assert!(
            text.contains("Mallory &lt;!channel&gt; &lt;@U0BOSS&gt;"),
            "{text}"
        );
    }
}

#[test]
fn mrkdwn_escapes_the_characters_slack_gives_meaning_to() {
    assert_eq!(
        mrkdwn("R&D <@U1> <!here> <https://x|y> >quote *bold*"),
        "R&amp;D &lt;@U1&gt; &lt;!here&gt; &lt;https://x|y&gt; &gt;quote *bold*"
    );
    let env = environment();
    let out = env.render_str(
        "{{ x|mrkdwn }}|{{ x }}|{{ x|tojson }}",
        minijinja::context! { x => "<\"&\n>" },
    );
    assert_eq!(
        out.ok().as_deref(),
        Some(r#"&lt;\"&amp;\n&gt;|<\"&\n>|"\u003c\"\u0026\n\u003e""#)
    );
}
