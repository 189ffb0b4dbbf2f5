//! What each enabled chat platform can do right now, for `/readyz` and
//! `gatehouse_platform_connected`. Every enabled platform is registered when Gatehouse starts,
//! before it serves anything: one that keeps a connection open (Slack Socket Mode, the Discord
//! gateway) with [`Readiness::expect`], and it then marks itself [`Readiness::connected`] /
//! [`Readiness::disconnected`] as its session comes and goes; one that only receives HTTP
//! (Slack's Events API, Discord interactions) with [`Readiness::over_http`], ready whenever the
//! server is. `/readyz` answers 503 while any platform that keeps a connection is not connected.
//!
//! Beside that, how the registration of a platform's commands stands ([`Registration`]): said
//! in `/readyz`'s body, but not a reason for 503, since commands registered by an earlier run
//! keep working while a new registration is retried.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// How a platform receives what people do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Over HTTP requests to the server: ready whenever the server is.
    Http,
    /// Over a connection it keeps open, which is up.
    Connected,
    /// Over a connection it keeps open, which is down (or not yet up).
    Disconnected,
}

impl Link {
    /// Whether the platform can receive now, as far as Gatehouse can tell.
    pub fn is_ready(self) -> bool {
        self != Link::Disconnected
    }

    /// The word `/readyz` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Http => "http",
            Link::Connected => "connected",
            Link::Disconnected => "disconnected",
        }
    }
}

/// Where registering a platform's commands (Discord's `/access`) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// The first attempt is under way.
    Registering,
    /// An attempt failed in a way that may pass; another follows (the log says why).
    Retrying,
    /// Done: the current definition is in place.
    Registered,
    /// The platform refused it; retrying cannot help until the configuration is fixed (the
    /// log says what to fix).
    Refused,
}

impl Registration {
    /// The word `/readyz` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Registering => "registering",
            Registration::Retrying => "retrying",
            Registration::Registered => "registered",
            Registration::Refused => "refused",
        }
    }
}

#[derive(Debug, Default)]
pub struct Readiness {
    platforms: Mutex<BTreeMap<String, Link>>,
    commands: Mutex<BTreeMap<String, Registration>>,
    /// Whether this replica leads (runs the scheduler and the outbox), and when it last
    /// renewed its lease; `None` until leadership is known.
    leading: Mutex<Option<(bool, Option<std::time::Instant>)>>,
}

impl Readiness {
    /// `platform` keeps a connection: not ready until it says it is connected.
    pub fn expect(&self, platform: &str) {
        self.set(platform, Link::Disconnected);
    }

    /// `platform` receives over HTTP: ready whenever the server is.
    pub fn over_http(&self, platform: &str) {
        self.set(platform, Link::Http);
    }

    pub fn connected(&self, platform: &str) {
        self.set(platform, Link::Connected);
    }

    pub fn disconnected(&self, platform: &str) {
        self.set(platform, Link::Disconnected);
    }

    fn set(&self, platform: &str, link: Link) {
        lock(&self.platforms).insert(platform.to_owned(), link);
    }

    /// Every registered platform and how it receives, by name.
    pub fn platforms(&self) -> BTreeMap<String, Link> {
        lock(&self.platforms).clone()
    }

    /// The platforms that keep a connection, and whether it is up: the
    /// `gatehouse_platform_connected` gauge.
    pub fn connections(&self) -> BTreeMap<String, bool> {
        lock(&self.platforms)
            .iter()
            .filter(|(_, link)| **link != Link::Http)
            .map(|(name, link)| (name.clone(), *link == Link::Connected))
            .collect()
    }

    /// Whether every registered platform can receive.
    pub fn all_connected(&self) -> bool {
        lock(&self.platforms).values().all(|link| link.is_ready())
    }

    /// Where the registration of `platform`'s commands stands now.
    pub fn registration(&self, platform: &str, registration: Registration) {
        lock(&self.commands).insert(platform.to_owned(), registration);
    }

    /// This replica leads (`true`) or stands by; `renewed` is when its lease was last
    /// renewed, for a leader that holds one.
    pub fn leading(&self, leads: bool, renewed: Option<std::time::Instant>) {
        *lock(&self.leading) = Some((leads, renewed));
    }

    /// `leader` or `standby`, once known.
    pub fn role(&self) -> Option<&'static str> {
        lock(&self.leading).map(|(leads, _)| if leads { "leader" } else { "standby" })
    }

    /// Whether this replica leads (`None` until known), and how long ago its lease was
    /// renewed, when it holds one.
    pub fn leadership(&self) -> Option<(bool, Option<std::time::Duration>)> {
        lock(&self.leading).map(|(leads, renewed)| (leads, renewed.map(|at| at.elapsed())))
    }

    /// Every platform whose commands are registered by Gatehouse, and where that stands.
    pub fn registrations(&self) -> BTreeMap<String, Registration> {
        lock(&self.commands).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_platform_that_connects_is_not_ready_until_it_has() {
        let readiness = Readiness::default();
        assert!(readiness.all_connected(), "nothing registered: ready");
        readiness.expect("slack");
        assert!(!readiness.all_connected());
        readiness.connected("slack");
        assert!(readiness.all_connected());
        readiness.disconnected("slack");
        assert_eq!(
            readiness.platforms().get("slack"),
            Some(&Link::Disconnected)
        );
        assert!(!readiness.all_connected());
    }

    #[test]
    fn a_platform_over_http_is_ready_and_has_no_connection_to_count() {
        let readiness = Readiness::default();
        readiness.over_http("discord");
        readiness.expect("slack");
        assert_eq!(readiness.platforms().get("discord"), Some(&Link::Http));
        assert_eq!(
            readiness.connections(),
            BTreeMap::from([("slack".to_owned(), false)])
        );
        readiness.connected("slack");
        assert!(readiness.all_connected());
    }
}
