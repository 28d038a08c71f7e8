//! The `modelseal` command: a thin shell over the library. It parses flags, calls the library,
//! prints `error:` and `hint:` lines, and maps refusals to exit code 1 and usage or I/O errors to 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use modelseal::error::UsageError;
use modelseal::format::{Header, Stanza};
use modelseal::keys::{PublicKey, SecretKey, SharedKey};
use modelseal::manifest::{Manifest, ModelName};
use modelseal::open::{self, Decryption, ReadOptions};
use modelseal::seal::{self, CompressionChoice, Recipient, SealOptions};
use modelseal::trust::TrustStore;
use modelseal::verify::rfc3339;
use modelseal::{Error, Limits};

#[derive(Parser)]
#[command(
    name = "modelseal",
    version,
    about = "Seal a model and its manifest into one encrypted, signed archive; refuse anything that fails a check"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Check signature, trust, expiry and the full payload digest; needs no decryption key.
    Verify {
        #[command(flatten)]
        trust: TrustArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// The archive.
        archive: PathBuf,
    },
    /// Verify, decrypt and extract an archive; nothing is written unless every check passes.
    Open {
        #[command(flatten)]
        trust: TrustArgs,
        /// Your identity (a .key file from `keygen`).
        #[arg(
            short = 'i',
            long = "identity",
            env = "MODELSEAL_IDENTITY_FILE",
            value_name = "IDENTITY.key",
            conflicts_with = "shared_key"
        )]
        identity: Option<PathBuf>,
        /// A shared key file (from `keygen --shared`).
        #[arg(
            long = "shared-key",
            env = "MODELSEAL_SHARED_KEY_FILE",
            value_name = "FILE"
        )]
        shared_key: Option<PathBuf>,
        /// Output directory (must not exist, unless --force).
        #[arg(short = 'o', long = "output", value_name = "OUT_DIR")]
        output: PathBuf,
        /// Replace an existing output directory.
        #[arg(long)]
        force: bool,
        /// The archive.
        archive: PathBuf,
    },
    /// Show an archive's header; says UNVERIFIED unless -t verified it.
    Inspect {
        /// Trusted signer keys (.pub files or directories of them).
        #[arg(
            short = 't',
            long = "trust",
            env = "MODELSEAL_TRUST",
            value_name = "TRUST"
        )]
        trust: Vec<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// The archive.
        archive: PathBuf,
    },
}

#[derive(Args)]
struct TrustArgs {
    /// Trusted signer keys: a .pub file or a directory of them; repeatable.
    #[arg(
        short = 't',
        long = "trust",
        env = "MODELSEAL_TRUST",
        value_name = "TRUST",
        required = true
    )]
    trust: Vec<PathBuf>,
}

#[derive(Args)]
struct SealArgs {
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
    /// Expiry: an RFC 3339 time or a duration such as 90d.
    #[arg(long, value_name = "RFC3339|DURATION")]
    expires: Option<String>,
    /// Compression: auto (default), zstd or none.
    #[arg(long, default_value = "auto", value_parser = ["auto", "zstd", "none"])]
    compression: String,
    /// Replace an existing output.
    #[arg(long)]
    force: bool,
    /// Force the archive to disk before renaming it into place.
    #[arg(long)]
    fsync: bool,
    /// Output archive.
    #[arg(short = 'o', long = "output", value_name = "OUT.mseal")]
    output: PathBuf,
    /// Model files or directories.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    inputs: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("hint: {}", e.hint());
            if e.is_refusal() {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Keygen { output, shared } => keygen(&output, shared),
        Command::Seal(args) => seal_cmd(args),
        Command::Verify {
            trust,
            json,
            archive,
        } => {
            let store = load_trust(&trust.trust)?;
            let report = open::verify_file(&archive, &ReadOptions::new(&store))?;
            print_header(
                report.header.get(),
                Some(&report.header.signer().to_string()),
                None,
                json,
            );
            Ok(())
        }
        Command::Open {
            trust,
            identity,
            shared_key,
            output,
            force,
            archive,
        } => {
            let store = load_trust(&trust.trust)?;
            let opts = ReadOptions::new(&store);
            let out = open::OpenOutput { force };
            let report = match (identity, shared_key) {
                (Some(i), None) => open::open_file(
                    &archive,
                    Decryption::Identity(&SecretKey::read(&i)?),
                    &output,
                    &opts,
                    out,
                )?,
                (None, Some(s)) => open::open_file(
                    &archive,
                    Decryption::Shared(&SharedKey::read(&s)?),
                    &output,
                    &opts,
                    out,
                )?,
                _ => return Err(UsageError::NoRecipients.into()),
            };
            let h = report.header.get();
            let files = report.manifest.as_ref().map_or(0, |m| m.files.len());
            println!(
                "opened {} {} signed by {}",
                h.model_name,
                h.model_version,
                report.header.signer()
            );
            println!(
                "{files} file(s) checked and written to {}",
                output.display()
            );
            Ok(())
        }
        Command::Inspect {
            trust,
            json,
            archive,
        } => {
            let file = std::fs::File::open(&archive).map_err(|e| Error::Io {
                context: format!("opening {}", archive.display()),
                source: e,
            })?;
            if trust.is_empty() {
                let mut r = std::io::BufReader::new(file);
                let unverified = modelseal::verify::read_header(&mut r, &Limits::default())?;
                print_header(unverified.header_unverified(), None, None, json);
            } else {
                let store = load_trust(&trust)?;
                let report =
                    open::verify_reader(std::io::BufReader::new(file), &ReadOptions::new(&store))?;
                print_header(
                    report.header.get(),
                    Some(&report.header.signer().to_string()),
                    None,
                    json,
                );
            }
            Ok(())
        }
    }
}

fn keygen(prefix: &Path, shared: bool) -> Result<(), Error> {
    if shared {
        let path = SharedKey::generate().write(prefix)?;
        println!("wrote shared key {} (mode 0600)", path.display());
    } else {
        let key = SecretKey::generate();
        let (k, p) = key.write_pair(prefix)?;
        println!(
            "wrote secret key {} (mode 0600) and public key {}",
            k.display(),
            p.display()
        );
        println!("key id {}", key.public().key_id());
    }
    Ok(())
}

fn load_trust(paths: &[PathBuf]) -> Result<TrustStore, Error> {
    let mut store = TrustStore::new();
    for p in paths {
        store.add_path(p)?;
    }
    Ok(store)
}

fn parse_expiry(value: &str, now: u64) -> Result<u64, Error> {
    let invalid = |detail: String| {
        Error::from(UsageError::InvalidTime {
            value: value.into(),
            detail,
        })
    };
    if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        return t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| invalid("before 1970".into()));
    }
    let d = humantime::parse_duration(value)
        .map_err(|e| invalid(format!("neither RFC 3339 nor a duration: {e}")))?;
    now.checked_add(d.as_secs())
        .ok_or_else(|| invalid("too far in the future".into()))
}

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

/// `SOURCE_DATE_EPOCH` makes archives reproducible (https://reproducible-builds.org/specs/source-date-epoch/).
fn creation_time() -> Result<u64, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse().map_err(|_| {
            UsageError::InvalidTime {
                value: v.clone(),
                detail: "SOURCE_DATE_EPOCH must be Unix seconds".into(),
            }
            .into()
        }),
        Err(_) => Ok(modelseal::now()),
    }
}

fn seal_cmd(a: SealArgs) -> Result<(), Error> {
    let signer = SecretKey::read(&a.key)?;
    let publics = a
        .recipients
        .iter()
        .map(|p| PublicKey::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = a.shared_key.as_deref().map(SharedKey::read).transpose()?;
    let mut recipients: Vec<Recipient<'_>> = publics.iter().map(Recipient::PublicKey).collect();
    if let Some(s) = &shared {
        recipients.push(Recipient::SharedKey(s));
    }
    let created = creation_time()?;
    let limits = Limits::default();
    let opts = SealOptions {
        signer: &signer,
        recipients,
        name: ModelName::parse(&a.name)?,
        version: modelseal::manifest::parse_version(&a.model_version)?,
        description: a.description,
        metadata: parse_meta(&a.meta)?,
        created,
        expires: a
            .expires
            .as_deref()
            .map(|e| parse_expiry(e, created))
            .transpose()?,
        compression: match a.compression.as_str() {
            "zstd" => CompressionChoice::Zstd,
            "none" => CompressionChoice::None,
            _ => CompressionChoice::Auto,
        },
        limits: limits.clone(),
    };
    let inputs = seal::collect_inputs(&a.inputs, &limits)?;
    let summary = seal::seal_file(
        &inputs,
        &opts,
        &a.output,
        seal::OutputOptions {
            force: a.force,
            fsync: a.fsync,
        },
    )?;
    let h = &summary.header;
    println!(
        "sealed {} {} ({} file(s), {} bytes) to {}",
        h.model_name,
        h.model_version,
        summary.manifest.files.len(),
        summary.manifest.files.iter().map(|f| f.size).sum::<u64>(),
        a.output.display()
    );
    println!(
        "signed by {}, for {} recipient(s)",
        signer.public().key_id(),
        h.recipients.len()
    );
    Ok(())
}

fn print_header(h: &Header, verified_by: Option<&str>, manifest: Option<&Manifest>, json: bool) {
    let x25519 = h
        .recipients
        .iter()
        .filter(|s| matches!(s, Stanza::X25519 { .. }))
        .count();
    let shared = h.recipients.len() - x25519;
    if json {
        let mut v = serde_json::json!({
            "verified": verified_by.is_some(),
            "signer": hex::encode(h.signer),
            "suite": h.suite.name(),
            "model_name": h.model_name,
            "model_version": h.model_version,
            "created": rfc3339(h.created),
            "expires": h.expires.map(rfc3339),
            "recipients": { "x25519": x25519, "shared_key": shared },
            "compression": format!("{:?}", h.compression).to_lowercase(),
            "tar_size": h.tar_size,
            "plaintext_size": h.plaintext_size,
            "ciphertext_size": h.ciphertext_size,
            "chunk_count": h.chunk_count,
            "payload_blake3": hex::encode(h.payload_digest),
            "manifest_sha256": hex::encode(h.manifest_sha256),
        });
        if let Some(m) = manifest {
            v["files"] = m.files.iter().map(|f| serde_json::json!({"path": f.path.as_str(), "size": f.size, "sha256": hex::encode(f.sha256)})).collect();
        }
        println!("{v}");
        return;
    }
    match verified_by {
        Some(id) => println!("VERIFIED: signature by trusted key {id}, payload digest matches"),
        None => println!("UNVERIFIED: nothing below is authenticated (pass -t TRUST to verify)"),
    }
    println!("model:       {} {}", h.model_name, h.model_version);
    println!("signer:      {}", hex::encode(h.signer));
    println!("created:     {}", rfc3339(h.created));
    println!(
        "expires:     {}",
        h.expires.map(rfc3339).unwrap_or_else(|| "never".into())
    );
    println!("recipients:  {x25519} public key, {shared} shared key");
    println!("suite:       {}", h.suite.name());
    println!(
        "payload:     {} bytes ({} chunks), tar {} bytes, compression {:?}",
        h.ciphertext_size, h.chunk_count, h.tar_size, h.compression
    );
    println!("blake3:      {}", hex::encode(h.payload_digest));
    println!(
        "manifest:    {} bytes, sha256 {}",
        h.manifest_size,
        hex::encode(h.manifest_sha256)
    );
}
