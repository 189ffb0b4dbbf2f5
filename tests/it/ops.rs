//! What operators poll — `/metrics` of the real server and `gatehouse healthcheck` (the
//! endpoints themselves are in `api`) — and the JSON logs that follow one request.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, spawn_app};

/// The text of `/metrics`, checked to be the Prometheus text format.
async fn metrics(app: &TestApp) -> String {
    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// Scrapes until `line` (a whole sample line) appears.
async fn metrics_show(app: &TestApp, line: &str) -> String {
    let what = format!("/metrics to show `{line}`");
    crate::support::eventually(&what, || async {
        let text = metrics(app).await;
        if text.lines().any(|l| l == line) {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await
}

#[tokio::test]
async fn metrics_follow_requests_grants_and_the_connector_without_a_token() {
    let app = spawn_app().await;
    let body = json!({"as": "dan", "resource": "grafana", "role": "editor", "duration": "30m", "reason": "dashboards"});
    let (status, created) = app.post("/api/v1/requests", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let body = json!({"as": "alice", "resource": "prod-db", "role": "read", "duration": "2h", "reason": "replica lag"});
    let (status, pending) = app.post("/api/v1/requests", body).await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");
    let body = json!({"as": "alice", "resource": "prod-db", "role": "read", "duration": "90d", "reason": "forever"});
    let (status, _) = app.post("/api/v1/requests", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let text = metrics_show(&app, "gatehouse_grants_live{state=\"active\"} 1").await;
    for line in [
        "gatehouse_requests_total{type=\"temporary\",outcome=\"auto_approved\"} 1",
        "gatehouse_requests_total{type=\"temporary\",outcome=\"refused\"} 1",
        "gatehouse_requests_pending{stage=\"1\"} 1",
        "gatehouse_connector_calls_total{connector=\"log\",action=\"grant\",outcome=\"ok\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn the_healthcheck_command_exits_zero_on_a_live_server_and_one_on_none() {
    let app = spawn_app().await;
    let check = |url: String, extra: &'static [&'static str]| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
                .args(["--url", &url, "healthcheck"])
                .args(extra)
                .env_remove("GATEHOUSE_CONFIG")
                .output()
                .unwrap()
        })
    };
    let alive = check(app.base.clone(), &[]).await.unwrap();
    assert!(alive.status.success(), "{alive:?}");
    let ready = check(app.base.clone(), &["--ready"]).await.unwrap();
    assert!(ready.status.success(), "{ready:?}");
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", nowhere.local_addr().unwrap());
    drop(nowhere);
    let dead = check(url, &[]).await.unwrap();
    assert_eq!(dead.status.code(), Some(1), "{dead:?}");
    assert!(String::from_utf8_lossy(&dead.stderr).contains("did not answer"));
}

/// The spans of a JSON log line: the name and fields of each, outermost first.
fn spans(line: &serde_json::Value) -> Vec<serde_json::Value> {
    line["spans"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn json_logs_carry_the_request_id_through_decisions_deliveries_and_the_connector() {
    use crate::support::{Files, TOKEN};
    let files = Files::copy_examples();
    // `[log] format` (the README's walkthrough runs the `--log-format json` flag).
    files.edit("gatehouse.toml", |text| {
        text.replace("format = \"human\"", "format = \"json\"")
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = files.path("gatehouse.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["--config", files.config().to_str().unwrap()])
        .arg("serve")
        .env("GATEHOUSE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .env_remove("GATEHOUSE_LOG_FORMAT")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let call = |path: &str, body: serde_json::Value| {
        http.post(format!("{base}/api/v1{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let healthz = format!("{base}/healthz");
    crate::support::eventually("gatehouse serve to come up", || http.get(&healthz).send()).await;
    let ask = json!({"as": "alice", "resource": "prod-db", "role": "read", "duration": "2h", "reason": "replica lag"});
    assert!(call("/requests", ask).await.unwrap().status().is_success());
    // Bob's card goes out before he decides: a card for a request decided already is not
    // posted at all (alerts, which go first, may be delivered before it).
    crate::support::eventually("Bob's approval card in the log", || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        std::future::ready(text.contains("\"effect\":\"approval_card\""))
    })
    .await;
    for approver in ["bob", "carol"] {
        let approved = call("/requests/AR-1/approve", json!({"as": approver}));
        assert!(approved.await.unwrap().status().is_success());
    }
    crate::support::eventually("G-1 active", || async {
        let shown: serde_json::Value = http
            .get(format!("{base}/api/v1/grants/G-1"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = &shown["grant"]["state"]["state"];
        if state == "active" {
            Ok(())
        } else {
            Err(format!("it is {state}"))
        }
    })
    .await;
    let _ = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");

    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let about_ar1 = |line: &&serde_json::Value| spans(line).iter().any(|s| s["request"] == "AR-1");
    let connector = lines
        .iter()
        .filter(about_ar1)
        .find(|l| l["fields"]["connector"] == "log")
        .unwrap_or_else(|| panic!("the connector's line has no request=AR-1:\n{text}"));
    assert_eq!(connector["fields"]["grant"], "G-1");
    let delivered: Vec<&serde_json::Value> = lines.iter().filter(about_ar1).collect();
    assert!(
        delivered.iter().any(|l| spans(l)
            .iter()
            .any(|s| s["name"] == "deliver" && s["effect"] == "approval_card")),
        "approval cards for AR-1 are not logged in its span:\n{text}"
    );
}
