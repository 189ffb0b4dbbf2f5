//! How the `github` connector proves who it is: a token given in the config (a fine-grained
//! personal access token), or a GitHub App — an RS256 JWT signed with the App's private key
//! is exchanged for an installation token (`POST /app/installations/{id}/access_tokens`),
//! which is kept until [`RENEW_BEFORE`] its expiry (an hour after it is made) and then made
//! again. A token GitHub refuses (401) is dropped, so the next call makes a new one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::super::http_api::{self, ApiError, Throttle};
use super::super::jwt::{Header, RsaKey};
use crate::config::Secret;
use crate::engine::{Clock, SystemClock};

/// How long before its expiry an installation token is replaced: a call that starts with it
/// has that long to finish.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// How long the App's JWT is valid: GitHub takes at most ten minutes.
const JWT_LIFETIME_SECS: i64 = 9 * 60;
/// How far back the JWT's `iat` is set, for a GitHub clock a little behind ours (GitHub's
/// own advice is 60 seconds).
const JWT_BACKDATE_SECS: i64 = 60;

pub enum Auth {
    /// A token from the config, sent as it is.
    Token(Secret),
    App(Box<App>),
}

pub struct App {
    /// The App's id or client id: the JWT's issuer.
    pub app_id: String,
    pub installation_id: String,
    pub key: RsaKey,
    /// `{api_url}/app/installations/{installation_id}/access_tokens`.
    pub url: reqwest::Url,
    installation: Mutex<Option<Installation>>,
}

/// An installation token and when to stop using it.
struct Installation {
    token: Secret,
    renew_at: Instant,
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

impl App {
    pub fn new(app_id: String, installation_id: String, key: RsaKey, url: reqwest::Url) -> Self {
        Self {
            app_id,
            installation_id,
            key,
            url,
            installation: Mutex::new(None),
        }
    }

    /// The JWT that authenticates as the App itself, issued `now`.
    pub fn jwt(&self, now: DateTime<Utc>) -> Result<String, ApiError> {
        let claims = Claims {
            iat: now.timestamp() - JWT_BACKDATE_SECS,
            exp: now.timestamp() + JWT_LIFETIME_SECS,
            iss: &self.app_id,
        };
        self.key
            .sign(&Header::rs256(), &claims)
            .map_err(|e| ApiError::Permanent(format!("the GitHub App's private_key {e}")))
    }
}

impl Auth {
    /// The token to send now: the configured one, or an installation token (made when there
    /// is none still good for [`RENEW_BEFORE`]).
    pub async fn token(
        &self,
        client: &reqwest::Client,
        throttle: &Throttle,
        deadline: Instant,
    ) -> Result<Secret, ApiError> {
        let app = match self {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::App(app) => app,
        };
        // Held while a token is made, so that concurrent calls make one, not one each.
        let mut installation = app.installation.lock().await;
        if let Some(current) = installation.as_ref()
            && Instant::now() < current.renew_at
        {
            return Ok(current.token.clone());
        }
        let made = make_installation_token(app, client, throttle, deadline).await?;
        let token = made.token.clone();
        *installation = Some(made);
        Ok(token)
    }

    /// Drops the installation token GitHub refused; `false` for a configured token, which
    /// a new try cannot change.
    pub async fn forget(&self) -> bool {
        match self {
            Auth::Token(_) => false,
            Auth::App(app) => {
                *app.installation.lock().await = None;
                true
            }
        }
    }

    /// For messages: who the connector is at GitHub.
    pub fn describe(&self) -> String {
        match self {
            Auth::Token(_) => "the connector's token".to_owned(),
            Auth::App(app) => format!(
                "GitHub App {} (installation {})",
                app.app_id, app.installation_id
            ),
        }
    }
}

async fn make_installation_token(
    app: &App,
    client: &reqwest::Client,
    throttle: &Throttle,
    deadline: Instant,
) -> Result<Installation, ApiError> {
    let what = format!(
        "GitHub POST {} (an installation token for GitHub App {})",
        app.url.path(),
        app.app_id
    );
    let jwt = app.jwt(SystemClock.now())?;
    let request = client
        .post(app.url.clone())
        .header("accept", super::ACCEPT)
        .header("x-github-api-version", super::API_VERSION)
        .bearer_auth(jwt);
    let answer = http_api::send(request, throttle, deadline, &what).await?;
    if answer.status == StatusCode::CREATED {
        #[derive(serde::Deserialize)]
        struct Made {
            token: String,
            expires_at: DateTime<Utc>,
        }
        let made: Made = serde_json::from_slice(&answer.body).map_err(|e| {
            ApiError::Permanent(format!(
                "{what} answered with something that is not an installation token: {e}"
            ))
        })?;
        let lifetime = (made.expires_at - SystemClock.now())
            .to_std()
            .unwrap_or_default();
        return Ok(Installation {
            token: Secret::new(made.token),
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_BEFORE),
        });
    }
    if let Some(limited) = super::throttled(&answer, &what, throttle) {
        return Err(limited);
    }
    let said = super::said(&answer);
    let error = match answer.status.as_u16() {
        401 => ApiError::Permanent(format!(
            "{what} answered 401: {said}; GitHub does not accept the App's JWT: check app_id and private_key (the App's key, from its settings page) and this host's clock"
        )),
        404 => ApiError::Permanent(format!(
            "{what} answered 404: {said}; GitHub App {} has no installation {}: install the App on the organization and copy the id from the installation's URL",
            app.app_id, app.installation_id
        )),
        403 => ApiError::Permanent(format!(
            "{what} answered 403: {said}; GitHub refused the App an installation token (a suspended installation?)"
        )),
        _ => return Err(super::refused(&answer, &what)),
    };
    Err(error)
}
