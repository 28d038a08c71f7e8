//! Leaf analysis of the files inside an archive, below both sealing and opening: what a file is
//! (format sniffing), the static pickle walker (opcodes are read, never run), the allowed-globals
//! policy and its checks, and the manifest's requirements.

mod bytes;
pub mod globals;
pub mod pickle;
mod sniffers;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, IoContext, ModelError, Result};
pub use bytes::{FileBytes, SEGMENT_BYTES};
pub use globals::GlobalPolicy;

use crate::format::manifest::{FileKind, Manifest, SafeRelPath};

/// The files of an archive opened into memory, in manifest order.
pub type OpenedFiles = Vec<(SafeRelPath, FileBytes)>;

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
pub fn resolve_globals(
    manifest: &Manifest,
    allow: &[String],
) -> Result<std::sync::Arc<GlobalPolicy>> {
    let mut versions: globals::Versions = manifest
        .requires
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(v) = recorded_sklearn(manifest) {
        versions.insert("scikit-learn".into(), v.into());
    }
    GlobalPolicy::resolve_shared(allow, &versions)
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
        let globals = globals_of(manifest, path.as_str(), || Ok(data.reader()))?;
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
