//! The web portal: My access, New request, Approvals and the request page, for admins the
//! live grants, and for auditors and admins the audit log, in the browser, signed in through OpenID Connect (docs/portal.md).
//!
//! It is one more front end on the engine's [`Facade`]: it authenticates the person (the
//! provider's ID token, then a session), parses what they sent, and asks the engine, which
//! decides whether they may, by the same rules as chat. Forms are the chat forms
//! ([`crate::chat::forms`]), so a mistake reads the same sentence in both. Pages are
//! rendered on the server from templates/web/*.html, with every value HTML-escaped, and
//! work without JavaScript; the Content-Security-Policy allows no script at all.
//!
//! Security rules, each enforced here: sessions are stored (a hash of the cookie's secret,
//! never the secret) and end at the idle or absolute timeout or when the person leaves;
//! cookies are HttpOnly, SameSite=Lax and Secure over https; every POST carries the
//! session's CSRF token and, when the browser sends one, an `Origin` of the portal;
//! sign-ins are rate limited.

mod audit;
mod headers;
pub mod idtoken;
pub mod oidc;
mod pages;
mod policy;
mod render;
mod reviews;
pub mod session;
mod signin;
mod table;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chrono::{DateTime, TimeDelta, Utc};

use crate::config::web::{MatchOn, WebConfig};
use crate::domain::session::Timeouts;
use crate::engine::Facade;
use oidc::{Discovering, ProviderError};
pub use render::Pages;

/// The largest form body: a request with its reason and template fields.
const FORM_BYTES: usize = 64 * 1024;
/// How long a sign-in may take at the provider.
const SIGN_IN_TIME: TimeDelta = TimeDelta::minutes(10);

/// How the portal behaves, from `[web]`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `public_url` without a trailing slash.
    pub base_url: String,
    pub secure: bool,
    pub claim: String,
    pub match_on: MatchOn,
    pub timeouts: Timeouts,
    pub sign_ins_per_minute: u32,
}

impl Settings {
    pub fn from_config(web: &WebConfig) -> Self {
        let base_url = web.base_url().unwrap_or_default().to_owned();
        Self {
            secure: base_url.starts_with("https://"),
            base_url,
            claim: web.claim.clone(),
            match_on: web.match_on,
            timeouts: Timeouts {
                idle: web.idle_timeout.to_chrono(),
                absolute: web.absolute_timeout.to_chrono(),
            },
            sign_ins_per_minute: web.sign_ins_per_minute,
        }
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/web/callback", self.base_url)
    }
}

/// Everything the portal's handlers share.
pub struct Portal {
    facade: Facade,
    provider: Discovering,
    settings: Settings,
    pages: Pages,
    /// The minute (since the epoch) of the last sign-in slot this replica looked at, and
    /// the first slot of it that may still be free ([`Portal::may_start_sign_in`]).
    window: Mutex<(i64, u32)>,
}

impl Portal {
    /// Builds the portal, trying the provider's discovery document and keys once: a
    /// provider that does not answer yet is tried again when someone signs in (sign-in is
    /// unavailable until it answers); one that answers with another issuer fails the start.
    pub async fn start(web: &WebConfig, facade: Facade) -> Result<Arc<Self>, ProviderError> {
        let settings = Settings::from_config(web);
        let secret = web
            .client_secret
            .clone()
            .unwrap_or_else(|| crate::config::Secret::new(""));
        let provider = Discovering::start(
            web.issuer.as_deref().unwrap_or_default(),
            web.client_id.as_deref().unwrap_or_default(),
            secret,
            settings.redirect_uri(),
        )
        .await?;
        Ok(Arc::new(Self {
            facade,
            provider,
            settings,
            pages: Pages::new(),
            window: Mutex::new((i64::MIN, 0)),
        }))
    }

    /// Whether one more sign-in may start now: it takes one of this minute's
    /// `sign_ins_per_minute` slots, kept in the store's table of keys seen once (the one that
    /// makes a chat delivery act once), so that every replica of a shared store counts
    /// against one limit, and a restart does not reset it. A slot is a key
    /// `web-sign-in/<minute>/<n>`, taken atomically; this replica remembers the first slot
    /// that may be free, so a sign-in usually takes one write, and at most the limit's number
    /// once the minute's slots are gone.
    async fn may_start_sign_in(
        &self,
        now: DateTime<Utc>,
    ) -> Result<bool, crate::engine::EngineError> {
        let minute = now.timestamp().div_euclid(60);
        let limit = self.settings.sign_ins_per_minute;
        let mut slot = {
            let window = self.window.lock().unwrap_or_else(|p| p.into_inner());
            if window.0 == minute { window.1 } else { 0 }
        };
        // Forgotten once the minute is over (with a minute to spare for clocks apart).
        let until = DateTime::from_timestamp((minute + 2) * 60, 0).unwrap_or(now);
        let mut taken = false;
        while slot < limit && !taken {
            let key = format!("web-sign-in/{minute}/{slot}");
            taken = self.facade.take_once(key, until).await?;
            slot += 1;
        }
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if window.0 != minute || window.1 < slot {
            *window = (minute, slot);
        }
        Ok(taken)
    }

    /// Whether this is the first callback for the sign-in `state`, by any replica: the
    /// state is kept in the store's table of keys seen once until the sign-in would have
    /// lapsed anyway, so a callback replayed (even with its cookie) finds it taken.
    async fn first_callback(
        &self,
        state: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, crate::engine::EngineError> {
        let key = format!("web-callback/{}", session::session_key(state));
        self.facade.take_once(key, until).await
    }
}

/// The portal's routes, under `/web`.
pub fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/web", get(pages::home))
        .route("/web/", get(pages::home))
        .route("/web/portal.css", get(render::stylesheet))
        .route("/web/login", get(signin::login))
        .route("/web/callback", get(signin::callback))
        .route("/web/logout", post(signin::logout))
        .route("/web/sessions/end", post(signin::end_sessions))
        .route("/web/access", get(pages::my_access))
        .route(
            "/web/new",
            get(pages::new_request).post(pages::submit_request),
        )
        .route("/web/approvals", get(pages::approvals))
        .route("/web/requests/{id}", get(pages::request_page))
        .route("/web/requests/{id}/audit", get(pages::request_audit))
        .route("/web/requests/{id}/approve", post(pages::approve))
        .route("/web/requests/{id}/reject", post(pages::reject))
        .route(
            "/web/requests/{id}/changes",
            post(pages::approve_with_changes),
        )
        .route("/web/requests/{id}/cancel", post(pages::cancel))
        .route("/web/grants", get(pages::grants))
        .route("/web/policy", get(policy::policy))
        .route("/web/reviews", get(reviews::reviews))
        .route(
            "/web/reviews/{campaign}/{grant}/{decision}",
            post(reviews::decide),
        )
        .route("/web/audit", get(audit::audit))
        .route("/web/audit/export", get(audit::export))
        .route("/web/audit/verify", get(audit::verify))
        .route("/web/grants/{id}/extend", post(pages::extend))
        .route("/web/grants/{id}/end", post(pages::end_early))
        .route("/web/grants/{id}/revoke", post(pages::revoke))
        .layer(DefaultBodyLimit::max(FORM_BYTES))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(portal)
}
