//! The `modelseal` command: a thin shell over the library. It parses flags, calls the library,
//! prints `error:` and `hint:` lines, and maps refusals to exit code 1 and usage or I/O errors to 2.

#[cfg(fuzzing)]
compile_error!("the modelseal binary must never be built with cfg(fuzzing): it disables signature and AEAD checks");

/// `println!` that does not panic when stdout is closed (`modelseal verify | head -1`): a write
/// error on stdout ends the process quietly with exit code 2, an I/O error.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            crate::stdout_failed(e);
        }
    }};
}

/// Standard output cannot be written (closed pipe, full disk): the two lines every failure prints,
/// then exit 2, an I/O error.
fn stdout_failed(e: std::io::Error) -> ! {
    let e = modelseal::Error::io("writing to standard output", e);
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    let _ = writeln!(err, "hint: {}", e.hint());
    std::process::exit(2);
}

mod demo;
mod progress;
mod render;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use modelseal::error::{ModelError, TrustError, UsageError};
use modelseal::format::manifest::ModelName;
use modelseal::keys::{OpeningKey, PublicKey, SecretKey, SharedKey};
use modelseal::models::{self, tree, VersionPolicy};
use modelseal::open::{self, Decryption, ReadOptions};
use modelseal::scan;
use modelseal::seal::{self, CompressionChoice, Details, Recipient, SealOptions};
use modelseal::trust::TrustStore;
use modelseal::{Error, Limits};

#[derive(Parser)]
#[command(
    name = "modelseal",
    version,
    about = "Seal a model and its manifest into one encrypted, signed archive; refuse anything that fails a check"
)]
struct Cli {
    /// No progress bar.
    #[arg(short = 'q', long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole story in a temporary directory: train, seal, verify, open, predict, refuse.
    Demo,
    /// Generate a key pair (PREFIX.key, secret, mode 0600; PREFIX.pub) or a shared key.
    Keygen {
        /// Output prefix.
        #[arg(short = 'o', long = "output", value_name = "PREFIX")]
        output: PathBuf,
        /// Generate a symmetric shared key (PREFIX.key) for CI recipients.
        #[arg(long)]
        shared: bool,
    },
    /// Seal model files into an encrypted, signed archive.
    Seal(SealArgs),
    /// Check signature, trust, expiry and the full payload digest; needs no decryption key (give
    /// one to also decrypt and show the manifest).
    Verify {
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        key: OptionalKey,
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
        /// Replace an existing output directory.
        #[arg(long)]
        force: bool,
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
    /// Add a signature to an existing archive (for k-of-n policies); the payload is not touched.
    Sign {
        /// Add a signature (the only mode).
        #[arg(long, required = true)]
        add: bool,
        /// The co-signer's secret key.
        #[arg(
            short = 'k',
            long = "key",
            env = "MODELSEAL_SIGNING_KEY_FILE",
            value_name = "KEY.key"
        )]
        key: PathBuf,
        /// The archive, rewritten in place atomically.
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
enum TrustAction {
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
}

#[derive(Args)]
struct TrustArgs {
    /// Trusted signer keys: a .pub file or a directory of them (with its policy.toml); repeatable.
    /// Default: MODELSEAL_TRUST, else the `modelseal trust` directory.
    #[arg(short = 't', long = "trust", value_name = "TRUST")]
    trust: Vec<PathBuf>,
    /// Anti-rollback state file (default: the per-user state directory).
    #[arg(long, value_name = "FILE", conflicts_with = "no_state")]
    state: Option<PathBuf>,
    /// Do not check or record anti-rollback state.
    #[arg(long = "no-state")]
    no_state: bool,
    /// Refuse a model version below this.
    #[arg(long = "min-version", value_name = "SEMVER")]
    min_version: Option<String>,
}

/// The trust store and the anti-rollback state of one command.
struct Policy {
    store: TrustStore,
    state: Option<modelseal::state::RollbackState>,
    min_version: Option<semver::Version>,
}

impl TrustArgs {
    fn load(&self) -> Result<Policy, Error> {
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
    fn options(&self) -> ReadOptions<'_> {
        ReadOptions {
            state: self.state.as_ref(),
            min_version: self.min_version.clone(),
            ..ReadOptions::new(&self.store)
        }
    }
}

#[derive(Args)]
struct OptionalKey {
    /// Your identity (a .key file from `keygen`).
    #[arg(
        short = 'i',
        long = "identity",
        env = "MODELSEAL_IDENTITY_FILE",
        value_name = "IDENTITY.key"
    )]
    identity: Option<PathBuf>,
    /// A shared key file (from `keygen --shared`).
    #[arg(
        long = "shared-key",
        env = "MODELSEAL_SHARED_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "identity"
    )]
    shared_key: Option<PathBuf>,
}

impl OptionalKey {
    fn load(&self) -> Result<Option<OpeningKey>, Error> {
        OpeningKey::read(self.identity.as_deref(), self.shared_key.as_deref())
    }

    fn require(&self) -> Result<OpeningKey, Error> {
        OpeningKey::require(self.identity.as_deref(), self.shared_key.as_deref())
    }
}

#[derive(Args)]
struct SealingArgs {
    /// The author's secret key (a .key file from `keygen`).
    #[arg(
        short = 'k',
        long = "key",
        env = "MODELSEAL_SIGNING_KEY_FILE",
        value_name = "SIGNER.key"
    )]
    key: PathBuf,
    /// A recipient's public key; repeatable.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT.pub")]
    recipients: Vec<PathBuf>,
    /// A shared key file to add as a recipient (for CI).
    #[arg(
        long = "shared-key",
        env = "MODELSEAL_SHARED_KEY_FILE",
        value_name = "FILE"
    )]
    shared_key: Option<PathBuf>,
    /// Model name.
    #[arg(long)]
    name: String,
    /// Model version (semver).
    #[arg(long = "model-version", value_name = "SEMVER")]
    model_version: String,
    /// Free text description.
    #[arg(long, default_value = "")]
    description: String,
    /// Metadata K=V; repeatable.
    #[arg(long = "meta", value_name = "K=V")]
    meta: Vec<String>,
    /// Scores: a JSON file holding a flat object of name → number.
    #[arg(long, value_name = "FILE.json")]
    metrics: Option<PathBuf>,
    /// Training data to record by SHA-256 and size (not included).
    #[arg(long = "train-data", value_name = "FILE")]
    train_data: Option<PathBuf>,
    /// Training code to record by SHA-256 and size (not included).
    #[arg(long, value_name = "FILE")]
    source: Option<PathBuf>,
    /// A runtime requirement NAME==VERSION; repeatable.
    #[arg(long = "requires", value_name = "NAME==VERSION")]
    requires: Vec<String>,
    /// Expiry: an RFC 3339 time or a duration such as 90d.
    #[arg(long, value_name = "RFC3339|DURATION")]
    expires: Option<String>,
    /// Replace an existing output.
    #[arg(long)]
    force: bool,
    /// Force the archive to disk before renaming it into place.
    #[arg(long)]
    fsync: bool,
    /// Output archive; `-` writes it to standard output once complete and signed (built first in
    /// an unnamed file in TMPDIR; --force and --fsync do not apply).
    #[arg(short = 'o', long = "output", value_name = "OUT.mseal")]
    output: PathBuf,
}

#[derive(Args)]
struct SealArgs {
    #[command(flatten)]
    s: SealingArgs,
    /// Compression: auto (default), zstd or none.
    #[arg(long, default_value = "auto", value_parser = ["auto", "zstd", "none"])]
    compression: String,
    /// Model files or directories.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    inputs: Vec<PathBuf>,
}

#[derive(Args)]
struct TrainArgs {
    /// A dataset embedded in modelseal: iris.
    #[arg(long, value_parser = ["iris"], conflicts_with = "csv", required_unless_present = "csv")]
    dataset: Option<String>,
    /// A CSV file with a header row.
    #[arg(long, value_name = "FILE", requires = "target")]
    csv: Option<PathBuf>,
    /// The CSV column holding the class.
    #[arg(long, value_name = "COLUMN")]
    target: Option<String>,
    /// Maximum tree depth.
    #[arg(long = "max-depth")]
    max_depth: Option<usize>,
    /// Minimum number of samples to split a node.
    #[arg(long = "min-samples-split")]
    min_samples_split: Option<usize>,
    #[command(flatten)]
    s: SealingArgs,
}

/// On SIGINT, SIGTERM or SIGHUP: remove what this process created and has not renamed into place
/// (a partial archive, a directory of decrypted plaintext), then exit 128 + the signal's number
/// (130, 143, 129), as shells report a process a signal ended.
fn handle_interrupts() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return; // without handlers the default action (termination) still applies
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            modelseal::fs::remove_all();
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "error: interrupted by signal {sig}; removed what this run had written"
            );
            let _ = writeln!(
                err,
                "hint: run the command again; the output path was left as it was"
            );
            std::process::exit(128 + sig);
        }
    });
}

fn main() -> ExitCode {
    handle_interrupts();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Never panic, even with stderr closed.
            let mut err = std::io::stderr().lock();
            // Escaped: an error can quote a file name or an archive's text.
            let _ = writeln!(err, "error: {}", render::esc(&e.to_string()));
            let _ = writeln!(err, "hint: {}", render::esc(e.hint()));
            ExitCode::from(if e.is_refusal() { 1 } else { 2 })
        }
    }
}

/// A command-line error from clap as the two lines every failure prints (help and version
/// requests print as clap renders them, exit 0).
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "error: no command given");
        let _ = writeln!(
            err,
            "hint: run `modelseal help` for the commands, or `modelseal demo` to see them at work"
        );
        return ExitCode::from(2);
    }
    let text = e.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // The first line, with the lines that continue it (the missing arguments) folded in.
    let mut first = lines
        .first()
        .copied()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    let more: Vec<&str> = lines
        .iter()
        .skip(1)
        .take_while(|l| {
            !l.starts_with("Usage:") && !l.starts_with("tip:") && !l.starts_with("For more")
        })
        .copied()
        .collect();
    if !more.is_empty() {
        first = format!("{} {}", first, more.join(", "));
    }
    let tip = lines
        .iter()
        .find_map(|l| l.strip_prefix("tip: "))
        .map(str::to_owned);
    let hint = tip.unwrap_or_else(|| match e.kind() {
        ErrorKind::MissingRequiredArgument | ErrorKind::MissingSubcommand => {
            "run `modelseal help` or add --help to the command to see what it needs".into()
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            "run the command with --help to see the values it accepts".into()
        }
        _ => "run `modelseal help` or add --help to the command for its usage".into(),
    });
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {first}");
    let _ = writeln!(err, "hint: {hint}");
    ExitCode::from(2)
}

fn run(cli: Cli) -> Result<(), Error> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Demo => demo::run(),
        Command::Clean { dry_run, dirs } => {
            let dirs = if dirs.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                dirs
            };
            let mut cleaned = modelseal::fs::clean(&dirs, dry_run)?;
            render::cleaned(&cleaned, dry_run);
            match cleaned.failed.len() {
                0 => Ok(()),
                1 => Err(cleaned.failed.remove(0).1),
                n => {
                    let (t, e) = cleaned.failed.remove(0);
                    Err(match e {
                        Error::Io { source, .. } => Error::io(
                            format!("removing {} (and {} more)", t.path.display(), n - 1),
                            source,
                        ),
                        e => e,
                    })
                }
            }
        }
        Command::Keygen { output, shared } => keygen(&output, shared),
        // What sealing refuses is the caller's input (exit 2), never a damaged archive.
        Command::Seal(args) => seal_cmd(args, quiet).map_err(modelseal::seal::as_seal_input),
        Command::Train(args) => train_cmd(args).map_err(modelseal::seal::as_seal_input),
        Command::Sign {
            add: _,
            key,
            archive,
        } => {
            let signer = SecretKey::read(&key)?;
            let h = modelseal::cosign::add_signature(&archive, &signer, &Limits::default())?;
            outln!(
                "added a signature by {} to {} ({} {})",
                signer.public().key_id(),
                archive.display(),
                h.model_name,
                h.model_version
            );
            Ok(())
        }
        Command::Trust { dir, action } => {
            let dir = dir
                .or_else(modelseal::trust::default_dir)
                .ok_or(TrustError::NoTrustStore)?;
            match action {
                TrustAction::Add { key, models } => {
                    let id = modelseal::trust::dir_add(&dir, &key, &models)?;
                    let scope = if models.is_empty() {
                        "every model".to_string()
                    } else {
                        models.join(", ")
                    };
                    outln!("trusting {id} in {} for {scope}", dir.display());
                }
                TrustAction::Remove { key_id } => {
                    let removed = modelseal::trust::dir_remove(&dir, &key_id)?;
                    outln!("removed {}", removed.display());
                }
                TrustAction::List => {
                    let mut store = TrustStore::new();
                    store.add_path(&dir)?;
                    outln!("trust directory {}", dir.display());
                    for k in store.keys() {
                        outln!(
                            "  {}  models: {}",
                            k.key_id(),
                            store.scopes_of(&k.key_id()).join(", ")
                        );
                    }
                    for (patterns, n) in store.thresholds() {
                        outln!(
                            "  threshold: {n} distinct signers for {}",
                            patterns.join(", ")
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Verify {
            trust,
            key,
            json,
            archive,
        } => {
            let policy = trust.load()?;
            let opts = policy.options();
            let input = archive_input(&archive)?;
            let report = match key.load()? {
                None => open::verify_reader(input, &opts)?,
                Some(k) => open::verify_decrypted(input, Decryption::from(&k), &opts)?,
            };
            render::report(&report, json);
            Ok(())
        }
        Command::Open {
            trust,
            key,
            output,
            force,
            allow_globals,
            expect,
            archive,
        } => {
            let policy = trust.load()?;
            let opts = policy.options();
            let k = key.require()?;
            let expect = expect
                .iter()
                .map(|e| scan::parse_requirement(e))
                .collect::<Result<Vec<_>, _>>()?;
            for prefix in allow_globals.iter().flatten().filter(|e| e.ends_with(".*")) {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: --allow-globals {prefix} admits every name under that package, \
                     including functions that run processes or touch files"
                );
            }
            let checks = open::ModelChecks {
                allow_globals,
                expect,
            };
            if output == Path::new("-") {
                return Err(UsageError::NoStreamOutput {
                    writes: "a directory",
                }
                .into());
            }
            let input = archive_input(&archive)?;
            let size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
            let bar = progress::Progress::start("opening", size, quiet);
            let report = open::open_reader_checked(
                input,
                Decryption::from(&k),
                &output,
                &opts,
                open::OpenOutput { force },
                &checks,
            );
            drop(bar);
            let report = report?;
            let h = report.header.get();
            let files = report.manifest.as_ref().map_or(0, |m| m.files.len());
            outln!(
                "opened {} {} signed by {}",
                h.model_name,
                h.model_version,
                report.header.signer()
            );
            outln!(
                "{files} file(s) checked and written to {}",
                output.display()
            );
            Ok(())
        }
        Command::Inspect {
            trust,
            key,
            json,
            untrusted,
            archive,
        } => {
            let mut file = archive_input(&archive)?;
            if let Some(allow) = untrusted {
                let store = TrustStore::load(&trust)?;
                let opts = ReadOptions::new(&store);
                let k = key.require()?;
                let (report, files) = open::open_reader_to_memory(
                    file,
                    Decryption::from(&k),
                    &opts,
                    MAX_REVIEW_BYTES,
                    &modelseal::open::ModelChecks::default(),
                )?;
                let manifest = report
                    .manifest
                    .expect("opening with a key always yields the manifest");
                let policy = scan::resolve_globals(&manifest, &allow)?;
                render::untrusted(
                    &scan::untrusted_in_memory(&manifest, &files, &policy)?,
                    json,
                );
                return Ok(());
            }
            if trust.is_empty() {
                let unverified = modelseal::verify::read_header(&mut file, &Limits::default())?;
                render::unverified(unverified.header_unverified(), json);
                return Ok(());
            }
            let store = TrustStore::load(&trust)?;
            let opts = ReadOptions::new(&store);
            let report = match key.load()? {
                None => open::verify_reader(file, &opts)?,
                Some(k) => open::verify_decrypted(file, Decryption::from(&k), &opts)?,
            };
            render::report(&report, json);
            Ok(())
        }
        Command::Predict {
            trust,
            key,
            input,
            csv,
            json,
            archive,
        } => {
            let policy = trust.load()?;
            let opts = policy.options();
            let k = key.require()?;
            let file = archive_input(&archive)?;
            let (model, manifest) = models::open_model::<tree::Tree, _>(
                file,
                Decryption::from(&k),
                &opts,
                &[(models::LINFA_TREES, models::LINFA_TREES_VERSION)],
                VersionPolicy::Strict,
                1 << 30,
            )?;
            let features = manifest.feature_names.len();
            let mut rows = Vec::new();
            for (i, s) in input.iter().enumerate() {
                rows.push(tree::parse_row(s, i + 1, features)?);
            }
            if let Some(path) = &csv {
                rows.extend(tree::read_rows_csv(path, features)?);
            }
            if rows.is_empty() {
                return Err(ModelError::BadInput {
                    row: 0,
                    detail: "no input: give --input or --csv".into(),
                }
                .into());
            }
            let classes = tree::predict(&model, &rows)?;
            render::predictions(&rows, &classes, &manifest.class_names, json);
            Ok(())
        }
    }
}

/// An archive to read: the file at `path`, or standard input for `-` (never a terminal).
fn archive_input(path: &Path) -> Result<std::io::BufReader<Box<dyn Read + Send>>, Error> {
    let source: Box<dyn Read + Send> = if path == Path::new("-") {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Err(UsageError::StreamIsTerminal { stream: "input" }.into());
        }
        Box::new(stdin)
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| Error::Io {
            context: format!("opening {}", path.display()),
            source: e,
        })?)
    };
    Ok(std::io::BufReader::with_capacity(1 << 20, source))
}

/// Seals to `-o`: a file renamed into place, or standard output for `-`.
fn seal_out(
    inputs: &[seal::Input],
    opts: &SealOptions<'_>,
    a: &SealingArgs,
) -> Result<seal::SealSummary, Error> {
    if a.output != Path::new("-") {
        return seal::seal_file(inputs, opts, &a.output, a.output_options());
    }
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return Err(UsageError::StreamIsTerminal { stream: "output" }.into());
    }
    seal::seal_to_stream(inputs, opts, stdout.lock())
}

fn keygen(prefix: &Path, shared: bool) -> Result<(), Error> {
    if shared {
        let path = SharedKey::generate().write(prefix)?;
        outln!("wrote shared key {} (mode 0600)", path.display());
    } else {
        let key = SecretKey::generate();
        let (k, p) = key.write_pair(prefix)?;
        outln!(
            "wrote secret key {} (mode 0600) and public key {}",
            k.display(),
            p.display()
        );
        outln!("key id {}", key.public().key_id());
    }
    Ok(())
}

/// The most bytes of model files `inspect --untrusted` holds in memory to walk them.
const MAX_REVIEW_BYTES: u64 = 1 << 34;

fn parse_meta(items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| UsageError::InvalidMetadata {
                value: item.clone(),
                detail: "expected K=V".into(),
            })?;
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(UsageError::InvalidMetadata {
                value: item.clone(),
                detail: "key given twice".into(),
            }
            .into());
        }
    }
    Ok(out)
}

fn parse_metrics(path: &Path) -> Result<BTreeMap<String, f64>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })?;
    let invalid = |detail: String| {
        Error::from(UsageError::InvalidMetadata {
            value: path.display().to_string(),
            detail,
        })
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("expected a flat JSON object of name → number".into()))?;
    obj.iter()
        .map(|(k, v)| match v.as_f64() {
            Some(x) if x.is_finite() => Ok((k.clone(), x)),
            _ => Err(invalid(format!("metric {k:?} is not a finite number"))),
        })
        .collect()
}

/// Keys, recipients and the manifest fields shared by `seal` and `train`.
struct Sealing {
    signer: SecretKey,
    publics: Vec<PublicKey>,
    shared: Option<SharedKey>,
    created: u64,
    expires: Option<u64>,
    metadata: BTreeMap<String, String>,
    details: Details,
}

impl SealingArgs {
    fn output_options(&self) -> seal::OutputOptions {
        seal::OutputOptions {
            force: self.force,
            fsync: self.fsync,
        }
    }

    fn load(&self) -> Result<Sealing, Error> {
        let created = modelseal::time::creation_time()?;
        let mut details = Details::default();
        if let Some(m) = &self.metrics {
            details.metrics = parse_metrics(m)?;
        }
        details.train_data = self
            .train_data
            .as_deref()
            .map(seal::reference)
            .transpose()?;
        details.source = self.source.as_deref().map(seal::reference).transpose()?;
        for r in &self.requires {
            let (n, v) = scan::parse_requirement(r)?;
            details.requires.insert(n, v);
        }
        Ok(Sealing {
            signer: SecretKey::read(&self.key)?,
            publics: self
                .recipients
                .iter()
                .map(|p| PublicKey::read(p))
                .collect::<Result<Vec<_>, _>>()?,
            shared: self
                .shared_key
                .as_deref()
                .map(SharedKey::read)
                .transpose()?,
            created,
            expires: self
                .expires
                .as_deref()
                .map(|e| modelseal::time::Expiry::parse(e)?.resolve(created))
                .transpose()?,
            metadata: parse_meta(&self.meta)?,
            details,
        })
    }
}

impl Sealing {
    fn options<'a>(
        &'a self,
        a: &SealingArgs,
        compression: CompressionChoice,
    ) -> Result<SealOptions<'a>, Error> {
        let mut recipients: Vec<Recipient<'_>> =
            self.publics.iter().map(Recipient::PublicKey).collect();
        if let Some(s) = &self.shared {
            recipients.push(Recipient::SharedKey(s));
        }
        Ok(SealOptions {
            signer: &self.signer,
            recipients,
            name: ModelName::parse(&a.name)?,
            version: modelseal::format::manifest::parse_version(&a.model_version)?,
            description: a.description.clone(),
            metadata: self.metadata.clone(),
            created: self.created,
            expires: self.expires,
            compression,
            details: self.details.clone(),
            limits: Limits::default(),
        })
    }
}

fn seal_cmd(a: SealArgs, quiet: bool) -> Result<(), Error> {
    let s = a.s.load()?;
    let compression = CompressionChoice::parse(&a.compression)?;
    let opts = s.options(&a.s, compression)?;
    let inputs = seal::collect_inputs(&a.inputs, &opts.limits)?;
    let total: u64 = a.inputs.iter().map(|p| dir_size(p)).sum();
    // Sealing reads every input byte about twice (hashing and payload, or payload and read-back).
    let _bar = progress::Progress::start("sealing", total.saturating_mul(2), quiet);
    let summary = seal_out(&inputs, &opts, &a.s)?;
    render::sealed(&summary, &a.s.output, &s.signer);
    Ok(())
}

fn dir_size(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn train_cmd(a: TrainArgs) -> Result<(), Error> {
    let params = tree::TreeParams {
        max_depth: a.max_depth,
        min_samples_split: a.min_samples_split,
    };
    let trained = match (&a.dataset, &a.csv, &a.target) {
        (Some(_), _, _) => tree::train_iris(params)?,
        (None, Some(csv), Some(target)) => tree::train_csv(csv, target, params)?,
        _ => {
            return Err(ModelError::Training {
                detail: "give --dataset iris or --csv FILE --target COLUMN".into(),
            }
            .into())
        }
    };
    let mut s = a.s.load()?;
    if s.details.train_data.is_none() {
        s.details.train_data = a.csv.as_deref().map(seal::reference).transpose()?;
    }
    let inputs = tree::sealable(&trained, models::LINFA_TREES_VERSION, &mut s.details)?;
    let opts = s.options(&a.s, CompressionChoice::Auto)?;
    let summary = seal_out(&inputs, &opts, &a.s)?;
    render::say(
        a.s.output == Path::new("-"),
        &format!(
            "trained a decision tree on {} rows, {} features, {} classes: training accuracy {:.1}%",
            trained.rows,
            trained.feature_names.len(),
            trained.class_names.len(),
            trained.train_accuracy * 100.0
        ),
    );
    render::sealed(&summary, &a.s.output, &s.signer);
    Ok(())
}
