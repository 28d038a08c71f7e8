//! The local trust store: the only source of keys a signature may verify against (FORMAT.md §5
//! step 2). A key carried in, or named by, an archive is never trusted for that reason.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{IoContext, KeyError, Result};
use crate::keys::{KeyId, PublicKey};

/// Trusted signing keys, by key id.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    keys: BTreeMap<KeyId, PublicKey>,
}

impl TrustStore {
    /// An empty store: nothing verifies against it.
    pub fn new() -> Self {
        TrustStore::default()
    }

    /// Trusts one key.
    pub fn add(&mut self, key: PublicKey) {
        self.keys.insert(key.key_id(), key);
    }

    /// Adds a `.pub` file, or every `*.pub` file in a directory (not recursing, not following
    /// symlinked entries).
    pub fn add_path(&mut self, path: &Path) -> Result<()> {
        let meta = std::fs::metadata(path)
            .context(|| format!("reading trust store {}", path.display()))?;
        if !meta.is_dir() {
            self.add(PublicKey::read(path)?);
            return Ok(());
        }
        let mut found = 0;
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .context(|| format!("listing {}", path.display()))?
            .collect::<std::io::Result<_>>()
            .context(|| format!("listing {}", path.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let ft = e
                .file_type()
                .context(|| format!("reading {}", p.display()))?;
            if ft.is_file() && p.extension().is_some_and(|x| x == "pub") {
                self.add(PublicKey::read(&p)?);
                found += 1;
            }
        }
        if found == 0 {
            return Err(KeyError::EmptyTrustStore { path: path.into() }.into());
        }
        Ok(())
    }

    /// The trusted key with this id.
    pub fn get(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.get(id)
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted keys.
    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.values()
    }
}
