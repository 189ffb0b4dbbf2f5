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
        now: crate::engine::Clock::now(&crate::engine::SystemClock),
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

fn entra_certificate() -> String {
    format!(
        r#"
[[connectors]]
id = "entra"
kind = "entra"
tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"
client_id = "5f4b2c1e-9d8a-4b7c-a6e5-3f2d1c0b9a87"
certificate_file = "{}"
private_key_file = "{}"
roles = {{ admin = "02bd9fd6-8f93-4758-87c3-1fb73740a315" }}
"#,
        key_file().replace("rsa-test.pkcs8.pem", "rsa-test.cert.pem"),
        key_file()
    )
}

#[test]
fn the_entra_page_s_example_configuration_passes_check() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/connectors/entra.md"),
    )
    .unwrap();
    let block = page.split("```toml\n").nth(1).unwrap();
    let block = block[..block.find("```").unwrap()]
        .replace(
            "/etc/gatehouse/entra.crt",
            &key_file().replace("rsa-test.pkcs8.pem", "rsa-test.cert.pem"),
        )
        .replace("/run/secrets/entra.key", &key_file())
        .replace(
            "client_secret_file = \"/run/secrets/entra-client-secret\"",
            "client_secret = \"${ENTRA_CLIENT_SECRET}\"",
        );
    let config =
        parse(&block, &[("ENTRA_CLIENT_SECRET", "s3cret")]).unwrap_or_else(|e| panic!("{e}"));
    let [certificate, secret] = &config.connectors[..] else {
        panic!("two connectors")
    };
    assert_eq!(certificate.kind, ConnectorKind::Entra);
    assert!(
        certificate
            .certificate
            .as_ref()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(certificate.roles.len(), 2);
    assert_eq!(secret.client_secret.as_ref().unwrap().expose(), "s3cret");
}

#[test]
fn an_entra_connector_without_its_settings_is_reported_key_by_key() {
    let found = errors("[[connectors]]\nid = \"entra\"\nkind = \"entra\"\n", &[]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connector `entra` (entra) has no tenant_id",
            "connector `entra` (entra) has no client_id",
            "connector `entra` (entra) has no roles table",
            "connector `entra` (entra) has no credentials",
        ]
    );
    assert!(found.iter().all(|d| d.line == Some(1)), "{found:?}");
}

#[test]
fn entra_values_entra_would_refuse_are_reported_at_their_line() {
    let text = entra_certificate()
        .replace("72f988bf-86f1-41af-91ab-2d7cd011db47", "common")
        .replace("1fb73740a315\"", "1fb73740a315\", reader = \"Readers\"")
        .replace("roles", "user_attribute = \"email\"\nroles")
        + "graph_url = \"graph.microsoft.com\"\n";
    let found = errors(&text, &[]);
    let at: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(found.len(), 4, "{at:#?}");
    assert_eq!(at[0].0, Some(5));
    assert!(
        at[0].1.contains("tenant_id `common` is not a tenant"),
        "{at:?}"
    );
    assert_eq!(at[1].0, Some(9));
    assert!(
        at[1]
            .1
            .contains("user_attribute `email` is not an attribute"),
        "{at:?}"
    );
    assert_eq!(at[2].0, Some(10));
    assert!(
        at[2]
            .1
            .contains("role `reader`: `Readers` is not an Entra group's object id"),
        "{at:?}"
    );
    assert_eq!(at[3].0, Some(11));
    assert!(
        at[3]
            .1
            .contains("graph_url `graph.microsoft.com` is not a URL"),
        "{at:?}"
    );
}

#[test]
fn an_entra_certificate_and_its_key_are_read_and_parsed() {
    let swapped = entra_certificate().replace(
        &format!("private_key_file = \"{}\"", key_file()),
        &format!(
            "private_key_file = \"{}\"",
            key_file().replace("rsa-test.pkcs8.pem", "rsa-test.cert.pem")
        ),
    );
    let d = only_error(&swapped, &[]);
    assert_eq!(d.line, Some(8));
    assert!(
        d.message.contains("private_key holds no private key"),
        "{d}"
    );

    let no_certificate = entra_certificate().replace(
        &format!(
            "certificate_file = \"{}\"\n",
            key_file().replace("rsa-test.pkcs8.pem", "rsa-test.cert.pem")
        ),
        "",
    );
    let d = only_error(&no_certificate, &[]);
    assert_eq!(
        d.message,
        "connector `entra` has a private_key but no certificate"
    );

    let both = format!("{}client_secret = \"s\"\n", entra_certificate());
    let d = only_error(&both, &[]);
    assert_eq!(
        d.message,
        "connector `entra` has both a client secret and a certificate"
    );
}

#[test]
fn okta_and_entra_keys_stay_with_their_kinds() {
    let d = only_error(
        &format!(
            "{}org_url = \"https://example.okta.com\"\n",
            entra_certificate()
        ),
        &[],
    );
    assert_eq!(
        d.message,
        "connector `entra` is kind = \"entra\", which has no org_url"
    );
    let d = only_error(&format!("{}tenant_id = \"contoso.com\"\n", okta_app()), &[]);
    assert_eq!(
        d.message,
        "connector `okta` is kind = \"okta\", which has no tenant_id"
    );
}
