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

/// `commit` as the work of the delivery `key`.
fn delivering(key: &str, commit: Commit) -> Commit {
    Commit {
        deliveries: vec![(key.to_owned(), at(900))],
        ..commit
    }
}

pub fn a_delivery_is_recorded_by_the_commit_of_its_work_and_only_if_it_lands(
    backend: &impl Backend,
) {
    let store = backend.open();
    assert!(!store.delivered("command:T1").unwrap());
    store
        .commit(delivering("command:T1", submit(request(1, "ann"), 100)))
        .unwrap();
    assert!(store.delivered("command:T1").unwrap());
    assert!(
        !store.first_delivery("command:T1", at(900)).unwrap(),
        "a repeat"
    );
    // A commit that is refused records nothing: the retry of its delivery is new.
    let refused = store.commit(delivering("command:T2", submit(request(1, "ann"), 100)));
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    assert!(!store.delivered("command:T2").unwrap());
    drop(store);
    let store = backend.open();
    assert!(
        store.delivered("command:T1").unwrap(),
        "durable with its work"
    );
    assert!(!store.delivered("command:T2").unwrap());
}

pub fn a_commit_for_a_delivery_already_recorded_is_refused_whole(backend: &impl Backend) {
    let store = backend.open();
    assert!(store.first_delivery("event:Ev1", at(900)).unwrap());
    let again = store.commit(delivering("event:Ev1", submit(request(1, "ann"), 100)));
    assert!(matches!(again, Err(StoreError::Delivered)), "{again:?}");
    assert!(
        store.request(RequestId(1)).unwrap().is_none(),
        "nothing written"
    );
    // Two commits for one delivery at once (two replicas handling its retries): one lands,
    // the other is refused, whether they share a batch or not.
    let results = std::thread::scope(|scope| {
        let both: Vec<_> = [2, 3]
            .map(|id| {
                let store = &store;
                scope.spawn(move || {
                    store.commit(delivering("event:Ev2", submit(request(id, "bo"), 100)))
                })
            })
            .into_iter()
            .collect();
        both.into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    let landed = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Delivered)))
        .count();
    assert_eq!((landed, refused), (1, 1), "{results:?}");
    assert_eq!(store.requests(false, 10).unwrap().len(), 1);
}
