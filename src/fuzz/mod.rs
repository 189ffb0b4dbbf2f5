//! Fuzz targets: each takes arbitrary bytes, feeds them to one of the parsers that read what
//! people, Slack, Discord or an operator wrote, and asserts what must hold whatever came in
//! (it panics when something does not). The same functions are driven two ways: by
//! libFuzzer, through the `fuzz/` crate (`cargo fuzz run <target>`, see docs/contributing.md), and by
//! the property tests in `tests.rs`, over random bytes and over every file of
//! `fuzz/corpus/<target>/`, on every `cargo test`.
//!
//! The targets live here, not in `fuzz/`, so that they can reach what a parser keeps
//! private to its module, and so that `cargo test` and clippy keep them compiling.

mod command;
mod config;
mod discord;
mod domain;
mod policy;
mod render;
#[cfg(test)]
mod tests;
mod verify;

use std::ops::Range;

use crate::domain::diagnostic::{Diagnostic, Source};

/// A target: it returns when the input kept every promise, and panics when one was broken.
pub type Target = fn(&[u8]);

/// Every target, by the name `cargo fuzz run` and `fuzz/corpus/` know it by.
pub const TARGETS: &[(&str, Target)] = &[
    ("access_command", command::access_command),
    ("slack_http", crate::slack::http::fuzz::slack_http),
    ("slack_socket", crate::slack::socket::fuzz_envelope),
    ("discord_interaction", discord::discord_interaction),
    ("signatures", verify::signatures),
    ("config", config::config),
    ("policy", policy::policy),
    ("directory", policy::directory),
    ("duration", domain::duration),
    ("fill_fields", domain::fill_fields),
    ("escape", render::escape),
    ("render", render::render),
];

/// Runs the target called `name` on `data`; `false` when there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match TARGETS.iter().find(|(target, _)| *target == name) {
        Some((_, target)) => {
            target(data);
            true
        }
        None => false,
    }
}

/// The input as text, the way a web framework or TOML reader would see it: invalid UTF-8 is
/// replaced rather than refused, so every input reaches the parser.
fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Splits an input at its first NUL into two parts (the second empty when there is none),
/// for targets that need two things: a body and its headers, a file and its environment.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// What is shown to a person or an operator must read as a sentence: not empty, not a
/// debug dump, no stray control characters that would break a chat message or a log line.
pub(crate) fn assert_sentence(text: &str, what: &str) {
    assert!(!text.trim().is_empty(), "{what}: an empty message");
    let start = text.trim_start();
    let debug_dump = ["Error {", "Error(", "Custom {", "Some(", "{"];
    assert!(
        !debug_dump.iter().any(|dump| start.starts_with(dump)),
        "{what}: a debug dump instead of a sentence: {text}"
    );
}

/// A diagnostic about `source` names it and a line inside it, and says something.
fn assert_inside(diagnostic: &Diagnostic, source: &Source<'_>) {
    let lines = source.text.matches('\n').count() + 1;
    if let Some(line) = diagnostic.line {
        assert!(
            (1..=lines).contains(&line),
            "line {line} of a {lines}-line file: {diagnostic}"
        );
    }
    assert_sentence(&diagnostic.message, "a diagnostic");
    if let Some(help) = &diagnostic.help {
        assert_sentence(help, "a diagnostic's help");
    }
}

/// `range` as a part of `0..len`, for inputs that pick something by number.
fn pick(byte: Option<&u8>, range: Range<usize>) -> usize {
    let n = usize::from(byte.copied().unwrap_or(0));
    range.start + n % range.len().max(1)
}

/// The output of a future that needs nothing to wait for (a body already in memory, read
/// by axum's extractors); a target has no runtime, and such a future must not need one.
pub(crate) fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..64 {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("a future over an in-memory body kept waiting")
}
