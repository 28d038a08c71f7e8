//! The manifest, model names and safe relative paths (FORMAT.md §9).

use std::collections::BTreeMap;
use std::fmt;

use bincode::{Decode, Encode};

use super::{decode_canonical, encode};
use crate::error::FormatError;
use crate::limits::{Limits, HARD_MAX_MANIFEST_BYTES};

/// The manifest schema this build writes.
pub const MANIFEST_SCHEMA: u32 = 2;
/// The tar entry name of the manifest.
pub const MANIFEST_ENTRY: &str = "manifest";
/// The top-level directory reserved for modelseal's own entries (FORMAT.md §9).
pub const RESERVED_DIR: &str = ".modelseal";
/// Where an archive carries an OpenSSF Model Signing bundle of its files (`seal --oms-key`).
pub const OMS_ENTRY: &str = ".modelseal/oms.sig";
/// The file kind of [`OMS_ENTRY`], and of no other file.
pub const OMS_FORMAT: &str = "oms-bundle";
/// The largest OMS bundle an archive may carry (and `oms verify` reads): 32 MiB.
pub const MAX_OMS_BUNDLE_BYTES: u64 = 32 << 20;
const MAX_NAME_BYTES: usize = 128;
const MAX_COMPONENT_BYTES: usize = 255;
const MAX_DESCRIPTION_BYTES: usize = 4096;
const MAX_META_KEY_BYTES: usize = 128;
const MAX_META_VALUE_BYTES: usize = 4096;

/// A model name: 1..=128 bytes of `[A-Za-z0-9._/-]`, not starting with `.`, `/` or `-`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModelName(String);

impl ModelName {
    /// Parses a name.
    pub fn parse(s: &str) -> Result<ModelName, FormatError> {
        let bad = |reason| FormatError::InvalidModelName {
            name: s.chars().take(MAX_NAME_BYTES).collect(),
            reason,
        };
        if s.is_empty() || s.len() > MAX_NAME_BYTES {
            return Err(bad("must be 1 to 128 bytes"));
        }
        if s.starts_with(['.', '/', '-']) {
            return Err(bad("must not start with '.', '/' or '-'"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        {
            return Err(bad(
                "only letters, digits, '.', '_', '/' and '-' are allowed",
            ));
        }
        Ok(ModelName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a semver 2.0.0 version.
pub fn parse_version(s: &str) -> Result<semver::Version, FormatError> {
    semver::Version::parse(s).map_err(|e| FormatError::InvalidModelVersion {
        version: s.chars().take(64).collect(),
        detail: e.to_string(),
    })
}

fn canonical_version(s: &str) -> Result<semver::Version, FormatError> {
    let v = parse_version(s)?;
    if v.to_string() != s {
        return Err(FormatError::NonCanonical {
            what: "manifest version",
        });
    }
    Ok(v)
}

/// A relative path that cannot escape its root (FORMAT.md §9, STYLE.md §4).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SafeRelPath(String);

impl SafeRelPath {
    /// Parses a path, refusing absolute paths, `..`, `.`, empty components, NUL, backslashes,
    /// drive letters and control characters.
    pub fn parse(s: &str, max_bytes: usize) -> Result<SafeRelPath, FormatError> {
        let bad = |reason| FormatError::UnsafePath {
            path: s.chars().take(256).collect(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty path"));
        }
        if s.len() > max_bytes {
            return Err(bad("longer than the path limit"));
        }
        if s.starts_with('/') {
            return Err(bad("absolute path"));
        }
        if s.contains('\\') {
            return Err(bad("backslash"));
        }
        if s.contains(':') {
            return Err(bad("colon (drive letter or stream name)"));
        }
        if s.chars().any(char::is_control) {
            return Err(bad("NUL or control character"));
        }
        for c in s.split('/') {
            match c {
                "" => return Err(bad("empty component")),
                "." | ".." => return Err(bad("'.' or '..' component")),
                _ if c.len() > MAX_COMPONENT_BYTES => {
                    return Err(bad("component longer than 255 bytes"))
                }
                _ => {}
            }
        }
        Ok(SafeRelPath(s.to_owned()))
    }

    /// The path, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for SafeRelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `seal` found a model file to be, and for pickles what it will import (FORMAT.md §9).
#[derive(Clone, Debug, PartialEq, Eq, Default, Encode, Decode)]
pub struct FileKind {
    /// `pickle`, `joblib`, `joblib+zlib`, `onnx`, `safetensors`, `gguf`, `bincode` or `unknown`.
    pub format: String,
    /// For pickles: the pickle protocol.
    pub pickle_protocol: Option<u8>,
    /// For pickles: every global the pickle imports, `module.name`, sorted.
    pub pickle_globals: Vec<String>,
    /// For scikit-learn pickles: the `_sklearn_version` found in the estimator state.
    pub sklearn_version: Option<String>,
}

/// One model file in the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the archive.
    pub path: SafeRelPath,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents.
    pub sha256: [u8; 32],
    /// What the file is (schema 2; `unknown` with no details for schema-1 archives).
    pub kind: FileKind,
}

/// A file recorded by hash only (training data, training code): not included in the archive.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Reference {
    /// The file's name as given when sealing (its last path component).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents.
    pub sha256: [u8; 32],
}

/// A model serialized by modelseal itself (a typed load), and what it was built with.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TypedModel {
    /// The archive path of the encoded model.
    pub path: String,
    /// The Rust type, as `std::any::type_name` gives it.
    pub type_name: String,
    /// The encoding, e.g. `bincode-2.0.1+serde/fixint-le`.
    pub encoding: String,
    /// `library==version` pairs of the libraries the type comes from, e.g. `linfa-trees==0.8.1`.
    pub libraries: BTreeMap<String, String>,
}

/// The manifest (FORMAT.md §9).
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Model name.
    pub name: ModelName,
    /// Model version.
    pub version: semver::Version,
    /// Free text.
    pub description: String,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// The sealing tool's version.
    pub modelseal_version: String,
    /// Model files, sorted by path.
    pub files: Vec<FileEntry>,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, String>,
    /// Scores, name → finite number (schema 2).
    pub metrics: BTreeMap<String, f64>,
    /// The training data, by hash (schema 2).
    pub train_data: Option<Reference>,
    /// The training code, by hash (schema 2).
    pub source: Option<Reference>,
    /// The runtime the model needs, name → exact version (schema 2).
    pub requires: BTreeMap<String, String>,
    /// Class names, indexed by class number (schema 2).
    pub class_names: Vec<String>,
    /// Feature names, in input order (schema 2).
    pub feature_names: Vec<String>,
    /// Set when the model was serialized by modelseal (schema 2).
    pub typed_model: Option<TypedModel>,
}

impl Manifest {
    /// A manifest with the required fields and every optional one empty.
    pub fn new(name: ModelName, version: semver::Version, created: u64) -> Manifest {
        Manifest {
            name,
            version,
            description: String::new(),
            created,
            modelseal_version: crate::VERSION.into(),
            files: Vec::new(),
            metadata: BTreeMap::new(),
            metrics: BTreeMap::new(),
            train_data: None,
            source: None,
            requires: BTreeMap::new(),
            class_names: Vec::new(),
            feature_names: Vec::new(),
            typed_model: None,
        }
    }
}

/// The schema-1 wire form: still decoded, so that old archives stay readable.
#[derive(Encode, Decode)]
struct ManifestV1 {
    schema: u32,
    name: String,
    version: String,
    description: String,
    created: u64,
    modelseal_version: String,
    files: Vec<FileEntryV1>,
    metadata: BTreeMap<String, String>,
}

#[derive(Encode, Decode)]
struct FileEntryV1 {
    path: String,
    size: u64,
    sha256: [u8; 32],
}

/// A schema-1 manifest read as schema 2: its files are of unknown kind, the new fields empty.
impl From<ManifestV1> for ManifestV2 {
    fn from(w: ManifestV1) -> Self {
        ManifestV2 {
            schema: 1,
            name: w.name,
            version: w.version,
            description: w.description,
            created: w.created,
            modelseal_version: w.modelseal_version,
            files: w
                .files
                .into_iter()
                .map(|f| FileEntryV2 {
                    path: f.path,
                    size: f.size,
                    sha256: f.sha256,
                    kind: FileKind {
                        format: "unknown".into(),
                        ..Default::default()
                    },
                })
                .collect(),
            metadata: w.metadata,
            metrics: BTreeMap::new(),
            train_data: None,
            source: None,
            requires: BTreeMap::new(),
            class_names: Vec::new(),
            feature_names: Vec::new(),
            typed_model: None,
        }
    }
}

/// The schema-2 wire form, written by this build.
#[derive(Encode, Decode)]
struct ManifestV2 {
    schema: u32,
    name: String,
    version: String,
    description: String,
    created: u64,
    modelseal_version: String,
    files: Vec<FileEntryV2>,
    metadata: BTreeMap<String, String>,
    metrics: BTreeMap<String, u64>,
    train_data: Option<Reference>,
    source: Option<Reference>,
    requires: BTreeMap<String, String>,
    class_names: Vec<String>,
    feature_names: Vec<String>,
    typed_model: Option<TypedModel>,
}

#[derive(Encode, Decode)]
struct FileEntryV2 {
    path: String,
    size: u64,
    sha256: [u8; 32],
    kind: FileKind,
}

impl Manifest {
    /// The canonical encoding, after checking every rule.
    pub fn to_bytes(&self, limits: &Limits) -> Result<Vec<u8>, FormatError> {
        self.check(limits)?;
        Ok(encode(&self.to_wire()))
    }

    /// Schema-1 encoding (tests of backward compatibility only).
    #[doc(hidden)]
    pub fn to_bytes_schema1(&self) -> Vec<u8> {
        encode(&ManifestV1 {
            schema: 1,
            name: self.name.0.clone(),
            version: self.version.to_string(),
            description: self.description.clone(),
            created: self.created,
            modelseal_version: self.modelseal_version.clone(),
            files: self
                .files
                .iter()
                .map(|f| FileEntryV1 {
                    path: f.path.0.clone(),
                    size: f.size,
                    sha256: f.sha256,
                })
                .collect(),
            metadata: self.metadata.clone(),
        })
    }

    /// The encoding without [`Manifest::check`]: hostile manifests for tests and fuzz seeds.
    #[cfg(any(feature = "craft", fuzzing))]
    pub(crate) fn to_bytes_unchecked(&self) -> Vec<u8> {
        encode(&self.to_wire())
    }

    fn to_wire(&self) -> ManifestV2 {
        ManifestV2 {
            schema: MANIFEST_SCHEMA,
            name: self.name.0.clone(),
            version: self.version.to_string(),
            description: self.description.clone(),
            created: self.created,
            modelseal_version: self.modelseal_version.clone(),
            files: self
                .files
                .iter()
                .map(|f| FileEntryV2 {
                    path: f.path.0.clone(),
                    size: f.size,
                    sha256: f.sha256,
                    kind: f.kind.clone(),
                })
                .collect(),
            metadata: self.metadata.clone(),
            // f64 travels as its IEEE 754 bits: one encoding per value.
            metrics: self
                .metrics
                .iter()
                .map(|(k, v)| (k.clone(), v.to_bits()))
                .collect(),
            train_data: self.train_data.clone(),
            source: self.source.clone(),
            requires: self.requires.clone(),
            class_names: self.class_names.clone(),
            feature_names: self.feature_names.clone(),
            typed_model: self.typed_model.clone(),
        }
    }

    /// Decodes canonically (any schema this build knows) and checks every rule.
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Manifest, FormatError> {
        if bytes.len() < 4 {
            return Err(FormatError::Truncated { what: "manifest" });
        }
        let schema = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
        let w: ManifestV2 = match schema {
            1 => decode_canonical::<ManifestV1, { HARD_MAX_MANIFEST_BYTES as usize }>(
                bytes, "manifest",
            )?
            .into(),
            MANIFEST_SCHEMA => {
                decode_canonical::<ManifestV2, { HARD_MAX_MANIFEST_BYTES as usize }>(
                    bytes, "manifest",
                )?
            }
            found => {
                return Err(FormatError::UnsupportedManifestSchema {
                    found,
                    supported: MANIFEST_SCHEMA,
                })
            }
        };
        let mut m = Manifest::new(
            ModelName::parse(&w.name)?,
            canonical_version(&w.version)?,
            w.created,
        );
        m.description = w.description;
        m.modelseal_version = w.modelseal_version;
        m.metadata = w.metadata;
        m.files = w
            .files
            .into_iter()
            .map(|f| {
                Ok(FileEntry {
                    path: SafeRelPath::parse(&f.path, limits.max_path_bytes)?,
                    size: f.size,
                    sha256: f.sha256,
                    kind: f.kind,
                })
            })
            .collect::<Result<Vec<_>, FormatError>>()?;
        m.metrics = w
            .metrics
            .into_iter()
            .map(|(k, v)| (k, f64::from_bits(v)))
            .collect();
        m.train_data = w.train_data;
        m.source = w.source;
        m.requires = w.requires;
        m.class_names = w.class_names;
        m.feature_names = w.feature_names;
        m.typed_model = w.typed_model;
        m.check(limits)?;
        Ok(m)
    }

    /// The model's files: every entry but the OMS bundle.
    pub fn model_files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.iter().filter(|f| f.path.0 != OMS_ENTRY)
    }

    /// The OMS bundle entry ([`OMS_ENTRY`]), when the archive carries one.
    pub fn oms_bundle(&self) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path.0 == OMS_ENTRY)
    }

    /// The rules of FORMAT.md §9.
    pub fn check(&self, limits: &Limits) -> Result<(), FormatError> {
        use crate::error::ManifestRule as Rule;
        let invalid = |rule: Rule, detail: String| FormatError::InvalidManifest { rule, detail };
        if self.files.len() > limits.max_files {
            return Err(invalid(
                Rule::TooManyFiles,
                format!("{} files, at most {}", self.files.len(), limits.max_files),
            ));
        }
        for pair in self.files.windows(2) {
            if pair[0].path.0.as_bytes() >= pair[1].path.0.as_bytes() {
                return Err(invalid(
                    Rule::NotSorted,
                    format!("files not sorted or duplicated at {:?}", pair[1].path.0),
                ));
            }
        }
        for f in &self.files {
            if f.path.0 == MANIFEST_ENTRY {
                return Err(invalid(
                    Rule::ReservedName,
                    "a model file may not be named 'manifest'".into(),
                ));
            }
            // `.modelseal/` holds one entry, the OMS bundle, and the bundle's kind no other file.
            let reserved = f.path.0 == RESERVED_DIR
                || f.path.0.starts_with(&format!("{RESERVED_DIR}/"))
                || f.kind.format == OMS_FORMAT;
            if reserved
                && (f.path.0 != OMS_ENTRY
                    || f.kind.format != OMS_FORMAT
                    || f.size > MAX_OMS_BUNDLE_BYTES)
            {
                return Err(invalid(
                    Rule::ReservedName,
                    format!(
                        "{:?} (kind {:?}, {} bytes): '{RESERVED_DIR}/' is modelseal's own; it holds \
                         only {OMS_ENTRY}, of kind {OMS_FORMAT}, at most {MAX_OMS_BUNDLE_BYTES} bytes",
                        f.path.0, f.kind.format, f.size
                    ),
                ));
            }
            if f.path.0.len() > limits.max_path_bytes {
                return Err(invalid(
                    Rule::PathTooLong,
                    format!(
                        "path {:?} longer than {} bytes",
                        f.path.0, limits.max_path_bytes
                    ),
                ));
            }
        }
        // A file and a directory of the same name cannot both exist on disk.
        for f in &self.files {
            let prefix = format!("{}/", f.path.0);
            if self.files.iter().any(|g| g.path.0.starts_with(&prefix)) {
                return Err(invalid(
                    Rule::FileAndDirectory,
                    format!("{:?} is both a file and a directory", f.path.0),
                ));
            }
        }
        for (k, v) in &self.metrics {
            if !v.is_finite() || k.is_empty() || k.len() > MAX_META_KEY_BYTES {
                return Err(invalid(Rule::BadMetric, format!("metric {k:?} must have a 1 to {MAX_META_KEY_BYTES}-byte name and a finite value")));
            }
        }
        let names = self
            .requires
            .iter()
            .chain(self.class_names.iter().map(|c| (c, c)))
            .chain(self.feature_names.iter().map(|f| (f, f)));
        for (k, v) in names {
            if k.is_empty()
                || k.len() > MAX_META_KEY_BYTES
                || v.len() > MAX_META_VALUE_BYTES
                || k.chars().any(char::is_control)
            {
                return Err(invalid(
                    Rule::BadName,
                    format!(
                    "name {k:?} must be 1 to {MAX_META_KEY_BYTES} bytes without control characters"
                ),
                ));
            }
        }
        if let Some(t) = &self.typed_model {
            if !self.files.iter().any(|f| f.path.0 == t.path) {
                return Err(invalid(
                    Rule::TypedModelMissing,
                    format!("typed model {:?} is not one of the files", t.path),
                ));
            }
        }
        if self.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(invalid(
                Rule::DescriptionTooLong,
                format!("description longer than {MAX_DESCRIPTION_BYTES} bytes"),
            ));
        }
        for (k, v) in &self.metadata {
            if k.is_empty() || k.len() > MAX_META_KEY_BYTES || k.chars().any(char::is_control) {
                return Err(invalid(Rule::BadMetadataKey, format!("metadata key {:?} must be 1 to {MAX_META_KEY_BYTES} bytes without control characters", k)));
            }
            if v.len() > MAX_META_VALUE_BYTES {
                return Err(invalid(
                    Rule::MetadataValueTooLong,
                    format!("metadata value of {k:?} longer than {MAX_META_VALUE_BYTES} bytes"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_manifest_rule_is_refused_by_name() {
        use crate::error::ManifestRule as Rule;
        let file = |p: &str| FileEntry {
            path: SafeRelPath(p.into()),
            size: 1,
            sha256: [0; 32],
            kind: FileKind::default(),
        };
        let base = || {
            let mut m = Manifest::new(
                ModelName::parse("m").unwrap(),
                semver::Version::new(1, 0, 0),
                0,
            );
            m.files = vec![file("a")];
            m
        };
        let limits = Limits::default();
        type Change<'a> = Box<dyn Fn(&mut Manifest) + 'a>;
        let cases: Vec<(Rule, Change<'_>)> = vec![
            (
                Rule::TooManyFiles,
                Box::new(|m| m.files = (0..10_001).map(|i| file(&format!("f{i:05}"))).collect()),
            ),
            (
                Rule::NotSorted,
                Box::new(|m| m.files = vec![file("b"), file("a")]),
            ),
            (
                Rule::NotSorted,
                Box::new(|m| m.files = vec![file("a"), file("a")]),
            ),
            (
                Rule::ReservedName,
                Box::new(|m| m.files = vec![file(MANIFEST_ENTRY)]),
            ),
            (
                Rule::PathTooLong,
                Box::new(|m| m.files = vec![file(&"p".repeat(5000))]),
            ),
            (
                Rule::FileAndDirectory,
                Box::new(|m| m.files = vec![file("a"), file("a/b")]),
            ),
            (
                Rule::BadMetric,
                Box::new(|m| {
                    m.metrics.insert("acc".into(), f64::NAN);
                }),
            ),
            (
                Rule::BadName,
                Box::new(|m| {
                    m.requires.insert("".into(), "1".into());
                }),
            ),
            (
                Rule::TypedModelMissing,
                Box::new(|m| {
                    m.typed_model = Some(TypedModel {
                        path: "nope".into(),
                        type_name: String::new(),
                        encoding: String::new(),
                        libraries: BTreeMap::new(),
                    })
                }),
            ),
            (
                Rule::DescriptionTooLong,
                Box::new(|m| m.description = "d".repeat(MAX_DESCRIPTION_BYTES + 1)),
            ),
            (
                Rule::BadMetadataKey,
                Box::new(|m| {
                    m.metadata.insert("a\nb".into(), "v".into());
                }),
            ),
            (
                Rule::MetadataValueTooLong,
                Box::new(|m| {
                    m.metadata
                        .insert("k".into(), "v".repeat(MAX_META_VALUE_BYTES + 1));
                }),
            ),
        ];
        assert!(base().check(&limits).is_ok());
        for (want, change) in cases {
            let mut m = base();
            change(&mut m);
            match m.check(&limits) {
                Err(FormatError::InvalidManifest { rule, .. }) => assert_eq!(rule, want),
                other => panic!("{want:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for p in [
            "",
            "/abs",
            "../x",
            "a/../../b",
            "a/./b",
            "C:\\x",
            "C:x",
            "a\\b",
            "a//b",
            "a/",
            "nul\0",
            "tab\there",
        ] {
            assert!(SafeRelPath::parse(p, 1024).is_err(), "{p:?} accepted");
        }
        for p in [
            "model.bin",
            "dir/sub/weights.safetensors",
            "a..b",
            ".hidden",
        ] {
            assert!(SafeRelPath::parse(p, 1024).is_ok(), "{p:?} refused");
        }
    }

    #[test]
    fn model_names() {
        assert!(ModelName::parse("fraud/detector-v2.1").is_ok());
        for n in ["", "-x", ".x", "/x", "a b", "é"] {
            assert!(ModelName::parse(n).is_err(), "{n:?} accepted");
        }
    }
}
