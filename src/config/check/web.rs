//! `[web]`: what an enabled portal needs, and timeouts that make sense together.

use super::Checker;
use crate::config::Config;

impl Checker<'_, '_, '_, '_> {
    pub(super) fn web(&mut self, config: &Config) {
        let web = &config.web;
        if !web.enabled {
            return;
        }
        let needs = "when [web] is enabled";
        for (value, key, example) in [
            (
                &web.issuer,
                "web.issuer",
                "issuer = \"https://accounts.example.com\"",
            ),
            (&web.client_id, "web.client_id", "client_id = \"gatehouse\""),
            (
                &web.public_url,
                "web.public_url",
                "public_url = \"https://gatehouse.example.com\"",
            ),
        ] {
            if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                self.error(
                    key,
                    format!("{key} is required {needs}"),
                    format!("in [web] write {example}"),
                );
            }
        }
        self.require(web.client_secret.as_ref(), "web.client_secret", needs);
        self.url(web.issuer.as_deref(), "web.issuer");
        self.url(web.public_url.as_deref(), "web.public_url");
        if web.claim.trim().is_empty() {
            self.error(
                "web.claim",
                "web.claim is empty",
                "name the ID token claim that identifies the person, e.g. claim = \"email\"",
            );
        }
        if web.idle_timeout.as_secs() == 0 {
            self.error(
                "web.idle_timeout",
                "web.idle_timeout is 0s: every session would end at once",
                "write at least 1m; the default is 30m",
            );
        }
        if web.absolute_timeout.as_secs() < web.idle_timeout.as_secs() {
            self.error(
                "web.absolute_timeout",
                format!(
                    "web.absolute_timeout ({}) is shorter than web.idle_timeout ({})",
                    web.absolute_timeout, web.idle_timeout
                ),
                "a session ends at the absolute timeout whatever its use; make it at least the idle timeout (the default is 12h)",
            );
        }
        if web.sign_ins_per_minute == 0 {
            self.error(
                "web.sign_ins_per_minute",
                "web.sign_ins_per_minute is 0: nobody could sign in",
                "leave it out for the default of 60",
            );
        }
    }
}
