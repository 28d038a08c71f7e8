//! Each command: convert its arguments, call the library, print the result.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use modelseal::error::{ModelError, TrustError, UsageError};
use modelseal::keys::{SecretKey, SharedKey};
use modelseal::models::{self, tree, VersionPolicy};
use modelseal::open::{self, Decryption, ReadOptions};
use modelseal::scan;
use modelseal::seal::{self, CompressionChoice, Details, SealOptions};
use modelseal::trust::TrustStore;
use modelseal::{Error, Limits};

use crate::cli::*;
use crate::{demo, progress, render};

pub(crate) fn run(cli: Cli) -> Result<(), Error> {
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
        Command::Keygen {
            output,
            pkcs11: Some(uri),
            ..
        } => keygen_token(&uri, &output),
        Command::Keygen {
            output,
            shared,
            passphrase,
            pkcs11: None,
        } => keygen(&output, shared, passphrase),
        Command::Pubkey { uri, output } => {
            let signer = modelseal::keys::Pkcs11Signer::open(&uri)?;
            let public = modelseal::keys::Signer::public(&signer);
            public.write_new(&output)?;
            outln!(
                "wrote signing-only public key {} (key id {})",
                output.display(),
                public.key_id()
            );
            Ok(())
        }
        Command::Key {
            action: KeyAction::Passwd { key, remove },
        } => {
            let new = if remove {
                None
            } else {
                Some(modelseal::keys::read_passphrase(
                    &key,
                    modelseal::keys::PassphraseSource::New {
                        env: modelseal::keys::NEW_PASSPHRASE_FILE_ENV,
                    },
                )?)
            };
            let k = SecretKey::change_passphrase(&key, new.as_ref().map(|p| p.as_bytes()))?;
            match new {
                Some(_) => outln!(
                    "{} ({}) is now encrypted with the new passphrase",
                    key.display(),
                    k.public().key_id()
                ),
                None => outln!(
                    "{} ({}) is now stored without a passphrase (mode 0600)",
                    key.display(),
                    k.public().key_id()
                ),
            }
            Ok(())
        }
        Command::Oms { action } => crate::oms::run(action),
        Command::Push(a) => crate::registry::push(a),
        Command::Pull(a) => crate::registry::pull(a),
        Command::Ls(a) => crate::registry::ls(a),
        Command::Attach(a) => crate::registry::attach(a),
        // What sealing refuses is the caller's input (exit 2), never a damaged archive.
        Command::Seal(args) => seal_cmd(args, quiet).map_err(modelseal::seal::as_seal_input),
        Command::Train(args) => train_cmd(args).map_err(modelseal::seal::as_seal_input),
        Command::Sign {
            add: _,
            detached: Some(out),
            force,
            key,
            archive,
        } => {
            let signer = modelseal::keys::read_signer(&key)?;
            let (h, sig) = modelseal::detached::sign_file(&archive, &*signer, &Limits::default())?;
            modelseal::detached::write_file(&out, &sig, force)?;
            outln!(
                "wrote a detached signature by {} of {} ({} {}) to {}",
                signer.key_id(),
                archive.display(),
                h.model_name,
                h.model_version,
                out.display()
            );
            Ok(())
        }
        Command::Sign {
            add: _,
            detached: None,
            force: _,
            key,
            archive,
        } => {
            let signer = modelseal::keys::read_signer(&key)?;
            let h = modelseal::countersign::add_signature(&archive, &*signer, &Limits::default())?;
            outln!(
                "added a signature by {} to {} ({} {})",
                signer.key_id(),
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
                TrustAction::Revoke {
                    key_id,
                    reason,
                    since,
                } => {
                    let id =
                        modelseal::trust::dir_revoke(&dir, &key_id, &reason, since.as_deref())?;
                    match &since {
                        Some(t) => outln!(
                            "revoked {id} in {} for archives created since {t}",
                            dir.display()
                        ),
                        None => outln!("revoked {id} in {}", dir.display()),
                    }
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
                    for (id, r) in store.revocations() {
                        outln!(
                            "  revoked {id}{}: {}",
                            r.since
                                .map(|t| format!(" since {}", modelseal::time::rfc3339(t)))
                                .unwrap_or_default(),
                            render::esc(&r.reason)
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
            allow_globals,
            expect,
            json,
            archive,
        } => {
            let policy = trust.load()?;
            let opts = policy.options();
            let checks = model_checks(allow_globals, &expect)?;
            let input = archive_input(&archive)?;
            let k = key.load()?;
            let report = if checks.allow_globals.is_some() || !checks.expect.is_empty() {
                open::verify_checked(input, Decryption::from(k.as_ref()), &opts, &checks)?.into()
            } else {
                match &k {
                    None => open::verify_reader(input, &opts)?,
                    Some(k) => open::verify_decrypted(input, Decryption::from(k), &opts)?.into(),
                }
            };
            render::report(&report, json);
            Ok(())
        }
        Command::Open {
            trust,
            key,
            output,
            force,
            oms_signature,
            allow_globals,
            expect,
            archive,
        } => {
            let policy = trust.load()?;
            let opts = policy.options();
            let k = key.load()?;
            let checks = model_checks(allow_globals, &expect)?;
            if output == Path::new("-") {
                return Err(UsageError::NoStreamOutput {
                    writes: "a directory",
                }
                .into());
            }
            let input = archive_input(&archive)?;
            let size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
            let bar = progress::Progress::start("opening", size, quiet);
            let report = open::Archive::read(input, &opts.limits)
                .and_then(|a| a.verify(&opts))
                .and_then(|a| {
                    a.decrypt(Decryption::from(k.as_ref())).to_dir_with_oms(
                        &output,
                        open::OpenOutput { force },
                        &checks,
                        oms_signature.as_deref(),
                    )
                });
            drop(bar);
            let report = report?;
            let h = report.header.get();
            let files = report.manifest.model_files().count();
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
            if let Some(sig) = &oms_signature {
                outln!(
                    "OMS bundle written to {} (model_signing verify key --signature {} {})",
                    sig.display(),
                    sig.display(),
                    output.display()
                );
            }
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
                let k = key.load()?;
                let (opened, files) = open::open_reader_to_memory(
                    file,
                    Decryption::from(k.as_ref()),
                    &opts,
                    MAX_REVIEW_BYTES,
                    &modelseal::open::ModelChecks::default(),
                )?;
                let manifest = opened.manifest;
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
                Some(k) => open::verify_decrypted(file, Decryption::from(&k), &opts)?.into(),
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
            let k = key.load()?;
            let file = archive_input(&archive)?;
            let (model, manifest) = models::open_model::<tree::Tree, _>(
                file,
                Decryption::from(k.as_ref()),
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

/// `--allow-globals` and `--expect` as the library's checks, warning about whole-package entries.
pub(crate) fn model_checks(
    allow_globals: Option<Vec<String>>,
    expect: &[String],
) -> Result<open::ModelChecks, Error> {
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
    Ok(open::ModelChecks {
        allow_globals,
        expect,
    })
}

/// An archive to read: the file at `path`, or standard input for `-` (never a terminal).
pub(crate) fn archive_input(
    path: &Path,
) -> Result<std::io::BufReader<Box<dyn Read + Send>>, Error> {
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
pub(crate) fn seal_out(
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

/// `keygen --pkcs11 URI -o PREFIX`: the pair on the token, its signing-only `PREFIX.pub` here.
pub(crate) fn keygen_token(uri: &str, prefix: &Path) -> Result<(), Error> {
    let pub_path = std::path::PathBuf::from(format!("{}.pub", prefix.display()));
    if pub_path.symlink_metadata().is_ok() {
        return Err(modelseal::error::KeyError::Exists { path: pub_path }.into());
    }
    let signer = modelseal::keys::Pkcs11Signer::generate(uri)?;
    let public = modelseal::keys::Signer::public(&signer);
    public.write_new(&pub_path)?;
    outln!(
        "created a non-extractable Ed25519 key on the token and wrote its signing-only public key {}",
        pub_path.display()
    );
    outln!("key id {}", public.key_id());
    Ok(())
}

pub(crate) fn keygen(prefix: &Path, shared: bool, passphrase: bool) -> Result<(), Error> {
    if shared {
        let path = SharedKey::generate().write(prefix)?;
        outln!("wrote shared key {} (mode 0600)", path.display());
    } else {
        let pass = if passphrase {
            Some(modelseal::keys::read_passphrase(
                &std::path::PathBuf::from(format!("{}.key", prefix.display())),
                modelseal::keys::PassphraseSource::New {
                    env: modelseal::keys::PASSPHRASE_FILE_ENV,
                },
            )?)
        } else {
            None
        };
        let key = SecretKey::generate();
        let (k, p) = key.write_pair_with(prefix, pass.as_ref().map(|p| p.as_bytes()))?;
        outln!(
            "wrote secret key {} (mode 0600{}) and public key {}",
            k.display(),
            if passphrase {
                ", passphrase-encrypted"
            } else {
                ""
            },
            p.display()
        );
        outln!("key id {}", key.public().key_id());
    }
    Ok(())
}

/// The most bytes of model files `inspect --untrusted` holds in memory to walk them.
pub(crate) const MAX_REVIEW_BYTES: u64 = 1 << 34;

pub(crate) fn parse_meta(items: &[String]) -> Result<BTreeMap<String, String>, Error> {
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

pub(crate) fn parse_metrics(path: &Path) -> Result<BTreeMap<String, f64>, Error> {
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
pub(crate) struct Sealing {
    pub(crate) keys: seal::SealKeys,
    pub(crate) oms_key: Option<modelseal::oms::EcSigningKey>,
    pub(crate) expiry: Option<modelseal::time::Expiry>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) details: Details,
}

impl SealingArgs {
    pub(crate) fn output_options(&self) -> seal::OutputOptions {
        seal::OutputOptions {
            force: self.force,
            fsync: self.fsync,
        }
    }

    pub(crate) fn load(&self) -> Result<Sealing, Error> {
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
            keys: seal::SealKeys::read(&self.key, &self.recipients, self.shared_key.as_deref())?,
            oms_key: self
                .oms_key
                .as_deref()
                .map(modelseal::oms::EcSigningKey::read)
                .transpose()?,
            expiry: self
                .expires
                .as_deref()
                .map(modelseal::time::Expiry::parse)
                .transpose()?,
            metadata: parse_meta(&self.meta)?,
            details,
        })
    }
}

impl Sealing {
    pub(crate) fn options<'a>(
        &'a self,
        a: &SealingArgs,
        compression: CompressionChoice,
    ) -> Result<SealOptions<'a>, Error> {
        self.keys
            .options(&a.name, &a.model_version)?
            .with_description(a.description.clone())
            .with_metadata(self.metadata.clone())
            .with_compression(compression)
            .with_details(self.details.clone())
            .with_also_reads(
                a.train_data
                    .iter()
                    .chain(&a.source)
                    .chain(&a.oms_key)
                    .cloned(),
            )
            .with_public(a.public)
            .with_oms_key(self.oms_key.as_ref())
            .with_expiry(self.expiry)
    }
}

pub(crate) fn seal_cmd(a: SealArgs, quiet: bool) -> Result<(), Error> {
    let s = a.s.load()?;
    let compression = CompressionChoice::parse(&a.compression)?;
    let opts = s.options(&a.s, compression)?;
    let inputs = seal::collect_inputs(&a.inputs, &opts.limits)?;
    let total: u64 = a.inputs.iter().map(|p| dir_size(p)).sum();
    // Sealing reads every input byte about twice (hashing and payload, or payload and read-back).
    let _bar = progress::Progress::start("sealing", total.saturating_mul(2), quiet);
    let summary = seal_out(&inputs, &opts, &a.s)?;
    render::sealed(&summary, &a.s.output, &*s.keys.signer);
    Ok(())
}

pub(crate) fn dir_size(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

pub(crate) fn train_cmd(a: TrainArgs) -> Result<(), Error> {
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
    render::sealed(&summary, &a.s.output, &*s.keys.signer);
    Ok(())
}
