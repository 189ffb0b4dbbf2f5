//! Every alert, on both platforms, publishes the audit chain's head: the short form, and
//! the whole hash in the daily digest.

use serde_json::json;

use super::render;
use crate::chat::views::samples;

#[test]
fn every_alert_on_both_platforms_shows_the_audit_head_and_the_digest_its_whole_hash() {
    let head = samples::sample_audit_head();
    for platform in ["slack", "discord"] {
        for alert in samples::sample_alerts() {
            let message = render(&format!("{platform}/alert.j2"), json!({ "alert": alert }));
            let shown = if alert.kind == "digest" {
                head.to_string()
            } else {
                head.short()
            };
            assert!(
                message
                    .to_string()
                    .contains(&format!("Audit log head: `{shown}`")),
                "{platform} {}: {message}",
                alert.kind
            );
        }
    }
}
