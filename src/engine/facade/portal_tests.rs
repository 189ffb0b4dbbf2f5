//! The portal's facade calls on a real sled store with the example policy and a fake clock.

use chrono::TimeDelta;

use super::*;
use crate::domain::request::Changes;
use crate::engine::testing::{ask, engine_on, start, who};
use crate::store::{SledStore, Window};

/// Every row of a list, from its start.
fn every() -> Window {
    Window {
        after: None,
        ascending: true,
        limit: usize::MAX,
    }
}

fn facade() -> (Facade, std::sync::Arc<crate::engine::FakeClock>) {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    (Facade::new(engine), clock)
}

const TIMEOUTS: Timeouts = Timeouts {
    idle: TimeDelta::minutes(30),
    absolute: TimeDelta::hours(12),
};

#[tokio::test]
async fn opening_a_session_forgets_the_sessions_that_have_ended() {
    let (facade, clock) = facade();
    let old = Session::new("alice".into(), "c1".into(), start());
    facade
        .open_session("old".into(), old, TIMEOUTS)
        .await
        .unwrap();
    clock.advance(TimeDelta::hours(1));
    let new = Session::new("bob".into(), "c2".into(), facade.now());
    facade
        .open_session("new".into(), new, TIMEOUTS)
        .await
        .unwrap();
    assert_eq!(
        facade.session("old".into()).await.unwrap(),
        None,
        "idle for an hour"
    );
    assert!(facade.session("new".into()).await.unwrap().is_some());
    assert_eq!(facade.end_sessions_of("bob".into()).await.unwrap(), 1);
    assert_eq!(facade.session("new".into()).await.unwrap(), None);
}

#[tokio::test]
async fn an_audit_search_reads_newest_first_within_its_limit_and_says_where_to_go_on() {
    let (facade, clock) = facade();
    for (person, resource, role) in [
        ("alice", "prod-db", "read"),
        ("dan", "staging-db", "read"),
        ("alice", "staging-db", "read"),
        ("dan", "prod-db", "read"),
    ] {
        let asked = ask(person, resource, role, "2h");
        facade.submit(who(person), asked).await.unwrap();
        clock.advance(TimeDelta::hours(1));
    }
    let all = facade
        .audit_search(AuditQuery {
            limit: 100,
            budget: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let seqs: Vec<u64> = all.records.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    assert_eq!(all.head.as_ref().map(|h| h.seq), seqs.first().copied());

    let query = AuditQuery {
        person: Some("alice".into()),
        limit: 1,
        budget: 1000,
        ..AuditQuery::default()
    };
    let first = facade.audit_search(query.clone()).await.unwrap();
    assert_eq!(first.records.len(), 1);
    assert_eq!(
        first.records[0].event.actor.person_id(),
        Some(&"alice".into())
    );
    let events: Vec<String> = all
        .records
        .iter()
        .map(|r| format!("{} {} {}", r.seq, r.event.actor, r.event.action.name()))
        .collect();
    let before = first
        .more_before
        .unwrap_or_else(|| panic!("more to read: {events:?}"));
    let second = facade
        .audit_search(AuditQuery {
            before: Some(before),
            ..query.clone()
        })
        .await
        .unwrap();
    assert!(second.records[0].seq < first.records[0].seq);

    // Until the moment of the first submission: only what happened by then.
    let early = facade
        .audit_search(AuditQuery {
            until: Some(start()),
            limit: 100,
            budget: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(!early.records.is_empty());
    assert!(early.records.iter().all(|r| r.event.at <= start()));
    let by_resource = facade
        .audit_search(AuditQuery {
            resource: Some("staging-db".into()),
            limit: 100,
            budget: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(!by_resource.records.is_empty());
    assert_eq!(by_resource.records.len(), 2, "{events:?}");

    let about_one = facade
        .audit_search(AuditQuery {
            request: Some(RequestId(1)),
            limit: 100,
            budget: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(!about_one.records.is_empty());
    assert!(
        about_one
            .records
            .iter()
            .all(|r| r.event.request == Some(RequestId(1)))
    );
    let forward = facade
        .audit_search(AuditQuery {
            since: Some(start() + TimeDelta::minutes(30)),
            oldest_first: true,
            limit: 100,
            budget: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let seqs: Vec<u64> = forward.records.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );
    assert!(
        forward
            .records
            .iter()
            .all(|r| r.event.at >= start() + TimeDelta::minutes(30))
    );
    assert_eq!(
        forward.records.len(),
        all.records.len() - 1,
        "all but the first hour's"
    );
    // Oldest first a page at a time: each page goes on after the last one read.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = facade
            .audit_search(AuditQuery {
                since: Some(start() + TimeDelta::minutes(30)),
                oldest_first: true,
                after,
                limit: 2,
                budget: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        paged.extend(page.records.iter().map(|r| r.seq));
        match page.more_after {
            Some(seq) => after = Some(seq),
            None => break,
        }
    }
    assert_eq!(paged, seqs, "the pages hold every event once, in order");

    // A budget smaller than the log stops the search early, and says where it stopped.
    let budgeted = facade
        .audit_search(AuditQuery {
            person: Some("nobody".into()),
            limit: 100,
            budget: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(budgeted.records.is_empty());
    assert!(budgeted.more_before.is_some());
}

#[tokio::test]
async fn review_items_wait_for_their_reviewers_until_one_decides() {
    let (facade, clock) = facade();
    let id = facade
        .submit(who("alice"), ask("alice", "prod-db", "read", "2h"))
        .await
        .unwrap()
        .request
        .id;
    facade
        .approve(who("bob"), id, Changes::default())
        .await
        .unwrap();
    facade
        .approve(who("carol"), id, Changes::default())
        .await
        .unwrap();
    let engine = facade.engine.clone();
    engine.start_due_campaigns().unwrap();
    let campaign = loop {
        let next = engine.next_review_moment().unwrap().unwrap();
        clock.set(next);
        engine.start_due_campaigns().unwrap();
        let open = engine.store.campaigns(true).unwrap();
        if let Some(c) = open
            .into_iter()
            .find(|c| c.value.review == "quarterly-prod")
        {
            break c.value.id;
        }
    };
    let waiting = facade.reviews_for("carol".into(), every()).await.unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let (found, item, grant) = &waiting[0];
    assert_eq!(
        (found.id, &item.person, grant.id),
        (campaign, &"alice".into(), item.grant)
    );
    assert!(
        facade
            .reviews_for("alice".into(), every())
            .await
            .unwrap()
            .is_empty(),
        "not her own"
    );
    facade
        .decide_review(who("carol"), campaign, item.grant, true)
        .await
        .unwrap();
    assert!(
        facade
            .reviews_for("carol".into(), every())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn review_items_are_read_a_page_at_a_time_by_campaign_then_grant() {
    use crate::domain::policy::OnTimeout;
    use crate::domain::review::{Campaign, ReviewItem};
    use crate::store::{Commit, Expect, Mark, Store};

    let store = std::sync::Arc::new(SledStore::temporary().unwrap());
    let (engine, _clock) = crate::engine::testing::engine_sharing(store.clone());
    let facade = Facade::new(engine);
    let grant = |id: u64| Grant {
        id: GrantId(id),
        ..crate::chat::views::samples::grant()
    };
    let item = |id: u64, reviewer: &str| ReviewItem {
        grant: GrantId(id),
        person: "alice".into(),
        resource: "prod-db".into(),
        role: "admin".into(),
        reviewers: [reviewer.into()].into(),
        decision: None,
    };
    let campaign = |id: u64, items: Vec<ReviewItem>| Campaign {
        id: crate::domain::ids::CampaignId(id),
        review: "quarterly-prod".into(),
        started_at: start(),
        deadline: start() + TimeDelta::days(7),
        on_timeout: OnTimeout::Keep,
        escalated: false,
        items,
        closed_at: None,
    };
    // Campaign 1 asks carol about G-3 and G-1 (and dan about G-2); campaign 2 about G-2.
    store
        .commit(Commit {
            grants: (1..=3).map(|id| (grant(id), Expect::New)).collect(),
            campaigns: vec![
                (
                    campaign(1, vec![item(3, "carol"), item(2, "dan"), item(1, "carol")]),
                    Expect::New,
                ),
                (campaign(2, vec![item(2, "carol")]), Expect::New),
            ],
            ..Commit::default()
        })
        .unwrap();
    let read = |after: Option<Mark>, ascending: bool| {
        let facade = facade.clone();
        async move {
            let window = Window {
                after,
                ascending,
                limit: 2,
            };
            let rows = facade.reviews_for("carol".into(), window).await.unwrap();
            rows.iter()
                .map(|(c, item, g)| {
                    assert_eq!(item.grant, g.id);
                    (c.id.0, g.id.0)
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(None, true).await, [(1, 1), (1, 3)]);
    let after = Some(Mark { at_ms: 1, id: 3 });
    assert_eq!(read(after, true).await, [(2, 2)]);
    assert_eq!(read(None, false).await, [(2, 2), (1, 3)]);
    assert_eq!(read(after, false).await, [(1, 1)]);
}
