//! `${VAR}`, `${VAR:-default}` and `$$` in string values of gatehouse.toml.
//!
//! Expansion runs on the parsed document, value by value, never on the raw text: a quote or
//! newline inside a variable cannot change the TOML structure. Rules:
//!
//! - `${VAR}` is the variable's value; unset is an error naming the variable and the key.
//! - `${VAR:-default}` is `default` when VAR is unset or empty (the default ends at the first `}`).
//! - `$$` is one literal `$`; a `$` followed by anything else is kept as written.
//! - Inside a `[slack]` or `[discord]` table that is not enabled, a value using an unset
//!   variable is dropped, so that a disabled platform may reference secrets that are not
//!   provided; the key then takes its default (`None` for tokens).
//! - Values set by `GATEHOUSE_<SECTION>__<KEY>` overrides are used as given, not expanded.

use std::borrow::Cow;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::env::Env;
use super::locate::Origin;
use crate::domain::diagnostic::Diagnostic;

/// Why a string could not be expanded.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Problem {
    Unset(String),
    Malformed(String),
}

/// Expands one string.
pub(super) fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Problem> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let close = body.find('}').ok_or_else(|| {
                Problem::Malformed(
                    "`${` is not closed; write ${NAME}, ${NAME:-default}, or $$ for a literal `$`"
                        .to_owned(),
                )
            })?;
            let inner = &body[..close];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !is_variable_name(name) {
                return Err(Problem::Malformed(format!(
                    "`${{{inner}}}` is not a variable reference; names are letters, digits and _ \
                     (write $$ for a literal `$`)"
                )));
            }
            match (lookup(name), default) {
                (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(Problem::Unset(name.to_owned())),
            }
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands every string value of the document, reporting problems into `diagnostics`.
pub(super) fn expand_document(
    root: &mut DeTable<'_>,
    env: &Env,
    origin: &Origin<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let walker = Walker {
        env,
        origin,
        lenient: false,
    };
    let mut dropped = Vec::new();
    for (key, value) in root.iter_mut() {
        let walker = Walker {
            lenient: super::is_disabled_platform(key.get_ref(), value.get_ref()),
            ..walker
        };
        if !walker.value(value, key.get_ref(), true, diagnostics) {
            dropped.push(key.get_ref().to_string());
        }
    }
    for key in dropped {
        root.remove(key.as_str());
    }
}

#[derive(Clone, Copy)]
struct Walker<'a> {
    env: &'a Env,
    origin: &'a Origin<'a>,
    /// In a disabled platform's table: unset variables drop the value instead of failing.
    lenient: bool,
}

impl Walker<'_> {
    /// Expands in place; false when the value is to be dropped.
    fn value(
        &self,
        value: &mut Spanned<DeValue<'_>>,
        path: &str,
        may_use_file: bool,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> bool {
        let span = value.span();
        match value.get_mut() {
            DeValue::String(text) => {
                if self.origin.is_override(&span) {
                    return true;
                }
                match expand(text, |name| self.env.get(name).cloned()) {
                    Ok(expanded) => *text = Cow::Owned(expanded),
                    Err(Problem::Unset(_)) if self.lenient => return false,
                    Err(Problem::Unset(name)) => {
                        let fix = if may_use_file {
                            format!("export it or use {path}_file")
                        } else {
                            format!("export it or give a default with ${{{name}:-…}}")
                        };
                        diagnostics.push(self.origin.error(
                            Some(span),
                            format!("{path} uses ${{{name}}}, which is not set; {fix}"),
                        ));
                    }
                    Err(Problem::Malformed(why)) => {
                        diagnostics.push(self.origin.error(Some(span), format!("{path}: {why}")));
                    }
                }
            }
            DeValue::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    let item_path = format!("{path}[{index}]");
                    if !self.value(item, &item_path, false, diagnostics)
                        && let DeValue::String(text) = item.get_mut()
                    {
                        *text = Cow::Borrowed("");
                    }
                }
            }
            DeValue::Table(table) => {
                // Keys of a connector's `env` are the program's variables, not config keys.
                let may_use_file = !path.ends_with(".env");
                let mut dropped = Vec::new();
                for (key, item) in table.iter_mut() {
                    let item_path = format!("{path}.{}", key.get_ref());
                    if !self.value(item, &item_path, may_use_file, diagnostics) {
                        dropped.push(key.get_ref().to_string());
                    }
                }
                for key in dropped {
                    table.remove(key.as_str());
                }
            }
            DeValue::Integer(_)
            | DeValue::Float(_)
            | DeValue::Boolean(_)
            | DeValue::Datetime(_) => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_variable_is_replaced_by_its_value() {
        let env = with(&[("TOKEN", "xoxb-1")]);
        assert_eq!(expand("${TOKEN}", &env), Ok("xoxb-1".to_owned()));
        assert_eq!(
            expand("Bearer ${TOKEN}!", &env),
            Ok("Bearer xoxb-1!".to_owned())
        );
    }

    #[test]
    fn default_after_colon_dash_is_used_when_unset_or_empty() {
        let env = with(&[("EMPTY", "")]);
        assert_eq!(
            expand("${NOPE:-0.0.0.0:80}", &env),
            Ok("0.0.0.0:80".to_owned())
        );
        assert_eq!(expand("${EMPTY:-x}", &env), Ok("x".to_owned()));
        assert_eq!(expand("${NOPE:-}", &env), Ok(String::new()));
    }

    #[test]
    fn unset_variable_without_default_is_a_problem_naming_it() {
        assert_eq!(
            expand("a${MISSING}b", with(&[])),
            Err(Problem::Unset("MISSING".to_owned()))
        );
    }

    #[test]
    fn double_dollar_is_a_literal_dollar_and_lone_dollars_stay() {
        let env = with(&[("X", "1")]);
        assert_eq!(expand("$${X}", &env), Ok("${X}".to_owned()));
        assert_eq!(expand("pa$word$", &env), Ok("pa$word$".to_owned()));
        assert_eq!(expand("$$$$", &env), Ok("$$".to_owned()));
    }

    #[test]
    fn values_are_not_expanded_twice() {
        let env = with(&[("A", "${B}"), ("B", "boom")]);
        assert_eq!(expand("${A}", &env), Ok("${B}".to_owned()));
    }

    #[test]
    fn malformed_references_are_refused() {
        assert!(matches!(
            expand("${OPEN", with(&[])),
            Err(Problem::Malformed(_))
        ));
        assert!(matches!(
            expand("${}", with(&[])),
            Err(Problem::Malformed(_))
        ));
        assert!(matches!(
            expand("${1X}", with(&[])),
            Err(Problem::Malformed(_))
        ));
        assert!(matches!(
            expand("${A B}", with(&[])),
            Err(Problem::Malformed(_))
        ));
    }
}
