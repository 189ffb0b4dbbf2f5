//! The TLS settings against a real local HTTPS server whose CA no system trusts.

use super::*;
use crate::testing::tls::{CA, RUSTLS_UNKNOWN_ISSUER, TlsServer};

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

/// The chain of an error, as the program logs it.
fn chain(error: &reqwest::Error) -> String {
    crate::connector::webhook::error_chain(error)
}

#[test]
fn every_certificate_of_a_bundle_is_trusted_not_only_the_first() {
    let found = certificates(BUNDLE).unwrap();
    assert_eq!(found.len(), 2, "both certificates of the bundle");
    assert_ne!(found[0], found[1]);
    verifying(Some(BUNDLE)).unwrap();
}

#[test]
fn text_without_a_certificate_is_refused() {
    let err = certificates("not a certificate\n").unwrap_err();
    assert!(
        err.to_string().starts_with("ca is not a PEM certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_signed_by_the_given_ca_is_reached_and_one_signed_by_a_stranger_is_refused() {
    let server = TlsServer::start();
    let trusting = http_client(Some(CA)).unwrap().build().unwrap();
    let answer = trusting.get(server.url()).send().await.unwrap();
    assert_eq!(answer.status(), 200);

    let stranger = http_client(None).unwrap().build().unwrap();
    let err = stranger.get(server.url()).send().await.unwrap_err();
    assert!(
        chain(&err).contains(RUSTLS_UNKNOWN_ISSUER),
        "{}",
        chain(&err)
    );
    assert!(is_refused_certificate(&err), "{}", chain(&err));
    assert_eq!(
        server.answered(),
        1,
        "only the trusting client was answered"
    );
}

#[tokio::test]
async fn the_ca_of_a_bundle_counts_wherever_it_stands_in_it() {
    let server = TlsServer::start();
    let bundle = format!("{BUNDLE}{CA}");
    let client = http_client(Some(&bundle)).unwrap().build().unwrap();
    assert_eq!(client.get(server.url()).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn encrypting_only_reaches_a_server_whatever_signed_its_certificate() {
    let server = TlsServer::start();
    #[allow(clippy::disallowed_methods)] // the test builds its own client, on purpose
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(encrypting_only().unwrap())
        .build()
        .unwrap();
    assert_eq!(client.get(server.url()).send().await.unwrap().status(), 200);
}
