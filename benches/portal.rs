//! The web portal's pages under a full store: 10,000 requests and 100,000 live grants, read
//! by signed-in people through the real server, one page at a time. For each page, the
//! latency of a whole GET (session check, reads, render, answer) over many loads: p50, p99
//! and the slowest. The target (issue 21) is p99 ≤ 50 ms.
//!
//! The sessions are written to the store before the server starts, as a sign-in would leave
//! them; the OpenID provider is a stub that only answers discovery (nobody signs in here).
//!
//! `cargo bench --bench portal`; `-- --smoke` or `GATEHOUSE_BENCH_SMOKE=1` for a tiny run.

// A test harness: its fakes check signatures and timestamps against the real wall clock and
// talk to local servers over plain HTTP, so the product's clock and TLS rules
// (clippy.toml's disallowed-methods) do not apply here.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use gatehouse::domain::session::Session;
use gatehouse::store::{SledStore, Store};
use gatehouse::web::session::session_key;
use support::{ADMIN_TOKEN, Server, Table, World, bulk_grants, machine, ms, percentile, smoke};

const PEOPLE: usize = 1000;
/// Resources requests are for, one request each per person at most.
const RESOURCES: usize = 10;

fn main() {
    let smoke = smoke();
    let (requests, grants, loads) = if smoke {
        (200_u64, 2_000_u64, 20_usize)
    } else {
        (10_000, 100_000, 500)
    };
    println!(
        "# portal bench{}\n{}",
        if smoke { " (smoke)" } else { "" },
        machine()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let provider = runtime.block_on(stub_provider());
    let world = World::new(PEOPLE, None, 64);
    let config = std::fs::read_to_string(world.config()).unwrap();
    let config = config.replace(
        &format!("token = \"{ADMIN_TOKEN}\"\n"),
        &format!(
            "token = \"{ADMIN_TOKEN}\"\npowers = [\"read\", \"request\", \"decide\", \"admin\", \"impersonate\"]\n"
        ),
    );
    let config = format!(
        "{config}\n[web]\nenabled = true\nissuer = \"{provider}\"\nclient_id = \"bench\"\nclient_secret = \"bench-secret\"\npublic_url = \"http://127.0.0.1\"\nidle_timeout = \"12h\"\n"
    );
    std::fs::write(world.config(), config).unwrap();
    // Requests are for ten more resources, one each per person: the grants are all `app`,
    // and nobody asks twice for what they hold or wait for.
    let mut policy = std::fs::read_to_string(world.dir.path().join("policy.toml")).unwrap();
    for r in 0..RESOURCES {
        policy.push_str(&format!(
            "\n[[resources]]\nid = \"r{r}\"\nname = \"Resource {r}\"\nkind = \"saas\"\nowners = [\"owner\"]\nrisk = \"medium\"\nconnector = \"log\"\n  [[resources.roles]]\n  id = \"use\"\n  max_duration = \"8h\"\n"
        ));
    }
    std::fs::write(world.dir.path().join("policy.toml"), policy).unwrap();

    let built = Instant::now();
    let now = Utc::now();
    // Grant G-(i+1) ends at `expiry(i)`.
    let expiry = |i: u64| now + TimeDelta::hours(8) + TimeDelta::seconds(i as i64);
    {
        let store = SledStore::open_with(&world.data_dir(), 64 * 1024 * 1024).unwrap();
        bulk_grants(&store, 1, grants, PEOPLE, expiry);
        for person in ["p0", "m0", "owner"] {
            let session = Session::new(person.into(), "bench-csrf".into(), now);
            store
                .put_session(&session_key(&cookie_of(person)), &session, true)
                .unwrap();
        }
    }
    let server = Server::start(&world.config());
    runtime.block_on(submit_requests(&server.base, requests));
    println!(
        "\nstored {grants} live grants and {requests} pending requests in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    let middle = requests / 2;
    let people = PEOPLE as u64;
    let pages = [
        (
            format!(
                "My access (p0: {} grants, {} requests)",
                grants / people,
                requests / people
            ),
            "p0",
            "/web/access".to_owned(),
        ),
        (
            "New request, with who would approve".to_owned(),
            "p0",
            "/web/new?resource=r0&role=use".to_owned(),
        ),
        (
            format!(
                "Approvals (m0: {} waiting, 50 a page)",
                requests / support::MANAGERS as u64
            ),
            "m0",
            "/web/approvals".to_owned(),
        ),
        (
            "Request page with its timeline".to_owned(),
            "owner",
            format!("/web/requests/AR-{middle}"),
        ),
        (
            format!(
                "Approvals, oldest first, from the middle of m0's {}",
                requests / support::MANAGERS as u64
            ),
            "m0",
            format!("/web/approvals?dir=asc&after={middle}"),
        ),
        (
            "Grants (admin: newest 50 of all)".to_owned(),
            "owner",
            "/web/grants".to_owned(),
        ),
        (
            "Audit log (admin: newest 50 events)".to_owned(),
            "owner",
            "/web/audit".to_owned(),
        ),
        (
            "Grants by end, soonest first".to_owned(),
            "owner",
            "/web/grants?sort=ends".to_owned(),
        ),
        (
            "Grants by end, from the middle".to_owned(),
            "owner",
            format!(
                "/web/grants?sort=ends&after={}.{}",
                expiry(grants / 2).timestamp_millis(),
                grants / 2 + 1
            ),
        ),
    ];
    let mut table = Table::new(
        &format!(
            "portal page latency, {grants} live grants and {requests} pending requests stored"
        ),
        &["page", "loads", "p50 ms", "p99 ms", "max ms", "bytes"],
    );
    for (name, person, path) in pages {
        let (mut latencies, bytes) =
            runtime.block_on(load_page(&server.base, person, &path, loads));
        latencies.sort();
        table.row(vec![
            name,
            loads.to_string(),
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(*latencies.last().unwrap()),
            bytes.to_string(),
        ]);
    }
    table.print();
    server.stop();
}

fn cookie_of(person: &str) -> String {
    format!("bench-session-of-{person}-0123456789abcdef")
}

/// Discovery and an empty JWKS: enough for the portal to start.
async fn stub_provider() -> String {
    use axum::Json;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let doc = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
    });
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(doc) }),
        )
        .route(
            "/jwks",
            get(|| async { Json(serde_json::json!({ "keys": [] })) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

/// `count` pending requests, person p(i % PEOPLE) each, through the admin API, 16 at a time.
async fn submit_requests(base: &str, count: u64) {
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/requests");
    let mut next = 0;
    while next < count {
        let batch: Vec<_> = (next..(next + 16).min(count))
            .map(|i| {
                let body = serde_json::json!({
                    "as": format!("p{}", i as usize % PEOPLE),
                    "resource": format!("r{}", (i as usize / PEOPLE) % RESOURCES),
                    "role": "use", "duration": "2h",
                    "reason": format!("bench request {i}"),
                });
                client
                    .post(&url)
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&body)
                    .send()
            })
            .collect();
        for sent in futures_util::future::join_all(batch).await {
            let response = sent.unwrap();
            assert!(
                response.status().is_success(),
                "{}",
                response.text().await.unwrap()
            );
        }
        next = (next + 16).min(count);
    }
}

/// Loads `path` as `person` `loads` times, one after another; the latencies and the size.
async fn load_page(base: &str, person: &str, path: &str, loads: usize) -> (Vec<Duration>, usize) {
    let client = reqwest::Client::new();
    let cookie = format!("gatehouse={}", cookie_of(person));
    let mut latencies = Vec::with_capacity(loads);
    let mut bytes = 0;
    for _ in 0..loads {
        let started = Instant::now();
        let response = client
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        latencies.push(started.elapsed());
        assert!(status.is_success(), "{path} as {person}: {status}: {body}");
        bytes = body.len();
    }
    (latencies, bytes)
}
