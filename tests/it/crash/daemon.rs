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
    /// Spawns the binary on a port of its own choosing (port 0: a port found free here
    /// could be taken by a parallel test before the binary binds it) and waits until it
    /// answers `/healthz` at the address its log says it serves on.
    pub async fn start(files: &Files, log_path: &Path) -> Life {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        // This life's lines are those after what earlier lives appended.
        let from = log.metadata().unwrap().len() as usize;
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["--config", files.config().to_str().unwrap(), "serve"])
            .env("GATEHOUSE_SERVER__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info,gatehouse=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let address = eventually("gatehouse serve to say where it serves", || {
            let exited = child.try_wait().unwrap();
            let text = std::fs::read(log_path).unwrap_or_default();
            let text = String::from_utf8_lossy(&text[from.min(text.len())..]).into_owned();
            std::future::ready(match serving_address(&text) {
                Some(address) => Ok(address),
                None if exited.is_some() => {
                    panic!("gatehouse serve exited ({exited:?}) before serving:\n{text}")
                }
                None => Err("not yet"),
            })
        })
        .await;
        let life = Life {
            child,
            base: format!("http://{address}"),
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

/// The address in the log's `gatehouse is serving address=…` line, if it has one.
fn serving_address(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("gatehouse is serving"))?;
    let at = line.find("address=")? + "address=".len();
    let address: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    (!address.is_empty()).then_some(address)
}
