//! The deterministic tar writer and the bounded tar walker (FORMAT.md §6.2).
//!
//! THREATS.md: "Never call `unpack`; iterate [...] and decide every entry yourself." The walker
//! reads 512-byte blocks itself, uses the `tar` crate only to decode header fields, and refuses
//! every entry that is not exactly what our writer produces.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use crate::crypto::{sha256, Sha256};
use crate::error::{ContentError, Error, FormatError, IoContext, Result};
use crate::format::manifest::{Manifest, SafeRelPath, MANIFEST_ENTRY};
use crate::format::Header;
use crate::limits::Limits;

/// Tar block size.
pub const BLOCK: usize = 512;
/// Longest name that fits the ustar `name` field without a PAX record.
const USTAR_NAME_LEN: usize = 100;
const PAX_PATH_KEY: &str = "path";
const PAX_SIZE_KEY: &str = "size";

/// Rounds `n` up to whole blocks, or `None` on overflow.
pub(crate) fn padded(n: u64) -> Option<u64> {
    n.checked_add(BLOCK as u64 - 1)
        .map(|v| v / BLOCK as u64 * BLOCK as u64)
}

/// The bytes one entry takes in the tar stream [`TarWriter`] writes: its pax header when the path
/// needs one, its ustar header, and its data padded to a block. `None` when it does not fit a u64.
pub(crate) fn entry_len(path: &str, size: u64) -> Option<u64> {
    let pax = TarWriter::<std::io::Sink>::pax_len(path);
    padded(size)?.checked_add(BLOCK as u64)?.checked_add(pax)
}

/// The bytes of the whole tar stream of `entries` (path, size), the two end blocks included: the
/// layout is known from the sizes alone (FORMAT.md §6.2), which the stored single-pass writer uses.
pub(crate) fn archive_len<'a>(entries: impl IntoIterator<Item = (&'a str, u64)>) -> Option<u64> {
    entries
        .into_iter()
        .try_fold(2 * BLOCK as u64, |total, (path, size)| {
            total.checked_add(entry_len(path, size)?)
        })
}

/// Writes the deterministic tar stream (FORMAT.md §6.2 rules 1-4).
pub(crate) struct TarWriter<W: Write> {
    inner: W,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        TarWriter { inner }
    }

    fn header_block(name: &[u8], size: u64, kind: tar::EntryType) -> io::Result<[u8; BLOCK]> {
        let mut h = tar::Header::new_ustar();
        // Rule 3: type, mode 0644, uid/gid 0, empty user/group names, mtime 0.
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        let ustar = h.as_ustar_mut().expect("new_ustar");
        let n = name.len().min(USTAR_NAME_LEN);
        ustar.name[..n].copy_from_slice(&name[..n]);
        h.set_cksum();
        let mut out = [0u8; BLOCK];
        out.copy_from_slice(h.as_bytes());
        Ok(out)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.inner.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Appends one regular file of exactly `size` bytes read from `data`.
    pub(crate) fn append(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        let name = path.as_bytes();
        if name.len() > USTAR_NAME_LEN {
            let record = pax_record(PAX_PATH_KEY, path);
            let hdr = Self::header_block(
                b"././@PaxHeader",
                record.len() as u64,
                tar::EntryType::XHeader,
            )
            .context(|| "tar".into())?;
            self.inner
                .write_all(&hdr)
                .context(|| "writing the payload".into())?;
            self.inner
                .write_all(record.as_bytes())
                .context(|| "writing the payload".into())?;
            self.pad(record.len() as u64)
                .context(|| "writing the payload".into())?;
        }
        let hdr =
            Self::header_block(name, size, tar::EntryType::Regular).context(|| "tar".into())?;
        self.inner
            .write_all(&hdr)
            .context(|| "writing the payload".into())?;
        let copied = io::copy(&mut data.take(size), &mut self.inner)
            .map_err(|e| Error::io(format!("reading {path}"), e))?;
        if copied != size {
            return Err(ContentError::SizeMismatch {
                path: path.into(),
                expected: size,
                found: copied,
            }
            .into());
        }
        self.pad(size).context(|| "writing the payload".into())
    }

    /// The bytes a PAX header adds before an entry named `path` (0 when the name fits ustar).
    pub(crate) fn pax_len(path: &str) -> u64 {
        if path.len() > USTAR_NAME_LEN {
            BLOCK as u64 + padded(pax_record(PAX_PATH_KEY, path).len() as u64).unwrap_or(u64::MAX)
        } else {
            0
        }
    }

    /// The inner writer, without the end-of-archive blocks (for a stream continued elsewhere).
    pub(crate) fn finish_without_end(self) -> W {
        self.inner
    }

    /// Writes the two zero blocks that end the archive.
    pub(crate) fn finish(mut self) -> Result<W> {
        self.inner
            .write_all(&[0u8; 2 * BLOCK])
            .context(|| "writing the payload".into())?;
        Ok(self.inner)
    }
}

/// One PAX record: `"%d %s=%s\n"`, where the length counts the whole record, its digits included.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len += 1;
    }
    format!("{len}{body}")
}

/// Parses PAX records; refuses anything but `path` and `size`.
fn parse_pax(data: &[u8]) -> Result<(Option<String>, Option<u64>), ContentError> {
    let bad = |detail: String| ContentError::Pax { detail };
    let mut rest = data;
    let (mut path, mut size) = (None, None);
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("record without length".into()))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad record length".into()))?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad("record length out of range".into()));
        }
        let rec = std::str::from_utf8(&rest[sp + 1..len - 1])
            .map_err(|_| bad("record not UTF-8".into()))?;
        let (k, v) = rec
            .split_once('=')
            .ok_or_else(|| bad("record without '='".into()))?;
        match k {
            PAX_PATH_KEY if path.is_none() => path = Some(v.to_owned()),
            PAX_SIZE_KEY if size.is_none() => {
                size = Some(v.parse().map_err(|_| bad(format!("bad size {v:?}")))?)
            }
            _ => {
                return Err(bad(format!(
                    "key {:?} not accepted or repeated",
                    k.chars().take(64).collect::<String>()
                )))
            }
        }
        rest = &rest[len..];
    }
    Ok((path, size))
}

/// Receives each verified-size model file as the walker streams it.
pub(crate) trait EntrySink {
    /// Consumes `data` (exactly `size` bytes) for `path`.
    fn file(&mut self, path: &SafeRelPath, size: u64, data: &mut dyn Read) -> Result<()>;
}

/// Reads that hash and count what passes through.
struct Hashing<'a, R: Read + ?Sized> {
    inner: &'a mut R,
    hash: Sha256,
    count: u64,
}

impl<R: Read + ?Sized> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

fn read_exact_or<R: Read + ?Sized>(r: &mut R, buf: &mut [u8], what: &'static str) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ContentError::TarStructure { detail: what }.into()
        } else {
            Error::io("reading the payload", e)
        }
    })
}

fn skip_padding<R: Read + ?Sized>(r: &mut R, size: u64) -> Result<()> {
    let rem = (size % BLOCK as u64) as usize;
    if rem != 0 {
        let mut pad = [0u8; BLOCK];
        read_exact_or(r, &mut pad[..BLOCK - rem], "truncated inside padding")?;
        if pad[..BLOCK - rem].iter().any(|&b| b != 0) {
            return Err(ContentError::TarStructure {
                detail: "non-zero padding",
            }
            .into());
        }
    }
    Ok(())
}

/// One decoded tar header block.
struct Entry {
    name: Vec<u8>,
    size: u64,
    kind: u8,
}

fn parse_header(block: &[u8; BLOCK], offset: u64) -> Result<Entry, ContentError> {
    let bad = |detail: String| ContentError::BadTarHeader { offset, detail };
    let h = tar::Header::from_byte_slice(block);
    let stored = h.cksum().map_err(|e| bad(format!("checksum field: {e}")))?;
    let computed: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    if stored != computed {
        return Err(bad(format!(
            "checksum {stored} but header sums to {computed}"
        )));
    }
    let ustar = h
        .as_ustar()
        .ok_or_else(|| bad("not a POSIX ustar header".into()))?;
    if ustar.prefix.iter().any(|&b| b != 0) {
        return Err(bad("ustar prefix field is not used by modelseal".into()));
    }
    let name_field = &ustar.name;
    let end = name_field
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(name_field.len());
    let name = name_field[..end].to_vec();
    // Decide on the type before anything else of the entry is interpreted: modelseal writes only
    // regular files and PAX extended headers.
    let kind = block[156];
    if kind != b'0' && kind != b'x' {
        return Err(ContentError::UnsupportedEntryType {
            path: String::from_utf8_lossy(&name).chars().take(256).collect(),
            kind: describe_kind(kind),
        });
    }
    let size = h.size().map_err(|e| bad(format!("size field: {e}")))?;
    Ok(Entry { name, size, kind })
}

fn describe_kind(kind: u8) -> String {
    match kind {
        b'1' => "hard link".into(),
        b'2' => "symlink".into(),
        b'3' => "character device".into(),
        b'4' => "block device".into(),
        b'5' => "directory".into(),
        b'6' => "FIFO".into(),
        b'7' => "contiguous file".into(),
        b'g' => "PAX global header".into(),
        b'L' => "GNU long name".into(),
        b'K' => "GNU long link name".into(),
        b'S' => "GNU sparse file".into(),
        b'\0' => "old-style regular file".into(),
        other => format!("unknown type {:?}", other as char),
    }
}

/// Walks the tar stream (FORMAT.md §7 step 11): the manifest first, checked against the signed
/// header, then each file in manifest order, streamed to `sink` and checked for size and SHA-256.
/// Returns the manifest once the end-of-archive marker has been read.
pub(crate) fn walk<R: Read + ?Sized>(
    r: &mut R,
    header: &Header,
    limits: &Limits,
    sink: &mut dyn EntrySink,
) -> Result<Manifest> {
    let mut offset: u64 = 0;
    let mut manifest: Option<Manifest> = None;
    let mut seen: HashSet<String> = HashSet::new();
    let mut next_file = 0usize;
    let mut pax: Option<(Option<String>, Option<u64>)> = None;
    let mut block = [0u8; BLOCK];
    loop {
        read_exact_or(r, &mut block, "truncated before the end-of-archive marker")?;
        offset += BLOCK as u64;
        if block.iter().all(|&b| b == 0) {
            if pax.is_some() {
                return Err(ContentError::Pax {
                    detail: "PAX header not followed by an entry".into(),
                }
                .into());
            }
            read_exact_or(r, &mut block, "end-of-archive marker is a single block")?;
            if block.iter().any(|&b| b != 0) {
                return Err(ContentError::TarStructure {
                    detail: "entry after a zero block",
                }
                .into());
            }
            break;
        }
        let entry = parse_header(&block, offset - BLOCK as u64)?;
        let lossy_name = String::from_utf8_lossy(&entry.name)
            .chars()
            .take(256)
            .collect::<String>();
        if entry.kind == b'x' {
            if pax.is_some() {
                return Err(ContentError::Pax {
                    detail: "two PAX headers in a row".into(),
                }
                .into());
            }
            if entry.size > limits.max_pax_bytes {
                return Err(ContentError::Pax {
                    detail: format!("{} bytes, limit {}", entry.size, limits.max_pax_bytes),
                }
                .into());
            }
            let mut data = vec![0u8; entry.size as usize];
            read_exact_or(r, &mut data, "truncated inside a PAX header")?;
            skip_padding(r, entry.size)?;
            offset = offset.saturating_add(padded(entry.size).unwrap_or(u64::MAX));
            pax = Some(parse_pax(&data)?);
            continue;
        }
        let (pax_path, pax_size) = pax.take().unwrap_or((None, None));
        if let Some(s) = pax_size {
            if s != entry.size {
                return Err(ContentError::Pax {
                    detail: format!("PAX size {s} differs from header size {}", entry.size),
                }
                .into());
            }
        }
        let name = match pax_path {
            Some(p) => {
                if !p.as_bytes().starts_with(&entry.name) {
                    return Err(ContentError::Pax {
                        detail: "PAX path disagrees with the name field".into(),
                    }
                    .into());
                }
                p
            }
            None => String::from_utf8(entry.name).map_err(|_| FormatError::UnsafePath {
                path: lossy_name.clone(),
                reason: "not UTF-8",
            })?,
        };
        let data_end = offset.saturating_add(padded(entry.size).unwrap_or(u64::MAX));
        let Some(m) = &manifest else {
            // Rule 1: the manifest comes first, with the signed size and hash.
            if name != MANIFEST_ENTRY {
                return Err(ContentError::ManifestNotFirst { found: name }.into());
            }
            if entry.size != header.manifest_size && !crate::FUZZING {
                return Err(ContentError::ManifestMismatch { field: "size" }.into());
            }
            // Bounded here, before allocating, whatever the header said (found by fuzzing, where the
            // header's own bound is bypassed: defence in depth).
            if entry.size > limits.max_manifest_bytes {
                return Err(FormatError::InvalidManifest {
                    rule: crate::error::ManifestRule::TooLarge,
                    detail: format!("{} bytes, limit {}", entry.size, limits.max_manifest_bytes),
                }
                .into());
            }
            let mut bytes = vec![0u8; entry.size as usize];
            read_exact_or(r, &mut bytes, "truncated inside the manifest")?;
            skip_padding(r, entry.size)?;
            offset = data_end;
            if sha256(&bytes) != header.manifest_sha256 && !crate::FUZZING {
                return Err(ContentError::ManifestMismatch { field: "SHA-256" }.into());
            }
            let parsed = Manifest::from_bytes(&bytes, limits)?;
            if parsed.name.as_str() != header.model_name {
                return Err(ContentError::ManifestMismatch { field: "name" }.into());
            }
            if parsed.version.to_string() != header.model_version {
                return Err(ContentError::ManifestMismatch { field: "version" }.into());
            }
            if parsed.created != header.created {
                return Err(ContentError::ManifestMismatch {
                    field: "creation time",
                }
                .into());
            }
            seen.insert(name);
            manifest = Some(parsed);
            continue;
        };
        let path = SafeRelPath::parse(&name, limits.max_path_bytes)?;
        if seen.contains(&name) {
            return Err(ContentError::DuplicateEntry { path: name }.into());
        }
        if seen.len() > limits.max_files {
            return Err(ContentError::TooManyFiles {
                max: limits.max_files,
            }
            .into());
        }
        let Some(expected) = m.files.get(next_file) else {
            return Err(ContentError::NotInManifest { path: name }.into());
        };
        if expected.path != path {
            return Err(if m.files.iter().any(|f| f.path == path) {
                ContentError::MissingEntry {
                    path: expected.path.to_string(),
                }
            } else {
                ContentError::NotInManifest { path: name }
            }
            .into());
        }
        if entry.size != expected.size {
            return Err(ContentError::SizeMismatch {
                path: name,
                expected: expected.size,
                found: entry.size,
            }
            .into());
        }
        let mut limited = r.take(entry.size);
        let mut hashing = Hashing {
            inner: &mut limited,
            hash: Sha256::default(),
            count: 0,
        };
        sink.file(&path, entry.size, &mut hashing)?;
        // The sink must have consumed everything; drain what it left so the hash covers it all.
        io::copy(&mut hashing, &mut io::sink()).map_err(|e| Error::io("reading the payload", e))?;
        if hashing.count != entry.size {
            return Err(ContentError::TarStructure {
                detail: "truncated inside a file",
            }
            .into());
        }
        let found = hashing.hash.finish();
        if found != expected.sha256 {
            return Err(ContentError::HashMismatch {
                path: name,
                expected: hex::encode(expected.sha256),
                found: hex::encode(found),
            }
            .into());
        }
        skip_padding(r, entry.size)?;
        offset = data_end;
        seen.insert(name);
        next_file += 1;
    }
    let Some(m) = manifest else {
        return Err(ContentError::ManifestNotFirst {
            found: "(end of archive)".into(),
        }
        .into());
    };
    if let Some(missing) = m.files.get(next_file) {
        return Err(ContentError::MissingEntry {
            path: missing.path.to_string(),
        }
        .into());
    }
    let _ = offset;
    Ok(m)
}

/// A reader that refuses to yield more than the signed size, and remembers how much it yielded.
pub(crate) struct Exact<R> {
    inner: R,
    expected: u64,
    count: u64,
}

impl<R: Read> Exact<R> {
    pub(crate) fn new(inner: R, expected: u64) -> Self {
        Exact {
            inner,
            expected,
            count: 0,
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.expected {
            return Err(Error::from(ContentError::UnpackedSize {
                expected: self.expected,
                found: self.count,
            })
            .into_io());
        }
        Ok(n)
    }
}

/// Decompression errors from zstd come as plain I/O errors; name them as refusals.
pub(crate) fn zstd_error(e: io::Error) -> Error {
    match Error::io("decompressing", e) {
        Error::Io { source, .. } => ContentError::Decompression {
            detail: source.to_string(),
        }
        .into(),
        typed => typed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for v in ["a", &"x".repeat(90), &"y".repeat(995)] {
            let r = pax_record("path", v);
            let (len, _) = r.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len());
            assert_eq!(
                parse_pax(r.as_bytes()).unwrap(),
                (Some(v.to_string()), None)
            );
        }
    }

    /// Regression for fuzz/artifacts/tar_walk/oom-25eae30a…: a manifest entry claiming 2 GiB must be
    /// refused before allocation even when the header it is checked against claims the same size.
    #[test]
    fn a_huge_manifest_entry_is_refused_before_allocating() {
        let size = (2u64 << 30) + 426;
        let h = Header {
            suite: crate::format::Suite::Mseal1Ed25519X25519Cobblestone256Blake3,
            signer: [0; 16],
            recipients: vec![],
            salt: [0; 24],
            commitment: [0; 32],
            compression: crate::format::Compression::None,
            tar_size: size + 2048,
            plaintext_size: size + 2048,
            chunk_count: 1,
            ciphertext_size: 0,
            payload_digest: [0; 32],
            model_name: "m".into(),
            model_version: "1.0.0".into(),
            created: 0,
            expires: None,
            manifest_size: size,
            manifest_sha256: [0; 32],
        };
        let mut tar =
            TarWriter::<Vec<u8>>::header_block(b"manifest", size, tar::EntryType::Regular)
                .unwrap()
                .to_vec();
        tar.extend_from_slice(&[0u8; 1024]);
        let e = walk(&mut &tar[..], &h, &Limits::default(), &mut NoSink).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Format(FormatError::InvalidManifest {
                    rule: crate::error::ManifestRule::TooLarge,
                    ..
                })
            ),
            "{e:?}"
        );
    }

    struct NoSink;
    impl EntrySink for NoSink {
        fn file(&mut self, _: &SafeRelPath, _: u64, _: &mut dyn Read) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pax_refuses_other_keys() {
        assert!(parse_pax(pax_record("linkpath", "/etc").as_bytes()).is_err());
        assert!(parse_pax(b"999 path=x\n").is_err());
    }
}
