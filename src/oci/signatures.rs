//! Detached co-signatures attached to an archive as referrers (FORMAT.md §5.1, §12.5): `pull`
//! collects them and adds to the downloaded archive's signature block those that verify under
//! the caller's trust store, before the checks of §7 count signers for k-of-n policies.

use std::io::{BufReader, Seek};
use std::path::Path;

use crate::detached::{self, DetachedSignature, Skipped, DETACHED_SIGNATURE_TYPE};
use crate::error::{IoContext, Result};
use crate::keys::KeyId;
use crate::limits::{Limits, OCI_MAX_REFERRED_SIGNATURES};
use crate::oci::client::ClientOptions;
use crate::oci::reference::Reference;
use crate::oci::referrers;
use crate::trust::TrustStore;

/// What `pull` did with the co-signatures attached to the archive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoSignatures {
    /// Key ids whose detached signatures were added to the archive.
    pub added: Vec<KeyId>,
    /// Detached signatures not added, and why.
    pub skipped: Vec<(KeyId, Skipped)>,
    /// Referrers of the signature type that could not be fetched or parsed, or were beyond
    /// [`OCI_MAX_REFERRED_SIGNATURES`].
    pub unusable: usize,
}

/// The detached signatures attached to the manifest `digest` (at most
/// [`OCI_MAX_REFERRED_SIGNATURES`] referrers of [`DETACHED_SIGNATURE_TYPE`], each fetched with
/// its digest checked), and how many referrers of that type were unusable. A referrer that cannot
/// be fetched or parsed is counted, never fatal: whoever may attach referrers must not be able to
/// make a good archive fail to pull.
pub fn collect(
    reference: &Reference,
    digest: &str,
    opts: &ClientOptions,
) -> Result<(Vec<DetachedSignature>, usize)> {
    let at = Reference {
        digest: Some(digest.to_owned()),
        tag: None,
        ..reference.clone()
    };
    let listed: Vec<_> = referrers::referrers(&at, opts)?
        .into_iter()
        .filter(|d| d.artifact_type.as_deref() == Some(DETACHED_SIGNATURE_TYPE))
        .collect();
    let mut unusable = listed.len().saturating_sub(OCI_MAX_REFERRED_SIGNATURES);
    let mut found = Vec::new();
    for d in listed.iter().take(OCI_MAX_REFERRED_SIGNATURES) {
        match referrers::fetch_attachment(&at, d, opts)
            .and_then(|b| Ok(DetachedSignature::parse(&b)?))
        {
            Ok(s) => found.push(s),
            Err(_) => unusable += 1,
        }
    }
    Ok((found, unusable))
}

/// A downloaded archive: its temporary file and the tracking that removes it on a signal.
pub(crate) type Download = (tempfile::NamedTempFile, crate::fs::Tracked);

/// Adds the verified ones of `collected` to the downloaded archive `tmp`: when any is added, the
/// archive is rewritten into a new temporary beside `out`, which replaces `tmp`.
pub(crate) fn add_to_download(
    tmp: Download,
    out: &Path,
    collected: &[DetachedSignature],
    trust: &TrustStore,
    limits: &Limits,
) -> Result<(Download, CoSignatures)> {
    let (mut file, tracked) = tmp;
    if collected.is_empty() {
        return Ok(((file, tracked), CoSignatures::default()));
    }
    let mut input = BufReader::with_capacity(1 << 20, file.as_file());
    let unverified = crate::verify::read_header(&mut input, limits)?;
    let selection = detached::select(&unverified, collected, trust, limits);
    let added: Vec<KeyId> = selection.added.iter().map(|e| KeyId(e.key_id)).collect();
    if added.is_empty() {
        drop(input);
        file.rewind()
            .context(|| "rewinding the downloaded archive".into())?;
        let found = CoSignatures {
            added,
            skipped: selection.skipped,
            unusable: 0,
        };
        return Ok(((file, tracked), found));
    }
    let (mut merged, merged_tracked) = crate::fs::temp_file_beside(out, "pull", ".tmp")?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, merged.as_file_mut());
        detached::rewrite(&unverified, &selection.added, &mut input, &mut w)?;
    }
    merged
        .as_file()
        .sync_all()
        .context(|| "syncing the downloaded archive".into())?;
    merged
        .rewind()
        .context(|| "rewinding the downloaded archive".into())?;
    let found = CoSignatures {
        added,
        skipped: selection.skipped,
        unusable: 0,
    };
    Ok(((merged, merged_tracked), found))
}
