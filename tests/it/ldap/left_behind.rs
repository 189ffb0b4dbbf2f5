//! The `ldap` connector grants nothing by mistake and tells no one "revoked" before it is:
//! a DN for nobody is not added, every certificate of a CA bundle is trusted, a person is
//! told only once the group no longer has them, and the shared connector contract holds.

use super::*;
use gatehouse::engine::Facade;

#[tokio::test]
#[ignore = "needs slapd; .ci/run installs it"]
async fn a_user_dn_for_someone_without_an_entry_is_not_added_to_the_group() {
    let slapd = Slapd::start().await;
    slapd.add_person("alice", &[]).await;
    let vpn = group_dn("vpn");
    slapd
        .add_group("vpn", "groupOfNames", "member", &[&person_dn("alice")])
        .await;
    let connector = connector(
        &slapd,
        &format!("user_dn = \"uid={{{{ id }}}},{PEOPLE}\"\nroles = {{ member = \"{vpn}\" }}\n"),
    );

    let err = connector
        .grant(&call(Action::Grant, "mal1"))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "there is no entry {} (the entry of mal1)",
            person_dn("mal1")
        )),
        "{err}"
    );
    assert_eq!(
        slapd.values(&vpn, "member").await,
        [person_dn("alice")],
        "whoever is created as uid=mal1 later gets nothing"
    );

    // A revoke needs no entry: the DN of a person deleted since is still taken out.
    slapd
        .add_group(
            "admins",
            "groupOfNames",
            "member",
            &[&person_dn("ghost"), &person_dn("alice")],
        )
        .await;
    let admins = connector_for(&slapd, &group_dn("admins"));
    admins.revoke(&call(Action::Revoke, "ghost")).await.unwrap();
    assert_eq!(
        slapd.values(&group_dn("admins"), "member").await,
        [person_dn("alice")]
    );
}

/// A template connector whose `member` role is the group `group`.
fn connector_for(slapd: &Slapd, group: &str) -> Arc<dyn Connector> {
    connector(
        slapd,
        &format!("user_dn = \"uid={{{{ id }}}},{PEOPLE}\"\nroles = {{ member = \"{group}\" }}\n"),
    )
}

#[tokio::test]
#[ignore = "needs slapd and openssl; .ci/run installs them"]
async fn a_ca_file_bundle_is_trusted_whichever_of_its_certificates_signed_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = crate::real::tls::certificates(dir.path());
    let other = tempfile::tempdir().unwrap();
    let other_ca = crate::real::tls::certificates(other.path()).ca;
    let slapd = Slapd::start_with(Some(&certificates)).await;
    slapd.add_person("alice", &[]).await;
    let vpn = group_dn("vpn");
    slapd
        .add_group("vpn", "groupOfNames", "member", &[&person_dn("bob")])
        .await;
    // Another CA first, the server's second: as a corporate bundle has them.
    let bundle = dir.path().join("bundle.pem");
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&other_ca).unwrap(),
        std::fs::read_to_string(&certificates.ca).unwrap()
    );
    std::fs::write(&bundle, text).unwrap();
    let text = format!(
        "[[connectors]]\nid = \"vpn\"\nkind = \"ldap\"\nurl = \"ldaps://localhost:{}\"\nbind_dn = \"{ADMIN_DN}\"\nbind_password = \"{ADMIN_PASSWORD}\"\nuser_dn = \"uid={{{{ id }}}},{PEOPLE}\"\nroles = {{ member = \"{vpn}\" }}\nca_file = \"{}\"\n",
        slapd.tls_port.unwrap(),
        bundle.display()
    );
    let connector = Connectors::from_config(&config(&text).connectors)
        .unwrap()
        .get(&"vpn".into())
        .unwrap();
    connector
        .grant(&call(Action::Grant, "alice"))
        .await
        .unwrap();
    assert_eq!(
        slapd.values(&vpn, "member").await,
        [person_dn("alice"), person_dn("bob")]
    );
}

/// The notices told to `person` that say a grant was revoked.
fn revoked_notices(chat: &RecordingChat, person: &str) -> usize {
    chat.delivered()
        .iter()
        .filter(|e| {
            matches!(e, Effect::Notify { to, notice: Notice::Revoked { .. } } if to.as_str() == person)
        })
        .count()
}

#[tokio::test]
#[ignore = "needs slapd; .ci/run installs it"]
async fn a_person_is_told_revoked_only_once_the_group_no_longer_has_them() {
    let slapd = Slapd::start().await;
    slapd
        .add_person("alice", &[("mail", &["alice@example.com"])])
        .await;
    let vpn = group_dn("vpn");
    slapd
        .add_group("vpn", "groupOfNames", "member", &[&person_dn("bob")])
        .await;
    // Found by a search, which cannot find an entry deleted before the revocation.
    let ldap = connector(
        &slapd,
        &format!(
            "user_base_dn = \"{PEOPLE}\"\nuser_filter = \"(mail={{{{ email }}}})\"\nroles = {{ read = \"{vpn}\" }}\n"
        ),
    );
    let mut connectors = Connectors::default();
    connectors.insert("pg".into(), ldap);
    let store = tempfile::tempdir().unwrap();
    let (engine, clock) = crate::postgres::engine_in(store.path(), Utc::now());
    let chat = Arc::new(RecordingChat::default());
    let worker = Worker::new(engine.clone(), connectors, chat.clone());
    let ask = Ask {
        requester: "alice".into(),
        resource: "app-db".into(),
        role: "read".into(),
        duration: Some("1h".parse().unwrap()),
        justification: "VPN for the on-call week".into(),
        ..Ask::default()
    };
    let alice = Actor::person(&"alice".into());
    let grant = engine.submit(&alice, ask).unwrap().grant.unwrap();
    crate::postgres::drain(&worker, 5).await;
    assert_eq!(
        slapd.values(&vpn, "member").await,
        [person_dn("alice"), person_dn("bob")]
    );

    slapd.delete(&person_dn("alice")).await;
    engine.end_early(&alice, grant.id).unwrap();
    crate::postgres::drain(&worker, 5).await;
    let state = Facade::new(engine.clone())
        .grant(grant.id)
        .await
        .unwrap()
        .state;
    assert_eq!(state.name(), "revoking", "{state:?}");
    assert_eq!(
        slapd.values(&vpn, "member").await,
        [person_dn("alice"), person_dn("bob")],
        "still in the group"
    );
    assert_eq!(
        revoked_notices(&chat, "alice"),
        0,
        "alice is not told it is revoked while it is not"
    );

    // The entry is back, the retry takes alice out, and now she is told.
    slapd
        .add_person("alice", &[("mail", &["alice@example.com"])])
        .await;
    clock.advance(TimeDelta::minutes(11));
    crate::postgres::drain(&worker, 5).await;
    assert_eq!(slapd.values(&vpn, "member").await, [person_dn("bob")]);
    let state = Facade::new(engine.clone())
        .grant(grant.id)
        .await
        .unwrap()
        .state;
    assert_eq!(state.name(), "revoked", "{state:?}");
    assert_eq!(revoked_notices(&chat, "alice"), 1);
}

/// A test directory as a contract target: alice has an entry, mal1 has none; the group keeps
/// a placeholder member, as a groupOfNames must.
struct Group<'a> {
    slapd: &'a Slapd,
    /// How the connector finds the person's DN.
    finding: String,
}

impl crate::contract::Target for Group<'_> {
    fn connector(&self) -> Arc<dyn Connector> {
        let vpn = group_dn("vpn");
        connector(
            self.slapd,
            &format!("{}roles = {{ member = \"{vpn}\" }}\n", self.finding),
        )
    }

    fn known(&self) -> PersonRef {
        call(Action::Grant, "alice").person
    }

    fn stranger(&self) -> PersonRef {
        call(Action::Grant, "mal1").person
    }

    async fn holds(&self, person: &PersonRef) -> bool {
        let members = self.slapd.values(&group_dn("vpn"), "member").await;
        members.contains(&person_dn(person.id.as_str()))
    }
}

#[tokio::test]
#[ignore = "needs slapd; .ci/run installs it"]
async fn the_ldap_connector_keeps_the_connector_contract_with_a_template_or_a_search() {
    let slapd = Slapd::start().await;
    slapd
        .add_person("alice", &[("mail", &["alice@example.com"])])
        .await;
    slapd
        .add_group("vpn", "groupOfNames", "member", &[&person_dn("nobody")])
        .await;
    for finding in [
        format!("user_dn = \"uid={{{{ id }}}},{PEOPLE}\"\n"),
        format!("user_base_dn = \"{PEOPLE}\"\nuser_filter = \"(mail={{{{ email }}}})\"\n"),
    ] {
        crate::contract::check(&Group {
            slapd: &slapd,
            finding,
        })
        .await;
    }
}
