//! The manifest, model names and safe relative paths (FORMAT.md §9).

use std::collections::BTreeMap;
use std::fmt;

use bincode::{Decode, Encode};

use crate::error::FormatError;
use crate::format::{decode_canonical, encode};
use crate::limits::{Limits, HARD_MAX_MANIFEST_BYTES};

/// The manifest schema this build writes.
pub const MANIFEST_SCHEMA: u32 = 1;
/// The tar entry name of the manifest.
pub const MANIFEST_ENTRY: &str = "manifest";
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

/// One model file in the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the archive.
    pub path: SafeRelPath,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents.
    pub sha256: [u8; 32],
}

/// The manifest (FORMAT.md §9).
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

/// The schema-1 wire form.
#[derive(Encode, Decode)]
struct ManifestV1 {
    schema: u32,
    name: String,
    version: String,
    description: String,
    created: u64,
    modelseal_version: String,
    files: Vec<FileEntryWire>,
    metadata: BTreeMap<String, String>,
}

#[derive(Encode, Decode)]
struct FileEntryWire {
    path: String,
    size: u64,
    sha256: [u8; 32],
}

impl Manifest {
    /// The canonical encoding, after checking every rule.
    pub fn to_bytes(&self, limits: &Limits) -> Result<Vec<u8>, FormatError> {
        self.check(limits)?;
        Ok(encode(&self.to_wire()))
    }

    fn to_wire(&self) -> ManifestV1 {
        ManifestV1 {
            schema: MANIFEST_SCHEMA,
            name: self.name.0.clone(),
            version: self.version.to_string(),
            description: self.description.clone(),
            created: self.created,
            modelseal_version: self.modelseal_version.clone(),
            files: self
                .files
                .iter()
                .map(|f| FileEntryWire {
                    path: f.path.0.clone(),
                    size: f.size,
                    sha256: f.sha256,
                })
                .collect(),
            metadata: self.metadata.clone(),
        }
    }

    /// Decodes canonically and checks every rule.
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Manifest, FormatError> {
        if bytes.len() < 4 {
            return Err(FormatError::Truncated { what: "manifest" });
        }
        let schema = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
        if schema != MANIFEST_SCHEMA {
            return Err(FormatError::UnsupportedManifestSchema {
                found: schema,
                supported: MANIFEST_SCHEMA,
            });
        }
        let w: ManifestV1 = decode_canonical::<ManifestV1, { HARD_MAX_MANIFEST_BYTES as usize }>(
            bytes, "manifest",
        )?;
        let version = parse_version(&w.version)?;
        if version.to_string() != w.version {
            return Err(FormatError::NonCanonical {
                what: "manifest version",
            });
        }
        let files = w
            .files
            .into_iter()
            .map(|f| {
                Ok(FileEntry {
                    path: SafeRelPath::parse(&f.path, limits.max_path_bytes)?,
                    size: f.size,
                    sha256: f.sha256,
                })
            })
            .collect::<Result<Vec<_>, FormatError>>()?;
        let m = Manifest {
            name: ModelName::parse(&w.name)?,
            version,
            description: w.description,
            created: w.created,
            modelseal_version: w.modelseal_version,
            files,
            metadata: w.metadata,
        };
        m.check(limits)?;
        Ok(m)
    }

    /// The rules of FORMAT.md §9.
    pub fn check(&self, limits: &Limits) -> Result<(), FormatError> {
        let invalid = |detail: String| FormatError::InvalidManifest { detail };
        if self.files.len() > limits.max_files {
            return Err(invalid(format!(
                "{} files, at most {}",
                self.files.len(),
                limits.max_files
            )));
        }
        for pair in self.files.windows(2) {
            if pair[0].path.0.as_bytes() >= pair[1].path.0.as_bytes() {
                return Err(invalid(format!(
                    "files not sorted or duplicated at {:?}",
                    pair[1].path.0
                )));
            }
        }
        for f in &self.files {
            if f.path.0 == MANIFEST_ENTRY {
                return Err(invalid("a model file may not be named 'manifest'".into()));
            }
            if f.path.0.len() > limits.max_path_bytes {
                return Err(invalid(format!(
                    "path {:?} longer than {} bytes",
                    f.path.0, limits.max_path_bytes
                )));
            }
        }
        // A file and a directory of the same name cannot both exist on disk.
        for f in &self.files {
            let prefix = format!("{}/", f.path.0);
            if self.files.iter().any(|g| g.path.0.starts_with(&prefix)) {
                return Err(invalid(format!(
                    "{:?} is both a file and a directory",
                    f.path.0
                )));
            }
        }
        if self.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(invalid(format!(
                "description longer than {MAX_DESCRIPTION_BYTES} bytes"
            )));
        }
        for (k, v) in &self.metadata {
            if k.is_empty() || k.len() > MAX_META_KEY_BYTES || k.chars().any(char::is_control) {
                return Err(invalid(format!("metadata key {:?} must be 1 to {MAX_META_KEY_BYTES} bytes without control characters", k)));
            }
            if v.len() > MAX_META_VALUE_BYTES {
                return Err(invalid(format!(
                    "metadata value of {k:?} longer than {MAX_META_VALUE_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
