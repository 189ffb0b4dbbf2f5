//! The `ldap` connector against a real OpenLDAP server: every observation is read back from
//! the server itself.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use gatehouse::config::{Config, Env};
use gatehouse::connector::{Action, Connector, ConnectorCall, Connectors, PersonRef};
use gatehouse::domain::audit::Actor;
use gatehouse::domain::effect::{Effect, Notice};
use gatehouse::domain::ids::GrantId;
use gatehouse::domain::validation::Ask;
use gatehouse::outbox::{RecordingChat, Worker};
use gatehouse::testing::tls::RUSTLS_UNKNOWN_ISSUER;

use crate::real::ldap::{ADMIN_DN, ADMIN_PASSWORD, PEOPLE, Slapd, group_dn, person_dn};

pub fn config(text: &str) -> Config {
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
            accounts: Default::default(),
        },
        resource: "vpn".into(),
        role: "member".into(),
        expires_at: None,
        idempotency_key: format!("{action}:G-3"),
        undo: false,
    }
}

#[tokio::test]
#[ignore = "needs OpenLDAP (slapd); .ci/run installs it"]
async fn a_person_joins_and_leaves_a_group_of_names_and_repeats_change_nothing() {
    let slapd = Slapd::start().await;
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
#[ignore = "needs OpenLDAP (slapd); .ci/run installs it"]
async fn a_person_found_by_email_joins_a_group_of_unique_names_and_a_stranger_is_refused() {
    let slapd = Slapd::start().await;
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

#[tokio::test]
#[ignore = "needs OpenLDAP (slapd) and openssl; .ci/run installs them"]
async fn ldaps_and_starttls_check_the_server_against_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = crate::real::tls::certificates(dir.path());
    let slapd = Slapd::start_with(Some(&certificates)).await;
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
    assert!(err.to_string().contains(RUSTLS_UNKNOWN_ISSUER), "{err}");

    // StartTLS really upgrades: without the CA, the server's certificate is refused.
    let starttls_untrusted = over(
        format!("ldap://localhost:{}", slapd.port),
        "starttls = true\n",
    );
    let err = starttls_untrusted
        .revoke(&call(Action::Revoke, "alice"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(RUSTLS_UNKNOWN_ISSUER), "{err}");

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

mod left_behind;

#[tokio::test]
#[ignore = "needs OpenLDAP (slapd); .ci/run installs it"]
async fn revocations_made_together_leave_each_group_as_asked_with_an_answer_each() {
    let slapd = Slapd::start().await;
    for uid in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        slapd.add_person(uid, &[]).await;
    }
    let (vpn, db) = (group_dn("vpn"), group_dn("db"));
    let members = |uids: &[&str]| -> Vec<String> { uids.iter().map(|u| person_dn(u)).collect() };
    let vpn_members = members(&["alice", "bob", "carol", "dave"]);
    let vpn_members: Vec<&str> = vpn_members.iter().map(String::as_str).collect();
    slapd
        .add_group("vpn", "groupOfNames", "member", &vpn_members)
        .await;
    let db_members = members(&["bob", "frank"]);
    let db_members: Vec<&str> = db_members.iter().map(String::as_str).collect();
    slapd
        .add_group("db", "groupOfNames", "member", &db_members)
        .await;
    let connector = connector(
        &slapd,
        &format!(
            "user_dn = \"uid={{{{ id }}}},{PEOPLE}\"\nroles = {{ member = \"{vpn}\", db = \"{db}\" }}\n"
        ),
    );
    assert!(connector.revoke_batch() > 1, "ldap takes many at once");
    let revoke = |id: &str, role: &str| {
        let mut call = call(Action::Revoke, id);
        call.role = role.into();
        call
    };
    let calls = [
        revoke("alice", "member"),
        revoke("carol", "member"),
        // Not a member: the group's modify is refused whole, then made one by one.
        revoke("erin", "member"),
        revoke("frank", "db"),
        revoke("alice", "admin"),
    ];

    let answers = connector.revoke_many(&calls).await;
    let shown: Vec<String> = answers
        .iter()
        .map(|a| match a {
            Ok(outcome) => outcome.detail.clone(),
            Err(e) => format!("error: {e}"),
        })
        .collect();
    assert_eq!(
        shown[..4],
        [
            format!("removed {} from {vpn}", person_dn("alice")),
            format!("removed {} from {vpn}", person_dn("carol")),
            format!("removed {} from {vpn} (it already was)", person_dn("erin")),
            format!("removed {} from {db}", person_dn("frank")),
        ]
    );
    assert!(
        shown[4].contains("role `admin` has no group"),
        "{}",
        shown[4]
    );
    assert_eq!(
        slapd.values(&vpn, "member").await,
        [person_dn("bob"), person_dn("dave")]
    );
    assert_eq!(slapd.values(&db, "member").await, [person_dn("bob")]);

    // All of them gone already: one modify, refused, then each alone, each a success.
    let again = connector.revoke_many(&calls[..4]).await;
    assert!(again.iter().all(Result::is_ok), "{again:?}");
    assert_eq!(
        slapd.values(&vpn, "member").await,
        [person_dn("bob"), person_dn("dave")]
    );
}
