use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeZone;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};

use super::*;

/// Test-only keys (tests/fixtures/keys/README.md): one RSA key in its two PEM forms, its
/// self-signed certificate, and an EC key.
const PKCS8: &str = include_str!("../../../tests/fixtures/keys/rsa-test.pkcs8.pem");
const PKCS1: &str = include_str!("../../../tests/fixtures/keys/rsa-test.pkcs1.pem");
const CERTIFICATE: &str = include_str!("../../../tests/fixtures/keys/rsa-test.cert.pem");
const EC: &str = include_str!("../../../tests/fixtures/keys/ec-test.pem");

/// The header and claims of `token`, once its signature is checked against `public_key`.
fn verified(token: &str, public_key: &[u8]) -> (Value, Value) {
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(input.as_bytes(), &signature)
        .expect("the signature verifies with the key's public half");
    let (header, claims) = input.split_once('.').unwrap();
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    (decode(header), decode(claims))
}

#[test]
fn a_token_is_signed_rs256_and_verifies_with_the_public_key() {
    let key = RsaKey::from_pem(PKCS8).unwrap();
    assert_eq!(key.bits(), 2048);
    let token = key
        .sign(
            &Header::rs256().with_kid("key-1"),
            &json!({ "iss": "app", "n": 1 }),
        )
        .unwrap();
    let (header, claims) = verified(&token, key.public_key_der());
    assert_eq!(
        header,
        json!({ "alg": "RS256", "typ": "JWT", "kid": "key-1" })
    );
    assert_eq!(claims, json!({ "iss": "app", "n": 1 }));
    assert!(!token.contains('='), "base64url without padding: {token}");
}

#[test]
fn a_pkcs1_key_is_the_same_key_as_its_pkcs8_form() {
    let pkcs8 = RsaKey::from_pem(PKCS8).unwrap();
    let pkcs1 = RsaKey::from_pem(PKCS1).unwrap();
    assert_eq!(pkcs1.public_key_der(), pkcs8.public_key_der());
    // RSASSA-PKCS1-v1_5 is deterministic: the same key signs the same input alike.
    let claims = json!({ "iss": "12345" });
    assert_eq!(
        pkcs1.sign(&Header::rs256(), &claims).unwrap(),
        pkcs8.sign(&Header::rs256(), &claims).unwrap()
    );
}

#[test]
fn a_key_that_cannot_sign_rs256_is_refused_with_what_to_give_instead() {
    let ec = RsaKey::from_pem(EC).unwrap_err().to_string();
    assert!(ec.contains("RS256 needs an RSA key"), "{ec}");
    let none = RsaKey::from_pem("not a key").unwrap_err().to_string();
    assert!(none.starts_with("holds no private key"), "{none}");
    let certificate = RsaKey::from_pem(CERTIFICATE).unwrap_err().to_string();
    assert!(
        certificate.starts_with("holds no private key"),
        "{certificate}"
    );
    let cut = &PKCS8[..PKCS8.len() / 2];
    assert!(RsaKey::from_pem(cut).is_err(), "half a key");
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let key = RsaKey::from_pem(PKCS8).unwrap();
    assert_eq!(format!("{key:?}"), "RsaKey(2048 bits)");
}

#[test]
fn a_certificate_thumbprint_is_its_sha1_in_base64url_as_entra_matches_it() {
    let certificate = Certificate::from_pem(CERTIFICATE).unwrap();
    // `openssl x509 -in rsa-test.cert.pem -noout -fingerprint -sha1`
    assert_eq!(
        certificate.thumbprint_hex(),
        "0EAE60A86512C8AEE6DD3B85FDEA9A2A897A16BD"
    );
    assert_eq!(certificate.thumbprint(), "Dq5gqGUSyK7m3TuF_eqaKol6Fr0");
    let err = Certificate::from_pem(PKCS8).unwrap_err().to_string();
    assert!(err.starts_with("holds no certificate"), "{err}");
}

#[test]
fn a_client_assertion_is_by_and_about_the_client_for_one_endpoint_and_short_lived() {
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    let first = ClientAssertion::new("0oa1", "https://acme.okta.com/oauth2/v1/token", now).unwrap();
    let second =
        ClientAssertion::new("0oa1", "https://acme.okta.com/oauth2/v1/token", now).unwrap();
    assert_eq!((first.iss.as_str(), first.sub.as_str()), ("0oa1", "0oa1"));
    assert_eq!(first.aud, "https://acme.okta.com/oauth2/v1/token");
    assert_eq!(first.iat, now.timestamp());
    assert_eq!(first.exp - first.iat, 300);
    assert_eq!(first.jti.len(), 32);
    assert_ne!(first.jti, second.jti, "never reused");

    let key = RsaKey::from_pem(PKCS8).unwrap();
    let token = key.sign(&Header::rs256(), &first).unwrap();
    let (_, claims) = verified(&token, key.public_key_der());
    assert_eq!(claims["jti"], first.jti.as_str());
    assert_eq!(claims["exp"], first.exp);
}
