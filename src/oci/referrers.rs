//! Referrers (OCI 1.1): small artifacts (an OMS bundle, a detached signature) attached to an
//! archive's manifest by their `subject`, found through the referrers API or, where the registry
//! lacks it (CNCF distribution 2.8), through the fallback tag `sha256-HEX` holding an image index.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::error::{IoContext, OciError, Result};
use crate::limits::OCI_MAX_MANIFEST_BYTES;
use crate::oci::client::{self, Client, ClientOptions, Payload};
use crate::oci::manifest::*;
use crate::oci::reference::Reference;
use crate::oci::{fetch_manifest, scope, upload_blob, Blob};

/// The artifact type an OMS bundle (a Sigstore bundle) is attached with, as cosign does.
pub const SIGSTORE_BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The artifact type `attach` gives `file` when none is named: a modelseal detached signature
/// (recognised by its first bytes, FORMAT.md §5.1) is [`DETACHED_SIGNATURE_TYPE`], which `pull`
/// collects; anything else is attached as a Sigstore bundle (an OMS bundle is one).
///
/// [`DETACHED_SIGNATURE_TYPE`]: crate::detached::DETACHED_SIGNATURE_TYPE
pub fn default_artifact_type(file: &Path) -> Result<&'static str> {
    let mut head = Vec::new();
    std::fs::File::open(file)
        .context(|| format!("opening {}", file.display()))?
        .take(8)
        .read_to_end(&mut head)
        .context(|| format!("reading {}", file.display()))?;
    Ok(if head == crate::detached::DETACHED_SIGNATURE_MAGIC {
        crate::detached::DETACHED_SIGNATURE_TYPE
    } else {
        SIGSTORE_BUNDLE_TYPE
    })
}

/// The fallback tag of a subject digest: `sha256-HEX`.
fn fallback_tag(digest: &str) -> String {
    digest.replace(':', "-")
}

fn read_index(bytes: &[u8]) -> Result<Index> {
    let idx: Index = serde_json::from_slice(bytes).map_err(|e| OciError::BadManifest {
        detail: format!("not an OCI image index: {e}"),
    })?;
    if idx.schema_version != 2 {
        return Err(OciError::BadManifest {
            detail: format!("index schemaVersion {}, expected 2", idx.schema_version),
        }
        .into());
    }
    Ok(idx)
}

/// GETs an index by URL: `Ok(None)` on 404.
fn get_index(c: &Client, r: &Reference, url: &str) -> Result<Option<Index>> {
    let resp = c.send(
        "GET",
        url,
        &[("Accept", INDEX_MEDIA_TYPE)],
        Payload::None,
        &scope(r, false),
    )?;
    match resp.status().as_u16() {
        200 => Ok(Some(read_index(&client::read_manifest(resp)?)?)),
        404 => Ok(None),
        s => Err(c.status_error(s, "listing referrers", r)),
    }
}

/// The referrers of the archive `reference` names: the referrers API, else the fallback tag.
pub fn referrers(reference: &Reference, opts: &ClientOptions) -> Result<Vec<Descriptor>> {
    let c = Client::new(reference, opts);
    let (digest, _, _, _) = fetch_manifest(&c, reference)?;
    list(&c, reference, &digest)
}

fn list(c: &Client, r: &Reference, digest: &str) -> Result<Vec<Descriptor>> {
    let api = c.url(&format!("/v2/{}/referrers/{digest}", r.repository));
    if let Some(idx) = get_index(c, r, &api)? {
        return Ok(idx.manifests);
    }
    let tag = c.url(&format!(
        "/v2/{}/manifests/{}",
        r.repository,
        fallback_tag(digest)
    ));
    Ok(get_index(c, r, &tag)?
        .map(|i| i.manifests)
        .unwrap_or_default())
}

/// Attaches `file` (at most 4 MiB) to the archive `reference` names, as a referrer of
/// `artifact_type` whose subject is the archive's manifest. When the registry does not answer
/// the manifest PUT with `OCI-Subject` (it keeps no referrers index), the fallback tag's index is
/// updated too. Returns the referrer manifest's digest.
pub fn attach_file(
    reference: &Reference,
    file: &Path,
    artifact_type: &str,
    opts: &ClientOptions,
) -> Result<String> {
    let mut data = Vec::new();
    std::fs::File::open(file)
        .context(|| format!("opening {}", file.display()))?
        .take(OCI_MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut data)
        .context(|| format!("reading {}", file.display()))?;
    if data.len() as u64 > OCI_MAX_MANIFEST_BYTES {
        return Err(OciError::TooLarge {
            what: "attachment",
            size: data.len() as u64,
            max: OCI_MAX_MANIFEST_BYTES,
        }
        .into());
    }
    let c = Client::new(reference, opts);
    let (subject_digest, _, _, subject_size) = fetch_manifest(&c, reference)?;
    let digest = client::digest_of(&data);
    upload_blob(&c, reference, EMPTY_DIGEST, Blob::Bytes(EMPTY_CONFIG))?;
    upload_blob(&c, reference, &digest, Blob::Bytes(&data))?;
    let mut layer_ann = BTreeMap::new();
    if let Some(name) = file.file_name().and_then(|n| n.to_str()) {
        layer_ann.insert(ANN_TITLE.to_owned(), name.to_owned());
    }
    let mut m = Manifest::for_archive(
        Descriptor {
            media_type: artifact_type.to_owned(),
            digest,
            size: data.len() as u64,
            artifact_type: None,
            annotations: layer_ann,
        },
        BTreeMap::from([(
            ANN_CREATED.to_owned(),
            crate::time::rfc3339(crate::time::now()?),
        )]),
    );
    m.artifact_type = Some(artifact_type.to_owned());
    m.subject = Some(Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest: subject_digest.clone(),
        size: subject_size,
        artifact_type: None,
        annotations: BTreeMap::new(),
    });
    let body = serde_json::to_vec(&m).expect("a manifest serializes");
    let manifest_digest = client::digest_of(&body);
    let put = c.send(
        "PUT",
        &c.url(&format!(
            "/v2/{}/manifests/{manifest_digest}",
            reference.repository
        )),
        &[],
        Payload::Bytes(&body, MANIFEST_MEDIA_TYPE),
        &scope(reference, true),
    )?;
    let status = put.status().as_u16();
    if status != 201 {
        return Err(c.status_error(status, "putting the referrer manifest", reference));
    }
    if put.headers().get("oci-subject").is_none() {
        // The fallback tag schema: add this referrer to the index at sha256-HEX.
        let tag = fallback_tag(&subject_digest);
        let url = c.url(&format!("/v2/{}/manifests/{tag}", reference.repository));
        let mut idx = get_index(&c, reference, &url)?.unwrap_or(Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.into()),
            manifests: Vec::new(),
        });
        if !idx.manifests.iter().any(|d| d.digest == manifest_digest) {
            idx.manifests.push(Descriptor {
                media_type: MANIFEST_MEDIA_TYPE.into(),
                digest: manifest_digest.clone(),
                size: body.len() as u64,
                artifact_type: Some(artifact_type.to_owned()),
                annotations: m.annotations.clone(),
            });
        }
        idx.media_type = Some(INDEX_MEDIA_TYPE.into());
        let ib = serde_json::to_vec(&idx).expect("an index serializes");
        let put = c.send(
            "PUT",
            &url,
            &[],
            Payload::Bytes(&ib, INDEX_MEDIA_TYPE),
            &scope(reference, true),
        )?;
        let status = put.status().as_u16();
        if status != 201 {
            return Err(c.status_error(status, "putting the referrers fallback index", reference));
        }
    }
    Ok(manifest_digest)
}

/// Downloads a referrer's one layer (at most 4 MiB, digest checked) into memory.
pub fn fetch_attachment(
    reference: &Reference,
    referrer: &Descriptor,
    opts: &ClientOptions,
) -> Result<Vec<u8>> {
    let c = Client::new(reference, opts);
    let r = Reference {
        digest: Some(referrer.digest.clone()),
        tag: None,
        ..reference.clone()
    };
    let resp = c.send(
        "GET",
        &c.url(&format!(
            "/v2/{}/manifests/{}",
            r.repository, referrer.digest
        )),
        &[("Accept", MANIFEST_MEDIA_TYPE)],
        Payload::None,
        &scope(&r, false),
    )?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(c.status_error(status, "fetching a referrer", &r));
    }
    let bytes = client::read_manifest(resp)?;
    let found = client::digest_of(&bytes);
    if found != referrer.digest {
        return Err(OciError::DigestMismatch {
            what: "referrer manifest",
            expected: referrer.digest.clone(),
            found,
        }
        .into());
    }
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| OciError::BadManifest {
        detail: format!("referrer: {e}"),
    })?;
    let [layer] = m.layers.as_slice() else {
        return Err(OciError::BadManifest {
            detail: format!("referrer has {} layers, expected 1", m.layers.len()),
        }
        .into());
    };
    if layer.size > OCI_MAX_MANIFEST_BYTES {
        return Err(OciError::TooLarge {
            what: "attachment",
            size: layer.size,
            max: OCI_MAX_MANIFEST_BYTES,
        }
        .into());
    }
    let resp = c.send(
        "GET",
        &c.url(&format!("/v2/{}/blobs/{}", r.repository, layer.digest)),
        &[],
        Payload::None,
        &scope(&r, false),
    )?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(c.status_error(status, "fetching an attachment", &r));
    }
    let mut out = Vec::new();
    client::stream_blob(resp, layer.size, &layer.digest, &mut out)?;
    Ok(out)
}
