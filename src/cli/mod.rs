//! The command line. `serve` runs Gatehouse; `check` and `explain` work offline on the
//! files; `audit verify|export` and `backup` read a stopped data directory (or ask the
//! running server); `restore` writes a stopped one; `healthcheck` polls; everything else is a client of the admin API of the running server.

mod audit;
mod backup;
mod client;
mod health;
mod migrate;
mod offline;
mod output;
mod remote;

use std::future::Future;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app;
use crate::domain::anchor::PublishedHead;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Access requests in chat, approved by the right people."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The options every command takes, and where the running server is. `token` and `url` are
/// set from the command's own `--token` / `--url` (see [`ServerArgs`]) before it runs.
#[derive(Debug, Args)]
pub struct Global {
    /// gatehouse.toml; relative paths inside it start at its directory.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_CONFIG",
        default_value = "./gatehouse.toml",
        value_name = "FILE",
        help_heading = GLOBAL
    )]
    pub config: PathBuf,
    /// How log lines are written (default: `[log] format` of gatehouse.toml, else human).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "GATEHOUSE_LOG_FORMAT",
        help_heading = GLOBAL
    )]
    pub log_format: Option<LogFormatArg>,
    /// `--token` before the command, as older versions took it; hidden: each command that
    /// asks the server lists its own.
    #[arg(long = "token", id = "token_before_command", hide = true)]
    pub token: Option<String>,
    /// `--url` before the command, as older versions took it; hidden like `token`.
    #[arg(long = "url", id = "url_before_command", hide = true)]
    pub url: Option<String>,
}

const GLOBAL: &str = "Global options";
const SERVER: &str = "Server options";

/// Where the running server is and how to be let in: the commands that ask it take these.
#[derive(Clone, Debug, Default, Args)]
pub struct ServerArgs {
    /// Admin API token (default: the first unexpired token of `[admin]` in gatehouse.toml).
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_TOKEN",
        hide_env_values = true,
        help_heading = SERVER
    )]
    pub token: Option<String>,
    #[command(flatten)]
    pub url: UrlArg,
}

/// Where the running server is.
#[derive(Clone, Debug, Default, Args)]
pub struct UrlArg {
    /// The server's base URL (default: http://{server.listen} of gatehouse.toml).
    #[arg(long, global = true, env = "GATEHOUSE_URL", help_heading = SERVER)]
    pub url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

/// `--duration` of `request` and `explain`: how long, and what happens without it.
const DURATION_HELP: &str = "How long, like 30m, 2h or 1h30m [default: the longest the role \
     allows: its max_duration, else [defaults] max_duration of policy.toml; no end for a \
     standing role]";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Gatehouse: HTTP endpoints, admin API, outbox worker.
    Serve,
    /// Check gatehouse.toml, the policy and the directory; non-zero exit on any error.
    Check,
    /// Show the route a request would take, offline: reads the files, stores nothing.
    Explain(ExplainArgs),
    /// Ask for access (through the running server).
    Request(RequestArgs),
    /// Approve the current stage of a request, optionally with a shorter duration or lesser role.
    Approve {
        /// The request, like AR-12.
        #[arg(value_name = "REQUEST")]
        id: String,
        #[command(flatten)]
        who: As,
        /// Approve for less time than asked, like 1h.
        #[arg(long)]
        duration: Option<String>,
        /// Approve a lesser role of the same resource than asked, like read.
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Reject a request.
    Reject {
        /// The request, like AR-12.
        #[arg(value_name = "REQUEST")]
        id: String,
        #[command(flatten)]
        who: As,
        /// Why: the requester is told, and the audit log keeps it.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Withdraw a pending request.
    Cancel {
        /// The request, like AR-12.
        #[arg(value_name = "REQUEST")]
        id: String,
        #[command(flatten)]
        who: As,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List requests, or show one.
    Requests {
        #[command(subcommand)]
        command: Option<RequestsCommand>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List grants, or show one.
    Grants {
        #[command(subcommand)]
        command: Option<GrantsCommand>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Take a grant back (admins and owners of the resource).
    Revoke {
        /// The grant, like G-7.
        #[arg(value_name = "GRANT")]
        id: String,
        #[command(flatten)]
        who: As,
        /// Why: the holder is told, and the audit log keeps it.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Ask for more time on a grant.
    Extend {
        /// The grant, like G-7.
        #[arg(value_name = "GRANT")]
        id: String,
        #[command(flatten)]
        who: As,
        /// How much more time, like 1h.
        #[arg(long)]
        duration: String,
        /// Why: shown to the approvers, and the audit log keeps it.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// End your own grant early.
    End {
        /// The grant, like G-7.
        #[arg(value_name = "GRANT")]
        id: String,
        #[command(flatten)]
        who: As,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke everything a leaver holds and cancel their pending requests (admins).
    Offboard {
        /// The person who left.
        #[arg(value_name = "PERSON")]
        leaver: String,
        #[command(flatten)]
        who: As,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Make the running server read gatehouse.toml, the policy and the directory again.
    Reload {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Verify or export the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Write a consistent backup: from the running server (admin API) or, when none holds
    /// the data directory, from the directory itself. Its audit chain is verified.
    Backup {
        /// Where to write it (JSON Lines).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Restore a backup into server.data_dir, with the server stopped; the backup's audit
    /// chain must verify.
    Restore {
        /// The backup to restore, as `gatehouse backup` wrote it.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Replace a data directory that is not empty (its contents are moved aside).
        #[arg(long)]
        force: bool,
    },
    /// Bring the store's schema up to date (PostgreSQL: run its migrations), or move an
    /// installation between stores: `--from <data dir> --to postgres://…` and back. The
    /// servers must be stopped; everything is copied and the audit chain verified on arrival.
    Migrate {
        /// Where the installation is: a sled data directory, or postgres://user@host/db.
        #[arg(long, value_name = "DIR|URL", requires = "to")]
        from: Option<String>,
        /// Where it goes: an empty data directory, or an empty PostgreSQL database.
        #[arg(long, value_name = "DIR|URL", requires = "from")]
        to: Option<String>,
    },
    /// Exit 0 if the running server answers /healthz (or /readyz with --ready), else 1.
    Healthcheck {
        /// Check readiness (store open, chat platforms connected) instead of liveness.
        #[arg(long)]
        ready: bool,
        #[command(flatten)]
        server: UrlArg,
    },
}

impl Command {
    /// The `--token` and `--url` given to this command, for the commands that ask a server.
    fn server(&self) -> (Option<&String>, Option<&String>) {
        let server = match self {
            Command::Request(args) => &args.server,
            Command::Approve { server, .. }
            | Command::Reject { server, .. }
            | Command::Cancel { server, .. }
            | Command::Requests { server, .. }
            | Command::Grants { server, .. }
            | Command::Revoke { server, .. }
            | Command::Extend { server, .. }
            | Command::End { server, .. }
            | Command::Offboard { server, .. }
            | Command::Reload { server }
            | Command::Audit { server, .. }
            | Command::Backup { server, .. } => server,
            Command::Healthcheck { server, .. } => return (None, server.url.as_ref()),
            Command::Serve
            | Command::Check
            | Command::Explain(_)
            | Command::Restore { .. }
            | Command::Migrate { .. } => {
                return (None, None);
            }
        };
        (server.token.as_ref(), server.url.url.as_ref())
    }
}

/// Who the action is done for; audited together with the admin token's name.
#[derive(Debug, Args)]
pub struct As {
    /// The person this is done as, by directory id (default: the admin token's `operator`).
    #[arg(long = "as", value_name = "PERSON")]
    pub person: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The person asking, by directory id, like alice.
    #[arg(long = "as", value_name = "PERSON")]
    pub person: String,
    /// The resource, by its id in policy.toml, like prod-db.
    #[arg(long)]
    pub resource: String,
    /// The role, by its id on that resource, like read.
    #[arg(long)]
    pub role: String,
    #[arg(long, help = DURATION_HELP)]
    pub duration: Option<String>,
    /// A template field, `name=value`; repeat for several.
    #[arg(long = "field", value_name = "K=V", value_parser = parse_field)]
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    #[command(flatten)]
    pub who: As,
    /// The resource, by its id in policy.toml, like prod-db.
    #[arg(long)]
    pub resource: String,
    /// The role, by its id on that resource, like read.
    #[arg(long)]
    pub role: String,
    #[arg(long, help = DURATION_HELP)]
    pub duration: Option<String>,
    /// Why: shown to the approvers, and the audit log keeps it.
    #[arg(long)]
    pub reason: String,
    /// A template field, `name=value`; repeat for several.
    #[arg(long = "field", value_name = "K=V", value_parser = parse_field)]
    pub fields: Vec<(String, String)>,
    /// Break-glass access: granted at once, reviewed afterwards.
    #[arg(long)]
    pub emergency: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// The newest requests, one line each (the default).
    List {
        /// Only requests waiting for a decision.
        #[arg(long)]
        pending: bool,
        /// At most this many, newest first (the server gives up to 1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One request: its reason, fields, stages and who approved, and what was changed.
    Show {
        /// The request, like AR-12.
        #[arg(value_name = "REQUEST")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// The newest grants, one line each (the default).
    List {
        /// Only grants held now or being provisioned.
        #[arg(long)]
        live: bool,
        /// At most this many, newest first (the server gives up to 1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One grant: its request, when it was given and ends, and its review.
    Show {
        /// The grant, like G-7.
        #[arg(value_name = "GRANT")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and its checkpoints; non-zero exit if anything was edited,
    /// deleted, reordered or rewritten.
    Verify {
        /// A head published earlier (digest, alerts), `SEQ:HASH` with at least 16 hex digits
        /// of the hash, that the chain must still hold; repeat for several.
        #[arg(long = "head", value_name = "SEQ:HASH", value_parser = parse_head)]
        heads: Vec<PublishedHead>,
    },
    /// Write the audit log as JSON Lines or CSV.
    Export {
        /// jsonl: one JSON event per line, exactly as stored; csv: one row per event.
        #[arg(long, value_parser = ["jsonl", "csv"])]
        format: String,
        /// Only events at or after this day (2026-01-01) or instant (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_head(text: &str) -> Result<PublishedHead, String> {
    text.parse()
        .map_err(|e: crate::domain::anchor::NotAHead| e.to_string())
}

fn parse_field(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!(
            "`{text}` is not a field; write it as name=value, e.g. ticket=INC-4211"
        )),
    }
}

/// What a failed command prints after `error: `: the error and each of its causes, joined
/// with `: `, each said once. Many errors quote their cause in their own sentence ("cannot
/// read gatehouse.toml at … : No such file …; pass --config PATH"); such a cause is not
/// repeated after it.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(text.trim()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs the command; `shutdown` completes when `serve` should stop.
pub async fn run(
    cli: Cli,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Cli {
        mut global,
        command,
    } = cli;
    // Given before the command (hidden, as older versions took them) or to the command.
    let (token, url) = command.server();
    global.token = global.token.or_else(|| token.cloned());
    global.url = global.url.or_else(|| url.cloned());
    let global = &global;
    match command {
        Command::Serve => serve(global, shutdown).await,
        Command::Check => offline::check(global),
        Command::Explain(args) => offline::explain(global, &args),
        Command::Audit { command, .. } => audit::run(global, command).await,
        Command::Healthcheck { ready, .. } => health::run(global, ready).await,
        Command::Backup { out, .. } => backup::backup(global, &out).await,
        Command::Restore { from, force } => backup::restore(global, &from, force).await,
        Command::Migrate { from, to } => migrate::run(global, from, to).await,
        command => remote::run(global, command).await,
    }
}

async fn serve(
    global: &Global,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let loaded = app::load(&global.config)?;
    let listen = loaded.config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
        anyhow::anyhow!(
            "cannot listen on {listen}: {err}; is another Gatehouse running? change server.listen in gatehouse.toml"
        )
    })?;
    app::serve(loaded, listener, shutdown).await
}

/// Sets up logging to standard error: `--log-format`, else `[log]` of gatehouse.toml; the
/// level from `RUST_LOG`, else `[log] level`, else `info`.
pub fn init_tracing(global: &Global) {
    let log = crate::config::Config::load(&global.config)
        .map(|c| c.log)
        .unwrap_or_default();
    let json = match global.log_format {
        Some(format) => format == LogFormatArg::Json,
        None => log.format == crate::config::LogFormat::Json,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Completes on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_cause_the_message_already_quotes_is_not_repeated() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let quoted = crate::config::ConfigError::Read {
            path: "/etc/gatehouse.toml".into(),
            source: missing,
        };
        assert_eq!(
            error_line(&anyhow::Error::new(quoted)),
            "cannot read gatehouse.toml at /etc/gatehouse.toml: No such file; pass --config PATH \
             or set GATEHOUSE_CONFIG"
        );
        let wrapped = anyhow::anyhow!("No such file").context("cannot open the backup b.jsonl");
        assert_eq!(
            error_line(&wrapped),
            "cannot open the backup b.jsonl: No such file"
        );
    }

    #[test]
    fn fields_are_name_equals_value() {
        assert_eq!(
            parse_field("ticket=INC-1"),
            Ok(("ticket".into(), "INC-1".into()))
        );
        assert!(parse_field("ticket").unwrap_err().contains("name=value"));
    }

    #[test]
    fn requests_without_a_subcommand_lists_them() {
        let cli = Cli::try_parse_from(["gatehouse", "requests"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Requests { command: None, .. }
        ));
        let cli = Cli::try_parse_from(["gatehouse", "offboard", "gus", "--as", "sue"]).unwrap();
        assert!(matches!(cli.command, Command::Offboard { ref leaver, .. } if leaver == "gus"));
    }
}
