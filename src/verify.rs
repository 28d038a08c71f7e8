//! Reading the header and verifying its signatures (FORMAT.md §7 steps 1-6).
//!
//! [`Verified`] is the proof that steps 1-6 passed. Its fields are private and its only
//! constructor is [`UnverifiedHeader::verify`], so code that needs a payload key or a payload
//! reader (which takes a `&Verified<Header>`) cannot run before the signature has verified
//! against a key from the caller's trust store.

use std::io::Read;

use crate::crypto::sign;
use crate::error::{Error, FormatError, IoContext, Result, TrustError, VerifyError};
use crate::format::{self, Header, SignatureEntry, PREFIX_LEN, SIGNATURE_ENTRY_LEN};
use crate::keys::KeyId;
use crate::limits::Limits;
use crate::time::rfc3339;
use crate::trust::TrustStore;

/// A value whose signature verified against a trusted key.
#[derive(Clone, Debug)]
pub struct Verified<T> {
    inner: T,
    signer: KeyId,
    cosigners: Vec<KeyId>,
}

impl<T> Verified<T> {
    /// The verified value.
    pub fn get(&self) -> &T {
        &self.inner
    }

    /// The trusted key whose signature verified.
    pub fn signer(&self) -> KeyId {
        self.signer
    }

    /// Other trusted keys whose signatures over the same header verified.
    pub fn cosigners(&self) -> &[KeyId] {
        &self.cosigners
    }
}

/// A parsed but not yet verified header: what `inspect` may show, marked UNVERIFIED.
#[derive(Clone, Debug)]
pub struct UnverifiedHeader {
    signed: Vec<u8>,
    header: Header,
    signatures: Vec<SignatureEntry>,
}

fn read_exact_or_truncated<R: Read + ?Sized>(
    r: &mut R,
    buf: &mut [u8],
    what: &'static str,
) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FormatError::Truncated { what }.into()
        } else {
            Error::io("reading the archive", e)
        }
    })
}

/// Steps 1-3: the prefix, the header (canonically decoded) and the signature block. Reads exactly
/// up to the first payload byte.
pub fn read_header<R: Read + ?Sized>(r: &mut R, limits: &Limits) -> Result<UnverifiedHeader> {
    limits.validate()?;
    let mut prefix = [0u8; PREFIX_LEN];
    read_exact_or_truncated(r, &mut prefix, "prefix")?;
    // Step 1: magic, version, bounded header length.
    let header_len = format::parse_prefix(&prefix, limits)? as usize;
    let mut signed = Vec::with_capacity(PREFIX_LEN + header_len);
    signed.extend_from_slice(&prefix);
    signed.resize(PREFIX_LEN + header_len, 0);
    read_exact_or_truncated(r, &mut signed[PREFIX_LEN..], "header")?;
    // Step 2: canonical decode and structural checks.
    let header = Header::from_bytes(&signed[PREFIX_LEN..], limits)?;
    // Step 3: the signature block.
    let mut count = [0u8; 1];
    read_exact_or_truncated(r, &mut count, "signature block")?;
    let n = format::check_signature_count(count[0], limits)?;
    let mut signatures = Vec::with_capacity(n);
    for _ in 0..n {
        let mut entry = [0u8; SIGNATURE_ENTRY_LEN];
        read_exact_or_truncated(r, &mut entry, "signature block")?;
        signatures.push(SignatureEntry::from_bytes(&entry));
    }
    Ok(UnverifiedHeader {
        signed,
        header,
        signatures,
    })
}

impl UnverifiedHeader {
    /// The header as parsed. Nothing in it is authenticated yet.
    pub fn header_unverified(&self) -> &Header {
        &self.header
    }

    /// The bytes the signatures cover: the file from offset 0 to the end of the header.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }

    /// The signature entries as parsed.
    pub fn signatures(&self) -> &[SignatureEntry] {
        &self.signatures
    }

    /// Bytes from the start of the file to the first payload byte.
    pub fn archive_offset_of_payload(&self) -> u64 {
        (self.signed.len() + 1 + self.signatures.len() * SIGNATURE_ENTRY_LEN) as u64
    }

    /// Steps 4-6: the signer is trusted, the signatures verify, the archive has not expired at
    /// `now` (Unix seconds).
    pub fn verify(self, trust: &TrustStore, now: u64) -> Result<Verified<Header>> {
        // FORMAT.md §5 step 1: no key signs twice.
        for (i, a) in self.signatures.iter().enumerate() {
            if self.signatures[..i].iter().any(|b| b.key_id == a.key_id) {
                return Err(VerifyError::DuplicateSignature {
                    key_id: hex::encode(a.key_id),
                }
                .into());
            }
        }
        // Step 2: "The header's `signer` must be the id of a key in the caller's trust store", and
        // the policy must trust it for this model name.
        let signer = KeyId(self.header.signer);
        let model = self.header.model_name.as_str();
        if trust.get(&signer).is_none() {
            return Err(VerifyError::UntrustedSigner {
                key_id: signer.to_string(),
            }
            .into());
        }
        let key = trust
            .get_for(&signer, model)
            .ok_or_else(|| TrustError::UntrustedForModel {
                key_id: signer.to_string(),
                model: model.to_owned(),
                scopes: trust.scopes_of(&signer).join(", "),
            })?;
        // Step 3: its signature verifies strictly under the trusted key.
        let entry = self
            .signatures
            .iter()
            .find(|e| e.key_id == signer.0)
            .ok_or_else(|| VerifyError::MissingSignature {
                key_id: signer.to_string(),
            })?;
        if !sign::verify_header(key.verifying_key(), &self.signed, &entry.signature) {
            return Err(VerifyError::BadSignature {
                key_id: signer.to_string(),
            }
            .into());
        }
        // The policy's revocations and validity windows, against the creation time the signature
        // just authenticated.
        let created = self.header.created;
        trust.check_valid_at(&signer, created)?;
        // Step 4: every other signature by a trusted key verifies too; those trusted for this model
        // count towards the policy's threshold. Keys are counted by id, and an id is a hash of the
        // one canonical encoding of the key (non-canonical encodings are refused at import), so a
        // key listed twice, or under two encodings, counts once (TUF CVE-2020-6174).
        let mut cosigners = Vec::new();
        for e in self.signatures.iter().filter(|e| e.key_id != signer.0) {
            let id = KeyId(e.key_id);
            if let Some(k) = trust.get(&id) {
                if !sign::verify_header(k.verifying_key(), &self.signed, &e.signature) {
                    return Err(VerifyError::BadSignature {
                        key_id: id.to_string(),
                    }
                    .into());
                }
                // Only valid, unrevoked keys count towards the threshold.
                if trust.get_for(&id, model).is_some() && trust.check_valid_at(&id, created).is_ok()
                {
                    cosigners.push(id);
                }
            }
        }
        let required = trust.required_signers(model);
        let found = 1 + cosigners.len();
        if found < required {
            return Err(TrustError::TooFewSignatures {
                model: model.to_owned(),
                required,
                found,
            }
            .into());
        }
        // §7 step 6: expiry, against the caller's clock.
        if let Some(exp) = self.header.expires {
            if now >= exp {
                return Err(VerifyError::Expired {
                    expired: rfc3339(exp),
                    now: rfc3339(now),
                }
                .into());
            }
        }
        Ok(Verified {
            inner: self.header,
            signer,
            cosigners,
        })
    }
}

/// Opens a file for reading with a useful error.
pub(crate) fn open_archive(path: &std::path::Path) -> Result<std::fs::File> {
    std::fs::File::open(path).context(|| format!("opening {}", path.display()))
}
