//! Provisioning connectors: the port through which approved access is really given and taken
//! back. The outbox worker calls a [`Connector`] for each `Provision` and `Deprovision` effect;
//! five kinds are built in — [`LogConnector`] (dry run), [`WebhookConnector`] (a signed
//! HTTP POST), [`CommandConnector`] (a program with arguments and environment),
//! [`PostgresConnector`] (a database role granted to a login) and [`LdapConnector`] (a DN
//! added to a group) — and [`Connectors`] builds them from the `[[connectors]]` tables of
//! gatehouse.toml.

mod aws_sso;
mod command;
pub(crate) mod entra;
pub mod github;
pub mod google;
pub(crate) mod http_api;
pub mod jwt;
mod ldap;
mod log;
pub(crate) mod oauth;
pub(crate) mod okta;
mod postgres;
pub mod template;
pub mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use aws_sso::{AwsEnv, AwsSsoConnector, shapes as aws_shapes};
pub use command::CommandConnector;
pub use entra::EntraConnector;
pub use ldap::LdapConnector;
pub use log::LogConnector;
pub use okta::OktaConnector;
pub use postgres::{PostgresConnector, quote_ident};
pub use webhook::{WebhookConnector, sign, verify};

use crate::config::{ConnectorConfig, ConnectorKind};
use crate::domain::directory::{Accounts, Person};
use crate::domain::grant::Grant;
use crate::domain::ids::{ConnectorId, GrantId, PersonId, ResourceId, RoleId};

/// What a connector is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Grant,
    Revoke,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Grant => "grant",
            Action::Revoke => "revoke",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The person a grant is for, with every id a target system may know them by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRef {
    pub id: PersonId,
    pub email: Option<String>,
    pub slack: Option<String>,
    pub discord: Option<String>,
    /// Their accounts at other systems, by name (`github` → `octocat`), from the directory;
    /// templates say `{{ accounts.github }}`. Left out of a webhook's body when empty.
    #[serde(default, skip_serializing_if = "Accounts::is_empty")]
    pub accounts: Accounts,
}

impl PersonRef {
    pub fn from_person(person: &Person) -> Self {
        Self {
            id: person.id.clone(),
            email: person.email.clone(),
            slack: person.slack.clone(),
            discord: person.discord.clone(),
            accounts: person.accounts.clone(),
        }
    }
}

/// One grant or revoke, as the connector sees it. Serialized, this is also the webhook body:
/// `{"action":"grant","grant":"G-7","person":{"id":"alice","email":…,"slack":…,"discord":…,
/// "accounts":{"github":"alice-ng"}},
/// "resource":"prod-db","role":"admin","expires_at":"2027-01-01T10:00:00Z",
/// "idempotency_key":"provision:G-7"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorCall {
    pub action: Action,
    pub grant: GrantId,
    pub person: PersonRef,
    pub resource: ResourceId,
    pub role: RoleId,
    /// `None` for standing access.
    pub expires_at: Option<DateTime<Utc>>,
    /// The same for every attempt at one effect, so a target can drop repeats.
    pub idempotency_key: String,
    /// A revoke that takes back a grant whose provisioning failed: the target may have
    /// changed something before the failure, or nothing at all. A person the target does not
    /// know then holds nothing, and the revoke succeeds. Sent as `"undo": true` to webhooks
    /// (absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undo: bool,
}

impl ConnectorCall {
    /// The call that gives or takes back `grant`.
    pub fn for_grant(
        action: Action,
        grant: &Grant,
        person: PersonRef,
        idempotency_key: impl Into<String>,
    ) -> Self {
        Self {
            action,
            grant: grant.id,
            person,
            resource: grant.resource.clone(),
            role: grant.role.clone(),
            expires_at: grant.expires_at,
            idempotency_key: idempotency_key.into(),
            undo: action == Action::Revoke && grant.is_undoing(),
        }
    }
}

/// What a successful call reports, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `HTTP 200`, or what the command printed (cut at 2 KB).
    pub detail: String,
}

/// Why a call did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The target may succeed later (down, overloaded, timed out): try again with backoff.
    #[error("{0}")]
    Transient(String),
    /// The target asked to slow down (HTTP 429): a transient failure, and no call of this
    /// connector starts again before `retry_after` has passed, when the target said how long.
    /// Other connectors go on.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (refused, misconfigured): stop and tell people.
    #[error("{0}")]
    Permanent(String),
}

impl ConnectorError {
    pub fn is_transient(&self) -> bool {
        !matches!(self, ConnectorError::Permanent(_))
    }

    /// How long the target asked to be left alone, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectorError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// How hard the outbox may press one target: how many calls may be under way at once, and
/// how many may start per second (`max_concurrent`, `max_per_second` of its
/// `[[connectors]]` entry).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub max_concurrent: usize,
    /// `None`: no limit.
    pub max_per_second: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent: crate::config::DEFAULT_MAX_CONCURRENT as usize,
            max_per_second: None,
        }
    }
}

impl Limits {
    fn of(config: &ConnectorConfig) -> Self {
        Self {
            max_concurrent: config.max_concurrent as usize,
            max_per_second: config.max_per_second,
        }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A provisioning target.
///
/// Contract for implementations:
/// - Both calls MUST be idempotent. The outbox worker may repeat a call (after a crash, a
///   timeout whose request did arrive, a retry), so granting access that already exists and
///   revoking access that is already gone are successes, not errors.
/// - `call.action` matches the method called; [`Connector::execute`] picks the method for you.
/// - [`ConnectorError::Transient`] means "not done, may work later": the outbox retries with
///   backoff. [`ConnectorError::Permanent`] means "retrying cannot help": a failed grant is
///   marked failed and a failed revocation is alerted to the security channel.
/// - A call gives up by itself within the connector's timeout; it never retries internally.
/// - Secrets never appear in an [`Outcome`] or an error message: both go to the audit log.
pub trait Connector: Send + Sync + 'static {
    fn grant<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>>;

    fn revoke<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>>;

    /// `grant` or `revoke`, as `call.action` says.
    fn execute<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        match call.action {
            Action::Grant => self.grant(call),
            Action::Revoke => self.revoke(call),
        }
    }

    /// How many revocations one [`Connector::revoke_many`] takes at most: more than 1 when the
    /// target takes many in one request (one LDAP modify with several values, one
    /// `REVOKE … FROM a, b, c`). 1 by default.
    fn revoke_batch(&self) -> usize {
        1
    }

    /// Several revocations, each with its own result, in the order of `calls`; the same
    /// contract as [`Connector::revoke`] for each (idempotent, a transient or permanent error
    /// of its own). A target that takes many at once does them in as few requests as it can;
    /// by default they are made one by one.
    fn revoke_many<'a>(
        &'a self,
        calls: &'a [ConnectorCall],
    ) -> BoxFuture<'a, Vec<Result<Outcome, ConnectorError>>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                results.push(self.revoke(call).await);
            }
            results
        })
    }
}

/// Refuses a call whose `action` is not the method's: that is a bug in the caller, and
/// sending it on would grant where a revoke was meant (or the reverse).
fn check_action(
    connector: &ConnectorId,
    call: &ConnectorCall,
    method: Action,
) -> Result<(), ConnectorError> {
    if call.action == method {
        Ok(())
    } else {
        Err(ConnectorError::Permanent(format!(
            "connector `{connector}` was asked to {method} with a call that says {}; nothing was sent",
            call.action
        )))
    }
}

/// A connector that cannot be built from its config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorSetupError {
    #[error(
        "connector `{id}` is a webhook but has no url; add url = \"https://provisioner.internal/hooks/gatehouse\""
    )]
    MissingUrl { id: ConnectorId },
    #[error(
        "connector `{id}` has url `{url}`, which is not an http:// or https:// address ({reason})"
    )]
    BadUrl {
        id: ConnectorId,
        url: String,
        reason: String,
    },
    #[error(
        "connector `{id}` is a webhook but has no secret to sign with; add secret = \"${{GATEHOUSE_WEBHOOK_SECRET}}\" and give the receiver the same value"
    )]
    MissingSecret { id: ConnectorId },
    #[error(
        "connector `{id}` runs a command but names no program; add command = [\"/usr/local/bin/provision\", \"{{action}}\"]"
    )]
    MissingProgram { id: ConnectorId },
    #[error("connector `{id}` has a zero timeout; give it time to answer, e.g. timeout = \"10s\"")]
    ZeroTimeout { id: ConnectorId },
    #[error("connector id `{id}` is used twice; connector ids must be unique")]
    Duplicate { id: ConnectorId },
    #[error("connector `{id}` could not be set up: {reason}")]
    Client { id: ConnectorId, reason: String },
    #[error("connector `{id}` ({kind}) has no {key}; add {example}")]
    MissingKey {
        id: ConnectorId,
        kind: &'static str,
        key: &'static str,
        example: &'static str,
    },
    #[error("connector `{id}`: {key} {reason}")]
    Invalid {
        id: ConnectorId,
        key: &'static str,
        reason: String,
    },
}

/// Every connector of the config, by id.
#[derive(Clone, Default)]
pub struct Connectors {
    by_id: BTreeMap<ConnectorId, Arc<dyn Connector>>,
    /// Each configured connector's `timeout`, which its calls keep to by themselves.
    timeouts: BTreeMap<ConnectorId, std::time::Duration>,
    /// Each connector's limits, when not the defaults.
    limits: BTreeMap<ConnectorId, Limits>,
}

impl Connectors {
    /// Builds one connector per `[[connectors]]` entry (one HTTP client per webhook).
    pub fn from_config(configs: &[ConnectorConfig]) -> Result<Self, ConnectorSetupError> {
        let mut connectors = Connectors::default();
        for config in configs {
            if connectors.by_id.contains_key(&config.id) {
                return Err(ConnectorSetupError::Duplicate {
                    id: config.id.clone(),
                });
            }
            if config.timeout.as_secs() == 0 {
                return Err(ConnectorSetupError::ZeroTimeout {
                    id: config.id.clone(),
                });
            }
            let limits = Limits::of(config);
            if !(1..=crate::config::MAX_MAX_CONCURRENT as usize).contains(&limits.max_concurrent) {
                return Err(ConnectorSetupError::Invalid {
                    id: config.id.clone(),
                    key: "max_concurrent",
                    reason: format!(
                        "is {}; it must be between 1 and {}",
                        limits.max_concurrent,
                        crate::config::MAX_MAX_CONCURRENT
                    ),
                });
            }
            if let Some(rate) = limits.max_per_second
                && !(rate.is_finite() && rate > 0.0)
            {
                return Err(ConnectorSetupError::Invalid {
                    id: config.id.clone(),
                    key: "max_per_second",
                    reason: format!("is {rate}: no call could start; give a number above 0"),
                });
            }
            let connector: Arc<dyn Connector> = match config.kind {
                ConnectorKind::Log => Arc::new(LogConnector::new(config.id.clone())),
                ConnectorKind::Webhook => Arc::new(WebhookConnector::from_config(config)?),
                ConnectorKind::Command => Arc::new(CommandConnector::from_config(config)?),
                ConnectorKind::Postgres => Arc::new(PostgresConnector::from_config(config)?),
                ConnectorKind::Ldap => Arc::new(LdapConnector::from_config(config)?),
                ConnectorKind::AwsSso => Arc::new(AwsSsoConnector::from_config(config)?),
                ConnectorKind::Github => Arc::new(github::GithubConnector::from_config(config)?),
                ConnectorKind::Google => Arc::new(google::GoogleConnector::from_config(config)?),
                ConnectorKind::Okta => Arc::new(OktaConnector::from_config(config)?),
                ConnectorKind::Entra => Arc::new(EntraConnector::from_config(config)?),
            };
            connectors.by_id.insert(config.id.clone(), connector);
            connectors
                .timeouts
                .insert(config.id.clone(), config.timeout.to_std());
            connectors.limits.insert(config.id.clone(), limits);
        }
        Ok(connectors)
    }

    /// The limits of connector `id`: as configured, else the defaults.
    pub fn limits(&self, id: &ConnectorId) -> Limits {
        self.limits.get(id).copied().unwrap_or_default()
    }

    /// Puts `limits` on connector `id`: for tests, and for connectors not built from config.
    pub fn limit(&mut self, id: &ConnectorId, limits: Limits) {
        self.limits.insert(id.clone(), limits);
    }

    pub fn get(&self, id: &ConnectorId) -> Option<Arc<dyn Connector>> {
        self.by_id.get(id).cloned()
    }

    /// The `timeout` connector `id` was configured with; `None` for one not built from
    /// gatehouse.toml.
    pub fn timeout(&self, id: &ConnectorId) -> Option<std::time::Duration> {
        self.timeouts.get(id).copied()
    }

    /// Adds or replaces a connector: for tests, and for connectors not built from config.
    /// It has the default limits until [`Connectors::limit`] says otherwise.
    pub fn insert(&mut self, id: ConnectorId, connector: Arc<dyn Connector>) {
        self.timeouts.remove(&id);
        self.limits.remove(&id);
        self.by_id.insert(id, connector);
    }

    pub fn ids(&self) -> impl Iterator<Item = &ConnectorId> {
        self.by_id.keys()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The connectors in force, shared by the outbox worker and the reloads: a reload that changes
/// `[[connectors]]` (a rotated `password_file`, a connector added) puts the new ones in force
/// for the next call, while calls under way finish with the ones they started with.
#[derive(Clone, Default)]
pub struct ConnectorRegistry(Arc<RwLock<Arc<Connectors>>>);

impl ConnectorRegistry {
    pub fn new(connectors: Connectors) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(connectors))))
    }

    /// The connectors in force now.
    pub fn current(&self) -> Arc<Connectors> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn get(&self, id: &ConnectorId) -> Option<Arc<dyn Connector>> {
        self.current().get(id)
    }

    /// Puts `connectors` in force in place of the ones before.
    pub fn replace(&self, connectors: Connectors) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(connectors);
    }
}

impl From<Connectors> for ConnectorRegistry {
    fn from(connectors: Connectors) -> Self {
        Self::new(connectors)
    }
}

impl fmt::Debug for ConnectorRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.current().fmt(f)
    }
}

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.by_id.keys().map(ConnectorId::as_str))
            .finish()
    }
}

/// At most `max` bytes of `text` (cut at a character boundary), marked when cut, so that
/// what a target says cannot flood the audit log.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut]", &text[..end])
}

#[cfg(test)]
mod tests;
