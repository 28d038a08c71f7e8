//! Publishing sealed archives to OCI registries and pulling them back with every check
//! (FORMAT.md §12).
//!
//! `push` uploads the archive as the one layer of an OCI 1.1 image manifest whose
//! `artifactType` is [`manifest::ARCHIVE_ARTIFACT_TYPE`], with the header's public facts as
//! annotations. Those annotations are display data: `pull` never reads them for a decision. It
//! streams the blob into a temporary file beside the output (mode 0600) while hashing it against
//! the manifest's digest, then runs the same checks as `verify` on the file itself
//! ([`crate::open::verify_reader`], anti-rollback state included when the options carry one),
//! and renames it into place only when all pass: a pulled archive that fails leaves nothing.
//!
//! The HTTP calls are those of the distribution spec, over a blocking client that streams
//! ([`client`]); memory stays bounded whatever the archive's size.

pub mod auth;
pub mod client;
pub mod manifest;
pub mod reference;
pub mod referrers;
pub mod signatures;

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use crate::error::{IoContext, OciError, Result, UsageError};
use crate::limits::{oci_max_blob_bytes, Limits};
use crate::open::{self, Decryption, ModelChecks, OpenOutput, Opened, ReadOptions, Report};
use crate::time::rfc3339;

pub use auth::Credentials;
pub use client::{Client, ClientOptions};
pub use manifest::{Descriptor, Manifest};
pub use reference::Reference;

use client::Payload;
use manifest::*;

/// What `push` uploaded.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// The manifest's digest (`REPO@DIGEST` names this exact artifact).
    pub manifest_digest: String,
    /// The archive blob's descriptor.
    pub layer: Descriptor,
    /// False when the registry already had the blob.
    pub uploaded: bool,
}

/// What a registry says about an artifact, without its blob.
#[derive(Clone, Debug)]
pub struct Listing {
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The archive blob's descriptor.
    pub layer: Descriptor,
    /// The manifest's annotations: UNVERIFIED display data, written by whoever pushed.
    pub annotations: BTreeMap<String, String>,
    /// For a pull: the detached co-signatures collected from referrers.
    pub co_signatures: signatures::CoSignatures,
}

pub(crate) fn scope(r: &Reference, push: bool) -> String {
    format!(
        "repository:{}:{}",
        r.repository,
        if push { "pull,push" } else { "pull" }
    )
}

fn sha256_file(file: &mut std::fs::File) -> Result<(String, u64)> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(crate::Error::io("hashing the archive", e)),
        };
        total += n as u64;
        ctx.update(&buf[..n]);
    }
    Ok((format!("sha256:{}", hex::encode(ctx.finish())), total))
}

/// The header's public facts, as annotations (read unverified: the pusher vouches for nothing;
/// the reader's checks run on the archive).
fn annotations_of(h: &crate::format::Header, signatures: usize) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(ANN_TITLE.into(), h.model_name.clone());
    a.insert(ANN_VERSION.into(), h.model_version.clone());
    a.insert(ANN_CREATED.into(), rfc3339(h.created));
    a.insert(ANN_SIGNER.into(), hex::encode(h.signer));
    if let Some(e) = h.expires {
        a.insert(ANN_EXPIRES.into(), rfc3339(e));
    }
    a.insert(ANN_SIGNATURES.into(), signatures.to_string());
    a
}

pub(crate) enum Blob<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// Uploads a blob unless the registry has it: `HEAD`, then `POST` an upload and `PUT` the
/// whole body to its location (a monolithic upload; the file is streamed with its length).
pub(crate) fn upload_blob(c: &Client, r: &Reference, digest: &str, blob: Blob<'_>) -> Result<bool> {
    let sc = scope(r, true);
    let head = c.send(
        "HEAD",
        &c.url(&format!("/v2/{}/blobs/{digest}", r.repository)),
        &[],
        Payload::None,
        &sc,
    )?;
    if head.status().as_u16() == 200 {
        return Ok(false);
    }
    let post = c.send(
        "POST",
        &c.url(&format!("/v2/{}/blobs/uploads/", r.repository)),
        &[],
        Payload::None,
        &sc,
    )?;
    let status = post.status().as_u16();
    if status != 202 {
        return Err(c.status_error(status, "starting a blob upload", r));
    }
    let location = post
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| OciError::Registry {
            registry: r.registry.clone(),
            status,
            what: "starting a blob upload (no Location)".into(),
        })?
        .to_owned();
    let mut url = c.resolve(&location);
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str("digest=");
    url.push_str(&digest.replace(':', "%3A"));
    let put = match blob {
        Blob::Bytes(b) => c.send(
            "PUT",
            &url,
            &[],
            Payload::Bytes(b, "application/octet-stream"),
            &sc,
        )?,
        Blob::File(p) => c.put_file(&url, crate::verify::open_archive(p)?)?,
    };
    let status = put.status().as_u16();
    if status != 201 {
        if status == 400 {
            return Err(OciError::DigestMismatch {
                what: "uploaded blob",
                expected: digest.to_owned(),
                found: "(refused by the registry)".into(),
            }
            .into());
        }
        return Err(c.status_error(status, "uploading a blob", r));
    }
    Ok(true)
}

/// Pushes the archive at `archive` to `reference` (which must name a tag): the blob, the empty
/// config, then the manifest. The archive's header is read (unverified) for the annotations;
/// nothing of it is decrypted or trusted.
pub fn push_file(
    archive: &Path,
    reference: &Reference,
    opts: &ClientOptions,
    limits: &Limits,
) -> Result<Pushed> {
    let Some(tag) = reference.tag.as_deref() else {
        return Err(OciError::InvalidReference {
            reference: reference.to_string(),
            detail: "push needs a tag to publish under".into(),
        }
        .into());
    };
    let mut file = crate::verify::open_archive(archive)?;
    let header = crate::verify::read_header(&mut BufReader::new(&mut file), limits)?;
    let ann = annotations_of(header.header_unverified(), header.signatures().len());
    file.rewind()
        .context(|| format!("rewinding {}", archive.display()))?;
    let (digest, size) = sha256_file(&mut file)?;
    drop(file);
    let c = Client::new(reference, opts);
    upload_blob(&c, reference, EMPTY_DIGEST, Blob::Bytes(EMPTY_CONFIG))?;
    let uploaded = upload_blob(&c, reference, &digest, Blob::File(archive))?;
    let mut layer_ann = BTreeMap::new();
    if let Some(name) = archive.file_name().and_then(|n| n.to_str()) {
        layer_ann.insert(ANN_TITLE.to_owned(), name.to_owned());
    }
    let layer = Descriptor {
        media_type: ARCHIVE_ARTIFACT_TYPE.into(),
        digest,
        size,
        artifact_type: None,
        annotations: layer_ann,
    };
    let m = Manifest::for_archive(layer.clone(), ann);
    let body = serde_json::to_vec(&m).expect("a manifest serializes");
    let manifest_digest = put_manifest(&c, reference, tag, &body, MANIFEST_MEDIA_TYPE)?;
    Ok(Pushed {
        manifest_digest,
        layer,
        uploaded,
    })
}

fn put_manifest(c: &Client, r: &Reference, tag: &str, body: &[u8], media: &str) -> Result<String> {
    let put = c.send(
        "PUT",
        &c.url(&format!("/v2/{}/manifests/{tag}", r.repository)),
        &[],
        Payload::Bytes(body, media),
        &scope(r, true),
    )?;
    let status = put.status().as_u16();
    if status != 201 {
        return Err(c.status_error(status, "putting the manifest", r));
    }
    Ok(client::digest_of(body))
}

/// Fetches and checks the manifest `reference` names: bounded, parsed, ours, and (when the
/// reference names a digest) hashing to it. Returns its digest, itself, its layer, its size.
pub(crate) fn fetch_manifest(
    c: &Client,
    r: &Reference,
) -> Result<(String, Manifest, Descriptor, u64)> {
    let resp = c.send(
        "GET",
        &c.url(&format!(
            "/v2/{}/manifests/{}",
            r.repository,
            r.manifest_ref()
        )),
        // The index type too: an index under the tag is then refused as what it is, not a 404.
        &[("Accept", ACCEPT_MANIFESTS)],
        Payload::None,
        &scope(r, false),
    )?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(c.status_error(status, "fetching the manifest", r));
    }
    let bytes = client::read_manifest(resp)?;
    let digest = client::digest_of(&bytes);
    if let Some(want) = &r.digest {
        if *want != digest {
            return Err(OciError::DigestMismatch {
                what: "manifest",
                expected: want.clone(),
                found: digest,
            }
            .into());
        }
    }
    let (m, layer) = Manifest::parse_archive(&bytes)?;
    Ok((digest, m, layer, bytes.len() as u64))
}

/// What the registry says about `reference`, without downloading the archive. The annotations
/// are UNVERIFIED.
pub fn describe(reference: &Reference, opts: &ClientOptions) -> Result<Listing> {
    let c = Client::new(reference, opts);
    let (manifest_digest, m, layer, _) = fetch_manifest(&c, reference)?;
    Ok(Listing {
        manifest_digest,
        layer,
        annotations: m.annotations,
        co_signatures: Default::default(),
    })
}

/// Downloads the archive blob into a temporary file beside `out` (mode 0600, removed on drop and
/// on a signal), its size capped and its digest checked while streaming.
fn download_beside(
    reference: &Reference,
    out: &Path,
    opts: &ClientOptions,
    limits: &Limits,
) -> Result<(tempfile::NamedTempFile, crate::fs::Tracked, Listing)> {
    let c = Client::new(reference, opts);
    let (manifest_digest, m, layer, _) = fetch_manifest(&c, reference)?;
    let max = oci_max_blob_bytes(limits);
    if layer.size > max {
        return Err(OciError::TooLarge {
            what: "archive blob",
            size: layer.size,
            max,
        }
        .into());
    }
    let (mut tmp, tracked) = crate::fs::temp_file_beside(out, "pull", ".tmp")?;
    let resp = c.send(
        "GET",
        &c.url(&format!(
            "/v2/{}/blobs/{}",
            reference.repository, layer.digest
        )),
        &[],
        Payload::None,
        &scope(reference, false),
    )?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(c.status_error(status, "fetching the archive blob", reference));
    }
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        client::stream_blob(resp, layer.size, &layer.digest, &mut w)?;
        std::io::Write::flush(&mut w).context(|| "writing the downloaded archive".into())?;
    }
    tmp.as_file()
        .sync_all()
        .context(|| "syncing the downloaded archive".into())?;
    tmp.rewind()
        .context(|| "rewinding the downloaded archive".into())?;
    Ok((
        tmp,
        tracked,
        Listing {
            manifest_digest,
            layer,
            annotations: m.annotations,
            co_signatures: Default::default(),
        },
    ))
}

/// Downloads the archive beside `out` ([`download_beside`]) and adds to it the detached
/// co-signatures attached as referrers that verify under `read.trust`
/// ([`signatures::add_to_download`]).
fn download_with_co_signatures(
    reference: &Reference,
    out: &Path,
    opts: &ClientOptions,
    read: &ReadOptions<'_>,
) -> Result<(tempfile::NamedTempFile, crate::fs::Tracked, Listing)> {
    let (tmp, tracked, mut listing) = download_beside(reference, out, opts, &read.limits)?;
    let (collected, unusable) = signatures::collect(reference, &listing.manifest_digest, opts)?;
    let ((tmp, tracked), found) =
        signatures::add_to_download((tmp, tracked), out, &collected, read.trust, &read.limits)?;
    listing.co_signatures = signatures::CoSignatures { unusable, ..found };
    Ok((tmp, tracked, listing))
}

/// Pulls `reference` into the file `out`: downloads beside it, runs `verify`'s checks on the
/// downloaded archive under `read` (trust, signatures, payload digest, expiry, policy, and the
/// anti-rollback state when `read.state` is set, which records the acceptance), and renames it
/// into place only if every check passed. On any failure nothing is left beside `out`.
pub fn pull_file(
    reference: &Reference,
    out: &Path,
    force: bool,
    read: &ReadOptions<'_>,
    opts: &ClientOptions,
) -> Result<(Report, Listing)> {
    crate::fs::refuse_file_output(out, force, "a regular file (an archive pulled before)")?;
    let (tmp, _tracked, listing) = download_with_co_signatures(reference, out, opts, read)?;
    let report = open::verify_reader(BufReader::with_capacity(1 << 20, tmp.as_file()), read)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .context(|| "setting permissions".into())?;
    }
    if force {
        tmp.persist(out)
            .map_err(|e| crate::Error::io(format!("renaming into {}", out.display()), e.error))?;
    } else {
        tmp.persist_noclobber(out).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                UsageError::OutputExists { path: out.into() }.into()
            } else {
                crate::Error::io(format!("renaming into {}", out.display()), e.error)
            }
        })?;
    }
    if let Ok(d) = std::fs::File::open(crate::fs::parent_dir(out)) {
        let _ = d.sync_all();
    }
    Ok((report, listing))
}

/// Pulls `reference` and opens it into the directory `out_dir` with `open`'s checks: the blob is
/// downloaded to a temporary file beside `out_dir` (removed afterwards, whatever happens) and
/// opened from there; the directory appears only if every check passed.
pub fn pull_open(
    reference: &Reference,
    key: Decryption<'_>,
    out_dir: &Path,
    output: OpenOutput,
    read: &ReadOptions<'_>,
    checks: &ModelChecks,
    opts: &ClientOptions,
) -> Result<(Opened, Listing)> {
    open::refuse_output(out_dir, output)?;
    let (tmp, _tracked, listing) = download_with_co_signatures(reference, out_dir, opts, read)?;
    let opened = open::open_reader_checked(
        BufReader::with_capacity(1 << 20, tmp.as_file()),
        key,
        out_dir,
        read,
        output,
        checks,
    )?;
    Ok((opened, listing))
}
