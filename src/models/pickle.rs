//! Static, bounded, streaming walker for pickle and joblib model files.
//!
//! [`scan`] reads the opcode stream of a Python pickle (plain, joblib, or zlib-compressed joblib)
//! without running any of it. It reports which globals the pickle would import, the pickle
//! protocol, and the scikit-learn version stored under `_sklearn_version` in estimator state.
//! modelseal records these in the signed manifest. `open --allow-globals` then refuses a
//! pickle that imports anything outside the allow-list.
//!
//! # What is modelled
//!
//! * The walker recognises all 68 opcodes of protocols 0 to 5 (CPython `Lib/pickletools.py`),
//!   each with its exact argument encoding. An unknown opcode is an error and is never skipped.
//! * `GLOBAL` and `INST` record their text argument. `STACK_GLOBAL` records the two strings on
//!   top of a symbolic stack. The stack and memo keep short strings, so a module name fetched
//!   with `BINGET` is resolved. If an operand is anything else (a non-string, a string longer
//!   than [`PickleLimits::max_string`], a string that could not be decoded, or the result of a
//!   call), the walker records `"<unresolved>"`; it never drops the import. `EXT1`/`EXT2`/`EXT4`
//!   record `"<ext:N>"`. `PERSID`/`BINPERSID` record `"<persistent_id>"`, because a loader that
//!   defines `persistent_load` can return any object.
//! * The symbolic stack follows the stack effect of every opcode, including MARK fences and the
//!   stack underflows that the real unpicklers refuse.
//! * `sklearn_version` is the string pushed right after a `"_sklearn_version"` string (directly
//!   or through a memo get), taking the first one found. That is the value of the key in an
//!   estimator's state dict.
//! * The framing rules of protocol 4 are enforced as CPython's pure-Python unpickler enforces them
//!   (joblib uses that unpickler). A read that runs past the end of a `FRAME` is refused, and so
//!   is a `FRAME` that starts before the current one ends. The C unpickler handles those cases
//!   differently, so refusing them keeps the two readers in agreement.
//!
//! # joblib
//!
//! joblib writes every numpy array as a `joblib.numpy_pickle.NumpyArrayWrapper` object
//! (`NEWOBJ` + state dict + `BUILD`), then writes the array bytes *inside* the pickle stream,
//! directly after that `BUILD`. joblib 1.6 writes one padding-length byte `n` and `n` bytes of
//! `0xff` (only when the wrapper state has a non-`None` `numpy_array_alignment_bytes`), then
//! `prod(shape) * dtype.itemsize` bytes. For object-dtype arrays it instead writes a complete
//! nested pickle stream. joblib 1.6 reads that stream with a fresh `pickle._Unpickler`, in
//! which wrappers are not special; older joblib used `pickle.load`. The walker does what
//! `joblib.numpy_pickle.NumpyUnpickler` does. After a wrapper `BUILD` it takes `shape`,
//! `dtype` (a `numpy.dtype` REDUCE plus its `BUILD` state: itemsize and the `hasobject` flag
//! bit, as numpy's `__setstate__` reads them) and the alignment attribute from the symbolic
//! state. It then skips the padding and data in bounded chunks, or walks the nested pickle. If
//! any of those values is not exactly known, the scan stops with [`PickleError::Malformed`]
//! rather than guess.
//!
//! The same bytes can also be fed to plain `pickle.load` (or `pandas.read_pickle`, ...). That
//! loader treats the array bytes as more opcodes. So the walker never reports fewer imports
//! than *either* loader would perform. Plain `pickle.load` always stops at the first wrapper,
//! one way or the other, so only the first wrapper needs checking:
//!
//! * If the first wrapper is a raw array, its bytes go to a syntax-only opcode parser that
//!   models plain `pickle.load` continuing there. The region is accepted only if that parse
//!   dies inside it (an invalid opcode, such as joblib's padding-length byte 1..=16) or reaches
//!   `STOP` before any importing opcode. Otherwise the scan is refused.
//! * If the first wrapper is an object array, its nested pickle is walked twice in lockstep.
//!   One walk is joblib's reading (fresh stack and memo). The other is plain `pickle.load`,
//!   with the outer memo underneath and `MEMOIZE` numbering continuing from it; it ends at the
//!   nested `STOP`. Both walks add to the same `globals`. Plain `pickle.load` of a legitimate
//!   file can then really try imports such as `criterion.dtype`, when a nested `BINGET`
//!   resolves to an outer string, and those are reported as well.
//!   For zlib files this models `pickle.loads` of the decompressed stream.
//! * A `NumpyArrayWrapper` instance that the walker cannot follow exactly (built by `REDUCE`,
//!   `OBJ`, `INST`, `copyreg._reconstructor`, ... , or any object after the wrapper class or an
//!   instance was handed to a call) makes its `BUILD` a `Malformed` error.
//!
//! A global whose qualified name ends in `.NumpyArrayWrapper` counts as the wrapper class, and
//! its first appearance upgrades [`PickleInfo::format`] from `Pickle` to `Joblib`.
//!
//! # Bounds
//!
//! Every length read from the input is checked against [`PickleLimits`] before anything is
//! allocated. Large `BINBYTES`/`BINUNICODE`/`BYTEARRAY8` payloads and array data are read and
//! dropped in 64 KiB chunks and never buffered whole. Memory stays bounded by the limits:
//!
//! * at most `max_stack` stack items and `max_memo` memo entries, each small;
//! * strings of at most `max_string` bytes;
//! * tuples of at most 64 items, nested at most 64 deep;
//! * a live budget of 256 MiB for retained strings and tuple items. Past the budget, strings
//!   become unresolved and tuples keep no items. That can only produce `"<unresolved>"` or a
//!   `Malformed` refusal, never a missed import.
//!
//! Offsets in errors count bytes of the pickle stream. For zlib files that is the decompressed
//! stream.
//!
//! # Not handled (refused or out of scope)
//!
//! * Protocol 0/1 pickles (no leading `PROTO`) and joblib files compressed with gzip, bz2, lzma,
//!   xz or lz4 sniff as [`ModelFormat::Unknown`], and `scan` returns [`PickleError::NotAPickle`].
//!   Callers must not treat that as "no globals".
//! * Protocol-5 out-of-band buffers (`NEXT_BUFFER`) are not in the stream, so there is nothing to
//!   scan. joblib ≤ 0.9 side files (`NDArrayWrapper`) are separate files and must be scanned on
//!   their own.
//! * Recorded names are the module and qualname exactly as written in the pickle. CPython's
//!   protocol < 3 `fix_imports` mapping (`__builtin__` → `builtins`, ...) is not applied, and a
//!   dotted qualname is not split. `("sklearn", "utils.x")` and `("sklearn.utils", "x")` both
//!   record `sklearn.utils.x`. A prefix allow-list therefore also admits attribute chains below
//!   an allowed prefix.
//! * Trailing bytes after the final `STOP`, or after the end of the zlib stream, are refused.
//!   joblib writes none.
//! * Some legitimate files are refused: joblib ≤ 1.1 files (no alignment padding) whose raw
//!   array bytes happen to parse as an importing opcode; arrays with dtype codes other than
//!   kind letter + size (`f8`, `i4`, `V64`, `U10`, `O8`, ...); structured dtypes with object
//!   fields; dtype pickles older than numpy's state version 3; and wrapper classes from other
//!   packages that happen to be named `NumpyArrayWrapper`.
//! * Plain `pickle.load` of a nested object-array pickle assumes that an object made by `NEWOBJ`
//!   is not an exact `str` (a `STACK_GLOBAL` on it fails). A class allow-listed *and* aliasing
//!   `str` would break that assumption.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Cursor, Read};
use std::rc::{Rc, Weak};

use flate2::read::ZlibDecoder;

/// Bounds for one scan.
#[derive(Clone, Debug)]
pub struct PickleLimits {
    /// Most opcodes walked in total. That covers nested pickles, and the bytes of joblib array
    /// data that are checked as opcodes.
    pub max_ops: u64,
    /// Most memo entries one pickle stream may hold.
    pub max_memo: usize,
    /// Deepest symbolic stack: stack items plus open MARKs.
    pub max_stack: usize,
    /// Most distinct globals recorded.
    pub max_globals: usize,
    /// Longest string, in bytes, kept for resolution. Longer strings are skipped, not stored.
    pub max_string: usize,
    /// Most bytes read from the input. For a zlib file the same cap also applies to the
    /// decompressed stream.
    pub max_input_bytes: u64,
}

impl Default for PickleLimits {
    fn default() -> Self {
        PickleLimits {
            max_ops: 50_000_000,
            max_memo: 1_000_000,
            max_stack: 1_000_000,
            max_globals: 10_000,
            max_string: 1024,
            max_input_bytes: 1 << 40,
        }
    }
}

/// What the bytes look like (sniffed from the first bytes only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// A pickle that starts with `PROTO` and protocol 2 to 5.
    Pickle {
        /// The protocol in the leading `PROTO` opcode.
        protocol: u8,
    },
    /// An uncompressed joblib file (a pickle with `NumpyArrayWrapper` array records).
    Joblib,
    /// A joblib file compressed as one zlib stream (`joblib.dump(..., compress=n)`).
    JoblibZlib,
    /// An ONNX `ModelProto` (heuristic: see [`sniff`]).
    Onnx,
    /// A safetensors file.
    Safetensors,
    /// A GGUF file.
    Gguf,
    /// None of the above.
    Unknown,
}

impl ModelFormat {
    /// Short lowercase name, as recorded in manifests.
    pub fn name(&self) -> &'static str {
        match self {
            ModelFormat::Pickle { .. } => "pickle",
            ModelFormat::Joblib => "joblib",
            ModelFormat::JoblibZlib => "joblib+zlib",
            ModelFormat::Onnx => "onnx",
            ModelFormat::Safetensors => "safetensors",
            ModelFormat::Gguf => "gguf",
            ModelFormat::Unknown => "unknown",
        }
    }
}

/// Largest safetensors header length accepted by [`sniff`].
const SAFETENSORS_MAX_HEADER: u64 = 100_000_000;

/// Sniffs a format from at most the first 64 bytes of `head`.
///
/// * Pickle: `PROTO` (0x80) followed by protocol 2 to 5. The head alone cannot tell a joblib
///   file from a plain pickle, so this returns [`ModelFormat::Pickle`]. [`scan`] changes it to
///   [`ModelFormat::Joblib`] when it meets a `NumpyArrayWrapper` global.
/// * JoblibZlib: a zlib header (0x78, a valid FCHECK byte, no preset dictionary) whose
///   decompressed start is a pickle `PROTO` 2 to 5. 64 bytes of a dynamic-Huffman block may
///   decode to nothing yet; such a head counts as JoblibZlib, and [`scan`] checks the
///   decompressed start itself.
/// * Safetensors: an 8-byte little-endian header length under 100 MB, followed by `{`.
/// * GGUF: the magic `GGUF`.
/// * ONNX: a protobuf `ModelProto` starting with field 1 (`ir_version`, tag 0x08) and a complete
///   varint. This is a heuristic; other protobufs can start the same way.
pub fn sniff(head: &[u8]) -> ModelFormat {
    let head = head.get(..64).unwrap_or(head);
    match head {
        [0x80, p @ 2..=5, ..] => return ModelFormat::Pickle { protocol: *p },
        [0x78, flg, ..]
            if (0x7800u16 | u16::from(*flg)).checked_rem(31) == Some(0) && flg & 0x20 == 0 =>
        {
            if zlib_head_is_pickle(head) {
                return ModelFormat::JoblibZlib;
            }
            return ModelFormat::Unknown;
        }
        [b'G', b'G', b'U', b'F', ..] => return ModelFormat::Gguf,
        _ => {}
    }
    if let Some(len) = head.get(..8) {
        let mut n = [0u8; 8];
        n.copy_from_slice(len);
        if u64::from_le_bytes(n) < SAFETENSORS_MAX_HEADER && head.get(8) == Some(&b'{') {
            return ModelFormat::Safetensors;
        }
    }
    if head.first() == Some(&0x08) {
        // A varint is at most 10 bytes; its last byte has the top bit clear.
        let varint = head.get(1..).unwrap_or(&[]);
        if varint.iter().take(10).any(|b| b & 0x80 == 0) {
            return ModelFormat::Onnx;
        }
    }
    ModelFormat::Unknown
}

/// Whether the decompressed start of a zlib head can be a pickle `PROTO` 2 to 5. 64 bytes of a
/// dynamic-Huffman block may not get past the code tables; in that case the head is accepted
/// as long as it decodes without error, and [`scan`] checks the first decompressed bytes.
fn zlib_head_is_pickle(head: &[u8]) -> bool {
    let mut d = flate2::Decompress::new(true);
    let mut out = [0u8; 16];
    if d.decompress(head, &mut out, flate2::FlushDecompress::None)
        .is_err()
    {
        return false;
    }
    let produced = usize::try_from(d.total_out()).unwrap_or(0).min(out.len());
    matches!(out.get(..produced), Some([] | [0x80] | [0x80, 2..=5, ..]))
}

/// The result of a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickleInfo {
    /// The format: `Pickle`, `Joblib` (a `NumpyArrayWrapper` global was met) or `JoblibZlib`.
    pub format: ModelFormat,
    /// The protocol in the outer stream's first `PROTO` opcode.
    pub protocol: u8,
    /// Every global the pickle may import, as `module.qualname`, sorted and unique. It may
    /// include `"<unresolved>"`, `"<ext:N>"` and `"<persistent_id>"` (see the module docs).
    pub globals: Vec<String>,
    /// The first string stored under a `_sklearn_version` key, if any.
    pub sklearn_version: Option<String>,
    /// joblib `NumpyArrayWrapper` arrays whose data was skipped or walked (object arrays).
    pub arrays: u64,
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The input ended inside an opcode or before `STOP`.
    #[error("pickle truncated at offset {offset}")]
    Truncated {
        /// Stream offset where more bytes were needed.
        offset: u64,
    },
    /// A byte that is no pickle opcode appeared where an opcode was expected.
    #[error("unknown pickle opcode 0x{opcode:02x} at offset {offset}")]
    UnknownOpcode {
        /// The byte found.
        opcode: u8,
        /// Its stream offset.
        offset: u64,
    },
    /// A configured bound was reached.
    #[error("pickle scan limit reached: {what} (limit {limit})")]
    Limit {
        /// Which bound.
        what: &'static str,
        /// Its configured value.
        limit: u64,
    },
    /// The stream is not one the walker can follow exactly.
    #[error("malformed pickle at offset {offset}: {detail}")]
    Malformed {
        /// Stream offset of the opcode (or data) at fault.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// Reading (or decompressing) the input failed.
    #[error("cannot read pickle input: {0}")]
    Io(#[from] io::Error),
    /// The input does not start like a pickle or a zlib-compressed joblib file.
    #[error("not a pickle or joblib stream")]
    NotAPickle,
}

/// Walks the opcodes of a pickle (plain, joblib, or zlib-compressed joblib) statically.
///
/// It reads the first bytes, [`sniff`]s them, and then streams the rest of `r`. A stream that
/// does not sniff as `Pickle` or `JoblibZlib` gives [`PickleError::NotAPickle`]. Nothing in the
/// input is ever executed or imported. See the module documentation for the exact semantics.
pub fn scan<R: Read>(mut r: R, limits: &PickleLimits) -> Result<PickleInfo, PickleError> {
    let mut head_buf = [0u8; 64];
    let mut got = 0usize;
    while got < head_buf.len() {
        let dst = head_buf.get_mut(got..).unwrap_or(&mut []);
        match r.read(dst) {
            Ok(0) => break,
            Ok(n) => got = got.saturating_add(n).min(head_buf.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let head = head_buf.get(..got).unwrap_or(&[]);
    let format = sniff(head);
    let src = Cursor::new(head.to_vec()).chain(r);
    match format {
        ModelFormat::Pickle { .. } => {
            let mut input = Input::new(src, limits.max_input_bytes);
            let mut walker = Walker::new(limits);
            walker.run(&mut input)?;
            input.expect_end()?;
            Ok(walker.finish(format))
        }
        ModelFormat::JoblibZlib => {
            let raw_count = Rc::new(Cell::new(0u64));
            let counted = CountingReader {
                inner: src,
                count: Rc::clone(&raw_count),
                max: limits.max_input_bytes,
            };
            let mut decoder = ZlibDecoder::new(counted);
            // The sniffed head may not have reached the decompressed start: check it here.
            let mut start = [0u8; 2];
            let mut got = 0usize;
            while got < start.len() {
                let dst = start.get_mut(got..).unwrap_or(&mut []);
                match decoder.read(dst) {
                    Ok(0) => break,
                    Ok(n) => got = got.saturating_add(n).min(start.len()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(PickleError::NotAPickle),
                }
            }
            if !matches!(start, [0x80, 2..=5]) || got < start.len() {
                return Err(PickleError::NotAPickle);
            }
            let mut input = Input::new(Cursor::new(start).chain(decoder), limits.max_input_bytes);
            let mut walker = Walker::new(limits);
            let walked = walker.run(&mut input).and_then(|()| input.expect_end());
            if raw_count.get() > limits.max_input_bytes {
                return Err(PickleError::Limit {
                    what: "compressed input bytes",
                    limit: limits.max_input_bytes,
                });
            }
            walked?;
            let end = input.offset;
            let (_, decoder) = input.into_inner().into_inner();
            let used = decoder.total_in();
            let mut rest = decoder.into_inner();
            let mut probe = [0u8; 1];
            let more = loop {
                match rest.read(&mut probe) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            };
            if raw_count.get() > used || more > 0 {
                return Err(PickleError::Malformed {
                    offset: end,
                    detail: format!(
                        "trailing bytes after the zlib stream ({used} compressed bytes used)"
                    ),
                });
            }
            Ok(walker.finish(format))
        }
        _ => Err(PickleError::NotAPickle),
    }
}

/// The outcome of walking bytes that do not sniff as a pickle (see [`scan_any`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyScan {
    /// The first opcode is not valid: `pickle.load` fails there too, before executing anything.
    NotAPickle,
    /// A complete pickle of protocol 0 or 1 (no PROTO opcode).
    Complete(PickleInfo),
    /// The walk stopped after the first opcode. `globals` are those met before it stopped; a loader
    /// might read further than the walker, so callers must treat this as importing unknown code.
    Incomplete {
        /// Globals met before the walk stopped.
        globals: Vec<String>,
        /// Why it stopped.
        error: PickleError,
    },
}

/// Walks bytes that did not sniff as a pickle as if they were one, from the first byte: protocol
/// 0 and 1 pickles carry no PROTO opcode, so [`sniff`] cannot tell them from other data, yet
/// `pickle.load` runs them. Used by the allow-globals check on every file of unknown format.
pub fn scan_any<R: Read>(r: R, limits: &PickleLimits) -> AnyScan {
    let mut input = Input::new(r, limits.max_input_bytes);
    let mut walker = Walker::new(limits);
    match walker.run(&mut input).and_then(|()| input.expect_end()) {
        Ok(()) => AnyScan::Complete(walker.finish(ModelFormat::Pickle { protocol: 0 })),
        Err(
            PickleError::UnknownOpcode { offset: 0, .. }
            | PickleError::Truncated { offset: 0 }
            | PickleError::Malformed { offset: 0, .. },
        ) => AnyScan::NotAPickle,
        Err(error) => AnyScan::Incomplete {
            globals: walker.finish(ModelFormat::Unknown).globals,
            error,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Input: buffered, offset- and frame-aware byte source.

const CHUNK: usize = 64 * 1024;

struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    max: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.count.get() > self.max {
            return Err(io::Error::other("compressed input byte limit reached"));
        }
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Stream offset of `buf[pos]`.
    offset: u64,
    max: u64,
    /// Bytes left in the current protocol-4 frame, if inside one.
    frame: Option<u64>,
}

impl<R: Read> Input<R> {
    fn new(inner: R, max: u64) -> Self {
        Input {
            inner,
            buf: vec![0; CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
            max,
            frame: None,
        }
    }

    fn into_inner(self) -> R {
        self.inner
    }

    fn limit_err(&self) -> PickleError {
        PickleError::Limit {
            what: "input bytes",
            limit: self.max,
        }
    }

    fn truncated(&self) -> PickleError {
        PickleError::Truncated {
            offset: self.offset,
        }
    }

    fn malformed(&self, detail: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            offset: self.offset,
            detail: detail.into(),
        }
    }

    /// Makes bytes available; false at end of input.
    fn fill(&mut self) -> Result<bool, PickleError> {
        if self.pos < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.pos = 0;
                    self.end = n.min(self.buf.len());
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn available(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    fn advance(&mut self, n: usize) -> Result<(), PickleError> {
        self.pos = self.pos.saturating_add(n).min(self.end);
        self.offset = self.offset.saturating_add(n as u64);
        if self.offset > self.max {
            return Err(self.limit_err());
        }
        Ok(())
    }

    fn check_room(&self, n: u64) -> Result<(), PickleError> {
        match self.offset.checked_add(n) {
            Some(end) if end <= self.max => Ok(()),
            _ => Err(self.limit_err()),
        }
    }

    fn frame_left(&self) -> u64 {
        self.frame.unwrap_or(0)
    }

    /// Accounts for an `n`-byte read that is part of an opcode. A read that starts exactly at
    /// the end of a frame leaves the frame (pickle's `_Unframer` then reads from the file). A
    /// read that starts inside a frame and runs past its end is refused.
    fn frame_take(&mut self, n: u64) -> Result<(), PickleError> {
        match self.frame {
            Some(0) => self.frame = None,
            Some(left) if n > left => {
                return Err(self.malformed(format!(
                    "a {n}-byte read runs past the end of the current FRAME ({left} bytes left)"
                )))
            }
            Some(left) => self.frame = Some(left - n),
            None => {}
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        if !self.fill()? {
            return Err(self.truncated());
        }
        let b = *self.available().first().ok_or_else(|| self.truncated())?;
        self.advance(1)?;
        Ok(b)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        self.frame_take(N as u64)?;
        let mut out = [0u8; N];
        let mut got = 0usize;
        while got < N {
            if !self.fill()? {
                return Err(self.truncated());
            }
            let avail = self.available();
            let k = avail.len().min(N - got);
            if let (Some(dst), Some(src)) = (out.get_mut(got..got + k), avail.get(..k)) {
                dst.copy_from_slice(src);
            }
            got += k;
            self.advance(k)?;
        }
        Ok(out)
    }

    /// Reads `n` bytes (n already checked against a small cap) into a vector.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, PickleError> {
        self.check_room(n as u64)?;
        let mut out = Vec::new();
        while out.len() < n {
            if !self.fill()? {
                return Err(self.truncated());
            }
            let avail = self.available();
            let k = avail.len().min(n - out.len());
            out.extend_from_slice(avail.get(..k).unwrap_or(&[]));
            self.advance(k)?;
        }
        Ok(out)
    }

    /// Reads and drops `n` bytes in chunks, showing each chunk to `see`.
    fn skip_with(&mut self, n: u64, mut see: impl FnMut(&[u8])) -> Result<(), PickleError> {
        self.check_room(n)?;
        let mut left = n;
        while left > 0 {
            if !self.fill()? {
                return Err(self.truncated());
            }
            let avail = self.available();
            let k = usize::try_from(left).unwrap_or(usize::MAX).min(avail.len());
            see(avail.get(..k).unwrap_or(&[]));
            left -= k as u64;
            self.advance(k)?;
        }
        Ok(())
    }

    /// Reads one `\n`-terminated line. Returns its content without the newline, or `None` when
    /// it is longer than `cap` (the rest is read and dropped).
    fn line(&mut self, cap: usize) -> Result<Option<Vec<u8>>, PickleError> {
        if self.frame == Some(0) {
            self.frame = None;
        }
        let mut out = Vec::new();
        let mut too_long = false;
        loop {
            if !self.fill()? {
                return Err(self.truncated());
            }
            let avail = self.available();
            let newline = avail.iter().position(|&b| b == b'\n');
            let (used, content) = match newline {
                Some(i) => (i + 1, i),
                None => (avail.len(), avail.len()),
            };
            if !too_long {
                if out.len().saturating_add(content) <= cap {
                    out.extend_from_slice(avail.get(..content).unwrap_or(&[]));
                } else {
                    too_long = true;
                    out = Vec::new();
                }
            }
            if let Some(left) = self.frame {
                if used as u64 > left {
                    return Err(
                        self.malformed("a text argument runs past the end of the current FRAME")
                    );
                }
                self.frame = Some(left - used as u64);
            }
            self.advance(used)?;
            if newline.is_some() {
                return Ok(if too_long { None } else { Some(out) });
            }
        }
    }

    /// After the final `STOP`: nothing may follow, inside the last frame or after it.
    fn expect_end(&mut self) -> Result<(), PickleError> {
        if self.frame_left() > 0 || self.fill()? {
            return Err(self.malformed("trailing bytes after the final STOP"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Symbolic values.

/// Live budget, in bytes, for retained strings and tuple items.
const MAX_RETAINED: u64 = 256 << 20;
/// Items kept per tuple; longer tuples keep none.
const MAX_TUPLE_ITEMS: usize = 64;
/// Deepest tuple-in-tuple nesting kept (bounds recursive drops).
const MAX_TUPLE_DEPTH: u32 = 64;
const UNRESOLVED: &str = "<unresolved>";
const PERSISTENT_ID: &str = "<persistent_id>";
const WRAPPER_NAME: &str = "NumpyArrayWrapper";
/// Attributes of a `NumpyArrayWrapper` that decide how many bytes joblib reads.
const WRAPPER_ATTRS: [&str; 4] = [
    "shape",
    "dtype",
    "numpy_array_alignment_bytes",
    "allow_mmap",
];
const SLOT_SHAPE: usize = 0;
const SLOT_DTYPE: usize = 1;
const SLOT_ALIGN: usize = 2;
const SLOT_MMAP: usize = 3;

/// A retained string; its cost is returned to the budget when the last reference drops.
struct PStr {
    s: Box<str>,
    acct: Rc<Cell<u64>>,
    cost: u64,
}

impl Drop for PStr {
    fn drop(&mut self) {
        self.acct.set(self.acct.get().saturating_sub(self.cost));
    }
}

/// An immutable tuple. Mutable nodes inside it are held weakly, nested tuples strongly (they
/// cannot form cycles), so every `Rc` graph is acyclic and drops are bounded by the depth cap.
struct TupleV {
    items: Vec<Val>,
    /// True when items were not kept (too many, too deep, or over budget).
    overflow: bool,
    /// May hold a `NumpyArrayWrapper` class or instance (outer joblib walk only).
    tainted: bool,
    depth: u32,
    acct: Rc<Cell<u64>>,
    cost: u64,
}

impl Drop for TupleV {
    fn drop(&mut self) {
        self.acct.set(self.acct.get().saturating_sub(self.cost));
    }
}

/// The parts of a dict that matter: the four wrapper attributes.
#[derive(Default)]
struct DictV {
    slots: [Option<Val>; 4],
    /// A key that might be a `str` at run time but whose value is unknown was set.
    unknown_keys: bool,
    tainted: bool,
}

struct DtypeV {
    code: Option<Rc<PStr>>,
    state: Option<Val>,
}

enum Node {
    Dict(DictV),
    Dtype(DtypeV),
    Wrapper { built: bool },
}

type NodeRef = Rc<RefCell<Node>>;

/// What a global name resolves to, as far as the walker cares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum GKind {
    /// `...NumpyArrayWrapper`: the joblib array wrapper class.
    Wrapper,
    /// Some other attribute path mentioning `NumpyArrayWrapper`.
    WrapperRelated,
    NumpyDtype,
    CopyregNewobj,
    CopyregNewobjEx,
    Unresolved,
    Other,
}

impl GKind {
    fn classify(dotted: &str) -> GKind {
        match dotted {
            "numpy.dtype" => GKind::NumpyDtype,
            "copyreg.__newobj__" | "copy_reg.__newobj__" => GKind::CopyregNewobj,
            "copyreg.__newobj_ex__" | "copy_reg.__newobj_ex__" => GKind::CopyregNewobjEx,
            _ if dotted.rsplit('.').next() == Some(WRAPPER_NAME) => GKind::Wrapper,
            _ if dotted.contains(WRAPPER_NAME) => GKind::WrapperRelated,
            _ => GKind::Other,
        }
    }

    fn taints(self) -> bool {
        matches!(
            self,
            GKind::Wrapper | GKind::WrapperRelated | GKind::Unresolved
        )
    }
}

#[derive(Clone)]
enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    /// A known non-`str` value whose content does not matter (float, big int, bytes, buffer).
    Scalar,
    Str(Rc<PStr>),
    /// A `str` whose content was not kept (too long, over budget, or not decodable here).
    OpaqueStr,
    Tuple(Rc<TupleV>),
    /// A list, set or frozenset; the flag says whether it may hold wrapper things.
    Container(bool),
    Node(NodeRef),
    /// A node referenced from inside a container (only ever stored there, never on the stack).
    Weak(Weak<RefCell<Node>>),
    Global(GKind),
    /// An object made by `NEWOBJ` (assumed not to be an exact `str`).
    Instance,
    /// The result of an arbitrary call.
    Unknown,
    /// May be (or hold) a `NumpyArrayWrapper` instance or class.
    Tainted,
}

enum StrClass {
    Known(Rc<PStr>),
    NotStr,
    Maybe,
}

impl Val {
    fn str_class(&self) -> StrClass {
        match self {
            Val::Str(s) => StrClass::Known(Rc::clone(s)),
            Val::Nil
            | Val::Bool(_)
            | Val::Int(_)
            | Val::Scalar
            | Val::Tuple(_)
            | Val::Container(_)
            | Val::Node(_)
            | Val::Weak(_)
            | Val::Instance => StrClass::NotStr,
            Val::OpaqueStr | Val::Global(_) | Val::Unknown | Val::Tainted => StrClass::Maybe,
        }
    }

    /// Shallow "may be or hold a wrapper class/instance". Container flags are kept current
    /// because a late insertion of a tainted value marks the walk as escaped instead.
    fn tainted(&self) -> bool {
        match self {
            Val::Tainted => true,
            Val::Global(k) => k.taints(),
            Val::Tuple(t) => t.tainted,
            Val::Container(t) => *t,
            Val::Node(rc) => node_tainted(rc),
            Val::Weak(w) => w.upgrade().is_none_or(|rc| node_tainted(&rc)),
            _ => false,
        }
    }

    /// The form kept inside containers: nodes are held weakly so no `Rc` cycle can form.
    fn weakened(self) -> Val {
        match self {
            Val::Node(rc) => Val::Weak(Rc::downgrade(&rc)),
            other => other,
        }
    }

    fn node(&self) -> Option<NodeRef> {
        match self {
            Val::Node(rc) => Some(Rc::clone(rc)),
            Val::Weak(w) => w.upgrade(),
            _ => None,
        }
    }
}

fn node_tainted(rc: &NodeRef) -> bool {
    match rc.try_borrow() {
        Ok(n) => match &*n {
            Node::Dict(d) => d.tainted,
            Node::Dtype(_) => false,
            Node::Wrapper { .. } => true,
        },
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Decoded opcodes.

enum Op {
    Nop,
    Proto(u8),
    Stop,
    Mark,
    Pop,
    PopMark,
    Dup,
    Push(Val),
    EmptyTuple,
    EmptyList,
    EmptyDict,
    EmptySet,
    Tuple,
    TupleN(usize),
    List,
    Dict,
    Frozenset,
    Append,
    Appends,
    SetItem,
    SetItems,
    AddItems,
    Put(u64),
    Memoize,
    Get(u64),
    Global(Option<String>),
    StackGlobal,
    Inst(Option<String>),
    Obj,
    Ext(i64),
    Reduce,
    NewObj,
    NewObjEx,
    PersId,
    BinPersId,
    Build,
    ReadonlyBuffer,
    NextBuffer,
}

/// Argument encoding of each opcode, for the syntax-only parser.
#[derive(Clone, Copy)]
enum Arg {
    No,
    Fixed(u8),
    Lines(u8),
    Len1,
    Len4,
    Len4Signed,
    Len8,
}

/// The 68 opcodes of protocols 0-5 and their argument encodings; `None` for any other byte.
fn op_arg(code: u8) -> Option<Arg> {
    Some(match code {
        b'('
        | b'.'
        | b'0'
        | b'1'
        | b'2'
        | b'N'
        | b'Q'
        | b'R'
        | b'a'
        | b'b'
        | b'd'
        | b'}'
        | b'e'
        | b'l'
        | b']'
        | b'o'
        | b's'
        | b't'
        | b')'
        | b'u'
        | 0x81
        | 0x85..=0x89
        | 0x8f..=0x94
        | 0x97
        | 0x98 => Arg::No,
        b'F' | b'I' | b'L' | b'P' | b'S' | b'V' | b'g' | b'p' => Arg::Lines(1),
        b'c' | b'i' => Arg::Lines(2),
        b'K' | b'h' | b'q' | 0x80 | 0x82 => Arg::Fixed(1),
        b'M' | 0x83 => Arg::Fixed(2),
        b'J' | b'j' | b'r' | 0x84 => Arg::Fixed(4),
        b'G' | 0x95 => Arg::Fixed(8),
        b'U' | b'C' | 0x8a | 0x8c => Arg::Len1,
        b'X' | b'B' => Arg::Len4,
        b'T' | 0x8b => Arg::Len4Signed,
        0x8d | 0x8e | 0x96 => Arg::Len8,
        _ => return None,
    })
}

/// Opcodes through which plain `pickle.load` imports or obtains new objects by name.
fn op_imports(code: u8) -> bool {
    matches!(code, b'c' | b'i' | 0x93 | 0x82 | 0x83 | 0x84 | b'P' | b'Q')
}

/// Parses a decimal memo index exactly as written: ASCII digits only.
fn parse_index(line: &[u8]) -> Option<u64> {
    if line.is_empty() || line.len() > 19 || !line.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// Parses the text of an `INT`/`LONG` argument. Only plain decimal is resolved; any other
/// spelling Python accepts (`0x10`, `1_000`, ...) still yields an int of unknown value.
fn parse_int_text(line: &[u8]) -> Val {
    let (neg, digits) = match line {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, line),
    };
    let canonical = match digits {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical || digits.len() > 19 {
        return Val::Scalar;
    }
    let text = std::str::from_utf8(digits).ok();
    match text.and_then(|t| t.parse::<i64>().ok()) {
        Some(v) if neg => v.checked_neg().map_or(Val::Scalar, Val::Int),
        Some(v) => Val::Int(v),
        None => Val::Scalar,
    }
}

/// Two's-complement little-endian integer of at most 8 bytes (`LONG1`/`LONG4` payload).
fn long_bytes(b: &[u8]) -> Val {
    if b.is_empty() {
        return Val::Int(0);
    }
    if b.len() > 8 {
        return Val::Scalar;
    }
    let fill = if b.last().is_some_and(|x| x & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut full = [fill; 8];
    if let Some(dst) = full.get_mut(..b.len()) {
        dst.copy_from_slice(b);
    }
    Val::Int(i64::from_le_bytes(full))
}

// ---------------------------------------------------------------------------------------------
// Syntax-only parser: where would plain `pickle.load` go in bytes joblib skips?

enum ShadowState {
    Op,
    Skip(u64),
    Lines(u8),
    Len {
        size: u8,
        signed: bool,
        have: u8,
        acc: [u8; 8],
    },
    /// The plain parse stops here (invalid opcode, bad length, or `STOP`): safe.
    Dead,
    /// The plain parse would import something, or would keep going past the region.
    Live,
}

impl ShadowState {
    /// The state that reads a `size`-byte length argument, starting with no byte read.
    fn length(size: u8, signed: bool) -> Self {
        ShadowState::Len {
            size,
            signed,
            have: 0,
            acc: [0; 8],
        }
    }
}

struct Shadow {
    state: ShadowState,
    ops: u64,
}

impl Shadow {
    fn new() -> Self {
        Shadow {
            state: ShadowState::Op,
            ops: 0,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while let Some((&b, rest)) = data.split_first() {
            match &mut self.state {
                ShadowState::Dead | ShadowState::Live => return,
                ShadowState::Op => {
                    self.ops = self.ops.saturating_add(1);
                    data = rest;
                    self.state = match op_arg(b) {
                        None => ShadowState::Dead,
                        Some(_) if b == b'.' => ShadowState::Dead,
                        Some(_) if op_imports(b) => ShadowState::Live,
                        Some(Arg::No) => ShadowState::Op,
                        Some(Arg::Fixed(n)) => ShadowState::Skip(u64::from(n)),
                        Some(Arg::Lines(n)) => ShadowState::Lines(n),
                        Some(Arg::Len1) => ShadowState::length(1, false),
                        Some(Arg::Len4) => ShadowState::length(4, false),
                        Some(Arg::Len4Signed) => ShadowState::length(4, true),
                        Some(Arg::Len8) => ShadowState::length(8, false),
                    };
                }
                ShadowState::Skip(n) => {
                    let k = usize::try_from(*n).unwrap_or(usize::MAX).min(data.len());
                    *n -= k as u64;
                    data = data.get(k..).unwrap_or(&[]);
                    if *n == 0 {
                        self.state = ShadowState::Op;
                    }
                }
                ShadowState::Lines(n) => match data.iter().position(|&x| x == b'\n') {
                    Some(i) => {
                        data = data.get(i + 1..).unwrap_or(&[]);
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.state = ShadowState::Op;
                        }
                    }
                    None => data = &[],
                },
                ShadowState::Len {
                    size,
                    signed,
                    have,
                    acc,
                } => {
                    if let Some(slot) = acc.get_mut(usize::from(*have)) {
                        *slot = b;
                    }
                    *have += 1;
                    data = rest;
                    if have == size {
                        let len = if *size == 4 {
                            let v = u32::from_le_bytes([acc[0], acc[1], acc[2], acc[3]]);
                            if *signed && v & 0x8000_0000 != 0 {
                                self.state = ShadowState::Dead;
                                continue;
                            }
                            u64::from(v)
                        } else if *size == 1 {
                            u64::from(acc[0])
                        } else {
                            u64::from_le_bytes(*acc)
                        };
                        self.state = if len == 0 {
                            ShadowState::Op
                        } else {
                            ShadowState::Skip(len)
                        };
                    }
                }
            }
        }
    }

    fn dead(&self) -> bool {
        matches!(self.state, ShadowState::Dead)
    }
}

// ---------------------------------------------------------------------------------------------
// The symbolic machine.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The outer stream as joblib's `NumpyUnpickler` reads it (wrapper `BUILD`s read arrays).
    Outer,
    /// A nested object-array pickle as joblib reads it (fresh `pickle.load`).
    Nested,
    /// The same nested bytes as plain `pickle.load` of the whole file reads them (outer memo
    /// underneath). Never mutates shared nodes.
    Plain,
}

struct Machine {
    role: Role,
    stack: Vec<Val>,
    marks: Vec<usize>,
    memo: HashMap<u64, Val>,
    /// Plain: entries of the outer memo.
    base_len: usize,
    /// Plain: overlay keys absent from the outer memo.
    new_keys: usize,
    alive: bool,
    /// A wrapper class or instance reached code we do not follow: every later call result may
    /// be a wrapper.
    escaped: bool,
    pending_version: bool,
}

enum Flow {
    Continue,
    Stop,
    WrapperBuild(Val),
}

impl Machine {
    fn new(role: Role) -> Self {
        Machine {
            role,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            base_len: 0,
            new_keys: 0,
            alive: true,
            escaped: false,
            pending_version: false,
        }
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, off: u64) -> Result<Val, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(off));
        }
        self.stack.pop().ok_or_else(|| underflow(off))
    }

    fn top(&self, off: u64) -> Result<Val, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(off));
        }
        self.stack.last().cloned().ok_or_else(|| underflow(off))
    }

    fn pop_n(&mut self, n: usize, off: u64) -> Result<Vec<Val>, PickleError> {
        let len = self.stack.len();
        if len < self.fence().saturating_add(n) {
            return Err(underflow(off));
        }
        Ok(self.stack.split_off(len - n))
    }

    fn pop_mark(&mut self, off: u64) -> Result<Vec<Val>, PickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| malformed(off, "no MARK on the stack"))?;
        if mark > self.stack.len() {
            return Err(underflow(off));
        }
        Ok(self.stack.split_off(mark))
    }

    fn tainted(&self, v: &Val) -> bool {
        self.role == Role::Outer && v.tainted()
    }
}

fn underflow(off: u64) -> PickleError {
    malformed(off, "stack underflow")
}

fn malformed(off: u64, detail: impl Into<String>) -> PickleError {
    PickleError::Malformed {
        offset: off,
        detail: detail.into(),
    }
}

struct Walker<'l> {
    limits: &'l PickleLimits,
    ops: u64,
    globals: BTreeSet<String>,
    sklearn_version: Option<String>,
    saw_wrapper: bool,
    protocol: Option<u8>,
    arrays: u64,
    /// Plain `pickle.load` of the whole file has certainly stopped: it dies in the first
    /// array region (or the scan is refused) or returns at the first nested pickle's `STOP`.
    plain_done: bool,
    acct: Rc<Cell<u64>>,
}

/// Array layout joblib will read after a wrapper `BUILD`.
struct Layout {
    hasobject: bool,
    aligned: bool,
    data_len: u64,
}

impl<'l> Walker<'l> {
    fn new(limits: &'l PickleLimits) -> Self {
        Walker {
            limits,
            ops: 0,
            globals: BTreeSet::new(),
            sklearn_version: None,
            saw_wrapper: false,
            protocol: None,
            arrays: 0,
            plain_done: false,
            acct: Rc::new(Cell::new(0)),
        }
    }

    fn finish(self, sniffed: ModelFormat) -> PickleInfo {
        let format = match sniffed {
            ModelFormat::Pickle { .. } if self.saw_wrapper => ModelFormat::Joblib,
            other => other,
        };
        PickleInfo {
            format,
            protocol: self.protocol.unwrap_or(0),
            globals: self.globals.into_iter().collect(),
            sklearn_version: self.sklearn_version,
            arrays: self.arrays,
        }
    }

    fn add_ops(&mut self, n: u64) -> Result<(), PickleError> {
        self.ops = self.ops.saturating_add(n);
        if self.ops > self.limits.max_ops {
            return Err(PickleError::Limit {
                what: "opcodes",
                limit: self.limits.max_ops,
            });
        }
        Ok(())
    }

    fn record(&mut self, name: &str) -> Result<GKind, PickleError> {
        let kind = GKind::classify(name);
        if kind == GKind::Wrapper {
            self.saw_wrapper = true;
        }
        if !self.globals.contains(name) {
            if self.globals.len() >= self.limits.max_globals {
                return Err(PickleError::Limit {
                    what: "globals",
                    limit: u64::try_from(self.limits.max_globals).unwrap_or(u64::MAX),
                });
            }
            self.globals.insert(name.to_owned());
        }
        Ok(kind)
    }

    fn make_str(&mut self, s: &str) -> Val {
        let cost = (s.len() as u64).saturating_add(48);
        if self.acct.get().saturating_add(cost) > MAX_RETAINED {
            return Val::OpaqueStr;
        }
        self.acct.set(self.acct.get().saturating_add(cost));
        Val::Str(Rc::new(PStr {
            s: s.into(),
            acct: Rc::clone(&self.acct),
            cost,
        }))
    }

    fn make_tuple(&mut self, role: Role, items: Vec<Val>) -> Val {
        let tainted = role == Role::Outer && items.iter().any(Val::tainted);
        let depth = items
            .iter()
            .map(|v| match v {
                Val::Tuple(t) => t.depth,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let cost = 48u64.saturating_add(24u64.saturating_mul(items.len() as u64));
        let keep = items.len() <= MAX_TUPLE_ITEMS
            && depth <= MAX_TUPLE_DEPTH
            && self.acct.get().saturating_add(cost) <= MAX_RETAINED;
        let (items, overflow, depth, cost) = if keep {
            (
                items.into_iter().map(Val::weakened).collect(),
                false,
                depth,
                cost,
            )
        } else {
            (Vec::new(), true, 1, 48)
        };
        self.acct.set(self.acct.get().saturating_add(cost));
        Val::Tuple(Rc::new(TupleV {
            items,
            overflow,
            tainted,
            depth,
            acct: Rc::clone(&self.acct),
            cost,
        }))
    }

    fn string_val(&mut self, bytes: Option<Vec<u8>>, ascii: bool) -> Val {
        let Some(bytes) = bytes else {
            return Val::OpaqueStr;
        };
        if ascii && !bytes.is_ascii() {
            return Val::OpaqueStr;
        }
        match String::from_utf8(bytes) {
            Ok(s) => self.make_str(&s),
            Err(_) => Val::OpaqueStr,
        }
    }

    /// Reads a length-prefixed string payload; strings over `max_string` are skipped.
    fn payload<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        n: u64,
    ) -> Result<Option<Vec<u8>>, PickleError> {
        inp.frame_take(n)?;
        let cap = u64::try_from(self.limits.max_string).unwrap_or(u64::MAX);
        if n > cap {
            inp.skip_with(n, |_| {})?;
            return Ok(None);
        }
        inp.take(usize::try_from(n).unwrap_or(usize::MAX)).map(Some)
    }

    /// `LONG1`/`LONG4` payload: values of up to 8 bytes are kept whatever `max_string` is
    /// (they can be array dimensions), longer ones are skipped.
    fn long_payload<R: Read>(&mut self, inp: &mut Input<R>, n: u64) -> Result<Val, PickleError> {
        inp.frame_take(n)?;
        if n <= 8 {
            let bytes = inp.take(usize::try_from(n).unwrap_or(8))?;
            return Ok(long_bytes(&bytes));
        }
        inp.skip_with(n, |_| {})?;
        Ok(Val::Scalar)
    }

    fn skip_payload<R: Read>(&mut self, inp: &mut Input<R>, n: u64) -> Result<(), PickleError> {
        inp.frame_take(n)?;
        inp.skip_with(n, |_| {})
    }

    fn global_name<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        off: u64,
        ascii: bool,
    ) -> Result<Option<String>, PickleError> {
        let cap = self.limits.max_string;
        let module = inp.line(cap)?;
        let name = inp.line(cap)?;
        let (Some(module), Some(name)) = (module, name) else {
            return Ok(None);
        };
        if ascii && !(module.is_ascii() && name.is_ascii()) {
            return Err(malformed(off, "INST argument is not ASCII"));
        }
        match (String::from_utf8(module), String::from_utf8(name)) {
            (Ok(m), Ok(n)) => Ok(Some(format!("{m}.{n}"))),
            _ => Err(malformed(off, "GLOBAL argument is not UTF-8")),
        }
    }

    /// Decodes one opcode and its argument.
    fn next_op<R: Read>(&mut self, inp: &mut Input<R>) -> Result<Op, PickleError> {
        let off = inp.offset;
        self.add_ops(1)?;
        inp.frame_take(1)?;
        let code = inp.byte()?;
        let cap = self.limits.max_string;
        Ok(match code {
            b'(' => Op::Mark,
            b'.' => Op::Stop,
            b'0' => Op::Pop,
            b'1' => Op::PopMark,
            b'2' => Op::Dup,
            b'F' => {
                inp.line(64)?;
                Op::Push(Val::Scalar)
            }
            b'I' => match inp.line(64)? {
                Some(l) if l == b"00" => Op::Push(Val::Bool(false)),
                Some(l) if l == b"01" => Op::Push(Val::Bool(true)),
                Some(l) => Op::Push(parse_int_text(&l)),
                None => Op::Push(Val::Scalar),
            },
            b'J' => Op::Push(Val::Int(i32::from_le_bytes(inp.fixed::<4>()?).into())),
            b'K' => Op::Push(Val::Int(inp.fixed::<1>()?[0].into())),
            b'L' => match inp.line(64)? {
                Some(mut l) => {
                    if l.last() == Some(&b'L') {
                        l.pop();
                    }
                    Op::Push(parse_int_text(&l))
                }
                None => Op::Push(Val::Scalar),
            },
            b'M' => Op::Push(Val::Int(u16::from_le_bytes(inp.fixed::<2>()?).into())),
            b'N' => Op::Push(Val::Nil),
            b'P' => {
                inp.line(cap)?;
                Op::PersId
            }
            b'Q' => Op::BinPersId,
            b'R' => Op::Reduce,
            b'S' => {
                let v = match inp.line(cap)? {
                    Some(l) => match l.as_slice() {
                        [q @ (b'\'' | b'"'), inner @ .., last] if last == q => {
                            if inner.contains(&b'\\') {
                                Val::OpaqueStr
                            } else {
                                self.string_val(Some(inner.to_vec()), true)
                            }
                        }
                        _ => return Err(malformed(off, "STRING argument is not quoted")),
                    },
                    None => Val::OpaqueStr,
                };
                Op::Push(v)
            }
            b'T' => {
                let n = i32::from_le_bytes(inp.fixed::<4>()?);
                let n = u64::try_from(n)
                    .map_err(|_| malformed(off, "BINSTRING with a negative length"))?;
                let bytes = self.payload(inp, n)?;
                Op::Push(self.string_val(bytes, true))
            }
            b'U' => {
                let n = inp.fixed::<1>()?[0];
                let bytes = self.payload(inp, n.into())?;
                Op::Push(self.string_val(bytes, true))
            }
            b'V' => {
                // raw-unicode-escape: without a backslash, every byte is one latin-1 character.
                let v = match inp.line(cap)? {
                    Some(l) if !l.contains(&b'\\') => {
                        let s: String = l.iter().map(|&b| char::from(b)).collect();
                        self.make_str(&s)
                    }
                    _ => Val::OpaqueStr,
                };
                Op::Push(v)
            }
            b'X' => {
                let n = u32::from_le_bytes(inp.fixed::<4>()?);
                let bytes = self.payload(inp, n.into())?;
                Op::Push(self.string_val(bytes, false))
            }
            b'a' => Op::Append,
            b'b' => Op::Build,
            b'c' => Op::Global(self.global_name(inp, off, false)?),
            b'd' => Op::Dict,
            b'}' => Op::EmptyDict,
            b'e' => Op::Appends,
            b'g' => {
                let line = inp.line(64)?;
                Op::Get(
                    line.as_deref()
                        .and_then(parse_index)
                        .ok_or_else(|| malformed(off, "bad GET index"))?,
                )
            }
            b'h' => Op::Get(inp.fixed::<1>()?[0].into()),
            b'i' => Op::Inst(self.global_name(inp, off, true)?),
            b'j' => Op::Get(u32::from_le_bytes(inp.fixed::<4>()?).into()),
            b'l' => Op::List,
            b']' => Op::EmptyList,
            b'o' => Op::Obj,
            b'p' => {
                let line = inp.line(64)?;
                Op::Put(
                    line.as_deref()
                        .and_then(parse_index)
                        .ok_or_else(|| malformed(off, "bad PUT index"))?,
                )
            }
            b'q' => Op::Put(inp.fixed::<1>()?[0].into()),
            b'r' => Op::Put(u32::from_le_bytes(inp.fixed::<4>()?).into()),
            b's' => Op::SetItem,
            b't' => Op::Tuple,
            b')' => Op::EmptyTuple,
            b'u' => Op::SetItems,
            b'G' => {
                inp.fixed::<8>()?;
                Op::Push(Val::Scalar)
            }
            b'B' => {
                let n = u32::from_le_bytes(inp.fixed::<4>()?);
                self.skip_payload(inp, n.into())?;
                Op::Push(Val::Scalar)
            }
            b'C' => {
                let n = inp.fixed::<1>()?[0];
                self.skip_payload(inp, n.into())?;
                Op::Push(Val::Scalar)
            }
            0x80 => Op::Proto(inp.fixed::<1>()?[0]),
            0x81 => Op::NewObj,
            0x82 => Op::Ext(inp.fixed::<1>()?[0].into()),
            0x83 => Op::Ext(u16::from_le_bytes(inp.fixed::<2>()?).into()),
            0x84 => Op::Ext(i32::from_le_bytes(inp.fixed::<4>()?).into()),
            0x85 => Op::TupleN(1),
            0x86 => Op::TupleN(2),
            0x87 => Op::TupleN(3),
            0x88 => Op::Push(Val::Bool(true)),
            0x89 => Op::Push(Val::Bool(false)),
            0x8a => {
                let n = inp.fixed::<1>()?[0];
                Op::Push(self.long_payload(inp, n.into())?)
            }
            0x8b => {
                let n = i32::from_le_bytes(inp.fixed::<4>()?);
                let n =
                    u64::try_from(n).map_err(|_| malformed(off, "LONG4 with a negative length"))?;
                Op::Push(self.long_payload(inp, n)?)
            }
            0x8c => {
                let n = inp.fixed::<1>()?[0];
                let bytes = self.payload(inp, n.into())?;
                Op::Push(self.string_val(bytes, false))
            }
            0x8d => {
                let n = u64::from_le_bytes(inp.fixed::<8>()?);
                let bytes = self.payload(inp, n)?;
                Op::Push(self.string_val(bytes, false))
            }
            0x8e | 0x96 => {
                let n = u64::from_le_bytes(inp.fixed::<8>()?);
                self.skip_payload(inp, n)?;
                Op::Push(Val::Scalar)
            }
            0x8f => Op::EmptySet,
            0x90 => Op::AddItems,
            0x91 => Op::Frozenset,
            0x92 => Op::NewObjEx,
            0x93 => Op::StackGlobal,
            0x94 => Op::Memoize,
            0x95 => {
                let n = u64::from_le_bytes(inp.fixed::<8>()?);
                if inp.frame_left() > 0 {
                    return Err(malformed(off, "FRAME starts before the current frame ends"));
                }
                inp.frame = Some(n);
                Op::Nop
            }
            0x97 => Op::NextBuffer,
            0x98 => Op::ReadonlyBuffer,
            _ => {
                return Err(PickleError::UnknownOpcode {
                    opcode: code,
                    offset: off,
                })
            }
        })
    }

    fn push(&mut self, m: &mut Machine, v: Val) -> Result<(), PickleError> {
        if m.stack.len().saturating_add(m.marks.len()) >= self.limits.max_stack {
            return Err(self.stack_limit());
        }
        if m.role != Role::Plain {
            if m.pending_version {
                m.pending_version = false;
                if let (Val::Str(s), None) = (&v, &self.sklearn_version) {
                    self.sklearn_version = Some(s.s.to_string());
                }
            }
            if let Val::Str(s) = &v {
                if &*s.s == "_sklearn_version" {
                    m.pending_version = true;
                }
            }
        }
        m.stack.push(v);
        Ok(())
    }

    fn stack_limit(&self) -> PickleError {
        PickleError::Limit {
            what: "stack depth",
            limit: u64::try_from(self.limits.max_stack).unwrap_or(u64::MAX),
        }
    }

    fn memo_put(
        &self,
        m: &mut Machine,
        base: Option<&HashMap<u64, Val>>,
        key: u64,
        v: Val,
    ) -> Result<(), PickleError> {
        if !m.memo.contains_key(&key) {
            if m.memo.len() >= self.limits.max_memo {
                return Err(PickleError::Limit {
                    what: "memo entries",
                    limit: u64::try_from(self.limits.max_memo).unwrap_or(u64::MAX),
                });
            }
            if m.role == Role::Plain && !base.is_some_and(|b| b.contains_key(&key)) {
                m.new_keys = m.new_keys.saturating_add(1);
            }
        }
        m.memo.insert(key, v);
        Ok(())
    }

    fn memo_len(m: &Machine) -> u64 {
        let len = if m.role == Role::Plain {
            m.base_len.saturating_add(m.new_keys)
        } else {
            m.memo.len()
        };
        len as u64
    }

    /// Result of calling something with untracked semantics.
    fn call_result(m: &mut Machine, inputs: &[&Val], plain: Val) -> Val {
        if m.role != Role::Outer {
            return plain;
        }
        if inputs.iter().any(|v| v.tainted()) {
            m.escaped = true;
        }
        if m.escaped {
            Val::Tainted
        } else {
            plain
        }
    }

    /// `cls.__new__(cls, ...)` through `NEWOBJ`/`NEWOBJ_EX`/`copyreg.__newobj__`.
    fn new_instance(m: &mut Machine, cls: &Val, rest: &[&Val]) -> Val {
        if m.role == Role::Outer && matches!(cls, Val::Global(GKind::Wrapper)) {
            if rest.iter().any(|v| v.tainted()) {
                m.escaped = true;
            }
            return Val::Node(Rc::new(RefCell::new(Node::Wrapper { built: false })));
        }
        let mut inputs = vec![cls];
        inputs.extend_from_slice(rest);
        Self::call_result(m, &inputs, Val::Instance)
    }

    fn reduce(&mut self, m: &mut Machine, f: &Val, args: &Val) -> Val {
        let tuple = match args {
            Val::Tuple(t) if !t.overflow => Some(t),
            _ => None,
        };
        match (f, tuple) {
            (Val::Global(GKind::NumpyDtype), _) if m.role != Role::Plain => {
                let code = tuple.and_then(|t| match t.items.as_slice() {
                    [Val::Str(s)] | [Val::Str(s), _] | [Val::Str(s), _, _] => Some(Rc::clone(s)),
                    _ => None,
                });
                if m.role == Role::Outer && args.tainted() {
                    m.escaped = true;
                }
                Val::Node(Rc::new(RefCell::new(Node::Dtype(DtypeV {
                    code,
                    state: None,
                }))))
            }
            (Val::Global(GKind::NumpyDtype), _) => Val::Instance,
            (Val::Global(GKind::CopyregNewobj), Some(t)) if !t.items.is_empty() => {
                let (cls, rest) = t
                    .items
                    .split_first()
                    .map_or((&Val::Unknown, &[][..]), |(c, r)| (c, r));
                let rest: Vec<&Val> = rest.iter().collect();
                Self::new_instance(m, cls, &rest)
            }
            (Val::Global(GKind::CopyregNewobjEx), Some(t)) if t.items.len() == 3 => {
                let (cls, rest) = t
                    .items
                    .split_first()
                    .map_or((&Val::Unknown, &[][..]), |(c, r)| (c, r));
                let rest: Vec<&Val> = rest.iter().collect();
                Self::new_instance(m, cls, &rest)
            }
            _ => Self::call_result(m, &[f, args], Val::Unknown),
        }
    }

    /// Inserting items into an existing object. A tainted item (or target) escapes, because the
    /// target's parents could no longer be flagged.
    fn insert_into(
        &mut self,
        m: &mut Machine,
        target: &Val,
        items: &[Val],
        off: u64,
    ) -> Result<(), PickleError> {
        if m.role == Role::Outer && (target.tainted() || items.iter().any(Val::tainted)) {
            m.escaped = true;
        }
        if m.role == Role::Plain {
            return Ok(());
        }
        let Val::Node(rc) = target else { return Ok(()) };
        let mut node = rc
            .try_borrow_mut()
            .map_err(|_| malformed(off, "object inserted into itself"))?;
        if let Node::Dict(d) = &mut *node {
            for pair in items.chunks(2) {
                let [k, v] = pair else { continue };
                if m.role == Role::Outer && v.tainted() {
                    d.tainted = true;
                }
                set_key(d, k, v.clone());
            }
        }
        Ok(())
    }

    fn build(&mut self, m: &mut Machine, off: u64) -> Result<Flow, PickleError> {
        let state = m.pop(off)?;
        let target = m.top(off)?;
        if m.role == Role::Plain {
            return Ok(Flow::Continue);
        }
        if let Val::Node(rc) = &target {
            let mut node = rc
                .try_borrow_mut()
                .map_err(|_| malformed(off, "object built from itself"))?;
            match &mut *node {
                Node::Wrapper { built } if m.role == Role::Outer => {
                    if *built {
                        return Err(malformed(off, "NumpyArrayWrapper built twice"));
                    }
                    *built = true;
                    drop(node);
                    if state.tainted() {
                        m.escaped = true;
                    }
                    return Ok(Flow::WrapperBuild(state));
                }
                Node::Dtype(d) => d.state = Some(state.clone().weakened()),
                _ => {}
            }
        }
        if m.role == Role::Outer {
            if matches!(target, Val::Tainted) {
                return Err(malformed(
                    off,
                    "BUILD on an object that may be a NumpyArrayWrapper built in a way the walker cannot follow",
                ));
            }
            if state.tainted() || target.tainted() {
                m.escaped = true;
            }
        }
        Ok(Flow::Continue)
    }

    fn stack_global(&mut self, m: &mut Machine, off: u64) -> Result<(), PickleError> {
        let name = m.pop(off)?;
        let module = m.pop(off)?;
        let (mc, nc) = (module.str_class(), name.str_class());
        if m.role == Role::Plain
            && (matches!(mc, StrClass::NotStr) || matches!(nc, StrClass::NotStr))
        {
            // pickle.load raises "STACK_GLOBAL requires str" here: this reading ends.
            m.alive = false;
            return Ok(());
        }
        let kind = match (mc, nc) {
            (StrClass::Known(a), StrClass::Known(b)) => self.record(&format!("{}.{}", a.s, b.s))?,
            _ => {
                self.record(UNRESOLVED)?;
                GKind::Unresolved
            }
        };
        self.push(m, Val::Global(kind))
    }

    fn apply(
        &mut self,
        m: &mut Machine,
        base: Option<&HashMap<u64, Val>>,
        op: &Op,
        off: u64,
    ) -> Result<Flow, PickleError> {
        match op {
            Op::Nop => {}
            Op::Proto(p) => {
                if *p > 5 {
                    return Err(malformed(off, format!("unsupported pickle protocol {p}")));
                }
                if m.role == Role::Outer && self.protocol.is_none() {
                    self.protocol = Some(*p);
                }
            }
            Op::Stop => {
                m.pop(off)?;
                return Ok(Flow::Stop);
            }
            Op::Mark => {
                if m.stack.len().saturating_add(m.marks.len()) >= self.limits.max_stack {
                    return Err(self.stack_limit());
                }
                m.marks.push(m.stack.len());
            }
            Op::Pop => {
                if m.marks.last() == Some(&m.stack.len()) {
                    m.marks.pop();
                } else {
                    m.pop(off)?;
                }
            }
            Op::PopMark => {
                m.pop_mark(off)?;
            }
            Op::Dup => {
                let v = m.top(off)?;
                self.push(m, v)?;
            }
            Op::Push(v) => self.push(m, v.clone())?,
            Op::EmptyTuple => {
                let t = self.make_tuple(m.role, Vec::new());
                self.push(m, t)?;
            }
            Op::EmptyList | Op::EmptySet => self.push(m, Val::Container(false))?,
            Op::EmptyDict => {
                let v = if m.role == Role::Plain {
                    Val::Container(false)
                } else {
                    Val::Node(Rc::new(RefCell::new(Node::Dict(DictV::default()))))
                };
                self.push(m, v)?;
            }
            Op::Tuple => {
                let items = m.pop_mark(off)?;
                let t = self.make_tuple(m.role, items);
                self.push(m, t)?;
            }
            Op::TupleN(n) => {
                let items = m.pop_n(*n, off)?;
                let t = self.make_tuple(m.role, items);
                self.push(m, t)?;
            }
            Op::List | Op::Frozenset => {
                let items = m.pop_mark(off)?;
                let t = m.tainted_any(&items);
                self.push(m, Val::Container(t))?;
            }
            Op::Dict => {
                let items = m.pop_mark(off)?;
                if items.len() % 2 != 0 {
                    return Err(malformed(off, "DICT with an odd number of items"));
                }
                let v = if m.role == Role::Plain {
                    Val::Container(false)
                } else {
                    let mut d = DictV {
                        tainted: m.tainted_any(&items),
                        ..DictV::default()
                    };
                    for pair in items.chunks(2) {
                        if let [k, v] = pair {
                            set_key(&mut d, k, v.clone());
                        }
                    }
                    Val::Node(Rc::new(RefCell::new(Node::Dict(d))))
                };
                self.push(m, v)?;
            }
            Op::Append => {
                let v = m.pop(off)?;
                let target = m.top(off)?;
                self.insert_into(m, &target, &[], off)?;
                if m.tainted(&v) {
                    m.escaped = true;
                }
            }
            Op::Appends | Op::AddItems => {
                let items = m.pop_mark(off)?;
                let target = m.top(off)?;
                self.insert_into(m, &target, &[], off)?;
                if m.tainted_any(&items) {
                    m.escaped = true;
                }
            }
            Op::SetItem => {
                let v = m.pop(off)?;
                let k = m.pop(off)?;
                let target = m.top(off)?;
                self.insert_into(m, &target, &[k, v], off)?;
            }
            Op::SetItems => {
                let items = m.pop_mark(off)?;
                if items.len() % 2 != 0 {
                    return Err(malformed(off, "SETITEMS with an odd number of items"));
                }
                let target = m.top(off)?;
                self.insert_into(m, &target, &items, off)?;
            }
            Op::Put(k) => {
                let v = m.top(off)?;
                self.memo_put(m, base, *k, v)?;
            }
            Op::Memoize => {
                let v = m.top(off)?;
                let k = Self::memo_len(m);
                self.memo_put(m, base, k, v)?;
            }
            Op::Get(k) => {
                let found = m
                    .memo
                    .get(k)
                    .or_else(|| base.and_then(|b| b.get(k)))
                    .cloned();
                match found {
                    Some(v) => self.push(m, v)?,
                    None if m.role == Role::Plain => m.alive = false,
                    None => return Err(malformed(off, format!("memo key {k} is not set"))),
                }
            }
            Op::Global(name) => {
                let kind = match name {
                    Some(n) => self.record(n)?,
                    None => {
                        self.record(UNRESOLVED)?;
                        GKind::Unresolved
                    }
                };
                self.push(m, Val::Global(kind))?;
            }
            Op::StackGlobal => self.stack_global(m, off)?,
            Op::Inst(name) => {
                let kind = match name {
                    Some(n) => self.record(n)?,
                    None => {
                        self.record(UNRESOLVED)?;
                        GKind::Unresolved
                    }
                };
                let args = m.pop_mark(off)?;
                let cls = Val::Global(kind);
                let mut inputs: Vec<&Val> = vec![&cls];
                inputs.extend(args.iter());
                let v = Self::call_result(m, &inputs, Val::Unknown);
                self.push(m, v)?;
            }
            Op::Obj => {
                let items = m.pop_mark(off)?;
                if items.is_empty() {
                    return Err(malformed(off, "OBJ without a class"));
                }
                let inputs: Vec<&Val> = items.iter().collect();
                let v = Self::call_result(m, &inputs, Val::Unknown);
                self.push(m, v)?;
            }
            Op::Ext(code) => {
                self.record(&format!("<ext:{code}>"))?;
                self.push(m, Val::Tainted)?;
            }
            Op::Reduce => {
                let args = m.pop(off)?;
                let f = m.pop(off)?;
                let v = self.reduce(m, &f, &args);
                self.push(m, v)?;
            }
            Op::NewObj => {
                let args = m.pop(off)?;
                let cls = m.pop(off)?;
                let v = Self::new_instance(m, &cls, &[&args]);
                self.push(m, v)?;
            }
            Op::NewObjEx => {
                let kwargs = m.pop(off)?;
                let args = m.pop(off)?;
                let cls = m.pop(off)?;
                let v = Self::new_instance(m, &cls, &[&args, &kwargs]);
                self.push(m, v)?;
            }
            Op::PersId => {
                self.record(PERSISTENT_ID)?;
                self.push(m, Val::Tainted)?;
            }
            Op::BinPersId => {
                let pid = m.pop(off)?;
                if m.tainted(&pid) {
                    m.escaped = true;
                }
                self.record(PERSISTENT_ID)?;
                self.push(m, Val::Tainted)?;
            }
            Op::Build => return self.build(m, off),
            Op::ReadonlyBuffer => {
                m.top(off)?;
            }
            Op::NextBuffer => self.push(m, Val::Scalar)?,
        }
        Ok(Flow::Continue)
    }

    /// Walks the outer stream up to and including its final `STOP`.
    fn run<R: Read>(&mut self, inp: &mut Input<R>) -> Result<(), PickleError> {
        let mut outer = Machine::new(Role::Outer);
        loop {
            let off = inp.offset;
            let op = self.next_op(inp)?;
            match self.apply(&mut outer, None, &op, off)? {
                Flow::Continue => {}
                Flow::Stop => return Ok(()),
                Flow::WrapperBuild(state) => self.joblib_array(inp, &mut outer, &state, off)?,
            }
        }
    }

    /// What joblib does right after a `NumpyArrayWrapper` `BUILD`.
    fn joblib_array<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        outer: &mut Machine,
        state: &Val,
        off: u64,
    ) -> Result<(), PickleError> {
        if inp.frame_left() > 0 {
            return Err(malformed(
                off,
                "NumpyArrayWrapper BUILD before the end of its FRAME",
            ));
        }
        inp.frame = None;
        let layout = wrapper_layout(state)
            .map_err(|d| malformed(off, format!("joblib NumpyArrayWrapper: {d}")))?;
        self.arrays = self.arrays.saturating_add(1);
        let check_plain = !self.plain_done;
        self.plain_done = true;
        if layout.hasobject {
            self.walk_nested(inp, check_plain.then_some(&outer.memo))?;
        } else {
            self.skip_array(inp, &layout, check_plain)?;
        }
        inp.frame = None;
        // joblib replaces the wrapper on the stack with the array it read.
        outer.stack.pop();
        outer.stack.push(Val::Unknown);
        Ok(())
    }

    fn skip_array<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        layout: &Layout,
        check_plain: bool,
    ) -> Result<(), PickleError> {
        let start = inp.offset;
        let mut shadow = Shadow::new();
        if !check_plain {
            shadow.state = ShadowState::Dead;
        }
        if layout.aligned {
            let pad = inp.byte()?;
            shadow.feed(&[pad]);
            let mut bad = false;
            inp.skip_with(pad.into(), |c| {
                bad |= c.iter().any(|&b| b != 0xff);
                shadow.feed(c);
            })?;
            if bad {
                return Err(malformed(
                    start,
                    "joblib alignment padding is not 0xff bytes",
                ));
            }
        }
        inp.skip_with(layout.data_len, |c| shadow.feed(c))?;
        self.add_ops(shadow.ops)?;
        if check_plain && !shadow.dead() {
            return Err(malformed(
                start,
                "joblib array bytes would parse as pickle opcodes that import something under plain pickle.load",
            ));
        }
        Ok(())
    }

    /// A nested object-array pickle: joblib's fresh unpickler and, when `outer_memo` is given,
    /// plain `pickle.load` of the whole file continuing over the same bytes, in lockstep.
    fn walk_nested<R: Read>(
        &mut self,
        inp: &mut Input<R>,
        outer_memo: Option<&HashMap<u64, Val>>,
    ) -> Result<(), PickleError> {
        let mut joblib = Machine::new(Role::Nested);
        let mut plain = Machine::new(Role::Plain);
        plain.alive = outer_memo.is_some();
        plain.base_len = outer_memo.map_or(0, HashMap::len);
        loop {
            let off = inp.offset;
            let op = self.next_op(inp)?;
            let flow = self.apply(&mut joblib, None, &op, off)?;
            if plain.alive {
                if let Flow::Stop = self.apply(&mut plain, outer_memo, &op, off)? {
                    plain.alive = false;
                }
            }
            match flow {
                Flow::Continue => {}
                Flow::Stop => {
                    if inp.frame_left() > 0 {
                        return Err(malformed(
                            off,
                            "nested pickle STOP before the end of its FRAME",
                        ));
                    }
                    return Ok(());
                }
                Flow::WrapperBuild(_) => {
                    return Err(malformed(off, "unexpected wrapper in a nested pickle"))
                }
            }
        }
    }
}

impl Machine {
    fn tainted_any(&self, items: &[Val]) -> bool {
        self.role == Role::Outer && items.iter().any(Val::tainted)
    }
}

fn set_key(d: &mut DictV, k: &Val, v: Val) {
    // An instance of a `str` subclass (NEWOBJ numpy.str_, ...) compares equal to a `str` key.
    let class = match k {
        Val::Instance => StrClass::Maybe,
        other => other.str_class(),
    };
    match class {
        StrClass::Known(s) => {
            if let Some(i) = WRAPPER_ATTRS.iter().position(|a| *a == &*s.s) {
                if let Some(slot) = d.slots.get_mut(i) {
                    *slot = Some(v.weakened());
                }
            }
        }
        StrClass::NotStr => {}
        StrClass::Maybe => d.unknown_keys = true,
    }
}

// ---------------------------------------------------------------------------------------------
// joblib array layout.

fn wrapper_layout(state: &Val) -> Result<Layout, String> {
    let rc = match state {
        Val::Node(rc) => Rc::clone(rc),
        _ => return Err("state is not a dict".into()),
    };
    let node = rc.try_borrow().map_err(|_| "state is busy".to_string())?;
    let Node::Dict(d) = &*node else {
        return Err("state is not a dict".into());
    };
    if d.unknown_keys {
        return Err("state has keys of unknown value".into());
    }
    let slot = |i: usize| d.slots.get(i).and_then(Option::as_ref);

    let count = match slot(SLOT_SHAPE) {
        Some(Val::Tuple(t)) if !t.overflow => t.items.iter().try_fold(1u64, |acc, v| match v {
            Val::Int(n) if *n >= 0 => acc.checked_mul(*n as u64).ok_or("shape product overflows"),
            _ => Err("shape has a non-integer or negative dimension"),
        })?,
        _ => return Err("shape is not a known tuple of integers".into()),
    };
    let dtype = slot(SLOT_DTYPE)
        .and_then(Val::node)
        .ok_or("dtype is not a numpy.dtype")?;
    let dtype = dtype
        .try_borrow()
        .map_err(|_| "dtype is busy".to_string())?;
    let Node::Dtype(dt) = &*dtype else {
        return Err("dtype is not a numpy.dtype".into());
    };
    let (hasobject, itemsize) = dtype_layout(dt)?;

    let aligned = match slot(SLOT_ALIGN) {
        None | Some(Val::Nil) => false,
        Some(Val::Unknown | Val::Tainted | Val::Global(_) | Val::Instance) => {
            return Err("numpy_array_alignment_bytes has an unknown value".into())
        }
        Some(_) => true,
    };
    if hasobject {
        match slot(SLOT_MMAP) {
            None | Some(Val::Nil | Val::Bool(false) | Val::Int(0)) => {}
            _ => return Err("object array with allow_mmap set".into()),
        }
    }
    let data_len = count
        .checked_mul(itemsize)
        .ok_or("array byte size overflows")?;
    if data_len > i64::MAX as u64 || count > i64::MAX as u64 {
        return Err("array byte size overflows".into());
    }
    Ok(Layout {
        hasobject,
        aligned,
        data_len,
    })
}

/// `(hasobject, itemsize)` of a symbolic `numpy.dtype(code, ...)` with its `__setstate__` state.
fn dtype_layout(dt: &DtypeV) -> Result<(bool, u64), String> {
    let code = dt.code.as_ref().ok_or("dtype code is not a known string")?;
    let bytes = code.s.as_bytes();
    let (kind, digits) = bytes.split_first().ok_or("empty dtype code")?;
    if digits.is_empty()
        || digits.len() > 9
        || !digits.iter().all(u8::is_ascii_digit)
        || !b"biufcmMOSUV".contains(kind)
    {
        return Err(format!("unsupported dtype code {:?}", &*code.s));
    }
    let n: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or("bad dtype size")?;
    if n == 0 {
        return Err(format!("unsized dtype code {:?}", &*code.s));
    }
    let code_size = if *kind == b'U' {
        n.checked_mul(4).ok_or("bad dtype size")?
    } else {
        n
    };
    let flexible = matches!(kind, b'S' | b'U' | b'V');
    let (hasobject, size) = match &dt.state {
        None => (*kind == b'O', code_size),
        Some(Val::Tuple(t)) if !t.overflow && (t.items.len() == 8 || t.items.len() == 9) => {
            let int = |i: usize| match t.items.get(i) {
                Some(Val::Int(v)) if i32::try_from(*v).is_ok() => Ok(*v),
                _ => Err(format!("dtype state item {i} is not a known C int")),
            };
            let version = int(0)?;
            if !(3..=4).contains(&version) {
                return Err(format!("dtype state version {version} is not supported"));
            }
            let elsize = int(5)?;
            let mut flags = int(7)?;
            if (-128..0).contains(&flags) {
                flags += 128;
            }
            if flags < 0 {
                return Err("dtype flags out of range".into());
            }
            let size = if flexible {
                if elsize <= 0 || elsize as u64 != code_size {
                    return Err(format!(
                        "dtype elsize {elsize} does not match code {:?}",
                        &*code.s
                    ));
                }
                code_size
            } else {
                code_size
            };
            (flags & 1 != 0, size)
        }
        Some(_) => return Err("dtype state is not a version 3/4 state tuple".into()),
    };
    // numpy takes `hasobject` from the pickled flags; only `O` arrays are nested pickles.
    // Structured `V` dtypes with object fields are refused: numpy skips the pickled state in
    // some cases, and then joblib would read raw bytes where the flags promise a nested pickle.
    if (*kind == b'O') != hasobject {
        return Err(format!(
            "dtype {:?} has an unsupported object flag",
            &*code.s
        ));
    }
    Ok((hasobject, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sklearn/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("read fixture {name}: {e}"))
    }

    fn scan_bytes(b: &[u8]) -> Result<PickleInfo, PickleError> {
        scan(b, &PickleLimits::default())
    }

    const TREE_P3: &[&str] = &[
        "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy.dtype",
        "numpy.ndarray",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    ];
    const TREE_JOBLIB: &[&str] = &[
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "numpy._core.multiarray.scalar",
        "numpy.dtype",
        "numpy.ndarray",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    ];

    /// Expected values, copied from expected_globals.json.
    /// (file, format, protocol, globals, sklearn_version, arrays)
    type Expected = (
        &'static str,
        ModelFormat,
        u8,
        Vec<&'static str>,
        Option<&'static str>,
        u64,
    );

    fn expected() -> Vec<Expected> {
        let p2: Vec<&str> = std::iter::once("_codecs.encode")
            .chain(TREE_P3.iter().copied())
            .collect();
        vec![
            (
                "evil_reduce.pkl",
                ModelFormat::Pickle { protocol: 4 },
                4,
                vec!["posix.system"],
                None,
                0,
            ),
            (
                "iris_pipeline.joblib",
                ModelFormat::Joblib,
                4,
                vec![
                    "joblib.numpy_pickle.NumpyArrayWrapper",
                    "numpy._core.multiarray.scalar",
                    "numpy.dtype",
                    "numpy.ndarray",
                    "sklearn.linear_model._logistic.LogisticRegression",
                    "sklearn.pipeline.Pipeline",
                    "sklearn.preprocessing._data.StandardScaler",
                ],
                Some("1.9.1"),
                7,
            ),
            (
                "iris_tree.joblib",
                ModelFormat::Joblib,
                4,
                TREE_JOBLIB.to_vec(),
                Some("1.9.1"),
                4,
            ),
            (
                "iris_tree_p2.pkl",
                ModelFormat::Pickle { protocol: 2 },
                2,
                p2,
                Some("1.9.1"),
                0,
            ),
            (
                "iris_tree_p3.pkl",
                ModelFormat::Pickle { protocol: 3 },
                3,
                TREE_P3.to_vec(),
                Some("1.9.1"),
                0,
            ),
            (
                "iris_tree_p4.pkl",
                ModelFormat::Pickle { protocol: 4 },
                4,
                TREE_P3.to_vec(),
                Some("1.9.1"),
                0,
            ),
            (
                "iris_tree_p5.pkl",
                ModelFormat::Pickle { protocol: 5 },
                5,
                vec![
                    "numpy._core.multiarray.scalar",
                    "numpy._core.numeric._frombuffer",
                    "numpy.dtype",
                    "sklearn.tree._classes.DecisionTreeClassifier",
                    "sklearn.tree._tree.Tree",
                ],
                Some("1.9.1"),
                0,
            ),
            (
                "iris_tree_z3.joblib",
                ModelFormat::JoblibZlib,
                4,
                TREE_JOBLIB.to_vec(),
                Some("1.9.1"),
                4,
            ),
        ]
    }

    #[test]
    fn fixtures_match_expected_globals() {
        let json = String::from_utf8(fixture("expected_globals.json")).expect("utf-8 json");
        for (name, format, protocol, globals, version, arrays) in expected() {
            assert!(
                json.contains(&format!("\"{name}\"")),
                "{name} missing from expected_globals.json"
            );
            let info = scan_bytes(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(info.format, format, "{name} format");
            assert_eq!(info.protocol, protocol, "{name} protocol");
            assert_eq!(info.globals, globals, "{name} globals");
            assert_eq!(
                info.sklearn_version.as_deref(),
                version,
                "{name} sklearn_version"
            );
            assert_eq!(info.arrays, arrays, "{name} arrays");
            assert_eq!(
                sniff(&fixture(name)).name(),
                if format == ModelFormat::Joblib {
                    "pickle"
                } else {
                    format.name()
                }
            );
        }
    }

    /// The embedded expectations agree with expected_globals.json (tiny hand parse: the
    /// `"globals": [...]` list of each file entry).
    #[test]
    fn embedded_expectations_agree_with_json() {
        let json = String::from_utf8(fixture("expected_globals.json")).expect("utf-8 json");
        for (name, _, protocol, globals, version, _) in expected() {
            let at = json.find(&format!("\"{name}\": {{")).expect("file entry");
            let entry = &json[at..];
            let entry = &entry[..entry.find("\n  }").expect("entry end")];
            let g = &entry[entry.find("\"globals\": [").expect("globals") + 12..];
            let g = &g[..g.find(']').expect("globals end")];
            let listed: Vec<String> = g
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect();
            assert_eq!(listed, globals, "{name}");
            assert!(
                entry.contains(&format!("\"protocol\": {protocol}")),
                "{name} protocol"
            );
            let v = match version {
                Some(v) => format!("\"sklearn_version\": \"{v}\""),
                None => "\"sklearn_version\": null".into(),
            };
            assert!(entry.contains(&v), "{name} version");
        }
    }

    #[test]
    fn evil_reduce_reports_posix_system() {
        let info = scan_bytes(&fixture("evil_reduce.pkl")).expect("scan");
        assert_eq!(info.globals, vec!["posix.system".to_string()]);
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        for (name, ..) in expected() {
            let data = fixture(name);
            for cut in 0..data.len() {
                assert!(
                    scan_bytes(&data[..cut]).is_err(),
                    "{name} cut at {cut} scanned fine"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        for name in [
            "iris_tree_p4.pkl",
            "iris_tree.joblib",
            "iris_tree_z3.joblib",
        ] {
            let mut data = fixture(name);
            data.push(b'N');
            assert!(
                matches!(scan_bytes(&data), Err(PickleError::Malformed { .. })),
                "{name}"
            );
        }
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % (n.max(1) as u64)) as usize
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for i in 0..5000 {
            let len = rng.below(300);
            let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if i % 2 == 0 && data.len() >= 2 {
                data[0] = 0x80;
                data[1] = 2 + (rng.next() % 4) as u8;
            }
            let _ = scan_bytes(&data);
        }
    }

    #[test]
    fn huge_binunicode8_fails_fast_without_allocating() {
        let mut data = vec![0x80, 4, 0x8d];
        data.extend_from_slice(&(1u64 << 62).to_le_bytes());
        data.extend_from_slice(b"abc");
        let t = std::time::Instant::now();
        let err = scan_bytes(&data).expect_err("must fail");
        assert!(
            matches!(
                err,
                PickleError::Limit { .. } | PickleError::Truncated { .. }
            ),
            "{err}"
        );
        // Also with a cap above the claimed size: truncation, not an allocation.
        let limits = PickleLimits {
            max_input_bytes: u64::MAX,
            max_string: usize::MAX,
            ..PickleLimits::default()
        };
        let err = scan(&data[..], &limits).expect_err("must fail");
        assert!(matches!(err, PickleError::Truncated { .. }), "{err}");
        assert!(t.elapsed().as_secs() < 2);
    }

    #[test]
    fn deep_mark_nesting_hits_the_stack_limit() {
        let limits = PickleLimits {
            max_stack: 1000,
            ..PickleLimits::default()
        };
        let mut data = vec![0x80, 4];
        data.extend(std::iter::repeat_n(b'(', 5000));
        let err = scan(&data[..], &limits).expect_err("must fail");
        assert!(
            matches!(
                err,
                PickleError::Limit {
                    what: "stack depth",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn stack_global_with_non_string_operands_is_unresolved() {
        // PROTO 4, BININT1 1, BININT1 2, STACK_GLOBAL, STOP
        let info = scan_bytes(&[0x80, 4, b'K', 1, b'K', 2, 0x93, b'.']).expect("scan");
        assert_eq!(info.globals, vec![UNRESOLVED.to_string()]);
        // A module string longer than max_string is unresolved too.
        let mut data = vec![0x80, 4, 0x8d];
        data.extend_from_slice(&2000u64.to_le_bytes());
        data.extend(std::iter::repeat_n(b'a', 2000));
        data.extend_from_slice(&[0x8c, 1, b'x', 0x93, b'.']);
        assert_eq!(
            scan_bytes(&data).expect("scan").globals,
            vec![UNRESOLVED.to_string()]
        );
        // And a module name that is the result of a call.
        let data = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93)R\x8c\x06system\x93.";
        let info = scan_bytes(data).expect("scan");
        assert_eq!(
            info.globals,
            vec![UNRESOLVED.to_string(), "builtins.str".to_string()]
        );
    }

    #[test]
    fn memo_resolved_stack_global() {
        // 'os' memoized, then fetched back with BINGET as the module of a STACK_GLOBAL.
        let data = b"\x80\x04\x8c\x02os\x94\x8c\x01x\x94\x93\x94h\x00\x8c\x06system\x93.";
        let info = scan_bytes(data).expect("scan");
        assert_eq!(
            info.globals,
            vec!["os.system".to_string(), "os.x".to_string()]
        );
        // PUT/GET in protocol 0 text form as well.
        let data = b"\x80\x02Vos\np0\n0g0\nVsystem\n\x93.";
        assert_eq!(
            scan_bytes(data).expect("scan").globals,
            vec!["os.system".to_string()]
        );
    }

    #[test]
    fn ext_and_inst_and_persid_are_recorded() {
        let data = b"\x80\x02\x82\x05\x83\x00\x01\x84\xff\xff\xff\xff(ios\nsystem\n0P1\n0N.";
        let info = scan_bytes(data).expect("scan");
        assert_eq!(
            info.globals,
            vec![
                "<ext:-1>",
                "<ext:256>",
                "<ext:5>",
                "<persistent_id>",
                "os.system"
            ]
        );
    }

    #[test]
    fn sklearn_version_via_memo() {
        let data = b"\x80\x04}\x94(\x8c\x10_sklearn_version\x94\x8c\x051.2.3\x94u\x8c\x04more\x94h\x01h\x02.";
        let info = scan_bytes(data).expect("scan");
        assert_eq!(info.sklearn_version.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn every_opcode_byte_is_classified() {
        let mut known = 0;
        for b in 0u8..=255 {
            let data = [0x80, 4, b];
            let r = scan_bytes(&data);
            let unknown =
                matches!(r, Err(PickleError::UnknownOpcode { opcode, offset: 2 }) if opcode == b);
            assert_eq!(unknown, op_arg(b).is_none(), "opcode 0x{b:02x}: {r:?}");
            known += usize::from(op_arg(b).is_some());
        }
        assert_eq!(known, 68);
    }

    #[test]
    fn frame_straddling_is_refused() {
        // FRAME of 3 bytes, then SHORT_BINUNICODE of 5 bytes: runs past the frame.
        let mut data = vec![0x80, 4, 0x95];
        data.extend_from_slice(&3u64.to_le_bytes());
        data.extend_from_slice(&[0x8c, 5, b'a', b'b', b'c', b'd', b'e', b'.']);
        assert!(matches!(
            scan_bytes(&data),
            Err(PickleError::Malformed { .. })
        ));
        // A new FRAME in the middle of the current one.
        let mut data = vec![0x80, 4, 0x95];
        data.extend_from_slice(&20u64.to_le_bytes());
        data.push(0x95);
        data.extend_from_slice(&1u64.to_le_bytes());
        data.extend_from_slice(b"N.........");
        assert!(matches!(
            scan_bytes(&data),
            Err(PickleError::Malformed { .. })
        ));
    }

    // ---- hand-made joblib streams ----

    /// `NumpyArrayWrapper` record as joblib 1.6 writes it (protocol 4, no FRAME), for dtype
    /// code `code` with state flags `flags`, `shape`, and an optional alignment attribute.
    fn wrapper(code: &str, elsize: i32, flags: u8, shape: &[u8], aligned: bool) -> Vec<u8> {
        let dims: Vec<u8> = shape.iter().flat_map(|d| [b'K', *d]).collect();
        wrapper_raw(code, elsize, flags, &dims, aligned)
    }

    /// Like [`wrapper`], with the shape tuple's items given as raw opcodes.
    fn wrapper_raw(code: &str, elsize: i32, flags: u8, dims: &[u8], aligned: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let s = |v: &mut Vec<u8>, x: &str| {
            v.push(0x8c);
            v.push(x.len() as u8);
            v.extend_from_slice(x.as_bytes());
        };
        s(&mut v, "joblib.numpy_pickle");
        s(&mut v, "NumpyArrayWrapper");
        v.extend_from_slice(&[0x93, 0x94, b')', 0x81, 0x94, b'}', 0x94, b'(']);
        s(&mut v, "shape");
        v.push(b'(');
        v.extend_from_slice(dims);
        v.extend_from_slice(&[b't', 0x94]);
        s(&mut v, "dtype");
        s(&mut v, "numpy");
        s(&mut v, "dtype");
        v.push(0x93);
        s(&mut v, code);
        v.extend_from_slice(&[0x89, 0x88, 0x87, b'R', 0x94, b'(', b'K', 3]);
        s(&mut v, "<");
        v.extend_from_slice(b"NNNJ");
        v.extend_from_slice(&elsize.to_le_bytes());
        v.extend_from_slice(&[b'J', 0xff, 0xff, 0xff, 0xff, b'K', flags, b't', 0x94, b'b']);
        if aligned {
            s(&mut v, "numpy_array_alignment_bytes");
            v.extend_from_slice(&[b'K', 16]);
        }
        v.extend_from_slice(b"ub");
        v
    }

    #[test]
    fn joblib_array_is_skipped() {
        let mut data = vec![0x80, 4, b']', 0x94];
        data.extend(wrapper("f8", -1, 0, &[2, 3], true));
        data.push(4);
        data.extend_from_slice(&[0xff; 4]);
        // 6 float64 values whose bytes include things that look like opcodes.
        data.extend(std::iter::repeat_n(b'c', 48));
        data.extend_from_slice(b"a.");
        let info = scan_bytes(&data).expect("scan");
        assert_eq!(info.format, ModelFormat::Joblib);
        assert_eq!(info.arrays, 1);
        assert_eq!(
            info.globals,
            vec!["joblib.numpy_pickle.NumpyArrayWrapper", "numpy.dtype"]
        );
        // Bad padding byte content is refused.
        let mut bad = data.clone();
        let at = bad.len() - 48 - 2 - 2;
        bad[at] = 0;
        assert!(matches!(
            scan_bytes(&bad),
            Err(PickleError::Malformed { .. })
        ));
    }

    #[test]
    fn unaligned_array_data_that_plain_pickle_would_execute_is_refused() {
        let mut data = vec![0x80, 4, b']', 0x94];
        data.extend(wrapper("V16", 16, 0, &[1], false));
        // The 16 "array" bytes are a GLOBAL that plain pickle.load would import.
        let payload = b"cos\nsystem\n0NNNN";
        assert_eq!(payload.len(), 16);
        data.extend_from_slice(payload);
        data.extend_from_slice(b"a.");
        let err = scan_bytes(&data).expect_err("must refuse");
        assert!(matches!(err, PickleError::Malformed { .. }), "{err}");
        // Harmless data (starts with an invalid opcode byte) is fine.
        let mut ok = data[..data.len() - 18].to_vec();
        ok.extend_from_slice(&[0u8; 16]);
        ok.extend_from_slice(b"a.");
        assert_eq!(scan_bytes(&ok).expect("scan").arrays, 1);
    }

    #[test]
    fn only_the_first_array_region_is_checked_for_plain_pickle_load() {
        // First array: aligned, the padding-length byte stops plain pickle.load. The second
        // (unaligned) array's bytes would parse as a GLOBAL, but plain pickle.load is over.
        let mut data = vec![0x80, 4, b']', 0x94, b'('];
        data.extend(wrapper("f8", -1, 0, &[1], true));
        data.push(2);
        data.extend_from_slice(&[0xff, 0xff]);
        data.extend_from_slice(&[0u8; 8]);
        data.extend(wrapper("V16", 16, 0, &[1], false));
        data.extend_from_slice(b"cos\nsystem\n0NNNN");
        data.extend_from_slice(b"e.");
        let info = scan_bytes(&data).expect("scan");
        assert_eq!(info.arrays, 2);
        assert!(!info.globals.contains(&"os.system".to_string()));
    }

    #[test]
    fn joblib_object_array_nested_pickle_is_walked() {
        let mut data = vec![0x80, 4, b']', 0x94];
        data.extend(wrapper("O8", -1, 63, &[1], false));
        // Nested protocol-2 pickle with its own GLOBAL.
        data.extend_from_slice(b"\x80\x02cbuiltins\nlen\nq\x00)R.");
        data.extend_from_slice(b"a.");
        let info = scan_bytes(&data).expect("scan");
        assert_eq!(info.arrays, 1);
        assert!(
            info.globals.contains(&"builtins.len".to_string()),
            "{:?}",
            info.globals
        );
        // Under plain pickle.load of the whole file, the nested MEMOIZE numbering continues
        // from the outer memo, so the nested `BINGET 1` fetches the outer key 1 ("posix")
        // where joblib's fresh unpickler fetches "len". Both readings are reported.
        let mut data = vec![0x80, 4, b']', 0x94, 0x8c, 5];
        data.extend_from_slice(b"posix\x940");
        data.extend(wrapper("O8", -1, 63, &[1], false));
        data.extend_from_slice(
            b"\x80\x05\x8c\x08builtins\x94\x8c\x03len\x94\x93\x940h\x01\x8c\x06system\x93.",
        );
        data.extend_from_slice(b"a.");
        let info = scan_bytes(&data).expect("scan");
        assert_eq!(
            info.globals,
            vec![
                "builtins.len",
                "joblib.numpy_pickle.NumpyArrayWrapper",
                "len.system",
                "numpy.dtype",
                "posix.system"
            ]
        );
    }

    #[test]
    fn joblib_layout_edge_cases() {
        // Shape given with LONG1 (as Python writes dims >= 2**31) is skipped exactly.
        let mut data = vec![0x80, 4, b']', 0x94];
        data.extend(wrapper_raw("i2", -1, 0, &[0x8a, 2, 3, 0], false));
        data.extend_from_slice(&[0u8; 6]);
        data.extend_from_slice(b"a.");
        assert_eq!(scan_bytes(&data).expect("scan").arrays, 1);
        // With a max_string too small to resolve the wrapper class, the wrapper's BUILD is
        // refused rather than walked as a plain BUILD.
        let limits = PickleLimits {
            max_string: 0,
            ..PickleLimits::default()
        };
        assert!(matches!(
            scan(&data[..], &limits),
            Err(PickleError::Malformed { .. })
        ));
        // A shape whose product overflows is refused, not wrapped around.
        let mut data = vec![0x80, 4, b']', 0x94];
        let big = [0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x40];
        let dims: Vec<u8> = big.iter().chain(big.iter()).copied().collect();
        data.extend(wrapper_raw("f8", -1, 0, &dims, true));
        data.extend_from_slice(b"\x01\xffa.");
        assert!(matches!(
            scan_bytes(&data),
            Err(PickleError::Malformed { .. })
        ));
        // A wrapper BUILD inside an unfinished FRAME (joblib would read the array from after
        // the frame) is refused.
        let body = wrapper("f8", -1, 0, &[1], false);
        let mut data = vec![0x80, 4, 0x95];
        data.extend_from_slice(&(body.len() as u64 + 4).to_le_bytes());
        data.extend_from_slice(&[b']', 0x94]);
        data.extend(body);
        data.extend_from_slice(b"a.");
        data.extend_from_slice(&[0u8; 8]);
        assert!(matches!(
            scan_bytes(&data),
            Err(PickleError::Malformed { .. })
        ));
        // Building the same wrapper twice (joblib would read a second array) is refused.
        let mut data = vec![0x80, 4, b']', 0x94];
        data.extend(wrapper("f8", -1, 0, &[1], false));
        data.extend_from_slice(&[0u8; 8]);
        data.extend_from_slice(b"h\x02h\x03b0a.");
        let err = scan_bytes(&data).expect_err("must refuse");
        assert!(err.to_string().contains("twice"), "{err}");
        // A state key made by NEWOBJ could be a str subclass equal to "shape": refused.
        let mut data = vec![0x80, 4, b']', 0x94];
        data.extend(wrapper("f8", -1, 0, &[1], false));
        data.truncate(data.len() - 2); // drop SETITEMS, BUILD
        data.extend_from_slice(b"\x8c\x05numpy\x8c\x04str_\x93\x8c\x05shape\x85\x81K\x02\x85ub");
        data.extend_from_slice(&[0u8; 8]);
        data.extend_from_slice(b"a.");
        let err = scan_bytes(&data).expect_err("must refuse");
        assert!(err.to_string().contains("unknown value"), "{err}");
    }

    #[test]
    fn limits_are_enforced() {
        let tree = fixture("iris_tree_p4.pkl");
        let check = |data: &[u8], limits: PickleLimits, what: &str| match scan(data, &limits) {
            Err(PickleError::Limit { what: w, .. }) => assert_eq!(w, what),
            other => panic!("expected {what} limit, got {other:?}"),
        };
        check(
            &tree,
            PickleLimits {
                max_ops: 50,
                ..Default::default()
            },
            "opcodes",
        );
        check(
            &tree,
            PickleLimits {
                max_memo: 10,
                ..Default::default()
            },
            "memo entries",
        );
        check(
            &tree,
            PickleLimits {
                max_globals: 2,
                ..Default::default()
            },
            "globals",
        );
        check(
            &tree,
            PickleLimits {
                max_stack: 5,
                ..Default::default()
            },
            "stack depth",
        );
        check(
            &tree,
            PickleLimits {
                max_input_bytes: 100,
                ..Default::default()
            },
            "input bytes",
        );
        let z = fixture("iris_tree_z3.joblib");
        check(
            &z,
            PickleLimits {
                max_input_bytes: 1000,
                ..Default::default()
            },
            "compressed input bytes",
        );
        check(
            &z,
            PickleLimits {
                max_input_bytes: 2000,
                ..Default::default()
            },
            "input bytes",
        );
        // A GLOBAL line longer than max_string is recorded as unresolved, never dropped.
        let limits = PickleLimits {
            max_string: 4,
            ..Default::default()
        };
        let info = scan(&b"\x80\x02cposix\nsystem\n."[..], &limits).expect("scan");
        assert_eq!(info.globals, vec![UNRESOLVED]);
    }

    #[test]
    fn wrapper_built_through_reconstructor_is_refused() {
        let data = b"\x80\x04\x8c\x07copyreg\x8c\x0e_reconstructor\x93\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93\x8c\x08builtins\x8c\x06object\x93N\x87R}b.";
        let err = scan_bytes(data).expect_err("must refuse");
        assert!(matches!(err, PickleError::Malformed { .. }), "{err}");
    }

    #[test]
    fn sniff_formats() {
        assert_eq!(sniff(b"GGUF\x03\0\0\0"), ModelFormat::Gguf);
        let mut st = 10u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"a\":1}");
        assert_eq!(sniff(&st), ModelFormat::Safetensors);
        assert_eq!(sniff(b"\x08\x07\x12\x04test"), ModelFormat::Onnx);
        assert_eq!(sniff(b"\x80\x05\x95"), ModelFormat::Pickle { protocol: 5 });
        assert_eq!(sniff(b"\x80\x01"), ModelFormat::Unknown);
        assert_eq!(sniff(b"(lp0\n."), ModelFormat::Unknown);
        assert_eq!(
            sniff(&fixture("iris_tree_z3.joblib")),
            ModelFormat::JoblibZlib
        );
        // A zlib stream of something else: sniff may be inconclusive, scan refuses.
        let not_pickle = b"x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15";
        assert_ne!(sniff(not_pickle), ModelFormat::Pickle { protocol: 4 });
        assert!(matches!(
            scan_bytes(not_pickle),
            Err(PickleError::NotAPickle)
        ));
        assert_eq!(sniff(b"x\x9c\xff\xff"), ModelFormat::Unknown);
        assert_eq!(sniff(b""), ModelFormat::Unknown);
        assert!(matches!(
            scan_bytes(b"GGUF\x03\0\0\0"),
            Err(PickleError::NotAPickle)
        ));
    }

    #[test]
    fn quick_fuzz_mutations_never_panic() {
        let names = [
            "evil_reduce.pkl",
            "iris_pipeline.joblib",
            "iris_tree.joblib",
            "iris_tree_p2.pkl",
            "iris_tree_p3.pkl",
            "iris_tree_p4.pkl",
            "iris_tree_p5.pkl",
            "iris_tree_z3.joblib",
        ];
        let mut seeds: Vec<Vec<u8>> = names.iter().map(|n| fixture(n)).collect();
        let mut aligned = vec![0x80, 4, b']', 0x94];
        aligned.extend(wrapper("f8", -1, 0, &[2], true));
        aligned.extend_from_slice(&[3, 0xff, 0xff, 0xff]);
        aligned.extend_from_slice(&[7u8; 16]);
        aligned.extend_from_slice(b"a.");
        let mut nested = vec![0x80, 4, b']', 0x94];
        nested.extend(wrapper("O8", -1, 63, &[1], false));
        nested.extend_from_slice(
            b"\x80\x05\x8c\x08builtins\x94\x8c\x03len\x94\x93\x940h\x01\x8c\x06system\x93.a.",
        );
        seeds.push(aligned);
        seeds.push(nested);
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let limits = PickleLimits {
            max_ops: 200_000,
            ..PickleLimits::default()
        };
        let start = std::time::Instant::now();
        let mut ok = 0u32;
        for _ in 0..20_000 {
            let mut data = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(5) {
                    0 => {
                        let i = rng.below(data.len());
                        data[i] = rng.next() as u8;
                    }
                    1 => {
                        let i = rng.below(data.len());
                        data[i] ^= 1 << rng.below(8);
                    }
                    2 => {
                        let i = rng.below(data.len());
                        let n = rng.below(8).min(data.len() - i);
                        data.drain(i..i + n);
                    }
                    3 => {
                        let i = rng.below(data.len() + 1);
                        let b =
                            [b'(', 0x93, 0x94, b'h', b'b', 0x8c, 0x95, b'.', 0xff][rng.below(9)];
                        data.insert(i, b);
                    }
                    _ => {
                        let i = rng.below(data.len());
                        let j = rng.below(data.len());
                        data.swap(i, j);
                    }
                }
                if data.is_empty() {
                    data.push(0x80);
                }
            }
            if scan(&data[..], &limits).is_ok() {
                ok += 1;
            }
        }
        eprintln!(
            "quick fuzz: 20000 mutations in {:?} ({ok} scanned cleanly)",
            start.elapsed()
        );
    }
}
