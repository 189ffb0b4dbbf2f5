//! The `github` connector: GitHub team membership, or a repository collaborator permission,
//! as each role's value in `roles` says ([`target`]).
//!
//! **Teams.** A grant looks at the person's membership of the team
//! (`GET /orgs/{org}/teams/{team_slug}/memberships/{username}`): one already at the role or
//! above (a maintainer asked to be a member) is left as it is; otherwise
//! `PUT …/memberships/{username}` with the role. Someone not yet in the organization is
//! invited to it by that PUT, and joins the team when they accept (GitHub's `pending`). A
//! revocation removes the membership (`DELETE`), whatever its role; a person who is not a
//! member is success once the team is shown to exist (`GET /orgs/{org}/teams/{team_slug}`),
//! so a typo in `roles` cannot pass for a revocation.
//!
//! **Repositories.** A grant reads the person's permission
//! (`GET /repos/{owner}/{repo}/collaborators/{username}/permission`, which counts teams and
//! the organization's base permission): at the level or above, nothing is done; otherwise
//! `PUT /repos/{owner}/{repo}/collaborators/{username}` with the permission. GitHub adds an
//! organization member at once (204) and invites anyone else (201): access starts when they
//! accept. A revocation withdraws the person's pending invitations, found again in
//! `GET /repos/{owner}/{repo}/invitations` (nothing is recorded at grant time), then removes
//! the collaborator (`DELETE`).
//!
//! **Who.** The person's GitHub login is the `login` template's value, by default
//! `{{ accounts.github }}` (the directory's `accounts = { github = "octocat" }`). A person
//! without one is a permanent failure that says so; an unknown login too, named after a
//! look at `GET /users/{username}`.
//!
//! **Auth.** A fine-grained token, or a GitHub App whose installation token is made from an
//! RS256 JWT and kept until shortly before it expires (`auth`).
//!
//! **Errors and rate limits.** Network failures, 5xx and both rate limits are transient:
//! the primary limit (`x-ratelimit-remaining: 0`, until `x-ratelimit-reset`) and the
//! secondary one (403 or 429 with `retry-after`, or a "secondary rate limit" message with
//! neither, which GitHub says to meet with at least a minute's pause) hold every request of
//! the connector until then (`Throttle`). A success that spends the last request of the
//! primary limit holds it too. Calls of one connector run one at a time, as GitHub asks of
//! an integration to keep clear of the secondary limit. Unknown users, teams and
//! repositories, 403 and 422 are permanent, with what to fix.

mod auth;
pub mod target;

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::http_api::{self, Answer, ApiError, PersonName, Throttle};
use super::jwt::RsaKey;
use super::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome,
};
use crate::config::ConnectorConfig;
use crate::domain::ids::{ConnectorId, RoleId};
use crate::engine::{Clock, SystemClock};
use auth::{App, Auth};
use target::{Permission, Target, TeamRole};

const KIND: &str = "github";
pub const DEFAULT_API_URL: &str = "https://api.github.com";
pub const DEFAULT_LOGIN: &str = "{{ accounts.github }}";
/// The media type GitHub asks clients to accept.
const ACCEPT: &str = "application/vnd.github+json";
/// The REST API version the requests are written for.
const API_VERSION: &str = "2022-11-28";
/// GitHub: "If the retry-after response header is not present [after a secondary rate
/// limit], … wait for at least one minute before retrying."
const SECONDARY_WAIT: Duration = Duration::from_secs(60);
/// Pending invitations of a repository read at a revocation: at most this many pages of 100.
const MAX_INVITATION_PAGES: u32 = 10;

pub struct GithubConnector {
    id: ConnectorId,
    /// The REST API's root, ending in `/`.
    api: reqwest::Url,
    auth: Auth,
    login: PersonName,
    roles: BTreeMap<RoleId, Target>,
    client: reqwest::Client,
    throttle: Throttle,
    /// Held for the whole of a call: one call at a time.
    serial: tokio::sync::Mutex<()>,
    timeout: Duration,
}

impl GithubConnector {
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
        let text = config.api_url.as_deref().unwrap_or(DEFAULT_API_URL);
        let api = api_root(text).map_err(|reason| invalid("api_url", reason))?;
        if config.roles.is_empty() {
            return Err(missing(
                "roles",
                "roles = { member = \"@acme/platform\", deploy = \"acme/api:push\" }",
            ));
        }
        let mut roles = BTreeMap::new();
        for (role, value) in &config.roles {
            let target = target::parse(value)
                .map_err(|reason| invalid("roles", format!("role `{role}`: {reason}")))?;
            roles.insert(role.clone(), target);
        }
        let login = PersonName::parse(config.login.as_deref().unwrap_or(DEFAULT_LOGIN), "login")
            .map_err(|reason| invalid("login", reason))?;
        let auth = match (&config.token, &config.app_id) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "token",
                    "and app_id are both given: use a token or a GitHub App, not both".to_owned(),
                ));
            }
            (Some(token), None) => {
                if token.expose().trim().is_empty() {
                    return Err(invalid("token", "is empty".to_owned()));
                }
                Auth::Token(token.clone())
            }
            (None, Some(app_id)) => {
                let installation_id = config.installation_id.clone().ok_or_else(|| {
                    missing(
                        "installation_id",
                        "installation_id = 12345678 (the number at the end of the installation's settings URL)",
                    )
                })?;
                let key = config.private_key.as_ref().ok_or_else(|| {
                    missing(
                        "private_key",
                        "private_key_file = \"/etc/gatehouse/github-app.pem\" (a key made on the App's settings page)",
                    )
                })?;
                let key = RsaKey::from_pem(key.expose())
                    .map_err(|e| invalid("private_key", e.to_string()))?;
                let mut url = api.clone();
                url.path_segments_mut()
                    .map_err(|()| invalid("api_url", "cannot take a path".to_owned()))?
                    .pop_if_empty()
                    .extend(["app", "installations", &installation_id, "access_tokens"]);
                Auth::App(Box::new(App::new(
                    app_id.clone(),
                    installation_id,
                    key,
                    url,
                )))
            }
            (None, None) => {
                return Err(missing(
                    "token",
                    "token = \"${GITHUB_TOKEN}\" (a fine-grained token), or a GitHub App: app_id, installation_id and private_key_file",
                ));
            }
        };
        Ok(Self {
            client: http_api::client(&id)?,
            id,
            api,
            auth,
            login,
            roles,
            throttle: Throttle::default(),
            serial: tokio::sync::Mutex::new(()),
            timeout: config.timeout.to_std(),
        })
    }

    async fn run(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        http_api::run_call(
            "github",
            &self.id,
            self.timeout,
            call,
            method,
            |deadline| async move {
                match tokio::time::timeout_at(deadline, self.serial.lock()).await {
                    Ok(_turn) => self.change(call, deadline).await,
                    Err(_) => Err(ApiError::transient(
                        "the connector's earlier calls did not leave it time for this one",
                    )),
                }
            },
        )
        .await
    }

    async fn change(&self, call: &ConnectorCall, deadline: Instant) -> Result<String, ApiError> {
        let target = http_api::role_target(&self.roles, call, "team or repository")?;
        let login = match self.login.render(&call.person) {
            Ok(login) => login,
            // Undoing a failed grant for someone without a GitHub login: nothing can have
            // been given to them.
            Err(_) if call.undo => {
                return Ok(format!(
                    "nothing to undo: {} has no GitHub login",
                    call.person.id
                ));
            }
            Err(e) => return Err(e),
        };
        if !target::is_login(&login) {
            return Err(ApiError::Permanent(format!(
                "`{login}` (the login template's value for {}) is not a GitHub login; fix the person's accounts.github in the directory, or the connector's login template",
                call.person.id
            )));
        }
        let who = Who {
            login: &login,
            call,
        };
        match (target, call.action) {
            (Target::Team { org, slug, role }, Action::Grant) => {
                self.join_team(org, slug, *role, &who, deadline).await
            }
            (Target::Team { org, slug, .. }, Action::Revoke) => {
                self.leave_team(org, slug, &who, deadline).await
            }
            (
                Target::Repository {
                    owner,
                    repo,
                    permission,
                },
                Action::Grant,
            ) => {
                self.add_collaborator(owner, repo, *permission, &who, deadline)
                    .await
            }
            (Target::Repository { owner, repo, .. }, Action::Revoke) => {
                self.remove_collaborator(owner, repo, &who, deadline).await
            }
        }
    }

    async fn join_team(
        &self,
        org: &str,
        slug: &str,
        role: TeamRole,
        who: &Who<'_>,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let login = who.login;
        let team = format!("team @{org}/{slug}");
        if let Some(held) = self.membership(org, slug, login, deadline).await?
            && held.role >= role
        {
            return Ok(format!(
                "{login} was already a {} of {team} ({})",
                held.role.as_str(),
                held.state
            ));
        }
        let path = ["orgs", org, "teams", slug, "memberships", login];
        let body = json!({ "role": role.as_str() });
        let (answer, what) = self
            .request(Method::PUT, &path, &[], Some(body), deadline)
            .await?;
        match answer.status.as_u16() {
            200 => {
                let made: Membership = parse(&answer, &what)?;
                Ok(if made.state == "pending" {
                    format!(
                        "invited {login} to organization {org} as a {} of {team}: they join it when they accept the invitation",
                        role.as_str()
                    )
                } else {
                    format!("added {login} to {team} as a {}", role.as_str())
                })
            }
            404 => Err(self
                .not_found(
                    &team,
                    "the team does not exist (the slug is in the team's URL)",
                    who,
                    deadline,
                )
                .await),
            403 => Err(forbidden(&answer, &what, &self.auth, MEMBERS)),
            _ => Err(refused(&answer, &what)),
        }
    }

    async fn leave_team(
        &self,
        org: &str,
        slug: &str,
        who: &Who<'_>,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let login = who.login;
        let team = format!("team @{org}/{slug}");
        if self.membership(org, slug, login, deadline).await?.is_none() {
            if who.call.undo {
                return Ok(format!(
                    "nothing to undo: {login} is not a member of {team}"
                ));
            }
            // Not a member: of a team that exists? One that does not may be a typo in the
            // roles table, behind which the real membership stays.
            let (answer, what) = self
                .request(
                    Method::GET,
                    &["orgs", org, "teams", slug],
                    &[],
                    None,
                    deadline,
                )
                .await?;
            return match answer.status.as_u16() {
                200 => Ok(format!("{login} was not a member of {team}")),
                404 => Err(ApiError::Permanent(format!(
                    "{what} answered 404: {}; {team} (role {}) is not found, so {login}'s membership cannot be removed: fix the connector's roles table, or give {} access to the team",
                    said(&answer),
                    who.call.role,
                    self.auth.describe()
                ))),
                403 => Err(forbidden(&answer, &what, &self.auth, MEMBERS)),
                _ => Err(refused(&answer, &what)),
            };
        }
        let path = ["orgs", org, "teams", slug, "memberships", login];
        let (answer, what) = self
            .request(Method::DELETE, &path, &[], None, deadline)
            .await?;
        match answer.status.as_u16() {
            204 | 404 => Ok(format!("removed {login} from {team}")),
            403 => Err(forbidden(&answer, &what, &self.auth, MEMBERS)),
            _ => Err(refused(&answer, &what)),
        }
    }

    /// The person's membership of a team; `None` when they have none (or the team is not
    /// found: the caller tells them apart).
    async fn membership(
        &self,
        org: &str,
        slug: &str,
        login: &str,
        deadline: Instant,
    ) -> Result<Option<Held>, ApiError> {
        let path = ["orgs", org, "teams", slug, "memberships", login];
        let (answer, what) = self
            .request(Method::GET, &path, &[], None, deadline)
            .await?;
        match answer.status.as_u16() {
            200 => {
                let held: Membership = parse(&answer, &what)?;
                let role = TeamRole::parse(&held.role).ok_or_else(|| {
                    ApiError::Permanent(format!(
                        "{what} answered with role `{}`, which is neither member nor maintainer",
                        held.role
                    ))
                })?;
                Ok(Some(Held {
                    role,
                    state: held.state,
                }))
            }
            404 => Ok(None),
            403 => Err(forbidden(&answer, &what, &self.auth, MEMBERS)),
            _ => Err(refused(&answer, &what)),
        }
    }

    async fn add_collaborator(
        &self,
        owner: &str,
        repo: &str,
        permission: Permission,
        who: &Who<'_>,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let login = who.login;
        let repository = format!("repository {owner}/{repo}");
        let path = ["repos", owner, repo, "collaborators", login, "permission"];
        let (answer, what) = self
            .request(Method::GET, &path, &[], None, deadline)
            .await?;
        match answer.status.as_u16() {
            200 => {
                #[derive(Deserialize)]
                struct Level {
                    permission: String,
                    role_name: String,
                }
                let level: Level = parse(&answer, &what)?;
                // A custom role's name says nothing of its level: the base permission does.
                let held =
                    Permission::parse(&level.role_name).or(Permission::parse(&level.permission));
                if let Some(held) = held
                    && held >= permission
                {
                    return Ok(format!(
                        "{login} already had {} on {repository}",
                        held.as_str()
                    ));
                }
            }
            404 => {
                return Err(self
                    .not_found(&repository, "the repository does not exist", who, deadline)
                    .await);
            }
            403 => return Err(forbidden(&answer, &what, &self.auth, ADMINISTRATION)),
            _ => return Err(refused(&answer, &what)),
        }
        let path = ["repos", owner, repo, "collaborators", login];
        let body = json!({ "permission": permission.as_str() });
        let (answer, what) = self
            .request(Method::PUT, &path, &[], Some(body), deadline)
            .await?;
        match answer.status.as_u16() {
            201 => Ok(format!(
                "invited {login} to {repository} with {}: access starts when they accept the invitation",
                permission.as_str()
            )),
            204 => Ok(format!(
                "gave {login} {} on {repository}",
                permission.as_str()
            )),
            404 => Err(self
                .not_found(&repository, "the repository does not exist", who, deadline)
                .await),
            403 => Err(forbidden(&answer, &what, &self.auth, ADMINISTRATION)),
            _ => Err(refused(&answer, &what)),
        }
    }

    async fn remove_collaborator(
        &self,
        owner: &str,
        repo: &str,
        who: &Who<'_>,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        let login = who.login;
        let repository = format!("repository {owner}/{repo}");
        // The invitations first: one accepted after the revocation would give access back.
        // Reading them also shows the repository exists.
        let mut withdrawn = 0;
        for page in 1..=MAX_INVITATION_PAGES {
            let query = [("per_page", "100".to_owned()), ("page", page.to_string())];
            let (answer, what) = self
                .request(
                    Method::GET,
                    &["repos", owner, repo, "invitations"],
                    &query,
                    None,
                    deadline,
                )
                .await?;
            match answer.status.as_u16() {
                200 => {}
                404 if who.call.undo => {
                    return Ok(format!("nothing to undo: {repository} is not found"));
                }
                404 => {
                    return Err(ApiError::Permanent(format!(
                        "{what} answered 404: {}; {repository} (role {}) is not found, so {login}'s access cannot be removed: fix the connector's roles table, or give {} access to the repository",
                        said(&answer),
                        who.call.role,
                        self.auth.describe()
                    )));
                }
                403 => return Err(forbidden(&answer, &what, &self.auth, ADMINISTRATION)),
                _ => return Err(refused(&answer, &what)),
            }
            #[derive(Deserialize)]
            struct Invitation {
                id: u64,
                invitee: Option<Invitee>,
            }
            #[derive(Deserialize)]
            struct Invitee {
                login: String,
            }
            let invitations: Vec<Invitation> = parse(&answer, &what)?;
            for invitation in &invitations {
                if invitation
                    .invitee
                    .as_ref()
                    .is_some_and(|i| i.login.eq_ignore_ascii_case(login))
                {
                    let id = invitation.id.to_string();
                    let path = ["repos", owner, repo, "invitations", &id];
                    let (answer, what) = self
                        .request(Method::DELETE, &path, &[], None, deadline)
                        .await?;
                    match answer.status.as_u16() {
                        204 | 404 => withdrawn += 1,
                        403 => return Err(forbidden(&answer, &what, &self.auth, ADMINISTRATION)),
                        _ => return Err(refused(&answer, &what)),
                    }
                }
            }
            if invitations.len() < 100 {
                break;
            }
        }
        let path = ["repos", owner, repo, "collaborators", login];
        let (answer, what) = self
            .request(Method::DELETE, &path, &[], None, deadline)
            .await?;
        let invitations = match withdrawn {
            0 => String::new(),
            1 => " and withdrew their invitation".to_owned(),
            n => format!(" and withdrew their {n} invitations"),
        };
        match answer.status.as_u16() {
            204 | 404 => Ok(format!(
                "removed {login} as a collaborator of {repository}{invitations}"
            )),
            403 => Err(forbidden(&answer, &what, &self.auth, ADMINISTRATION)),
            _ => Err(refused(&answer, &what)),
        }
    }

    /// What a 404 on `thing` meant: GitHub has no user of the login, or `thing` is not
    /// found (`cause`, or the connector may not see it).
    async fn not_found(
        &self,
        thing: &str,
        cause: &str,
        who: &Who<'_>,
        deadline: Instant,
    ) -> ApiError {
        let login = who.login;
        let looked = self
            .request(Method::GET, &["users", login], &[], None, deadline)
            .await;
        match looked {
            Ok((answer, _)) if answer.status == StatusCode::NOT_FOUND => {
                ApiError::Permanent(format!(
                    "GitHub has no user `{login}` (the GitHub login of {}, for the {} of {}); fix their accounts.github in the directory, or the connector's login template",
                    who.call.person.id, who.call.action, who.call.grant
                ))
            }
            Ok((answer, what)) if !answer.status.is_success() => refused(&answer, &what),
            Err(error) => error,
            Ok(_) => ApiError::Permanent(format!(
                "{thing} (role {}) is not found: {cause}, or {} cannot see it; fix the connector's roles table, or grant the access docs/connectors/github.md lists",
                who.call.role,
                self.auth.describe()
            )),
        }
    }

    /// Sends one request of the REST API (`segments` after the root, each percent-encoded)
    /// with the connector's credentials, and returns any answer but a credential GitHub
    /// refuses (401) or a rate limit, which are errors here; with what was asked, for
    /// messages.
    async fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
        deadline: Instant,
    ) -> Result<(Answer, String), ApiError> {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .map_err(|()| ApiError::Permanent("the api_url cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        let what = format!("GitHub {method} {}", url.path());
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let token = self
            .auth
            .token(&self.client, &self.throttle, deadline)
            .await?;
        let mut request = self
            .client
            .request(method, url)
            .header("accept", ACCEPT)
            .header("x-github-api-version", API_VERSION)
            .bearer_auth(token.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = http_api::send(request, &self.throttle, deadline, &what).await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            let said = said(&answer);
            return Err(if self.auth.forget().await {
                ApiError::transient(format!(
                    "{what} answered 401: {said}; GitHub refused the installation token, and the next try makes a new one"
                ))
            } else {
                ApiError::Permanent(format!(
                    "{what} answered 401: {said}; GitHub does not accept the connector's token (wrong, expired or revoked): make a new one as docs/connectors/github.md says"
                ))
            });
        }
        if let Some(limited) = throttled(&answer, &what, &self.throttle) {
            return Err(limited);
        }
        // The last request of the primary limit: hold the next ones until it resets.
        if answer.status.is_success()
            && let Some(wait) = http_api::retry_after(&answer.headers, SystemClock.now())
        {
            self.throttle.hold(wait);
        }
        Ok((answer, what))
    }
}

impl Connector for GithubConnector {
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

/// The person a call is for, with their login.
struct Who<'a> {
    login: &'a str,
    call: &'a ConnectorCall,
}

/// A team membership as GitHub answers it.
#[derive(Deserialize)]
struct Membership {
    role: String,
    /// `active` or `pending` (invited to the organization, not yet accepted).
    state: String,
}

struct Held {
    role: TeamRole,
    state: String,
}

/// The permission a 403 on a team call most likely lacks.
const MEMBERS: &str = "the organization permission \"Members: read and write\" (a GitHub App or fine-grained token), or be an organization owner or the team's maintainer (a classic token with admin:org)";
/// The permission a 403 on a repository call most likely lacks.
const ADMINISTRATION: &str = "the repository permission \"Administration: read and write\" on the repository (a GitHub App or fine-grained token), or be an admin of it";

/// The REST API's root from `api_url`, ending in `/`; the error completes "api_url …".
pub fn api_root(text: &str) -> Result<reqwest::Url, String> {
    let mut url =
        reqwest::Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("`{text}` is not an http:// or https:// URL"));
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{text}` has a query or credentials; give the API's root only, such as https://github.example.com/api/v3"
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The JSON of a successful answer, as `T`.
fn parse<T: serde::de::DeserializeOwned>(answer: &Answer, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(&answer.body).map_err(|e| {
        ApiError::Permanent(format!(
            "{what} answered {} with something unexpected: {e}",
            answer.status.as_u16()
        ))
    })
}

/// What GitHub said: the `message` of its error body, or the start of the body.
fn said(answer: &Answer) -> String {
    #[derive(Deserialize)]
    struct Error {
        message: String,
    }
    match serde_json::from_slice::<Error>(&answer.body) {
        Ok(error) => error.message,
        Err(_) if answer.body.is_empty() => format!("HTTP {}", answer.status),
        Err(_) => answer.excerpt(),
    }
}

/// A rate limit, primary or secondary, as a transient failure that holds `throttle` for the
/// wait GitHub asked (at least a minute for a secondary limit that names none); `None` for
/// any other answer.
fn throttled(answer: &Answer, what: &str, throttle: &Throttle) -> Option<ApiError> {
    let status = answer.status.as_u16();
    if status != 403 && status != 429 {
        return None;
    }
    let said = said(answer);
    let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok());
    let primary = header("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
    let secondary = header("retry-after").is_some()
        || said.to_ascii_lowercase().contains("secondary rate limit");
    if !(primary || secondary || status == 429) {
        return None;
    }
    let wait = http_api::retry_after(&answer.headers, SystemClock.now()).unwrap_or(SECONDARY_WAIT);
    throttle.hold(wait);
    let limit = if primary && !secondary {
        "GitHub's rate limit for the connector is spent until it resets"
    } else {
        "GitHub's secondary rate limit"
    };
    Some(ApiError::Transient {
        message: format!("{what} answered {status}: {said}; {limit}"),
        retry_after: Some(wait),
    })
}

/// A 403 that is not a rate limit: the connector lacks `needs`.
fn forbidden(answer: &Answer, what: &str, auth: &Auth, needs: &str) -> ApiError {
    ApiError::Permanent(format!(
        "{what} answered 403: {}; {} needs {needs}",
        said(answer),
        auth.describe()
    ))
}

/// Any other answer: transient for 408, 429 and 5xx, permanent otherwise.
fn refused(answer: &Answer, what: &str) -> ApiError {
    let message = format!(
        "{what} answered {}: {}",
        answer.status.as_u16(),
        said(answer)
    );
    if http_api::transient_status(answer.status) {
        ApiError::Transient {
            message,
            retry_after: http_api::retry_after(&answer.headers, SystemClock.now()),
        }
    } else {
        ApiError::Permanent(message)
    }
}

#[cfg(test)]
mod tests;
