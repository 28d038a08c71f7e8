//! Temporaries this process has created and not yet renamed into place: the CLI removes them when
//! it is interrupted (SIGINT, SIGTERM, SIGHUP), so that no partial archive and no decrypted
//! plaintext outlives an interrupted run. SIGKILL cannot be caught: what it can leave is named
//! after its output (see [`temp_prefix`]) and described in SECURITY.md.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::NamedTempFile;

use crate::error::{IoContext, Result};

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A tracked temporary: registered while it lives, forgotten when dropped (after it was renamed
/// into place or removed by its owner).
#[derive(Debug)]
pub struct Tracked(PathBuf);

/// Tracks `path` (a temporary file or directory) until the returned guard is dropped.
pub fn track(path: &Path) -> Tracked {
    let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    p.push(path.to_path_buf());
    Tracked(path.to_path_buf())
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = p.iter().rposition(|x| *x == self.0) {
            p.swap_remove(i);
        }
    }
}

/// Removes every tracked temporary (directories with everything in them; links are removed, never
/// followed). Called from a signal handler thread while the main thread may still be writing, so
/// a directory is removed again until it is gone.
pub fn remove_all() {
    let pending: Vec<PathBuf> = PENDING.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for p in pending {
        for _ in 0..100 {
            match std::fs::symlink_metadata(&p) {
                Err(_) => break,
                Ok(m) if m.is_dir() => {
                    let _ = std::fs::remove_dir_all(&p);
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(&p);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// The prefix of a temporary beside `out`: `.NAME.modelseal-KIND-`, so that a person who finds
/// one (after a SIGKILL or a power cut) can tell what it was for. Only modelseal creates names of
/// this shape.
pub fn temp_prefix(out: &Path, kind: &str) -> String {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    format!(".{name}.modelseal-{kind}-")
}

/// The kinds of temporaries modelseal creates beside an output, as they appear in the name
/// `.NAME.modelseal-KIND-XXXXXX`, with what each holds.
const KINDS: &[(&str, bool, &str)] = &[
    ("seal", false, "a partial, unsigned archive of an interrupted seal"),
    ("sign", false, "a partial copy of an archive of an interrupted sign --add"),
    ("write", false, "a partial trust or state file"),
    ("open", true, "decrypted files of an interrupted open, possibly of an archive that would have been refused"),
    ("old", true, "the previous output of an open --force interrupted between its two renames"),
];

/// A temporary file beside `out`, named by [`temp_prefix`], locked (`flock`, exclusive) for as
/// long as its handle is open and tracked for removal on a signal: `modelseal clean` tells a
/// live temporary from a stale one by that lock, which the kernel releases however the process
/// ends.
pub fn temp_file_beside(out: &Path, kind: &str, suffix: &str) -> Result<(NamedTempFile, Tracked)> {
    let dir = parent_dir(out);
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(out, kind))
        .suffix(suffix)
        .tempfile_in(&dir)
        .context(|| format!("creating a temporary file in {}", dir.display()))?;
    let tracked = track(tmp.path());
    tmp.as_file()
        .lock()
        .context(|| format!("locking {}", tmp.path().display()))?;
    Ok((tmp, tracked))
}

/// A temporary directory beside `out` (mode 0700), locked and tracked as [`temp_file_beside`]'s
/// files are; the lock is held by the returned guard.
pub fn temp_dir_beside(out: &Path, kind: &str) -> Result<(tempfile::TempDir, DirGuard)> {
    let (tmp, lock) = locked_dir_beside(out, kind)?;
    let tracked = Some(track(tmp.path()));
    Ok((
        tmp,
        DirGuard {
            _lock: lock,
            _tracked: tracked,
        },
    ))
}

/// A locked directory beside `out` that a signal does not remove: the place `open --force` moves
/// the previous output to between its two renames, which an interruption must not destroy.
pub fn backup_dir_beside(out: &Path) -> Result<(tempfile::TempDir, DirGuard)> {
    let (tmp, lock) = locked_dir_beside(out, "old")?;
    Ok((
        tmp,
        DirGuard {
            _lock: lock,
            _tracked: None,
        },
    ))
}

fn locked_dir_beside(out: &Path, kind: &str) -> Result<(tempfile::TempDir, File)> {
    let dir = parent_dir(out);
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(out, kind))
        .tempdir_in(&dir)
        .context(|| format!("creating a temporary directory in {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700))
            .context(|| "securing the temporary directory".into())?;
    }
    let lock = File::open(tmp.path())
        .and_then(|f| f.lock().map(|()| f))
        .context(|| format!("locking {}", tmp.path().display()))?;
    Ok((tmp, lock))
}

/// Holds a temporary directory's lock and tracking (see [`temp_dir_beside`]).
#[derive(Debug)]
pub struct DirGuard {
    _lock: File,
    _tracked: Option<Tracked>,
}

/// The directory an output is written beside: its parent, or `.`.
pub(crate) fn parent_dir(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temporary of modelseal's naming found by [`find_temporaries`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Temporary {
    /// Its path.
    pub path: PathBuf,
    /// What it holds, in words.
    pub holds: &'static str,
    /// Its size in bytes (a directory: the files in it).
    pub bytes: u64,
    /// A directory (`open`, `old`) rather than a file.
    pub is_dir: bool,
    /// A running modelseal process holds its lock: it is not stale and is never removed.
    pub in_use: bool,
}

/// What [`clean`] did or, with `dry_run`, would do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Stale temporaries removed (or, with `dry_run`, that would be).
    pub removed: Vec<Temporary>,
    /// Temporaries a running modelseal process still holds.
    pub in_use: Vec<Temporary>,
}

/// The kind of temporary `name` is, if modelseal's naming (`.NAME.modelseal-KIND-XXXXXX[.tmp]`,
/// and the `.modelseal-XXXXXX[.tmp]` / `.modelseal-open-XXXXXX` names of releases before 0.2)
/// produced it.
fn kind_of(name: &str) -> Option<(bool, &'static str)> {
    const MARK: &str = ".modelseal-";
    if !name.starts_with('.') {
        return None;
    }
    let at = name.rfind(MARK)?;
    // Either the whole name is `.modelseal-…` (older releases) or it is `.NAME.modelseal-…`.
    if at != 0 && at < 2 {
        return None;
    }
    let rest = &name[at + MARK.len()..];
    let random = |s: &str| s.len() == 6 && s.bytes().all(|b| b.is_ascii_alphanumeric());
    for &(kind, is_dir, holds) in KINDS {
        if let Some(r) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix('-')) {
            let r = if is_dir {
                Some(r)
            } else {
                r.strip_suffix(".tmp").or(Some(r))
            };
            if r.is_some_and(random) {
                return Some((is_dir, holds));
            }
        }
    }
    // Releases before 0.2: `.modelseal-XXXXXX.tmp` (seal) and `.modelseal-XXXXXX` (trust writes).
    if at == 0 && random(rest.strip_suffix(".tmp").unwrap_or(rest)) {
        return Some((false, "a partial archive or trust file of an older release"));
    }
    None
}

/// Bytes under `p`, never following links.
fn size_of(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| size_of(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// The temporaries of modelseal's naming directly in `dir`, each with an open handle on it. A
/// link, or an entry of the wrong type for its name, is not one of ours and is left out.
fn probe(dir: &Path) -> Result<Vec<(Temporary, File)>> {
    let entries = std::fs::read_dir(dir).context(|| format!("reading {}", dir.display()))?;
    let mut found = Vec::new();
    for e in entries {
        let e = e.context(|| format!("reading {}", dir.display()))?;
        let Some((is_dir, holds)) = e.file_name().to_str().and_then(kind_of) else {
            continue;
        };
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if if is_dir {
            !meta.is_dir()
        } else {
            !meta.is_file()
        } {
            continue;
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            // Gone meanwhile, or another user's (which this user could not remove either).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                continue
            }
            Err(e) => return Err(crate::Error::io(format!("opening {}", path.display()), e)),
        };
        // The entry may have been swapped for a link between the check and the open: then the
        // handle is of something else, and the entry is left alone.
        if !same_file(&meta, &file) {
            continue;
        }
        let in_use = match file.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(crate::Error::io(format!("locking {}", path.display()), e))
            }
        };
        found.push((
            Temporary {
                bytes: size_of(&path),
                path,
                holds,
                is_dir,
                in_use,
            },
            file,
        ));
    }
    found.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    Ok(found)
}

fn same_file(meta: &std::fs::Metadata, file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        file.metadata()
            .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (meta, file);
        true
    }
}

/// Lists the temporaries of modelseal's naming directly in `dir` (not below it), stale or in use.
pub fn find_temporaries(dir: &Path) -> Result<Vec<Temporary>> {
    Ok(probe(dir)?.into_iter().map(|(t, _)| t).collect())
}

/// Removes the stale temporaries of modelseal's naming in each of `dirs` (those whose lock no
/// running modelseal holds; see [`temp_file_beside`]), or with `dry_run` only lists them. The
/// lock is held while removing. Directories go with everything in them; links inside are
/// removed, never followed.
pub fn clean(dirs: &[PathBuf], dry_run: bool) -> Result<Cleaned> {
    let mut out = Cleaned::default();
    for dir in dirs {
        for (t, _lock) in probe(dir)? {
            if t.in_use {
                out.in_use.push(t);
                continue;
            }
            if !dry_run {
                let removed = if t.is_dir {
                    std::fs::remove_dir_all(&t.path)
                } else {
                    std::fs::remove_file(&t.path)
                };
                match removed {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(crate::Error::io(
                            format!("removing {}", t.path.display()),
                            e,
                        ))
                    }
                }
            }
            out.removed.push(t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_our_making_and_only_those() {
        for (name, is_dir) in [
            (".m.mseal.modelseal-seal-a1B2c3.tmp", false),
            (".m.mseal.modelseal-sign-a1B2c3.tmp", false),
            (".trust.toml.modelseal-write-a1B2c3.tmp", false),
            (".out.modelseal-open-a1B2c3", true),
            (".out.modelseal-old-a1B2c3", true),
            (".with.dots.modelseal-open-zzzzzz", true),
            (".modelseal-open-a1B2c3", true),
            (".modelseal-a1B2c3.tmp", false),
            (".modelseal-a1B2c3", false),
        ] {
            assert_eq!(kind_of(name).map(|k| k.0), Some(is_dir), "{name}");
        }
        for name in [
            "m.mseal",
            "out.modelseal-open-a1B2c3",
            ".out.modelseal-open-a1B2c",
            ".out.modelseal-open-a1B2c3d",
            ".out.modelseal-open-a1B2c3.tmp",
            ".out.modelseal-open-a1-2c3",
            ".out.modelseal-unpack-a1B2c3",
            ".m.mseal.modelseal-seal-a1B2c3.bak",
            ".x.modelseal-",
            "..modelseal-seal-a1B2c3.tmp",
        ] {
            assert_eq!(kind_of(name), None, "{name}");
        }
    }
}
