//! ID tokens signed by a test key (tests/it/portal/test-key-*.pk8, made for these tests
//! only): what passes, and each reason one is refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeZone, Utc};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};

use super::*;

const KEY_A: &[u8] = include_bytes!("../../tests/it/portal/test-key-a.pk8");
const KEY_B: &[u8] = include_bytes!("../../tests/it/portal/test-key-b.pk8");

fn jwk(pkcs8: &[u8], kid: &str) -> Jwk {
    let pair = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
    let public: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
    Jwk {
        kty: "RSA".into(),
        kid: Some(kid.into()),
        usage: Some("sig".into()),
        alg: Some("RS256".into()),
        n: Some(URL_SAFE_NO_PAD.encode(public.n)),
        e: Some(URL_SAFE_NO_PAD.encode(public.e)),
    }
}

fn sign(pkcs8: &[u8], header: Value, claims: &Value) -> String {
    let pair = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public().modulus_len()];
    let rng = ring::rand::SystemRandom::new();
    pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature)
        .unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": "https://login.example.com",
        "aud": "gatehouse",
        "sub": "u-1",
        "email": "alice@example.com",
        "nonce": "n-0S6_WzA2Mj",
        "iat": now().timestamp() - 5,
        "exp": now().timestamp() + 300,
    })
}

fn keys() -> Jwks {
    Jwks {
        keys: vec![jwk(KEY_A, "a")],
    }
}

fn check(token: &str) -> Result<Claims, TokenError> {
    let expected = Expected {
        issuer: "https://login.example.com",
        client_id: "gatehouse",
        nonce: "n-0S6_WzA2Mj",
        now: now(),
    };
    verify(token, &keys(), &expected)
}

fn with(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut claims = claims();
    change(claims.as_object_mut().unwrap());
    sign(KEY_A, json!({"alg": "RS256", "kid": "a"}), &claims)
}

#[test]
fn a_token_signed_by_the_providers_key_for_this_client_passes() {
    let claims = check(&with(|_| {})).unwrap();
    assert_eq!(claims.text("email").as_deref(), Some("alice@example.com"));
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let token = sign(KEY_B, json!({"alg": "RS256", "kid": "a"}), &claims());
    assert_eq!(check(&token), Err(TokenError::Signature));
}

#[test]
fn a_token_whose_claims_were_edited_after_signing_is_refused() {
    let token = with(|_| {});
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut edited = claims();
    edited["email"] = json!("mallory@example.com");
    let payload = URL_SAFE_NO_PAD.encode(edited.to_string());
    parts[1] = &payload;
    assert_eq!(check(&parts.join(".")), Err(TokenError::Signature));
}

#[test]
fn a_token_for_another_client_is_refused() {
    let token = with(|c| {
        c.insert("aud".into(), json!("someone-else"));
    });
    assert!(matches!(check(&token), Err(TokenError::Audience(_))));
    let shared = with(|c| {
        c.insert("aud".into(), json!(["gatehouse", "someone-else"]));
        c.insert("azp".into(), json!("someone-else"));
    });
    assert!(matches!(check(&shared), Err(TokenError::Audience(_))));
}

#[test]
fn a_token_from_another_issuer_is_refused() {
    let token = with(|c| {
        c.insert("iss".into(), json!("https://evil.example.com"));
    });
    assert!(matches!(check(&token), Err(TokenError::Issuer(_))));
}

#[test]
fn an_expired_token_is_refused_beyond_the_clock_skew_only() {
    let lately = with(|c| {
        c.insert("exp".into(), json!(now().timestamp() - 30));
    });
    assert!(check(&lately).is_ok(), "within the skew");
    let expired = with(|c| {
        c.insert("exp".into(), json!(now().timestamp() - 61));
    });
    assert!(matches!(check(&expired), Err(TokenError::Expired(_))));
}

#[test]
fn a_token_issued_in_the_future_is_refused() {
    let token = with(|c| {
        c.insert("iat".into(), json!(now().timestamp() + 600));
    });
    assert!(matches!(check(&token), Err(TokenError::IssuedInFuture(_))));
}

#[test]
fn a_token_with_another_nonce_is_refused() {
    let token = with(|c| {
        c.insert("nonce".into(), json!("replayed"));
    });
    assert_eq!(check(&token), Err(TokenError::Nonce));
    let missing = with(|c| {
        c.remove("nonce");
    });
    assert_eq!(check(&missing), Err(TokenError::Nonce));
}

#[test]
fn a_token_that_is_unsigned_or_signed_another_way_is_refused() {
    let claims = URL_SAFE_NO_PAD.encode(claims().to_string());
    let none = format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
    assert_eq!(check(&none), Err(TokenError::Algorithm("none".into())));
    let hmac = format!(
        "{}.{claims}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#)
    );
    assert_eq!(check(&hmac), Err(TokenError::Algorithm("HS256".into())));
    assert!(matches!(check("not-a-jwt"), Err(TokenError::Malformed(_))));
}

#[test]
fn a_token_naming_a_key_the_provider_does_not_have_asks_for_new_keys() {
    let token = sign(KEY_A, json!({"alg": "RS256", "kid": "rotated"}), &claims());
    let err = check(&token).unwrap_err();
    assert_eq!(err, TokenError::UnknownKey(Some("rotated".into())));
    assert!(err.wants_new_keys());
}
