//! Posted cards are remembered per request, and platform deliveries are seen once.

use gatehouse::domain::card::{CardKey, PostedCard};
use gatehouse::domain::directory::Platform;
use gatehouse::domain::ids::{CampaignId, GrantId, RequestId};

use super::*;

fn card(recipient: &str, message: &str) -> PostedCard {
    PostedCard {
        platform: Platform::Slack,
        channel: format!("D-{recipient}"),
        message: message.into(),
        recipient: recipient.into(),
        effect_key: format!("card:AR-1:0:{recipient}"),
    }
}

pub fn cards_are_remembered_per_request_in_posting_order_and_once(backend: &impl Backend) {
    let store = backend.open();
    let key = CardKey::Request {
        request: RequestId(1),
    };
    assert!(store.cards(&key).unwrap().is_empty());
    for (who, ts) in [("bob", "1.1"), ("carol", "1.2"), ("bob", "1.1")] {
        let commit = Commit {
            cards: vec![(key, card(who, ts))],
            ..Commit::default()
        };
        store.commit(commit).unwrap();
    }
    let posted: Vec<(String, String)> = store
        .cards(&key)
        .unwrap()
        .into_iter()
        .map(|c| (c.recipient.to_string(), c.message))
        .collect();
    assert_eq!(
        posted,
        [
            ("bob".to_owned(), "1.1".to_owned()),
            ("carol".into(), "1.2".into())
        ]
    );
    let other = CardKey::Review {
        campaign: CampaignId(1),
        grant: GrantId(1),
    };
    assert!(store.cards(&other).unwrap().is_empty());
}

pub fn one_effects_cards_for_one_person_on_two_platforms_are_both_remembered(
    backend: &impl Backend,
) {
    let store = backend.open();
    let key = CardKey::Request {
        request: RequestId(1),
    };
    let on_discord = PostedCard {
        platform: Platform::Discord,
        channel: "1300".into(),
        message: "1301".into(),
        ..card("sam", "1.1")
    };
    let commit = Commit {
        cards: vec![(key, card("sam", "1.1")), (key, on_discord)],
        ..Commit::default()
    };
    store.commit(commit).unwrap();
    let platforms: Vec<Platform> = store
        .cards(&key)
        .unwrap()
        .into_iter()
        .map(|c| c.platform)
        .collect();
    assert_eq!(platforms, [Platform::Slack, Platform::Discord]);
}

pub fn a_delivery_is_first_only_once_until_it_is_forgotten(backend: &impl Backend) {
    let store = backend.open();
    assert!(store.first_delivery("slack:Ev123", at(300)).unwrap());
    assert!(!store.first_delivery("slack:Ev123", at(300)).unwrap());
    assert!(store.first_delivery("slack:Ev124", at(900)).unwrap());
    assert_eq!(store.forget_deliveries(at(600)).unwrap(), 1);
    assert!(
        store.first_delivery("slack:Ev123", at(1200)).unwrap(),
        "forgotten, so new again"
    );
    assert!(!store.first_delivery("slack:Ev124", at(900)).unwrap());
}
