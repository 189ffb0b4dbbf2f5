//! The admin API, against the real server on 127.0.0.1:0 with the example configuration.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{EXPIRED_TOKEN, error, read, spawn_app};

mod powers;

fn alice_asks_for_prod_db_admin() -> Value {
    json!({
        "as": "alice",
        "resource": "prod-db",
        "role": "admin",
        "duration": "2h",
        "reason": "INC-4211: replication is stuck",
        "fields": { "ticket": "INC-4211" },
    })
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");
    let (status, body) = read(
        app.http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // No platform keeps a connection in the example configuration: ready. On sled the one
    // process runs the scheduler and the outbox: it leads, and /metrics says so too.
    assert_eq!(
        body,
        json!({ "store": "ok", "platforms": {}, "role": "leader" })
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("\ngatehouse_leader 1\n"), "{metrics}");
    assert!(
        !metrics.contains("\ngatehouse_lease_age_seconds "),
        "no lease with sled: {metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_refuses_missing_wrong_and_expired_tokens() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/requests", app.base);

    let (status, body) = read(app.http.get(&url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        error(&body).starts_with("missing bearer token; pass Authorization: Bearer <token>"),
        "{body}"
    );

    let (status, body) = read(
        app.http
            .get(&url)
            .bearer_auth("not-the-token-at-all")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error(&body), "invalid token");

    let (status, body) = read(
        app.http
            .get(&url)
            .bearer_auth(EXPIRED_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        error(&body),
        "the admin token `old` expired at 2020-01-01 00:00 UTC; give it a new `expires` in gatehouse.toml [admin] and reload"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_privileged_request_is_granted_after_manager_owner_and_two_security_approvals() {
    let app = spawn_app().await;
    let (status, body) = app
        .post("/api/v1/requests", alice_asks_for_prod_db_admin())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["request"]["state"]["state"], "pending");
    assert_eq!(body["request"]["submitted_by"], "ops");
    assert_eq!(body["grant"], Value::Null);

    for (approver, stage_after) in [("bob", 1), ("carol", 2), ("sam", 2)] {
        let (status, body) = app
            .post(
                &format!("/api/v1/requests/{id}/approve"),
                json!({ "as": approver }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{approver}: {body}");
        assert_eq!(body["request"]["state"]["state"], "pending", "{approver}");
        assert_eq!(body["request"]["current_stage"], stage_after, "{approver}");
    }
    let (status, body) = app
        .post(
            &format!("/api/v1/requests/{id}/approve"),
            json!({ "as": "sue" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["request"]["state"]["state"], "approved");
    let grant = body["grant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["grant"]["person"], "alice");
    assert_eq!(body["request"]["state"]["grant"], grant.as_str());

    let (status, body) = app.get(&format!("/api/v1/grants/{grant}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["grant"]["resource"], "prod-db");
    let (_, body) = app.get("/api/v1/requests?pending=true").await;
    assert_eq!(body["requests"], json!([]));

    let (status, body) = app.get("/api/v1/audit").await;
    assert_eq!(status, StatusCode::OK);
    let first = &body["records"][0]["event"];
    // The example's token has `impersonate` for the walkthrough; acting as alice is one.
    assert_eq!(
        first["actor"],
        json!({ "type": "operator", "token": "ops", "for_person": "alice", "impersonated": true })
    );

    let (status, body) = app.get("/api/v1/audit/verify").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true);
    assert!(body["events"].as_u64().unwrap() >= 6, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn an_approval_by_someone_who_is_not_an_approver_changes_nothing() {
    let app = spawn_app().await;
    let (_, body) = app
        .post("/api/v1/requests", alice_asks_for_prod_db_admin())
        .await;
    let id = body["request"]["id"].as_str().unwrap().to_owned();
    let (_, before) = app.get(&format!("/api/v1/requests/{id}")).await;

    let (status, body) = app
        .post(
            &format!("/api/v1/requests/{id}/approve"),
            json!({ "as": "dan" }),
        )
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST,
        "{status}"
    );
    assert_eq!(
        error(&body),
        format!(
            "you are not an approver of the current stage of {id} (\"Manager approval\"), so nothing was changed"
        )
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/requests/{id}/approve"),
            json!({ "as": "alice" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("you asked for"), "{body}");

    let (_, after) = app.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(before, after);
    app.stop().await;
}

#[tokio::test]
async fn bad_ids_bodies_and_unknown_records_get_sentences() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/requests/G-7").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body), "`G-7` is not a valid id; ids look like AR-12");

    let (status, body) = app.get("/api/v1/requests/AR-999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "there is no request AR-999");

    let (status, body) = app
        .post(
            "/api/v1/requests",
            json!({ "as": "alice", "role": "admin" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("missing field `resource`"), "{body}");

    let mut ask = alice_asks_for_prod_db_admin();
    ask["duration"] = json!("2 hours");
    let (status, body) = app.post("/api/v1/requests", ask).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body).contains("`2 hours` is not a duration"),
        "{body}"
    );

    let mut ask = alice_asks_for_prod_db_admin();
    ask["duration"] = json!("8h");
    let (status, body) = app.post("/api/v1/requests", ask).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&body),
        "prod-db/admin allows at most 2h; ask for 2h or less"
    );

    let (status, body) = app.post("/api/v1/requests/AR-1/approve", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body).starts_with("say who this is done for"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn ids_with_signs_or_leading_zeros_and_reasons_that_say_nothing_or_too_much_are_refused() {
    let app = spawn_app().await;
    let (status, body) = app
        .post("/api/v1/requests", alice_asks_for_prod_db_admin())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["request"]["id"], "AR-1");
    for alias in ["AR-01", "AR-+1", "ar-001"] {
        let (status, body) = app.get(&format!("/api/v1/requests/{alias}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{alias}: {body}");
        assert_eq!(
            error(&body),
            format!("`{alias}` is not a valid id; ids look like AR-12")
        );
    }
    let (status, _) = app.get("/api/v1/requests/ar-1").await;
    assert_eq!(status, StatusCode::OK);

    let mut ask = alice_asks_for_prod_db_admin();
    ask["role"] = json!("read");
    ask["fields"] = json!({});
    ask["reason"] = json!("\u{200B}\u{200C}\u{FEFF}");
    let (status, body) = app.post("/api/v1/requests", ask.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        error(&body),
        "the reason is made only of invisible characters (spaces, zero-width or control \
         characters); write in words why"
    );
    ask["reason"] = json!("x".repeat(2_001));
    let (status, body) = app.post("/api/v1/requests", ask).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        error(&body),
        "the reason is 2001 characters long; keep it to 2000 or fewer and link to a ticket \
         for the details"
    );
    let (status, body) = app
        .post(
            "/api/v1/requests/AR-1/reject",
            json!({ "as": "bob", "reason": "\u{2060}\u{00AD}" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error(&body).contains("invisible characters"), "{body}");
    let (_, body) = app.get("/api/v1/requests/AR-1").await;
    assert_eq!(body["request"]["state"]["state"], "pending");
    app.stop().await;
}

#[tokio::test]
async fn a_reload_with_a_broken_policy_keeps_the_old_policy() {
    let app = spawn_app().await;
    app.files.edit("policy.toml", |text| {
        text.replace("\"group:security\"", "\"group:secuirty\"")
    });

    let (status, body) = app.post("/api/v1/reload", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error(&body).contains("old one stays in force"), "{body}");
    let diagnostics: Vec<&str> = body["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        diagnostics
            .iter()
            .any(|d| d.contains("policy.toml:") && d.contains("secuirty")),
        "{diagnostics:?}"
    );

    // The old policy still routes the security stage to the security group.
    let (status, body) = app
        .post("/api/v1/requests", alice_asks_for_prod_db_admin())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let security = &body["request"]["plan"]["stages"][2]["approvers"];
    assert_eq!(security, &json!(["sam", "sid", "sue"]));

    app.files.edit("policy.toml", |text| {
        text.replace("\"group:secuirty\"", "\"group:security\"")
    });
    let (status, body) = app.post("/api/v1/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["people"], 12);
    app.stop().await;
}

#[tokio::test]
async fn offboarding_needs_an_admin_and_takes_back_live_grants() {
    let app = spawn_app().await;
    let ask = json!({ "as": "dan", "resource": "grafana", "role": "viewer", "duration": "1h", "reason": "dashboards" });
    let (status, body) = app.post("/api/v1/requests", ask).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["request"]["state"]["state"], "approved",
        "low risk and short is approved at once"
    );
    let grant = body["grant"]["id"].as_str().unwrap().to_owned();

    let (status, body) = app
        .post("/api/v1/people/dan/offboard", json!({ "as": "alice" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error(&body), "only an admin can offboard someone");

    let (status, body) = app
        .post("/api/v1/people/dan/offboard", json!({ "as": "sue" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["grants"], json!([grant]));
    let (_, body) = app.get("/api/v1/grants?live=true").await;
    assert_eq!(body["grants"], json!([]));
    app.stop().await;
}
