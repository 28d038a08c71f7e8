//! The file system, as modelseal writes to it: temporaries beside an output from creation to
//! removal, atomic writes (`write_atomic`), and names for kinds of entries in messages.
//!
//! Every temporary is named after its output (`.NAME.modelseal-KIND-XXXXXX`, see [`temp_prefix`]),
//! locked (`flock`, exclusive) by the process that made it for as long as it lives, and tracked,
//! so that the CLI removes it when interrupted (SIGINT, SIGTERM, SIGHUP): no partial archive and
//! no decrypted plaintext outlives an interrupted run. SIGKILL cannot be caught: what it leaves is
//! removed later by [`clean`], which tells a live temporary from a stale one by its lock (the
//! kernel releases it however the process ended). SECURITY.md describes each kind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tempfile::NamedTempFile;

use crate::error::{Error, IoContext, Result};

/// What the signal handler does with a tracked path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    /// Remove it (a temporary not yet renamed into place).
    Remove(PathBuf),
    /// The previous output, moved aside by `open --force`: put it back at `to` unless something
    /// is there already, then remove the backup directory.
    Restore { moved: PathBuf, to: PathBuf },
}

static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

/// A tracked temporary: registered while it lives, forgotten when dropped (after it was renamed
/// into place or removed by its owner).
#[derive(Debug)]
pub struct Tracked(Pending);

fn register(p: Pending) -> Tracked {
    PENDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(p.clone());
    Tracked(p)
}

/// Tracks `path` (a temporary file or directory) for removal until the returned guard is dropped.
pub fn track(path: &Path) -> Tracked {
    register(Pending::Remove(path.to_path_buf()))
}

/// Tracks the previous output `moved` aside from `to`: on a signal it is renamed back to `to`
/// (if nothing took its place) rather than lost.
pub fn track_restore(moved: &Path, to: &Path) -> Tracked {
    register(Pending::Restore {
        moved: moved.to_path_buf(),
        to: to.to_path_buf(),
    })
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = p.iter().rposition(|x| *x == self.0) {
            p.swap_remove(i);
        }
    }
}

fn remove_tree(p: &Path) {
    // The main thread may still be writing into a directory: remove again until it is gone.
    for _ in 0..100 {
        match std::fs::symlink_metadata(p) {
            Err(_) => break,
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir_all(p);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(p);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Removes every tracked temporary (directories with everything in them; links are removed, never
/// followed), then puts back any previous output `open --force` had moved aside. Called from the
/// signal-handling thread.
pub fn remove_all() {
    let guard = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let pending: &[Pending] = &guard;
    for p in pending {
        if let Pending::Remove(path) = p {
            remove_tree(path);
        }
    }
    for p in pending {
        if let Pending::Restore { moved, to } = p {
            if to.symlink_metadata().is_err() {
                let _ = std::fs::rename(moved, to);
            }
            if let Some(backup) = moved.parent() {
                remove_tree(backup);
            }
        }
    }
    // Held until the process exits (the caller exits next): a temporary the main thread is about
    // to create waits in [`create_tracked`] and is never made, so none outlives the signal.
    std::mem::forget(guard);
}

/// Makes a temporary with `create` and tracks the path it returns, both under the lock
/// [`remove_all`] takes: a signal between creation and tracking cannot leave it behind.
fn create_tracked<T>(
    create: impl FnOnce() -> Result<T>,
    path_of: impl FnOnce(&T) -> &Path,
) -> Result<(T, Tracked)> {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let made = create()?;
    let p = Pending::Remove(path_of(&made).to_path_buf());
    pending.push(p.clone());
    Ok((made, Tracked(p)))
}

/// The longest NAME a temporary's name keeps of its output's name, so that the whole name stays
/// within the usual 255-byte limit of a file name.
const MAX_NAME_IN_TEMP: usize = 200;

/// The prefix of a temporary beside `out`: `.NAME.modelseal-KIND-`, so that a person who finds
/// one (after a SIGKILL or a power cut) can tell what it was for. NAME is the output's file name,
/// cut to its first 200 bytes. Only modelseal creates names of this shape.
pub fn temp_prefix(out: &Path, kind: &str) -> String {
    let mut name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    if name.len() > MAX_NAME_IN_TEMP {
        let mut cut = MAX_NAME_IN_TEMP;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    format!(".{name}.modelseal-{kind}-")
}

/// The kinds of temporaries modelseal creates beside an output, as they appear in the name
/// `.NAME.modelseal-KIND-XXXXXX` (files end in `.tmp`), whether each is a directory, and what
/// each holds.
const KINDS: &[(&str, bool, &str)] = &[
    ("seal", false, "a partial, unsigned archive of an interrupted seal"),
    ("sign", false, "a partial copy of an archive of an interrupted sign --add"),
    ("write", false, "a partial trust or state file"),
    ("open", true, "decrypted files of an interrupted open, possibly of an archive that would have been refused"),
    ("old", true, "the previous output of an open --force interrupted between its two renames"),
    ("verify", true, "files of an interrupted verify --allow-globals, possibly of an archive that would have been refused"),
    ("pull", false, "a partial or unverified download of an interrupted or refused pull"),
];

/// Fails unless `path` still names the file or directory `handle` has open (and locked): the
/// temporary was not removed and replaced between its creation and its lock.
fn still_ours(path: &Path, handle: &File) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(path).context(|| format!("checking {}", path.display()))?;
    if same_file(&meta, handle) {
        Ok(())
    } else {
        Err(Error::io(
            format!("checking {}", path.display()),
            std::io::Error::other("the temporary was replaced by something else"),
        ))
    }
}

/// Takes the exclusive lock without waiting: a temporary's lock held by anyone else means the
/// name is not ours.
fn lock_now(path: &Path, handle: &File) -> Result<()> {
    handle.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => Error::io(
            format!("locking {}", path.display()),
            std::io::Error::other("another process holds the new temporary's lock"),
        ),
        std::fs::TryLockError::Error(e) => Error::io(format!("locking {}", path.display()), e),
    })
}

/// A temporary file beside `out`, named by [`temp_prefix`], tracked for removal on a signal, and
/// locked for as long as its handle is open (checked, once locked, to still be the file at its
/// path).
pub fn temp_file_beside(out: &Path, kind: &str, suffix: &str) -> Result<(NamedTempFile, Tracked)> {
    let dir = parent_dir(out);
    let (tmp, tracked) = create_tracked(
        || {
            tempfile::Builder::new()
                .prefix(&temp_prefix(out, kind))
                .suffix(suffix)
                .tempfile_in(&dir)
                .context(|| format!("creating a temporary file in {}", dir.display()))
        },
        |t| t.path(),
    )?;
    lock_now(tmp.path(), tmp.as_file())?;
    still_ours(tmp.path(), tmp.as_file())?;
    Ok((tmp, tracked))
}

/// A temporary directory beside `out`, created with mode 0700, tracked and locked as
/// [`temp_file_beside`]'s files are; the lock is held by the returned guard.
pub fn temp_dir_beside(out: &Path, kind: &str) -> Result<(tempfile::TempDir, DirGuard)> {
    locked_dir_beside(out, kind, true)
}

/// A locked directory beside `out` that a signal does not remove: where `open --force` moves the
/// previous output between its two renames (see [`track_restore`]).
pub fn backup_dir_beside(out: &Path) -> Result<(tempfile::TempDir, DirGuard)> {
    locked_dir_beside(out, "old", false)
}

fn locked_dir_beside(
    out: &Path,
    kind: &str,
    remove_on_signal: bool,
) -> Result<(tempfile::TempDir, DirGuard)> {
    let dir = parent_dir(out);
    let prefix = temp_prefix(out, kind);
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Given to mkdir(2): the directory is never readable by others, not even briefly.
        b.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let create = || {
        b.tempdir_in(&dir)
            .context(|| format!("creating a temporary directory in {}", dir.display()))
    };
    let (tmp, tracked) = if remove_on_signal {
        let (tmp, tracked) = create_tracked(create, |t| t.path())?;
        (tmp, Some(tracked))
    } else {
        (create()?, None)
    };
    let lock = File::open(tmp.path()).context(|| format!("opening {}", tmp.path().display()))?;
    lock_now(tmp.path(), &lock)?;
    still_ours(tmp.path(), &lock)?;
    Ok((
        tmp,
        DirGuard {
            _lock: lock,
            _tracked: tracked,
        },
    ))
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

/// How recent a temporary [`clean`] always keeps: a process creates its temporary and then locks
/// it, and an entry younger than this may be one between the two.
pub const CLEAN_GRACE: Duration = Duration::from_secs(5);

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
    /// Kept whatever happens: a running process holds its lock, or it is younger than
    /// [`CLEAN_GRACE`].
    pub in_use: bool,
    /// For an `old` backup: the output path it was moved aside from (the full name, read from
    /// the one directory inside it).
    restore_to: Option<PathBuf>,
}

/// What [`clean`] did or, with `dry_run`, would do.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// Stale temporaries removed (or, with `dry_run`, that would be).
    pub removed: Vec<Temporary>,
    /// Previous outputs of an interrupted `open --force` put back at their path (or that would
    /// be), which had been left with nothing in their place.
    pub restored: Vec<(Temporary, PathBuf)>,
    /// Temporaries kept: a running process holds them, or they are too recent to tell.
    pub in_use: Vec<Temporary>,
    /// Temporaries that could not be removed, with the error.
    pub failed: Vec<(Temporary, Error)>,
}

/// The kind of temporary `name` is, if this release's naming (`.NAME.modelseal-KIND-XXXXXX`, with
/// `.tmp` after a file's) produced it: `(is_dir, holds, NAME)`.
fn kind_of(name: &str) -> Option<(bool, &'static str, &str)> {
    const MARK: &str = ".modelseal-";
    let at = name.rfind(MARK)?;
    if !name.starts_with('.') || at < 2 {
        return None;
    }
    let rest = &name[at + MARK.len()..];
    let random = |s: &str| s.len() == 6 && s.bytes().all(|b| b.is_ascii_alphanumeric());
    for &(kind, is_dir, holds) in KINDS {
        if let Some(r) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix('-')) {
            let r = if is_dir {
                Some(r)
            } else {
                r.strip_suffix(".tmp")
            };
            if r.is_some_and(random) {
                return Some((is_dir, holds, &name[1..at]));
            }
        }
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
/// link, or an entry of the wrong type for its name, is not one of ours and is left out; so is an
/// entry this user cannot open (another user's, which this user could not remove either).
fn probe(dir: &Path) -> Result<Vec<(Temporary, File)>> {
    let entries = std::fs::read_dir(dir).context(|| format!("reading {}", dir.display()))?;
    let mut found = Vec::new();
    for e in entries {
        let e = e.context(|| format!("reading {}", dir.display()))?;
        let file_name = e.file_name();
        let Some((is_dir, holds, name)) = file_name.to_str().and_then(kind_of) else {
            continue;
        };
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if (is_dir && !meta.is_dir()) || (!is_dir && !meta.is_file()) {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        // The entry may have been swapped for a link between the check and the open: then the
        // handle is of something else, and the entry is left alone.
        if !same_file(&meta, &file) {
            continue;
        }
        // A young entry is never locked, not even to test: its creator may be about to lock it,
        // and must not find it held.
        let recent = [meta.modified(), changed(&meta)]
            .into_iter()
            .flatten()
            .any(|t| t.elapsed().map_or(true, |age| age < CLEAN_GRACE));
        let held = !recent
            && match file.try_lock() {
                Ok(()) => false,
                Err(std::fs::TryLockError::WouldBlock) => true,
                Err(std::fs::TryLockError::Error(_)) => continue,
            };
        // A backup holds the previous output under its full name (the temporary's NAME may be
        // cut): it can go back there.
        let restore_to = (holds == KINDS[4].2)
            .then(|| backed_up_name(&path, name))
            .flatten()
            .map(|n| dir.join(n));
        found.push((
            Temporary {
                bytes: size_of(&path),
                path,
                holds,
                is_dir,
                in_use: held || recent,
                restore_to,
            },
            file,
        ));
    }
    found.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    Ok(found)
}

/// The name of the one directory inside an `open --force` backup (the output's full file name),
/// if it is that: one entry, a directory, whose name starts with the temporary's NAME.
fn backed_up_name(backup: &Path, name_in_temp: &str) -> Option<std::ffi::OsString> {
    let mut entries = std::fs::read_dir(backup).ok()?;
    let e = entries.next()?.ok()?;
    if entries.next().is_some() || !e.file_type().ok()?.is_dir() {
        return None;
    }
    let n = e.file_name();
    n.to_str()?.starts_with(name_in_temp).then_some(n)
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// The status-change time, which no user can set back (unlike the modification time).
fn changed(meta: &std::fs::Metadata) -> std::io::Result<std::time::SystemTime> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let secs = u64::try_from(meta.ctime()).unwrap_or(0);
        Ok(std::time::UNIX_EPOCH + Duration::from_secs(secs))
    }
    #[cfg(not(unix))]
    meta.modified()
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

/// Removes the stale temporaries of modelseal's naming directly in each of `dirs`, or with
/// `dry_run` only lists them. Stale means no running process holds its lock and it is older than
/// [`CLEAN_GRACE`]; the lock is held while removing. Directories go with everything in them;
/// links inside are removed, never followed. A previous output that an interrupted
/// `open --force` had moved aside, with nothing now at its path, is put back rather than removed.
/// An entry that cannot be removed is reported in [`Cleaned::failed`] and the rest go on; a
/// directory that cannot be read is an error before anything is removed.
pub fn clean(dirs: &[PathBuf], dry_run: bool) -> Result<Cleaned> {
    let mut found = Vec::new();
    for dir in dirs {
        found.extend(probe(dir)?);
    }
    let mut out = Cleaned::default();
    for (t, _lock) in found {
        if t.in_use {
            out.in_use.push(t);
            continue;
        }
        if t.holds == KINDS[4].2 && t.restore_to.is_none() && !is_empty_dir(&t.path) {
            // A previous output whose name cannot be told: never deleted, left for a person.
            let e = Error::io(
                format!("keeping {}", t.path.display()),
                std::io::Error::other(
                    "it holds the previous output of an interrupted open --force under an \
                     unexpected name; move it back by hand",
                ),
            );
            out.failed.push((t, e));
            continue;
        }
        if let Some(to) = t
            .restore_to
            .clone()
            .filter(|to| to.symlink_metadata().is_err())
        {
            let moved = t.path.join(to.file_name().unwrap_or_default());
            if moved.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                let restored = if dry_run {
                    Ok(())
                } else {
                    std::fs::rename(&moved, &to).and_then(|()| std::fs::remove_dir(&t.path))
                };
                match restored {
                    Ok(()) => out.restored.push((t, to)),
                    Err(e) => {
                        let e = Error::io(format!("restoring {}", to.display()), e);
                        out.failed.push((t, e));
                    }
                }
                continue;
            }
        }
        let removed = if dry_run {
            Ok(())
        } else if t.is_dir {
            std::fs::remove_dir_all(&t.path)
        } else {
            std::fs::remove_file(&t.path)
        };
        match removed {
            Ok(()) => out.removed.push(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let e = Error::io(format!("removing {}", t.path.display()), e);
                out.failed.push((t, e));
            }
        }
    }
    Ok(out)
}

/// Refuses a secret key file (modelseal's own or an OMS PEM key) that group or others may read or
/// write: `KeyError::InsecurePermissions`, as ssh refuses an identity file. `file` is the handle
/// that is then read, so a file swapped after the check is not the one checked.
pub(crate) fn refuse_shared_secret(path: &Path, file: &File) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .context(|| format!("opening {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(crate::error::KeyError::InsecurePermissions {
                path: path.into(),
                mode: mode & 0o777,
            }
            .into());
        }
    }
    #[cfg(not(unix))]
    let _ = (path, file);
    Ok(())
}

/// Refuses to replace an existing file output unless `force`, and anything but a regular file
/// (`replaces` says what such a file is: `a regular file (the archive it wrote before)`). Returns
/// what is there, when something is.
pub(crate) fn refuse_file_output(
    path: &Path,
    force: bool,
    replaces: &'static str,
) -> Result<Option<std::fs::Metadata>> {
    let Ok(existing) = path.symlink_metadata() else {
        return Ok(None);
    };
    if !existing.file_type().is_file() {
        return Err(crate::error::UsageError::OutputNotReplaceable {
            path: path.into(),
            found: kind(&existing),
            replaces,
        }
        .into());
    }
    if !force {
        return Err(crate::error::UsageError::OutputExists { path: path.into() }.into());
    }
    Ok(Some(existing))
}

/// What a file system entry is, for messages: `a regular file`, `a directory`, `a FIFO`...
pub(crate) fn kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// Writes a file by renaming a complete temporary file over it.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let (mut tmp, _tracked) = temp_file_beside(path, "write", ".tmp")?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| crate::Error::io(format!("writing {}", path.display()), e.error))?;
    Ok(())
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
            (".verify.modelseal-verify-a1B2c3", true),
        ] {
            assert_eq!(kind_of(name).map(|k| k.0), Some(is_dir), "{name}");
        }
        for name in [
            "m.mseal",
            ".modelseal-open-a1B2c3",
            ".modelseal-a1B2c3.tmp",
            ".modelseal-config",
            ".modelseal-backup.tmp",
            ".x.modelseal-seal-abcdef",
            ".notes.modelseal-write-README",
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

    #[test]
    fn a_young_temporary_is_never_locked_by_clean_so_its_creator_can_lock_it() {
        let d = tempfile::tempdir().unwrap();
        let young = d.path().join(".m.mseal.modelseal-seal-a1B2c3.tmp");
        std::fs::write(&young, b"partial").unwrap();
        // While clean's probe holds its handles, the creator's non-blocking lock still succeeds.
        let found = probe(d.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].0.in_use, "younger than the grace period: kept");
        let creator = File::open(&young).unwrap();
        assert!(
            creator.try_lock().is_ok(),
            "clean must not hold a young entry's lock"
        );
        drop(found);
        assert!(clean(&[d.path().to_path_buf()], false)
            .unwrap()
            .removed
            .is_empty());
        assert!(young.exists());
    }
}
