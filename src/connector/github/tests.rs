use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeZone;
use serde_json::Value;

use super::*;
use crate::config::{ConnectorKind, Secret};
use crate::connector::tests::config;

fn key_pem() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keys/rsa-test.pkcs1.pem"
    ))
    .unwrap()
}

fn app_config() -> ConnectorConfig {
    let mut complete = config("github", ConnectorKind::Github);
    complete.app_id = Some("123456".to_owned());
    complete.installation_id = Some("7654321".to_owned());
    complete.private_key = Some(Secret::new(key_pem()));
    complete
        .roles
        .insert("member".into(), "@acme/platform".to_owned());
    complete
}

fn setup_error(config: ConnectorConfig) -> String {
    crate::connector::Connectors::from_config(&[config])
        .err()
        .unwrap()
        .to_string()
}

#[test]
fn connectors_from_config_build_github_and_say_which_key_is_missing() {
    let built = crate::connector::Connectors::from_config(&[app_config()]).unwrap();
    assert!(built.get(&"github".into()).is_some());

    let mut no_installation = app_config();
    no_installation.installation_id = None;
    assert_eq!(
        setup_error(no_installation),
        "connector `github` (github) has no installation_id; add installation_id = 12345678 (the number at the end of the installation's settings URL)"
    );
    let mut nothing = app_config();
    nothing.app_id = None;
    assert!(
        setup_error(nothing).starts_with(
            "connector `github` (github) has no token; add token = \"${GITHUB_TOKEN}\""
        ),
    );
    let mut both = app_config();
    both.token = Some(Secret::new("github_pat_x"));
    assert_eq!(
        setup_error(both),
        "connector `github`: token and app_id are both given: use a token or a GitHub App, not both"
    );
    let mut typo = app_config();
    typo.roles.insert("deploy".into(), "acme/api".to_owned());
    assert!(
        setup_error(typo)
            .contains("roles role `deploy`: `acme/api` names a repository without a permission"),
    );
}

#[test]
fn the_api_root_keeps_an_enterprise_server_path_and_ends_in_a_slash() {
    assert_eq!(
        api_root("https://github.example.com/api/v3")
            .unwrap()
            .as_str(),
        "https://github.example.com/api/v3/"
    );
    assert_eq!(
        api_root(DEFAULT_API_URL).unwrap().as_str(),
        "https://api.github.com/"
    );
    assert!(api_root("ftp://github.example.com").is_err());
    assert!(api_root("https://user:pw@github.example.com").is_err());
}

#[test]
fn the_app_jwt_is_issued_by_the_app_backdated_a_minute_and_valid_under_ten() {
    let connector = GithubConnector::from_config(&app_config()).unwrap();
    let Auth::App(app) = &connector.auth else {
        panic!("an App")
    };
    assert_eq!(
        app.url.as_str(),
        "https://api.github.com/app/installations/7654321/access_tokens"
    );
    let now = chrono::Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
    let jwt = app.jwt(now).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    assert_eq!(decode(parts[0])["alg"], "RS256");
    let claims = decode(parts[1]);
    assert_eq!(claims["iss"], "123456");
    assert_eq!(claims["iat"], now.timestamp() - 60);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(
        lifetime <= 600,
        "GitHub refuses more than ten minutes: {lifetime}"
    );
    assert!(claims["exp"].as_i64().unwrap() > now.timestamp());
}
