//! `[web]`: off unless enabled; when enabled, what the portal needs, checked at its line,
//! with the client secret from a variable or a file like every other secret.

use super::*;
use crate::config::web::MatchOn;

const WEB: &str = r#"
[web]
enabled = true
issuer = "https://login.example.com"
client_id = "gatehouse"
client_secret = "${GATEHOUSE_WEB_CLIENT_SECRET}"
public_url = "https://gatehouse.example.com/"
"#;

const SECRET: &[(&str, &str)] = &[("GATEHOUSE_WEB_CLIENT_SECRET", "a-client-secret-value")];

#[test]
fn the_portal_is_off_unless_enabled_and_its_secret_may_then_be_missing() {
    let config = parse("", &[]).unwrap();
    assert!(!config.web.enabled);
    let disabled = WEB.replace("enabled = true", "enabled = false");
    let config = parse(&disabled, &[]).unwrap();
    assert!(!config.web.enabled);
    assert!(config.web.client_secret.is_none());
    assert_eq!(config.web.request_url("AR-1"), None);
}

#[test]
fn an_enabled_portal_reads_its_secret_and_defaults_to_matching_email() {
    let config = parse(WEB, SECRET).unwrap();
    let web = &config.web;
    assert_eq!(
        web.client_secret.as_ref().unwrap().expose(),
        "a-client-secret-value"
    );
    assert!(!format!("{config:?}").contains("a-client-secret-value"));
    assert_eq!(
        (web.claim.as_str(), web.match_on),
        ("email", MatchOn::Email)
    );
    assert_eq!(web.idle_timeout, Duration::from_mins(30));
    assert_eq!(web.absolute_timeout, Duration::from_mins(720));
    assert_eq!(
        web.request_url("AR-7").as_deref(),
        Some("https://gatehouse.example.com/web/requests/AR-7")
    );
}

#[test]
fn the_client_secret_file_is_read_like_any_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oidc.secret"), "from-a-file\n").unwrap();
    let text = WEB.replace(
        "client_secret = \"${GATEHOUSE_WEB_CLIENT_SECRET}\"",
        "client_secret_file = \"oidc.secret\"",
    );
    let config = parse_in(dir.path(), &text, &[]).unwrap();
    assert_eq!(config.web.client_secret.unwrap().expose(), "from-a-file");
}

#[test]
fn an_enabled_portal_without_an_issuer_is_an_error_at_the_table() {
    let text = WEB.replace("issuer = \"https://login.example.com\"\n", "");
    let d = only_error(&text, SECRET);
    assert_eq!(d.message, "web.issuer is required when [web] is enabled");
    assert_eq!(d.line, Some(2), "{d}");
}

#[test]
fn a_public_url_that_is_not_http_is_an_error_at_its_line() {
    let text = WEB.replace("https://gatehouse.example.com/", "gatehouse.example.com");
    let d = only_error(&text, SECRET);
    assert_eq!(d.line, Some(7), "{d}");
    assert!(d.message.contains("is not an http or https URL"), "{d}");
}

#[test]
fn an_absolute_timeout_shorter_than_the_idle_one_is_an_error_at_its_line() {
    let text = format!("{WEB}idle_timeout = \"2h\"\nabsolute_timeout = \"1h\"\n");
    let d = only_error(&text, SECRET);
    assert_eq!(d.line, Some(9), "{d}");
    assert_eq!(
        d.message,
        "web.absolute_timeout (1h) is shorter than web.idle_timeout (2h)"
    );
}

#[test]
fn an_unknown_web_key_and_an_unknown_match_are_errors_at_their_lines() {
    let d = only_error(&format!("{WEB}cookie = \"x\"\n"), SECRET);
    assert_eq!(d.line, Some(8), "{d}");
    let d = only_error(&format!("{WEB}match_on = \"phone\"\n"), SECRET);
    assert_eq!(d.line, Some(8), "{d}");
}
