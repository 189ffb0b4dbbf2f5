//! What a `google` connector needs, checked offline: the service account's key (read and
//! tried for RS256), the admin it acts as, its groups, the login template and its URLs.

use super::{Checker, aws_keys, github_keys, ldap_keys, postgres_keys};
use crate::config::ConnectorConfig;
use crate::connector::google::ServiceAccountKey;
use crate::connector::template::Escape;

impl Checker<'_, '_, '_, '_> {
    pub(in crate::config::check) fn google(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        match &connector.credentials {
            None => self.error(
                &at("credentials"),
                format!("connector `{id}` (google) has no credentials"),
                "add credentials_file = \"/etc/gatehouse/google-service-account.json\", the service account's JSON key",
            ),
            Some(json) => {
                if let Err(problem) = ServiceAccountKey::parse(json.expose()) {
                    self.error(
                        &at("credentials"),
                        format!("connector `{id}`: credentials {problem}"),
                        "give the JSON key of a service account with domain-wide delegation (docs/connectors/google.md)",
                    );
                }
            }
        }
        match connector.subject.as_deref().map(str::trim) {
            None => self.error(
                &at("subject"),
                format!("connector `{id}` (google) has no subject"),
                "add subject = \"gatehouse-admin@example.com\", the admin the service account acts as",
            ),
            Some(subject) if !subject.contains('@') => self.error(
                &at("subject"),
                format!("connector `{id}`: subject `{subject}` is not an email address"),
                "name the admin user the service account acts as: subject = \"gatehouse-admin@example.com\"",
            ),
            Some(_) => {}
        }
        if connector.roles.is_empty() {
            self.error(
                &at("roles"),
                format!("connector `{id}` (google) has no roles table"),
                "map each role id to a group's email address: roles = { member = \"oncall@example.com\" }",
            );
        }
        for (role, group) in &connector.roles {
            let group = group.trim();
            if group.is_empty() || group.contains(char::is_whitespace) || group.contains('/') {
                self.error(
                    &at(&format!("roles.{role}")),
                    format!("connector `{id}`: role `{role}`: `{group}` is not a group key"),
                    "give the group's email address (oncall@example.com) or its id",
                );
            }
        }
        for key in ["api_url", "token_url"] {
            let value = match key {
                "api_url" => connector.api_url.as_deref(),
                _ => connector.token_url.as_deref(),
            };
            self.url(value, &at(key));
        }
        if let Some(login) = &connector.login {
            self.template(login, Escape::Plain, &at("login"), id);
        }
        let mut foreign = postgres_keys(connector);
        foreign.retain(|key| *key != "login");
        foreign.extend(ldap_keys(connector));
        foreign.extend(aws_keys(connector));
        foreign.extend(
            github_keys(connector)
                .into_iter()
                .filter(|k| *k != "api_url"),
        );
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
            "google",
            &foreign,
            "remove them; a google connector's secret is credentials",
        );
    }
}
