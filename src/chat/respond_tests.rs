//! What `/access pending` and `/access list` answer, over a real store.

use super::command::ChatCommand;
use super::respond::{Answer, run};
use crate::domain::ids::{PersonId, RequestId};
use crate::engine::Facade;
use crate::engine::testing::{ask, engine_on, who};
use crate::store::{Commit, Expect, RequestWrite, SledStore};

/// The lines of a `Say` answer.
fn lines(answer: Answer) -> Vec<String> {
    match answer {
        Answer::Say(_, lines) => lines,
        other => panic!("not a sentence: {other:?}"),
    }
}

#[tokio::test]
async fn an_approver_finds_their_oldest_request_behind_a_thousand_newer_ones() {
    let (engine, _clock) = engine_on(SledStore::temporary().unwrap());
    let asked = ask("alice", "staging-db", "write", "2h");
    let theirs = engine.submit(&who("alice"), asked).unwrap().request;
    // 1,001 newer pending requests that carol, not bob, decides.
    let mut commit = Commit::default();
    for n in 1..=1001 {
        let mut other = theirs.clone();
        other.id = RequestId(theirs.id.0 + n);
        other.requester = PersonId::new("dan");
        other.plan.stages[0].approvers = [PersonId::new("carol")].into();
        commit.requests.push(RequestWrite {
            request: other,
            expect: Expect::New,
            due: Some(theirs.expires_at),
        });
    }
    engine.commit(commit).unwrap();
    let facade = Facade::new(engine);

    let bob = PersonId::new("bob");
    let waiting = lines(run(&facade, &bob, ChatCommand::Pending).await);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(
        waiting[0].starts_with(&format!("{}:", theirs.id)),
        "{waiting:?}"
    );
    let carol = PersonId::new("carol");
    let carol = lines(run(&facade, &carol, ChatCommand::Pending).await);
    assert_eq!(carol.len(), 1001);
}
