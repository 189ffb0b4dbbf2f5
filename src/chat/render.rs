//! Messages from templates: templates/slack/*.j2 are compiled in, a file of the same name
//! under `files.templates` replaces one, and rendering turns a view into Block Kit JSON that
//! Slack accepts. Two guarantees hold whatever a template (or an override) says: text from
//! people cannot break the JSON, because every `{{ … }}` is escaped for the inside of a JSON
//! string; and a message never exceeds a Block Kit limit, because the result is truncated
//! to fit (see [`enforce_limits`]) rather than refused by Slack.

use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};
use serde::Serialize;

use super::views::samples;

macro_rules! builtin {
    ($name:literal) => {
        ($name, include_str!(concat!("../../templates/", $name)))
    };
}

/// The built-in templates, by the name an override in `files.templates` uses.
pub const BUILTIN: &[(&str, &str)] = &[
    builtin!("slack/approval_card.j2"),
    builtin!("slack/approval_card_decided.j2"),
    builtin!("slack/notice.j2"),
    builtin!("slack/alert.j2"),
    builtin!("slack/review_card.j2"),
    builtin!("slack/app_home.j2"),
    builtin!("slack/request_modal.j2"),
    builtin!("slack/reject_modal.j2"),
    builtin!("slack/changes_modal.j2"),
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

/// Template overrides that could not be loaded, each named with its file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct LoadError {
    pub problems: Vec<String>,
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

    /// The compiled-in templates, with each `*.j2` file under `overrides` (say
    /// `slack/approval_card.j2`) replacing the built-in of the same name. A file that names
    /// no template is not an error; [`Templates::unknown_overrides`] lists it.
    pub fn load(overrides: Option<&Path>) -> Result<Self, LoadError> {
        let mut problems = Vec::new();
        let mut builtin = environment();
        for (name, source) in BUILTIN {
            if let Err(e) = builtin.add_template(name, source) {
                problems.push(format!("built-in template {name}: {}", describe(&e)));
            }
        }
        let mut env = builtin.clone();
        let (mut overridden, mut unknown) = (Vec::new(), Vec::new());
        if let Some(dir) = overrides {
            for (name, path) in list_files(dir, &mut problems) {
                if !BUILTIN.iter().any(|(b, _)| *b == name) {
                    unknown.push(name);
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Err(e) => problems.push(format!("{}: cannot read: {e}", path.display())),
                    Ok(source) => match env.add_template_owned(name.clone(), source) {
                        Ok(()) => overridden.push(name),
                        Err(e) => problems.push(format!(
                            "{}{}: {}",
                            path.display(),
                            e.line().map(|l| format!(":{l}")).unwrap_or_default(),
                            describe(&e)
                        )),
                    },
                }
            }
        }
        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        Ok(Templates {
            env,
            builtin,
            overridden,
            unknown,
        })
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

    /// Renders every template with sample data and lists what is wrong, for `gatehouse check`.
    pub fn check(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .unknown
            .iter()
            .map(|name| {
                let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
                format!(
                    "templates: `{name}` replaces no template; known: {}",
                    known.join(", ")
                )
            })
            .collect();
        for (name, context) in sample_contexts() {
            if let Err(e) = render_in(&self.env, name, &Value::from(Serde(&context))) {
                problems.push(e.to_string());
            }
        }
        problems
    }
}

/// The context each template expects, with sample data: one entry per template, and one
/// per kind for the notice and alert templates.
pub fn sample_contexts() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let mut contexts = vec![
        (
            "slack/approval_card.j2",
            json!({ "request": samples::sample_request() }),
        ),
        (
            "slack/approval_card_decided.j2",
            json!({ "request": samples::sample_decided_request() }),
        ),
        (
            "slack/review_card.j2",
            json!({ "item": samples::sample_campaign_item() }),
        ),
        (
            "slack/app_home.j2",
            json!({ "home": samples::sample_home() }),
        ),
        (
            "slack/request_modal.j2",
            json!({ "modal": samples::sample_request_modal() }),
        ),
        (
            "slack/reject_modal.j2",
            json!({ "modal": samples::sample_reject_modal() }),
        ),
        (
            "slack/changes_modal.j2",
            json!({ "modal": samples::sample_changes_modal() }),
        ),
        (
            "slack/ephemeral.j2",
            json!({ "reply": samples::sample_ephemeral() }),
        ),
        ("slack/help.j2", json!({ "help": samples::sample_help() })),
    ];
    let mut decided = samples::sample_campaign_item();
    decided.decided = true;
    decided.outcome = Some("Kept by Carol Diaz".to_owned());
    contexts.push(("slack/review_card.j2", json!({ "item": decided })));
    contexts.extend(
        samples::sample_notices()
            .into_iter()
            .map(|n| ("slack/notice.j2", json!({ "notice": n }))),
    );
    contexts.extend(
        samples::sample_alerts()
            .into_iter()
            .map(|a| ("slack/alert.j2", json!({ "alert": a }))),
    );
    contexts
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

/// Every file under `dir`, by its path relative to `dir` with `/` separators.
fn list_files(dir: &Path, problems: &mut Vec<String>) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(format!(
                    "{}: cannot read the template directory: {e}",
                    current.display()
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                let name: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.push((name.join("/"), path.clone()));
            }
        }
    }
    found.sort();
    found
}

/// The environment every template renders in: `{{ … }}` output is escaped for the inside
/// of a JSON string unless marked safe (as `tojson` output is), undefined names are errors,
/// and `mrkdwn` escapes Slack's control characters in people's text.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // A custom mode, not None: macro output and {% set %} captures are then already
    // escaped, and are not escaped twice when printed.
    env.set_auto_escape_callback(|_| AutoEscape::Custom("json-string".into()));
    env.set_formatter(json_string_formatter);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.add_filter("mrkdwn", mrkdwn_filter);
    env
}

fn json_string_formatter(out: &mut Output, _: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "printed an undefined value",
        ));
    }
    let written = if value.is_safe() {
        out.write_str(value.as_str().unwrap_or_default())
    } else if value.is_none() {
        Ok(())
    } else {
        out.write_str(&json_string_content(&value.to_string()))
    };
    written
        .map_err(|e| Error::new(ErrorKind::WriteFailure, "cannot write the output").with_source(e))
}

/// `text` escaped as the inside of a JSON string: quotes, backslashes and control characters.
fn json_string_content(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Escapes the three characters Slack's mrkdwn gives meaning to, so that text people typed
/// cannot become a mention (`<!channel>`), a link or a user reference.
pub fn mrkdwn(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn mrkdwn_filter(value: &Value) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "mrkdwn of an undefined value",
        ));
    }
    Ok(if value.is_none() {
        String::new()
    } else {
        mrkdwn(&value.to_string())
    })
}

/// Fits a rendered message or view into Block Kit's limits by truncating, so that Slack
/// never refuses it: at most 50 blocks in a message and 100 in a view (the overflow becomes
/// "…and N more", keeping a card's final buttons), and every text, list and id within its
/// documented length. Cut text ends in "…", on a character boundary and never inside an
/// `&amp;` escape or a `<…>` token. The one limit it cannot honour by cutting is
/// `private_metadata` (3000): cutting state would corrupt it, so its length is the error.
pub fn enforce_limits(root: &mut serde_json::Value) -> Result<(), usize> {
    let Some(obj) = root.as_object_mut() else {
        return Ok(());
    };
    let is_view = matches!(
        obj.get("type").and_then(serde_json::Value::as_str),
        Some("modal" | "home")
    );
    if is_view {
        for key in ["title", "submit", "close"] {
            text(obj.get_mut(key), 24);
        }
        for key in ["callback_id", "external_id"] {
            string(obj.get_mut(key), 255);
        }
        if let Some(meta) = obj
            .get("private_metadata")
            .and_then(serde_json::Value::as_str)
        {
            let len = meta.chars().count();
            if len > 3000 {
                return Err(len);
            }
        }
    } else {
        string(obj.get_mut("text"), 40_000);
    }
    if let Some(serde_json::Value::Array(blocks)) = obj.get_mut("blocks") {
        blocks.iter_mut().for_each(block);
        cap_blocks(blocks, if is_view { 100 } else { 50 });
    }
    Ok(())
}

fn more(n: usize) -> serde_json::Value {
    serde_json::json!({ "type": "mrkdwn", "text": format!("…and {n} more") })
}

fn cap_blocks(blocks: &mut Vec<serde_json::Value>, max: usize) {
    if blocks.len() <= max {
        return;
    }
    // A card's buttons are what its reader needs most: a trailing actions block stays.
    let tail = match blocks.last() {
        Some(last) if last["type"] == "actions" => blocks.pop(),
        _ => None,
    };
    let room = max - 1 - usize::from(tail.is_some());
    let dropped = blocks.len() - room;
    blocks.truncate(room);
    blocks.push(serde_json::json!({ "type": "context", "elements": [more(dropped)] }));
    blocks.extend(tail);
}

/// Keeps at most `max` items, the last one saying how many were left out.
fn cap_list(list: &mut Vec<serde_json::Value>, max: usize) {
    if list.len() > max {
        let dropped = list.len() - (max - 1);
        list.truncate(max - 1);
        list.push(more(dropped));
    }
}

fn block(b: &mut serde_json::Value) {
    let Some(obj) = b.as_object_mut() else {
        return;
    };
    string(obj.get_mut("block_id"), 255);
    let kind = obj
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    match kind {
        "section" => {
            text(obj.get_mut("text"), 3000);
            if let Some(serde_json::Value::Array(fields)) = obj.get_mut("fields") {
                cap_list(fields, 10);
                fields.iter_mut().for_each(|f| text(Some(f), 2000));
            }
            if let Some(accessory) = obj.get_mut("accessory") {
                element(accessory);
            }
        }
        "header" => text(obj.get_mut("text"), 150),
        "context" => {
            if let Some(serde_json::Value::Array(elements)) = obj.get_mut("elements") {
                cap_list(elements, 10);
                for e in elements {
                    if e["type"] == "image" {
                        element(e);
                    } else {
                        text(Some(e), 3000);
                    }
                }
            }
        }
        "actions" => {
            if let Some(serde_json::Value::Array(elements)) = obj.get_mut("elements") {
                elements.truncate(25);
                elements.iter_mut().for_each(element);
            }
        }
        "input" => {
            text(obj.get_mut("label"), 2000);
            text(obj.get_mut("hint"), 2000);
            if let Some(e) = obj.get_mut("element") {
                element(e);
            }
        }
        "image" => {
            string(obj.get_mut("alt_text"), 2000);
            string(obj.get_mut("image_url"), 3000);
            text(obj.get_mut("title"), 2000);
        }
        "markdown" => string(obj.get_mut("text"), 12_000),
        _ => {}
    }
}

fn element(e: &mut serde_json::Value) {
    let Some(obj) = e.as_object_mut() else {
        return;
    };
    string(obj.get_mut("action_id"), 255);
    text(obj.get_mut("placeholder"), 150);
    if let Some(serde_json::Value::Object(confirm)) = obj.get_mut("confirm") {
        text(confirm.get_mut("title"), 100);
        text(confirm.get_mut("text"), 300);
        text(confirm.get_mut("confirm"), 30);
        text(confirm.get_mut("deny"), 30);
    }
    let kind = obj
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let max_options = match kind {
        "button" => {
            text(obj.get_mut("text"), 75);
            string(obj.get_mut("value"), 2000);
            string(obj.get_mut("url"), 3000);
            string(obj.get_mut("accessibility_label"), 75);
            0
        }
        "plain_text_input" => {
            for key in ["min_length", "max_length"] {
                if obj
                    .get(key)
                    .and_then(serde_json::Value::as_u64)
                    .is_some_and(|n| n > 3000)
                {
                    obj.insert(key.to_owned(), 3000.into());
                }
            }
            let max = obj
                .get("max_length")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(3000);
            string(
                obj.get_mut("initial_value"),
                usize::try_from(max).unwrap_or(3000).max(1),
            );
            0
        }
        "image" => {
            string(obj.get_mut("alt_text"), 2000);
            string(obj.get_mut("image_url"), 3000);
            0
        }
        "overflow" => 5,
        "radio_buttons" | "checkboxes" => 10,
        _ => 100,
    };
    if let Some(option) = obj.get_mut("initial_option") {
        option_object(option);
    }
    for key in ["options", "initial_options"] {
        if let Some(serde_json::Value::Array(options)) = obj.get_mut(key) {
            options.truncate(max_options.max(1));
            options.iter_mut().for_each(option_object);
        }
    }
    if let Some(serde_json::Value::Array(groups)) = obj.get_mut("option_groups") {
        groups.truncate(100);
        for group in groups
            .iter_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            text(group.get_mut("label"), 75);
            if let Some(serde_json::Value::Array(options)) = group.get_mut("options") {
                options.truncate(100);
                options.iter_mut().for_each(option_object);
            }
        }
    }
}

fn option_object(o: &mut serde_json::Value) {
    let Some(obj) = o.as_object_mut() else {
        return;
    };
    text(obj.get_mut("text"), 75);
    string(obj.get_mut("value"), 150);
    text(obj.get_mut("description"), 75);
    string(obj.get_mut("url"), 3000);
}

/// A text object (`{"type": "mrkdwn", "text": …}`): never empty, at most `max` characters.
fn text(t: Option<&mut serde_json::Value>, max: usize) {
    let Some(serde_json::Value::Object(t)) = t else {
        return;
    };
    let mrkdwn = t.get("type").is_some_and(|k| k == "mrkdwn");
    if let Some(serde_json::Value::String(s)) = t.get_mut("text") {
        if s.trim().is_empty() {
            // Slack refuses empty text; a dash says "nothing" without an API error.
            *s = "—".to_owned();
        }
        cut(s, max, mrkdwn);
    }
}

fn string(s: Option<&mut serde_json::Value>, max: usize) {
    if let Some(serde_json::Value::String(s)) = s {
        cut(s, max, false);
    }
}

/// Cuts `s` to at most `max` characters, the last being "…".
fn cut(s: &mut String, max: usize, mrkdwn: bool) {
    if s.chars().count() <= max {
        return;
    }
    let mut kept: String = s.chars().take(max.saturating_sub(1)).collect();
    if mrkdwn {
        // Half of `&amp;` or of `<!date^…|…>` would show as raw characters.
        let escape = kept
            .rfind('&')
            .filter(|&i| kept.len() - i < 5 && !kept[i..].contains(';'));
        if let Some(amp) = escape {
            kept.truncate(amp);
        }
        if let Some(lt) = kept.rfind('<').filter(|&i| !kept[i..].contains('>')) {
            kept.truncate(lt);
        }
    }
    kept.push('…');
    *s = kept;
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::{Value as Json, json};

    use super::*;
    use crate::chat::actions::CardAction;
    use crate::chat::views::{EphemeralView, FieldView, HomeView};

    fn templates() -> Templates {
        Templates::builtin().expect("the built-in templates compile")
    }

    fn render(name: &str, context: Json) -> Json {
        templates()
            .render(name, &context)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every object of `kind` (`button`, `section`, …) anywhere in `value`.
    fn all_of<'a>(value: &'a Json, kind: &str, found: &mut Vec<&'a Json>) {
        match value {
            Json::Object(obj) => {
                if obj.get("type").is_some_and(|t| t == kind) {
                    found.push(value);
                }
                obj.values().for_each(|v| all_of(v, kind, found));
            }
            Json::Array(items) => items.iter().for_each(|v| all_of(v, kind, found)),
            _ => {}
        }
    }

    fn buttons(value: &Json) -> Vec<CardAction> {
        let mut found = Vec::new();
        all_of(value, "button", &mut found);
        found
            .iter()
            .map(|b| {
                let (id, value) = (b["action_id"].as_str(), b["value"].as_str());
                CardAction::parse(id.unwrap_or_default(), value.unwrap_or_default())
                    .unwrap_or_else(|| panic!("button {b} is not a card action"))
            })
            .collect()
    }

    fn mrkdwn_texts(value: &Json) -> Vec<String> {
        let mut found = Vec::new();
        all_of(value, "mrkdwn", &mut found);
        found
            .iter()
            .map(|t| t["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn chars(value: &Json) -> usize {
        value.as_str().map_or(0, |s| s.chars().count())
    }

    #[test]
    fn every_template_renders_block_kit_json_with_sample_data() {
        let t = templates();
        assert_eq!(t.check(), Vec::<String>::new());
        let contexts = sample_contexts();
        for (name, _) in BUILTIN {
            assert!(
                contexts.iter().any(|(n, _)| n == name),
                "{name} has no sample"
            );
        }
        for (name, context) in contexts {
            let message = t.render(name, &context).unwrap_or_else(|e| panic!("{e}"));
            let blocks = message["blocks"].as_array().map_or(0, Vec::len);
            assert!((1..=50).contains(&blocks), "{name}: {blocks} blocks");
        }
    }

    #[test]
    fn every_notice_and_alert_kind_has_its_own_message() {
        let notices = samples::sample_notices();
        let kinds: Vec<&str> = notices.iter().map(|n| n.kind).collect();
        assert_eq!(kinds.len(), 11, "one sample per Notice variant: {kinds:?}");
        for notice in notices {
            let text = render("slack/notice.j2", json!({ "notice": notice }))["text"].to_string();
            assert!(
                !text.contains("News from Gatehouse"),
                "{} has no message",
                notice.kind
            );
        }
        let alerts = samples::sample_alerts();
        assert_eq!(alerts.len(), 8, "one sample per Alert variant");
        for alert in alerts {
            let text = render("slack/alert.j2", json!({ "alert": alert }))["text"].to_string();
            assert!(
                !text.contains("Gatehouse alert"),
                "{} has no message",
                alert.kind
            );
        }
    }

    #[test]
    fn every_button_reads_back_as_the_action_it_stands_for() {
        let ids =
            |v: &Json| -> Vec<&'static str> { buttons(v).iter().map(|a| a.action_id()).collect() };
        let card = render(
            "slack/approval_card.j2",
            json!({ "request": samples::sample_request() }),
        );
        assert_eq!(
            ids(&card),
            [
                "gatehouse.approve",
                "gatehouse.reject",
                "gatehouse.approve_with_changes"
            ]
        );
        let decided = json!({ "request": samples::sample_decided_request() });
        assert!(ids(&render("slack/approval_card_decided.j2", decided)).is_empty());
        let review = render(
            "slack/review_card.j2",
            json!({ "item": samples::sample_campaign_item() }),
        );
        assert_eq!(ids(&review), ["gatehouse.keep", "gatehouse.revoke"]);
        let home = render(
            "slack/app_home.j2",
            json!({ "home": samples::sample_home() }),
        );
        for id in [
            "gatehouse.extend",
            "gatehouse.end_now",
            "gatehouse.cancel",
            "gatehouse.approve",
        ] {
            assert!(ids(&home).contains(&id), "home lacks {id}");
        }
        let notices = samples::sample_notices();
        let by_kind = |kind: &str| {
            notices
                .iter()
                .find(|n| n.kind == kind)
                .map(|n| json!({ "notice": n }))
        };
        let warning = render(
            "slack/notice.j2",
            by_kind("expiry_warning").unwrap_or_default(),
        );
        assert_eq!(ids(&warning), ["gatehouse.extend", "gatehouse.end_now"]);
        let emergency = render(
            "slack/notice.j2",
            by_kind("emergency_review").unwrap_or_default(),
        );
        assert_eq!(ids(&emergency), ["gatehouse.confirm", "gatehouse.flag"]);
        for (name, context) in sample_contexts() {
            buttons(&render(name, context));
        }
    }

    #[test]
    fn a_huge_request_still_fits_block_kit() {
        let mut request = samples::sample_request();
        request.justification = "lag ".repeat(2500);
        request.fields = (0..80)
            .map(|i| FieldView {
                label: format!("Field {i}"),
                value: "v".repeat(2500),
            })
            .collect();
        let card = render(
            "slack/approval_card.j2",
            json!({ "request": request.clone() }),
        );
        let blocks = card["blocks"].as_array().cloned().unwrap_or_default();
        assert!(blocks.len() <= 50);
        assert_eq!(
            blocks.last().map(|b| b["type"].clone()),
            Some(json!("actions"))
        );
        let mut sections = Vec::new();
        all_of(&card, "section", &mut sections);
        for s in sections {
            assert!(chars(&s["text"]["text"]) <= 3000);
            let fields = s["fields"].as_array().cloned().unwrap_or_default();
            assert!(fields.len() <= 10);
            assert!(fields.iter().all(|f| chars(&f["text"]) <= 2000));
        }
        let home = HomeView {
            approvals: vec![request; 80],
            ..samples::sample_home()
        };
        let home = render("slack/app_home.j2", json!({ "home": home }));
        let blocks = home["blocks"].as_array().cloned().unwrap_or_default();
        assert_eq!(blocks.len(), 100, "a view holds up to 100 blocks");
        let last = blocks.last().map(|b| b["elements"][0]["text"].clone());
        assert!(last.is_some_and(|t| t.as_str().is_some_and(|t| t.starts_with("…and "))));
    }

    #[test]
    fn text_people_type_cannot_break_the_json_or_ping_anyone() {
        let nasty = "say \"hi\"\\\n<!channel> *now* & <https://evil.example|click>";
        let mut request = samples::sample_request();
        request.justification = nasty.to_owned();
        request.requester.name = "Mallory \"<@U0BOSS>\"".to_owned();
        request.fields[0].value = nasty.to_owned();
        let mut reply = EphemeralView {
            text: nasty.to_owned(),
            ..samples::sample_ephemeral()
        };
        reply.lines.push(nasty.to_owned());
        let rendered = [
            render(
                "slack/approval_card.j2",
                json!({ "request": request.clone() }),
            ),
            render(
                "slack/approval_card_decided.j2",
                json!({ "request": request.clone() }),
            ),
            render(
                "slack/reject_modal.j2",
                json!({ "modal": { "request": request, "private_metadata": nasty } }),
            ),
            render("slack/ephemeral.j2", json!({ "reply": reply })),
        ];
        let escaped =
            "say \"hi\"\\\n&lt;!channel&gt; *now* &amp; &lt;https://evil.example|click&gt;";
        assert!(mrkdwn_texts(&rendered[0]).contains(&format!("*Why*\n{escaped}")));
        assert_eq!(
            rendered[2]["private_metadata"], nasty,
            "state survives verbatim"
        );
        for message in &rendered {
            for text in mrkdwn_texts(message) {
                assert!(
                    !text.contains("<!channel>") && !text.contains("<@U0BOSS>"),
                    "{text}"
                );
                assert!(!text.contains("<https"), "{text}");
            }
        }
    }

    #[test]
    fn mrkdwn_escapes_the_characters_slack_gives_meaning_to() {
        assert_eq!(
            mrkdwn("R&D <@U1> <!here> <https://x|y> >quote *bold*"),
            "R&amp;D &lt;@U1&gt; &lt;!here&gt; &lt;https://x|y&gt; &gt;quote *bold*"
        );
        let env = environment();
        let out = env.render_str(
            "{{ x|mrkdwn }}|{{ x }}|{{ x|tojson }}",
            minijinja::context! { x => "<\"&\n>" },
        );
        assert_eq!(
            out.ok().as_deref(),
            Some(r#"&lt;\"&amp;\n&gt;|<\"&\n>|"\u003c\"\u0026\n\u003e""#)
        );
    }

    fn override_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (name, text) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap_or(dir.path())).expect("mkdir");
            fs::write(path, text).expect("write");
        }
        dir
    }

    #[test]
    fn an_override_replaces_the_built_in_of_the_same_name() {
        let help = r#"{"text": "{{ help.command }} is ours", "blocks": [{"type": "divider"}]}"#;
        let dir = override_dir(&[("slack/help.j2", help)]);
        let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.overridden(), ["slack/help.j2"]);
        let message = t.render("slack/help.j2", json!({ "help": samples::sample_help() }));
        assert_eq!(
            message.ok().map(|m| m["text"].clone()),
            Some(json!("/access is ours"))
        );
        assert!(t.check().is_empty(), "{:?}", t.check());
    }

    #[test]
    fn a_broken_override_is_reported_with_its_name_and_line() {
        let broken = "{\n  \"text\": \"{{ request.id \",\n  \"blocks\": []\n}";
        let dir = override_dir(&[("slack/approval_card.j2", broken)]);
        let err = Templates::load(Some(dir.path()))
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.contains("slack/approval_card.j2:2: syntax error"),
            "{err}"
        );
    }

    #[test]
    fn an_override_that_renders_bad_json_is_caught_by_check_and_the_built_in_is_used() {
        let bad_json = "{\n  \"text\": \"{{ help.command }}\",\n  \"blocks\": [}\n";
        let undefined = "{\"text\": \"{{ modal.nope }}\", \"blocks\": []}";
        let dir = override_dir(&[
            ("slack/help.j2", bad_json),
            ("slack/ephemeral.j2", undefined),
        ]);
        let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        let problems = t.check();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("template `slack/help.j2` rendered invalid JSON at line 3")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("template `slack/ephemeral.j2`, line 1: undefined value")),
            "{problems:?}"
        );
        let message = t.render("slack/help.j2", json!({ "help": samples::sample_help() }));
        assert_eq!(
            message.ok().map(|m| m["text"].clone()),
            Some(json!("How to use /access"))
        );
    }

    #[test]
    fn an_override_that_replaces_nothing_is_reported() {
        let dir = override_dir(&[("slack/aproval_card.j2", "{}")]);
        let t = Templates::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.unknown_overrides(), ["slack/aproval_card.j2"]);
        assert!(t.check()[0].contains("`slack/aproval_card.j2` replaces no template"));
        assert_eq!(
            t.render("slack/nope.j2", json!({})),
            Err(RenderError::Unknown("slack/nope.j2".to_owned()))
        );
    }

    #[test]
    fn blocks_beyond_the_limit_become_and_n_more_and_the_buttons_stay() {
        let section = json!({ "type": "section", "text": { "type": "mrkdwn", "text": "x" } });
        let mut blocks = vec![section; 80];
        blocks.push(json!({ "type": "actions", "elements": [] }));
        let mut message = json!({ "text": "t", "blocks": blocks });
        assert_eq!(enforce_limits(&mut message), Ok(()));
        let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
        assert_eq!(blocks.len(), 50);
        assert_eq!(blocks[48]["elements"][0]["text"], "…and 32 more");
        assert_eq!(blocks[49]["type"], "actions");
    }

    #[test]
    fn every_length_limit_is_met_by_cutting_on_a_character_boundary() {
        let text = |s: String| json!({ "type": "plain_text", "text": s });
        let md = |s: String| json!({ "type": "mrkdwn", "text": s });
        let button = json!({ "type": "button", "action_id": "a", "text": text("é".repeat(100)), "value": "v".repeat(2100),
            "confirm": { "title": text("t".repeat(120)), "text": text("t".repeat(400)), "confirm": text("c".repeat(40)), "deny": text("d".repeat(40)) } });
        let option = json!({ "text": text("o".repeat(80)), "value": "v".repeat(200) });
        let mut view = json!({
            "type": "modal", "title": text("t".repeat(40)), "submit": text("s".repeat(30)), "close": text(String::new()),
            "private_metadata": "m".repeat(3000),
            "blocks": [
                { "type": "header", "text": text("é".repeat(200)) },
                { "type": "section", "text": md(format!("{}&amp;", "a".repeat(2996))), "fields": vec![md("f".repeat(2100)); 12] },
                { "type": "section", "text": md(format!("{}<!date^1^{{time}}|x>", "a".repeat(2990))), "accessory": button.clone() },
                { "type": "actions", "elements": vec![button; 30] },
                { "type": "context", "elements": vec![md("c".into()); 12] },
                { "type": "input", "label": text("l".repeat(2100)), "element": {
                    "type": "static_select", "placeholder": text("p".repeat(200)), "options": vec![option; 150] } },
                { "type": "input", "label": text("l".into()), "element": {
                    "type": "plain_text_input", "max_length": 5000, "initial_value": "i".repeat(4000) } }
            ]
        });
        assert_eq!(enforce_limits(&mut view), Ok(()));
        let b = &view["blocks"];
        assert_eq!(chars(&view["title"]["text"]), 24);
        assert!(
            view["title"]["text"]
                .as_str()
                .is_some_and(|t| t.ends_with('…'))
        );
        assert_eq!(chars(&view["submit"]["text"]), 24);
        assert_eq!(view["close"]["text"], "—", "Slack refuses empty text");
        assert_eq!(chars(&b[0]["text"]["text"]), 150);
        assert!(
            b[0]["text"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("éé"))
        );
        assert!(
            b[1]["text"]["text"]
                .as_str()
                .is_some_and(|t| t.ends_with("a…")),
            "no half escape"
        );
        assert_eq!(b[1]["fields"].as_array().map(Vec::len), Some(10));
        assert_eq!(b[1]["fields"][9]["text"], "…and 3 more");
        assert_eq!(chars(&b[1]["fields"][0]["text"]), 2000);
        assert!(
            b[2]["text"]["text"]
                .as_str()
                .is_some_and(|t| t.ends_with("a…")),
            "no half token"
        );
        let accessory = &b[2]["accessory"];
        assert_eq!(
            (
                chars(&accessory["text"]["text"]),
                chars(&accessory["value"])
            ),
            (75, 2000)
        );
        let confirm = &accessory["confirm"];
        let lengths: Vec<usize> = ["title", "text", "confirm", "deny"]
            .iter()
            .map(|k| chars(&confirm[k]["text"]))
            .collect();
        assert_eq!(lengths, [100, 300, 30, 30]);
        assert_eq!(b[3]["elements"].as_array().map(Vec::len), Some(25));
        assert_eq!(b[4]["elements"].as_array().map(Vec::len), Some(10));
        assert_eq!(chars(&b[5]["label"]["text"]), 2000);
        let select = &b[5]["element"];
        assert_eq!(chars(&select["placeholder"]["text"]), 150);
        assert_eq!(select["options"].as_array().map(Vec::len), Some(100));
        assert_eq!(
            (
                chars(&select["options"][0]["text"]["text"]),
                chars(&select["options"][0]["value"])
            ),
            (75, 150)
        );
        assert_eq!(b[6]["element"]["max_length"], 3000);
        assert_eq!(chars(&b[6]["element"]["initial_value"]), 3000);
    }

    #[test]
    fn state_too_long_for_private_metadata_is_refused_rather_than_cut() {
        let mut view =
            json!({ "type": "modal", "private_metadata": "m".repeat(3001), "blocks": [] });
        assert_eq!(enforce_limits(&mut view), Err(3001));
    }
}
