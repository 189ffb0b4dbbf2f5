//! Bundles through the running server: the example's `engineering-baseline` reaches the
//! engineers who are already in the directory at the first start, and a restart gives nothing
//! twice.

use serde_json::Value;

use crate::support::{Files, TestApp, eventually, serve_files};

/// (person, resource, role) of every live grant, sorted.
async fn live(app: &TestApp) -> Vec<(String, String, String)> {
    let (_, body) = app.get("/api/v1/grants?live=true&limit=1000").await;
    let text = |g: &Value, key: &str| g[key].as_str().unwrap().to_owned();
    let mut grants: Vec<_> = body["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (text(g, "person"), text(g, "resource"), text(g, "role")))
        .collect();
    grants.sort();
    grants
}

fn baseline(people: &[&str]) -> Vec<(String, String, String)> {
    people
        .iter()
        .flat_map(|p| {
            [("github", "member"), ("grafana", "viewer")]
                .map(|(r, o)| ((*p).to_owned(), r.to_owned(), o.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn a_bundle_reaches_the_people_already_there_at_the_first_start_and_only_once() {
    let app = serve_files(Files::copy_examples_with_bundles()).await;
    // The active engineers of the example directory (gus is inactive).
    let engineers = baseline(&["alice", "bob", "carol", "dan", "dora"]);
    eventually("the bundle to reach every engineer", || async {
        let now = live(&app).await;
        (now == engineers).then_some(()).ok_or(format!("{now:?}"))
    })
    .await;

    let files = app.stop_keeping_files().await;
    let app = serve_files(files).await;
    assert_eq!(live(&app).await, engineers, "a restart gives nothing twice");
    let (_, all) = app.get("/api/v1/grants?limit=1000").await;
    assert_eq!(all["grants"].as_array().unwrap().len(), engineers.len());
    app.stop().await;
}
