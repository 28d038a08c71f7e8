//! Model adapters: what a model file is (format sniffing, the static pickle walker), typed models
//! serialized by modelseal itself, and the version gate.

pub mod globals;
pub mod pickle;
mod sniffers;
pub mod tree;

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, IoContext, ModelError, Result};
pub use globals::GlobalPolicy;

use crate::format::manifest::{FileKind, Manifest, TypedModel};
use crate::open::{self, Decryption, OpenedFiles, ReadOptions};

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

/// Records what a file is: sniffs its format and, for pickles and joblib files, walks the pickle
/// opcodes statically (never executing anything) to list the globals it imports.
pub fn describe<R: Read>(mut r: R) -> std::io::Result<FileKind> {
    let mut head = [0u8; 64];
    let n = read_up_to(&mut r, &mut head)?;
    let format = pickle::sniff(&head[..n]);
    Ok(match format {
        pickle::ModelFormat::Pickle { .. }
        | pickle::ModelFormat::JoblibZlib
        | pickle::ModelFormat::Joblib => {
            scan_to_kind(std::io::Cursor::new(head[..n].to_vec()).chain(std::io::BufReader::new(r)))
        }
        other => FileKind {
            format: other.name().into(),
            ..Default::default()
        },
    })
}

/// [`describe`] on a file.
pub fn describe_file(path: &Path) -> Result<FileKind> {
    let f = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    describe(f).context(|| format!("reading {}", path.display()))
}

fn scan_to_kind<R: Read>(r: R) -> FileKind {
    match pickle::scan(r, &pickle::PickleLimits::default()) {
        Ok(info) => FileKind {
            format: info.format.name().into(),
            pickle_protocol: Some(info.protocol),
            pickle_globals: info.globals,
            sklearn_version: info.sklearn_version,
        },
        // A pickle we cannot walk is recorded as importing something unknown, so that every
        // allow-list refuses it.
        Err(e) => FileKind {
            format: "pickle".into(),
            pickle_protocol: None,
            pickle_globals: vec![format!("<unparseable: {e}>")],
            sklearn_version: None,
        },
    }
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The scikit-learn release a manifest records: the `_sklearn_version` walked from its pickles
/// first (what the estimators were really pickled by), else `requires["scikit-learn"]`.
pub fn recorded_sklearn(manifest: &Manifest) -> Option<&str> {
    manifest
        .files
        .iter()
        .find_map(|f| f.kind.sklearn_version.as_deref())
        .or_else(|| manifest.requires.get("scikit-learn").map(String::as_str))
}

/// Resolves allowed-globals entries (`@sklearn`, `@xgboost`..., `@FILE`, `pkg.*`, exact names)
/// for the model `manifest` describes: each profile is chosen by the library version the manifest
/// records (`requires`, and for scikit-learn the walked `_sklearn_version` first).
pub fn resolve_globals(manifest: &Manifest, allow: &[String]) -> Result<GlobalPolicy> {
    let mut versions: globals::Versions = manifest
        .requires
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(v) = recorded_sklearn(manifest) {
        versions.insert("scikit-learn".into(), v.into());
    }
    GlobalPolicy::resolve(allow, &versions)
}

/// Re-walks every pickle among the opened files and refuses one that imports a global outside
/// `policy` (naming all of them), or whose globals differ from the signed manifest's record. Every
/// other file must be positively recognised as a safe format (see [`untrusted_in_memory`]). The
/// walk runs on the bytes that were checked, not on the manifest's claim, so a signer's tool that
/// lied is caught too.
pub fn check_globals_in_memory(
    manifest: &Manifest,
    files: &OpenedFiles,
    policy: &GlobalPolicy,
) -> Result<()> {
    for (path, globals) in untrusted_in_memory(manifest, files, policy)? {
        if !globals.is_empty() {
            return Err(ModelError::DisallowedGlobal { path, globals }.into());
        }
    }
    Ok(())
}

/// For each opened file, the globals it imports that `policy` does not allow (empty when none):
/// the review step before anything is loaded. A file that is neither a pickle walked to its end
/// nor a recognised safe format (safetensors, GGUF, ONNX, `.npy` without objects, UTF-8 text) is
/// refused with [`ModelError::UncheckedFile`]: joblib also loads gzip, bz2, xz, lzma, lz4 and
/// zlib-wrapped pickles, and `.npy` object arrays are pickles.
pub fn untrusted_in_memory(
    manifest: &Manifest,
    files: &OpenedFiles,
    policy: &GlobalPolicy,
) -> Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for (path, data) in files {
        let globals = globals_of(manifest, path.as_str(), || Ok(&data[..]))?;
        out.push((path.as_str().to_owned(), policy.untrusted(&globals)));
    }
    Ok(out)
}

/// [`check_globals_in_memory`] for files extracted under `root`.
pub fn check_globals_in_dir(manifest: &Manifest, root: &Path, policy: &GlobalPolicy) -> Result<()> {
    for f in &manifest.files {
        let mut p = root.to_path_buf();
        for c in f.path.components() {
            p.push(c);
        }
        let open = || {
            std::fs::File::open(&p)
                .map(std::io::BufReader::new)
                .context(|| format!("opening {}", p.display()))
        };
        let globals = globals_of(manifest, f.path.as_str(), open)?;
        let bad = policy.untrusted(&globals);
        if !bad.is_empty() {
            return Err(ModelError::DisallowedGlobal {
                path: f.path.as_str().into(),
                globals: bad,
            }
            .into());
        }
    }
    Ok(())
}

/// The globals one file imports, or an [`ModelError::UncheckedFile`] refusal. `open` yields the
/// file's bytes from the start (called at most twice).
fn globals_of<R: Read>(
    manifest: &Manifest,
    path: &str,
    open: impl Fn() -> Result<R>,
) -> Result<Vec<String>> {
    let io = |e| Error::io(format!("reading {path}"), e);
    let mut data = open()?;
    let mut head = [0u8; 64];
    let n = read_up_to(&mut data, &mut head).map_err(io)?;
    let head = &head[..n];
    let unchecked = |detail: &str| -> Error {
        ModelError::UncheckedFile {
            path: path.into(),
            detail: detail.into(),
        }
        .into()
    };
    let stream = std::io::Cursor::new(head.to_vec()).chain(std::io::BufReader::new(data));
    let format = pickle::sniff(head);
    match format {
        pickle::ModelFormat::Pickle { .. }
        | pickle::ModelFormat::JoblibZlib
        | pickle::ModelFormat::Joblib => {
            let kind = scan_to_kind(stream);
            if let Some(rec) = manifest
                .files
                .iter()
                .find(|f| f.path.as_str() == path)
                .map(|f| &f.kind)
            {
                if rec.format != "unknown" && rec.pickle_globals != kind.pickle_globals {
                    return Err(ModelError::GlobalsMismatch { path: path.into() }.into());
                }
            }
            return Ok(kind.pickle_globals);
        }
        _ => {}
    }
    if let Some(wrapper) = sniffers::compressed(head) {
        return Err(unchecked(&format!(
            "a {wrapper} stream, which joblib decompresses and unpickles"
        )));
    }
    if head.starts_with(b"\x93NUMPY") {
        return match sniffers::npy_holds_objects(open()?).map_err(io)? {
            Some(false) => Ok(Vec::new()),
            Some(true) => Err(unchecked("a .npy array of Python objects (a pickle)")),
            None => Err(unchecked("a malformed .npy file")),
        };
    }
    // Anything else may be a protocol 0/1 pickle, which has no header to sniff (or a polyglot
    // that also sniffs as another format): walk it from the first byte.
    match pickle::scan_any(stream, &pickle::PickleLimits::default()) {
        pickle::AnyScan::Complete(info) => Ok(info.globals),
        pickle::AnyScan::Incomplete { mut globals, error } => {
            globals.push(format!("<unparseable: {error}>"));
            Ok(globals)
        }
        pickle::AnyScan::NotAPickle => {
            let safe = match format {
                pickle::ModelFormat::Safetensors => sniffers::safetensors_header_ok(open()?),
                pickle::ModelFormat::Gguf => Ok(sniffers::gguf_header_ok(head)),
                pickle::ModelFormat::Onnx => Ok(true),
                _ => sniffers::is_text(open()?),
            }
            .map_err(io)?;
            if safe {
                Ok(Vec::new())
            } else {
                Err(unchecked(&format!(
                    "not a pickle and not a recognised safe format ({})",
                    if format == pickle::ModelFormat::Unknown {
                        "unknown binary data".to_owned()
                    } else {
                        format!("a malformed {} header", format.name())
                    }
                )))
            }
        }
    }
}

/// Refuses unless the manifest declares each `NAME==VERSION` in `expect` exactly.
pub fn check_requirements(manifest: &Manifest, expect: &[(String, String)]) -> Result<()> {
    for (name, expected) in expect {
        match manifest.requires.get(name) {
            Some(required) if required == expected => {}
            Some(required) => {
                return Err(ModelError::RequirementMismatch {
                    name: name.clone(),
                    required: required.clone(),
                    expected: expected.clone(),
                }
                .into())
            }
            None => {
                return Err(ModelError::RequirementMissing {
                    name: name.clone(),
                    expected: expected.clone(),
                }
                .into())
            }
        }
    }
    Ok(())
}

/// Parses `NAME==VERSION`.
pub fn parse_requirement(s: &str) -> Result<(String, String)> {
    match s.split_once("==") {
        Some((n, v)) if !n.trim().is_empty() && !v.trim().is_empty() => {
            Ok((n.trim().to_owned(), v.trim().to_owned()))
        }
        _ => Err(crate::error::UsageError::InvalidMetadata {
            value: s.into(),
            detail: "expected NAME==VERSION".into(),
        }
        .into()),
    }
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
    let (report, files) =
        open::open_reader_to_memory(input, key, opts, max_bytes, &open::ModelChecks::default())?;
    let manifest = report.manifest.expect("opening always yields the manifest");
    let typed = check_typed::<M>(&manifest, libraries, policy)?;
    let (_, bytes) = files
        .iter()
        .find(|(p, _)| p.as_str() == typed.path)
        .ok_or_else(|| ModelError::NotTyped {
            formats: "typed model file missing".into(),
        })?;
    let model = decode_model(bytes)?;
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
