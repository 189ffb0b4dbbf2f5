//! A secret read from config: usable where it is needed, invisible everywhere else.
//!
//! `Debug` and `Display` print `[redacted]`, so a config can be logged or shown in an error
//! without leaking tokens. There is deliberately no `Serialize` and no `PartialEq`: a secret
//! is compared only with [`Secret::eq_str`], which does not short-circuit on the first
//! differing byte.

use std::fmt;

use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq;

const REDACTED: &str = "[redacted]";

/// A token, signing secret or password.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends or checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of characters, for "too short" checks that must not show the value.
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }

    /// Compares with a presented value in time independent of where they differ.
    /// (Only the length may be learnt by timing, which a bearer token does not protect.)
    pub fn eq_str(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.to_string(), "[redacted]");
        assert_eq!(format!("{:?}", Some(secret)), "Some([redacted])");
    }

    #[test]
    fn expose_gives_the_value_for_the_one_place_that_needs_it() {
        assert_eq!(Secret::new("hunter2").expose(), "hunter2");
    }

    #[test]
    fn comparison_accepts_only_the_exact_value() {
        let secret = Secret::new("correct horse");
        assert!(secret.eq_str("correct horse"));
        assert!(!secret.eq_str("correct hors"));
        assert!(!secret.eq_str("correct horsf"));
        assert!(!secret.eq_str(""));
        assert!(Secret::new("").eq_str(""));
    }

    #[test]
    fn a_secret_deserializes_from_a_string() {
        #[derive(Deserialize)]
        struct Holder {
            token: Secret,
        }
        let holder: Holder = toml::from_str(r#"token = "abc""#).unwrap();
        assert_eq!(holder.token.expose(), "abc");
    }
}
