//! The LDAP directory source against a real OpenLDAP server: what a read gives, and, through
//! the running server, leavers in LDAP losing a real PostgreSQL role and reloads keeping the
//! directory read from LDAP. Every observation is read back from the servers themselves.

use std::time::Duration;

use gatehouse::ldap::sync::{LdapDirectory, SyncSettings};
use reqwest::StatusCode;
use serde_json::json;

use crate::ldap::config;
use crate::postgres::{DIRECTORY, PG_MAPPING, POLICY};
use crate::real::ldap::{ADMIN_DN, ADMIN_PASSWORD, GROUPS, PEOPLE, Slapd, person_dn};
use crate::real::postgres::Postgres;
use crate::support::{TestApp, eventually, spawn_app_with};

async fn example_people(slapd: &Slapd) {
    slapd
        .add_person(
            "bob",
            &[("mail", &["bob@example.com"]), ("title", &["Head of SRE"])],
        )
        .await;
    let bob = person_dn("bob");
    slapd
        .add_person(
            "alice",
            &[
                ("mail", &["alice@example.com"]),
                ("manager", &[&bob]),
                ("departmentNumber", &["engineering"]),
                ("employeeType", &["staff"]),
            ],
        )
        .await;
    slapd
        .add_person("carol", &[("employeeType", &["terminated"])])
        .await;
    slapd
        .add_group(
            "security",
            "groupOfNames",
            "member",
            &[&bob, &person_dn("alice")],
        )
        .await;
}

/// alice, bob and carol with their emails, and group `sre` of bob alone.
async fn alice_bob_and_carol(slapd: &Slapd) {
    for uid in ["alice", "bob", "carol"] {
        let mail = format!("{uid}@example.com");
        slapd.add_person(uid, &[("mail", &[&mail])]).await;
    }
    slapd
        .add_group("sre", "groupOfNames", "member", &[&person_dn("bob")])
        .await;
}

/// The server on the PostgreSQL tests' policy and directory.toml, with `connectors` added
/// and the directory read from `slapd`, its groups searched under `GROUPS`.
async fn serve_with_ldap(slapd: &Slapd, policy: &str, connectors: &str, extra: &str) -> TestApp {
    let section = directory_section(slapd, &format!("group_base_dn = \"{GROUPS}\"\n{extra}"));
    spawn_app_with(|files| {
        std::fs::write(files.path("policy.toml"), policy).unwrap();
        std::fs::write(files.path("directory.toml"), DIRECTORY).unwrap();
        files.edit("gatehouse.toml", |text| {
            format!("{text}\n{connectors}\n{section}")
        });
    })
    .await
}

/// `person` asks for app-db read for 4 hours (auto-approved by the policy).
fn asks(person: &str) -> serde_json::Value {
    json!({
        "as": person, "resource": "app-db", "role": "read",
        "duration": "4h", "reason": "reading the orders table",
    })
}

fn directory_section(slapd: &Slapd, extra: &str) -> String {
    format!(
        "[directory]\nsource = \"ldap\"\nsync_every = \"1s\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\nbind_password = \"{ADMIN_PASSWORD}\"\nbase_dn = \"{PEOPLE}\"\ninactive_attribute = \"employeeType\"\ninactive_values = [\"terminated\"]\n{extra}",
        slapd.url()
    )
}

#[tokio::test]
#[ignore = "needs OpenLDAP (slapd); .ci/run installs it"]
async fn the_directory_read_from_ldap_has_managers_groups_and_leavers() {
    let slapd = Slapd::start().await;
    example_people(&slapd).await;

    for groups in ["", &format!("group_base_dn = \"{GROUPS}\"\n")] {
        let config = config(&directory_section(&slapd, groups));
        let source = LdapDirectory::from_config(&config.directory).unwrap();
        let mapped = source.read().await.unwrap();
        let directory = &mapped.directory;
        let alice = directory.person(&"alice".into()).unwrap();
        assert_eq!(alice.manager, Some("bob".into()), "{groups}");
        assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
        assert_eq!(alice.department.as_deref(), Some("engineering"));
        assert!(alice.active);
        let security: Vec<&str> = directory
            .members(&"security".into())
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(security, ["alice", "bob"], "groups {groups:?}");
        let bob = directory.person(&"bob".into()).unwrap();
        assert_eq!(bob.title.as_deref(), Some("Head of SRE"));
        assert!(!directory.person(&"carol".into()).unwrap().active);
    }
}

#[tokio::test]
#[ignore = "needs OpenLDAP (slapd); .ci/run installs it"]
async fn a_failing_ldap_read_says_why_and_changes_nothing() {
    let slapd = Slapd::start().await;
    let wrong = directory_section(&slapd, "").replace(ADMIN_PASSWORD, "not-the-password");
    let source = LdapDirectory::from_config(&config(&wrong).directory).unwrap();
    let err = source.read().await.unwrap_err();
    assert!(err.to_string().contains("invalidCredentials"), "{err}");

    let empty =
        LdapDirectory::from_config(&config(&directory_section(&slapd, "")).directory).unwrap();
    let err = empty.read().await.unwrap_err();
    assert!(err.to_string().contains("found no people"), "{err}");
}

/// Polls `members_of(role)` until it is `expected`.
async fn wait_for_members(pg: &Postgres, role: &str, expected: &[&str]) {
    let what = format!("{role} to have the members {expected:?}");
    eventually(&what, || async {
        let members = pg.members_of(role).await;
        (members == expected)
            .then_some(())
            .ok_or(format!("{role} has members {members:?}"))
    })
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and OpenLDAP (slapd); .ci/run installs them"]
async fn leavers_deactivated_or_removed_in_ldap_lose_their_database_role() {
    let pg = Postgres::start().await;
    let slapd = Slapd::start().await;
    pg.execute("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE app_read;")
        .await;
    slapd
        .add_person("alice", &[("mail", &["alice@example.com"])])
        .await;
    slapd
        .add_person("bob", &[("mail", &["bob@example.com"])])
        .await;
    slapd
        .add_group("sre", "groupOfNames", "member", &[&person_dn("bob")])
        .await;
    let connectors = format!("{}{PG_MAPPING}", pg.connector_toml("pg"));
    let app = serve_with_ldap(&slapd, POLICY, &connectors, "").await;

    for person in ["alice", "bob"] {
        let (status, body) = app.post("/api/v1/requests", asks(person)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["request"]["state"]["state"], "approved", "{body}");
    }
    wait_for_members(&pg, "app_read", &["alice", "bob"]).await;

    slapd
        .replace(&person_dn("alice"), "employeeType", &["terminated"])
        .await;
    wait_for_members(&pg, "app_read", &["bob"]).await;

    // bob is all of group sre, which the policy names: without him the policy no longer
    // checks, and he is offboarded all the same.
    slapd.delete(&person_dn("bob")).await;
    wait_for_members(&pg, "app_read", &[]).await;

    let (_, live) = app.get("/api/v1/grants?live=true").await;
    assert_eq!(
        live["grants"],
        json!([]),
        "every grant is recorded as ended"
    );
    app.stop().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and OpenLDAP (slapd); .ci/run installs them"]
async fn a_reload_keeps_the_directory_read_from_ldap_rather_than_the_file() {
    let pg = Postgres::start().await;
    let slapd = Slapd::start().await;
    pg.execute("CREATE ROLE carol LOGIN; CREATE ROLE app_read;")
        .await;
    alice_bob_and_carol(&slapd).await;
    let connectors = format!("{}{PG_MAPPING}", pg.connector_toml("pg"));
    // carol is only in LDAP.
    let app = serve_with_ldap(&slapd, POLICY, &connectors, "").await;

    wait_until_can_ask(&app, "carol", true).await;
    wait_for_members(&pg, "app_read", &["carol"]).await;

    let (status, body) = app.post("/api/v1/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["people"], 3, "the reload kept LDAP's people: {body}");
    assert_eq!(body["access"]["leavers"], json!([]), "{body}");
    assert_eq!(pg.members_of("app_read").await, ["carol"]);
    app.stop().await;
}

/// The people with a live grant, sorted.
async fn holders(app: &TestApp) -> Vec<String> {
    let (_, live) = app.get("/api/v1/grants?live=true").await;
    let mut people: Vec<String> = live["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["person"].as_str().unwrap().to_owned())
        .collect();
    people.sort();
    people
}

#[tokio::test]
#[ignore = "needs OpenLDAP (slapd); .ci/run installs it"]
async fn a_read_that_would_make_more_leavers_than_max_leavers_changes_nothing() {
    let slapd = Slapd::start().await;
    alice_bob_and_carol(&slapd).await;
    let policy = POLICY.replace("connector = \"pg\"", "connector = \"log\"");
    let app = serve_with_ldap(&slapd, &policy, "", "max_leavers = 1\n").await;
    // carol is only in LDAP: once she can ask, the first sync is in force.
    wait_until_can_ask(&app, "carol", true).await;
    for person in ["alice", "bob"] {
        let (status, body) = app.post("/api/v1/requests", asks(person)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    eventually("the holders to be [alice, bob, carol]", || async {
        let now = holders(&app).await;
        (now == ["alice", "bob", "carol"])
            .then_some(())
            .ok_or(format!("{now:?}"))
    })
    .await;

    // Two people gone at once, with max_leavers = 1: a wrong filter would look like this.
    slapd.delete(&person_dn("alice")).await;
    slapd.delete(&person_dn("bob")).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // three syncs
    assert_eq!(
        holders(&app).await,
        ["alice", "bob", "carol"],
        "nobody lost access"
    );

    // One leaver is within the limit: the next sync applies it.
    slapd
        .add_person("alice", &[("mail", &["alice@example.com"])])
        .await;
    eventually("the holders to be [alice, carol]", || async {
        let now = holders(&app).await;
        (now == ["alice", "carol"])
            .then_some(())
            .ok_or(format!("{now:?}"))
    })
    .await;
    app.stop().await;
}

/// Polls until `person` can ask (201) or cannot.
async fn wait_until_can_ask(app: &TestApp, person: &str, can: bool) -> serde_json::Value {
    let what = format!("{person} can ask: {can}");
    eventually(&what, || async {
        let (status, body) = app.post("/api/v1/requests", asks(person)).await;
        ((status == StatusCode::CREATED) == can)
            .then_some(body.clone())
            .ok_or(format!("{status} {body}"))
    })
    .await
}

#[tokio::test]
#[ignore = "needs OpenLDAP (slapd); .ci/run installs it"]
async fn a_reload_that_changes_the_directory_section_takes_effect_without_a_restart() {
    let slapd = Slapd::start().await;
    alice_bob_and_carol(&slapd).await;
    let policy = POLICY.replace("connector = \"pg\"", "connector = \"log\"");
    let app = spawn_app_with(|files| {
        std::fs::write(files.path("policy.toml"), &policy).unwrap();
        std::fs::write(files.path("directory.toml"), DIRECTORY).unwrap();
    })
    .await;
    // carol is only in LDAP, which is not read yet.
    let refused = wait_until_can_ask(&app, "carol", false).await;
    assert!(refused.to_string().contains("carol"), "{refused}");

    let section = directory_section(&slapd, &format!("group_base_dn = \"{GROUPS}\"\n"));
    let file_config = std::fs::read_to_string(app.files.path("gatehouse.toml")).unwrap();
    app.files
        .edit("gatehouse.toml", |text| format!("{text}\n{section}"));
    let (status, body) = app.post("/api/v1/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_until_can_ask(&app, "carol", true).await;

    // And back to the file: carol, whom it does not have, is a leaver again.
    std::fs::write(app.files.path("gatehouse.toml"), file_config).unwrap();
    let (status, body) = app.post("/api/v1/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access"]["leavers"], json!(["carol"]), "{body}");
    wait_until_can_ask(&app, "carol", false).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // two sync periods, were it still syncing
    let (status, _) = app.post("/api/v1/requests", asks("carol")).await;
    assert_ne!(status, StatusCode::CREATED, "LDAP is no longer read");
    app.stop().await;
}

#[tokio::test]
#[ignore = "needs slapd; .ci/run installs it"]
async fn a_read_that_would_remove_most_of_a_small_directory_is_held_and_alerted() {
    let slapd = Slapd::start().await;
    for uid in ["alice", "bob", "carol", "dan", "erin"] {
        let mail = format!("{uid}@example.com");
        slapd.add_person(uid, &[("mail", &[&mail])]).await;
    }
    slapd
        .add_group("sre", "groupOfNames", "member", &[&person_dn("bob")])
        .await;
    let policy = POLICY.replace("connector = \"pg\"", "connector = \"log\"");
    // max_leavers stays at its default, 100: far more than this organisation has.
    let app = serve_with_ldap(&slapd, &policy, "", "").await;
    wait_until_can_ask(&app, "erin", true).await;
    for person in ["alice", "bob", "carol", "dan"] {
        let (status, body) = app.post("/api/v1/requests", asks(person)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let everyone = ["alice", "bob", "carol", "dan", "erin"];
    eventually("the holders to be everyone", || async {
        let now = holders(&app).await;
        (now == everyone).then_some(()).ok_or(format!("{now:?}"))
    })
    .await;

    // A base_dn that finds one person: four of five would be leavers.
    app.files.edit("gatehouse.toml", |text| {
        text.replace(
            &format!("base_dn = \"{PEOPLE}\""),
            &format!("base_dn = \"{}\"", person_dn("alice")),
        )
    });
    let (status, body) = app.post("/api/v1/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let held = wait_for_audit(&app, "directory_sync_held").await;
    assert!(
        held.contains("80% of the 5 active people, more than directory.max_leavers_percent = 10"),
        "{held}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await; // three more syncs
    assert_eq!(holders(&app).await, everyone, "nobody lost access");
    let (_, audit) = app.get("/api/v1/audit?limit=1000").await;
    let told = audit.to_string().matches("directory_sync_held").count();
    assert_eq!(
        told, 1,
        "the security channel is told once, not at every sync"
    );
    app.stop().await;
}

/// The audit records that mention `action`, as text, once there is one.
async fn wait_for_audit(app: &TestApp, action: &str) -> String {
    let what = format!("{action} in the audit log");
    eventually(&what, || async {
        let (_, audit) = app.get("/api/v1/audit?limit=1000").await;
        let found: Vec<String> = audit["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r.to_string().contains(action))
            .map(|r| r.to_string())
            .collect();
        (!found.is_empty()).then(|| found.join("\n"))
    })
    .await
}

#[tokio::test]
#[ignore = "needs slapd; .ci/run installs it"]
async fn the_groups_an_ldap_connector_manages_are_not_read_as_directory_groups() {
    let slapd = Slapd::start().await;
    alice_bob_and_carol(&slapd).await;
    // vpn is a group the connector manages: alice is in it because she was granted it.
    slapd
        .add_group("vpn", "groupOfNames", "member", &[&person_dn("alice")])
        .await;
    let text = format!(
        "[[connectors]]\nid = \"vpn\"\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\nbind_password = \"{ADMIN_PASSWORD}\"\nuser_dn = \"uid={{{{ id }}}},{PEOPLE}\"\nroles = {{ member = \"cn=vpn,{GROUPS}\" }}\n\n{}",
        slapd.url(),
        directory_section(&slapd, &format!("group_base_dn = \"{GROUPS}\"\n"))
    );
    let settings = SyncSettings::from_config(&config(&text));
    let source = LdapDirectory::from_config(&settings.directory)
        .unwrap()
        .managing(settings.managed);
    let directory = source.read().await.unwrap().directory;
    let alice = directory.person(&"alice".into()).unwrap();
    assert!(
        !alice.in_group(&"vpn".into()),
        "a grant is not a directory group: {:?}",
        alice.groups
    );
    let bob = directory.person(&"bob".into()).unwrap();
    assert!(bob.in_group(&"sre".into()), "other groups are read");
}
