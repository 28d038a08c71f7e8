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
//!
//! # A key valid only for archives created in 2026 (the header's signed creation time).
//! [[key]]
//! file = "release-2026.pub"
//! not_before = 2026-01-01T00:00:00Z
//! not_after = 2026-12-31T23:59:59Z
//!
//! # A leaked key: archives it signed are refused; with `since`, only those created at or after
//! # that time (an old release signed before the leak still verifies).
//! [[revoked]]
//! id = "3f1c0d1e2a4b5c6d7e8f90a1b2c3d4e5"
//! reason = "laptop stolen"
//! since = 2026-11-30T00:00:00Z
//! ```
//!
//! Revoked keys and keys outside their window are never counted towards a threshold.
//!
//! A key the policy does not mention is trusted for every model. Patterns use `*` (any run of
//! characters, `/` included) and `?` (one character).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, KeyError, Result, TrustError, UsageError};
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
    windows: BTreeMap<KeyId, Validity>,
    revoked: BTreeMap<KeyId, Revocation>,
}

/// When a key may have signed: archives whose signed creation time lies outside are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Validity {
    /// The earliest creation time accepted (Unix seconds, inclusive).
    pub not_before: Option<u64>,
    /// The latest creation time accepted (Unix seconds, inclusive).
    pub not_after: Option<u64>,
}

/// A revoked key: why, and from which signed creation time (all archives when `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Why, for the refusal's message.
    pub reason: String,
    /// Archives created at or after this time (Unix seconds) are refused; all when `None`.
    pub since: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    key: Vec<KeyRule>,
    #[serde(default)]
    threshold: Vec<ThresholdRule>,
    #[serde(default)]
    revoked: Vec<RevokedRule>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRule {
    id: Option<String>,
    file: Option<String>,
    models: Option<Vec<String>>,
    not_before: Option<toml::value::Datetime>,
    not_after: Option<toml::value::Datetime>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokedRule {
    id: String,
    reason: String,
    since: Option<toml::value::Datetime>,
}

/// A policy time: an RFC 3339 date-time with an offset (TOML's offset date-time), as Unix seconds.
fn policy_time(t: &toml::value::Datetime, what: &str) -> std::result::Result<u64, String> {
    if t.date.is_none() || t.time.is_none() || t.offset.is_none() {
        return Err(format!(
            "{what} = {t} is not a full date-time with an offset (write 2026-01-01T00:00:00Z)"
        ));
    }
    crate::time::parse_rfc3339(&t.to_string()).map_err(|e| format!("{what} = {t}: {e}"))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdRule {
    models: Vec<String>,
    signers: usize,
}

/// A key id as 32 hex digits (either case).
fn parse_key_id(s: &str) -> Option<KeyId> {
    let bytes = hex::decode(s).ok()?;
    Some(KeyId(bytes.try_into().ok()?))
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
        let by_file = self.add_dir_keys(path)?;
        let policy_path = path.join(POLICY_FILE);
        if policy_path.symlink_metadata().is_ok() {
            let text = read_policy(&policy_path)?;
            self.apply_policy(&policy_path, &text, &by_file)?;
        }
        Ok(())
    }

    /// Adds every `*.pub` of a directory; returns their ids by file name (for `file =` rules).
    fn add_dir_keys(&mut self, dir: &Path) -> Result<BTreeMap<String, KeyId>> {
        let mut by_file: BTreeMap<String, KeyId> = BTreeMap::new();
        for p in list_pub_files(dir)? {
            let key = read_trusted_key(&p)?;
            if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                by_file.insert(name.to_owned(), key.key_id());
            }
            self.add(key);
        }
        if by_file.is_empty() {
            return Err(KeyError::EmptyTrustStore { path: dir.into() }.into());
        }
        Ok(by_file)
    }

    /// Applies a policy's text (read from `path`) to the store.
    fn apply_policy(
        &mut self,
        path: &Path,
        text: &str,
        by_file: &BTreeMap<String, KeyId>,
    ) -> Result<()> {
        let bad = |detail: String| TrustError::BadPolicy {
            path: path.into(),
            detail,
        };
        // toml's own rendering is several lines with a source excerpt; one line with the place.
        let policy: PolicyFile = toml::from_str(text).map_err(|e| {
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
            if rule.models.is_none() && rule.not_before.is_none() && rule.not_after.is_none() {
                return Err(bad(format!(
                    "[[key]] {id} says nothing: give models, not_before or not_after"
                ))
                .into());
            }
            if let Some(models) = rule.models {
                if models.is_empty() {
                    return Err(bad(format!(
                        "key {id} has an empty models list; remove the key instead"
                    ))
                    .into());
                }
                self.scopes.entry(id).or_default().extend(models);
            }
            let window = Validity {
                not_before: rule
                    .not_before
                    .as_ref()
                    .map(|t| policy_time(t, "not_before"))
                    .transpose()
                    .map_err(bad)?,
                not_after: rule
                    .not_after
                    .as_ref()
                    .map(|t| policy_time(t, "not_after"))
                    .transpose()
                    .map_err(bad)?,
            };
            if let (Some(a), Some(b)) = (window.not_before, window.not_after) {
                if a > b {
                    return Err(bad(format!("key {id}: not_before is after not_after")).into());
                }
            }
            if window != Validity::default() {
                self.set_validity(id, window);
            }
        }
        for r in policy.revoked {
            let id = parse_key_id(&r.id).ok_or_else(|| {
                bad(format!(
                    "[[revoked]] id {:?} is not a key id (32 hex digits)",
                    r.id
                ))
            })?;
            if self.revoked.contains_key(&id) {
                return Err(bad(format!("key {id} is revoked twice")).into());
            }
            let since = r
                .since
                .as_ref()
                .map(|t| policy_time(t, "since"))
                .transpose()
                .map_err(bad)?;
            self.revoke(
                id,
                Revocation {
                    reason: r.reason,
                    since,
                },
            );
        }
        for t in policy.threshold {
            if t.signers == 0 || t.models.is_empty() {
                return Err(bad("a [[threshold]] needs models and signers >= 1".into()).into());
            }
            self.thresholds.push((t.models, t.signers));
        }
        Ok(())
    }

    /// Revokes a key (whether or not it is in the store): see [`Revocation`].
    pub fn revoke(&mut self, id: KeyId, revocation: Revocation) {
        self.revoked.insert(id, revocation);
    }

    /// Limits the creation times of the archives a key may have signed.
    pub fn set_validity(&mut self, id: KeyId, window: Validity) {
        self.windows.insert(id, window);
    }

    /// Whether `id` may have signed an archive created at `created` (the header's signed
    /// creation time): refused when the key is revoked for that time or outside its window.
    pub fn check_valid_at(&self, id: &KeyId, created: u64) -> Result<(), TrustError> {
        if let Some(r) = self.revoked.get(id) {
            if r.since.is_none_or(|since| created >= since) {
                return Err(TrustError::Revoked {
                    key_id: id.to_string(),
                    reason: r.reason.clone(),
                    since: r.since.map(crate::time::rfc3339),
                });
            }
        }
        if let Some(w) = self.windows.get(id) {
            if w.not_before.is_some_and(|t| created < t) || w.not_after.is_some_and(|t| created > t)
            {
                return Err(TrustError::KeyNotValidAt {
                    key_id: id.to_string(),
                    created: crate::time::rfc3339(created),
                    not_before: w.not_before.map(crate::time::rfc3339),
                    not_after: w.not_after.map(crate::time::rfc3339),
                });
            }
        }
        Ok(())
    }

    /// The revoked keys.
    pub fn revocations(&self) -> &BTreeMap<KeyId, Revocation> {
        &self.revoked
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

/// Revokes a key in a trust directory's policy (`[[revoked]]`), atomically: the new policy is
/// checked to load before it replaces the old one. `since` is an RFC 3339 UTC time.
pub fn dir_revoke(dir: &Path, id: &str, reason: &str, since: Option<&str>) -> Result<KeyId> {
    let policy = dir.join(POLICY_FILE);
    let bad = |detail: String| TrustError::BadPolicy {
        path: policy.clone(),
        detail,
    };
    let key =
        parse_key_id(id).ok_or_else(|| bad(format!("{id:?} is not a key id (32 hex digits)")))?;
    if let Some(s) = since {
        crate::time::parse_rfc3339(s).map_err(|e| UsageError::InvalidTime {
            value: s.into(),
            detail: e,
        })?;
    }
    // The store as it loads now: a directory `verify` would refuse is not edited, and a key
    // revoked already is not revoked twice.
    let mut store = TrustStore::new();
    store.add_path(dir)?;
    if store.revoked.contains_key(&key) {
        return Err(bad(format!("key {key} is already revoked")).into());
    }
    let mut text = if policy.exists() {
        read_policy(&policy)?
    } else {
        String::new()
    };
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    text.push_str(&format!(
        "\n[[revoked]]\nid = \"{key}\"\nreason = {}\n{}",
        quote(reason),
        since.map(|s| format!("since = {s}\n")).unwrap_or_default()
    ));
    // Refuse to write a policy that would not load.
    let mut check = TrustStore::new();
    let by_file = check.add_dir_keys(dir)?;
    check.apply_policy(&policy, &text, &by_file)?;
    crate::fs::write_atomic(&policy, text.as_bytes())?;
    Ok(key)
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
