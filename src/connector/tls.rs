//! The TLS client settings PostgreSQL and LDAP share: native TLS (OpenSSL here, which the
//! Discord adapter already links), trusting the system roots plus an optional `ca`.

/// A TLS connector that checks the server's certificate and host name (`verify`), or one
/// that only encrypts (`require`). `ca` is the PEM text of an extra root.
pub fn native_connector(
    ca: Option<&str>,
    verify: bool,
) -> Result<native_tls::TlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(pem) = ca {
        builder.add_root_certificate(certificate(pem)?);
    }
    if !verify {
        builder
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up TLS: {e}"))
}

/// The certificate in `pem`, or why there is none.
pub fn certificate(pem: &str) -> Result<native_tls::Certificate, String> {
    native_tls::Certificate::from_pem(pem.as_bytes())
        .map_err(|e| format!("ca is not a PEM certificate: {e}"))
}
