//! The identity-provider connectors (`okta`, `entra`), as `gatehouse check` sees them: every
//! key checked without connecting, keys and certificates read and parsed, at the key to fix.

use super::{aws_keys, github_keys, google_keys, ldap_keys, postgres_keys};
use crate::config::ConnectorConfig;
use crate::config::check::Checker;
use crate::connector::jwt::{Certificate, RsaKey};
use crate::connector::template::Escape;
use crate::connector::{entra, okta};

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
        let mut foreign = other_kinds_keys(connector);
        foreign.extend(entra_keys(connector));
        self.only_for(
            index,
            connector,
            "okta",
            &foreign,
            "remove them; an okta connector's secrets are token or private_key",
        );
    }

    pub(in crate::config::check) fn entra(&mut self, index: usize, connector: &ConnectorConfig) {
        let at = |key: &str| format!("connectors.{index}.{key}");
        let id = connector.id.as_str();
        match &connector.tenant_id {
            None => self.error(
                &at("tenant_id"),
                format!("connector `{id}` (entra) has no tenant_id"),
                "add tenant_id = \"…\", the Directory (tenant) ID of the Entra admin center's Overview page",
            ),
            Some(tenant) => {
                if let Err(problem) = entra::tenant_id(tenant) {
                    self.error(
                        &at("tenant_id"),
                        format!("connector `{id}`: tenant_id {problem}"),
                        "see docs/connectors/entra.md for where to find each value",
                    );
                }
            }
        }
        match &connector.client_id {
            None => self.error(
                &at("client_id"),
                format!("connector `{id}` (entra) has no client_id"),
                "add client_id = \"…\", the app registration's Application (client) ID",
            ),
            Some(client) if client.trim().is_empty() => self.error(
                &at("client_id"),
                format!("connector `{id}` has an empty client_id"),
                "give the app registration's Application (client) ID",
            ),
            Some(_) => {}
        }
        if let Some(user_name) = &connector.user_name {
            self.template(user_name, Escape::Plain, &at("user_name"), id);
        }
        if let Err(problem) = entra::UserAttribute::parse(connector.user_attribute.as_deref()) {
            self.error(
                &at("user_attribute"),
                format!("connector `{id}`: user_attribute {problem}"),
                "userPrincipalName is unique; mail finds the user by their email address",
            );
        }
        if connector.roles.is_empty() {
            self.error(
                &at("roles"),
                format!("connector `{id}` (entra) has no roles table"),
                "map each role id to its group's object id: roles = { admin = \"02bd9fd6-8f93-4758-87c3-1fb73740a315\" }",
            );
        }
        for (role, group) in &connector.roles {
            if let Err(problem) = entra::group_id(group) {
                self.error(
                    &at(&format!("roles.{role}")),
                    format!("connector `{id}`: role `{role}`: {problem}"),
                    "each role maps to the object id of an Entra group",
                );
            }
        }
        let certificate = connector.certificate.is_some() || connector.private_key.is_some();
        match (&connector.client_secret, certificate) {
            (None, false) => self.error(
                &at("client_secret"),
                format!("connector `{id}` (entra) has no credentials"),
                "add client_secret_file = \"/run/secrets/entra-secret\", or certificate_file and private_key_file",
            ),
            (Some(_), true) => self.error(
                &at("client_secret"),
                format!("connector `{id}` has both a client secret and a certificate"),
                "keep client_secret, or certificate and private_key, not both",
            ),
            (Some(secret), false) if secret.expose().trim().is_empty() => self.error(
                &at("client_secret"),
                format!("connector `{id}` has an empty client_secret"),
                "give the app's client secret, e.g. client_secret = \"${ENTRA_CLIENT_SECRET}\"",
            ),
            (Some(_), false) => {}
            (None, true) => {
                match &connector.certificate {
                    None => self.error(
                        &at("private_key"),
                        format!("connector `{id}` has a private_key but no certificate"),
                        "add certificate_file = \"/etc/gatehouse/entra.crt\", the certificate uploaded to the app registration",
                    ),
                    Some(pem) => {
                        if let Err(problem) = Certificate::from_pem(pem) {
                            self.error(
                                &at("certificate"),
                                format!("connector `{id}`: certificate {problem}"),
                                "point certificate_file at the PEM file of the certificate uploaded to the app registration",
                            );
                        }
                    }
                }
                match &connector.private_key {
                    None => self.error(
                        &at("certificate"),
                        format!("connector `{id}` has a certificate but no private_key"),
                        "add private_key_file = \"/run/secrets/entra.key\", the certificate's RSA key",
                    ),
                    Some(pem) => {
                        if let Err(problem) = RsaKey::from_pem(pem.expose()) {
                            self.error(
                                &at("private_key"),
                                format!("connector `{id}`: private_key {problem}"),
                                "point private_key_file at the PEM file of the certificate's RSA key",
                            );
                        }
                    }
                }
            }
        }
        for key in ["graph_url", "token_url"] {
            let value = match key {
                "graph_url" => &connector.graph_url,
                _ => &connector.token_url,
            };
            if let Some(url) = value
                && let Err(problem) = okta::base_url(url)
            {
                self.error(
                    &at(key),
                    format!("connector `{id}`: {key} {problem}"),
                    format!("leave {key} out to use Microsoft's own"),
                );
            }
        }
        let mut foreign = other_kinds_keys(connector);
        for (set, key) in [
            (connector.org_url.is_some(), "org_url"),
            (connector.token.is_some(), "token"),
            (connector.key_id.is_some(), "key_id"),
        ] {
            if set {
                foreign.push(key);
            }
        }
        self.only_for(
            index,
            connector,
            "entra",
            &foreign,
            "remove them; an entra connector's secrets are client_secret or private_key",
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
    keys.extend(entra_keys(c));
    keys
}

/// The keys only `entra` has.
fn entra_keys(c: &ConnectorConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for (set, key) in [
        (c.tenant_id.is_some(), "tenant_id"),
        (c.client_secret.is_some(), "client_secret"),
        (c.certificate.is_some(), "certificate"),
        (c.graph_url.is_some(), "graph_url"),
    ] {
        if set {
            keys.push(key);
        }
    }
    keys
}

/// The keys of the `postgres`, `ldap` and `aws-sso` kinds that an identity-provider
/// connector has no use for (it shares `user_name` and `user_attribute` with `aws-sso`).
fn other_kinds_keys(c: &ConnectorConfig) -> Vec<&'static str> {
    let mut foreign = postgres_keys(c);
    foreign.extend(ldap_keys(c));
    foreign.extend(
        aws_keys(c)
            .into_iter()
            .filter(|key| !matches!(*key, "user_name" | "user_attribute")),
    );
    foreign.extend(github_keys(c));
    foreign.extend(google_keys(c));
    for (set, key) in [(c.url.is_some(), "url"), (c.ca.is_some(), "ca")] {
        if set {
            foreign.push(key);
        }
    }
    foreign
}
