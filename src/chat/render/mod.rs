//! Messages from templates: templates/slack/*.j2 are compiled in, a file of the same name
//! under `files.templates` replaces one, and rendering turns a view into Block Kit JSON that
//! Slack accepts. Two guarantees hold whatever a template (or an override) says: text from
//! people cannot break the JSON, because every `{{ … }}` is escaped for the inside of a JSON
//! string; and a message never exceeds a Block Kit limit, because the result is truncated
//! to fit (see [`enforce_limits`]) rather than refused by Slack.

use minijinja::value::Serde;
use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;

mod check;
mod escape;
mod limits;
mod overrides;
#[cfg(test)]
mod tests;

pub use check::sample_contexts;
pub use escape::mrkdwn;
pub use limits::enforce_limits;
pub use overrides::LoadError;

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
    builtin!("slack/review_card.j2"),
    builtin!("slack/grant_card_decided.j2"),
    builtin!("slack/app_home.j2"),
    builtin!("slack/request_modal.j2"),
    builtin!("slack/reject_modal.j2"),
    builtin!("slack/changes_modal.j2"),
    builtin!("slack/extend_modal.j2"),
    builtin!("slack/ephemeral.j2"),
    builtin!("slack/help.j2"),
];

/// Why a message could not be rendered; names the template, and the line when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("there is no template `{0}`")]
    Unknown(String),
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
    #[error("template `{name}` rendered a {found}, not a JSON object with `blocks`")]
    Shape { name: String, found: &'static str },
    /// Truncating state would corrupt it, so this one is refused.
    #[error("template `{name}` rendered private_metadata of {len} characters; Slack allows 3000")]
    Metadata { name: String, len: usize },
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

    /// Names of the built-in templates that an override replaces.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }

    /// Files in the override directory that replace nothing (a typo in a name, say).
    pub fn unknown_overrides(&self) -> &[String] {
        &self.unknown
    }

    /// Renders `name` (`slack/approval_card.j2`) with `context` into a JSON value within
    /// Block Kit's limits. An override that fails is logged and the built-in used instead,
    /// so a mistake in a customised template never stops a card from going out.
    pub fn render(
        &self,
        name: &str,
        context: impl Serialize,
    ) -> Result<serde_json::Value, RenderError> {
        let context = Value::from(Serde(&context));
        match render_in(&self.env, name, &context) {
            Err(e) if self.overridden.iter().any(|o| o == name) => {
                tracing::warn!(template = name, error = %e, "template override failed; using the built-in");
                render_in(&self.builtin, name, &context)
            }
            other => other,
        }
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
    let text = template
        .render(context)
        .map_err(|e| template_error(name, &e))?;
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
    enforce_limits(&mut value).map_err(|len| RenderError::Metadata {
        name: name.to_owned(),
        len,
    })?;
    if !value.get("blocks").is_some_and(serde_json::Value::is_array) {
        let found = match value {
            serde_json::Value::Object(_) => "JSON object without a `blocks` list",
            serde_json::Value::Array(_) => "JSON list",
            _ => "JSON scalar",
        };
        return Err(RenderError::Shape {
            name: name.to_owned(),
            found,
        });
    }
    Ok(value)
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
