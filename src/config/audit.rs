//! `[audit]`: the key that anchors the audit chain (see [`crate::domain::anchor`] and
//! docs/security.md). It must not live in the data directory or in backups, since whoever
//! can rewrite those would then hold it too: give it as `key = "${GATEHOUSE_AUDIT_KEY}"` or
//! `key_file = "/run/secrets/gatehouse-audit-key"`.

use serde::Deserialize;

use super::secret::Secret;
use crate::domain::anchor::AuditKey;

/// The quick start's key starts so; `gatehouse check` warns about it, since everyone knows it.
pub const DEV_KEY_PREFIX: &str = "dev-only-";

/// `[audit]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The secret checkpoints of the chain head are MACed with (HMAC-SHA256).
    pub key: Option<Secret>,
}

impl AuditConfig {
    /// The audit key, when one is configured.
    pub fn key(&self) -> Option<AuditKey> {
        self.key
            .as_ref()
            .filter(|key| !key.is_empty())
            .map(|key| AuditKey::new(key.expose().as_bytes()))
    }
}
