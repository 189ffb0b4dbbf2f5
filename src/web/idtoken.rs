//! Checking an OpenID Connect ID token: a JWS signed RS256 by one of the provider's keys
//! (its JWKS), issued by the configured issuer, for this client, not expired, and carrying
//! the nonce this sign-in sent. Time is a parameter (the engine's clock); clocks may differ
//! by [`CLOCK_SKEW`]. Only RS256 is accepted: `none`, HMAC and anything else are refused, so
//! a token cannot choose a weaker check.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::Deserialize;
use serde_json::{Map, Value};

/// How far the provider's clock and ours may disagree.
pub const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The provider's signing keys, as its `jwks_uri` serves them.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One key of a JWKS; only RSA keys are used.
#[derive(Clone, Debug, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default, rename = "use")]
    pub usage: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
}

/// What a token must say to be accepted.
#[derive(Clone, Debug)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: DateTime<Utc>,
}

/// Why a token was refused. Shown in the log, never to the person (they read that sign-in
/// failed and may try again).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the ID token is not a signed JWT: {0}")]
    Malformed(&'static str),
    #[error("the ID token is signed with `{0}`; only RS256 is accepted")]
    Algorithm(String),
    #[error("no key of the provider's JWKS matches the ID token (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the ID token's signature does not verify")]
    Signature,
    #[error("the ID token was issued by `{0}`, not the configured issuer")]
    Issuer(String),
    #[error("the ID token is not for this client (aud {0})")]
    Audience(String),
    #[error("the ID token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the ID token was issued in the future ({0})")]
    IssuedInFuture(DateTime<Utc>),
    #[error("the ID token's nonce is not the one this sign-in sent")]
    Nonce,
}

impl TokenError {
    /// Whether fetching the JWKS again could help (the provider rotated its keys).
    pub fn wants_new_keys(&self) -> bool {
        matches!(self, TokenError::UnknownKey(_))
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The claims of a checked token.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// A claim as text (a string, or a number written out).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// `email_verified`, when the token says it (some providers send `"true"`).
    pub fn email_verified(&self) -> Option<bool> {
        match self.0.get("email_verified")? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => Some(s == "true"),
            _ => None,
        }
    }
}

/// Checks `token` against `keys` and `expected`; its claims when it passes.
pub fn verify(token: &str, keys: &Jwks, expected: &Expected<'_>) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("it does not have three parts"));
    };
    let header: Header = decode_json(header)?;
    if header.alg != "RS256" {
        return Err(TokenError::Algorithm(header.alg));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed("the signature is not base64url"))?;
    let signed = &token[..header_and_payload_len(token)];
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|k| k.kty == "RSA" && k.usage.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == "RS256"))
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .collect();
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey(header.kid));
    }
    let verified = candidates
        .iter()
        .any(|key| verify_with(key, signed.as_bytes(), &signature));
    if !verified {
        return Err(TokenError::Signature);
    }
    let claims: Map<String, Value> = decode_json(payload)?;
    check_claims(Claims(claims), expected)
}

fn check_claims(claims: Claims, expected: &Expected<'_>) -> Result<Claims, TokenError> {
    let issuer = claims.text("iss").unwrap_or_default();
    if issuer != expected.issuer {
        return Err(TokenError::Issuer(issuer));
    }
    let audiences: Vec<&str> = match claims.0.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let for_us = audiences.contains(&expected.client_id)
        // With several audiences, the party it was issued to must be us.
        && (audiences.len() == 1 || claims.text("azp").as_deref() == Some(expected.client_id));
    if !for_us {
        return Err(TokenError::Audience(format!("{audiences:?}")));
    }
    let expires = instant(&claims, "exp").ok_or(TokenError::Malformed("it has no `exp`"))?;
    if expires + CLOCK_SKEW <= expected.now {
        return Err(TokenError::Expired(expires));
    }
    let issued = instant(&claims, "iat").ok_or(TokenError::Malformed("it has no `iat`"))?;
    if issued - CLOCK_SKEW > expected.now {
        return Err(TokenError::IssuedInFuture(issued));
    }
    if let Some(not_before) = instant(&claims, "nbf")
        && not_before - CLOCK_SKEW > expected.now
    {
        return Err(TokenError::IssuedInFuture(not_before));
    }
    let nonce = claims.text("nonce").unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        nonce.as_bytes(),
        expected.nonce.as_bytes(),
    )) {
        return Err(TokenError::Nonce);
    }
    Ok(claims)
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

fn verify_with(key: &Jwk, message: &[u8], signature: &[u8]) -> bool {
    let (Some(n), Some(e)) = (&key.n, &key.e) else {
        return false;
    };
    let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else {
        return false;
    };
    RsaPublicKeyComponents { n, e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
        .is_ok()
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed("a part is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("a part is not JSON"))
}

fn instant(claims: &Claims, name: &str) -> Option<DateTime<Utc>> {
    let seconds = claims.0.get(name)?.as_f64()?;
    DateTime::from_timestamp(seconds as i64, 0)
}

#[cfg(test)]
#[path = "idtoken_tests.rs"]
mod tests;
