//! The local trust store and its policy: the only source of keys a signature may verify against
//! (FORMAT.md §5 step 2). A key carried in, or named by, an archive is never trusted for that reason.
//!
//! A trust store is a set of `.pub` keys, optionally with a policy (`policy.toml` in a trust
//! directory) that scopes each key to model-name patterns and requires k distinct trusted signers
//! for some models:
//!
//! ```toml
//! # A key trusted only for iris models (by key id, or by file name in the directory).
//! [[key]]
//! id = "8b0069155084958797ed1ba68d9da908"
//! models = ["iris-*"]
//!
//! # Fraud models need two distinct trusted signers.
//! [[threshold]]
//! models = ["fraud/*"]
//! signers = 2
//! ```
//!
//! A key the policy does not mention is trusted for every model. Patterns use `*` (any run of
//! characters, `/` included) and `?` (one character).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, KeyError, Result, TrustError};
use crate::keys::{KeyId, PublicKey};

/// The policy file's name inside a trust directory.
pub const POLICY_FILE: &str = "policy.toml";
/// Largest policy file read.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// Trusted signing keys, by key id, with their scopes and the signer thresholds.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    keys: BTreeMap<KeyId, PublicKey>,
    scopes: BTreeMap<KeyId, Vec<String>>,
    thresholds: Vec<(Vec<String>, usize)>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    key: Vec<KeyRule>,
    #[serde(default)]
    threshold: Vec<ThresholdRule>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRule {
    id: Option<String>,
    file: Option<String>,
    models: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdRule {
    models: Vec<String>,
    signers: usize,
}

/// Matches `name` against a glob with `*` and `?`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matching with backtracking to the last `*`: linear space, no recursion.
    let (mut pi, mut ni, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl TrustStore {
    /// An empty store: nothing verifies against it.
    pub fn new() -> Self {
        TrustStore::default()
    }

    /// Trusts one key for every model.
    pub fn add(&mut self, key: PublicKey) {
        self.keys.insert(key.key_id(), key);
    }

    /// Trusts one key for the models matching `patterns` only.
    pub fn add_scoped(&mut self, key: PublicKey, patterns: Vec<String>) {
        let id = key.key_id();
        self.keys.insert(id, key);
        self.scopes.insert(id, patterns);
    }

    /// Requires `signers` distinct trusted signers for models matching `patterns`.
    pub fn require_signers(&mut self, patterns: Vec<String>, signers: usize) {
        self.thresholds.push((patterns, signers));
    }

    /// The trust store of a command: the `.pub` files and directories in `paths`, or, when there
    /// are none, the default trust directory ([`default_dir`]: `MODELSEAL_TRUST`, else the
    /// per-user one). No store at all is [`TrustError::NoTrustStore`], never an empty store.
    pub fn load(paths: &[PathBuf]) -> Result<TrustStore> {
        let mut store = TrustStore::new();
        if paths.is_empty() {
            match default_dir() {
                Some(d) if d.exists() => store.add_path(&d)?,
                _ => return Err(TrustError::NoTrustStore.into()),
            }
        }
        for p in paths {
            store.add_path(p)?;
        }
        Ok(store)
    }

    /// Adds a `.pub` file, or every `*.pub` file in a directory (not recursing, not following
    /// symlinked entries) together with the directory's `policy.toml` if present.
    pub fn add_path(&mut self, path: &Path) -> Result<()> {
        refuse_unsafe_parents(path)?;
        let meta = std::fs::metadata(path)
            .context(|| format!("reading trust store {}", path.display()))?;
        if !meta.is_dir() {
            self.add(read_trusted_key(path)?);
            return Ok(());
        }
        refuse_writable_by_others(path, &meta)?;
        let mut by_file: BTreeMap<String, KeyId> = BTreeMap::new();
        for p in list_pub_files(path)? {
            let key = read_trusted_key(&p)?;
            if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                by_file.insert(name.to_owned(), key.key_id());
            }
            self.add(key);
        }
        if by_file.is_empty() {
            return Err(KeyError::EmptyTrustStore { path: path.into() }.into());
        }
        let policy_path = path.join(POLICY_FILE);
        if policy_path.symlink_metadata().is_ok() {
            self.load_policy(&policy_path, &by_file)?;
        }
        Ok(())
    }

    fn load_policy(&mut self, path: &Path, by_file: &BTreeMap<String, KeyId>) -> Result<()> {
        let text = read_policy(path)?;
        let bad = |detail: String| TrustError::BadPolicy {
            path: path.into(),
            detail,
        };
        // toml's own rendering is several lines with a source excerpt; one line with the place.
        let policy: PolicyFile = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|r| {
                    let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            bad(format!("{}{at}", e.message().trim().replace('\n', " ")))
        })?;
        for rule in policy.key {
            let id = match (&rule.id, &rule.file) {
                (Some(id), None) => *self
                    .keys
                    .keys()
                    .find(|k| k.to_string() == id.to_lowercase())
                    .ok_or_else(|| bad(format!("key id {id} is not in the trust directory")))?,
                (None, Some(f)) => *by_file
                    .get(f)
                    .ok_or_else(|| bad(format!("key file {f} is not in the trust directory")))?,
                _ => return Err(bad("each [[key]] needs exactly one of id or file".into()).into()),
            };
            if rule.models.is_empty() {
                return Err(bad(format!(
                    "key {id} has an empty models list; remove the key instead"
                ))
                .into());
            }
            self.scopes.entry(id).or_default().extend(rule.models);
        }
        for t in policy.threshold {
            if t.signers == 0 || t.models.is_empty() {
                return Err(bad("a [[threshold]] needs models and signers >= 1".into()).into());
            }
            self.thresholds.push((t.models, t.signers));
        }
        Ok(())
    }

    /// The trusted key with this id.
    pub fn get(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.get(id)
    }

    /// The trusted key with this id, if it is trusted for `model`.
    pub fn get_for(&self, id: &KeyId, model: &str) -> Option<&PublicKey> {
        let key = self.keys.get(id)?;
        match self.scopes.get(id) {
            Some(patterns) if !patterns.iter().any(|p| glob_match(p, model)) => None,
            _ => Some(key),
        }
    }

    /// The patterns a key is scoped to (`["*"]` when unscoped).
    pub fn scopes_of(&self, id: &KeyId) -> Vec<String> {
        self.scopes
            .get(id)
            .cloned()
            .unwrap_or_else(|| vec!["*".into()])
    }

    /// How many distinct trusted signers `model` needs (the largest matching threshold, at least 1).
    pub fn required_signers(&self, model: &str) -> usize {
        self.thresholds
            .iter()
            .filter(|(ps, _)| ps.iter().any(|p| glob_match(p, model)))
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(1)
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted keys.
    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.values()
    }

    /// The thresholds, as (patterns, signers).
    pub fn thresholds(&self) -> &[(Vec<String>, usize)] {
        &self.thresholds
    }
}

fn read_policy(path: &Path) -> Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    let meta = f
        .metadata()
        .context(|| format!("reading {}", path.display()))?;
    refuse_writable_by_others(path, &meta)?;
    let mut text = String::new();
    f.take(MAX_POLICY_BYTES + 1)
        .read_to_string(&mut text)
        .context(|| format!("reading {}", path.display()))?;
    if text.len() as u64 > MAX_POLICY_BYTES {
        return Err(TrustError::BadPolicy {
            path: path.into(),
            detail: format!("larger than {MAX_POLICY_BYTES} bytes"),
        }
        .into());
    }
    Ok(text)
}

fn list_pub_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .context(|| format!("listing {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .context(|| format!("listing {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    let mut out = Vec::new();
    for e in entries {
        let p = e.path();
        let ft = e
            .file_type()
            .context(|| format!("reading {}", p.display()))?;
        if ft.is_file() && p.extension().is_some_and(|x| x == "pub") {
            out.push(p);
        }
    }
    Ok(out)
}

/// The default trust directory: `MODELSEAL_TRUST` if set, else `<config dir>/modelseal/trust`.
pub fn default_dir() -> Option<PathBuf> {
    match std::env::var_os("MODELSEAL_TRUST") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => dirs::config_dir().map(|d| d.join("modelseal").join("trust")),
    }
}

/// Adds a public key to a trust directory as `<key id>.pub`, scoped to `models` when given.
pub fn dir_add(dir: &Path, key_file: &Path, models: &[String]) -> Result<KeyId> {
    let key = PublicKey::read(key_file)?;
    let id = key.key_id();
    let existed = dir.symlink_metadata().is_ok();
    std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
    // A store `verify` would refuse as unsafe is not written to either.
    let safe = refuse_unsafe_parents(dir).and_then(|()| {
        let meta = std::fs::metadata(dir).context(|| format!("reading {}", dir.display()))?;
        refuse_writable_by_others(dir, &meta)
    });
    if let Err(e) = safe {
        if !existed {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(e);
    }
    let target = dir.join(format!("{id}.pub"));
    let body = format!("# trusted modelseal signing key {id}\n{}\n", key.to_line());
    crate::fs::write_atomic(&target, body.as_bytes())?;
    if !models.is_empty() {
        let policy = dir.join(POLICY_FILE);
        let mut text = if policy.exists() {
            read_policy(&policy)?
        } else {
            String::new()
        };
        let quoted: Vec<String> = models
            .iter()
            .map(|m| toml::Value::String(m.clone()).to_string())
            .collect();
        text.push_str(&format!(
            "\n[[key]]\nid = \"{id}\"\nmodels = [{}]\n",
            quoted.join(", ")
        ));
        // Refuse to write a policy that would not load.
        let _: PolicyFile = toml::from_str(&text).map_err(|e| TrustError::BadPolicy {
            path: policy.clone(),
            detail: e.to_string(),
        })?;
        crate::fs::write_atomic(&policy, text.as_bytes())?;
    }
    Ok(id)
}

/// Removes a key (by id) from a trust directory, and its `[[key]]` rules from the policy.
pub fn dir_remove(dir: &Path, id: &str) -> Result<PathBuf> {
    let id = id.to_lowercase();
    let mut removed = None;
    for p in list_pub_files(dir)? {
        if PublicKey::read(&p)?.key_id().to_string() == id {
            std::fs::remove_file(&p).context(|| format!("removing {}", p.display()))?;
            removed = Some(p);
        }
    }
    let removed = removed.ok_or_else(|| TrustError::UnknownKey { id: id.clone() })?;
    let policy = dir.join(POLICY_FILE);
    if policy.exists() {
        let text = read_policy(&policy)?;
        let mut value: toml::Table = toml::from_str(&text).map_err(|e| TrustError::BadPolicy {
            path: policy.clone(),
            detail: e.to_string(),
        })?;
        if let Some(toml::Value::Array(keys)) = value.get_mut("key") {
            keys.retain(|k| {
                k.get("id").and_then(|v| v.as_str()).map(str::to_lowercase) != Some(id.clone())
            });
        }
        crate::fs::write_atomic(
            &policy,
            toml::to_string(&value)
                .map_err(|e| TrustError::BadPolicy {
                    path: policy.clone(),
                    detail: e.to_string(),
                })?
                .as_bytes(),
        )?;
    }
    Ok(removed)
}

/// Refuses a trust directory or file that someone else could change, as ssh's StrictModes does
/// for authorized_keys: one group or others may write (the mode bits, whoever runs: root is no
/// exception), or one owned by anyone but the user who runs and root. `meta` is of the handle that
/// is then read, so the file checked is the file used.
fn refuse_writable_by_others(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(TrustError::WritableByOthers {
                path: path.into(),
                mode,
            }
            .into());
        }
        refuse_foreign_owner(path, meta.uid())?;
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

#[cfg(unix)]
fn refuse_foreign_owner(path: &Path, uid: u32) -> Result<()> {
    let me = rustix::process::geteuid().as_raw();
    if uid != me && uid != 0 {
        return Err(TrustError::OwnedByOther {
            path: path.into(),
            owner: uid,
            user: me,
        }
        .into());
    }
    Ok(())
}

/// Refuses a trust path below a directory that someone else could change: each directory above
/// it, both as written (where a link in the path lives: whoever may write there may repoint the
/// link) and after resolving links, must be owned by the user or root, and not writable by group
/// or others unless sticky (as `/tmp` is: there, only an entry's owner may rename or remove it).
fn refuse_unsafe_parents(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let full = std::fs::canonicalize(path)
            .context(|| format!("reading trust store {}", path.display()))?;
        let written = std::path::absolute(path)
            .context(|| format!("reading trust store {}", path.display()))?;
        let dirs: Vec<&Path> = written
            .ancestors()
            .skip(1)
            .chain(full.ancestors().skip(1))
            .collect();
        for dir in dirs {
            let meta = std::fs::metadata(dir).context(|| format!("reading {}", dir.display()))?;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o022 != 0 && mode & 0o1000 == 0 {
                return Err(TrustError::UnsafeParent {
                    store: path.into(),
                    dir: dir.into(),
                    mode,
                }
                .into());
            }
            refuse_foreign_owner(dir, meta.uid())?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads a `.pub` file through one handle whose metadata is checked first.
fn read_trusted_key(path: &Path) -> Result<PublicKey> {
    let file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    let meta = file
        .metadata()
        .context(|| format!("reading {}", path.display()))?;
    refuse_writable_by_others(path, &meta)?;
    PublicKey::read_from(file, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("iris-*", "iris-tree"));
        assert!(!glob_match("iris-*", "fraud-detector"));
        assert!(glob_match("fraud/*", "fraud/eu/v2"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("m?del", "model"));
        assert!(!glob_match("iris", "iris-tree"));
        assert!(glob_match("*-tree", "iris-tree"));
        assert!(!glob_match("a*b*c", "aXbY"));
        // Pathological patterns stay linear.
        assert!(!glob_match(&"*a".repeat(50), &"a".repeat(40)));
    }
}
