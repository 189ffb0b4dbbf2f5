//! One life of the real binary: `gatehouse serve` spawned on the kept data directory, its
//! log appended to one file for all lives, and killed with SIGKILL (no shutdown, no flush).

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Files, TOKEN, eventually, read};

pub struct Life {
    child: Child,
    pub base: String,
    pub http: reqwest::Client,
}

/// What an HTTP call came to: an answer, or none (the process died under it).
pub type Answer = Option<(StatusCode, Value)>;

impl Life {
    /// Spawns the binary and waits until it answers `/healthz`.
    pub async fn start(files: &Files, log: &Path) -> Life {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["--config", files.config().to_str().unwrap(), "serve"])
            .env("GATEHOUSE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info,gatehouse=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let life = Life {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        let healthz = format!("{}/healthz", life.base);
        eventually("gatehouse serve to come up", || async {
            life.http.get(&healthz).send().await?.error_for_status()
        })
        .await;
        life
    }

    /// SIGKILL, and wait for the process to be gone (it holds the store's lock).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .ok()?;
        Some(read(response).await)
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        let response = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .ok()?;
        let status = response.status();
        let text = response.text().await.ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// A signed Slack request to `path` (`/slack/commands`, `/slack/interactions`).
    pub async fn slack(&self, path: &str, body: String) -> Answer {
        let at = chrono::Utc::now().timestamp();
        let secret = crate::slack_inbound::SECRET.as_bytes();
        let signature = gatehouse::slack::verify::sign(secret, at, body.as_bytes());
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", at.to_string())
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .ok()?;
        let status = response.status();
        let text = response.text().await.ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// The value of an unlabelled gauge in `/metrics`.
    pub async fn gauge(&self, name: &str) -> Option<f64> {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?;
        let text = response.text().await.ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        // A failed test must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
