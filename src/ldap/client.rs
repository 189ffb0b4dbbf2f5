//! Reaching an LDAP server: connect (`ldap://`, `ldap://` + StartTLS, or `ldaps://`), bind,
//! and tell a failure worth retrying from one that is not. Shared by the `ldap` connector and
//! the LDAP directory source.

use std::time::Duration as StdDuration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};

use crate::config::Secret;

/// Where and as whom to connect.
#[derive(Clone, Debug)]
pub struct LdapServer {
    pub url: String,
    pub starttls: bool,
    /// PEM text of an extra CA to trust.
    pub ca: Option<String>,
    pub bind_dn: Option<String>,
    pub bind_password: Option<Secret>,
    pub timeout: StdDuration,
}

/// Why talking to the server failed, and whether trying later may help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LdapFailure {
    pub transient: bool,
    pub message: String,
}

impl LdapFailure {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            transient: false,
            message: message.into(),
        }
    }

    /// `error` while doing `what`, classified.
    pub fn from_ldap(what: &str, error: LdapError) -> Self {
        let transient = match &error {
            LdapError::LdapResult { result } => is_transient_code(result.rc),
            LdapError::UrlParsing { .. }
            | LdapError::UnknownScheme(_)
            | LdapError::FilterParsing
            | LdapError::Rustls { .. }
            | LdapError::DNSName { .. } => false,
            // The server's certificate refused: retrying cannot help until ca_file changes.
            other => !crate::tls::is_refused_certificate(other),
        };
        Self {
            transient,
            message: format!("{what}: {error}"),
        }
    }
}

/// busy, unavailable, timeLimitExceeded, adminLimitExceeded, other (often a server hiccup),
/// and invalidCredentials: a password being rotated is refused until the next reload brings
/// the new `bind_password_file`, and giving up then would leave access in place.
pub fn is_transient_code(rc: u32) -> bool {
    matches!(rc, 3 | 11 | 49 | 51 | 52 | 80)
}

impl LdapServer {
    /// A connection, bound as `bind_dn` when one is configured (anonymous otherwise).
    pub async fn connect(&self) -> Result<Ldap, LdapFailure> {
        let secure = self.url.starts_with("ldaps://") || self.starttls;
        if self.starttls && self.url.starts_with("ldaps://") {
            return Err(LdapFailure::permanent(format!(
                "{} is already TLS; remove starttls = true or use ldap://",
                self.url
            )));
        }
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls);
        if secure {
            let tls = crate::tls::verifying(self.ca.as_deref())
                .map_err(|e| LdapFailure::permanent(e.to_string()))?;
            settings = settings.set_config(std::sync::Arc::new(tls));
        }
        let work = async {
            let (connection, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
                .await
                .map_err(|e| LdapFailure::from_ldap(&format!("connecting to {}", self.url), e))?;
            ldap3::drive!(connection);
            if let Some(dn) = &self.bind_dn {
                // An empty password makes a simple bind anonymous on most servers.
                let password = self
                    .bind_password
                    .as_ref()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| {
                        LdapFailure::permanent(format!(
                            "bind_dn {dn} is set but bind_password is empty; give the password (bind_password_file works too)"
                        ))
                    })?
                    .expose();
                ldap.simple_bind(dn, password)
                    .await
                    .and_then(ldap3::LdapResult::success)
                    .map_err(|e| {
                        LdapFailure::from_ldap(&format!("binding to {} as {dn}", self.url), e)
                    })?;
            }
            Ok(ldap)
        };
        self.within(work, "connecting and binding").await
    }

    /// `work`, or a transient failure once `timeout` has passed.
    pub async fn within<T>(
        &self,
        work: impl Future<Output = Result<T, LdapFailure>>,
        what: &str,
    ) -> Result<T, LdapFailure> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(LdapFailure {
                    transient: true,
                    message: format!("{}: {what} took longer than {:?}", self.url, self.timeout),
                })
            })
    }
}
