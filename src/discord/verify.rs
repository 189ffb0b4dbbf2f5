//! Authenticating HTTP-mode interactions: Discord signs `timestamp + body` with the
//! application's Ed25519 key and sends the signature in `X-Signature-Ed25519` and the
//! timestamp (Unix seconds) in `X-Signature-Timestamp`. A request passes only with a valid
//! strict signature and a timestamp within five minutes of our clock, either way, so a
//! captured request cannot be replayed later; a replay inside the window is caught by the
//! interaction's id, which the adapter remembers.

use axum::http::HeaderMap;
use ed25519_dalek::{Signature, VerifyingKey};

/// How far the signed timestamp may be from our clock, either way.
pub const WINDOW_SECONDS: i64 = 5 * 60;

/// The application's public key.
#[derive(Clone, Debug)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads the 64 hex digits the developer portal shows.
    pub fn from_hex(hex: &str) -> Result<Self, String> {
        let bytes = hex::decode(hex.trim()).map_err(|e| format!("not hex: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("{} bytes, not 32", b.len()))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| e.to_string())
    }
}

/// Why a request was refused; logged, never shown to the caller (who gets a bare 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no X-Signature-Ed25519 or X-Signature-Timestamp header")]
    Missing,
    #[error("the timestamp is not Unix seconds")]
    BadTimestamp,
    #[error("the timestamp is {0}s away from now, outside the {WINDOW_SECONDS}s window")]
    Stale(i64),
    #[error("the signature is not 128 hex digits")]
    BadSignature,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks a request's signature and freshness against `now` (Unix seconds).
pub fn verify(
    key: &PublicKey,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), Rejection> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header("x-signature-ed25519"),
        header("x-signature-timestamp"),
    ) else {
        return Err(Rejection::Missing);
    };
    let at: i64 = timestamp.parse().map_err(|_| Rejection::BadTimestamp)?;
    let skew = now.saturating_sub(at);
    // unsigned_abs: a saturated skew (i64::MIN) has no i64 absolute value.
    if skew.unsigned_abs() > WINDOW_SECONDS.unsigned_abs() {
        return Err(Rejection::Stale(skew));
    }
    let bytes: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(Rejection::BadSignature)?;
    let signature = Signature::from_bytes(&bytes);
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    key.0
        .verify_strict(&signed, &signature)
        .map_err(|_| Rejection::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const NOW: i64 = 1_700_000_000;

    fn signer() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn key() -> PublicKey {
        PublicKey::from_hex(&hex::encode(signer().verifying_key().to_bytes())).unwrap()
    }

    fn signed(timestamp: &str, body: &[u8]) -> HeaderMap {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        let signature = signer().sign(&message);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-signature-ed25519",
            hex::encode(signature.to_bytes()).parse().unwrap(),
        );
        headers.insert("x-signature-timestamp", timestamp.parse().unwrap());
        headers
    }

    #[test]
    fn a_request_signed_with_the_application_key_passes() {
        let body = br#"{"type":1}"#;
        assert_eq!(
            verify(&key(), &signed(&NOW.to_string(), body), body, NOW),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_or_timestamp_fails() {
        let body = br#"{"type":1}"#;
        let headers = signed(&NOW.to_string(), body);
        assert_eq!(
            verify(&key(), &headers, br#"{"type":2}"#, NOW),
            Err(Rejection::Mismatch)
        );
        let mut moved = headers.clone();
        moved.insert(
            "x-signature-timestamp",
            (NOW + 1).to_string().parse().unwrap(),
        );
        assert_eq!(verify(&key(), &moved, body, NOW), Err(Rejection::Mismatch));
    }

    #[test]
    fn an_old_or_future_timestamp_fails_even_when_signed() {
        let body = b"{}";
        let old = (NOW - WINDOW_SECONDS - 1).to_string();
        assert!(matches!(
            verify(&key(), &signed(&old, body), body, NOW),
            Err(Rejection::Stale(_))
        ));
        let future = (NOW + WINDOW_SECONDS + 1).to_string();
        assert!(matches!(
            verify(&key(), &signed(&future, body), body, NOW),
            Err(Rejection::Stale(_))
        ));
    }

    /// Found writing the `signatures` fuzz target (its inputs choose the clock too): with
    /// the clock before 1970 (a broken clock, or a test's), a timestamp near i64::MAX
    /// saturated the skew to i64::MIN and `abs` overflowed: a panic in debug builds, and a
    /// pass of the window check in release ones (the signature was still checked).
    #[test]
    fn a_timestamp_as_far_as_can_be_is_stale_whatever_the_clock() {
        let body = b"{}";
        for (now, at) in [(-2, i64::MAX), (i64::MIN, i64::MAX), (i64::MAX, i64::MIN)] {
            let headers = signed(&at.to_string(), body);
            let refused = verify(&key(), &headers, body, now);
            assert!(matches!(refused, Err(Rejection::Stale(_))), "{refused:?}");
        }
    }

    #[test]
    fn missing_or_malformed_headers_fail() {
        assert_eq!(
            verify(&key(), &HeaderMap::new(), b"{}", NOW),
            Err(Rejection::Missing)
        );
        let mut headers = signed(&NOW.to_string(), b"{}");
        headers.insert("x-signature-ed25519", "zz".parse().unwrap());
        assert_eq!(
            verify(&key(), &headers, b"{}", NOW),
            Err(Rejection::BadSignature)
        );
        headers.insert("x-signature-timestamp", "yesterday".parse().unwrap());
        assert_eq!(
            verify(&key(), &headers, b"{}", NOW),
            Err(Rejection::BadTimestamp)
        );
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused_at_start() {
        assert!(PublicKey::from_hex("abcd").is_err());
        assert!(PublicKey::from_hex("not hex").is_err());
    }
}
