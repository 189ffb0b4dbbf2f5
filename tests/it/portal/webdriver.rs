//! A thin W3C WebDriver client over reqwest, enough for the portal's browser tests: a
//! session of Debian's chromium through chromedriver, going to pages, typing, clicking,
//! reading the page and its cookies, and screenshots. fantoccini is the well-kept client,
//! but these ten commands are a hundred lines over the HTTP client already built, where
//! fantoccini would add its own crates to every build of the test binary.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// chromedriver, started on a free port; killed when dropped.
pub struct Driver {
    pub url: String,
    child: Child,
    http: reqwest::Client,
}

impl Driver {
    /// Starts `chromedriver` (from PATH); panics, failing the test, when it is missing.
    pub async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium chromium-driver; .ci/run does)");
        let driver = Driver {
            url: format!("http://127.0.0.1:{port}"),
            child,
            http: reqwest::Client::new(),
        };
        for _ in 0..100 {
            let status = driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .await;
            if let Ok(response) = status
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready");
    }

    /// A new headless chromium with a fresh profile: its own cookies.
    pub async fn browser(&self) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1200,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
            }}
        });
        let response: Value = self
            .http
            .post(format!("{}/session", self.url))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {response}"))
            .to_owned();
        Browser {
            session: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
            _profile: profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser window.
pub struct Browser {
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!("WebDriver {path}: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        let url = self.call(reqwest::Method::GET, "/url", None).await;
        url.as_str().unwrap().to_owned()
    }

    pub async fn source(&self) -> String {
        let page = self.call(reqwest::Method::GET, "/source", None).await;
        page.as_str().unwrap().to_owned()
    }

    /// The page once it holds `text` (a navigation may finish after the command that
    /// started it returned); panics with the page after 10 s.
    pub async fn wait_for(&self, text: &str) -> String {
        let mut page = String::new();
        for _ in 0..100 {
            page = self.source().await;
            if page.contains(text) {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} never showed {text:?}: {page}", self.url().await);
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        // The W3C web element reference: an object with one key, the element's id.
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// The value of cookie `name` for the page shown.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        let cookies = self.call(reqwest::Method::GET, "/cookie", None).await;
        cookies
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["value"].as_str().unwrap().to_owned())
    }

    /// Replaces cookie `name` of the page shown with `value`.
    pub async fn set_cookie(&self, name: &str, value: &str) {
        self.call(reqwest::Method::DELETE, &format!("/cookie/{name}"), None)
            .await;
        let cookie =
            json!({ "cookie": { "name": name, "value": value, "path": "/", "httpOnly": true } });
        self.call(reqwest::Method::POST, "/cookie", Some(cookie))
            .await;
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap()
    }

    pub async fn close(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}
