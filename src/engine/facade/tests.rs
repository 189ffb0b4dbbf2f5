//! The facade over a real store: what front ends get back, and that they get nothing else.

use std::path::Path;

use super::*;
use crate::domain::diagnostic::Source;
use crate::domain::effect::{Alert, Effect};
use crate::domain::grant::GrantError;
use crate::domain::ids::{PersonId, RequestId};
use crate::domain::policy::tests::{EXAMPLE_DIRECTORY, example_policy};
use crate::domain::request::{Changes, RequestState};
use crate::engine::testing::{ask, engine_on, who};
use crate::store::{SledStore, Store, StoreError};

fn facade() -> Facade {
    Facade::new(engine_on(SledStore::temporary().unwrap()).0)
}

#[tokio::test]
async fn approving_the_last_stage_answers_with_the_grant_it_made() {
    let facade = facade();
    let asked = facade
        .submit(who("dan"), ask("dan", "staging-db", "read", "4h"))
        .await
        .unwrap();
    let id = asked.request.id;
    let first = facade.approve(who("bob"), id, Changes::default()).await;
    assert!(first.unwrap().grant.is_none(), "one stage of two");
    let last = facade
        .approve(who("carol"), id, Changes::default())
        .await
        .unwrap();
    let RequestState::Approved { grant, .. } = last.request.state else {
        panic!("{:?}", last.request.state)
    };
    assert_eq!(last.grant.map(|g| g.id), Some(grant));
    assert_eq!(facade.grant(grant).await.unwrap().person.as_str(), "dan");
}

#[tokio::test]
async fn only_the_holder_of_a_live_grant_may_open_its_extend_form() {
    let facade = facade();
    let asked = facade
        .submit(who("dan"), ask("dan", "staging-db", "read", "4h"))
        .await
        .unwrap();
    let id = asked.request.id;
    facade
        .approve(who("bob"), id, Changes::default())
        .await
        .unwrap();
    let grant = facade
        .approve(who("carol"), id, Changes::default())
        .await
        .unwrap()
        .grant
        .unwrap()
        .id;
    let dan = PersonId::new("dan");
    assert_eq!(
        facade.grant_to_extend(dan.clone(), grant).await.unwrap().id,
        grant
    );
    let bob = facade.grant_to_extend(PersonId::new("bob"), grant).await;
    assert!(
        matches!(bob, Err(EngineError::Grant(GrantError::NotHolder { .. }))),
        "{bob:?}"
    );
    facade.end_early(who("dan"), grant).await.unwrap();
    let ended = facade.grant_to_extend(dan, grant).await;
    assert!(
        matches!(
            ended,
            Err(EngineError::Grant(GrantError::WrongState { .. }))
        ),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_request_form_opens_only_for_whoever_may_decide_it_now() {
    let facade = facade();
    let id = facade
        .submit(who("dan"), ask("dan", "staging-db", "read", "4h"))
        .await
        .unwrap()
        .request
        .id;
    let bob = PersonId::new("bob");
    assert_eq!(
        facade.request_to_decide(bob.clone(), id).await.unwrap().id,
        id
    );
    let own = facade.request_to_decide(PersonId::new("dan"), id).await;
    assert!(matches!(own, Err(EngineError::Decision(_))), "{own:?}");
    let missing = facade.request_to_decide(bob, RequestId(999)).await;
    assert!(
        matches!(missing, Err(EngineError::NotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn every_delivery_key_is_remembered_and_a_repeat_of_any_is_no_first() {
    let facade = facade();
    let until = facade.now() + chrono::TimeDelta::hours(1);
    let keys = |names: &[&str]| names.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
    let first = facade.first_delivery(keys(&["a", "b"]), until).await;
    assert!(first.unwrap().is_some());
    let repeat = facade.first_delivery(keys(&["c", "b"]), until).await;
    assert!(repeat.unwrap().is_none());
    assert!(
        facade
            .first_delivery(keys(&["c"]), until)
            .await
            .unwrap()
            .is_none(),
        "c was recorded with the repeat"
    );
}

#[tokio::test]
async fn a_retry_that_arrives_while_the_first_delivery_is_handled_is_a_repeat() {
    let facade = facade();
    let until = facade.now() + chrono::TimeDelta::hours(1);
    let handling = facade
        .first_delivery(vec!["event:Ev1".into()], until)
        .await
        .unwrap()
        .expect("the first delivery");
    let retry = facade.first_delivery(vec!["event:Ev1".into()], until).await;
    assert!(retry.unwrap().is_none());
    drop(handling);
}

#[tokio::test]
async fn a_delivery_records_its_key_in_the_commit_of_its_work() {
    let store = Arc::new(SledStore::temporary().unwrap());
    let facade = Facade::new(crate::engine::testing::engine_sharing(store.clone()).0);
    let until = facade.now() + chrono::TimeDelta::hours(1);
    let handling = facade
        .first_delivery(vec!["command:T1".into()], until)
        .await
        .unwrap()
        .expect("the first delivery");
    assert!(
        !store.delivered("command:T1").unwrap(),
        "not recorded before the work"
    );
    handling
        .submit(who("dan"), ask("dan", "staging-db", "read", "4h"))
        .await
        .unwrap();
    assert!(
        store.delivered("command:T1").unwrap(),
        "recorded by the submission's commit, while the delivery is still being handled"
    );
}

#[tokio::test]
async fn of_two_replicas_handling_one_delivery_at_once_only_the_first_to_commit_acts() {
    // Two engines on one store, each with its own facade: two replicas, as when Discord hands
    // an interaction to the session of each.
    let store = Arc::new(SledStore::temporary().unwrap());
    let replica = || Facade::new(crate::engine::testing::engine_sharing(store.clone()).0);
    let (one, other) = (replica(), replica());
    let until = one.now() + chrono::TimeDelta::hours(1);
    let key = || vec!["discord:1".to_owned()];
    let first = one.first_delivery(key(), until).await.unwrap().unwrap();
    let second = other.first_delivery(key(), until).await.unwrap().unwrap();
    first
        .submit(who("dan"), ask("dan", "staging-db", "read", "4h"))
        .await
        .unwrap();
    // (Another request than the first's, so that nothing but the delivery refuses it.)
    let refused = second
        .submit(who("alice"), ask("alice", "staging-db", "read", "4h"))
        .await
        .unwrap_err();
    assert!(refused.is_user_error(), "{refused:?}");
    assert_eq!(refused.to_string(), "that was already handled");
    assert!(second.is_repeat() && !first.is_repeat());
    assert_eq!(one.requests(false, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_delivery_whose_work_failed_to_commit_is_done_again_when_it_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let until = crate::engine::testing::start() + chrono::TimeDelta::hours(1);
    let key = || vec!["event:Ev1".to_owned()];
    {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let facade = Facade::new(crate::engine::testing::engine_sharing(store.clone()).0);
        let handling = facade.first_delivery(key(), until).await.unwrap().unwrap();
        // The store stops writing (a storage error) before the delivery's work commits.
        store.halt(&sled::Error::Unsupported("the disk failed".into()));
        let failed = handling
            .submit(who("dan"), ask("dan", "staging-db", "read", "4h"))
            .await;
        assert!(
            matches!(failed, Err(EngineError::Store(StoreError::Halted(_)))),
            "{failed:?}"
        );
    }
    // After a restart, the platform's retry of the same delivery does the work.
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let facade = Facade::new(crate::engine::testing::engine_sharing(store.clone()).0);
    let retry = facade.first_delivery(key(), until).await.unwrap();
    let retry = retry.expect("the retry is handled: the failed work recorded nothing");
    let done = retry
        .submit(who("dan"), ask("dan", "staging-db", "read", "4h"))
        .await
        .unwrap();
    assert_eq!(
        facade.request(done.request.id).await.unwrap().requester,
        PersonId::new("dan")
    );
    assert!(store.delivered("event:Ev1").unwrap());
}

#[tokio::test]
async fn a_directory_the_policy_fails_is_still_put_in_force_and_security_is_told() {
    let engine = engine_on(SledStore::temporary().unwrap()).0;
    let facade = Facade::new(engine.clone());
    let pending = facade
        .submit(who("dan"), ask("dan", "prod-db", "read", "1h"))
        .await
        .unwrap()
        .request
        .id;
    let text = EXAMPLE_DIRECTORY.replacen(
        "title = \"Backend Engineer\"",
        "title = \"Backend Engineer\"\nactive = false",
        1,
    );
    let left = crate::domain::directory::Directory::parse(&Source::new("d.toml", &text)).unwrap();
    let problems = vec!["policy.toml:3: error: an owner has left".to_owned()];
    let report = facade
        .keep_policy_take_directory(left, problems.clone())
        .await
        .unwrap();
    assert_eq!(report.leavers, [PersonId::new("dan")]);
    let policy = &facade.world().policy;
    assert_eq!(policy.resources.len(), example_policy().resources.len());
    let request = facade.request(pending).await.unwrap();
    assert!(matches!(request.state, RequestState::Cancelled { .. }));
    let alerted = engine.store().outbox(1000).unwrap().into_iter().any(|e| {
        e.effect
            == Effect::Alert {
                alert: Alert::DirectoryOutOfPolicy {
                    problems: problems.clone(),
                },
            }
    });
    assert!(alerted);
}

/// The front ends: everything that answers people or operators.
const FRONT_ENDS: [&str; 7] = ["chat", "slack", "discord", "http", "ldap", "cli", "web"];

#[test]
fn front_ends_reach_the_engine_only_through_the_facade() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let engine = regex::Regex::new(
        r"engine::(\{[^}]*\bEngine\b[^}]*\}|Engine\b)|Arc<Engine>|&Engine\b|\.store\(\)",
    )
    .unwrap();
    let mut found = Vec::new();
    for front in FRONT_ENDS {
        for file in rust_files(&src.join(front)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                if engine.is_match(code) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
