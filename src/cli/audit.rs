//! `audit verify` and `audit export`: offline on a stopped data directory; through the admin
//! API of the server `--url` names, or of the running server when it holds the directory's
//! lock.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::client::Client;
use super::{AuditCommand, Global};
use crate::app;
use crate::config::Config;
use crate::domain::anchor::{AnchorReport, PublishedHead};
use crate::domain::audit::AuditRecord;
use crate::store::export::{ExportFormat, export_audit};
use crate::store::{Store, StoreError};

const PAGE: usize = 1000;

pub async fn run(global: &Global, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { heads } => verify(global, heads).await,
        AuditCommand::Export { format, since, out } => {
            let format: ExportFormat = format.parse()?;
            let since = since.as_deref().map(parse_since).transpose()?;
            let records = records(global).await?;
            match &out {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut writer = std::io::BufWriter::new(file);
                    let written = export_audit(records.into_iter(), format, since, &mut writer)
                        .and_then(|n| writer.flush().map(|()| n))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("exported {written} audit records to {}", path.display());
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    let written = export_audit(records.into_iter(), format, since, &mut stdout)
                        .and_then(|n| stdout.flush().map(|()| n));
                    // A reader that stops early (`| head`) is not an error.
                    match written {
                        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                            return Err(err).context("cannot write to standard output");
                        }
                        _ => {}
                    }
                }
            }
            Ok(())
        }
    }
}

/// What opening the data directory offline found.
enum Offline<T> {
    Done(T),
    /// Ask the server: `--url` named one, or the data directory is locked (a server is
    /// running on it) or otherwise cannot be opened (why, then).
    Server(Option<StoreError>),
}

fn data_dir(global: &Global) -> anyhow::Result<(Config, PathBuf)> {
    let config = Config::load(&global.config)?;
    let dir = config.data_dir();
    if !dir.exists() {
        bail!(
            "there is no data directory at {} (server.data_dir); Gatehouse has not run with this configuration yet",
            dir.display()
        );
    }
    Ok((config, dir))
}

/// Does `work` on the data directory itself, unless `--url` names a server to ask (an
/// explicit `--url` wins, as it does for `backup`) or a server holds the directory.
async fn offline<T: Send + 'static>(
    global: &Global,
    work: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> anyhow::Result<Offline<T>> {
    if global.url.is_some() {
        return Ok(Offline::Server(None));
    }
    let (config, _) = data_dir(global)?;
    let outcome = tokio::task::spawn_blocking(move || match app::open_anchored_store(&config) {
        Ok((store, _)) => work(&*store).map(Offline::Done),
        Err(busy @ StoreError::Open { .. }) => Ok(Offline::Server(Some(busy))),
        Err(other) => Err(other),
    })
    .await??;
    Ok(outcome)
}

async fn verify(global: &Global, heads: Vec<PublishedHead>) -> anyhow::Result<()> {
    let asked = heads.clone();
    let report = match offline(global, move |store| store.verify_audit_against(&asked)).await? {
        Offline::Done(report) => report,
        Offline::Server(why) => {
            let query = heads
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let answer = via_api(global, why, |client| async move {
                let path = if query.is_empty() {
                    "/audit/verify".to_owned()
                } else {
                    format!("/audit/verify?heads={query}")
                };
                client.get(&path).await
            })
            .await?;
            serde_json::from_value::<AnchorReport>(answer["anchor"].clone())
                .context("reading the verification from the server")?
        }
    };
    println!("ok: the audit log is intact ({} events)", report.events);
    for note in report.notes() {
        println!("  {note}");
    }
    if let Some(head) = &report.head {
        println!("head: {head}");
    }
    Ok(())
}

async fn records(global: &Global) -> anyhow::Result<Vec<AuditRecord>> {
    let read_all = |store: &dyn Store| {
        let mut all = Vec::new();
        loop {
            let page = store.audit(all.len() as u64 + 1, PAGE)?;
            let full = page.len() == PAGE;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    };
    match offline(global, read_all).await? {
        Offline::Done(records) => Ok(records),
        Offline::Server(why) => {
            via_api(global, why, |client| async move {
                let mut all: Vec<AuditRecord> = Vec::new();
                loop {
                    let from = all.len() + 1;
                    let answer = client
                        .get(&format!("/audit?from={from}&limit={PAGE}"))
                        .await?;
                    let page: Vec<AuditRecord> = serde_json::from_value(
                        answer.get("records").cloned().unwrap_or(Value::Null),
                    )
                    .context("reading audit records from the server")?;
                    let full = page.len() == PAGE;
                    all.extend(page);
                    if !full {
                        return Ok(all);
                    }
                }
            })
            .await
        }
    }
}

/// Runs `call` against the running server; if the data directory could not be opened
/// (`why`) and the server cannot be reached either, says both why.
async fn via_api<T, F, Fut>(global: &Global, why: Option<StoreError>, call: F) -> anyhow::Result<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    if let Some(why) = &why {
        tracing::debug!(%why, "the data directory is in use; asking the running server");
    }
    let client = Client::from_global(global)?;
    call(client).await.map_err(|err| match &why {
        Some(why) if err.to_string().starts_with("cannot reach") => anyhow!("{why}; and {err}"),
        _ => err,
    })
}

/// `2026-01-01` (midnight UTC) or an RFC 3339 instant.
fn parse_since(text: &str) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            anyhow!(
                "`{text}` is not a day or time; write --since 2026-01-01 or 2026-01-01T09:00:00Z"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_day_or_an_instant() {
        assert_eq!(
            parse_since("2026-01-01").unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-01-01T09:30:00Z").unwrap().to_rfc3339(),
            "2026-01-01T09:30:00+00:00"
        );
        assert!(parse_since("yesterday").is_err());
    }
}
