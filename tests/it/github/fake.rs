//! A fake of GitHub's REST API for the `github` connector: the shared validating fake
//! (tests/it/openapi) with GitHub's own description (tests/fixtures/github, extracted from
//! @octokit/openapi), so every request the connector sends and every answer given to it is
//! checked against what GitHub publishes. Behind it, the state of one GitHub: users, an
//! organization's members, teams with their memberships, repositories with collaborators
//! and invitations, and the tokens it accepts.
//!
//! It authenticates as GitHub does: an installation token is made only for a JWT signed by
//! the App's key (verified with its public half) whose claims GitHub accepts; every other
//! request needs a token it issued or was given, in `Authorization: Bearer`, and the REST
//! API version header the connector writes for.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, Utc};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::openapi::Spec;
use crate::openapi::fake::{Call, Reply, ValidatingFake, Vendor};

pub const ORG: &str = "acme";
pub const APP_ID: &str = "123456";
pub const INSTALLATION: &str = "7654321";
/// The fine-grained token the fake accepts from the start.
pub const TOKEN: &str = "github_pat_11AAAAAAA0gatehouse_test";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// The vendored part of GitHub's description.
pub fn spec_json() -> Value {
    let path = fixture("tests/fixtures/github/api.github.com.subset.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The App's private key (PEM, PKCS#1 as GitHub hands them out).
pub fn app_key_pem() -> String {
    std::fs::read_to_string(fixture("tests/fixtures/keys/rsa-test.pkcs1.pem")).unwrap()
}

#[derive(Default)]
pub struct State {
    pub users: BTreeSet<String>,
    pub org_members: BTreeSet<String>,
    /// Team slug → login → (role, state).
    pub teams: BTreeMap<String, BTreeMap<String, (String, String)>>,
    /// `owner/repo` → its collaborators and invitations.
    pub repos: BTreeMap<String, Repo>,
    /// Tokens accepted on REST calls.
    pub tokens: BTreeSet<String>,
    /// Installation tokens made so far.
    pub installation_tokens: u32,
    /// How long an installation token lives.
    pub token_lifetime: TimeDelta,
    /// Answers given, in turn, to the next requests instead of the real ones: throttling,
    /// outages.
    pub faults: VecDeque<Reply>,
    next_id: u64,
}

#[derive(Default)]
pub struct Repo {
    /// login → permission (`pull` … `admin`).
    pub collaborators: BTreeMap<String, String>,
    /// id → (invitee, permission).
    pub invitations: BTreeMap<u64, (String, String)>,
}

pub struct GitHub {
    state: Mutex<State>,
    examples: Value,
    public_key: Vec<u8>,
}

impl GitHub {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `login`'s role in `team`, when a member (active or pending).
    pub fn team_role(&self, team: &str, login: &str) -> Option<String> {
        self.state()
            .teams
            .get(team)?
            .get(login)
            .map(|(r, _)| r.clone())
    }

    pub fn collaborator(&self, repo: &str, login: &str) -> Option<String> {
        self.state()
            .repos
            .get(repo)?
            .collaborators
            .get(login)
            .cloned()
    }

    pub fn invitations_for(&self, repo: &str, login: &str) -> usize {
        self.state().repos.get(repo).map_or(0, |r| {
            r.invitations.values().filter(|(l, _)| l == login).count()
        })
    }

    fn example(&self, name: &str) -> Value {
        self.examples[name]["value"].clone()
    }

    fn user(&self, login: &str) -> Value {
        let mut user = self.example("public-user-default-response");
        user["login"] = json!(login);
        user["url"] = json!(format!("https://api.github.com/users/{login}"));
        user
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "documentation_url": "https://docs.github.com/rest" }),
        )
    }

    /// A JWT the App's key signed, with claims GitHub takes: `None` when it is not.
    fn app_jwt_problem(&self, authorization: Option<&str>) -> Option<String> {
        let Some(jwt) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
            return Some("no bearer JWT".into());
        };
        let parts: Vec<&str> = jwt.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Some("not a JWT".into());
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
        let signed = format!("{header}.{claims}");
        if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.public_key)
            .verify(signed.as_bytes(), &signature)
            .is_err()
        {
            return Some("the signature is not the App's".into());
        }
        let decode = |part: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default())
                .unwrap_or(Value::Null)
        };
        let (header, claims) = (decode(header), decode(claims));
        let now = Utc::now().timestamp();
        let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
        if header["alg"] != "RS256" {
            Some(format!("alg {}", header["alg"]))
        } else if claims["iss"] != APP_ID {
            Some(format!("iss {} is not the App", claims["iss"]))
        } else if iat.is_none_or(|iat| iat > now) {
            Some("iat is missing or in the future".into())
        } else if exp.is_none_or(|exp| exp <= now || exp - iat.unwrap() > 600) {
            // "The expiration time … no more than 10 minutes into the future."
            Some("exp is past or more than 10 minutes after iat".into())
        } else {
            None
        }
    }

    fn installation_token(&self, call: &Call<'_>) -> Reply {
        let authorization = call
            .request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if let Some(problem) = self.app_jwt_problem(authorization) {
            return Self::error(
                401,
                &format!("A JSON web token could not be decoded ({problem})"),
            )
            .undocumented();
        }
        if call.operation.path["installation_id"] != INSTALLATION {
            return Self::error(404, "Not Found");
        }
        let mut state = self.state();
        state.installation_tokens += 1;
        let token = format!("ghs_installation{:04}", state.installation_tokens);
        state.tokens.insert(token.clone());
        let mut answer = self.example("installation-token");
        answer["token"] = json!(token);
        answer["expires_at"] = json!(
            (Utc::now() + state.token_lifetime).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        Reply::json(201, answer)
    }
}

impl Vendor for GitHub {
    fn answer(&self, call: &Call<'_>) -> Reply {
        let header = |name: &str| {
            call.request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if header("x-github-api-version").as_deref() != Some("2022-11-28") {
            return Self::error(400, "Unsupported API version").undocumented();
        }
        if header("accept").as_deref() != Some("application/vnd.github+json") {
            return Self::error(415, "Unsupported 'Accept' header").undocumented();
        }
        if let Some(fault) = self.state().faults.pop_front() {
            return fault;
        }
        if call.operation.id == "apps/create-installation-access-token" {
            return self.installation_token(call);
        }
        let token = header("authorization")
            .and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned))
            .unwrap_or_default();
        if !self.state().tokens.contains(&token) {
            return Self::error(401, "Bad credentials").undocumented();
        }
        let path = &call.operation.path;
        let p = |name: &str| path[name].clone();
        let not_found = || Self::error(404, "Not Found").undocumented();
        let mut state = self.state();
        match call.operation.id.as_str() {
            "users/get-by-username" => {
                if state.users.contains(&p("username")) {
                    Reply::json(200, self.user(&p("username")))
                } else {
                    Self::error(404, "Not Found")
                }
            }
            "teams/get-by-name" => {
                if p("org") == ORG && state.teams.contains_key(&p("team_slug")) {
                    let mut team = self.example("team-full");
                    team["slug"] = json!(p("team_slug"));
                    team["name"] = json!(p("team_slug"));
                    // Required by the schema, absent from GitHub's example.
                    team["type"] = json!("organization");
                    team["organization"]["archived_at"] = Value::Null;
                    Reply::json(200, team)
                } else {
                    Self::error(404, "Not Found")
                }
            }
            "teams/get-membership-for-user-in-org" => {
                let held = (p("org") == ORG)
                    .then(|| state.teams.get(&p("team_slug"))?.get(&p("username")))
                    .flatten();
                match held {
                    Some((role, membership)) => Reply::json(
                        200,
                        json!({
                            "url": format!("https://api.github.com/teams/1/memberships/{}", p("username")),
                            "role": role,
                            "state": membership,
                        }),
                    ),
                    None => Reply::empty(404),
                }
            }
            "teams/add-or-update-membership-for-user-in-org" => {
                let body: Value = serde_json::from_slice(call.request.body).unwrap_or_default();
                let role = body["role"].as_str().unwrap_or("member").to_owned();
                let login = p("username");
                if p("org") != ORG
                    || !state.teams.contains_key(&p("team_slug"))
                    || !state.users.contains(&login)
                {
                    return not_found();
                }
                let membership = if state.org_members.contains(&login) {
                    "active"
                } else {
                    "pending"
                };
                state
                    .teams
                    .get_mut(&p("team_slug"))
                    .unwrap()
                    .insert(login.clone(), (role.clone(), membership.to_owned()));
                Reply::json(
                    200,
                    json!({
                        "url": format!("https://api.github.com/teams/1/memberships/{login}"),
                        "role": role,
                        "state": membership,
                    }),
                )
            }
            "teams/remove-membership-for-user-in-org" => {
                let removed = (p("org") == ORG)
                    .then(|| state.teams.get_mut(&p("team_slug"))?.remove(&p("username")))
                    .flatten();
                match removed {
                    Some(_) => Reply::empty(204),
                    None => not_found(),
                }
            }
            "repos/get-collaborator-permission-level" => {
                let full = format!("{}/{}", p("owner"), p("repo"));
                let login = p("username");
                let Some(repo) = state.repos.get(&full) else {
                    return Self::error(404, "Not Found");
                };
                if !state.users.contains(&login) {
                    return Self::error(404, "Not Found");
                }
                let permission = repo.collaborators.get(&login).cloned();
                let (permission, role_name) = match permission.as_deref() {
                    None => ("none", "none".to_owned()),
                    Some("pull") => ("read", "read".to_owned()),
                    Some("triage") => ("read", "triage".to_owned()),
                    Some("push") => ("write", "write".to_owned()),
                    Some("maintain") => ("write", "maintain".to_owned()),
                    Some(other) => ("admin", other.to_owned()),
                };
                let mut answer = self.example(
                    "repository-collaborator-permission-response-if-user-has-admin-permissions",
                );
                answer["permission"] = json!(permission);
                answer["role_name"] = json!(role_name);
                answer["user"]["login"] = json!(login);
                // Required by the schema, absent from GitHub's example.
                answer["user"]["role_name"] = json!(role_name);
                Reply::json(200, answer)
            }
            "repos/add-collaborator" => {
                let full = format!("{}/{}", p("owner"), p("repo"));
                let login = p("username");
                let body: Value = serde_json::from_slice(call.request.body).unwrap_or_default();
                let permission = body["permission"].as_str().unwrap_or("push").to_owned();
                if !state.users.contains(&login) || !state.repos.contains_key(&full) {
                    return not_found();
                }
                let member = state.org_members.contains(&login);
                state.next_id += 1;
                let id = state.next_id;
                let repo = state.repos.get_mut(&full).unwrap();
                if member || repo.collaborators.contains_key(&login) {
                    repo.collaborators.insert(login, permission);
                    return Reply::empty(204);
                }
                repo.invitations.retain(|_, (invitee, _)| *invitee != login);
                repo.invitations
                    .insert(id, (login.clone(), permission.clone()));
                Reply::json(201, self.invitation(id, &full, &login, &permission))
            }
            "repos/remove-collaborator" => {
                let full = format!("{}/{}", p("owner"), p("repo"));
                match state.repos.get_mut(&full) {
                    Some(repo) => {
                        repo.collaborators.remove(&p("username"));
                        Reply::empty(204)
                    }
                    None => not_found(),
                }
            }
            "repos/list-invitations" => {
                let full = format!("{}/{}", p("owner"), p("repo"));
                let Some(repo) = state.repos.get(&full) else {
                    return not_found();
                };
                let query: BTreeMap<&str, &str> = call
                    .request
                    .query
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let per_page: usize = query.get("per_page").map_or(30, |v| v.parse().unwrap());
                let page: usize = query.get("page").map_or(1, |v| v.parse().unwrap());
                let all: Vec<Value> = repo
                    .invitations
                    .iter()
                    .map(|(id, (login, permission))| self.invitation(*id, &full, login, permission))
                    .collect();
                let shown: Vec<Value> = all
                    .into_iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .collect();
                Reply::json(200, Value::Array(shown))
            }
            "repos/delete-invitation" => {
                let full = format!("{}/{}", p("owner"), p("repo"));
                let id: u64 = p("invitation_id").parse().unwrap();
                let removed = state
                    .repos
                    .get_mut(&full)
                    .and_then(|repo| repo.invitations.remove(&id));
                match removed {
                    Some(_) => Reply::empty(204),
                    None => not_found(),
                }
            }
            other => panic!("the fake does not answer {other}"),
        }
    }

    fn refuse(&self, status: u16, message: &str) -> Reply {
        Self::error(status, message).undocumented()
    }
}

impl GitHub {
    fn invitation(&self, id: u64, full: &str, login: &str, permission: &str) -> Value {
        let mut invitation =
            self.example("repository-invitation-response-when-a-new-invitation-is-created");
        invitation["id"] = json!(id);
        invitation["invitee"] = self.user(login);
        invitation["repository"]["full_name"] = json!(full);
        invitation["permissions"] = json!(match permission {
            "pull" => "read",
            "push" => "write",
            other => other,
        });
        invitation
    }
}

/// A running fake GitHub: users `alice-gh` (a member of organization `acme`) and `bob-gh`
/// (not one), teams `platform` and `oncall`, repositories `acme/api` and `acme/web`.
pub struct FakeGitHub {
    pub github: Arc<GitHub>,
    pub server: ValidatingFake,
}

impl FakeGitHub {
    pub async fn start() -> FakeGitHub {
        let spec = spec_json();
        let key = gatehouse::connector::jwt::RsaKey::from_pem(&app_key_pem()).unwrap();
        let mut state = State {
            token_lifetime: TimeDelta::hours(1),
            ..State::default()
        };
        state
            .users
            .extend(["alice-gh".to_owned(), "bob-gh".to_owned()]);
        state.org_members.insert("alice-gh".to_owned());
        for team in ["platform", "oncall"] {
            state.teams.insert(team.to_owned(), BTreeMap::new());
        }
        for repo in ["acme/api", "acme/web"] {
            state.repos.insert(repo.to_owned(), Repo::default());
        }
        state.tokens.insert(TOKEN.to_owned());
        let github = Arc::new(GitHub {
            state: Mutex::new(state),
            examples: spec["components"]["examples"].clone(),
            public_key: key.public_key_der().to_vec(),
        });
        let server = ValidatingFake::start(Spec::new(spec), github.clone()).await;
        FakeGitHub { github, server }
    }

    /// Operation ids of the requests so far, in order.
    pub fn operations(&self) -> Vec<String> {
        self.server
            .calls()
            .into_iter()
            .map(|c| c.operation)
            .collect()
    }
}
