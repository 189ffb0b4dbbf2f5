//! The HTTP server against slow, idle and oversized clients, over real sockets: a client
//! that does not finish its headers or its body in time is cut off, connections beyond
//! `server.max_connections` wait until one closes, bodies over a route's limit get 413
//! before they are read, and shutdown does not wait on slow clients past its grace period.
//! Timeouts are set to a second here; every wait has a generous bound that only a server
//! that never answers would reach.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TOKEN, TestApp, spawn_app_with};

/// Longer than any timeout configured here; reaching it means the server never acted.
const NEVER: Duration = Duration::from_secs(60);

/// The server with `settings` added to `[server]`.
async fn serve_with(settings: &'static str) -> TestApp {
    spawn_app_with(|files| {
        files.edit("gatehouse.toml", |text| {
            text.replacen("[server]\n", &format!("[server]\n{settings}\n"), 1)
        })
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://");
    TcpStream::connect(address).await.unwrap()
}

/// Everything the server sends until it closes the connection.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(NEVER, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server never closed the connection");
    String::from_utf8_lossy(&got).into_owned()
}

/// The JSON body of a raw HTTP response.
fn json_body(response: &str) -> Value {
    let (_, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

async fn healthz(app: &TestApp) -> StatusCode {
    // A client of its own: no pooled connection from earlier calls.
    let client = reqwest::Client::new();
    let response = client.get(format!("{}/healthz", app.base)).send();
    tokio::time::timeout(NEVER, response)
        .await
        .expect("/healthz never answered")
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_connection_that_sends_half_its_headers_or_nothing_is_closed_at_the_header_timeout() {
    let app = serve_with("header_timeout = \"1s\"").await;
    let mut half = connect(&app).await;
    half.write_all(b"POST /api/v1/requests HTTP/1.1\r\nHost: gatehouse\r\nContent-Le")
        .await
        .unwrap();
    let mut idle = connect(&app).await;
    until_closed(&mut half).await;
    until_closed(&mut idle).await;
    assert_eq!(healthz(&app).await, StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408_at_the_body_timeout_and_closed() {
    let app = serve_with("body_timeout = \"1s\"").await;
    let mut slow = connect(&app).await;
    let head = format!(
        "POST /api/v1/requests HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"resource\""
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let response = until_closed(&mut slow).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    let error = json_body(&response)["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(error.contains("within 1 s"), "{response}");
    let (_, requests) = app.get("/api/v1/requests").await;
    assert_eq!(requests["requests"], serde_json::json!([]));
}

#[tokio::test]
async fn beyond_max_connections_a_new_connection_waits_until_one_closes() {
    let app = serve_with("max_connections = 2\nheader_timeout = \"60s\"").await;
    let first = connect(&app).await;
    let _second = connect(&app).await;
    let base = app.base.clone();
    let waiting = tokio::spawn(async move {
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status()
    });
    // Both slots are taken by connections that send nothing: the third waits in the backlog.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a third connection was served");
    drop(first);
    let status = tokio::time::timeout(NEVER, waiting)
        .await
        .expect("the waiting connection was never served")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn with_every_slot_held_by_slow_clients_healthz_still_answers() {
    let app = serve_with("max_connections = 4\nheader_timeout = \"1s\"").await;
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // They keep sending a header byte at a time; the header timeout still ends them.
    let trickle = tokio::spawn(async move {
        for _ in 0..600 {
            for stream in &mut slow {
                let _ = stream.write_all(b"X").await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(healthz(&app).await, StatusCode::OK);
    trickle.abort();
}

#[tokio::test]
async fn an_oversized_admin_api_body_gets_413_with_a_json_error() {
    let app = serve_with("").await;
    let mut stream = connect(&app).await;
    let body = format!(
        "{{\"resource\": \"staging-db\", \"reason\": \"{}\"}}",
        "x".repeat(3_000_000)
    );
    let head = format!(
        "POST /api/v1/requests HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // The server may answer before reading the body, and close while it is still being sent.
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(body.as_bytes()).await;
        writer
    });
    let mut response = Vec::new();
    let _ = tokio::time::timeout(NEVER, reader.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let _writer = sending.await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response:.300}");
    let error = json_body(&response)["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(error.contains("at most 64 KiB"), "{response:.300}");
    let (_, requests) = app.get("/api/v1/requests").await;
    assert_eq!(requests["requests"], serde_json::json!([]));
}

#[tokio::test]
async fn shutdown_drops_slow_clients_after_the_grace_period() {
    let app =
        serve_with("header_timeout = \"60s\"\nbody_timeout = \"60s\"\nshutdown_grace = \"1s\"")
            .await;
    let mut half_head = connect(&app).await;
    half_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gate")
        .await
        .unwrap();
    let mut half_body = connect(&app).await;
    let head = format!(
        "POST /api/v1/requests HTTP/1.1\r\nHost: gatehouse\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"resource\""
    );
    half_body.write_all(head.as_bytes()).await.unwrap();
    // Both are surely being served before the shutdown starts.
    assert_eq!(healthz(&app).await, StatusCode::OK);
    tokio::time::timeout(NEVER, app.stop())
        .await
        .expect("shutdown waited on slow clients");
    until_closed(&mut half_head).await;
    until_closed(&mut half_body).await;
}
