//! The real binary as a daemon: `gatehouse serve` in its own process, reloaded with SIGHUP
//! and stopped with SIGTERM, the way an init system drives it.

use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Files, TOKEN, eventually};

struct Daemon {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Daemon {
    async fn start(files: &Files) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["--config", files.config().to_str().unwrap(), "serve"])
            .env("GATEHOUSE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let daemon = Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let healthz = format!("{}/healthz", daemon.base);
        eventually("gatehouse serve to come up", || {
            daemon.http.get(&healthz).send()
        })
        .await;
        daemon
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().json().await.unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed test must not leave a server behind.
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn sighup_applies_a_leaver_and_sigterm_stops_cleanly() {
    gatehouse::app::install_tls_provider();
    let files = Files::copy_examples();
    let mut daemon = Daemon::start(&files).await;
    let body = json!({"as": "dan", "resource": "grafana", "role": "editor", "duration": "30m", "reason": "dashboards"});
    let created = daemon
        .call(reqwest::Method::POST, "/requests", Some(body))
        .await;
    let grant = created["grant"]["id"].as_str().unwrap().to_owned();

    files.edit("directory.toml", |text| {
        text.replacen(
            "title = \"Backend Engineer\"",
            "title = \"Backend Engineer\"\nactive = false",
            1,
        )
    });
    daemon.signal("HUP");
    eventually("dan's grant taken back, since he left", || async {
        let shown = daemon
            .call(reqwest::Method::GET, &format!("/grants/{grant}"), None)
            .await;
        let state = &shown["grant"]["state"]["state"];
        if state == "revoked" {
            Ok(())
        } else {
            Err(format!("it is {state}"))
        }
    })
    .await;

    daemon.signal("TERM");
    let status = tokio::task::spawn_blocking(move || daemon.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}
