//! Wrapping the payload input key to recipients (FORMAT.md §4.2, §4.3).

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::{aes_gcm_open_once, aes_gcm_seal_once, hkdf_sha256, random32};
use crate::error::DecryptError;

use crate::format::domain::{SHARED_WRAP_INFO, X25519_WRAP_INFO};

/// A wrapped key: 32 bytes of ciphertext and a 16-byte tag.
pub(crate) type Wrapped = [u8; 48];

fn x25519_wrap_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    hkdf_sha256(shared, &salt, X25519_WRAP_INFO)
}

/// Wraps `file_key` to `recipient`; returns `(ephemeral share, wrapped key)`.
pub(crate) fn x25519_wrap(
    file_key: &[u8; 32],
    recipient: &PublicKey,
) -> Result<([u8; 32], Wrapped), DecryptError> {
    let e = StaticSecret::from(*random32());
    let ephemeral = PublicKey::from(&e).to_bytes();
    let shared = e.diffie_hellman(recipient);
    if !shared.was_contributory() {
        return Err(DecryptError::NonContributory);
    }
    let wrap_key = x25519_wrap_key(shared.as_bytes(), &ephemeral, recipient.as_bytes());
    Ok((ephemeral, aes_gcm_seal_once(&wrap_key, file_key)))
}

/// Tries to unwrap one X25519 stanza; `Ok(None)` when it is not for this identity.
pub(crate) fn x25519_unwrap(
    identity: &StaticSecret,
    ephemeral: &[u8; 32],
    wrapped: &Wrapped,
) -> Result<Option<Zeroizing<[u8; 32]>>, DecryptError> {
    let shared = identity.diffie_hellman(&PublicKey::from(*ephemeral));
    if !shared.was_contributory() {
        return Err(DecryptError::NonContributory);
    }
    let recipient = PublicKey::from(identity).to_bytes();
    let wrap_key = x25519_wrap_key(shared.as_bytes(), ephemeral, &recipient);
    Ok(aes_gcm_open_once(&wrap_key, wrapped))
}

/// Wraps `file_key` under a shared symmetric key; returns `(salt, wrapped key)`.
pub(crate) fn shared_wrap(file_key: &[u8; 32], shared_key: &[u8; 32]) -> ([u8; 32], Wrapped) {
    let salt = *random32();
    let wrap_key = hkdf_sha256(shared_key, &salt, SHARED_WRAP_INFO);
    (salt, aes_gcm_seal_once(&wrap_key, file_key))
}

/// Tries to unwrap one shared-key stanza.
pub(crate) fn shared_unwrap(
    shared_key: &[u8; 32],
    salt: &[u8; 32],
    wrapped: &Wrapped,
) -> Option<Zeroizing<[u8; 32]>> {
    let wrap_key = hkdf_sha256(shared_key, salt, SHARED_WRAP_INFO);
    aes_gcm_open_once(&wrap_key, wrapped)
}

/// True when `public` is a low-order X25519 point: a clamped scalar is a multiple of the cofactor,
/// so its product with a small-order point is the all-zero output.
pub fn is_weak_x25519(public: &[u8; 32]) -> bool {
    let probe = StaticSecret::from([0x5a; 32]);
    !probe
        .diffie_hellman(&PublicKey::from(*public))
        .was_contributory()
}

#[cfg(any(test, feature = "craft", fuzzing))]
/// X25519 through the same library call the wrap uses, for Wycheproof XDH vectors.
#[doc(hidden)]
pub fn x25519_raw(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    StaticSecret::from(*secret)
        .diffie_hellman(&PublicKey::from(*public))
        .to_bytes()
}
