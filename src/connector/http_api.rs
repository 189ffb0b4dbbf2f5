//! What connectors to HTTP JSON APIs (AWS, Okta, GitHub, Google, Entra) share: an HTTP client
//! on rustls, sending within the call's deadline, sorting failures into transient and
//! permanent, honouring the service's `Retry-After` or rate-limit reset, and naming the
//! person at the target with a [`PersonTemplate`].
//!
//! **Deadlines.** A connector call has one deadline (its `timeout` from now); every request of
//! the call, and every wait between them, fits inside it. A call that runs out of time is a
//! transient failure: the outbox retries it, and the connector's idempotence makes that safe.
//!
//! **Throttling.** When a service says how long to wait (`Retry-After` in seconds or as a
//! date, `RateLimit-Reset`, or `X-RateLimit-Reset` with no requests remaining), the
//! connector's [`Throttle`] holds every later request until then: a call that can wait
//! within its deadline waits, one that cannot fails transiently without sending, so the
//! service is never asked again before the moment it named.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::engine::{Clock, SystemClock};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use super::template::{Escape, PersonTemplate};
use super::{
    Action, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome, PersonRef, check_action,
    truncate,
};
use crate::domain::ids::{ConnectorId, RoleId};

/// The longest wait a service's hint is taken at: a larger one is surely a unit mistake
/// (milliseconds for seconds), and the outbox's own backoff covers the rest.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// How much of a refusing service's body goes into an error.
pub const BODY_EXCERPT: usize = 1024;

/// Why a request did not succeed, with the wait the service asked for when it said one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// May work later (network, timeout, 429, 5xx, throttling).
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (unknown user, forbidden, invalid request).
    #[error("{0}")]
    Permanent(String),
}

impl ApiError {
    pub fn transient(message: impl Into<String>) -> Self {
        ApiError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Transient { .. })
    }

    /// The same failure, its message prefixed with `context` (e.g. the connector's name).
    pub fn context(self, context: &str) -> Self {
        match self {
            ApiError::Transient {
                message,
                retry_after,
            } => ApiError::Transient {
                message: format!("{context}: {message}"),
                retry_after,
            },
            ApiError::Permanent(message) => ApiError::Permanent(format!("{context}: {message}")),
        }
    }
}

impl From<ApiError> for ConnectorError {
    /// The outbox learns "transient" or "permanent"; the wait the service asked for is kept
    /// by the connector's [`Throttle`], and said in the message.
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Transient {
                message,
                retry_after: Some(wait),
            } => ConnectorError::Transient(format!(
                "{message} (asked to wait {}s; will retry)",
                wait.as_secs().max(1)
            )),
            ApiError::Transient { message, .. } => {
                ConnectorError::Transient(format!("{message} (will retry)"))
            }
            ApiError::Permanent(message) => ConnectorError::Permanent(message),
        }
    }
}

/// Runs one call of an HTTP connector: refuses a call whose action is not the method's,
/// gives `change` the call's one deadline (`timeout` from now), and names the connector
/// (`kind` and id) in any error.
pub async fn run_call<F>(
    kind: &str,
    id: &ConnectorId,
    timeout: Duration,
    call: &ConnectorCall,
    method: Action,
    change: impl FnOnce(Instant) -> F,
) -> Result<Outcome, ConnectorError>
where
    F: Future<Output = Result<String, ApiError>>,
{
    check_action(id, call, method)?;
    change(Instant::now() + timeout)
        .await
        .map(|detail| Outcome { detail })
        .map_err(|e| e.context(&format!("{kind} `{id}`")).into())
}

/// What the call's role maps to in a connector's roles table; `what` names the kind of
/// target ("Okta group") in the error that says to add it.
pub fn role_target<'a, T>(
    roles: &'a BTreeMap<RoleId, T>,
    call: &ConnectorCall,
    what: &str,
) -> Result<&'a T, ApiError> {
    roles.get(&call.role).ok_or_else(|| {
        ApiError::Permanent(format!(
            "role `{}` has no {what}; add it to this connector's roles table",
            call.role
        ))
    })
}

/// The answer when the target has no user for the call's person (`missing` says which,
/// e.g. "Okta has no user whose login is `ada`"). Undoing a failed grant for them is done:
/// nothing can have been given to someone the target does not know. Anything else is a
/// permanent failure that names the call and says what to `fix`.
pub fn no_such_user(call: &ConnectorCall, missing: &str, fix: &str) -> Result<String, ApiError> {
    if call.undo {
        Ok(format!("nothing to undo: {missing}"))
    } else {
        Err(ApiError::Permanent(format!(
            "{missing} (for the {} of {} to {}); {fix}",
            call.action, call.grant, call.person.id
        )))
    }
}

/// An HTTP client for one connector: rustls (ring) with the system's roots, no redirects
/// (an API that redirects is misconfigured, and a redirect must not carry credentials
/// elsewhere), Gatehouse's user agent. Each request is bounded by the call's deadline.
pub fn client(id: &ConnectorId) -> Result<reqwest::Client, ConnectorSetupError> {
    crate::app::install_tls_provider();
    crate::tls::http_client(None)
        .map_err(|e| ConnectorSetupError::Client {
            id: id.clone(),
            reason: e.to_string(),
        })?
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConnectorSetupError::Client {
            id: id.clone(),
            reason: super::webhook::error_chain(&e),
        })
}

/// A response read to the end (bodies of these APIs are small).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The start of the body, for an error message.
    pub fn excerpt(&self) -> String {
        truncate(String::from_utf8_lossy(&self.body).trim(), BODY_EXCERPT)
    }
}

/// Sends `request` within `deadline` (after any wait the [`Throttle`] imposes) and reads the
/// whole answer, whatever its status. `what` says what was being done, for messages
/// ("identitystore GetUserId at https://identitystore.eu-west-1.amazonaws.com"). A wait hint
/// in an answer that is not a success holds the throttle.
pub async fn send(
    request: reqwest::RequestBuilder,
    throttle: &Throttle,
    deadline: Instant,
    what: &str,
) -> Result<Answer, ApiError> {
    throttle.wait_turn(deadline, what).await?;
    let exchange = async {
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok::<_, reqwest::Error>(Answer {
            status,
            headers,
            body,
        })
    };
    let answer = match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => {
            return Err(ApiError::transient(format!(
                "{what} did not answer in time"
            )));
        }
        Ok(Err(error)) => return Err(request_failed(what, error)),
        Ok(Ok(answer)) => answer,
    };
    // Any refusal with a wait attached: 429 and 503, but GitHub says 403 when its rate
    // limit is spent.
    if !answer.status.is_success()
        && let Some(wait) = retry_after(&answer.headers, SystemClock.now())
    {
        throttle.hold(wait);
    }
    Ok(answer)
}

/// A request that got no answer: the network, TLS, a timeout. Transient, but for a request
/// that could not even be built.
pub fn request_failed(what: &str, error: reqwest::Error) -> ApiError {
    let error = error.without_url();
    let chain = super::webhook::error_chain(&error);
    if error.is_builder() {
        ApiError::Permanent(format!("cannot build the request for {what}: {chain}"))
    } else if error.is_timeout() {
        ApiError::transient(format!("{what} did not answer in time"))
    } else if error.is_connect() {
        ApiError::transient(format!("{what}: could not connect: {chain}"))
    } else {
        ApiError::transient(format!("{what} failed: {chain}"))
    }
}

/// Whether an HTTP status is worth retrying: 408, 429 and every 5xx.
pub fn transient_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// An answer that is not a success, classified by its status alone: for services whose
/// error bodies say nothing more useful than the status.
pub fn status_error(answer: &Answer, what: &str) -> ApiError {
    let excerpt = answer.excerpt();
    let message = if excerpt.is_empty() {
        format!("{what} answered HTTP {}", answer.status)
    } else {
        format!("{what} answered HTTP {}: {excerpt}", answer.status)
    };
    if transient_status(answer.status) {
        ApiError::Transient {
            message,
            retry_after: retry_after(&answer.headers, SystemClock.now()),
        }
    } else {
        ApiError::Permanent(message)
    }
}

/// How long the service asked to wait, from the headers services use for it:
/// `Retry-After` (seconds, or an HTTP date); else, when the matching `…-Remaining` is 0,
/// `RateLimit-Reset` (seconds, the IETF draft) or a unix time in `X-RateLimit-Reset` (GitHub)
/// or `X-Rate-Limit-Reset` (Okta).
/// At most [`MAX_RETRY_AFTER`]; `None` when no header says it.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let until = |at: DateTime<Utc>| (at - now).to_std().unwrap_or(Duration::ZERO);
    let wait = if let Some(value) = text("retry-after") {
        match value.parse::<u64>() {
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => DateTime::parse_from_rfc2822(value)
                .ok()
                .map(|at| until(at.with_timezone(&Utc))),
        }
    } else if text("ratelimit-remaining") == Some("0") {
        text("ratelimit-reset")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs)
    } else if text("x-ratelimit-remaining") == Some("0") {
        unix_reset(text("x-ratelimit-reset")).map(until)
    } else if text("x-rate-limit-remaining") == Some("0") {
        unix_reset(text("x-rate-limit-reset")).map(until)
    } else {
        None
    };
    wait.map(|wait| wait.min(MAX_RETRY_AFTER))
}

fn unix_reset(value: Option<&str>) -> Option<DateTime<Utc>> {
    value
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|unix| DateTime::from_timestamp(unix, 0))
}

/// The moment before which a connector sends nothing, because its service asked so.
#[derive(Debug, Default)]
pub struct Throttle {
    until: Mutex<Option<Instant>>,
}

impl Throttle {
    /// Sends nothing for `wait` from now (or longer, if already held longer).
    pub fn hold(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut held = self.until.lock().unwrap_or_else(|p| p.into_inner());
        *held = Some(held.map_or(until, |held| held.max(until)));
    }

    /// Returns when a request may be sent: at once, after waiting (when the hold ends before
    /// `deadline`), or a transient failure saying how long is left (when it does not).
    pub async fn wait_turn(&self, deadline: Instant, what: &str) -> Result<(), ApiError> {
        let held = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        let Some(until) = held else {
            return Ok(());
        };
        let now = Instant::now();
        if until <= now {
            return Ok(());
        }
        if until <= deadline {
            tokio::time::sleep_until(until).await;
            return Ok(());
        }
        Err(ApiError::Transient {
            message: format!("{what} was not sent: the service asked for a pause"),
            retry_after: Some(until - now),
        })
    }
}

/// How a connector names the person at its target: a template over the person's `id`,
/// `email`, `slack` and `discord`, as `login` does for `postgres`.
pub struct PersonName {
    template: PersonTemplate,
    /// The config key, for messages: `user_name`.
    key: &'static str,
}

impl PersonName {
    /// Compiles `source` (the value of `key`); the error says what is wrong.
    pub fn parse(source: &str, key: &'static str) -> Result<Self, String> {
        let template = PersonTemplate::parse(source, Escape::Plain)
            .map_err(|e| format!("is not a template: {e}"))?;
        Ok(Self { template, key })
    }

    /// The person's name at the target; a person the template cannot name (no email, say)
    /// is a permanent failure that says so.
    pub fn render(&self, person: &PersonRef) -> Result<String, ApiError> {
        self.template.render(person).map_err(|e| {
            ApiError::Permanent(format!(
                "cannot name {} with the connector's {} template: {e}; give them the value it uses in the directory, or change the template",
                person.id, self.key
            ))
        })
    }
}

/// `url` without query, user or password: what messages show.
pub fn shown(url: &reqwest::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn secs_at(pairs: &[(&'static str, &str)], now: DateTime<Utc>) -> Option<u64> {
        retry_after(&headers(pairs), now).map(|d| d.as_secs())
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        let now = at("2015-10-21T07:27:00Z");
        let secs = |pairs: &[(&'static str, &str)]| secs_at(pairs, now);
        assert_eq!(secs(&[("retry-after", "7")]), Some(7));
        assert_eq!(
            secs(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            Some(60)
        );
        assert_eq!(
            secs(&[("retry-after", "Wed, 21 Oct 2015 07:20:00 GMT")]),
            Some(0),
            "a date in the past means now"
        );
        assert_eq!(secs(&[("retry-after", "soon")]), None);
        assert_eq!(secs(&[]), None);
    }

    #[test]
    fn rate_limit_resets_count_only_when_nothing_remains() {
        let now = at("2026-01-01T00:00:00Z");
        let reset = (now.timestamp() + 30).to_string();
        let secs = |pairs: &[(&'static str, &str)]| secs_at(pairs, now);
        assert_eq!(
            secs(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset)
            ]),
            Some(30)
        );
        assert_eq!(
            secs(&[
                ("x-ratelimit-remaining", "12"),
                ("x-ratelimit-reset", &reset)
            ]),
            None
        );
        assert_eq!(
            secs(&[
                ("x-rate-limit-remaining", "0"),
                ("x-rate-limit-reset", &reset)
            ]),
            Some(30),
            "Okta's spelling"
        );
        assert_eq!(
            secs(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "4")]),
            Some(4)
        );
        assert_eq!(
            secs(&[("ratelimit-remaining", "3"), ("ratelimit-reset", "4")]),
            None
        );
    }

    #[test]
    fn an_absurd_wait_is_capped() {
        let wait = retry_after(&headers(&[("retry-after", "86400")]), SystemClock.now());
        assert_eq!(wait, Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn statuses_worth_retrying_are_408_429_and_5xx() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                transient_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 409, 422] {
            assert!(
                !transient_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn the_wait_a_service_asked_for_is_said_in_the_connector_error() {
        let error = ConnectorError::from(ApiError::Transient {
            message: "sso-admin CreateAccountAssignment answered ThrottlingException".into(),
            retry_after: Some(Duration::from_secs(5)),
        });
        assert!(error.is_transient());
        assert!(
            error
                .to_string()
                .ends_with("(asked to wait 5s; will retry)"),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_throttle_waits_within_the_deadline_and_refuses_beyond_it() {
        let throttle = Throttle::default();
        let now = Instant::now();
        throttle
            .wait_turn(now + Duration::from_secs(1), "x")
            .await
            .expect("nothing held: at once");
        throttle.hold(Duration::from_secs(30));
        let err = throttle
            .wait_turn(now + Duration::from_secs(10), "GetUserId")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ApiError::Transient { retry_after: Some(w), .. } if *w == Duration::from_secs(30)),
            "{err:?}"
        );
        assert_eq!(Instant::now(), now, "refusing does not wait");
        throttle
            .wait_turn(now + Duration::from_secs(60), "GetUserId")
            .await
            .unwrap();
        assert_eq!(Instant::now(), now + Duration::from_secs(30));
        throttle.hold(Duration::from_secs(1));
        throttle.hold(Duration::ZERO);
        throttle
            .wait_turn(Instant::now() + Duration::from_secs(5), "x")
            .await
            .unwrap();
        assert_eq!(
            Instant::now(),
            now + Duration::from_secs(31),
            "a shorter hold does not cut a longer one"
        );
    }

    #[test]
    fn a_person_the_template_cannot_name_is_a_permanent_failure_that_says_who() {
        let name = PersonName::parse("{{ email }}", "user_name").unwrap();
        let person = PersonRef {
            id: "carol".into(),
            email: None,
            slack: None,
            discord: None,
            accounts: Default::default(),
        };
        let err = name.render(&person).unwrap_err();
        assert!(!err.is_transient());
        let text = err.to_string();
        assert!(text.contains("cannot name carol"), "{text}");
        assert!(text.contains("user_name"), "{text}");
    }
}
