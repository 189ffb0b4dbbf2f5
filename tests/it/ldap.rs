//! The `ldap` connector and the LDAP directory source against a real OpenLDAP server, and a
//! leaver in LDAP losing a real PostgreSQL role through the running server. Every
//! observation is read back from the servers themselves.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse::config::{Config, Env};
use gatehouse::connector::{Action, Connector, ConnectorCall, Connectors, PersonRef};
use gatehouse::domain::ids::GrantId;
use gatehouse::ldap::sync::LdapDirectory;
use reqwest::StatusCode;
use serde_json::json;

use crate::postgres::{DIRECTORY, PG_MAPPING, POLICY};
use crate::real::ldap::{ADMIN_DN, ADMIN_PASSWORD, GROUPS, PEOPLE, Slapd, group_dn, person_dn};
use crate::real::postgres::Postgres;
use crate::support::spawn_app_with;

fn config(text: &str) -> Config {
    Config::parse("gatehouse.toml", text, Path::new("/"), &Env::new())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn connector(slapd: &Slapd, extra: &str) -> Arc<dyn Connector> {
    let text = format!(
        "[[connectors]]\nid = \"vpn\"\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\nbind_password = \"{ADMIN_PASSWORD}\"\n{extra}",
        slapd.url()
    );
    Connectors::from_config(&config(&text).connectors)
        .unwrap()
        .get(&"vpn".into())
        .unwrap()
}

fn call(action: Action, id: &str) -> ConnectorCall {
    ConnectorCall {
        action,
        grant: GrantId(3),
        person: PersonRef {
            id: id.into(),
            email: Some(format!("{id}@example.com")),
            slack: None,
            discord: None,
        },
        resource: "vpn".into(),
        role: "member".into(),
        expires_at: None,
        idempotency_key: format!("{action}:G-3"),
    }
}

#[tokio::test]
async fn a_person_joins_and_leaves_a_group_of_names_and_repeats_change_nothing() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    slapd.add_person("alice", &[]).await;
    slapd.add_person("bob", &[]).await;
    let vpn = group_dn("vpn");
    slapd
        .add_group("vpn", "groupOfNames", "member", &[&person_dn("bob")])
        .await;
    let connector = connector(
        &slapd,
        &format!("user_dn = \"uid={{{{ id }}}},{PEOPLE}\"\nroles = {{ member = \"{vpn}\" }}\n"),
    );

    let outcome = connector
        .grant(&call(Action::Grant, "alice"))
        .await
        .unwrap();
    assert_eq!(
        outcome.detail,
        format!("added {} to {vpn}", person_dn("alice"))
    );
    let again = connector
        .grant(&call(Action::Grant, "alice"))
        .await
        .unwrap();
    assert!(
        again.detail.ends_with("(it already was)"),
        "{}",
        again.detail
    );
    assert_eq!(
        slapd.values(&vpn, "member").await,
        [person_dn("alice"), person_dn("bob")]
    );

    connector
        .revoke(&call(Action::Revoke, "alice"))
        .await
        .unwrap();
    connector
        .revoke(&call(Action::Revoke, "alice"))
        .await
        .expect("removing an absent member succeeds");
    assert_eq!(slapd.values(&vpn, "member").await, [person_dn("bob")]);
}

#[tokio::test]
async fn a_person_found_by_email_joins_a_group_of_unique_names_and_a_stranger_is_refused() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    slapd
        .add_person("alice", &[("mail", &["alice@example.com"])])
        .await;
    let admins = group_dn("admins");
    // groupOfUniqueNames must keep a member: a placeholder, as deployments do.
    let placeholder = person_dn("nobody");
    slapd
        .add_group(
            "admins",
            "groupOfUniqueNames",
            "uniqueMember",
            &[&placeholder],
        )
        .await;
    let connector = connector(
        &slapd,
        &format!(
            "user_base_dn = \"{PEOPLE}\"\nuser_filter = \"(mail={{{{ email }}}})\"\nmember_attribute = \"uniqueMember\"\nroles = {{ member = \"{admins}\" }}\n"
        ),
    );

    connector
        .grant(&call(Action::Grant, "alice"))
        .await
        .unwrap();
    assert_eq!(
        slapd.values(&admins, "uniqueMember").await,
        [person_dn("alice"), placeholder.clone()]
    );

    let err = connector
        .grant(&call(Action::Grant, "mallory"))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("no entry under"), "{err}");

    connector
        .revoke(&call(Action::Revoke, "alice"))
        .await
        .unwrap();
    assert_eq!(slapd.values(&admins, "uniqueMember").await, [placeholder]);
}

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

fn directory_section(slapd: &Slapd, extra: &str) -> String {
    format!(
        "[directory]\nsource = \"ldap\"\nsync_every = \"1s\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\nbind_password = \"{ADMIN_PASSWORD}\"\nbase_dn = \"{PEOPLE}\"\ninactive_attribute = \"employeeType\"\ninactive_values = [\"terminated\"]\n{extra}",
        slapd.url()
    )
}

#[tokio::test]
async fn the_directory_read_from_ldap_has_managers_groups_and_leavers() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
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
async fn a_failing_ldap_read_says_why_and_changes_nothing() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let wrong = directory_section(&slapd, "").replace(ADMIN_PASSWORD, "not-the-password");
    let source = LdapDirectory::from_config(&config(&wrong).directory).unwrap();
    let err = source.read().await.unwrap_err();
    assert!(err.to_string().contains("invalidCredentials"), "{err}");

    let empty =
        LdapDirectory::from_config(&config(&directory_section(&slapd, "")).directory).unwrap();
    let err = empty.read().await.unwrap_err();
    assert!(err.to_string().contains("found no people"), "{err}");
}

/// Polls `members_of(role)` until it is `expected`, failing after 30 s.
async fn wait_for_members(pg: &Postgres, role: &str, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let members = pg.members_of(role).await;
        if members == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{role} has members {members:?}, expected {expected:?} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn leavers_deactivated_or_removed_in_ldap_lose_their_database_role() {
    let Some(pg) = Postgres::start().await else {
        return;
    };
    let Some(slapd) = Slapd::start().await else {
        return;
    };
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
    let groups = format!("group_base_dn = \"{GROUPS}\"\n");
    let app = spawn_app_with(|files| {
        std::fs::write(files.path("policy.toml"), POLICY).unwrap();
        std::fs::write(files.path("directory.toml"), DIRECTORY).unwrap();
        files.edit("gatehouse.toml", |text| {
            format!(
                "{text}\n{}{PG_MAPPING}\n{}",
                pg.connector_toml("pg"),
                directory_section(&slapd, &groups)
            )
        });
    })
    .await;

    for person in ["alice", "bob"] {
        let (status, body) = app
            .post(
                "/api/v1/requests",
                json!({
                    "as": person, "resource": "app-db", "role": "read",
                    "duration": "4h", "reason": "reading the orders table",
                }),
            )
            .await;
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
async fn ldaps_and_starttls_check_the_server_against_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = crate::real::tls::certificates(dir.path());
    let Some(slapd) = Slapd::start_with(Some(&certificates)).await else {
        return;
    };
    slapd.add_person("alice", &[]).await;
    let vpn = group_dn("vpn");
    slapd
        .add_group("vpn", "groupOfNames", "member", &[&person_dn("bob")])
        .await;
    let ca = certificates.ca.display();
    let tls_port = slapd.tls_port.unwrap();
    let over = |url: String, settings: &str| {
        let text = format!(
            "[[connectors]]\nid = \"vpn\"\nkind = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{ADMIN_DN}\"\nbind_password = \"{ADMIN_PASSWORD}\"\nuser_dn = \"uid={{{{ id }}}},{PEOPLE}\"\nroles = {{ member = \"{vpn}\" }}\n{settings}"
        );
        Connectors::from_config(&config(&text).connectors)
            .unwrap()
            .get(&"vpn".into())
            .unwrap()
    };

    let ldaps = over(
        format!("ldaps://localhost:{tls_port}"),
        &format!("ca_file = \"{ca}\"\n"),
    );
    ldaps.grant(&call(Action::Grant, "alice")).await.unwrap();
    assert_eq!(
        slapd.values(&vpn, "member").await,
        [person_dn("alice"), person_dn("bob")]
    );

    let untrusted = over(format!("ldaps://localhost:{tls_port}"), "");
    let err = untrusted
        .revoke(&call(Action::Revoke, "alice"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );

    // StartTLS really upgrades: without the CA, the server's certificate is refused.
    let starttls_untrusted = over(
        format!("ldap://localhost:{}", slapd.port),
        "starttls = true\n",
    );
    let err = starttls_untrusted
        .revoke(&call(Action::Revoke, "alice"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );

    let starttls = over(
        format!("ldap://localhost:{}", slapd.port),
        &format!("starttls = true\nca_file = \"{ca}\"\n"),
    );
    starttls
        .revoke(&call(Action::Revoke, "alice"))
        .await
        .unwrap();
    assert_eq!(slapd.values(&vpn, "member").await, [person_dn("bob")]);
}
