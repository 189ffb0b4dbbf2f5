//! The tables of gatehouse.toml, with their defaults. Unknown keys are refused everywhere so
//! that a typo is an error at its line rather than a silently ignored setting.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::secret::Secret;
use crate::domain::duration::Duration;
use crate::domain::ids::{ConnectorId, PersonId, RoleId};

/// `[server]`: where the HTTP server listens and where data lives.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Slack and Discord endpoints, health, metrics and the admin API.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// As written; use [`super::Config::data_dir`] for the resolved path.
    pub data_dir: PathBuf,
    /// Base of links inside messages.
    pub public_url: Option<String>,
    /// The sled page cache, in MiB: an upper bound on the store's cached pages, the biggest
    /// part of Gatehouse's memory once many grants are stored.
    #[serde(deserialize_with = "mebibytes")]
    pub cache_mb: u64,
    /// HTTP connections served at once; more wait in the listen backlog until one closes.
    #[serde(deserialize_with = "whole_number")]
    pub max_connections: u64,
    /// How long a client has to send a request's line and headers, counted from connecting
    /// or from the previous response: also how long an idle connection is kept open.
    pub header_timeout: Duration,
    /// How long a client has to send a request's body once its headers are in.
    pub body_timeout: Duration,
    /// On shutdown, how long open connections may finish their requests before they are
    /// dropped.
    pub shutdown_grace: Duration,
}

/// `server.cache_mb` when not set: enough for the working set of a busy Gatehouse (pending
/// requests, live grants' index entries, the outbox) without holding every record in memory.
pub const DEFAULT_CACHE_MB: u64 = 64;
/// The largest `server.cache_mb` accepted (64 GiB): larger is surely a unit mistake.
pub const MAX_CACHE_MB: u64 = 64 * 1024;
/// `server.max_connections` when not set: twice the slow or idle clients Gatehouse is
/// measured to stay responsive under (docs/performance.md), at a few KiB each.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 4096;
/// The largest `server.max_connections` accepted: each connection is an open file.
pub const MAX_CONNECTIONS: u64 = 1_000_000;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            data_dir: PathBuf::from("./data"),
            public_url: None,
            cache_mb: DEFAULT_CACHE_MB,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// `[files]`: the other two files, as written (see the `Config::*_path` methods).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    pub policy: PathBuf,
    pub directory: PathBuf,
    /// Overrides for the compiled-in message templates.
    pub templates: Option<PathBuf>,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            policy: PathBuf::from("policy.toml"),
            directory: PathBuf::from("directory.toml"),
            templates: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlackMode {
    /// Events API and interactivity URLs: needs `signing_secret` and a public URL.
    #[default]
    Http,
    /// Socket Mode: needs `app_token`, no public URL.
    Socket,
}

/// `[slack]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    pub enabled: bool,
    pub mode: SlackMode,
    /// `xoxb-…`
    pub bot_token: Option<Secret>,
    pub signing_secret: Option<Secret>,
    /// `xapp-…`
    pub app_token: Option<Secret>,
    /// Methods go to `{api_url}/{method}`.
    pub api_url: String,
    pub security_channel: Option<String>,
    pub command: String,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            mode: SlackMode::Http,
            bot_token: None,
            signing_secret: None,
            app_token: None,
            api_url: "https://slack.com/api".to_owned(),
            security_channel: None,
            command: "/access".to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscordMode {
    /// A websocket to the gateway: no public URL needed.
    #[default]
    Gateway,
    /// An interactions endpoint: needs `public_key` and `application_id`.
    Http,
}

/// `[discord]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    pub enabled: bool,
    pub mode: DiscordMode,
    pub bot_token: Option<Secret>,
    pub application_id: Option<String>,
    /// Hex Ed25519 key from the developer portal.
    pub public_key: Option<String>,
    /// Commands are registered here; globally when absent.
    pub guild_id: Option<String>,
    /// Requests go to `{api_url}/api/v10/…`.
    pub api_url: String,
    pub security_channel: Option<String>,
    pub command: String,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            mode: DiscordMode::Gateway,
            bot_token: None,
            application_id: None,
            public_key: None,
            guild_id: None,
            api_url: "https://discord.com".to_owned(),
            security_channel: None,
            command: "access".to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// POST to `url`, signed with HMAC-SHA256 of `secret`.
    Webhook,
    /// Run `command` (program and arguments).
    Command,
    /// Only write to the log: for trying policies out.
    Log,
    /// Grant a PostgreSQL role to a login (`GRANT role TO login`).
    Postgres,
    /// Add the person's entry to an LDAP group.
    Ldap,
    /// Assign an AWS IAM Identity Center permission set on an account (or add to a group).
    #[serde(rename = "aws-sso")]
    AwsSso,
    /// Add to a GitHub team, or make a repository collaborator.
    Github,
    /// Add to a Google Workspace group.
    Google,
    /// Add the person's Okta user to an Okta group.
    Okta,
    /// Add the person's Microsoft Entra ID user to an Entra group, through Microsoft Graph.
    Entra,
}

/// `sslmode` of a `postgres` connector, as libpq names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP: only for a database on the same host or a trusted network.
    Disable,
    /// TLS without checking the server's certificate (protects against listeners only).
    Require,
    /// TLS, the certificate checked against the system roots (plus `ca`) and the host name.
    #[default]
    VerifyFull,
}

/// One `[[connectors]]` entry: a provisioning target referenced by resources.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    pub id: ConnectorId,
    pub kind: ConnectorKind,
    pub url: Option<String>,
    pub secret: Option<Secret>,
    #[serde(default = "default_connector_timeout")]
    pub timeout: Duration,
    /// How many calls to this target may be under way at once (a batch of revocations is
    /// one call).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: u32,
    /// How many calls may start per second, at most; no limit when absent.
    pub max_per_second: Option<f64>,
    /// Program and arguments, for `kind = "command"`. Not a shell line.
    pub command: Option<Vec<String>>,
    /// Extra environment for `kind = "command"`; values are secrets because they usually are.
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// `postgres`, `ldap`, `aws-sso`, `github`: what each Gatehouse role id becomes at the
    /// target (a database role, a group DN, a team). For `postgres` an empty table means "the
    /// role id itself".
    #[serde(default)]
    pub roles: BTreeMap<RoleId, String>,
    /// `postgres`: the server, when `url` does not say it.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub dbname: Option<String>,
    #[serde(default)]
    pub sslmode: SslMode,
    /// `postgres` and `ldap`: extra CA certificates to trust, as PEM text; usually written
    /// `ca_file = "/etc/ssl/…/ca.pem"`, which the `X_file` rule reads into `ca`.
    pub ca: Option<String>,
    /// `postgres`: the login a person has, a template over `id`, `email`, `slack`, `discord`.
    /// `github`: their GitHub login (by default `{{ accounts.github }}`).
    pub login: Option<String>,
    /// `postgres`: also set `VALID UNTIL` on the login to the grant's end.
    #[serde(default)]
    pub valid_until: bool,
    /// `ldap`: upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// `ldap`: who Gatehouse binds as.
    pub bind_dn: Option<String>,
    pub bind_password: Option<Secret>,
    /// `ldap`: `member` (groupOfNames) or `uniqueMember` (groupOfUniqueNames).
    pub member_attribute: Option<String>,
    /// `ldap`: the person's DN, a template (values are DN-escaped).
    pub user_dn: Option<String>,
    /// `ldap`: or where to search for it, with `user_filter` (values are filter-escaped).
    pub user_base_dn: Option<String>,
    pub user_filter: Option<String>,
    /// `aws-sso`: the AWS region of the IAM Identity Center instance.
    pub region: Option<String>,
    /// `aws-sso`: `arn:aws:sso:::instance/ssoins-…`.
    pub instance_arn: Option<String>,
    /// `aws-sso`: `d-…`, the Identity Store that holds the people.
    pub identity_store_id: Option<String>,
    /// `aws-sso`: the 12-digit AWS account the permission sets are assigned on.
    pub account: Option<String>,
    /// `aws-sso`: the person's Identity Store user name, a template like `login`.
    /// `okta`: their Okta login (or email). `entra`: their userPrincipalName (or mail).
    pub user_name: Option<String>,
    /// `aws-sso`: the unique attribute `user_name` is looked up by (`userName`, the default,
    /// or `emails.value`). `okta`: `login` (the default) or `email`. `entra`:
    /// `userPrincipalName` (the default) or `mail`.
    pub user_attribute: Option<String>,
    /// `aws-sso`: what a grant does (`account`, the default, or `group`).
    pub assign: Option<AwsAssign>,
    /// `aws-sso`: where every AWS API of this connector is reached, instead of AWS's own
    /// endpoints (for a test server or a proxy).
    pub endpoint_url: Option<String>,
    /// `aws-sso`: the profile of the shared AWS files to take credentials from, instead of
    /// `AWS_PROFILE` (or `default`).
    pub profile: Option<String>,
    /// `github`: the REST API's base URL, instead of `https://api.github.com` (GitHub
    /// Enterprise Server: `https://github.example.com/api/v3`; a test server).
    pub api_url: Option<String>,
    /// `github`: a token (fine-grained personal access token), instead of a GitHub App.
    /// `okta`: an API token, sent as `SSWS …`; or sign in as a service app.
    pub token: Option<Secret>,
    /// `github`: the GitHub App's id (or client id) and its installation on the organization.
    #[serde(default, deserialize_with = "id_text")]
    pub app_id: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub installation_id: Option<String>,
    /// `github`: the App's private key (PEM), usually `private_key_file`. `okta`: the service
    /// app's RSA private key. `entra`: the key of `certificate`.
    pub private_key: Option<Secret>,
    /// `google`: the service account's JSON key, usually `credentials_file`.
    pub credentials: Option<Secret>,
    /// `google`: the admin the service account acts as (domain-wide delegation).
    pub subject: Option<String>,
    /// `google`: the OAuth 2.0 token endpoint, instead of Google's (a test server). `okta`:
    /// instead of the org's `/oauth2/v1/token`. `entra`: instead of
    /// `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`.
    pub token_url: Option<String>,
    /// `okta`: the Okta org, `https://example.okta.com`: where its API is reached (a test
    /// server, in tests).
    pub org_url: Option<String>,
    /// `okta`: the OAuth 2.0 service app's client id (client credentials, `private_key_jwt`).
    /// `entra`: the app registration's application (client) id.
    pub client_id: Option<String>,
    /// `okta`: the `kid` of that key, when the app has several.
    pub key_id: Option<String>,
    /// `entra`: the directory (tenant) id, or one of its verified domains.
    pub tenant_id: Option<String>,
    /// `entra`: the app registration's client secret; or a `certificate` and its key.
    pub client_secret: Option<Secret>,
    /// `entra`: the certificate (PEM) uploaded to the app registration, usually
    /// `certificate_file`; `private_key` is its key.
    pub certificate: Option<String>,
    /// `entra`: Microsoft Graph's base URL, instead of `https://graph.microsoft.com` (a
    /// national cloud, a test server).
    pub graph_url: Option<String>,
}

/// `assign` of an `aws-sso` connector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AwsAssign {
    /// `CreateAccountAssignment` of the role's permission set on `account`.
    #[default]
    Account,
    /// `CreateGroupMembership` in the role's Identity Store group.
    Group,
}

fn default_connector_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `max_concurrent` unless set.
pub const DEFAULT_MAX_CONCURRENT: u32 = 16;
/// The most `max_concurrent` may be: more calls at once than this is a flood, not a limit.
pub const MAX_MAX_CONCURRENT: u32 = 1024;

fn default_max_concurrent() -> u32 {
    DEFAULT_MAX_CONCURRENT
}

/// `[admin]`: who may use the admin API (and the CLI commands that go through it).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub tokens: Vec<AdminToken>,
}

/// A bearer token for the admin API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Shown in logs and the audit trail instead of the token.
    pub name: String,
    pub token: Secret,
    /// The token is refused from this instant on.
    #[serde(default, deserialize_with = "rfc3339")]
    pub expires: Option<DateTime<Utc>>,
    /// The directory person that actions taken with this token are attributed to.
    pub operator: Option<PersonId>,
    /// What the token may do, as written; [`AdminToken::powers`] applies the default.
    pub powers: Option<Vec<Power>>,
}

/// What an admin token may do. Each admin API call needs one of the first four; `as` a
/// person other than the token's `operator` needs `impersonate` besides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    /// List and show requests and grants, read and verify the audit log.
    Read,
    /// Ask for access, cancel a request, extend or end a grant early.
    Request,
    /// Approve (with changes) or reject.
    Decide,
    /// Revoke a grant, offboard a person, reload the configuration, take a backup.
    Admin,
    /// Act `as` any person of the directory, not only the token's `operator`: recorded as
    /// an impersonation in the audit log and alerted to the security channel.
    Impersonate,
}

impl Power {
    pub const ALL: [Power; 5] = [
        Power::Read,
        Power::Request,
        Power::Decide,
        Power::Admin,
        Power::Impersonate,
    ];

    /// A token without `powers` has every power but impersonation: what tokens could do
    /// before powers existed, except acting as someone else.
    pub const DEFAULT: [Power; 4] = [Power::Read, Power::Request, Power::Decide, Power::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Power::Read => "read",
            Power::Request => "request",
            Power::Decide => "decide",
            Power::Admin => "admin",
            Power::Impersonate => "impersonate",
        }
    }
}

impl std::fmt::Display for Power {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl AdminToken {
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }

    /// What the token may do: its `powers`, or [`Power::DEFAULT`] when it names none.
    pub fn powers(&self) -> BTreeSet<Power> {
        match &self.powers {
            Some(powers) => powers.iter().copied().collect(),
            None => Power::DEFAULT.into_iter().collect(),
        }
    }
}

/// `[outbox]`: how the outbox worker retries what failed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// The longest wait between two attempts at an effect (the waits double from 1 s up to
    /// it, with jitter). Daily revocation retries are not affected.
    pub max_backoff: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_backoff: Duration::from_mins(10),
        }
    }
}

/// `[scheduler]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// How long before a grant expires its holder is told (and offered an extension).
    pub expiry_warning: Duration,
    /// When the daily digest goes to the security channels: a cron line (six fields, UTC),
    /// or "off".
    pub digest: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            expiry_warning: Duration::from_mins(15),
            digest: "0 0 9 * * *".to_owned(),
        }
    }
}

impl SchedulerConfig {
    /// The digest's schedule; `None` when it is off. Unparseable lines are refused by check.
    pub fn digest_schedule(&self) -> Option<cron::Schedule> {
        match self.digest.trim() {
            "off" | "" => None,
            line => line.parse().ok(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: `info`, or directives like `info,gatehouse=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".to_owned(),
        }
    }
}

fn socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not an address to listen on; write an IP and a port such as \
             127.0.0.1:8080 or 0.0.0.0:8080 (host names are not resolved)"
        ))
    })
}

/// A whole number of MiB, also as text (`GATEHOUSE_SERVER__CACHE_MB=32` overrides with a string).
fn mebibytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let found = match toml::Value::deserialize(deserializer)? {
        toml::Value::Integer(n) => u64::try_from(n).ok(),
        toml::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    found.ok_or_else(|| serde::de::Error::custom("expected a whole number of MiB, such as 64"))
}

/// A whole number, also as text (`GATEHOUSE_SERVER__MAX_CONNECTIONS=8192` overrides with a
/// string).
fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let found = match toml::Value::deserialize(deserializer)? {
        toml::Value::Integer(n) => u64::try_from(n).ok(),
        toml::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    found.ok_or_else(|| serde::de::Error::custom("expected a whole number, such as 4096"))
}

/// An id written as a number or as text (`app_id = 123456`, `app_id = "${GITHUB_APP_ID}"`),
/// kept as text.
fn id_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match toml::Value::deserialize(deserializer)? {
        toml::Value::Integer(n) => Ok(Some(n.to_string())),
        toml::Value::String(text) => Ok(Some(text.trim().to_owned())),
        other => Err(serde::de::Error::custom(format!(
            "expected an id, as a number or a string, found {}",
            other.type_str()
        ))),
    }
}

/// An instant written as an RFC 3339 string or a TOML offset date-time.
fn rfc3339<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text = match toml::Value::deserialize(deserializer)? {
        toml::Value::String(text) => text,
        toml::Value::Datetime(datetime) => datetime.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a time like \"2027-06-30T00:00:00Z\", found {}",
                other.type_str()
            )));
        }
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|err| {
            serde::de::Error::custom(format!(
                "`{text}` is not an RFC 3339 time ({err}); write it like 2027-06-30T00:00:00Z"
            ))
        })
}
