//! Ed25519 signatures over the header (FORMAT.md §5). Strict verification only.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::format::domain::HEADER_SIGNATURE_CONTEXT;

/// The message an Ed25519 header signature covers: the context, then `signed_bytes`.
pub(crate) fn header_message(signed_bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEADER_SIGNATURE_CONTEXT.len() + signed_bytes.len());
    msg.extend_from_slice(HEADER_SIGNATURE_CONTEXT);
    msg.extend_from_slice(signed_bytes);
    msg
}

/// Signs `signed_bytes` (the archive's first `14 + header_len` bytes).
pub(crate) fn sign_header(key: &SigningKey, signed_bytes: &[u8]) -> [u8; 64] {
    key.sign(&header_message(signed_bytes)).to_bytes()
}

/// `verify_strict`: refuses non-canonical `S`, non-canonical or small-order `R`, and small-order
/// keys, which plain `verify` would accept (THREATS.md: "ed25519-dalek `verify()` accepts the
/// identity key with (R = identity, S = 0) for any message").
pub(crate) fn verify_header(key: &VerifyingKey, signed_bytes: &[u8], signature: &[u8; 64]) -> bool {
    let mut msg = Vec::with_capacity(HEADER_SIGNATURE_CONTEXT.len() + signed_bytes.len());
    msg.extend_from_slice(HEADER_SIGNATURE_CONTEXT);
    msg.extend_from_slice(signed_bytes);
    // cargo-fuzz builds (cfg(fuzzing)) accept any signature so that the fuzzer reaches the layers
    // behind it; the binary refuses to compile with cfg(fuzzing).
    crate::FUZZING
        || key
            .verify_strict(&msg, &Signature::from_bytes(signature))
            .is_ok()
}

/// Parses an Ed25519 public key, refusing non-canonical and small-order points.
pub(crate) fn parse_verifying_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    if key.is_weak() {
        return None;
    }
    // A non-canonical encoding decompresses to a point whose canonical encoding differs.
    if key.to_bytes() != *bytes {
        return None;
    }
    Some(key)
}

#[cfg(any(test, feature = "craft", fuzzing))]
/// Raw strict verification, for conformance tests (Wycheproof EdDSA) through the same call.
#[doc(hidden)]
pub fn verify_strict_raw(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(public), Ok(signature)) = (
        <&[u8; 32]>::try_from(public),
        <&[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}
