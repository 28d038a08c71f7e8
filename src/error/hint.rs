//! The one-line hint that follows every error, chosen here once for every frontend.
//!
//! Which hint fits which error is a rule of the library; what an option is called is the
//! frontend's: the CLI says `--force`, the Python package `force=True`. A hint names an option
//! only through a [`Term`], which the frontend's [`Vocabulary`] spells.

use super::{
    DecryptError, Error, FormatError, KeyError, ModelError, OciError, OmsError, Pkcs11Error,
    TrustError, UsageError, VerifyError,
};

/// An option or command a hint may name: each frontend spells it its own way. Not
/// `non_exhaustive`: a new term must be spelled by every frontend before it compiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    /// Replace an existing output (`--force`, `force=True`).
    Force,
    /// The recipients' public keys (`-r RECIPIENT.pub`, `recipients=`).
    Recipients,
    /// A shared symmetric key (`--shared-key FILE`, `shared_key=`).
    SharedKey,
    /// The opener's secret key (`-i IDENTITY.key`, `identity=`).
    Identity,
    /// The signer's secret key (`-k KEY`, `signing_key=`).
    SigningKey,
    /// The trusted signers' public keys (`-t TRUST`, `trust=`).
    Trust,
    /// How a shared key is made (`modelseal keygen --shared`, `modelseal.keygen_shared()`).
    KeygenShared,
    /// The prefix of new key files (`-o PREFIX`, `prefix`).
    KeyPrefix,
    /// The allowed pickle globals (`--allow-globals`, `allow_globals=`).
    AllowGlobals,
    /// Skipping the anti-rollback state (`--no-state`, `no_state=True`).
    NoState,
    /// A relaxed library-version comparison.
    VersionPolicy,
    /// How a trusted key is added to the trust directory.
    TrustAdd,
    /// How a second signer co-signs an archive (`modelseal sign --add`).
    CoSign,
    /// Opening an archive's files without the globals check, to inspect them by hand.
    OpenUnchecked,
    /// An output directory, for a command whose output is a directory.
    OutputDir,
    /// Sending an archive to standard output.
    StreamOut,
    /// Reading an archive from standard input.
    StreamIn,
    /// Where the policy format and the options are documented.
    TrustHelp,
    /// The forms an expiry may take.
    ExpiryForms,
    /// The compression choices.
    CompressionForms,
    /// Sealing a public (signed, unencrypted) archive (`--public`, `public=True`).
    Public,
    /// Signing the files as an OMS bundle too when sealing (`seal --oms-key`).
    OmsKey,
    /// Speaking plain HTTP to a registry that is not on the loopback interface
    /// (`--plain-http`).
    PlainHttp,
    /// Creating a key pair on a PKCS#11 token (`modelseal keygen --pkcs11 URI`).
    TokenKeygen,
    /// The frontend's general help.
    Help,
}

impl Term {
    /// Every term, for tests that check a vocabulary is complete and in its frontend's words.
    pub const ALL: [Term; 25] = [
        Term::Force,
        Term::Recipients,
        Term::SharedKey,
        Term::Identity,
        Term::SigningKey,
        Term::Trust,
        Term::KeygenShared,
        Term::KeyPrefix,
        Term::AllowGlobals,
        Term::NoState,
        Term::VersionPolicy,
        Term::TrustAdd,
        Term::CoSign,
        Term::OpenUnchecked,
        Term::OutputDir,
        Term::StreamOut,
        Term::StreamIn,
        Term::TrustHelp,
        Term::ExpiryForms,
        Term::CompressionForms,
        Term::Public,
        Term::OmsKey,
        Term::PlainHttp,
        Term::TokenKeygen,
        Term::Help,
    ];
}

/// A frontend's names for the options and commands hints refer to.
pub trait Vocabulary {
    /// How this frontend names `term`.
    fn term(&self, term: Term) -> &'static str;
}

fn pkcs11_hint(e: &Pkcs11Error, names: &dyn Vocabulary) -> String {
    let t = |term| names.term(term);
    match e {
        Pkcs11Error::InvalidUri { .. } => {
            "write the key as pkcs11:token=LABEL;object=LABEL?module-path=/path/to/module.so \
             (keys/README.md)"
                .into()
        }
        Pkcs11Error::PinValueInUri => {
            "put the PIN in a file (mode 0600) and name it with pin-source=file:/path in the URI, \
             or in MODELSEAL_PKCS11_PIN_FILE"
                .into()
        }
        Pkcs11Error::NoModule { .. } => {
            "add module-path=/path/to/module.so to the URI's query, or set MODELSEAL_PKCS11_MODULE"
                .into()
        }
        Pkcs11Error::NoPinSource { .. } | Pkcs11Error::EmptyPin { .. } => {
            "name a file holding the token's user PIN (mode 0600) with pin-source=file:/path in \
             the URI, or in MODELSEAL_PKCS11_PIN_FILE"
                .into()
        }
        Pkcs11Error::ModuleNotLoadable { .. } => {
            "check the module path (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so) and that it is \
             installed for this architecture"
                .into()
        }
        Pkcs11Error::TokenAbsent { .. } => {
            "check the URI's token label against the slots `pkcs11-tool` lists, and that the token \
             is plugged in and initialised"
                .into()
        }
        Pkcs11Error::WrongPin { .. } => {
            "fix the PIN file; a token locks its user PIN after a few wrong tries".into()
        }
        Pkcs11Error::ObjectNotFound { .. } | Pkcs11Error::AmbiguousObject { .. } => format!(
            "check the URI's object label against the objects `pkcs11-tool` lists, or create the key \
             with {}",
            t(Term::TokenKeygen)
        ),
        Pkcs11Error::ObjectExists { .. } => {
            "choose another object label; modelseal never replaces a key on a token".into()
        }
        Pkcs11Error::MechanismUnsupported { .. } | Pkcs11Error::NotEd25519 { .. } => {
            "use a token with Ed25519 (CKM_EDDSA, PKCS#11 3.0), such as SoftHSM2 2.6 or newer"
                .into()
        }
        Pkcs11Error::BadSignature { .. } | Pkcs11Error::Token { .. } => {
            "check the token and its module; the module's own log may say more".into()
        }
    }
}

/// What a model name may be.
pub(crate) const MODEL_NAME_RULE: &str =
    "model names are 1-128 characters of letters, digits, '.', '_', '/' and '-'";
/// What a model version may be.
pub(crate) const MODEL_VERSION_RULE: &str = "model versions are semver, like 1.2.0";

impl Error {
    /// A one-line suggestion for the person who saw this error, naming options as `names` does.
    pub fn hint(&self, names: &dyn Vocabulary) -> String {
        let t = |term| names.term(term);
        match self {
            Error::Format(FormatError::UnsupportedVersion { .. }) => {
                "upgrade modelseal, or ask the sender for an archive in a version this build reads".into()
            }
            Error::Format(FormatError::InvalidModelName { .. }) => MODEL_NAME_RULE.into(),
            Error::Format(FormatError::InvalidModelVersion { .. }) => MODEL_VERSION_RULE.into(),
            Error::Format(FormatError::BadMagic { .. }) => {
                "is this file a .mseal archive? it may be another format or damaged in transfer".into()
            }
            Error::Format(_) => {
                "the archive is damaged or was altered; get a fresh copy from the signer".into()
            }
            Error::Key(KeyError::InsecurePermissions { .. }) => {
                "run `chmod 600` on the secret key file".into()
            }
            Error::Key(KeyError::WrongType { .. }) => format!(
                "give a public .pub file as {} or {}, a secret .key file as {} or {}, and a shared key \
                 (made by {}) as {}",
                t(Term::Trust),
                t(Term::Recipients),
                t(Term::SigningKey),
                t(Term::Identity),
                t(Term::KeygenShared),
                t(Term::SharedKey)
            ),
            Error::Key(KeyError::Exists { .. }) => format!(
                "choose another {}; modelseal never overwrites a key",
                t(Term::KeyPrefix)
            ),
            Error::Key(KeyError::EmptyTrustStore { .. }) => {
                "put the signers' .pub files in the trust directory".into()
            }
            Error::Key(KeyError::WrongPassphrase { .. }) => {
                "type the key's passphrase again (or fix MODELSEAL_PASSPHRASE_FILE); if it is right, \
                 the key file was altered: restore it from a backup"
                    .into()
            }
            Error::Key(KeyError::WorkFactor { .. }) => {
                "this key file was not written by modelseal, or was altered; re-encrypt the key with \
                 `modelseal key passwd` from a trusted copy"
                    .into()
            }
            Error::Key(KeyError::SigningOnly { .. }) => format!(
                "a token's signing-only .pub verifies signatures ({}) but cannot receive archives; \
                 give each recipient's own .pub as {}",
                t(Term::Trust),
                t(Term::Recipients)
            ),
            Error::Pkcs11(e) => pkcs11_hint(e, names),
            Error::Key(_) => "the key file is damaged or mistyped; copy it again from its owner".into(),
            Error::Usage(UsageError::NoPassphrase { .. }) => {
                "run it in a terminal to be asked, or name a file holding the passphrase (mode 0600) \
                 in MODELSEAL_PASSPHRASE_FILE"
                    .into()
            }
            Error::Usage(UsageError::PassphraseMismatch) => {
                "type the same passphrase twice".into()
            }
            Error::Usage(UsageError::EmptyPassphrase) => {
                "choose a passphrase (a few random words), or keep the key unencrypted with mode 0600".into()
            }
            Error::Verify(VerifyError::UntrustedSigner { .. }) => format!(
                "is the signer's key in your trust store? add its .pub to {} only if you trust that \
                 person",
                t(Term::Trust)
            ),
            Error::Verify(VerifyError::Expired { .. }) => {
                "ask the signer for a fresh archive; an expired one may have been withheld on purpose".into()
            }
            Error::Verify(VerifyError::Truncated { .. }) => {
                "the download or copy was incomplete; fetch the archive again".into()
            }
            Error::Verify(_) => {
                "the archive was altered after signing; do not use it, get a fresh copy from the signer".into()
            }
            Error::Decrypt(DecryptError::NoMatchingRecipient { key_kind: "shared key", .. }) => {
                "the archive was not sealed for this shared key; ask the sender which key it was sealed for".into()
            }
            Error::Decrypt(DecryptError::NoMatchingRecipient { .. }) => {
                "the archive was not sealed for this key; ask the sender to add your .pub as a recipient".into()
            }
            Error::Decrypt(_) => {
                "the archive was altered or sealed with a faulty tool; do not use it".into()
            }
            Error::Content(_) => {
                "the signer's archive holds unsafe or inconsistent contents; do not use it and tell the signer".into()
            }
            Error::Usage(UsageError::OutputExists { .. }) => format!(
                "choose another output path, or pass {} to replace it",
                t(Term::Force)
            ),
            Error::Usage(UsageError::OutputIsInput { .. }) => {
                "write the archive somewhere other than its inputs".into()
            }
            Error::Usage(UsageError::SignatureInsideOutput { .. }) => {
                "write the OMS signature outside the opened directory: model_signing would count \
                 it as an extra file"
                    .into()
            }
            Error::Usage(UsageError::SealInput { hint, .. }) => (*hint).into(),
            Error::Usage(UsageError::OutputNotReplaceable { .. }) => format!(
                "choose another output path: {} replaces only what modelseal wrote there before, \
                 never a device, FIFO, socket or link",
                t(Term::Force)
            ),
            Error::Usage(UsageError::NoRecipients) => format!(
                "give the recipients' public keys as {}, or a shared key as {}; to publish the \
                 model signed but unencrypted, give {}",
                t(Term::Recipients),
                t(Term::SharedKey),
                t(Term::Public)
            ),
            Error::Usage(UsageError::PublicWithRecipients { .. }) => format!(
                "a public archive is not encrypted: give {} alone, or the recipients ({}, {}) \
                 without it",
                t(Term::Public),
                t(Term::Recipients),
                t(Term::SharedKey)
            ),
            Error::Usage(UsageError::TooManyRecipients { .. }) => format!(
                "seal for fewer recipients, or give a group one shared key ({}) instead",
                t(Term::SharedKey)
            ),
            Error::Usage(UsageError::InputChanged { .. }) => {
                "stop whatever is writing the input and seal again".into()
            }
            Error::Usage(UsageError::TwoOpeningKeys) => format!(
                "give one: your identity ({}) or the shared key ({})",
                t(Term::Identity),
                t(Term::SharedKey)
            ),
            Error::Usage(UsageError::NoOpeningKey) => format!(
                "give your identity ({}, or MODELSEAL_IDENTITY_FILE) or a shared key ({}); ask the \
                 sender to seal for your .pub if you have no key it accepts",
                t(Term::Identity),
                t(Term::SharedKey)
            ),
            Error::Usage(UsageError::NoStreamOutput { .. }) => t(Term::OutputDir).into(),
            Error::Usage(UsageError::StreamIsTerminal { stream: "output" }) => {
                t(Term::StreamOut).into()
            }
            Error::Usage(UsageError::StreamIsTerminal { .. }) => t(Term::StreamIn).into(),
            Error::Usage(UsageError::InvalidTime { .. }) => format!(
                "give an expiry after the creation time: {}",
                t(Term::ExpiryForms)
            ),
            Error::Usage(UsageError::InvalidCompression { .. }) => t(Term::CompressionForms).into(),
            Error::Usage(_) => format!("see {}", t(Term::Help)),
            Error::Io { source, .. } => match source.raw_os_error() {
                Some(28) => "free some space on that file system (or write elsewhere) and run it again; nothing partial was kept",
                Some(30) => "that file system is read-only: write the output somewhere else",
                Some(2) => "check the path: it does not exist",
                Some(13) | Some(1) => "check the file's and its directory's permissions",
                Some(21) => "that path is a directory: give a file",
                Some(20) => "a component of that path is not a directory",
                Some(32) => "the program reading the output stopped early: what it received is incomplete; run it again",
                _ => "check the path and its permissions",
            }
            .into(),
            Error::Model(
                ModelError::LibraryVersionMismatch { .. } | ModelError::EncodingMismatch { .. },
            ) => format!(
                "load it with a build that matches, ask the author to re-seal it, or choose {} \
                 knowingly",
                t(Term::VersionPolicy)
            ),
            Error::Model(ModelError::DisallowedGlobal { .. }) => format!(
                "do not load it; list those exact names in {} only if you trust their code",
                t(Term::AllowGlobals)
            ),
            Error::Model(ModelError::UncheckedFile { .. }) => format!(
                "ask the signer for a plain pickle or a safe format, or open the files without the \
                 globals check ({}) and inspect them by hand",
                t(Term::OpenUnchecked)
            ),
            Error::Model(ModelError::UnknownProfile { .. } | ModelError::InvalidGlobalEntry { .. }) => {
                format!(
                    "{} takes @sklearn (or another shipped profile), @FILE, exact dotted names such \
                     as mypkg.MyEstimator, or pkg.* for a whole package",
                    t(Term::AllowGlobals)
                )
            }
            Error::Model(ModelError::NoProfileForVersion { .. }) => format!(
                "install the scikit-learn release the model was built with (or a modelseal release \
                 with its profile), or list the exact names it needs in {}",
                t(Term::AllowGlobals)
            ),
            Error::Model(
                ModelError::RequirementMismatch { .. } | ModelError::RequirementMissing { .. },
            ) => "use a runtime that matches the model's requirements, or a model built for yours".into(),
            Error::Model(ModelError::BadInput { .. }) => {
                "give one number per feature, comma-separated, no NaN".into()
            }
            Error::Model(_) => "this archive does not hold the model you asked for".into(),
            Error::Trust(TrustError::WritableByOthers { .. } | TrustError::UnsafeParent { .. }) => {
                "run `chmod go-w` on it (and check who else could have changed it)".into()
            }
            Error::Trust(TrustError::OwnedByOther { .. }) => {
                "keep the trust store in files you own (`chown` it, or copy the keys you checked into your own directory)".into()
            }
            Error::Trust(TrustError::NoTrustStore) => format!(
                "give the signers' .pub files as {}, set MODELSEAL_TRUST, or add keys with {}",
                t(Term::Trust),
                t(Term::TrustAdd)
            ),
            Error::Trust(TrustError::UntrustedForModel { .. }) => {
                "this key may sign only the models its policy scope names; ask the right signer".into()
            }
            Error::Trust(TrustError::TooFewSignatures { .. }) => format!(
                "ask more trusted signers to co-sign it with {}",
                t(Term::CoSign)
            ),
            Error::Trust(TrustError::Rollback { .. } | TrustError::Equivocation { .. }) => {
                "someone may be replaying an old or forked model; fetch the latest from the signer".into()
            }
            Error::Trust(TrustError::BelowMinimumVersion { .. }) => {
                "fetch a newer version of the model".into()
            }
            Error::Trust(TrustError::StateCorrupted { .. }) => format!(
                "inspect or restore the state file; modelseal never resets it silently ({} skips it \
                 knowingly)",
                t(Term::NoState)
            ),
            Error::Trust(TrustError::Revoked { .. }) => {
                "the signing key was revoked by your trust policy ([[revoked]] in policy.toml): do \
                 not use this archive; ask the publisher for one signed by a current key"
                    .into()
            }
            Error::Trust(TrustError::KeyNotValidAt { .. }) => {
                "the archive was made outside its signing key's validity window (not_before / \
                 not_after in policy.toml); ask for one signed by a key valid at that time"
                    .into()
            }
            Error::Trust(_) => format!("see {} for the policy format", t(Term::TrustHelp)),
            Error::Oms(OmsError::NotCarried { .. }) => format!(
                "ask the signer to seal with {}, or sign the opened directory yourself with \
                 `modelseal oms sign`",
                t(Term::OmsKey)
            ),
            Error::Oms(e) => oms_hint(e).into(),
            Error::Oci(OciError::Unreachable { .. }) => format!(
                "check the registry's host and port and that it is running; a registry that \
                 speaks plain HTTP off the loopback interface needs {}",
                t(Term::PlainHttp)
            ),
            Error::Oci(e) => oci_hint(e).into(),
        }
    }
}

/// The hint for an OCI registry error that names no option.
fn oci_hint(e: &OciError) -> &'static str {
    match e {
        OciError::InvalidReference { .. } => {
            "a reference is HOST[:PORT]/REPO[:TAG] or HOST[:PORT]/REPO@sha256:HEX, \
             like registry.example:5000/models/iris:1.0.0"
        }
        OciError::Unauthorized { .. } => {
            "log in to the registry (`docker login` or `oras login` write ~/.docker/config.json, \
             or DOCKER_CONFIG names its directory); credential helpers are not read"
        }
        OciError::NotFound { .. } => "check the repository and tag; the registry has no such artifact",
        OciError::DigestMismatch { .. } | OciError::SizeMismatch { .. } => {
            "the registry's copy is damaged or was altered; nothing was kept; ask the publisher to push it again"
        }
        OciError::WrongArtifactType { .. } => {
            "this tag holds another kind of artifact; pull it with the tool that made it"
        }
        OciError::BadManifest { .. } | OciError::TooLarge { .. } => {
            "the registry served something that is not a modelseal artifact; nothing was kept"
        }
        OciError::Registry { .. } | OciError::Unreachable { .. } => {
            "the registry refused the request; check that it implements the OCI distribution spec"
        }
        OciError::DockerConfig { .. } => {
            "fix or move the Docker config file (~/.docker/config.json, or DOCKER_CONFIG/config.json)"
        }
    }
}

/// The hint for an OMS refusal: no option is named, so no term is needed.
fn oms_hint(e: &OmsError) -> &'static str {
    match e {
        OmsError::BundleTooLarge { .. } => {
            "is this file an OMS signature? a bundle is a small JSON file; get it again from the signer"
        }
        OmsError::Decode { .. }
        | OmsError::WrongType { .. }
        | OmsError::Count { .. }
        | OmsError::UnsafeName { .. }
        | OmsError::DuplicateResource { .. } => {
            "the signature file is damaged or not an OMS v1.0 bundle; get it again from the signer"
        }
        OmsError::Unsupported { .. } => {
            "ask the signer to sign with a key, file by file, with SHA-256 (`model_signing sign key`'s default)"
        }
        OmsError::KeyMismatch { .. } => {
            "verify with the signer's own public key; if it is the right one, the signature was made by someone else"
        }
        OmsError::SignatureEncoding { .. }
        | OmsError::BadSignature { .. }
        | OmsError::SubjectDigestMismatch { .. } => {
            "the signature or its statement was altered, or made with another key; do not use the model"
        }
        OmsError::FileChanged { .. } | OmsError::FileMissing { .. } | OmsError::FileExtra { .. } => {
            "the model differs from what was signed; do not use it, get a fresh copy from the signer"
        }
        OmsError::IgnoresModelFiles { .. } => {
            "the signer's bundle leaves model files unchecked; do not use the model and tell the signer"
        }
        OmsError::UnsupportedFile { .. } => {
            "replace the link or special file by a regular file, or move it out of the model directory"
        }
        OmsError::UnrepresentableName { .. } => {
            "rename the file to a plain relative name (UTF-8, no backslash, colon or control character)"
        }
        OmsError::TooManyFiles { .. } => "sign a smaller directory, or pack the small files into one",
        OmsError::NotCarried { .. } => "seal with an OMS key to carry a bundle",
        OmsError::BadKey { .. } => {
            "give a P-256 (prime256v1) EC key in PEM, SEC1 or PKCS#8 for the private key and SPKI for the public key, as `openssl ecparam` and `openssl ec` write them"
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Spells every term as a marker, so that what is left is the library's own wording.
    struct Markers;

    impl Vocabulary for Markers {
        fn term(&self, _: Term) -> &'static str {
            "<TERM>"
        }
    }

    /// One error of every variant a frontend can meet.
    fn samples() -> Vec<Error> {
        let p = || PathBuf::from("x");
        let s = || String::from("x");
        let io = |code| Error::io("x", std::io::Error::from_raw_os_error(code));
        let mut v: Vec<Error> = vec![
            FormatError::BadMagic { found: s() }.into(),
            KeyError::SigningOnly { path: p() }.into(),
            Pkcs11Error::PinValueInUri.into(),
            Pkcs11Error::ObjectNotFound {
                token: s(),
                object: s(),
                class: "private",
            }
            .into(),
            Pkcs11Error::WrongPin { token: s() }.into(),
            Pkcs11Error::NoModule { token: s() }.into(),
            FormatError::UnsupportedVersion {
                found: 9,
                supported: 1,
            }
            .into(),
            FormatError::Truncated { what: "x" }.into(),
            FormatError::InvalidModelName {
                name: s(),
                reason: "x",
            }
            .into(),
            FormatError::InvalidModelVersion {
                version: s(),
                detail: s(),
            }
            .into(),
            FormatError::InvalidManifest {
                rule: crate::error::ManifestRule::BadName,
                detail: s(),
            }
            .into(),
            KeyError::InsecurePermissions {
                path: p(),
                mode: 0o644,
            }
            .into(),
            KeyError::WrongType {
                path: p(),
                expected: "x",
                found: s(),
            }
            .into(),
            KeyError::Exists { path: p() }.into(),
            KeyError::EmptyTrustStore { path: p() }.into(),
            KeyError::Malformed {
                path: p(),
                detail: s(),
            }
            .into(),
            VerifyError::UntrustedSigner { key_id: s() }.into(),
            VerifyError::Expired {
                expired: s(),
                now: s(),
            }
            .into(),
            VerifyError::Truncated {
                expected: 2,
                found: 1,
            }
            .into(),
            VerifyError::TrailingData.into(),
            DecryptError::NoMatchingRecipient {
                stanzas: 1,
                key_kind: "x",
            }
            .into(),
            DecryptError::KeyCommitmentMismatch.into(),
            crate::error::ContentError::DuplicateEntry { path: s() }.into(),
            UsageError::OutputExists { path: p() }.into(),
            UsageError::OutputNotReplaceable {
                path: p(),
                found: "x",
                replaces: "x",
            }
            .into(),
            UsageError::SealInput {
                detail: s(),
                hint: "x",
            }
            .into(),
            UsageError::OutputIsInput { path: p() }.into(),
            UsageError::SignatureInsideOutput {
                signature: p(),
                dir: p(),
            }
            .into(),
            UsageError::NoRecipients.into(),
            UsageError::PublicWithRecipients { recipients: 2 }.into(),
            UsageError::TooManyRecipients { found: 9, max: 1 }.into(),
            UsageError::NoInputs.into(),
            UsageError::DuplicateInput { path: s() }.into(),
            UsageError::StreamIsTerminal { stream: "output" }.into(),
            UsageError::StreamIsTerminal { stream: "input" }.into(),
            UsageError::TwoOpeningKeys.into(),
            UsageError::NoOpeningKey.into(),
            UsageError::NoStreamOutput { writes: "x" }.into(),
            UsageError::InputChanged { path: p() }.into(),
            UsageError::InvalidTime {
                value: s(),
                detail: s(),
            }
            .into(),
            UsageError::InvalidMetadata {
                value: s(),
                detail: s(),
            }
            .into(),
            ModelError::DisallowedGlobal {
                path: s(),
                globals: vec![s()],
            }
            .into(),
            ModelError::UncheckedFile {
                path: s(),
                detail: s(),
            }
            .into(),
            ModelError::UnknownProfile { name: s() }.into(),
            ModelError::InvalidGlobalEntry {
                entry: s(),
                detail: s(),
            }
            .into(),
            ModelError::BadInput {
                row: 1,
                detail: s(),
            }
            .into(),
            TrustError::NoTrustStore.into(),
            TrustError::WritableByOthers {
                path: p(),
                mode: 0o777,
            }
            .into(),
            TrustError::BadPolicy {
                path: p(),
                detail: s(),
            }
            .into(),
            TrustError::StateCorrupted {
                path: p(),
                detail: s(),
            }
            .into(),
            OmsError::FileExtra { path: s() }.into(),
            OmsError::IgnoresModelFiles { path: s() }.into(),
            OmsError::NotCarried {
                model: s(),
                version: s(),
            }
            .into(),
            OmsError::BadKey {
                path: p(),
                expected: "x",
                detail: s(),
            }
            .into(),
            OmsError::UnsupportedFile {
                path: p(),
                kind: "x",
            }
            .into(),
        ];
        for code in [1, 2, 13, 20, 21, 28, 30, 32, 5] {
            v.push(io(code));
        }
        v
    }

    /// A hint names options only through terms: no CLI flag (`-r`, `--force`) and no Python
    /// argument (`force=`) is written into the library's own words.
    #[test]
    fn hints_name_options_only_through_terms() {
        for e in samples() {
            let hint = e.hint(&Markers);
            assert!(!hint.is_empty() && !hint.contains('\n'), "{e:?}: {hint:?}");
            for word in hint.split(|c: char| c.is_whitespace() || "(),;`".contains(c)) {
                let flag = word.starts_with('-') && word.len() > 1 && word != "-";
                assert!(!flag, "{e:?}: the hint {hint:?} names the flag {word:?}");
                assert!(
                    !word.ends_with('='),
                    "{e:?}: the hint {hint:?} names {word:?}"
                );
            }
        }
    }
}
