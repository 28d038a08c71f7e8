//! c2sp.org/chunked-encryption, instantiated as Cobblestone-256: HKDF-Expand with SHA-512 and
//! `AEAD_AES_256_GCM` (FORMAT.md §6).
//!
//! > For each message, a tuple of unique, uniformly random *key*, *base nonce*, and *commitment*
//! > are derived from an *input key* [...] with HKDF-Expand. [...] The message is split into
//! > 16 KiB chunks, with the last chunk being always shorter. Each chunk is then encrypted with an
//! > AEAD, the *key*, and the *base nonce* XOR'd with a chunk counter.
//!
//! [`Encryptor`] is a `Write` that emits `salt || commitment || chunks`; [`Decryptor`] is a `Read`
//! that checks the commitment before it decrypts any chunk, and releases each chunk only after its
//! tag verified.

use std::io::{self, Read, Write};

use ring::{aead, hkdf};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{DecryptError, Error};
use crate::limits::HARD_MAX_CHUNK_COUNT;

pub use crate::format::sizes::{
    chunk_count, ciphertext_len, CHUNK_SIZE, COMMITMENT_SIZE, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE,
    SALT_SIZE, TAG_SIZE,
};

/// The input key, and the AEAD key, are 32 bytes for AES-256-GCM.
pub const KEY_SIZE: usize = 32;
const NONCE_SIZE: usize = 12;
const INFO_PREFIX: &[u8] = b"c2sp.org/chunked-encryption@v1+";
/// The AEAD's name "from the AEAD Algorithms IANA registry".
pub const AEAD_NAME: &[u8] = b"AEAD_AES_256_GCM";

/// The derived per-message values.
struct MessageKeys {
    key: aead::LessSafeKey,
    base_nonce: [u8; NONCE_SIZE],
    commitment: [u8; COMMITMENT_SIZE],
}

struct OkmLen(usize);
impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// ```text
/// key || base nonce || commitment = HKDF-Expand(prk = input key,
///     info = "c2sp.org/chunked-encryption@v1+" || aead || 0x00 || salt || context)
/// ```
fn derive(input_key: &[u8; KEY_SIZE], salt: &[u8; SALT_SIZE], context: &[u8]) -> MessageKeys {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA512, input_key);
    let info: [&[u8]; 5] = [INFO_PREFIX, AEAD_NAME, &[0u8], salt, context];
    let mut okm = Zeroizing::new([0u8; KEY_SIZE + NONCE_SIZE + COMMITMENT_SIZE]);
    prk.expand(&info, OkmLen(okm.len()))
        .and_then(|o| o.fill(okm.as_mut()))
        .expect("76 bytes is within HKDF-SHA-512's output limit");
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, &okm[..KEY_SIZE]).expect("32-byte AES-256 key"),
    );
    let mut base_nonce = [0u8; NONCE_SIZE];
    base_nonce.copy_from_slice(&okm[KEY_SIZE..KEY_SIZE + NONCE_SIZE]);
    let mut commitment = [0u8; COMMITMENT_SIZE];
    commitment.copy_from_slice(&okm[KEY_SIZE + NONCE_SIZE..]);
    MessageKeys {
        key,
        base_nonce,
        commitment,
    }
}

/// "the XOR of the *base nonce* and the chunk number as a big-endian integer as wide as the *base
/// nonce*". Chunk numbers stay below 2^38, so the low eight bytes carry all of it.
fn chunk_nonce(base: &[u8; NONCE_SIZE], index: u64) -> aead::Nonce {
    let mut n = *base;
    for (b, c) in n[NONCE_SIZE - 8..].iter_mut().zip(index.to_be_bytes()) {
        *b ^= c;
    }
    aead::Nonce::assume_unique_for_key(n)
}

/// Checks an input key's length: "Vectors with the `InvalidKeySize` flag must be rejected when the
/// key is provided".
pub fn input_key(bytes: &[u8]) -> Result<&[u8; KEY_SIZE], DecryptError> {
    bytes
        .try_into()
        .map_err(|_| DecryptError::InvalidKeySize { len: bytes.len() })
}

/// The commitment for an input key and salt (FORMAT.md §4.4).
pub fn commitment(
    input_key: &[u8; KEY_SIZE],
    salt: &[u8; SALT_SIZE],
    context: &[u8],
) -> [u8; COMMITMENT_SIZE] {
    derive(input_key, salt, context).commitment
}

/// AES-256-GCM over one chunk, in place; returns the tag.
///
/// Under `cfg(fuzzing)` (set only by cargo-fuzz) this is a null cipher with a zero tag, so that the
/// fuzzer reaches the decompression, tar and manifest layers behind the AEAD, as rustls' fuzzing
/// crypto provider does. The `modelseal` binary refuses to compile with `cfg(fuzzing)`.
fn seal_chunk(
    key: &aead::LessSafeKey,
    nonce: aead::Nonce,
    buf: &mut [u8],
) -> io::Result<[u8; TAG_SIZE]> {
    if crate::FUZZING {
        return Ok([0u8; TAG_SIZE]);
    }
    let tag = key
        .seal_in_place_separate_tag(nonce, aead::Aad::empty(), buf)
        .map_err(|_| io::Error::other("AES-GCM seal failed"))?;
    let mut out = [0u8; TAG_SIZE];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Authenticates and decrypts one chunk in place; returns the plaintext length. See
/// [`seal_chunk`] for the fuzzing build.
fn open_chunk(key: &aead::LessSafeKey, nonce: aead::Nonce, buf: &mut [u8]) -> Option<usize> {
    if crate::FUZZING {
        return buf.len().checked_sub(TAG_SIZE);
    }
    key.open_in_place(nonce, aead::Aad::empty(), buf)
        .ok()
        .map(|p| p.len())
}

/// Random-access chunk encryption for writers that produce chunks out of order (the single-pass
/// stored payload writer). The caller must produce exactly the spec's chunking: full chunks at
/// indices `0..n-1` and one final short (possibly empty) chunk at `n-1`, each sealed exactly once.
pub(crate) struct ChunkSealer {
    keys: MessageKeys,
    salt: [u8; SALT_SIZE],
}

impl ChunkSealer {
    /// A fresh random salt for `input_key`.
    pub(crate) fn new(input_key: &[u8; KEY_SIZE], context: &[u8]) -> Self {
        let mut salt = [0u8; SALT_SIZE];
        super::fill_random(&mut salt);
        ChunkSealer {
            keys: derive(input_key, &salt, context),
            salt,
        }
    }

    /// `salt || commitment`: the first 56 bytes of the ciphertext.
    pub(crate) fn prefix(&self) -> [u8; PREFIX_SIZE] {
        let mut p = [0u8; PREFIX_SIZE];
        p[..SALT_SIZE].copy_from_slice(&self.salt);
        p[SALT_SIZE..].copy_from_slice(&self.keys.commitment);
        p
    }

    /// Encrypts chunk `index` in place (at most 16 KiB of plaintext) and appends its tag. Crate
    /// private: sealing one index twice would reuse its nonce, and only the stored writer, which
    /// seals each index once in order, may call it.
    pub(crate) fn seal(&self, index: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        if index >= HARD_MAX_CHUNK_COUNT || buf.len() > CHUNK_SIZE {
            return Err(Error::from(DecryptError::TooManyChunks {
                max: HARD_MAX_CHUNK_COUNT,
            })
            .into_io());
        }
        let tag = seal_chunk(
            &self.keys.key,
            chunk_nonce(&self.keys.base_nonce, index),
            buf,
        )?;
        buf.extend_from_slice(&tag);
        Ok(())
    }
}

/// Streaming encryptor: writes `salt || commitment`, then one chunk per 16 KiB of input, and the
/// final short chunk on [`Encryptor::finish`].
pub struct Encryptor<W: Write> {
    inner: W,
    keys: MessageKeys,
    salt: [u8; SALT_SIZE],
    buf: Vec<u8>,
    index: u64,
}

impl<W: Write> Encryptor<W> {
    /// Starts a message with a fresh random salt.
    pub fn new(inner: W, input_key: &[u8; KEY_SIZE], context: &[u8]) -> io::Result<Self> {
        let mut salt = [0u8; SALT_SIZE];
        super::fill_random(&mut salt);
        Self::with_salt(inner, input_key, &salt, context)
    }

    /// Starts a message with a given salt. The salt "MUST NOT repeat for a certain input key";
    /// only tests that reproduce known vectors should choose it.
    pub fn with_salt(
        mut inner: W,
        input_key: &[u8; KEY_SIZE],
        salt: &[u8; SALT_SIZE],
        context: &[u8],
    ) -> io::Result<Self> {
        let keys = derive(input_key, salt, context);
        inner.write_all(salt)?;
        inner.write_all(&keys.commitment)?;
        Ok(Encryptor {
            inner,
            keys,
            salt: *salt,
            buf: Vec::with_capacity(ENCRYPTED_CHUNK_SIZE),
            index: 0,
        })
    }

    /// The commitment this encryptor wrote.
    pub fn commitment(&self) -> [u8; COMMITMENT_SIZE] {
        self.keys.commitment
    }

    /// The salt this encryptor wrote.
    pub fn salt(&self) -> [u8; SALT_SIZE] {
        self.salt
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.index >= HARD_MAX_CHUNK_COUNT {
            // "If the chunk counter reaches or exceeds 2^38 while encrypting [...] implementations
            // MUST abort."
            return Err(Error::from(DecryptError::TooManyChunks {
                max: HARD_MAX_CHUNK_COUNT,
            })
            .into_io());
        }
        let tag = seal_chunk(
            &self.keys.key,
            chunk_nonce(&self.keys.base_nonce, self.index),
            &mut self.buf,
        )?;
        self.buf.extend_from_slice(&tag);
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Encrypts the final, short (possibly empty) chunk and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        debug_assert!(self.buf.len() < CHUNK_SIZE);
        self.emit()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK_SIZE - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        // "flush that buffer into an encrypted chunk immediately once the buffer fills up": a
        // full chunk is never the final one.
        if self.buf.len() == CHUNK_SIZE {
            self.emit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streaming decryptor. Construction reads the salt and commitment and checks the commitment;
/// reads then yield plaintext one authenticated chunk at a time. Once an error is returned, every
/// later read returns an error too.
pub struct Decryptor<R: Read> {
    inner: R,
    keys: MessageKeys,
    max_chunks: u64,
    index: u64,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    failed: Option<DecryptError>,
}

impl<R: Read> std::fmt::Debug for Decryptor<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("index", &self.index)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> Decryptor<R> {
    /// Reads `salt || commitment` and checks the commitment: "When decrypting, implementations
    /// MUST check the *commitment* matches the derived value before continuing."
    pub fn new(
        mut inner: R,
        input_key: &[u8; KEY_SIZE],
        context: &[u8],
        max_chunks: u64,
    ) -> Result<Self, Error> {
        let mut prefix = [0u8; PREFIX_SIZE];
        let n =
            read_full(&mut inner, &mut prefix).map_err(|e| Error::io("reading the payload", e))?;
        if n < PREFIX_SIZE {
            return Err(DecryptError::Truncated {
                detail: "shorter than salt and commitment",
            }
            .into());
        }
        let salt: &[u8; SALT_SIZE] = prefix[..SALT_SIZE].try_into().expect("24 bytes");
        let keys = derive(input_key, salt, context);
        if !bool::from(keys.commitment.ct_eq(&prefix[SALT_SIZE..])) && !crate::FUZZING {
            return Err(DecryptError::KeyCommitmentMismatch.into());
        }
        Ok(Decryptor {
            inner,
            keys,
            max_chunks: max_chunks.min(HARD_MAX_CHUNK_COUNT),
            index: 0,
            buf: Vec::with_capacity(ENCRYPTED_CHUNK_SIZE),
            pos: 0,
            done: false,
            failed: None,
        })
    }

    /// The inner reader, for draining after an error.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// True once the final short chunk has been authenticated and fully read.
    pub fn is_finished(&self) -> bool {
        self.done && self.pos == self.buf.len()
    }

    fn fail(&mut self, e: DecryptError) -> io::Error {
        let out = match &e {
            DecryptError::ChunkAuthentication { index } => {
                DecryptError::ChunkAuthentication { index: *index }
            }
            DecryptError::Truncated { detail } => DecryptError::Truncated { detail },
            DecryptError::TooManyChunks { max } => DecryptError::TooManyChunks { max: *max },
            _ => DecryptError::Truncated {
                detail: "decryption failed",
            },
        };
        self.failed = Some(e);
        Error::from(out).into_io()
    }

    /// Reads and authenticates the next chunk into `buf`.
    fn next_chunk(&mut self) -> io::Result<()> {
        if self.index >= self.max_chunks {
            return Err(self.fail(DecryptError::TooManyChunks {
                max: self.max_chunks,
            }));
        }
        self.buf.resize(ENCRYPTED_CHUNK_SIZE, 0);
        let n = read_full(&mut self.inner, &mut self.buf)?;
        self.buf.truncate(n);
        // A full-length read is a full chunk; anything shorter is the final chunk, which "must
        // have encrypted length between len(tag) and 16 KiB + len(tag) - 1".
        let is_final = n < ENCRYPTED_CHUNK_SIZE;
        if is_final && n < TAG_SIZE {
            let detail = if n == 0 {
                "final short chunk missing"
            } else {
                "final chunk shorter than a tag"
            };
            return Err(self.fail(DecryptError::Truncated { detail }));
        }
        let nonce = chunk_nonce(&self.keys.base_nonce, self.index);
        let plain_len = match open_chunk(&self.keys.key, nonce, &mut self.buf) {
            Some(n) => n,
            None => {
                self.buf.clear();
                let index = self.index;
                return Err(self.fail(DecryptError::ChunkAuthentication { index }));
            }
        };
        self.buf.truncate(plain_len);
        self.pos = 0;
        self.index += 1;
        self.done = is_final;
        Ok(())
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(Error::from(match e {
                DecryptError::ChunkAuthentication { index } => {
                    DecryptError::ChunkAuthentication { index: *index }
                }
                DecryptError::TooManyChunks { max } => DecryptError::TooManyChunks { max: *max },
                DecryptError::Truncated { detail } => DecryptError::Truncated { detail },
                _ => DecryptError::Truncated {
                    detail: "decryption failed",
                },
            })
            .into_io());
        }
        while self.pos == self.buf.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decrypts a whole in-memory ciphertext (tests and small messages).
pub fn decrypt_to_vec(
    ciphertext: &[u8],
    input_key: &[u8],
    context: &[u8],
    max_chunks: u64,
) -> Result<Vec<u8>, Error> {
    let key = input_key_checked(input_key)?;
    let mut d = Decryptor::new(ciphertext, key, context, max_chunks)?;
    let mut out = Vec::new();
    d.read_to_end(&mut out)
        .map_err(|e| Error::io("decrypting", e))?;
    Ok(out)
}

fn input_key_checked(bytes: &[u8]) -> Result<&[u8; KEY_SIZE], Error> {
    Ok(input_key(bytes)?)
}

#[cfg(any(test, feature = "craft", fuzzing))]
/// Encrypts a whole in-memory message (tests and small messages).
pub fn encrypt_to_vec(
    plaintext: &[u8],
    input_key: &[u8; KEY_SIZE],
    salt: &[u8; SALT_SIZE],
    context: &[u8],
) -> Vec<u8> {
    let mut e = Encryptor::with_salt(Vec::new(), input_key, salt, context)
        .expect("writing to a Vec cannot fail");
    e.write_all(plaintext)
        .expect("writing to a Vec cannot fail");
    e.finish().expect("writing to a Vec cannot fail")
}

/// Raw mode: AEAD chunks only, with a given key and base nonce (c2sp appendix), for conformance
/// tests of deterministic encryption.
#[doc(hidden)]
pub fn raw_encrypt_for_tests(
    plaintext: &[u8],
    aead_key: &[u8; KEY_SIZE],
    base_nonce: &[u8; NONCE_SIZE],
) -> Vec<u8> {
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, aead_key).expect("32-byte key"),
    );
    let mut out = Vec::new();
    let mut chunks: Vec<&[u8]> = plaintext.chunks(CHUNK_SIZE).collect();
    if plaintext.len().is_multiple_of(CHUNK_SIZE) {
        chunks.push(&[]);
    }
    for (i, c) in chunks.into_iter().enumerate() {
        let mut buf = c.to_vec();
        let tag = key
            .seal_in_place_separate_tag(
                chunk_nonce(base_nonce, i as u64),
                aead::Aad::empty(),
                &mut buf,
            )
            .expect("chunk within AES-GCM limits");
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_matches_the_spec_examples() {
        // "An empty message is encrypted as a single empty chunk."
        assert_eq!(chunk_count(0), 1);
        assert_eq!(chunk_count(1024), 1);
        // "A message of 16 KiB is encrypted as two chunks, one of 16 KiB and one empty."
        assert_eq!(chunk_count(16384), 2);
        assert_eq!(chunk_count(20 * 1024), 2);
        assert_eq!(ciphertext_len(0), Some(56 + 16));
        assert_eq!(ciphertext_len(u64::MAX), None);
    }

    #[test]
    fn round_trip_at_chunk_edges() {
        let key = [7u8; 32];
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
        ] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ct = encrypt_to_vec(&msg, &key, &[1u8; 24], b"ctx");
            assert_eq!(ct.len() as u64, ciphertext_len(len as u64).unwrap());
            assert_eq!(decrypt_to_vec(&ct, &key, b"ctx", 1 << 32).unwrap(), msg);
        }
    }

    #[test]
    fn wrong_key_fails_at_commitment() {
        let ct = encrypt_to_vec(b"hello", &[1u8; 32], &[2u8; 24], b"");
        let err = decrypt_to_vec(&ct, &[9u8; 32], b"", 1 << 32).unwrap_err();
        assert!(
            matches!(err, Error::Decrypt(DecryptError::KeyCommitmentMismatch)),
            "{err:?}"
        );
    }

    #[test]
    fn chunk_limit_is_enforced() {
        let ct = encrypt_to_vec(&[0u8; 3 * CHUNK_SIZE], &[1u8; 32], &[2u8; 24], b"");
        let err = decrypt_to_vec(&ct, &[1u8; 32], b"", 2).unwrap_err();
        assert!(
            matches!(err, Error::Decrypt(DecryptError::TooManyChunks { max: 2 })),
            "{err:?}"
        );
    }
}
