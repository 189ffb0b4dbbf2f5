//! gatehouse.toml: interpolation, `GATEHOUSE_<SECTION>__<KEY>` overrides, `X_file` secrets
//! and the checks. Every problem points at a line of the file or at the variable that set
//! the value, and a secret never shows in the loaded config's `Debug`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::{Config, Env};
use crate::domain::diagnostic::{Diagnostic, Source};

const NAME: &str = "gatehouse.toml";

/// Input: gatehouse.toml, then after a NUL the environment as `NAME=value` lines.
pub fn config(data: &[u8]) {
    let (file, env) = super::split(data);
    let text = super::text(file);
    // `X_file` reads any path; keep the fuzzer off devices and kernel files, which a
    // read_to_string would never finish or would fill memory with.
    if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
        return;
    }
    let env: Env = super::text(env)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let source = Source::new(NAME, &text);
    match Config::parse(NAME, &text, base_dir(), &env) {
        Ok(config) => {
            for warning in config.warnings() {
                located(warning, &source, &env);
            }
            no_secret_shows(&config);
        }
        Err(problems) => {
            assert!(problems.0.iter().any(Diagnostic::is_error), "{problems}");
            for problem in &problems.0 {
                located(problem, &source, &env);
            }
        }
    }
}

/// A line of the file, or an environment variable that was given.
fn located(diagnostic: &Diagnostic, source: &Source<'_>, env: &Env) {
    match diagnostic.file.strip_prefix("environment variable ") {
        Some(var) => {
            assert!(env.contains_key(var), "{diagnostic}");
            assert_eq!(diagnostic.line, None, "{diagnostic}");
        }
        None => assert_eq!(diagnostic.file, NAME, "{diagnostic}"),
    }
    super::assert_inside(diagnostic, source);
}

fn no_secret_shows(config: &Config) {
    let shown = format!("{config:?}");
    let mut secrets = vec![
        &config.slack.bot_token,
        &config.slack.signing_secret,
        &config.slack.app_token,
        &config.discord.bot_token,
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    secrets.extend(config.admin.tokens.iter().map(|t| &t.token));
    for connector in &config.connectors {
        secrets.extend(connector.secret.iter());
        secrets.extend(connector.env.values());
    }
    for secret in secrets {
        let value = secret.expose();
        // Short values occur in any text (`1`, `true`); only a real secret's text counts.
        if value.chars().count() >= 8 && !shown_anyway(config, value) {
            assert!(!shown.contains(value), "a secret shows in Debug: {value:?}");
        }
    }
}

/// A secret that is also the text of a setting that is not secret (a URL given as a token,
/// say) shows there, not because the secret leaked.
fn shown_anyway(config: &Config, value: &str) -> bool {
    let mut open = config.clone();
    open.slack.bot_token = None;
    open.slack.signing_secret = None;
    open.slack.app_token = None;
    open.discord.bot_token = None;
    open.admin.tokens.clear();
    for connector in &mut open.connectors {
        connector.secret = None;
        connector.env.clear();
    }
    format!("{open:?}").contains(value)
}

/// A directory with one small secret file, `token.txt`, for `X_file` to read.
fn base_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gatehouse-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("token.txt"), "xoxb-from-a-file\n");
        dir
    })
}
