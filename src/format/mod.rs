//! Bytes ↔ types for the archive's fixed prefix, header, stanzas and signature block
//! (FORMAT.md §1-§3, §5), the manifest (§9), the payload's size arithmetic (§6) and the domain
//! strings. No cryptography here: this module imports only `error` and `limits`.

pub mod domain;
pub mod manifest;
pub mod sizes;

use bincode::{Decode, Encode};

use crate::error::FormatError;
use crate::limits::{Limits, HARD_MAX_HEADER_BYTES};

/// "MSEAL" CR LF ^Z (FORMAT.md §1).
pub const MAGIC: [u8; 8] = *b"MSEAL\r\n\x1a";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// magic (8) + format_version (2) + header_len (4).
pub const PREFIX_LEN: usize = 14;
/// key id (16) + Ed25519 signature (64).
pub const SIGNATURE_ENTRY_LEN: usize = 80;

/// Canonical decoding under a hard byte limit, with no bytes left over, re-encoded and compared
/// (FORMAT.md §2).
pub(crate) fn decode_canonical<T: Decode<()> + Encode, const LIMIT: usize>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, FormatError> {
    let config = bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<LIMIT>();
    if bytes.len() > LIMIT {
        return Err(FormatError::Decode {
            what,
            detail: format!("{} bytes exceeds the {LIMIT}-byte limit", bytes.len()),
        });
    }
    let (value, used): (T, usize) =
        bincode::decode_from_slice(bytes, config).map_err(|e| FormatError::Decode {
            what,
            detail: short(&e.to_string()),
        })?;
    if used != bytes.len() {
        return Err(FormatError::TrailingBytes {
            what,
            extra: (bytes.len() - used) as u64,
        });
    }
    if encode(&value) != bytes {
        return Err(FormatError::NonCanonical { what });
    }
    Ok(value)
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The canonical encoding (FORMAT.md §2).
pub(crate) fn encode<T: Encode>(value: &T) -> Vec<u8> {
    let config = bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding();
    bincode::encode_to_vec(value, config).expect("encoding into a Vec cannot fail")
}

/// The algorithm suite (FORMAT.md §4). The suite is a signed header field: an encrypted archive
/// can never pass for a public one, nor the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[non_exhaustive]
pub enum Suite {
    /// Ed25519, X25519, Cobblestone-256 (c2sp chunked encryption, AES-256-GCM, HKDF-SHA-512), BLAKE3.
    Mseal1Ed25519X25519Cobblestone256Blake3,
    /// Ed25519 and BLAKE3, the payload in the clear (FORMAT.md §4.5): signed, not encrypted.
    Mseal1Ed25519PublicBlake3,
}

impl Suite {
    /// The suite's name, as printed by `inspect`.
    pub fn name(&self) -> &'static str {
        match self {
            Suite::Mseal1Ed25519X25519Cobblestone256Blake3 => {
                "MSEAL1-ED25519-X25519-COBBLESTONE256-BLAKE3"
            }
            Suite::Mseal1Ed25519PublicBlake3 => "MSEAL1-ED25519-PUBLIC-BLAKE3",
        }
    }

    /// Whether the payload is stored in the clear (suite 1): no recipients, no key to open it.
    pub fn is_public(&self) -> bool {
        matches!(self, Suite::Mseal1Ed25519PublicBlake3)
    }

    /// The number of chunks a message of `len` bytes has under this suite (0 in the clear).
    pub fn chunk_count(&self, len: u64) -> u64 {
        if self.is_public() {
            0
        } else {
            sizes::chunk_count(len)
        }
    }

    /// The payload length for a message of `len` bytes, or `None` on overflow.
    pub fn payload_len(&self, len: u64) -> Option<u64> {
        if self.is_public() {
            Some(len)
        } else {
            sizes::ciphertext_len(len)
        }
    }
}

/// How the tar stream is stored inside the encryption (FORMAT.md §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Compression {
    /// Stored as is.
    None,
    /// One zstd frame.
    Zstd,
}

/// One wrapped copy of the payload input key (FORMAT.md §4.2, §4.3).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Stanza {
    /// For an X25519 public key.
    X25519 {
        /// The sender's ephemeral X25519 share.
        ephemeral: [u8; 32],
        /// AES-256-GCM of the input key.
        wrapped_key: [u8; 48],
    },
    /// For a shared symmetric key.
    SharedKey {
        /// HKDF salt.
        salt: [u8; 32],
        /// AES-256-GCM of the input key.
        wrapped_key: [u8; 48],
    },
}

/// The signed header (FORMAT.md §3).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Header {
    /// Algorithm suite.
    pub suite: Suite,
    /// Key id of the signer.
    pub signer: [u8; 16],
    /// Wrapped payload keys.
    pub recipients: Vec<Stanza>,
    /// Chunked-encryption salt.
    pub salt: [u8; 24],
    /// Chunked-encryption key commitment.
    pub commitment: [u8; 32],
    /// Whether the tar stream is zstd-compressed.
    pub compression: Compression,
    /// Length of the uncompressed tar stream.
    pub tar_size: u64,
    /// Length of the encrypted message.
    pub plaintext_size: u64,
    /// Number of encrypted chunks.
    pub chunk_count: u64,
    /// Length of the payload.
    pub ciphertext_size: u64,
    /// BLAKE3 of the payload.
    pub payload_digest: [u8; 32],
    /// Model name.
    pub model_name: String,
    /// Model version (semver).
    pub model_version: String,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Expiry time, Unix seconds.
    pub expires: Option<u64>,
    /// Length of the manifest entry.
    pub manifest_size: u64,
    /// SHA-256 of the manifest entry.
    pub manifest_sha256: [u8; 32],
}

impl Header {
    /// Encodes the header (FORMAT.md §2).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a header canonically and checks its structure (FORMAT.md §7 step 2).
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Header, FormatError> {
        let h: Header =
            decode_canonical::<Header, { HARD_MAX_HEADER_BYTES as usize }>(bytes, "header")?;
        h.check(limits)?;
        Ok(h)
    }

    /// The structural rules of FORMAT.md §3.
    pub fn check(&self, limits: &Limits) -> Result<(), FormatError> {
        if self.suite.is_public() {
            // FORMAT.md §4.5: nothing of the encryption may be present.
            let suite = self.suite.name();
            for (field, empty) in [
                ("no recipients", self.recipients.is_empty()),
                ("an all-zero salt", self.salt == [0; 24]),
                ("an all-zero commitment", self.commitment == [0; 32]),
            ] {
                if !empty {
                    return Err(FormatError::SuiteFields { suite, field });
                }
            }
        } else if self.recipients.is_empty() || self.recipients.len() > limits.max_recipients {
            return Err(FormatError::RecipientCount {
                found: self.recipients.len(),
                max: limits.max_recipients,
            });
        }
        let inconsistent = |detail: String| FormatError::InconsistentSizes { detail };
        let chunks = self.suite.chunk_count(self.plaintext_size);
        if self.chunk_count != chunks {
            return Err(inconsistent(format!(
                "chunk_count {} but plaintext_size {} needs {chunks}",
                self.chunk_count, self.plaintext_size
            )));
        }
        if self.chunk_count > limits.max_chunk_count {
            return Err(FormatError::TooManyChunks {
                found: self.chunk_count,
                max: limits.max_chunk_count,
            });
        }
        match self.suite.payload_len(self.plaintext_size) {
            Some(n) if n == self.ciphertext_size => {}
            _ => {
                return Err(inconsistent(format!(
                    "ciphertext_size {} does not match plaintext_size {}",
                    self.ciphertext_size, self.plaintext_size
                )))
            }
        }
        if self.compression == Compression::None && self.tar_size != self.plaintext_size {
            return Err(inconsistent(format!(
                "uncompressed tar_size {} differs from plaintext_size {}",
                self.tar_size, self.plaintext_size
            )));
        }
        if self.manifest_size > limits.max_manifest_bytes || self.manifest_size > self.tar_size {
            return Err(inconsistent(format!(
                "manifest_size {} above limit or tar_size",
                self.manifest_size
            )));
        }
        if !self.tar_size.is_multiple_of(512) {
            return Err(inconsistent(format!(
                "tar_size {} is not a multiple of 512",
                self.tar_size
            )));
        }
        manifest::ModelName::parse(&self.model_name)?;
        manifest::parse_version(&self.model_version)?;
        if self.created > crate::limits::MAX_TIME
            || self.expires.is_some_and(|e| e > crate::limits::MAX_TIME)
        {
            return Err(inconsistent(format!(
                "created {} or expires {:?} after {} (9999-12-31T23:59:59Z)",
                self.created,
                self.expires,
                crate::limits::MAX_TIME
            )));
        }
        if let Some(exp) = self.expires {
            if exp <= self.created {
                return Err(inconsistent(format!(
                    "expires {exp} is not after created {}",
                    self.created
                )));
            }
        }
        Ok(())
    }
}

/// The 14-byte prefix (FORMAT.md §1).
pub(crate) fn encode_prefix(header_len: u32) -> [u8; PREFIX_LEN] {
    let mut p = [0u8; PREFIX_LEN];
    p[..8].copy_from_slice(&MAGIC);
    p[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    p[10..14].copy_from_slice(&header_len.to_be_bytes());
    p
}

/// Checks the prefix; returns the header length (FORMAT.md §7 step 1).
pub(crate) fn parse_prefix(p: &[u8; PREFIX_LEN], limits: &Limits) -> Result<u32, FormatError> {
    if p[..8] != MAGIC {
        return Err(FormatError::BadMagic {
            found: hex::encode(&p[..8]),
        });
    }
    let version = u16::from_be_bytes([p[8], p[9]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let len = u32::from_be_bytes([p[10], p[11], p[12], p[13]]);
    if len == 0 || len > limits.max_header_bytes {
        return Err(FormatError::HeaderTooLarge {
            found: len.into(),
            max: limits.max_header_bytes.into(),
        });
    }
    Ok(len)
}

/// One signature entry (FORMAT.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureEntry {
    /// Key id of the signer.
    pub key_id: [u8; 16],
    /// Ed25519 signature.
    pub signature: [u8; 64],
}

impl SignatureEntry {
    pub(crate) fn to_bytes(self) -> [u8; SIGNATURE_ENTRY_LEN] {
        let mut b = [0u8; SIGNATURE_ENTRY_LEN];
        b[..16].copy_from_slice(&self.key_id);
        b[16..].copy_from_slice(&self.signature);
        b
    }

    pub(crate) fn from_bytes(b: &[u8; SIGNATURE_ENTRY_LEN]) -> Self {
        let mut key_id = [0u8; 16];
        key_id.copy_from_slice(&b[..16]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[16..]);
        SignatureEntry { key_id, signature }
    }
}

/// Checks the signature count byte (FORMAT.md §5 step 1).
pub(crate) fn check_signature_count(count: u8, limits: &Limits) -> Result<usize, FormatError> {
    let n = usize::from(count);
    if n == 0 || n > limits.max_signatures {
        return Err(FormatError::SignatureCount {
            found: n,
            max: limits.max_signatures,
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            suite: Suite::Mseal1Ed25519X25519Cobblestone256Blake3,
            signer: [1; 16],
            recipients: vec![Stanza::X25519 {
                ephemeral: [2; 32],
                wrapped_key: [3; 48],
            }],
            salt: [4; 24],
            commitment: [5; 32],
            compression: Compression::Zstd,
            tar_size: 2048,
            plaintext_size: 100,
            chunk_count: 1,
            ciphertext_size: 56 + 100 + 16,
            payload_digest: [6; 32],
            model_name: "iris".into(),
            model_version: "1.0.0".into(),
            created: 1,
            expires: None,
            manifest_size: 10,
            manifest_sha256: [7; 32],
        }
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        assert_eq!(
            Header::from_bytes(&h.to_bytes(), &Limits::default()).unwrap(),
            h
        );
    }

    #[test]
    fn trailing_and_noncanonical_bytes_are_refused() {
        let mut b = sample().to_bytes();
        b.push(0);
        assert!(matches!(
            Header::from_bytes(&b, &Limits::default()),
            Err(FormatError::TrailingBytes { extra: 1, .. })
        ));
        // An Option tag of 2 is not a valid encoding at all.
        let mut b = sample().to_bytes();
        let pos = b.len() - 8 - 32 - 1;
        b[pos] = 2;
        assert!(Header::from_bytes(&b, &Limits::default()).is_err());
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating() {
        // Suite 0, 16-byte signer, then a recipients length of 2^40.
        let mut b = vec![0u8; 4 + 16];
        b.extend_from_slice(&(1u64 << 40).to_le_bytes());
        b.extend_from_slice(&[0u8; 64]);
        assert!(matches!(
            Header::from_bytes(&b, &Limits::default()),
            Err(FormatError::Decode { .. })
        ));
    }
}
