//! Single-pass sealing of stored (uncompressed) payloads: every input byte is read once for the
//! payload. (Before that, `seal` reads each file's format: a pickle or joblib file is walked
//! whole by `scan::describe` to record its globals, so a pickle is read twice; other files only
//! their first bytes.)
//!
//! When the payload is not compressed, the tar layout is known from the file sizes alone: the
//! manifest has a fixed length (its hashes are fixed-width), so every entry's plaintext offset, and
//! so its chunk, is known before any hash is computed. One thread reads each input once, computes
//! its SHA-256 and frames it as tar; another encrypts and writes the chunks that follow the
//! manifest as they fill. The chunks that hold the manifest (the first few KiB) are kept in memory
//! and encrypted, once, at the end, when the hashes are known; the BLAKE3 payload digest is then
//! computed over the finished payload. The hashed bytes are the encrypted bytes: a file changed
//! while sealing cannot make the manifest disagree with the payload.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc;

use super::{Input, PayloadInfo};
use crate::archive::{self, TarWriter};
use crate::crypto::chunked::{self, ChunkSealer, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};
use crate::crypto::Sha256;
use crate::error::{Error, IoContext, Result, UsageError};
use crate::format::domain::PAYLOAD_CONTEXT;
use crate::format::manifest::MANIFEST_ENTRY;

/// Bytes per message between the two threads; the channel holds at most `QUEUE` of them, which
/// bounds memory.
const BLOCK_BYTES: usize = 1 << 20;
const QUEUE: usize = 4;
/// Read-back block for the payload digest: large enough for BLAKE3 to spread over both cores.
const READBACK_BYTES: usize = 8 << 20;

/// What the stored writer produced: the payload, as the streaming writer describes its own, and
/// what only this writer learns at the end.
pub(crate) struct Stored {
    pub payload: PayloadInfo,
    /// SHA-256 of each input, in order.
    pub hashes: Vec<[u8; 32]>,
    /// The final manifest bytes.
    pub manifest_bytes: Vec<u8>,
}

/// Sends the tar stream in blocks.
struct ChannelWriter {
    tx: mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK_BYTES - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK_BYTES {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let block = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK_BYTES));
            self.tx
                .send(block)
                .map_err(|_| io::Error::other("the encrypting thread stopped"))?;
        }
        Ok(())
    }
}

/// How each chunk is stored: sealed (an encrypted archive), or as it is (a public archive, whose
/// payload is the message itself, FORMAT.md §4.5; its "chunks" are only this writer's framing).
#[derive(Clone, Copy)]
enum Protection<'a> {
    Sealed(&'a ChunkSealer),
    Clear,
}

impl Protection<'_> {
    /// The bytes before the first chunk.
    fn prefix(self) -> Vec<u8> {
        match self {
            Protection::Sealed(s) => s.prefix().to_vec(),
            Protection::Clear => Vec::new(),
        }
    }

    /// Bytes a full chunk takes in the payload.
    fn stored_chunk_len(self) -> u64 {
        match self {
            Protection::Sealed(_) => ENCRYPTED_CHUNK_SIZE as u64,
            Protection::Clear => CHUNK_SIZE as u64,
        }
    }

    fn seal(self, index: u64, chunk: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Protection::Sealed(s) => s.seal(index, chunk),
            Protection::Clear => Ok(()),
        }
    }
}

/// Receives the tar stream after the manifest region and writes every chunk that does not hold
/// manifest bytes, in order.
struct ChunkWriter<'a, W: Write> {
    out: W,
    sealer: Protection<'a>,
    /// Plaintext bytes of the deferred chunks that follow the manifest region.
    deferred_tail: Vec<u8>,
    deferred_len: u64,
    pos: u64,
    chunk: Vec<u8>,
    next_index: u64,
}

impl<W: Write> ChunkWriter<'_, W> {
    fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.pos < self.deferred_len {
                let n = ((self.deferred_len - self.pos) as usize).min(data.len());
                self.deferred_tail.extend_from_slice(&data[..n]);
                self.pos += n as u64;
                data = &data[n..];
                continue;
            }
            let n = (CHUNK_SIZE - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..n]);
            self.pos += n as u64;
            data = &data[n..];
            // A full chunk is never the final one: emit it now (c2sp implementation notes).
            if self.chunk.len() == CHUNK_SIZE {
                self.emit()?;
            }
        }
        Ok(())
    }

    fn emit(&mut self) -> io::Result<()> {
        self.sealer.seal(self.next_index, &mut self.chunk)?;
        self.out.write_all(&self.chunk)?;
        self.chunk.clear();
        self.next_index += 1;
        Ok(())
    }
}

/// Writes the stored payload of `inputs` at the current position of `out` (which must be
/// `payload_offset`), encrypted under `file_key`, or in the clear without one (a public archive).
/// `manifest_for` turns the input hashes into the final manifest bytes, whose length must equal
/// `manifest_len`.
pub(crate) fn write<W: Write + Seek + Read + Send>(
    out: &mut W,
    payload_offset: u64,
    file_key: Option<&[u8; 32]>,
    inputs: &[Input],
    sizes: &[u64],
    manifest_len: u64,
    manifest_for: impl FnOnce(&[[u8; 32]]) -> Result<Vec<u8>>,
) -> Result<Stored> {
    let chunk_sealer = file_key.map(|k| ChunkSealer::new(k, PAYLOAD_CONTEXT));
    let sealer = match &chunk_sealer {
        Some(s) => Protection::Sealed(s),
        None => Protection::Clear,
    };
    let prefix = sealer.prefix();
    let too_large = || Error::io("sizing", io::Error::other("archive too large"));
    // The manifest region: its ustar header and padded data.
    let manifest_region = archive::entry_len(MANIFEST_ENTRY, manifest_len).ok_or_else(too_large)?;
    let entries = inputs
        .iter()
        .zip(sizes)
        .map(|(i, &size)| (i.archive_path.as_str(), size));
    let tar_size =
        archive::archive_len(std::iter::once((MANIFEST_ENTRY, manifest_len)).chain(entries))
            .ok_or_else(too_large)?;
    let chunk_count = chunked::chunk_count(tar_size);
    // Chunks that hold any manifest byte are deferred; so is everything up to their end.
    let deferred_chunks = manifest_region.div_ceil(CHUNK_SIZE as u64).min(chunk_count);
    let deferred_len = (deferred_chunks * CHUNK_SIZE as u64).min(tar_size) - manifest_region;

    out.write_all(&prefix)
        .context(|| "writing the archive".into())?;
    let first_streamed =
        payload_offset + prefix.len() as u64 + deferred_chunks * sealer.stored_chunk_len();
    out.seek(SeekFrom::Start(first_streamed))
        .context(|| "writing the archive".into())?;

    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
    let (hashes, writer) = std::thread::scope(|s| {
        let reader = s.spawn(move || read_inputs(inputs, sizes, tx));
        let mut writer = ChunkWriter {
            out: io::BufWriter::with_capacity(BLOCK_BYTES, &mut *out),
            sealer,
            deferred_tail: Vec::new(),
            deferred_len,
            pos: 0,
            chunk: Vec::with_capacity(ENCRYPTED_CHUNK_SIZE),
            next_index: deferred_chunks,
        };
        let mut write_result = Ok(());
        for block in rx.iter() {
            if let Err(e) = writer.push(&block) {
                write_result = Err(e);
                break;
            }
        }
        drop(rx);
        let read_result = reader.join().unwrap_or_else(|_| {
            Err(Error::io(
                "reading inputs",
                io::Error::other("reader thread panicked"),
            ))
        });
        // A write error stops the reader; report the write error then.
        write_result.context(|| "writing the archive".into())?;
        let hashes = read_result?;
        // The final, short (possibly empty) chunk, unless the whole message is deferred.
        if chunk_count > deferred_chunks {
            writer.emit().context(|| "writing the archive".into())?;
        }
        writer
            .out
            .flush()
            .context(|| "writing the archive".into())?;
        let ChunkWriter { deferred_tail, .. } = writer;
        Ok::<_, Error>((hashes, deferred_tail))
    })?;

    // The manifest, now that the hashes are known, and the deferred chunks.
    let manifest_bytes = manifest_for(&hashes)?;
    if manifest_bytes.len() as u64 != manifest_len {
        return Err(Error::io(
            "writing the manifest",
            io::Error::other("manifest length changed"),
        ));
    }
    let mut head = TarWriter::new(Vec::with_capacity(manifest_region as usize + writer.len()));
    head.append(MANIFEST_ENTRY, manifest_len, &mut &manifest_bytes[..])?;
    let mut plain = head.finish_without_end();
    plain.extend_from_slice(&writer);
    out.seek(SeekFrom::Start(payload_offset + prefix.len() as u64))
        .context(|| "writing the archive".into())?;
    for index in 0..deferred_chunks {
        let start = (index as usize) * CHUNK_SIZE;
        let end = (start + CHUNK_SIZE).min(plain.len());
        let mut chunk = plain[start..end].to_vec();
        sealer
            .seal(index, &mut chunk)
            .context(|| "writing the archive".into())?;
        out.write_all(&chunk)
            .context(|| "writing the archive".into())?;
    }

    // The payload digest over the finished payload.
    let ciphertext_size = match sealer {
        Protection::Sealed(_) => chunked::ciphertext_len(tar_size),
        Protection::Clear => Some(tar_size),
    }
    .ok_or_else(|| Error::io("sizing", io::Error::other("archive too large")))?;
    out.seek(SeekFrom::Start(payload_offset))
        .context(|| "reading back the payload".into())?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; READBACK_BYTES];
    let mut left = ciphertext_size;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        out.read_exact(&mut buf[..n])
            .context(|| "reading back the payload".into())?;
        // Both cores: the other thread is idle by now.
        hasher.update_rayon(&buf[..n]);
        left -= n as u64;
    }
    let (salt, commitment) = match sealer {
        Protection::Sealed(s) => {
            let p = s.prefix();
            (
                p[..24].try_into().expect("24 bytes"),
                p[24..].try_into().expect("32 bytes"),
            )
        }
        Protection::Clear => ([0; 24], [0; 32]),
    };
    Ok(Stored {
        payload: PayloadInfo {
            salt,
            commitment,
            tar_size,
            plaintext_size: tar_size,
            ciphertext_size,
            payload_digest: *hasher.finalize().as_bytes(),
        },
        hashes,
        manifest_bytes,
    })
}

/// Reads each input once: SHA-256 and tar framing, sent to the encrypting thread.
fn read_inputs(
    inputs: &[Input],
    sizes: &[u64],
    tx: mpsc::SyncSender<Vec<u8>>,
) -> Result<Vec<[u8; 32]>> {
    let mut tar = TarWriter::new(ChannelWriter {
        tx,
        buf: Vec::with_capacity(BLOCK_BYTES),
    });
    let mut hashes = Vec::with_capacity(inputs.len());
    for (input, &size) in inputs.iter().zip(sizes) {
        // A file rewritten in place at the same size while it is read would give an archive
        // whose content never existed as a file: compared as GNU tar does.
        let before = input.source.stamp()?;
        let mut src = super::Rehash {
            inner: input.source.open()?,
            hash: Sha256::default(),
        };
        tar.append(input.archive_path.as_str(), size, &mut src)
            .map_err(|e| match e {
                Error::Content(_) => UsageError::InputChanged {
                    path: input.source.display(),
                }
                .into(),
                other => other,
            })?;
        let mut probe = [0u8; 1];
        if src
            .inner
            .read(&mut probe)
            .context(|| format!("reading {}", input.source.display().display()))?
            != 0
        {
            return Err(UsageError::InputChanged {
                path: input.source.display(),
            }
            .into());
        }
        input.source.unchanged_since(&before)?;
        hashes.push(src.hash.finish());
    }
    let mut w = tar.finish()?;
    w.flush().context(|| "writing the archive".into())?;
    Ok(hashes)
}
