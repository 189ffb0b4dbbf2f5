//! With the web portal on, approval cards link to the request's page; without it, they
//! carry no link at all.

use super::*;

fn linked() -> Templates {
    templates().link_to_portal(Some("https://gatehouse.example.com"))
}

const PAGE: &str = "https://gatehouse.example.com/web/requests/AR-12";

#[test]
fn approval_cards_link_to_the_request_page_when_the_portal_is_on() {
    let templates = linked();
    for (name, context) in [
        (
            "slack/approval_card.j2",
            json!({ "request": samples::sample_request() }),
        ),
        (
            "slack/approval_card_decided.j2",
            json!({ "request": samples::sample_decided_request() }),
        ),
    ] {
        let card = templates.render(name, &context).unwrap();
        let link = format!("<{PAGE}|Open AR-12 in the portal>");
        assert!(mrkdwn_texts(&card).contains(&link), "{name}: {card:#}");
    }
    for (name, context) in [
        (
            "discord/approval_card.j2",
            json!({ "request": samples::sample_request() }),
        ),
        (
            "discord/approval_card_decided.j2",
            json!({ "request": samples::sample_decided_request() }),
        ),
    ] {
        let card = templates.render(name, &context).unwrap();
        assert_eq!(card["embeds"][0]["url"], PAGE, "{name}: {card:#}");
    }
}

#[test]
fn approval_cards_carry_no_link_when_the_portal_is_off() {
    let card = render(
        "slack/approval_card.j2",
        json!({ "request": samples::sample_request() }),
    );
    assert!(!card.to_string().contains("/web/requests/"), "{card:#}");
    let card = render(
        "discord/approval_card.j2",
        json!({ "request": samples::sample_request() }),
    );
    assert!(card["embeds"][0].get("url").is_none(), "{card:#}");
}
