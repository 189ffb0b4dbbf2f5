//! Wiring: the one place that names concrete types. [`load`] reads gatehouse.toml, the
//! policy and the directory and checks them together; [`serve`] opens the sled store, builds
//! the engine, gives what the bundles owe, starts the outbox worker, the scheduler and the directory sync (which reads
//! LDAP while `[directory] source = "ldap"`, following reloads), and serves HTTP until
//! shutdown.
//!
//! Relative paths in gatehouse.toml (`files.*`, `server.data_dir`, `*_file` secrets) are
//! relative to the directory holding gatehouse.toml, not to the working directory, so that
//! `gatehouse --config /etc/gatehouse/gatehouse.toml serve` works from anywhere.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::Clock;
use anyhow::Context;
use futures_util::future::OptionFuture;

use crate::config::StoreBackend;
use crate::config::{Config, ConfigError, DirectorySource, DiscordMode, SlackMode};
use crate::connector::{ConnectorRegistry, Connectors};
use crate::domain::diagnostic::{Diagnostic, Diagnostics, Source};
use crate::domain::directory::Directory;
use crate::domain::ids::ConnectorId;
use crate::domain::policy::{Policy, PolicyContext, parse_policy};
use crate::engine::{Engine, Facade, SystemClock};
use crate::http::{ApiState, Reloaded, Reloader};
use crate::ldap::sync::{LdapDirectory, SyncSettings, SyncedDirectory};
use crate::leader::Leadership;
use crate::store::{Anchoring, AnyStore, PgConfig, PgStore, SledStore, StoreError};

/// Everything Gatehouse runs on, loaded and checked.
#[derive(Debug)]
pub struct Loaded {
    /// Where gatehouse.toml was read from; `reload` reads it again.
    pub config_path: PathBuf,
    pub config: Config,
    pub policy: Policy,
    pub directory: Directory,
    /// Problems that do not stop Gatehouse: shown by `check`, logged by `serve`.
    pub warnings: Vec<Diagnostic>,
}

/// Why the configuration could not be loaded. `Display` is what the operator reads.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(ConfigError),
    #[error(
        "cannot read the file named by `{key}` in gatehouse.toml, {}: {source}; fix `{key}` (relative paths start at the directory of gatehouse.toml)",
        path.display()
    )]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{summary}:\n{0}", summary = problems_summary(.0))]
    Invalid(Diagnostics),
}

impl LoadError {
    /// The diagnostics, when the files were read but did not pass the checks.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            LoadError::Invalid(d) | LoadError::Config(ConfigError::Invalid(d)) => Some(d),
            _ => None,
        }
    }
}

impl From<ConfigError> for LoadError {
    fn from(err: ConfigError) -> Self {
        match err {
            ConfigError::Invalid(d) => LoadError::Invalid(d),
            other => LoadError::Config(other),
        }
    }
}

fn problems_summary(d: &Diagnostics) -> String {
    let errors = d.0.iter().filter(|d| d.is_error()).count();
    match errors {
        1 => "the configuration has 1 error".to_owned(),
        n => format!("the configuration has {n} errors"),
    }
}

/// Loads gatehouse.toml at `config_path`, then the policy and directory it names.
pub fn load(config_path: &Path) -> Result<Loaded, LoadError> {
    load_with(config_path, &SyncedDirectory::default())
}

/// [`load`], except that with `[directory] source = "ldap"` the directory last read from
/// LDAP, when there is one, is used instead of `files.directory`.
fn load_with(config_path: &Path, synced: &SyncedDirectory) -> Result<Loaded, LoadError> {
    let config = Config::load(config_path)?;
    let from_ldap = synced
        .get()
        .filter(|_| config.directory.source == DirectorySource::Ldap);
    let (policy, directory, warnings) = match from_ldap {
        Some(directory) => load_policy(&config, directory)?,
        None => load_world(&config)?,
    };
    let mut all = config.warnings().to_vec();
    all.extend(warnings);
    Ok(Loaded {
        config_path: config_path.to_owned(),
        config,
        policy,
        directory,
        warnings: all,
    })
}

/// Reads and checks the policy and directory named by `config`.
pub fn load_world(config: &Config) -> Result<(Policy, Directory, Vec<Diagnostic>), LoadError> {
    let directory_path = config.directory_path();
    let directory_text = read(&directory_path, "files.directory")?;
    let directory_name = directory_path.display().to_string();
    let directory = Directory::parse(&Source::new(&directory_name, &directory_text))
        .map_err(LoadError::Invalid)?;
    load_policy(config, directory)
}

/// Reads the policy named by `config` and checks it against `directory`.
fn load_policy(
    config: &Config,
    directory: Directory,
) -> Result<(Policy, Directory, Vec<Diagnostic>), LoadError> {
    let policy_path = config.policy_path();
    let policy_text = read(&policy_path, "files.policy")?;
    let policy_name = policy_path.display().to_string();
    let connectors: Vec<ConnectorId> = config.connectors.iter().map(|c| c.id.clone()).collect();
    let context = PolicyContext {
        directory: &directory,
        connectors: Some(&connectors),
        // The files are checked against the wall clock (a policy's dates).
        now: SystemClock.now(),
    };
    let (policy, warnings) = parse_policy(&Source::new(&policy_name, &policy_text), &context)
        .map_err(LoadError::Invalid)?;
    let unprovisionable = crate::config::roles_without_target(config, &policy, &policy_name);
    if !unprovisionable.is_empty() {
        return Err(LoadError::Invalid(Diagnostics(unprovisionable)));
    }
    Ok((policy, directory, warnings))
}

fn read(path: &Path, key: &'static str) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

/// `POST /api/v1/reload`: gatehouse.toml, the policy and the directory read again.
struct FileReloader {
    config_path: PathBuf,
    synced: SyncedDirectory,
    /// `[directory]` and the groups the connectors manage, as last loaded, for the directory
    /// sync to follow.
    directory: tokio::sync::watch::Sender<SyncSettings>,
    /// The connectors the outbox calls: rebuilt from `[[connectors]]` at every reload, so that
    /// a rotated `password_file` or a connector added is used from the next call on.
    connectors: ConnectorRegistry,
}

impl Reloader for FileReloader {
    fn reload(&self) -> Result<Reloaded, Vec<String>> {
        let describe = |err: LoadError| match err.diagnostics() {
            Some(d) => d.0.iter().map(ToString::to_string).collect(),
            None => vec![err.to_string()],
        };
        let loaded = load_with(&self.config_path, &self.synced).map_err(describe)?;
        // Built before anything changes: connectors that cannot be built refuse the reload.
        let connectors = Connectors::from_config(&loaded.config.connectors).map_err(|e| {
            vec![format!(
                "{e}; the reload changed nothing and the connectors in force stay"
            )]
        })?;
        self.connectors.replace(connectors);
        let settings = SyncSettings::from_config(&loaded.config);
        self.directory.send_if_modified(|current| {
            let changed = *current != settings;
            if changed {
                *current = settings;
            }
            changed
        });
        Ok(Reloaded {
            policy: loaded.policy,
            directory: loaded.directory,
            admin: loaded.config.admin,
            warnings: loaded.warnings.iter().map(ToString::to_string).collect(),
        })
    }
}

/// Makes *ring* the process-wide rustls provider: a safety net for a library that would build
/// a rustls configuration of its own. Every client Gatehouse builds is handed
/// [`crate::tls`]'s configuration (and provider) explicitly. Idempotent.
pub fn install_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: a provider is then in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Opens the store `[store]` names: the sled store at `server.data_dir` with a cache of
/// `server.cache_mb` (failing with [`StoreError::Open`] while another process, a running
/// server, holds it), or the PostgreSQL database, its schema brought up to date.
pub fn open_store(config: &Config) -> Result<AnyStore, StoreError> {
    match config.store.backend {
        StoreBackend::Sled => open_sled(config).map(AnyStore::Sled),
        StoreBackend::Postgres => {
            PgStore::open(PgConfig::from_config(&config.store)?).map(AnyStore::Postgres)
        }
    }
}

/// The sled store at `server.data_dir`, whatever `[store]` says.
pub fn open_sled(config: &Config) -> Result<SledStore, StoreError> {
    let cache_bytes = config.server.cache_mb.saturating_mul(1024 * 1024);
    SledStore::open_with(&config.data_dir(), cache_bytes)
}

/// [`open_store`], with the audit chain anchored by `[audit] key` when one is configured,
/// and what anchoring found there.
pub fn open_anchored_store(config: &Config) -> Result<(AnyStore, Option<Anchoring>), StoreError> {
    let store = open_store(config)?;
    let anchoring = match config.audit.key() {
        Some(key) => Some(store.anchor_with(key)?),
        None => None,
    };
    Ok((store, anchoring))
}

/// Says in the log how the audit chain is anchored, once, as the server starts.
fn log_anchoring(anchoring: Option<&Anchoring>) {
    match anchoring {
        None => tracing::warn!(
            "no [audit] key: the audit log is hash-chained but not anchored, so someone who can write the data directory or a backup could rewrite it unseen (docs/security.md)"
        ),
        Some(found) if found.is_suspicious() => tracing::error!("{found}"),
        Some(found @ Anchoring::Adopts { .. }) => tracing::warn!("{found}"),
        Some(found) => tracing::info!("{found}"),
    }
}

/// Serves Gatehouse on `listener` until `shutdown` completes: HTTP stops taking new
/// connections and finishes the ones in flight (for at most `server.shutdown_grace`), then
/// the outbox worker and the scheduler are stopped and waited for.
pub async fn serve(
    loaded: Loaded,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Loaded {
        config_path,
        config,
        policy,
        directory,
        warnings,
    } = loaded;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let data_dir = config.data_dir();
    let store = {
        let config = config.clone();
        let (store, anchoring) = tokio::task::spawn_blocking(move || open_anchored_store(&config))
            .await
            .context("opening the store")??;
        log_anchoring(anchoring.as_ref());
        store
    };
    let where_stored = match &store {
        AnyStore::Sled(_) => data_dir.display().to_string(),
        AnyStore::Postgres(_) => store.describe(),
    };
    let (store, postgres) = store.shared();
    let engine = Arc::new(Engine::new(store, policy, directory, Arc::new(SystemClock)));
    // Bundles reach the people already there, not only those who join later: whatever a
    // bundle owes someone and was never given is given now (and nothing twice).
    let bundled = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.apply_bundles())
            .await
            .context("applying the bundles")?
            .context("applying the bundles")?
    };
    if !bundled.is_empty() {
        tracing::info!(
            grants = bundled.len(),
            "bundles applied to the people they match"
        );
    }

    let connectors = ConnectorRegistry::new(
        Connectors::from_config(&config.connectors)
            .context("setting up the connectors of gatehouse.toml")?,
    );
    // One Slack adapter for the outbox's chat port and the /slack/* endpoints.
    let templates = Arc::new(
        crate::chat::render::Templates::load(config.templates_path().as_deref())
            .context("loading the message templates (files.templates)")?
            .link_to_portal(config.web.enabled.then(|| config.web.base_url()).flatten()),
    );
    let slack = slack(&config, &templates)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let discord = discord(&config, &templates, engine.metrics())?;
    let facade = Facade::new(engine.clone());
    let chat = chat_port(slack.clone(), discord.clone(), &facade, &templates);
    // One replica at a time runs the outbox and the scheduler: with sled, this one.
    let (leadership, lease) = match postgres {
        None => (Leadership::always(engine.metrics().readiness()), None),
        Some(store) => {
            let (leadership, task) = Leadership::lease(
                store,
                engine.clone(),
                crate::leader::holder_name(),
                stop_rx.clone(),
            );
            (leadership, Some(task))
        }
    };
    let leader_work = {
        let (engine, connectors) = (engine.clone(), connectors.clone());
        let max_backoff = config.outbox.max_backoff.to_chrono();
        let warning = config.scheduler.expiry_warning.to_chrono();
        let digest = config.scheduler.digest_schedule();
        crate::leader::while_leading(leadership, stop_rx.clone(), move |stop| {
            let worker = crate::outbox::spawn(
                engine.clone(),
                connectors.clone(),
                chat.clone(),
                max_backoff,
                stop.clone(),
            );
            let scheduler = tokio::spawn(
                crate::scheduler::Scheduler::new(engine.clone(), warning)
                    .with_digest(digest.clone())
                    .run(stop),
            );
            vec![worker, scheduler]
        })
    };

    let synced = SyncedDirectory::default();
    let (directory_tx, directory_rx) =
        tokio::sync::watch::channel(SyncSettings::from_config(&config));
    let reloader = Arc::new(FileReloader {
        config_path,
        synced: synced.clone(),
        directory: directory_tx,
        connectors,
    });
    // Socket Mode receives over its own websocket; the /slack/* endpoints are for HTTP mode.
    let (slack_http, slack_socket) = match slack {
        Some(slack) if slack.mode == SlackMode::Socket => (None, Some(slack)),
        other => (other, None),
    };
    expect_platforms(
        engine.metrics().readiness(),
        slack_http.is_some(),
        slack_socket.is_some(),
        discord.as_ref().map(|discord| discord.mode),
    );
    let slack_router = slack_http.map(|slack| crate::slack::http::router(slack, facade.clone()));
    let socket = slack_socket.map(|slack| {
        tokio::spawn(crate::slack::socket::run(
            slack,
            facade.clone(),
            stop_rx.clone(),
        ))
    });
    let discord_responder =
        discord.map(|discord| crate::discord::respond::Responder::new(discord, facade.clone()));
    // The command is registered beside the gateway, never before it: a registration Discord
    // cannot take yet must not keep the bot off the gateway.
    let discord_commands = discord_responder.as_ref().map(|responder| {
        let (discord, metrics) = (responder.discord().clone(), engine.metrics().clone());
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            discord
                .register_commands_until_done(metrics.readiness(), stop)
                .await
        })
    });
    let discord_gateway = discord_responder
        .as_ref()
        .filter(|responder| responder.discord().mode == DiscordMode::Gateway)
        .map(|responder| {
            tokio::spawn(crate::discord::gateway::run(
                responder.clone(),
                stop_rx.clone(),
            ))
        });
    let discord_router = discord_responder
        .filter(|r| r.discord().mode == DiscordMode::Http)
        .map(crate::discord::http::router);
    let portal = match config.web.enabled {
        true => Some(
            crate::web::Portal::start(&config.web, facade.clone())
                .await
                .context("starting the web portal ([web])")?,
        ),
        false => None,
    };
    let state = ApiState::new(facade, config.admin.clone(), reloader);
    let hangup = tokio::spawn(reload_on_sighup(state.clone(), stop_rx.clone()));
    if let Some(source) = LdapDirectory::from_config(&config.directory) {
        tracing::info!(every = ?source.every(), "the directory is read from LDAP");
    }
    // Always running: a reload may turn LDAP on.
    let directory_sync = tokio::spawn(crate::ldap::sync::run(
        directory_rx,
        synced,
        state.clone(),
        stop_rx.clone(),
    ));
    let address = listener.local_addr()?;
    tracing::info!(%address, store = %where_stored, "gatehouse is serving");
    let mut router = crate::http::router(state);
    if let Some(slack_router) = slack_router {
        router = router.merge(slack_router);
    }
    if let Some(discord_router) = discord_router {
        router = router.merge(discord_router);
    }
    if let Some(portal) = portal {
        router = router.merge(crate::web::router(portal));
    }
    let limits = crate::http::server::Limits::from_config(&config.server);
    crate::http::server::serve(listener, router, limits, shutdown).await;
    tracing::info!("HTTP stopped; stopping the outbox worker and the scheduler");
    let _ = stop_tx.send(true);
    if let Err(err) = leader_work.await {
        tracing::error!(%err, "the outbox worker or the scheduler ended abnormally");
    }
    if let Some(Err(err)) = OptionFuture::from(lease).await {
        tracing::error!(%err, "the lease keeper ended abnormally");
    }
    if let Some(Err(err)) = OptionFuture::from(socket).await {
        tracing::error!(%err, "Slack Socket Mode ended abnormally");
    }
    if let Some(Err(err)) = OptionFuture::from(discord_gateway).await {
        tracing::error!(%err, "the Discord gateway ended abnormally");
    }
    if let Some(Err(err)) = OptionFuture::from(discord_commands).await {
        tracing::error!(%err, "the Discord command registration ended abnormally");
    }
    if let Err(err) = directory_sync.await {
        tracing::error!(%err, "the LDAP directory sync ended abnormally");
    }
    hangup.abort();
    Ok(())
}

/// The Slack adapter when `[slack]` is enabled, built once and shared by its inbound
/// endpoints and its outbound chat port.
fn slack(
    config: &Config,
    templates: &Arc<crate::chat::render::Templates>,
) -> anyhow::Result<Option<Arc<crate::slack::Slack>>> {
    if !config.slack.enabled {
        return Ok(None);
    }
    let slack = crate::slack::Slack::from_config(&config.slack, templates.clone())
        .context("setting up [slack] in gatehouse.toml")?;
    Ok(Some(Arc::new(slack)))
}

/// The Discord adapter when `[discord]` is enabled, shared by its inbound side and its
/// outbound transport.
fn discord(
    config: &Config,
    templates: &Arc<crate::chat::render::Templates>,
    metrics: &Arc<crate::metrics::Metrics>,
) -> anyhow::Result<Option<Arc<crate::discord::Discord>>> {
    if !config.discord.enabled {
        return Ok(None);
    }
    let discord =
        crate::discord::Discord::from_config(&config.discord, templates.clone(), metrics.clone())
            .context("setting up [discord] in gatehouse.toml")?;
    Ok(Some(Arc::new(discord)))
}

/// Tells `/readyz` about every enabled platform before anything is served, so that none is
/// missing while it starts: one that keeps a connection is not ready until it is connected,
/// one that receives over HTTP is ready with the server.
fn expect_platforms(
    readiness: &crate::metrics::Readiness,
    slack_http: bool,
    slack_socket: bool,
    discord: Option<DiscordMode>,
) {
    if slack_http {
        readiness.over_http("slack");
    }
    if slack_socket {
        readiness.expect("slack");
    }
    match discord {
        Some(DiscordMode::Gateway) => readiness.expect("discord"),
        Some(DiscordMode::Http) => readiness.over_http("discord"),
        None => {}
    }
}

/// The chat port the outbox delivers through: every enabled platform, or the log (messages
/// as text) when none is.
fn chat_port(
    slack: Option<Arc<crate::slack::Slack>>,
    discord: Option<Arc<crate::discord::Discord>>,
    facade: &Facade,
    templates: &Arc<crate::chat::render::Templates>,
) -> Arc<dyn crate::outbox::ChatPort> {
    use crate::domain::directory::Platform;
    let mut running = Vec::new();
    if slack.is_some() {
        running.push(Platform::Slack);
    }
    if discord.is_some() {
        running.push(Platform::Discord);
    }
    let mut ports: Vec<Arc<dyn crate::outbox::ChatPort>> = Vec::new();
    if let Some(slack) = slack {
        let port = crate::slack::port::SlackChat::among(slack, facade.clone(), running.clone());
        ports.push(Arc::new(port));
    }
    if let Some(discord) = discord {
        let transport = Arc::new(crate::discord::transport::DiscordTransport::new(discord));
        let port =
            crate::chat::deliver::CardPort::among(transport, facade.clone(), running.clone());
        ports.push(Arc::new(port));
    }
    match ports.len() {
        0 => Arc::new(crate::chat::deliver::LogPort::new(
            facade.clone(),
            templates.clone(),
        )),
        1 => ports.remove(0),
        _ => Arc::new(crate::chat::deliver::Fanout::new(ports)),
    }
}

/// Reloads the configuration on SIGHUP, the way daemons do, until `stop`.
async fn reload_on_sighup(state: Arc<ApiState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; reload with `gatehouse reload` instead");
        return;
    };
    loop {
        tokio::select! {
            _ = hangups.recv() => {}
            _ = stop.changed() => return,
        }
        tracing::info!("SIGHUP: reloading the configuration");
        match state.reload_files().await {
            Ok(_) => {}
            Err(crate::http::ReloadError::Invalid(problems)) => {
                for problem in problems {
                    tracing::error!("reload refused, the old configuration stays: {problem}");
                }
            }
            Err(crate::http::ReloadError::Engine(e)) => {
                tracing::error!(error = %e, "reload failed")
            }
        }
    }
}
