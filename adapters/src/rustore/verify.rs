//! Proving a RuStore notification authentic: base64, AES-256-GCM, app id.
//!
//! RuStore signs nothing; the GCM tag is the proof. A payload that decrypts under the source's key
//! was produced by someone holding that key (RuStore), and any change to the ciphertext, IV or tag
//! makes decryption fail. The tag check is done by the AEAD implementation in constant time.

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{Nonce, Tag};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize as _;
use serde_json::Value;

use super::wire::{Envelope, EnvelopeTree, Payload};
use super::{Config, KeySlot, Verified};
use crate::AdapterError;

/// GCM nonce length RuStore uses (the Java `GCMParameterSpec` default).
const IV_LEN: usize = 12;
/// GCM tag length, appended to the ciphertext (Java `Cipher.doFinal` convention).
const TAG_LEN: usize = 16;

/// Standard base64 alphabet; padding optional, because nothing in RuStore's documentation promises
/// it and a missing `=` says nothing about authenticity (the tag does).
pub(super) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What [`verify`] reports when neither key opens the payload. One message for both causes: a
/// wrong key and a tampered payload are indistinguishable by design of the AEAD.
pub(super) const UNDECRYPTABLE: &str = "payload does not decrypt with the source's current or previous key: wrong key or tampered payload";

pub(super) fn verify(config: &Config, body: &[u8]) -> Result<Verified, AdapterError> {
    let envelope = match Envelope::read(body) {
        Some(envelope) => envelope,
        None => read_envelope_tree(body)?.into(),
    };
    let notification_id = match envelope.id {
        Some(id) if !id.is_empty() => id,
        Some(_) => return Err(AdapterError::malformed("envelope `id` is empty")),
        None => {
            return Err(AdapterError::malformed(
                "envelope has no `id` (string): the notification id is required",
            ));
        }
    };
    let payload = envelope
        .payload
        .ok_or_else(|| AdapterError::malformed("envelope has no `payload` (string)"))?;
    let mut sealed = BASE64.decode(payload.as_bytes()).map_err(|e| {
        AdapterError::malformed(format!("envelope `payload` is not valid base64: {e}"))
    })?;
    let (plaintext, decrypted_with) = open(config, &mut sealed)?;

    let payload: Value = serde_json::from_slice(plaintext)
        .map_err(|e| AdapterError::malformed(format!("decrypted payload is not JSON: {e}")))?;
    let Value::Object(fields) = &payload else {
        return Err(AdapterError::malformed(
            "decrypted payload is not a JSON object",
        ));
    };
    let header = Payload::read(fields);
    check_app_id(config.app_id.as_deref(), header.app_id.as_deref())?;

    Ok(Verified {
        notification_id,
        timestamp: envelope.timestamp,
        notification_type: header.notification_type,
        payload,
        decrypted_with,
    })
}

/// Reads the body as a JSON tree first, then the envelope from it: slower than [`Envelope::read`],
/// but it tells exactly what is wrong with a body that is not an envelope.
fn read_envelope_tree(body: &[u8]) -> Result<EnvelopeTree, AdapterError> {
    // A tree first because serde would also read a JSON array as the struct.
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| AdapterError::malformed(format!("body is not JSON: {e}")))?;
    if !body.is_object() {
        return Err(AdapterError::malformed(
            "body is JSON but not an object: a RuStore envelope is {\"id\", \"timestamp\", \"payload\"}",
        ));
    }
    // Read from the owned tree, so its strings (the payload above all) move instead of copying.
    EnvelopeTree::deserialize(body)
        .map_err(|e| AdapterError::malformed(format!("body is not a RuStore envelope: {e}")))
}

/// Splits `IV ‖ ciphertext ‖ tag` and decrypts it in place with the current key, then the
/// previous one (RuStore may still be retrying notifications sealed before a rotation). Returns
/// the plaintext, a part of `sealed`.
fn open<'a>(config: &Config, sealed: &'a mut [u8]) -> Result<(&'a [u8], KeySlot), AdapterError> {
    if sealed.len() < IV_LEN + TAG_LEN {
        return Err(AdapterError::malformed(format!(
            "payload is {} bytes after base64 decoding; at least {} are needed \
             (12-byte IV, ciphertext, 16-byte tag)",
            sealed.len(),
            IV_LEN + TAG_LEN
        )));
    }
    let Some((iv, ciphertext_and_tag)) = sealed.split_at_mut_checked(IV_LEN) else {
        return Err(AdapterError::malformed("payload is shorter than its IV"));
    };
    let Ok(iv) = <[u8; IV_LEN]>::try_from(&*iv) else {
        return Err(AdapterError::malformed("payload IV is not 12 bytes"));
    };
    let Some((ciphertext, tag)) = ciphertext_and_tag
        .len()
        .checked_sub(TAG_LEN)
        .and_then(|at| ciphertext_and_tag.split_at_mut_checked(at))
    else {
        return Err(AdapterError::malformed("payload is shorter than its tag"));
    };
    let Ok(tag) = <[u8; TAG_LEN]>::try_from(&*tag) else {
        return Err(AdapterError::malformed("payload tag is not 16 bytes"));
    };
    let (nonce, tag) = (Nonce::from(iv), Tag::from(tag));
    let keys = [
        Some((&config.key, KeySlot::Current)),
        config.previous_key.as_ref().map(|k| (k, KeySlot::Previous)),
    ];
    for (key, slot) in keys.into_iter().flatten() {
        // A failed attempt leaves the ciphertext untouched: the tag is checked before decrypting.
        if key
            .cipher()
            .decrypt_in_place_detached(&nonce, &[], ciphertext, &tag)
            .is_ok()
        {
            return Ok((ciphertext, slot));
        }
    }
    Err(AdapterError::unauthenticated(UNDECRYPTABLE))
}

/// When the source names its app, the payload must name the same one. App ids are public (they are
/// in Console URLs), so the message names both.
fn check_app_id(expected: Option<&str>, actual: Option<&str>) -> Result<(), AdapterError> {
    let Some(expected) = expected.map(str::trim) else {
        return Ok(());
    };
    match actual {
        Some(actual) if actual.trim() == expected => Ok(()),
        Some(actual) => Err(AdapterError::unauthenticated(format!(
            "notification is for RuStore app id {actual}, but this source is configured for app id {expected}"
        ))),
        None => Err(AdapterError::unauthenticated(format!(
            "notification carries no app_id, but this source is configured for app id {expected}"
        ))),
    }
}
