//! A fake of the Admin SDK Directory API (group members) and Google's OAuth 2.0 token
//! endpoint for the `google` connector. Google describes the API with a discovery document,
//! not OpenAPI: [`openapi`] turns the vendored methods (tests/fixtures/google) into the form
//! the shared validator reads, so every request and answer is checked against Google's own
//! description. The token endpoint, described elsewhere (RFC 7523, Google's OAuth 2.0 for
//! service accounts), is checked here: a JWT bearer grant whose assertion verifies with the
//! service account's public key and names the admin, the scope and the endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Map, Value, json};

use crate::openapi::fake::{Call, Reply, ValidatingFake, Vendor};
use crate::openapi::{Request, Spec};

pub const CLIENT_EMAIL: &str = "gatehouse@example-project.iam.gserviceaccount.com";
pub const ADMIN: &str = "gatehouse-admin@example.com";
pub const SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.member";
pub const TOKEN_PATH: &str = "/token";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// The discovery document's methods and schemas as an OpenAPI 3 description: each method a
/// path and operation (its `id` the operationId), its parameters and the document's common
/// query parameters, its `request` a required JSON body, its `response` the 200 answer (no
/// response: 204, as the API answers a delete), its scopes an oauth2 requirement.
pub fn openapi(discovery: &Value) -> Value {
    let mut paths = Map::new();
    let common: Vec<Value> = discovery["parameters"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, p)| parameter(name, p))
        .collect();
    for resource in discovery["resources"].as_object().into_iter().flatten() {
        for method in resource.1["methods"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|m| m.1)
        {
            let path = format!(
                "/{}{}",
                discovery["servicePath"].as_str().unwrap_or_default(),
                method["path"].as_str().unwrap()
            );
            let mut parameters: Vec<Value> = method["parameters"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, p)| parameter(name, p))
                .collect();
            parameters.extend(common.iter().cloned());
            let mut operation = json!({
                "operationId": method["id"],
                "parameters": parameters,
                "security": [{ "oauth2": method["scopes"] }],
            });
            if let Some(name) = method["request"]["$ref"].as_str() {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": { "application/json": { "schema": schema_ref(name) } },
                });
            }
            operation["responses"] = match method["response"]["$ref"].as_str() {
                Some(name) => json!({ "200": {
                    "description": "OK",
                    "content": { "application/json": { "schema": schema_ref(name) } },
                }}),
                None => json!({ "204": { "description": "No Content" } }),
            };
            let verb = method["httpMethod"].as_str().unwrap().to_ascii_lowercase();
            paths
                .entry(path)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .unwrap()
                .insert(verb, operation);
        }
    }
    let mut schemas = discovery["schemas"].clone();
    local_refs(&mut schemas);
    json!({
        "openapi": "3.0.3",
        "info": { "title": discovery["title"], "version": discovery["version"] },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "oauth2": {
                "type": "oauth2",
                "flows": { "clientCredentials": {
                    "tokenUrl": "https://oauth2.googleapis.com/token",
                    "scopes": discovery["auth"]["oauth2"]["scopes"],
                }},
            }},
        },
    })
}

fn parameter(name: &str, p: &Value) -> Value {
    let mut schema = json!({ "type": p["type"] });
    if let Some(values) = p.get("enum") {
        schema["enum"] = values.clone();
    }
    json!({
        "name": name,
        "in": p["location"],
        "required": p["required"].as_bool().unwrap_or(false),
        "schema": schema,
    })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Discovery's `"$ref": "Member"` as OpenAPI's `#/components/schemas/Member`.
fn local_refs(node: &mut Value) {
    match node {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match (key.as_str(), value.as_str()) {
                    ("$ref", Some(name)) => *value = json!(format!("#/components/schemas/{name}")),
                    _ => local_refs(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(local_refs),
        _ => {}
    }
}

/// The service account's key, as Google hands it out (JSON, a PKCS#8 PEM inside).
pub fn service_account_json(token_uri: &str) -> String {
    let pem = std::fs::read_to_string(fixture("tests/fixtures/keys/rsa-test.pkcs8.pem")).unwrap();
    json!({
        "type": "service_account",
        "project_id": "example-project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    })
    .to_string()
}

#[derive(Default)]
pub struct State {
    /// Users of the domain (email addresses).
    pub users: BTreeSet<String>,
    /// Group email → member emails.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Access tokens made and accepted.
    pub tokens: BTreeSet<String>,
    pub tokens_made: u32,
    /// The answers given, in turn, to the next Directory API requests instead of the real ones.
    pub faults: Vec<Reply>,
}

pub struct Google {
    state: Mutex<State>,
    public_key: Vec<u8>,
    /// The token endpoint's URL, which the assertion's `aud` must be.
    pub token_url: Mutex<String>,
}

impl Google {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_member(&self, group: &str, email: &str) -> bool {
        self.state()
            .groups
            .get(group)
            .is_some_and(|members| members.contains(email))
    }

    fn error(code: u16, message: &str, reason: &str) -> Reply {
        Reply::json(
            code,
            json!({ "error": {
                "code": code,
                "message": message,
                "errors": [{ "message": message, "domain": "global", "reason": reason }],
            }}),
        )
        .undocumented()
    }

    /// Why an assertion is not one Google takes, or `None`.
    fn assertion_problem(&self, assertion: &str) -> Option<String> {
        let parts: Vec<&str> = assertion.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Some("not a JWT".into());
        };
        let signed = format!("{header}.{claims}");
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
        if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.public_key)
            .verify(signed.as_bytes(), &signature)
            .is_err()
        {
            return Some("Invalid JWT Signature.".into());
        }
        let decode = |part: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default())
                .unwrap_or(Value::Null)
        };
        let (header, claims) = (decode(header), decode(claims));
        let now = Utc::now().timestamp();
        let iat = claims["iat"].as_i64().unwrap_or(i64::MAX);
        let exp = claims["exp"].as_i64().unwrap_or(0);
        let audience = self.token_url.lock().unwrap().clone();
        if header["alg"] != "RS256" || header["kid"] != "0123456789abcdef" {
            Some(format!("header {header}"))
        } else if claims["iss"] != CLIENT_EMAIL {
            Some("iss is not the service account".into())
        } else if claims["aud"] != audience.as_str() {
            Some(format!("aud {} is not {audience}", claims["aud"]))
        } else if claims["scope"] != SCOPE {
            Some(format!("scope {}", claims["scope"]))
        } else if iat > now + 60 || exp <= now || exp - iat > 3600 {
            Some("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.".into())
        } else if claims["sub"] != ADMIN {
            Some("Invalid email or User ID".into())
        } else {
            None
        }
    }
}

impl Vendor for Google {
    fn answer(&self, call: &Call<'_>) -> Reply {
        let mut state = self.state();
        if !state.faults.is_empty() {
            return state.faults.remove(0);
        }
        let token = call
            .credential
            .as_ref()
            .map(|c| c.value.clone())
            .unwrap_or_default();
        let token = token.strip_prefix("Bearer ").unwrap_or_default();
        if !state.tokens.contains(token) {
            return Self::error(
                401,
                "Request had invalid authentication credentials.",
                "authError",
            );
        }
        let group = call.operation.path["groupKey"].clone();
        let Some(members) = state.groups.get(&group).cloned() else {
            return Self::error(404, "Resource Not Found: groupKey", "notFound");
        };
        match call.operation.id.as_str() {
            "directory.members.insert" => {
                let body: Value = serde_json::from_slice(call.request.body).unwrap();
                let email = body["email"].as_str().unwrap_or_default().to_owned();
                if members.contains(&email) {
                    return Self::error(409, "Member already exists.", "duplicate");
                }
                if !state.users.contains(&email) {
                    return Self::error(404, "Resource Not Found: memberKey", "notFound");
                }
                state.groups.get_mut(&group).unwrap().insert(email.clone());
                Reply::json(
                    200,
                    json!({
                        "kind": "admin#directory#member",
                        "etag": "\"etag\"",
                        "id": "100000000000000000042",
                        "email": email,
                        "role": body["role"],
                        "type": "USER",
                        "status": "ACTIVE",
                    }),
                )
            }
            "directory.members.delete" => {
                let member = call.operation.path["memberKey"].clone();
                if state.groups.get_mut(&group).unwrap().remove(&member) {
                    Reply::empty(204)
                } else {
                    Self::error(404, "Resource Not Found: memberKey", "notFound")
                }
            }
            other => panic!("the fake does not answer {other}"),
        }
    }

    fn refuse(&self, status: u16, message: &str) -> Reply {
        Self::error(status, message, "invalid")
    }

    fn outside(
        &self,
        method: &str,
        path: &str,
        request: &Request<'_>,
        violations: &mut Vec<String>,
    ) -> Option<Reply> {
        if path != TOKEN_PATH {
            return None;
        }
        let form: BTreeMap<String, String> =
            form_urlencoded::parse(request.body).into_owned().collect();
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if method != "POST"
            || content_type != "application/x-www-form-urlencoded"
            || form.get("grant_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
            || form.len() != 2
        {
            violations.push(format!(
                "token request {method} {content_type} {form:?} is not a JWT bearer grant"
            ));
            return Some(Reply::json(
                400,
                json!({ "error": "unsupported_grant_type" }),
            ));
        }
        if let Some(problem) = self.assertion_problem(&form["assertion"]) {
            return Some(Reply::json(
                400,
                json!({ "error": "invalid_grant", "error_description": problem }),
            ));
        }
        let mut state = self.state();
        state.tokens_made += 1;
        let token = format!("ya29.gatehouse-test-{}", state.tokens_made);
        state.tokens.insert(token.clone());
        Some(Reply::json(
            200,
            json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" }),
        ))
    }
}

/// A running fake: users alice@ and bob@example.com, groups oncall@ and admins@example.com.
pub struct FakeGoogle {
    pub google: Arc<Google>,
    pub server: ValidatingFake,
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let discovery: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(
                "tests/fixtures/google/admin.directory_v1.subset.json",
            ))
            .unwrap(),
        )
        .unwrap();
        let pem =
            std::fs::read_to_string(fixture("tests/fixtures/keys/rsa-test.pkcs8.pem")).unwrap();
        let key = gatehouse::connector::jwt::RsaKey::from_pem(&pem).unwrap();
        let mut state = State::default();
        state
            .users
            .extend(["alice@example.com".to_owned(), "bob@example.com".to_owned()]);
        for group in ["oncall@example.com", "admins@example.com"] {
            state.groups.insert(group.to_owned(), BTreeSet::new());
        }
        let google = Arc::new(Google {
            state: Mutex::new(state),
            public_key: key.public_key_der().to_vec(),
            token_url: Mutex::new(String::new()),
        });
        let server = ValidatingFake::start(Spec::new(openapi(&discovery)), google.clone()).await;
        *google.token_url.lock().unwrap() = format!("{}{TOKEN_PATH}", server.url);
        FakeGoogle { google, server }
    }

    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.server.url)
    }
}
