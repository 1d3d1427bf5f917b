//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
//! one space-separated signature per active secret while a rotated secret is still valid.
//!
//! A secret is written `whsec_<base64 of the key>`; [`SigningSecret`] holds the decoded key with
//! the HMAC inner and outer pads already computed, so signing a delivery hashes only its message.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Standard base64 that accepts the key with or without its `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Shortest and longest key, in bytes, as the Standard Webhooks specification recommends.
pub const MIN_KEY_BYTES: usize = 24;
pub const MAX_KEY_BYTES: usize = 64;

/// Why a string is not a signing secret. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_")]
    Prefix,
    #[error("the part after whsec_ is not base64")]
    Base64,
    #[error("the key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {0}")]
    Length(usize),
}

/// An endpoint's signing key. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SigningSecret {
    mac: HmacSha256,
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

impl SigningSecret {
    /// Parse `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<SigningSecret, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Prefix)?;
        let key = LENIENT.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        let mac = HmacSha256::new_from_slice(&key).map_err(|_| SecretError::Length(key.len()))?;
        Ok(SigningSecret { mac })
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// One signature: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Whether `signature` (the base64 after `v1,`) is this key's, compared in constant time.
    fn verifies(&self, id: &str, timestamp: i64, body: &[u8], signature: &str) -> bool {
        match STANDARD.decode(signature) {
            Ok(tag) => self.mac(id, timestamp, body).verify_slice(&tag).is_ok(),
            Err(_) => false,
        }
    }
}

/// The `webhook-signature` header value: one `v1,` signature per secret, newest first, separated
/// by spaces.
pub fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut header = String::with_capacity(secrets.len() * 48);
    for (i, secret) in secrets.iter().enumerate() {
        if i > 0 {
            header.push(' ');
        }
        header.push_str(&secret.sign(id, timestamp, body));
    }
    header
}

/// Whether any `v1` signature in `header` was made with `secret` over this message. Other
/// versions are skipped, as the specification asks. For receivers and tests.
pub fn verify_header(
    secret: &SigningSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    header.split(' ').any(|part| {
        part.strip_prefix("v1,")
            .is_some_and(|signature| secret.verifies(id, timestamp, body, signature))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn reproduces_the_standard_webhooks_vector() {
        let secret = SigningSecret::parse(SECRET).expect("valid secret");
        assert_eq!(
            secret.sign(ID, TIMESTAMP, BODY),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn signs_once_per_secret_during_a_rotation() {
        let new = SigningSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .expect("valid");
        let old = SigningSecret::parse(SECRET).expect("valid");
        let header = signature_header(&[new.clone(), old.clone()], ID, TIMESTAMP, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify_header(&new, ID, TIMESTAMP, BODY, &header));
        assert!(verify_header(&old, ID, TIMESTAMP, BODY, &header));
    }

    #[test]
    fn verify_rejects_tampering() {
        let secret = SigningSecret::parse(SECRET).expect("valid");
        let header = signature_header(std::slice::from_ref(&secret), ID, TIMESTAMP, BODY);
        assert!(!verify_header(&secret, ID, TIMESTAMP + 1, BODY, &header));
        assert!(!verify_header(
            &secret,
            "msg_other",
            TIMESTAMP,
            BODY,
            &header
        ));
        assert!(!verify_header(&secret, ID, TIMESTAMP, b"{}", &header));
        assert!(!verify_header(
            &secret,
            ID,
            TIMESTAMP,
            BODY,
            "v2,abc v1,!!!"
        ));
        assert!(!verify_header(&secret, ID, TIMESTAMP, BODY, ""));
    }

    #[test]
    fn parses_only_whsec_secrets_of_a_sensible_length() {
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").err(),
            Some(SecretError::Prefix)
        );
        assert_eq!(
            SigningSecret::parse("whsec_not base64!").err(),
            Some(SecretError::Base64)
        );
        assert_eq!(
            SigningSecret::parse("whsec_c2hvcnQ=").err(),
            Some(SecretError::Length(5))
        );
        // Unpadded base64 is accepted too.
        assert!(SigningSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_ok());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let secret = SigningSecret::parse(SECRET).expect("valid");
        let shown = format!("{secret:?}");
        assert!(!shown.contains("MfKQ"), "{shown}");
        assert_eq!(shown, "SigningSecret(<redacted>)");
    }

    #[test]
    fn an_independent_implementation_accepts_our_signature() {
        let body = br#"{"id":"5f0d3a6e","type":"test.ping"}"#;
        let timestamp = chrono::Utc::now().timestamp();
        let ours = SigningSecret::parse(SECRET).expect("valid");
        let header = signature_header(&[ours], ID, timestamp, body);
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", ID.parse().expect("ascii"));
        headers.insert(
            "webhook-timestamp",
            timestamp.to_string().parse().expect("ascii"),
        );
        headers.insert("webhook-signature", header.parse().expect("ascii"));
        let theirs = standardwebhooks::Webhook::new(SECRET).expect("their parser accepts it");
        theirs
            .verify(body, &headers)
            .expect("standardwebhooks verifies our signature");
        assert_eq!(
            theirs
                .sign(ID, TIMESTAMP, BODY)
                .expect("their signer works"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
