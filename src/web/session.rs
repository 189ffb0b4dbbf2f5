//! Who is signed in: the session cookie, checked against the store on every page, and the
//! CSRF token every form carries. The cookie holds 32 random bytes; the store holds the
//! session under their SHA-256 ([`session_key`]), so a copy of the data directory signs
//! nobody in, and a cookie edited by one character finds no session.

use axum::http::header::{COOKIE, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::{Portal, Settings};
use crate::domain::directory::Person;
use crate::domain::session::{Ended, Session};

/// The session cookie's name: `__Host-` over https, so that no subdomain can set it.
pub fn cookie_name(settings: &Settings) -> &'static str {
    if settings.secure {
        "__Host-gatehouse"
    } else {
        "gatehouse"
    }
}

/// The cookie that ties a sign-in's callback to the browser that started it.
pub fn sign_in_cookie_name(settings: &Settings) -> &'static str {
    if settings.secure {
        "__Host-gatehouse-signin"
    } else {
        "gatehouse-signin"
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (the provider's redirect back is a
/// cross-site navigation, which Strict would strip), Secure over https, for the whole site.
/// `max_age` of 0 deletes it.
pub fn set_cookie(
    settings: &Settings,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if settings.secure {
        cookie.push_str("; Secure");
    }
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Where a session is stored: the SHA-256 of the cookie's secret, hex.
pub fn session_key(secret: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        secret.as_bytes(),
    ))
}

/// A signed-in person on this request.
pub struct Visitor {
    pub key: String,
    pub session: Session,
    pub person: Person,
    pub admin: bool,
    pub auditor: bool,
}

/// Why a request has no signed-in person.
pub enum NotSignedIn {
    /// No cookie, or one that names no stored session (made up, edited or signed out).
    NoSession,
    Ended(Ended),
    /// The store failed: ours.
    Broken(Response),
}

impl Portal {
    /// The person signed in on this request, re-checked now: the stored session, within its
    /// timeouts, and its person still active. A session found ended is deleted.
    pub(super) async fn visitor(&self, headers: &HeaderMap) -> Result<Visitor, NotSignedIn> {
        let Some(secret) = cookie(headers, cookie_name(&self.settings)) else {
            return Err(NotSignedIn::NoSession);
        };
        let key = session_key(secret);
        let stored = self.facade.session(key.clone()).await;
        let session = match stored {
            Ok(Some(session)) => session,
            Ok(None) => return Err(NotSignedIn::NoSession),
            Err(e) => return Err(NotSignedIn::Broken(self.apology(&e))),
        };
        let now = self.facade.now();
        let world = self.facade.world();
        if let Err(ended) = session.check(now, self.settings.timeouts, &world.directory) {
            if let Err(e) = self.facade.end_session(key).await {
                tracing::error!(error = %e, "an ended portal session could not be deleted");
            }
            return Err(NotSignedIn::Ended(ended));
        }
        let session = match session.touched(now) {
            Some(touched) => {
                if let Err(e) = self
                    .facade
                    .touch_session(key.clone(), touched.clone())
                    .await
                {
                    tracing::warn!(error = %e, "a portal session's last use could not be saved");
                }
                touched
            }
            None => session,
        };
        let Some(person) = world.directory.active_person(&session.person).cloned() else {
            return Err(NotSignedIn::NoSession);
        };
        let admin = world.policy.is_admin(&person);
        let auditor = world.policy.is_auditor(&person);
        Ok(Visitor {
            key,
            session,
            person,
            admin,
            auditor,
        })
    }

    /// Whether a form may act for `visitor`: it carries their session's CSRF token, and the
    /// browser, when it says where the form came from, says it came from the portal.
    pub(super) fn check_form(
        &self,
        visitor: &Visitor,
        headers: &HeaderMap,
        token: Option<&str>,
    ) -> Result<(), StatusCode> {
        if let Some(origin) = headers.get(ORIGIN) {
            let expected = origin_of(&self.settings.base_url);
            if origin.to_str().ok() != Some(expected) {
                return Err(StatusCode::FORBIDDEN);
            }
        }
        let given = token.unwrap_or_default().as_bytes();
        let expected = visitor.session.csrf.as_bytes();
        if bool::from(subtle::ConstantTimeEq::ct_eq(given, expected)) && !expected.is_empty() {
            Ok(())
        } else {
            Err(StatusCode::FORBIDDEN)
        }
    }
}

/// `https://host:port` of a URL: what a browser sends as `Origin`.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_of_a_base_url_is_its_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://gh.example.com"),
            "https://gh.example.com"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/sub"),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn a_cookie_is_found_by_its_exact_name_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; gatehouse-signin=s; gatehouse=t"),
        );
        assert_eq!(cookie(&headers, "gatehouse"), Some("t"));
        assert_eq!(cookie(&headers, "gatehouse-signin"), Some("s"));
        assert_eq!(cookie(&headers, "gate"), None);
    }

    #[test]
    fn a_session_is_stored_under_a_hash_of_its_secret_not_the_secret() {
        let key = session_key("secret");
        assert_eq!(key.len(), 64);
        assert!(!key.contains("secret"));
        assert_ne!(session_key("secreT"), key);
    }
}
