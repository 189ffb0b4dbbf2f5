//! The one TLS stack of the clients Gatehouse sets up itself: rustls with the *ring* provider,
//! trusting the system's root certificates plus, where the configuration gives one, a CA
//! bundle (`ca_file`). The webhook connector, the Discord REST client, the CLI, the Slack Web
//! API client, PostgreSQL (`tokio-postgres-rustls`) and LDAP (`ldap3`'s rustls backend) all
//! take their configuration from here.
//!
//! OpenSSL is still linked, for serenity's gateway websocket alone: its rustls backend pins a
//! `rustls-webpki` with open advisories (deploy/discord/README.md, "TLS and advisories").
//! Because serenity switches on reqwest's native-tls feature, and reqwest then defaults to it,
//! every reqwest client is built with [`http_client`], which hands reqwest a rustls
//! configuration explicitly; `clippy.toml` refuses `reqwest::Client::builder` elsewhere.

use std::sync::{Arc, LazyLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why no TLS configuration could be made. Raised at start-up or reload, so each says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("ca is not a PEM certificate: {0}")]
    NotPem(String),
    #[error("ca is not a PEM certificate: it holds no -----BEGIN CERTIFICATE----- block")]
    NoCertificate,
    #[error("ca holds a certificate that cannot be trusted as a root: {0}")]
    BadRoot(String),
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// The cryptography every configuration here uses: *ring*, the provider the rest of the
/// program (Slack, Socket Mode) uses too.
pub fn provider() -> Arc<CryptoProvider> {
    static RING: LazyLock<Arc<CryptoProvider>> =
        LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));
    RING.clone()
}

/// The system's trusted roots (`/etc/ssl/certs`, or what `SSL_CERT_FILE` / `SSL_CERT_DIR`
/// name), read once. Certificates that cannot be read are skipped; none at all leaves an
/// empty list, and then every server is refused unless a `ca` is given.
pub fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: LazyLock<Vec<CertificateDer<'static>>> = LazyLock::new(|| {
        let found = rustls_native_certs::load_native_certs();
        if !found.errors.is_empty() {
            tracing::warn!(errors = ?found.errors, "some system root certificates could not be read");
        }
        found.certs
    });
    &ROOTS
}

/// Every certificate in `pem` (a CA bundle may hold several), or why there is none.
pub fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let found = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NotPem(e.to_string()))?;
    if found.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(found)
}

/// A configuration that checks the server's certificate chain and name against the system
/// roots plus every certificate of `ca` (PEM text, one or more: a bundle).
pub fn verifying(ca: Option<&str>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    // Skipped, as a browser would: one odd system certificate must not stop the program.
    let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(pem) = ca {
        for certificate in certificates(pem)? {
            roots
                .add(certificate)
                .map_err(|e| TlsError::BadRoot(e.to_string()))?;
        }
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A configuration that encrypts without checking who the server is (PostgreSQL's
/// `sslmode = "require"`): it protects against listeners, not against an impostor. The
/// handshake's signatures are still checked, so the session key belongs to the certificate
/// the server showed.
pub fn encrypting_only() -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(AnyCertificate(provider.clone()));
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The start of every reqwest client Gatehouse builds: rustls with [`verifying`] (the system
/// roots, plus `ca` when given). Without it reqwest would pick OpenSSL, which serenity's
/// feature turns on.
pub fn http_client(ca: Option<&str>) -> Result<reqwest::ClientBuilder, TlsError> {
    #[allow(clippy::disallowed_methods)] // the one place a reqwest client is started
    let builder = reqwest::Client::builder();
    Ok(builder.tls_backend_preconfigured(verifying(ca)?))
}

/// Accepts any certificate, checking only the handshake signatures: see [`encrypting_only`].
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether `error`, or one of its causes, is a server certificate rustls refused: not worth
/// retrying until the configuration (`ca_file`) or the server's certificate changes.
pub fn is_refused_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(rustls::Error::InvalidCertificate(_)) = error.downcast_ref::<rustls::Error>() {
        return true;
    }
    // An `io::Error` wrapping another error hides it from `source()`: look inside.
    let inner = error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .map(|inner| inner as &(dyn std::error::Error + 'static));
    inner.is_some_and(is_refused_certificate) || error.source().is_some_and(is_refused_certificate)
}

#[cfg(test)]
mod tests;
