//! Escaping in templates: every `{{ … }}` is written as the inside of a JSON string, so that
//! text from people cannot break the JSON, and the `mrkdwn` filter (Slack) and the `discord`
//! and `discord_code` filters also escape what each platform's markup gives meaning to, so
//! that it cannot format, ping or link either. `discord_sentence` is for Gatehouse's own
//! sentences, whose `` `code` `` spans stay code on Discord as they do on Slack.

use super::TEMPLATE_FUEL;
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};

/// The environment every template renders in: `{{ … }}` output is escaped for the inside
/// of a JSON string unless marked safe (as `tojson` output is), undefined names are errors,
/// `mrkdwn` escapes Slack's control characters in people's text, and `discord` and
/// `discord_code` Discord's markdown and mentions; and each render has [`TEMPLATE_FUEL`].
pub(super) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    // A custom mode, not None: macro output and {% set %} captures are then already
    // escaped, and are not escaped twice when printed.
    env.set_auto_escape_callback(|_| AutoEscape::Custom("json-string".into()));
    env.set_formatter(json_string_formatter);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.add_filter("mrkdwn", mrkdwn_filter);
    env.add_filter("discord", |v: &Value| text_filter(v, "discord", discord));
    env.add_filter("discord_code", |v: &Value| {
        text_filter(v, "discord_code", discord_code)
    });
    env.add_filter("discord_sentence", |v: &Value| {
        text_filter(v, "discord_sentence", discord_sentence)
    });
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
    text_filter(value, "mrkdwn", mrkdwn)
}

/// A filter applying `escape` to a value's text; none is empty and undefined an error.
fn text_filter(value: &Value, name: &str, escape: fn(&str) -> String) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("{name} of an undefined value"),
        ));
    }
    Ok(if value.is_none() {
        String::new()
    } else {
        escape(&value.to_string())
    })
}

/// Discord's mentions made inert: a zero-width space after `<` (so no `<@id>`, `<@&id>`,
/// `<#id>`, `</command:id>` or `<t:…>` forms) and after the `@` of `@everyone` and `@here`.
fn push_inert(escaped: &mut String, text: &str, i: usize, c: char) {
    escaped.push(c);
    let rest = &text[i + c.len_utf8()..];
    let mass_mention = |word: &str| {
        rest.get(..word.len())
            .is_some_and(|r| r.eq_ignore_ascii_case(word))
    };
    if c == '<' || (c == '@' && (mass_mention("everyone") || mass_mention("here"))) {
        escaped.push('\u{200b}');
    }
}

/// Escapes what Discord's markdown gives meaning to in text people typed, for places where
/// Discord renders markdown (content, embed descriptions, titles and fields), so that it
/// cannot format, ping or link: a backslash before any of `` \ * _ ~ ` | [ ] `` anywhere,
/// before `> # - +` and a list number's `.` at the start of a line, and before the `:` of
/// `://` (so a URL is not linked); mentions are made inert as by [`discord_code`].
/// Parentheses are left alone: with the brackets escaped they cannot make a masked link.
/// Plain-text places (button labels, footers, modal labels) need no escaping and show a
/// backslash as it is, so templates leave this filter out there.
pub fn discord(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + text.len() / 8);
    let mut line_start = true;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' => escaped.push('\\'),
            '>' | '#' | '-' | '+' if line_start => escaped.push('\\'),
            '0'..='9' if line_start => {
                // `1. item` is a numbered list; `1\. item` is text.
                let mut end = i;
                while let Some(&(j, _)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    end = j;
                    chars.next();
                }
                escaped.push_str(&text[i..=end]);
                if chars.peek().is_some_and(|&(_, d)| d == '.') {
                    escaped.push('\\');
                }
                line_start = false;
                continue;
            }
            ':' if text[i..].starts_with("://") => escaped.push('\\'),
            _ => {}
        }
        push_inert(&mut escaped, text, i, c);
        line_start = c == '\n' || (line_start && (c == ' ' || c == '\t'));
    }
    escaped
}

/// Makes text people typed safe inside a Discord code span (`` `…` ``), where backslashes
/// are shown as they are: a backtick becomes `ˋ` (U+02CB) so it cannot close the span, and
/// mentions are made inert.
pub fn discord_code(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if c == '`' {
            escaped.push('\u{2cb}');
        } else {
            push_inert(&mut escaped, text, i, c);
        }
    }
    escaped
}

/// A sentence Gatehouse wrote (a reply, a refusal), where `` `…` `` marks code — an id, a
/// command, a value as it was typed — as Slack shows it: each code span stays code (with
/// mentions made inert, as by [`discord_code`]) and the text around is escaped as by
/// [`discord`], so a typed value can neither format nor ping. With an odd number of
/// backticks it cannot be told which are meant, and the whole sentence is escaped.
pub fn discord_sentence(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return discord(text);
    }
    let mut escaped = String::with_capacity(text.len() + text.len() / 8);
    for (i, part) in parts.iter().enumerate() {
        if i.is_multiple_of(2) {
            escaped.push_str(&discord(part));
        } else if part.is_empty() {
            escaped.push_str("\\`\\`");
        } else {
            escaped.push('`');
            escaped.push_str(&discord_code(part));
            escaped.push('`');
        }
    }
    escaped
}
