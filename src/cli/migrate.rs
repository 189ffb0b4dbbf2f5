//! `migrate`: the store's schema brought up to date, or an installation moved between the
//! sled store and PostgreSQL, both ways. A move is a backup of the source read in one
//! consistent view, verified (audit chain, checkpoints with `[audit] key`, records against
//! their events), restored into the empty target, and verified again there: the same path a
//! restore takes, so nothing is copied that a restore would refuse. The password and TLS
//! settings of a database come from `[store]` of gatehouse.toml (`sslmode=disable` in the URL
//! wins, for a database on the same host).

use std::io::{BufReader, Seek, SeekFrom};
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::Global;
use crate::app;
use crate::config::{Config, StoreBackend};
use crate::store::backup::{self, Backup};
use crate::store::{AnyStore, PG_SCHEMA_VERSION, PgConfig, PgStore, SledStore, Store};

/// One end of a move.
enum End {
    Sled(PathBuf),
    Postgres(String),
}

impl End {
    fn parse(text: &str, config: &Config) -> End {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            End::Postgres(text.to_owned())
        } else {
            End::Sled(config.base_dir().join(text))
        }
    }

    fn shown(&self) -> String {
        match self {
            End::Sled(dir) => format!("the data directory {}", dir.display()),
            End::Postgres(url) => format!("the database {url}"),
        }
    }
}

fn pg_config(url: &str, config: &Config) -> anyhow::Result<PgConfig> {
    let store = &config.store;
    Ok(PgConfig::new(
        url,
        store.password.as_ref().map(|p| p.expose()),
        store.sslmode,
        store.ca.as_deref(),
        store.connections as usize,
    )?)
}

pub async fn run(global: &Global, from: Option<String>, to: Option<String>) -> anyhow::Result<()> {
    let config = Config::load(&global.config)?;
    let (Some(from), Some(to)) = (from, to) else {
        return tokio::task::spawn_blocking(move || schema(&config)).await?;
    };
    let (from, to) = (End::parse(&from, &config), End::parse(&to, &config));
    if let (End::Sled(_), End::Sled(_)) | (End::Postgres(_), End::Postgres(_)) = (&from, &to) {
        bail!(
            "--from and --to are the same kind of store; use gatehouse backup and gatehouse restore to copy within one"
        );
    }
    let (source, target) = (from.shown(), to.shown());
    let summary = tokio::task::spawn_blocking(move || copy(&config, &from, &to))
        .await?
        .with_context(|| format!("nothing was moved from {source} to {target}"))?;
    println!("moved {summary} from {source} to {target}");
    for note in summary.anchor.notes() {
        println!("  {note}");
    }
    if let Some(head) = &summary.anchor.head {
        println!("  audit head: {head}");
    }
    println!(
        "  point [store] of gatehouse.toml at the new store and start Gatehouse; the old one is left as it was"
    );
    Ok(())
}

/// The configured store opened, which upgrades it.
fn schema(config: &Config) -> anyhow::Result<()> {
    match config.store.backend {
        StoreBackend::Postgres => {
            let (before, shown) = PgStore::migrate(PgConfig::from_config(&config.store)?)?;
            if before == PG_SCHEMA_VERSION {
                println!(
                    "the database {shown} is at schema {before}, the newest this build knows: nothing to do"
                );
            } else {
                println!("the database {shown} was at schema {before}; now at {PG_SCHEMA_VERSION}");
            }
        }
        StoreBackend::Sled => {
            drop(app::open_sled(config)?);
            println!(
                "the data directory {} is up to date (sled upgrades itself as it opens)",
                config.data_dir().display()
            );
        }
    }
    Ok(())
}

fn copy(config: &Config, from: &End, to: &End) -> anyhow::Result<backup::Summary> {
    let key = config.audit.key();
    let source = match from {
        End::Sled(dir) => {
            if !dir.join("db").exists() && !dir.join("conf").exists() {
                bail!("{} holds no Gatehouse data", dir.display());
            }
            AnyStore::Sled(SledStore::open(dir)?)
        }
        End::Postgres(url) => AnyStore::Postgres(PgStore::open(pg_config(url, config)?)?),
    };
    let backup = read_all(&source)?;
    drop(source);
    let summary = match to {
        End::Sled(dir) => SledStore::restore(dir, &backup, false, key.as_ref())?,
        End::Postgres(url) => {
            let target = PgStore::open(pg_config(url, config)?)?;
            let summary = target.restore(&backup, key.as_ref())?;
            if let Some(key) = key {
                target.anchor_with(key)?;
            }
            target
                .verify_audit_against(&[])
                .context("the copy does not verify")?;
            summary
        }
    };
    Ok(summary)
}

/// Everything in `store`, spooled to a temporary file and read back as a restore reads it.
fn read_all(store: &AnyStore) -> anyhow::Result<Backup> {
    let spooled = store.backup_file()?;
    let mut file = spooled.file;
    file.seek(SeekFrom::Start(0))?;
    Ok(backup::read(BufReader::new(file))?)
}
