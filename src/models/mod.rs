//! Typed models serialized by modelseal itself (a linfa decision tree), loaded only after every
//! check passed, and the version gate. Above `open` and `seal`; the analysis of files inside an
//! archive (pickles, sniffing, allowed globals) is `crate::scan`.

pub mod tree;

use std::io::Read;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ModelError, Result};
use crate::format::manifest::{Manifest, TypedModel};
use crate::open::{self, Decryption, ReadOptions};

/// The encoding of typed models: bincode 2.0.1 through serde, fixed-width little-endian integers.
pub const MODEL_ENCODING: &str = "bincode-2.0.1+serde/fixint-le";
/// The linfa-trees version this build links (checked against Cargo.lock by a test).
pub const LINFA_TREES_VERSION: &str = "0.8.1";
/// The library name recorded for tree models.
pub const LINFA_TREES: &str = "linfa-trees";

/// How strictly a typed load compares what the model was built with against this build.
///
/// Security choices are enums with a safe default: `Strict`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionPolicy {
    /// The type name, the encoding and every recorded library's major.minor must match this build.
    #[default]
    Strict,
    /// Accept another major.minor of the recorded libraries. This gives up the guarantee that the
    /// model's fields mean what this build's code assumes: a model serialized by another release
    /// may decode into subtly different behaviour, or fail to decode. The type and encoding must
    /// still match.
    AllowLibraryMismatch,
}

fn config() -> bincode::config::Configuration<bincode::config::LittleEndian, bincode::config::Fixint>
{
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// Encodes a model for sealing, with the record a typed load checks.
pub fn encode_model<M: Serialize>(
    model: &M,
    path: &str,
    libraries: &[(&str, &str)],
) -> Result<(Vec<u8>, TypedModel)> {
    let bytes = bincode::serde::encode_to_vec(model, config()).map_err(|e| ModelError::Decode {
        detail: e.to_string(),
    })?;
    let typed = TypedModel {
        path: path.into(),
        type_name: std::any::type_name::<M>().into(),
        encoding: MODEL_ENCODING.into(),
        libraries: libraries
            .iter()
            .map(|(l, v)| (l.to_string(), v.to_string()))
            .collect(),
    };
    Ok((bytes, typed))
}

macro_rules! decode_under {
    ($bytes:expr, $($bits:literal),*) => {{
        let len = $bytes.len() as u64;
        $(
            if len <= (1u64 << $bits) {
                let cfg = config().with_limit::<{ 1usize << $bits }>();
                bincode::serde::decode_from_slice($bytes, cfg).map_err(|e| ModelError::Decode { detail: e.to_string() })
            } else
        )*
        {
            Err(ModelError::Decode { detail: format!("{len} bytes is above the 2^36-byte model limit") })
        }
    }};
}

/// Decodes a model with bincode under a byte limit of the signed size rounded up to a power of two
/// (bincode's limit is a compile-time constant), and refuses unless every byte was consumed.
pub fn decode_model<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, ModelError> {
    let (model, used): (M, usize) =
        decode_under!(bytes, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36)?;
    if used != bytes.len() {
        return Err(ModelError::Decode {
            detail: format!("{} bytes left after the model", bytes.len() - used),
        });
    }
    Ok(model)
}

/// The major.minor of a version string.
fn major_minor(v: &str) -> Option<(u64, u64)> {
    let v = semver::Version::parse(v).ok()?;
    Some((v.major, v.minor))
}

/// The version gate for a typed load of `M` (what [`open_model`] checks before decoding).
pub fn check_typed<'m, M>(
    manifest: &'m Manifest,
    libraries: &[(&str, &str)],
    policy: VersionPolicy,
) -> Result<&'m TypedModel> {
    let Some(t) = &manifest.typed_model else {
        let formats: Vec<&str> = manifest
            .files
            .iter()
            .map(|f| f.kind.format.as_str())
            .collect();
        return Err(ModelError::NotTyped {
            formats: formats.join(", "),
        }
        .into());
    };
    let expected = std::any::type_name::<M>();
    if t.type_name != expected {
        return Err(ModelError::TypeMismatch {
            expected: expected.into(),
            found: t.type_name.clone(),
        }
        .into());
    }
    if t.encoding != MODEL_ENCODING {
        return Err(ModelError::EncodingMismatch {
            expected: MODEL_ENCODING.into(),
            found: t.encoding.clone(),
        }
        .into());
    }
    for (lib, running) in libraries {
        let recorded = t
            .libraries
            .get(*lib)
            .cloned()
            .unwrap_or_else(|| "(none)".into());
        let same =
            major_minor(&recorded).is_some() && major_minor(&recorded) == major_minor(running);
        if !same && policy == VersionPolicy::Strict {
            return Err(ModelError::LibraryVersionMismatch {
                library: lib.to_string(),
                recorded,
                running: running.to_string(),
            }
            .into());
        }
    }
    Ok(t)
}

/// Opens an archive and returns the typed model inside, only after every check of the archive
/// (FORMAT.md §7) and the version gate passed.
pub fn open_model<M: DeserializeOwned, R: Read + Send>(
    input: R,
    key: Decryption<'_>,
    opts: &ReadOptions<'_>,
    libraries: &[(&str, &str)],
    policy: VersionPolicy,
    max_bytes: u64,
) -> Result<(M, Manifest)> {
    let (opened, files) =
        open::open_reader_to_memory(input, key, opts, max_bytes, &open::ModelChecks::default())?;
    let manifest = opened.manifest;
    let typed = check_typed::<M>(&manifest, libraries, policy)?;
    let (_, bytes) = files
        .iter()
        .find(|(p, _)| p.as_str() == typed.path)
        .ok_or_else(|| ModelError::NotTyped {
            formats: "typed model file missing".into(),
        })?;
    let model = decode_model(&bytes.to_vec())?;
    Ok((model, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linfa_trees_version_matches_cargo_lock() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
        let at = lock
            .find("name = \"linfa-trees\"\nversion = \"")
            .expect("linfa-trees in Cargo.lock");
        let rest = &lock[at + "name = \"linfa-trees\"\nversion = \"".len()..];
        assert_eq!(&rest[..rest.find('"').unwrap()], LINFA_TREES_VERSION);
    }

    #[test]
    fn a_huge_length_prefix_in_a_model_is_a_clean_error() {
        // A Vec<u8> claiming 2^40 bytes in 13 bytes: THREATS.md's bincode abort, refused here.
        let mut b = (1u64 << 40).to_le_bytes().to_vec();
        b.extend_from_slice(&[0; 5]);
        assert!(decode_model::<Vec<u8>>(&b).is_err());
        let ok = bincode::serde::encode_to_vec(vec![1u8, 2, 3], config()).unwrap();
        assert_eq!(decode_model::<Vec<u8>>(&ok).unwrap(), vec![1, 2, 3]);
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(decode_model::<Vec<u8>>(&trailing).is_err());
    }
}
