//! The admin API client behind the commands that act on a running server.
//!
//! Where it goes: `--url` / `GATEHOUSE_URL`, else `http://{server.listen}` of gatehouse.toml
//! (a wildcard address becomes loopback). Which token: `--token` / `GATEHOUSE_TOKEN`, else the
//! first token of `[admin]` in gatehouse.toml that has not expired.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use super::Global;
use crate::config::Config;
use crate::engine::{Clock, SystemClock};

/// How long a download (a backup of a big store) may take in all; other calls get 30 s.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn from_global(global: &Global) -> anyhow::Result<Self> {
        let config = match (&global.url, &global.token) {
            (Some(_), Some(_)) => None,
            _ => Some(Config::load(&global.config)?),
        };
        let base = match (&global.url, &config) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(config)) => format!("http://{}", connectable(config.server.listen)),
            (None, None) => bail!("no server address; pass --url or --config"),
        };
        let token = match (&global.token, &config) {
            (Some(token), _) => token.clone(),
            (None, Some(config)) => token_from(config)?,
            (None, None) => bail!("no admin token; pass --token or --config"),
        };
        let http = crate::tls::http_client(None)?
            .timeout(Duration::from_secs(30))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Self { http, base, token })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let request = self.http.get(self.url(path));
        self.send(request).await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let request = self.http.post(self.url(path)).json(&body);
        self.send(request).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Writes the body of a successful GET, such as a backup, to `out` as it arrives; how
    /// many bytes. The whole download may take up to [`DOWNLOAD_TIMEOUT`].
    pub async fn download(&self, path: &str, out: &mut impl std::io::Write) -> anyhow::Result<u64> {
        let request = self.http.get(self.url(path)).timeout(DOWNLOAD_TIMEOUT);
        let mut response = self.answer(request).await?;
        let mut written = 0;
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("reading the answer of Gatehouse at {}", self.base))?
        {
            out.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = self.answer(request).await?;
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    /// Sends `request` with the token; a successful answer, or the server's sentence.
    async fn answer(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|err| {
                if crate::tls::is_refused_certificate(&err) {
                    anyhow!(
                        "Gatehouse at {} showed a certificate this machine does not trust ({}); \
                         add its CA to the system's trusted certificates",
                        self.base,
                        crate::connector::webhook::error_chain(&err)
                    )
                } else if err.is_connect() {
                    anyhow!(
                        "cannot reach Gatehouse at {}: is `gatehouse serve` running?",
                        self.base
                    )
                } else if err.is_timeout() {
                    anyhow!("Gatehouse at {} did not answer in time", self.base)
                } else {
                    anyhow!("calling Gatehouse at {} failed: {err}", self.base)
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let mut message = body
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| format!("Gatehouse answered {status}"), str::to_owned);
        if let Some(diagnostics) = body.get("diagnostics").and_then(Value::as_array) {
            for line in diagnostics.iter().filter_map(Value::as_str) {
                message.push('\n');
                message.push_str(line);
            }
        }
        Err(ApiFailure {
            status: status.as_u16(),
            message,
        }
        .into())
    }
}

/// The server said no; its sentence is the message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    pub status: u16,
    pub message: String,
}

/// The first token of `[admin]` that can still be used.
fn token_from(config: &Config) -> anyhow::Result<String> {
    let now = SystemClock.now();
    let tokens = &config.admin.tokens;
    if let Some(token) = tokens.iter().find(|t| !t.is_expired_at(now)) {
        return Ok(token.token.expose().to_owned());
    }
    if tokens.is_empty() {
        bail!(
            "gatehouse.toml has no [admin] token, so the CLI cannot reach the admin API; add \
             [[admin.tokens]] with a name and token, or pass --token"
        )
    }
    bail!(
        "every [admin] token in gatehouse.toml has expired; give one a new `expires`, or pass --token"
    )
}

/// Where to connect to reach a server listening on `listen`.
pub(super) fn connectable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, listen.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, listen.port()))
        }
        _ => listen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_reached_through_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(connectable(any).to_string(), "127.0.0.1:8080");
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(connectable(v6).to_string(), "[::1]:8080");
        let fixed: SocketAddr = "10.0.0.5:9000".parse().unwrap();
        assert_eq!(connectable(fixed), fixed);
    }
}
