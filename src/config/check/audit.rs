//! `[audit] key`: long enough to be a secret, and not the quick start's.

use super::Checker;
use crate::config::Config;
use crate::config::audit::DEV_KEY_PREFIX;
use crate::domain::anchor::MIN_KEY_CHARS;

impl Checker<'_, '_, '_, '_> {
    pub(super) fn audit(&mut self, config: &Config) {
        let Some(key) = &config.audit.key else {
            return;
        };
        let length = key.char_count();
        if length < MIN_KEY_CHARS {
            self.error(
                "audit.key",
                format!(
                    "audit.key is {length} characters long; at least {MIN_KEY_CHARS} are needed"
                ),
                "a short key can be guessed, and then anyone can rewrite the audit log unseen; \
                 generate one with `openssl rand -hex 32`",
            );
        } else if key.expose().starts_with(DEV_KEY_PREFIX) {
            let diagnostic = self
                .origin
                .warning(
                    self.spans.of("audit.key"),
                    "audit.key is the quick start's default, which everyone can read: \
                     checkpoints made with it prove nothing",
                )
                .with_help(
                    "set GATEHOUSE_AUDIT_KEY (e.g. `openssl rand -hex 32`) or use key_file, \
                     outside the data directory",
                );
            self.found.push(diagnostic);
        }
    }
}
