//! OpenSSF Model Signing (OMS) bundles, as `model_signing sign key` writes them and
//! `model_signing verify key` checks them (FORMAT.md §11).
//!
//! A bundle is a Sigstore bundle v0.3 holding a DSSE envelope over an in-toto statement that
//! lists every file of a model with its SHA-256, signed with an ECDSA P-256 key. modelseal writes
//! bundles model_signing 1.x verifies, and verifies the bundles it writes.
//!
//! ```
//! # fn main() -> modelseal::Result<()> {
//! use modelseal::oms::{self, EcSigningKey, Ignore};
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("weights.bin"), b"weights").unwrap();
//! let key = EcSigningKey::from_bytes(&[7; 32]).unwrap();
//! let bundle = oms::sign(dir.path(), &key, &Ignore::default())?;
//! let verified = oms::verify(dir.path(), &bundle, &key.verifying_key(), &Ignore::default())?;
//! assert_eq!(verified.files[0].name.as_str(), "weights.bin");
//! # Ok(()) }
//! ```

mod bundle;
mod key;
mod model;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use bundle::{BUNDLE_MEDIA_TYPE, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE};
pub use key::{EcSigningKey, EcVerifyingKey, MAX_KEY_PEM_BYTES};

use crate::error::{IoContext, OmsError};
use crate::format::manifest::SafeRelPath;
use crate::limits::HARD_MAX_PATH_BYTES;
use crate::Result;

/// Largest bundle read, checked before reading, and the largest an archive may carry. model_signing
/// writes about 230 bytes per file (pretty-printed, then base64), so [`MAX_RESOURCES`] files fit
/// with room to spare.
pub const MAX_BUNDLE_BYTES: u64 = crate::format::manifest::MAX_OMS_BUNDLE_BYTES;
/// Most files one bundle may list, and most files a model may have to be signed.
pub const MAX_RESOURCES: usize = 100_000;
/// Most `ignore_paths` a statement may carry.
pub const MAX_IGNORE_PATHS: usize = 1024;
/// What model_signing ignores by default in a model directory (`--ignore-git-paths`).
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// The name of a resource: a file's safe relative path in the model directory, or `.` for a model
/// that is one file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceName(String);

impl ResourceName {
    /// The name of the one resource of a one-file model.
    pub fn whole_file() -> ResourceName {
        ResourceName(".".into())
    }

    /// Parses a name: `.`, or a relative path modelseal's manifest could also hold (no `..`,
    /// `.` or empty component, no backslash, colon or control character, at most 4096 bytes).
    pub fn parse(s: &str) -> Result<ResourceName, OmsError> {
        if s == "." {
            return Ok(ResourceName::whole_file());
        }
        match SafeRelPath::parse(s, HARD_MAX_PATH_BYTES) {
            Ok(p) => Ok(ResourceName(p.as_str().to_owned())),
            Err(crate::error::FormatError::UnsafePath { reason, .. }) => {
                Err(OmsError::UnsafeName {
                    name: s.chars().take(256).collect(),
                    reason,
                })
            }
            Err(_) => Err(OmsError::UnsafeName {
                name: s.chars().take(256).collect(),
                reason: "not a safe relative path",
            }),
        }
    }

    /// The name, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `.`, the one file of a one-file model.
    pub fn is_whole_file(&self) -> bool {
        self.0 == "."
    }
}

/// model_signing orders resources as Python orders `PurePosixPath`s: component by component, so
/// `a/b` comes before `a.b` (a plain string order would put `a.b` first).
impl Ord for ResourceName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.split('/').cmp(other.0.split('/'))
    }
}

impl PartialOrd for ResourceName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A file of a model and its SHA-256: one resource of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// The file's name.
    pub name: ResourceName,
    /// SHA-256 of its whole content.
    pub sha256: [u8; 32],
}

/// Whether git's files in a model directory are left out (model_signing's default) or signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GitPaths {
    /// Leave out [`GIT_PATHS`] at the top of the model directory, and say so in the statement.
    #[default]
    Ignore,
    /// Sign them like any file (`--no-ignore-git-paths`).
    Include,
}

/// Paths of a model directory that are not signed, and so not checked.
///
/// Relaxing this gives up checking those paths: a file under an ignored path may be anything. The
/// paths a bundle records as ignored are ignored on verification too, as model_signing does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ignore {
    /// Paths relative to the model directory, `/`-separated; a directory covers what it holds.
    pub paths: Vec<String>,
    /// Git's files.
    pub git: GitPaths,
}

/// The components of an ignored path as model_signing reads it (`PurePosixPath`): empty and `.`
/// components dropped; an absolute path ignores nothing.
fn ignore_components(p: &str) -> Option<Vec<&str>> {
    if p.starts_with('/') {
        return None;
    }
    Some(
        p.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect(),
    )
}

impl Ignore {
    /// The paths recorded in a statement: git's (unless included), then the caller's, once each.
    fn recorded(&self) -> Vec<String> {
        let mut out: Vec<String> = match self.git {
            GitPaths::Ignore => GIT_PATHS.iter().map(|s| s.to_string()).collect(),
            GitPaths::Include => Vec::new(),
        };
        for p in &self.paths {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// True when `rel` (a path in the model directory) is at or under an ignored path.
    fn covers(&self, rel: &str) -> bool {
        let git = match self.git {
            GitPaths::Ignore => &GIT_PATHS[..],
            GitPaths::Include => &[],
        };
        let rel: Vec<&str> = rel.split('/').collect();
        git.iter()
            .copied()
            .chain(self.paths.iter().map(String::as_str))
            .filter_map(ignore_components)
            .any(|c| rel.starts_with(&c))
    }

    /// This set with the paths a verified statement records added.
    fn with(&self, recorded: &[String]) -> Ignore {
        let mut out = self.clone();
        out.paths.extend(recorded.iter().cloned());
        out
    }

    /// Paths given on a command line (relative to the current directory, as model_signing's CLI
    /// takes them), turned into paths in the model directory; paths outside it are dropped. The
    /// signature file is passed here too, so that a signature inside the model is not signed.
    pub fn from_cwd(model: &Path, paths: &[PathBuf], git: GitPaths) -> Ignore {
        let root = resolve(model);
        let paths = paths
            .iter()
            .filter_map(|p| {
                let rel = resolve(p).strip_prefix(&root).ok()?.to_path_buf();
                let parts: Option<Vec<&str>> = rel.iter().map(|c| c.to_str()).collect();
                let joined = parts?.join("/");
                Some(if joined.is_empty() {
                    ".".into()
                } else {
                    joined
                })
            })
            .collect();
        Ignore { paths, git }
    }
}

/// An absolute path with the links of its existing part resolved, like Python's
/// `Path.resolve()`: the part that does not exist yet (a signature to be written) is appended.
fn resolve(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(c, |acc, r| acc.join(r));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// What a verified bundle says, after the model matched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedOms {
    /// The subject's name (informative: the signer's model directory name).
    pub model_name: String,
    /// The signed files, in the bundle's order.
    pub files: Vec<FileDigest>,
    /// The hint of the key that verified it.
    pub key_hint: String,
    /// The paths the signer left out.
    pub ignore_paths: Vec<String>,
}

/// The SHA-256 of every file of the model at `model_path` (a file or a directory), sorted as a
/// statement lists them.
pub fn hash_model(model_path: &Path, ignore: &Ignore) -> Result<Vec<FileDigest>> {
    model::hash(model::list(model_path, ignore)?)
}

/// Hashes the model at `model_path` and signs it: the bundle's bytes (FORMAT.md §11).
pub fn sign(model_path: &Path, key: &EcSigningKey, ignore: &Ignore) -> Result<Vec<u8>> {
    let files = hash_model(model_path, ignore)?;
    sign_digests(
        &model::model_name(model_path),
        files,
        &ignore.recorded(),
        key,
    )
}

/// Signs files already hashed (by `seal`, whose manifest holds every SHA-256): the bundle's bytes.
/// `files` are sorted here; `ignore_paths` are recorded as the paths left out.
pub fn sign_digests(
    model_name: &str,
    mut files: Vec<FileDigest>,
    ignore_paths: &[String],
    key: &EcSigningKey,
) -> Result<Vec<u8>> {
    files.sort_by(|a, b| a.name.cmp(&b.name));
    check_listable(&files, ignore_paths)?;
    let statement = bundle::Statement {
        subject_name: model_name.to_owned(),
        subject_digest: bundle::subject_digest(&files),
        allow_symlinks: false,
        ignore_paths: ignore_paths.to_vec(),
        resources: files,
    };
    Ok(bundle::sign(&statement, key))
}

/// Refuses to sign what [`verify`] would refuse to read.
fn check_listable(files: &[FileDigest], ignore_paths: &[String]) -> Result<(), OmsError> {
    let too_many = |what, found, max: usize| OmsError::Count {
        what,
        found,
        allowed: format!("0..={max}"),
    };
    if files.len() > MAX_RESOURCES {
        return Err(too_many("resources", files.len(), MAX_RESOURCES));
    }
    if ignore_paths.len() > MAX_IGNORE_PATHS {
        return Err(too_many(
            "ignore_paths",
            ignore_paths.len(),
            MAX_IGNORE_PATHS,
        ));
    }
    if files.len() > 1 && files.iter().any(|f| f.name.is_whole_file()) {
        return Err(OmsError::UnsafeName {
            name: ".".into(),
            reason: "'.' names a one-file model and must be the only resource",
        });
    }
    if let Some(w) = files.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(OmsError::DuplicateResource {
            name: w[0].name.as_str().to_owned(),
        });
    }
    Ok(())
}

/// Reads a bundle file, refusing one above [`MAX_BUNDLE_BYTES`] before reading it.
pub fn read_bundle(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    let size = file
        .metadata()
        .context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_BUNDLE_BYTES {
        return Err(OmsError::BundleTooLarge {
            size,
            max: MAX_BUNDLE_BYTES,
        }
        .into());
    }
    // The size can change under us (or the file be a FIFO): read one byte past the cap.
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(OmsError::BundleTooLarge {
            size: bytes.len() as u64,
            max: MAX_BUNDLE_BYTES,
        }
        .into());
    }
    Ok(bytes)
}

/// Checks `bundle` with `key`, then the model at `model_path` against it: every signed file is
/// there with its digest, and no other file is (FORMAT.md §11.4).
pub fn verify(
    model_path: &Path,
    bundle: &[u8],
    key: &EcVerifyingKey,
    ignore: &Ignore,
) -> Result<VerifiedOms> {
    let statement = bundle::Envelope::parse(bundle)?.verify(key)?;
    // 7. The files: names first (no hashing if the set differs), then digests.
    let local = model::list(model_path, &ignore.with(&statement.ignore_paths))?;
    let names: Vec<&ResourceName> = local.iter().map(|f| &f.name).collect();
    compare_names(&statement.resources, &names)?;
    let hashed = model::hash(local)?;
    compare_digests(&statement.resources, &hashed)?;
    Ok(verified(statement, key))
}

/// Checks `bundle` with `key`, then `files` (already hashed) against it, leaving out the paths
/// the bundle records as ignored.
pub fn verify_digests(
    bundle: &[u8],
    files: &[FileDigest],
    key: &EcVerifyingKey,
) -> Result<VerifiedOms> {
    let statement = bundle::Envelope::parse(bundle)?.verify(key)?;
    compare_files(&statement, files)?;
    Ok(verified(statement, key))
}

/// Checks what a bundle lists against `files` (already hashed), **without** its signature: for
/// the opener of an archive that carries one, who may not hold the OMS public key; whoever then
/// runs `model_signing verify key` checks the signature. The statement must parse, and list
/// exactly `files` (less the paths it records as ignored) with their digests.
///
/// A carried bundle may record only git's files as ignored (what `seal --oms-key` records): a
/// bundle ignoring anything else (`"."`, a model file) would leave those files unchecked by
/// whoever verifies it later, so it is refused.
pub fn check_unsigned(bundle: &[u8], files: &[FileDigest]) -> Result<()> {
    let envelope = bundle::Envelope::parse(bundle)?;
    let statement = bundle::Statement::parse(&envelope.payload)?;
    if let Some(p) = statement
        .ignore_paths
        .iter()
        .find(|p| !GIT_PATHS.contains(&p.as_str()))
    {
        return Err(OmsError::IgnoresModelFiles { path: p.clone() }.into());
    }
    compare_files(&statement, files)?;
    Ok(())
}

/// The manifest's files as an OMS bundle lists them (the bundle's own entry left out), those git
/// files at the top that model_signing leaves out by default left out too (`git`).
pub fn manifest_digests(
    files: &[crate::format::manifest::FileEntry],
    git: GitPaths,
) -> Result<Vec<FileDigest>> {
    let ignore = Ignore {
        paths: Vec::new(),
        git,
    };
    files
        .iter()
        .filter(|f| f.path.as_str() != crate::format::manifest::OMS_ENTRY)
        .filter(|f| !ignore.covers(f.path.as_str()))
        .map(|f| {
            Ok(FileDigest {
                name: ResourceName::parse(f.path.as_str())?,
                sha256: f.sha256,
            })
        })
        .collect()
}

/// `files`, less the paths the statement records as ignored, are exactly what it lists.
fn compare_files(statement: &bundle::Statement, files: &[FileDigest]) -> Result<(), OmsError> {
    let ignore = Ignore {
        paths: statement.ignore_paths.clone(),
        git: GitPaths::Include,
    };
    let files: Vec<FileDigest> = files
        .iter()
        .filter(|f| f.name.is_whole_file() || !ignore.covers(f.name.as_str()))
        .cloned()
        .collect();
    let names: Vec<&ResourceName> = files.iter().map(|f| &f.name).collect();
    compare_names(&statement.resources, &names)?;
    compare_digests(&statement.resources, &files)
}

fn verified(s: bundle::Statement, key: &EcVerifyingKey) -> VerifiedOms {
    VerifiedOms {
        model_name: s.subject_name,
        files: s.resources,
        key_hint: key.hint().to_owned(),
        ignore_paths: s.ignore_paths,
    }
}

/// An extra file first, then a missing one, each the first in statement order (model_signing
/// reports them in that order too).
fn compare_names(signed: &[FileDigest], local: &[&ResourceName]) -> Result<(), OmsError> {
    let signed_names: std::collections::HashSet<&ResourceName> =
        signed.iter().map(|f| &f.name).collect();
    let mut extra: Vec<&&ResourceName> = local
        .iter()
        .filter(|n| !signed_names.contains(**n))
        .collect();
    extra.sort();
    if let Some(n) = extra.first() {
        return Err(OmsError::FileExtra {
            path: n.as_str().to_owned(),
        });
    }
    let local: std::collections::HashSet<&ResourceName> = local.iter().copied().collect();
    if let Some(f) = signed.iter().find(|f| !local.contains(&f.name)) {
        return Err(OmsError::FileMissing {
            path: f.name.as_str().to_owned(),
        });
    }
    Ok(())
}

fn compare_digests(signed: &[FileDigest], local: &[FileDigest]) -> Result<(), OmsError> {
    let local: HashMap<&ResourceName, &[u8; 32]> =
        local.iter().map(|f| (&f.name, &f.sha256)).collect();
    for f in signed {
        match local.get(&f.name) {
            Some(d) if **d == f.sha256 => {}
            Some(d) => {
                return Err(OmsError::FileChanged {
                    path: f.name.as_str().to_owned(),
                    expected: hex::encode(f.sha256),
                    found: hex::encode(d),
                })
            }
            None => {
                return Err(OmsError::FileMissing {
                    path: f.name.as_str().to_owned(),
                })
            }
        }
    }
    Ok(())
}

/// The fuzzing harness's entry: the envelope parser, and the statement parser on its payload and
/// on the raw bytes, each statement re-encoded and parsed again to the same value.
#[cfg(fuzzing)]
pub(crate) fn fuzz_bundle(data: &[u8]) {
    let statements = [
        bundle::Envelope::parse(data)
            .ok()
            .and_then(|e| bundle::Statement::parse(&e.payload).ok()),
        bundle::Statement::parse(data).ok(),
    ];
    for s in statements.into_iter().flatten() {
        let again = bundle::Statement::parse(&s.to_json()).expect("re-encoded statement parses");
        assert_eq!(again, s);
    }
}

/// Writes a bundle to `path` by renaming a complete temporary file over it: a reader never sees
/// half a bundle, and an existing one is replaced whole (as model_signing replaces it).
pub fn write_bundle(path: &Path, bundle: &[u8]) -> Result<()> {
    crate::fs::write_atomic(path, bundle)
}
