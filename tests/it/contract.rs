//! The contract every connector keeps, as checks that any connector's real target can run:
//!
//! - granting and revoking are idempotent;
//! - nothing is granted to a person the target does not know: the grant fails for good and
//!   the target holds nothing for them;
//! - nothing is left behind after a failure: a grant whose target changed something and then
//!   failed (here its answer is lost, the hardest case) ends failed, and the target holds
//!   nothing — the revoke that follows every failed grant took it back;
//! - that revoke succeeds for a person the target does not know, so a refused stranger's
//!   grant ends failed rather than being retried forever as a failing revocation;
//! - a grant with an end is held until then, and revoked at the target when the scheduler
//!   runs after it.
//!
//! A connector implements [`Target`] for a real server of its kind (a test database, a test
//! directory, an HTTP receiver, a script) and calls [`check`]. docs/connectors/README.md
//! requires it of every connector added later.

use std::future::Future;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use gatehouse::connector::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, Connectors, Outcome, PersonRef,
};
use gatehouse::domain::audit::Actor;
use gatehouse::domain::diagnostic::Source;
use gatehouse::domain::directory::Directory;
use gatehouse::domain::grant::GrantState;
use gatehouse::domain::ids::GrantId;
use gatehouse::domain::policy::{PolicyContext, parse_policy};
use gatehouse::domain::validation::Ask;
use gatehouse::engine::{Engine, Facade, FakeClock};
use gatehouse::outbox::{LogChat, Worker};
use gatehouse::store::SledStore;

/// The role id every target maps to something of its own (a database role, a group).
pub const ROLE: &str = "member";

/// A real target, as the contract sees it.
pub trait Target {
    /// The connector under test, reaching the target; it maps [`ROLE`].
    fn connector(&self) -> Arc<dyn Connector>;
    /// Someone the target knows (a login, an entry, an account).
    fn known(&self) -> PersonRef;
    /// Someone it does not know.
    fn stranger(&self) -> PersonRef;
    /// Whether `person` holds [`ROLE`] at the target, read from the target itself.
    fn holds(&self, person: &PersonRef) -> impl Future<Output = bool>;
}

/// Every rule of the contract, in turn, against `target` (which must start with nobody
/// holding [`ROLE`]).
pub async fn check(target: &impl Target) {
    grants_and_revokes_are_idempotent(target).await;
    a_stranger_is_refused_for_good_and_holds_nothing(target).await;
    a_grant_whose_answer_is_lost_leaves_nothing_behind(target, Lost::Permanent).await;
    a_grant_whose_answer_is_lost_leaves_nothing_behind(target, Lost::EveryAttempt).await;
    a_strangers_failed_grant_ends_failed(target).await;
    an_expired_grant_is_revoked_when_the_scheduler_runs(target).await;
}

fn call(action: Action, person: PersonRef, grant: u64) -> ConnectorCall {
    ConnectorCall {
        action,
        grant: GrantId(grant),
        person,
        resource: "target".into(),
        role: ROLE.into(),
        expires_at: None,
        idempotency_key: format!("{action}:G-{grant}"),
        undo: false,
    }
}

async fn grants_and_revokes_are_idempotent(target: &impl Target) {
    let connector = target.connector();
    let known = target.known();
    for _ in 0..2 {
        connector
            .grant(&call(Action::Grant, known.clone(), 1))
            .await
            .unwrap_or_else(|e| panic!("granting {} (again): {e}", known.id));
    }
    assert!(target.holds(&known).await, "{} holds the role", known.id);
    for _ in 0..2 {
        connector
            .revoke(&call(Action::Revoke, known.clone(), 1))
            .await
            .unwrap_or_else(|e| panic!("revoking from {} (again): {e}", known.id));
    }
    assert!(
        !target.holds(&known).await,
        "{} no longer holds it",
        known.id
    );
}

async fn a_stranger_is_refused_for_good_and_holds_nothing(target: &impl Target) {
    let stranger = target.stranger();
    let err = target
        .connector()
        .grant(&call(Action::Grant, stranger.clone(), 2))
        .await
        .expect_err("a person the target does not know is refused");
    assert!(!err.is_transient(), "refused for good, not retried: {err}");
    assert!(!target.holds(&stranger).await);
}

/// How the answer of a grant that did change the target is lost.
#[derive(Clone, Copy, Debug)]
enum Lost {
    /// Once, with an error that is not retried.
    Permanent,
    /// At every attempt, with an error that is retried until the attempts run out.
    EveryAttempt,
}

/// The target's connector, except that every grant's answer is lost after the grant was
/// applied: what a timeout after the change, or a dropped connection, looks like.
struct LosesAnswers {
    inner: Arc<dyn Connector>,
    lost: Lost,
}

impl Connector for LosesAnswers {
    fn grant<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(async move {
            let applied = self.inner.grant(call).await;
            let said = format!("the answer to an applied grant was lost ({applied:?})");
            Err(match self.lost {
                Lost::Permanent => ConnectorError::Permanent(said),
                Lost::EveryAttempt => ConnectorError::Transient(said),
            })
        })
    }

    fn revoke<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        self.inner.revoke(call)
    }
}

async fn a_grant_whose_answer_is_lost_leaves_nothing_behind(target: &impl Target, lost: Lost) {
    let known = target.known();
    let connector = Arc::new(LosesAnswers {
        inner: target.connector(),
        lost,
    });
    let state = provision_through_gatehouse(target, connector, &known).await;
    assert!(
        matches!(state, GrantState::Failed { .. }),
        "{lost:?}: {state:?}"
    );
    assert!(
        !target.holds(&known).await,
        "{lost:?}: the grant the target applied was taken back"
    );
}

async fn a_strangers_failed_grant_ends_failed(target: &impl Target) {
    let stranger = target.stranger();
    let state = provision_through_gatehouse(target, target.connector(), &stranger).await;
    let GrantState::Failed { error, .. } = &state else {
        panic!(
            "the revoke that follows a stranger's failed grant must succeed, not keep failing: {state:?}"
        )
    };
    assert!(error.ends_with("(after 1 attempt)"), "{error}");
    assert!(!target.holds(&stranger).await);
}

/// A low-risk resource on the connector `target`, granted without approval.
const POLICY: &str = r#"
[defaults]
pending_ttl = "24h"
max_duration = "8h"

[[resources]]
id = "target"
name = "The target under test"
kind = "saas"
owners = ["owner"]
risk = "low"
connector = "target"
  [[resources.roles]]
  id = "member"

[[workflows]]
id = "low-risk"
when = { risk_at_most = "low" }
auto_approve = true
"#;

/// Gatehouse as a connector's target meets it: a sled store, a fake clock, the policy above
/// with `connector` behind its one resource, and the outbox worker that calls it.
struct Gatehouse {
    engine: Arc<Engine>,
    worker: Worker,
    clock: Arc<FakeClock>,
    _store: tempfile::TempDir,
}

impl Gatehouse {
    /// Knows the target's known person and its stranger, and an owner.
    fn new(target: &impl Target, connector: Arc<dyn Connector>) -> Self {
        let mut people = String::from("[[people]]\nid = \"owner\"\n");
        for someone in [target.known(), target.stranger()] {
            people.push_str(&format!("\n[[people]]\nid = \"{}\"\n", someone.id));
            if let Some(email) = &someone.email {
                people.push_str(&format!("email = \"{email}\"\n"));
            }
            for (name, account) in &someone.accounts {
                people.push_str(&format!("accounts.{name} = \"{account}\"\n"));
            }
        }
        let directory = Directory::parse(&Source::new("directory.toml", &people)).unwrap();
        let start = Utc::now();
        let context = PolicyContext {
            directory: &directory,
            connectors: None,
            now: start,
        };
        let (policy, _) = parse_policy(&Source::new("policy.toml", POLICY), &context)
            .unwrap_or_else(|e| panic!("{e}"));
        let clock = Arc::new(FakeClock::at(start));
        let store = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::new(
            Arc::new(SledStore::open(store.path()).unwrap()),
            policy,
            directory,
            clock.clone(),
        ));
        let mut connectors = Connectors::default();
        connectors.insert("target".into(), connector);
        let worker = Worker::new(engine.clone(), connectors, Arc::new(LogChat));
        Gatehouse {
            engine,
            worker,
            clock,
            _store: store,
        }
    }

    /// `person` asks for the target's role for an hour, and is approved at once.
    fn ask(&self, person: &PersonRef) -> GrantId {
        let ask = Ask {
            requester: person.id.clone(),
            resource: "target".into(),
            role: ROLE.into(),
            duration: Some("1h".parse().unwrap()),
            justification: "the connector contract".into(),
            ..Ask::default()
        };
        self.engine
            .submit(&Actor::person(&person.id), ask)
            .unwrap()
            .grant
            .expect("auto-approved")
            .id
    }

    async fn state(&self, grant: GrantId) -> GrantState {
        Facade::new(self.engine.clone())
            .grant(grant)
            .await
            .unwrap()
            .state
    }

    /// Moves the clock on by `minutes`, then runs the scheduler and the worker once; how
    /// many grants the scheduler started revoking.
    async fn after(&self, minutes: i64) -> usize {
        self.clock.advance(TimeDelta::minutes(minutes));
        let pass = self.engine.run_due(TimeDelta::zero()).unwrap();
        self.worker.run_due().await.unwrap();
        pass.revoked
    }
}

/// `person` asks for the target's role through Gatehouse; the grant's state once the worker
/// has nothing left to do.
async fn provision_through_gatehouse(
    target: &impl Target,
    connector: Arc<dyn Connector>,
    person: &PersonRef,
) -> GrantState {
    let gatehouse = Gatehouse::new(target, connector);
    let grant = gatehouse.ask(person);
    // Enough passes for every provisioning attempt and the revoke after them.
    for _ in 0..40 {
        gatehouse.worker.run_due().await.unwrap();
        let state = gatehouse.state(grant).await;
        if state.is_terminal() {
            return state;
        }
        gatehouse.clock.advance(TimeDelta::minutes(11));
    }
    gatehouse.state(grant).await
}

/// A one-hour grant is held at the target until its end, and taken back when the scheduler
/// runs after it.
async fn an_expired_grant_is_revoked_when_the_scheduler_runs(target: &impl Target) {
    let known = target.known();
    let gatehouse = Gatehouse::new(target, target.connector());
    let grant = gatehouse.ask(&known);
    gatehouse.worker.run_due().await.unwrap();
    assert!(target.holds(&known).await, "the grant is provisioned");

    assert_eq!(gatehouse.after(59).await, 0);
    assert!(target.holds(&known).await, "not due yet");

    assert_eq!(gatehouse.after(2).await, 1);
    assert!(!target.holds(&known).await, "revoked at the target");
    let state = gatehouse.state(grant).await;
    assert!(matches!(state, GrantState::Revoked { .. }), "{state:?}");
}

mod command;
mod webhook;
