//! `[web]`: the web portal, signed in through OpenID Connect (see docs/portal.md). Off
//! unless `enabled = true`; then the provider (`issuer`), this client's `client_id` and
//! `client_secret`, and the portal's `public_url` are required.

use serde::Deserialize;

use super::secret::Secret;
use crate::domain::duration::Duration;

/// Which directory field the ID token's `claim` is matched against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchOn {
    /// The person's `email`, without regard to case; the token must not say the address is
    /// unverified (`email_verified = false`).
    #[default]
    Email,
    /// The person's `id`.
    Id,
    /// The person's Slack user id (Sign in with Slack's `https://slack.com/user_id`).
    Slack,
    /// The person's Discord user id.
    Discord,
}

/// `[web]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    pub enabled: bool,
    /// The OpenID provider: `{issuer}/.well-known/openid-configuration` is read at start.
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Where people reach the portal; the redirect URI is `{public_url}/web/callback`.
    /// Cookies are `Secure` when it is https.
    pub public_url: Option<String>,
    /// The ID token claim that names the person.
    pub claim: String,
    /// What `claim` is compared with in the directory.
    pub match_on: MatchOn,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however much it is used.
    pub absolute_timeout: Duration,
    /// Sign-ins started per minute, all clients together; more are refused with 429.
    pub sign_ins_per_minute: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: None,
            client_id: None,
            client_secret: None,
            public_url: None,
            claim: "email".to_owned(),
            match_on: MatchOn::Email,
            idle_timeout: Duration::from_mins(30),
            absolute_timeout: Duration::from_mins(12 * 60),
            sign_ins_per_minute: 60,
        }
    }
}

impl WebConfig {
    /// `public_url` without a trailing slash.
    pub fn base_url(&self) -> Option<&str> {
        self.public_url
            .as_deref()
            .map(|url| url.trim_end_matches('/'))
    }

    /// The portal's address of request `id`, for chat cards to link to; `None` when the
    /// portal is off.
    pub fn request_url(&self, id: &str) -> Option<String> {
        match (self.enabled, self.base_url()) {
            (true, Some(base)) => Some(format!("{base}/web/requests/{id}")),
            _ => None,
        }
    }
}
