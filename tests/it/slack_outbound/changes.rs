//! What the requester reads in Slack while approvers decide: their "submitted" DM follows
//! the request, each change an approver makes reaches them at once as a new DM (a new
//! message is what notifies; edits do not), and the outcome is one new DM that lists every
//! change, while the first DM shrinks to a status line.

use super::*;

fn all_text(message: &Message) -> String {
    format!(
        "{} {}",
        message.text.as_deref().unwrap_or_default(),
        message
            .blocks
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default()
    )
}

/// Alice's DMs whose notification text is `text`.
fn alices(rig: &Rig, text: &str) -> Vec<Message> {
    rig.dm("U01ALICE")
        .into_iter()
        .filter(|m| m.text.as_deref() == Some(text))
        .collect()
}

#[tokio::test]
async fn the_requester_hears_of_a_change_at_once_and_the_outcome_lists_it_in_one_new_dm() {
    let rig = rig().await;
    let id = rig.alice_asks_for_prod_db_admin();
    rig.drain().await;
    let submitted = only_card(&rig, "U01ALICE");
    assert!(shows(&submitted, "waiting for Bob Marsh"), "{submitted:#?}");

    let shorter = Changes {
        duration: Some("1h".parse().unwrap()),
        reason: Some("an hour is enough for the replica".to_owned()),
        ..Changes::default()
    };
    rig.engine
        .approve(&Actor::person(&"bob".into()), id, &shorter)
        .unwrap();
    rig.drain().await;
    let changed = alices(&rig, "AR-1 changed by Bob Marsh");
    assert_eq!(changed.len(), 1, "{:#?}", rig.dm("U01ALICE"));
    let said = all_text(&changed[0]);
    for words in [
        "Bob Marsh shortened the duration from 2h to 1h",
        "an hour is enough for the replica",
        "for 1h",
    ] {
        assert!(said.contains(words), "{words:?} in {said}");
    }
    let first = alices(&rig, "AR-1 is with its approvers");
    assert_eq!(first.len(), 1, "{:#?}", rig.dm("U01ALICE"));
    assert!(
        shows(&first[0], "for 1h") && shows(&first[0], "Owner approval"),
        "the first DM follows the request: {:#?}",
        first[0]
    );

    for approver in ["carol", "sam", "sue"] {
        rig.approve(approver, id);
    }
    rig.drain().await;
    let told = rig.dm("U01ALICE");
    assert_eq!(told.len(), 3, "submitted, changed, approved: {told:#?}");
    let approved = alices(&rig, "AR-1 approved");
    assert_eq!(approved.len(), 1, "one outcome: {told:#?}");
    assert!(
        shows(
            &approved[0],
            "Bob Marsh shortened the duration from 2h to 1h"
        ),
        "the outcome lists the change: {:#?}",
        approved[0]
    );
    let status = &told[0];
    assert_eq!(
        status.text.as_deref(),
        Some("Your request AR-1: approved"),
        "{status:#?}"
    );
    assert!(
        buttons(status).is_empty() && !shows(status, "header") && !shows(status, "Approvals"),
        "a status line, not an approver's card: {status:#?}"
    );
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}
