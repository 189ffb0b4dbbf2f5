//! The runtime configuration, gatehouse.toml: where to listen, where the policy and directory
//! files are (and whether people come from LDAP instead, `[directory]`), how to reach Slack,
//! Discord and the provisioning connectors, who may use the admin API, the key that anchors
//! the audit log (`[audit]`). The keys are described
//! in docs/configuration.md; unknown keys are errors, at their line.
//!
//! Loading goes: parse the TOML (keeping spans) → apply environment overrides → expand
//! variables in string values → read `X_file` secrets → deserialize → check what needs
//! several values together. Every problem is a [`Diagnostic`] at a line of the file, or
//! naming the environment variable that set the value.
//!
//! - **Variables.** In any string value, `${VAR}` is the variable's value and
//!   `${VAR:-default}` is `default` when VAR is unset or empty; `$$` is a literal `$` (a `$`
//!   followed by anything else is kept as written). Expansion happens on parsed values, so a
//!   quote inside a variable cannot change the TOML. An unset variable without default is an
//!   error naming the key and the variable, except inside a `[slack]` or `[discord]` table
//!   whose `enabled` is not `true`: there the value is dropped (the key takes its default,
//!   `None` for tokens), so that a disabled platform may reference secrets nobody provides.
//! - **Secret files.** Any key `X_file = "path"` is replaced by `X` holding the file's
//!   contents without the trailing line break; relative paths start at the directory of
//!   gatehouse.toml; `X` and `X_file` together is an error. Files are not read in a
//!   disabled platform's table, nor is a connector's `env` table affected.
//! - **Overrides.** `GATEHOUSE_<SECTION>__<KEY>=value` sets one key of one top-level table
//!   (`GATEHOUSE_SERVER__LISTEN`, `GATEHOUSE_SLACK__ENABLED=true`,
//!   `GATEHOUSE_SLACK__BOT_TOKEN_FILE`), beating the file, and is not expanded further.
//!   `true`/`false` become booleans, anything else a string. Lists (`[[connectors]]`,
//!   `admin.tokens`) cannot be overridden; such variables are ignored with a warning.
//! - **Paths** in `[files]`, `server.data_dir` and `X_file` are relative to gatehouse.toml.
//!
//! Secrets are [`Secret`]s: `{:?}` of a whole [`Config`] shows none of them.

pub mod audit;
mod check;
mod directory;
pub mod env;
mod file_secrets;
mod interpolate;
mod locate;
mod secret;
mod sections;
pub mod store;
pub mod web;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::domain::diagnostic::{Diagnostic, Diagnostics, Source};
use locate::{Origin, Spans};

pub use check::{MIN_ADMIN_TOKEN_CHARS, roles_without_target};
pub use directory::{DirectoryConfig, DirectorySource, LdapAttributes};
pub use env::{Env, process_env};
pub(crate) use file_secrets::read_regular_file;
pub use secret::Secret;
pub use sections::{
    AdminConfig, AdminToken, AwsAssign, ConnectorConfig, ConnectorKind, DEFAULT_MAX_CONCURRENT,
    DiscordConfig, DiscordMode, FilesConfig, LogConfig, LogFormat, MAX_MAX_CONCURRENT,
    OutboxConfig, Power, SchedulerConfig, ServerConfig, SlackConfig, SlackMode, SslMode,
};
pub use store::{StoreBackend, StoreConfig};

/// gatehouse.toml, loaded and checked.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub files: FilesConfig,
    pub directory: DirectoryConfig,
    pub slack: SlackConfig,
    pub discord: DiscordConfig,
    pub connectors: Vec<ConnectorConfig>,
    pub admin: AdminConfig,
    pub scheduler: SchedulerConfig,
    pub outbox: OutboxConfig,
    pub log: LogConfig,
    pub audit: audit::AuditConfig,
    pub store: store::StoreConfig,
    pub web: web::WebConfig,
    /// The directory relative paths start from: the one holding gatehouse.toml.
    #[serde(skip)]
    base_dir: PathBuf,
    #[serde(skip)]
    warnings: Vec<Diagnostic>,
}

/// Every table gatehouse.toml may hold and the keys each accepts, read from the types that
/// parse it (see [`crate::domain::keys`]); docs/configuration.md is checked against it. Keys
/// accepted beyond these are the `X_file` forms of string keys (see the module's comment).
pub fn accepted_tables() -> Vec<crate::domain::keys::Table> {
    crate::domain::keys::tables_of::<Config>()
}

/// Why gatehouse.toml could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read gatehouse.toml at {}: {source}; pass --config PATH or set GATEHOUSE_CONFIG",
        path.display()
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] Diagnostics),
}

impl Config {
    /// Reads, overrides from and expands with the process environment, and checks `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, &process_env())
    }

    /// [`Config::load`] with the environment given explicitly.
    pub fn load_with_env(path: &Path, env: &Env) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        let name = path.display().to_string();
        Ok(Self::parse(&name, &text, base_dir, env)?)
    }

    /// Parses gatehouse.toml from `text`. `source_name` is used in diagnostics, `base_dir`
    /// is where relative paths (files, data_dir, `X_file` secrets) start. On success, the
    /// warnings found are in [`Config::warnings`]; on failure, errors and warnings are returned.
    pub fn parse(
        source_name: &str,
        text: &str,
        base_dir: &Path,
        env: &Env,
    ) -> Result<Config, Diagnostics> {
        let source = Source::new(source_name, text);
        let mut root =
            DeTable::parse(text).map_err(|e| Diagnostics(vec![source.toml_error(&e)]))?;
        let mut origin = Origin::new(source);
        let mut found = Vec::new();
        env::apply_overrides(root.get_mut(), env, &mut origin, &mut found);
        interpolate::expand_document(root.get_mut(), env, &origin, &mut found);
        file_secrets::resolve_document(root.get_mut(), base_dir, &origin, &mut found);
        if found.iter().any(Diagnostic::is_error) {
            return Err(Diagnostics(found));
        }

        let located = root.get_ref().clone();
        let mut config = match Config::deserialize(toml::de::Deserializer::from(root)) {
            Ok(config) => config,
            Err(err) => {
                found.push(origin.toml_error(&err));
                return Err(Diagnostics(found));
            }
        };
        found.extend(check::check(&config, &Spans::new(&located), &origin));
        if found.iter().any(Diagnostic::is_error) {
            return Err(Diagnostics(found));
        }
        config.base_dir = base_dir.to_owned();
        config.warnings = found;
        Ok(config)
    }

    /// Problems that do not stop Gatehouse, to be shown by `check` and logged by `serve`.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The directory holding gatehouse.toml.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    pub fn policy_path(&self) -> PathBuf {
        self.base_dir.join(&self.files.policy)
    }

    pub fn directory_path(&self) -> PathBuf {
        self.base_dir.join(&self.files.directory)
    }

    pub fn templates_path(&self) -> Option<PathBuf> {
        self.files.templates.as_ref().map(|t| self.base_dir.join(t))
    }

    /// `server.data_dir`, relative to gatehouse.toml like the other paths.
    pub fn data_dir(&self) -> PathBuf {
        self.base_dir.join(&self.server.data_dir)
    }
}

/// A `[slack]`, `[discord]` or `[web]` table whose `enabled` is not `true`: unset variables and
/// `X_file` keys inside it are tolerated.
fn is_disabled_platform(section: &str, value: &DeValue<'_>) -> bool {
    let DeValue::Table(table) = value else {
        return false;
    };
    matches!(section, "slack" | "discord" | "web")
        && !matches!(
            table.get("enabled").map(Spanned::get_ref),
            Some(DeValue::Boolean(true))
        )
}
