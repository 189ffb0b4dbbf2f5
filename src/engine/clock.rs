//! Time, injected: the only place Gatehouse reads the wall clock.

#[cfg(any(test, feature = "testing"))]
use std::sync::Mutex;

#[cfg(any(test, feature = "testing"))]
use chrono::TimeDelta;
use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the wall clock is read (clippy.toml refuses it everywhere else).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests move by hand, so hours of schedule run in milliseconds. Only in tests (and
/// with the `testing` feature): the product has one clock, the wall clock.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug)]
pub struct FakeClock(Mutex<DateTime<Utc>>);

#[cfg(any(test, feature = "testing"))]
impl FakeClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

#[cfg(any(test, feature = "testing"))]
impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
