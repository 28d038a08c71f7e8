//! The writing side, in the order of FORMAT.md: inputs hashed into the manifest, then one
//! streaming pass tar → zstd → chunked encryption → BLAKE3 → file, then the header is written
//! over its reserved place and signed.

mod inputs;
mod stored;
mod streamed;

pub(crate) use streamed::PayloadInfo;
use streamed::{add_oms_bundle, write_payload, Rehash};

use inputs::hash;
pub use inputs::{collect_inputs, inputs_from_memory, reference, Input, Source};

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::{self, wrap};
use crate::error::{Error, IoContext, KeyError, Result, UsageError};
use crate::format::manifest::{FileEntry, Manifest, ModelName, Reference, TypedModel};
use crate::format::{self, Compression, Header, SignatureEntry, Stanza, Suite};
use crate::keys::{PublicKey, SharedKey, Signer};
use crate::limits::Limits;
use crate::oms::EcSigningKey;

/// zstd level: level 3 is zstd's default balance; model pickles compress ~5x at it.
const ZSTD_LEVEL: i32 = 3;
/// 2 MiB window: bounded encoder and decoder memory (FORMAT.md §8 `zstd_window_log_max`).
const ZSTD_WINDOW_LOG: u32 = 21;
/// Bytes sampled to decide whether to compress (FORMAT.md §6.1).
const SAMPLE_BYTES: usize = 1 << 20;
/// Compress only when the sample shrinks below this fraction (in percent).
const COMPRESS_THRESHOLD_PERCENT: usize = 90;

/// Whom an archive is sealed for.
#[derive(Debug)]
pub enum Recipient<'a> {
    /// An X25519 public key (the recipient half of a `.pub` file).
    PublicKey(&'a PublicKey),
    /// A shared symmetric key.
    SharedKey(&'a SharedKey),
}

/// Whether to compress the payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompressionChoice {
    /// Compress when a sample of the inputs compresses by more than 10%.
    #[default]
    Auto,
    /// Always compress.
    Zstd,
    /// Never compress.
    None,
    /// Always compress, at this zstd level ([`ZSTD_LEVELS`]; the others use level 3). The window
    /// stays 2 MiB at every level, so readers' memory does not depend on it.
    Level(i32),
}

/// The zstd levels a seal may ask for.
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=19;

impl CompressionChoice {
    /// `auto`, `zstd`, `none` or `zstd:LEVEL` (the CLI's `--compression`, Python's `compress=`);
    /// anything else is refused, never taken as `auto`.
    pub fn parse(s: &str) -> Result<CompressionChoice> {
        let refuse = || {
            Error::from(UsageError::InvalidCompression {
                value: s.into(),
                detail: format!(
                    "compression must be auto, zstd, none or zstd:LEVEL with LEVEL {}-{}",
                    ZSTD_LEVELS.start(),
                    ZSTD_LEVELS.end()
                ),
            })
        };
        match s {
            "auto" => Ok(CompressionChoice::Auto),
            "zstd" => Ok(CompressionChoice::Zstd),
            "none" => Ok(CompressionChoice::None),
            other => match other.strip_prefix("zstd:").map(str::parse::<i32>) {
                Some(Ok(level)) => CompressionChoice::level(level).map_err(|_| refuse()),
                _ => Err(refuse()),
            },
        }
    }

    /// zstd at `level`, refused outside [`ZSTD_LEVELS`].
    pub fn level(level: i32) -> Result<CompressionChoice> {
        if ZSTD_LEVELS.contains(&level) {
            Ok(CompressionChoice::Level(level))
        } else {
            Err(UsageError::InvalidCompression {
                value: level.to_string(),
                detail: format!(
                    "a zstd level is {}-{}",
                    ZSTD_LEVELS.start(),
                    ZSTD_LEVELS.end()
                ),
            }
            .into())
        }
    }

    /// The zstd level this choice compresses at, when it compresses.
    fn zstd_level(self) -> i32 {
        match self {
            CompressionChoice::Level(l) => l,
            _ => ZSTD_LEVEL,
        }
    }
}

/// What to seal and for whom.
#[derive(Debug)]
pub struct SealOptions<'a> {
    /// The author's key (a secret key file's, a token's: any [`Signer`]).
    pub signer: &'a dyn Signer,
    /// At least one recipient, unless `public`.
    pub recipients: Vec<Recipient<'a>>,
    /// Seal a public archive (FORMAT.md §4.5): signed, stored in the clear, no recipients.
    pub public: bool,
    /// Also sign the model files as an OpenSSF Model Signing bundle with this P-256 key, carried
    /// in the archive as `.modelseal/oms.sig` (FORMAT.md §9, §11).
    pub oms_key: Option<&'a EcSigningKey>,
    /// Model name.
    pub name: ModelName,
    /// Model version.
    pub version: semver::Version,
    /// Free text.
    pub description: String,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, String>,
    /// Creation time, Unix seconds (use `SOURCE_DATE_EPOCH` for reproducible archives).
    pub created: u64,
    /// Expiry time, Unix seconds.
    pub expires: Option<u64>,
    /// Compression choice.
    pub compression: CompressionChoice,
    /// Optional manifest fields.
    pub details: Details,
    /// Limits the archive must respect so that readers with default limits accept it.
    pub limits: Limits,
    /// Other files this seal reads (its key files, the training data and code it records by
    /// hash): the output may never be one of them, even with `force`.
    pub also_reads: Vec<PathBuf>,
}

impl<'a> SealOptions<'a> {
    /// Options for sealing a model called `name` at `version` (checked here as the format requires,
    /// refused as the caller's input: [`UsageError::SealInput`]), created now or at
    /// `SOURCE_DATE_EPOCH` ([`crate::time::creation_time`]), with no expiry, no description or
    /// metadata, compression `auto` and the default limits. The `with_*` methods change those.
    pub fn new(
        signer: &'a dyn Signer,
        recipients: Vec<Recipient<'a>>,
        name: &str,
        version: &str,
    ) -> Result<SealOptions<'a>> {
        Ok(SealOptions {
            signer,
            recipients,
            public: false,
            oms_key: None,
            name: ModelName::parse(name).map_err(|e| as_seal_input(e.into()))?,
            version: crate::format::manifest::parse_version(version)
                .map_err(|e| as_seal_input(e.into()))?,
            description: String::new(),
            metadata: BTreeMap::new(),
            created: crate::time::creation_time()?,
            expires: None,
            compression: CompressionChoice::Auto,
            details: Details::default(),
            limits: Limits::default(),
            also_reads: Vec::new(),
        })
    }

    /// Seals a public archive (FORMAT.md §4.5) when `public`: signed and checked like any other,
    /// but not encrypted; it must then have no recipients.
    pub fn with_public(mut self, public: bool) -> Self {
        self.public = public;
        self
    }

    /// Also signs the files as an OMS bundle with `key` ([`SealOptions::oms_key`]).
    pub fn with_oms_key(mut self, key: Option<&'a EcSigningKey>) -> Self {
        self.oms_key = key;
        self
    }

    /// Adds files the seal reads besides its inputs (see [`SealOptions::also_reads`]).
    pub fn with_also_reads(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        self.also_reads.extend(paths);
        self
    }

    /// Sets the creation time (Unix seconds).
    pub fn with_created(mut self, created: u64) -> Self {
        self.created = created;
        self
    }

    /// Sets the expiry: an instant, or a span after the creation time (so that with
    /// `SOURCE_DATE_EPOCH` the CLI's `--expires 90d` and Python's `timedelta(days=90)` give the same
    /// instant). Call after [`Self::with_created`].
    pub fn with_expiry(mut self, expiry: Option<crate::time::Expiry>) -> Result<Self> {
        self.expires = expiry.map(|e| e.resolve(self.created)).transpose()?;
        Ok(self)
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the free-form metadata.
    pub fn with_metadata(mut self, metadata: BTreeMap<String, String>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the compression choice.
    pub fn with_compression(mut self, compression: CompressionChoice) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the optional manifest fields.
    pub fn with_details(mut self, details: Details) -> Self {
        self.details = details;
        self
    }

    /// Sets the limits the archive must respect.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// The keys of one seal, read from their files: the signer's secret key, the recipients' public
/// keys and an optional shared key (the CLI's `-k`, `-r`, `--shared-key`; Python's
/// `signing_key=`, `recipients=`, `shared_key=`).
#[derive(Debug)]
pub struct SealKeys {
    /// The author's key: a secret key file's or a token's ([`crate::keys::read_signer`]).
    pub signer: Box<dyn Signer>,
    /// The recipients' public keys.
    pub publics: Vec<PublicKey>,
    /// A shared key, also a recipient.
    pub shared: Option<SharedKey>,
    /// The files they were read from.
    pub paths: Vec<PathBuf>,
}

impl SealKeys {
    /// Reads every key, refusing a secret key file others can read and a signing-only public
    /// key as a recipient. `signing_key` may be a `pkcs11:` URI (a token key).
    pub fn read(
        signing_key: &Path,
        recipients: &[PathBuf],
        shared_key: Option<&Path>,
    ) -> Result<SealKeys> {
        Ok(SealKeys {
            signer: crate::keys::read_signer(signing_key)?,
            publics: recipients
                .iter()
                .map(|p| {
                    let k = PublicKey::read(p)?;
                    k.require_recipient(p)?;
                    Ok(k)
                })
                .collect::<Result<Vec<_>>>()?,
            shared: shared_key.map(SharedKey::read).transpose()?,
            paths: std::iter::once(signing_key.to_path_buf())
                .filter(|p| !crate::keys::is_token_key(p))
                .chain(recipients.iter().cloned())
                .chain(shared_key.map(Path::to_path_buf))
                .collect(),
        })
    }

    /// Every recipient: the public keys, then the shared key.
    pub fn recipients(&self) -> Vec<Recipient<'_>> {
        let mut to: Vec<Recipient<'_>> = self.publics.iter().map(Recipient::PublicKey).collect();
        if let Some(s) = &self.shared {
            to.push(Recipient::SharedKey(s));
        }
        to
    }

    /// Options for sealing `name` at `version` with these keys ([`SealOptions::new`]).
    pub fn options(&self, name: &str, version: &str) -> Result<SealOptions<'_>> {
        Ok(
            SealOptions::new(&*self.signer, self.recipients(), name, version)?
                .with_also_reads(self.paths.iter().cloned()),
        )
    }
}

/// The optional parts of the manifest (schema 2): what scikit-learn's documentation says to keep
/// with a model.
#[derive(Clone, Debug, Default)]
pub struct Details {
    /// Scores, name → finite number.
    pub metrics: BTreeMap<String, f64>,
    /// Training data, by hash.
    pub train_data: Option<Reference>,
    /// Training code, by hash.
    pub source: Option<Reference>,
    /// The runtime the model needs, name → exact version.
    pub requires: BTreeMap<String, String>,
    /// Class names, by class number.
    pub class_names: Vec<String>,
    /// Feature names, in input order.
    pub feature_names: Vec<String>,
    /// Set when one input is a model serialized by modelseal.
    pub typed_model: Option<TypedModel>,
}

/// What `seal` produced.
#[derive(Clone, Debug)]
pub struct SealSummary {
    /// The signed header.
    pub header: Header,
    /// The manifest.
    pub manifest: Manifest,
}

/// The reading side's refusals (a bad name, path, size or count), raised while sealing, are the
/// caller's input errors: `UsageError::SealInput`, exit 2, with a message capped in length (the
/// offending value may be kilobytes long).
pub fn as_seal_input(e: Error) -> Error {
    match e {
        Error::Format(_) | Error::Content(_) => {
            let hint = match &e {
                Error::Format(
                    crate::error::FormatError::InvalidModelName { .. },
                ) => crate::error::MODEL_NAME_RULE,
                Error::Format(crate::error::FormatError::InvalidModelVersion { .. }) => {
                    crate::error::MODEL_VERSION_RULE
                }
                _ => "change the inputs or the values given for sealing: the limits are in SECURITY.md (files, path lengths, names, metadata sizes)",
            };
            let mut detail = e.to_string();
            if detail.len() > 300 {
                let mut cut = 300;
                while !detail.is_char_boundary(cut) {
                    cut -= 1;
                }
                detail.truncate(cut);
                detail.push_str("...");
            }
            UsageError::SealInput { detail, hint }.into()
        }
        other => other,
    }
}

fn decide_compression(choice: CompressionChoice, inputs: &[Input]) -> Result<Compression> {
    match choice {
        CompressionChoice::Zstd => return Ok(Compression::Zstd),
        CompressionChoice::Level(l) => {
            CompressionChoice::level(l)?;
            return Ok(Compression::Zstd);
        }
        CompressionChoice::None => return Ok(Compression::None),
        CompressionChoice::Auto => {}
    }
    let per_file = (SAMPLE_BYTES / inputs.len().max(1)).max(4096);
    let mut sample = Vec::new();
    for i in inputs {
        i.source
            .open()?
            .take(per_file as u64)
            .read_to_end(&mut sample)
            .context(|| format!("reading {}", i.source.display().display()))?;
        if sample.len() >= SAMPLE_BYTES {
            break;
        }
    }
    if sample.len() < 4096 {
        return Ok(Compression::Zstd);
    }
    let compressed =
        zstd::bulk::compress(&sample, 1).map_err(|e| Error::io("sampling compression", e))?;
    Ok(
        if compressed.len() * 100 < sample.len() * COMPRESS_THRESHOLD_PERCENT {
            Compression::Zstd
        } else {
            Compression::None
        },
    )
}

/// Seals `inputs` into `out`, which must be empty and seekable. Nothing is written to `out` but the
/// archive; the caller decides what to do with it on error.
pub fn seal_to_writer<W: Write + Seek + Read + Send>(
    inputs: &[Input],
    opts: &SealOptions<'_>,
    out: W,
) -> Result<SealSummary> {
    seal_to_writer_inner(inputs, opts, out).map_err(as_seal_input)
}

fn seal_to_writer_inner<W: Write + Seek + Read + Send>(
    inputs: &[Input],
    opts: &SealOptions<'_>,
    mut out: W,
) -> Result<SealSummary> {
    opts.limits.validate()?;
    if opts.public && !opts.recipients.is_empty() {
        return Err(UsageError::PublicWithRecipients {
            recipients: opts.recipients.len(),
        }
        .into());
    }
    if !opts.public && opts.recipients.is_empty() {
        return Err(UsageError::NoRecipients.into());
    }
    if opts.recipients.len() > opts.limits.max_recipients {
        return Err(UsageError::TooManyRecipients {
            found: opts.recipients.len(),
            max: opts.limits.max_recipients,
        }
        .into());
    }
    for (what, t) in [
        ("creation time", Some(opts.created)),
        ("expiry", opts.expires),
    ] {
        if let Some(t) = t.filter(|t| *t > crate::limits::MAX_TIME) {
            return Err(UsageError::InvalidTime {
                value: format!("{t} (Unix seconds)"),
                detail: format!(
                    "the {what} is after 9999-12-31T23:59:59Z, the latest time an archive records"
                ),
            }
            .into());
        }
    }
    if let Some(exp) = opts.expires {
        if exp <= opts.created {
            return Err(UsageError::InvalidTime {
                value: crate::time::rfc3339(exp),
                detail: "expiry is not after the creation time".into(),
            }
            .into());
        }
    }

    let compression = decide_compression(opts.compression, inputs)?;
    // A stored payload is written in one pass that hashes as it goes (crate::stored); a compressed
    // one needs every hash first, since the manifest leads the compressed stream, and so does an
    // OMS bundle, which signs the hashes and whose length is known only then.
    let single_pass = compression == Compression::None && opts.oms_key.is_none();
    let mut files = Vec::with_capacity(inputs.len());
    for i in inputs {
        let what = i.source.display();
        let (size, sha256) = if single_pass {
            (i.source.len()?, [0u8; 32])
        } else {
            hash(&mut i.source.open()?, &what)?
        };
        let kind = crate::scan::describe(i.source.open()?)
            .context(|| format!("reading {}", what.display()))?;
        files.push(FileEntry {
            path: i.archive_path.clone(),
            size,
            sha256,
            kind,
        });
    }
    let d = &opts.details;
    if let Some(t) = &d.typed_model {
        if let Some(f) = files.iter_mut().find(|f| f.path.as_str() == t.path) {
            f.kind = crate::format::manifest::FileKind {
                format: "bincode".into(),
                ..Default::default()
            };
        }
    }
    let oms_bundle = match opts.oms_key {
        Some(key) => Some(add_oms_bundle(&opts.name, &mut files, key)?),
        None => None,
    };
    let mut manifest = Manifest {
        description: opts.description.clone(),
        files,
        metadata: opts.metadata.clone(),
        metrics: d.metrics.clone(),
        train_data: d.train_data.clone(),
        source: d.source.clone(),
        requires: d.requires.clone(),
        class_names: d.class_names.clone(),
        feature_names: d.feature_names.clone(),
        typed_model: d.typed_model.clone(),
        ..Manifest::new(opts.name.clone(), opts.version.clone(), opts.created)
    };
    let manifest_bytes = manifest.to_bytes(&opts.limits)?;
    if manifest_bytes.len() as u64 > opts.limits.max_manifest_bytes {
        return Err(crate::error::FormatError::InvalidManifest {
            rule: crate::error::ManifestRule::TooLarge,
            detail: format!(
                "{} bytes, limit {}",
                manifest_bytes.len(),
                opts.limits.max_manifest_bytes
            ),
        }
        .into());
    }

    // A fresh input key, wrapped to every recipient (FORMAT.md §4.2, §4.3); none for a public
    // archive (§4.5).
    let suite = if opts.public {
        Suite::Mseal1Ed25519PublicBlake3
    } else {
        Suite::Mseal1Ed25519X25519Cobblestone256Blake3
    };
    let file_key: Option<Zeroizing<[u8; 32]>> = (!opts.public).then(crypto::random32);
    let key = file_key.as_deref();
    let mut recipients = Vec::with_capacity(opts.recipients.len());
    for r in &opts.recipients {
        recipients.push(match r {
            Recipient::PublicKey(pk) => {
                let k = key.expect("an encrypted archive has an input key");
                let x = pk.x25519().ok_or_else(|| KeyError::SigningOnly {
                    path: PathBuf::from(format!("recipient {}", pk.key_id())),
                })?;
                let (ephemeral, wrapped_key) = wrap::x25519_wrap(k, x)?;
                Stanza::X25519 {
                    ephemeral,
                    wrapped_key,
                }
            }
            Recipient::SharedKey(sk) => {
                let k = key.expect("an encrypted archive has an input key");
                let (salt, wrapped_key) = wrap::shared_wrap(k, sk.bytes());
                Stanza::SharedKey { salt, wrapped_key }
            }
        });
    }
    let mut header = Header {
        suite,
        signer: opts.signer.public().key_id().0,
        recipients,
        salt: [0; 24],
        commitment: [0; 32],
        compression,
        tar_size: 0,
        plaintext_size: 0,
        chunk_count: 0,
        ciphertext_size: 0,
        payload_digest: [0; 32],
        model_name: opts.name.to_string(),
        model_version: opts.version.to_string(),
        created: opts.created,
        expires: opts.expires,
        manifest_size: manifest_bytes.len() as u64,
        manifest_sha256: crypto::sha256(&manifest_bytes),
    };
    // With fixed-width integers the header's length does not depend on the values still unknown,
    // so its place can be reserved now and filled after the payload (FORMAT.md §2).
    let reserved_len = header.to_bytes().len();
    if reserved_len > opts.limits.max_header_bytes as usize {
        return Err(crate::error::FormatError::HeaderTooLarge {
            found: reserved_len as u64,
            max: opts.limits.max_header_bytes.into(),
        }
        .into());
    }
    let payload_offset = format::PREFIX_LEN + reserved_len + 1 + format::SIGNATURE_ENTRY_LEN;
    out.write_all(&vec![0u8; payload_offset])
        .context(|| "writing the archive".into())?;

    let p = if single_pass {
        let sizes: Vec<u64> = manifest.files.iter().map(|f| f.size).collect();
        let with_hashes = |m: &Manifest, hashes: &[[u8; 32]]| {
            let mut m = m.clone();
            for (f, h) in m.files.iter_mut().zip(hashes) {
                f.sha256 = *h;
            }
            m
        };
        let s = stored::write(
            &mut out,
            payload_offset as u64,
            key,
            inputs,
            &sizes,
            manifest_bytes.len() as u64,
            |hashes| Ok(with_hashes(&manifest, hashes).to_bytes(&opts.limits)?),
        )?;
        manifest = with_hashes(&manifest, &s.hashes);
        header.manifest_sha256 = crypto::sha256(&s.manifest_bytes);
        s.payload
    } else {
        write_payload(
            &mut out,
            key,
            (compression, opts.compression.zstd_level()),
            &manifest_bytes,
            &manifest,
            inputs,
            oms_bundle.as_deref(),
        )?
    };

    // The header, now complete, over its reserved place; then the signature.
    header.salt = p.salt;
    header.commitment = p.commitment;
    header.tar_size = p.tar_size;
    header.plaintext_size = p.plaintext_size;
    header.chunk_count = suite.chunk_count(p.plaintext_size);
    header.ciphertext_size = p.ciphertext_size;
    header.payload_digest = p.payload_digest;
    header.check(&opts.limits)?;
    let header_bytes = header.to_bytes();
    if header_bytes.len() != reserved_len {
        return Err(Error::io(
            "writing the header",
            io::Error::other("header length changed after reservation"),
        ));
    }
    let mut signed = Vec::with_capacity(format::PREFIX_LEN + header_bytes.len());
    signed.extend_from_slice(&format::encode_prefix(header_bytes.len() as u32));
    signed.extend_from_slice(&header_bytes);
    let signature = opts.signer.sign_header(&signed)?;
    let entry = SignatureEntry {
        key_id: header.signer,
        signature,
    };
    out.seek(SeekFrom::Start(0))
        .context(|| "writing the header".into())?;
    out.write_all(&signed)
        .context(|| "writing the header".into())?;
    out.write_all(&[1u8])
        .context(|| "writing the header".into())?;
    out.write_all(&entry.to_bytes())
        .context(|| "writing the header".into())?;
    out.flush().context(|| "writing the archive".into())?;
    Ok(SealSummary { header, manifest })
}

/// How `seal_file` treats its output path.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutputOptions {
    /// Replace an existing output.
    pub force: bool,
    /// Force the data to disk before the rename.
    pub fsync: bool,
}

/// Seals into a temporary file beside `out` and renames it into place only once complete.
pub fn seal_file(
    inputs: &[Input],
    opts: &SealOptions<'_>,
    out: &Path,
    output: OutputOptions,
) -> Result<SealSummary> {
    let existing = crate::fs::refuse_file_output(
        out,
        output.force,
        "a regular file (the archive it wrote before)",
    )?;
    if let Some(existing) = existing {
        if is_input(&existing, out, inputs, &opts.also_reads) {
            return Err(UsageError::OutputIsInput { path: out.into() }.into());
        }
    }
    let dir = crate::fs::parent_dir(out);
    let (mut tmp, _tracked) = crate::fs::temp_file_beside(out, "seal", ".tmp")?;
    let summary = seal_to_writer(inputs, opts, tmp.as_file_mut())?;
    if output.fsync {
        tmp.as_file()
            .sync_all()
            .context(|| "syncing the archive".into())?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .context(|| "setting permissions".into())?;
    }
    if output.force {
        tmp.persist(out)
            .map_err(|e| Error::io(format!("renaming into {}", out.display()), e.error))?;
    } else {
        tmp.persist_noclobber(out).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                UsageError::OutputExists { path: out.into() }.into()
            } else {
                Error::io(format!("renaming into {}", out.display()), e.error)
            }
        })?;
    }
    if output.fsync {
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    Ok(summary)
}

/// Seals into a stream that cannot seek (a pipe, standard output). The header, which signs the
/// payload's size and digest, leads the archive, so the archive is built first in an anonymous
/// temporary file in the system's temporary directory (`TMPDIR`; it needs the archive's size
/// there, and memory stays bounded), then copied to `out`. The file has no name: nothing of it
/// outlives the process, however it ends. Nothing is written to `out` unless the archive is
/// complete and signed, so a failed seal never hands the reader a partial archive.
pub fn seal_to_stream<W: Write>(
    inputs: &[Input],
    opts: &SealOptions<'_>,
    mut out: W,
) -> Result<SealSummary> {
    let dir = std::env::temp_dir();
    let mut tmp = tempfile::tempfile_in(&dir)
        .context(|| format!("creating a temporary file in {}", dir.display()))?;
    let summary = seal_to_writer(inputs, opts, &mut tmp)?;
    tmp.seek(SeekFrom::Start(0))
        .context(|| "reading the archive back".into())?;
    io::copy(&mut io::BufReader::with_capacity(1 << 20, tmp), &mut out)
        .and_then(|_| out.flush())
        .context(|| "writing the archive to the output stream".into())?;
    Ok(summary)
}

/// Whether the output is one of the files this seal reads: an input, or one of `also_reads`.
fn is_input(
    existing: &std::fs::Metadata,
    out: &Path,
    inputs: &[Input],
    also_reads: &[PathBuf],
) -> bool {
    let read: Vec<&Path> = inputs
        .iter()
        .filter_map(|i| match &i.source {
            Source::File(p) => Some(p.as_path()),
            Source::Bytes(_) => None,
        })
        .chain(also_reads.iter().map(PathBuf::as_path))
        .collect();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let target = std::fs::metadata(out).ok();
        let (dev, ino) = match &target {
            Some(m) => (m.dev(), m.ino()),
            None => (existing.dev(), existing.ino()),
        };
        read.iter().any(|p| {
            std::fs::metadata(p)
                .map(|m| m.dev() == dev && m.ino() == ino)
                .unwrap_or(false)
        })
    }
    #[cfg(not(unix))]
    {
        let _ = existing;
        let out = std::fs::canonicalize(out).ok();
        read.iter().any(|p| std::fs::canonicalize(p).ok() == out)
    }
}
