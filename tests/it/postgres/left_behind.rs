//! The `postgres` connector leaves no access behind and grants none by mistake: a grant
//! refused halfway is rolled back and revocable, a group role is not a login, a rotated
//! password is retried and brought by a reload, every certificate of a CA bundle is trusted,
//! and the shared connector contract holds.

use super::*;
use crate::support::eventually;
use gatehouse::engine::Facade;

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
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn a_grant_whose_valid_until_is_refused_leaves_no_role_behind() {
    let pg = Postgres::start().await;
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

#[tokio::test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn a_failed_grant_is_taken_back_and_can_still_be_revoked_by_an_owner() {
    let pg = Postgres::start().await;
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
    let stored = Facade::new(engine.clone()).grant(grant.id).await.unwrap();
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
    let stored = Facade::new(engine.clone()).grant(grant.id).await.unwrap();
    assert!(
        matches!(stored.state, GrantState::Revoked { .. }),
        "{:?}",
        stored.state
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn a_login_template_that_names_a_group_role_grants_nothing() {
    let pg = Postgres::start().await;
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
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn a_refused_password_is_retried_since_a_rotation_may_be_under_way() {
    let pg = Postgres::start_with_passwords().await;
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
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn a_reload_brings_a_rotated_password_and_a_new_connector_to_the_next_call() {
    let pg = Postgres::start_with_passwords().await;
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
#[ignore = "needs PostgreSQL and openssl; .ci/run installs them"]
async fn verify_full_trusts_every_certificate_of_a_ca_file_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = crate::real::tls::certificates(dir.path());
    let other = tempfile::tempdir().unwrap();
    let other_ca = crate::real::tls::certificates(other.path()).ca;
    let pg = Postgres::start_with(Some(&certificates)).await;
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
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn the_postgres_connector_keeps_the_connector_contract() {
    let pg = Postgres::start().await;
    alice_and_app_read(&pg).await;
    crate::contract::check(&Database(&pg)).await;
}
