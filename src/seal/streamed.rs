//! The streaming seal: tar → (zstd) → chunked encryption (or none, for a public archive) →
//! BLAKE3 → out, after every input was hashed for the manifest (FORMAT.md §6). Also the OMS
//! bundle a seal may carry, which signs those hashes.

use std::io::{self, BufWriter, Read, Write};

use super::{Input, ZSTD_WINDOW_LOG};
use crate::archive::TarWriter;
use crate::crypto::{self, chunked, Sha256};
use crate::error::{Error, IoContext, Result, UsageError};
use crate::format::domain::PAYLOAD_CONTEXT;
use crate::format::manifest::{
    FileEntry, Manifest, ModelName, SafeRelPath, MANIFEST_ENTRY, OMS_ENTRY, OMS_FORMAT,
};
use crate::format::Compression;
use crate::oms::EcSigningKey;

/// The message's last step before the payload: chunked encryption, or none (a public archive).
enum Protect<W: Write> {
    Encrypt(Box<chunked::Encryptor<W>>),
    Clear(W),
}

impl<W: Write> Protect<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Protect::Encrypt(e) => (*e).finish(),
            Protect::Clear(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Protect<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Protect::Encrypt(e) => e.write(buf),
            Protect::Clear(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Protect::Encrypt(e) => e.flush(),
            Protect::Clear(w) => w.flush(),
        }
    }
}

/// A writer that counts, and optionally BLAKE3-hashes, what passes through.
struct Counting<W> {
    inner: W,
    count: u64,
    hash: Option<blake3::Hasher>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        if let Some(h) = &mut self.hash {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// SHA-256 of an input while it is copied into the tar: in the streaming path it catches a file
/// changed since the manifest was made, in the single-pass path (`stored`) it makes the manifest.
pub(super) struct Rehash<R> {
    pub(super) inner: R,
    pub(super) hash: Sha256,
}

impl<R: Read> Read for Rehash<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

pub(super) fn write_tar<W: Write>(
    w: W,
    manifest_bytes: &[u8],
    manifest: &Manifest,
    inputs: &[Input],
    oms_bundle: Option<&[u8]>,
) -> Result<W> {
    let mut tar = TarWriter::new(w);
    tar.append(
        MANIFEST_ENTRY,
        manifest_bytes.len() as u64,
        &mut &manifest_bytes[..],
    )?;
    let mut inputs = inputs.iter();
    for entry in &manifest.files {
        if let (OMS_ENTRY, Some(bundle)) = (entry.path.as_str(), oms_bundle) {
            tar.append(OMS_ENTRY, bundle.len() as u64, &mut &bundle[..])?;
            continue;
        }
        let Some(input) = inputs.next() else {
            return Err(Error::io(
                "writing the archive",
                io::Error::other("fewer inputs than manifest entries"),
            ));
        };
        let before = input.source.stamp()?;
        let mut src = Rehash {
            inner: input.source.open()?,
            hash: Sha256::default(),
        };
        tar.append(entry.path.as_str(), entry.size, &mut src)
            .map_err(|e| match e {
                Error::Content(crate::error::ContentError::SizeMismatch { .. }) => {
                    UsageError::InputChanged {
                        path: input.source.display(),
                    }
                    .into()
                }
                other => other,
            })?;
        // One byte more than the manifest said means the file grew.
        let mut extra = [0u8; 1];
        let grew = src
            .inner
            .read(&mut extra)
            .context(|| format!("reading {}", input.source.display().display()))?
            != 0;
        if grew || src.hash.finish() != entry.sha256 {
            return Err(UsageError::InputChanged {
                path: input.source.display(),
            }
            .into());
        }
        input.source.unchanged_since(&before)?;
    }
    tar.finish()
}

/// Signs `files` (hashed, sorted by path) as an OMS bundle with `key` and lists the bundle among
/// them, at [`OMS_ENTRY`] in path order: the bundle's bytes. The bundle lists every file as
/// `model_signing verify key` will find it in the directory `open` writes, so git's files at the
/// top of that directory (which model_signing leaves out by default) are left out and recorded as
/// ignored, as `model_signing sign` does.
pub(super) fn add_oms_bundle(
    name: &ModelName,
    files: &mut Vec<FileEntry>,
    key: &EcSigningKey,
) -> Result<Vec<u8>> {
    let digests = crate::oms::manifest_digests(files, crate::oms::GitPaths::Ignore)?;
    let ignored: Vec<String> = crate::oms::GIT_PATHS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let bundle = crate::oms::sign_digests(name.as_str(), digests, &ignored, key)?;
    let entry = FileEntry {
        path: SafeRelPath::parse(OMS_ENTRY, crate::limits::HARD_MAX_PATH_BYTES)?,
        size: bundle.len() as u64,
        sha256: crypto::sha256(&bundle),
        kind: crate::format::manifest::FileKind {
            format: OMS_FORMAT.into(),
            ..Default::default()
        },
    };
    let at = files
        .binary_search_by(|f| f.path.as_str().as_bytes().cmp(OMS_ENTRY.as_bytes()))
        .unwrap_or_else(|i| i);
    files.insert(at, entry);
    Ok(bundle)
}

/// What writing the payload produced, whichever writer wrote it: the header's payload fields.
pub(crate) struct PayloadInfo {
    pub salt: [u8; 24],
    pub commitment: [u8; 32],
    pub tar_size: u64,
    pub plaintext_size: u64,
    pub ciphertext_size: u64,
    pub payload_digest: [u8; 32],
}

/// The payload, streamed: tar → (zstd) → chunked encryption (none for a public archive, `file_key`
/// `None`) → BLAKE3 → out (FORMAT.md §6).
pub(super) fn write_payload<W: Write>(
    out: W,
    file_key: Option<&[u8; 32]>,
    (compression, zstd_level): (Compression, i32),
    manifest_bytes: &[u8],
    manifest: &Manifest,
    inputs: &[Input],
    oms_bundle: Option<&[u8]>,
) -> Result<PayloadInfo> {
    let sink = Counting {
        inner: BufWriter::with_capacity(1 << 20, out),
        count: 0,
        hash: Some(blake3::Hasher::new()),
    };
    let enc = match file_key {
        Some(k) => Protect::Encrypt(Box::new(
            chunked::Encryptor::new(sink, k, PAYLOAD_CONTEXT)
                .context(|| "writing the archive".into())?,
        )),
        None => Protect::Clear(sink),
    };
    let (salt, commitment) = match &enc {
        Protect::Encrypt(e) => (e.salt(), e.commitment()),
        Protect::Clear(_) => ([0; 24], [0; 32]),
    };
    let plain = Counting {
        inner: enc,
        count: 0,
        hash: None,
    };
    let (plain, tar_size) = match compression {
        Compression::Zstd => {
            let mut z = zstd::stream::write::Encoder::new(plain, zstd_level)
                .context(|| "starting zstd".into())?;
            z.window_log(ZSTD_WINDOW_LOG)
                .context(|| "configuring zstd".into())?;
            let tar = write_tar(
                Counting {
                    inner: z,
                    count: 0,
                    hash: None,
                },
                manifest_bytes,
                manifest,
                inputs,
                oms_bundle,
            )?;
            let tar_size = tar.count;
            (
                tar.inner.finish().context(|| "finishing zstd".into())?,
                tar_size,
            )
        }
        Compression::None => {
            let tar = write_tar(
                Counting {
                    inner: plain,
                    count: 0,
                    hash: None,
                },
                manifest_bytes,
                manifest,
                inputs,
                oms_bundle,
            )?;
            let tar_size = tar.count;
            (tar.inner, tar_size)
        }
    };
    let plaintext_size = plain.count;
    let mut sink = plain
        .inner
        .finish()
        .context(|| "writing the archive".into())?;
    sink.flush().context(|| "writing the archive".into())?;
    let payload_digest = *sink
        .hash
        .take()
        .expect("hashing sink")
        .finalize()
        .as_bytes();
    Ok(PayloadInfo {
        salt,
        commitment,
        tar_size,
        plaintext_size,
        ciphertext_size: sink.count,
        payload_digest,
    })
}
