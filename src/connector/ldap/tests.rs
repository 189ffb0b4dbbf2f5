use super::*;
use crate::config::{ConnectorKind, Secret};
use crate::connector::tests::{config, sample_call};

fn ldap() -> ConnectorConfig {
    ConnectorConfig {
        url: Some("ldap://127.0.0.1:1".to_owned()),
        bind_dn: Some("cn=gatehouse,dc=example,dc=com".to_owned()),
        bind_password: Some(Secret::new("pw")),
        user_dn: Some("uid={{ id }},ou=people,dc=example,dc=com".to_owned()),
        roles: [(
            "admin".into(),
            "cn=admins,ou=groups,dc=example,dc=com".to_owned(),
        )]
        .into(),
        ..config("vpn", ConnectorKind::Ldap)
    }
}

fn refused(config: ConnectorConfig) -> String {
    match LdapConnector::from_config(&config) {
        Ok(_) => panic!("the connector was built"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_ldap_connector_needs_an_ldap_url_roles_and_one_way_to_find_the_dn() {
    LdapConnector::from_config(&ldap()).unwrap();
    let err = refused(ConnectorConfig {
        url: None,
        ..ldap()
    });
    assert!(err.contains("has no url; add url = "), "{err}");
    let err = refused(ConnectorConfig {
        url: Some("https://ldap".to_owned()),
        ..ldap()
    });
    assert!(err.contains("is not ldap:// or ldaps://"), "{err}");
    let err = refused(ConnectorConfig {
        roles: BTreeMap::new(),
        ..ldap()
    });
    assert!(err.contains("has no roles; add roles = "), "{err}");
    let err = refused(ConnectorConfig {
        user_base_dn: Some("ou=people,dc=example,dc=com".to_owned()),
        user_filter: Some("(mail={{ email }})".to_owned()),
        ..ldap()
    });
    assert!(err.contains("either user_dn"), "{err}");
}

#[tokio::test]
async fn a_role_without_a_group_fails_for_good_before_connecting() {
    let connector = LdapConnector::from_config(&ConnectorConfig {
        roles: [("read".into(), "cn=readers,dc=example,dc=com".to_owned())].into(),
        ..ldap()
    })
    .unwrap();
    let err = connector
        .grant(&sample_call(Action::Grant))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string().contains("role `admin` has no group"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_worth_retrying() {
    let connector = LdapConnector::from_config(&ldap()).unwrap();
    let err = connector
        .revoke(&sample_call(Action::Revoke))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .starts_with("ldap `vpn`: connecting to ldap://127.0.0.1:1"),
        "{err}"
    );
}

#[test]
fn busy_servers_and_refused_passwords_are_transient_other_refusals_are_not() {
    use crate::ldap::client::is_transient_code;
    // 49 invalidCredentials: a rotation may be under way; the next reload brings the password.
    for rc in [51, 52, 3, 49] {
        assert!(is_transient_code(rc), "{rc}");
    }
    for rc in [32, 50, 65] {
        assert!(!is_transient_code(rc), "{rc}");
    }
}
