//! Signing in and out. `/web/login` starts an authorization code flow with PKCE at the
//! provider; `/web/callback` checks that the browser coming back is the one that left
//! (the `state` in its sign-in cookie), redeems the code, checks the ID token, finds the
//! person in the directory and opens a session. Anyone the directory does not know, or
//! knows as a leaver, gets a page saying so and nothing else.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::idtoken::Claims;
use super::oidc::{Attempt, random_token};
use super::session::{cookie, cookie_name, session_key, set_cookie, sign_in_cookie_name};
use super::{Portal, SIGN_IN_TIME};
use crate::config::web::MatchOn;
use crate::domain::directory::{Directory, Person};
use crate::domain::session::Session;

pub async fn login(State(portal): State<Arc<Portal>>) -> Response {
    let now = portal.facade.now();
    let may = match portal.may_start_sign_in(now).await {
        Ok(may) => may,
        Err(e) => return portal.apology(&e),
    };
    if !may {
        return portal.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins",
            "Too many people are signing in right now; wait a minute and try again.",
        );
    }
    let Ok(provider) = portal.provider.provider().await else {
        return portal.sign_in_unavailable();
    };
    let attempt = Attempt::new();
    let url = provider.authorization_url(&attempt);
    let settings = &portal.settings;
    let mut headers = HeaderMap::new();
    headers.insert(
        LOCATION,
        url.parse()
            .unwrap_or_else(|_| "/web".parse().expect("static")),
    );
    headers.insert(
        SET_COOKIE,
        set_cookie(
            settings,
            sign_in_cookie_name(settings),
            &SignIn {
                attempt,
                started: now,
            }
            .to_cookie(),
            Some(SIGN_IN_TIME.num_seconds()),
        ),
    );
    (StatusCode::SEE_OTHER, headers).into_response()
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let settings = &portal.settings;
    let clear = set_cookie(settings, sign_in_cookie_name(settings), "", Some(0));
    let failed = |portal: &Portal, why: &str| {
        let mut response = portal.message(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &format!("{why} Start again from the sign-in page."),
        );
        response.headers_mut().insert(SET_COOKIE, clear.clone());
        response
    };
    if let Some(error) = &callback.error {
        tracing::info!(%error, "the provider refused a portal sign-in");
        return failed(&portal, "The identity provider did not sign you in.");
    }
    let (Some(code), Some(state)) = (&callback.code, &callback.state) else {
        return failed(&portal, "The identity provider's answer was incomplete.");
    };
    // The state must be the one this browser was sent off with: a callback link made by
    // someone else (login CSRF) finds no matching cookie.
    let now = portal.facade.now();
    let ours = cookie(&headers, sign_in_cookie_name(settings))
        .and_then(SignIn::from_cookie)
        .filter(|ours| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                ours.attempt.state.as_bytes(),
                state.as_bytes(),
            ))
        })
        .filter(|ours| now < ours.started + SIGN_IN_TIME);
    let Some(SignIn { attempt, started }) = ours else {
        return failed(
            &portal,
            "This sign-in is unknown, was used already or took too long.",
        );
    };
    match portal.first_callback(state, started + SIGN_IN_TIME).await {
        Ok(true) => {}
        Ok(false) => {
            return failed(
                &portal,
                "This sign-in is unknown, was used already or took too long.",
            );
        }
        Err(e) => return portal.apology(&e),
    }
    let Ok(provider) = portal.provider.provider().await else {
        return portal.sign_in_unavailable();
    };
    let claims = match provider.redeem(code, &attempt, now).await {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(error = %e, "a portal sign-in was refused");
            return failed(
                &portal,
                "The identity provider's answer could not be verified.",
            );
        }
    };
    let world = portal.facade.world();
    let person = match find_person(
        &claims,
        &world.directory,
        &portal.settings.claim,
        portal.settings.match_on,
    ) {
        Ok(person) => person.clone(),
        Err(why) => {
            tracing::info!(claim = %portal.settings.claim, "{why}");
            let mut response = portal.message(StatusCode::FORBIDDEN, "No access", &why);
            response.headers_mut().insert(SET_COOKIE, clear);
            return response;
        }
    };
    let secret = random_token();
    let session = Session::new(person.id.clone(), random_token(), now);
    let opened = portal
        .facade
        .open_session(session_key(&secret), session, settings.timeouts)
        .await;
    if let Err(e) = opened {
        return portal.apology(&e);
    }
    tracing::info!(person = %person.id, "signed in to the portal");
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, "/web/access")]).into_response();
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, clear);
    headers.append(
        SET_COOKIE,
        set_cookie(settings, cookie_name(settings), &secret, None),
    );
    response
}

/// A sign-in under way, kept by the browser in its sign-in cookie (HttpOnly, SameSite=Lax,
/// `__Host-` and Secure over https) rather than in one replica's memory, so that whichever
/// replica the provider sends the browser back to can finish it. Holding the nonce and the
/// PKCE verifier gives the browser nothing it did not have: the provider sends the code for
/// this `state` to this browser alone, and a code taken elsewhere meets another browser's
/// verifier. Each callback is taken once, through the store ([`Portal::first_callback`]).
struct SignIn {
    attempt: Attempt,
    started: DateTime<Utc>,
}

impl SignIn {
    /// `state.nonce.verifier.started`: three base64url tokens and seconds since the epoch.
    fn to_cookie(&self) -> String {
        let Attempt {
            state,
            nonce,
            verifier,
        } = &self.attempt;
        format!("{state}.{nonce}.{verifier}.{}", self.started.timestamp())
    }

    fn from_cookie(value: &str) -> Option<Self> {
        let mut parts = value.split('.');
        let mut token = || {
            parts
                .next()
                .filter(|t| {
                    !t.is_empty()
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
                .map(str::to_owned)
        };
        let (state, nonce, verifier) = (token()?, token()?, token()?);
        let started = DateTime::from_timestamp(token()?.parse().ok()?, 0)?;
        if parts.next().is_some() {
            return None;
        }
        Some(SignIn {
            attempt: Attempt {
                state,
                nonce,
                verifier,
            },
            started,
        })
    }
}

/// The active person the token's claim names; else the sentence the person reads.
pub fn find_person<'d>(
    claims: &Claims,
    directory: &'d Directory,
    claim: &str,
    match_on: MatchOn,
) -> Result<&'d Person, String> {
    let unknown = "Gatehouse does not know you. Ask the IAM team to add you to its directory, \
                   then sign in again."
        .to_owned();
    let Some(value) = claims.text(claim) else {
        return Err(format!(
            "Your identity provider did not say your {claim}, which Gatehouse needs to know who you are. Ask the IAM team."
        ));
    };
    if match_on == MatchOn::Email && claims.email_verified() == Some(false) {
        return Err("Your email address is not verified at your identity provider; verify it there, then sign in again.".to_owned());
    }
    let found = match match_on {
        MatchOn::Email => directory.by_email(&value),
        MatchOn::Id => directory.person(&value.as_str().into()),
        MatchOn::Slack => directory.by_slack(&value),
        MatchOn::Discord => directory.by_discord(&value),
    };
    match found {
        Some(person) if person.active => Ok(person),
        Some(_) => Err("Your account is no longer active in Gatehouse's directory.".to_owned()),
        None => Err(unknown),
    }
}

#[derive(Deserialize)]
pub struct Csrf {
    #[serde(default)]
    csrf: Option<String>,
}

pub async fn logout(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(form): Form<Csrf>,
) -> Response {
    let visitor = match portal.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(not) => return portal.not_signed_in(not),
    };
    if let Err(status) = portal.check_form(&visitor, &headers, form.csrf.as_deref()) {
        return portal.forbidden_form(status);
    }
    if let Err(e) = portal.facade.end_session(visitor.key).await {
        return portal.apology(&e);
    }
    let settings = &portal.settings;
    let mut response = portal.message(
        StatusCode::OK,
        "Signed out",
        "You are signed out of Gatehouse.",
    );
    response.headers_mut().insert(
        SET_COOKIE,
        set_cookie(settings, cookie_name(settings), "", Some(0)),
    );
    response
}

/// Ends every session of the signed-in person ("sign out everywhere"), or, for an admin,
/// of the person named in the form (`person`): a lost laptop, a stolen cookie.
pub async fn end_sessions(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, posted) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let named = posted
        .input("person")
        .map(crate::domain::ids::PersonId::new);
    let whose = match named {
        Some(person) if person != visitor.person.id => {
            if !visitor.admin {
                let e = crate::engine::EngineError::NotAllowed(
                    "only Gatehouse admins end someone else's sessions".to_owned(),
                );
                let back = super::pages::Link::new("/web/access", "Back to My access");
                return portal.refused(&visitor, &e, back);
            }
            person
        }
        _ => visitor.person.id.clone(),
    };
    let ended = match portal.facade.end_sessions_of(whose.clone()).await {
        Ok(ended) => ended,
        Err(e) => return portal.apology(&e),
    };
    tracing::info!(by = %visitor.person.id, person = %whose, ended, "portal sessions ended");
    let settings = &portal.settings;
    let mut response = portal.message(
        StatusCode::OK,
        "Sessions ended",
        &format!("{ended} session(s) of {whose} ended; they sign in again to go on."),
    );
    if whose == visitor.person.id {
        response.headers_mut().insert(
            SET_COOKIE,
            set_cookie(settings, cookie_name(settings), "", Some(0)),
        );
    }
    response
}
