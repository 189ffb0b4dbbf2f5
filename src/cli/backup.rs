//! `backup` and `restore`. A backup comes from the data directory itself when no server
//! holds it, else from the running server (`GET /api/v1/backup`); either way it is read
//! back and verified (its audit chain and checkpoints with `[audit] key`, its records against
//! their audit events) before the file is put in place. A restore is offline only: it
//! verifies the same, refuses a data directory a server holds, and one that is not empty
//! unless `--force` (which moves the old contents aside).

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};

use super::Global;
use super::client::Client;
use crate::app;
use crate::config::Config;
use crate::store::backup::{self, Backup, Summary};
use crate::store::{PgConfig, PgStore, SledStore, StoreError, verify_backup};

pub async fn backup(global: &Global, out: &Path) -> anyhow::Result<()> {
    let config = Config::load(&global.config)?;
    let dir = config.data_dir();
    let key = config.audit.key();
    // Written beside `out` and renamed once verified, so that an interrupted or bad backup
    // never lies under the name asked for.
    let partial = partial_path(out);
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let taken = take(global, config, &dir, &mut file).await;
    let taken = taken.and_then(|source| {
        file.sync_all()
            .with_context(|| format!("cannot write {}", partial.display()))?;
        // Read back exactly as a restore will, so a bad backup is found now, not on the bad day.
        let written = std::fs::File::open(&partial)?;
        let read = backup::read(BufReader::new(written))
            .context("the backup just taken does not read back")?;
        let summary =
            verify_backup(&read, key.as_ref()).context("the backup just taken does not verify")?;
        Ok((source, summary))
    });
    let (source, summary) = match taken {
        Ok(taken) => taken,
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
    };
    std::fs::rename(&partial, out)
        .with_context(|| format!("cannot move the backup to {}", out.display()))?;
    println!("backed up {summary} from {source} to {}", out.display());
    print_anchoring(&summary);
    Ok(())
}

/// Writes a backup to `file`, from the data directory itself when no server holds it, else
/// from the running server; where it came from.
async fn take(
    global: &Global,
    config: Config,
    dir: &Path,
    file: &mut std::fs::File,
) -> anyhow::Result<String> {
    // With --url the server named is asked, wherever the data directory is.
    // PostgreSQL is read in a snapshot while servers run; a sled directory only when free.
    let postgres = config.store.backend == crate::config::StoreBackend::Postgres;
    let offline = global.url.is_none() && (postgres || dir.exists());
    let busy = if offline {
        let mut out = file.try_clone()?;
        let written = tokio::task::spawn_blocking(move || match app::open_store(&config) {
            Ok(store) => store
                .write_backup(BufWriter::new(&mut out))
                .map(|_| Ok(()))
                .map_err(anyhow::Error::from),
            Err(busy @ StoreError::Open { .. }) => Ok(Err(busy)),
            Err(other) => Err(other.into()),
        })
        .await??;
        match written {
            Ok(()) if postgres => return Ok("the database".to_owned()),
            Ok(()) => return Ok(format!("the data directory {}", dir.display())),
            Err(busy) => Some(busy),
        }
    } else {
        None
    };
    let client = Client::from_global(global)?;
    client
        .download("/backup", file)
        .await
        .map_err(|err| match &busy {
            Some(why) if err.to_string().starts_with("cannot reach") => anyhow!("{why}; and {err}"),
            _ => err,
        })?;
    Ok("the running server".to_owned())
}

/// `<path>.partial`, where a backup is written until it is verified.
fn partial_path(path: &Path) -> PathBuf {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    PathBuf::from(partial)
}

pub async fn restore(global: &Global, from: &Path, force: bool) -> anyhow::Result<()> {
    let config = Config::load(&global.config)?;
    let dir = config.data_dir();
    let file = std::fs::File::open(from)
        .with_context(|| format!("cannot open the backup {}", from.display()))?;
    let target = dir.clone();
    let key = config.audit.key();
    let postgres = config.store.backend == crate::config::StoreBackend::Postgres;
    let store = config.store.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let backup: Backup = backup::read(BufReader::new(file))?;
        if postgres {
            // Into an empty database only: replicas may be running on one that is not.
            let pg = PgStore::open(PgConfig::from_config(&store)?)?;
            return pg.restore(&backup, key.as_ref());
        }
        SledStore::restore(&target, &backup, force, key.as_ref())
    })
    .await?
    .with_context(|| format!("nothing was restored from {}", from.display()))?;
    let into = if postgres {
        "the database of [store]".to_owned()
    } else {
        dir.display().to_string()
    };
    println!("restored {summary} into {into}; start Gatehouse with `gatehouse serve`");
    print_anchoring(&summary);
    Ok(())
}

/// How much of the backup's audit log its checkpoints anchor, and its head (to compare
/// with one published earlier).
fn print_anchoring(summary: &Summary) {
    for note in summary.anchor.notes() {
        println!("  {note}");
    }
    if let Some(head) = &summary.anchor.head {
        println!("  audit head: {head}");
    }
}
