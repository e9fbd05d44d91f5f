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

    /// `v1,<base64 signature>` of one attempt.
    pub fn sign(&self, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
        match self.keyed() {
            Some(mac) => sign_keyed(mac, msg_id, timestamp, body),
            None => String::new(),
        }
    }

    /// The HMAC with this key absorbed. Any key length is valid for HMAC,
    /// so this is never `None`.
    fn keyed(&self) -> Option<Hmac<Sha256>> {
        Hmac::<Sha256>::new_from_slice(&self.key).ok()
    }
}

/// `v1,<base64 signature>` from an HMAC that has absorbed its key.
fn sign_keyed(mut mac: Hmac<Sha256>, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A secret made ready to sign many messages: its HMAC keyed and its
/// fingerprint computed once. The worker makes one per endpoint a claim
/// hands out, and each attempt signs with a copy of the keyed HMAC instead
/// of decoding the secret and keying it again. `Debug` prints neither.
#[derive(Clone)]
pub struct Signer {
    keyed: Hmac<Sha256>,
    fingerprint: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// `None` never happens (see [`SigningSecret::sign`]), but is not
    /// unwrapped.
    pub fn new(secret: &SigningSecret) -> Option<Self> {
        Some(Signer {
            keyed: secret.keyed()?,
            fingerprint: secret.fingerprint(),
        })
    }

    /// [`SigningSecret::parse`], made ready to sign.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::new(&SigningSecret::parse(text)?).ok_or_else(|| "the key is unusable".to_string())
    }

    /// [`SigningSecret::sign`], without keying the HMAC again.
    pub fn sign(&self, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
        sign_keyed(self.keyed.clone(), msg_id, timestamp, body)
    }

    /// [`SigningSecret::fingerprint`], computed once.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The `webhook-signature` header value: the current secret's signature,
/// followed by the previous secret's while a rotation's grace period lasts.
pub fn signature_header(
    current: &Signer,
    previous: Option<&Signer>,
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
    fn a_signer_signs_and_names_its_secret_as_the_secret_does() {
        let secret = SigningSecret::parse(SPEC_SECRET).unwrap();
        let signer = Signer::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            signer.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes()),
            SPEC_SIGNATURE
        );
        // Signing twice starts from the keyed state each time.
        assert_eq!(
            signer.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes()),
            SPEC_SIGNATURE
        );
        assert_eq!(
            signer.sign("evt_2", 11, b"{}"),
            secret.sign("evt_2", 11, b"{}")
        );
        assert_eq!(signer.fingerprint(), secret.fingerprint());
        assert_eq!(format!("{signer:?}"), "Signer(..)");
        assert!(Signer::parse("whsec_AAAA").is_err());
    }

    #[test]
    fn rotation_sends_both_signatures() {
        let old = SigningSecret::generate();
        let new = SigningSecret::generate();
        let signer = |secret: &SigningSecret| Signer::new(secret).unwrap();
        let (old_signer, new_signer) = (signer(&old), signer(&new));
        let header = signature_header(&new_signer, Some(&old_signer), "evt_1", 10, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(&old, "evt_1", 10, b"{}", &header));
        assert!(verify(&new, "evt_1", 10, b"{}", &header));
        let only_new = signature_header(&new_signer, None, "evt_1", 10, b"{}");
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
