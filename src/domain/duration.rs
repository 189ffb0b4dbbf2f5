//! Durations the way people write them: `90s`, `15m`, `2h`, `1h30m`, `7d`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A whole number of seconds, read from and shown as `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Duration {
    pub const ZERO: Duration = Duration(0);

    /// The longest duration read from text: a century. Anything a person or a file can give
    /// fits in date arithmetic (`now + duration`) with room to spare.
    pub const MAX: Duration = Duration::from_days(36_500);

    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    pub const fn from_mins(mins: u64) -> Self {
        Self(mins * 60)
    }

    pub const fn from_hours(hours: u64) -> Self {
        Self(hours * 3600)
    }

    pub const fn from_days(days: u64) -> Self {
        Self(days * 86_400)
    }

    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// As a `TimeDelta`; one too long for chrono (never one that was parsed) saturates.
    pub fn to_chrono(self) -> chrono::TimeDelta {
        i64::try_from(self.0)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .unwrap_or(chrono::TimeDelta::MAX)
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration; write it like 90s, 15m, 2h, 1h30m or 7d")]
    Unreadable(String),
    #[error("`{0}` is longer than Gatehouse counts; write at most 36500d (100 years)")]
    TooLong(String),
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DurationError::Unreadable(s.to_owned());
        let too_long = || DurationError::TooLong(s.to_owned());
        let text = s.trim();
        if text.is_empty() {
            return Err(bad());
        }
        let mut total: u64 = 0;
        let mut number: Option<u64> = None;
        for c in text.chars() {
            if let Some(digit) = c.to_digit(10) {
                let n = number.unwrap_or(0);
                number = Some(
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(digit)))
                        .ok_or_else(too_long)?,
                );
                continue;
            }
            let unit = match c.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                _ => return Err(bad()),
            };
            let n = number.take().ok_or_else(bad)?;
            total = n
                .checked_mul(unit)
                .and_then(|secs| total.checked_add(secs))
                .ok_or_else(too_long)?;
        }
        if number.is_some() {
            // A bare trailing number ("90") is ambiguous: say the unit.
            return Err(bad());
        }
        if total > Self::MAX.0 {
            return Err(too_long());
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if rest >= secs {
                write!(f, "{}{unit}", rest / secs)?;
                rest %= secs;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!("90s".parse(), Ok(Duration::from_secs(90)));
        assert_eq!("15m".parse(), Ok(Duration::from_mins(15)));
        assert_eq!("2h".parse(), Ok(Duration::from_hours(2)));
        assert_eq!("1h30m".parse(), Ok(Duration::from_mins(90)));
        assert_eq!("7d".parse(), Ok(Duration::from_days(7)));
        assert_eq!("2H".parse(), Ok(Duration::from_hours(2)));
    }

    #[test]
    fn a_duration_without_unit_is_refused_with_examples() {
        let err = "90".parse::<Duration>().unwrap_err();
        assert!(err.to_string().contains("1h30m"), "{err}");
        assert!("".parse::<Duration>().is_err());
        assert!("h".parse::<Duration>().is_err());
        assert!("2 hours".parse::<Duration>().is_err());
        assert!("99999999999999999999s".parse::<Duration>().is_err());
    }

    /// Found by the `duration` fuzz target: `34913304w` (244393128d) parsed, and adding it
    /// to a date overflows, which chrono's `+` answers with a panic; from 10675199167d on,
    /// `to_chrono` itself panicked. A policy's `remind_every` or `pending_ttl`, or the
    /// config's `expiry_warning`, that long would have crashed the scheduler or the start.
    #[test]
    fn a_duration_longer_than_a_century_is_refused_and_every_other_fits_a_date() {
        let err = "34913304w".parse::<Duration>().unwrap_err();
        assert!(
            err.to_string().contains("at most 36500d (100 years)"),
            "{err}"
        );
        assert!("99999999999999999999s".parse::<Duration>().is_err());
        assert!("1000000000000000s".parse::<Duration>().is_err());
        assert_eq!("36500d".parse(), Ok(Duration::MAX));
        assert!("36500d1s".parse::<Duration>().is_err());
        let late = chrono::DateTime::<chrono::Utc>::MAX_UTC - chrono::TimeDelta::days(200 * 365);
        assert!(late.checked_add_signed(Duration::MAX.to_chrono()).is_some());
        assert_eq!(
            Duration::from_secs(u64::MAX).to_chrono(),
            chrono::TimeDelta::MAX
        );
        let unit_too_long = Duration::from_secs(10_u64.pow(16)).to_chrono();
        assert_eq!(unit_too_long, chrono::TimeDelta::MAX);
    }

    #[test]
    fn durations_show_in_their_shortest_form() {
        assert_eq!(Duration::from_mins(90).to_string(), "1h30m");
        assert_eq!(Duration::from_secs(86_400 + 1).to_string(), "1d1s");
    }

    proptest! {
        #[test]
        fn display_parses_back(secs in 0..=Duration::MAX.as_secs()) {
            let d = Duration::from_secs(secs);
            prop_assert_eq!(d.to_string().parse::<Duration>(), Ok(d));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,16}") {
            let _ = s.parse::<Duration>();
        }
    }
}
