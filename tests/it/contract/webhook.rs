//! The `webhook` connector keeps the contract, against a receiver that keeps accounts: it
//! refuses (404) a grant for a person it has no account for, and verifies every signature.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use gatehouse::config::{Config, Env};
use gatehouse::connector::webhook::SIGNATURE_HEADER;
use gatehouse::connector::{Connector, Connectors, PersonRef, verify};

use super::{Target, check};

const SECRET: &str = "contract-webhook-secret-0123456789";

#[derive(Default)]
struct Accounts {
    known: BTreeSet<String>,
    holding: Mutex<BTreeSet<String>>,
}

async fn receive(
    State(accounts): State<Arc<Accounts>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if verify(
        SECRET.as_bytes(),
        signature,
        &body,
        Utc::now().timestamp(),
        300,
    )
    .is_err()
    {
        return (StatusCode::UNAUTHORIZED, "bad signature".to_owned());
    }
    let call: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let person = call["person"]["id"].as_str().unwrap().to_owned();
    let mut holding = accounts.holding.lock().unwrap();
    match call["action"].as_str() {
        Some("grant") if !accounts.known.contains(&person) => {
            (StatusCode::NOT_FOUND, format!("no account for {person}"))
        }
        Some("grant") => {
            holding.insert(person);
            (StatusCode::OK, "granted".to_owned())
        }
        // Revoking what is not there, for someone without an account too, is done.
        _ => {
            holding.remove(&person);
            (StatusCode::OK, "revoked".to_owned())
        }
    }
}

struct Receiver {
    url: String,
    accounts: Arc<Accounts>,
}

impl Target for Receiver {
    fn connector(&self) -> Arc<dyn Connector> {
        let text = format!(
            "[[connectors]]\nid = \"target\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\ntimeout = \"5s\"\n",
            self.url
        );
        let config = Config::parse("gatehouse.toml", &text, Path::new("/"), &Env::new())
            .unwrap_or_else(|e| panic!("{e}"));
        Connectors::from_config(&config.connectors)
            .unwrap()
            .get(&"target".into())
            .unwrap()
    }

    fn known(&self) -> PersonRef {
        person("alice")
    }

    fn stranger(&self) -> PersonRef {
        person("mallory")
    }

    async fn holds(&self, person: &PersonRef) -> bool {
        self.accounts
            .holding
            .lock()
            .unwrap()
            .contains(person.id.as_str())
    }
}

fn person(id: &str) -> PersonRef {
    PersonRef {
        id: id.into(),
        email: Some(format!("{id}@example.com")),
        slack: None,
        discord: None,
        accounts: Default::default(),
    }
}

#[tokio::test]
async fn the_webhook_connector_keeps_the_connector_contract() {
    gatehouse::app::install_tls_provider();
    let accounts = Arc::new(Accounts {
        known: BTreeSet::from(["alice".to_owned()]),
        ..Accounts::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(accounts.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    check(&Receiver { url, accounts }).await;
}
