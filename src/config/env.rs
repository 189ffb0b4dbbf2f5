//! The environment as config sees it, and `GATEHOUSE_<SECTION>__<KEY>` overrides.
//!
//! The environment is always passed in as a snapshot ([`Env`]) so that tests never touch the
//! process environment. An override replaces one key of one top-level table
//! (`GATEHOUSE_SERVER__LISTEN`, `GATEHOUSE_SLACK__BOT_TOKEN`, `GATEHOUSE_SLACK__BOT_TOKEN_FILE`),
//! creating the table if the file has none. `true` and `false` become booleans; every other
//! value stays a string (integers are not guessed, because ids such as
//! `discord.application_id` are strings of digits). Lists and nested tables (`[[connectors]]`,
//! `admin.tokens`) cannot be overridden; such variables are ignored with a warning.

use std::borrow::Cow;
use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::locate::Origin;
use crate::domain::diagnostic::Diagnostic;

/// A snapshot of environment variables.
pub type Env = BTreeMap<String, String>;

const PREFIX: &str = "GATEHOUSE_";
const FILE_SUFFIX: &str = "_file";

/// The process environment (variables that are not valid UTF-8 are left out).
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Applies every `GATEHOUSE_<SECTION>__<KEY>` of `env` to the document. An override of `X`
/// removes `X_file` from the same table and the other way round: the environment wins.
pub(super) fn apply_overrides(
    root: &mut DeTable<'_>,
    env: &Env,
    origin: &mut Origin<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            // GATEHOUSE_CONFIG and variables meant for ${…} are not overrides.
            continue;
        }
        let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let [section, key] = parts.as_slice() else {
            diagnostics.push(ignored(
                origin,
                var,
                "only GATEHOUSE_<SECTION>__<KEY> is understood",
            ));
            continue;
        };
        if section.is_empty() || key.is_empty() {
            diagnostics.push(ignored(
                origin,
                var,
                "only GATEHOUSE_<SECTION>__<KEY> is understood",
            ));
            continue;
        }
        let span = origin.span_for_override(var);
        if !root.contains_key(section.as_str()) {
            let name = Spanned::new(span.clone(), Cow::Owned(section.clone()));
            root.insert(
                name,
                Spanned::new(span.clone(), DeValue::Table(DeTable::new())),
            );
        }
        let Some(DeValue::Table(table)) = root.get_mut(section.as_str()).map(Spanned::get_mut)
        else {
            diagnostics.push(ignored(
                origin,
                var,
                &format!("`{section}` is a list of tables"),
            ));
            continue;
        };
        if let Some(DeValue::Array(_) | DeValue::Table(_)) =
            table.get(key.as_str()).map(Spanned::get_ref)
        {
            diagnostics.push(ignored(
                origin,
                var,
                &format!("{section}.{key} is a list or a table"),
            ));
            continue;
        }
        let sibling = match key.strip_suffix(FILE_SUFFIX) {
            Some(base) => base.to_owned(),
            None => format!("{key}{FILE_SUFFIX}"),
        };
        table.remove(sibling.as_str());
        let value = match value.as_str() {
            "true" => DeValue::Boolean(true),
            "false" => DeValue::Boolean(false),
            text => DeValue::String(Cow::Owned(text.to_owned())),
        };
        table.insert(
            Spanned::new(span.clone(), Cow::Owned(key.clone())),
            Spanned::new(span, value),
        );
    }
}

fn ignored(origin: &Origin<'_>, var: &str, why: &str) -> Diagnostic {
    origin
        .warning(None, format!("{var} is ignored: {why}"))
        .with_help(
            "overrides set one key of a top-level table, \
             e.g. GATEHOUSE_SERVER__LISTEN=0.0.0.0:8080",
        )
}
