//! Anti-rollback state: per (model name, signer), the highest version accepted and the content
//! digest accepted for it (issue "trust policy"; TUF's rollback and mix-and-match attacks).
//!
//! The state is a small JSON file, updated by writing a complete temporary file and renaming it
//! over the old one, under an exclusive lock on a sibling `.lock` file, so concurrent `open`s never
//! corrupt it or lose an update. A state file that does not parse is an error, never silently reset.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, TrustError};
use crate::format::Header;
use crate::keys::KeyId;

const STATE_FORMAT: &str = "modelseal-state-v1";
const MAX_STATE_BYTES: u64 = 64 << 20;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: String,
    entries: Vec<Entry>,
}

#[derive(serde::Serialize, serde::Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Entry {
    model: String,
    signer: String,
    version: String,
    /// SHA-256 of the manifest (FORMAT.md §3 `manifest_sha256`): the signed content, independent of
    /// the encryption, and readable without a decryption key.
    content_sha256: String,
}

/// The anti-rollback state file.
#[derive(Clone, Debug)]
pub struct RollbackState {
    path: PathBuf,
}

type Key = (String, String);
struct Accepted {
    version: semver::Version,
    digest: [u8; 32],
}

impl RollbackState {
    /// The state kept at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        RollbackState { path: path.into() }
    }

    /// The state a command uses: none when `disabled` (`--no-state`, `no_state=True`), else the
    /// file at `path`, else the per-user default. Anti-rollback is on unless turned off.
    pub fn choose(path: Option<&Path>, disabled: bool) -> Option<RollbackState> {
        match (path, disabled) {
            (_, true) => None,
            (Some(p), false) => Some(RollbackState::at(p)),
            (None, false) => RollbackState::default_path().map(RollbackState::at),
        }
    }

    /// The per-user default: `<state dir>/modelseal/state.json` (`~/.local/state` on Linux).
    pub fn default_path() -> Option<PathBuf> {
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .map(|d| d.join("modelseal").join("state.json"))
    }

    /// Where the state lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self, exclusive: bool) -> Result<File> {
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .context(|| format!("opening {}", PathBuf::from(&lock_path).display()))?;
        if exclusive { f.lock() } else { f.lock_shared() }
            .context(|| format!("locking {}", self.path.display()))?;
        Ok(f)
    }

    fn corrupted(&self, detail: impl Into<String>) -> crate::Error {
        TrustError::StateCorrupted {
            path: self.path.clone(),
            detail: detail.into(),
        }
        .into()
    }

    fn load(&self) -> Result<BTreeMap<Key, Accepted>> {
        use std::io::Read;
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => {
                return Err(crate::Error::io(
                    format!("opening {}", self.path.display()),
                    e,
                ))
            }
        };
        let meta = f
            .metadata()
            .context(|| format!("reading {}", self.path.display()))?;
        if !meta.is_file() {
            // A directory (or device) named as the state: the caller's mistake, not corruption.
            return Err(crate::Error::io(
                format!("reading {}", self.path.display()),
                std::io::Error::other(format!("{} is not a regular file", crate::fs::kind(&meta))),
            ));
        }
        let mut text = String::new();
        f.take(MAX_STATE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => self.corrupted("not UTF-8 text"),
                _ => crate::Error::io(format!("reading {}", self.path.display()), e),
            })?;
        if text.len() as u64 > MAX_STATE_BYTES {
            return Err(self.corrupted(format!("larger than {MAX_STATE_BYTES} bytes")));
        }
        let file: StateFile =
            serde_json::from_str(&text).map_err(|e| self.corrupted(e.to_string()))?;
        if file.format != STATE_FORMAT {
            return Err(self.corrupted(format!("unknown format {:?}", file.format)));
        }
        let mut out = BTreeMap::new();
        for e in file.entries {
            let version = semver::Version::parse(&e.version)
                .map_err(|err| self.corrupted(format!("version {:?}: {err}", e.version)))?;
            let digest: [u8; 32] = hex::decode(&e.content_sha256)
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| self.corrupted(format!("digest {:?}", e.content_sha256)))?;
            if out
                .insert(
                    (e.model.clone(), e.signer.clone()),
                    Accepted { version, digest },
                )
                .is_some()
            {
                return Err(
                    self.corrupted(format!("two entries for {} from {}", e.model, e.signer))
                );
            }
        }
        Ok(out)
    }

    fn store(&self, entries: &BTreeMap<Key, Accepted>) -> Result<()> {
        let file = StateFile {
            format: STATE_FORMAT.into(),
            entries: entries
                .iter()
                .map(|((model, signer), a)| Entry {
                    model: model.clone(),
                    signer: signer.clone(),
                    version: a.version.to_string(),
                    content_sha256: hex::encode(a.digest),
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&file).expect("state serializes");
        crate::fs::write_atomic(&self.path, text.as_bytes())
    }

    /// Refuses a rollback or an equivocation against what was accepted before.
    fn judge(entries: &BTreeMap<Key, Accepted>, h: &Header, signer: KeyId) -> Result<()> {
        let version = crate::format::manifest::parse_version(&h.model_version)?;
        let key = (h.model_name.clone(), signer.to_string());
        if let Some(a) = entries.get(&key) {
            match version.cmp_precedence(&a.version) {
                std::cmp::Ordering::Less => {
                    return Err(TrustError::Rollback {
                        model: h.model_name.clone(),
                        signer: signer.to_string(),
                        found: version.to_string(),
                        accepted: a.version.to_string(),
                    }
                    .into())
                }
                std::cmp::Ordering::Equal if a.digest != h.manifest_sha256 => {
                    return Err(TrustError::Equivocation {
                        model: h.model_name.clone(),
                        version: version.to_string(),
                        signer: signer.to_string(),
                    }
                    .into())
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks a verified header against the state without recording it (a shared lock).
    pub fn check(&self, h: &Header, signer: KeyId) -> Result<()> {
        // Nothing accepted yet: nothing to check, and nothing created on disk by a refusal.
        if !self.path.exists() {
            return Ok(());
        }
        // A state that cannot be read is refused before the lock file is created, so that a
        // refusal leaves nothing new on disk; the locked read below is the one that counts.
        self.load()?;
        let _lock = self.lock(false)?;
        Self::judge(&self.load()?, h, signer)
    }

    /// Checks and records, atomically with respect to other processes (an exclusive lock).
    pub fn check_and_record(&self, h: &Header, signer: KeyId) -> Result<()> {
        if self.path.exists() {
            self.load()?; // as in check: refuse an unreadable state before creating the lock
        }
        let _lock = self.lock(true)?;
        let mut entries = self.load()?;
        Self::judge(&entries, h, signer)?;
        let version = crate::format::manifest::parse_version(&h.model_version)?;
        let key = (h.model_name.clone(), signer.to_string());
        let newer = entries
            .get(&key)
            .is_none_or(|a| version.cmp_precedence(&a.version).is_gt());
        if newer {
            entries.insert(
                key,
                Accepted {
                    version,
                    digest: h.manifest_sha256,
                },
            );
            self.store(&entries)?;
        }
        Ok(())
    }
}
