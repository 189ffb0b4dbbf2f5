//! The `google` connector: Google Workspace group membership through the Admin SDK Directory
//! API. A grant is `members.insert` of the person into the role's group
//! (`POST /admin/directory/v1/groups/{groupKey}/members`, role `MEMBER`); a revocation is
//! `members.delete` (`DELETE …/members/{memberKey}`).
//!
//! **Who.** The member is the `login` template's value, by default `{{ email }}`. Nothing is
//! recorded: a revocation names the member the same way.
//!
//! **Idempotent.** Google answers an insert of a member already there with 409 ("Member
//! already exists") and a delete of one not there with 404 naming the `memberKey`: both are
//! successes. A 404 naming the `groupKey` is an unknown group: permanent (but for an undo).
//!
//! **Auth.** A service account with domain-wide delegation: an RS256 JWT signed with its key
//! (issuer the account, subject the `subject` admin, scope
//! `admin.directory.group.member`) is exchanged at the token endpoint (RFC 7523 JWT bearer
//! grant) for an access token, kept until five minutes before it expires.
//!
//! **Errors.** 429, 5xx, Google's rate-limit reasons (`rateLimitExceeded`,
//! `userRateLimitExceeded`, `quotaExceeded`) and network failures are transient; a
//! `Retry-After` holds the connector's requests. An access token Google refuses (401) is
//! dropped and the call retried. Unknown groups and people, other 403s and 400s are
//! permanent, with what to fix.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::http_api::{self, Answer, ApiError, PersonName, Throttle};
use super::jwt::{Header, RsaKey};
use super::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome,
};
use crate::config::{ConnectorConfig, Secret};
use crate::domain::ids::{ConnectorId, RoleId};
use crate::engine::{Clock, SystemClock};

const KIND: &str = "google";
pub const DEFAULT_API_URL: &str = "https://admin.googleapis.com";
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_LOGIN: &str = "{{ email }}";
/// The one scope the connector asks for: group members, nothing else of the directory.
pub const SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.member";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long before its expiry an access token is replaced.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// How long the JWT asserted to the token endpoint is valid (Google takes at most an hour).
const ASSERTION_LIFETIME_SECS: i64 = 10 * 60;
/// Google's reasons for "slow down".
const RATE_REASONS: [&str; 4] = [
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
    "backendError",
];

/// The fields of a service account's JSON key the connector reads.
#[derive(Deserialize)]
pub struct ServiceAccountKey {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub client_email: String,
    pub private_key: String,
    pub private_key_id: Option<String>,
}

impl ServiceAccountKey {
    /// The key in `json`, with its RSA key read; the error completes "credentials …".
    pub fn parse(json: &str) -> Result<(ServiceAccountKey, RsaKey), String> {
        let key: ServiceAccountKey = serde_json::from_str(json).map_err(|e| {
            format!("is not a service account's JSON key ({e}); download one from the service account's Keys tab")
        })?;
        if key.kind.as_deref().is_some_and(|k| k != "service_account") {
            return Err(format!(
                "is a `{}` key, not a service account's",
                key.kind.as_deref().unwrap_or_default()
            ));
        }
        let rsa = RsaKey::from_pem(&key.private_key).map_err(|e| format!("private_key {e}"))?;
        Ok((key, rsa))
    }
}

pub struct GoogleConnector {
    id: ConnectorId,
    /// `{api_url}/admin/directory/v1/groups/`.
    groups: reqwest::Url,
    token_url: reqwest::Url,
    client_email: String,
    key_id: Option<String>,
    key: RsaKey,
    subject: String,
    login: PersonName,
    /// Role id → group key (email address or id).
    roles: BTreeMap<RoleId, String>,
    client: reqwest::Client,
    throttle: Throttle,
    token: Mutex<Option<(Secret, Instant)>>,
    timeout: Duration,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

impl GoogleConnector {
    pub fn from_config(config: &ConnectorConfig) -> Result<Self, ConnectorSetupError> {
        let id = config.id.clone();
        let invalid = |key: &'static str, reason: String| ConnectorSetupError::Invalid {
            id: id.clone(),
            key,
            reason,
        };
        let missing = |key: &'static str, example: &'static str| ConnectorSetupError::MissingKey {
            id: id.clone(),
            kind: KIND,
            key,
            example,
        };
        let credentials = config.credentials.as_ref().ok_or_else(|| {
            missing(
                "credentials",
                "credentials_file = \"/etc/gatehouse/google-service-account.json\"",
            )
        })?;
        let (account, key) = ServiceAccountKey::parse(credentials.expose())
            .map_err(|reason| invalid("credentials", reason))?;
        let subject = config
            .subject
            .clone()
            .ok_or_else(|| missing("subject", "subject = \"gatehouse-admin@example.com\""))?;
        if config.roles.is_empty() {
            return Err(missing(
                "roles",
                "roles = { member = \"oncall@example.com\" }",
            ));
        }
        let url = |key: &'static str, text: &str| {
            let url = reqwest::Url::parse(text.trim())
                .map_err(|e| invalid(key, format!("`{text}` is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
                return Err(invalid(
                    key,
                    format!("`{text}` is not an http:// or https:// URL"),
                ));
            }
            Ok(url)
        };
        let mut groups = url(
            "api_url",
            config.api_url.as_deref().unwrap_or(DEFAULT_API_URL),
        )?;
        groups
            .path_segments_mut()
            .map_err(|()| invalid("api_url", "cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(["admin", "directory", "v1", "groups", ""]);
        let token_url = url(
            "token_url",
            config.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL),
        )?;
        let login = PersonName::parse(config.login.as_deref().unwrap_or(DEFAULT_LOGIN), "login")
            .map_err(|reason| invalid("login", reason))?;
        Ok(Self {
            client: http_api::client(&id)?,
            id,
            groups,
            token_url,
            client_email: account.client_email,
            key_id: account.private_key_id,
            key,
            subject,
            login,
            roles: config.roles.clone(),
            throttle: Throttle::default(),
            token: Mutex::new(None),
            timeout: config.timeout.to_std(),
        })
    }

    async fn run(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        http_api::run_call("google", &self.id, self.timeout, call, method, |deadline| {
            self.change(call, deadline)
        })
        .await
    }

    async fn change(&self, call: &ConnectorCall, deadline: Instant) -> Result<String, ApiError> {
        let group = http_api::role_target(&self.roles, call, "group")?;
        let member = match self.login.render(&call.person) {
            Ok(member) => member,
            Err(_) if call.undo => {
                return Ok(format!(
                    "nothing to undo: {} has no Google account the login template can name",
                    call.person.id
                ));
            }
            Err(e) => return Err(e),
        };
        match call.action {
            Action::Grant => {
                let (answer, what) = self
                    .request(
                        Method::POST,
                        &[group, "members"],
                        Some(json!({ "email": member, "role": "MEMBER" })),
                        deadline,
                    )
                    .await?;
                match answer.status.as_u16() {
                    200 => Ok(format!("added {member} to group {group}")),
                    409 => Ok(format!("{member} was already a member of group {group}")),
                    404 if names(&answer, "groupKey") => {
                        Err(self.unknown_group(group, call, &answer, &what))
                    }
                    404 => Err(ApiError::Permanent(format!(
                        "{what} answered 404: {}; Google Workspace has no user or group `{member}` (the login of {}, for the grant {}); fix the person's email in the directory, or the connector's login template",
                        message(&answer),
                        call.person.id,
                        call.grant
                    ))),
                    _ => Err(self.refused(&answer, &what)),
                }
            }
            Action::Revoke => {
                let (answer, what) = self
                    .request(Method::DELETE, &[group, "members", &member], None, deadline)
                    .await?;
                match answer.status.as_u16() {
                    200 | 204 => Ok(format!("removed {member} from group {group}")),
                    404 if names(&answer, "groupKey") && !call.undo => {
                        Err(self.unknown_group(group, call, &answer, &what))
                    }
                    404 if call.undo => Ok(format!(
                        "nothing to undo: {member} is not a member of group {group}"
                    )),
                    404 => Ok(format!("{member} was not a member of group {group}")),
                    _ => Err(self.refused(&answer, &what)),
                }
            }
        }
    }

    fn unknown_group(
        &self,
        group: &str,
        call: &ConnectorCall,
        answer: &Answer,
        what: &str,
    ) -> ApiError {
        ApiError::Permanent(format!(
            "{what} answered 404: {}; Google Workspace has no group `{group}` (role {}): fix the connector's roles table (the group's email address or id)",
            message(answer),
            call.role
        ))
    }

    /// One request of the Directory API with the connector's access token; a token Google
    /// refuses is dropped (transient), any other answer returned.
    async fn request(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Value>,
        deadline: Instant,
    ) -> Result<(Answer, String), ApiError> {
        let mut url = self.groups.clone();
        url.path_segments_mut()
            .map_err(|()| ApiError::Permanent("the api_url cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        let what = format!("Google {method} {}", url.path());
        let token = self.access_token(deadline).await?;
        let mut request = self.client.request(method, url).bearer_auth(token.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = http_api::send(request, &self.throttle, deadline, &what).await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            *self.token.lock().await = None;
            return Err(ApiError::transient(format!(
                "{what} answered 401: {}; Google refused the access token, and the next try makes a new one",
                message(&answer)
            )));
        }
        Ok((answer, what))
    }

    /// Any answer not handled: transient for rate limits, 408, 429 and 5xx.
    fn refused(&self, answer: &Answer, what: &str) -> ApiError {
        let said = format!(
            "{what} answered {}: {}",
            answer.status.as_u16(),
            message(answer)
        );
        let limited = reasons(answer)
            .iter()
            .any(|r| RATE_REASONS.contains(&r.as_str()));
        if limited || http_api::transient_status(answer.status) {
            return ApiError::Transient {
                message: said,
                retry_after: http_api::retry_after(&answer.headers, SystemClock.now()),
            };
        }
        if answer.status == StatusCode::FORBIDDEN {
            return ApiError::Permanent(format!(
                "{said}; {} acting as {} may not manage this group's members: give the service account domain-wide delegation of {SCOPE}, and {} the Groups Admin role (docs/connectors/google.md)",
                self.client_email, self.subject, self.subject
            ));
        }
        ApiError::Permanent(said)
    }

    /// The access token to send: the one in hand while good for [`RENEW_BEFORE`], else a
    /// new one from the token endpoint.
    async fn access_token(&self, deadline: Instant) -> Result<Secret, ApiError> {
        let mut held = self.token.lock().await;
        if let Some((token, renew_at)) = held.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let what = format!(
            "Google's token endpoint {}",
            http_api::shown(&self.token_url)
        );
        let now = SystemClock.now().timestamp();
        let claims = Claims {
            iss: &self.client_email,
            sub: &self.subject,
            scope: SCOPE,
            aud: self.token_url.as_str(),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        let mut header = Header::rs256();
        if let Some(kid) = &self.key_id {
            header = header.with_kid(kid.clone());
        }
        let assertion = self
            .key
            .sign(&header, &claims)
            .map_err(|e| ApiError::Permanent(format!("the service account's private_key {e}")))?;
        let request = self
            .client
            .post(self.token_url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", GRANT_TYPE)
                    .append_pair("assertion", &assertion)
                    .finish(),
            );
        let answer = http_api::send(request, &self.throttle, deadline, &what).await?;
        if answer.status.is_success() {
            #[derive(Deserialize)]
            struct Token {
                access_token: String,
                expires_in: u64,
            }
            let token: Token = serde_json::from_slice(&answer.body).map_err(|e| {
                ApiError::Permanent(format!(
                    "{what} answered with something that is not a token: {e}"
                ))
            })?;
            let lifetime = Duration::from_secs(token.expires_in);
            let secret = Secret::new(token.access_token);
            *held = Some((
                secret.clone(),
                Instant::now() + lifetime.saturating_sub(RENEW_BEFORE),
            ));
            return Ok(secret);
        }
        #[derive(Deserialize, Default)]
        struct Refusal {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: String,
        }
        let refusal: Refusal = serde_json::from_slice(&answer.body).unwrap_or_default();
        let said = format!(
            "{what} answered {}: {} {}",
            answer.status.as_u16(),
            refusal.error,
            refusal.error_description
        );
        if http_api::transient_status(answer.status) {
            return Err(ApiError::Transient {
                message: said,
                retry_after: http_api::retry_after(&answer.headers, SystemClock.now()),
            });
        }
        Err(ApiError::Permanent(match refusal.error.as_str() {
            "unauthorized_client" => format!(
                "{said}; the service account {} has no domain-wide delegation of {SCOPE}: add its client id with that scope in the Admin console (Security → API controls → Domain-wide delegation)",
                self.client_email
            ),
            "invalid_grant" => format!(
                "{said}; check subject ({}, a user of the domain), the key (not deleted), and this host's clock",
                self.subject
            ),
            _ => format!(
                "{said}; check the service account's key in credentials ({})",
                self.client_email
            ),
        }))
    }
}

impl Connector for GoogleConnector {
    fn grant<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.run(call, Action::Grant))
    }

    fn revoke<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.run(call, Action::Revoke))
    }
}

/// Google's error body: `{"error": {"code", "message", "errors": [{"reason", …}]}}`.
fn error_body(answer: &Answer) -> Value {
    serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null)["error"].clone()
}

fn message(answer: &Answer) -> String {
    error_body(answer)["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| answer.excerpt())
}

fn reasons(answer: &Answer) -> Vec<String> {
    error_body(answer)["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect()
}

/// Whether a 404's message names `key` ("Resource Not Found: groupKey").
fn names(answer: &Answer, key: &str) -> bool {
    message(answer).contains(key)
}
