//! The standard AWS credential chain, as the AWS CLI and SDKs walk it, first match wins:
//!
//! 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! 2. the shared files (`~/.aws/credentials`, `~/.aws/config`, or `AWS_SHARED_CREDENTIALS_FILE`
//!    and `AWS_CONFIG_FILE`), profile `AWS_PROFILE` or `default`: static keys, a web identity
//!    (`role_arn` + `web_identity_token_file`) or a role assumed with another profile's keys
//!    (`role_arn` + `source_profile`);
//! 3. web identity from the environment (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, as
//!    EKS IRSA sets them), exchanged at STS with `AssumeRoleWithWebIdentity`;
//! 4. the ECS (or EKS Pod Identity) container endpoint, `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
//!    or `AWS_CONTAINER_CREDENTIALS_FULL_URI` with its authorization token;
//! 5. the EC2 instance metadata service, IMDSv2 only (a session token first), unless
//!    `AWS_EC2_METADATA_DISABLED=true`; `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it.
//!
//! A connector with `profile = "…"` reads that profile of the shared files and nothing else.
//! Credentials that expire are kept until five minutes before they do; any credentials are
//! dropped when AWS refuses them ([`CredentialChain::forget`]), so the next call reads again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::engine::{Clock, SystemClock};
use serde::Deserialize;
use tokio::time::Instant;

use super::super::http_api::{self, ApiError, Throttle};
use crate::config::Secret;

/// Refresh this long before expiry, so that no request is signed with credentials that
/// run out on the way.
const REFRESH_BEFORE: TimeDelta = TimeDelta::minutes(5);
/// How long one step at the metadata service may take: off EC2 nothing answers there.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);
const IMDS_ENDPOINT: &str = "http://169.254.169.254";
const ECS_ENDPOINT: &str = "http://169.254.170.2";
/// Where a full container-credentials URI may point over plain HTTP: loopback, the ECS
/// agent and EKS Pod Identity. Anything else must be https, so a token is never sent in
/// clear to a stranger.
const CONTAINER_HOSTS: [&str; 3] = ["169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"];
/// Profiles that name each other (`source_profile`) are followed at most this deep.
const MAX_SOURCE_PROFILES: usize = 4;

/// The environment variables the chain reads, taken once (tests give their own).
#[derive(Clone, Debug, Default)]
pub struct AwsEnv {
    vars: BTreeMap<String, String>,
}

/// The variables [`AwsEnv::process`] takes.
const VARIABLES: [&str; 17] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_ENDPOINT_URL_STS",
    "HOME",
];

impl AwsEnv {
    /// This process's environment.
    pub fn process() -> Self {
        Self::from_pairs(
            VARIABLES
                .iter()
                .filter_map(|name| std::env::var(name).ok().map(|value| (*name, value))),
        )
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        }
    }

    /// A variable that is set and not blank.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn home_file(&self, variable: &str, default: &str) -> Option<PathBuf> {
        match self.var(variable) {
            Some(path) => Some(expand_home(path, self.var("HOME"))),
            None => self.var("HOME").map(|home| Path::new(home).join(default)),
        }
    }
}

fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// AWS credentials; the secret parts are never shown.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// When they stop working; `None` for long-term keys.
    pub expires: Option<DateTime<Utc>>,
    /// Where they came from, for messages: "the environment", "profile `ops`", ….
    pub source: String,
}

impl Credentials {
    fn fresh(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|at| at - REFRESH_BEFORE > now)
    }
}

/// Where AWS's STS is reached, and how (the connector's region, and its endpoint override).
#[derive(Clone, Debug)]
pub struct Sts {
    pub url: reqwest::Url,
    pub region: String,
}

/// The chain, with the credentials it found last.
pub struct CredentialChain {
    env: AwsEnv,
    /// The connector's `profile`: only that profile of the shared files.
    profile: Option<String>,
    sts: Sts,
    client: reqwest::Client,
    throttle: Throttle,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl CredentialChain {
    pub fn new(env: AwsEnv, profile: Option<String>, sts: Sts, client: reqwest::Client) -> Self {
        Self {
            env,
            profile,
            sts,
            client,
            throttle: Throttle::default(),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Credentials to sign with, read again when the last ones are about to expire.
    pub async fn get(&self, deadline: Instant) -> Result<Credentials, ApiError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref()
            && credentials.fresh(SystemClock.now())
        {
            return Ok(credentials.clone());
        }
        let credentials = self.resolve(deadline).await?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }

    /// Drops the credentials in hand: AWS refused them (expired, rotated).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn resolve(&self, deadline: Instant) -> Result<Credentials, ApiError> {
        let env = &self.env;
        if let Some(profile) = &self.profile {
            return match self.profile_credentials(profile, deadline).await? {
                Some(credentials) => Ok(credentials),
                None => Err(ApiError::Permanent(format!(
                    "the connector's profile `{profile}` is in neither {}",
                    self.files_shown()
                ))),
            };
        }
        match (
            env.var("AWS_ACCESS_KEY_ID"),
            env.var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(id), Some(secret)) => {
                return Ok(Credentials {
                    access_key_id: id.to_owned(),
                    secret_access_key: Secret::new(secret),
                    session_token: env.var("AWS_SESSION_TOKEN").map(Secret::new),
                    expires: None,
                    source: "the environment (AWS_ACCESS_KEY_ID)".to_owned(),
                });
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ApiError::Permanent(
                    "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set; set both, or neither to use the rest of the chain".to_owned(),
                ));
            }
            (None, None) => {}
        }
        let named = env.var("AWS_PROFILE");
        if let Some(credentials) = self
            .profile_credentials(named.unwrap_or("default"), deadline)
            .await?
        {
            return Ok(credentials);
        }
        if let Some(profile) = named {
            return Err(ApiError::Permanent(format!(
                "AWS_PROFILE names profile `{profile}`, which is in neither {}",
                self.files_shown()
            )));
        }
        if let Some(token_file) = env.var("AWS_WEB_IDENTITY_TOKEN_FILE") {
            let role_arn = env.var("AWS_ROLE_ARN").ok_or_else(|| {
                ApiError::Permanent(
                    "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; set the role to assume".to_owned(),
                )
            })?;
            let token_file = expand_home(token_file, env.var("HOME"));
            return self
                .web_identity(
                    &token_file,
                    role_arn,
                    env.var("AWS_ROLE_SESSION_NAME"),
                    "AWS_WEB_IDENTITY_TOKEN_FILE",
                    deadline,
                )
                .await;
        }
        if let Some(url) = self.container_url()? {
            return self.container(url, deadline).await;
        }
        if env
            .var("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(no_credentials("AWS_EC2_METADATA_DISABLED is true"));
        }
        self.instance_metadata(deadline).await
    }

    fn files(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        (
            self.env
                .home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
            self.env.home_file("AWS_CONFIG_FILE", ".aws/config"),
        )
    }

    fn files_shown(&self) -> String {
        let (credentials, config) = self.files();
        let show =
            |p: Option<PathBuf>| p.map_or("(no HOME)".to_owned(), |p| p.display().to_string());
        format!("{} nor {}", show(credentials), show(config))
    }

    /// The credentials of `name` in the shared files, `None` when no file names it.
    async fn profile_credentials(
        &self,
        name: &str,
        deadline: Instant,
    ) -> Result<Option<Credentials>, ApiError> {
        let profiles = self.read_profiles()?;
        let mut name = name.to_owned();
        // A chain of profiles: each assumes a role with the keys of the one it names.
        let mut roles: Vec<(String, &BTreeMap<String, String>)> = Vec::new();
        loop {
            let Some(profile) = profiles.get(&name) else {
                if roles.is_empty() {
                    return Ok(None);
                }
                return Err(ApiError::Permanent(format!(
                    "profile `{}` names source_profile `{name}`, which is in neither {}",
                    roles.last().map_or("", |(n, _)| n.as_str()),
                    self.files_shown()
                )));
            };
            let shown = format!("profile `{name}`");
            for unsupported in [
                "credential_process",
                "sso_session",
                "sso_start_url",
                "credential_source",
                "login_session",
            ] {
                if profile.contains_key(unsupported) {
                    return Err(ApiError::Permanent(format!(
                        "{shown} uses {unsupported}, which Gatehouse does not support; give it static keys, a role_arn with web_identity_token_file or source_profile, or use the environment"
                    )));
                }
            }
            let role_arn = profile.get("role_arn");
            let base = if let Some(token_file) = profile.get("web_identity_token_file") {
                let role_arn = role_arn.ok_or_else(|| {
                    ApiError::Permanent(format!(
                        "{shown} has web_identity_token_file but no role_arn"
                    ))
                })?;
                let token_file = expand_home(token_file, self.env.var("HOME"));
                Some(
                    self.web_identity(
                        &token_file,
                        role_arn,
                        profile.get("role_session_name").map(String::as_str),
                        &shown,
                        deadline,
                    )
                    .await?,
                )
            } else if role_arn.is_some() && profile.contains_key("source_profile") {
                None
            } else {
                Some(static_keys(profile, &shown)?)
            };
            if let Some(mut credentials) = base {
                // Assume the roles from the innermost source outwards.
                while let Some((name, profile)) = roles.pop() {
                    credentials = self
                        .assume_role(&credentials, profile, &name, deadline)
                        .await?;
                }
                return Ok(Some(credentials));
            }
            if roles.len() == MAX_SOURCE_PROFILES {
                return Err(ApiError::Permanent(format!(
                    "{shown}: source_profile is followed more than {MAX_SOURCE_PROFILES} profiles deep; look for a loop"
                )));
            }
            let source = profile["source_profile"].clone();
            roles.push((name, profile));
            name = source;
        }
    }

    /// Every profile of the two files; the credentials file wins for a key both set.
    fn read_profiles(&self) -> Result<BTreeMap<String, BTreeMap<String, String>>, ApiError> {
        let (credentials, config) = self.files();
        let mut profiles = BTreeMap::new();
        for (path, is_config) in [(config, true), (credentials, false)] {
            let Some(path) = path else { continue };
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ApiError::Permanent(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )));
                }
            };
            for (name, keys) in parse_profiles(&text, is_config) {
                profiles
                    .entry(name)
                    .or_insert_with(BTreeMap::new)
                    .extend(keys);
            }
        }
        Ok(profiles)
    }

    /// `AssumeRoleWithWebIdentity` at STS with the token in `token_file` (read each time: it
    /// is rotated by whoever issues it). The request is not signed: the token is the proof.
    async fn web_identity(
        &self,
        token_file: &Path,
        role_arn: &str,
        session_name: Option<&str>,
        from: &str,
        deadline: Instant,
    ) -> Result<Credentials, ApiError> {
        let token = std::fs::read_to_string(token_file).map_err(|e| {
            ApiError::Permanent(format!(
                "cannot read the web identity token {} (from {from}): {e}",
                token_file.display()
            ))
        })?;
        let session = session_name.map_or_else(session_name_now, str::to_owned);
        let body = form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", &session),
            ("WebIdentityToken", token.trim()),
        ]);
        let request = self
            .client
            .post(self.sts.url.clone())
            .header("content-type", FORM)
            .body(body);
        let what = format!(
            "sts AssumeRoleWithWebIdentity at {}",
            http_api::shown(&self.sts.url)
        );
        let answer = http_api::send(request, &self.throttle, deadline, &what).await?;
        sts_credentials(
            &answer,
            &what,
            "AssumeRoleWithWebIdentityResult",
            format!("role {role_arn} (web identity from {from})"),
            role_arn,
        )
    }

    /// `AssumeRole` at STS, signed with `source`, for a profile with `source_profile`.
    async fn assume_role(
        &self,
        source: &Credentials,
        profile: &BTreeMap<String, String>,
        name: &str,
        deadline: Instant,
    ) -> Result<Credentials, ApiError> {
        let role_arn = &profile["role_arn"];
        let session = profile
            .get("role_session_name")
            .cloned()
            .unwrap_or_else(session_name_now);
        let mut params = vec![
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn.as_str()),
            ("RoleSessionName", session.as_str()),
        ];
        if let Some(external_id) = profile.get("external_id") {
            params.push(("ExternalId", external_id));
        }
        let mut request = self
            .client
            .post(self.sts.url.clone())
            .header("content-type", FORM)
            .body(form(&params))
            .build()
            .map_err(|e| http_api::request_failed("sts AssumeRole", e))?;
        super::signing::sign(
            &mut request,
            source,
            &self.sts.region,
            "sts",
            std::time::SystemTime::from(SystemClock.now()),
        )?;
        let what = format!("sts AssumeRole at {}", http_api::shown(&self.sts.url));
        let request = reqwest::RequestBuilder::from_parts(self.client.clone(), request);
        let answer = http_api::send(request, &self.throttle, deadline, &what).await?;
        sts_credentials(
            &answer,
            &what,
            "AssumeRoleResult",
            format!("role {role_arn} (profile `{name}`)"),
            role_arn,
        )
    }

    /// The container endpoint the environment names, checked.
    fn container_url(&self) -> Result<Option<reqwest::Url>, ApiError> {
        let env = &self.env;
        if let Some(relative) = env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            let url = format!("{ECS_ENDPOINT}{relative}");
            return reqwest::Url::parse(&url).map(Some).map_err(|e| {
                ApiError::Permanent(format!(
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI makes {url}, not a URL: {e}"
                ))
            });
        }
        let Some(full) = env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(full).map_err(|e| {
            ApiError::Permanent(format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI `{full}` is not a URL: {e}"
            ))
        })?;
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let allowed = url.scheme() == "https"
            || (url.scheme() == "http" && (loopback || CONTAINER_HOSTS.contains(&host)));
        if !allowed {
            return Err(ApiError::Permanent(format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI `{full}` is plain http to {host}; only https, loopback, or the ECS and EKS agents' addresses are trusted"
            )));
        }
        Ok(Some(url))
    }

    /// Credentials from the ECS agent (or EKS Pod Identity): a GET with the authorization
    /// token when the environment gives one.
    async fn container(
        &self,
        url: reqwest::Url,
        deadline: Instant,
    ) -> Result<Credentials, ApiError> {
        let env = &self.env;
        let token = match env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| {
                        ApiError::Permanent(format!(
                            "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {file}: {e}"
                        ))
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => env
                .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                .map(str::to_owned),
        };
        let mut request = self
            .client
            .get(url.clone())
            .header("accept", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let what = format!(
            "the container credentials endpoint {}",
            http_api::shown(&url)
        );
        let deadline = deadline.min(Instant::now() + METADATA_TIMEOUT);
        let answer = http_api::send(request, &self.throttle, deadline, &what).await?;
        if !answer.status.is_success() {
            return Err(http_api::status_error(&answer, &what));
        }
        json_credentials(&answer, &what, "the container credentials endpoint")
    }

    /// IMDSv2: a session token (PUT), the instance profile's role name, its credentials.
    async fn instance_metadata(&self, deadline: Instant) -> Result<Credentials, ApiError> {
        let endpoint = self
            .env
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or(IMDS_ENDPOINT)
            .trim_end_matches('/')
            .to_owned();
        let what = format!("the EC2 instance metadata service at {endpoint}");
        let unreachable = |error: ApiError| match error {
            ApiError::Transient { message, .. } => ApiError::transient(format!(
                "no AWS credentials: none in the environment or the shared files, and {message} (is this an EC2 instance? see docs/connectors/aws-sso.md, \"Credentials\")"
            )),
            permanent => permanent,
        };
        let deadline = deadline.min(Instant::now() + 3 * METADATA_TIMEOUT);
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{endpoint}{path}")).map_err(|e| {
                ApiError::Permanent(format!(
                    "AWS_EC2_METADATA_SERVICE_ENDPOINT `{endpoint}` does not make a URL: {e}"
                ))
            })
        };
        let token_request = self
            .client
            .put(url("/latest/api/token")?)
            .header("x-aws-ec2-metadata-token-ttl-seconds", "21600");
        let answer = http_api::send(token_request, &self.throttle, deadline, &what)
            .await
            .map_err(unreachable)?;
        if !answer.status.is_success() {
            return Err(unreachable(http_api::status_error(&answer, &what)));
        }
        let token = String::from_utf8_lossy(&answer.body).trim().to_owned();
        let get = |path: &str| -> Result<reqwest::RequestBuilder, ApiError> {
            Ok(self
                .client
                .get(url(path)?)
                .header("x-aws-ec2-metadata-token", &token))
        };
        let base = "/latest/meta-data/iam/security-credentials/";
        let answer = http_api::send(get(base)?, &self.throttle, deadline, &what).await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            return Err(ApiError::Permanent(format!(
                "no AWS credentials: this EC2 instance has no instance profile ({what} has no role); attach one, or give credentials another way"
            )));
        }
        if !answer.status.is_success() {
            return Err(http_api::status_error(&answer, &what));
        }
        let role = String::from_utf8_lossy(&answer.body)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let answer = http_api::send(
            get(&format!("{base}{role}"))?,
            &self.throttle,
            deadline,
            &what,
        )
        .await?;
        if !answer.status.is_success() {
            return Err(http_api::status_error(&answer, &what));
        }
        json_credentials(
            &answer,
            &what,
            &format!("the EC2 instance profile role `{role}`"),
        )
    }
}

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

fn no_credentials(why: &str) -> ApiError {
    ApiError::Permanent(format!(
        "no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), the shared files, a web identity (AWS_WEB_IDENTITY_TOKEN_FILE) or a container endpoint, and {why}; see docs/connectors/aws-sso.md, \"Credentials\""
    ))
}

fn session_name_now() -> String {
    format!("gatehouse-{}", SystemClock.now().timestamp())
}

fn form(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn static_keys(profile: &BTreeMap<String, String>, shown: &str) -> Result<Credentials, ApiError> {
    match (
        profile.get("aws_access_key_id"),
        profile.get("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id.clone(),
            secret_access_key: Secret::new(secret.clone()),
            session_token: profile.get("aws_session_token").map(Secret::new),
            expires: None,
            source: shown.to_owned(),
        }),
        _ => Err(ApiError::Permanent(format!(
            "{shown} has no credentials: give it aws_access_key_id and aws_secret_access_key, or role_arn with web_identity_token_file or source_profile"
        ))),
    }
}

/// Profiles of a shared credentials (`[name]`) or config (`[profile name]`, `[default]`)
/// file: `key = value` lines; comments start with `#` or `;`; indented lines belong to a
/// nested setting (`s3 =`) and are skipped.
pub fn parse_profiles(text: &str, is_config: bool) -> Vec<(String, BTreeMap<String, String>)> {
    let mut profiles: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(section) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let section = section.trim();
            let name = if is_config {
                match section.strip_prefix("profile ") {
                    Some(name) => Some(name.trim()),
                    None if section == "default" => Some("default"),
                    None => None, // [sso-session …], [services …]
                }
            } else {
                Some(section)
            };
            current = name.map(|name| {
                profiles.push((name.to_owned(), BTreeMap::new()));
                profiles.len() - 1
            });
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let (Some(index), Some((key, value))) = (current, trimmed.split_once('=')) {
            profiles[index]
                .1
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    profiles
}

/// The credentials in an STS answer (XML), or the error it holds.
fn sts_credentials(
    answer: &http_api::Answer,
    what: &str,
    result: &str,
    source: String,
    role_arn: &str,
) -> Result<Credentials, ApiError> {
    let xml = String::from_utf8_lossy(&answer.body);
    if !answer.status.is_success() {
        let code = xml_text(&xml, "Code").unwrap_or_default();
        let message = xml_text(&xml, "Message").unwrap_or_else(|| answer.excerpt());
        let text = format!("{what} answered {code}: {message}");
        return Err(
            if http_api::transient_status(answer.status)
                || matches!(
                    code.as_str(),
                    "Throttling" | "IDPCommunicationError" | "ServiceUnavailable"
                )
            {
                ApiError::transient(text)
            } else {
                ApiError::Permanent(format!(
                    "{text}; check that role {role_arn} exists and trusts this identity"
                ))
            },
        );
    }
    let inside = xml_text(&xml, result)
        .and_then(|r| xml_text(&r, "Credentials").map(|c| c.to_owned()))
        .ok_or_else(|| ApiError::Permanent(format!("{what} answered without credentials")))?;
    let field = |name: &str| {
        xml_text(&inside, name)
            .ok_or_else(|| ApiError::Permanent(format!("{what} answered without {name}")))
    };
    Ok(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: Some(Secret::new(field("SessionToken")?)),
        expires: Some(parse_expiration(&field("Expiration")?, what)?),
        source,
    })
}

/// The text of the first `<tag>…</tag>` in `xml`, entities decoded. STS answers are small
/// and flat enough that this is all the XML reading they need.
pub(super) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
            .trim()
            .to_owned(),
    )
}

/// The credentials JSON of the container endpoint and the instance metadata service.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonCredentials {
    code: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<Secret>,
    token: Option<Secret>,
    expiration: Option<String>,
}

fn json_credentials(
    answer: &http_api::Answer,
    what: &str,
    source: &str,
) -> Result<Credentials, ApiError> {
    let parsed: JsonCredentials = serde_json::from_slice(&answer.body)
        .map_err(|e| ApiError::Permanent(format!("{what} answered with no credentials: {e}")))?;
    if let Some(code) = parsed.code.filter(|c| c != "Success") {
        return Err(ApiError::transient(format!("{what} answered Code {code}")));
    }
    let (Some(access_key_id), Some(secret_access_key)) =
        (parsed.access_key_id, parsed.secret_access_key)
    else {
        return Err(ApiError::Permanent(format!(
            "{what} answered without AccessKeyId and SecretAccessKey"
        )));
    };
    let expires = parsed
        .expiration
        .map(|text| parse_expiration(&text, what))
        .transpose()?;
    Ok(Credentials {
        access_key_id,
        secret_access_key,
        session_token: parsed.token,
        expires,
        source: source.to_owned(),
    })
}

fn parse_expiration(text: &str, what: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::Permanent(format!(
                "{what} answered an Expiration `{text}` that is not a time: {e}"
            ))
        })
}

#[cfg(test)]
mod tests;
