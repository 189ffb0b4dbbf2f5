//! The `postgres` connector against a real PostgreSQL server: every observation is made in
//! the server itself, in pg_auth_members and pg_roles.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use gatehouse::config::{Config, Env};
use gatehouse::connector::{Action, Connector, ConnectorCall, Connectors, PersonRef};
use gatehouse::domain::audit::Actor;
use gatehouse::domain::diagnostic::Source;
use gatehouse::domain::directory::Directory;
use gatehouse::domain::grant::GrantState;
use gatehouse::domain::ids::GrantId;
use gatehouse::domain::policy::{PolicyContext, parse_policy};
use gatehouse::domain::validation::Ask;
use gatehouse::engine::{Engine, FakeClock};
use gatehouse::outbox::{LogChat, Worker};
use gatehouse::store::SledStore;
use gatehouse::testing::tls::RUSTLS_UNKNOWN_ISSUER;

use reqwest::StatusCode;
use serde_json::json;

use crate::real::postgres::Postgres;
use crate::support::{TestApp, spawn_app_with};

/// One low-risk resource on the `pg` connector, granted without approval, and a workflow
/// that names the group `sre`.
pub const POLICY: &str = r#"
[defaults]
pending_ttl = "24h"
max_duration = "8h"

[[resources]]
id = "app-db"
name = "App database"
kind = "database"
owners = ["bob"]
risk = "low"
connector = "pg"
  [[resources.roles]]
  id = "read"

# Names group `sre`, so that the policy stops checking when the group goes away.
[[workflows]]
id = "sre-long"
when = { groups = ["sre"], duration_over = "6h" }
stages = [ { approvers = ["owners"], quorum = 1 } ]

[[workflows]]
id = "low-risk"
when = { risk_at_most = "low" }
auto_approve = true
"#;

pub const DIRECTORY: &str = r#"
[[people]]
id = "alice"
email = "alice@example.com"
manager = "bob"

[[people]]
id = "bob"
email = "bob@example.com"
groups = ["sre"]
"#;

/// What the `pg` connector adds to the server's connector lines: logins are the local part
/// of the email, and Gatehouse's `read` is the database role `app_read`.
pub const PG_MAPPING: &str =
    "login = \"{{ email | split(\\\"@\\\") | first }}\"\nroles = { read = \"app_read\" }\n";

fn connector(pg: &Postgres, extra: &str) -> Arc<dyn Connector> {
    connector_from(&format!("{}{extra}", pg.connector_toml("pg")))
}

fn connector_from(text: &str) -> Arc<dyn Connector> {
    let config = Config::parse("gatehouse.toml", text, Path::new("/"), &Env::new())
        .unwrap_or_else(|e| panic!("{e}"));
    Connectors::from_config(&config.connectors)
        .unwrap()
        .get(&"pg".into())
        .unwrap()
}

fn call(action: Action, email: &str, expires_at: Option<DateTime<Utc>>) -> ConnectorCall {
    ConnectorCall {
        action,
        grant: GrantId(1),
        person: PersonRef {
            id: email.split('@').next().unwrap().into(),
            email: Some(email.to_owned()),
            slack: None,
            discord: None,
            accounts: Default::default(),
        },
        resource: "app-db".into(),
        role: "read".into(),
        expires_at,
        idempotency_key: format!("{action}:G-1"),
        undo: false,
    }
}

async fn alice_and_app_read(pg: &Postgres) {
    pg.execute("CREATE ROLE alice LOGIN; CREATE ROLE app_read NOLOGIN;")
        .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn granting_and_revoking_twice_each_leaves_pg_auth_members_as_asked() {
    let pg = Postgres::start().await;
    alice_and_app_read(&pg).await;
    let connector = connector(&pg, PG_MAPPING);
    let grant = call(Action::Grant, "alice@example.com", None);

    let outcome = connector.grant(&grant).await.unwrap();
    assert_eq!(
        outcome.detail,
        "granted database role app_read to login alice"
    );
    connector
        .grant(&grant)
        .await
        .expect("granting again succeeds");
    assert_eq!(pg.members_of("app_read").await, ["alice"]);

    let revoke = call(Action::Revoke, "alice@example.com", None);
    connector.revoke(&revoke).await.unwrap();
    connector
        .revoke(&revoke)
        .await
        .expect("revoking again succeeds");
    assert!(pg.members_of("app_read").await.is_empty());
}

#[tokio::test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn a_missing_login_is_a_permanent_failure_that_names_it() {
    let pg = Postgres::start().await;
    alice_and_app_read(&pg).await;
    let connector = connector(&pg, PG_MAPPING);
    let err = connector
        .grant(&call(Action::Grant, "mallory@example.com", None))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string().contains("login `mallory` does not exist"),
        "{err}"
    );
    assert!(pg.members_of("app_read").await.is_empty());
}

#[tokio::test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn odd_role_and_login_names_are_quoted_and_inject_nothing() {
    let pg = Postgres::start().await;
    pg.execute(r#"CREATE ROLE "o'brien; DROP ROLE bob" LOGIN; CREATE ROLE bob; CREATE ROLE "App ""Read""";"#)
        .await;
    let connector = connector(&pg, "roles = { read = 'App \"Read\"' }\n");
    let mut grant = call(Action::Grant, "x@example.com", None);
    grant.person.id = "o'brien; DROP ROLE bob".into();
    connector.grant(&grant).await.unwrap();
    assert_eq!(
        pg.members_of("App \"Read\"").await,
        ["o'brien; DROP ROLE bob"]
    );
    assert_eq!(pg.members_of("bob").await, Vec::<String>::new());
    let exists = pg
        .admin()
        .await
        .query("SELECT 1 FROM pg_roles WHERE rolname = 'bob'", &[])
        .await
        .unwrap();
    assert_eq!(exists.len(), 1, "bob must still exist");
}

#[tokio::test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn valid_until_follows_the_grant_and_is_never_moved_earlier() {
    let pg = Postgres::start().await;
    alice_and_app_read(&pg).await;
    let connector = connector(&pg, &format!("{PG_MAPPING}valid_until = true\n"));
    let late = Utc.with_ymd_and_hms(2031, 1, 1, 12, 0, 0).unwrap();
    let early = Utc.with_ymd_and_hms(2030, 6, 1, 8, 30, 0).unwrap();

    connector
        .grant(&call(Action::Grant, "alice@example.com", Some(late)))
        .await
        .unwrap();
    assert_eq!(
        pg.valid_until("alice").await.as_deref(),
        Some("2031-01-01T12:00:00")
    );
    let outcome = connector
        .grant(&call(Action::Grant, "alice@example.com", Some(early)))
        .await
        .unwrap();
    assert!(
        outcome
            .detail
            .ends_with("login valid until unchanged (already later)"),
        "{}",
        outcome.detail
    );
    assert_eq!(
        pg.valid_until("alice").await.as_deref(),
        Some("2031-01-01T12:00:00")
    );
    assert_eq!(pg.members_of("app_read").await, ["alice"]);
}

/// The engine, with a fake clock, the test policy and directory, on a store in `dir`.
pub fn engine_in(dir: &Path, start: DateTime<Utc>) -> (Arc<Engine>, Arc<FakeClock>) {
    let directory = Directory::parse(&Source::new("directory.toml", DIRECTORY)).unwrap();
    let context = PolicyContext {
        directory: &directory,
        connectors: None,
        now: start,
    };
    let (policy, _) = parse_policy(&Source::new("policy.toml", POLICY), &context)
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(FakeClock::at(start));
    let store = SledStore::open(dir).unwrap();
    let engine = Engine::new(Arc::new(store), policy, directory, clock.clone());
    (Arc::new(engine), clock)
}

#[tokio::test]
#[ignore = "needs PostgreSQL and openssl; .ci/run installs them"]
async fn verify_full_checks_the_server_against_the_ca_file_and_plain_connections_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = crate::real::tls::certificates(dir.path());
    let pg = Postgres::start_with(Some(&certificates)).await;
    pg.execute(
        "CREATE ROLE gatehouse LOGIN SUPERUSER; CREATE ROLE alice LOGIN; CREATE ROLE app_read;",
    )
    .await;
    let over_tls = |settings: &str| {
        let text = pg
            .connector_toml("pg")
            .replace("user = \"postgres\"", "user = \"gatehouse\"")
            .replace("sslmode = \"disable\"\n", settings);
        connector_from(&format!("{text}{PG_MAPPING}"))
    };
    let ca = certificates.ca.display();

    let verified = over_tls(&format!("sslmode = \"verify-full\"\nca_file = \"{ca}\"\n"));
    verified
        .grant(&call(Action::Grant, "alice@example.com", None))
        .await
        .unwrap();
    assert_eq!(pg.members_of("app_read").await, ["alice"]);

    let unknown_ca = over_tls("sslmode = \"verify-full\"\n");
    let err = unknown_ca
        .revoke(&call(Action::Revoke, "alice@example.com", None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(RUSTLS_UNKNOWN_ISSUER), "{err}");
    assert_eq!(pg.members_of("app_read").await, ["alice"]);

    let plain = over_tls("sslmode = \"disable\"\n");
    let err = plain
        .revoke(&call(Action::Revoke, "alice@example.com", None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pg_hba.conf"), "{err}");

    let encrypted_only = over_tls("sslmode = \"require\"\n");
    encrypted_only
        .revoke(&call(Action::Revoke, "alice@example.com", None))
        .await
        .unwrap();
    assert!(pg.members_of("app_read").await.is_empty());
}

/// Runs the worker until nothing is due now, at most `passes` times.
pub async fn drain(worker: &Worker, passes: usize) {
    for _ in 0..passes {
        if worker.run_due().await.unwrap() == 0 {
            return;
        }
    }
}

mod left_behind;

#[tokio::test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn revocations_made_together_take_each_login_out_with_its_own_answer() {
    let pg = Postgres::start().await;
    pg.execute(
        "CREATE ROLE app_read NOLOGIN; CREATE ROLE app_write NOLOGIN; \
         CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN; \
         CREATE ROLE dave LOGIN; CREATE ROLE erin LOGIN; \
         GRANT app_read TO alice, bob, erin; GRANT app_write TO carol;",
    )
    .await;
    let connector = connector(
        &pg,
        "login = \"{{ email | split(\\\"@\\\") | first }}\"\nroles = { read = \"app_read\", write = \"app_write\" }\n",
    );
    assert!(connector.revoke_batch() > 1, "postgres takes many at once");
    let revoke = |email: &str, role: &str| {
        let mut call = call(Action::Revoke, email, None);
        call.role = role.into();
        call
    };
    let mut undo = revoke("ghost@example.com", "read");
    undo.undo = true;
    let calls = [
        revoke("alice@example.com", "read"),
        revoke("bob@example.com", "read"),
        revoke("carol@example.com", "write"),
        // Not a member: revoking what is gone succeeds.
        revoke("dave@example.com", "read"),
        revoke("mallory@example.com", "read"),
        undo,
    ];

    let answers = connector.revoke_many(&calls).await;
    let shown: Vec<String> = answers
        .iter()
        .map(|a| match a {
            Ok(outcome) => outcome.detail.clone(),
            Err(e) => format!("error: {e}"),
        })
        .collect();
    assert_eq!(shown[0], "revoked database role app_read from login alice");
    assert_eq!(shown[1], "revoked database role app_read from login bob");
    assert_eq!(shown[2], "revoked database role app_write from login carol");
    assert_eq!(shown[3], "revoked database role app_read from login dave");
    assert!(
        shown[4].contains("login `mallory` does not exist"),
        "{}",
        shown[4]
    );
    assert!(!answers[4].as_ref().unwrap_err().is_transient());
    assert_eq!(
        shown[5],
        "login ghost does not exist, so nothing was granted: nothing to undo"
    );
    assert_eq!(
        pg.members_of("app_read").await,
        ["erin"],
        "only erin keeps it"
    );
    assert!(pg.members_of("app_write").await.is_empty());

    let again = connector.revoke_many(&calls[..4]).await;
    assert!(
        again.iter().all(Result::is_ok),
        "revoking again succeeds: {again:?}"
    );
}
