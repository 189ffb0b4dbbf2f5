use super::*;
use crate::config::{ConnectorKind, Secret};
use crate::connector::tests::config;

fn postgres() -> ConnectorConfig {
    ConnectorConfig {
        host: Some("127.0.0.1".to_owned()),
        user: Some("gatehouse".to_owned()),
        sslmode: SslMode::Disable,
        ..config("db", ConnectorKind::Postgres)
    }
}

#[test]
fn identifiers_are_quoted_so_that_no_name_is_sql() {
    assert_eq!(quote_ident("app_read").unwrap(), r#""app_read""#);
    assert_eq!(
        quote_ident(r#"x"; DROP ROLE admin; --"#).unwrap(),
        r#""x""; DROP ROLE admin; --""#
    );
    assert!(quote_ident("").is_err());
    assert!(quote_ident("nul\0").is_err());
    let long = "a".repeat(64);
    let err = quote_ident(&long).unwrap_err();
    assert!(err.contains("63 bytes"), "{err}");
    assert_eq!(quote_literal("it's"), "'it''s'");
}

#[test]
fn a_postgres_connector_is_built_from_host_and_user_or_a_url() {
    PostgresConnector::from_config(&postgres()).unwrap();
    let by_url = ConnectorConfig {
        url: Some("postgres://gatehouse@db.internal:5433/app".to_owned()),
        ..config("db", ConnectorKind::Postgres)
    };
    let connector = PostgresConnector::from_config(&by_url).unwrap();
    assert_eq!(connector.shown, "db.internal:5433/app");
}

#[test]
fn a_password_in_the_url_is_refused_because_urls_are_shown() {
    let leaky = ConnectorConfig {
        url: Some("postgres://gatehouse:hunter2@db.internal/app".to_owned()),
        ..config("db", ConnectorKind::Postgres)
    };
    let err = PostgresConnector::from_config(&leaky).err().unwrap();
    assert!(err.to_string().contains("move it to password"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn missing_host_or_user_and_bad_templates_say_what_to_add() {
    let hostless = ConnectorConfig {
        host: None,
        ..postgres()
    };
    let err = PostgresConnector::from_config(&hostless).err().unwrap();
    assert!(
        err.to_string().contains("has no host; add host = "),
        "{err}"
    );
    let userless = ConnectorConfig {
        user: None,
        ..postgres()
    };
    let err = PostgresConnector::from_config(&userless).err().unwrap();
    assert!(err.to_string().contains("has no user"), "{err}");
    let broken = ConnectorConfig {
        login: Some("{{ email | ".to_owned()),
        password: Some(Secret::new("pw")),
        ..postgres()
    };
    let err = PostgresConnector::from_config(&broken).err().unwrap();
    assert!(err.to_string().contains("login is not a template"), "{err}");
}

#[tokio::test]
async fn an_unmapped_role_fails_for_good_before_connecting() {
    let mapped = ConnectorConfig {
        roles: [("read".into(), "app_read".to_owned())].into(),
        // Nothing listens here: the call must fail before it tries.
        port: Some(1),
        ..postgres()
    };
    let connector = PostgresConnector::from_config(&mapped).unwrap();
    let call = crate::connector::tests::sample_call(Action::Grant);
    let err = connector.grant(&call).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .contains("role `admin` has no database role"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_worth_retrying() {
    let closed = ConnectorConfig {
        port: Some(1),
        ..postgres()
    };
    let connector = PostgresConnector::from_config(&closed).unwrap();
    let call = crate::connector::tests::sample_call(Action::Revoke);
    let err = connector.revoke(&call).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("could not connect"), "{err}");
}
