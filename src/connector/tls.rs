//! The TLS client settings PostgreSQL and LDAP share: native TLS (OpenSSL here, which the
//! Discord adapter already links), trusting the system roots plus the certificates of `ca`.

/// A TLS connector that checks the server's certificate and host name (`verify`), or one
/// that only encrypts (`require`). `ca` is PEM text holding one or more extra roots (a
/// bundle): every certificate in it is trusted.
pub fn native_connector(
    ca: Option<&str>,
    verify: bool,
) -> Result<native_tls::TlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(pem) = ca {
        for certificate in certificates(pem)? {
            builder.add_root_certificate(certificate);
        }
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

/// Every certificate in `pem` (a CA bundle may hold several), or why there is none.
pub fn certificates(pem: &str) -> Result<Vec<native_tls::Certificate>, String> {
    let found = native_tls::Certificate::stack_from_pem(pem.as_bytes())
        .map_err(|e| format!("ca is not a PEM certificate: {e}"))?;
    if found.is_empty() {
        return Err(
            "ca is not a PEM certificate: it holds no -----BEGIN CERTIFICATE----- block".to_owned(),
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two self-signed CAs (P-256), as a bundle of two PEM blocks holds them.
    const BUNDLE: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBlzCCAT2gAwIBAgIURitnMGTfJjUTE/P2NEcuufMTz2swCgYIKoZIzj0EAwIw\n\
IDEeMBwGA1UEAwwVR2F0ZWhvdXNlIHRlc3QgQ0Egb25lMCAXDTI2MTIwNzA4MTQw\n\
NVoYDzIxMjYxMTEzMDgxNDA1WjAgMR4wHAYDVQQDDBVHYXRlaG91c2UgdGVzdCBD\n\
QSBvbmUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQSdJKb57D6lFFIWBzEqHgZ\n\
dJSdJncev/IClTTB4+VAtcducpLJN0BiJN4B3LYobIjV+Vf9aP1ZnbzZ4gI+Vw4G\n\
o1MwUTAdBgNVHQ4EFgQUSYwDgS4V/BEm81fRP19McEWp/UIwHwYDVR0jBBgwFoAU\n\
SYwDgS4V/BEm81fRP19McEWp/UIwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD\n\
AgNIADBFAiEAmuRHrGT2WpK8xzZ5oUdCAOcoSMPq68d0EaX+F02xef8CIClxbTQm\n\
XzNlzEghBPcC6w8PUsHPuh7fQBqJPZZQbar3\n\
-----END CERTIFICATE-----\n\
-----BEGIN CERTIFICATE-----\n\
MIIBlzCCAT2gAwIBAgIUIxzA5XVc2uG8nq7qkDvXVCOND5swCgYIKoZIzj0EAwIw\n\
IDEeMBwGA1UEAwwVR2F0ZWhvdXNlIHRlc3QgQ0EgdHdvMCAXDTI2MTIwNzA4MTQw\n\
NVoYDzIxMjYxMTEzMDgxNDA1WjAgMR4wHAYDVQQDDBVHYXRlaG91c2UgdGVzdCBD\n\
QSB0d28wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAStbwUUTVBdrU5Y9Vf/ip3v\n\
B9vwVh+Rq8g4FoxtiWryYjj+3BQYuKT/jo8KzhrPwe9FaGtVV5waT+Cef0dB004b\n\
o1MwUTAdBgNVHQ4EFgQUZ4j5PRMaLfOM4xfn/8+ACtwn/9wwHwYDVR0jBBgwFoAU\n\
Z4j5PRMaLfOM4xfn/8+ACtwn/9wwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD\n\
AgNIADBFAiEA4tc1hybxYEfcrZzYmq9C6ctWtwSQ91nqkM03xwiJ1N8CIHS3dXZm\n\
MR4Re7rowh2iYJDnFIGflo8rPxIlB82Av+4h\n\
-----END CERTIFICATE-----\n\
";

    #[test]
    fn every_certificate_of_a_bundle_is_trusted_not_only_the_first() {
        let found = certificates(BUNDLE).unwrap();
        let ders: Vec<Vec<u8>> = found.iter().map(|c| c.to_der().unwrap()).collect();
        assert_eq!(ders.len(), 2, "both certificates of the bundle");
        assert_ne!(ders[0], ders[1]);
        native_connector(Some(BUNDLE), true).unwrap();
    }

    #[test]
    fn text_without_a_certificate_is_refused() {
        let Err(err) = certificates("not a certificate\n") else {
            panic!("text without a certificate was taken");
        };
        assert!(err.starts_with("ca is not a PEM certificate"), "{err}");
    }
}
