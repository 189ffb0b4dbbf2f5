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
use gatehouse::store::{SledStore, Store};

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
async fn granting_and_revoking_twice_each_leaves_pg_auth_members_as_asked() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
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
async fn a_missing_login_is_a_permanent_failure_that_names_it() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
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
async fn odd_role_and_login_names_are_quoted_and_inject_nothing() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
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
async fn valid_until_follows_the_grant_and_is_never_moved_earlier() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
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
pub fn engine_in(dir: &Path, start: DateTime<Utc>) -> (Arc<Engine<SledStore>>, Arc<FakeClock>) {
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
    let engine = Engine::new(store, policy, directory, clock.clone());
    (Arc::new(engine), clock)
}

#[tokio::test]
async fn an_expired_grant_is_revoked_in_the_database_when_the_scheduler_runs() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
    alice_and_app_read(&pg).await;
    let mut connectors = Connectors::default();
    connectors.insert("pg".into(), connector(&pg, PG_MAPPING));
    let (engine, clock) = engine_in(&pg.dir().join("store"), Utc::now());
    let worker = Worker::new(engine.clone(), connectors, Arc::new(LogChat));

    let ask = Ask {
        requester: "alice".into(),
        resource: "app-db".into(),
        role: "read".into(),
        duration: Some("1h".parse().unwrap()),
        justification: "reading the orders table".into(),
        ..Ask::default()
    };
    let grant = engine
        .submit(&Actor::person(&"alice".into()), ask)
        .unwrap()
        .grant
        .expect("a low-risk request is approved at once");
    worker.run_due().await.unwrap();
    assert_eq!(pg.members_of("app_read").await, ["alice"]);

    clock.advance(TimeDelta::minutes(59));
    engine.run_due(TimeDelta::zero()).unwrap();
    worker.run_due().await.unwrap();
    assert_eq!(pg.members_of("app_read").await, ["alice"], "not due yet");

    clock.advance(TimeDelta::minutes(2));
    let pass = engine.run_due(TimeDelta::zero()).unwrap();
    assert_eq!(pass.revoked, 1);
    worker.run_due().await.unwrap();
    assert!(pg.members_of("app_read").await.is_empty());
    let stored = engine.store().grant(grant.id).unwrap().unwrap().value;
    assert!(
        matches!(stored.state, GrantState::Revoked { .. }),
        "{:?}",
        stored.state
    );
}

#[tokio::test]
async fn verify_full_checks_the_server_against_the_ca_file_and_plain_connections_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = crate::real::tls::certificates(dir.path());
    let Some(pg) = Postgres::start_with(Some(&certificates)).await else {
        return;
    };
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
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );
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

/// Gatehouse's own login with the least privilege that grants: NOINHERIT, ADMIN OPTION on
/// `app_read`, no CREATEROLE.
async fn least_privilege(pg: &Postgres) {
    pg.execute(
        "CREATE ROLE gatehouse LOGIN NOINHERIT; CREATE ROLE alice LOGIN; CREATE ROLE app_read; \
         GRANT app_read TO gatehouse WITH ADMIN OPTION;",
    )
    .await;
}

fn as_gatehouse(pg: &Postgres, extra: &str) -> Arc<dyn Connector> {
    let text = pg
        .connector_toml("pg")
        .replace("user = \"postgres\"", "user = \"gatehouse\"");
    connector_from(&format!("{text}{PG_MAPPING}{extra}"))
}

#[tokio::test]
async fn a_grant_whose_valid_until_is_refused_leaves_no_role_behind() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
    least_privilege(&pg).await;
    let connector = as_gatehouse(&pg, "valid_until = true\n");
    let until = Utc::now() + TimeDelta::hours(1);

    let err = connector
        .grant(&call(Action::Grant, "alice@example.com", Some(until)))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("SQLSTATE 42501"), "{err}");
    assert_eq!(
        pg.members_of("app_read").await,
        ["gatehouse"],
        "the GRANT was rolled back with the refused ALTER ROLE: alice holds nothing"
    );
    assert_eq!(pg.valid_until("alice").await, None);

    // Without valid_until the same privilege grants.
    as_gatehouse(&pg, "")
        .grant(&call(Action::Grant, "alice@example.com", Some(until)))
        .await
        .unwrap();
    assert_eq!(pg.members_of("app_read").await, ["alice", "gatehouse"]);
}

/// Runs the worker until nothing is due now, at most `passes` times.
pub async fn drain(worker: &Worker<SledStore>, passes: usize) {
    for _ in 0..passes {
        if worker.run_due().await.unwrap() == 0 {
            return;
        }
    }
}

#[tokio::test]
async fn a_failed_grant_is_taken_back_and_can_still_be_revoked_by_an_owner() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
    least_privilege(&pg).await;
    let mut connectors = Connectors::default();
    connectors.insert("pg".into(), as_gatehouse(&pg, "valid_until = true\n"));
    let (engine, _clock) = engine_in(&pg.dir().join("store"), Utc::now());
    let worker = Worker::new(engine.clone(), connectors, Arc::new(LogChat));
    let ask = Ask {
        requester: "alice".into(),
        resource: "app-db".into(),
        role: "read".into(),
        duration: Some("1h".parse().unwrap()),
        justification: "reading the orders table".into(),
        ..Ask::default()
    };
    let grant = engine
        .submit(&Actor::person(&"alice".into()), ask)
        .unwrap()
        .grant
        .unwrap();

    drain(&worker, 5).await;
    let stored = engine.store().grant(grant.id).unwrap().unwrap().value;
    let GrantState::Failed { error, .. } = &stored.state else {
        panic!("{:?}", stored.state)
    };
    assert!(error.contains("SQLSTATE 42501"), "{error}");
    assert!(error.ends_with("(after 1 attempt)"), "{error}");
    assert_eq!(pg.members_of("app_read").await, ["gatehouse"]);

    // What an older Gatehouse left behind after such a failure: the role, still held.
    pg.execute("GRANT app_read TO alice").await;
    let revoked = engine
        .revoke(
            &Actor::person(&"bob".into()),
            grant.id,
            "left by a failed grant",
        )
        .expect("a failed grant can be revoked");
    assert_eq!(revoked.state.name(), "revoking");
    drain(&worker, 5).await;
    assert_eq!(pg.members_of("app_read").await, ["gatehouse"]);
    let stored = engine.store().grant(grant.id).unwrap().unwrap().value;
    assert!(
        matches!(stored.state, GrantState::Revoked { .. }),
        "{:?}",
        stored.state
    );
}

#[tokio::test]
async fn a_login_template_that_names_a_group_role_grants_nothing() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
    // payments_submit is a group whose members would all inherit what it is granted.
    pg.execute(
        "CREATE ROLE app_read; CREATE ROLE payments_submit NOLOGIN; \
         CREATE ROLE carol LOGIN IN ROLE payments_submit;",
    )
    .await;
    let connector = connector(&pg, PG_MAPPING);
    let err = connector
        .grant(&call(Action::Grant, "payments_submit@example.com", None))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string().contains(
            "`payments_submit`, the login of payments_submit, is a role that cannot log in"
        ),
        "{err}"
    );
    assert!(pg.members_of("app_read").await.is_empty());
    connector
        .revoke(&call(Action::Revoke, "payments_submit@example.com", None))
        .await
        .expect("taking back from a group role is always allowed");
}

#[tokio::test]
async fn a_refused_password_is_retried_since_a_rotation_may_be_under_way() {
    let Some(pg) = Postgres::start_with_passwords().await else {
        return;
    };
    pg.execute(
        "CREATE ROLE gatehouse LOGIN CREATEROLE PASSWORD 'new-password'; \
         CREATE ROLE alice LOGIN; CREATE ROLE app_read;",
    )
    .await;
    let connector = as_gatehouse(&pg, "password = \"old-password\"\n");
    let err = connector
        .grant(&call(Action::Grant, "alice@example.com", None))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("SQLSTATE 28P01"), "{err}");
    assert!(err.to_string().contains("gatehouse reload"), "{err}");
    assert!(!err.to_string().contains("new-password") && !err.to_string().contains("old-password"));
}

/// Polls `check` every 100 ms until it holds, failing with `what` after 30 s.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what} within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn state_of(app: &TestApp, grant: &str) -> String {
    let (_, shown) = app.get(&format!("/api/v1/grants/{grant}")).await;
    shown["grant"]["state"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `person` asks for `resource` read for an hour (auto-approved); the grant's id.
async fn ask_for(app: &TestApp, person: &str, resource: &str) -> String {
    let (status, body) = app
        .post(
            "/api/v1/requests",
            json!({"as": person, "resource": resource, "role": "read", "duration": "1h", "reason": "reading"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["request"]["state"]["grant"]
        .as_str()
        .unwrap()
        .to_owned()
}

const WIKI: &str = r#"
[[resources]]
id = "wiki"
name = "Wiki database"
kind = "database"
owners = ["bob"]
risk = "low"
connector = "wiki-db"
  [[resources.roles]]
  id = "read"
"#;

#[tokio::test]
async fn a_reload_brings_a_rotated_password_and_a_new_connector_to_the_next_call() {
    let Some(pg) = Postgres::start_with_passwords().await else {
        return;
    };
    pg.execute(
        "CREATE ROLE gatehouse LOGIN CREATEROLE PASSWORD 'first-password'; \
         CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE app_read; CREATE ROLE wiki_read;",
    )
    .await;
    let connector = |id: &str, roles: &str| {
        let text = pg
            .connector_toml(id)
            .replace("user = \"postgres\"", "user = \"gatehouse\"");
        let mapping = PG_MAPPING.replace("roles = { read = \"app_read\" }", roles);
        format!("{text}password_file = \"pg-password\"\n{mapping}")
    };
    let app = spawn_app_with(|files| {
        std::fs::write(files.path("policy.toml"), POLICY).unwrap();
        std::fs::write(files.path("directory.toml"), DIRECTORY).unwrap();
        std::fs::write(files.path("pg-password"), "first-password\n").unwrap();
        let pg = connector("pg", "roles = { read = \"app_read\" }");
        files.edit("gatehouse.toml", |text| {
            format!("{text}\n{pg}\n[outbox]\nmax_backoff = \"1s\"\n")
        });
    })
    .await;
    let alices = ask_for(&app, "alice", "app-db").await;
    eventually("alice's grant is active", || async {
        state_of(&app, &alices).await == "active"
    })
    .await;
    assert_eq!(pg.members_of("app_read").await, ["alice"]);

    // The password is rotated in the database first; the revocation asked meanwhile is
    // refused (28P01) and keeps being retried.
    pg.execute("ALTER ROLE gatehouse PASSWORD 'second-password'")
        .await;
    let (status, body) = app
        .post(
            &format!("/api/v1/grants/{alices}/revoke"),
            json!({"as": "bob", "reason": "done"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(state_of(&app, &alices).await, "revoking");
    assert_eq!(pg.members_of("app_read").await, ["alice"]);

    // Then the file, and a second connector with a resource on it, and a reload.
    std::fs::write(app.files.path("pg-password"), "second-password\n").unwrap();
    let wiki = connector("wiki-db", "roles = { read = \"wiki_read\" }");
    app.files
        .edit("gatehouse.toml", |text| format!("{text}\n{wiki}"));
    app.files
        .edit("policy.toml", |text| format!("{text}\n{WIKI}"));
    let (status, body) = app.post("/api/v1/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    eventually(
        "the pending revocation goes through with the new password",
        || async { state_of(&app, &alices).await == "revoked" },
    )
    .await;
    assert!(pg.members_of("app_read").await.is_empty());
    let bobs = ask_for(&app, "bob", "app-db").await;
    let alices_wiki = ask_for(&app, "alice", "wiki").await;
    for grant in [&bobs, &alices_wiki] {
        eventually(&format!("{grant} is active"), || async {
            state_of(&app, grant).await == "active"
        })
        .await;
    }
    assert_eq!(pg.members_of("app_read").await, ["bob"]);
    assert_eq!(pg.members_of("wiki_read").await, ["alice"]);
    app.stop().await;
}

#[tokio::test]
async fn verify_full_trusts_every_certificate_of_a_ca_file_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = crate::real::tls::certificates(dir.path());
    let other = tempfile::tempdir().unwrap();
    let other_ca = crate::real::tls::certificates(other.path()).ca;
    let Some(pg) = Postgres::start_with(Some(&certificates)).await else {
        return;
    };
    pg.execute(
        "CREATE ROLE gatehouse LOGIN SUPERUSER; CREATE ROLE alice LOGIN; CREATE ROLE app_read;",
    )
    .await;
    // Another CA first, the server's second.
    let bundle = dir.path().join("bundle.pem");
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&other_ca).unwrap(),
        std::fs::read_to_string(&certificates.ca).unwrap()
    );
    std::fs::write(&bundle, text).unwrap();
    let text = pg
        .connector_toml("pg")
        .replace("user = \"postgres\"", "user = \"gatehouse\"")
        .replace(
            "sslmode = \"disable\"\n",
            &format!(
                "sslmode = \"verify-full\"\nca_file = \"{}\"\n",
                bundle.display()
            ),
        );
    connector_from(&format!("{text}{PG_MAPPING}"))
        .grant(&call(Action::Grant, "alice@example.com", None))
        .await
        .unwrap();
    assert_eq!(pg.members_of("app_read").await, ["alice"]);
}

/// A test database as a contract target: alice has a login, mallory has none.
struct Database<'a>(&'a Postgres);

impl crate::contract::Target for Database<'_> {
    fn connector(&self) -> Arc<dyn Connector> {
        connector(self.0, &PG_MAPPING.replace("read =", "member ="))
    }

    fn known(&self) -> PersonRef {
        call(Action::Grant, "alice@example.com", None).person
    }

    fn stranger(&self) -> PersonRef {
        call(Action::Grant, "mallory@example.com", None).person
    }

    async fn holds(&self, person: &PersonRef) -> bool {
        let members = self.0.members_of("app_read").await;
        members.iter().any(|m| m == person.id.as_str())
    }
}

#[tokio::test]
async fn the_postgres_connector_keeps_the_connector_contract() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
    alice_and_app_read(&pg).await;
    crate::contract::check(&Database(&pg)).await;
}
