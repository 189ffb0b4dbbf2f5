//! What the `postgres`, `ldap` and `aws-sso` connectors and the LDAP directory source need,
//! checked without connecting to anything: `gatehouse check` must work with no server
//! reachable.
//! Templates are compiled and CA files read, so a typo shows at its key, not at 3 a.m.

mod github;
mod google;
mod idp;

use std::str::FromStr;

use super::Checker;
use crate::config::{AwsAssign, Config, ConnectorKind, DirectorySource, Secret};
use crate::config::{ConnectorConfig, DEFAULT_MAX_CONCURRENT, MAX_MAX_CONCURRENT, SslMode};
use crate::connector::aws_shapes;
use crate::connector::template::{Escape, PersonTemplate};
use crate::domain::diagnostic::{Diagnostic, Severity};
use crate::domain::policy::Policy;

impl Checker<'_, '_, '_, '_> {
    pub(super) fn postgres(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        let mut host = connector.host.is_some();
        let mut user = connector.user.is_some();
        if let Some(url) = &connector.url {
            match tokio_postgres::Config::from_str(url) {
                Err(e) => self.error(
                    &at("url"),
                    format!("connector `{id}`: url is not a PostgreSQL URL: {e}"),
                    "write it like postgres://gatehouse@db.internal:5432/postgres, or use host, port, user and dbname",
                ),
                Ok(parsed) => {
                    host |= !parsed.get_hosts().is_empty();
                    user |= parsed.get_user().is_some();
                    if parsed.get_password().is_some() {
                        self.error(
                            &at("url"),
                            format!("connector `{id}`: url holds a password"),
                            "urls are shown in messages; move the password to password = \"${PG_PASSWORD}\" or password_file",
                        );
                    }
                }
            }
        }
        if !host {
            self.error(
                &at("host"),
                format!("connector `{id}` (postgres) has no host"),
                "add host = \"db.internal\" (or url = \"postgres://gatehouse@db.internal/postgres\")",
            );
        }
        if !user {
            self.error(
                &at("user"),
                format!("connector `{id}` (postgres) has no user to connect as"),
                "add user = \"gatehouse\", a role that may GRANT the database roles",
            );
        }
        if connector.sslmode == SslMode::Disable && connector.ca.is_some() {
            self.error(
                &at("ca"),
                format!("connector `{id}` has a CA but sslmode = \"disable\""),
                "use sslmode = \"verify-full\" to check the server with that CA, or drop ca_file",
            );
        }
        self.ca(connector.ca.as_deref(), &at("ca"));
        if let Some(login) = &connector.login {
            self.template(login, Escape::Plain, &at("login"), id);
        }
        self.roles(index, connector, false);
        let mut foreign = ldap_keys(connector);
        foreign.extend(aws_keys(connector));
        foreign.extend(github_keys(connector));
        foreign.extend(google_keys(connector));
        foreign.extend(idp::keys(connector));
        self.only_for(index, connector, "postgres", &foreign, PG_LDAP_SECRETS);
    }

    pub(super) fn ldap_connector(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        self.ldap_url(connector.url.as_deref(), connector.starttls, &at("url"), id);
        self.ldap_bind(
            connector.bind_dn.as_deref(),
            connector.bind_password.as_ref(),
            &at("bind_password"),
        );
        self.ca(connector.ca.as_deref(), &at("ca"));
        match (&connector.user_dn, &connector.user_base_dn, &connector.user_filter) {
            (Some(dn), None, None) => self.template(dn, Escape::Dn, &at("user_dn"), id),
            (None, Some(_), Some(filter)) => {
                self.template(filter, Escape::Filter, &at("user_filter"), id)
            }
            _ => self.error(
                &at("user_dn"),
                format!("connector `{id}` (ldap) needs one way to find a person's DN"),
                "give either user_dn = \"uid={{ id }},ou=people,dc=example,dc=com\", or both user_base_dn and user_filter = \"(mail={{ email }})\"",
            ),
        }
        if let Some(attribute) = &connector.member_attribute
            && attribute.trim().is_empty()
        {
            self.error(
                &at("member_attribute"),
                format!("connector `{id}` has an empty member_attribute"),
                "use member (groupOfNames) or uniqueMember (groupOfUniqueNames)",
            );
        }
        self.roles(index, connector, true);
        let mut foreign = postgres_keys(connector);
        foreign.extend(aws_keys(connector));
        foreign.extend(github_keys(connector));
        foreign.extend(google_keys(connector));
        foreign.extend(idp::keys(connector));
        self.only_for(index, connector, "ldap", &foreign, PG_LDAP_SECRETS);
    }

    pub(super) fn aws_sso(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        let shape =
            |this: &mut Self, key: &str, value: &str, check: fn(&str) -> Result<(), String>| {
                if let Err(problem) = check(value) {
                    this.error(
                        &at(key),
                        format!("connector `{id}`: {key} {problem}"),
                        "see docs/connectors/aws-sso.md for where to find each value",
                    );
                }
            };
        let required = |this: &mut Self, key: &str, value: Option<&String>, example: &str| {
            if value.is_none() {
                this.error(
                    &at(key),
                    format!("connector `{id}` (aws-sso) has no {key}"),
                    format!("add {example}"),
                );
            }
        };
        required(
            self,
            "region",
            connector.region.as_ref(),
            "region = \"us-east-1\", where IAM Identity Center is enabled",
        );
        if let Some(region) = &connector.region {
            shape(self, "region", region, aws_shapes::region);
        }
        required(
            self,
            "identity_store_id",
            connector.identity_store_id.as_ref(),
            "identity_store_id = \"d-1234567890\" (aws sso-admin list-instances)",
        );
        if let Some(store) = &connector.identity_store_id {
            shape(
                self,
                "identity_store_id",
                store,
                aws_shapes::identity_store_id,
            );
        }
        if let Some(attribute) = &connector.user_attribute {
            shape(
                self,
                "user_attribute",
                attribute,
                aws_shapes::user_attribute,
            );
        }
        if let Some(user_name) = &connector.user_name {
            self.template(user_name, Escape::Plain, &at("user_name"), id);
        }
        if let Some(url) = &connector.endpoint_url {
            self.url(Some(url), &at("endpoint_url"));
        }
        if connector
            .profile
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            self.error(
                &at("profile"),
                format!("connector `{id}` has an empty profile"),
                "name a profile of ~/.aws/config, or leave profile out to use the standard credential chain",
            );
        }
        if connector.roles.is_empty() {
            self.error(
                &at("roles"),
                format!("connector `{id}` (aws-sso) has no roles table"),
                match connector.assign.unwrap_or_default() {
                    AwsAssign::Account => "map each role id to its permission set: roles = { read = \"arn:aws:sso:::permissionSet/ssoins-…/ps-…\" }",
                    AwsAssign::Group => "map each role id to its Identity Store group id: roles = { admin = \"9a67a5c4-…\" }",
                },
            );
        }
        match connector.assign.unwrap_or_default() {
            AwsAssign::Account => {
                required(
                    self,
                    "instance_arn",
                    connector.instance_arn.as_ref(),
                    "instance_arn = \"arn:aws:sso:::instance/ssoins-…\" (aws sso-admin list-instances)",
                );
                required(
                    self,
                    "account",
                    connector.account.as_ref(),
                    "account = \"111111111111\", the account the permission sets are assigned on",
                );
                let instance = connector
                    .instance_arn
                    .as_deref()
                    .map(aws_shapes::instance_arn);
                if let Some(Err(problem)) = &instance {
                    self.error(
                        &at("instance_arn"),
                        format!("connector `{id}`: instance_arn {problem}"),
                        "see docs/connectors/aws-sso.md for where to find each value",
                    );
                }
                if let Some(account) = &connector.account {
                    shape(self, "account", account, aws_shapes::account);
                }
                for (role, arn) in &connector.roles {
                    match aws_shapes::permission_set_arn(arn) {
                        Err(problem) => self.error(
                            &at(&format!("roles.{role}")),
                            format!("connector `{id}`: role `{role}`: {problem}"),
                            "each role maps to the ARN of a permission set of the connector's instance",
                        ),
                        Ok(owner) => {
                            if let Some(Ok(instance)) = &instance && &owner != instance {
                                self.error(
                                    &at(&format!("roles.{role}")),
                                    format!("connector `{id}`: role `{role}` is a permission set of instance {owner}, not of {instance} (instance_arn)"),
                                    "use a permission set of the instance in instance_arn, or fix instance_arn",
                                );
                            }
                        }
                    }
                }
            }
            AwsAssign::Group => {
                for (key, set) in [
                    ("instance_arn", connector.instance_arn.is_some()),
                    ("account", connector.account.is_some()),
                ] {
                    if set {
                        self.error(
                            &at(key),
                            format!("connector `{id}` assigns to groups, which uses no {key}"),
                            format!("remove {key}, or drop assign = \"group\" to assign permission sets on an account"),
                        );
                    }
                }
                for (role, group) in &connector.roles {
                    if let Err(problem) = aws_shapes::group_id(group) {
                        self.error(
                            &at(&format!("roles.{role}")),
                            format!("connector `{id}`: role `{role}`: {problem}"),
                            "with assign = \"group\" each role maps to an Identity Store group id",
                        );
                    }
                }
            }
        }
        let mut foreign = postgres_keys(connector);
        foreign.extend(ldap_keys(connector));
        foreign.extend(github_keys(connector));
        foreign.extend(google_keys(connector));
        foreign.extend(idp::keys(connector));
        for (set, key) in [
            (connector.url.is_some(), "url"),
            (connector.ca.is_some(), "ca"),
        ] {
            if set {
                foreign.push(key);
            }
        }
        self.only_for(
            index,
            connector,
            "aws-sso",
            &foreign,
            "remove them; AWS credentials come from the standard chain (environment, shared files, web identity, instance metadata)",
        );
    }

    /// `max_concurrent` and `max_per_second`, which every kind has: a limit that lets no call
    /// start would leave grants and revocations queued for ever.
    pub(super) fn limits(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        let most = connector.max_concurrent;
        if !(1..=MAX_MAX_CONCURRENT).contains(&most) {
            self.error(
                &at("max_concurrent"),
                format!(
                    "connector `{id}` has max_concurrent = {most}; it must be between 1 and {MAX_MAX_CONCURRENT}"
                ),
                format!(
                    "give how many calls the target takes at once, e.g. max_concurrent = 8, or leave it out for {DEFAULT_MAX_CONCURRENT}"
                ),
            );
        }
        if let Some(rate) = connector.max_per_second
            && !(rate.is_finite() && rate > 0.0)
        {
            self.error(
                &at("max_per_second"),
                format!("connector `{id}` has max_per_second = {rate}: no call could start"),
                "give how many calls may start per second, e.g. max_per_second = 10 (or 0.5 for one every 2 s), or leave it out for no limit",
            );
        }
    }

    pub(super) fn directory(&mut self, config: &Config) {
        let directory = &config.directory;
        if directory.source != DirectorySource::Ldap {
            if directory.url.is_some() || directory.base_dn.is_some() {
                let warning = self
                    .origin
                    .warning(
                        self.spans.of("directory.source"),
                        "[directory] has LDAP settings but source is \"file\": LDAP is not read",
                    )
                    .with_help("add source = \"ldap\" to read people from LDAP");
                self.found.push(warning);
            }
            return;
        }
        self.ldap_url(
            directory.url.as_deref(),
            directory.starttls,
            "directory.url",
            "directory",
        );
        self.ldap_bind(
            directory.bind_dn.as_deref(),
            directory.bind_password.as_ref(),
            "directory.bind_password",
        );
        self.ca(directory.ca.as_deref(), "directory.ca");
        if directory
            .base_dn
            .as_deref()
            .is_none_or(|b| b.trim().is_empty())
        {
            self.error(
                "directory.base_dn",
                "directory.base_dn is required when directory.source = \"ldap\"",
                "add base_dn = \"ou=people,dc=example,dc=com\", where the people are",
            );
        }
        for (key, value) in [
            ("directory.sync_every", directory.sync_every),
            ("directory.timeout", directory.timeout),
        ] {
            if value.as_secs() == 0 {
                self.error(
                    key,
                    format!("{key} is zero"),
                    "give it a duration, e.g. \"5m\"",
                );
            }
        }
        if directory.max_leavers_percent > 100 {
            self.error(
                "directory.max_leavers_percent",
                format!(
                    "directory.max_leavers_percent = {} is not a share of the directory",
                    directory.max_leavers_percent
                ),
                "give a percentage from 1 to 100 (10 unless set), or 0 for no limit",
            );
        }
        for (name, attribute) in &directory.attributes.accounts {
            let path = format!("directory.attributes.accounts.{name}");
            if !crate::domain::directory::is_account_name(name) {
                self.error(
                    &path,
                    format!("[directory.attributes] accounts names an account `{name}`"),
                    "name accounts with lowercase letters, digits and _ (github, okta_id), as templates write them: {{ accounts.github }}",
                );
            } else if attribute.trim().is_empty() {
                self.error(
                    &path,
                    format!("[directory.attributes] accounts.{name} names no attribute"),
                    "name the LDAP attribute that holds the account, e.g. accounts = { github = \"githubLogin\" }",
                );
            }
        }
        for (key, filter) in [
            ("directory.filter", &directory.filter),
            ("directory.group_filter", &directory.group_filter),
        ] {
            let balanced = filter.starts_with('(')
                && filter.chars().filter(|c| *c == '(').count()
                    == filter.chars().filter(|c| *c == ')').count();
            if !balanced {
                self.error(
                    key,
                    format!("{key} `{filter}` is not an LDAP filter"),
                    "write it in parentheses, e.g. \"(objectClass=inetOrgPerson)\"",
                );
            }
        }
    }

    fn ldap_url(&mut self, url: Option<&str>, starttls: bool, path: &str, owner: &str) {
        match url {
            None => self.error(
                path,
                format!("{owner} reads LDAP but has no url"),
                "add url = \"ldaps://ldap.example.com\" (or ldap:// with starttls = true)",
            ),
            Some(url) if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) => self
                .error(
                    path,
                    format!("{path} `{url}` is not an ldap:// or ldaps:// URL"),
                    "write it like ldaps://ldap.example.com:636",
                ),
            Some(url) if starttls && url.starts_with("ldaps://") => self.error(
                path,
                format!("{path} is ldaps:// and starttls is on: the connection is TLS already"),
                "use ldap:// with starttls = true, or ldaps:// without starttls",
            ),
            Some(_) => {}
        }
    }

    fn ldap_bind(&mut self, dn: Option<&str>, password: Option<&Secret>, path: &str) {
        if dn.is_some() && password.is_none_or(Secret::is_empty) {
            self.error(
                path,
                format!("{path} is required with a bind_dn"),
                "a bind with an empty password is anonymous; write bind_password = \"${LDAP_BIND_PASSWORD}\" or bind_password_file = \"/run/secrets/…\"",
            );
        }
    }

    fn ca(&mut self, pem: Option<&str>, path: &str) {
        if let Some(Err(problem)) = pem.map(crate::tls::certificates) {
            self.error(
                path,
                format!("{path}: {problem}"),
                "point ca_file at the PEM file of the CA that signed the server's certificate",
            );
        }
    }

    fn template(&mut self, source: &str, escape: Escape, path: &str, id: &str) {
        match PersonTemplate::parse(source, escape).map(|t| t.check_budget()) {
            Err(e) => self.error(
                path,
                format!("connector `{id}`: {path} is not a template: {e}"),
                "templates see id, email, slack and discord, e.g. \"{{ email | split(\\\"@\\\") | first }}\"",
            ),
            Ok(Err(e)) => self.error(
                path,
                format!("connector `{id}`: {path}: {e}"),
                "a template makes one short name from id, email, slack or discord, e.g. \"{{ email | split(\\\"@\\\") | first }}\"",
            ),
            Ok(Ok(())) => {}
        }
    }

    fn roles(&mut self, index: usize, connector: &ConnectorConfig, required: bool) {
        let path = format!("connectors.{index}.roles");
        let id = connector.id.as_str();
        if required && connector.roles.is_empty() {
            self.error(
                &path,
                format!("connector `{id}` (ldap) has no roles table"),
                "map each role id to its group: roles = { member = \"cn=vpn,ou=groups,dc=example,dc=com\" }",
            );
        }
        for (role, target) in &connector.roles {
            if target.trim().is_empty() {
                self.error(
                    &format!("{path}.{role}"),
                    format!("connector `{id}` maps role `{role}` to nothing"),
                    "name the database role or group DN the role stands for",
                );
            }
        }
    }

    /// Keys of the other kind are refused, so that `bind_dn` on a postgres connector (say)
    /// does not look like it does something.
    fn only_for(
        &mut self,
        index: usize,
        connector: &ConnectorConfig,
        kind: &str,
        foreign: &[&str],
        secrets_help: &str,
    ) {
        let id = connector.id.as_str();
        // Kinds share some key names (`token`, `private_key`, `token_url`, `api_url`): a key is
        // foreign only to a kind that does not take it, and reported once.
        let mut reported = Vec::new();
        for key in foreign {
            if accepts(kind, key) || reported.contains(key) {
                continue;
            }
            reported.push(key);
            self.error(
                &format!("connectors.{index}.{key}"),
                format!("connector `{id}` is kind = \"{kind}\", which has no {key}"),
                format!("remove {key}, or check the connector's kind"),
            );
        }
        if connector.secret.is_some() || connector.command.is_some() || !connector.env.is_empty() {
            self.error(
                &format!("connectors.{index}"),
                format!("connector `{id}` is kind = \"{kind}\" but has secret, command or env, which it does not use"),
                secrets_help,
            );
        }
    }
}

/// Whether connectors of `kind` take `key`, among the key names several kinds share.
fn accepts(kind: &str, key: &str) -> bool {
    let shared: &[&str] = match kind {
        "github" => &["api_url", "token", "private_key", "login"],
        "google" => &["api_url", "token_url", "login"],
        "okta" => &[
            "token",
            "client_id",
            "private_key",
            "token_url",
            "user_name",
            "user_attribute",
        ],
        "entra" => &[
            "client_id",
            "private_key",
            "token_url",
            "user_name",
            "user_attribute",
        ],
        _ => &[],
    };
    shared.contains(&key)
}

const PG_LDAP_SECRETS: &str = "remove them; secrets of this kind are password or bind_password";

fn aws_keys(c: &ConnectorConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for (set, key) in [
        (c.region.is_some(), "region"),
        (c.instance_arn.is_some(), "instance_arn"),
        (c.identity_store_id.is_some(), "identity_store_id"),
        (c.account.is_some(), "account"),
        (c.user_name.is_some(), "user_name"),
        (c.user_attribute.is_some(), "user_attribute"),
        (c.assign.is_some(), "assign"),
        (c.endpoint_url.is_some(), "endpoint_url"),
        (c.profile.is_some(), "profile"),
    ] {
        if set {
            keys.push(key);
        }
    }
    keys
}

fn github_keys(c: &ConnectorConfig) -> Vec<&'static str> {
    [
        (c.api_url.is_some(), "api_url"),
        (c.token.is_some(), "token"),
        (c.app_id.is_some(), "app_id"),
        (c.installation_id.is_some(), "installation_id"),
        (c.private_key.is_some(), "private_key"),
    ]
    .into_iter()
    .filter_map(|(set, key)| set.then_some(key))
    .collect()
}

fn google_keys(c: &ConnectorConfig) -> Vec<&'static str> {
    [
        (c.credentials.is_some(), "credentials"),
        (c.subject.is_some(), "subject"),
        (c.token_url.is_some(), "token_url"),
    ]
    .into_iter()
    .filter_map(|(set, key)| set.then_some(key))
    .collect()
}

fn ldap_keys(c: &ConnectorConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for (set, key) in [
        (c.starttls, "starttls"),
        (c.bind_dn.is_some(), "bind_dn"),
        (c.bind_password.is_some(), "bind_password"),
        (c.member_attribute.is_some(), "member_attribute"),
        (c.user_dn.is_some(), "user_dn"),
        (c.user_base_dn.is_some(), "user_base_dn"),
        (c.user_filter.is_some(), "user_filter"),
    ] {
        if set {
            keys.push(key);
        }
    }
    keys
}

fn postgres_keys(c: &ConnectorConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for (set, key) in [
        (c.host.is_some(), "host"),
        (c.port.is_some(), "port"),
        (c.user.is_some(), "user"),
        (c.password.is_some(), "password"),
        (c.dbname.is_some(), "dbname"),
        (c.login.is_some(), "login"),
        (c.valid_until, "valid_until"),
    ] {
        if set {
            keys.push(key);
        }
    }
    keys
}

/// Roles of the policy that a `postgres`, `ldap` or `aws-sso` connector with a `roles` table cannot
/// provision, because the table does not name them: each would fail at its first grant.
/// Reported against the policy file, which names the role.
pub fn roles_without_target(
    config: &Config,
    policy: &Policy,
    policy_file: &str,
) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for resource in &policy.resources {
        let Some(connector) = resource
            .connector
            .as_ref()
            .and_then(|id| config.connectors.iter().find(|c| &c.id == id))
        else {
            continue;
        };
        let mapped = matches!(
            connector.kind,
            ConnectorKind::Postgres
                | ConnectorKind::Ldap
                | ConnectorKind::AwsSso
                | ConnectorKind::Github
                | ConnectorKind::Google
                | ConnectorKind::Okta
                | ConnectorKind::Entra
        );
        if !mapped || (connector.roles.is_empty() && connector.kind == ConnectorKind::Postgres) {
            continue;
        }
        for role in &resource.roles {
            if !connector.roles.contains_key(&role.id) {
                found.push(Diagnostic {
                    severity: Severity::Error,
                    file: policy_file.to_owned(),
                    line: None,
                    message: format!(
                        "resource `{}` role `{}` is provisioned by connector `{}`, whose roles table in gatehouse.toml does not name it",
                        resource.id, role.id, connector.id
                    ),
                    help: Some(format!(
                        "add {} = \"…\" to the roles of connector `{}` (the {} it stands for)",
                        role.id,
                        connector.id,
                        match (connector.kind, connector.assign.unwrap_or_default()) {
                            (ConnectorKind::Ldap, _) => "group DN",
                            (ConnectorKind::AwsSso, AwsAssign::Account) => "permission set ARN",
                            (ConnectorKind::AwsSso, AwsAssign::Group) => "Identity Store group id",
                            (ConnectorKind::Github, _) => "team or repository permission",
                            (ConnectorKind::Google, _) => "group's email address",
                            (ConnectorKind::Okta, _) => "Okta group id",
                            (ConnectorKind::Entra, _) => "Entra group object id",
                            _ => "database role",
                        }
                    )),
                });
            }
        }
    }
    found
}
