//! What a `github` connector needs, checked offline: its roles (teams and repositories),
//! one way to authenticate (a token, or a GitHub App whose key is read and tried), the login
//! template and the API's URL.

use super::{Checker, aws_keys, google_keys, ldap_keys, postgres_keys};
use crate::config::ConnectorConfig;
use crate::connector::github::{api_root, target};
use crate::connector::jwt::RsaKey;
use crate::connector::template::Escape;

impl Checker<'_, '_, '_, '_> {
    pub(in crate::config::check) fn github(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        if connector.roles.is_empty() {
            self.error(
                &at("roles"),
                format!("connector `{id}` (github) has no roles table"),
                "map each role id to a team or a repository permission: roles = { member = \"@acme/platform\", deploy = \"acme/api:push\" }",
            );
        }
        for (role, value) in &connector.roles {
            if let Err(problem) = target::parse(value) {
                self.error(
                    &at(&format!("roles.{role}")),
                    format!("connector `{id}`: role `{role}`: {problem}"),
                    "see docs/connectors/github.md",
                );
            }
        }
        if let Some(url) = &connector.api_url
            && let Err(problem) = api_root(url)
        {
            self.error(
                &at("api_url"),
                format!("connector `{id}`: api_url {problem}"),
                "leave api_url out for github.com; GitHub Enterprise Server: https://github.example.com/api/v3",
            );
        }
        if let Some(login) = &connector.login {
            self.template(login, Escape::Plain, &at("login"), id);
        }
        self.github_auth(index, connector);
        let mut foreign = postgres_keys(connector);
        foreign.retain(|key| *key != "login");
        foreign.extend(ldap_keys(connector));
        foreign.extend(aws_keys(connector));
        foreign.extend(google_keys(connector));
        foreign.extend(super::idp::keys(connector));
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
            "github",
            &foreign,
            "remove them; a github connector's secrets are token or private_key",
        );
    }

    /// A token, or all three of a GitHub App's keys; the App's key must sign RS256.
    fn github_auth(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        let app = [
            ("app_id", connector.app_id.is_some()),
            ("installation_id", connector.installation_id.is_some()),
            ("private_key", connector.private_key.is_some()),
        ];
        if let Some(token) = &connector.token {
            if token.expose().trim().is_empty() {
                self.error(
                    &at("token"),
                    format!("connector `{id}` has an empty token"),
                    "give a fine-grained token: token = \"${GITHUB_TOKEN}\" or token_file",
                );
            }
            for (key, _) in app.iter().filter(|(_, set)| *set) {
                self.error(
                    &at(key),
                    format!("connector `{id}` has a token and {key}"),
                    "use a token or a GitHub App (app_id, installation_id, private_key), not both",
                );
            }
            return;
        }
        if app.iter().all(|(_, set)| !set) {
            self.error(
                &at("token"),
                format!("connector `{id}` (github) has no credentials"),
                "add a GitHub App's app_id, installation_id and private_key_file, or a fine-grained token = \"${GITHUB_TOKEN}\"",
            );
            return;
        }
        for (key, set) in app {
            if !set {
                self.error(
                    &at("app_id"),
                    format!("connector `{id}` authenticates as a GitHub App but has no {key}"),
                    "a GitHub App needs app_id, installation_id and private_key_file (see docs/connectors/github.md)",
                );
            }
        }
        if let Some(app_id) = &connector.app_id
            && (app_id.is_empty() || app_id.contains(char::is_whitespace))
        {
            self.error(
                &at("app_id"),
                format!("connector `{id}`: app_id `{app_id}` is not a GitHub App id"),
                "copy the App ID (a number) or Client ID (Iv…) from the App's settings page",
            );
        }
        if let Some(installation) = &connector.installation_id
            && (installation.is_empty() || !installation.bytes().all(|b| b.is_ascii_digit()))
        {
            self.error(
                &at("installation_id"),
                format!("connector `{id}`: installation_id `{installation}` is not a number"),
                "copy the number at the end of the installation's URL (github.com/organizations/…/settings/installations/12345678)",
            );
        }
        if let Some(key) = &connector.private_key
            && let Err(problem) = RsaKey::from_pem(key.expose())
        {
            self.error(
                &at("private_key"),
                format!("connector `{id}`: private_key {problem}"),
                "generate a private key on the App's settings page and point private_key_file at the .pem file",
            );
        }
    }
}
