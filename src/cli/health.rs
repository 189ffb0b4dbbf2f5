//! `healthcheck`: asks a running Gatehouse whether it is alive (`/healthz`) or ready
//! (`/readyz`) and exits 0 or 1, for container HEALTHCHECKs and scripts on hosts without
//! curl. It needs no admin token; the address is `--url`, else `server.listen`.

use std::time::Duration;

use anyhow::{Context, bail};

use super::Global;
use super::client::connectable;
use crate::config::Config;

/// How long a check may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(global: &Global, ready: bool) -> anyhow::Result<()> {
    let base = match &global.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let config = Config::load(&global.config)?;
            format!("http://{}", connectable(config.server.listen))
        }
    };
    let url = format!("{base}/{}", if ready { "readyz" } else { "healthz" });
    let http = crate::tls::http_client(None)?
        .timeout(TIMEOUT)
        .build()
        .context("setting up the HTTP client")?;
    let response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url} did not answer; is `gatehouse serve` running?"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url} answered {status}: {}", body.trim());
    }
    println!("ok: {url} answered {status}");
    Ok(())
}
