//! Discord's REST API, v10, at `{api_url}/api/v10`: JSON in, JSON out, the bot token in
//! `Authorization`, and every failure sorted for whoever called. Serenity's rate limiter is
//! off (it cannot work behind `api_url`'s proxy), so a 429 is reported with the wait Discord
//! asked for (`Retry-After`, or the body's `retry_after`), and the outbox honours it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::metrics::{CallOutcome, Metrics};
use crate::outbox::ChatError;

/// How long one call may take before it counts as failed (and is retried by the outbox).
const TIMEOUT: Duration = Duration::from_secs(10);

/// A client for Discord's REST API.
#[derive(Clone)]
pub struct Rest {
    client: reqwest::Client,
    base: String,
    authorization: String,
    /// Every call is counted here, by route and outcome.
    metrics: std::sync::Arc<Metrics>,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RestSetupError {
    #[error("cannot set up TLS for Discord: {0}")]
    Tls(crate::tls::TlsError),
    #[error("cannot build the HTTP client for Discord: {0}")]
    Client(reqwest::Error),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    /// Discord answered with an error status: its JSON error code and message when it gave
    /// them, and how long to wait when it is a rate limit.
    #[error("Discord {route}: {status} {message}")]
    Status {
        route: String,
        status: u16,
        code: Option<i64>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer: the network, a timeout, a dropped connection.
    #[error("Discord {route}: {message}")]
    Network { route: String, message: String },
}

impl RestError {
    /// What the failure means for the outbox: rate limits, 5xx and the network are worth
    /// retrying; anything else Discord refused will be refused again.
    pub fn classify(self) -> ChatError {
        let text = self.to_string();
        let transient = self.is_transient();
        match self {
            RestError::Status {
                status: 429,
                retry_after,
                ..
            } => ChatError::rate_limited(text, retry_after),
            _ if transient => ChatError::transient(text),
            RestError::Status { code, .. } => {
                // 50035 is "Invalid Form Body": something Gatehouse built, not the person.
                if code == Some(50035) {
                    tracing::error!(error = %text, "Discord refused a message Gatehouse built: a bug in a template or in Gatehouse");
                }
                ChatError::Permanent(text)
            }
            RestError::Network { .. } => ChatError::transient(text),
        }
    }

    /// Whether the same call may work later: a rate limit, a 5xx or 408, or no answer.
    pub fn is_transient(&self) -> bool {
        match self {
            RestError::Status { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            RestError::Network { .. } => true,
        }
    }

    /// Whether Discord said to slow down (429).
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, RestError::Status { status: 429, .. })
    }

    /// Discord's JSON error code, when it gave one (10008 Unknown Message, …).
    pub fn code(&self) -> Option<i64> {
        match self {
            RestError::Status { code, .. } => *code,
            RestError::Network { .. } => None,
        }
    }
}

impl Rest {
    /// A client for `{api_url}/api/v10` authenticated with `bot_token`, counting its calls
    /// in `metrics`.
    pub fn new(
        api_url: &str,
        bot_token: &str,
        metrics: std::sync::Arc<Metrics>,
    ) -> Result<Self, RestSetupError> {
        let client = crate::tls::http_client(None)
            .map_err(RestSetupError::Tls)?
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "DiscordBot (https://github.com/gatehouse, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .build()
            .map_err(RestSetupError::Client)?;
        Ok(Self {
            client,
            base: format!("{}/api/v10", api_url.trim_end_matches('/')),
            authorization: format!("Bot {bot_token}"),
            metrics,
        })
    }

    /// The HTTP client every call goes through, with its deadline: for serenity's own calls
    /// (the gateway client's `GET /gateway`).
    pub fn client(&self) -> reqwest::Client {
        self.client.clone()
    }

    pub async fn get(&self, path: &str) -> Result<Value, RestError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// One call; `path` starts with `/` and follows `/api/v10`. A 204 is `null`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, RestError> {
        let route = format!("{method} {}", route_of(path));
        let result = self.send(method, path, body, &route).await;
        let outcome = match &result {
            Ok(_) => CallOutcome::Ok,
            Err(error) if error.is_rate_limit() => CallOutcome::RateLimited,
            Err(error) if error.is_transient() => CallOutcome::TransientError,
            Err(_) => CallOutcome::PermanentError,
        };
        self.metrics.platform_call("discord", &route, outcome);
        result
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        route: &str,
    ) -> Result<Value, RestError> {
        let route = route.to_owned();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("authorization", &self.authorization);
        if let Some(body) = body {
            request = request.json(body);
        }
        let network = |e: reqwest::Error| RestError::Network {
            route: route.clone(),
            message: describe(&e),
        };
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        let retry_after = header_seconds(response.headers().get("retry-after"));
        let text = response.text().await.map_err(network)?;
        let json: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(json);
        }
        Err(RestError::Status {
            route,
            status: status.as_u16(),
            code: json.get("code").and_then(Value::as_i64),
            message: json
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| reason(status)),
            retry_after: retry_after.or_else(|| body_seconds(&json)),
        })
    }
}

/// The path without ids or tokens, for logs and errors: `/channels/{id}/messages`.
fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let mut out = Vec::new();
    let mut after_interactions_or_webhooks = 0;
    for segment in path.split('/') {
        let secret = after_interactions_or_webhooks == 1 || after_interactions_or_webhooks == 2;
        let id = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
        out.push(if secret && !id {
            "{token}"
        } else if id {
            "{id}"
        } else {
            segment
        });
        after_interactions_or_webhooks = match segment {
            "interactions" | "webhooks" => 1,
            _ if after_interactions_or_webhooks > 0 => after_interactions_or_webhooks + 1,
            _ => 0,
        };
    }
    out.join("/")
}

fn reason(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("error").to_owned()
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {}s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    }
}

fn header_seconds(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let seconds: f64 = value?.to_str().ok()?.trim().parse().ok()?;
    seconds_to_duration(seconds)
}

fn body_seconds(json: &Value) -> Option<Duration> {
    seconds_to_duration(json.get("retry_after")?.as_f64()?)
}

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    (0.0..86_400.0)
        .contains(&seconds)
        .then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<i64>, retry_after: Option<Duration>) -> RestError {
        RestError::Status {
            route: "POST /channels/{id}/messages".into(),
            status,
            code,
            message: "m".into(),
            retry_after,
        }
    }

    #[test]
    fn rate_limits_keep_their_wait_and_refusals_are_permanent() {
        let wait = Some(Duration::from_millis(1500));
        assert_eq!(
            status(429, None, wait).classify(),
            ChatError::rate_limited(status(429, None, wait).to_string(), wait)
        );
        assert!(matches!(
            status(502, None, None).classify(),
            ChatError::Transient { .. }
        ));
        assert!(matches!(
            status(404, Some(10008), None).classify(),
            ChatError::Permanent(_)
        ));
        let network = RestError::Network {
            route: "r".into(),
            message: "cannot connect".into(),
        };
        assert!(matches!(network.classify(), ChatError::Transient { .. }));
    }

    #[test]
    fn retry_after_is_read_from_the_header_or_the_body() {
        let header = reqwest::header::HeaderValue::from_static("2.5");
        assert_eq!(
            header_seconds(Some(&header)),
            Some(Duration::from_millis(2500))
        );
        let body = serde_json::json!({"retry_after": 0.25, "global": false});
        assert_eq!(body_seconds(&body), Some(Duration::from_millis(250)));
        assert_eq!(body_seconds(&serde_json::json!({"retry_after": -1})), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_discord_accepts_and_never_answers_fails_transiently_at_the_deadline() {
        // Accepts every connection and reads nothing: the request is never answered.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let metrics = std::sync::Arc::new(Metrics::new());
        let rest = Rest::new(&api_url, "token", metrics).unwrap();
        let body = serde_json::json!({"content": "x"});
        let call = rest.post("/channels/1/messages", &body);
        let answer = tokio::time::timeout(TIMEOUT * 10, call)
            .await
            .expect("the call gave up by itself");
        let error = answer.unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(
            error.to_string().contains("no answer within 10s"),
            "{error}"
        );
    }

    #[test]
    fn routes_in_logs_carry_no_ids_or_tokens() {
        assert_eq!(
            route_of("/channels/123/messages/456"),
            "/channels/{id}/messages/{id}"
        );
        assert_eq!(
            route_of("/interactions/789/aW50ZXJhY3Rpb24/callback"),
            "/interactions/{id}/{token}/callback"
        );
        assert_eq!(
            route_of("/webhooks/1000/secret-token/messages/@original"),
            "/webhooks/{id}/{token}/messages/@original"
        );
    }
}
