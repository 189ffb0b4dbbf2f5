//! What an admin token may do: each call needs one of its powers, and it acts as its own
//! operator unless it has `impersonate`, which the audit log then records.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::alice_asks_for_prod_db_admin;
use crate::support::{TestApp, error, read, spawn_app_with};

/// A token per power, each acting as its own operator, beside the example's token (which
/// has every power, `impersonate` included, for the walkthrough).
const TOKENS: &str = r#"
[[admin.tokens]]
name = "reader"
token = "reader-token-0123456789"
operator = "sue"
powers = ["read"]

[[admin.tokens]]
name = "requester"
token = "requester-token-0123456789"
operator = "sue"
powers = ["request"]

[[admin.tokens]]
name = "decider"
token = "decider-token-0123456789"
operator = "sue"
powers = ["decide"]

[[admin.tokens]]
name = "admin"
token = "admin-token-0123456789"
operator = "sue"
powers = ["admin"]

[[admin.tokens]]
name = "bob-laptop"
token = "bob-laptop-token-0123456789"
operator = "bob"
powers = ["read", "decide"]

[[admin.tokens]]
name = "legacy"
token = "legacy-token-0123456789"
operator = "carol"
"#;

async fn app_with_tokens() -> TestApp {
    spawn_app_with(|files| files.edit("gatehouse.toml", |text| format!("{text}\n{TOKENS}"))).await
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let request = app
        .http
        .request(method.clone(), format!("{}{path}", app.base))
        .bearer_auth(token);
    let request = if method == Method::GET {
        request
    } else {
        request.json(&body)
    };
    read(request.send().await.unwrap()).await
}

/// The token of [`TOKENS`] that has `power` alone.
fn token_with(power: &str) -> &'static str {
    match power {
        "read" => "reader-token-0123456789",
        "request" => "requester-token-0123456789",
        "decide" => "decider-token-0123456789",
        "admin" => "admin-token-0123456789",
        other => panic!("no token has only {other}"),
    }
}

/// Every admin API call, with the power it needs.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/requests", "read"),
    ("GET", "/api/v1/requests/AR-1", "read"),
    ("GET", "/api/v1/grants", "read"),
    ("GET", "/api/v1/grants/G-1", "read"),
    ("GET", "/api/v1/audit", "read"),
    ("GET", "/api/v1/audit/verify", "read"),
    ("POST", "/api/v1/requests", "request"),
    ("POST", "/api/v1/requests/AR-1/cancel", "request"),
    ("POST", "/api/v1/grants/G-1/extend", "request"),
    ("POST", "/api/v1/grants/G-1/end", "request"),
    ("POST", "/api/v1/requests/AR-1/approve", "decide"),
    ("POST", "/api/v1/requests/AR-1/reject", "decide"),
    ("POST", "/api/v1/grants/G-1/revoke", "admin"),
    ("POST", "/api/v1/people/zed/offboard", "admin"),
    ("POST", "/api/v1/reload", "admin"),
    ("GET", "/api/v1/backup", "admin"),
];

#[tokio::test]
async fn every_admin_call_needs_its_power_and_no_other_power_will_do() {
    let app = app_with_tokens().await;
    for (method, path, needed) in ROUTES {
        for power in ["read", "request", "decide", "admin"] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let (status, body) = call(&app, method, path, token_with(power), json!({})).await;
            let refused = format!("does not have the `{needed}` power");
            let said = body.get("error").and_then(Value::as_str).unwrap_or("");
            if power == *needed {
                assert!(
                    !said.contains("does not have"),
                    "{path} with {power}: {body}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{path} with {power}: {body}");
                assert!(said.contains(&refused), "{path} with {power}: {body}");
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_token_without_impersonate_decides_only_as_its_own_operator() {
    let app = app_with_tokens().await;
    let (status, body) = app
        .post("/api/v1/requests", alice_asks_for_prod_db_admin())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let approve = "/api/v1/requests/AR-1/approve";
    let bob = "bob-laptop-token-0123456789";

    // Bob's token cannot approve as carol (the owners' stage) nor as anyone else.
    let (status, body) = call(&app, Method::POST, approve, bob, json!({ "as": "carol" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        error(&body).starts_with(
            "the admin token `bob-laptop` acts as its operator `bob` only; acting as `carol` \
             needs the `impersonate` power"
        ),
        "{body}"
    );
    let (_, body) = app.get("/api/v1/requests/AR-1").await;
    assert_eq!(body["request"]["current_stage"], 0, "nothing changed");

    // As bob himself it is an ordinary decision, audited as his.
    let (status, body) = call(&app, Method::POST, approve, bob, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["request"]["current_stage"], 1);
    let (_, audit) = app.get("/api/v1/audit?from=2").await;
    assert_eq!(
        audit["records"][0]["event"]["actor"],
        json!({ "type": "operator", "token": "bob-laptop", "for_person": "bob" })
    );

    // A token written before powers existed keeps deciding as its operator, and only so.
    let legacy = "legacy-token-0123456789";
    let (status, body) = call(&app, Method::POST, approve, legacy, json!({ "as": "dora" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        error(&body).contains("needs the `impersonate` power"),
        "{body}"
    );
    let (status, body) = call(&app, Method::POST, approve, legacy, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["request"]["current_stage"], 2);
    app.stop().await;
}

#[tokio::test]
async fn an_impersonated_decision_is_audited_naming_the_token_and_the_impersonation() {
    let app = app_with_tokens().await;
    let (status, body) = app
        .post("/api/v1/requests", alice_asks_for_prod_db_admin())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .post("/api/v1/requests/AR-1/approve", json!({ "as": "bob" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, audit) = app.get("/api/v1/audit").await;
    let approval = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["event"])
        .find(|e| e["action"] == "stage_approved")
        .unwrap();
    assert_eq!(
        approval["actor"],
        json!({ "type": "operator", "token": "ops", "for_person": "bob", "impersonated": true })
    );
    let (status, body) = app.get("/api/v1/audit/verify").await;
    assert_eq!(
        (status, &body["ok"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
    app.stop().await;
}
