//! The validator itself: it must refuse what a description forbids, or the fakes built on it
//! prove nothing. Against the vendored Okta part, and a small description of its own for
//! the schema rules Okta's operations do not use.

use std::path::Path;

use axum::http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::{Direction, Request, Spec};

fn okta() -> Spec {
    Spec::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/okta/okta-management.subset.json"),
    )
}

fn headers(authorization: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization {
        headers.insert("authorization", HeaderValue::from_str(value).unwrap());
    }
    headers
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_login_in_the_path_matches_get_user_decoded() {
    let spec = okta();
    let operation = spec
        .operation("GET", "/api/v1/users/alice%40example.com")
        .unwrap();
    assert_eq!(operation.id, "getUser");
    assert_eq!(operation.template, "/api/v1/users/{id}");
    assert_eq!(operation.path["id"], "alice@example.com");
    let assign = spec
        .operation("PUT", "/api/v1/groups/00g1/users/00u1")
        .unwrap();
    assert_eq!(assign.id, "assignUserToGroup");
    assert_eq!(
        (
            assign.path["groupId"].as_str(),
            assign.path["userId"].as_str()
        ),
        ("00g1", "00u1")
    );
}

#[test]
fn a_path_the_description_lacks_is_404_and_a_method_it_lacks_is_405() {
    let spec = okta();
    let missing = spec.operation("GET", "/api/v1/nothing").err().unwrap();
    assert_eq!(missing.status, 404);
    let wrong = spec
        .operation("POST", "/api/v1/groups/00g1/users/00u1")
        .err()
        .unwrap();
    assert_eq!(wrong.status, 405, "{}", wrong.reason);
    assert_eq!(
        spec.operation("GET", "/api/v1/groups//users/00u1")
            .err()
            .unwrap()
            .status,
        404,
        "an empty segment fills no template"
    );
}

#[test]
fn credentials_name_the_scheme_and_the_scopes_the_operation_needs() {
    let spec = okta();
    let operation = spec.operation("GET", "/api/v1/users").unwrap();
    let none = headers(None);
    let problems = operation.check_request(&Request {
        query: &[],
        headers: &none,
        body: b"",
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("no credentials"), "{problems:?}");
    let token = operation
        .credential(&headers(Some("SSWS 00abc")))
        .unwrap()
        .unwrap();
    assert_eq!(
        (token.scheme.as_str(), token.value.as_str()),
        ("apiToken", "SSWS 00abc")
    );
    let bearer = operation
        .credential(&headers(Some("Bearer eyJ")))
        .unwrap()
        .unwrap();
    assert_eq!(
        bearer.scheme, "apiToken",
        "any Authorization header is an apiKey"
    );
    let assign = spec
        .operation("PUT", "/api/v1/groups/00g1/users/00u1")
        .unwrap();
    assert_eq!(
        assign.scopes("oauth2"),
        Some(vec!["okta.groups.manage".to_owned()])
    );
    assert_eq!(
        operation.scopes("oauth2"),
        Some(vec!["okta.users.read".to_owned()])
    );
    assert_eq!(operation.scopes("basic"), None);
}

#[test]
fn an_unknown_query_parameter_or_an_unexpected_body_is_a_violation() {
    let spec = okta();
    let auth = headers(Some("SSWS 00abc"));
    let list = spec.operation("GET", "/api/v1/users").unwrap();
    let fine = query(&[("search", "profile.email eq \"a@b.c\"")]);
    assert!(
        list.check_request(&Request {
            query: &fine,
            headers: &auth,
            body: b""
        })
        .is_empty()
    );
    let typo = query(&[("serch", "x"), ("limit", "ten")]);
    let problems = list.check_request(&Request {
        query: &typo,
        headers: &auth,
        body: b"",
    });
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("`serch`: the description has no such parameter"));
    assert!(problems[1].contains("`ten` is not a number"));

    let assign = spec
        .operation("PUT", "/api/v1/groups/00g1/users/00u1")
        .unwrap();
    let problems = assign.check_request(&Request {
        query: &[],
        headers: &auth,
        body: b"{}",
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("takes no body"), "{problems:?}");
}

#[test]
fn answers_are_checked_for_their_status_and_body() {
    let spec = okta();
    let get = spec
        .operation("GET", "/api/v1/users/alice%40example.com")
        .unwrap();
    let user = json!({ "id": "00u1", "status": "ACTIVE",
        "profile": { "login": "alice@example.com", "email": "alice@example.com" } });
    let check = |status: u16, body: &Value| {
        get.check_response(status, "application/json", body.to_string().as_bytes())
    };
    assert!(check(200, &user).is_empty(), "{:?}", check(200, &user));
    assert!(check(404, &json!({ "errorCode": "E0000007" })).is_empty());
    let wrong = json!({ "id": 5, "status": "GONE", "profile": { "email": "a@b" } });
    let problems = check(200, &wrong);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains(".id: a number where the description says string"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("\"GONE\" is not one of"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`a@b` is shorter than 5"))
    );
    assert_eq!(check(418, &user).len(), 1, "a status it does not list");

    let assign = spec
        .operation("PUT", "/api/v1/groups/00g1/users/00u1")
        .unwrap();
    assert!(assign.check_response(204, "", b"").is_empty());
    assert_eq!(
        assign.check_response(204, "application/json", b"{}").len(),
        1,
        "204 has no body"
    );
}

/// A description of one operation, for the schema rules Okta's four do not exercise.
fn own() -> Spec {
    Spec::new(json!({
        "openapi": "3.1.0",
        "paths": {
            "/things/{id}": { "put": {
                "operationId": "putThing",
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Thing" } } } },
                "responses": { "200": { "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Thing" } } } } }
            } },
            "/things/special": { "get": { "operationId": "special", "responses": { "204": {} } } }
        },
        "components": { "schemas": {
            "Thing": {
                "type": "object",
                "required": ["name", "shape"],
                "additionalProperties": false,
                "properties": {
                    "id": { "type": "string", "readOnly": true },
                    "secret": { "type": "string", "writeOnly": true },
                    "name": { "type": "string", "pattern": "^[a-z]+$" },
                    "note": { "type": ["string", "null"] },
                    "at": { "type": "string", "format": "date-time" },
                    "shape": {
                        "oneOf": [
                            { "$ref": "#/components/schemas/Circle" },
                            { "$ref": "#/components/schemas/Square" }
                        ],
                        "discriminator": { "propertyName": "kind", "mapping": {
                            "circle": "#/components/schemas/Circle",
                            "square": "#/components/schemas/Square" } }
                    }
                }
            },
            "Circle": { "type": "object", "required": ["r"],
                "properties": { "kind": { "const": "circle" }, "r": { "type": "number", "minimum": 0 } } },
            "Square": { "type": "object", "required": ["side"],
                "properties": { "kind": { "const": "square" }, "side": { "type": "integer" } } }
        } }
    }))
}

#[test]
fn schemas_are_checked_through_refs_required_extra_properties_and_one_of() {
    let spec = own();
    let schema = json!({ "$ref": "#/components/schemas/Thing" });
    let check = |value: Value, direction| spec.check(&schema, &value, "thing", direction);
    let good = json!({ "name": "box", "note": null, "at": "2026-12-01T09:00:00Z",
        "shape": { "kind": "square", "side": 2 } });
    assert!(check(good, Direction::Request).is_empty());

    let problems = check(
        json!({ "id": "t1", "name": "Box", "extra": 1, "at": "yesterday",
            "shape": { "kind": "circle", "r": -1 } }),
        Direction::Request,
    );
    let expected = [
        "thing.id: is readOnly",
        "does not match ^[a-z]+$",
        "thing.extra: the description has no such property",
        "`yesterday` is not a \"date-time\"",
        "fits 0 of the oneOf choices",
    ];
    for words in expected {
        assert!(
            problems.iter().any(|p| p.contains(words)),
            "{words}: {problems:?}"
        );
    }
    assert!(
        !problems
            .iter()
            .any(|p| p.contains("required property `name`"))
    );

    let secret = check(
        json!({ "name": "box", "secret": "s", "shape": { "kind": "square", "side": 1 } }),
        Direction::Response,
    );
    assert_eq!(secret.len(), 1, "{secret:?}");
    assert!(secret[0].contains("writeOnly"), "{secret:?}");
    let null = check(
        json!({ "name": null, "shape": { "r": 1 } }),
        Direction::Request,
    );
    assert_eq!(null.len(), 1, "{null:?}");
    assert!(null[0].contains("null where the description does not allow it"));
}

#[test]
fn a_literal_segment_wins_over_a_template_and_a_required_body_must_come() {
    let spec = own();
    assert_eq!(
        spec.operation("GET", "/things/special").unwrap().id,
        "special"
    );
    assert_eq!(
        spec.operation("GET", "/things/other").err().unwrap().status,
        405,
        "/things/{{id}} takes PUT only"
    );
    let put = spec.operation("PUT", "/things/t1").unwrap();
    let none = HeaderMap::new();
    let problems = put.check_request(&Request {
        query: &[],
        headers: &none,
        body: b"",
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("the body is required"));
    let mut json_headers = HeaderMap::new();
    json_headers.insert("content-type", HeaderValue::from_static("text/plain"));
    let problems = put.check_request(&Request {
        query: &[],
        headers: &json_headers,
        body: b"{}",
    });
    assert!(
        problems[0].contains("content type `text/plain`"),
        "{problems:?}"
    );
}

/// A vendor of `own()`'s things: it keeps what is put, and answers a `wrong` thing when asked.
#[derive(Default)]
struct Things {
    kept: std::sync::Mutex<Vec<String>>,
}

impl super::fake::Vendor for Things {
    fn answer(&self, call: &super::fake::Call<'_>) -> super::fake::Reply {
        use super::fake::Reply;
        match call.operation.id.as_str() {
            "putThing" => {
                assert!(call.credential.is_none(), "own() asks for no credentials");
                let id = call.operation.path["id"].clone();
                if id == "boom" {
                    return Reply::json(503, json!({ "error": "down" }))
                        .header("retry-after", 7)
                        .undocumented();
                }
                self.kept.lock().unwrap().push(id.clone());
                let mut thing: Value = serde_json::from_slice(call.request.body).unwrap();
                if id == "wrong" {
                    thing["name"] = json!(7);
                }
                thing["id"] = json!(id);
                Reply::json(200, thing)
            }
            _ => Reply::empty(204),
        }
    }

    fn refuse(&self, status: u16, message: &str) -> super::fake::Reply {
        super::fake::Reply::json(status, json!({ "error": message }))
    }
}

async fn put(url: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .put(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_fake_answers_what_the_description_allows_and_records_the_rest() {
    let things = std::sync::Arc::new(Things::default());
    let fake = super::fake::ValidatingFake::start(own(), things.clone()).await;
    let square = json!({ "name": "box", "shape": { "kind": "square", "side": 1 } });

    assert_eq!(
        put(&format!("{}/things/t1", fake.url), square.clone()).await,
        200
    );
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    assert_eq!(fake.calls_to("putThing").len(), 1);

    let missing = reqwest::get(format!("{}/elsewhere", fake.url))
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let unnamed = json!({ "shape": square["shape"] });
    assert_eq!(
        put(&format!("{}/things/t2", fake.url), unnamed).await,
        400,
        "a body the description refuses"
    );
    assert_eq!(
        put(&format!("{}/things/wrong", fake.url), square.clone()).await,
        200
    );
    let boom = reqwest::Client::new()
        .put(format!("{}/things/boom", fake.url))
        .json(&square)
        .send()
        .await
        .unwrap();
    assert_eq!(boom.status().as_u16(), 503);
    assert_eq!(
        boom.headers()["retry-after"],
        "7",
        "an undocumented answer is sent as made"
    );

    assert_eq!(
        *things.kept.lock().unwrap(),
        ["t1", "wrong"],
        "a refused request never reaches the vendor"
    );
    let violations = fake.take_violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations[0].contains("GET /elsewhere"), "{violations:?}");
    assert!(violations[1].starts_with("request: ") && violations[1].contains("`name`"));
    assert!(violations[2].starts_with("answer: ") && violations[2].contains(".name"));
    let statuses: Vec<u16> = fake.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [200, 404, 400, 200, 503]);
}

#[tokio::test]
#[should_panic(expected = "the fake saw 1 violation(s)")]
async fn a_fake_dropped_with_violations_fails_the_test() {
    let fake =
        super::fake::ValidatingFake::start(own(), std::sync::Arc::new(Things::default())).await;
    reqwest::get(format!("{}/elsewhere", fake.url))
        .await
        .unwrap();
}
