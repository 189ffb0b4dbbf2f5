//! The web portal against the real server on 127.0.0.1:0 and a small OpenID provider
//! (portal/provider.rs), with a browser played by hand: cookies kept and sent as a browser
//! does, redirects followed one by one. What a real browser does on top is in
//! portal/browser.rs (ignored unless chromium and node's oidc-provider are installed).

mod browser;
mod flows;
mod provider;
mod tables;
mod webdriver;

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::support::{Files, TestApp, serve_files_on};
use provider::{CLIENT_ID, CLIENT_SECRET, FakeProvider};

/// The example configuration with `[web]` on, signing in at `issuer`; `extra` is added to
/// the `[web]` table.
pub fn enable_web(files: &Files, issuer: &str, base: &str, extra: &str) {
    enable_web_for(files, issuer, CLIENT_ID, CLIENT_SECRET, base, extra);
}

/// [`enable_web`] for another client of another provider.
pub fn enable_web_for(
    files: &Files,
    issuer: &str,
    client_id: &str,
    client_secret: &str,
    base: &str,
    extra: &str,
) {
    files.edit("gatehouse.toml", |text| {
        let text = match text.find("\n[web]") {
            Some(at) => text[..at].to_owned(),
            None => text,
        };
        format!(
            "{text}\n[web]\nenabled = true\nissuer = \"{issuer}\"\nclient_id = \"{client_id}\"\nclient_secret = \"{client_secret}\"\npublic_url = \"{base}\"\n{extra}"
        )
    });
}

/// The server with the portal on, its public URL its own address; `extra` goes into `[web]`.
pub async fn spawn_portal(provider: &FakeProvider, files: Files, extra: &str) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    enable_web(&files, &provider.issuer, &base, extra);
    serve_files_on(files, listener).await
}

/// A browser: its cookies for the portal, and nothing followed automatically.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
}

/// A page as the browser received it.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The value of the hidden `csrf` input on the page.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, response: reqwest::Response, to_portal: bool) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        if to_portal {
            for value in headers.get_all(SET_COOKIE) {
                let line = value.to_str().unwrap();
                let (pair, _) = line.split_once(';').unwrap_or((line, ""));
                let (name, value) = pair.split_once('=').unwrap();
                if line.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    /// GET `url` (a path of the portal, or a full URL elsewhere).
    pub async fn get(&mut self, url: &str) -> Page {
        let to_portal = url.starts_with('/') || url.starts_with(&self.base);
        let full = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_owned()
        };
        let mut request = self.http.get(full);
        if to_portal {
            request = request.header(COOKIE, self.cookie_header());
        }
        let response = request.send().await.unwrap();
        self.read(response, to_portal).await
    }

    /// POSTs a form to a path of the portal, as a browser does (with its `Origin`).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).unwrap();
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header("origin", self.base.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.read(response, true).await
    }

    /// Signs in at the provider as `email`, following each redirect; the last page.
    pub async fn sign_in(&mut self, provider: &FakeProvider, email: &str) -> Page {
        provider.sign_in_as(email);
        let mut page = self.get("/web/login").await;
        for _ in 0..4 {
            match page.location() {
                Some(to) if page.status.is_redirection() => {
                    let to = to.to_owned();
                    page = self.get(&to).await;
                }
                _ => break,
            }
        }
        page
    }

    pub fn session_cookie(&self) -> Option<&String> {
        self.cookies.get("gatehouse")
    }
}
