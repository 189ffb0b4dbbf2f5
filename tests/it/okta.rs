//! The `okta` connector against a fake Okta whose every request and answer is checked
//! against Okta's own Management API description (tests/fixtures/okta, through
//! tests/it/openapi.rs): a request Okta would refuse fails the test that sent it. The fake
//! keeps users and group members, checks credentials as Okta does (an API token, or a
//! service app's access token and its scopes), and signs the service app in at
//! `/oauth2/v1/token` only with a client assertion whose RS256 signature, issuer, audience
//! and lifetime are right. Every observation is made in the fake's state.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use gatehouse::config::{Config, Env};
use gatehouse::connector::jwt::RsaKey;
use gatehouse::connector::{
    Action, Connector, ConnectorCall, ConnectorError, Connectors, Outcome, PersonRef,
};
use gatehouse::domain::ids::GrantId;
use serde_json::{Value, json};

use crate::openapi::Spec;
use crate::openapi::fake::{Call, Reply, ValidatingFake, Vendor};

const ADMINS: &str = "00g1emaKYZTWRYYRRTSK";
const TOKEN: &str = "00QCjAl4MlV-WPXM0DmFKtvUBEAOBcH4N9ROmTsnbw";
const CLIENT_ID: &str = "0oa1gatehousetest697";
const KID: &str = "gatehouse-test-key";

fn spec() -> Spec {
    Spec::load(&fixture("tests/fixtures/okta/okta-management.subset.json"))
}

fn fixture(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// An Okta user, as the fake keeps it.
#[derive(Clone)]
struct User {
    id: String,
    login: String,
    email: String,
    status: &'static str,
}

impl User {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "created": "2026-01-05T09:00:00.000Z",
            "lastUpdated": "2026-01-05T09:00:00.000Z",
            "type": { "id": "oty1gatehousetest697" },
            "profile": { "login": self.login, "email": self.email,
                "firstName": "Test", "lastName": "Person" },
            "_links": { "self": { "href": format!("https://example.okta.com/api/v1/users/{}", self.id) } },
        })
    }
}

/// What the fake Okta holds.
#[derive(Default)]
struct Org {
    users: Vec<User>,
    /// Group id → member user ids.
    groups: BTreeMap<String, BTreeSet<String>>,
    /// Access tokens issued → their scopes.
    issued: BTreeMap<String, Vec<String>>,
    /// The scopes the service app was granted in Okta.
    granted: Vec<String>,
    /// `jti`s of the client assertions seen: Okta refuses one used twice.
    seen_jti: BTreeSet<String>,
    /// Answers given instead of the normal ones, per operation id (or `token`).
    scripted: BTreeMap<String, VecDeque<Reply>>,
    /// The token endpoint's URL, the audience of client assertions.
    token_url: String,
}

#[derive(Clone, Default)]
struct FakeOkta(Arc<Mutex<Org>>);

fn okta_error(status: u16, code: &str, summary: &str) -> Reply {
    Reply::json(
        status,
        json!({ "errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oae1gatehouse", "errorCauses": [] }),
    )
}

impl FakeOkta {
    fn org(&self) -> std::sync::MutexGuard<'_, Org> {
        self.0.lock().unwrap()
    }

    fn user(&self, n: u32, login: &str) -> String {
        let id = format!("00u{n:017}");
        self.org().users.push(User {
            id: id.clone(),
            login: login.to_owned(),
            email: login.to_owned(),
            status: "ACTIVE",
        });
        id
    }

    fn group(&self, id: &str) {
        self.org().groups.insert(id.to_owned(), BTreeSet::new());
    }

    fn members(&self, group: &str) -> Vec<String> {
        self.org().groups[group].iter().cloned().collect()
    }

    fn script(&self, operation: &str, reply: Reply) {
        self.org()
            .scripted
            .entry(operation.to_owned())
            .or_default()
            .push_back(reply);
    }

    fn find(&self, id_or_login: &str) -> Option<User> {
        self.org()
            .users
            .iter()
            .find(|u| u.id == id_or_login || u.login.eq_ignore_ascii_case(id_or_login))
            .cloned()
    }

    /// Okta's check of the `Authorization` header: an API token, or an access token with
    /// one of the operation's scopes.
    fn authorized(&self, call: &Call<'_>) -> Result<(), Reply> {
        let presented = call.credential.as_ref().map_or("", |c| c.value.as_str());
        if presented == format!("SSWS {TOKEN}") {
            return Ok(());
        }
        let invalid = || okta_error(401, "E0000011", "Invalid token provided").undocumented();
        let Some(bearer) = presented.strip_prefix("Bearer ") else {
            return Err(invalid());
        };
        let Some(scopes) = self.org().issued.get(bearer).cloned() else {
            return Err(invalid());
        };
        let needed = call.operation.scopes("oauth2").unwrap_or_default();
        if needed.iter().any(|s| scopes.contains(s)) {
            Ok(())
        } else {
            Err(okta_error(
                403,
                "E0000006",
                "You do not have permission to perform the requested action",
            )
            .header(
                "www-authenticate",
                format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                    needed.join(" ")
                ),
            ))
        }
    }

    /// The token endpoint: client credentials with a `private_key_jwt` assertion.
    fn token(&self, body: &[u8], violations: &mut Vec<String>) -> Reply {
        let form: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let oauth_error = |status: u16, error: &str, description: &str| {
            Reply::json(
                status,
                json!({ "error": error, "error_description": description }),
            )
        };
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            violations.push(format!(
                "token request: grant_type is not client_credentials: {form:?}"
            ));
            return oauth_error(400, "unsupported_grant_type", "grant_type");
        }
        if form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            violations.push(format!(
                "token request: no jwt-bearer client assertion: {form:?}"
            ));
            return oauth_error(401, "invalid_client", "client_assertion_type");
        }
        let assertion = form.get("client_assertion").cloned().unwrap_or_default();
        if let Err(problem) = self.check_assertion(&assertion) {
            return oauth_error(401, "invalid_client", &problem);
        }
        let asked: Vec<String> = form
            .get("scope")
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default();
        let mut org = self.org();
        let refused: Vec<&String> = asked.iter().filter(|s| !org.granted.contains(s)).collect();
        if !refused.is_empty() {
            let said = format!("The following scopes are not allowed: {refused:?}");
            return oauth_error(400, "invalid_scope", &said);
        }
        let token = format!("eyJ.access.{}", org.issued.len() + 1);
        org.issued.insert(token.clone(), asked.clone());
        Reply::json(
            200,
            json!({ "token_type": "Bearer", "expires_in": 3600,
                "access_token": token, "scope": asked.join(" ") }),
        )
    }

    /// What Okta checks of a client assertion: the signature with the app's public key,
    /// `kid`, issuer and subject, audience, lifetime, and that it is never used twice.
    fn check_assertion(&self, token: &str) -> Result<(), String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err("not a JWT".into());
        };
        let decode = |part: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
        };
        let key = RsaKey::from_pem(&std::fs::read_to_string(fixture(KEY)).unwrap()).unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public_key_der(),
        )
        .verify(
            format!("{header}.{claims}").as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .map_err(|_| "The client_assertion signature is invalid".to_owned())?;
        let (header, claims) = (decode(header), decode(claims));
        let now = Utc::now().timestamp();
        let mut org = self.org();
        let problems = [
            (header["alg"] == "RS256", "alg is not RS256"),
            (header["kid"] == KID, "kid is not the app's key"),
            (claims["iss"] == CLIENT_ID, "iss is not the client id"),
            (claims["sub"] == CLIENT_ID, "sub is not the client id"),
            (
                claims["aud"] == org.token_url.as_str(),
                "aud is not the token endpoint",
            ),
            (
                claims["exp"]
                    .as_i64()
                    .is_some_and(|exp| exp > now && exp - now <= 3600),
                "exp is not within the hour to come",
            ),
            (
                claims["jti"]
                    .as_str()
                    .is_some_and(|jti| org.seen_jti.insert(jti.to_owned())),
                "jti is missing or used before",
            ),
        ];
        match problems.iter().find(|(fine, _)| !fine) {
            Some((_, problem)) => Err(format!("The client_assertion is invalid: {problem}")),
            None => Ok(()),
        }
    }
}

const KEY: &str = "tests/fixtures/keys/rsa-test.pkcs8.pem";

impl Vendor for FakeOkta {
    fn answer(&self, call: &Call<'_>) -> Reply {
        if let Some(reply) = self
            .org()
            .scripted
            .get_mut(&call.operation.id)
            .and_then(VecDeque::pop_front)
        {
            return reply;
        }
        if let Err(refusal) = self.authorized(call) {
            return refusal;
        }
        let not_found = |what: &str| {
            okta_error(
                404,
                "E0000007",
                &format!("Not found: Resource not found: {what}"),
            )
        };
        let path = &call.operation.path;
        match call.operation.id.as_str() {
            "getUser" => match self.find(&path["id"]) {
                Some(user) => Reply::json(200, user.json()),
                None => not_found(&format!("{} (User)", path["id"])),
            },
            "listUsers" => {
                let search = call
                    .request
                    .query
                    .iter()
                    .find(|(k, _)| k == "search")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let Some(email) = search
                    .strip_prefix("profile.email eq \"")
                    .and_then(|s| s.strip_suffix('"'))
                else {
                    return okta_error(400, "E0000031", "Invalid search criteria.");
                };
                let email = email.replace("\\\"", "\"").replace("\\\\", "\\");
                let users: Vec<Value> = self
                    .org()
                    .users
                    .iter()
                    .filter(|u| u.email.eq_ignore_ascii_case(&email))
                    .map(User::json)
                    .collect();
                Reply::json(200, Value::Array(users))
            }
            "assignUserToGroup" | "unassignUserFromGroup" => {
                let (group, user) = (&path["groupId"], &path["userId"]);
                if self.find(user).is_none_or(|u| &u.id != user) {
                    return not_found(&format!("{user} (User)"));
                }
                let mut org = self.org();
                let Some(members) = org.groups.get_mut(group) else {
                    return not_found(&format!("{group} (UserGroup)"));
                };
                if call.operation.id == "assignUserToGroup" {
                    members.insert(user.clone());
                } else {
                    members.remove(user);
                }
                Reply::empty(204)
            }
            other => panic!("the fake does not serve {other}"),
        }
    }

    fn refuse(&self, status: u16, message: &str) -> Reply {
        okta_error(status, "E0000001", message)
    }

    fn outside(
        &self,
        method: &str,
        path: &str,
        request: &crate::openapi::Request<'_>,
        violations: &mut Vec<String>,
    ) -> Option<Reply> {
        if (method, path) != ("POST", "/oauth2/v1/token") {
            return None;
        }
        if let Some(reply) = self
            .org()
            .scripted
            .get_mut("token")
            .and_then(VecDeque::pop_front)
        {
            return Some(reply);
        }
        let form = request
            .headers
            .get("content-type")
            .is_some_and(|v| v == "application/x-www-form-urlencoded");
        if !form {
            violations.push("token request: not application/x-www-form-urlencoded".into());
        }
        Some(self.token(request.body, violations))
    }
}

/// A fake Okta with group [`ADMINS`] and alice (a user), on 127.0.0.1:0.
async fn okta() -> (FakeOkta, ValidatingFake) {
    let vendor = FakeOkta::default();
    vendor.group(ADMINS);
    vendor.user(1, "alice@example.com");
    vendor.org().granted = vec!["okta.users.read".into(), "okta.groups.manage".into()];
    let fake = ValidatingFake::start(spec(), Arc::new(vendor.clone())).await;
    vendor.org().token_url = format!("{}/oauth2/v1/token", fake.url);
    (vendor, fake)
}

/// The connector's table for `fake`, signing in with the API token; `extra` adds keys.
fn api_token_toml(fake: &ValidatingFake, extra: &str) -> String {
    format!(
        r#"[[connectors]]
id = "okta"
kind = "okta"
org_url = "{}"
token = "${{OKTA_API_TOKEN}}"
roles = {{ admin = "{ADMINS}" }}
{extra}"#,
        fake.url
    )
}

/// The connector's table for `fake`, signing in as a service app.
fn service_app_toml(fake: &ValidatingFake) -> String {
    format!(
        r#"[[connectors]]
id = "okta"
kind = "okta"
org_url = "{}"
client_id = "{CLIENT_ID}"
private_key_file = "{}"
key_id = "{KID}"
roles = {{ admin = "{ADMINS}" }}
"#,
        fake.url,
        fixture(KEY).display()
    )
}

/// The connector `text` configures, built as Gatehouse builds it.
fn connector(text: &str) -> Arc<dyn Connector> {
    let env = Env::from([("OKTA_API_TOKEN".to_owned(), TOKEN.to_owned())]);
    let config = Config::parse("gatehouse.toml", text, Path::new("/"), &env)
        .unwrap_or_else(|e| panic!("{e}"));
    Connectors::from_config(&config.connectors)
        .unwrap_or_else(|e| panic!("{e}"))
        .get(&"okta".into())
        .unwrap()
}

fn person(id: &str, email: Option<&str>) -> PersonRef {
    PersonRef {
        id: id.into(),
        email: email.map(str::to_owned),
        slack: None,
        discord: None,
        accounts: Default::default(),
    }
}

fn call(action: Action, person: PersonRef) -> ConnectorCall {
    ConnectorCall {
        action,
        grant: GrantId(1),
        person,
        resource: "okta-admins".into(),
        role: "admin".into(),
        expires_at: None,
        idempotency_key: format!("{action}:G-1"),
        undo: false,
    }
}

fn alice() -> PersonRef {
    person("alice", Some("alice@example.com"))
}

fn permanent(result: Result<Outcome, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Permanent(message)) => message,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn transient(result: Result<Outcome, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Transient(message)) => message,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn granting_and_revoking_twice_each_leaves_the_okta_group_as_asked() {
    let (okta, fake) = okta().await;
    let connector = connector(&api_token_toml(&fake, ""));
    let alice_id = okta.find("alice@example.com").unwrap().id;
    for _ in 0..2 {
        let done = connector
            .grant(&call(Action::Grant, alice()))
            .await
            .unwrap();
        assert!(done.detail.contains("added"), "{}", done.detail);
    }
    assert_eq!(okta.members(ADMINS), std::slice::from_ref(&alice_id));
    for _ in 0..2 {
        connector
            .revoke(&call(Action::Revoke, alice()))
            .await
            .unwrap();
    }
    assert!(okta.members(ADMINS).is_empty());
    let operations: Vec<String> = fake.calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(
        operations,
        ["getUser", "assignUserToGroup"]
            .repeat(2)
            .into_iter()
            .chain(["getUser", "unassignUserFromGroup"].repeat(2))
            .collect::<Vec<_>>(),
        "each call finds the user by login, then changes the membership"
    );
    let path = &fake.calls_to("assignUserToGroup")[0].path;
    assert_eq!(path, &format!("/api/v1/groups/{ADMINS}/users/{alice_id}"));
}

#[tokio::test]
async fn a_service_app_signs_in_with_a_private_key_jwt_and_keeps_its_token() {
    let (okta, fake) = okta().await;
    let connector = connector(&service_app_toml(&fake));
    connector
        .grant(&call(Action::Grant, alice()))
        .await
        .unwrap();
    connector
        .revoke(&call(Action::Revoke, alice()))
        .await
        .unwrap();
    assert!(okta.members(ADMINS).is_empty());
    let tokens = fake
        .calls()
        .iter()
        .filter(|c| c.path == "/oauth2/v1/token")
        .count();
    assert_eq!(tokens, 1, "one token serves both calls");
    assert_eq!(
        okta.org().issued.values().next().unwrap(),
        &["okta.users.read", "okta.groups.manage"]
    );

    // Okta revokes the token early: the call fails and may be retried, and the retry
    // signs in again.
    okta.org().issued.clear();
    let message = transient(connector.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("E0000011"), "{message}");
    assert!(message.contains("a new one is asked for"), "{message}");
    connector
        .grant(&call(Action::Grant, alice()))
        .await
        .unwrap();
    assert_eq!(okta.members(ADMINS).len(), 1);
    let tokens = fake
        .calls()
        .iter()
        .filter(|c| c.path == "/oauth2/v1/token")
        .count();
    assert_eq!(tokens, 2);
}

#[tokio::test]
async fn a_service_app_okta_refuses_is_a_permanent_failure_that_says_what_to_fix() {
    let (okta, fake) = okta().await;
    okta.org().granted = vec!["okta.users.read".into()];
    let connector = connector(&service_app_toml(&fake));
    let message = permanent(connector.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("invalid_scope"), "{message}");
    assert!(message.contains("okta.groups.manage scopes"), "{message}");

    okta.script(
        "token",
        Reply::json(
            401,
            json!({ "error": "invalid_client",
            "error_description": "The client_assertion signature is invalid." }),
        ),
    );
    let message = permanent(connector.grant(&call(Action::Grant, alice())).await);
    assert!(
        message.contains("public key of private_key is registered"),
        "{message}"
    );
    assert!(okta.members(ADMINS).is_empty());
}

#[tokio::test]
async fn a_token_without_the_group_scope_is_refused_with_the_scope_named() {
    let (okta, fake) = okta().await;
    let connector = connector(&service_app_toml(&fake));
    connector
        .grant(&call(Action::Grant, alice()))
        .await
        .unwrap();
    // Okta takes okta.groups.manage away from the token in hand.
    for scopes in okta.org().issued.values_mut() {
        scopes.retain(|s| s != "okta.groups.manage");
    }
    let message = permanent(connector.revoke(&call(Action::Revoke, alice())).await);
    assert!(message.contains("403"), "{message}");
    assert!(
        message.contains("Group Membership Administrator"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_user_or_group_or_a_nameless_person_fails_for_good_saying_what() {
    let (okta, fake) = okta().await;
    let connector = connector(&api_token_toml(&fake, ""));
    let message = permanent(
        connector
            .grant(&call(
                Action::Grant,
                person("mallory", Some("mallory@example.com")),
            ))
            .await,
    );
    assert!(
        message.contains("Okta has no user whose profile.login is `mallory@example.com`"),
        "{message}"
    );
    let message = permanent(
        connector
            .grant(&call(Action::Grant, person("carol", None)))
            .await,
    );
    assert!(message.contains("cannot name carol"), "{message}");
    assert!(message.contains("user_name"), "{message}");

    let typo = self::connector(&api_token_toml(&fake, "").replace(ADMINS, "00g1emaKYZTWRYYRRTSX"));
    let message = permanent(typo.grant(&call(Action::Grant, alice())).await);
    assert!(
        message.contains("Okta has no group 00g1emaKYZTWRYYRRTSX"),
        "{message}"
    );
    assert!(message.contains("E0000007"), "{message}");
    let mut unmapped = call(Action::Grant, alice());
    unmapped.role = "owner".into();
    let message = permanent(connector.grant(&unmapped).await);
    assert!(
        message.contains("role `owner` has no Okta group"),
        "{message}"
    );
    assert!(okta.members(ADMINS).is_empty());
}

#[tokio::test]
async fn a_login_is_matched_only_as_a_login_not_as_an_id_or_short_name() {
    let (okta, fake) = okta().await;
    let alice_id = okta.find("alice@example.com").unwrap().id;
    // Okta's getUser also answers for a user id: a template that renders one finds nobody.
    let by_id = connector(&api_token_toml(&fake, "user_name = \"{{ id }}\""));
    let message = permanent(
        by_id
            .grant(&call(Action::Grant, person(&alice_id, None)))
            .await,
    );
    assert!(message.contains("Okta has no user"), "{message}");
    assert!(okta.members(ADMINS).is_empty());
    assert_eq!(
        fake.calls_to("getUser")[0].path,
        format!("/api/v1/users/{alice_id}")
    );
}

#[tokio::test]
async fn users_can_be_found_by_email_and_a_deprovisioned_namesake_is_passed_over() {
    let (okta, fake) = okta().await;
    let bob = okta.user(2, "bob.smith");
    okta.org().users.last_mut().unwrap().email = "Bob@Example.com".into();
    okta.org().users.push(User {
        id: "00u00000000000000003".into(),
        login: "bob.old".into(),
        email: "bob@example.com".into(),
        status: "DEPROVISIONED",
    });
    let connector = connector(&api_token_toml(&fake, "user_attribute = \"email\""));
    connector
        .grant(&call(Action::Grant, person("bob", Some("bob@example.com"))))
        .await
        .unwrap();
    assert_eq!(okta.members(ADMINS), [bob]);
    let search = &fake.calls_to("listUsers")[0].query;
    assert_eq!(
        search,
        &[(
            "search".to_owned(),
            "profile.email eq \"bob@example.com\"".to_owned()
        )]
    );
    // A quote in the name stays inside the search's string.
    let message = permanent(
        connector
            .grant(&call(
                Action::Grant,
                person("eve", Some("x\" or profile.email sw \"")),
            ))
            .await,
    );
    assert!(
        message.contains("Okta has no user whose profile.email"),
        "{message}"
    );
}

#[tokio::test]
async fn okta_s_rate_limit_is_honoured_until_its_reset_and_server_errors_are_retried() {
    let (okta, fake) = okta().await;
    let connector = connector(&api_token_toml(&fake, ""));
    let reset = Utc::now().timestamp() + 120;
    okta.script(
        "assignUserToGroup",
        okta_error(
            429,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        )
        .header("x-rate-limit-limit", 600)
        .header("x-rate-limit-remaining", 0)
        .header("x-rate-limit-reset", reset),
    );
    let message = transient(connector.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("E0000047"), "{message}");
    assert!(message.contains("asked to wait"), "{message}");
    let sent = fake.calls().len();
    let message = transient(connector.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("was not sent"), "{message}");
    assert_eq!(fake.calls().len(), sent, "nothing is sent before the reset");
    assert!(okta.members(ADMINS).is_empty());

    let (okta, fake) = self::okta().await;
    let connector = self::connector(&api_token_toml(&fake, ""));
    okta.script(
        "getUser",
        okta_error(500, "E0000009", "Internal Server Error").undocumented(),
    );
    let message = transient(connector.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("500"), "{message}");
    connector
        .grant(&call(Action::Grant, alice()))
        .await
        .unwrap();
    assert_eq!(okta.members(ADMINS).len(), 1);
}

#[tokio::test]
async fn an_api_token_okta_does_not_accept_is_a_permanent_failure() {
    let (okta, fake) = okta().await;
    let connector = connector(
        &api_token_toml(&fake, "")
            .replace("token = \"${OKTA_API_TOKEN}\"", "token = \"00-revoked\""),
    );
    let message = permanent(connector.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("E0000011"), "{message}");
    assert!(message.contains("make a new one"), "{message}");
    assert!(
        !message.contains("00-revoked"),
        "the token stays secret: {message}"
    );
    assert!(okta.members(ADMINS).is_empty());
}

#[tokio::test]
async fn undoing_a_failed_grant_for_someone_okta_does_not_know_succeeds() {
    let (_okta, fake) = okta().await;
    let connector = connector(&api_token_toml(&fake, ""));
    let mut undo = call(
        Action::Revoke,
        person("mallory", Some("mallory@example.com")),
    );
    let message = permanent(connector.revoke(&undo).await);
    assert!(
        message.contains("Okta has no user"),
        "a plain revoke says so: {message}"
    );
    undo.undo = true;
    let done = connector.revoke(&undo).await.unwrap();
    assert!(
        done.detail.starts_with("nothing to undo"),
        "{}",
        done.detail
    );
}

/// The fake Okta as a contract target: alice is a user, mallory is not.
struct OktaTarget {
    okta: FakeOkta,
    fake: ValidatingFake,
}

impl crate::contract::Target for OktaTarget {
    fn connector(&self) -> Arc<dyn Connector> {
        connector(
            &service_app_toml(&self.fake)
                .replace("admin =", &format!("{} =", crate::contract::ROLE)),
        )
    }

    fn known(&self) -> PersonRef {
        alice()
    }

    fn stranger(&self) -> PersonRef {
        person("mallory", Some("mallory@example.com"))
    }

    async fn holds(&self, person: &PersonRef) -> bool {
        let Some(user) = person.email.as_deref().and_then(|e| self.okta.find(e)) else {
            return false;
        };
        self.okta.members(ADMINS).contains(&user.id)
    }
}

#[tokio::test]
async fn the_okta_connector_keeps_the_connector_contract() {
    let (okta, fake) = okta().await;
    crate::contract::check(&OktaTarget { okta, fake }).await;
}
