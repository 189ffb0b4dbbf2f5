//! Escaping in templates: every `{{ … }}` is written as the inside of a JSON string, so that
//! text from people cannot break the JSON, and the `mrkdwn` filter also escapes the
//! characters Slack's mrkdwn gives meaning to, so that it cannot ping or link either.

use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};

/// The environment every template renders in: `{{ … }}` output is escaped for the inside
/// of a JSON string unless marked safe (as `tojson` output is), undefined names are errors,
/// and `mrkdwn` escapes Slack's control characters in people's text.
pub(super) fn environment() -> Environment<'static> {
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
