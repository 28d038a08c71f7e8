//! What is sealed: inputs from files and directories (walked without following links, refused if
//! they change while read) or from memory, under the same rules, in archive order.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::as_seal_input;
use crate::crypto::Sha256;
use crate::error::{IoContext, Result, UsageError};
use crate::format::manifest::{Reference, SafeRelPath, MANIFEST_ENTRY};
use crate::limits::Limits;

/// Where an input's bytes come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A file on disk, read twice: hashed for the manifest, then streamed into the payload.
    File(PathBuf),
    /// Bytes in memory (a model serialized by modelseal).
    Bytes(Vec<u8>),
}

impl Source {
    /// The length of the bytes, as the file system or the buffer reports it now.
    pub(crate) fn len(&self) -> Result<u64> {
        match self {
            Source::File(p) => Ok(std::fs::metadata(p)
                .context(|| format!("reading {}", p.display()))?
                .len()),
            Source::Bytes(b) => Ok(b.len() as u64),
        }
    }

    pub(crate) fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        match self {
            Source::File(p) => Ok(Box::new(
                std::fs::File::open(p).context(|| format!("opening {}", p.display()))?,
            )),
            Source::Bytes(b) => Ok(Box::new(&b[..])),
        }
    }

    /// What identifies the file's contents as GNU tar checks them before and after reading: device,
    /// inode, size, modification and status-change times (the status-change time cannot be set
    /// back by the writer). None for bytes in memory.
    pub(crate) fn stamp(&self) -> Result<Option<Stamp>> {
        match self {
            Source::File(p) => {
                let m = std::fs::metadata(p).context(|| format!("reading {}", p.display()))?;
                Ok(Some(Stamp::of(&m)))
            }
            Source::Bytes(_) => Ok(None),
        }
    }

    /// Refuses with `InputChanged` unless the file still has the stamp taken before it was read.
    pub(crate) fn unchanged_since(&self, before: &Option<Stamp>) -> Result<()> {
        if self.stamp()? != *before {
            return Err(UsageError::InputChanged {
                path: self.display(),
            }
            .into());
        }
        Ok(())
    }

    pub(crate) fn display(&self) -> PathBuf {
        match self {
            Source::File(p) => p.clone(),
            Source::Bytes(_) => PathBuf::from("(in memory)"),
        }
    }
}

/// See [`Source::stamp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    #[cfg(unix)]
    fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    #[cfg(not(unix))]
    fn of(m: &std::fs::Metadata) -> Stamp {
        let t = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or((0, 0), |d| {
                (d.as_secs() as i64, i64::from(d.subsec_nanos()))
            });
        Stamp {
            dev: 0,
            ino: 0,
            len: m.len(),
            mtime: t,
            ctime: t,
        }
    }
}

/// One input file and where it goes in the archive.
#[derive(Clone, Debug)]
pub struct Input {
    /// Path inside the archive.
    pub archive_path: SafeRelPath,
    /// Where the bytes come from.
    pub source: Source,
}

/// Records a file by name, size and SHA-256 (for `--train-data` and `--source`).
pub fn reference(path: &Path) -> Result<Reference> {
    let (size, sha256) = hash(&mut Source::File(path.to_path_buf()).open()?, path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Reference { name, size, sha256 })
}

/// Expands files and directories into inputs: a file goes in under its own name, a directory's
/// regular files under the directory's name, sorted. Symlinks and special files inside directories
/// are refused, never followed.
pub fn collect_inputs(paths: &[PathBuf], limits: &Limits) -> Result<Vec<Input>> {
    collect_inputs_inner(paths, limits).map_err(as_seal_input)
}

fn collect_inputs_inner(paths: &[PathBuf], limits: &Limits) -> Result<Vec<Input>> {
    if paths.is_empty() {
        return Err(UsageError::NoInputs.into());
    }
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).context(|| format!("reading {}", p.display()))?;
        let base = p
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or(UsageError::UnsupportedInput {
                path: p.clone(),
                kind: "no UTF-8 file name",
            })?
            .to_owned();
        if meta.is_file() {
            out.push(Input {
                archive_path: SafeRelPath::parse(&base, limits.max_path_bytes)?,
                source: Source::File(p.clone()),
            });
        } else if meta.is_dir() {
            walk_dir(p, &base, limits, &mut out)?;
        } else {
            return Err(UsageError::UnsupportedInput {
                path: p.clone(),
                kind: "not a regular file or directory",
            }
            .into());
        }
        if out.len() > limits.max_files {
            return Err(crate::error::ContentError::TooManyFiles {
                max: limits.max_files,
            }
            .into());
        }
    }
    finish_inputs(out, limits)
}

/// Inputs held in memory (the Python package's `dump`), each with its archive path, under the
/// same rules as files: valid paths within the limit, at most `max_files`, none twice, none the
/// reserved manifest name, at least one.
pub fn inputs_from_memory(files: Vec<(String, Vec<u8>)>, limits: &Limits) -> Result<Vec<Input>> {
    inputs_from_memory_inner(files, limits).map_err(as_seal_input)
}

fn inputs_from_memory_inner(files: Vec<(String, Vec<u8>)>, limits: &Limits) -> Result<Vec<Input>> {
    if files.len() > limits.max_files {
        return Err(crate::error::ContentError::TooManyFiles {
            max: limits.max_files,
        }
        .into());
    }
    let mut out = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        out.push(Input {
            archive_path: SafeRelPath::parse(&path, limits.max_path_bytes)?,
            source: Source::Bytes(bytes),
        });
    }
    finish_inputs(out, limits)
}

/// The rules every set of inputs meets, sorted into archive order.
fn finish_inputs(mut out: Vec<Input>, limits: &Limits) -> Result<Vec<Input>> {
    if out.len() > limits.max_files {
        return Err(crate::error::ContentError::TooManyFiles {
            max: limits.max_files,
        }
        .into());
    }
    // Directories with no regular file in them: nothing to seal is a mistake, not an archive.
    if out.is_empty() {
        return Err(UsageError::NoInputs.into());
    }
    out.sort_by(|a, b| {
        a.archive_path
            .as_str()
            .as_bytes()
            .cmp(b.archive_path.as_str().as_bytes())
    });
    for pair in out.windows(2) {
        if pair[0].archive_path == pair[1].archive_path {
            return Err(UsageError::DuplicateInput {
                path: pair[0].archive_path.to_string(),
            }
            .into());
        }
    }
    if out
        .iter()
        .any(|i| i.archive_path.as_str() == MANIFEST_ENTRY)
    {
        return Err(UsageError::DuplicateInput {
            path: MANIFEST_ENTRY.into(),
        }
        .into());
    }
    Ok(out)
}

fn walk_dir(dir: &Path, prefix: &str, limits: &Limits, out: &mut Vec<Input>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .context(|| format!("listing {}", dir.display()))?
        .collect::<io::Result<_>>()
        .context(|| format!("listing {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e
            .file_name()
            .into_string()
            .map_err(|_| UsageError::UnsupportedInput {
                path: path.clone(),
                kind: "no UTF-8 file name",
            })?;
        let rel = format!("{prefix}/{name}");
        let ft = e
            .file_type()
            .context(|| format!("reading {}", path.display()))?;
        if ft.is_symlink() {
            return Err(UsageError::UnsupportedInput {
                path,
                kind: "symlink inside a directory",
            }
            .into());
        } else if ft.is_dir() {
            walk_dir(&path, &rel, limits, out)?;
        } else if ft.is_file() {
            out.push(Input {
                archive_path: SafeRelPath::parse(&rel, limits.max_path_bytes)?,
                source: Source::File(path),
            });
        } else {
            return Err(UsageError::UnsupportedInput {
                path,
                kind: "special file",
            }
            .into());
        }
        if out.len() > limits.max_files {
            return Err(crate::error::ContentError::TooManyFiles {
                max: limits.max_files,
            }
            .into());
        }
    }
    Ok(())
}

/// SHA-256 and size of a stream.
pub(super) fn hash(r: &mut dyn Read, what: &Path) -> Result<(u64, [u8; 32])> {
    let mut h = Sha256::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = r
            .read(&mut buf)
            .context(|| format!("reading {}", what.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, h.finish()))
}
