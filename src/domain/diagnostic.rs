//! Problems found in a config, policy or directory file, each with where and what to do.

use std::fmt;
use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem: `policy.toml:42: error: … (help: …)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(
        source: &Source<'_>,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            file: source.name.to_owned(),
            line: span.map(|s| source.line_of(s.start)),
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(
        source: &Source<'_>,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(source, span, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.line {
            Some(line) => write!(f, "{}:{line}: {level}: {}", self.file, self.message)?,
            None => write!(f, "{}: {level}: {}", self.file, self.message)?,
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// The text of a file being checked, so that byte spans become line numbers.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(name: &'a str, text: &'a str) -> Self {
        Self { name, text }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// A TOML syntax or shape error, as a diagnostic at its line.
    pub fn toml_error(&self, err: &toml::de::Error) -> Diagnostic {
        Diagnostic::error(self, err.span(), err.message().trim().to_owned()).with_help(
            "fix the TOML at this line; every key and table is described in docs/configuration.md",
        )
    }
}

/// Several problems, shown one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Names from `candidates` close to `given`, closest first: the "did you mean" of errors.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let given = given.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let lower = c.to_lowercase();
            let distance = edit_distance(&given, &lower);
            let close = distance <= (given.chars().count().max(3) / 3).max(2)
                || lower.contains(&given)
                || (given.len() >= 3 && given.contains(&lower));
            close.then_some((distance, c))
        })
        .collect();
    scored.sort();
    scored.into_iter().map(|(_, c)| c).take(3).collect()
}

/// "did you mean `a` or `b`?", or nothing when no name is close.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let close = closest(given, candidates);
    if close.is_empty() {
        return None;
    }
    let names: Vec<String> = close.iter().map(|c| format!("`{c}`")).collect();
    Some(format!("did you mean {}?", names.join(" or ")))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_intended_name() {
        let names = ["prod-db", "staging-db", "github", "grafana"];
        assert_eq!(closest("prod-bd", names), vec!["prod-db"]);
        assert_eq!(closest("prod", names), vec!["prod-db"]);
        assert_eq!(closest("grafna", names), vec!["grafana"]);
        assert!(closest("kubernetes", names).is_empty());
    }

    #[test]
    fn spans_become_one_based_lines() {
        let source = Source::new("policy.toml", "a = 1\nb = 2\nc = 3\n");
        assert_eq!(source.line_of(0), 1);
        assert_eq!(source.line_of(6), 2);
        assert_eq!(source.line_of(14), 3);
    }

    #[test]
    fn a_diagnostic_reads_file_line_level_message_and_help() {
        let source = Source::new("policy.toml", "x\ny\n");
        let d = Diagnostic::error(&source, Some(2..3), "unknown group `secuirty`")
            .with_help("did you mean `security`?");
        assert_eq!(
            d.to_string(),
            "policy.toml:2: error: unknown group `secuirty`\n  help: did you mean `security`?"
        );
    }
}
