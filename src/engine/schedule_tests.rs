//! The scheduler's use cases with a fake clock: hours of schedule in milliseconds.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};

use super::testing::{ask, engine_on, start};
use super::*;
use crate::domain::audit::Actor;
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::directory::Platform;
use crate::domain::effect::{Effect, Notice};
use crate::domain::grant::{Grant, GrantState};
use crate::domain::ids::{GrantId, RequestId};
use crate::domain::policy::tests::{example_directory, example_policy};
use crate::domain::request::RequestState;
use crate::engine::schedule::PASS_LIMIT;
use crate::scheduler::Scheduler;
use crate::store::{Commit, Expect, SledStore, Store};

const WARNING: TimeDelta = TimeDelta::minutes(15);

fn notices(engine: &Engine) -> Vec<(String, Notice)> {
    engine
        .store()
        .outbox(100_000)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.effect {
            Effect::Notify { to, notice } => Some((to.to_string(), notice)),
            _ => None,
        })
        .collect()
}

#[test]
fn approvers_are_reminded_then_escalated_then_the_request_expires() {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    let scheduler = Scheduler::new(engine.clone(), WARNING);
    // default workflow: manager (escalate_to manager:2), then owners.
    let id = engine
        .submit(
            &Actor::person(&"alice".into()),
            ask("alice", "staging-db", "read", "2h"),
        )
        .unwrap()
        .request
        .id;
    assert_eq!(
        engine.next_wake(WARNING).unwrap(),
        Some(start() + TimeDelta::hours(4))
    );

    clock.advance(TimeDelta::hours(3) + TimeDelta::minutes(59));
    assert!(
        scheduler.wake().unwrap().is_empty(),
        "nothing is due before 4h"
    );

    clock.advance(TimeDelta::minutes(1));
    assert_eq!(scheduler.wake().unwrap().reminded, 1);
    let reminder = (
        String::from("bob"),
        Notice::ApprovalReminder { request: id },
    );
    assert_eq!(
        notices(&engine).iter().filter(|n| **n == reminder).count(),
        1
    );

    clock.set(start() + TimeDelta::hours(8));
    assert_eq!(scheduler.wake().unwrap().escalated, 1);
    let request = engine.store().request(id).unwrap().unwrap().value;
    assert!(
        request.plan.stages[0].approvers.contains(&"erin".into()),
        "manager:2 added"
    );
    let card = Effect::ApprovalCard {
        request: id,
        approver: "erin".into(),
        stage: 0,
    };
    assert!(
        engine
            .store()
            .outbox(1000)
            .unwrap()
            .iter()
            .any(|e| e.effect == card)
    );

    clock.set(start() + TimeDelta::hours(24));
    assert_eq!(scheduler.wake().unwrap().expired, 1);
    let request = engine.store().request(id).unwrap().unwrap().value;
    assert!(matches!(request.state, RequestState::Expired { .. }));
    let monthly = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    assert_eq!(
        engine.next_wake(WARNING).unwrap(),
        Some(monthly),
        "only the review schedules are left"
    );
}

#[test]
fn a_jit_grant_is_warned_before_and_revoked_at_its_expiry() {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    let scheduler = Scheduler::new(engine.clone(), WARNING);
    let granted = engine
        .submit(
            &Actor::person(&"dan".into()),
            ask("dan", "grafana", "editor", "1h"),
        )
        .unwrap()
        .grant
        .unwrap();
    assert_eq!(
        engine.next_wake(WARNING).unwrap(),
        Some(start() + TimeDelta::minutes(45))
    );

    clock.set(start() + TimeDelta::minutes(45));
    assert_eq!(scheduler.wake().unwrap().warned, 1);
    assert_eq!(scheduler.wake().unwrap().warned, 0, "warned once");
    let warning = Notice::ExpiryWarning {
        grant: granted.id,
        expires_at: start() + TimeDelta::hours(1),
    };
    assert!(notices(&engine).contains(&("dan".into(), warning)));
    assert_eq!(
        engine.next_wake(WARNING).unwrap(),
        Some(start() + TimeDelta::hours(1))
    );

    clock.set(start() + TimeDelta::hours(1));
    assert_eq!(scheduler.wake().unwrap().revoked, 1);
    let grant = engine.store().grant(granted.id).unwrap().unwrap().value;
    assert!(matches!(grant.state, GrantState::Revoking { .. }));
    assert!(
        engine
            .store()
            .outbox(1000)
            .unwrap()
            .iter()
            .any(|e| e.effect == Effect::Deprovision { grant: granted.id })
    );
}

fn overdue_grant(id: u64, now: chrono::DateTime<Utc>) -> Grant {
    Grant {
        id: GrantId(id),
        person: "dan".into(),
        resource: "grafana".into(),
        role: "viewer".into(),
        request: RequestId(id),
        granted_at: now - TimeDelta::hours(2),
        expires_at: Some(now - TimeDelta::minutes(1 + (id % 60) as i64)),
        emergency: false,
        review: None,
        warned_at: None,
        state: GrantState::Active {
            since: now - TimeDelta::hours(2),
        },
    }
}

#[test]
fn a_restart_with_a_thousand_overdue_grants_revokes_them_all_first() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        for chunk in (1..=1000u64).collect::<Vec<_>>().chunks(100) {
            let grants = chunk
                .iter()
                .map(|&id| (overdue_grant(id, start()), Expect::New))
                .collect();
            store
                .commit(Commit {
                    grants,
                    ..Commit::default()
                })
                .unwrap();
        }
        // Gatehouse stops here (the store is dropped) with all of them overdue.
    }
    let (engine, _clock) = engine_on(SledStore::open(dir.path()).unwrap());
    let pass = Scheduler::new(engine.clone(), WARNING).wake().unwrap();
    assert_eq!(pass.revoked, 1000);
    let live = engine.store().grants(true, 10_000).unwrap();
    assert!(live.is_empty(), "{} grants still live", live.len());
    let deprovisions = engine
        .store()
        .outbox(10_000)
        .unwrap()
        .iter()
        .filter(|e| matches!(e.effect, Effect::Deprovision { .. }))
        .count();
    assert_eq!(deprovisions, 1000);
    let monthly = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    assert_eq!(engine.next_wake(WARNING).unwrap(), Some(monthly));
}

#[test]
fn overdue_grants_are_revoked_many_to_a_commit_each_with_its_own_audit_and_effects() {
    let (engine, _clock) = engine_on(SledStore::temporary().unwrap());
    // Even grants were warned before their end; grant 1 was warned, then extended.
    let grants = (1..=100u64)
        .map(|id| {
            let mut grant = overdue_grant(id, start());
            if id % 2 == 0 {
                grant.warned_at = Some(start() - TimeDelta::hours(1));
            }
            (grant, Expect::New)
        })
        .collect();
    engine
        .store()
        .commit(Commit {
            grants,
            cards: vec![posted_card(GrantId(1))],
            ..Commit::default()
        })
        .unwrap();
    let before = engine.store().write_stats().commits;
    assert_eq!(engine.revoke_expired_grants(1024).unwrap(), 100);
    let commits = engine.store().write_stats().commits - before;
    assert_eq!(
        commits,
        100u64.div_ceil(crate::engine::grants::TOGETHER as u64),
        "one commit per {} grants, not one each",
        crate::engine::grants::TOGETHER
    );
    let started = engine
        .store()
        .audit(1, 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action.name() == "revocation_started")
        .filter_map(|r| r.event.grant)
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(started.len(), 100, "each grant's revocation is audited");
    let outbox = engine.store().outbox(1000).unwrap();
    for id in 1..=100 {
        let grant = GrantId(id);
        assert!(matches!(
            engine.store().grant(grant).unwrap().unwrap().value.state,
            GrantState::Revoking { .. }
        ));
        let queued = |effect: Effect| outbox.iter().filter(|e| e.effect == effect).count();
        assert_eq!(queued(Effect::Deprovision { grant }), 1);
        assert_eq!(
            queued(Effect::RefreshGrantCards { grant }),
            0,
            "a grant that ran out keeps its warning until the connector confirms"
        );
    }
    // Once the connector confirms, a grant with an expiry warning has its buttons ended;
    // one never warned has none.
    let has_cards = |id: u64| id.is_multiple_of(2) || id == 1;
    for id in 1..=3 {
        let grant = GrantId(id);
        let mut then = Commit::default();
        engine.deprovisioned(grant, "removed", &mut then).unwrap();
        assert_eq!(
            then.effects.contains(&Effect::RefreshGrantCards { grant }),
            has_cards(id),
            "grant {id}"
        );
    }
    // A revocation that keeps failing ends them without waiting for the connector.
    for id in [4, 5] {
        let grant = GrantId(id);
        engine
            .revocation_failing(grant, "connection refused", 10)
            .unwrap();
        let queued = engine
            .store()
            .outbox(1000)
            .unwrap()
            .iter()
            .any(|e| e.effect == Effect::RefreshGrantCards { grant });
        assert_eq!(queued, has_cards(id), "grant {id}");
    }
}

/// A DM with buttons about `grant`, as an expiry warning leaves it.
fn posted_card(grant: GrantId) -> (CardKey, PostedCard) {
    let card = PostedCard {
        platform: Platform::Slack,
        channel: "D1".into(),
        message: "1700000000.000100".into(),
        recipient: "dan".into(),
        effect_key: "warning".into(),
    };
    (CardKey::Grant { grant }, card)
}

#[test]
fn every_grant_ending_soon_is_warned_even_more_than_a_pass_takes() {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    let count = PASS_LIMIT as u64 + 500;
    let ending = start() + TimeDelta::minutes(20);
    for chunk in (1..=count).collect::<Vec<_>>().chunks(250) {
        let grants = chunk
            .iter()
            .map(|&id| {
                let mut grant = overdue_grant(id, start());
                grant.expires_at = Some(ending + TimeDelta::milliseconds(100 * id as i64));
                (grant, Expect::New)
            })
            .collect();
        engine
            .store()
            .commit(Commit {
                grants,
                ..Commit::default()
            })
            .unwrap();
    }
    assert_eq!(
        engine.next_wake(WARNING).unwrap(),
        Some(ending + TimeDelta::milliseconds(100) - WARNING)
    );
    // Every one of them is inside the warning window, more than one pass reads.
    clock.set(ending);
    let scheduler = Scheduler::new(engine.clone(), WARNING);
    assert_eq!(
        scheduler.wake().unwrap().warned,
        500,
        "the last pass of the wake"
    );
    let warned = notices(&engine)
        .iter()
        .filter(|(_, n)| matches!(n, Notice::ExpiryWarning { .. }))
        .count();
    assert_eq!(warned as u64, count, "each grantee warned once");
    assert_eq!(scheduler.wake().unwrap().warned, 0);
    assert_eq!(
        engine.next_wake(WARNING).unwrap(),
        Some(ending + TimeDelta::milliseconds(100)),
        "next: the first expiry, no warning is owed"
    );
}

#[tokio::test(start_paused = true)]
async fn the_scheduler_task_sleeps_until_the_next_due_moment_and_wakes_for_new_work() {
    let (engine, _clock) = engine_on_tokio_time();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(Scheduler::new(engine.clone(), WARNING).run(shutdown));
    tokio::task::yield_now().await;

    // A new grant wakes the idle scheduler, which then sleeps until its expiry.
    let e = engine.clone();
    let granted = tokio::task::spawn_blocking(move || {
        e.submit(
            &Actor::person(&"dan".into()),
            ask("dan", "grafana", "editor", "30m"),
        )
        .unwrap()
        .grant
        .unwrap()
    })
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(31 * 60)).await;
    for _ in 0..50 {
        let grant = engine.store().grant(granted.id).unwrap().unwrap().value;
        if matches!(grant.state, GrantState::Revoking { .. }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let grant = engine.store().grant(granted.id).unwrap().unwrap().value;
    assert!(
        matches!(grant.state, GrantState::Revoking { .. }),
        "{:?}",
        grant.state
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stream_of_commits_is_planned_for_together_and_nothing_due_is_missed() {
    use std::sync::atomic::Ordering;
    let (engine, clock) = engine_on_tokio_time();
    let scheduler = Scheduler::new(engine.clone(), WARNING);
    let plans = scheduler.plans();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(scheduler.run(shutdown));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let before = plans.load(Ordering::Relaxed);
    assert!(before >= 1, "the scheduler planned its first wake");

    // 60 commits a millisecond apart; one of them a grant ending 40 ms after it.
    let ending = GrantId(1_000);
    for id in 1..=60u64 {
        let grant = if id == 30 {
            Grant {
                id: ending,
                expires_at: Some(clock.now() + TimeDelta::milliseconds(40)),
                ..standing_grant(1_000, "dan", "grafana", "editor")
            }
        } else {
            standing_grant(id, "erin", "grafana", "viewer")
        };
        engine
            .commit(Commit {
                grants: vec![(grant, Expect::New)],
                ..Commit::default()
            })
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let planned = plans.load(Ordering::Relaxed) - before;
    assert!(
        (1..=6).contains(&planned),
        "60 commits over ~60 ms planned for {planned} times, at most once per {:?} and once per wake",
        crate::scheduler::REPLAN_EVERY
    );
    let grant = engine.store().grant(ending).unwrap().unwrap().value;
    assert!(
        matches!(grant.state, GrantState::Revoking { .. }),
        "the grant that ended during the stream is being revoked: {:?}",
        grant.state
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// An engine on a temporary store and the example files, its clock on tokio's time.
fn engine_on_tokio_time() -> (Arc<Engine>, Arc<TokioClock>) {
    let clock = Arc::new(TokioClock::new(start()));
    let engine = Arc::new(Engine::new(
        Arc::new(SledStore::temporary().unwrap()),
        example_policy(),
        example_directory(),
        clock.clone(),
    ));
    (engine, clock)
}

/// A clock that follows tokio's (pausable) time, so the real scheduler loop runs in a test.
struct TokioClock {
    base: chrono::DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    fn new(base: chrono::DateTime<Utc>) -> Self {
        Self {
            base,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        self.base + TimeDelta::from_std(self.origin.elapsed()).unwrap()
    }
}

fn standing_grant(id: u64, person: &str, resource: &str, role: &str) -> Grant {
    Grant {
        expires_at: None,
        person: person.into(),
        resource: resource.into(),
        role: role.into(),
        ..overdue_grant(id, start())
    }
}

#[test]
fn a_review_campaign_revokes_what_nobody_kept() {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    let scheduler = Scheduler::new(engine.clone(), WARNING);
    let grants = vec![
        (standing_grant(1, "alice", "prod-db", "read"), Expect::New),
        (standing_grant(2, "dan", "prod-db", "read"), Expect::New),
        (standing_grant(3, "dan", "grafana", "viewer"), Expect::New),
    ];
    engine
        .store()
        .commit(Commit {
            grants,
            ..Commit::default()
        })
        .unwrap();
    scheduler.wake().unwrap(); // first sight of the schedules: nothing is replayed

    let quarter = Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap();
    clock.set(quarter);
    let pass = scheduler.wake().unwrap();
    assert_eq!(
        pass.campaigns_started, 2,
        "the quarterly and the monthly review both fired"
    );
    let campaign = engine
        .store()
        .campaigns(true)
        .unwrap()
        .into_iter()
        .find(|c| c.value.review == "quarterly-prod")
        .unwrap()
        .value;
    assert_eq!(campaign.items.len(), 2, "grafana is not in scope");
    let card = Effect::ReviewCard {
        campaign: campaign.id,
        grant: GrantId(1),
        reviewer: "carol".into(),
    };
    assert!(
        engine
            .store()
            .outbox(1000)
            .unwrap()
            .iter()
            .any(|e| e.effect == card)
    );

    let err = engine
        .decide_review(
            &Actor::person(&"alice".into()),
            campaign.id,
            GrantId(1),
            true,
        )
        .unwrap_err();
    assert!(err.to_string().contains("not a reviewer"), "{err}");
    engine
        .decide_review(
            &Actor::person(&"carol".into()),
            campaign.id,
            GrantId(1),
            true,
        )
        .unwrap();

    clock.set(quarter + TimeDelta::days(7));
    assert_eq!(scheduler.wake().unwrap().campaigns_timed_out, 1);
    let kept = engine.store().grant(GrantId(1)).unwrap().unwrap().value;
    let dropped = engine.store().grant(GrantId(2)).unwrap().unwrap().value;
    assert!(matches!(kept.state, GrantState::Active { .. }));
    assert!(
        matches!(dropped.state, GrantState::Revoking { .. }),
        "{:?}",
        dropped.state
    );
    assert!(engine.store().verify_audit().unwrap() > 0);
}

#[test]
fn a_review_decision_and_the_deadline_queue_a_refresh_of_the_cards_they_decide() {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    let scheduler = Scheduler::new(engine.clone(), WARNING);
    let grants = vec![
        (standing_grant(1, "alice", "prod-db", "read"), Expect::New),
        (standing_grant(2, "dan", "prod-db", "read"), Expect::New),
    ];
    engine
        .store()
        .commit(Commit {
            grants,
            // Alice has a message with buttons about grant 1.
            cards: vec![posted_card(GrantId(1))],
            ..Commit::default()
        })
        .unwrap();
    scheduler.wake().unwrap();
    let quarter = Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap();
    clock.set(quarter);
    scheduler.wake().unwrap();
    let campaign = engine
        .store()
        .campaigns(true)
        .unwrap()
        .into_iter()
        .find(|c| c.value.review == "quarterly-prod")
        .unwrap()
        .value;
    let queued = |effect: &Effect| {
        engine
            .store()
            .outbox(100_000)
            .unwrap()
            .iter()
            .any(|e| &e.effect == effect)
    };
    let refresh = |grant| Effect::RefreshReviewCards {
        campaign: campaign.id,
        grant: GrantId(grant),
    };
    assert!(!queued(&refresh(1)), "nothing is decided yet");

    engine
        .decide_review(
            &Actor::person(&"carol".into()),
            campaign.id,
            GrantId(1),
            false,
        )
        .unwrap();
    assert!(
        queued(&refresh(1)),
        "the decided item's cards lose their buttons"
    );
    assert!(
        queued(&Effect::RefreshGrantCards { grant: GrantId(1) }),
        "revoking it also ends its holder's buttons"
    );
    assert!(!queued(&refresh(2)));

    clock.set(quarter + TimeDelta::days(7));
    assert_eq!(scheduler.wake().unwrap().campaigns_timed_out, 1);
    assert!(queued(&refresh(2)), "the deadline decided the rest");
}

#[test]
fn emergency_reviewers_are_reminded_until_one_of_them_decides() {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    let scheduler = Scheduler::new(engine.clone(), WARNING);
    let mut emergency = ask("alice", "prod-db", "admin", "1h");
    emergency.emergency = true;
    emergency.fields.insert("ticket".into(), "INC-4300".into());
    let grant = engine
        .submit(&Actor::person(&"alice".into()), emergency)
        .unwrap()
        .grant
        .unwrap();

    clock.set(start() + TimeDelta::hours(4));
    let pass = scheduler.wake().unwrap();
    assert_eq!(
        (pass.revoked, pass.reviews_reminded),
        (1, 1),
        "expired, and still to be reviewed"
    );
    let reminded = |who: &str| {
        notices(&engine)
            .iter()
            .filter(|n| n.0 == who && n.1 == Notice::EmergencyReview { grant: grant.id })
            .count()
    };
    assert_eq!(reminded("sam"), 2, "told at once, then reminded");

    engine
        .review_emergency(
            &Actor::person(&"sue".into()),
            grant.id,
            true,
            "INC-4300 was real",
        )
        .unwrap();
    clock.set(start() + TimeDelta::hours(12));
    assert_eq!(scheduler.wake().unwrap().reviews_reminded, 0);
    assert_eq!(reminded("sam"), 2, "no reminder once reviewed");
}

#[test]
fn the_daily_digest_goes_to_the_security_channel_on_its_schedule() {
    let (engine, clock) = engine_on(SledStore::temporary().unwrap());
    let daily: cron::Schedule = "0 0 9 * * *".parse().unwrap();
    let scheduler = Scheduler::new(engine.clone(), WARNING).with_digest(Some(daily));
    engine
        .submit(
            &Actor::person(&"alice".into()),
            ask("alice", "staging-db", "read", "2h"),
        )
        .unwrap();
    scheduler.wake().unwrap();
    let digests = |engine: &Engine| {
        engine
            .store()
            .outbox(1000)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.effect {
                Effect::Alert {
                    alert: alert @ crate::domain::effect::Alert::Digest { .. },
                } => Some(alert),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(
        digests(&engine).is_empty(),
        "the first sight only starts the count"
    );
    clock.set(start() + TimeDelta::days(1));
    scheduler.wake().unwrap();
    scheduler.wake().unwrap();
    let sent = digests(&engine);
    assert_eq!(sent.len(), 1, "once per day");
    assert_eq!(
        sent[0],
        crate::domain::effect::Alert::Digest {
            pending_requests: 0,
            live_grants: 0,
            emergency_unreviewed: 0,
            revocations_failing: 0
        },
        "the request expired after 24h"
    );
}
