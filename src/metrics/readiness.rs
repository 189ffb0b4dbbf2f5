//! Which chat platforms hold a live connection. A platform that keeps a connection open
//! (Slack Socket Mode, the Discord gateway) is registered with [`Readiness::expect`] before
//! it starts, and marks itself [`Readiness::connected`] / [`Readiness::disconnected`] as the
//! connection comes and goes. Platforms that only receive HTTP (Slack's Events API, Discord
//! interactions) are never registered: they are ready whenever the server is.
//! `/readyz` answers 503 while any registered platform is disconnected.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Readiness {
    platforms: Mutex<BTreeMap<String, bool>>,
}

impl Readiness {
    /// `platform` will connect: not ready until it says it is connected.
    pub fn expect(&self, platform: &str) {
        self.set(platform, false);
    }

    pub fn connected(&self, platform: &str) {
        self.set(platform, true);
    }

    pub fn disconnected(&self, platform: &str) {
        self.set(platform, false);
    }

    fn set(&self, platform: &str, up: bool) {
        let mut platforms = self
            .platforms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        platforms.insert(platform.to_owned(), up);
    }

    /// Every registered platform and whether it is connected, by name.
    pub fn platforms(&self) -> BTreeMap<String, bool> {
        self.platforms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether every registered platform is connected.
    pub fn all_connected(&self) -> bool {
        self.platforms().values().all(|up| *up)
    }
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
        assert_eq!(readiness.platforms().get("slack"), Some(&false));
        assert!(!readiness.all_connected());
    }
}
