//! RS256 JSON Web Tokens, for the connectors that prove who they are with one: an OAuth 2.0
//! client assertion (`private_key_jwt`: Okta service apps, Entra certificate credentials), a
//! JWT bearer grant (Google service accounts) or a GitHub App's token.
//!
//! Gatehouse only ever *signs* JWTs; it never accepts one, so there is no verification here
//! (and none of the algorithm-confusion traps that come with it). Signing is `ring`'s
//! RSASSA-PKCS1-v1_5 with SHA-256, the one algorithm all four services take; `ring` is
//! already compiled for rustls, PEM is read by rustls' `pki_types`, and base64url is the
//! `base64` crate the tree already holds, so this module adds no crate to the build.
//!
//! A token is `base64url(header) . base64url(claims) . base64url(signature)`, the header
//! always `{"alg":"RS256","typ":"JWT"}` plus the key id (`kid`) or certificate thumbprint
//! (`x5t`) a service asks for; the claims are the caller's.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;

/// `client_assertion_type` of a token request authenticated by a signed JWT (RFC 7523).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why a key or certificate cannot be used, or a token cannot be signed. The text completes
/// a sentence about the config key it came from: "private_key {reason}".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwtError(String);

/// An RSA private key, ready to sign. `Debug` shows nothing of it.
pub struct RsaKey {
    pair: RsaKeyPair,
}

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaKey({} bits)", self.bits())
    }
}

impl RsaKey {
    /// The first private key in `pem`: `-----BEGIN PRIVATE KEY-----` (PKCS#8: keys made by
    /// `openssl genpkey`, Google service-account keys) or `-----BEGIN RSA PRIVATE KEY-----`
    /// (PKCS#1: GitHub App keys, `openssl genrsa` of OpenSSL 1.x). 2048 to 8192 bits.
    pub fn from_pem(pem: &str) -> Result<Self, JwtError> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
            pem::Error::NoItemsFound => JwtError(
                "holds no private key: give the PEM text of an RSA key, from -----BEGIN PRIVATE KEY----- (or -----BEGIN RSA PRIVATE KEY-----) to its END line".to_owned(),
            ),
            other => JwtError(format!("is not readable PEM: {other}")),
        })?;
        let pair = match &der {
            PrivateKeyDer::Pkcs8(key) => RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(key) => RsaKeyPair::from_der(key.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(_) => {
                return Err(JwtError(
                    "is an EC key; RS256 needs an RSA key (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)".to_owned(),
                ));
            }
            _ => return Err(JwtError("is not an RSA private key".to_owned())),
        };
        let pair = pair.map_err(|rejected| {
            JwtError(match rejected.to_string().as_str() {
                "WrongAlgorithm" => "is not an RSA key (EC or Ed25519?); RS256 needs an RSA key (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)".to_owned(),
                "TooSmall" => "is an RSA key shorter than 2048 bits, which the services refuse; make a 2048-bit one".to_owned(),
                "TooLarge" => "is an RSA key longer than 8192 bits; make a 2048- to 4096-bit one".to_owned(),
                other => format!("is not a usable RSA private key ({other})"),
            })
        })?;
        Ok(Self { pair })
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        self.pair.public().modulus_len() * 8
    }

    /// The public key as a PKCS#1 `RSAPublicKey` (DER): what a verifier needs.
    pub fn public_key_der(&self) -> &[u8] {
        self.pair.public().as_ref()
    }

    /// `claims` signed under `header`, as the compact serialization.
    pub fn sign(&self, header: &Header, claims: &impl Serialize) -> Result<String, JwtError> {
        let signing_input = format!("{}.{}", segment(header)?, segment(claims)?);
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| JwtError("could not be signed with the key".to_owned()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The JOSE header: `alg` is always RS256 and `typ` JWT; `kid` names the key among several
/// registered (Okta), `x5t` is the certificate's SHA-1 thumbprint (Entra).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Header {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
}

impl Header {
    pub fn rs256() -> Self {
        Self {
            alg: "RS256",
            typ: "JWT",
            kid: None,
            x5t: None,
        }
    }

    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    pub fn with_x5t(mut self, x5t: impl Into<String>) -> Self {
        self.x5t = Some(x5t.into());
        self
    }
}

/// The claims of an OAuth 2.0 client assertion (RFC 7523 §3, `private_key_jwt`): issued by
/// and about the client, for one token endpoint, short-lived and never reused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientAssertion {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// How long a client assertion is valid: the services take at most an hour (Okta) or ten
/// minutes (Entra's recommendation); it is used at once.
pub const ASSERTION_LIFETIME_SECS: i64 = 5 * 60;

impl ClientAssertion {
    /// An assertion by `client_id` for the token endpoint `audience`, issued `now`.
    pub fn new(client_id: &str, audience: &str, now: DateTime<Utc>) -> Result<Self, JwtError> {
        Ok(Self {
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            aud: audience.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + ASSERTION_LIFETIME_SECS,
            jti: random_id()?,
        })
    }
}

/// 128 random bits in hex: a `jti` no service has seen before.
pub fn random_id() -> Result<String, JwtError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| JwtError("could not draw a random token id".to_owned()))?;
    Ok(hex::encode(bytes))
}

/// An X.509 certificate whose key signs client assertions (Entra certificate credentials).
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
}

impl Certificate {
    /// The first certificate in `pem` (`-----BEGIN CERTIFICATE-----`).
    pub fn from_pem(pem: &str) -> Result<Self, JwtError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
            pem::Error::NoItemsFound => JwtError(
                "holds no certificate: give the PEM text from -----BEGIN CERTIFICATE----- to its END line".to_owned(),
            ),
            other => JwtError(format!("is not readable PEM: {other}")),
        })?;
        Ok(Self { der: der.to_vec() })
    }

    /// `x5t`: the base64url SHA-1 thumbprint of the DER certificate, as Entra matches it
    /// against the certificates uploaded to the app registration.
    pub fn thumbprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der);
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// The thumbprint as the Azure portal shows it (upper-case hex), for messages.
    pub fn thumbprint_hex(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der);
        hex::encode_upper(digest.as_ref())
    }
}

/// One part of a token: `value` as JSON, in base64url without padding.
fn segment(value: &impl Serialize) -> Result<String, JwtError> {
    let json =
        serde_json::to_vec(value).map_err(|e| JwtError(format!("cannot encode the token: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

#[cfg(test)]
mod tests;
