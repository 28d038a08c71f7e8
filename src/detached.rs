//! Detached co-signatures (FORMAT.md §5.1): one signature entry over an archive's header, in a
//! file of its own, so that a co-signer can vouch for an archive that already sits in a registry
//! without re-pushing it (`modelseal sign --detached`, attached as an OCI referrer). `pull`
//! collects them and adds those that verify to the archive's signature block before the checks
//! of §7, which then count them for k-of-n policies as if `sign --add` had added them.

use std::io::{self, Read, Write};
use std::path::Path;

use crate::crypto::sign;
use crate::error::{FormatError, IoContext, Result, VerifyError};
use crate::format::{Header, SignatureEntry};
use crate::keys::{KeyId, Signer};
use crate::limits::Limits;
use crate::trust::TrustStore;
use crate::verify::{read_header, UnverifiedHeader};

/// The OCI artifact type a detached signature is attached with.
pub const DETACHED_SIGNATURE_TYPE: &str = "application/vnd.modelseal.signature.v1";
/// The file's first bytes.
pub const DETACHED_SIGNATURE_MAGIC: &[u8; 8] = b"MSEALSIG";
/// The only version.
const VERSION: u8 = 1;
/// Its exact size: magic (8), version (1), header digest (32), key id (16), signature (64).
pub const DETACHED_SIGNATURE_LEN: usize = 8 + 1 + 32 + 16 + 64;

/// One co-signature over the header whose signed bytes (FORMAT.md §5) hash to `header_sha256`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedSignature {
    /// SHA-256 of the archive's first `14 + header_len` bytes: which archive it signs.
    pub header_sha256: [u8; 32],
    /// The signature entry (key id and Ed25519 signature), as in the signature block.
    pub entry: SignatureEntry,
}

impl DetachedSignature {
    /// Parses the exact 121-byte form; anything else is refused before it is used.
    pub fn parse(bytes: &[u8]) -> Result<DetachedSignature, FormatError> {
        let bad = |detail: &'static str| FormatError::DetachedSignature { detail };
        if bytes.len() != DETACHED_SIGNATURE_LEN {
            return Err(bad("not 121 bytes long"));
        }
        if &bytes[..8] != DETACHED_SIGNATURE_MAGIC {
            return Err(bad("does not start with MSEALSIG"));
        }
        if bytes[8] != VERSION {
            return Err(bad("unsupported version"));
        }
        let mut header_sha256 = [0u8; 32];
        header_sha256.copy_from_slice(&bytes[9..41]);
        let entry = SignatureEntry::from_bytes(bytes[41..].try_into().expect("80 bytes"));
        Ok(DetachedSignature {
            header_sha256,
            entry,
        })
    }

    /// The 121-byte form.
    pub fn to_bytes(&self) -> [u8; DETACHED_SIGNATURE_LEN] {
        let mut b = [0u8; DETACHED_SIGNATURE_LEN];
        b[..8].copy_from_slice(DETACHED_SIGNATURE_MAGIC);
        b[8] = VERSION;
        b[9..41].copy_from_slice(&self.header_sha256);
        b[41..].copy_from_slice(&self.entry.to_bytes());
        b
    }

    /// The co-signer's key id.
    pub fn key_id(&self) -> KeyId {
        KeyId(self.entry.key_id)
    }
}

/// Reads the payload that follows the header from `input` into `out`: exactly the signed length,
/// with the signed digest, and nothing after it (so that a co-signer vouches for bytes that are
/// really there).
pub(crate) fn copy_checked_payload(
    header: &Header,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<()> {
    let mut hasher = blake3::Hasher::new();
    let mut limited = input.take(header.ciphertext_size);
    let mut buf = vec![0u8; 1 << 16];
    let mut copied = 0u64;
    loop {
        let n = limited
            .read(&mut buf)
            .context(|| "reading the archive".into())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .context(|| "writing the archive".into())?;
        copied += n as u64;
    }
    if copied != header.ciphertext_size {
        return Err(VerifyError::Truncated {
            expected: header.ciphertext_size,
            found: copied,
        }
        .into());
    }
    let found = hasher.finalize();
    if found.as_bytes() != &header.payload_digest {
        return Err(VerifyError::PayloadDigestMismatch {
            expected: hex::encode(header.payload_digest),
            found: found.to_hex().to_string(),
        }
        .into());
    }
    let mut probe = [0u8; 1];
    if input
        .read(&mut probe)
        .context(|| "reading the archive".into())?
        != 0
    {
        return Err(VerifyError::TrailingData.into());
    }
    Ok(())
}

/// Signs the archive at `path` as `signer`, detached: the payload is first checked against the
/// header's digest and length, as `sign --add` does. The archive is not changed.
pub fn sign_file(
    path: &Path,
    signer: &dyn Signer,
    limits: &Limits,
) -> Result<(Header, DetachedSignature)> {
    let file = crate::verify::open_archive(path)?;
    let mut input = io::BufReader::with_capacity(1 << 20, file);
    let unverified = read_header(&mut input, limits)?;
    let header = unverified.header_unverified().clone();
    copy_checked_payload(&header, &mut input, &mut io::sink())?;
    let signature = signer.sign_header(unverified.signed_bytes())?;
    Ok((
        header,
        DetachedSignature {
            header_sha256: crate::crypto::sha256(unverified.signed_bytes()),
            entry: SignatureEntry {
                key_id: signer.key_id().0,
                signature,
            },
        },
    ))
}

/// Why a collected signature was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// It signs another archive's header.
    OtherArchive,
    /// The archive, or an earlier collected signature, already has this key's signature.
    AlreadyPresent,
    /// The key is not in the trust store (it could count for nothing).
    UntrustedKey,
    /// It does not verify under the trusted key.
    BadSignature,
    /// The signature block is full (`Limits::max_signatures`).
    TooMany,
}

impl Skipped {
    /// A few words for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Skipped::OtherArchive => "signs another archive",
            Skipped::AlreadyPresent => "already present",
            Skipped::UntrustedKey => "by a key outside the trust store",
            Skipped::BadSignature => "does not verify",
            Skipped::TooMany => "the signature block is full",
        }
    }
}

/// Which collected signatures are added to an archive, and why the others are not.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// The entries to add, in the order given.
    pub added: Vec<SignatureEntry>,
    /// The others, with their key ids.
    pub skipped: Vec<(KeyId, Skipped)>,
}

/// Chooses which of `collected` to add to the archive `unverified` is the header of: only
/// signatures over this header, by keys in `trust`, that verify, and not already there. A
/// signature that fails is skipped, never added: an attacker who can attach referrers cannot
/// turn a good archive into a refused one, and adds nothing a trusted key did not sign. The
/// archive's own checks (§7) run afterwards on the result.
pub fn select(
    unverified: &UnverifiedHeader,
    collected: &[DetachedSignature],
    trust: &TrustStore,
    limits: &Limits,
) -> Selection {
    let digest = crate::crypto::sha256(unverified.signed_bytes());
    let mut present: Vec<[u8; 16]> = unverified.signatures().iter().map(|e| e.key_id).collect();
    let mut out = Selection::default();
    for d in collected {
        let why = if d.header_sha256 != digest {
            Some(Skipped::OtherArchive)
        } else if present.contains(&d.entry.key_id) {
            Some(Skipped::AlreadyPresent)
        } else {
            match trust.get(&d.key_id()) {
                None => Some(Skipped::UntrustedKey),
                Some(k)
                    if !sign::verify_header(
                        k.verifying_key(),
                        unverified.signed_bytes(),
                        &d.entry.signature,
                    ) =>
                {
                    Some(Skipped::BadSignature)
                }
                Some(_) if present.len() >= limits.max_signatures => Some(Skipped::TooMany),
                Some(_) => None,
            }
        };
        match why {
            Some(w) => out.skipped.push((d.key_id(), w)),
            None => {
                present.push(d.entry.key_id);
                out.added.push(d.entry);
            }
        }
    }
    out
}

/// Writes the archive whose header `unverified` is, with `added` appended to its signature block,
/// to `out`; the payload is copied from `rest` (the input after the signature block) unchanged.
pub fn rewrite(
    unverified: &UnverifiedHeader,
    added: &[SignatureEntry],
    rest: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<()> {
    let count = unverified.signatures().len() + added.len();
    let count = u8::try_from(count).map_err(|_| FormatError::SignatureCount {
        found: count,
        max: usize::from(u8::MAX),
    })?;
    let w = |r: io::Result<()>| r.context(|| "writing the archive".into());
    w(out.write_all(unverified.signed_bytes()))?;
    w(out.write_all(&[count]))?;
    for e in unverified.signatures().iter().chain(added) {
        w(out.write_all(&e.to_bytes()))?;
    }
    io::copy(rest, out).context(|| "copying the payload".into())?;
    w(out.flush())
}

/// Writes `sig` to `path` through a temporary beside it: a new file, or with `force` a
/// replaced regular file (never anything else).
pub fn write_file(path: &Path, sig: &DetachedSignature, force: bool) -> Result<()> {
    crate::fs::refuse_file_output(path, force, "a regular file (a signature written before)")?;
    let (mut tmp, _tracked) = crate::fs::temp_file_beside(path, "write", ".tmp")?;
    tmp.write_all(&sig.to_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .context(|| format!("writing {}", path.display()))?;
    let persisted = if force {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    persisted.map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            crate::error::UsageError::OutputExists { path: path.into() }.into()
        } else {
            crate::Error::io(format!("writing {}", path.display()), e.error)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_form_round_trips_and_anything_else_is_refused() {
        let d = DetachedSignature {
            header_sha256: [7; 32],
            entry: SignatureEntry {
                key_id: [1; 16],
                signature: [2; 64],
            },
        };
        let b = d.to_bytes();
        assert_eq!(DetachedSignature::parse(&b).unwrap(), d);
        let refused = |bytes: &[u8]| {
            assert!(
                matches!(
                    DetachedSignature::parse(bytes),
                    Err(FormatError::DetachedSignature { .. })
                ),
                "{bytes:?}"
            )
        };
        refused(&b[..120]);
        refused(&[b.as_slice(), &[0]].concat());
        refused(&[]);
        let mut other = b;
        other[0] ^= 1;
        refused(&other);
        let mut version = b;
        version[8] = 2;
        refused(&version);
    }
}
