//! The `aws-sso` connector: AWS IAM Identity Center. A grant assigns the role's permission
//! set to the person's Identity Store user on the connector's account
//! (`CreateAccountAssignment`, then `DescribeAccountAssignmentCreationStatus` until it
//! succeeds or fails); a revocation deletes that assignment, polled the same way. With
//! `assign = "group"`, a grant adds the user to the role's Identity Store group instead
//! (`CreateGroupMembership`) and a revocation removes them.
//!
//! **Who.** The person's user is found by `GetUserId` on the `user_name` template's value
//! (default `{{ email }}`), as `userName` or the connector's `user_attribute`. Nothing is
//! recorded at grant time: revocation finds the user again the same way, so the template
//! must name the same user then (mark leavers inactive rather than deleting them).
//!
//! **Idempotent.** Every change is preceded by a look (`ListAccountAssignments`,
//! `GetGroupMembershipId`): assigning what is assigned and removing what is gone succeed
//! without a change, and a `ConflictException` (the same change under way) is looked at
//! again. An assignment still `IN_PROGRESS` when the call's `timeout` runs out is a
//! transient failure; the retry finds it done.
//!
//! **Errors.** Throttling, 5xx, network failures and expired temporary credentials are
//! transient (a `Retry-After` holds the connector's requests, see [`super::http_api`]); an
//! unknown user, permission set or group, `AccessDeniedException` (the sentence names the
//! IAM action to allow) and credentials AWS does not accept are permanent.
//!
//! **Signing.** SigV4 by the `aws-sigv4` crate, with credentials from the standard chain
//! ([`credentials`]).

mod credentials;
mod signing;

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

pub use credentials::AwsEnv;

use super::http_api::{self, ApiError, PersonName, Throttle};
use super::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome,
};
use crate::config::{AwsAssign, ConnectorConfig};
use crate::domain::ids::{ConnectorId, RoleId};
use crate::engine::{Clock, SystemClock};
use credentials::{CredentialChain, Sts};

const KIND: &str = "aws-sso";
const DEFAULT_USER_NAME: &str = "{{ email }}";
const DEFAULT_USER_ATTRIBUTE: &str = "userName";
/// The first wait between two looks at an assignment's status; it doubles up to
/// [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(250);
const MAX_POLL: Duration = Duration::from_secs(2);
/// The status polls' waits, through the one backoff policy (no jitter: one caller, one request).
const POLLS: crate::backoff::Backoff = crate::backoff::Backoff::new(FIRST_POLL, MAX_POLL);
/// Error codes AWS uses for "slow down" and "try again".
const TRANSIENT_CODES: [&str; 14] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "RequestTimeout",
    "RequestTimeoutException",
];
/// Error codes for credentials AWS does not accept (the ones in hand are dropped).
const CREDENTIAL_CODES: [&str; 7] = [
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
];
const EXPIRED_CODES: [&str; 3] = ["ExpiredTokenException", "ExpiredToken", "RequestExpired"];

/// One AWS service the connector calls (JSON 1.1 protocol).
struct Service {
    url: reqwest::Url,
    /// What IAM and SigV4 call it: `sso`, `identitystore`.
    signing_name: &'static str,
    /// `X-Amz-Target` is `<prefix>.<operation>`.
    target_prefix: &'static str,
    /// For messages: `sso-admin`, `identitystore`.
    label: &'static str,
}

pub struct AwsSsoConnector {
    id: ConnectorId,
    region: String,
    assign: AwsAssign,
    /// `assign = "account"`: the instance and the account.
    instance_arn: String,
    account: String,
    identity_store_id: String,
    user_name: PersonName,
    user_attribute: String,
    /// Role id → permission set ARN (or group id).
    roles: BTreeMap<RoleId, String>,
    sso: Service,
    identitystore: Service,
    chain: CredentialChain,
    client: reqwest::Client,
    throttle: Throttle,
    timeout: Duration,
}

/// What an AWS call came back with when it did not succeed.
enum Fault {
    /// AWS answered with an error code (`ConflictException`, …).
    Aws {
        status: StatusCode,
        code: String,
        message: String,
        retry_after: Option<Duration>,
        /// Where the credentials the request was signed with came from.
        signed_by: String,
    },
    /// No answer, or no usable one: already classified.
    Other(ApiError),
}

impl From<ApiError> for Fault {
    fn from(error: ApiError) -> Self {
        Fault::Other(error)
    }
}

impl Fault {
    fn code(&self) -> &str {
        match self {
            Fault::Aws { code, .. } => code,
            Fault::Other(_) => "",
        }
    }
}

impl AwsSsoConnector {
    pub(super) fn from_config(config: &ConnectorConfig) -> Result<Self, ConnectorSetupError> {
        Self::with_env(config, AwsEnv::process())
    }

    /// The connector, reading credentials through `env` instead of this process's
    /// environment (tests, and several connectors with different settings).
    pub fn with_env(config: &ConnectorConfig, env: AwsEnv) -> Result<Self, ConnectorSetupError> {
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
        let region = config
            .region
            .clone()
            .ok_or_else(|| missing("region", "region = \"us-east-1\""))?;
        if let Err(reason) = shapes::region(&region) {
            return Err(invalid("region", reason));
        }
        let identity_store_id = config
            .identity_store_id
            .clone()
            .ok_or_else(|| missing("identity_store_id", "identity_store_id = \"d-1234567890\""))?;
        let assign = config.assign.unwrap_or_default();
        let (instance_arn, account) = match assign {
            AwsAssign::Account => (
                config.instance_arn.clone().ok_or_else(|| {
                    missing(
                        "instance_arn",
                        "instance_arn = \"arn:aws:sso:::instance/ssoins-…\"",
                    )
                })?,
                config
                    .account
                    .clone()
                    .ok_or_else(|| missing("account", "account = \"111111111111\""))?,
            ),
            AwsAssign::Group => (String::new(), String::new()),
        };
        if config.roles.is_empty() {
            return Err(missing(
                "roles",
                "roles = { read = \"arn:aws:sso:::permissionSet/ssoins-…/ps-…\" }",
            ));
        }
        let user_name = PersonName::parse(
            config.user_name.as_deref().unwrap_or(DEFAULT_USER_NAME),
            "user_name",
        )
        .map_err(|reason| invalid("user_name", reason))?;
        let endpoint = |host: &str| -> Result<reqwest::Url, ConnectorSetupError> {
            let text = match &config.endpoint_url {
                Some(url) => url.clone(),
                None => format!("https://{host}.{region}.{}/", dns_suffix(&region)),
            };
            let url = reqwest::Url::parse(&text)
                .map_err(|e| invalid("endpoint_url", format!("`{text}` is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(
                    "endpoint_url",
                    format!("`{text}` is not an http:// or https:// URL"),
                ));
            }
            Ok(url)
        };
        let sso = Service {
            url: endpoint("sso")?,
            signing_name: "sso",
            target_prefix: "SWBExternalService",
            label: "sso-admin",
        };
        let identitystore = Service {
            url: endpoint("identitystore")?,
            signing_name: "identitystore",
            target_prefix: "AWSIdentityStore",
            label: "identitystore",
        };
        let sts_url = match (&config.endpoint_url, env_sts(&env)) {
            (None, Some(url)) => reqwest::Url::parse(&url).map_err(|e| {
                invalid("endpoint_url", format!("AWS_ENDPOINT_URL_STS `{url}`: {e}"))
            })?,
            _ => endpoint("sts")?,
        };
        let client = http_api::client(&id)?;
        let chain = CredentialChain::new(
            env,
            config.profile.clone(),
            Sts {
                url: sts_url,
                region: region.clone(),
            },
            client.clone(),
        );
        Ok(Self {
            id,
            region,
            assign,
            instance_arn,
            account,
            identity_store_id,
            user_name,
            user_attribute: config
                .user_attribute
                .clone()
                .unwrap_or_else(|| DEFAULT_USER_ATTRIBUTE.to_owned()),
            roles: config.roles.clone(),
            sso,
            identitystore,
            chain,
            client,
            throttle: Throttle::default(),
            timeout: config.timeout.to_std(),
        })
    }

    async fn run(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        http_api::run_call(
            "aws-sso",
            &self.id,
            self.timeout,
            call,
            method,
            |deadline| self.change(call, deadline),
        )
        .await
    }

    async fn change(&self, call: &ConnectorCall, deadline: Instant) -> Result<String, ApiError> {
        let target = http_api::role_target(&self.roles, call, self.target_kind())?;
        let user_name = self.user_name.render(&call.person)?;
        let id = match self.user_id(&user_name, deadline).await? {
            Some(id) => id,
            None => {
                return http_api::no_such_user(
                    call,
                    &format!(
                        "Identity Store {} has no user whose {} is `{user_name}`",
                        self.identity_store_id, self.user_attribute
                    ),
                    "create the user in IAM Identity Center, or fix the connector's user_name template",
                );
            }
        };
        let user = User {
            id,
            name: user_name,
        };
        match (self.assign, call.action) {
            (AwsAssign::Account, Action::Grant) => {
                self.assign_account(target, &user, call, deadline).await
            }
            (AwsAssign::Account, Action::Revoke) => {
                self.unassign_account(target, &user, call, deadline).await
            }
            (AwsAssign::Group, Action::Grant) => {
                self.join_group(target, &user, call, deadline).await
            }
            (AwsAssign::Group, Action::Revoke) => {
                self.leave_group(target, &user, call, deadline).await
            }
        }
    }

    fn target_kind(&self) -> &'static str {
        match self.assign {
            AwsAssign::Account => "permission set",
            AwsAssign::Group => "Identity Store group",
        }
    }

    /// The Identity Store user id of `name`; `None` when the store has no such user.
    async fn user_id(&self, name: &str, deadline: Instant) -> Result<Option<String>, ApiError> {
        let answer = self
            .call(
                &self.identitystore,
                "GetUserId",
                json!({
                    "IdentityStoreId": self.identity_store_id,
                    "AlternateIdentifier": { "UniqueAttribute": {
                        "AttributePath": self.user_attribute,
                        "AttributeValue": name,
                    }},
                }),
                deadline,
            )
            .await;
        match answer {
            Ok(answer) => string_field(&answer, "UserId", "identitystore GetUserId").map(Some),
            Err(fault) if fault.code() == "ResourceNotFoundException" => Ok(None),
            Err(fault) => Err(self.classify(fault, &self.identitystore, "GetUserId").await),
        }
    }

    async fn assign_account(
        &self,
        permission_set: &str,
        user: &User,
        call: &ConnectorCall,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let shown = format!(
            "permission set {} (role {}) to {} on account {}",
            short_arn(permission_set),
            call.role,
            user.name,
            self.account
        );
        if self.assigned(permission_set, user, deadline).await? {
            return Ok(format!("{shown} was already assigned"));
        }
        let created = self
            .call(
                &self.sso,
                "CreateAccountAssignment",
                self.assignment(permission_set, user),
                deadline,
            )
            .await;
        let status = match created {
            Ok(answer) => answer["AccountAssignmentCreationStatus"].clone(),
            Err(fault) if fault.code() == "ConflictException" => {
                return if self.assigned(permission_set, user, deadline).await? {
                    Ok(format!("{shown} was already assigned"))
                } else {
                    Err(ApiError::transient(format!(
                        "another change to the assignment of {shown} is under way"
                    )))
                };
            }
            Err(fault) if fault.code() == "ResourceNotFoundException" => {
                return Err(self.unknown_permission_set(permission_set, call, fault));
            }
            Err(fault) => {
                return Err(self
                    .classify(fault, &self.sso, "CreateAccountAssignment")
                    .await);
            }
        };
        self.until_done(status, Progress::CREATION, &shown, deadline)
            .await?;
        Ok(format!("assigned {shown}"))
    }

    async fn unassign_account(
        &self,
        permission_set: &str,
        user: &User,
        call: &ConnectorCall,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let shown = format!(
            "permission set {} (role {}) of {} on account {}",
            short_arn(permission_set),
            call.role,
            user.name,
            self.account
        );
        if !self.assigned(permission_set, user, deadline).await? {
            return Ok(format!("{shown} was not assigned"));
        }
        let deleted = self
            .call(
                &self.sso,
                "DeleteAccountAssignment",
                self.assignment(permission_set, user),
                deadline,
            )
            .await;
        let status = match deleted {
            Ok(answer) => answer["AccountAssignmentDeletionStatus"].clone(),
            Err(fault)
                if matches!(
                    fault.code(),
                    "ConflictException" | "ResourceNotFoundException"
                ) =>
            {
                // Gone meanwhile, or its removal already under way: look again.
                return if self.assigned(permission_set, user, deadline).await? {
                    Err(ApiError::transient(format!(
                        "another change to the assignment of {shown} is under way"
                    )))
                } else {
                    Ok(format!("{shown} was not assigned"))
                };
            }
            Err(fault) => {
                return Err(self
                    .classify(fault, &self.sso, "DeleteAccountAssignment")
                    .await);
            }
        };
        self.until_done(status, Progress::DELETION, &shown, deadline)
            .await?;
        Ok(format!("removed {shown}"))
    }

    fn assignment(&self, permission_set: &str, user: &User) -> Value {
        json!({
            "InstanceArn": self.instance_arn,
            "TargetId": self.account,
            "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": permission_set,
            "PrincipalType": "USER",
            "PrincipalId": user.id,
        })
    }

    /// Whether `user` holds `permission_set` on the account, from `ListAccountAssignments`.
    async fn assigned(
        &self,
        permission_set: &str,
        user: &User,
        deadline: Instant,
    ) -> Result<bool, ApiError> {
        let mut next_token: Option<String> = None;
        loop {
            let mut body = json!({
                "InstanceArn": self.instance_arn,
                "AccountId": self.account,
                "PermissionSetArn": permission_set,
                "MaxResults": 100,
            });
            if let Some(token) = &next_token {
                body["NextToken"] = json!(token);
            }
            let page = match self
                .call(&self.sso, "ListAccountAssignments", body, deadline)
                .await
            {
                Ok(page) => page,
                Err(fault) if fault.code() == "ResourceNotFoundException" => {
                    return Err(self.unknown_permission_set_on_list(permission_set, fault));
                }
                Err(fault) => {
                    return Err(self
                        .classify(fault, &self.sso, "ListAccountAssignments")
                        .await);
                }
            };
            let found = page["AccountAssignments"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["PrincipalType"] == "USER" && a["PrincipalId"] == user.id.as_str());
            if found {
                return Ok(true);
            }
            match page["NextToken"].as_str() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(false),
            }
        }
    }

    fn unknown_permission_set(
        &self,
        permission_set: &str,
        call: &ConnectorCall,
        fault: Fault,
    ) -> ApiError {
        ApiError::Permanent(format!(
            "AWS does not know permission set {permission_set} (role {}) in instance {} on account {}: {}; fix the connector's roles table, instance_arn or account",
            call.role,
            self.instance_arn,
            self.account,
            fault_message(&fault)
        ))
    }

    fn unknown_permission_set_on_list(&self, permission_set: &str, fault: Fault) -> ApiError {
        ApiError::Permanent(format!(
            "AWS does not know permission set {permission_set} in instance {} on account {}: {}; fix the connector's roles table, instance_arn or account",
            self.instance_arn,
            self.account,
            fault_message(&fault)
        ))
    }

    /// Polls an assignment's creation or deletion status until it succeeds or fails, with
    /// waits from [`FIRST_POLL`] doubling to [`MAX_POLL`], within `deadline`.
    async fn until_done(
        &self,
        mut status: Value,
        progress: Progress,
        shown: &str,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        let started = Instant::now();
        let mut polls = 0;
        loop {
            let wait = POLLS.base(polls);
            match status["Status"].as_str() {
                Some("SUCCEEDED") => return Ok(()),
                Some("FAILED") => {
                    let reason = status["FailureReason"]
                        .as_str()
                        .unwrap_or("AWS gave no reason");
                    return Err(ApiError::Permanent(format!(
                        "AWS failed the {} of {shown}: {reason}",
                        progress.noun
                    )));
                }
                Some("IN_PROGRESS") => {}
                other => {
                    return Err(ApiError::Permanent(format!(
                        "sso-admin {} answered status {other:?} for {shown}, which Gatehouse does not know",
                        progress.operation
                    )));
                }
            }
            let request_id = status["RequestId"].as_str().ok_or_else(|| {
                ApiError::Permanent(format!(
                    "sso-admin answered the {} of {shown} without a RequestId to follow",
                    progress.noun
                ))
            })?;
            if Instant::now() + wait > deadline {
                return Err(ApiError::transient(format!(
                    "the {} of {shown} was still in progress after {:.1}s (request {request_id}); the retry finds it done",
                    progress.noun,
                    started.elapsed().as_secs_f64()
                )));
            }
            tokio::time::sleep(wait).await;
            polls += 1;
            let answer = self
                .call(
                    &self.sso,
                    progress.operation,
                    json!({
                        "InstanceArn": self.instance_arn,
                        progress.request_id_key: request_id,
                    }),
                    deadline,
                )
                .await;
            status = match answer {
                Ok(answer) => answer[progress.status_key].clone(),
                Err(fault) => {
                    return Err(self.classify(fault, &self.sso, progress.operation).await);
                }
            };
        }
    }

    async fn join_group(
        &self,
        group: &str,
        user: &User,
        call: &ConnectorCall,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let shown = format!(
            "{} to Identity Store group {group} (role {})",
            user.name, call.role
        );
        if self.membership(group, user, deadline).await?.is_some() {
            return Ok(format!("{shown}: already a member"));
        }
        let created = self
            .call(
                &self.identitystore,
                "CreateGroupMembership",
                json!({
                    "IdentityStoreId": self.identity_store_id,
                    "GroupId": group,
                    "MemberId": { "UserId": user.id },
                }),
                deadline,
            )
            .await;
        match created {
            Ok(_) => Ok(format!("added {shown}")),
            Err(fault) if fault.code() == "ConflictException" => {
                Ok(format!("{shown}: already a member"))
            }
            Err(fault) if fault.code() == "ResourceNotFoundException" => {
                Err(self.unknown_group(group, call, &fault))
            }
            Err(fault) => Err(self
                .classify(fault, &self.identitystore, "CreateGroupMembership")
                .await),
        }
    }

    async fn leave_group(
        &self,
        group: &str,
        user: &User,
        call: &ConnectorCall,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let shown = format!(
            "{} from Identity Store group {group} (role {})",
            user.name, call.role
        );
        let Some(membership) = self.membership(group, user, deadline).await? else {
            // Not a member: of a group that exists? One that does not may be a typo in
            // the roles table, behind which the real membership stays.
            let described = self
                .call(
                    &self.identitystore,
                    "DescribeGroup",
                    json!({ "IdentityStoreId": self.identity_store_id, "GroupId": group }),
                    deadline,
                )
                .await;
            return match described {
                Ok(_) => Ok(format!("{shown}: was not a member")),
                Err(fault) if fault.code() == "ResourceNotFoundException" => {
                    Err(self.unknown_group(group, call, &fault))
                }
                Err(fault) => Err(self
                    .classify(fault, &self.identitystore, "DescribeGroup")
                    .await),
            };
        };
        let deleted = self
            .call(
                &self.identitystore,
                "DeleteGroupMembership",
                json!({ "IdentityStoreId": self.identity_store_id, "MembershipId": membership }),
                deadline,
            )
            .await;
        match deleted {
            Ok(_) => Ok(format!("removed {shown}")),
            Err(fault) if fault.code() == "ResourceNotFoundException" => {
                Ok(format!("{shown}: was not a member"))
            }
            Err(fault) => Err(self
                .classify(fault, &self.identitystore, "DeleteGroupMembership")
                .await),
        }
    }

    /// The id of `user`'s membership of `group`, `None` when they are not a member.
    async fn membership(
        &self,
        group: &str,
        user: &User,
        deadline: Instant,
    ) -> Result<Option<String>, ApiError> {
        let answer = self
            .call(
                &self.identitystore,
                "GetGroupMembershipId",
                json!({
                    "IdentityStoreId": self.identity_store_id,
                    "GroupId": group,
                    "MemberId": { "UserId": user.id },
                }),
                deadline,
            )
            .await;
        match answer {
            Ok(answer) => string_field(
                &answer,
                "MembershipId",
                "identitystore GetGroupMembershipId",
            )
            .map(Some),
            Err(fault) if fault.code() == "ResourceNotFoundException" => Ok(None),
            Err(fault) => Err(self
                .classify(fault, &self.identitystore, "GetGroupMembershipId")
                .await),
        }
    }

    fn unknown_group(&self, group: &str, call: &ConnectorCall, fault: &Fault) -> ApiError {
        ApiError::Permanent(format!(
            "Identity Store {} has no group {group} (role {}): {}; fix the connector's roles table (group ids, from `aws identitystore get-group-id`)",
            self.identity_store_id,
            call.role,
            fault_message(fault)
        ))
    }

    /// One signed JSON 1.1 call: the answer's JSON on success, the error AWS named (or
    /// why there is no answer) otherwise.
    async fn call(
        &self,
        service: &Service,
        operation: &str,
        body: Value,
        deadline: Instant,
    ) -> Result<Value, Fault> {
        let what = format!(
            "{} {operation} at {}",
            service.label,
            http_api::shown(&service.url)
        );
        let credentials = self.chain.get(deadline).await?;
        let mut request = self
            .client
            .post(service.url.clone())
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "x-amz-target",
                format!("{}.{operation}", service.target_prefix),
            )
            .body(body.to_string())
            .build()
            .map_err(|e| http_api::request_failed(&what, e))?;
        signing::sign(
            &mut request,
            &credentials,
            &self.region,
            service.signing_name,
            std::time::SystemTime::from(SystemClock.now()),
        )?;
        let request = reqwest::RequestBuilder::from_parts(self.client.clone(), request);
        let answer = http_api::send(request, &self.throttle, deadline, &what).await?;
        if answer.status.is_success() {
            return serde_json::from_slice(&answer.body).map_err(|e| {
                Fault::Other(ApiError::Permanent(format!(
                    "{what} answered with something that is not JSON: {e}"
                )))
            });
        }
        // JSON as the protocol says; an XML `<Error>` from a front end (IAM's refusals in
        // moto, a proxy) is read too.
        let parsed: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let xml = String::from_utf8_lossy(&answer.body);
        let code = answer
            .headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .or_else(|| parsed["__type"].as_str())
            .or_else(|| parsed["code"].as_str())
            .map(error_code)
            .or_else(|| credentials::xml_text(&xml, "Code"))
            .unwrap_or_default();
        let message = parsed["message"]
            .as_str()
            .or_else(|| parsed["Message"].as_str())
            .map(str::to_owned)
            .or_else(|| credentials::xml_text(&xml, "Message"))
            .unwrap_or_else(|| answer.excerpt());
        Err(Fault::Aws {
            status: answer.status,
            code,
            message,
            retry_after: http_api::retry_after(&answer.headers, SystemClock.now()),
            signed_by: credentials.source,
        })
    }

    /// A failure no caller handled, as a sentence: what was refused and what to do.
    async fn classify(&self, fault: Fault, service: &Service, operation: &str) -> ApiError {
        let Fault::Aws {
            status,
            code,
            message,
            retry_after,
            signed_by,
        } = fault
        else {
            let Fault::Other(error) = fault else {
                unreachable!()
            };
            return error;
        };
        let answered = format!(
            "{} {operation} answered {} {code}: {message}",
            service.label,
            status.as_u16()
        );
        let action = format!("{}:{operation}", service.signing_name);
        if TRANSIENT_CODES.contains(&code.as_str()) || http_api::transient_status(status) {
            if let Some(wait) = retry_after {
                self.throttle.hold(wait);
            }
            return ApiError::Transient {
                message: answered,
                retry_after,
            };
        }
        if EXPIRED_CODES.contains(&code.as_str()) {
            self.chain.forget().await;
            return ApiError::transient(format!(
                "{answered}; the credentials expired and are read again"
            ));
        }
        if CREDENTIAL_CODES.contains(&code.as_str()) {
            self.chain.forget().await;
            return ApiError::Permanent(format!(
                "{answered}; AWS does not accept the credentials from {signed_by}: check them (docs/connectors/aws-sso.md, \"Credentials\")"
            ));
        }
        if code.starts_with("AccessDenied") || status == StatusCode::FORBIDDEN {
            return ApiError::Permanent(format!(
                "{answered}; allow {action} to Gatehouse's AWS principal, whose credentials came from {signed_by} (the least policy is in docs/connectors/aws-sso.md)"
            ));
        }
        ApiError::Permanent(answered)
    }
}

impl Connector for AwsSsoConnector {
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

/// The person's Identity Store user.
struct User {
    id: String,
    /// The template's value, for messages.
    name: String,
}

/// The operation and keys that follow an assignment's creation or deletion.
struct Progress {
    noun: &'static str,
    operation: &'static str,
    request_id_key: &'static str,
    status_key: &'static str,
}

impl Progress {
    const CREATION: Progress = Progress {
        noun: "assignment",
        operation: "DescribeAccountAssignmentCreationStatus",
        request_id_key: "AccountAssignmentCreationRequestId",
        status_key: "AccountAssignmentCreationStatus",
    };
    const DELETION: Progress = Progress {
        noun: "removal",
        operation: "DescribeAccountAssignmentDeletionStatus",
        request_id_key: "AccountAssignmentDeletionRequestId",
        status_key: "AccountAssignmentDeletionStatus",
    };
}

fn string_field(answer: &Value, key: &str, what: &str) -> Result<String, ApiError> {
    answer[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Permanent(format!("{what} answered without {key}")))
}

fn fault_message(fault: &Fault) -> String {
    match fault {
        Fault::Aws { code, message, .. } => format!("{code}: {message}"),
        Fault::Other(error) => error.to_string(),
    }
}

/// `ThrottlingException` from `com.amazonaws.swbexternalservice#ThrottlingException` or
/// `ThrottlingException:http://internal.amazon.com/coral/…`.
fn error_code(raw: &str) -> String {
    let code = raw.split(':').next().unwrap_or(raw);
    code.rsplit('#').next().unwrap_or(code).trim().to_owned()
}

/// `ps-0123456789abcdef` of `arn:aws:sso:::permissionSet/ssoins-…/ps-0123456789abcdef`.
fn short_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The DNS suffix of AWS endpoints in `region`'s partition.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

fn env_sts(env: &AwsEnv) -> Option<String> {
    env.var("AWS_ENDPOINT_URL_STS").map(str::to_owned)
}

/// The shapes AWS's API reference gives its identifiers, checked offline by
/// `gatehouse check` (and when the connector is built), so a typo shows at its line.
pub mod shapes {
    use std::sync::LazyLock;

    use regex::Regex;

    const PARTITION: &str = "arn:aws(-cn|-us-gov|-iso|-iso-b)?";

    fn matches(pattern: &'static LazyLock<Regex>, value: &str) -> bool {
        pattern.is_match(value)
    }

    static REGION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$").unwrap());
    static INSTANCE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            r"^{PARTITION}:sso:::instance/((sso)?ins-[a-zA-Z0-9.-]{{16}})$"
        ))
        .unwrap()
    });
    // AWS names them `…:permissionSet/ssoins-…/ps-…`; moto `…:instance/ssoins-…/ps-…`,
    // which is taken too, so that the tests can run against it.
    static PERMISSION_SET: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            r"^{PARTITION}:sso:::(permissionSet|instance)/((sso)?ins-[a-zA-Z0-9.-]{{16}})/ps-[a-zA-Z0-9./-]{{16}}$"
        ))
        .unwrap()
    });
    static ACCOUNT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]{12}$").unwrap());
    static IDENTITY_STORE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^(d-[0-9a-f]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
        )
        .unwrap()
    });
    static GROUP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^([0-9a-f]{10}-)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
            .unwrap()
    });

    /// The attributes `GetUserId` can find a user by.
    pub const USER_ATTRIBUTES: [&str; 2] = ["userName", "emails.value"];

    /// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
    pub fn region(value: &str) -> Result<(), String> {
        if matches(&REGION, value) {
            Ok(())
        } else {
            Err(format!(
                "`{value}` is not an AWS region; write it like \"us-east-1\""
            ))
        }
    }

    /// `arn:aws:sso:::instance/ssoins-0123456789abcdef`; the instance id on success.
    pub fn instance_arn(value: &str) -> Result<String, String> {
        INSTANCE
            .captures(value)
            .map(|c| c[2].to_owned())
            .ok_or_else(|| {
                format!(
                    "`{value}` is not an IAM Identity Center instance ARN; copy it from the console's Settings page or `aws sso-admin list-instances` (arn:aws:sso:::instance/ssoins-…)"
                )
            })
    }

    /// `arn:aws:sso:::permissionSet/ssoins-…/ps-…`; the instance id it belongs to.
    pub fn permission_set_arn(value: &str) -> Result<String, String> {
        PERMISSION_SET
            .captures(value)
            .map(|c| c[3].to_owned())
            .ok_or_else(|| {
                format!(
                    "`{value}` is not a permission set ARN; copy it from `aws sso-admin list-permission-sets` (arn:aws:sso:::permissionSet/ssoins-…/ps-…)"
                )
            })
    }

    pub fn account(value: &str) -> Result<(), String> {
        if matches(&ACCOUNT, value) {
            Ok(())
        } else {
            Err(format!(
                "`{value}` is not an AWS account id; write its 12 digits, as a string: \"111111111111\""
            ))
        }
    }

    pub fn identity_store_id(value: &str) -> Result<(), String> {
        if matches(&IDENTITY_STORE, value) {
            Ok(())
        } else {
            Err(format!(
                "`{value}` is not an Identity Store id; copy it from `aws sso-admin list-instances` (d-…)"
            ))
        }
    }

    pub fn group_id(value: &str) -> Result<(), String> {
        if matches(&GROUP, value) {
            Ok(())
        } else {
            Err(format!(
                "`{value}` is not an Identity Store group id; find it with `aws identitystore get-group-id` (a UUID, sometimes after 10 hex digits and a dash)"
            ))
        }
    }

    pub fn user_attribute(value: &str) -> Result<(), String> {
        if USER_ATTRIBUTES.contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "`{value}` is not an attribute users can be found by; use userName or emails.value"
            ))
        }
    }
}

#[cfg(test)]
mod tests;
