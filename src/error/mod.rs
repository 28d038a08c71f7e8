//! Typed errors, one enum per area (STYLE.md §11).
//!
//! Every refusal names what failed and the values involved, in words that do not depend on the
//! frontend. [`Error::hint`] gives the one-line suggestion printed after it, naming options in the
//! frontend's own [`Vocabulary`] (the CLI's `--force`, Python's `force=True`), and
//! [`Error::kind`] separates a failed check (CLI exit code 1) from a usage or I/O problem (2).

mod format;
mod hint;
mod io;
mod oci;
mod oms;
mod pkcs11;
mod trust;

pub use format::{FormatError, ManifestRule};
pub use hint::{Term, Vocabulary};
pub(crate) use hint::{MODEL_NAME_RULE, MODEL_VERSION_RULE};
pub(crate) use io::{Boxed, IoContext};
pub use oci::OciError;
pub use oms::OmsError;
pub use pkcs11::Pkcs11Error;
pub use trust::TrustError;

use std::path::PathBuf;

/// Key files and key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key line has another type than the one expected here.
    #[error("{path}: expected a {expected} key, found {found:?}")]
    WrongType {
        /// The key file.
        path: PathBuf,
        /// Type wanted.
        expected: &'static str,
        /// Type found.
        found: String,
    },
    /// The checksum of the key line does not match: the key was mistyped or altered.
    #[error("{path}: key checksum mismatch")]
    BadChecksum {
        /// The key file.
        path: PathBuf,
    },
    /// The key line is not valid base64url, or has the wrong length.
    #[error("{path}: malformed key: {detail}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A small-order or non-canonical public key.
    #[error("{path}: weak or invalid {kind} public key refused")]
    WeakKey {
        /// The key file.
        path: PathBuf,
        /// `ed25519` or `x25519`.
        kind: &'static str,
    },
    /// A secret key file readable by group or others.
    #[error("{path}: secret key file has mode {mode:o}, readable by others")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file above the size limit.
    #[error("{path}: key file larger than {max} bytes")]
    TooLarge {
        /// The key file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// Not exactly one key line.
    #[error("{path}: expected exactly one key line, found {found}")]
    KeyLineCount {
        /// The key file.
        path: PathBuf,
        /// Key lines found.
        found: usize,
    },
    /// Key generation would overwrite a file.
    #[error("{path}: already exists, refusing to overwrite a key")]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A trust store path holds no public key.
    #[error("{path}: no *.pub key found in trust store")]
    EmptyTrustStore {
        /// The directory.
        path: PathBuf,
    },
    /// A passphrase-encrypted secret key did not open: the passphrase is wrong, or the file was
    /// altered (the two cannot be told apart).
    #[error("{path}: wrong passphrase, or the encrypted key was altered")]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// An encrypted key's scrypt work factor is outside what is accepted: refused before any
    /// work, so a hostile key file cannot make the reader spend minutes or gigabytes.
    #[error("{path}: scrypt work factor 2^{log_n} outside the accepted 2^{min}..=2^{max}")]
    WorkFactor {
        /// The key file.
        path: PathBuf,
        /// Its log2(N).
        log_n: u8,
        /// The smallest accepted.
        min: u8,
        /// The largest accepted.
        max: u8,
    },
    /// A signing-only public key (`modelseal-sign-pub-v1`, a token key's) was given as a
    /// recipient: it has no X25519 half to encrypt to.
    #[error("{path}: a signing-only public key cannot be a recipient")]
    SigningOnly {
        /// The key file.
        path: PathBuf,
    },
}

/// Signature, trust and payload-integrity checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signer is not in the local trust store.
    #[error("signer {key_id} is not in the trust store")]
    UntrustedSigner {
        /// The signer's key id, hex.
        key_id: String,
    },
    /// No signature entry by the header's signer.
    #[error("no signature by the header's signer {key_id}")]
    MissingSignature {
        /// The signer's key id, hex.
        key_id: String,
    },
    /// Two signature entries by the same key.
    #[error("two signatures by key {key_id}")]
    DuplicateSignature {
        /// The key id, hex.
        key_id: String,
    },
    /// A signature by a trusted key does not verify.
    #[error("signature by {key_id} does not verify")]
    BadSignature {
        /// The key id, hex.
        key_id: String,
    },
    /// The archive's expiry time has passed.
    #[error("archive expired at {expired} (now {now})")]
    Expired {
        /// Expiry, RFC 3339.
        expired: String,
        /// Current time, RFC 3339.
        now: String,
    },
    /// The payload bytes are not the ones the signer signed.
    #[error("payload digest mismatch: expected {expected}, found {found}")]
    PayloadDigestMismatch {
        /// Signed digest, hex.
        expected: String,
        /// Digest of the bytes read, hex.
        found: String,
    },
    /// The payload ends before its signed length.
    #[error("archive truncated: payload of {expected} bytes, found {found}")]
    Truncated {
        /// Signed payload length.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Bytes follow the signed payload.
    #[error("unexpected data after the signed payload")]
    TrailingData,
    /// The salt or commitment at the start of the payload differ from the signed header's.
    #[error("payload salt or commitment differs from the signed header")]
    HeaderPayloadMismatch,
}

/// Unwrapping the payload key and decrypting the payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// None of the recipient stanzas opens with the key given.
    #[error("no recipient stanza of {stanzas} opens with this {key_kind}")]
    NoMatchingRecipient {
        /// Stanzas of the matching kind tried.
        stanzas: usize,
        /// `identity` or `shared key`.
        key_kind: &'static str,
    },
    /// The unwrapped key does not match the signed key commitment.
    #[error("key commitment mismatch: the unwrapped key is not the archive's key")]
    KeyCommitmentMismatch,
    /// An input key of the wrong length.
    #[error("input key of {len} bytes, expected 32")]
    InvalidKeySize {
        /// Length given.
        len: usize,
    },
    /// A chunk failed authentication.
    #[error("chunk {index} failed authentication")]
    ChunkAuthentication {
        /// Chunk number.
        index: u64,
    },
    /// The ciphertext is too short for its header, a tag, or misses its final short chunk.
    #[error("ciphertext truncated: {detail}")]
    Truncated {
        /// Where.
        detail: &'static str,
    },
    /// More chunks than allowed.
    #[error("ciphertext exceeds {max} chunks")]
    TooManyChunks {
        /// The limit.
        max: u64,
    },
    /// An X25519 exchange produced the all-zero secret (a low-order point).
    #[error("non-contributory X25519 exchange (low-order public key)")]
    NonContributory,
}

/// What the decrypted payload holds: decompression, tar entries, manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The zstd stream is invalid, uses too large a window, or has extra frames or bytes.
    #[error("decompression refused: {detail}")]
    Decompression {
        /// The decoder's message or the rule broken.
        detail: String,
    },
    /// The decompressed stream is longer or shorter than the signed size.
    #[error("decompressed size {found} differs from the signed {expected}")]
    UnpackedSize {
        /// Signed size.
        expected: u64,
        /// Size produced (at least).
        found: u64,
    },
    /// The decompressed stream is larger than the configured limit.
    #[error("signed unpacked size {found} exceeds the limit of {max}")]
    UnpackedTooLarge {
        /// Signed size.
        found: u64,
        /// The limit.
        max: u64,
    },
    /// A tar header block is malformed or its checksum is wrong.
    #[error("bad tar header at offset {offset}: {detail}")]
    BadTarHeader {
        /// Offset in the tar stream.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A tar entry of a type other than a regular file.
    #[error("entry {path:?} has unsupported type {kind}")]
    UnsupportedEntryType {
        /// The entry's name.
        path: String,
        /// The tar type byte, described.
        kind: String,
    },
    /// A PAX header above the limit, with a key we do not accept, or misplaced.
    #[error("PAX header refused: {detail}")]
    Pax {
        /// What is wrong.
        detail: String,
    },
    /// A path appears twice.
    #[error("duplicate entry {path:?}")]
    DuplicateEntry {
        /// The path.
        path: String,
    },
    /// An entry the manifest does not list.
    #[error("entry {path:?} is not in the manifest")]
    NotInManifest {
        /// The path.
        path: String,
    },
    /// A manifest file with no entry in the archive.
    #[error("manifest lists {path:?} but the archive has no such entry")]
    MissingEntry {
        /// The path.
        path: String,
    },
    /// The first entry is not the manifest.
    #[error("first entry is {found:?}, expected the manifest")]
    ManifestNotFirst {
        /// What came first.
        found: String,
    },
    /// The manifest's bytes are not those signed in the header.
    #[error("manifest {field} differs from the signed header")]
    ManifestMismatch {
        /// Which field.
        field: &'static str,
    },
    /// A file's size differs from the manifest.
    #[error("{path}: size {found} differs from the manifest's {expected}")]
    SizeMismatch {
        /// The path.
        path: String,
        /// Manifest size.
        expected: u64,
        /// Entry size.
        found: u64,
    },
    /// A file's SHA-256 differs from the manifest.
    #[error("{path}: SHA-256 {found} differs from the manifest's {expected}")]
    HashMismatch {
        /// The path.
        path: String,
        /// Manifest hash, hex.
        expected: String,
        /// Computed hash, hex.
        found: String,
    },
    /// More entries than the limit.
    #[error("more than {max} files")]
    TooManyFiles {
        /// The limit.
        max: usize,
    },
    /// The tar stream lacks its end-of-archive marker or has data after it.
    #[error("tar stream: {detail}")]
    TarStructure {
        /// What is wrong.
        detail: &'static str,
    },
}

/// Model-level checks: typed loads, the version gate, pickle globals, requirements, inputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The archive holds no model serialized by modelseal.
    #[error("the archive holds no typed model (its files are opaque: {formats})")]
    NotTyped {
        /// The formats of the files found.
        formats: String,
    },
    /// The recorded model type differs from the one asked for.
    #[error("model type {found} differs from the expected {expected}")]
    TypeMismatch {
        /// Type asked for.
        expected: String,
        /// Type recorded.
        found: String,
    },
    /// The recorded encoding differs from this build's.
    #[error("model encoding {found} differs from this build's {expected}")]
    EncodingMismatch {
        /// This build's encoding.
        expected: String,
        /// Encoding recorded.
        found: String,
    },
    /// The model was built with another version of a library than this build links.
    #[error("model built with {library} {recorded}, this build has {library} {running}")]
    LibraryVersionMismatch {
        /// The library.
        library: String,
        /// Version recorded in the manifest.
        recorded: String,
        /// Version linked into this build.
        running: String,
    },
    /// The model bytes do not decode as the type.
    #[error("cannot decode the model: {detail}")]
    Decode {
        /// The decoder's message.
        detail: String,
    },
    /// A pickle imports globals outside the allowed globals.
    #[error("{path} imports {}, outside the allowed globals", globals.join(", "))]
    DisallowedGlobal {
        /// The pickle file.
        path: String,
        /// Every global outside the policy, in the order the pickle names them.
        globals: Vec<String>,
    },
    /// Under an allow-list, a file that is neither a fully walked pickle nor a format positively
    /// recognised as safe to hand to a loader.
    #[error(
        "{path} is {detail}: it cannot be checked, so it is not released under the allowed globals"
    )]
    UncheckedFile {
        /// The file.
        path: String,
        /// What it is.
        detail: String,
    },
    /// `@NAME` names no shipped profile.
    #[error("no shipped profile is named @{name}")]
    UnknownProfile {
        /// The name.
        name: String,
    },
    /// No shipped profile matches the library release the model records.
    #[error("the model records {name} {version}, and no shipped @{name} profile matches it (shipped: {available})")]
    NoProfileForVersion {
        /// The profile name.
        name: String,
        /// The recorded version.
        version: String,
        /// The major.minor releases profiles exist for.
        available: String,
    },
    /// An allowed-globals entry that is malformed or never allowed.
    #[error("allowed-globals entry {entry:?}: {detail}")]
    InvalidGlobalEntry {
        /// The entry.
        entry: String,
        /// Why.
        detail: String,
    },
    /// The globals of a pickle differ from those the manifest recorded.
    #[error("{path}: imported globals differ from the manifest's record")]
    GlobalsMismatch {
        /// The pickle file.
        path: String,
    },
    /// A required runtime version differs from the one expected by the caller.
    #[error("model requires {name}=={required}, expected {name}=={expected}")]
    RequirementMismatch {
        /// The requirement's name.
        name: String,
        /// What the model declares.
        required: String,
        /// What the caller expects.
        expected: String,
    },
    /// The caller expects a requirement the model does not declare.
    #[error("model declares no requirement on {name} (expected {name}=={expected})")]
    RequirementMissing {
        /// The requirement's name.
        name: String,
        /// What the caller expects.
        expected: String,
    },
    /// Bad prediction input.
    #[error("input row {row}: {detail}")]
    BadInput {
        /// 1-based row number (data rows, after any CSV header).
        row: usize,
        /// What is wrong.
        detail: String,
    },
    /// Training failed.
    #[error("training failed: {detail}")]
    Training {
        /// What went wrong.
        detail: String,
    },
}

/// Problems with what the caller asked for, before any archive is involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A limit set above its hard maximum.
    #[error("limit {name} = {value} exceeds its hard maximum {max}")]
    LimitAboveHardMax {
        /// Which limit.
        name: &'static str,
        /// Value given.
        value: u64,
        /// Hard maximum.
        max: u64,
    },
    /// The output path already exists.
    #[error("{path}: already exists")]
    OutputExists {
        /// The output.
        path: PathBuf,
    },
    /// The output path exists and is not what this command writes (a regular file for seal, a
    /// directory for open): neither --force nor anything else replaces it.
    #[error("{path} is {found}; modelseal replaces only {replaces}")]
    OutputNotReplaceable {
        /// The output.
        path: PathBuf,
        /// What it is (`a FIFO`, `a directory`...).
        found: &'static str,
        /// What the command would replace with --force.
        replaces: &'static str,
    },
    /// An input, name, path or metadata value given for sealing breaks a rule or a limit of the
    /// format (the reading side's refusal of the same thing, said of the input).
    #[error("cannot seal this input: {detail}")]
    SealInput {
        /// What is wrong, with the limit.
        detail: String,
        /// The hint that fits it.
        hint: &'static str,
    },
    /// The OMS signature would be written into the directory an open releases.
    #[error("{signature}: the OMS signature path is inside the output directory {dir}")]
    SignatureInsideOutput {
        /// The signature path.
        signature: PathBuf,
        /// The output directory.
        dir: PathBuf,
    },
    /// The output path is also an input.
    #[error("{path}: output is also an input")]
    OutputIsInput {
        /// The path.
        path: PathBuf,
    },
    /// A passphrase was needed and none could be read.
    #[error("{path}: no passphrase: {detail}")]
    NoPassphrase {
        /// The key file it was for.
        path: PathBuf,
        /// Why none could be read.
        detail: String,
    },
    /// The passphrase and its confirmation differ.
    #[error("the passphrases typed differ")]
    PassphraseMismatch,
    /// An empty passphrase was given for a new encrypted key.
    #[error("an empty passphrase protects nothing")]
    EmptyPassphrase,
    /// No recipient given to seal for.
    #[error("no recipient: an archive is sealed for at least one public key or shared key")]
    NoRecipients,
    /// A public (unencrypted) archive was asked for together with recipients.
    #[error("a public archive has no recipients, and {recipients} recipient(s) were given")]
    PublicWithRecipients {
        /// How many recipients were given.
        recipients: usize,
    },
    /// Too many recipients.
    #[error("{found} recipients, at most {max}")]
    TooManyRecipients {
        /// Given.
        found: usize,
        /// Limit.
        max: usize,
    },
    /// No input file.
    #[error("no input files (directories given hold no regular file)")]
    NoInputs,
    /// An input that is not a regular file or directory (symlink inside a directory, device…).
    #[error("{path}: unsupported input ({kind})")]
    UnsupportedInput {
        /// The input.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// Two inputs map to the same archive path.
    #[error("two inputs map to the archive path {path:?}")]
    DuplicateInput {
        /// The archive path.
        path: String,
    },
    /// `-` names standard input or output, and that is a terminal: an archive is binary, and no
    /// person types one.
    #[error("standard {stream} is a terminal, and an archive is binary")]
    StreamIsTerminal {
        /// `input` or `output`.
        stream: &'static str,
    },
    /// Both an identity and a shared key were given to open one archive.
    #[error("two keys were given to open the archive: an identity and a shared key")]
    TwoOpeningKeys,
    /// Opening needs a key, and none was given.
    #[error("no key to open the archive was given")]
    NoOpeningKey,
    /// `-o -` given to a command whose output standard output cannot hold.
    #[error("this command writes {writes}, which standard output cannot hold")]
    NoStreamOutput {
        /// What the command writes.
        writes: &'static str,
    },
    /// An input changed while it was being sealed.
    #[error("{path}: changed while being sealed")]
    InputChanged {
        /// The input.
        path: PathBuf,
    },
    /// A bad expiry or time argument.
    #[error("invalid time {value:?}: {detail}")]
    InvalidTime {
        /// What was given.
        value: String,
        /// Why it is refused.
        detail: String,
    },
    /// A compression choice that is not one (an unknown name, a zstd level out of range).
    #[error("invalid compression {value:?}: {detail}")]
    InvalidCompression {
        /// What was given.
        value: String,
        /// Why.
        detail: String,
    },
    /// A metadata argument is malformed.
    #[error("invalid metadata {value:?}: {detail}")]
    InvalidMetadata {
        /// What was given.
        value: String,
        /// Why.
        detail: String,
    },
}

/// Any modelseal error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed archive bytes.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Key file problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Signature or integrity refusal.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Key unwrap or decryption refusal.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// Refusal of the decrypted contents.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Bad request.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// Model-level refusal.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Trust-policy or anti-rollback refusal.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// OMS bundle or model refusal.
    #[error(transparent)]
    Oms(#[from] OmsError),
    /// OCI registry exchange failure or refusal.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// A PKCS#11 token key could not be used.
    #[error(transparent)]
    Pkcs11(#[from] Pkcs11Error),
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error with what was being done (a typed error that travelled through `std::io` is
    /// returned as itself).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        // Errors raised inside our own readers travel through `std::io` as a boxed `Error`;
        // unwrap them so the caller sees the typed refusal, not an I/O error.
        match source.get_ref().and_then(|e| e.downcast_ref::<Boxed>()) {
            Some(_) => {
                let inner = source.into_inner().expect("checked above");
                match inner.downcast::<Boxed>() {
                    Ok(b) => b.0,
                    Err(other) => Error::Io {
                        context: context.into(),
                        source: std::io::Error::other(other),
                    },
                }
            }
            None => Error::Io {
                context: context.into(),
                source,
            },
        }
    }

    /// Wraps this error to travel through an `std::io::Read`/`Write` implementation.
    pub(crate) fn into_io(self) -> std::io::Error {
        match self {
            Error::Io { source, .. } => source,
            other => std::io::Error::other(Boxed(other)),
        }
    }

    /// What kind of failure this is: a check that refused (CLI exit code 1, which area refused),
    /// a request that cannot be carried out as given, or the operating system's error (both exit
    /// code 2). Frontends choose exit codes and exception classes from this, never by matching
    /// variants themselves.
    pub fn kind(&self) -> ErrorKind {
        let refusal = match self {
            Error::Io { .. } => return ErrorKind::Io,
            Error::Format(_) => Area::Format,
            Error::Key(KeyError::Exists { .. } | KeyError::EmptyTrustStore { .. }) => {
                return ErrorKind::Usage
            }
            Error::Key(_) => Area::Key,
            Error::Verify(_) => Area::Verify,
            Error::Decrypt(_) => Area::Decrypt,
            Error::Content(_) => Area::Content,
            Error::Trust(_) => Area::Trust,
            Error::Model(
                ModelError::BadInput { .. }
                | ModelError::Training { .. }
                | ModelError::UnknownProfile { .. }
                | ModelError::InvalidGlobalEntry { .. },
            ) => return ErrorKind::Usage,
            Error::Model(_) => Area::Model,
            Error::Usage(
                UsageError::OutputExists { .. }
                | UsageError::OutputNotReplaceable { .. }
                | UsageError::OutputIsInput { .. }
                | UsageError::SignatureInsideOutput { .. }
                | UsageError::InputChanged { .. },
            ) => Area::Output,
            Error::Usage(_) => return ErrorKind::Usage,
            Error::Oms(e) => return e.kind(),
            Error::Oci(e) => return e.kind(),
            Error::Pkcs11(_) => return ErrorKind::Usage,
        };
        ErrorKind::Refusal(refusal)
    }

    /// True when a check failed (CLI exit code 1); false for usage and I/O errors (exit code 2).
    pub fn is_refusal(&self) -> bool {
        matches!(self.kind(), ErrorKind::Refusal(_))
    }
}

/// The three kinds of [`Error`] ([`Error::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A check refused the input: nothing of it may be used.
    Refusal(Area),
    /// The request cannot be carried out as given (a missing or conflicting argument, a bad
    /// value, an input that breaks a limit of the format).
    Usage,
    /// The operating system refused a read or write.
    Io,
}

/// Which check refused ([`ErrorKind::Refusal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// The archive's bytes do not follow FORMAT.md.
    Format,
    /// A key file is damaged, mistyped or unsafe.
    Key,
    /// A signature, digest, size or expiry check.
    Verify,
    /// Key unwrap or decryption.
    Decrypt,
    /// The decrypted contents.
    Content,
    /// The trust policy or anti-rollback state.
    Trust,
    /// The model-level checks (globals, versions, requirements, typed models).
    Model,
    /// The output would replace something it must not, or an input changed under the writer.
    Output,
}
