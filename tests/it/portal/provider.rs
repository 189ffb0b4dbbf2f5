//! A small OpenID provider for the portal's in-process tests: discovery, JWKS, an
//! authorization endpoint that signs in whoever the test says (no login form), and a token
//! endpoint that checks the PKCE verifier and the client's secret before it answers with an
//! ID token signed RS256 by a test key. A test can make the next ID token wrong in one
//! way ([`Flaw`]) to see the portal refuse it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "gatehouse-portal";
pub const CLIENT_SECRET: &str = "portal-client-secret-for-tests";
const KEY: &[u8] = include_bytes!("test-key-a.pk8");
const OTHER_KEY: &[u8] = include_bytes!("test-key-b.pk8");

/// One way the next ID token is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// Signed by a key the JWKS does not hold under its kid.
    Signature,
    /// For another client.
    Audience,
    /// Expired an hour ago.
    Expired,
    /// With a nonce the portal did not send.
    Nonce,
}

#[derive(Default)]
struct Provider {
    /// Who the next sign-in is, by email.
    next_email: Option<String>,
    next_flaw: Option<Flaw>,
    /// code → (nonce, PKCE challenge, email)
    codes: HashMap<String, (String, String, String)>,
    /// How many token requests failed their PKCE or client check.
    refused_exchanges: usize,
    /// Discovery answers 503 while this is set.
    down: bool,
    /// How many times discovery was asked for.
    discoveries: usize,
}

pub struct FakeProvider {
    pub issuer: String,
    state: Arc<Mutex<Provider>>,
    server: tokio::task::JoinHandle<()>,
}

type Shared = (String, Arc<Mutex<Provider>>);

impl FakeProvider {
    pub async fn start() -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let state = Arc::new(Mutex::new(Provider::default()));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state((issuer.clone(), state.clone()));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeProvider {
            issuer,
            state,
            server,
        }
    }

    /// The next sign-in at the provider is `email`'s.
    pub fn sign_in_as(&self, email: &str) {
        self.state.lock().unwrap().next_email = Some(email.to_owned());
    }

    /// The next ID token has `flaw`.
    pub fn flaw_next_token(&self, flaw: Flaw) {
        self.state.lock().unwrap().next_flaw = Some(flaw);
    }

    /// Discovery answers 503 Service Unavailable while `down`.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// How many times discovery was asked for.
    pub fn discoveries(&self) -> usize {
        self.state.lock().unwrap().discoveries
    }

    pub fn refused_exchanges(&self) -> usize {
        self.state.lock().unwrap().refused_exchanges
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn discovery(State((issuer, state)): State<Shared>) -> Response {
    {
        let mut state = state.lock().unwrap();
        state.discoveries += 1;
        if state.down {
            return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
        }
    }
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

fn public_jwk(pkcs8: &[u8], kid: &str) -> Value {
    let pair = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
    let public: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
    json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.n), "e": URL_SAFE_NO_PAD.encode(public.e),
    })
}

async fn jwks() -> Json<Value> {
    Json(json!({ "keys": [public_jwk(KEY, "test-a")] }))
}

async fn authorize(
    State((_, state)): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut provider = state.lock().unwrap();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["scope"].split(' ').any(|s| s == "openid"));
    let email = provider
        .next_email
        .clone()
        .expect("the test says who signs in");
    let code = format!("code-{}", provider.codes.len() + 1);
    provider.codes.insert(
        code.clone(),
        (
            query["nonce"].clone(),
            query["code_challenge"].clone(),
            email,
        ),
    );
    let to = format!(
        "{}?code={code}&state={}",
        query["redirect_uri"],
        url_encode(&query["state"])
    );
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

fn url_encode(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)]).unwrap()[2..].to_owned()
}

async fn token(
    State((issuer, state)): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut provider = state.lock().unwrap();
    let Some((nonce, challenge, email)) = provider.codes.remove(&form["code"]) else {
        provider.refused_exchanges += 1;
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    let client_ok = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    if URL_SAFE_NO_PAD.encode(digest.as_ref()) != challenge || !client_ok {
        provider.refused_exchanges += 1;
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let now = chrono::Utc::now().timestamp();
    let flaw = provider.next_flaw.take();
    let claims = json!({
        "iss": issuer,
        "sub": format!("sub-{email}"),
        "aud": if flaw == Some(Flaw::Audience) { "someone-else" } else { CLIENT_ID },
        "email": email,
        "email_verified": true,
        "nonce": if flaw == Some(Flaw::Nonce) { "not-the-nonce" } else { nonce.as_str() },
        "iat": now - 5,
        "exp": if flaw == Some(Flaw::Expired) { now - 3600 } else { now + 300 },
    });
    let key = if flaw == Some(Flaw::Signature) {
        OTHER_KEY
    } else {
        KEY
    };
    let id_token = sign(key, &claims);
    Json(json!({ "access_token": "unused", "token_type": "Bearer", "id_token": id_token }))
        .into_response()
}

fn sign(pkcs8: &[u8], claims: &Value) -> String {
    let pair = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
    let header = json!({"alg": "RS256", "kid": "test-a", "typ": "JWT"});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}
