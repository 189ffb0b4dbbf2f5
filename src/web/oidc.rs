//! The OpenID provider as the portal uses it: discovery (at start, and until it works
//! again when sign-in is first needed, with backoff: [`Discovering`]), the authorization URL
//! (code flow, PKCE S256, `state`, `nonce`), the code exchanged at the token endpoint
//! (`client_secret_post`), and its JWKS, fetched again once when a token names a key it
//! does not hold (the provider rotated its keys).

use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::idtoken::{self, Claims, Expected, Jwks, TokenError};
use crate::backoff::{Backoff, Retries};
use crate::config::Secret;

/// How long the provider has to answer one call.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the provider could not be used. Logged; the person reads that sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{what} at {url}: {reason}")]
    Http {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error(
        "the provider's discovery document names issuer `{found}`, not `{configured}`; set web.issuer to exactly what the provider says"
    )]
    IssuerMismatch { configured: String, found: String },
    #[error("the token endpoint answered without an id_token")]
    NoIdToken,
    #[error(transparent)]
    Token(#[from] TokenError),
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
}

/// This client at one provider.
pub struct Provider {
    issuer: String,
    client_id: String,
    client_secret: Secret,
    redirect_uri: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    jwks: RwLock<Jwks>,
    http: reqwest::Client,
}

/// The waits between attempts at discovery while the provider does not answer: 1 s, then
/// doubling up to a minute, each stretched by up to a quarter.
const DISCOVERY_BACKOFF: Backoff =
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).jitter(0.0, 0.25);

/// The provider as found by discovery, once it answered: until then, each sign-in that
/// needs it tries discovery again, at most once per backoff wait and one at a time, and is
/// told sign-in is unavailable for now. Pages of people signed in already never need it.
pub struct Discovering {
    issuer: String,
    client_id: String,
    client_secret: Secret,
    redirect_uri: String,
    found: OnceLock<Provider>,
    next: tokio::sync::Mutex<NextTry>,
}

struct NextTry {
    retries: Retries,
    not_before: Option<tokio::time::Instant>,
}

impl Discovering {
    /// Tries discovery once. A provider that answered with another issuer is a mistake in
    /// `[web]` and fails the start; one that did not answer is tried again when sign-in
    /// needs it.
    pub async fn start(
        issuer: &str,
        client_id: &str,
        client_secret: Secret,
        redirect_uri: String,
    ) -> Result<Self, ProviderError> {
        let discovering = Self {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            redirect_uri,
            found: OnceLock::new(),
            next: tokio::sync::Mutex::new(NextTry {
                retries: Retries::new(DISCOVERY_BACKOFF),
                not_before: None,
            }),
        };
        match discovering.provider().await {
            Ok(_) | Err(Unavailable::Waiting) => Ok(discovering),
            Err(Unavailable::Misconfigured(e)) => Err(e),
        }
    }

    /// The provider, discovering it first if it has not answered yet and its backoff wait
    /// is over; else why sign-in must wait.
    pub async fn provider(&self) -> Result<&Provider, Unavailable> {
        if let Some(found) = self.found.get() {
            return Ok(found);
        }
        // Another request is discovering right now: this one does not wait for it.
        let Ok(mut next) = self.next.try_lock() else {
            return Err(Unavailable::Waiting);
        };
        if let Some(found) = self.found.get() {
            return Ok(found);
        }
        let now = tokio::time::Instant::now();
        if next.not_before.is_some_and(|not_before| now < not_before) {
            return Err(Unavailable::Waiting);
        }
        let discovered = Provider::discover(
            &self.issuer,
            &self.client_id,
            self.client_secret.clone(),
            self.redirect_uri.clone(),
        )
        .await;
        match discovered {
            Ok(provider) => {
                tracing::info!(issuer = %self.issuer, "the portal's OpenID provider answered; sign-in is open");
                next.retries.reset();
                Ok(self.found.get_or_init(|| provider))
            }
            Err(e) => {
                let wait = next.retries.next_delay();
                next.not_before = Some(tokio::time::Instant::now() + wait);
                tracing::warn!(
                    error = %e,
                    retry_in_ms = wait.as_millis() as u64,
                    "the portal's OpenID provider cannot be used; sign-in is unavailable until it answers"
                );
                match e {
                    ProviderError::IssuerMismatch { .. } => Err(Unavailable::Misconfigured(e)),
                    _ => Err(Unavailable::Waiting),
                }
            }
        }
    }
}

/// Why sign-in cannot start now.
#[derive(Debug)]
pub enum Unavailable {
    /// The provider has not answered discovery yet; it is tried again after a wait.
    Waiting,
    /// The provider answered, but not as `[web]` says it should (another issuer).
    Misconfigured(ProviderError),
}

/// What one sign-in sent, to check what comes back.
pub struct Attempt {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl Attempt {
    /// Fresh random `state`, `nonce` and PKCE verifier (32 bytes each).
    pub fn new() -> Self {
        Self {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
        }
    }
}

impl Default for Attempt {
    fn default() -> Self {
        Self::new()
    }
}

impl Provider {
    /// Reads the provider's discovery document and keys.
    pub async fn discover(
        issuer: &str,
        client_id: &str,
        client_secret: Secret,
        redirect_uri: String,
    ) -> Result<Self, ProviderError> {
        crate::app::install_tls_provider();
        let http = crate::tls::http_client(None)
            .map_err(|e| http_error("setting up TLS", issuer, &e))?
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| http_error("building the HTTP client", issuer, &e))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = get_json(&http, "reading the discovery document", &url).await?;
        if discovery.issuer != issuer {
            return Err(ProviderError::IssuerMismatch {
                configured: issuer.to_owned(),
                found: discovery.issuer,
            });
        }
        let jwks = get_json(&http, "reading the JWKS", &discovery.jwks_uri).await?;
        Ok(Self {
            issuer: discovery.issuer,
            client_id: client_id.to_owned(),
            client_secret,
            redirect_uri,
            authorization_endpoint: discovery.authorization_endpoint,
            token_endpoint: discovery.token_endpoint,
            jwks_uri: discovery.jwks_uri,
            jwks: RwLock::new(jwks),
            http,
        })
    }

    /// Where the browser goes to sign in for `attempt`.
    pub fn authorization_url(&self, attempt: &Attempt) -> String {
        let mut url = match reqwest::Url::parse(&self.authorization_endpoint) {
            Ok(url) => url,
            Err(_) => return self.authorization_endpoint.clone(),
        };
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", &attempt.state)
            .append_pair("nonce", &attempt.nonce)
            .append_pair("code_challenge", &challenge(&attempt.verifier))
            .append_pair("code_challenge_method", "S256");
        url.into()
    }

    /// Exchanges `code` for an ID token and checks it; its claims.
    pub async fn redeem(
        &self,
        code: &str,
        attempt: &Attempt,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Claims, ProviderError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", &attempt.verifier),
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose()),
        ];
        let body = serde_urlencoded::to_string(form).unwrap_or_default();
        let url = &self.token_endpoint;
        let what = "redeeming the code at the token endpoint";
        let response = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| http_error(what, url, &e))?;
        let answer: TokenResponse = read_json(what, url, response).await?;
        let token = answer.id_token.ok_or(ProviderError::NoIdToken)?;
        let expected = Expected {
            issuer: &self.issuer,
            client_id: &self.client_id,
            nonce: &attempt.nonce,
            now,
        };
        match self.check(&token, &expected) {
            Err(e) if e.wants_new_keys() => {
                let fresh: Jwks = get_json(&self.http, "reading the JWKS", &self.jwks_uri).await?;
                *self.jwks.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                Ok(self.check(&token, &expected)?)
            }
            checked => Ok(checked?),
        }
    }

    fn check(&self, token: &str, expected: &Expected<'_>) -> Result<Claims, TokenError> {
        let keys = self.jwks.read().unwrap_or_else(|p| p.into_inner());
        idtoken::verify(token, &keys, expected)
    }
}

/// The PKCE S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// 32 random bytes from the system, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system's generator does not fail on Linux once booted; an all-zero token would
    // be guessable, so a failure is a panic rather than a weak secret.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system random generator works");
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    what: &'static str,
    url: &str,
) -> Result<T, ProviderError> {
    let response = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| http_error(what, url, &e))?;
    read_json(what, url, response).await
}

async fn read_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    url: &str,
    response: reqwest::Response,
) -> Result<T, ProviderError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| http_error(what, url, &e))?;
    if !status.is_success() {
        let excerpt: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
        return Err(ProviderError::Http {
            what,
            url: url.to_owned(),
            reason: format!("HTTP {status}: {excerpt}"),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| ProviderError::Http {
        what,
        url: url.to_owned(),
        reason: format!("not the JSON expected: {e}"),
    })
}

fn http_error(what: &'static str, url: &str, error: &dyn std::error::Error) -> ProviderError {
    ProviderError::Http {
        what,
        url: url.to_owned(),
        reason: crate::connector::webhook::error_chain(error),
    }
}
