//! Building connectors from config, and a sample call the connector tests share.

use std::collections::BTreeMap;

use chrono::TimeZone;

use super::*;
use crate::config::Secret;
use crate::domain::duration::Duration;

pub(crate) fn sample_call(action: Action) -> ConnectorCall {
    ConnectorCall {
        action,
        grant: GrantId(7),
        person: PersonRef {
            id: "alice".into(),
            email: Some("alice@example.com".to_owned()),
            slack: Some("U01ALICE".to_owned()),
            discord: None,
            accounts: Default::default(),
        },
        resource: "prod-db".into(),
        role: "admin".into(),
        expires_at: Some(Utc.with_ymd_and_hms(2027, 1, 1, 10, 0, 0).unwrap()),
        idempotency_key: match action {
            Action::Grant => "provision:G-7".to_owned(),
            Action::Revoke => "deprovision:G-7:12".to_owned(),
        },
        undo: false,
    }
}

pub(crate) fn config(id: &str, kind: ConnectorKind) -> ConnectorConfig {
    ConnectorConfig {
        id: id.into(),
        kind,
        url: None,
        secret: None,
        timeout: Duration::from_secs(10),
        max_concurrent: crate::config::DEFAULT_MAX_CONCURRENT,
        max_per_second: None,
        command: None,
        env: BTreeMap::new(),
        roles: BTreeMap::new(),
        host: None,
        port: None,
        user: None,
        password: None,
        dbname: None,
        sslmode: crate::config::SslMode::default(),
        ca: None,
        login: None,
        valid_until: false,
        starttls: false,
        bind_dn: None,
        bind_password: None,
        member_attribute: None,
        user_dn: None,
        user_base_dn: None,
        user_filter: None,
        region: None,
        instance_arn: None,
        identity_store_id: None,
        account: None,
        user_name: None,
        user_attribute: None,
        assign: None,
        endpoint_url: None,
        profile: None,
        api_url: None,
        token: None,
        app_id: None,
        installation_id: None,
        private_key: None,
        credentials: None,
        subject: None,
        token_url: None,
        org_url: None,
        client_id: None,
        key_id: None,
        tenant_id: None,
        client_secret: None,
        certificate: None,
        graph_url: None,
    }
}

#[test]
fn every_kind_is_built_from_config() {
    let webhook = ConnectorConfig {
        url: Some("https://provisioner.example/hooks".to_owned()),
        secret: Some(Secret::new("s3cret")),
        ..config("hook", ConnectorKind::Webhook)
    };
    let command = ConnectorConfig {
        command: Some(vec!["/bin/true".to_owned()]),
        ..config("script", ConnectorKind::Command)
    };
    let connectors =
        Connectors::from_config(&[config("dry", ConnectorKind::Log), webhook, command]).unwrap();

    assert_eq!(connectors.len(), 3);
    for id in ["dry", "hook", "script"] {
        assert!(connectors.get(&id.into()).is_some(), "{id} missing");
    }
    assert!(connectors.get(&"other".into()).is_none());
    assert_eq!(format!("{connectors:?}"), r#"{"dry", "hook", "script"}"#);
}

#[test]
fn a_webhook_without_url_is_refused_with_what_to_add() {
    let err = Connectors::from_config(&[ConnectorConfig {
        secret: Some(Secret::new("s3cret")),
        ..config("hook", ConnectorKind::Webhook)
    }])
    .unwrap_err();
    assert_eq!(err, ConnectorSetupError::MissingUrl { id: "hook".into() });
    assert!(err.to_string().contains("has no url; add url = "), "{err}");
}

#[test]
fn a_webhook_without_secret_or_with_a_strange_url_is_refused() {
    let unsigned = ConnectorConfig {
        url: Some("https://provisioner.example/hooks".to_owned()),
        ..config("hook", ConnectorKind::Webhook)
    };
    let err = Connectors::from_config(&[unsigned]).unwrap_err();
    assert!(err.to_string().contains("no secret to sign with"), "{err}");

    let ftp = ConnectorConfig {
        url: Some("ftp://provisioner.example/hooks".to_owned()),
        secret: Some(Secret::new("s3cret")),
        ..config("hook", ConnectorKind::Webhook)
    };
    let err = Connectors::from_config(&[ftp]).unwrap_err();
    assert!(err.to_string().contains("the scheme is ftp"), "{err}");
}

#[test]
fn a_command_without_program_is_refused_with_what_to_add() {
    for command in [None, Some(vec![]), Some(vec![" ".to_owned()])] {
        let err = Connectors::from_config(&[ConnectorConfig {
            command,
            ..config("script", ConnectorKind::Command)
        }])
        .unwrap_err();
        assert_eq!(
            err,
            ConnectorSetupError::MissingProgram {
                id: "script".into()
            }
        );
        assert!(
            err.to_string()
                .contains("names no program; add command = ["),
            "{err}"
        );
    }
}

#[test]
fn duplicate_ids_and_zero_timeouts_are_refused() {
    let twice = [
        config("dry", ConnectorKind::Log),
        config("dry", ConnectorKind::Log),
    ];
    assert_eq!(
        Connectors::from_config(&twice).unwrap_err(),
        ConnectorSetupError::Duplicate { id: "dry".into() }
    );
    let hasty = ConnectorConfig {
        timeout: Duration::ZERO,
        ..config("dry", ConnectorKind::Log)
    };
    assert_eq!(
        Connectors::from_config(&[hasty]).unwrap_err(),
        ConnectorSetupError::ZeroTimeout { id: "dry".into() }
    );
}

#[test]
fn a_test_can_put_its_own_connector_in_the_registry() {
    let mut connectors = Connectors::default();
    let fake = Arc::new(LogConnector::new("fake".into()));
    connectors.insert("prod-db".into(), fake);
    assert!(connectors.get(&"prod-db".into()).is_some());
    assert_eq!(connectors.ids().count(), 1);
}

#[test]
fn a_call_serializes_to_the_documented_webhook_body() {
    let json = serde_json::to_value(sample_call(Action::Grant)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "action": "grant",
            "grant": "G-7",
            "person": {
                "id": "alice",
                "email": "alice@example.com",
                "slack": "U01ALICE",
                "discord": null
            },
            "resource": "prod-db",
            "role": "admin",
            "expires_at": "2027-01-01T10:00:00Z",
            "idempotency_key": "provision:G-7"
        })
    );
}

#[test]
fn long_text_is_cut_at_a_character_boundary() {
    assert_eq!(truncate("short", 10), "short");
    assert_eq!(truncate("ééé", 3), "é… [cut]");
}

#[test]
fn a_person_s_accounts_reach_the_webhook_body_when_they_have_some() {
    let mut call = sample_call(Action::Grant);
    call.person.accounts = [("github".to_owned(), "alice-ng".to_owned())].into();
    let json = serde_json::to_value(&call).unwrap();
    assert_eq!(
        json["person"]["accounts"],
        serde_json::json!({ "github": "alice-ng" })
    );
    let back: ConnectorCall = serde_json::from_value(json).unwrap();
    assert_eq!(back, call);
}
