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

use std::cell::Cell;
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

mod apply;
mod input;
mod joblib;
mod machine;
mod ops;
mod shadow;
mod value;

use input::*;
use joblib::*;
use machine::*;
use ops::*;
use shadow::*;
use value::*;

#[cfg(test)]
mod tests;
