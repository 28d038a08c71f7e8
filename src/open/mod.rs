//! The reading side, steps numbered as FORMAT.md §7 numbers them.
//!
//! Steps 1-6 live in [`crate::verify`] and end in a [`Verified<Header>`]; everything here takes
//! that proof, so no payload byte is decrypted, decompressed or parsed before the signature has
//! verified against a trusted key.

use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::archive::EntrySink;
use crate::error::OmsError;
use crate::error::{ContentError, Error, IoContext, Result, TrustError, UsageError};
use crate::format::manifest::{Manifest, SafeRelPath, OMS_ENTRY, RESERVED_DIR};
use crate::format::Header;
use crate::keys::{SecretKey, SharedKey};
use crate::limits::Limits;
use crate::state::RollbackState;
use crate::trust::TrustStore;
use crate::verify::{read_header, Verified};

mod payload;
use payload::process_payload;

/// The key that opens an archive.
#[derive(Clone, Copy, Debug)]
pub enum Decryption<'a> {
    /// An identity (`.key` file): its X25519 half is tried on every X25519 stanza.
    Identity(&'a SecretKey),
    /// A shared key: tried on every shared-key stanza.
    Shared(&'a SharedKey),
    /// No key: opens a public archive (FORMAT.md §4.5) and nothing else
    /// ([`UsageError::NoOpeningKey`] for an encrypted one). A key given for a public archive is
    /// not used.
    None,
}

impl<'a> From<&'a crate::keys::OpeningKey> for Decryption<'a> {
    fn from(k: &'a crate::keys::OpeningKey) -> Self {
        match k {
            crate::keys::OpeningKey::Identity(k) => Decryption::Identity(k),
            crate::keys::OpeningKey::Shared(k) => Decryption::Shared(k),
        }
    }
}

impl<'a> From<Option<&'a crate::keys::OpeningKey>> for Decryption<'a> {
    fn from(k: Option<&'a crate::keys::OpeningKey>) -> Self {
        k.map_or(Decryption::None, Decryption::from)
    }
}

/// Options for reading archives.
#[derive(Clone, Debug)]
pub struct ReadOptions<'a> {
    /// The keys a signer must be among, with their policy.
    pub trust: &'a TrustStore,
    /// Bounds on everything read.
    pub limits: Limits,
    /// The time to check expiry against, Unix seconds; `None` reads the system clock when the
    /// check runs (a clock before 1970 is then an error, never an expiry check that passes).
    /// Injectable so that expiry is testable without sleeping.
    pub now: Option<u64>,
    /// Anti-rollback state to check and update; `None` opts out.
    pub state: Option<&'a RollbackState>,
    /// Refuse archives whose model version is below this.
    pub min_version: Option<semver::Version>,
}

impl<'a> ReadOptions<'a> {
    /// Default limits, the system clock, no anti-rollback state.
    pub fn new(trust: &'a TrustStore) -> Self {
        ReadOptions {
            trust,
            limits: Limits::default(),
            now: None,
            state: None,
            min_version: None,
        }
    }

    /// The time to check expiry against.
    fn now(&self) -> Result<u64> {
        self.now.map_or_else(crate::time::now, Ok)
    }

    /// The version and state checks that need only the verified header; `record` also records the
    /// archive as accepted.
    fn policy(&self, header: &Verified<Header>, record: bool) -> Result<()> {
        let h = header.get();
        if let Some(min) = &self.min_version {
            let v = crate::format::manifest::parse_version(&h.model_version)?;
            if v.cmp_precedence(min).is_lt() {
                return Err(TrustError::BelowMinimumVersion {
                    model: h.model_name.clone(),
                    found: v.to_string(),
                    minimum: min.to_string(),
                }
                .into());
            }
        }
        match (self.state, record) {
            (Some(s), false) => s.check(h, header.signer()),
            (Some(s), true) => s.check_and_record(h, header.signer()),
            (None, _) => Ok(()),
        }
    }
}

/// What a successful `verify` or `open` established.
#[derive(Clone, Debug)]
pub struct Report {
    /// The verified header.
    pub header: Verified<Header>,
    /// The manifest, when the archive was decrypted or is public.
    pub manifest: Option<Manifest>,
}

/// Reads every file and keeps nothing but the carried OMS bundle (FORMAT.md §11.5), which the
/// checks that release nothing (`verify`) compare with the manifest as `open` does.
#[derive(Default)]
struct Discard {
    oms: Option<Vec<u8>>,
}

impl EntrySink for Discard {
    fn file(&mut self, path: &SafeRelPath, _: u64, data: &mut dyn Read) -> Result<()> {
        if path.as_str() == OMS_ENTRY {
            // The entry's size was checked against the manifest and the limits; the bundle's own
            // cap bounds what is held here.
            let mut bundle = Vec::new();
            data.take(crate::oms::MAX_BUNDLE_BYTES + 1)
                .read_to_end(&mut bundle)
                .context(|| format!("reading {OMS_ENTRY}"))?;
            io::copy(data, &mut io::sink()).map_err(|e| Error::io("reading the payload", e))?;
            self.oms = Some(bundle);
            return Ok(());
        }
        io::copy(data, &mut io::sink()).map_err(|e| Error::io("reading the payload", e))?;
        Ok(())
    }
}

/// The carried OMS bundle, when the manifest lists one, must list exactly the archive's files.
fn check_carried(manifest: &Manifest, held: Option<&[u8]>) -> Result<()> {
    if manifest.files.iter().any(|f| f.path.as_str() == OMS_ENTRY) {
        check_oms_bundle(manifest, held.unwrap_or_default())?;
    }
    Ok(())
}

/// An archive whose prefix, header and signatures were read (FORMAT.md §7 steps 1-3), and nothing
/// of its payload. The one way on is [`Archive::verify`]: every reader of this crate goes
/// `Archive::read` → `verify` → `check_payload` (no key) or `decrypt` → `check` / `to_dir` /
/// `to_memory`, so the order of the checks is the order of these types.
pub struct Archive<R> {
    input: R,
    header: crate::verify::UnverifiedHeader,
}

impl<R: Read + Send> Archive<R> {
    /// Reads the prefix, the header (within `limits`) and the signatures.
    pub fn read(mut input: R, limits: &Limits) -> Result<Archive<R>> {
        let header = read_header(&mut input, limits)?;
        Ok(Archive { input, header })
    }

    /// The header as read: nothing in it is authenticated yet (for `inspect`).
    pub fn header_unverified(&self) -> &Header {
        self.header.header_unverified()
    }

    /// Steps 4-8: the signatures against the trust store, expiry, the trust policy and the
    /// anti-rollback state (checked here, recorded only once everything else passed).
    pub fn verify<'o>(self, opts: &'o ReadOptions<'o>) -> Result<VerifiedArchive<'o, R>> {
        let header = self.header.verify(opts.trust, opts.now()?)?;
        opts.policy(&header, false)?;
        Ok(VerifiedArchive {
            input: self.input,
            header,
            opts,
        })
    }
}

/// An archive whose header verified against the trust store; its payload is still unread.
pub struct VerifiedArchive<'o, R> {
    input: R,
    header: Verified<Header>,
    opts: &'o ReadOptions<'o>,
}

impl<'o, R: Read + Send> VerifiedArchive<'o, R> {
    /// The verified header.
    pub fn header(&self) -> &Verified<Header> {
        &self.header
    }

    /// Without a key (a CI gate): the payload's structure and its digest (steps 9 and 12), then
    /// acceptance is recorded in the anti-rollback state. A public archive is read whole, every
    /// file checked against its manifest, which the report then holds.
    pub fn check_payload(mut self) -> Result<Report> {
        let mut sink = Discard::default();
        let manifest = process_payload(
            &self.header,
            None,
            &mut self.input,
            &self.opts.limits,
            &mut sink,
        )?;
        if let Some(m) = &manifest {
            check_carried(m, sink.oms.as_deref())?;
        }
        self.opts.policy(&self.header, true)?;
        Ok(Report {
            header: self.header,
            manifest,
        })
    }

    /// Opens the payload with `key`; the sink (discard, a directory, memory) is chosen next.
    pub fn decrypt<'k>(self, key: Decryption<'k>) -> Decrypting<'o, 'k, R> {
        Decrypting { archive: self, key }
    }
}

/// A verified archive and the key that opens it: every remaining check (steps 9-13) runs in
/// whichever of [`Decrypting::check`], [`Decrypting::to_dir`] or [`Decrypting::to_memory`] is
/// called, and acceptance is recorded only after the last of them passed.
pub struct Decrypting<'o, 'k, R> {
    archive: VerifiedArchive<'o, R>,
    key: Decryption<'k>,
}

/// What opening an archive established: the verified header and the manifest, both checked.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The verified header.
    pub header: Verified<Header>,
    /// The manifest, checked against the header and every file.
    pub manifest: Manifest,
}

impl From<Opened> for Report {
    fn from(o: Opened) -> Report {
        Report {
            header: o.header,
            manifest: Some(o.manifest),
        }
    }
}

impl<R: Read + Send> Decrypting<'_, '_, R> {
    /// Steps 9-12 into `sink`, then the model checks on what the sink holds (`model`), then
    /// acceptance recorded (step 13).
    fn run<S: EntrySink>(
        mut self,
        sink: &mut S,
        model: impl FnOnce(&Manifest, &S) -> Result<()>,
        record: bool,
    ) -> Result<Opened> {
        let a = &mut self.archive;
        let Some(manifest) = process_payload(
            &a.header,
            Some(self.key),
            &mut a.input,
            &a.opts.limits,
            sink,
        )?
        else {
            // process_payload returns the manifest whenever it is given a key.
            return Err(crate::error::FormatError::Truncated { what: "manifest" }.into());
        };
        model(&manifest, sink)?;
        a.opts.policy(&a.header, record)?;
        Ok(Opened {
            header: self.archive.header,
            manifest,
        })
    }

    /// Every check, the files discarded (`verify -i`, `inspect -i`).
    pub fn check(self) -> Result<Opened> {
        self.run(
            &mut Discard::default(),
            |m, held| check_carried(m, held.oms.as_deref()),
            true,
        )
    }

    /// Every check and `checks`, the files written to a private temporary directory beside
    /// `out_dir` and renamed into place only after the last check passed: after any failure
    /// nothing new is left on disk.
    pub fn to_dir(
        self,
        out_dir: &Path,
        output: OpenOutput,
        checks: &ModelChecks,
    ) -> Result<Opened> {
        self.to_dir_with_oms(out_dir, output, checks, None)
    }

    /// [`Self::to_dir`], and the archive's OMS bundle (FORMAT.md §11.5) written to
    /// `oms_signature` once the directory is in place, so that `model_signing verify key
    /// --signature FILE OUT_DIR` checks the opened files. The bundle itself is never written into
    /// the output directory (`model_signing` would count it as an extra file).
    pub fn to_dir_with_oms(
        self,
        out_dir: &Path,
        output: OpenOutput,
        checks: &ModelChecks,
        oms_signature: Option<&Path>,
    ) -> Result<Opened> {
        refuse_output(out_dir, output)?;
        // The signature's temporary file is made before anything is read, so that a signature
        // path that cannot be written is refused before the directory is released.
        let sig_tmp = match oms_signature {
            Some(sig) => {
                crate::fs::refuse_file_output(
                    sig,
                    output.force,
                    "a regular file (the signature it wrote before)",
                )?;
                Some((sig, crate::fs::temp_file_beside(sig, "write", ".tmp")?))
            }
            None => None,
        };
        // Decrypted plaintext lives here (mode 0700) until every check passed: removed if the
        // run is interrupted, and locked so that `modelseal clean` leaves it alone meanwhile.
        let (tmp, _guard) = crate::fs::temp_dir_beside(out_dir, "open")?;
        if let Some(sig) = oms_signature {
            refuse_signature_inside(sig, out_dir)?;
        }
        let mut sink = DirSink {
            root: tmp.path().to_path_buf(),
        };
        let root = tmp.path().to_path_buf();
        // The carried OMS bundle is checked with the model checks, before acceptance is
        // recorded: an archive refused for its bundle never enters the anti-rollback state.
        let mut bundle = None;
        let opened = self.run(
            &mut sink,
            |m, _| {
                crate::scan::check_requirements(m, &checks.expect)?;
                if let Some(allow) = &checks.allow_globals {
                    let policy = crate::scan::resolve_globals(m, allow)?;
                    crate::scan::check_globals_in_dir(m, &root, &policy)?;
                }
                let carried = m.files.iter().any(|f| f.path.as_str() == OMS_ENTRY);
                if oms_signature.is_some() && !carried {
                    return Err(OmsError::NotCarried {
                        model: m.name.to_string(),
                        version: m.version.to_string(),
                    }
                    .into());
                }
                if carried {
                    let b = std::fs::read(root.join(OMS_ENTRY))
                        .context(|| format!("reading {OMS_ENTRY}"))?;
                    check_oms_bundle(m, &b)?;
                    bundle = Some(b);
                }
                Ok(())
            },
            true,
        )?;
        if bundle.is_some() {
            let reserved = root.join(RESERVED_DIR);
            std::fs::remove_dir_all(&reserved)
                .context(|| format!("removing {}", reserved.display()))?;
        }
        // The bundle is written and synced beside its path first; after the directory is in
        // place only a rename within one directory is left.
        let sig_file = match (sig_tmp, &bundle) {
            (Some((sig, (mut f, tracked))), Some(b)) => {
                f.write_all(b)
                    .and_then(|_| f.as_file().sync_all())
                    .context(|| format!("writing {}", sig.display()))?;
                Some((sig, f, tracked))
            }
            _ => None,
        };
        commit_dir(tmp, out_dir, output.force)?;
        if let Some((sig, f, _tracked)) = sig_file {
            f.persist(sig)
                .map_err(|e| Error::io(format!("writing {}", sig.display()), e.error))?;
        }
        Ok(opened)
    }

    /// Every check and `checks`, the files kept in memory (at most `max_bytes` in all, and the
    /// signed tar size) and returned only after every check passed.
    pub fn to_memory(self, max_bytes: u64, checks: &ModelChecks) -> Result<(Opened, OpenedFiles)> {
        self.memory(max_bytes, checks, true)
            .map(|(u, files)| (u.opened, files))
    }

    /// [`Self::to_memory`] without recording acceptance yet: for a frontend with checks of its
    /// own that must pass first (the Python package's library-version gate). The anti-rollback
    /// state has been checked; [`Unrecorded::accept`] records the archive once those pass, and an
    /// archive refused meanwhile is never recorded.
    pub fn to_memory_unrecorded(
        self,
        max_bytes: u64,
        checks: &ModelChecks,
    ) -> Result<(Unrecorded, OpenedFiles)> {
        self.memory(max_bytes, checks, false)
    }

    fn memory(
        self,
        max_bytes: u64,
        checks: &ModelChecks,
        record: bool,
    ) -> Result<(Unrecorded, OpenedFiles)> {
        let mut sink = MemorySink {
            files: Vec::new(),
            budget: max_bytes,
        };
        let opened = self.run(
            &mut sink,
            |m, held| {
                crate::scan::check_requirements(m, &checks.expect)?;
                if let Some(allow) = &checks.allow_globals {
                    let policy = crate::scan::resolve_globals(m, allow)?;
                    crate::scan::check_globals_in_memory(m, &held.files, &policy)?;
                }
                if let Some((_, data)) = held.files.iter().find(|(p, _)| p.as_str() == OMS_ENTRY) {
                    let mut bundle = Vec::new();
                    data.reader()
                        .read_to_end(&mut bundle)
                        .context(|| format!("reading {OMS_ENTRY}"))?;
                    check_oms_bundle(m, &bundle)?;
                }
                Ok(())
            },
            record,
        )?;
        Ok((Unrecorded { opened }, sink.files))
    }
}

/// An archive every check of this crate passed, not yet recorded as accepted
/// ([`Decrypting::to_memory_unrecorded`]).
#[derive(Debug)]
pub struct Unrecorded {
    opened: Opened,
}

impl Unrecorded {
    /// What was opened.
    pub fn opened(&self) -> &Opened {
        &self.opened
    }

    /// Records the archive as accepted in `state` (checking it again under the state's lock: a
    /// newer version accepted meanwhile by another process still refuses it).
    pub fn accept(self, state: Option<&RollbackState>) -> Result<Opened> {
        if let Some(s) = state {
            s.check_and_record(self.opened.header.get(), self.opened.header.signer())?;
        }
        Ok(self.opened)
    }
}

/// Verifies an archive without any decryption key: header, trust, signatures, expiry, the
/// payload's structure and its digest (FORMAT.md §7: steps 1-6, 9 and 12).
pub fn verify_reader<R: Read + Send>(input: R, opts: &ReadOptions<'_>) -> Result<Report> {
    Archive::read(input, &opts.limits)?
        .verify(opts)?
        .check_payload()
}

/// Verifies and also decrypts: every check of FORMAT.md §7 runs, including each file's size and
/// SHA-256, but the files are discarded. For `verify -i` and `inspect -i`.
pub fn verify_decrypted<R: Read + Send>(
    input: R,
    key: Decryption<'_>,
    opts: &ReadOptions<'_>,
) -> Result<Opened> {
    Archive::read(input, &opts.limits)?
        .verify(opts)?
        .decrypt(key)
        .check()
}

/// Verifies and runs `open`'s model checks (`checks`: allowed globals, requirements) on the files,
/// for a gate that releases nothing (`verify --allow-globals`): a public archive needs no key, an
/// encrypted one needs `key`. The checks walk the files where they lie, so they are written to a
/// private directory (mode 0700) in the system's temporary directory, removed however this ends
/// (after a SIGKILL, `modelseal clean` of that directory finds it).
pub fn verify_checked<R: Read + Send>(
    input: R,
    key: Decryption<'_>,
    opts: &ReadOptions<'_>,
    checks: &ModelChecks,
) -> Result<Opened> {
    let archive = Archive::read(input, &opts.limits)?.verify(opts)?;
    if !archive.header().get().suite.is_public() && matches!(key, Decryption::None) {
        return Err(UsageError::NoOpeningKey.into());
    }
    // `.verify.modelseal-verify-XXXXXX`, mode 0700, locked, removed on a signal and found by
    // `modelseal clean` after a SIGKILL.
    let (dir, _guard) = crate::fs::temp_dir_beside(&std::env::temp_dir().join("verify"), "verify")?;
    archive
        .decrypt(key)
        .to_dir(&dir.path().join("model"), OpenOutput::default(), checks)
}

/// [`verify_reader`] on a file.
pub fn verify_file(path: &Path, opts: &ReadOptions<'_>) -> Result<Report> {
    verify_reader(
        BufReader::with_capacity(1 << 20, crate::verify::open_archive(path)?),
        opts,
    )
}

/// Writes each checked file under a private temporary directory.
struct DirSink {
    root: PathBuf,
}

impl EntrySink for DirSink {
    fn file(&mut self, path: &SafeRelPath, _size: u64, data: &mut dyn Read) -> Result<()> {
        let mut target = self.root.clone();
        let comps: Vec<&str> = path.components().collect();
        for dir in &comps[..comps.len() - 1] {
            target.push(dir);
            match std::fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(ContentError::DuplicateEntry {
                        path: path.to_string(),
                    }
                    .into())
                }
                Err(_) => std::fs::create_dir(&target)
                    .context(|| format!("creating {}", target.display()))?,
            }
        }
        target.push(comps[comps.len() - 1]);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let f = opts
            .open(&target)
            .context(|| format!("creating {}", target.display()))?;
        let mut w = io::BufWriter::with_capacity(1 << 16, f);
        io::copy(data, &mut w)
            .map_err(|e| Error::io(format!("writing {}", target.display()), e))?;
        w.flush()
            .context(|| format!("writing {}", target.display()))?;
        Ok(())
    }
}

/// Options for `open_file`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOutput {
    /// Replace an existing output directory.
    pub force: bool,
}

/// Opens an archive into `out_dir`: every check of FORMAT.md §7 runs, the files are written to a
/// private temporary directory beside `out_dir`, and only after the last check passed is it renamed
/// into place. After any failure nothing new is left on disk.
pub fn open_file(
    path: &Path,
    key: Decryption<'_>,
    out_dir: &Path,
    opts: &ReadOptions<'_>,
    output: OpenOutput,
) -> Result<Opened> {
    open_file_checked(path, key, out_dir, opts, output, &ModelChecks::default())
}

/// Model-level checks run on the opened files before they are released.
#[derive(Clone, Debug, Default)]
pub struct ModelChecks {
    /// When set, every pickle is re-walked and refused if it imports a global outside the policy
    /// these entries resolve to (`@sklearn`, `@FILE`, `pkg.*`, exact names; see
    /// [`crate::scan::globals`]), or differs from the manifest's record; every other file must
    /// be a recognised safe format.
    pub allow_globals: Option<Vec<String>>,
    /// `NAME==VERSION` pairs the manifest's requirements must match exactly.
    pub expect: Vec<(String, String)>,
}

/// [`open_file`] with model-level checks (allowed pickle globals, expected requirements), run on the
/// extracted files before they are released. The output is checked before the archive is read.
pub fn open_file_checked(
    path: &Path,
    key: Decryption<'_>,
    out_dir: &Path,
    opts: &ReadOptions<'_>,
    output: OpenOutput,
    checks: &ModelChecks,
) -> Result<Opened> {
    refuse_output(out_dir, output)?;
    let input = BufReader::with_capacity(1 << 20, crate::verify::open_archive(path)?);
    open_reader_checked(input, key, out_dir, opts, output, checks)
}

/// [`open_file_checked`] reading the archive from a stream (a pipe, standard input): one pass,
/// memory bounded as for a file; the files are released only after the stream's last byte
/// passed every check.
pub fn open_reader_checked<R: Read + Send>(
    input: R,
    key: Decryption<'_>,
    out_dir: &Path,
    opts: &ReadOptions<'_>,
    output: OpenOutput,
    checks: &ModelChecks,
) -> Result<Opened> {
    // `to_dir` refuses an output it must not replace before anything of the payload is read.
    Archive::read(input, &opts.limits)?
        .verify(opts)?
        .decrypt(key)
        .to_dir(out_dir, output, checks)
}

/// An archive's OMS bundle must list exactly its other files, with the manifest's digests: a
/// signer's tool that lied is caught here, before anything is released. The bundle's own
/// signature is not checked (the opener may not hold that key); `model_signing` checks it.
fn check_oms_bundle(manifest: &Manifest, bundle: &[u8]) -> Result<()> {
    let files = crate::oms::manifest_digests(&manifest.files, crate::oms::GitPaths::Include)?;
    crate::oms::check_unsigned(bundle, &files)
}

/// Refuses an OMS signature path that is the output directory or lies inside it: the directory is
/// replaced as a whole, and `model_signing` would count the bundle as an extra file. Both parents
/// exist by now (a temporary was made beside each).
fn refuse_signature_inside(sig: &Path, out_dir: &Path) -> Result<()> {
    let absolute = |p: &Path| -> Result<PathBuf> {
        let parent = crate::fs::parent_dir(p);
        let parent = parent
            .canonicalize()
            .context(|| format!("resolving {}", parent.display()))?;
        Ok(match p.file_name() {
            Some(name) => parent.join(name),
            None => parent,
        })
    };
    let (sig_abs, out_abs) = (absolute(sig)?, absolute(out_dir)?);
    if sig_abs.starts_with(&out_abs) {
        return Err(UsageError::SignatureInsideOutput {
            signature: sig.into(),
            dir: out_dir.into(),
        }
        .into());
    }
    Ok(())
}

/// Refuses an output this open must not replace (before anything is read).
pub(crate) fn refuse_output(out_dir: &Path, output: OpenOutput) -> Result<()> {
    if refuse_non_dir(out_dir)? && !output.force {
        return Err(UsageError::OutputExists {
            path: out_dir.into(),
        }
        .into());
    }
    Ok(())
}

/// Refuses an output path that exists and is not a directory (an open replaces only the output it
/// opened before); says whether it exists.
fn refuse_non_dir(out_dir: &Path) -> Result<bool> {
    match out_dir.symlink_metadata() {
        Ok(existing) if !existing.is_dir() => Err(UsageError::OutputNotReplaceable {
            path: out_dir.into(),
            found: crate::fs::kind(&existing),
            replaces: "a directory (the output it opened before)",
        }
        .into()),
        Ok(_) => Ok(true),
        Err(_) => Ok(false),
    }
}

fn commit_dir(tmp: tempfile::TempDir, out_dir: &Path, force: bool) -> Result<()> {
    // Checked again here: the path may have changed since the open began.
    refuse_non_dir(out_dir)?;
    if force && out_dir.symlink_metadata().is_ok() {
        // Move the old output aside, put the new one in place, then delete the old one. Removing
        // never follows symlinks, so a planted link cannot redirect the deletion.
        let (backup, _guard) = crate::fs::backup_dir_beside(out_dir)?;
        // Under the output's own full name: `clean` can put it back even when the backup's name
        // had to cut it.
        let backup_path = backup
            .path()
            .join(out_dir.file_name().unwrap_or(std::ffi::OsStr::new("old")));
        // Tracked before the rename: interrupted at any moment from here on, the previous output
        // goes back in place (a restore of what was not yet moved does nothing).
        let _restore = crate::fs::track_restore(&backup_path, out_dir);
        std::fs::rename(out_dir, &backup_path)
            .context(|| format!("moving aside {}", out_dir.display()))?;
        let tmp_path = tmp.keep();
        if let Err(e) = std::fs::rename(&tmp_path, out_dir) {
            let _ = std::fs::rename(&backup_path, out_dir);
            let _ = std::fs::remove_dir_all(&tmp_path);
            return Err(Error::io(format!("renaming into {}", out_dir.display()), e));
        }
        drop(backup);
        return Ok(());
    }
    let tmp_path = tmp.keep();
    // rename(2) replaces an empty directory; refuse if one appeared meanwhile.
    if out_dir.symlink_metadata().is_ok() {
        let _ = std::fs::remove_dir_all(&tmp_path);
        return Err(UsageError::OutputExists {
            path: out_dir.into(),
        }
        .into());
    }
    std::fs::rename(&tmp_path, out_dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp_path);
        Error::io(format!("renaming into {}", out_dir.display()), e)
    })
}

/// Opens an archive into memory: the same checks as [`open_file_checked`], the model checks
/// included, in the same order (all before acceptance is recorded, FORMAT.md §7). Files are
/// returned only after every check passed; their total size is bounded by the signed tar size and
/// `max_bytes`.
pub fn open_reader_to_memory<R: Read + Send>(
    input: R,
    key: Decryption<'_>,
    opts: &ReadOptions<'_>,
    max_bytes: u64,
    checks: &ModelChecks,
) -> Result<(Opened, OpenedFiles)> {
    Archive::read(input, &opts.limits)?
        .verify(opts)?
        .decrypt(key)
        .to_memory(max_bytes, checks)
}

pub use crate::scan::OpenedFiles;

struct MemorySink {
    files: OpenedFiles,
    budget: u64,
}

impl EntrySink for MemorySink {
    fn file(&mut self, path: &SafeRelPath, size: u64, data: &mut dyn Read) -> Result<()> {
        if size > self.budget {
            return Err(ContentError::UnpackedTooLarge {
                found: size,
                max: self.budget,
            }
            .into());
        }
        self.budget -= size;
        // In segments, each allocated as its bytes arrive: the claim is signed, but only bytes
        // that arrive are kept, and growing one buffer would copy it.
        let buf = crate::scan::FileBytes::read_from(data, size)
            .map_err(|e| Error::io("reading the payload", e))?;
        self.files.push((path.clone(), buf));
        Ok(())
    }
}
