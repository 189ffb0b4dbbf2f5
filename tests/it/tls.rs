//! Every HTTPS client Gatehouse builds speaks rustls, never OpenSSL, although OpenSSL is linked
//! (serenity's gateway) and reqwest would pick it by default. Each client is pointed at a local
//! HTTPS server whose CA no system trusts: it must refuse the server in rustls's words
//! ("UnknownIssuer"); OpenSSL would say "certificate verify failed".

use std::sync::Arc;
use std::time::Duration;

use gatehouse::config::Secret;
use gatehouse::connector::webhook::WebhookConnector;
use gatehouse::connector::{Action, Connector, ConnectorCall, PersonRef};
use gatehouse::discord::rest::Rest;
use gatehouse::domain::ids::GrantId;
use gatehouse::metrics::Metrics;
use gatehouse::testing::tls::{RUSTLS_UNKNOWN_ISSUER, TlsServer};

fn call() -> ConnectorCall {
    ConnectorCall {
        action: Action::Grant,
        grant: GrantId(7),
        person: PersonRef {
            id: "alice".into(),
            email: Some("alice@example.com".to_owned()),
            slack: None,
            discord: None,
            accounts: Default::default(),
        },
        resource: "prod-db".into(),
        role: "read".into(),
        expires_at: None,
        idempotency_key: "provision:G-7".to_owned(),
        undo: false,
    }
}

#[tokio::test]
async fn the_webhook_connector_speaks_rustls() {
    let server = TlsServer::start();
    let webhook = WebhookConnector::new(
        "hr".into(),
        &format!("{}/grants", server.url()),
        Secret::new("a-webhook-secret-that-is-long-enough"),
        Duration::from_secs(10),
    )
    .unwrap();
    let err = webhook.grant(&call()).await.unwrap_err();
    assert!(err.to_string().contains(RUSTLS_UNKNOWN_ISSUER), "{err}");
    assert!(server.connections() >= 1, "the server was reached");
}

#[tokio::test]
async fn the_discord_rest_client_speaks_rustls_and_so_do_serenitys_calls_through_it() {
    let server = TlsServer::start();
    let rest = Rest::new(&server.url(), "bot-token", Arc::new(Metrics::new())).unwrap();
    // The client serenity's own calls (`GET /gateway`) go through, as the gateway hands it over.
    let err = rest
        .client()
        .get(format!("{}/api/v10/gateway", server.url()))
        .send()
        .await
        .unwrap_err();
    let chain = gatehouse::cli::error_line(&anyhow::Error::from(err));
    assert!(chain.contains(RUSTLS_UNKNOWN_ISSUER), "{chain}");
    assert!(server.connections() >= 1, "the server was reached");
}

#[tokio::test]
async fn the_slack_web_api_client_speaks_rustls() {
    use slack_morphism::prelude::{
        SlackApiConversationsOpenRequest, SlackApiToken, SlackApiTokenValue,
    };
    let server = TlsServer::start();
    let client = gatehouse::slack::client::client(&format!("{}/api", server.url())).unwrap();
    let token = SlackApiToken::new(SlackApiTokenValue::new("xoxb-test".to_owned()));
    let request = SlackApiConversationsOpenRequest::new().with_users(vec!["U1".into()]);
    let err = client
        .open_session(&token)
        .conversations_open(&request)
        .await
        .unwrap_err();
    let chain = gatehouse::cli::error_line(&anyhow::Error::from(err));
    assert!(chain.contains(RUSTLS_UNKNOWN_ISSUER), "{chain}");
}

#[test]
fn the_cli_speaks_rustls_to_the_admin_api_and_for_its_health_check() {
    let server = TlsServer::start();
    let url = server.url();
    for args in [
        vec!["requests", "--url", &url, "--token", "a-token"],
        vec!["healthcheck", "--url", &url],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(&args)
            .env_remove("GATEHOUSE_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains(RUSTLS_UNKNOWN_ISSUER), "{args:?}: {stderr}");
    }
    assert!(server.connections() >= 2, "the server was reached");
}
