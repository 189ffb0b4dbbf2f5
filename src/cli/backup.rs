//! `backup` and `restore`. A backup comes from the data directory itself when no server
//! holds it, else from the running server (`GET /api/v1/backup`); either way it is read
//! back and its audit chain verified before the file is put in place. A restore is offline
//! only: it refuses a data directory a server holds, and one that is not empty unless
//! `--force` (which moves the old contents aside).

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};

use super::Global;
use super::client::Client;
use crate::app;
use crate::config::Config;
use crate::store::backup::{self, Backup};
use crate::store::{SledStore, StoreError, verify_backup};

pub async fn backup(global: &Global, out: &Path) -> anyhow::Result<()> {
    let config = Config::load(&global.config)?;
    let dir = config.data_dir();
    // With --url the server named is asked, wherever the data directory is.
    let offline = if global.url.is_none() && dir.exists() {
        tokio::task::spawn_blocking(move || match app::open_store(&config) {
            Ok(store) => store.backup().map(Ok).map_err(anyhow::Error::from),
            Err(busy @ StoreError::Open { .. }) => Ok(Err(busy)),
            Err(other) => Err(other.into()),
        })
        .await??
    } else {
        Err(StoreError::Conflict)
    };
    let (bytes, source) = match offline {
        Ok(snapshot) => {
            let mut bytes = Vec::new();
            backup::write(&snapshot, &mut bytes)?;
            (bytes, format!("the data directory {}", dir.display()))
        }
        Err(why) => {
            let client = Client::from_global(global)?;
            let bytes = client.download("/backup").await.map_err(|err| {
                if err.to_string().starts_with("cannot reach")
                    && matches!(why, StoreError::Open { .. })
                {
                    anyhow!("{why}; and {err}")
                } else {
                    err
                }
            })?;
            (bytes, "the running server".to_owned())
        }
    };
    // Read back exactly as a restore will, so a bad backup is found now, not on the bad day.
    let taken = backup::read(&bytes[..]).context("the backup just taken does not read back")?;
    let summary = verify_backup(&taken).context("the backup just taken does not verify")?;
    write_atomically(out, &bytes)?;
    println!("backed up {summary} from {source} to {}", out.display());
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it, so that an interrupted
/// backup never leaves a half-written file under the name asked for.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot move the backup to {}", path.display()))?;
    Ok(())
}

pub async fn restore(global: &Global, from: &Path, force: bool) -> anyhow::Result<()> {
    let config = Config::load(&global.config)?;
    let dir = config.data_dir();
    let file = std::fs::File::open(from)
        .with_context(|| format!("cannot open the backup {}", from.display()))?;
    let target = dir.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let backup: Backup = backup::read(BufReader::new(file))?;
        SledStore::restore(&target, &backup, force)
    })
    .await?
    .with_context(|| format!("nothing was restored from {}", from.display()))?;
    println!(
        "restored {summary} into {}; start Gatehouse with `gatehouse serve`",
        dir.display()
    );
    Ok(())
}
