//! The `okta` connector as `check` sees it: every key checked without reaching Okta, at
//! its line, and keys of other kinds refused.

use super::*;

fn key_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys/rsa-test.pkcs8.pem")
        .display()
        .to_string()
}

fn okta_app() -> String {
    format!(
        r#"
[[connectors]]
id = "okta"
kind = "okta"
org_url = "https://example.okta.com"
client_id = "0oa1gatehouse0app0id"
private_key_file = "{}"
roles = {{ admin = "00g1emaKYZTWRYYRRTSK" }}
"#,
        key_file()
    )
}

#[test]
fn the_okta_page_s_example_configuration_passes_check() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/connectors/okta.md"),
    )
    .unwrap();
    let block = page.split("```toml\n").nth(1).unwrap();
    let block = block[..block.find("```").unwrap()]
        .replace("/run/secrets/okta-gatehouse.pem", &key_file())
        .replace(
            "token_file = \"/run/secrets/okta-api-token\"",
            "token = \"${OKTA_API_TOKEN}\"",
        );
    let config = parse(&block, &[("OKTA_API_TOKEN", "00abc")]).unwrap_or_else(|e| panic!("{e}"));
    let [app, token] = &config.connectors[..] else {
        panic!("two connectors")
    };
    assert_eq!(app.kind, ConnectorKind::Okta);
    assert_eq!(app.roles.len(), 2);
    assert!(
        app.private_key
            .as_ref()
            .unwrap()
            .expose()
            .contains("BEGIN PRIVATE KEY")
    );
    assert_eq!(token.token.as_ref().unwrap().expose(), "00abc");
}

#[test]
fn an_okta_connector_without_its_settings_is_reported_key_by_key() {
    let found = errors("[[connectors]]\nid = \"okta\"\nkind = \"okta\"\n", &[]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connector `okta` (okta) has no org_url",
            "connector `okta` (okta) has no roles table",
            "connector `okta` (okta) has no credentials",
        ]
    );
    assert!(found.iter().all(|d| d.line == Some(1)), "{found:?}");
}

#[test]
fn okta_values_okta_would_refuse_are_reported_at_their_line() {
    let text = okta_app()
        .replace("https://example.okta.com", "example.okta.com")
        .replace(
            "00g1emaKYZTWRYYRRTSK\"",
            "00g1emaKYZTWRYYRRTSK\", read = \"Everyone\"",
        )
        .replace(
            "roles",
            "user_attribute = \"userName\"\nkey_id = \"k1\"\nroles",
        )
        + "user_name = \"{{ email \"\n";
    let found = errors(&text, &[]);
    let at: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(found.len(), 4, "{at:#?}");
    assert_eq!(at[0].0, Some(5));
    assert!(
        at[0].1.contains("org_url `example.okta.com` is not a URL"),
        "{at:?}"
    );
    assert_eq!(at[1].0, Some(11));
    assert!(at[1].1.contains("user_name is not a template"), "{at:?}");
    assert_eq!(at[2].0, Some(8));
    assert!(
        at[2]
            .1
            .contains("user_attribute `userName` is not an attribute"),
        "{at:?}"
    );
    assert_eq!(at[3].0, Some(10));
    assert!(
        at[3]
            .1
            .contains("role `read`: `Everyone` is not an Okta group id"),
        "{at:?}"
    );
}

#[test]
fn a_private_key_that_cannot_sign_rs256_is_reported_at_its_key() {
    let ec = key_file().replace("rsa-test.pkcs8.pem", "ec-test.pem");
    let d = only_error(&okta_app().replace(&key_file(), &ec), &[]);
    assert_eq!(d.line, Some(7));
    assert!(d.message.contains("private_key is not an RSA key"), "{d}");

    let d = only_error(
        &okta_app().replace("client_id = \"0oa1gatehouse0app0id\"\n", ""),
        &[],
    );
    assert_eq!(
        d.message,
        "connector `okta` has a private_key but no client_id"
    );
}

#[test]
fn an_api_token_or_a_service_app_but_not_both() {
    let both = format!("{}token = \"${{OKTA_API_TOKEN}}\"\n", okta_app());
    let d = only_error(&both, &[("OKTA_API_TOKEN", "00abc")]);
    assert_eq!(
        d.message,
        "connector `okta` has both an API token and a service app"
    );
    assert_eq!(d.line, Some(9));

    let token_only = okta_app()
        .replace(
            "client_id = \"0oa1gatehouse0app0id\"\n",
            "token = \"00abc\"\n",
        )
        .replace(
            &format!("private_key_file = \"{}\"\n", key_file()),
            "key_id = \"k1\"\n",
        );
    let d = only_error(&token_only, &[]);
    assert_eq!(
        d.message,
        "connector `okta` signs in with an API token, which uses no key_id"
    );
}

#[test]
fn okta_keys_stay_with_their_kind() {
    let d = only_error(&format!("{}region = \"eu-west-1\"\n", okta_app()), &[]);
    assert_eq!(
        d.message,
        "connector `okta` is kind = \"okta\", which has no region"
    );
    let postgres = "[[connectors]]\nid = \"db\"\nkind = \"postgres\"\nhost = \"db\"\nuser = \"g\"\norg_url = \"https://example.okta.com\"\n";
    let d = only_error(postgres, &[]);
    assert_eq!(
        d.message,
        "connector `db` is kind = \"postgres\", which has no org_url"
    );
    assert_eq!(d.line, Some(6));
}

#[test]
fn a_policy_role_the_okta_roles_table_does_not_name_is_refused() {
    let config = parse(&okta_app(), &[]).unwrap();
    let directory = crate::domain::directory::Directory::parse(
        &crate::domain::diagnostic::Source::new("directory.toml", "[[people]]\nid = \"bob\"\n"),
    )
    .unwrap();
    let policy = r#"
[[resources]]
id = "okta-admin"
name = "Okta admin"
kind = "saas"
owners = ["bob"]
risk = "low"
connector = "okta"
  [[resources.roles]]
  id = "owner"
"#;
    let context = crate::domain::policy::PolicyContext {
        directory: &directory,
        connectors: None,
        now: Utc::now(),
    };
    let (policy, _) = crate::domain::policy::parse_policy(
        &crate::domain::diagnostic::Source::new("policy.toml", policy),
        &context,
    )
    .unwrap();
    let found = crate::config::roles_without_target(&config, &policy, "policy.toml");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .help
            .as_deref()
            .unwrap()
            .contains("the Okta group id it stands for")
    );
}
