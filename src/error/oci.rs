//! OCI registry errors: the reference, the network, the registry's answers, and what it served.

use super::{Area, ErrorKind};

/// A registry exchange that failed or served something modelseal refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The reference does not follow `[oci://]HOST[:PORT]/REPO[:TAG|@sha256:HEX]`.
    #[error("invalid OCI reference {reference:?}: {detail}")]
    InvalidReference {
        /// What was given (escaped by the frontend).
        reference: String,
        /// Which rule it breaks.
        detail: String,
    },
    /// No connection to the registry could be made, or it broke off.
    #[error("registry {registry} unreachable: {detail}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// The transport's error.
        detail: String,
    },
    /// The registry refused our credentials, or we had none (401 or 403).
    #[error("registry {registry} answered {status} (not authorized) for {what}")]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// 401 or 403.
        status: u16,
        /// What was asked.
        what: String,
    },
    /// The tag, digest or repository does not exist (404).
    #[error("{reference}: not found in the registry")]
    NotFound {
        /// The reference.
        reference: String,
    },
    /// The registry answered something the distribution spec does not allow here.
    #[error("registry {registry} answered {status} to {what}")]
    Registry {
        /// `host[:port]`.
        registry: String,
        /// HTTP status.
        status: u16,
        /// What was asked.
        what: String,
    },
    /// The bytes served do not hash to the digest asked for.
    #[error("{what}: registry served bytes with digest {found}, expected {expected}")]
    DigestMismatch {
        /// What was downloaded.
        what: &'static str,
        /// The digest asked for.
        expected: String,
        /// The digest of what came.
        found: String,
    },
    /// The bytes served are not as long as the descriptor says.
    #[error("{what}: registry served {found} bytes, the descriptor says {expected}")]
    SizeMismatch {
        /// What was downloaded.
        what: &'static str,
        /// The descriptor's size.
        expected: u64,
        /// What came (at most one byte past the expected size is read).
        found: u64,
    },
    /// The manifest is another artifact than a modelseal archive.
    #[error(
        "the manifest is not a modelseal archive: artifactType {found:?}, expected {expected:?}"
    )]
    WrongArtifactType {
        /// What the manifest says.
        found: String,
        /// Ours.
        expected: &'static str,
    },
    /// The manifest is not a well-formed OCI image manifest of ours.
    #[error("malformed OCI manifest: {detail}")]
    BadManifest {
        /// What is wrong.
        detail: String,
    },
    /// A length from the network is above its limit (src/limits.rs).
    #[error("{what} of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Its size (declared or counted).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The Docker config file cannot be used.
    #[error("{path}: unusable Docker config: {detail}")]
    DockerConfig {
        /// The file.
        path: String,
        /// What is wrong (never a secret).
        detail: String,
    },
}

impl OciError {
    /// What kind of failure this is: what the registry served and we refused is a refusal (exit
    /// 1); the reference, the network, credentials and missing tags are usage or environment
    /// problems (exit 2).
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            OciError::DigestMismatch { .. } | OciError::SizeMismatch { .. } => {
                ErrorKind::Refusal(Area::Verify)
            }
            OciError::WrongArtifactType { .. }
            | OciError::BadManifest { .. }
            | OciError::TooLarge { .. } => ErrorKind::Refusal(Area::Format),
            OciError::InvalidReference { .. }
            | OciError::Unreachable { .. }
            | OciError::Unauthorized { .. }
            | OciError::NotFound { .. }
            | OciError::Registry { .. }
            | OciError::DockerConfig { .. } => ErrorKind::Usage,
        }
    }
}
