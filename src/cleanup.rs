//! Temporaries this process has created and not yet renamed into place: the CLI removes them when
//! it is interrupted (SIGINT, SIGTERM, SIGHUP), so that no partial archive and no decrypted
//! plaintext outlives an interrupted run. SIGKILL cannot be caught: what it can leave is named
//! after its output (see [`temp_prefix`]) and described in SECURITY.md.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
