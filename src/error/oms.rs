//! Refusals of OpenSSF Model Signing (OMS) bundles and of the models they cover (FORMAT.md §11).

use std::path::PathBuf;

/// An OMS bundle, its signature or the model it covers was refused.
///
/// [`crate::Error::kind`] classes them with the archive's areas: a bundle that does not parse is a
/// `Format` refusal, a key file a `Key` one, a signature or a file that does not match a `Verify`
/// one, and a model that cannot be hashed as given (a link, a device, too many files) a usage
/// error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OmsError {
    /// The bundle file is larger than the limit; it was not read.
    #[error("OMS bundle of {size} bytes exceeds the limit of {max}")]
    BundleTooLarge {
        /// Its size on disk (at least).
        size: u64,
        /// The limit, `oms::MAX_BUNDLE_BYTES`.
        max: u64,
    },
    /// The bundle or its payload is not the JSON, base64 or hex it must be.
    #[error("cannot decode the OMS {what}: {detail}")]
    Decode {
        /// Which part (`bundle`, `payload`, `statement`, `signature`...).
        what: &'static str,
        /// The decoder's message or the rule broken.
        detail: String,
    },
    /// A type field (media type, payload type, statement type, predicate type) has another
    /// value than the one OMS v1.0 defines.
    #[error("OMS {field} is {found:?}, expected {expected:?}")]
    WrongType {
        /// Which field.
        field: &'static str,
        /// The value required.
        expected: &'static str,
        /// The value found.
        found: String,
    },
    /// A serialization this build does not verify: another method, hash or resource algorithm.
    #[error("OMS {field} {found:?} is not supported (only {supported:?})")]
    Unsupported {
        /// `serialization.method`, `serialization.hash_type` or `resource algorithm`.
        field: &'static str,
        /// The value supported.
        supported: &'static str,
        /// The value found.
        found: String,
    },
    /// Not exactly one subject, or not exactly one signature, or more resources than the limit.
    #[error("OMS bundle has {found} {what}, allowed {allowed}")]
    Count {
        /// `subjects`, `signatures`, `resources` or `ignore_paths`.
        what: &'static str,
        /// How many were found (at least).
        found: usize,
        /// The allowed range, in words.
        allowed: String,
    },
    /// A resource name that is not a safe relative path (or `.` for a one-file model).
    #[error("OMS resource name {name:?} refused: {reason}")]
    UnsafeName {
        /// The name, cut to 256 characters.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Two resources with one name.
    #[error("OMS bundle lists {name:?} twice")]
    DuplicateResource {
        /// The name.
        name: String,
    },
    /// The public key the bundle names is not the one given.
    #[error("the OMS bundle was signed by the key {found}, not by the key given ({expected})")]
    KeyMismatch {
        /// SHA-256 of the given key's PEM, hex.
        expected: String,
        /// The bundle's `publicKey.hint`.
        found: String,
    },
    /// The signature is not a DER-encoded ECDSA signature (a raw r||s is refused).
    #[error("OMS signature of {len} bytes is not a DER-encoded ECDSA signature")]
    SignatureEncoding {
        /// The decoded length.
        len: usize,
    },
    /// The signature does not verify with the key given.
    #[error("OMS signature does not verify with the public key {key}")]
    BadSignature {
        /// SHA-256 of the key's PEM, hex.
        key: String,
    },
    /// The signed subject digest is not the digest of the signed resources.
    #[error("OMS subject digest {expected} differs from the digest of its resources {found}")]
    SubjectDigestMismatch {
        /// The signed subject digest, hex.
        expected: String,
        /// SHA-256 over the resources' digests, hex.
        found: String,
    },
    /// A file's SHA-256 differs from the signed one.
    #[error("{path}: SHA-256 {found} differs from the signed {expected}")]
    FileChanged {
        /// The file, relative to the model.
        path: String,
        /// Signed digest, hex.
        expected: String,
        /// Digest of the file, hex.
        found: String,
    },
    /// A signed file is not in the model.
    #[error("{path}: signed, but missing from the model")]
    FileMissing {
        /// The file, relative to the model.
        path: String,
    },
    /// A file of the model is not in the signature.
    #[error("{path}: in the model, but not signed")]
    FileExtra {
        /// The file, relative to the model.
        path: String,
    },
    /// A carried bundle records as ignored a path other than git's: those files would go
    /// unchecked by whoever verifies the bundle.
    #[error("the carried OMS bundle records {path:?} as ignored (only git's files may be)")]
    IgnoresModelFiles {
        /// The ignored path recorded.
        path: String,
    },
    /// The model holds something that is neither a regular file nor a directory.
    #[error("{path}: {kind} in the model (only regular files and directories are signed)")]
    UnsupportedFile {
        /// The entry.
        path: PathBuf,
        /// What it is (`a symbolic link`, `a FIFO`...).
        kind: &'static str,
    },
    /// The model holds a file whose name no resource can carry.
    #[error("{path}: file name refused: {reason}")]
    UnrepresentableName {
        /// The entry.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// The model holds more files than a bundle may list.
    #[error("{path}: more than {max} files to sign")]
    TooManyFiles {
        /// The model.
        path: PathBuf,
        /// The limit, `oms::MAX_RESOURCES`.
        max: usize,
    },
    /// `open --oms-signature` on an archive sealed without `--oms-key`.
    #[error("{model} {version} carries no OMS bundle")]
    NotCarried {
        /// The model's name.
        model: String,
        /// Its version.
        version: String,
    },
    /// A PEM key file that is not a P-256 EC key of the kind expected.
    #[error("{path}: not a P-256 EC {expected} in PEM: {detail}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// `private key` or `public key`.
        expected: &'static str,
        /// What the decoder said.
        detail: String,
    },
}

impl OmsError {
    /// Which kind of failure this is ([`crate::Error::kind`]).
    pub(crate) fn kind(&self) -> super::ErrorKind {
        use super::{Area, ErrorKind};
        ErrorKind::Refusal(match self {
            OmsError::BundleTooLarge { .. }
            | OmsError::Decode { .. }
            | OmsError::WrongType { .. }
            | OmsError::Unsupported { .. }
            | OmsError::Count { .. }
            | OmsError::UnsafeName { .. }
            | OmsError::DuplicateResource { .. } => Area::Format,
            OmsError::BadKey { .. } => Area::Key,
            OmsError::KeyMismatch { .. }
            | OmsError::SignatureEncoding { .. }
            | OmsError::BadSignature { .. }
            | OmsError::SubjectDigestMismatch { .. }
            | OmsError::FileChanged { .. }
            | OmsError::FileMissing { .. }
            | OmsError::FileExtra { .. }
            | OmsError::IgnoresModelFiles { .. } => Area::Verify,
            OmsError::UnsupportedFile { .. }
            | OmsError::UnrepresentableName { .. }
            | OmsError::TooManyFiles { .. }
            | OmsError::NotCarried { .. } => return ErrorKind::Usage,
        })
    }
}
