//! Starting the real server for a test: the example configuration copied into a temporary
//! directory (so a test may edit it), with its own data directory, on 127.0.0.1:0.

mod eventually;

pub use eventually::{eventually, eventually_within};

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token the test configuration uses, instead of the example's default.
pub const TOKEN: &str = "test-admin-token-0123456789";
/// A second token, expired long ago.
pub const EXPIRED_TOKEN: &str = "expired-admin-token-0123456789";

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples")
}

/// A copy of deploy/examples in a temporary directory; its data_dir is inside it too.
pub struct Files {
    pub dir: tempfile::TempDir,
}

/// `policy` without its `[[bundles]]` tables.
pub fn without_bundles(policy: &str) -> String {
    let mut kept = Vec::new();
    let mut in_bundle = false;
    for line in policy.lines() {
        if line.starts_with('[') {
            in_bundle = line.trim() == "[[bundles]]";
        }
        if !in_bundle {
            kept.push(line);
        }
    }
    kept.join("\n")
}

impl Files {
    /// The examples, except that the policy has no `[[bundles]]`: the example's bundle gives
    /// every engineer standing grants at the first start, which each test of another area
    /// would have to count around. [`Files::copy_examples_with_bundles`] keeps them.
    pub fn copy_examples() -> Files {
        let files = Self::copy_examples_with_bundles();
        files.edit("policy.toml", |text| without_bundles(&text));
        files
    }

    /// The examples as they are.
    pub fn copy_examples_with_bundles() -> Files {
        let dir = tempfile::tempdir().unwrap();
        for name in ["policy.toml", "directory.toml"] {
            std::fs::copy(examples().join(name), dir.path().join(name)).unwrap();
        }
        let config = std::fs::read_to_string(examples().join("gatehouse.toml")).unwrap();
        assert!(
            config.contains("${GATEHOUSE_ADMIN_TOKEN:-"),
            "the example's admin token line changed"
        );
        let config = config
            .lines()
            .map(|line| {
                if line.starts_with("token = ") {
                    format!("token = \"{TOKEN}\"")
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = format!(
            "{config}\n\n[[admin.tokens]]\nname = \"old\"\ntoken = \"{EXPIRED_TOKEN}\"\nexpires = \"2020-01-01T00:00:00Z\"\n"
        );
        std::fs::write(dir.path().join("gatehouse.toml"), config).unwrap();
        Files { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.path("gatehouse.toml")
    }

    /// Turns `[slack]` on in HTTP mode, talking to a fake Slack Web API at `api_url`.
    pub fn enable_slack(&self, api_url: &str, signing_secret: &str) {
        self.edit("gatehouse.toml", |text| {
            let from = text.find("[slack]").unwrap();
            let to = from + text[from..].find("\n[discord]").unwrap();
            let slack = format!(
                "[slack]\nenabled = true\nmode = \"http\"\nbot_token = \"xoxb-test\"\nsigning_secret = \"{signing_secret}\"\napi_url = \"{api_url}\"\nsecurity_channel = \"C0SECURITY\"\ncommand = \"/access\"\n"
            );
            format!("{}{slack}{}", &text[..from], &text[to..])
        });
    }

    /// Turns `[discord]` on in `mode` ("gateway" or "http"), talking to a fake Discord at
    /// `api_url`; `public_key` is the hex key HTTP mode verifies with.
    pub fn enable_discord(&self, api_url: &str, mode: &str, public_key: &str) {
        self.edit("gatehouse.toml", |text| {
            let from = text.find("[discord]").unwrap();
            let to = from + text[from..].find("\n[[connectors]]").unwrap();
            let discord = format!(
                "[discord]\nenabled = true\nmode = \"{mode}\"\nbot_token = \"{}\"\napplication_id = \"{}\"\npublic_key = \"{public_key}\"\nguild_id = \"{}\"\napi_url = \"{api_url}\"\nsecurity_channel = \"{}\"\ncommand = \"access\"\n",
                crate::fake_discord::BOT_TOKEN,
                crate::fake_discord::APPLICATION_ID,
                crate::fake_discord::GUILD_ID,
                crate::fake_discord::CHANNEL_ID,
            );
            format!("{}{discord}{}", &text[..from], &text[to..])
        });
    }

    /// Rewrites one of the files through `edit`.
    pub fn edit(&self, name: &str, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.path(name)).unwrap();
        std::fs::write(self.path(name), edit(text)).unwrap();
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub files: Files,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with the copied files changed by `prepare` before the server reads them.
pub async fn spawn_app_with(prepare: impl FnOnce(&Files)) -> TestApp {
    gatehouse::app::install_tls_provider();
    let files = Files::copy_examples();
    prepare(&files);
    serve_files(files).await
}

/// The real server on `files` as they are (a restart on the same data directory).
pub async fn serve_files(files: Files) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_files_on(files, listener).await
}

/// [`serve_files`] on a listener bound already (when the configuration must name its
/// address, as the portal's public URL does).
pub async fn serve_files_on(files: Files, listener: tokio::net::TcpListener) -> TestApp {
    gatehouse::app::install_tls_provider();
    let loaded = gatehouse::app::load(&files.config()).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gatehouse::app::serve(loaded, listener, async move {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        http: reqwest::Client::new(),
        files,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    /// Stops the server like [`TestApp::stop`], and hands its files back for another start.
    pub async fn stop_keeping_files(mut self) -> Files {
        let empty = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        let files = std::mem::replace(&mut self.files, empty);
        self.stop().await;
        files
    }

    /// Stops the server the way SIGTERM does and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The `error` sentence of an error answer.
pub fn error(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
}
