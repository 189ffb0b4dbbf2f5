//! The `google` connector as `check` sees it: every problem found offline, at its key.

use super::*;

/// The service account's JSON key, inline.
fn credentials() -> String {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keys/rsa-test.pkcs8.pem"
    ))
    .unwrap();
    let json = serde_json::json!({
        "type": "service_account",
        "client_email": "gatehouse@example-project.iam.gserviceaccount.com",
        "private_key": pem,
        "private_key_id": "0123456789abcdef",
    });
    format!("credentials = '''{json}'''")
}

fn page_block() -> String {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/connectors/google.md"),
    )
    .unwrap();
    let block = page.split("```toml\n").nth(1).unwrap();
    block[..block.find("```").unwrap()].replace(
        "credentials_file = \"/etc/gatehouse/google-service-account.json\"",
        &credentials(),
    )
}

#[test]
fn the_google_page_s_example_configuration_passes_check() {
    let config = parse(&page_block(), &[]).unwrap();
    let google = &config.connectors[0];
    assert_eq!(google.kind, ConnectorKind::Google);
    assert_eq!(
        google.subject.as_deref(),
        Some("gatehouse-admin@example.com")
    );
    assert_eq!(google.roles.len(), 2);
    assert!(google.credentials.is_some());
}

#[test]
fn a_google_connector_without_its_settings_is_reported_key_by_key() {
    let found = errors("[[connectors]]\nid = \"g\"\nkind = \"google\"\n", &[]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connector `g` (google) has no credentials",
            "connector `g` (google) has no subject",
            "connector `g` (google) has no roles table",
        ]
    );
}

#[test]
fn credentials_that_are_not_a_service_account_key_and_a_subject_that_is_not_an_address_are_reported_at_their_line()
 {
    let text = "[[connectors]]\nid = \"g\"\nkind = \"google\"\ncredentials = '{\"installed\": {}}'\nsubject = \"admin\"\nroles = { oncall = \"oncall@example.com\", typo = \"on call\" }\n";
    let found = errors(text, &[]);
    let at: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(found.len(), 3, "{at:#?}");
    assert_eq!(at[0].0, Some(4));
    assert!(
        at[0]
            .1
            .contains("credentials is not a service account's JSON key"),
        "{at:?}"
    );
    assert_eq!(at[1].0, Some(5));
    assert!(
        at[1].1.contains("subject `admin` is not an email address"),
        "{at:?}"
    );
    assert_eq!(at[2].0, Some(6));
    assert!(
        at[2]
            .1
            .contains("role `typo`: `on call` is not a group key"),
        "{at:?}"
    );
}

#[test]
fn google_keys_stay_with_their_kind() {
    let text = page_block().replace(
        "  [connectors.roles]",
        "token = \"t\"\n  [connectors.roles]",
    );
    assert_eq!(
        only_error(&text, &[]).message,
        "connector `google` is kind = \"google\", which has no token"
    );
    let postgres = "[[connectors]]\nid = \"db\"\nkind = \"postgres\"\nhost = \"db\"\nuser = \"g\"\nsubject = \"a@b\"\n";
    assert_eq!(
        only_error(postgres, &[]).message,
        "connector `db` is kind = \"postgres\", which has no subject"
    );
}
