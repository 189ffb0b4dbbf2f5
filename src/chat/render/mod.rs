//! Messages from templates: templates/slack/*.j2 and templates/discord/*.j2 are compiled in,
//! a file of the same name under `files.templates` replaces one, and rendering turns a view
//! into JSON the platform accepts: Block Kit for `slack/…`, a message body or a modal for
//! `discord/…`. Two guarantees hold whatever a template (or an override) says: text from
//! people cannot break the JSON, because every `{{ … }}` is escaped for the inside of a JSON
//! string; and a message never exceeds a platform limit, because the result is cut to fit
//! (see [`enforce_limits`] and [`enforce_discord_limits`]) rather than refused. And no
//! template, however written, can hang a render or fill memory: each render has a budget of
//! work ([`TEMPLATE_FUEL`]) and of output ([`MAX_TEMPLATE_OUTPUT`]).

use std::collections::BTreeSet;
use std::sync::Mutex;

use minijinja::value::Serde;
use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;

mod check;
pub mod discord_ids;
mod discord_limits;
mod escape;
mod limits;
mod overrides;
mod plain;
#[cfg(test)]
mod tests;

pub use check::sample_contexts;
pub use discord_limits::{LongCustomId, enforce_discord_limits};
pub use escape::{discord, discord_code, mrkdwn};
pub use limits::enforce_limits;
pub use overrides::LoadError;
pub use plain::slack_plain_text;

macro_rules! builtin {
    ($name:literal) => {
        ($name, include_str!(concat!("../../../templates/", $name)))
    };
}

/// The built-in templates, by the name an override in `files.templates` uses.
pub const BUILTIN: &[(&str, &str)] = &[
    builtin!("slack/approval_card.j2"),
    builtin!("slack/approval_card_decided.j2"),
    builtin!("slack/notice.j2"),
    builtin!("slack/alert.j2"),
    builtin!("slack/impersonation_alert.j2"),
    builtin!("slack/review_card.j2"),
    builtin!("slack/grant_card_decided.j2"),
    builtin!("slack/app_home.j2"),
    builtin!("slack/request_modal.j2"),
    builtin!("slack/reject_modal.j2"),
    builtin!("slack/changes_modal.j2"),
    builtin!("slack/extend_modal.j2"),
    builtin!("slack/ephemeral.j2"),
    builtin!("slack/help.j2"),
    builtin!("discord/approval_card.j2"),
    builtin!("discord/approval_card_decided.j2"),
    builtin!("discord/notice.j2"),
    builtin!("discord/alert.j2"),
    builtin!("discord/impersonation_alert.j2"),
    builtin!("discord/review_card.j2"),
    builtin!("discord/grant_card_decided.j2"),
    builtin!("discord/request_modal.j2"),
    builtin!("discord/reject_modal.j2"),
    builtin!("discord/changes_modal.j2"),
    builtin!("discord/extend_modal.j2"),
    builtin!("discord/ephemeral.j2"),
    builtin!("discord/help.j2"),
];

/// The work one render may do, in minijinja fuel: about one per instruction run and one per
/// 64 bytes of text or lists made. A built-in card takes a few hundred; an App Home about 75
/// per request or grant it lists. A million leaves room for homes of thousands of items, and
/// stops a runaway loop (`range(100000)` inside another) after a fraction of a second and at
/// most some 64 MB.
pub const TEMPLATE_FUEL: u64 = 1_000_000;

/// The most text one render may print, before the platform's limits cut the message.
pub const MAX_TEMPLATE_OUTPUT: usize = 4 * 1024 * 1024;

/// Why a message could not be rendered; names the template, and the line when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("there is no template `{0}`")]
    Unknown(String),
    /// The render ran out of [`TEMPLATE_FUEL`] or printed more than [`MAX_TEMPLATE_OUTPUT`].
    #[error("template `{name}` {what}; look for a loop that runs too long or prints too much")]
    OverBudget { name: String, what: String },
    #[error("template `{name}`{}: {detail}", at_line(*line))]
    Template {
        name: String,
        line: Option<usize>,
        detail: String,
    },
    #[error(
        "template `{name}` rendered invalid JSON at line {line}, column {column}: {error}; the line reads: {excerpt}"
    )]
    Json {
        name: String,
        line: usize,
        column: usize,
        error: String,
        excerpt: String,
    },
    /// `expected` says what the platform takes: Block Kit, or a Discord message or modal.
    #[error("template `{name}` rendered a {found}, not {expected}")]
    Shape {
        name: String,
        found: &'static str,
        expected: &'static str,
    },
    /// Truncating state would corrupt it, so this one is refused.
    #[error("template `{name}` rendered private_metadata of {len} characters; Slack allows 3000")]
    Metadata { name: String, len: usize },
    /// A cut id would misfire (or name another request), so this one is refused too.
    #[error(
        "template `{name}` rendered a custom_id of {} characters ({custom_id}); Discord allows 100",
        custom_id.chars().count()
    )]
    CustomId { name: String, custom_id: String },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(", line {l}")).unwrap_or_default()
}

/// The message templates, built-in and overridden.
pub struct Templates {
    env: Environment<'static>,
    /// The built-ins alone: what an override that fails at render time falls back to.
    builtin: Environment<'static>,
    overridden: Vec<String>,
    unknown: Vec<String>,
    /// Overrides that went over budget once: the built-in is used instead from then on,
    /// rather than spending a whole budget on every message.
    set_aside: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("overridden", &self.overridden)
            .field("unknown", &self.unknown)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The compiled-in templates only.
    pub fn builtin() -> Result<Self, LoadError> {
        Self::load(None)
    }

    /// Approval cards link to the web portal at `base` (its `public_url`) when it is on:
    /// templates read it as `portal` (`{{ portal }}/web/requests/AR-12`).
    pub fn link_to_portal(mut self, base: Option<&str>) -> Self {
        if let Some(base) = base {
            self.env.add_global("portal", base.to_owned());
            self.builtin.add_global("portal", base.to_owned());
        }
        self
    }

    /// Names of the built-in templates that an override replaces.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }

    /// Files in the override directory that replace nothing (a typo in a name, say).
    pub fn unknown_overrides(&self) -> &[String] {
        &self.unknown
    }

    /// Renders `name` (`slack/approval_card.j2`, `discord/approval_card.j2`) with `context`
    /// into a JSON value within the platform's limits: Block Kit for `slack/…`; for
    /// `discord/…` the body of a message (`content`, `embeds`, `components`, without
    /// `allowed_mentions`) or of a modal (`custom_id`, `title`, `components`). An override
    /// that fails is logged and the built-in used instead, so a mistake in a customised
    /// template never stops a card from going out; one that goes over budget is logged
    /// once and set aside until Gatehouse restarts.
    pub fn render(
        &self,
        name: &str,
        context: impl Serialize,
    ) -> Result<serde_json::Value, RenderError> {
        let context = Value::from(Serde(&context));
        if !self.overridden.iter().any(|o| o == name) {
            return render_in(&self.env, name, &context);
        }
        if self.is_set_aside(name) {
            return render_in(&self.builtin, name, &context);
        }
        match render_in(&self.env, name, &context) {
            Err(e @ RenderError::OverBudget { .. }) => {
                self.lock_set_aside().insert(name.to_owned());
                tracing::error!(template = name, error = %e, "template override set aside until restart; using the built-in");
                render_in(&self.builtin, name, &context)
            }
            Err(e) => {
                tracing::warn!(template = name, error = %e, "template override failed; using the built-in");
                render_in(&self.builtin, name, &context)
            }
            ok => ok,
        }
    }

    fn is_set_aside(&self, name: &str) -> bool {
        self.lock_set_aside().contains(name)
    }

    fn lock_set_aside(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.set_aside
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn render_in(
    env: &Environment<'static>,
    name: &str,
    context: &Value,
) -> Result<serde_json::Value, RenderError> {
    let template = env.get_template(name).map_err(|e| match e.kind() {
        ErrorKind::TemplateNotFound => RenderError::Unknown(name.to_owned()),
        _ => template_error(name, &e),
    })?;
    let text = template.render(context).map_err(|e| match e.kind() {
        ErrorKind::OutOfFuel => RenderError::OverBudget {
            name: name.to_owned(),
            what: format!("used up its budget of {TEMPLATE_FUEL} steps"),
        },
        _ => template_error(name, &e),
    })?;
    if text.len() > MAX_TEMPLATE_OUTPUT {
        return Err(RenderError::OverBudget {
            name: name.to_owned(),
            what: format!("printed more than {} MiB", MAX_TEMPLATE_OUTPUT >> 20),
        });
    }
    let mut value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        let excerpt: String = text
            .lines()
            .nth(e.line().saturating_sub(1))
            .unwrap_or_default()
            .trim()
            .chars()
            .take(160)
            .collect();
        RenderError::Json {
            name: name.to_owned(),
            line: e.line(),
            column: e.column(),
            error: e.to_string(),
            excerpt,
        }
    })?;
    if name.starts_with("discord/") {
        enforce_discord_limits(&mut value).map_err(|e| RenderError::CustomId {
            name: name.to_owned(),
            custom_id: e.custom_id,
        })?;
        discord_shape(&value).map_err(|found| RenderError::Shape {
            name: name.to_owned(),
            found,
            expected: "a Discord message (`content`, `embeds`, `components`) or modal (`custom_id`, `title`, `components`)",
        })?;
        return Ok(value);
    }
    enforce_limits(&mut value).map_err(|len| RenderError::Metadata {
        name: name.to_owned(),
        len,
    })?;
    if !value.get("blocks").is_some_and(serde_json::Value::is_array) {
        return Err(RenderError::Shape {
            name: name.to_owned(),
            found: not_an_object(&value).unwrap_or("JSON object without a `blocks` list"),
            expected: "a JSON object with `blocks`",
        });
    }
    Ok(value)
}

fn not_an_object(value: &serde_json::Value) -> Option<&'static str> {
    match value {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("JSON list"),
        _ => Some("JSON scalar"),
    }
}

/// A modal has a `custom_id`, a `title` and components; a message has some content, an
/// embed or components (an empty `components` list, which removes a card's buttons when
/// it is edited, counts only beside content or embeds).
fn discord_shape(value: &serde_json::Value) -> Result<(), &'static str> {
    use serde_json::Value;
    if let Some(found) = not_an_object(value) {
        return Err(found);
    }
    let nonempty_str = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let nonempty_list = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty())
    };
    let is_list = |key: &str| value.get(key).is_none_or(Value::is_array);
    if value.get("custom_id").is_some() {
        if !nonempty_str("custom_id") || !nonempty_str("title") {
            return Err("modal without a `custom_id` or a `title`");
        }
        if !nonempty_list("components") {
            return Err("modal without `components`");
        }
        return Ok(());
    }
    if !is_list("embeds") || !is_list("components") {
        return Err("message whose `embeds` or `components` is not a list");
    }
    if !nonempty_str("content") && !nonempty_list("embeds") && !nonempty_list("components") {
        return Err("message with no `content`, `embeds` or `components`");
    }
    Ok(())
}

fn template_error(name: &str, e: &Error) -> RenderError {
    RenderError::Template {
        name: name.to_owned(),
        line: e.line(),
        detail: describe(e),
    }
}

fn describe(e: &Error) -> String {
    let mut text = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
