//! Steps 7-12 of FORMAT.md §7 over the payload that follows the signature block: the key
//! unwrapped and committed to, then two threads, one reading, BLAKE3-hashing and decrypting (or,
//! for a public archive, only reading), the other decompressing and walking the tar into a sink.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Decryption;
use crate::archive::{self, EntrySink, Exact};
use crate::crypto::{chunked, wrap};
use crate::error::{ContentError, DecryptError, Error, IoContext, Result, UsageError, VerifyError};
use crate::format::domain::PAYLOAD_CONTEXT;
use crate::format::manifest::Manifest;
use crate::format::{Compression, Header, Stanza};
use crate::limits::Limits;
use crate::verify::Verified;

/// A reader that BLAKE3-hashes and counts what it reads. Raw I/O errors from the file are boxed
/// as [`Error::Io`] so that layers above can tell them from decoder errors.
struct Hashing<R> {
    inner: R,
    hash: blake3::Hasher,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .inner
            .read(buf)
            .map_err(|e| Error::io("reading the archive", e).into_io_boxed())?;
        // Large reads (verify without a key) hash on every core; small ones are not worth it.
        if n >= RAYON_MIN {
            self.hash.update_rayon(&buf[..n]);
        } else {
            self.hash.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

impl Error {
    fn into_io_boxed(self) -> io::Error {
        io::Error::other(crate::error::Boxed(self))
    }
}

/// Steps 7-8: unwrap the payload input key, then check the key commitment against the signed
/// header before any chunk is decrypted.
fn unwrap_key(header: &Verified<Header>, key: Decryption<'_>) -> Result<Zeroizing<[u8; 32]>> {
    let h = header.get();
    let mut tried = 0;
    let mut found = None;
    for stanza in &h.recipients {
        let k = match (stanza, key) {
            (
                Stanza::X25519 {
                    ephemeral,
                    wrapped_key,
                },
                Decryption::Identity(id),
            ) => {
                tried += 1;
                wrap::x25519_unwrap(id.x25519(), ephemeral, wrapped_key)?
            }
            (Stanza::SharedKey { salt, wrapped_key }, Decryption::Shared(s)) => {
                tried += 1;
                wrap::shared_unwrap(s.bytes(), salt, wrapped_key)
            }
            _ => None,
        };
        if k.is_some() {
            found = k;
            break;
        }
    }
    let key_kind = match key {
        Decryption::Identity(_) => "identity",
        Decryption::Shared(_) => "shared key",
        Decryption::None => return Err(UsageError::NoOpeningKey.into()),
    };
    let file_key = found.ok_or(DecryptError::NoMatchingRecipient {
        stanzas: tried,
        key_kind,
    })?;
    // FORMAT.md §4.4: the commitment, in constant time.
    let commitment = chunked::commitment(&file_key, &h.salt, PAYLOAD_CONTEXT);
    if !bool::from(commitment.ct_eq(&h.commitment)) && !crate::FUZZING {
        return Err(DecryptError::KeyCommitmentMismatch.into());
    }
    Ok(file_key)
}

/// Wraps a decoder so that its own (non-boxed) errors become typed decompression refusals.
struct DecoderErrors<R>(R);

impl<R: Read> Read for DecoderErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| archive::zstd_error(e).into_io_boxed())
    }
}

/// How the payload is read.
enum Reading {
    /// An encrypted payload without its key: its structure and digest only.
    DigestOnly,
    /// A public payload: the message in the clear (FORMAT.md §4.5).
    Clear,
    /// An encrypted payload and its input key.
    Decrypt(Zeroizing<[u8; 32]>),
}

/// Steps 9-12 over the payload bytes that follow the signature block. `sink` receives each
/// checked file; nothing is final until this returns `Ok`. Without a key (`None`) an encrypted
/// payload is checked for its structure and digest only and no manifest is returned; a public
/// payload is read whole either way.
pub(super) fn process_payload<R: Read + Send>(
    header: &Verified<Header>,
    key: Option<Decryption<'_>>,
    input: &mut R,
    limits: &Limits,
    sink: &mut dyn EntrySink,
) -> Result<Option<Manifest>> {
    let h = header.get();
    // Unwrap before reading anything of the payload: a wrong identity fails fast.
    let reading = match key {
        _ if h.suite.is_public() => Reading::Clear,
        None => Reading::DigestOnly,
        Some(k) => Reading::Decrypt(unwrap_key(header, k)?),
    };
    if h.tar_size > limits.max_unpacked_bytes {
        return Err(ContentError::UnpackedTooLarge {
            found: h.tar_size,
            max: limits.max_unpacked_bytes,
        }
        .into());
    }
    let mut hashed = Hashing {
        inner: input.take(h.ciphertext_size),
        hash: blake3::Hasher::new(),
        count: 0,
    };
    let result = (|| -> Result<Option<Manifest>> {
        let mut prefix = [0u8; chunked::PREFIX_SIZE];
        if !matches!(reading, Reading::Clear) {
            hashed.read_exact(&mut prefix).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => Error::from(VerifyError::Truncated {
                    expected: h.ciphertext_size,
                    found: 0,
                }),
                _ => Error::io("reading the payload", e),
            })?;
            if prefix[..24] != h.salt || prefix[24..] != h.commitment {
                return Err(VerifyError::HeaderPayloadMismatch.into());
            }
        }
        if matches!(reading, Reading::DigestOnly) {
            return Ok(None);
        }
        // Steps 9-11 on two threads: this one decompresses, walks the tar, hashes and writes each
        // file; the other reads, BLAKE3-hashes and decrypts (or only passes a public payload on),
        // a bounded queue ahead.
        let hashed = &mut hashed;
        let reading = &reading;
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::sync_channel(PIPELINE_QUEUE);
            let decrypting = s.spawn(move || match reading {
                Reading::Decrypt(file_key) => {
                    decrypt_stage(prefix, hashed, file_key, limits.max_chunk_count, tx)
                }
                _ => clear_stage(hashed, tx),
            });
            let mut plain = ChannelReader {
                rx,
                buf: Vec::new(),
                pos: 0,
                failed: false,
            };
            let manifest = content_stage(&mut plain, h, limits, sink);
            // Closing the queue stops the decrypting thread if it is still going.
            drop(plain);
            decrypting.join().map_err(|_| {
                Error::io(
                    "decrypting",
                    io::Error::other("the decrypting thread panicked"),
                )
            })?;
            manifest.map(Some)
        })
    })();
    // Step 12: the digest over every payload byte. After a failure inside the payload, read the
    // rest of the signed length first: an altered payload is reported as such (FORMAT.md §6).
    // Small: a zeroed buffer costs a memset on every open, and the reader below is buffered.
    let mut drain = vec![0u8; 64 << 10];
    loop {
        match hashed.read(&mut drain) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading the archive", e)),
        }
    }
    if hashed.count < h.ciphertext_size {
        return Err(VerifyError::Truncated {
            expected: h.ciphertext_size,
            found: hashed.count,
        }
        .into());
    }
    let found = hashed.hash.finalize();
    if !bool::from(found.as_bytes().ct_eq(&h.payload_digest)) && !crate::FUZZING {
        return Err(VerifyError::PayloadDigestMismatch {
            expected: hex::encode(h.payload_digest),
            found: found.to_hex().to_string(),
        }
        .into());
    }
    let manifest = result?;
    // Nothing may follow the payload.
    let mut probe = [0u8; 1];
    if hashed
        .inner
        .into_inner()
        .read(&mut probe)
        .context(|| "reading the archive".into())?
        != 0
    {
        return Err(VerifyError::TrailingData.into());
    }
    Ok(manifest)
}

fn expect_end<R: Read>(tar: &mut Exact<R>, expected: u64) -> Result<()> {
    let mut probe = [0u8; 1];
    let n = tar
        .read(&mut probe)
        .map_err(|e| Error::io("reading the payload", e))?;
    if n != 0 || tar.count() != expected {
        return Err(ContentError::UnpackedSize {
            expected,
            found: tar.count() + n as u64,
        }
        .into());
    }
    Ok(())
}

/// Reads at least this large are BLAKE3-hashed with rayon.
const RAYON_MIN: usize = 1 << 20;

/// Plaintext blocks in flight between the two threads; bounds memory at ~4 MiB.
const PIPELINE_QUEUE: usize = 4;
const PIPELINE_BLOCK: usize = 1 << 20;

/// The decrypting thread: step 9. Sends plaintext blocks; on an error, sends it and stops. The
/// queue closes cleanly only after the final short chunk was authenticated.
fn decrypt_stage<R: Read>(
    prefix: [u8; chunked::PREFIX_SIZE],
    hashed: &mut R,
    file_key: &[u8; 32],
    max_chunks: u64,
    tx: mpsc::SyncSender<Result<Vec<u8>>>,
) {
    let mut dec = match chunked::Decryptor::new(
        io::Cursor::new(prefix).chain(hashed),
        file_key,
        PAYLOAD_CONTEXT,
        max_chunks,
    ) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    loop {
        // Filled by read_to_end, which needs no zeroed buffer (no memset of 1 MiB per block).
        let mut block = Vec::with_capacity(PIPELINE_BLOCK);
        if let Err(e) = (&mut dec)
            .take(PIPELINE_BLOCK as u64)
            .read_to_end(&mut block)
        {
            let _ = tx.send(Err(Error::io("reading the payload", e)));
            return;
        }
        let filled = block.len();
        if filled == 0 {
            return;
        }
        if tx.send(Ok(block)).is_err() {
            return;
        }
    }
}

/// The reading thread of a public payload: step 9 without decryption. The message is the payload.
fn clear_stage<R: Read>(payload: &mut R, tx: mpsc::SyncSender<Result<Vec<u8>>>) {
    loop {
        let mut block = Vec::with_capacity(PIPELINE_BLOCK);
        if let Err(e) = (&mut *payload)
            .take(PIPELINE_BLOCK as u64)
            .read_to_end(&mut block)
        {
            let _ = tx.send(Err(Error::io("reading the payload", e)));
            return;
        }
        if block.is_empty() || tx.send(Ok(block)).is_err() {
            return;
        }
    }
}

/// Reads the plaintext blocks sent by the decrypting thread.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    failed: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("the payload failed to decrypt"));
        }
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(block)) => {
                    self.buf = block;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.failed = true;
                    return Err(e.into_io());
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Steps 10-11: decompress under limits (the stream may never exceed the signed tar size), walk
/// the tar, and check that the message ends exactly there.
fn content_stage(
    plain: &mut ChannelReader,
    h: &Header,
    limits: &Limits,
    sink: &mut dyn EntrySink,
) -> Result<Manifest> {
    let manifest = match h.compression {
        Compression::None => {
            let mut tar = Exact::new(&mut *plain, h.tar_size);
            let m = archive::walk(&mut tar, h, limits, sink)?;
            expect_end(&mut tar, h.tar_size)?;
            m
        }
        Compression::Zstd => {
            let mut z = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(
                1 << 16,
                &mut *plain,
            ))
            .map_err(archive::zstd_error)?
            .single_frame();
            z.window_log_max(limits.zstd_window_log_max)
                .map_err(archive::zstd_error)?;
            let mut tar = Exact::new(DecoderErrors(z), h.tar_size);
            let m = archive::walk(&mut tar, h, limits, sink)?;
            expect_end(&mut tar, h.tar_size)?;
            // One frame, and nothing after it.
            let mut rest = tar.into_inner().0.finish();
            if !rest
                .fill_buf()
                .map_err(|e| Error::io("reading the payload", e))?
                .is_empty()
            {
                return Err(ContentError::Decompression {
                    detail: "data after the zstd frame".into(),
                }
                .into());
            }
            m
        }
    };
    // The message ends here: the final short chunk must have been authenticated.
    let mut probe = [0u8; 1];
    if plain
        .read(&mut probe)
        .map_err(|e| Error::io("reading the payload", e))?
        != 0
    {
        return Err(ContentError::Decompression {
            detail: "data after the compressed stream".into(),
        }
        .into());
    }
    Ok(manifest)
}
