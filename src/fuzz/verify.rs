//! The signature checks of Slack (HMAC-SHA256) and Discord (Ed25519) on whatever headers,
//! body and clock: they answer, never panic, accept what was signed right and refuse any
//! other body.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ed25519_dalek::{Signer, SigningKey};

use crate::discord::verify as discord;
use crate::slack::verify as slack;

const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";

/// Input: 8 bytes of clock (little-endian Unix seconds), then lines of header values
/// (timestamp, then signature), a NUL, and the body.
pub fn signatures(data: &[u8]) {
    let (head, body) = super::split(data);
    let (clock, values) = head.split_at(head.len().min(8));
    let mut now = [0u8; 8];
    now[..clock.len()].copy_from_slice(clock);
    let now = i64::from_le_bytes(now);
    let mut lines = values.split(|&b| b == b'\n');
    let (timestamp, signature) = (lines.next(), lines.next());

    let slack_headers = headers(&[
        (slack::TIMESTAMP_HEADER, timestamp),
        (slack::SIGNATURE_HEADER, signature),
    ]);
    if let Err(rejection) = slack::verify(SECRET, &slack_headers, body, now) {
        super::assert_sentence(&rejection.to_string(), "a Slack rejection");
    }
    let discord_headers = headers(&[
        ("x-signature-timestamp", timestamp),
        ("x-signature-ed25519", signature),
    ]);
    let key = signer();
    let public = discord::PublicKey::from_hex(&hex::encode(key.verifying_key().as_bytes()))
        .expect("a valid key reads back");
    if let Err(rejection) = discord::verify(&public, &discord_headers, body, now) {
        super::assert_sentence(&rejection.to_string(), "a Discord rejection");
    }
    let _ = discord::PublicKey::from_hex(&String::from_utf8_lossy(values));

    signed_right(body, now, &key, &public);
}

/// A body signed right, at our clock, passes; with one more byte it does not.
fn signed_right(body: &[u8], now: i64, key: &SigningKey, public: &discord::PublicKey) {
    let stamp = now.to_string();
    let mut other = body.to_vec();
    other.push(b'!');

    let signature = slack::sign(SECRET, now, body);
    let sent = headers(&[
        (slack::TIMESTAMP_HEADER, Some(stamp.as_bytes())),
        (slack::SIGNATURE_HEADER, Some(signature.as_bytes())),
    ]);
    assert_eq!(slack::verify(SECRET, &sent, body, now), Ok(()));
    let refused = slack::verify(SECRET, &sent, &other, now);
    assert_eq!(refused, Err(slack::Rejection::BadSignature));

    let mut signed = stamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    let signature = hex::encode(key.sign(&signed).to_bytes());
    let sent = headers(&[
        ("x-signature-timestamp", Some(stamp.as_bytes())),
        ("x-signature-ed25519", Some(signature.as_bytes())),
    ]);
    assert_eq!(discord::verify(public, &sent, body, now), Ok(()));
    let refused = discord::verify(public, &sent, &other, now);
    assert_eq!(refused, Err(discord::Rejection::Mismatch));
}

fn signer() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// The headers whose values are valid header bytes; the others are left out, as an HTTP
/// server would never hand them over.
fn headers(pairs: &[(&'static str, Option<&[u8]>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            map.insert(HeaderName::from_static(name), value);
        }
    }
    map
}
