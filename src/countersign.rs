//! Adding a signature to an existing archive (`modelseal sign --add`) without touching the
//! payload: k-of-n policies need several signers over the same header (FORMAT.md §5).

use std::io::{self, BufReader, Write};
use std::path::Path;

use crate::error::{FormatError, IoContext, Result, VerifyError};
use crate::format::{Header, SignatureEntry};
use crate::keys::Signer;
use crate::limits::Limits;
use crate::verify::read_header;

/// Adds `signer`'s signature over the archive's header. The payload is first checked against the
/// header's digest and length (so the co-signer vouches for bytes that are really there); the
/// archive is rewritten to a temporary file beside it and renamed over it only when complete.
pub fn add_signature(path: &Path, signer: &dyn Signer, limits: &Limits) -> Result<Header> {
    let file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let unverified = read_header(&mut input, limits)?;
    let header = unverified.header_unverified().clone();
    let id = signer.key_id();
    if unverified.signatures().iter().any(|e| e.key_id == id.0) {
        return Err(VerifyError::DuplicateSignature {
            key_id: id.to_string(),
        }
        .into());
    }
    let count = unverified.signatures().len() + 1;
    if count > limits.max_signatures {
        return Err(FormatError::SignatureCount {
            found: count,
            max: limits.max_signatures,
        }
        .into());
    }
    let signature = signer.sign_header(unverified.signed_bytes())?;
    let (mut tmp, _tracked) = crate::fs::temp_file_beside(path, "sign", ".tmp")?;
    {
        let mut out = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        out.write_all(unverified.signed_bytes())
            .context(|| "writing the archive".into())?;
        out.write_all(&[count as u8])
            .context(|| "writing the archive".into())?;
        for e in unverified.signatures() {
            out.write_all(&e.to_bytes())
                .context(|| "writing the archive".into())?;
        }
        out.write_all(
            &SignatureEntry {
                key_id: id.0,
                signature,
            }
            .to_bytes(),
        )
        .context(|| "writing the archive".into())?;
        // Copy the payload while hashing it: exactly the signed length, the signed digest, no more.
        crate::detached::copy_checked_payload(&header, &mut input, &mut out)?;
        out.flush().context(|| "writing the archive".into())?;
    }
    tmp.as_file()
        .sync_all()
        .context(|| "syncing the archive".into())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o644);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
            .context(|| "setting permissions".into())?;
    }
    tmp.persist(path)
        .map_err(|e| crate::Error::io(format!("renaming into {}", path.display()), e.error))?;
    Ok(header)
}
