//! The `google` connector against a fake Admin SDK Directory API checked against Google's
//! discovery document, and a fake token endpoint that takes only a JWT bearer grant signed
//! by the service account's key ([`fake`]): memberships given and taken back, observed in
//! the fake's groups; the access token made once and kept; failures sorted.

mod fake;

use std::path::Path;
use std::sync::Arc;

use gatehouse::config::{Config, Env};
use gatehouse::connector::{
    Action, Connector, ConnectorCall, ConnectorError, Connectors, Outcome, PersonRef,
};
use gatehouse::domain::ids::GrantId;
use serde_json::json;

use crate::openapi::fake::Reply;
use fake::{ADMIN, FakeGoogle};

/// The connector's table for the fake, its key inline; `subject` is the admin it acts as.
fn toml(google: &FakeGoogle, subject: &str) -> String {
    format!(
        "[[connectors]]\nid = \"google\"\nkind = \"google\"\napi_url = \"{}\"\ntoken_url = \"{}\"\ncredentials = '''{}'''\nsubject = \"{subject}\"\ntimeout = \"5s\"\nroles = {{ member = \"oncall@example.com\", ghost = \"no-such-group@example.com\" }}\n",
        google.server.url,
        google.token_url(),
        fake::service_account_json(&google.token_url()),
    )
}

fn connector(text: &str) -> Arc<dyn Connector> {
    let config = Config::parse("gatehouse.toml", text, Path::new("/"), &Env::new())
        .unwrap_or_else(|e| panic!("{e}"));
    Connectors::from_config(&config.connectors)
        .unwrap()
        .get(&"google".into())
        .unwrap()
}

fn person(id: &str, email: Option<&str>) -> PersonRef {
    PersonRef {
        id: id.into(),
        email: email.map(str::to_owned),
        slack: None,
        discord: None,
        accounts: Default::default(),
    }
}

fn alice() -> PersonRef {
    person("alice", Some("alice@example.com"))
}

fn call(action: Action, person: PersonRef, role: &str) -> ConnectorCall {
    ConnectorCall {
        action,
        grant: GrantId(1),
        person,
        resource: "google".into(),
        role: role.into(),
        expires_at: None,
        idempotency_key: format!("{action}:G-1"),
        undo: false,
    }
}

async fn run(
    connector: &Arc<dyn Connector>,
    action: Action,
    who: PersonRef,
    role: &str,
) -> Outcome {
    connector
        .execute(&call(action, who, role))
        .await
        .unwrap_or_else(|e| panic!("{action} {role}: {e}"))
}

fn permanent(result: Result<Outcome, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Permanent(message)) => message,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn transient(result: Result<Outcome, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Transient(message)) => message,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_grant_inserts_the_member_and_a_revoke_deletes_them_each_repeatable() {
    let google = FakeGoogle::start().await;
    let connector = connector(&toml(&google, ADMIN));
    let added = run(&connector, Action::Grant, alice(), "member").await;
    assert_eq!(
        added.detail,
        "added alice@example.com to group oncall@example.com"
    );
    let again = run(&connector, Action::Grant, alice(), "member").await;
    assert_eq!(
        again.detail,
        "alice@example.com was already a member of group oncall@example.com"
    );
    assert!(
        google
            .google
            .is_member("oncall@example.com", "alice@example.com")
    );
    let removed = run(&connector, Action::Revoke, alice(), "member").await;
    assert_eq!(
        removed.detail,
        "removed alice@example.com from group oncall@example.com"
    );
    let again = run(&connector, Action::Revoke, alice(), "member").await;
    assert_eq!(
        again.detail,
        "alice@example.com was not a member of group oncall@example.com"
    );
    assert!(
        !google
            .google
            .is_member("oncall@example.com", "alice@example.com")
    );
    assert_eq!(
        google.google.state().tokens_made,
        1,
        "one access token, kept for every call"
    );
    let operations: Vec<String> = google
        .server
        .calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(
        operations,
        [
            "", // the token endpoint, outside the Directory API's description
            "directory.members.insert",
            "directory.members.insert",
            "directory.members.delete",
            "directory.members.delete",
        ]
    );
}

#[tokio::test]
async fn unknown_people_and_groups_are_permanent_failures_and_an_undo_for_them_succeeds() {
    let google = FakeGoogle::start().await;
    let connector = connector(&toml(&google, ADMIN));
    let mallory = person("mallory", Some("mallory@example.com"));
    let err = permanent(
        connector
            .grant(&call(Action::Grant, mallory.clone(), "member"))
            .await,
    );
    assert!(
        err.contains(
            "Google Workspace has no user or group `mallory@example.com` (the login of mallory"
        ),
        "{err}"
    );
    let err = permanent(
        connector
            .grant(&call(Action::Grant, alice(), "ghost"))
            .await,
    );
    assert!(
        err.contains("Google Workspace has no group `no-such-group@example.com` (role ghost)"),
        "{err}"
    );
    let err = permanent(
        connector
            .revoke(&call(Action::Revoke, alice(), "ghost"))
            .await,
    );
    assert!(
        err.contains("has no group `no-such-group@example.com`"),
        "{err}"
    );
    let err = permanent(
        connector
            .grant(&call(Action::Grant, person("carol", None), "member"))
            .await,
    );
    assert!(
        err.contains("cannot name carol with the connector's login template"),
        "{err}"
    );

    for (who, role) in [
        (mallory, "member"),
        (person("carol", None), "member"),
        (alice(), "ghost"),
    ] {
        let undo = ConnectorCall {
            undo: true,
            ..call(Action::Revoke, who, role)
        };
        let outcome = connector.revoke(&undo).await.unwrap();
        assert!(outcome.detail.starts_with("nothing to undo"), "{outcome:?}");
    }
}

#[tokio::test]
async fn a_subject_google_refuses_is_a_permanent_failure_naming_it() {
    let google = FakeGoogle::start().await;
    let connector = connector(&toml(&google, "someone-else@example.com"));
    let err = permanent(
        connector
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(
        err.contains("invalid_grant Invalid email or User ID"),
        "{err}"
    );
    assert!(
        err.contains("check subject (someone-else@example.com"),
        "{err}"
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_transient_and_a_retry_after_holds_the_connector() {
    let google = FakeGoogle::start().await;
    let connector = connector(&toml(&google, ADMIN));
    google.google.state().faults.push(
        Reply::json(
            403,
            json!({ "error": { "code": 403, "message": "Quota exceeded for quota metric 'Queries'", "errors": [{ "message": "Quota exceeded", "domain": "usageLimits", "reason": "rateLimitExceeded" }] } }),
        )
        .undocumented(),
    );
    let err = transient(
        connector
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(err.contains("answered 403: Quota exceeded"), "{err}");

    google.google.state().faults.push(
        Reply::json(
            503,
            json!({ "error": { "code": 503, "message": "The service is currently unavailable." } }),
        )
        .header("retry-after", 120)
        .undocumented(),
    );
    let err = transient(
        connector
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(err.contains("asked to wait 120s"), "{err}");
    let sent = google.server.calls().len();
    let err = transient(
        connector
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(err.contains("was not sent"), "{err}");
    assert_eq!(
        google.server.calls().len(),
        sent,
        "nothing sent before the time asked"
    );
}

#[tokio::test]
async fn an_access_token_google_refuses_is_made_again_at_the_next_try() {
    let google = FakeGoogle::start().await;
    let connector = connector(&toml(&google, ADMIN));
    run(&connector, Action::Grant, alice(), "member").await;
    google.google.state().tokens.clear();
    let err = transient(
        connector
            .revoke(&call(Action::Revoke, alice(), "member"))
            .await,
    );
    assert!(err.contains("Google refused the access token"), "{err}");
    run(&connector, Action::Revoke, alice(), "member").await;
    assert_eq!(google.google.state().tokens_made, 2);
    assert!(
        !google
            .google
            .is_member("oncall@example.com", "alice@example.com")
    );
}

/// The fake as a contract target: alice@ is a user of the domain, mallory@ is not.
struct Group {
    google: FakeGoogle,
}

impl crate::contract::Target for Group {
    fn connector(&self) -> Arc<dyn Connector> {
        connector(&toml(&self.google, ADMIN).replace(
            "roles = { member = ",
            &format!("roles = {{ {} = ", crate::contract::ROLE),
        ))
    }

    fn known(&self) -> PersonRef {
        alice()
    }

    fn stranger(&self) -> PersonRef {
        person("mallory", Some("mallory@example.com"))
    }

    async fn holds(&self, person: &PersonRef) -> bool {
        let email = person.email.clone().unwrap_or_default();
        self.google.google.is_member("oncall@example.com", &email)
    }
}

#[tokio::test]
async fn the_google_connector_keeps_the_connector_contract() {
    crate::contract::check(&Group {
        google: FakeGoogle::start().await,
    })
    .await;
}
