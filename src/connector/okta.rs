//! The `okta` connector: Okta group membership. A grant adds the person's Okta user to the
//! role's group (`PUT /api/v1/groups/{groupId}/users/{userId}`); a revocation removes them
//! (`DELETE` of the same path).
//!
//! **Who.** The person's user is found by their login, the `user_name` template's value
//! (default `{{ email }}`), with `GET /api/v1/users/{login}`; or, with `user_attribute =
//! "email"`, by `GET /api/v1/users?search=profile.email eq "…"`. Nothing is recorded at grant time: revocation finds the user
//! again the same way, so the template must name the same user then.
//!
//! **Idempotent.** Okta answers 204 to adding a member who is one and to removing one who is
//! not, so a repeat is a success by itself.
//!
//! **Errors.** 429 (its `X-Rate-Limit-Reset` holds the connector's requests, see
//! [`super::http_api`]), 5xx and network failures are transient; an unknown user or group,
//! a refusal (403: the sentence names the scope or admin role to give) and credentials Okta
//! does not accept are permanent.
//!
//! **Credentials.** An API token (`Authorization: SSWS …`), or an OAuth 2.0 service app:
//! client credentials with `private_key_jwt` (an RS256 assertion, [`super::jwt`]) for the
//! scopes `okta.users.read okta.groups.manage`, the access token kept until shortly before
//! it expires ([`super::oauth`]).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::time::Instant;

use super::http_api::{self, Answer, ApiError, PersonName, Throttle};
use super::jwt::{self, ClientAssertion, Header, RsaKey};
use super::oauth::{self, Refused, TokenCache};
use super::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome,
};
use crate::config::{ConnectorConfig, Secret};
use crate::domain::ids::{ConnectorId, RoleId};
use crate::engine::{Clock, SystemClock};

const KIND: &str = "okta";
const DEFAULT_USER_NAME: &str = "{{ email }}";
/// The scopes a service app asks for: finding users, and changing group membership.
pub const SCOPES: &str = "okta.users.read okta.groups.manage";

/// The profile attribute `user_name` is matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAttribute {
    Login,
    Email,
}

impl UserAttribute {
    /// `login` (the default) or `email`.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("login") => Ok(UserAttribute::Login),
            Some("email") => Ok(UserAttribute::Email),
            Some(other) => Err(format!(
                "`{other}` is not an attribute Okta users are found by here; use login or email"
            )),
        }
    }

    fn profile_key(self) -> &'static str {
        match self {
            UserAttribute::Login => "profile.login",
            UserAttribute::Email => "profile.email",
        }
    }
}

/// How the connector proves who it is.
enum Auth {
    /// `SSWS` and the token.
    Token(Secret),
    /// An OAuth 2.0 service app.
    ServiceApp(Box<ServiceApp>),
}

struct ServiceApp {
    client_id: String,
    key: RsaKey,
    key_id: Option<String>,
    token_url: Url,
    cache: TokenCache,
}

pub struct OktaConnector {
    id: ConnectorId,
    org: Url,
    user_name: PersonName,
    attribute: UserAttribute,
    /// Role id → group id.
    roles: BTreeMap<RoleId, String>,
    auth: Auth,
    client: reqwest::Client,
    throttle: Throttle,
    timeout: Duration,
}

/// A base URL (the org, a token endpoint) from config: http(s), no query, no credentials.
pub(crate) fn base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http:// or https:// URL"));
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{text}` carries a query or credentials; give the address alone"
        ));
    }
    Ok(url)
}

impl OktaConnector {
    pub(super) fn from_config(config: &ConnectorConfig) -> Result<Self, ConnectorSetupError> {
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
        let org_text = config
            .org_url
            .as_deref()
            .ok_or_else(|| missing("org_url", "org_url = \"https://example.okta.com\""))?;
        let mut org = base_url(org_text).map_err(|reason| invalid("org_url", reason))?;
        if !org.path().ends_with('/') {
            org.set_path(&format!("{}/", org.path()));
        }
        if config.roles.is_empty() {
            return Err(missing(
                "roles",
                "roles = { admin = \"00g1emaKYZTWRYYRRTSK\" }",
            ));
        }
        let user_name = PersonName::parse(
            config.user_name.as_deref().unwrap_or(DEFAULT_USER_NAME),
            "user_name",
        )
        .map_err(|reason| invalid("user_name", reason))?;
        let attribute = UserAttribute::parse(config.user_attribute.as_deref())
            .map_err(|reason| invalid("user_attribute", reason))?;
        let auth = match (&config.token, &config.client_id, &config.private_key) {
            (Some(token), None, None) => {
                if token.expose().trim().is_empty() {
                    return Err(invalid(
                        "token",
                        "is empty; give the API token (token_file = \"/run/secrets/okta-token\")"
                            .to_owned(),
                    ));
                }
                Auth::Token(token.clone())
            }
            (None, Some(client_id), Some(key)) => {
                let key = RsaKey::from_pem(key.expose())
                    .map_err(|e| invalid("private_key", e.to_string()))?;
                let token_url = match &config.token_url {
                    Some(text) => base_url(text).map_err(|reason| invalid("token_url", reason))?,
                    None => org
                        .join("oauth2/v1/token")
                        .map_err(|e| invalid("org_url", e.to_string()))?,
                };
                Auth::ServiceApp(Box::new(ServiceApp {
                    client_id: client_id.clone(),
                    key,
                    key_id: config.key_id.clone(),
                    token_url,
                    cache: TokenCache::default(),
                }))
            }
            (None, None, None) => {
                return Err(missing(
                    "token",
                    "token_file = \"/run/secrets/okta-token\" (an API token), or client_id and private_key_file (a service app)",
                ));
            }
            (Some(_), _, _) => {
                return Err(invalid(
                    "token",
                    "is given with client_id or private_key; use an API token or a service app, not both".to_owned(),
                ));
            }
            (None, None, Some(_)) => return Err(missing("client_id", "client_id = \"0oa…\"")),
            (None, Some(_), None) => {
                return Err(missing(
                    "private_key",
                    "private_key_file = \"/run/secrets/okta-service-app.pem\"",
                ));
            }
        };
        Ok(Self {
            client: http_api::client(&id)?,
            id,
            org,
            user_name,
            attribute,
            roles: config.roles.clone(),
            auth,
            throttle: Throttle::default(),
            timeout: config.timeout.to_std(),
        })
    }

    async fn run(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        http_api::run_call("okta", &self.id, self.timeout, call, method, |deadline| {
            self.change(call, deadline)
        })
        .await
    }

    async fn change(&self, call: &ConnectorCall, deadline: Instant) -> Result<String, ApiError> {
        let group = http_api::role_target(&self.roles, call, "Okta group")?;
        let name = self.user_name.render(&call.person)?;
        let key = self.attribute.profile_key();
        let user = match self.user_id(&name, deadline).await? {
            Some(user) => user,
            None => {
                return http_api::no_such_user(
                    call,
                    &format!("Okta has no user whose {key} is `{name}`"),
                    "create the user in Okta, or fix the connector's user_name template",
                );
            }
        };
        let mut url = self.org.clone();
        url.path_segments_mut()
            .map_err(|()| ApiError::Permanent("org_url cannot be a base".to_owned()))?
            .pop_if_empty()
            .extend(["api", "v1", "groups", group, "users", &user]);
        let (request, verb, done) = match call.action {
            Action::Grant => (self.client.put(url), "assignUserToGroup", "added"),
            Action::Revoke => (self.client.delete(url), "unassignUserFromGroup", "removed"),
        };
        let what = format!("Okta {verb} at {}", http_api::shown(&self.org));
        let answer = self.send(request, deadline, &what).await?;
        let shown = format!(
            "{name} (user {user}) and group {group} (role {})",
            call.role
        );
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(format!("{done}: {shown}")),
            StatusCode::NOT_FOUND => Err(ApiError::Permanent(format!(
                "{what} answered 404: {}; Okta has no group {group} (role {}), or cannot change it: fix the connector's roles table (group ids, 00g…, from the group's page in the Admin Console)",
                okta_error(&answer),
                call.role
            ))),
            _ => Err(self.refused(&answer, &what).await),
        }
    }

    /// The Okta user id of `name`; `None` when Okta has no such user.
    async fn user_id(&self, name: &str, deadline: Instant) -> Result<Option<String>, ApiError> {
        let mut url = self.org.clone();
        let mut path = url
            .path_segments_mut()
            .map_err(|()| ApiError::Permanent("org_url cannot be a base".to_owned()))?;
        path.pop_if_empty().extend(["api", "v1", "users"]);
        match self.attribute {
            // By login: `getUser` reads it at once (a search lags behind changes) and
            // without regard to case, as Okta compares logins.
            UserAttribute::Login => {
                path.push(name);
                drop(path);
                let what = format!("Okta getUser at {}", http_api::shown(&self.org));
                let answer = self.send(self.client.get(url), deadline, &what).await?;
                if answer.status == StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                let user = self.json(&answer, &what).await?;
                // getUser also takes an id or a login's short name: only the login counts.
                let login = user["profile"]["login"].as_str().unwrap_or_default();
                Ok(user["id"]
                    .as_str()
                    .filter(|_| login.eq_ignore_ascii_case(name))
                    .map(str::to_owned))
            }
            UserAttribute::Email => {
                drop(path);
                let search = format!("profile.email eq \"{}\"", filter_escape(name));
                url.query_pairs_mut().append_pair("search", &search);
                let what = format!("Okta listUsers at {}", http_api::shown(&self.org));
                let answer = self.send(self.client.get(url), deadline, &what).await?;
                let users = self.json(&answer, &what).await?;
                let users = users.as_array().map_or(&[][..], Vec::as_slice);
                // A deprovisioned user keeps their email; one who is not wins.
                let live: Vec<&str> = users
                    .iter()
                    .filter(|u| u["status"] != "DEPROVISIONED")
                    .filter_map(|u| u["id"].as_str())
                    .collect();
                let ids = if live.is_empty() {
                    users.iter().filter_map(|u| u["id"].as_str()).collect()
                } else {
                    live
                };
                match ids.as_slice() {
                    [] => Ok(None),
                    [id] => Ok(Some((*id).to_owned())),
                    _ => Err(ApiError::Permanent(format!(
                        "Okta has {} users whose email is `{name}`; use user_attribute = \"login\", which is unique",
                        ids.len()
                    ))),
                }
            }
        }
    }

    /// A successful answer's JSON; any other answer as the error it is.
    async fn json(&self, answer: &Answer, what: &str) -> Result<Value, ApiError> {
        if !answer.status.is_success() {
            return Err(self.refused(answer, what).await);
        }
        serde_json::from_slice(&answer.body).map_err(|e| {
            ApiError::Permanent(format!(
                "{what} answered with something that is not JSON: {e}"
            ))
        })
    }

    /// Sends `request` with the connector's credentials.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        deadline: Instant,
        what: &str,
    ) -> Result<Answer, ApiError> {
        let authorization = match &self.auth {
            Auth::Token(token) => format!("SSWS {}", token.expose()),
            Auth::ServiceApp(app) => {
                let token = app.cache.get(|| self.access_token(app, deadline)).await?;
                format!("Bearer {token}")
            }
        };
        let request = request
            .header("accept", "application/json")
            .header("authorization", authorization);
        http_api::send(request, &self.throttle, deadline, what).await
    }

    /// A new access token for the service app.
    async fn access_token(
        &self,
        app: &ServiceApp,
        deadline: Instant,
    ) -> Result<oauth::AccessToken, ApiError> {
        let ServiceApp {
            client_id,
            key,
            key_id,
            token_url,
            ..
        } = app;
        let bad_key = |e: jwt::JwtError| ApiError::Permanent(format!("private_key {e}"));
        let claims = ClientAssertion::new(client_id, token_url.as_str(), SystemClock.now())
            .map_err(bad_key)?;
        let mut header = Header::rs256();
        if let Some(kid) = key_id {
            header = header.with_kid(kid);
        }
        let assertion = key.sign(&header, &claims).map_err(bad_key)?;
        let what = format!("Okta token request at {}", http_api::shown(token_url));
        oauth::request_token(
            &self.client,
            token_url,
            &[
                ("grant_type", "client_credentials"),
                ("scope", SCOPES),
                ("client_assertion_type", jwt::CLIENT_ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
            &self.throttle,
            deadline,
            &what,
            &Refused {
                invalid_client: "check client_id, and that the public key of private_key is registered with the service app (with key_id as its kid when it has several), which authenticates by public key / private key",
                invalid_scope: "grant the service app the okta.users.read and okta.groups.manage scopes (Okta API Scopes tab)",
            },
        )
        .await
    }

    /// An answer that is not a success and that no caller expected, as a sentence.
    async fn refused(&self, answer: &Answer, what: &str) -> ApiError {
        let said = okta_error(answer);
        if http_api::transient_status(answer.status) {
            return ApiError::Transient {
                message: format!("{what} answered {}: {said}", answer.status.as_u16()),
                retry_after: http_api::retry_after(&answer.headers, SystemClock.now()),
            };
        }
        let answered = format!("{what} answered {}: {said}", answer.status.as_u16());
        match (answer.status, &self.auth) {
            (StatusCode::UNAUTHORIZED, Auth::Token(_)) => ApiError::Permanent(format!(
                "{answered}; Okta does not accept the API token: make a new one (Security > API > Tokens) and update token_file"
            )),
            (StatusCode::UNAUTHORIZED, Auth::ServiceApp(app)) => {
                // An access token revoked or expired early: the next attempt asks for a
                // new one.
                app.cache.forget().await;
                ApiError::transient(format!(
                    "{answered}; the access token was refused and a new one is asked for"
                ))
            }
            (StatusCode::FORBIDDEN, Auth::Token(_)) => ApiError::Permanent(format!(
                "{answered}; the API token acts as the admin who made it, who must be a Group Membership Administrator (or Super Administrator) of the group"
            )),
            (StatusCode::FORBIDDEN, Auth::ServiceApp(_)) => ApiError::Permanent(format!(
                "{answered}; grant the service app the okta.users.read and okta.groups.manage scopes and assign it the Group Membership Administrator role for the connector's groups (docs/connectors/okta.md)"
            )),
            _ => ApiError::Permanent(answered),
        }
    }
}

impl Connector for OktaConnector {
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

/// What Okta's error body says: `E0000007: Not found: Resource not found: … (UserGroup)`.
fn okta_error(answer: &Answer) -> String {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    match (body["errorCode"].as_str(), body["errorSummary"].as_str()) {
        (Some(code), Some(summary)) => format!("{code}: {summary}"),
        _ => {
            let excerpt = answer.excerpt();
            if excerpt.is_empty() {
                format!("HTTP {}", answer.status)
            } else {
                excerpt
            }
        }
    }
}

/// An Okta group id: `00g` and 17 more letters or digits, as the group's Admin Console
/// page shows it (`/admin/group/00g…`).
pub fn group_id(value: &str) -> Result<(), String> {
    let shaped = value.len() == 20
        && value.starts_with("00g")
        && value.bytes().all(|b| b.is_ascii_alphanumeric());
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not an Okta group id (00g and 17 letters or digits, from the group's page in the Admin Console: /admin/group/00g…)"
        ))
    }
}

/// `value` as the inside of a string literal of Okta's filter expressions.
pub fn filter_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_in_a_name_cannot_end_the_filter_s_string() {
        assert_eq!(filter_escape("a@b.c"), "a@b.c");
        assert_eq!(
            filter_escape(r#"x" or profile.login sw ""#),
            r#"x\" or profile.login sw \""#
        );
        assert_eq!(filter_escape(r"a\b"), r"a\\b");
    }

    #[test]
    fn users_are_found_by_login_unless_email_is_asked_for() {
        assert_eq!(UserAttribute::parse(None), Ok(UserAttribute::Login));
        assert_eq!(
            UserAttribute::parse(Some("email")),
            Ok(UserAttribute::Email)
        );
        let err = UserAttribute::parse(Some("userName")).unwrap_err();
        assert!(err.contains("use login or email"), "{err}");
    }

    #[test]
    fn an_org_url_with_credentials_or_a_query_is_refused() {
        assert!(base_url("https://example.okta.com").is_ok());
        assert!(base_url("ftp://example.okta.com").is_err());
        assert!(base_url("https://admin:pw@example.okta.com").is_err());
        assert!(base_url("https://example.okta.com/?x=1").is_err());
    }
}
