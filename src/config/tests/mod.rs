//! Loading gatehouse.toml end to end, with the environment given as a map.

mod audit;
mod checks;
mod github;
mod google;
mod idp;
mod sources;
mod targets;
mod web;

use std::path::Path;

use chrono::{TimeZone, Utc};

use super::*;
use crate::domain::duration::Duration;

pub(super) const PUBLIC_KEY: &str =
    "8f2a0c1e4b6d8f2a0c1e4b6d8f2a0c1e4b6d8f2a0c1e4b6d8f2a0c1e4b6d8f2a";

pub(super) fn env(vars: &[(&str, &str)]) -> Env {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(super) fn parse_in(
    dir: &Path,
    text: &str,
    vars: &[(&str, &str)],
) -> Result<Config, Diagnostics> {
    Config::parse("gatehouse.toml", text, dir, &env(vars))
}

pub(super) fn parse(text: &str, vars: &[(&str, &str)]) -> Result<Config, Diagnostics> {
    parse_in(Path::new("/etc/gatehouse"), text, vars)
}

pub(super) fn errors(text: &str, vars: &[(&str, &str)]) -> Vec<Diagnostic> {
    match parse(text, vars) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(diagnostics) => diagnostics
            .0
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect(),
    }
}

pub(super) fn only_error(text: &str, vars: &[(&str, &str)]) -> Diagnostic {
    let mut found = errors(text, vars);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

pub(super) const SLACK_HTTP: &str = r#"
[slack]
enabled = true
bot_token = "${SLACK_BOT_TOKEN}"
signing_secret = "${SLACK_SIGNING_SECRET}"
"#;

pub(super) const SLACK_VARS: &[(&str, &str)] = &[
    ("SLACK_BOT_TOKEN", "xoxb-bot-token-value"),
    ("SLACK_SIGNING_SECRET", "signing-secret-value"),
];

#[test]
fn an_empty_file_gives_the_documented_defaults() {
    let config = parse("", &[]).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.data_dir(), Path::new("/etc/gatehouse/./data"));
    assert_eq!(
        config.policy_path(),
        Path::new("/etc/gatehouse/policy.toml")
    );
    assert_eq!(
        config.directory_path(),
        Path::new("/etc/gatehouse/directory.toml")
    );
    assert_eq!(config.templates_path(), None);
    assert!(!config.slack.enabled && !config.discord.enabled);
    assert_eq!(config.slack.api_url, "https://slack.com/api");
    assert_eq!(config.slack.command, "/access");
    assert_eq!(config.discord.api_url, "https://discord.com");
    assert_eq!(config.discord.command, "access");
    assert_eq!(config.scheduler.expiry_warning, Duration::from_mins(15));
    assert_eq!(config.log.format, LogFormat::Human);
    assert_eq!(config.log.level, "info");
    assert!(config.admin.tokens.is_empty() && config.warnings().is_empty());
}

#[test]
fn the_example_of_config_md_loads() {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:8080"
data_dir = "/var/lib/gatehouse"
public_url = "https://gatehouse.example.com"

[files]
policy = "policy.toml"
directory = "/srv/hr/directory.toml"
templates = "templates"

[slack]
enabled = true
mode = "http"
bot_token = "${{SLACK_BOT_TOKEN}}"
signing_secret = "${{SLACK_SIGNING_SECRET}}"
app_token = "${{SLACK_APP_TOKEN:-}}"
api_url = "https://slack.com/api"
security_channel = "C0SECURITY"
command = "/access"

[discord]
enabled = true
mode = "http"
bot_token = "${{DISCORD_BOT_TOKEN}}"
application_id = "1000000000000000001"
public_key = "{PUBLIC_KEY}"
guild_id = "290926798626357999"
security_channel = "645027906669510667"

[[connectors]]
id = "prod-db"
kind = "webhook"
url = "https://provisioner.internal/hooks/gatehouse"
secret = "${{WEBHOOK_SECRET}}"
timeout = "30s"

[[connectors]]
id = "ldap"
kind = "command"
command = ["/usr/local/bin/ldap-grant", "--verbose"]
env = {{ LDAP_PASSWORD = "${{LDAP_PASSWORD}}" }}

[[connectors]]
id = "dry-run"
kind = "log"

[[admin.tokens]]
name = "ops"
token = "${{GATEHOUSE_ADMIN_TOKEN:-0123456789abcdef0123}}"
expires = "2027-06-30T00:00:00Z"
operator = "alice"
powers = ["read", "request", "decide"]

[scheduler]
expiry_warning = "30m"

[log]
format = "json"
level = "info,gatehouse=debug"
"#
    );
    let vars = [
        ("SLACK_BOT_TOKEN", "xoxb-1"),
        ("SLACK_SIGNING_SECRET", "s3cr3t"),
        ("DISCORD_BOT_TOKEN", "discord-token"),
        ("WEBHOOK_SECRET", "hook-secret"),
        ("LDAP_PASSWORD", "ldap-pass"),
    ];
    let config = parse(&text, &vars).unwrap();
    assert_eq!(config.directory_path(), Path::new("/srv/hr/directory.toml"));
    assert_eq!(
        config.templates_path().unwrap(),
        Path::new("/etc/gatehouse/templates")
    );
    assert_eq!(config.slack.bot_token.as_ref().unwrap().expose(), "xoxb-1");
    assert_eq!(config.slack.app_token.as_ref().unwrap().expose(), "");
    assert_eq!(config.discord.mode, DiscordMode::Http);
    let [webhook, command, log] = config.connectors.as_slice() else {
        panic!("three connectors expected");
    };
    assert_eq!(
        (webhook.kind, webhook.timeout),
        (ConnectorKind::Webhook, Duration::from_secs(30))
    );
    assert_eq!(
        command.command.as_deref().unwrap()[0],
        "/usr/local/bin/ldap-grant"
    );
    assert_eq!(command.env["LDAP_PASSWORD"].expose(), "ldap-pass");
    assert_eq!(
        (log.kind, log.timeout),
        (ConnectorKind::Log, Duration::from_secs(10))
    );
    let token = &config.admin.tokens[0];
    assert_eq!(token.token.expose(), "0123456789abcdef0123");
    assert_eq!(
        token.expires,
        Some(Utc.with_ymd_and_hms(2027, 6, 30, 0, 0, 0).unwrap())
    );
    assert_eq!(token.operator.as_ref().unwrap().as_str(), "alice");
    assert_eq!(
        token.powers(),
        [Power::Read, Power::Request, Power::Decide].into()
    );
    assert_eq!(config.scheduler.expiry_warning, Duration::from_mins(30));
    assert_eq!(config.log.format, LogFormat::Json);
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn typo_in_key_is_reported_with_line() {
    let d = only_error("[server]\nlisten = \"127.0.0.1:1\"\nlistne = \"x\"\n", &[]);
    assert_eq!(d.line, Some(3));
    assert!(d.message.contains("unknown field `listne`"), "{d}");
    assert_eq!(d.help.as_deref(), Some("did you mean `listen`?"));
    let d = only_error("[slak]\nenabled = true\n", &[]);
    assert_eq!(
        (d.line, d.help.as_deref()),
        (Some(1), Some("did you mean `slack`?"))
    );
}

#[test]
fn broken_toml_points_at_its_line() {
    let d = only_error("[server]\nlisten = \"x\n", &[]);
    assert_eq!(d.line, Some(2));
}

#[test]
fn loading_a_missing_file_says_how_to_point_at_one() {
    let err =
        Config::load_with_env(Path::new("/nonexistent/gatehouse.toml"), &Env::new()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot read gatehouse.toml at /nonexistent/gatehouse.toml: "),
        "{text}"
    );
    assert!(
        text.ends_with("; pass --config PATH or set GATEHOUSE_CONFIG"),
        "{text}"
    );
}

#[test]
fn loading_resolves_paths_from_the_directory_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, "[files]\npolicy = \"conf/policy.toml\"\n").unwrap();
    let config = Config::load_with_env(&path, &Env::new()).unwrap();
    assert_eq!(config.policy_path(), dir.path().join("conf/policy.toml"));
    std::fs::write(&path, "[files]\npolicy = 3\n").unwrap();
    let err = Config::load_with_env(&path, &Env::new()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2: error: ", path.display())),
        "{err}"
    );
}
