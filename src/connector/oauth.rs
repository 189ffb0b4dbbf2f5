//! OAuth 2.0 client credentials (RFC 6749 §4.4) for the connectors that sign in as a service
//! app (Okta, Entra): a token is asked of the service's token endpoint, kept, and used until
//! shortly before it expires; a new one is asked for then, or when the API refuses it.
//!
//! The client proves who it is with a signed assertion (RFC 7523, `private_key_jwt`, see
//! [`super::jwt`]) or a client secret; the caller builds the form. Refusals are classified
//! by RFC 6749 §5.2's error codes: a client, grant or scope the service does not accept is
//! permanent (retrying cannot help until someone changes the app), the rest transient.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::http_api::{self, Answer, ApiError, Throttle};

/// A token is renewed this long before the service said it expires, so that a call never
/// starts with one about to lapse.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// An access token and when it stops being used.
#[derive(Clone)]
pub struct AccessToken {
    pub value: String,
    /// When to ask for a new one: [`RENEW_BEFORE`] before it expires (or halfway through a
    /// shorter life).
    pub renew_at: Instant,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// The token in use, shared by a connector's calls: one request to the token endpoint at a
/// time, every other call waiting for its answer.
#[derive(Debug, Default)]
pub struct TokenCache {
    current: Mutex<Option<AccessToken>>,
}

impl TokenCache {
    /// The token in hand, or a new one from `fetch` when there is none or it is due for
    /// renewal.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<String, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, ApiError>>,
    {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        let token = fetch().await?;
        let value = token.value.clone();
        *current = Some(token);
        Ok(value)
    }

    /// Drops the token in hand (the API refused it): the next call asks for a new one.
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: String,
    /// Seconds; an hour when not said.
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TokenRefusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Why the token endpoint refused, with the sentence saying what to fix for the errors a
/// configuration causes.
pub struct Refused<'a> {
    /// `invalid_client`: the client id, key or secret is not the app's.
    pub invalid_client: &'a str,
    /// `invalid_scope` or `unauthorized_client`: the app may not have the scopes asked for.
    pub invalid_scope: &'a str,
}

/// A client-credentials token from `url`, the form being `form` (grant type, scope, client
/// authentication). `what` names the request for messages: "Okta token request at
/// https://example.okta.com/oauth2/v1/token".
pub async fn request_token(
    client: &reqwest::Client,
    url: &reqwest::Url,
    form: &[(&str, &str)],
    throttle: &Throttle,
    deadline: Instant,
    what: &str,
    refused: &Refused<'_>,
) -> Result<AccessToken, ApiError> {
    let request = client
        .post(url.clone())
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
    let answer = http_api::send(request, throttle, deadline, what).await?;
    if !answer.status.is_success() {
        return Err(refusal(&answer, what, refused));
    }
    let token: TokenAnswer = serde_json::from_slice(&answer.body).map_err(|e| {
        ApiError::Permanent(format!(
            "{what} answered {} with no access token: {e}",
            answer.status
        ))
    })?;
    if !token.token_type.is_empty() && !token.token_type.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Permanent(format!(
            "{what} issued a `{}` token; Gatehouse sends Bearer tokens only (turn DPoP off for the app)",
            token.token_type
        )));
    }
    let life = Duration::from_secs(token.expires_in.unwrap_or(3600));
    let early = RENEW_BEFORE.min(life / 2);
    Ok(AccessToken {
        value: token.access_token,
        renew_at: Instant::now() + life - early,
    })
}

fn refusal(answer: &Answer, what: &str, refused: &Refused<'_>) -> ApiError {
    let said: TokenRefusal = serde_json::from_slice(&answer.body).unwrap_or_default();
    if http_api::transient_status(answer.status) || said.error == "temporarily_unavailable" {
        return http_api::status_error(answer, what);
    }
    let answered = if said.error.is_empty() {
        format!(
            "{what} answered HTTP {}: {}",
            answer.status,
            answer.excerpt()
        )
    } else {
        format!(
            "{what} answered HTTP {} {}: {}",
            answer.status, said.error, said.error_description
        )
    };
    let help = match said.error.as_str() {
        "invalid_client" => refused.invalid_client,
        "invalid_scope" | "unauthorized_client" => refused.invalid_scope,
        _ => "",
    };
    if help.is_empty() {
        ApiError::Permanent(answered)
    } else {
        ApiError::Permanent(format!("{answered}; {help}"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_token_is_kept_until_shortly_before_it_expires_or_is_refused() {
        let cache = TokenCache::default();
        let fetched = AtomicUsize::new(0);
        let fetch = || async {
            let n = fetched.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(AccessToken {
                value: format!("token-{n}"),
                renew_at: Instant::now() + Duration::from_secs(3600) - RENEW_BEFORE,
            })
        };
        assert_eq!(cache.get(fetch).await.unwrap(), "token-1");
        assert_eq!(cache.get(fetch).await.unwrap(), "token-1");
        tokio::time::advance(Duration::from_secs(3600) - RENEW_BEFORE - Duration::from_secs(1))
            .await;
        assert_eq!(cache.get(fetch).await.unwrap(), "token-1");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            cache.get(fetch).await.unwrap(),
            "token-2",
            "due for renewal"
        );
        cache.forget().await;
        assert_eq!(
            cache.get(fetch).await.unwrap(),
            "token-3",
            "refused, so dropped"
        );
        let failing = || async { Err(ApiError::transient("token endpoint down")) };
        cache.forget().await;
        assert!(cache.get(failing).await.is_err());
        assert_eq!(
            cache.get(fetch).await.unwrap(),
            "token-4",
            "a failure keeps nothing"
        );
    }
}
