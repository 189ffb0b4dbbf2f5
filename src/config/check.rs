//! Checks that need more than one value: what an enabled platform requires, connector ids,
//! admin token strength and powers, and whether the admin API is exposed. What the
//! PostgreSQL and LDAP settings need is in [`targets`].

mod audit;
mod targets;
mod web;

pub use targets::roles_without_target;

use std::collections::BTreeMap;

use super::locate::{Origin, Spans};
use super::sections::{AdminToken, ConnectorKind, DiscordMode, Power, SlackMode};
use super::{Config, Secret};
use crate::domain::diagnostic::Diagnostic;

/// Shortest admin token accepted: shorter ones can be guessed.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

struct Checker<'c, 's, 'i, 'o> {
    spans: &'c Spans<'s, 'i>,
    origin: &'c Origin<'o>,
    found: Vec<Diagnostic>,
}

pub(super) fn check(
    config: &Config,
    spans: &Spans<'_, '_>,
    origin: &Origin<'_>,
) -> Vec<Diagnostic> {
    let mut checker = Checker {
        spans,
        origin,
        found: Vec::new(),
    };
    checker.server(config);
    checker.log(config);
    if config.slack.enabled {
        checker.slack(config);
    }
    if config.discord.enabled {
        checker.discord(config);
    }
    checker.connectors(config);
    checker.directory(config);
    checker.admin(config);
    checker.scheduler(config);
    checker.outbox(config);
    checker.audit(config);
    checker.store(config);
    checker.web(config);
    checker.found
}

impl Checker<'_, '_, '_, '_> {
    fn error(&mut self, path: &str, message: impl Into<String>, help: impl Into<String>) {
        let diagnostic = self
            .origin
            .error(self.spans.of(path), message)
            .with_help(help);
        self.found.push(diagnostic);
    }

    fn require(&mut self, secret: Option<&Secret>, path: &str, when: &str) {
        if secret.is_none_or(Secret::is_empty) {
            let (section, key) = path.split_once('.').unwrap_or(("", path));
            let var = path.replace('.', "_").to_ascii_uppercase();
            self.error(
                path,
                format!("{path} is required {when}"),
                format!(
                    "in [{section}] write {key} = \"${{{var}}}\" \
                     or {key}_file = \"/run/secrets/…\""
                ),
            );
        }
    }

    fn url(&mut self, url: Option<&str>, path: &str) {
        if let Some(url) = url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            self.error(
                path,
                format!("{path} `{url}` is not an http or https URL"),
                "write the full URL, e.g. https://gatehouse.example.com",
            );
        }
    }

    fn store(&mut self, config: &Config) {
        let store = &config.store;
        if store.backend != crate::config::StoreBackend::Postgres {
            return;
        }
        match store.url.as_deref().map(crate::store::PgConfig::check_url) {
            None => self.error(
                "store.backend",
                "store.backend is postgres but no store.url says which database",
                "add url = \"postgres://gatehouse@db.internal:5432/gatehouse\" to [store]",
            ),
            Some(Err(why)) => self.error("store.url", format!("store.url {why}"), "write it like postgres://gatehouse@db.internal:5432/gatehouse, with the password in password_file"),
            Some(Ok(())) => {}
        }
        if store.connections == 0 {
            self.error(
                "store.connections",
                "store.connections is 0: no commit could be made",
                "write at least 2; the default is 8",
            );
        }
    }

    fn outbox(&mut self, config: &Config) {
        if config.outbox.max_backoff.as_secs() == 0 {
            self.error(
                "outbox.max_backoff",
                "outbox.max_backoff is 0s: failed effects would be retried without a pause",
                "write at least 1s; the default is 10m",
            );
        }
    }

    fn scheduler(&mut self, config: &Config) {
        let line = config.scheduler.digest.trim();
        if matches!(line, "off" | "") {
            return;
        }
        let help = "six fields, sec min hour day-of-month month day-of-week (UTC), e.g. \"0 0 9 * * *\" for 09:00 daily, or \"off\"";
        match line.parse::<cron::Schedule>() {
            Err(e) => self.error(
                "scheduler.digest",
                format!("scheduler.digest `{line}` is not a cron line: {e}"),
                help,
            ),
            Ok(schedule) if schedule.upcoming(chrono::Utc).next().is_none() => self.error(
                "scheduler.digest",
                format!("scheduler.digest `{line}` never fires"),
                help,
            ),
            Ok(_) => {}
        }
    }

    fn server(&mut self, config: &Config) {
        self.url(config.server.public_url.as_deref(), "server.public_url");
        let cache_mb = config.server.cache_mb;
        if !(1..=super::sections::MAX_CACHE_MB).contains(&cache_mb) {
            self.error(
                "server.cache_mb",
                format!(
                    "server.cache_mb is {cache_mb}; it must be between 1 and {} (MiB)",
                    super::sections::MAX_CACHE_MB
                ),
                format!(
                    "leave it out for the default of {} MiB, or give the store's cache in MiB, e.g. cache_mb = 32",
                    super::sections::DEFAULT_CACHE_MB
                ),
            );
        }
        let connections = config.server.max_connections;
        if !(1..=super::sections::MAX_CONNECTIONS).contains(&connections) {
            self.error(
                "server.max_connections",
                format!(
                    "server.max_connections is {connections}; it must be between 1 and {}",
                    super::sections::MAX_CONNECTIONS
                ),
                format!(
                    "leave it out for the default of {}",
                    super::sections::DEFAULT_MAX_CONNECTIONS
                ),
            );
        }
        for (key, timeout) in [
            ("server.header_timeout", config.server.header_timeout),
            ("server.body_timeout", config.server.body_timeout),
        ] {
            if timeout.as_secs() == 0 {
                self.error(
                    key,
                    format!("{key} is 0s: no request could arrive in time"),
                    "write at least 1s; the default is 10s",
                );
            }
        }
        let listen = config.server.listen;
        if !config.admin.tokens.is_empty() && !listen.ip().is_loopback() {
            let diagnostic = self
                .origin
                .warning(
                    self.spans.of("server.listen"),
                    format!(
                        "server.listen is {listen}, not a loopback address, and admin tokens \
                         are configured: the admin API is reachable from the network"
                    ),
                )
                .with_help(
                    "listen on 127.0.0.1 behind a proxy, or make sure only trusted networks \
                     reach this port",
                );
            self.found.push(diagnostic);
        }
    }

    fn log(&mut self, config: &Config) {
        let level = &config.log.level;
        if tracing_subscriber::EnvFilter::try_new(level).is_err() {
            self.error(
                "log.level",
                format!("log.level `{level}` is not a log filter"),
                "use error, warn, info, debug or trace, or directives like info,gatehouse=debug",
            );
        }
    }

    fn slack(&mut self, config: &Config) {
        let slack = &config.slack;
        let when = match slack.mode {
            SlackMode::Http => "when slack is enabled in http mode",
            SlackMode::Socket => "when slack is enabled in socket mode",
        };
        self.require(
            slack.bot_token.as_ref(),
            "slack.bot_token",
            "when slack is enabled",
        );
        match slack.mode {
            SlackMode::Http => {
                self.require(slack.signing_secret.as_ref(), "slack.signing_secret", when)
            }
            SlackMode::Socket => self.require(slack.app_token.as_ref(), "slack.app_token", when),
        }
        self.url(Some(&slack.api_url), "slack.api_url");
        if !slack.command.starts_with('/') || slack.command.contains(char::is_whitespace) {
            self.error(
                "slack.command",
                format!("slack.command `{}` is not a slash command", slack.command),
                "write it with its slash and no spaces, e.g. \"/access\"",
            );
        }
    }

    fn discord(&mut self, config: &Config) {
        let discord = &config.discord;
        self.require(
            discord.bot_token.as_ref(),
            "discord.bot_token",
            "when discord is enabled",
        );
        if discord.mode == DiscordMode::Http && discord.public_key.is_none() {
            self.error(
                "discord.public_key",
                "discord.public_key is required when discord is enabled in http mode",
                "copy the public key from the developer portal (General Information)",
            );
        }
        // Both modes register the command, and HTTP mode answers late work through
        // webhooks, under the application's id.
        if discord.application_id.is_none() {
            self.error(
                "discord.application_id",
                "discord.application_id is required when discord is enabled",
                "copy the application id from the developer portal (General Information)",
            );
        }
        if let Some(key) = &discord.public_key
            && !(key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()))
        {
            self.error(
                "discord.public_key",
                format!(
                    "discord.public_key is {} characters, not 64 hex digits",
                    key.chars().count()
                ),
                "copy the public key from the developer portal (General Information)",
            );
        }
        for (path, id) in [
            ("discord.application_id", &discord.application_id),
            ("discord.guild_id", &discord.guild_id),
        ] {
            if let Some(id) = id
                && (id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()))
            {
                self.error(
                    path,
                    format!("{path} `{id}` is not a Discord id"),
                    "Discord ids are numbers, written as strings: \"290926798626357999\"",
                );
            }
        }
        self.url(Some(&discord.api_url), "discord.api_url");
        let command = &discord.command;
        let valid = (1..=32).contains(&command.chars().count())
            && command
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            self.error(
                "discord.command",
                format!("discord.command `{command}` is not a Discord command name"),
                "use 1 to 32 lowercase letters, digits, - or _, without a slash: \"access\"",
            );
        }
    }

    fn connectors(&mut self, config: &Config) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, connector) in config.connectors.iter().enumerate() {
            let at = |key: &str| format!("connectors.{index}.{key}");
            let id = connector.id.as_str();
            if id.is_empty() {
                self.error(
                    &at("id"),
                    "a connector has an empty id",
                    "give every connector an id that resources can name",
                );
            } else if let Some(first) = seen.insert(id, index) {
                let first_line = self
                    .spans
                    .of(&format!("connectors.{first}.id"))
                    .and_then(|span| self.origin.line_of(&span));
                let first =
                    first_line.map_or(String::new(), |line| format!(" (first at line {line})"));
                self.error(
                    &at("id"),
                    format!("connector id `{id}` is used twice{first}"),
                    "connector ids must be unique: resources name their connector by id",
                );
            }
            match connector.kind {
                ConnectorKind::Webhook => match &connector.url {
                    None => self.error(
                        &at("url"),
                        format!("connector `{id}` is a webhook but has no url"),
                        "add url = \"https://provisioner.internal/hooks/gatehouse\"",
                    ),
                    Some(url) => self.url(Some(url), &at("url")),
                },
                ConnectorKind::Command => {
                    let program = connector.command.as_ref().and_then(|c| c.first());
                    if program.is_none_or(|p| p.trim().is_empty()) {
                        self.error(
                            &at("command"),
                            format!("connector `{id}` runs a command but names no program"),
                            "add command = [\"/usr/local/bin/provision\", \"--flag\"] \
                             (the program, then its arguments)",
                        );
                    }
                }
                ConnectorKind::Postgres => self.postgres(index, connector),
                ConnectorKind::Ldap => self.ldap_connector(index, connector),
                ConnectorKind::AwsSso => self.aws_sso(index, connector),
                ConnectorKind::Github => self.github(index, connector),
                ConnectorKind::Google => self.google(index, connector),
                ConnectorKind::Okta => self.okta(index, connector),
                ConnectorKind::Entra => self.entra(index, connector),
                ConnectorKind::Log => {}
            }
            if connector.timeout.as_secs() == 0 {
                self.error(
                    &at("timeout"),
                    format!("connector `{id}` has a zero timeout"),
                    "give it time to answer, e.g. timeout = \"10s\"",
                );
            }
            self.limits(index, connector);
        }
    }

    fn warning(&mut self, path: &str, message: impl Into<String>, help: impl Into<String>) {
        let diagnostic = self
            .origin
            .warning(self.spans.of(path), message)
            .with_help(help);
        self.found.push(diagnostic);
    }

    /// Warns about what a token's powers let its holder do that may not be meant: act as
    /// anyone, everything by default, or nothing at all.
    fn powers(&mut self, token: &AdminToken, index: usize) {
        let name = token.name.as_str();
        let at = format!("admin.tokens.{index}.powers");
        let Some(written) = &token.powers else {
            let defaults: Vec<&str> = Power::DEFAULT.iter().map(|p| p.name()).collect();
            self.warning(
                &format!("admin.tokens.{index}.name"),
                format!(
                    "admin token `{name}` names no `powers`, so it may {}, as its operator",
                    defaults.join(", ")
                ),
                "write the powers it needs, e.g. powers = [\"read\"] for monitoring or \
                 [\"read\", \"admin\"] for backups and reloads",
            );
            return;
        };
        if written.contains(&Power::Impersonate) {
            self.warning(
                &at,
                format!(
                    "admin token `{name}` has the `impersonate` power: whoever holds it can act \
                     as anyone, including as several approvers of one request"
                ),
                "keep it for automation or trying Gatehouse locally; every use is audited as an \
                 impersonation and alerted to the security channel. Elsewhere give each person \
                 a token with their own `operator`",
            );
        }
        if !written.iter().any(|p| Power::DEFAULT.contains(p)) {
            self.warning(
                &at,
                format!("admin token `{name}` has no power to call anything"),
                "give it one of read, request, decide or admin, or remove the token",
            );
        }
    }

    fn admin(&mut self, config: &Config) {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let tokens = &config.admin.tokens;
        for (index, token) in tokens.iter().enumerate() {
            let at = |key: &str| format!("admin.tokens.{index}.{key}");
            let name = token.name.as_str();
            if name.trim().is_empty() {
                self.error(
                    &at("name"),
                    "an admin token has an empty name",
                    "name every token after who or what uses it, e.g. name = \"ops\"",
                );
            } else if names.insert(name, index).is_some() {
                self.error(
                    &at("name"),
                    format!("admin token name `{name}` is used twice"),
                    "names identify tokens in the audit log; make them unique",
                );
            }
            let length = token.token.char_count();
            if length < MIN_ADMIN_TOKEN_CHARS {
                self.error(
                    &at("token"),
                    format!(
                        "admin token `{name}` is {length} characters long; \
                         at least {MIN_ADMIN_TOKEN_CHARS} are needed"
                    ),
                    "short tokens can be guessed; generate one with `openssl rand -hex 32`",
                );
            }
            self.powers(token, index);
            if let Some(other) = tokens[..index]
                .iter()
                .find(|t| t.token.eq_str(token.token.expose()))
            {
                self.error(
                    &at("token"),
                    format!(
                        "admin tokens `{}` and `{name}` are the same secret",
                        other.name
                    ),
                    "give every user of the admin API its own token, \
                     so that it can be revoked alone",
                );
            }
        }
    }
}
