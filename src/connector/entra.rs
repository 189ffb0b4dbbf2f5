//! The `entra` connector: Microsoft Entra ID group membership, through Microsoft Graph. A
//! grant adds the person's user to the role's group (`POST /v1.0/groups/{id}/members/$ref`);
//! a revocation removes them (`DELETE /v1.0/groups/{id}/members/{user id}/$ref`).
//!
//! **Who.** The person's user is found by `GET /v1.0/users?$filter=userPrincipalName eq '…'`
//! on the `user_name` template's value (default `{{ email }}`), or by `mail` with
//! `user_attribute = "mail"`. Nothing is recorded at grant time: revocation finds the user
//! again the same way, so the template must name the same user then.
//!
//! **Idempotent.** Graph refuses to add a member who is one (400, "One or more added object
//! references already exist") and to remove one who is not (404): the first is a success,
//! and so is the second once a look at the group shows it exists.
//!
//! **Errors.** Throttling (429, 503 and 504 with `Retry-After`), other 5xx and network
//! failures are transient; an unknown user or group, `Authorization_RequestDenied` (the
//! sentence names the Graph permissions to grant) and credentials Entra does not accept are
//! permanent.
//!
//! **Credentials.** OAuth 2.0 client credentials at the tenant's token endpoint, with a
//! client secret or a certificate (an RS256 client assertion whose `x5t` is the
//! certificate's thumbprint, [`super::jwt`]), for `https://graph.microsoft.com/.default`;
//! the access token is kept until shortly before it expires ([`super::oauth`]).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::http_api::{self, Answer, ApiError, PersonName, Throttle};
use super::jwt::{self, Certificate, ClientAssertion, Header, RsaKey};
use super::oauth::{self, Refused, TokenCache};
use super::okta::base_url;
use super::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome,
};
use crate::config::{ConnectorConfig, Secret};
use crate::domain::ids::{ConnectorId, RoleId};
use crate::engine::{Clock, SystemClock};

const KIND: &str = "entra";
const DEFAULT_USER_NAME: &str = "{{ email }}";
const GRAPH: &str = "https://graph.microsoft.com";
const LOGIN: &str = "https://login.microsoftonline.com";
/// The application permissions the connector needs, for messages and docs.
pub const PERMISSIONS: &str = "User.ReadBasic.All and GroupMember.ReadWrite.All";

/// The user property `user_name` is matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAttribute {
    UserPrincipalName,
    Mail,
}

impl UserAttribute {
    /// `userPrincipalName` (the default) or `mail`.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("userPrincipalName") => Ok(UserAttribute::UserPrincipalName),
            Some("mail") => Ok(UserAttribute::Mail),
            Some(other) => Err(format!(
                "`{other}` is not an attribute Entra users are found by here; use userPrincipalName or mail"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            UserAttribute::UserPrincipalName => "userPrincipalName",
            UserAttribute::Mail => "mail",
        }
    }
}

/// A tenant: its id (a GUID) or one of its verified domains.
pub fn tenant_id(value: &str) -> Result<(), String> {
    let shaped = !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !matches!(value, "common" | "organizations" | "consumers");
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not a tenant; give the tenant id (a GUID, Entra admin center > Overview) or a verified domain such as example.onmicrosoft.com"
        ))
    }
}

/// A group's object id: a GUID.
pub fn group_id(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('-').collect();
    let shaped = parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()));
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not an Entra group's object id (a GUID, on the group's Overview page or from `az ad group show --group NAME --query id`)"
        ))
    }
}

/// How the app proves who it is at the token endpoint.
enum Credential {
    Secret(Secret),
    Certificate(Box<(RsaKey, Certificate)>),
}

pub struct EntraConnector {
    id: ConnectorId,
    /// Graph's base, with a trailing slash.
    graph: Url,
    user_name: PersonName,
    attribute: UserAttribute,
    /// Role id → group object id.
    roles: BTreeMap<RoleId, String>,
    client_id: String,
    credential: Credential,
    token_url: Url,
    /// `https://graph.microsoft.com/.default`.
    scope: String,
    cache: TokenCache,
    client: reqwest::Client,
    throttle: Throttle,
    timeout: Duration,
}

/// A certificate credential's assertion: Entra wants `nbf` besides RFC 7523's claims.
#[derive(Serialize)]
struct Assertion {
    #[serde(flatten)]
    claims: ClientAssertion,
    nbf: i64,
}

impl EntraConnector {
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
        let tenant = config.tenant_id.as_deref().ok_or_else(|| {
            missing(
                "tenant_id",
                "tenant_id = \"00000000-0000-0000-0000-000000000000\"",
            )
        })?;
        tenant_id(tenant).map_err(|reason| invalid("tenant_id", reason))?;
        let client_id = config.client_id.clone().ok_or_else(|| {
            missing(
                "client_id",
                "client_id = \"<the app's Application (client) ID>\"",
            )
        })?;
        if config.roles.is_empty() {
            return Err(missing(
                "roles",
                "roles = { admin = \"00000000-0000-0000-0000-000000000000\" }",
            ));
        }
        let mut graph = base_url(config.graph_url.as_deref().unwrap_or(GRAPH))
            .map_err(|reason| invalid("graph_url", reason))?;
        let scope = format!("{}/.default", graph.origin().ascii_serialization());
        if !graph.path().ends_with('/') {
            graph.set_path(&format!("{}/", graph.path()));
        }
        let token_url = match &config.token_url {
            Some(text) => base_url(text).map_err(|reason| invalid("token_url", reason))?,
            None => Url::parse(&format!("{LOGIN}/{tenant}/oauth2/v2.0/token"))
                .map_err(|e| invalid("tenant_id", e.to_string()))?,
        };
        let credential = match (
            &config.client_secret,
            &config.certificate,
            &config.private_key,
        ) {
            (Some(secret), None, None) if !secret.expose().trim().is_empty() => {
                Credential::Secret(secret.clone())
            }
            (Some(_), None, None) => {
                return Err(invalid(
                    "client_secret",
                    "is empty; give the app's client secret (client_secret_file = \"/run/secrets/entra-secret\")".to_owned(),
                ));
            }
            (None, Some(certificate), Some(key)) => {
                let certificate = Certificate::from_pem(certificate)
                    .map_err(|e| invalid("certificate", e.to_string()))?;
                let key = RsaKey::from_pem(key.expose())
                    .map_err(|e| invalid("private_key", e.to_string()))?;
                Credential::Certificate(Box::new((key, certificate)))
            }
            (None, None, None) => {
                return Err(missing(
                    "client_secret",
                    "client_secret_file = \"/run/secrets/entra-secret\", or certificate_file and private_key_file",
                ));
            }
            (Some(_), _, _) => {
                return Err(invalid(
                    "client_secret",
                    "is given with a certificate or private_key; use a client secret or a certificate, not both".to_owned(),
                ));
            }
            (None, None, Some(_)) => {
                return Err(missing(
                    "certificate",
                    "certificate_file = \"/etc/gatehouse/entra.crt\"",
                ));
            }
            (None, Some(_), None) => {
                return Err(missing(
                    "private_key",
                    "private_key_file = \"/run/secrets/entra.key\"",
                ));
            }
        };
        let user_name = PersonName::parse(
            config.user_name.as_deref().unwrap_or(DEFAULT_USER_NAME),
            "user_name",
        )
        .map_err(|reason| invalid("user_name", reason))?;
        let attribute = UserAttribute::parse(config.user_attribute.as_deref())
            .map_err(|reason| invalid("user_attribute", reason))?;
        Ok(Self {
            client: http_api::client(&id)?,
            id,
            graph,
            user_name,
            attribute,
            roles: config.roles.clone(),
            client_id,
            credential,
            token_url,
            scope,
            cache: TokenCache::default(),
            throttle: Throttle::default(),
            timeout: config.timeout.to_std(),
        })
    }

    async fn run(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        http_api::run_call("entra", &self.id, self.timeout, call, method, |deadline| {
            self.change(call, deadline)
        })
        .await
    }

    async fn change(&self, call: &ConnectorCall, deadline: Instant) -> Result<String, ApiError> {
        let group = http_api::role_target(&self.roles, call, "Entra group")?;
        let name = self.user_name.render(&call.person)?;
        let attribute = self.attribute.name();
        let user = match self.user_id(&name, deadline).await? {
            Some(user) => user,
            None => {
                return http_api::no_such_user(
                    call,
                    &format!("Entra has no user whose {attribute} is `{name}`"),
                    "create the user in Entra ID, or fix the connector's user_name template",
                );
            }
        };
        let shown = format!(
            "{name} (user {user}) and group {group} (role {})",
            call.role
        );
        match call.action {
            Action::Grant => self.add(group, &user, &shown, deadline).await,
            Action::Revoke => self.remove(group, &user, &shown, deadline).await,
        }
    }

    async fn add(
        &self,
        group: &str,
        user: &str,
        shown: &str,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let url = self.url(&["v1.0", "groups", group, "members", "$ref"])?;
        let member = self.url(&["v1.0", "directoryObjects", user])?;
        let body = json!({ "@odata.id": member.as_str() });
        let request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        let what = format!("Graph add member at {}", http_api::shown(&self.graph));
        let answer = self.send(request, deadline, &what).await?;
        let (code, message) = graph_error(&answer);
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(format!("added: {shown}")),
            StatusCode::BAD_REQUEST if message.contains("already exist") => {
                Ok(format!("{shown}: was already a member"))
            }
            StatusCode::NOT_FOUND => Err(self.unknown_group(group, &what, &code, &message)),
            _ => Err(self.refused(&answer, &what).await),
        }
    }

    async fn remove(
        &self,
        group: &str,
        user: &str,
        shown: &str,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let url = self.url(&["v1.0", "groups", group, "members", user, "$ref"])?;
        let what = format!("Graph remove member at {}", http_api::shown(&self.graph));
        let answer = self.send(self.client.delete(url), deadline, &what).await?;
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(format!("removed: {shown}")),
            StatusCode::NOT_FOUND => {
                // Not a member, or no such group? One that does not exist may be a typo in
                // the roles table, behind which the real membership stays.
                let url = self.url(&["v1.0", "groups", group])?;
                let mut url = url;
                url.query_pairs_mut().append_pair("$select", "id");
                let what = format!("Graph get group at {}", http_api::shown(&self.graph));
                let looked = self.send(self.client.get(url), deadline, &what).await?;
                match looked.status {
                    status if status.is_success() => Ok(format!("{shown}: was not a member")),
                    StatusCode::NOT_FOUND => {
                        let (code, message) = graph_error(&looked);
                        Err(self.unknown_group(group, &what, &code, &message))
                    }
                    _ => Err(self.refused(&looked, &what).await),
                }
            }
            _ => Err(self.refused(&answer, &what).await),
        }
    }

    fn unknown_group(&self, group: &str, what: &str, code: &str, message: &str) -> ApiError {
        ApiError::Permanent(format!(
            "{what} answered 404 {code}: {message}; Entra has no group {group}: fix the connector's roles table (group object ids, from the group's Overview page)"
        ))
    }

    /// The object id of the user `name` names; `None` when Entra has no such user.
    async fn user_id(&self, name: &str, deadline: Instant) -> Result<Option<String>, ApiError> {
        let attribute = self.attribute.name();
        let mut url = self.url(&["v1.0", "users"])?;
        url.query_pairs_mut()
            .append_pair(
                "$filter",
                &format!("{attribute} eq '{}'", odata_escape(name)),
            )
            .append_pair("$select", "id,userPrincipalName,mail");
        let what = format!("Graph list users at {}", http_api::shown(&self.graph));
        let answer = self.send(self.client.get(url), deadline, &what).await?;
        if !answer.status.is_success() {
            return Err(self.refused(&answer, &what).await);
        }
        let found: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            ApiError::Permanent(format!(
                "{what} answered with something that is not JSON: {e}"
            ))
        })?;
        let ids: Vec<&str> = found["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|user| user["id"].as_str())
            .collect();
        match ids.as_slice() {
            [] => Ok(None),
            [id] => Ok(Some((*id).to_owned())),
            _ => Err(ApiError::Permanent(format!(
                "Entra has {} users whose {attribute} is `{name}`; use user_attribute = \"userPrincipalName\", which is unique",
                ids.len()
            ))),
        }
    }

    /// Graph's base and `segments`, each percent-encoded as one path segment.
    fn url(&self, segments: &[&str]) -> Result<Url, ApiError> {
        let mut url = self.graph.clone();
        url.path_segments_mut()
            .map_err(|()| ApiError::Permanent("graph_url cannot be a base".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends `request` with an access token.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        deadline: Instant,
        what: &str,
    ) -> Result<Answer, ApiError> {
        let token = self.cache.get(|| self.access_token(deadline)).await?;
        let request = request
            .header("accept", "application/json")
            .header("authorization", format!("Bearer {token}"));
        http_api::send(request, &self.throttle, deadline, what).await
    }

    /// A new access token for Graph, with the client secret or a certificate assertion.
    async fn access_token(&self, deadline: Instant) -> Result<oauth::AccessToken, ApiError> {
        let assertion;
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("scope", self.scope.as_str()),
        ];
        match &self.credential {
            Credential::Secret(secret) => form.push(("client_secret", secret.expose())),
            Credential::Certificate(pair) => {
                let (key, certificate) = pair.as_ref();
                let bad_key = |e: jwt::JwtError| ApiError::Permanent(format!("private_key {e}"));
                let now = SystemClock.now();
                let claims = Assertion {
                    claims: ClientAssertion::new(&self.client_id, self.token_url.as_str(), now)
                        .map_err(bad_key)?,
                    nbf: now.timestamp(),
                };
                let header = Header::rs256().with_x5t(certificate.thumbprint());
                assertion = key.sign(&header, &claims).map_err(bad_key)?;
                form.push(("client_assertion_type", jwt::CLIENT_ASSERTION_TYPE));
                form.push(("client_assertion", &assertion));
            }
        }
        let thumbprint = match &self.credential {
            Credential::Certificate(pair) => format!(
                "the certificate with thumbprint {} is uploaded to the app registration (Certificates & secrets) and private_key is its key",
                pair.1.thumbprint_hex()
            ),
            Credential::Secret(_) => {
                "the client secret is the app's and has not expired (Certificates & secrets)"
                    .to_owned()
            }
        };
        let invalid_client = format!("check client_id and tenant_id, and that {thumbprint}");
        let what = format!(
            "Entra token request at {}",
            http_api::shown(&self.token_url)
        );
        oauth::request_token(
            &self.client,
            &self.token_url,
            &form,
            &self.throttle,
            deadline,
            &what,
            &Refused {
                invalid_client: &invalid_client,
                invalid_scope: "the app must be registered in the tenant (an enterprise application) with Microsoft Graph application permissions, admin-consented",
            },
        )
        .await
    }

    /// An answer that is not a success and that no caller expected, as a sentence.
    async fn refused(&self, answer: &Answer, what: &str) -> ApiError {
        let (code, message) = graph_error(answer);
        let answered = format!(
            "{what} answered {} {code}: {message}",
            answer.status.as_u16()
        );
        if http_api::transient_status(answer.status) {
            return ApiError::Transient {
                message: answered,
                retry_after: http_api::retry_after(&answer.headers, SystemClock.now()),
            };
        }
        match answer.status {
            StatusCode::UNAUTHORIZED => {
                // An access token revoked or expired early: the next attempt asks for a new
                // one.
                self.cache.forget().await;
                ApiError::transient(format!(
                    "{answered}; the access token was refused and a new one is asked for"
                ))
            }
            StatusCode::FORBIDDEN => ApiError::Permanent(format!(
                "{answered}; grant the app the Microsoft Graph application permissions {PERMISSIONS}, with admin consent (a role-assignable group also needs RoleManagement.ReadWrite.Directory; groups synced from on-premises and mail-enabled groups cannot be changed through Graph)"
            )),
            _ => ApiError::Permanent(answered),
        }
    }
}

impl Connector for EntraConnector {
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

/// Graph's error code and message: `{"error": {"code": "Request_ResourceNotFound",
/// "message": "Resource '…' does not exist …"}}`.
fn graph_error(answer: &Answer) -> (String, String) {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    match (
        body["error"]["code"].as_str(),
        body["error"]["message"].as_str(),
    ) {
        (Some(code), Some(message)) => (code.to_owned(), message.to_owned()),
        _ => (format!("HTTP {}", answer.status), answer.excerpt()),
    }
}

/// `value` as the inside of an OData string literal: a quote is doubled.
pub fn odata_escape(value: &str) -> String {
    value.replace('\'', "''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_in_a_name_is_doubled_so_it_cannot_end_the_filter_s_string() {
        assert_eq!(odata_escape("o'brien@example.com"), "o''brien@example.com");
        assert_eq!(odata_escape("x' or mail ne '"), "x'' or mail ne ''");
    }

    #[test]
    fn tenants_and_groups_are_shaped_as_entra_writes_them() {
        assert!(tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47").is_ok());
        assert!(tenant_id("contoso.onmicrosoft.com").is_ok());
        assert!(tenant_id("common").is_err(), "an app acts in one tenant");
        assert!(tenant_id("contoso/x").is_err());
        assert!(group_id("02bd9fd6-8f93-4758-87c3-1fb73740a315").is_ok());
        assert!(group_id("Admins").is_err());
        assert!(group_id("02bd9fd6-8f93-4758-87c3-1fb73740a31").is_err());
    }

    #[test]
    fn users_are_found_by_user_principal_name_unless_mail_is_asked_for() {
        assert_eq!(
            UserAttribute::parse(None),
            Ok(UserAttribute::UserPrincipalName)
        );
        assert_eq!(UserAttribute::parse(Some("mail")), Ok(UserAttribute::Mail));
        assert!(UserAttribute::parse(Some("email")).is_err());
    }
}
