//! `[audit]`: the key that anchors the audit log, from a variable or a file, checked at its
//! line.

use super::*;
use crate::domain::anchor::AuditKey;
use crate::domain::diagnostic::Severity;

const KEY: &str = "5f0c2e8a9b7d4c3e1f6a8b0c2d4e6f8a5f0c2e8a9b7d4c3e1f6a8b0c2d4e6f8a";

#[test]
fn an_audit_key_comes_from_a_variable_and_anchors_with_its_id() {
    let config = parse(
        "[audit]\nkey = \"${GATEHOUSE_AUDIT_KEY}\"\n",
        &[("GATEHOUSE_AUDIT_KEY", KEY)],
    )
    .unwrap();
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    assert_eq!(
        config.audit.key().unwrap().id(),
        AuditKey::new(KEY.as_bytes()).id()
    );
    assert!(
        !format!("{config:?}").contains(KEY),
        "the key is never shown"
    );
    assert!(parse("", &[]).unwrap().audit.key().is_none());
}

#[test]
fn an_audit_key_file_is_read_like_any_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("audit.key"), format!("{KEY}\n")).unwrap();
    let config = parse_in(dir.path(), "[audit]\nkey_file = \"audit.key\"\n", &[]).unwrap();
    assert_eq!(
        config.audit.key().unwrap().id(),
        AuditKey::new(KEY.as_bytes()).id()
    );
    let err = parse_in(dir.path(), "\n[audit]\nkey_file = \"missing.key\"\n", &[]).unwrap_err();
    let d = &err.0[0];
    assert_eq!(d.line, Some(3), "{d}");
    assert!(d.message.contains("audit.key_file: cannot read"), "{d}");
}

#[test]
fn a_short_audit_key_is_an_error_at_its_line() {
    let d = only_error(
        "[log]\nlevel = \"info\"\n\n[audit]\nkey = \"guessable\"\n",
        &[],
    );
    assert_eq!(d.line, Some(5));
    assert_eq!(
        d.message,
        "audit.key is 9 characters long; at least 32 are needed"
    );
    assert!(d.help.unwrap().contains("openssl rand -hex 32"));
}

#[test]
fn the_quick_starts_audit_key_is_a_warning_at_its_line() {
    let text = "[audit]\nkey = \"${GATEHOUSE_AUDIT_KEY:-dev-only-audit-key-change-me-00000000}\"\n";
    let config = parse(text, &[]).unwrap();
    let [warning] = config.warnings() else {
        panic!("one warning expected: {:?}", config.warnings());
    };
    assert_eq!(
        (warning.severity, warning.line),
        (Severity::Warning, Some(2))
    );
    assert!(
        warning.message.contains("quick start's default"),
        "{warning}"
    );
    let set = parse(text, &[("GATEHOUSE_AUDIT_KEY", KEY)]).unwrap();
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
}
