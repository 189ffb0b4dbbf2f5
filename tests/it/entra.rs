//! The `entra` connector against a fake Microsoft Graph whose every request and answer is
//! checked against a description of the Graph operations it serves, written from
//! Microsoft's reference pages (tests/fixtures/entra, through tests/it/openapi.rs). The fake
//! keeps users and group members, answers a repeated add or remove as Graph does (400 and
//! 404), signs the app in at its token endpoint only with the right client secret or a
//! certificate assertion whose signature, thumbprint and claims are right, and enforces the
//! application permissions each operation needs. Every observation is made in its state.

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

use crate::openapi::fake::{Call, Reply, ValidatingFake, Vendor};
use crate::openapi::{Request, Spec};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "5f4b2c1e-9d8a-4b7c-a6e5-3f2d1c0b9a87";
const SECRET: &str = "gQ28Q~gatehouse-test-secret";
const ADMINS: &str = "02bd9fd6-8f93-4758-87c3-1fb73740a315";
const KEY: &str = "tests/fixtures/keys/rsa-test.pkcs8.pem";
const CERT: &str = "tests/fixtures/keys/rsa-test.cert.pem";
/// The certificate's SHA-1 thumbprint, as tests/fixtures/keys/README.md gives it (made by
/// openssl, not by the code under test).
const THUMBPRINT_HEX: &str = "0EAE60A86512C8AEE6DD3B85FDEA9A2A897A16BD";
const LEAST: [&str; 2] = ["User.ReadBasic.All", "GroupMember.ReadWrite.All"];

fn fixture(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// An Entra user, as the fake keeps it.
#[derive(Clone)]
struct User {
    id: String,
    upn: String,
    mail: Option<String>,
}

/// What the fake tenant holds.
#[derive(Default)]
struct Tenant {
    users: Vec<User>,
    /// Group object id → member user ids.
    groups: BTreeMap<String, BTreeSet<String>>,
    /// Access tokens issued → the application permissions (`roles`) they carry.
    issued: BTreeMap<String, Vec<String>>,
    /// The application permissions the app was granted, with admin consent.
    granted: Vec<String>,
    seen_jti: BTreeSet<String>,
    /// Answers given instead of the normal ones, per operation id (or `token`).
    scripted: BTreeMap<String, VecDeque<Reply>>,
    /// The fake's URL: Graph's base, and the token endpoint's.
    url: String,
}

#[derive(Clone, Default)]
struct FakeGraph(Arc<Mutex<Tenant>>);

fn graph_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({ "error": { "code": code, "message": message, "innerError": {
            "date": "2026-12-07T10:00:00", "request-id": "0b7e1c1a-0000-4000-8000-000000000000" } } }),
    )
}

fn guid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

impl FakeGraph {
    fn tenant(&self) -> std::sync::MutexGuard<'_, Tenant> {
        self.0.lock().unwrap()
    }

    fn user(&self, n: u32, upn: &str, mail: Option<&str>) -> String {
        let id = guid(n);
        self.tenant().users.push(User {
            id: id.clone(),
            upn: upn.to_owned(),
            mail: mail.map(str::to_owned),
        });
        id
    }

    fn members(&self, group: &str) -> Vec<String> {
        self.tenant().groups[group].iter().cloned().collect()
    }

    fn id_of(&self, upn: &str) -> Option<String> {
        let tenant = self.tenant();
        let user = tenant
            .users
            .iter()
            .find(|u| u.upn.eq_ignore_ascii_case(upn));
        user.map(|u| u.id.clone())
    }

    fn script(&self, operation: &str, reply: Reply) {
        self.tenant()
            .scripted
            .entry(operation.to_owned())
            .or_default()
            .push_back(reply);
    }

    fn token_requests(fake: &ValidatingFake) -> usize {
        fake.calls()
            .iter()
            .filter(|c| c.path.ends_with("/oauth2/v2.0/token"))
            .count()
    }

    /// Graph's check of the bearer token: one it issued, carrying one of the application
    /// permissions the operation accepts.
    fn authorized(&self, call: &Call<'_>) -> Result<(), Reply> {
        let presented = call.credential.as_ref().map_or("", |c| c.value.as_str());
        let token = presented.strip_prefix("Bearer ").unwrap_or_default();
        let Some(roles) = self.tenant().issued.get(token).cloned() else {
            return Err(graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            ));
        };
        let accepted = call.credential.as_ref().map_or(&[][..], |c| &c.scopes[..]);
        if accepted.iter().any(|p| roles.contains(p)) {
            Ok(())
        } else {
            Err(graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ))
        }
    }

    /// The token endpoint: client credentials with a client secret or a certificate.
    fn token(&self, body: &[u8], violations: &mut Vec<String>) -> Reply {
        let form: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let oauth_error = |status: u16, error: &str, description: &str| {
            Reply::json(
                status,
                json!({ "error": error, "error_description": description,
                    "error_codes": [7000215], "trace_id": "t", "correlation_id": "c" }),
            )
        };
        let url = self.tenant().url.clone();
        let expected = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("scope", format!("{url}/.default")),
        ];
        for (key, value) in expected {
            if form.get(key) != Some(&value) {
                violations.push(format!("token request: {key} is not {value}: {form:?}"));
                return oauth_error(400, "invalid_request", key);
            }
        }
        match (form.get("client_secret"), form.get("client_assertion")) {
            (Some(secret), None) if secret == SECRET => {}
            (Some(_), None) => {
                return oauth_error(
                    401,
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided.",
                );
            }
            (None, Some(assertion)) => {
                if form.get("client_assertion_type").map(String::as_str)
                    != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                {
                    violations.push(format!("token request: client_assertion_type: {form:?}"));
                }
                if let Err(problem) = self.check_assertion(assertion) {
                    return oauth_error(401, "invalid_client", &problem);
                }
            }
            _ => {
                violations.push(format!(
                    "token request: no single client credential: {form:?}"
                ));
                return oauth_error(400, "invalid_request", "client credentials");
            }
        }
        let mut tenant = self.tenant();
        let token = format!("eyJ0eXAi.graph.{}", tenant.issued.len() + 1);
        let roles = tenant.granted.clone();
        tenant.issued.insert(token.clone(), roles);
        Reply::json(
            200,
            json!({ "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                "access_token": token }),
        )
    }

    /// What Entra checks of a certificate's assertion: the signature with the certificate's
    /// key, `x5t` the thumbprint of a certificate of the app, the claims.
    fn check_assertion(&self, token: &str) -> Result<(), String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err("AADSTS50027: not a JWT".into());
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
        .map_err(|_| "AADSTS700027: The certificate signature is invalid.".to_owned())?;
        let (header, claims) = (decode(header), decode(claims));
        let thumbprint = URL_SAFE_NO_PAD.encode(hex::decode(THUMBPRINT_HEX).unwrap());
        let now = Utc::now().timestamp();
        let mut tenant = self.tenant();
        let audience = format!("{}/{TENANT}/oauth2/v2.0/token", tenant.url);
        let checks = [
            (header["alg"] == "RS256", "alg is not RS256"),
            (
                header["x5t"] == thumbprint.as_str(),
                "x5t is not a certificate of the app",
            ),
            (claims["iss"] == CLIENT_ID, "iss is not the client id"),
            (claims["sub"] == CLIENT_ID, "sub is not the client id"),
            (
                claims["aud"] == audience.as_str(),
                "aud is not the token endpoint",
            ),
            (
                claims["nbf"].as_i64().is_some_and(|nbf| nbf <= now),
                "nbf is missing or to come",
            ),
            (
                claims["exp"]
                    .as_i64()
                    .is_some_and(|exp| exp > now && exp - now <= 600),
                "exp is not within ten minutes",
            ),
            (
                claims["jti"]
                    .as_str()
                    .is_some_and(|jti| tenant.seen_jti.insert(jti.to_owned())),
                "jti is missing or used before",
            ),
        ];
        match checks.iter().find(|(fine, _)| !fine) {
            Some((_, problem)) => Err(format!("AADSTS700027: client assertion: {problem}")),
            None => Ok(()),
        }
    }
}

impl Vendor for FakeGraph {
    fn answer(&self, call: &Call<'_>) -> Reply {
        if let Some(reply) = self
            .tenant()
            .scripted
            .get_mut(&call.operation.id)
            .and_then(VecDeque::pop_front)
        {
            return reply;
        }
        if let Err(refusal) = self.authorized(call) {
            return refusal;
        }
        let not_found = |id: &str| {
            graph_error(
                404,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                ),
            )
        };
        let path = &call.operation.path;
        let query = |name: &str| {
            call.request
                .query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut tenant = self.tenant();
        match call.operation.id.as_str() {
            "users.user.ListUser" => {
                let filter = query("$filter");
                let parsed = filter
                    .split_once(" eq '")
                    .and_then(|(property, rest)| Some((property, rest.strip_suffix('\'')?)));
                let Some((property, value)) = parsed else {
                    return graph_error(400, "BadRequest", "Invalid filter clause");
                };
                let value = value.replace("''", "'");
                let users: Vec<Value> = tenant
                    .users
                    .iter()
                    .filter(|u| match property {
                        "userPrincipalName" => u.upn.eq_ignore_ascii_case(&value),
                        "mail" => u
                            .mail
                            .as_ref()
                            .is_some_and(|m| m.eq_ignore_ascii_case(&value)),
                        _ => false,
                    })
                    .map(|u| json!({ "id": u.id, "userPrincipalName": u.upn, "mail": u.mail }))
                    .collect();
                Reply::json(
                    200,
                    json!({ "@odata.context": format!("{}/v1.0/$metadata#users(id,userPrincipalName,mail)", tenant.url),
                        "value": users }),
                )
            }
            "groups.group.GetGroup" => match tenant.groups.get(&path["group-id"]) {
                Some(_) => Reply::json(
                    200,
                    json!({ "id": path["group-id"], "displayName": "Admins" }),
                ),
                None => not_found(&path["group-id"]),
            },
            "groups.members.CreateRefMembers" => {
                let body: Value = serde_json::from_slice(call.request.body).unwrap();
                let reference = body["@odata.id"].as_str().unwrap_or_default();
                let prefix = format!("{}/v1.0/directoryObjects/", tenant.url);
                let Some(user) = reference.strip_prefix(&prefix).map(str::to_owned) else {
                    return graph_error(400, "Request_BadRequest", "Invalid object identifier");
                };
                if !tenant.users.iter().any(|u| u.id == user) {
                    return not_found(&user);
                }
                let Some(members) = tenant.groups.get_mut(&path["group-id"]) else {
                    return not_found(&path["group-id"]);
                };
                if !members.insert(user) {
                    return graph_error(
                        400,
                        "Request_BadRequest",
                        "One or more added object references already exist for the following modified properties: 'members'.",
                    );
                }
                Reply::empty(204)
            }
            "groups.members.DeleteRefDirectoryObject" => {
                let user = &path["directoryObject-id"];
                match tenant
                    .groups
                    .get_mut(&path["group-id"])
                    .map(|m| m.remove(user))
                {
                    Some(true) => Reply::empty(204),
                    Some(false) => not_found(user),
                    None => not_found(&path["group-id"]),
                }
            }
            other => panic!("the fake does not serve {other}"),
        }
    }

    fn refuse(&self, status: u16, message: &str) -> Reply {
        graph_error(status, "BadRequest", message)
    }

    fn outside(
        &self,
        method: &str,
        path: &str,
        request: &Request<'_>,
        violations: &mut Vec<String>,
    ) -> Option<Reply> {
        if (method, path) != ("POST", format!("/{TENANT}/oauth2/v2.0/token").as_str()) {
            return None;
        }
        if let Some(reply) = self
            .tenant()
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

/// A fake Graph with group [`ADMINS`] and alice (a user), on 127.0.0.1:0, the app granted
/// the least permissions.
async fn graph() -> (FakeGraph, ValidatingFake) {
    let vendor = FakeGraph::default();
    vendor
        .tenant()
        .groups
        .insert(ADMINS.to_owned(), BTreeSet::new());
    vendor.user(1, "alice@example.com", Some("alice@example.com"));
    vendor.tenant().granted = LEAST.map(str::to_owned).to_vec();
    let spec = Spec::load(&fixture("tests/fixtures/entra/graph-v1.0.subset.json"));
    let fake = ValidatingFake::start(spec, Arc::new(vendor.clone())).await;
    vendor.tenant().url = fake.url.clone();
    (vendor, fake)
}

/// The connector's table for `fake`, with the client secret; `extra` adds keys.
fn secret_toml(fake: &ValidatingFake, extra: &str) -> String {
    format!(
        r#"[[connectors]]
id = "entra"
kind = "entra"
tenant_id = "{TENANT}"
client_id = "{CLIENT_ID}"
client_secret = "${{ENTRA_CLIENT_SECRET}}"
graph_url = "{url}"
token_url = "{url}/{TENANT}/oauth2/v2.0/token"
roles = {{ admin = "{ADMINS}" }}
{extra}"#,
        url = fake.url
    )
}

/// The connector's table for `fake`, with the certificate.
fn certificate_toml(fake: &ValidatingFake) -> String {
    format!(
        r#"[[connectors]]
id = "entra"
kind = "entra"
tenant_id = "{TENANT}"
client_id = "{CLIENT_ID}"
certificate_file = "{}"
private_key_file = "{}"
graph_url = "{url}"
token_url = "{url}/{TENANT}/oauth2/v2.0/token"
roles = {{ admin = "{ADMINS}" }}
"#,
        fixture(CERT).display(),
        fixture(KEY).display(),
        url = fake.url
    )
}

/// The connector `text` configures, built as Gatehouse builds it.
fn connector(text: &str) -> Arc<dyn Connector> {
    let env = Env::from([("ENTRA_CLIENT_SECRET".to_owned(), SECRET.to_owned())]);
    let config = Config::parse("gatehouse.toml", text, Path::new("/"), &env)
        .unwrap_or_else(|e| panic!("{e}"));
    Connectors::from_config(&config.connectors)
        .unwrap_or_else(|e| panic!("{e}"))
        .get(&"entra".into())
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
        resource: "entra-admins".into(),
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
async fn granting_and_revoking_twice_each_leaves_the_entra_group_as_asked() {
    let (graph, fake) = graph().await;
    let connector = connector(&secret_toml(&fake, ""));
    let alice_id = graph.id_of("alice@example.com").unwrap();
    connector
        .grant(&call(Action::Grant, alice()))
        .await
        .unwrap();
    let again = connector
        .grant(&call(Action::Grant, alice()))
        .await
        .unwrap();
    assert!(
        again.detail.contains("was already a member"),
        "{}",
        again.detail
    );
    assert_eq!(graph.members(ADMINS), std::slice::from_ref(&alice_id));
    connector
        .revoke(&call(Action::Revoke, alice()))
        .await
        .unwrap();
    let again = connector
        .revoke(&call(Action::Revoke, alice()))
        .await
        .unwrap();
    assert!(
        again.detail.contains("was not a member"),
        "{}",
        again.detail
    );
    assert!(graph.members(ADMINS).is_empty());
    assert_eq!(
        FakeGraph::token_requests(&fake),
        1,
        "one token serves every call"
    );
    let removals = fake.calls_to("groups.members.DeleteRefDirectoryObject");
    assert_eq!(
        removals[0].path,
        format!("/v1.0/groups/{ADMINS}/members/{alice_id}/$ref")
    );
    let lookup = &fake.calls_to("users.user.ListUser")[0].query;
    assert_eq!(
        lookup[0],
        (
            "$filter".to_owned(),
            "userPrincipalName eq 'alice@example.com'".to_owned()
        )
    );
}

#[tokio::test]
async fn a_certificate_signs_the_app_in_with_its_thumbprint_and_a_fresh_assertion() {
    let (graph, fake) = graph().await;
    let connector = connector(&certificate_toml(&fake));
    connector
        .grant(&call(Action::Grant, alice()))
        .await
        .unwrap();
    assert_eq!(graph.members(ADMINS).len(), 1);
    // Graph refuses the token in hand: the call may be retried, and the retry signs in
    // again with a new assertion (a jti Entra has not seen).
    graph.tenant().issued.clear();
    let message = transient(connector.revoke(&call(Action::Revoke, alice())).await);
    assert!(message.contains("InvalidAuthenticationToken"), "{message}");
    connector
        .revoke(&call(Action::Revoke, alice()))
        .await
        .unwrap();
    assert!(graph.members(ADMINS).is_empty());
    assert_eq!(FakeGraph::token_requests(&fake), 2);
}

#[tokio::test]
async fn credentials_entra_refuses_are_a_permanent_failure_that_says_what_to_check() {
    let (graph, fake) = graph().await;
    let wrong = connector(&secret_toml(&fake, "").replace(
        "client_secret = \"${ENTRA_CLIENT_SECRET}\"",
        "client_secret = \"expired\"",
    ));
    let message = permanent(wrong.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("invalid_client"), "{message}");
    assert!(message.contains("AADSTS7000215"), "{message}");
    assert!(
        message.contains("the client secret is the app's"),
        "{message}"
    );
    assert!(
        !message.contains("expired\""),
        "the secret stays secret: {message}"
    );

    let certificate = connector(&certificate_toml(&fake));
    graph.script(
        "token",
        Reply::json(401, json!({ "error": "invalid_client",
            "error_description": "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application." })),
    );
    let message = permanent(certificate.grant(&call(Action::Grant, alice())).await);
    assert!(
        message.contains(&format!("thumbprint {THUMBPRINT_HEX}")),
        "{message}"
    );
    assert!(graph.members(ADMINS).is_empty());
}

#[tokio::test]
async fn an_app_without_the_group_permission_is_refused_with_the_permissions_named() {
    let (graph, fake) = graph().await;
    graph.tenant().granted = vec!["User.ReadBasic.All".into()];
    let connector = connector(&secret_toml(&fake, ""));
    let message = permanent(connector.grant(&call(Action::Grant, alice())).await);
    assert!(
        message.contains("403 Authorization_RequestDenied"),
        "{message}"
    );
    assert!(
        message.contains("User.ReadBasic.All and GroupMember.ReadWrite.All"),
        "{message}"
    );
    assert!(graph.members(ADMINS).is_empty());
}

#[tokio::test]
async fn an_unknown_user_or_group_or_a_nameless_person_fails_for_good_saying_what() {
    let (graph, fake) = graph().await;
    let connector = connector(&secret_toml(&fake, ""));
    let message = permanent(
        connector
            .grant(&call(
                Action::Grant,
                person("mallory", Some("mallory@example.com")),
            ))
            .await,
    );
    assert!(
        message.contains("Entra has no user whose userPrincipalName is `mallory@example.com`"),
        "{message}"
    );
    let message = permanent(
        connector
            .grant(&call(Action::Grant, person("carol", None)))
            .await,
    );
    assert!(message.contains("cannot name carol"), "{message}");

    let missing = "0d5c3f6a-1111-4222-8333-944455556666";
    let typo = self::connector(&secret_toml(&fake, "").replace(ADMINS, missing));
    let message = permanent(typo.grant(&call(Action::Grant, alice())).await);
    assert!(
        message.contains(&format!("Entra has no group {missing}")),
        "{message}"
    );
    assert!(message.contains("Request_ResourceNotFound"), "{message}");
    // A revocation from a group that does not exist is not taken for done: it may be a typo
    // behind which the real membership stays.
    let message = permanent(typo.revoke(&call(Action::Revoke, alice())).await);
    assert!(
        message.contains(&format!("Entra has no group {missing}")),
        "{message}"
    );
    assert_eq!(fake.calls_to("groups.group.GetGroup").len(), 1);
    assert!(graph.members(ADMINS).is_empty());
}

#[tokio::test]
async fn users_can_be_found_by_mail_and_a_quote_stays_inside_the_filter() {
    let (graph, fake) = graph().await;
    let guest = graph.user(
        2,
        "bob_partner.example#EXT#@contoso.onmicrosoft.com",
        Some("o'brien@partner.example"),
    );
    let connector = connector(&secret_toml(&fake, "user_attribute = \"mail\""));
    connector
        .grant(&call(
            Action::Grant,
            person("bob", Some("o'brien@partner.example")),
        ))
        .await
        .unwrap();
    assert_eq!(graph.members(ADMINS), [guest]);
    let lookup = &fake.calls_to("users.user.ListUser")[0].query;
    assert_eq!(lookup[0].1, "mail eq 'o''brien@partner.example'");
}

#[tokio::test]
async fn graph_throttling_is_honoured_and_server_errors_are_retried() {
    let (graph, fake) = graph().await;
    let connector = connector(&secret_toml(&fake, ""));
    graph.script(
        "groups.members.CreateRefMembers",
        graph_error(429, "TooManyRequests", "Too many requests").header("retry-after", 120),
    );
    let message = transient(connector.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("TooManyRequests"), "{message}");
    assert!(message.contains("asked to wait 120s"), "{message}");
    let sent = fake.calls().len();
    let message = transient(connector.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("was not sent"), "{message}");
    assert_eq!(
        fake.calls().len(),
        sent,
        "nothing is sent before Retry-After"
    );
    assert!(graph.members(ADMINS).is_empty());

    let (graph, fake) = self::graph().await;
    let connector = self::connector(&secret_toml(&fake, ""));
    graph.script(
        "users.user.ListUser",
        graph_error(503, "serviceNotAvailable", "Service Unavailable"),
    );
    let message = transient(connector.grant(&call(Action::Grant, alice())).await);
    assert!(message.contains("503"), "{message}");
    connector
        .grant(&call(Action::Grant, alice()))
        .await
        .unwrap();
    assert_eq!(graph.members(ADMINS).len(), 1);
}

#[tokio::test]
async fn undoing_a_failed_grant_for_someone_entra_does_not_know_succeeds() {
    let (_graph, fake) = graph().await;
    let connector = connector(&secret_toml(&fake, ""));
    let mut undo = call(
        Action::Revoke,
        person("mallory", Some("mallory@example.com")),
    );
    let message = permanent(connector.revoke(&undo).await);
    assert!(
        message.contains("Entra has no user"),
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

/// The fake Graph as a contract target: alice is a user, mallory is not.
struct EntraTarget {
    graph: FakeGraph,
    fake: ValidatingFake,
}

impl crate::contract::Target for EntraTarget {
    fn connector(&self) -> Arc<dyn Connector> {
        connector(
            &secret_toml(&self.fake, "")
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
        let Some(user) = person.email.as_deref().and_then(|e| self.graph.id_of(e)) else {
            return false;
        };
        self.graph.members(ADMINS).contains(&user)
    }
}

#[tokio::test]
async fn the_entra_connector_keeps_the_connector_contract() {
    let (graph, fake) = graph().await;
    crate::contract::check(&EntraTarget { graph, fake }).await;
}
