//! Where a config value came from, so that every problem names a line of gatehouse.toml or
//! the environment variable that set the value.
//!
//! Values set by `GATEHOUSE_<SECTION>__<KEY>` have no place in the file, so they are given
//! spans past its end, one per variable; any span there is turned back into the variable's
//! name instead of a line.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::domain::diagnostic::{Diagnostic, Source, did_you_mean};

pub(super) struct Origin<'a> {
    source: Source<'a>,
    overrides: Vec<String>,
}

impl<'a> Origin<'a> {
    pub(super) fn new(source: Source<'a>) -> Self {
        Self {
            source,
            overrides: Vec::new(),
        }
    }

    /// A span standing for environment variable `var`.
    pub(super) fn span_for_override(&mut self, var: &str) -> Range<usize> {
        let start = self.source.text.len() + 1 + self.overrides.len();
        self.overrides.push(var.to_owned());
        start..start
    }

    pub(super) fn is_override(&self, span: &Range<usize>) -> bool {
        span.start > self.source.text.len()
    }

    pub(super) fn error(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.locate(Diagnostic::error(&self.source, None, message), span)
    }

    pub(super) fn warning(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.locate(Diagnostic::warning(&self.source, None, message), span)
    }

    /// A shape error from deserializing (unknown key, wrong type), with a suggestion when
    /// the unknown name is close to a known one.
    pub(super) fn toml_error(&self, err: &toml::de::Error) -> Diagnostic {
        let message = err.message().trim();
        let help = suggestion(message).unwrap_or_else(|| {
            "fix the value at this line; every key and table is described in docs/configuration.md".to_owned()
        });
        self.error(err.span(), message).with_help(help)
    }

    fn locate(&self, mut diagnostic: Diagnostic, span: Option<Range<usize>>) -> Diagnostic {
        match span {
            Some(span) if self.is_override(&span) => {
                let index = span.start - self.source.text.len() - 1;
                if let Some(var) = self.overrides.get(index) {
                    diagnostic.file = format!("environment variable {var}");
                }
            }
            Some(span) => diagnostic.line = Some(self.source.line_of(span.start)),
            None => {}
        }
        diagnostic
    }

    pub(super) fn line_of(&self, span: &Range<usize>) -> Option<usize> {
        (!self.is_override(span)).then(|| self.source.line_of(span.start))
    }
}

/// "did you mean" for serde's "unknown field `x`, expected one of `a`, `b`" and
/// "unknown variant `x`, expected `a` or `b`".
fn suggestion(message: &str) -> Option<String> {
    if !message.starts_with("unknown ") {
        return None;
    }
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let (given, known) = quoted.split_first()?;
    did_you_mean(given, known.iter().copied())
}

/// Finds the span of a value by its dotted path (`slack.bot_token`, `connectors.2.id`).
pub(super) struct Spans<'a, 'i> {
    root: &'a DeTable<'i>,
}

impl<'a, 'i> Spans<'a, 'i> {
    pub(super) fn new(root: &'a DeTable<'i>) -> Self {
        Self { root }
    }

    /// The value's span, or the nearest enclosing table's when the value is absent (a
    /// missing key is reported at its table). `None` when not even the section exists.
    pub(super) fn of(&self, path: &str) -> Option<Range<usize>> {
        let mut parts = path.split('.');
        let first = parts.next()?;
        let mut current = self.root.get(first)?;
        let mut found = current.span();
        for part in parts {
            let next = match (current.get_ref(), part.parse::<usize>()) {
                (DeValue::Array(items), Ok(index)) => items.get(index),
                (DeValue::Table(table), _) => table.get(part),
                _ => None,
            };
            match next {
                Some(value) => {
                    current = value;
                    found = value.span();
                }
                None => break,
            }
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_in_a_field_gets_a_suggestion() {
        let message = "unknown field `listn`, expected one of `listen`, `data_dir`, `public_url`";
        assert_eq!(
            suggestion(message).as_deref(),
            Some("did you mean `listen`?")
        );
        let message = "unknown variant `sockt`, expected `http` or `socket`";
        assert_eq!(
            suggestion(message).as_deref(),
            Some("did you mean `socket`?")
        );
        assert_eq!(suggestion("invalid type: integer `1`"), None);
    }

    #[test]
    fn values_from_the_environment_are_reported_by_variable_name() {
        let text = "[server]\nlisten = 1\n";
        let mut origin = Origin::new(Source::new("gatehouse.toml", text));
        let span = origin.span_for_override("GATEHOUSE_SERVER__LISTEN");
        let d = origin.error(Some(span), "bad address");
        assert_eq!(d.file, "environment variable GATEHOUSE_SERVER__LISTEN");
        assert_eq!(d.line, None);
        let d = origin.error(Some(9..10), "bad address");
        assert_eq!(d.line, Some(2));
    }

    #[test]
    fn spans_are_found_by_dotted_path_with_array_indexes() {
        let text = "[server]\nlisten = \"x\"\n\n[[connectors]]\nid = \"a\"\n\n[[connectors]]\nid = \"b\"\n";
        let root = DeTable::parse(text).unwrap();
        let spans = Spans::new(root.get_ref());
        let line = |path: &str| {
            spans
                .of(path)
                .map(|s| text[..s.start].matches('\n').count() + 1)
        };
        assert_eq!(line("server.listen"), Some(2));
        assert_eq!(line("connectors.1.id"), Some(8));
        // A missing key is reported at its table's header.
        assert_eq!(line("connectors.1.url"), Some(7));
        assert_eq!(line("slack.bot_token"), None);
    }
}
