//! The OCI image manifest of a modelseal artifact (FORMAT.md §12), and the image index the
//! referrers API and its fallback tag answer with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{OciError, Result};
use crate::oci::reference::valid_digest;

/// `mediaType` of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `mediaType` of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The `Accept` header of a manifest GET.
pub(crate) const ACCEPT_MANIFESTS: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
/// `artifactType` of a modelseal archive's manifest, and the `mediaType` of its one layer.
pub const ARCHIVE_ARTIFACT_TYPE: &str = "application/vnd.modelseal.archive.v1";
/// The empty config descriptor's media type (OCI 1.1).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config blob: `{}`.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// Its digest.
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Annotation: the model name (from the header, unverified display data).
pub const ANN_TITLE: &str = "org.opencontainers.image.title";
/// Annotation: the model version.
pub const ANN_VERSION: &str = "org.opencontainers.image.version";
/// Annotation: the header's creation time, RFC 3339.
pub const ANN_CREATED: &str = "org.opencontainers.image.created";
/// Annotation: the signer's key id, hex.
pub const ANN_SIGNER: &str = "vnd.modelseal.signer";
/// Annotation: the header's expiry time, RFC 3339 (absent when the archive never expires).
pub const ANN_EXPIRES: &str = "vnd.modelseal.expires";
/// Annotation: how many signatures the archive carries (the author's and co-signers').
pub const ANN_SIGNATURES: &str = "vnd.modelseal.signatures";

/// A content descriptor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// `sha256:HEX`.
    pub digest: String,
    /// Its length in bytes.
    pub size: u64,
    /// The artifact type, in an index's entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest. Unknown fields are accepted (the spec allows them) and ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MANIFEST_MEDIA_TYPE`].
    pub media_type: Option<String>,
    /// [`ARCHIVE_ARTIFACT_TYPE`] for ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The empty config.
    pub config: Descriptor,
    /// One layer: the archive.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (a referrer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Display data, unverified.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image index (what the referrers API answers).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// [`INDEX_MEDIA_TYPE`].
    pub media_type: Option<String>,
    /// The manifests listed.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

fn bad(detail: impl Into<String>) -> crate::Error {
    OciError::BadManifest {
        detail: detail.into(),
    }
    .into()
}

impl Manifest {
    /// The manifest of an archive blob, with its display annotations.
    pub fn for_archive(layer: Descriptor, annotations: BTreeMap<String, String>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            artifact_type: Some(ARCHIVE_ARTIFACT_TYPE.into()),
            config: Descriptor {
                media_type: EMPTY_MEDIA_TYPE.into(),
                digest: EMPTY_DIGEST.into(),
                size: EMPTY_CONFIG.len() as u64,
                artifact_type: None,
                annotations: BTreeMap::new(),
            },
            layers: vec![layer],
            subject: None,
            annotations,
        }
    }

    /// Parses a manifest served by a registry and checks that it is a modelseal archive's:
    /// schema 2, the manifest media type, our artifact type, and exactly one layer of our media
    /// type with a sha256 digest. Returns that layer.
    pub fn parse_archive(bytes: &[u8]) -> Result<(Manifest, Descriptor)> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("not an OCI image manifest: {e}")))?;
        if m.schema_version != 2 {
            return Err(bad(format!(
                "schemaVersion {}, expected 2",
                m.schema_version
            )));
        }
        if m.media_type.as_deref() != Some(MANIFEST_MEDIA_TYPE) {
            return Err(bad(format!(
                "mediaType {:?}, expected {MANIFEST_MEDIA_TYPE}",
                m.media_type.as_deref().unwrap_or("")
            )));
        }
        // OCI 1.1: an artifact without artifactType names it by its config's media type.
        let artifact = m
            .artifact_type
            .clone()
            .unwrap_or_else(|| m.config.media_type.clone());
        if artifact != ARCHIVE_ARTIFACT_TYPE {
            return Err(OciError::WrongArtifactType {
                found: artifact.chars().take(200).collect(),
                expected: ARCHIVE_ARTIFACT_TYPE,
            }
            .into());
        }
        let [layer] = m.layers.as_slice() else {
            return Err(bad(format!("{} layers, expected 1", m.layers.len())));
        };
        if layer.media_type != ARCHIVE_ARTIFACT_TYPE {
            return Err(bad(format!(
                "layer mediaType {:?}, expected {ARCHIVE_ARTIFACT_TYPE}",
                layer.media_type
            )));
        }
        if !valid_digest(&layer.digest) {
            return Err(bad("layer digest is not sha256:HEX"));
        }
        let layer = layer.clone();
        Ok((m, layer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> serde_json::Value {
        let layer = Descriptor {
            media_type: ARCHIVE_ARTIFACT_TYPE.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 10,
            artifact_type: None,
            annotations: BTreeMap::new(),
        };
        serde_json::to_value(Manifest::for_archive(layer, BTreeMap::new())).unwrap()
    }

    fn parse(v: &serde_json::Value) -> Result<(Manifest, Descriptor)> {
        Manifest::parse_archive(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn accepts_ours_with_unknown_fields() {
        let mut v = ours();
        v["somethingNew"] = "x".into();
        let (_, layer) = parse(&v).unwrap();
        assert_eq!(layer.size, 10);
    }

    #[test]
    fn refuses_what_is_not_ours() {
        let mut v = ours();
        v["artifactType"] = "application/vnd.example".into();
        assert!(matches!(
            parse(&v),
            Err(crate::Error::Oci(OciError::WrongArtifactType { .. }))
        ));
        let bad = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = ours();
            f(&mut v);
            matches!(
                parse(&v),
                Err(crate::Error::Oci(OciError::BadManifest { .. }))
            )
        };
        assert!(bad(&|v| v["schemaVersion"] = 1.into()));
        assert!(bad(&|v| v["mediaType"] = INDEX_MEDIA_TYPE.into()));
        assert!(bad(&|v| {
            v.as_object_mut().unwrap().remove("mediaType");
        }));
        assert!(bad(&|v| v["layers"] = serde_json::json!([])));
        assert!(bad(&|v| {
            let l = v["layers"][0].clone();
            v["layers"] = serde_json::json!([l.clone(), l]);
        }));
        assert!(bad(
            &|v| v["layers"][0]["mediaType"] = "application/octet-stream".into()
        ));
        assert!(bad(&|v| v["layers"][0]["digest"] = "sha512:00".into()));
        assert!(bad(&|v| v["layers"][0]["size"] = (-1).into()));
        assert!(bad(&|v| *v = serde_json::json!("not an object")));
        assert!(matches!(
            Manifest::parse_archive(b"\xff\xfe"),
            Err(crate::Error::Oci(OciError::BadManifest { .. }))
        ));
    }
}
