//! Retries that meet a request which moved on, and Slack trouble while a retry looks for its
//! earlier post: still one message per effect, and every card closed in the end.

use super::*;

#[tokio::test]
async fn a_card_whose_answer_was_lost_is_closed_when_the_request_was_decided_before_its_retry() {
    let rig = rig().await;
    rig.fake
        .fail_next("chat.postMessage", 1, Fault::LostResponse);
    let id = rig.alice_asks_for_prod_db_admin();
    rig.drain().await;
    // Bob's card is in Slack, but Gatehouse does not know it; the retry waits for its time.
    assert_eq!(rig.dm("U0BOB").len(), 1);
    rig.engine
        .reject(&Actor::person(&"bob".into()), id, "not now")
        .unwrap();
    retry_for_a_while(&rig).await;

    assert_closed(&rig, "U0BOB", "Rejected by Bob Marsh");
    assert!(rig.store.outbox(10).unwrap().is_empty());
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}

#[tokio::test]
async fn a_retry_that_cannot_read_the_history_waits_rather_than_post_again() {
    let rig = rig().await;
    rig.fake
        .fail_next("chat.postMessage", 1, Fault::LostResponse);
    rig.fake
        .fail_next("conversations.history", 1, Fault::ServerError);
    rig.alice_asks_for_prod_db_admin();
    retry_for_a_while(&rig).await;

    assert_open(&rig, "U0BOB");
    assert_eq!(rig.fake.calls_to("conversations.history").len(), 2);
    assert!(rig.store.outbox(10).unwrap().is_empty());
}

#[tokio::test]
async fn the_requesters_cancel_button_goes_once_the_request_is_decided() {
    let rig = rig().await;
    let id = rig.alice_asks_for_prod_db_admin();
    rig.drain().await;
    let with_cancel = |rig: &Rig| {
        let told = rig.dm("U01ALICE");
        told.into_iter()
            .filter(|m| buttons(m).iter().any(|b| b == "gatehouse.cancel"))
            .count()
    };
    assert_eq!(with_cancel(&rig), 1, "{:#?}", rig.dm("U01ALICE"));
    rig.engine
        .reject(&Actor::person(&"bob".into()), id, "not now")
        .unwrap();
    rig.drain().await;
    assert_eq!(with_cancel(&rig), 0, "{:#?}", rig.dm("U01ALICE"));
    let told = rig.dm("U01ALICE");
    assert!(
        told.iter()
            .any(|m| m.edits >= 1 && shows(m, "for 2h: *rejected*")),
        "{told:#?}"
    );
}

#[tokio::test]
async fn an_updated_card_keeps_the_mark_a_retry_of_its_post_looks_for() {
    let rig = rig().await;
    let id = rig.alice_asks_for_prod_db_admin();
    rig.drain().await;
    rig.approve("bob", id);
    rig.drain().await;
    let card = only_card(&rig, "U0BOB");
    assert!(card.edits >= 1, "{card:#?}");
    let mark = format!("gatehouse:card:{id}:0:bob");
    assert!(
        card.blocks.as_ref().unwrap().to_string().contains(&mark),
        "{card:#?}"
    );
}
