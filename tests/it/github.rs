//! The `github` connector against a fake GitHub whose every request and answer is checked
//! against GitHub's published REST API description ([`fake`]): team memberships and
//! repository collaborators given and taken back, observed in the fake's state; a GitHub
//! App's installation token made from a signed JWT and kept; both rate limits honoured; every
//! failure sorted into transient or permanent with what to fix.

mod fake;

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use gatehouse::config::{Config, Env};
use gatehouse::connector::{
    Action, Connector, ConnectorCall, ConnectorError, Connectors, Outcome, PersonRef,
};
use gatehouse::domain::ids::GrantId;
use serde_json::json;

use crate::openapi::fake::Reply;
use fake::{APP_ID, FakeGitHub, INSTALLATION, TOKEN};

const ROLES: &str = r#"roles = { member = "@acme/platform", lead = "@acme/platform:maintainer", deploy = "acme/api:push", read = "acme/api:pull", ghost = "@acme/no-such-team", gone = "acme/no-such-repo:pull" }"#;

/// The connector's table with a fine-grained token; `extra` adds keys.
fn token_toml(github: &FakeGitHub, extra: &str) -> String {
    format!(
        "[[connectors]]\nid = \"github\"\nkind = \"github\"\napi_url = \"{}\"\ntoken = \"{TOKEN}\"\ntimeout = \"5s\"\n{ROLES}\n{extra}",
        github.server.url
    )
}

/// The connector's table as a GitHub App.
fn app_toml(github: &FakeGitHub, app_id: &str) -> String {
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/rsa-test.pkcs1.pem");
    format!(
        "[[connectors]]\nid = \"github\"\nkind = \"github\"\napi_url = \"{}\"\napp_id = \"{app_id}\"\ninstallation_id = {INSTALLATION}\nprivate_key_file = \"{}\"\ntimeout = \"5s\"\n{ROLES}\n",
        github.server.url,
        key.display()
    )
}

/// The connector `text` configures, built as Gatehouse builds it.
fn connector(text: &str) -> Arc<dyn Connector> {
    let config = Config::parse("gatehouse.toml", text, Path::new("/"), &Env::new())
        .unwrap_or_else(|e| panic!("{e}"));
    Connectors::from_config(&config.connectors)
        .unwrap()
        .get(&"github".into())
        .unwrap()
}

/// A person whose GitHub login is `login` (none for `None`).
fn person(id: &str, login: Option<&str>) -> PersonRef {
    PersonRef {
        id: id.into(),
        email: Some(format!("{id}@example.com")),
        slack: None,
        discord: None,
        accounts: login
            .map(|l| [("github".to_owned(), l.to_owned())].into())
            .unwrap_or_default(),
    }
}

fn call(action: Action, person: PersonRef, role: &str) -> ConnectorCall {
    ConnectorCall {
        action,
        grant: GrantId(1),
        person,
        resource: "github".into(),
        role: role.into(),
        expires_at: None,
        idempotency_key: format!("{action}:G-1"),
        undo: false,
    }
}

fn alice() -> PersonRef {
    person("alice", Some("alice-gh"))
}

fn bob() -> PersonRef {
    person("bob", Some("bob-gh"))
}

async fn grant(connector: &Arc<dyn Connector>, who: PersonRef, role: &str) -> Outcome {
    connector
        .grant(&call(Action::Grant, who, role))
        .await
        .unwrap_or_else(|e| panic!("grant {role}: {e}"))
}

async fn revoke(connector: &Arc<dyn Connector>, who: PersonRef, role: &str) -> Outcome {
    connector
        .revoke(&call(Action::Revoke, who, role))
        .await
        .unwrap_or_else(|e| panic!("revoke {role}: {e}"))
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
async fn a_team_grant_adds_the_member_and_a_revoke_removes_them_each_repeatable() {
    let github = FakeGitHub::start().await;
    let connector = connector(&token_toml(&github, ""));

    let first = grant(&connector, alice(), "member").await;
    assert_eq!(
        first.detail,
        "added alice-gh to team @acme/platform as a member"
    );
    let again = grant(&connector, alice(), "member").await;
    assert_eq!(
        again.detail,
        "alice-gh was already a member of team @acme/platform (active)"
    );
    assert_eq!(
        github.github.team_role("platform", "alice-gh").as_deref(),
        Some("member")
    );
    assert_eq!(
        github.operations(),
        [
            "teams/get-membership-for-user-in-org",
            "teams/add-or-update-membership-for-user-in-org",
            "teams/get-membership-for-user-in-org",
        ],
        "a repeat looks and changes nothing"
    );

    let removed = revoke(&connector, alice(), "member").await;
    assert_eq!(removed.detail, "removed alice-gh from team @acme/platform");
    let again = revoke(&connector, alice(), "member").await;
    assert_eq!(
        again.detail,
        "alice-gh was not a member of team @acme/platform"
    );
    assert_eq!(github.github.team_role("platform", "alice-gh"), None);
}

#[tokio::test]
async fn a_maintainer_role_promotes_and_a_member_grant_never_demotes() {
    let github = FakeGitHub::start().await;
    let connector = connector(&token_toml(&github, ""));
    grant(&connector, alice(), "member").await;
    let promoted = grant(&connector, alice(), "lead").await;
    assert_eq!(
        promoted.detail,
        "added alice-gh to team @acme/platform as a maintainer"
    );
    let kept = grant(&connector, alice(), "member").await;
    assert_eq!(
        kept.detail,
        "alice-gh was already a maintainer of team @acme/platform (active)"
    );
    assert_eq!(
        github.github.team_role("platform", "alice-gh").as_deref(),
        Some("maintainer")
    );
}

#[tokio::test]
async fn someone_outside_the_organization_is_invited_and_joins_the_team_on_accepting() {
    let github = FakeGitHub::start().await;
    let connector = connector(&token_toml(&github, ""));
    let invited = grant(&connector, bob(), "member").await;
    assert_eq!(
        invited.detail,
        "invited bob-gh to organization acme as a member of team @acme/platform: they join it when they accept the invitation"
    );
    let again = grant(&connector, bob(), "member").await;
    assert_eq!(
        again.detail,
        "bob-gh was already a member of team @acme/platform (pending)"
    );
    revoke(&connector, bob(), "member").await;
    assert_eq!(github.github.team_role("platform", "bob-gh"), None);
}

#[tokio::test]
async fn an_organization_member_becomes_a_collaborator_and_a_lower_level_changes_nothing() {
    let github = FakeGitHub::start().await;
    let connector = connector(&token_toml(&github, ""));
    let given = grant(&connector, alice(), "deploy").await;
    assert_eq!(given.detail, "gave alice-gh push on repository acme/api");
    assert_eq!(
        github
            .github
            .collaborator("acme/api", "alice-gh")
            .as_deref(),
        Some("push")
    );
    let kept = grant(&connector, alice(), "read").await;
    assert_eq!(
        kept.detail,
        "alice-gh already had push on repository acme/api"
    );
    assert_eq!(
        github
            .github
            .collaborator("acme/api", "alice-gh")
            .as_deref(),
        Some("push"),
        "not lowered to pull"
    );
    let removed = revoke(&connector, alice(), "deploy").await;
    assert_eq!(
        removed.detail,
        "removed alice-gh as a collaborator of repository acme/api"
    );
    assert_eq!(github.github.collaborator("acme/api", "alice-gh"), None);
    revoke(&connector, alice(), "deploy").await;
}

#[tokio::test]
async fn an_outside_collaborator_is_invited_and_the_revoke_withdraws_the_invitation() {
    let github = FakeGitHub::start().await;
    let connector = connector(&token_toml(&github, ""));
    let invited = grant(&connector, bob(), "deploy").await;
    assert_eq!(
        invited.detail,
        "invited bob-gh to repository acme/api with push: access starts when they accept the invitation"
    );
    grant(&connector, bob(), "deploy").await;
    assert_eq!(
        github.github.invitations_for("acme/api", "bob-gh"),
        1,
        "a repeat renews the one invitation"
    );
    let removed = revoke(&connector, bob(), "deploy").await;
    assert_eq!(
        removed.detail,
        "removed bob-gh as a collaborator of repository acme/api and withdrew their invitation"
    );
    assert_eq!(github.github.invitations_for("acme/api", "bob-gh"), 0);
    let again = revoke(&connector, bob(), "deploy").await;
    assert_eq!(
        again.detail,
        "removed bob-gh as a collaborator of repository acme/api"
    );
}

#[tokio::test]
async fn unknown_logins_teams_and_repositories_are_permanent_failures_that_say_what_to_fix() {
    let github = FakeGitHub::start().await;
    let connector = connector(&token_toml(&github, ""));

    let stranger = person("mallory", Some("mallory-gh"));
    let err = permanent(
        connector
            .grant(&call(Action::Grant, stranger.clone(), "member"))
            .await,
    );
    assert!(
        err.contains("GitHub has no user `mallory-gh` (the GitHub login of mallory"),
        "{err}"
    );
    assert!(
        err.contains("fix their accounts.github in the directory"),
        "{err}"
    );
    let err = permanent(
        connector
            .grant(&call(Action::Grant, stranger, "deploy"))
            .await,
    );
    assert!(err.contains("GitHub has no user `mallory-gh`"), "{err}");

    let err = permanent(
        connector
            .grant(&call(Action::Grant, alice(), "ghost"))
            .await,
    );
    assert!(
        err.contains("team @acme/no-such-team (role ghost) is not found"),
        "{err}"
    );
    let err = permanent(
        connector
            .revoke(&call(Action::Revoke, alice(), "ghost"))
            .await,
    );
    assert!(
        err.contains("team @acme/no-such-team (role ghost) is not found, so alice-gh's membership cannot be removed"),
        "{err}"
    );
    let err = permanent(connector.grant(&call(Action::Grant, alice(), "gone")).await);
    assert!(
        err.contains("repository acme/no-such-repo (role gone) is not found"),
        "{err}"
    );
    let err = permanent(
        connector
            .revoke(&call(Action::Revoke, alice(), "gone"))
            .await,
    );
    assert!(
        err.contains("repository acme/no-such-repo (role gone) is not found, so alice-gh's access cannot be removed"),
        "{err}"
    );

    let nameless = person("carol", None);
    let err = permanent(
        connector
            .grant(&call(Action::Grant, nameless, "member"))
            .await,
    );
    assert!(
        err.contains("cannot name carol with the connector's login template"),
        "{err}"
    );
    assert!(err.contains("github"), "{err}");
    let err = permanent(
        connector
            .grant(&call(
                Action::Grant,
                person("dave", Some("dave@example.com")),
                "member",
            ))
            .await,
    );
    assert!(
        err.contains(
            "`dave@example.com` (the login template's value for dave) is not a GitHub login"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn undoing_a_failed_grant_for_someone_github_does_not_know_succeeds_with_nothing_to_undo() {
    let github = FakeGitHub::start().await;
    let connector = connector(&token_toml(&github, ""));
    for (who, role) in [
        (person("mallory", Some("mallory-gh")), "member"),
        (person("carol", None), "member"),
        (person("carol", None), "deploy"),
        (alice(), "gone"),
        (alice(), "ghost"),
    ] {
        let undo = ConnectorCall {
            undo: true,
            ..call(Action::Revoke, who.clone(), role)
        };
        let outcome = connector
            .revoke(&undo)
            .await
            .unwrap_or_else(|e| panic!("undo {role} for {}: {e}", who.id));
        assert!(outcome.detail.starts_with("nothing to undo"), "{outcome:?}");
    }
}

#[tokio::test]
async fn a_github_app_makes_one_installation_token_from_a_signed_jwt_and_keeps_it() {
    let github = FakeGitHub::start().await;
    github.github.state().tokens.clear();
    let connector = connector(&app_toml(&github, APP_ID));
    grant(&connector, alice(), "member").await;
    revoke(&connector, alice(), "member").await;
    assert_eq!(github.github.state().installation_tokens, 1);
    assert_eq!(
        github
            .server
            .calls_to("apps/create-installation-access-token")
            .len(),
        1
    );
}

#[tokio::test]
async fn an_installation_token_near_its_expiry_is_replaced_before_the_next_call() {
    let github = FakeGitHub::start().await;
    // GitHub's tokens live an hour; one with less than five minutes left is not used.
    github.github.state().token_lifetime = TimeDelta::minutes(4);
    let connector = connector(&app_toml(&github, APP_ID));
    grant(&connector, alice(), "member").await;
    grant(&connector, alice(), "member").await;
    let requests = github.server.calls().len() as u32;
    let made = github.github.state().installation_tokens;
    assert_eq!(
        (made, requests - made),
        (3, 3),
        "each of the three requests (look, add, look again) made its own token"
    );
}

#[tokio::test]
async fn an_installation_token_github_refuses_is_made_again_at_the_next_try() {
    let github = FakeGitHub::start().await;
    let connector = connector(&app_toml(&github, APP_ID));
    grant(&connector, alice(), "member").await;
    github.github.state().tokens.clear();
    let err = transient(
        connector
            .revoke(&call(Action::Revoke, alice(), "member"))
            .await,
    );
    assert!(
        err.contains("GitHub refused the installation token"),
        "{err}"
    );
    revoke(&connector, alice(), "member").await;
    assert_eq!(github.github.state().installation_tokens, 2);
    assert_eq!(github.github.team_role("platform", "alice-gh"), None);
}

#[tokio::test]
async fn credentials_github_does_not_accept_are_permanent_failures_naming_what_to_check() {
    let github = FakeGitHub::start().await;
    let wrong_app = connector(&app_toml(&github, "999999"));
    let err = permanent(
        wrong_app
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(err.contains("answered 401"), "{err}");
    assert!(err.contains("check app_id and private_key"), "{err}");

    let wrong_token =
        connector(&token_toml(&github, "").replace(TOKEN, "github_pat_11AAAAAAA0wrongtoken"));
    let err = permanent(
        wrong_token
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(err.contains("answered 401: Bad credentials"), "{err}");
    assert!(
        err.contains("does not accept the connector's token"),
        "{err}"
    );
    assert!(!err.contains("wrongtoken"), "no token in messages: {err}");
}

#[tokio::test]
async fn the_primary_rate_limit_holds_every_request_until_it_resets() {
    let github = FakeGitHub::start().await;
    let connector = connector(&token_toml(&github, ""));
    let reset = (Utc::now() + TimeDelta::minutes(2)).timestamp();
    github.github.state().faults.push_back(
        Reply::json(
            403,
            json!({ "message": "API rate limit exceeded for installation ID 7654321.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api" }),
        )
        .header("x-ratelimit-limit", 5000)
        .header("x-ratelimit-remaining", 0)
        .header("x-ratelimit-reset", reset)
        .undocumented(),
    );
    let err = transient(
        connector
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(err.contains("rate limit"), "{err}");
    assert!(err.contains("asked to wait 1"), "{err}");
    let sent = github.server.calls().len();
    let err = transient(
        connector
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(
        err.contains("was not sent: the service asked for a pause"),
        "{err}"
    );
    assert_eq!(
        github.server.calls().len(),
        sent,
        "nothing sent before the reset"
    );
}

#[tokio::test]
async fn a_secondary_rate_limit_holds_the_connector_for_retry_after_or_a_minute() {
    for fault in [
        Reply::json(
            403,
            json!({ "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com" }),
        )
        .undocumented(),
        Reply::json(429, json!({ "message": "too many requests" }))
            .header("retry-after", 30)
            .undocumented(),
    ] {
        let github = FakeGitHub::start().await;
        let connector = connector(&token_toml(&github, ""));
        github.github.state().faults.push_back(fault.clone());
        let err = transient(connector.grant(&call(Action::Grant, alice(), "member")).await);
        assert!(err.contains("secondary rate limit"), "{err}");
        let sent = github.server.calls().len();
        transient(connector.grant(&call(Action::Grant, alice(), "member")).await);
        assert_eq!(github.server.calls().len(), sent, "held after {}", fault.status);
    }
}

#[tokio::test]
async fn a_server_error_is_transient_and_a_refusal_names_the_permission_to_give() {
    let github = FakeGitHub::start().await;
    let connector = connector(&token_toml(&github, ""));
    github
        .github
        .state()
        .faults
        .push_back(Reply::json(502, json!({ "message": "Server Error" })).undocumented());
    let err = transient(
        connector
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(err.contains("answered 502: Server Error"), "{err}");

    github.github.state().faults.push_back(Reply::json(
        403,
        json!({ "message": "Resource not accessible by personal access token", "documentation_url": "https://docs.github.com" }),
    )
    .undocumented());
    let err = permanent(
        connector
            .grant(&call(Action::Grant, alice(), "member"))
            .await,
    );
    assert!(err.contains("Resource not accessible"), "{err}");
    assert!(err.contains("\"Members: read and write\""), "{err}");

    github.github.state().faults.push_back(Reply::json(
        403,
        json!({ "message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com" }),
    )
    .undocumented());
    let err = permanent(
        connector
            .grant(&call(Action::Grant, alice(), "deploy"))
            .await,
    );
    assert!(
        err.contains("the connector's token needs the repository permission \"Administration: read and write\""),
        "{err}"
    );
}

/// The fake GitHub as a contract target: alice-gh is a GitHub user, mallory-gh is not.
struct Team {
    github: FakeGitHub,
}

impl crate::contract::Target for Team {
    fn connector(&self) -> Arc<dyn Connector> {
        connector(&format!(
            "[[connectors]]\nid = \"github\"\nkind = \"github\"\napi_url = \"{}\"\ntoken = \"{TOKEN}\"\nroles = {{ {} = \"@acme/oncall\" }}\n",
            self.github.server.url,
            crate::contract::ROLE
        ))
    }

    fn known(&self) -> PersonRef {
        alice()
    }

    fn stranger(&self) -> PersonRef {
        person("mallory", Some("mallory-gh"))
    }

    async fn holds(&self, person: &PersonRef) -> bool {
        let login = person.accounts.get("github").cloned().unwrap_or_default();
        self.github.github.team_role("oncall", &login).is_some()
    }
}

#[tokio::test]
async fn the_github_connector_keeps_the_connector_contract() {
    crate::contract::check(&Team {
        github: FakeGitHub::start().await,
    })
    .await;
}
