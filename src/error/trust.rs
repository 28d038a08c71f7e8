//! Trust policy and anti-rollback refusals ([`TrustError`]).

use std::path::PathBuf;

/// Trust policy and anti-rollback refusals.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A trust directory, key or policy file that users other than its owner may write: another
    /// local user could plant a key or a policy there (as ssh's StrictModes refuses).
    #[error(
        "{path} is writable by group or others (mode {mode:03o}); it is not used as a trust store"
    )]
    WritableByOthers {
        /// The directory or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A trust directory or file is owned by another user, who could rewrite it whatever its
    /// mode.
    #[error("{path} is owned by user {owner}, not by you (user {user}) or root; it is not used as a trust store")]
    OwnedByOther {
        /// The directory or file.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The uid this process runs as.
        user: u32,
    },
    /// A directory above the trust store may be written by group or others (and is not sticky),
    /// so another user could replace the store.
    #[error("{dir} (above the trust store {store}) is writable by group or others (mode {mode:03o}); the trust store is not used")]
    UnsafeParent {
        /// The trust store as given.
        store: PathBuf,
        /// The directory above it.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The trust directory's policy file is malformed.
    #[error("{path}: invalid trust policy: {detail}")]
    BadPolicy {
        /// The policy file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// No key with this id in the trust directory.
    #[error("no trusted key with id {id}")]
    UnknownKey {
        /// The id asked for.
        id: String,
    },
    /// The signer is trusted, but not for this model name.
    #[error("key {key_id} is trusted only for {scopes}, not for model {model:?}")]
    UntrustedForModel {
        /// The signer's key id.
        key_id: String,
        /// The model name.
        model: String,
        /// The key's patterns.
        scopes: String,
    },
    /// Fewer distinct trusted signers than the policy requires.
    #[error("model {model:?} needs {required} distinct trusted signers, found {found}")]
    TooFewSignatures {
        /// The model name.
        model: String,
        /// Signers the policy requires.
        required: usize,
        /// Distinct trusted signers whose signatures verified.
        found: usize,
    },
    /// A lower version than one already accepted from this signer.
    #[error(
        "rollback: {model} {found} is older than {accepted}, already accepted from signer {signer}"
    )]
    Rollback {
        /// The model name.
        model: String,
        /// The signer.
        signer: String,
        /// The archive's version.
        found: String,
        /// The highest version accepted before.
        accepted: String,
    },
    /// The same version as one accepted before, with other contents.
    #[error(
        "equivocation: {model} {version} from signer {signer} differs from the one accepted before"
    )]
    Equivocation {
        /// The model name.
        model: String,
        /// The version.
        version: String,
        /// The signer.
        signer: String,
    },
    /// A version below the caller's minimum.
    #[error("{model} {found} is below the minimum version {minimum}")]
    BelowMinimumVersion {
        /// The model name.
        model: String,
        /// The archive's version.
        found: String,
        /// The minimum.
        minimum: String,
    },
    /// The anti-rollback state file cannot be read as written by modelseal.
    #[error("{path}: anti-rollback state is corrupted: {detail}")]
    StateCorrupted {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// No trust store was given and there is no default one.
    #[error("no trust store: none was given, and there is no default trust directory")]
    NoTrustStore,
    /// The signing key is revoked by the trust policy (`[[revoked]]`), for archives created at or
    /// after `since` when it is given.
    #[error("key {key_id} is revoked{}: {reason}", since.as_ref().map(|s| format!(" for archives created since {s}")).unwrap_or_default())]
    Revoked {
        /// The revoked key.
        key_id: String,
        /// Why, as the policy says.
        reason: String,
        /// From when (RFC 3339), if the revocation is not total.
        since: Option<String>,
    },
    /// The archive's signed creation time is outside the key's validity window
    /// (`not_before` / `not_after` of its `[[key]]` rule).
    #[error("key {key_id} not valid at creation time {created} (valid {} to {})", not_before.as_deref().unwrap_or("any time"), not_after.as_deref().unwrap_or("any time"))]
    KeyNotValidAt {
        /// The key.
        key_id: String,
        /// The archive's creation time (RFC 3339).
        created: String,
        /// The window's start, if any.
        not_before: Option<String>,
        /// The window's end, if any.
        not_after: Option<String>,
    },
}
