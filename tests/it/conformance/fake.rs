//! The official conformance fake (`fake_platforms.py` of the conformance kit) as a child
//! process: which Python runs it, free ports, waiting until it answers, and the calls it
//! recorded.
//!
//! The kit is not part of this repository. The tests using it are `#[ignore]`d; `.ci/run`
//! makes a venv with the kit's requirements, exports the two variables below and runs them
//! with `--ignored`. Asked to run, they never skip: a missing variable fails them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

/// The variable naming a Python with the kit's requirements.txt installed.
pub const PYTHON_VAR: &str = "GATEHOUSE_CONFORMANCE_PYTHON";
/// The variable naming the kit's directory, the one holding fake_platforms.py.
pub const KIT_VAR: &str = "GATEHOUSE_CONFORMANCE_KIT";

/// The value of `var`; fails the test, saying how to set it up, when it is missing.
fn required(var: &str, what: &str) -> PathBuf {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(value) => value.into(),
        None => panic!(
            "this test cannot run: {var} is not set; export it to {what} (.ci/run makes a venv \
             with the kit's requirements.txt and exports {PYTHON_VAR} and {KIT_VAR})"
        ),
    }
}

/// The Python to run the fake with.
pub fn python() -> PathBuf {
    required(
        PYTHON_VAR,
        "a python with the conformance kit's requirements.txt installed",
    )
}

/// The kit, read in place and never copied.
pub fn kit() -> PathBuf {
    let kit = required(KIT_VAR, "the conformance kit's directory");
    assert!(
        kit.join("fake_platforms.py").is_file(),
        "{KIT_VAR}={} has no fake_platforms.py: it must name the conformance kit's directory",
        kit.display()
    );
    kit
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The running fake; killed when dropped.
pub struct OfficialFake {
    child: Child,
    slack_port: u16,
    discord_port: u16,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl OfficialFake {
    /// Starts the fake on two free ports. A port is free when asked for and taken by the
    /// fake a moment later, so another test may take it in between: the fake then exits
    /// with `Address already in use`, and is started again on two other ports.
    pub async fn start() -> OfficialFake {
        for _ in 0..4 {
            match Self::start_once().await {
                Ok(fake) => return fake,
                Err(stderr) if stderr.contains("Address already in use") => continue,
                Err(stderr) => panic!("the conformance fake exited before answering:\n{stderr}"),
            }
        }
        panic!("the conformance fake found its ports taken four times in a row");
    }

    /// The fake started once, or what it said on its standard error when it exited first.
    async fn start_once() -> Result<OfficialFake, String> {
        gatehouse::app::install_tls_provider();
        let (python, kit) = (python(), kit());
        let dir = tempfile::tempdir().unwrap();
        let (slack_port, discord_port) = (free_port(), free_port());
        let output = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let child = Command::new(&python)
            .arg(kit.join("fake_platforms.py"))
            .arg("--slack-port")
            .arg(slack_port.to_string())
            .arg("--discord-port")
            .arg(discord_port.to_string())
            .arg("--log")
            .arg(dir.path().join("calls.jsonl"))
            .current_dir(&kit)
            .stdin(Stdio::null())
            .stdout(output("stdout"))
            .stderr(output("stderr"))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{PYTHON_VAR}={} could not be run: {e}", python.display()));
        let mut fake = OfficialFake {
            child,
            slack_port,
            discord_port,
            dir,
            http: reqwest::Client::new(),
        };
        for _ in 0..300 {
            if let Some(status) = fake.child.try_wait().unwrap() {
                return Err(format!("({status}) {}", fake.stderr()));
            }
            let answer = fake.http.get(fake.url("/__calls")).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Ok(fake);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the conformance fake did not answer in 15 s:\n{}",
            fake.stderr()
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.slack_port)
    }

    /// What Gatehouse's `slack.api_url` is set to.
    pub fn api_url(&self) -> String {
        self.url("/api")
    }

    /// What Gatehouse's `discord.api_url` is set to.
    pub fn discord_api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.discord_port)
    }

    /// The Discord REST calls, from `GET /__calls` on the Discord port.
    pub async fn discord_calls(&self) -> Vec<Value> {
        let url = format!("{}/__calls", self.discord_api_url());
        let answer = self.http.get(url).send().await.unwrap();
        answer.json().await.unwrap()
    }

    /// Waits until `done` holds for the Discord calls recorded so far.
    pub async fn until_discord(&self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let done = &done;
        crate::support::eventually(what, || async move {
            let calls = self.discord_calls().await;
            done(&calls)
                .then_some(())
                .ok_or_else(|| format!("{:#}", Value::Array(calls)))
        })
        .await;
    }

    /// Sends an interaction response Gatehouse gave (HTTP mode answers in the HTTP response)
    /// to the fake's callback endpoint, so the kit checks it like every other call.
    pub async fn check_callback(&self, interaction: &str, token: &str, callback: &Value) {
        let url = format!(
            "{}/api/v10/interactions/{interaction}/{token}/callback",
            self.discord_api_url()
        );
        self.http.post(url).json(callback).send().await.unwrap();
    }

    /// A `response_url` the fake records posts to.
    pub fn response_url(&self) -> String {
        self.url("/response_url/1")
    }

    /// What the fake wrote on stderr (tracebacks, if it broke).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Every recorded call, from the --log JSONL: both platforms and `response_url` posts,
    /// each `{platform, method, path, body, violations, status}`.
    pub fn logged(&self) -> Vec<Value> {
        let log = std::fs::read_to_string(self.dir.path().join("calls.jsonl")).unwrap_or_default();
        log.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// The Slack Web API calls, from `GET /__calls`.
    pub async fn calls(&self) -> Vec<Value> {
        let answer = self.http.get(self.url("/__calls")).send().await.unwrap();
        answer.json().await.unwrap()
    }

    /// Waits until `done` holds for the Web API calls recorded so far.
    pub async fn until(&self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let done = &done;
        crate::support::eventually(what, || async move {
            let calls = self.calls().await;
            done(&calls)
                .then_some(())
                .ok_or_else(|| format!("{:#}", Value::Array(calls)))
        })
        .await;
    }

    /// Waits until no new call has arrived for `quiet`.
    pub async fn settle(&self, quiet: Duration) {
        let mut seen = self.calls().await.len();
        for _ in 0..100 {
            tokio::time::sleep(quiet).await;
            let now = self.calls().await.len();
            if now == seen {
                return;
            }
            seen = now;
        }
        panic!("Gatehouse never stopped calling Slack");
    }
}

/// The name of a Web API call, from its path `/api/{method}`.
pub fn method(call: &Value) -> &str {
    let path = call["path"].as_str().unwrap_or_default();
    path.strip_prefix("/api/").unwrap_or(path)
}

/// Whether `call` is to `name` and its arguments mention `words`.
pub fn is(call: &Value, name: &str, words: &str) -> bool {
    method(call) == name && call["body"].to_string().contains(words)
}
