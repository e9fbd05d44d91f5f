//! Standard Webhooks signing (<https://www.standardwebhooks.com>).
//!
//! A secret is `whsec_<base64 key>`. The signature of one attempt is
//! `v1,<base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"))>`;
//! during a secret rotation both the new and the previous signature are sent,
//! space-separated, so receivers can switch keys without dropping events.
//! This module is pure (no I/O) and carries the spec's published test vector.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";

/// A signing key. `Debug` never prints it, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

impl SigningSecret {
    /// A fresh random 24-byte key (the length Svix uses).
    pub fn generate() -> Self {
        let mut key = vec![0u8; 24];
        rand::rng().fill(&mut key[..]);
        Self { key }
    }

    /// Parses `whsec_<base64>`; the key must decode to 24..=64 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| "a secret starts with `whsec_`".to_string())?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "the part after `whsec_` is not valid base64".to_string())?;
        if !(24..=64).contains(&key.len()) {
            return Err("the key must be 24 to 64 bytes long".to_string());
        }
        Ok(Self { key })
    }

    /// The `whsec_…` form shown to the user once and stored in Redis.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// `v1,<base64 signature>` of one attempt.
    /// A short name for the secret: the first 8 hex digits of the SHA-256
    /// of its key. An attempt's log entry keeps this, not the signature,
    /// which is recomputed from the secret while the endpoint still has
    /// it; 32 bits tell an endpoint's current and previous secret apart
    /// and reveal nothing usable about either.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let digest = Sha256::digest(&self.key);
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn sign(&self, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
        // Any key length is valid for HMAC, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: the current secret's signature,
/// followed by the previous secret's while a rotation's grace period lasts.
pub fn signature_header(
    current: &SigningSecret,
    previous: Option<&SigningSecret>,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> String {
    let mut header = current.sign(msg_id, timestamp, body);
    if let Some(previous) = previous {
        header.push(' ');
        header.push_str(&previous.sign(msg_id, timestamp, body));
    }
    header
}

/// Verifies a `webhook-signature` header the way a receiver would (any one
/// matching `v1` signature passes). Used by tests and by `docs/RECEIVING.md`'s
/// Rust example.
pub fn verify(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
    header: &str,
) -> bool {
    let expected = secret.sign(msg_id, timestamp, body);
    header
        .split(' ')
        .any(|candidate| constant_time_eq(candidate.as_bytes(), expected.as_bytes()))
}

/// Compares without an early exit, so timing does not reveal a prefix match.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks specification.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: u64 = 1_614_265_330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_spec_test_vector() {
        let secret = SigningSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            secret.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes()),
            SPEC_SIGNATURE
        );
        assert!(verify(
            &secret,
            SPEC_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY.as_bytes(),
            SPEC_SIGNATURE
        ));
        assert!(!verify(
            &secret,
            SPEC_ID,
            SPEC_TIMESTAMP + 1,
            SPEC_BODY.as_bytes(),
            SPEC_SIGNATURE
        ));
    }

    #[test]
    fn rotation_sends_both_signatures() {
        let old = SigningSecret::generate();
        let new = SigningSecret::generate();
        let header = signature_header(&new, Some(&old), "evt_1", 10, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(&old, "evt_1", 10, b"{}", &header));
        assert!(verify(&new, "evt_1", 10, b"{}", &header));
        let only_new = signature_header(&new, None, "evt_1", 10, b"{}");
        assert!(!verify(&old, "evt_1", 10, b"{}", &only_new));
    }

    #[test]
    fn secrets_round_trip_and_reject_garbage() {
        let secret = SigningSecret::generate();
        assert_eq!(SigningSecret::parse(&secret.expose()).unwrap(), secret);
        assert!(SigningSecret::parse("nope").is_err());
        assert!(SigningSecret::parse("whsec_!!!").is_err());
        assert!(SigningSecret::parse("whsec_AAAA").is_err());
        assert_eq!(format!("{secret:?}"), "SigningSecret(..)");
    }
}
