//! The model side of OMS: which files a model is, and their SHA-256, hashed in parallel with
//! bounded memory (FORMAT.md §11.3).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{FileDigest, Ignore, ResourceName, MAX_RESOURCES};
use crate::error::{IoContext, OmsError};
use crate::Result;

/// Bytes read at a time by each hashing worker: with one buffer per worker, memory stays at
/// `workers × HASH_BUFFER_BYTES` whatever the model's size. 1 MiB is model_signing's chunk.
const HASH_BUFFER_BYTES: usize = 1 << 20;

/// One file of the model: its resource name and where it is.
pub(crate) struct ModelFile {
    pub(crate) name: ResourceName,
    pub(crate) path: PathBuf,
}

/// The name model_signing gives the subject: the model path's last component.
pub(crate) fn model_name(model: &Path) -> String {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    name(model)
        .filter(|n| n != "..")
        .or_else(|| std::fs::canonicalize(model).ok().as_deref().and_then(name))
        .unwrap_or_else(|| "model".into())
}

/// Every file of the model, sorted as model_signing sorts them (by path component), outside the
/// ignored paths. A one-file model is the one resource `.`. Links, devices, FIFOs and sockets are
/// refused, as model_signing refuses them without `--allow_symlinks`; ignored directories are not
/// entered.
pub(crate) fn list(model: &Path, ignore: &Ignore) -> Result<Vec<ModelFile>> {
    let meta =
        std::fs::symlink_metadata(model).context(|| format!("reading {}", model.display()))?;
    if meta.is_file() {
        return Ok(vec![ModelFile {
            name: ResourceName::whole_file(),
            path: model.to_path_buf(),
        }]);
    }
    if !meta.is_dir() {
        return Err(unsupported(model, &meta));
    }
    let mut files = Vec::new();
    let mut dirs = vec![(model.to_path_buf(), String::new())];
    while let Some((dir, rel)) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).context(|| format!("listing {}", dir.display()))?;
        for e in entries {
            let e = e.context(|| format!("listing {}", dir.display()))?;
            let path = e.path();
            let Some(file_name) = e.file_name().to_str().map(str::to_owned) else {
                return Err(OmsError::UnrepresentableName {
                    path,
                    reason: "not UTF-8",
                }
                .into());
            };
            let rel = if rel.is_empty() {
                file_name
            } else {
                format!("{rel}/{file_name}")
            };
            if ignore.covers(&rel) {
                continue;
            }
            let t = e
                .file_type()
                .context(|| format!("reading {}", path.display()))?;
            if t.is_dir() {
                dirs.push((path, rel));
            } else if t.is_file() {
                let name = ResourceName::parse(&rel).map_err(|e| match e {
                    OmsError::UnsafeName { reason, .. } => OmsError::UnrepresentableName {
                        path: path.clone(),
                        reason,
                    },
                    other => other,
                })?;
                if files.len() == MAX_RESOURCES {
                    return Err(OmsError::TooManyFiles {
                        path: model.to_path_buf(),
                        max: MAX_RESOURCES,
                    }
                    .into());
                }
                files.push(ModelFile { name, path });
            } else {
                let meta = e
                    .metadata()
                    .context(|| format!("reading {}", path.display()))?;
                return Err(unsupported(&path, &meta));
            }
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

fn unsupported(path: &Path, meta: &std::fs::Metadata) -> crate::Error {
    OmsError::UnsupportedFile {
        path: path.to_path_buf(),
        kind: crate::fs::kind(meta),
    }
    .into()
}

/// SHA-256 of each file, in the order given, by a pool of `available_parallelism` workers that
/// take the next file as they finish one. The first error (in file order) is returned.
pub(crate) fn hash(files: Vec<ModelFile>) -> Result<Vec<FileDigest>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut results: Vec<(usize, Result<[u8; 32]>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut buf = vec![0u8; HASH_BUFFER_BYTES];
                    let mut out = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        let r = hash_file(&f.path, &mut buf);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        out.push((i, r));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    if results.len() != files.len() || results.iter().any(|(_, r)| r.is_err()) {
        // A worker that panicked leaves a gap; name its file as an I/O failure.
        for (expected, (i, r)) in results.into_iter().enumerate() {
            if expected != i {
                break;
            }
            r?;
        }
        let missing = files.len().min(next.load(Ordering::Relaxed));
        return Err(crate::Error::io(
            format!("hashing {} files", missing),
            std::io::Error::other("a hashing worker stopped"),
        ));
    }
    Ok(files
        .into_iter()
        .zip(results)
        .map(|(f, (_, r))| FileDigest {
            name: f.name,
            sha256: r.expect("checked: no error"),
        })
        .collect())
}

/// SHA-256 of one regular file, streamed through `buf`.
fn hash_file(path: &Path, buf: &mut [u8]) -> Result<[u8; 32]> {
    let mut file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    // The walk saw a regular file; refuse whatever was put there since (a FIFO would block).
    let meta = file
        .metadata()
        .context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        return Err(unsupported(path, &meta));
    }
    let mut h = crate::crypto::Sha256::default();
    loop {
        match file.read(buf) {
            Ok(0) => return Ok(h.finish()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(crate::Error::io(format!("reading {}", path.display()), e)),
        }
    }
}
