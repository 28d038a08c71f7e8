//! The only module that touches AES-GCM, HKDF, Ed25519 and X25519 (STYLE.md §2).

pub mod chunked;
pub mod sign;
pub mod wrap;

use zeroize::Zeroizing;

/// A fresh 32-byte value from the operating system's CSPRNG.
pub(crate) fn random32() -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    fill_random(out.as_mut());
    out
}

/// Fills `out` from the operating system's CSPRNG.
pub(crate) fn fill_random(out: &mut [u8]) {
    use ring::rand::SecureRandom;
    // ring's SystemRandom fails only if the OS has no entropy source at all; there is no safe way
    // to continue without one.
    ring::rand::SystemRandom::new()
        .fill(out)
        .expect("the operating system's random number generator failed");
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// An incremental SHA-256.
#[derive(Clone)]
pub struct Sha256(ring::digest::Context);

impl Default for Sha256 {
    fn default() -> Self {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }
}

impl Sha256 {
    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data)
    }
    /// The digest of everything added.
    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// AES-256-GCM with a 12-byte zero nonce and empty AAD, for single-use wrap keys (FORMAT.md §4.2).
pub(crate) fn aes_gcm_seal_once(key: &[u8; 32], plaintext: &[u8; 32]) -> [u8; 48] {
    if crate::FUZZING {
        let mut out = [0u8; 48];
        out[..32].copy_from_slice(plaintext);
        return out;
    }
    use ring::aead;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, key).expect("32-byte key"),
    );
    let mut buf = [0u8; 48];
    buf[..32].copy_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key([0u8; 12]),
            aead::Aad::empty(),
            &mut buf[..32],
        )
        .expect("32 bytes is far below the AES-GCM message limit");
    buf[32..].copy_from_slice(tag.as_ref());
    buf
}

/// Opens [`aes_gcm_seal_once`] output; `None` when the tag does not verify.
pub(crate) fn aes_gcm_open_once(key: &[u8; 32], wrapped: &[u8; 48]) -> Option<Zeroizing<[u8; 32]>> {
    if crate::FUZZING {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&wrapped[..32]);
        return Some(out);
    }
    use ring::aead;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, key).expect("32-byte key"),
    );
    let mut buf = Zeroizing::new(*wrapped);
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key([0u8; 12]),
            aead::Aad::empty(),
            &mut buf[..],
        )
        .ok()?;
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(plain);
    Some(out)
}

/// AES-256-GCM with a 12-byte zero nonce under a single-use key (one derived from a fresh salt),
/// binding `aad`: a 64-byte secret key sealed to 80 bytes (keys/README.md, encrypted keys).
pub(crate) fn aes_gcm_seal_secret(key: &[u8; 32], aad: &[u8], secret: &[u8; 64]) -> [u8; 80] {
    use ring::aead;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, key).expect("32-byte key"),
    );
    let mut buf = [0u8; 80];
    buf[..64].copy_from_slice(secret);
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key([0u8; 12]),
            aead::Aad::from(aad),
            &mut buf[..64],
        )
        .expect("64 bytes is far below the AES-GCM message limit");
    buf[64..].copy_from_slice(tag.as_ref());
    buf
}

/// Opens [`aes_gcm_seal_secret`] output; `None` when the tag does not verify (the tag is
/// compared in constant time by ring).
pub(crate) fn aes_gcm_open_secret(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8; 80],
) -> Option<Zeroizing<[u8; 64]>> {
    use ring::aead;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, key).expect("32-byte key"),
    );
    let mut buf = Zeroizing::new(*sealed);
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key([0u8; 12]),
            aead::Aad::from(aad),
            &mut buf[..],
        )
        .ok()?;
    let mut out = Zeroizing::new([0u8; 64]);
    out.copy_from_slice(plain);
    Some(out)
}

/// HKDF-SHA-256 (extract and expand) to 32 bytes.
pub(crate) fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    use ring::hkdf;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let info = [info];
    let okm = prk
        .expand(&info, hkdf::HKDF_SHA256)
        .expect("32 bytes is within HKDF-SHA-256's output limit");
    let mut out = Zeroizing::new([0u8; 32]);
    okm.fill(out.as_mut()).expect("length matches");
    out
}

#[cfg(any(test, feature = "craft", fuzzing))]
/// AES-256-GCM open with ring, exactly as the chunk and wrap paths call it, for conformance tests
/// (Wycheproof AES-GCM) and the differential test. `None` when the tag does not verify.
#[doc(hidden)]
pub fn aes256gcm_open_raw(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Option<Vec<u8>> {
    use ring::aead;
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, key).ok()?);
    let mut buf = ciphertext_and_tag.to_vec();
    let n = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(*nonce),
            aead::Aad::from(aad),
            &mut buf,
        )
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

#[cfg(any(test, feature = "craft", fuzzing))]
/// AES-256-GCM seal with ring (ciphertext || tag), the counterpart of [`aes256gcm_open_raw`].
#[doc(hidden)]
pub fn aes256gcm_seal_raw(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    use ring::aead;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, key).expect("32-byte key"),
    );
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(*nonce),
        aead::Aad::from(aad),
        &mut buf,
    )
    .expect("within AES-GCM limits");
    buf
}
