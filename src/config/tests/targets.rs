//! The `postgres` and `ldap` connectors and `[directory] source = "ldap"`, as `check` sees
//! them: every problem found without connecting, at the key to fix.

use super::*;
use crate::config::{DirectorySource, SslMode};

const POSTGRES: &str = r#"
[[connectors]]
id = "prod-db"
kind = "postgres"
host = "db.internal"
user = "gatehouse"
password = "${PG_PASSWORD}"
login = "{{ email | split('@') | first }}"
valid_until = true
roles = { read = "app_read", admin = "app_admin" }
"#;

const LDAP: &str = r#"
[[connectors]]
id = "vpn"
kind = "ldap"
url = "ldap://ldap.internal"
starttls = true
bind_dn = "cn=gatehouse,dc=example,dc=com"
bind_password = "${LDAP_PASSWORD}"
user_base_dn = "ou=people,dc=example,dc=com"
user_filter = "(mail={{ email }})"
member_attribute = "uniqueMember"
roles = { member = "cn=vpn,ou=groups,dc=example,dc=com" }
"#;

const DIRECTORY: &str = r#"
[directory]
source = "ldap"
sync_every = "10m"
url = "ldaps://ldap.internal"
bind_dn = "cn=gatehouse,dc=example,dc=com"
bind_password = "${LDAP_PASSWORD}"
base_dn = "ou=people,dc=example,dc=com"
group_base_dn = "ou=groups,dc=example,dc=com"
inactive_attribute = "employeeType"
inactive_values = ["terminated"]
max_leavers = 25
max_leavers_percent = 20

[directory.attributes]
department = "ou"
slack = "slackId"
"#;

const VARS: &[(&str, &str)] = &[("PG_PASSWORD", "pw"), ("LDAP_PASSWORD", "pw")];

#[test]
fn the_documented_postgres_ldap_and_directory_settings_load() {
    let text = format!("{POSTGRES}{LDAP}{DIRECTORY}");
    let config = parse(&text, VARS).unwrap();
    let pg = &config.connectors[0];
    assert_eq!(pg.kind, ConnectorKind::Postgres);
    assert_eq!(pg.sslmode, SslMode::VerifyFull);
    assert_eq!(pg.roles[&"admin".into()], "app_admin");
    assert_eq!(pg.password.as_ref().unwrap().expose(), "pw");
    assert_eq!(
        config.connectors[1].member_attribute.as_deref(),
        Some("uniqueMember")
    );
    let directory = &config.directory;
    assert_eq!(directory.source, DirectorySource::Ldap);
    assert_eq!(directory.sync_every, Duration::from_mins(10));
    assert_eq!(directory.max_leavers, 25);
    assert_eq!(directory.max_leavers_percent, 20);
    assert_eq!(directory.attributes.department, "ou");
    assert_eq!(directory.attributes.id, "uid");
    assert!(!format!("{config:?}").contains("\"pw\""));
}

#[test]
fn a_directory_left_to_the_file_needs_no_ldap_settings() {
    let config = parse("", &[]).unwrap();
    assert_eq!(config.directory.source, DirectorySource::File);
    assert_eq!(config.directory.sync_every, Duration::from_mins(5));
    assert_eq!(config.directory.max_leavers, 100);
    assert_eq!(config.directory.max_leavers_percent, 10);
}

#[test]
fn a_postgres_connector_without_host_or_user_is_reported_at_its_table() {
    let found = errors(
        "[[connectors]]\nid = \"db\"\nkind = \"postgres\"\nsslmode = \"disable\"\n",
        &[],
    );
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connector `db` (postgres) has no host",
            "connector `db` (postgres) has no user to connect as"
        ]
    );
    assert_eq!(found[0].line, Some(1));
}

#[test]
fn a_password_in_a_postgres_url_is_refused() {
    let d = only_error(
        "[[connectors]]\nid = \"db\"\nkind = \"postgres\"\nurl = \"postgres://gh:secret@db/app\"\n",
        &[],
    );
    assert_eq!(d.line, Some(4));
    assert!(d.message.contains("url holds a password"), "{d}");
}

#[test]
fn a_login_template_that_does_not_compile_is_reported_at_its_line() {
    let text = POSTGRES.replace("first }}", "first }");
    let d = only_error(&text, VARS);
    assert_eq!(d.line, Some(8));
    assert!(
        d.message.contains("connectors.0.login is not a template"),
        "{d}"
    );
}

#[test]
fn a_user_filter_that_loops_without_end_is_reported_by_check() {
    let looping = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}(mail={{ email }})";
    let text = LDAP.replace("(mail={{ email }})", looping);
    let d = only_error(&text, &[("LDAP_PASSWORD", "pw")]);
    assert_eq!(d.line, Some(10));
    assert_eq!(
        d.message,
        "connector `vpn`: connectors.0.user_filter: the template used up its budget of 100000 \
         steps; look for a loop that runs too long"
    );
}

#[test]
fn an_unknown_sslmode_is_refused_with_the_modes_there_are() {
    let text = format!("{POSTGRES}sslmode = \"prefer\"\n");
    let d = only_error(&text, VARS);
    assert!(
        d.message
            .contains("expected one of `disable`, `require`, `verify-full`"),
        "{d}"
    );
}

#[test]
fn a_ca_file_is_read_at_load_and_must_hold_a_certificate() {
    let text = format!("{POSTGRES}ca_file = \"no-such-ca.pem\"\n");
    let d = only_error(&text, VARS);
    assert!(
        d.message
            .starts_with("connectors[0].ca_file: cannot read /etc/gatehouse/no-such-ca.pem"),
        "{d}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
    let text = format!("{POSTGRES}ca_file = \"ca.pem\"\n");
    let d = match parse_in(dir.path(), &text, VARS) {
        Ok(_) => panic!("a file without a certificate passed"),
        Err(d) => d.0.into_iter().find(Diagnostic::is_error).unwrap(),
    };
    assert!(
        d.message
            .starts_with("connectors.0.ca: ca is not a PEM certificate"),
        "{d}"
    );
    assert_eq!(d.line, Some(11));
}

#[test]
fn an_ldap_connector_needs_roles_a_way_to_find_the_dn_and_a_password_with_its_bind_dn() {
    let text = "[[connectors]]\nid = \"vpn\"\nkind = \"ldap\"\nurl = \"ldaps://ldap\"\nstarttls = true\nbind_dn = \"cn=gh\"\n";
    let found = errors(text, &[]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connectors.0.url is ldaps:// and starttls is on: the connection is TLS already",
            "connectors.0.bind_password is required with a bind_dn",
            "connector `vpn` (ldap) needs one way to find a person's DN",
            "connector `vpn` (ldap) has no roles table",
        ]
    );
}

#[test]
fn keys_of_another_kind_are_refused_rather_than_ignored() {
    let text = format!("{POSTGRES}bind_dn = \"cn=x\"\n");
    let d = only_error(&text, VARS);
    assert_eq!(
        d.message,
        "connector `prod-db` is kind = \"postgres\", which has no bind_dn"
    );
}

#[test]
fn an_ldap_directory_needs_a_url_and_a_base_dn() {
    let found = errors("[directory]\nsource = \"ldap\"\nfilter = \"uid=*\"\n", &[]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "directory reads LDAP but has no url",
            "directory.base_dn is required when directory.source = \"ldap\"",
            "directory.filter `uid=*` is not an LDAP filter",
        ]
    );
}

#[test]
fn the_directory_url_can_be_overridden_from_the_environment() {
    let config = parse(
        DIRECTORY,
        &[
            ("LDAP_PASSWORD", "pw"),
            ("GATEHOUSE_DIRECTORY__URL", "ldap://other:389"),
        ],
    )
    .unwrap();
    assert_eq!(config.directory.url.as_deref(), Some("ldap://other:389"));
}

#[test]
fn ldap_settings_without_source_ldap_are_pointed_out() {
    let config = parse("[directory]\nurl = \"ldaps://ldap\"\n", &[]).unwrap();
    let warning = &config.warnings()[0];
    assert!(!warning.is_error());
    assert_eq!(warning.line, Some(1));
    assert!(warning.message.contains("LDAP is not read"), "{warning}");
}

#[test]
fn a_reload_sees_any_change_of_the_directory_section_including_its_password() {
    let directory = |password: &str, filter: &str| {
        let text = format!(
            "[directory]\nsource = \"ldap\"\nurl = \"ldap://ldap\"\nbase_dn = \"dc=x\"\nbind_password = \"{password}\"\nfilter = \"{filter}\"\n"
        );
        parse(&text, &[]).unwrap().directory
    };
    assert_eq!(directory("pw", "(uid=*)"), directory("pw", "(uid=*)"));
    assert_ne!(directory("pw", "(uid=*)"), directory("other", "(uid=*)"));
    assert_ne!(directory("pw", "(uid=*)"), directory("pw", "(cn=*)"));
    assert_ne!(
        directory("pw", "(uid=*)"),
        parse("", &[]).unwrap().directory,
        "LDAP turned off"
    );
}

#[test]
fn a_leaver_share_above_a_hundred_percent_is_refused() {
    let text = DIRECTORY.replace("max_leavers_percent = 20", "max_leavers_percent = 150");
    let d = only_error(&text, VARS);
    assert_eq!(
        d.message,
        "directory.max_leavers_percent = 150 is not a share of the directory"
    );
}

#[test]
fn ldap_accounts_need_a_name_templates_can_write_and_an_attribute() {
    let text = format!(
        "{DIRECTORY}accounts = {{ github = \"githubLogin\", Okta = \"oktaId\", jira = \" \" }}\n"
    );
    let found = errors(&text, VARS);
    let at: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        at,
        [
            (
                Some(18),
                "[directory.attributes] accounts names an account `Okta`"
            ),
            (
                Some(18),
                "[directory.attributes] accounts.jira names no attribute"
            ),
        ]
    );
    let config = parse(&text.replace(", Okta = \"oktaId\", jira = \" \"", ""), VARS).unwrap();
    assert_eq!(
        config.directory.attributes.accounts["github"],
        "githubLogin"
    );
}

const AWS: &str = r#"
[[connectors]]
id = "aws-prod"
kind = "aws-sso"
region = "eu-west-1"
instance_arn = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
identity_store_id = "d-1234567890"
account = "111111111111"
user_name = "{{ email }}"
roles = { admin = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef" }
"#;

#[test]
fn the_aws_sso_page_s_example_configuration_passes_check() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/connectors/aws-sso.md"),
    )
    .unwrap();
    let block = page.split("```toml\n").nth(1).unwrap();
    let config = parse(&block[..block.find("```").unwrap()], &[]).unwrap();
    let [account, groups] = &config.connectors[..] else {
        panic!("two connectors")
    };
    assert_eq!(account.kind, ConnectorKind::AwsSso);
    assert_eq!(account.assign, None);
    assert_eq!(account.roles.len(), 2);
    assert_eq!(groups.assign, Some(AwsAssign::Group));
}

#[test]
fn an_aws_sso_connector_without_its_settings_is_reported_key_by_key() {
    let found = errors("[[connectors]]\nid = \"aws\"\nkind = \"aws-sso\"\n", &[]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connector `aws` (aws-sso) has no region",
            "connector `aws` (aws-sso) has no identity_store_id",
            "connector `aws` (aws-sso) has no roles table",
            "connector `aws` (aws-sso) has no instance_arn",
            "connector `aws` (aws-sso) has no account",
        ]
    );
    assert!(found.iter().all(|d| d.line == Some(1)), "{found:?}");
}

#[test]
fn aws_identifiers_not_shaped_as_aws_writes_them_are_reported_at_their_line() {
    let text = AWS
        .replace("eu-west-1", "Ireland")
        .replace("\"111111111111\"", "\"1111-1111-1111\"")
        .replace("{{ email }}", "{{ email ")
        .replace(
            "ps-0123456789abcdef\"",
            "ps-0123456789abcdef\", read = \"ReadOnlyAccess\"",
        );
    let found = errors(&text, &[]);
    let at: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(found.len(), 4, "{at:#?}");
    assert_eq!(at[0].0, Some(5));
    assert!(
        at[0].1.contains("region `Ireland` is not an AWS region"),
        "{at:?}"
    );
    assert_eq!(at[1].0, Some(9));
    assert!(at[1].1.contains("user_name is not a template"), "{at:?}");
    assert_eq!(at[2].0, Some(8));
    assert!(
        at[2]
            .1
            .contains("account `1111-1111-1111` is not an AWS account id"),
        "{at:?}"
    );
    assert_eq!(at[3].0, Some(10));
    assert!(
        at[3]
            .1
            .contains("role `read`: `ReadOnlyAccess` is not a permission set ARN"),
        "{at:?}"
    );
}

#[test]
fn a_permission_set_of_another_instance_is_refused() {
    let text = AWS.replace(
        "permissionSet/ssoins-1234567890abcdef",
        "permissionSet/ssoins-fedcba0987654321",
    );
    let d = only_error(&text, &[]);
    assert_eq!(d.line, Some(10));
    assert!(
        d.message.contains("is a permission set of instance ssoins-fedcba0987654321, not of ssoins-1234567890abcdef"),
        "{d}"
    );
}

#[test]
fn group_mode_maps_roles_to_group_ids_and_uses_no_instance_or_account() {
    let text = AWS
        .replace("user_name", "assign = \"group\"\nuser_name")
        .replace(
            "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef",
            "Admins",
        );
    let found = errors(&text, &[]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connector `aws-prod` assigns to groups, which uses no instance_arn",
            "connector `aws-prod` assigns to groups, which uses no account",
            "connector `aws-prod`: role `admin`: `Admins` is not an Identity Store group id; find it with `aws identitystore get-group-id` (a UUID, sometimes after 10 hex digits and a dash)",
        ]
    );
}

#[test]
fn aws_and_database_keys_stay_with_their_kinds() {
    let d = only_error(&format!("{AWS}password = \"${{PG_PASSWORD}}\"\n"), VARS);
    assert_eq!(
        d.message,
        "connector `aws-prod` is kind = \"aws-sso\", which has no password"
    );
    let d = only_error(&format!("{POSTGRES}region = \"eu-west-1\"\n"), VARS);
    assert_eq!(
        d.message,
        "connector `prod-db` is kind = \"postgres\", which has no region"
    );
}

#[test]
fn connector_limits_have_defaults_and_are_read_as_written() {
    let config = parse(
        "[[connectors]]\nid = \"a\"\nkind = \"log\"\n\n[[connectors]]\nid = \"b\"\nkind = \"log\"\nmax_concurrent = 64\nmax_per_second = 10\n\n[[connectors]]\nid = \"c\"\nkind = \"log\"\nmax_per_second = 0.5\n",
        &[],
    )
    .unwrap();
    let limits: Vec<(u32, Option<f64>)> = config
        .connectors
        .iter()
        .map(|c| (c.max_concurrent, c.max_per_second))
        .collect();
    assert_eq!(
        limits,
        [
            (crate::config::DEFAULT_MAX_CONCURRENT, None),
            (64, Some(10.0)),
            (crate::config::DEFAULT_MAX_CONCURRENT, Some(0.5)),
        ]
    );
}

#[test]
fn connector_limits_that_let_no_call_start_are_errors_at_their_line() {
    let text = "[[connectors]]\nid = \"a\"\nkind = \"log\"\nmax_concurrent = 0\n\n[[connectors]]\nid = \"b\"\nkind = \"log\"\nmax_per_second = 0\n\n[[connectors]]\nid = \"c\"\nkind = \"log\"\nmax_concurrent = 5000\nmax_per_second = -2.5\n";
    let found = errors(text, &[]);
    let summary: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        summary,
        [
            (
                Some(4),
                "connector `a` has max_concurrent = 0; it must be between 1 and 1024"
            ),
            (
                Some(9),
                "connector `b` has max_per_second = 0: no call could start"
            ),
            (
                Some(14),
                "connector `c` has max_concurrent = 5000; it must be between 1 and 1024"
            ),
            (
                Some(15),
                "connector `c` has max_per_second = -2.5: no call could start"
            ),
        ]
    );
    assert!(
        found[0]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("max_concurrent = 8")),
        "{:?}",
        found[0].help
    );
}

#[test]
fn a_key_several_kinds_share_is_reported_once_where_no_kind_takes_it() {
    let found = errors(
        &format!(
            "{POSTGRES}token = \"${{PG_PASSWORD}}\"\ntoken_url = \"https://example.com/token\"\n"
        ),
        VARS,
    );
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "connector `prod-db` is kind = \"postgres\", which has no token",
            "connector `prod-db` is kind = \"postgres\", which has no token_url",
        ]
    );
}
