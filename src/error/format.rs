//! Bytes that do not follow FORMAT.md ([`FormatError`]) and the manifest rule broken
//! ([`ManifestRule`]).

/// Bytes that do not follow FORMAT.md: refused before any cryptography runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file does not start with the modelseal magic.
    #[error("not a modelseal archive: bad magic {found}")]
    BadMagic {
        /// The first bytes found, in hex.
        found: String,
    },
    /// The archive uses a format version this build does not implement.
    #[error("unsupported format version {found} (this build supports version {supported})")]
    UnsupportedVersion {
        /// The version in the archive.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The header length is zero or above the limit.
    #[error("header of {found} bytes is outside 1..={max}")]
    HeaderTooLarge {
        /// Claimed header length.
        found: u64,
        /// The configured limit.
        max: u64,
    },
    /// The input ended inside a structure.
    #[error("archive truncated inside the {what}")]
    Truncated {
        /// Which structure was being read.
        what: &'static str,
    },
    /// A structure could not be decoded.
    #[error("cannot decode the {what}: {detail}")]
    Decode {
        /// Which structure.
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// A structure decoded but is not in its one canonical encoding.
    #[error("the {what} is not canonically encoded")]
    NonCanonical {
        /// Which structure.
        what: &'static str,
    },
    /// Bytes were left over after a structure.
    #[error("{extra} unexpected bytes after the {what}")]
    TrailingBytes {
        /// Which structure.
        what: &'static str,
        /// How many bytes were left.
        extra: u64,
    },
    /// The header lists no recipient, or more than the limit.
    #[error("header lists {found} recipients, allowed 1..={max}")]
    RecipientCount {
        /// Stanzas found.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// A detached co-signature file (FORMAT.md §5.1) that is not one.
    #[error("not a modelseal detached signature: {detail}")]
    DetachedSignature {
        /// What is wrong.
        detail: &'static str,
    },
    /// The signature block holds no entry, or more than the limit.
    #[error("archive carries {found} signatures, allowed 1..={max}")]
    SignatureCount {
        /// Entries found.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// A header field that the suite rules out (FORMAT.md §4.5): a public header with a recipient,
    /// a salt or a commitment.
    #[error("a {suite} header must have {field}")]
    SuiteFields {
        /// The suite's name.
        suite: &'static str,
        /// What the suite requires.
        field: &'static str,
    },
    /// The size fields of the header disagree with each other.
    #[error("inconsistent sizes in header: {detail}")]
    InconsistentSizes {
        /// What disagreed.
        detail: String,
    },
    /// More chunks than the limit.
    #[error("payload of {found} chunks exceeds the limit of {max}")]
    TooManyChunks {
        /// Chunk count claimed.
        found: u64,
        /// The limit.
        max: u64,
    },
    /// A model name that is not a valid `ModelName`.
    #[error("invalid model name {name:?}: {reason}")]
    InvalidModelName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A model version that is not semver.
    #[error("invalid model version {version:?}: {detail}")]
    InvalidModelVersion {
        /// The version string.
        version: String,
        /// The parser's message.
        detail: String,
    },
    /// A path that is not a safe relative path.
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The path, lossily decoded.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The manifest uses a schema this build does not know.
    #[error("unsupported manifest schema {found} (this build reads 1..={supported})")]
    UnsupportedManifestSchema {
        /// Schema in the archive.
        found: u32,
        /// Newest schema this build reads.
        supported: u32,
    },
    /// A manifest field breaks its rules (FORMAT.md §9).
    #[error("invalid manifest: {detail}")]
    InvalidManifest {
        /// Which rule.
        rule: ManifestRule,
        /// What is wrong, with the values.
        detail: String,
    },
}

/// The rule of FORMAT.md §9 a manifest broke ([`FormatError::InvalidManifest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestRule {
    /// More bytes than `max_manifest_bytes`.
    TooLarge,
    /// More files than `max_files`.
    TooManyFiles,
    /// Files not in strictly increasing byte order (a duplicate included).
    NotSorted,
    /// A file named `manifest`, the reserved entry, or under `.modelseal/` but the OMS bundle.
    ReservedName,
    /// A path longer than `max_path_bytes`.
    PathTooLong,
    /// A path that is both a file and a directory.
    FileAndDirectory,
    /// A metric with an empty or long name, or a value that is not finite.
    BadMetric,
    /// A requirement, class or feature name that is empty, long or holds a control character.
    BadName,
    /// The typed model names a file that is not in the manifest.
    TypedModelMissing,
    /// A description longer than its limit.
    DescriptionTooLong,
    /// A metadata key that is empty, long or holds a control character.
    BadMetadataKey,
    /// A metadata value longer than its limit.
    MetadataValueTooLong,
}
