//! The identity-provider connectors (`okta`), as `gatehouse check` sees them: every key
//! checked without connecting, a private key read and parsed, at the key to fix.

use super::{aws_keys, ldap_keys, postgres_keys};
use crate::config::ConnectorConfig;
use crate::config::check::Checker;
use crate::connector::jwt::RsaKey;
use crate::connector::okta;
use crate::connector::template::Escape;

impl Checker<'_, '_, '_, '_> {
    pub(in crate::config::check) fn okta(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        match &connector.org_url {
            None => self.error(
                &at("org_url"),
                format!("connector `{id}` (okta) has no org_url"),
                "add org_url = \"https://example.okta.com\", the address of your Okta org",
            ),
            Some(url) => {
                if let Err(problem) = okta::base_url(url) {
                    self.error(
                        &at("org_url"),
                        format!("connector `{id}`: org_url {problem}"),
                        "write it like https://example.okta.com",
                    );
                }
            }
        }
        if let Some(user_name) = &connector.user_name {
            self.template(user_name, Escape::Plain, &at("user_name"), id);
        }
        if let Err(problem) = okta::UserAttribute::parse(connector.user_attribute.as_deref()) {
            self.error(
                &at("user_attribute"),
                format!("connector `{id}`: user_attribute {problem}"),
                "login is unique; email finds the user by their primary email",
            );
        }
        if connector.roles.is_empty() {
            self.error(
                &at("roles"),
                format!("connector `{id}` (okta) has no roles table"),
                "map each role id to its Okta group id: roles = { admin = \"00g1emaKYZTWRYYRRTSK\" }",
            );
        }
        for (role, group) in &connector.roles {
            if let Err(problem) = okta::group_id(group) {
                self.error(
                    &at(&format!("roles.{role}")),
                    format!("connector `{id}`: role `{role}`: {problem}"),
                    "each role maps to the id of an Okta group",
                );
            }
        }
        let app = connector.client_id.is_some() || connector.private_key.is_some();
        match (&connector.token, app) {
            (None, false) => self.error(
                &at("token"),
                format!("connector `{id}` (okta) has no credentials"),
                "add token_file = \"/run/secrets/okta-token\" (an API token), or client_id and private_key_file (an OAuth 2.0 service app)",
            ),
            (Some(_), true) => self.error(
                &at("token"),
                format!("connector `{id}` has both an API token and a service app"),
                "keep token, or client_id and private_key, not both",
            ),
            (Some(token), false) if token.expose().trim().is_empty() => self.error(
                &at("token"),
                format!("connector `{id}` has an empty token"),
                "give the API token, e.g. token = \"${OKTA_API_TOKEN}\"",
            ),
            (Some(_), false) => {
                for (set, key) in [
                    (connector.key_id.is_some(), "key_id"),
                    (connector.token_url.is_some(), "token_url"),
                ] {
                    if set {
                        self.error(
                            &at(key),
                            format!("connector `{id}` signs in with an API token, which uses no {key}"),
                            format!("remove {key}, or sign in as a service app (client_id, private_key_file)"),
                        );
                    }
                }
            }
            (None, true) => self.service_app(index, connector),
        }
        let mut foreign = postgres_keys(connector);
        foreign.extend(ldap_keys(connector));
        foreign.extend(
            aws_keys(connector)
                .into_iter()
                .filter(|key| !matches!(*key, "user_name" | "user_attribute")),
        );
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
            "okta",
            &foreign,
            "remove them; an okta connector's secrets are token or private_key",
        );
    }

    /// `client_id`, `private_key` (parsed), `key_id` and `token_url` of a service app.
    fn service_app(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        match &connector.client_id {
            None => self.error(
                &at("client_id"),
                format!("connector `{id}` has a private_key but no client_id"),
                "add client_id = \"0oa…\", the service app's client id",
            ),
            Some(client) if client.trim().is_empty() => self.error(
                &at("client_id"),
                format!("connector `{id}` has an empty client_id"),
                "give the service app's client id",
            ),
            Some(_) => {}
        }
        match &connector.private_key {
            None => self.error(
                &at("private_key"),
                format!("connector `{id}` has a client_id but no private_key"),
                "add private_key_file = \"/run/secrets/okta-service-app.pem\", the key whose public half the app has",
            ),
            Some(pem) => {
                if let Err(problem) = RsaKey::from_pem(pem.expose()) {
                    self.error(
                        &at("private_key"),
                        format!("connector `{id}`: private_key {problem}"),
                        "point private_key_file at the PEM file of the service app's RSA key",
                    );
                }
            }
        }
        if let Some(url) = &connector.token_url
            && let Err(problem) = okta::base_url(url)
        {
            self.error(
                &at("token_url"),
                format!("connector `{id}`: token_url {problem}"),
                "leave token_url out to use the org's own /oauth2/v1/token",
            );
        }
    }
}

/// The keys of the identity-provider connectors, which other kinds refuse.
pub(super) fn keys(c: &ConnectorConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for (set, key) in [
        (c.org_url.is_some(), "org_url"),
        (c.token.is_some(), "token"),
        (c.client_id.is_some(), "client_id"),
        (c.private_key.is_some(), "private_key"),
        (c.key_id.is_some(), "key_id"),
        (c.token_url.is_some(), "token_url"),
    ] {
        if set {
            keys.push(key);
        }
    }
    keys
}
