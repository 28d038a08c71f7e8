//! The command line: every command, flag and argument, as clap parses them, and their loading
//! into library values (keys, trust store, state).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use modelseal::keys::OpeningKey;
use modelseal::open::ReadOptions;
use modelseal::trust::TrustStore;
use modelseal::Error;

#[derive(Parser)]
#[command(
    name = "modelseal",
    version,
    about = "Seal a model and its manifest into one encrypted, signed archive; refuse anything that fails a check"
)]
pub(crate) struct Cli {
    /// No progress bar.
    #[arg(short = 'q', long, global = true)]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the whole story in a temporary directory: train, seal, verify, open, predict, refuse.
    Demo,
    /// Generate a key pair (PREFIX.key, secret, mode 0600; PREFIX.pub), a shared key, or a key
    /// pair on a PKCS#11 token (PREFIX.pub only).
    Keygen {
        /// Output prefix.
        #[arg(short = 'o', long = "output", value_name = "PREFIX")]
        output: PathBuf,
        /// Generate a symmetric shared key (PREFIX.key) for CI recipients.
        #[arg(long, conflicts_with = "passphrase")]
        shared: bool,
        /// Create a non-extractable Ed25519 key pair on the PKCS#11 token this RFC 7512 URI
        /// names (pkcs11:token=LABEL;object=LABEL?module-path=...&pin-source=file:...); writes
        /// its signing-only PREFIX.pub. The PIN comes from pin-source or
        /// MODELSEAL_PKCS11_PIN_FILE, the module from module-path or MODELSEAL_PKCS11_MODULE.
        #[arg(long, value_name = "URI", conflicts_with_all = ["shared", "passphrase"])]
        pkcs11: Option<String>,
        /// Encrypt the secret key under a passphrase (scrypt, AES-256-GCM), asked twice on the
        /// terminal, or read from the file MODELSEAL_PASSPHRASE_FILE names. Every command that
        /// reads the key then asks for it the same way.
        #[arg(long)]
        passphrase: bool,
    },
    /// Export the (signing-only) public key of a key on a PKCS#11 token.
    Pubkey {
        /// The key's RFC 7512 URI (pkcs11:token=LABEL;object=LABEL?module-path=...).
        #[arg(value_name = "URI")]
        uri: String,
        /// The new .pub file (never overwritten).
        #[arg(short = 'o', long = "output", value_name = "FILE.pub")]
        output: PathBuf,
    },
    /// Manage a secret key file.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Seal model files into an encrypted, signed archive.
    Seal(SealArgs),
    /// Check signature, trust, expiry and the full payload digest; needs no decryption key (give
    /// one to also decrypt and show the manifest; a public archive's manifest is always checked
    /// and shown).
    Verify {
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        key: OptionalKey,
        /// Also check the model files as `open --allow-globals` does (a public archive needs no
        /// key for it; an encrypted one needs -i or --shared-key). The files are written to a
        /// private temporary directory and removed.
        #[arg(
            long = "allow-globals",
            value_name = "@sklearn|@FILE|NAME|PKG.*[,...]",
            value_delimiter = ','
        )]
        allow_globals: Option<Vec<String>>,
        /// Refuse unless the model requires exactly NAME==VERSION; repeatable.
        #[arg(long = "expect", value_name = "NAME==VERSION")]
        expect: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// The archive; `-` reads it from standard input (`./-` for a file named -).
        archive: PathBuf,
    },
    /// Verify, decrypt and extract an archive; nothing is written unless every check passes.
    Open {
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        key: OptionalKey,
        /// Output directory (must not exist, unless --force).
        #[arg(short = 'o', long = "output", value_name = "OUT_DIR")]
        output: PathBuf,
        /// Replace an existing output directory (and --oms-signature file).
        #[arg(long)]
        force: bool,
        /// Write the OpenSSF Model Signing bundle the archive carries (sealed with --oms-key) to
        /// FILE, for `model_signing verify key --signature FILE OUT_DIR`.
        #[arg(long = "oms-signature", value_name = "FILE")]
        oms_signature: Option<PathBuf>,
        /// Release pickles only if every global they import is allowed, and other files only if
        /// they are a recognised safe format. Comma-separated: @sklearn (the shipped list for the
        /// scikit-learn release the model records), @FILE (a list, one entry per line), exact
        /// names (mypkg.MyEstimator), or pkg.* for a whole package (warned about).
        #[arg(
            long = "allow-globals",
            value_name = "@sklearn|@FILE|NAME|PKG.*[,...]",
            value_delimiter = ','
        )]
        allow_globals: Option<Vec<String>>,
        /// Refuse unless the model requires exactly NAME==VERSION; repeatable.
        #[arg(long = "expect", value_name = "NAME==VERSION")]
        expect: Vec<String>,
        /// The archive; `-` reads it from standard input (`./-` for a file named -).
        archive: PathBuf,
    },
    /// Show an archive's header (and manifest, given a key); says UNVERIFIED unless -t verified it.
    Inspect {
        /// Trusted signer keys (.pub files or directories of them).
        #[arg(
            short = 't',
            long = "trust",
            env = "MODELSEAL_TRUST",
            value_name = "TRUST"
        )]
        trust: Vec<PathBuf>,
        #[command(flatten)]
        key: OptionalKey,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// List, per file, every global its pickle imports outside these allowed globals (as
        /// `open --allow-globals` takes them), without releasing anything. Needs -t and -i: the
        /// archive is verified and decrypted in memory first.
        #[arg(
            long = "untrusted",
            value_name = "@sklearn|@FILE|NAME|PKG.*[,...]",
            value_delimiter = ','
        )]
        untrusted: Option<Vec<String>>,
        /// The archive; `-` reads it from standard input (`./-` for a file named -).
        archive: PathBuf,
    },
    /// Add a signature to an existing archive, or write it detached (for k-of-n policies); the
    /// payload is checked, not touched.
    Sign {
        /// Add a signature to the archive's signature block.
        #[arg(
            long,
            required_unless_present = "detached",
            conflicts_with = "detached"
        )]
        add: bool,
        /// Write the signature to FILE instead (FORMAT.md §5.1), leaving the archive unchanged:
        /// `modelseal attach REF FILE` attaches it to the archive in a registry, and `pull`
        /// collects it.
        #[arg(long, value_name = "FILE")]
        detached: Option<PathBuf>,
        /// Replace an existing detached signature file.
        #[arg(long, requires = "detached")]
        force: bool,
        /// The co-signer's secret key, or a pkcs11: URI of a token key.
        #[arg(
            short = 'k',
            long = "key",
            env = "MODELSEAL_SIGNING_KEY_FILE",
            value_name = "KEY.key"
        )]
        key: PathBuf,
        /// The archive (with --add, rewritten in place atomically).
        archive: PathBuf,
    },
    /// Manage a trust directory: trusted signer keys and their model-name scopes.
    Trust {
        /// The trust directory (default: MODELSEAL_TRUST, else the platform config directory).
        #[arg(long, value_name = "DIR", global = true)]
        dir: Option<PathBuf>,
        #[command(subcommand)]
        action: TrustAction,
    },
    /// Train a decision tree (linfa-trees) and seal it with a full manifest.
    Train(TrainArgs),
    /// Remove stale temporaries of modelseal's naming (`.NAME.modelseal-KIND-XXXXXX`) that a
    /// killed run or a crash left; those a running modelseal holds are kept.
    Clean {
        /// List what would be removed; remove nothing.
        #[arg(long = "dry-run")]
        dry_run: bool,
        /// Directories to look in, not below (default: the current directory).
        #[arg(value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Publish a sealed archive to an OCI registry (an OCI 1.1 artifact, its header's public
    /// facts as annotations).
    Push(crate::registry::PushArgs),
    /// Pull an archive from an OCI registry: written only after every check of `verify` passed
    /// (or opened with --open after every check of `open`); a refused download leaves nothing.
    Pull(crate::registry::PullArgs),
    /// Show what a registry says about an artifact (UNVERIFIED annotations), without the blob.
    Ls(crate::registry::LsArgs),
    /// Attach a small file (an OMS bundle, a detached signature) to an archive in a registry, as
    /// an OCI referrer whose subject is the archive's manifest.
    Attach(crate::registry::AttachArgs),
    /// Sign or verify a model as OpenSSF Model Signing (`model_signing` sign/verify key) does.
    Oms {
        #[command(subcommand)]
        action: crate::oms::OmsCommand,
    },
    /// Load a sealed tree after every check passed, and predict.
    Predict {
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        key: OptionalKey,
        /// One input row, comma-separated; repeatable.
        #[arg(long = "input", value_name = "X1,X2,...", allow_hyphen_values = true)]
        input: Vec<String>,
        /// Input rows from a CSV file with a header row.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The archive; `-` reads it from standard input (`./-` for a file named -).
        archive: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum TrustAction {
    /// Trust a signer's .pub, optionally only for model names matching --models patterns.
    Add {
        /// The signer's public key.
        key: PathBuf,
        /// Model-name patterns (`iris-*`, `fraud/*`); repeatable. Default: every model.
        #[arg(long = "models", value_name = "PATTERN")]
        models: Vec<String>,
    },
    /// List trusted keys, their scopes and the signer thresholds.
    List,
    /// Stop trusting a key.
    Remove {
        /// The key id (as `trust list` prints it).
        key_id: String,
    },
    /// Revoke a key (a leaked one): archives it signed are refused, or with --since only those
    /// created at or after that time. Written to the directory's policy.toml.
    Revoke {
        /// The key id (32 hex digits, as `trust list` prints it); it need not be in the directory.
        key_id: String,
        /// Why (shown in every refusal).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Refuse only archives whose signed creation time is at or after this RFC 3339 UTC
        /// time (2026-11-30T00:00:00Z). The creation time is the signer's claim: whoever holds the
        /// leaked key can backdate it, so give --since only if you accept that.
        #[arg(long, value_name = "RFC3339")]
        since: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeyAction {
    /// Change, add or remove the passphrase of a secret key, in place (atomically, mode 0600).
    /// The current passphrase is read as for any use of the key; the new one is asked twice, or
    /// read from the file MODELSEAL_NEW_PASSPHRASE_FILE names.
    Passwd {
        /// The secret key file.
        #[arg(short = 'k', long = "key", value_name = "KEY.key")]
        key: PathBuf,
        /// Remove the passphrase: the key is stored unencrypted (mode 0600).
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Args)]
pub(crate) struct TrustArgs {
    /// Trusted signer keys: a .pub file or a directory of them (with its policy.toml); repeatable.
    /// Default: MODELSEAL_TRUST, else the `modelseal trust` directory.
    #[arg(short = 't', long = "trust", value_name = "TRUST")]
    pub(crate) trust: Vec<PathBuf>,
    /// Anti-rollback state file (default: the per-user state directory).
    #[arg(long, value_name = "FILE", conflicts_with = "no_state")]
    pub(crate) state: Option<PathBuf>,
    /// Do not check or record anti-rollback state.
    #[arg(long = "no-state")]
    pub(crate) no_state: bool,
    /// Refuse a model version below this.
    #[arg(long = "min-version", value_name = "SEMVER")]
    pub(crate) min_version: Option<String>,
}

/// The trust store and the anti-rollback state of one command.
pub(crate) struct Policy {
    pub(crate) store: TrustStore,
    pub(crate) state: Option<modelseal::state::RollbackState>,
    pub(crate) min_version: Option<semver::Version>,
}

impl TrustArgs {
    pub(crate) fn load(&self) -> Result<Policy, Error> {
        let state = modelseal::state::RollbackState::choose(self.state.as_deref(), self.no_state);
        let min_version = self
            .min_version
            .as_deref()
            .map(modelseal::format::manifest::parse_version)
            .transpose()?;
        Ok(Policy {
            store: TrustStore::load(&self.trust)?,
            state,
            min_version,
        })
    }
}

impl Policy {
    pub(crate) fn options(&self) -> ReadOptions<'_> {
        ReadOptions {
            state: self.state.as_ref(),
            min_version: self.min_version.clone(),
            ..ReadOptions::new(&self.store)
        }
    }
}

#[derive(Args)]
pub(crate) struct OptionalKey {
    /// Your identity (a .key file from `keygen`).
    #[arg(
        short = 'i',
        long = "identity",
        env = "MODELSEAL_IDENTITY_FILE",
        value_name = "IDENTITY.key"
    )]
    pub(crate) identity: Option<PathBuf>,
    /// A shared key file (from `keygen --shared`).
    #[arg(
        long = "shared-key",
        env = "MODELSEAL_SHARED_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "identity"
    )]
    pub(crate) shared_key: Option<PathBuf>,
}

impl OptionalKey {
    pub(crate) fn load(&self) -> Result<Option<OpeningKey>, Error> {
        OpeningKey::read(self.identity.as_deref(), self.shared_key.as_deref())
    }
}

#[derive(Args)]
pub(crate) struct SealingArgs {
    /// The author's secret key (a .key file from `keygen`), or a pkcs11: URI of a token key.
    #[arg(
        short = 'k',
        long = "key",
        env = "MODELSEAL_SIGNING_KEY_FILE",
        value_name = "SIGNER.key"
    )]
    pub(crate) key: PathBuf,
    /// A recipient's public key; repeatable.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT.pub")]
    pub(crate) recipients: Vec<PathBuf>,
    /// A shared key file to add as a recipient (for CI).
    #[arg(
        long = "shared-key",
        env = "MODELSEAL_SHARED_KEY_FILE",
        value_name = "FILE"
    )]
    pub(crate) shared_key: Option<PathBuf>,
    /// Seal a public archive: signed, checked and rollback-protected like any other, but stored
    /// in the clear, for no recipient (no -r, no --shared-key); opened and verified with no key.
    #[arg(long)]
    pub(crate) public: bool,
    /// Also sign the model files as an OpenSSF Model Signing bundle with this P-256 key (PEM, as
    /// `openssl ecparam -name prime256v1 -genkey` writes it), carried in the archive; `open
    /// --oms-signature FILE` writes it out for `model_signing verify key`.
    #[arg(
        long = "oms-key",
        env = "MODELSEAL_OMS_KEY_FILE",
        value_name = "EC.pem"
    )]
    pub(crate) oms_key: Option<PathBuf>,
    /// Model name.
    #[arg(long)]
    pub(crate) name: String,
    /// Model version (semver).
    #[arg(long = "model-version", value_name = "SEMVER")]
    pub(crate) model_version: String,
    /// Free text description.
    #[arg(long, default_value = "")]
    pub(crate) description: String,
    /// Metadata K=V; repeatable.
    #[arg(long = "meta", value_name = "K=V")]
    pub(crate) meta: Vec<String>,
    /// Scores: a JSON file holding a flat object of name → number.
    #[arg(long, value_name = "FILE.json")]
    pub(crate) metrics: Option<PathBuf>,
    /// Training data to record by SHA-256 and size (not included).
    #[arg(long = "train-data", value_name = "FILE")]
    pub(crate) train_data: Option<PathBuf>,
    /// Training code to record by SHA-256 and size (not included).
    #[arg(long, value_name = "FILE")]
    pub(crate) source: Option<PathBuf>,
    /// A runtime requirement NAME==VERSION; repeatable.
    #[arg(long = "requires", value_name = "NAME==VERSION")]
    pub(crate) requires: Vec<String>,
    /// Expiry: an RFC 3339 time or a duration such as 90d.
    #[arg(long, value_name = "RFC3339|DURATION")]
    pub(crate) expires: Option<String>,
    /// Replace an existing output.
    #[arg(long)]
    pub(crate) force: bool,
    /// Force the archive to disk before renaming it into place.
    #[arg(long)]
    pub(crate) fsync: bool,
    /// Output archive; `-` writes it to standard output once complete and signed (built first in
    /// an unnamed file in TMPDIR; --force and --fsync do not apply).
    #[arg(short = 'o', long = "output", value_name = "OUT.mseal")]
    pub(crate) output: PathBuf,
}

#[derive(Args)]
pub(crate) struct SealArgs {
    #[command(flatten)]
    pub(crate) s: SealingArgs,
    /// Compression: auto (default), zstd, none, or zstd:LEVEL (1-19; zstd alone is level 3).
    #[arg(long, default_value = "auto")]
    pub(crate) compression: String,
    /// Model files or directories.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    pub(crate) inputs: Vec<PathBuf>,
}

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// A dataset embedded in modelseal: iris.
    #[arg(long, value_parser = ["iris"], conflicts_with = "csv", required_unless_present = "csv")]
    pub(crate) dataset: Option<String>,
    /// A CSV file with a header row.
    #[arg(long, value_name = "FILE", requires = "target")]
    pub(crate) csv: Option<PathBuf>,
    /// The CSV column holding the class.
    #[arg(long, value_name = "COLUMN")]
    pub(crate) target: Option<String>,
    /// Maximum tree depth.
    #[arg(long = "max-depth")]
    pub(crate) max_depth: Option<usize>,
    /// Minimum number of samples to split a node.
    #[arg(long = "min-samples-split")]
    pub(crate) min_samples_split: Option<usize>,
    #[command(flatten)]
    pub(crate) s: SealingArgs,
}
