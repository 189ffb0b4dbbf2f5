//! The `github` connector as `check` sees it: every problem found offline, at its key.

use super::*;

const GITHUB: &str = r#"
[[connectors]]
id = "github"
kind = "github"
app_id = 123456
installation_id = 7654321
private_key_file = "KEY"
roles = { member = "@acme/platform", lead = "@acme/platform:maintainer", deploy = "acme/api:push" }
"#;

fn key(name: &str) -> String {
    format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn app(key_file: &str) -> String {
    GITHUB.replace("KEY", &key(key_file))
}

#[test]
fn the_github_page_s_example_configuration_passes_check() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/connectors/github.md"),
    )
    .unwrap();
    let block = page.split("```toml\n").nth(1).unwrap();
    let block = block[..block.find("```").unwrap()]
        .replace("/etc/gatehouse/github-app.pem", &key("rsa-test.pkcs1.pem"));
    let config = parse(&block, &[("GITHUB_TOKEN", "github_pat_11A")]).unwrap();
    let [app, token] = &config.connectors[..] else {
        panic!("two connectors")
    };
    assert_eq!(app.kind, ConnectorKind::Github);
    assert_eq!(app.app_id.as_deref(), Some("123456"));
    assert_eq!(app.installation_id.as_deref(), Some("7654321"));
    assert!(app.private_key.is_some() && app.token.is_none());
    assert_eq!(
        token.token.as_ref().map(|t| t.expose()),
        Some("github_pat_11A")
    );
}

#[test]
fn an_app_id_is_taken_as_a_number_or_as_text() {
    let config = parse(&app("rsa-test.pkcs8.pem"), &[]).unwrap();
    assert_eq!(config.connectors[0].app_id.as_deref(), Some("123456"));
    let text = app("rsa-test.pkcs8.pem").replace("123456", "\"Iv23liABCDEF\"");
    let config = parse(&text, &[]).unwrap();
    assert_eq!(config.connectors[0].app_id.as_deref(), Some("Iv23liABCDEF"));
}

#[test]
fn a_github_connector_without_roles_or_credentials_is_reported_at_its_table() {
    let found = errors("[[connectors]]\nid = \"gh\"\nkind = \"github\"\n", &[]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connector `gh` (github) has no roles table",
            "connector `gh` (github) has no credentials",
        ]
    );
    assert!(found.iter().all(|d| d.line == Some(1)), "{found:?}");
}

#[test]
fn roles_that_are_neither_a_team_nor_a_repository_permission_are_reported_at_their_line() {
    let text = app("rsa-test.pkcs8.pem").replace(
        "deploy = \"acme/api:push\"",
        "deploy = \"acme/api\", owner = \"@acme/platform:owner\"",
    );
    let found = errors(&text, &[]);
    let at: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(found.len(), 2, "{at:#?}");
    assert!(at.iter().all(|(line, _)| *line == Some(8)), "{at:?}");
    assert!(
        at[0]
            .1
            .contains("role `deploy`: `acme/api` names a repository without a permission"),
        "{at:?}"
    );
    assert!(
        at[1]
            .1
            .contains("a team role is member or maintainer, not `owner`"),
        "{at:?}"
    );
}

#[test]
fn an_app_needs_all_three_keys_and_a_key_that_signs_rs256() {
    let text = app("rsa-test.pkcs8.pem").replace("installation_id = 7654321\n", "");
    let d = only_error(&text, &[]);
    assert_eq!(
        d.message,
        "connector `github` authenticates as a GitHub App but has no installation_id"
    );
    let d = only_error(&app("ec-test.pem"), &[]);
    assert_eq!(d.line, Some(7), "{d}");
    assert!(
        d.message
            .starts_with("connector `github`: private_key is not an RSA key")
            && d.message.contains("RS256 needs an RSA key"),
        "{d}"
    );
    let text = app("rsa-test.pkcs8.pem").replace("7654321", "\"acme\"");
    let d = only_error(&text, &[]);
    assert_eq!(d.line, Some(6), "{d}");
    assert!(
        d.message.contains("installation_id `acme` is not a number"),
        "{d}"
    );
}

#[test]
fn a_token_and_an_app_together_are_refused() {
    let text = format!(
        "{}token = \"${{GITHUB_TOKEN}}\"\n",
        app("rsa-test.pkcs8.pem")
    );
    let found = errors(&text, &[("GITHUB_TOKEN", "github_pat_11A")]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connector `github` has a token and app_id",
            "connector `github` has a token and installation_id",
            "connector `github` has a token and private_key",
        ]
    );
}

#[test]
fn a_login_template_and_an_api_url_are_checked_at_their_line() {
    let text = format!(
        "{}login = \"{{{{ accounts.github \"\napi_url = \"github.example.com/api/v3\"\n",
        app("rsa-test.pkcs8.pem")
    );
    let found = errors(&text, &[]);
    let at: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(found.len(), 2, "{at:#?}");
    assert_eq!(at[0].0, Some(10), "{at:?}");
    assert!(
        at[0]
            .1
            .contains("api_url `github.example.com/api/v3` is not a URL"),
        "{at:?}"
    );
    assert_eq!(at[1].0, Some(9), "{at:?}");
    assert!(at[1].1.contains("login is not a template"), "{at:?}");
}

#[test]
fn github_keys_stay_with_their_kind() {
    let d = only_error(
        &format!("{}region = \"eu-west-1\"\n", app("rsa-test.pkcs8.pem")),
        &[],
    );
    assert_eq!(
        d.message,
        "connector `github` is kind = \"github\", which has no region"
    );
    let postgres = "[[connectors]]\nid = \"db\"\nkind = \"postgres\"\nhost = \"db\"\nuser = \"g\"\ntoken = \"t\"\n";
    let d = only_error(postgres, &[]);
    assert_eq!(
        d.message,
        "connector `db` is kind = \"postgres\", which has no token"
    );
}
