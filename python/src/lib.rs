//! `modelseal._modelseal`: the native half of the Python package.
//!
//! A thin layer over the `modelseal` crate, which stays the one place where the format, the checks
//! and the cryptography live. Every function here converts Python arguments, releases the GIL while
//! the crate works, and maps the crate's typed errors to the Python exceptions defined in
//! `modelseal/errors.py`, with the CLI's message and hint.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use modelseal::error::{
    Area, Error, ErrorKind, KeyError, ModelError, Term, TrustError, UsageError, VerifyError,
    Vocabulary,
};
use modelseal::keys::{OpeningKey, PublicKey, SecretKey, SharedKey};
use modelseal::open::{self, Decryption, ReadOptions};
use modelseal::scan::GlobalPolicy;
use modelseal::seal::{self, Details, OutputOptions};
use modelseal::state::RollbackState;
use modelseal::time::Expiry;
use modelseal::trust::TrustStore;
use modelseal::{scan, Limits};

/// The Python package's names for the options and commands the library's hints refer to: its
/// argument names, never the CLI's flags.
struct PythonNames;

impl Vocabulary for PythonNames {
    fn term(&self, term: Term) -> &'static str {
        match term {
            Term::Force => "force=True",
            Term::Recipients => "recipients=",
            Term::SharedKey => "shared_key=",
            Term::Identity => "identity=",
            Term::SigningKey => "signing_key=",
            Term::Trust => "trust=",
            Term::KeygenShared => "modelseal.keygen_shared()",
            Term::KeyPrefix => "prefix",
            Term::AllowGlobals => "allow_globals=",
            Term::NoState => "no_state=True",
            Term::VersionPolicy => "a relaxed version_policy=",
            Term::TrustAdd => "the command line's `modelseal trust add`",
            Term::CoSign => "the command line's `modelseal sign`",
            Term::OpenUnchecked => "the command line's `modelseal open`",
            Term::OutputDir => "give a directory path",
            Term::StreamOut | Term::StreamIn => "give a path, bytes or a binary file object",
            Term::TrustHelp => "SECURITY.md",
            Term::ExpiryForms => {
                "expires= is a timedelta, a timezone-aware datetime in the future, or Unix seconds"
            }
            Term::CompressionForms => {
                "compress= takes 'auto', 'zstd' (level 3), 'none' (or 0), or a zstd level 1-19"
            }
            Term::Public => "public=True",
            Term::OmsKey => "oms_key= (a P-256 PEM private key)",
            Term::PlainHttp => "the command line's `modelseal pull` over plain HTTP",
            Term::TokenKeygen => "the command line's token key generation (`modelseal keygen`)",
            Term::Help => "help(modelseal)",
        }
    }
}

/// Every term as the Python package spells it (for the test that no CLI flag is among them).
#[pyfunction]
fn _vocabulary() -> Vec<&'static str> {
    Term::ALL.iter().map(|t| PythonNames.term(*t)).collect()
}

/// Which Python exception a crate error becomes (`modelseal/errors.py`), by its kind: refusals
/// by area, usage errors as `ValueError` (or `FileExistsError`), I/O errors as `OSError` with
/// their errno.
fn class_of(e: &Error) -> (&'static str, Option<i32>) {
    const EEXIST: i32 = 17;
    match (e.kind(), e) {
        (ErrorKind::Io, Error::Io { source, .. }) => ("OSError", source.raw_os_error()),
        (ErrorKind::Io, _) => ("OSError", None),
        (
            _,
            Error::Usage(UsageError::OutputExists { .. }) | Error::Key(KeyError::Exists { .. }),
        ) => ("FileExistsError", Some(EEXIST)),
        (ErrorKind::Usage, _) => ("ValueError", None),
        (ErrorKind::Refusal(area), e) => (
            match (area, e) {
                (Area::Format, _) => "FormatError",
                (Area::Key, _) => "KeyFileError",
                (Area::Verify, Error::Verify(VerifyError::UntrustedSigner { .. })) => {
                    "UntrustedSignerError"
                }
                (Area::Verify, Error::Verify(VerifyError::Expired { .. })) => "ExpiredError",
                (Area::Verify, _) => "SignatureError",
                (Area::Decrypt, _) => "DecryptionError",
                (Area::Content, _) => "UnsafeContentError",
                (Area::Model, Error::Model(ModelError::DisallowedGlobal { .. })) => {
                    "DisallowedGlobalError"
                }
                (
                    Area::Model,
                    Error::Model(
                        ModelError::NoProfileForVersion { .. }
                        | ModelError::LibraryVersionMismatch { .. }
                        | ModelError::EncodingMismatch { .. }
                        | ModelError::RequirementMismatch { .. }
                        | ModelError::RequirementMissing { .. },
                    ),
                ) => "VersionMismatchError",
                (Area::Model, _) => "UnsafeContentError",
                (Area::Trust, Error::Trust(TrustError::NoTrustStore)) => "ValueError",
                (
                    Area::Trust,
                    Error::Trust(
                        TrustError::BadPolicy { .. }
                        | TrustError::UnknownKey { .. }
                        | TrustError::WritableByOthers { .. }
                        | TrustError::OwnedByOther { .. }
                        | TrustError::UnsafeParent { .. },
                    ),
                ) => "KeyFileError",
                (Area::Trust, Error::Trust(TrustError::Equivocation { .. })) => "EquivocationError",
                (
                    Area::Trust,
                    Error::Trust(
                        TrustError::Rollback { .. }
                        | TrustError::BelowMinimumVersion { .. }
                        | TrustError::StateCorrupted { .. },
                    ),
                ) => "RollbackError",
                (Area::Trust, _) => "UntrustedSignerError",
                (Area::Output, Error::Usage(UsageError::InputChanged { .. })) => "OSError",
                (Area::Output, _) => "ValueError",
            },
            None,
        ),
    }
}

/// The Python exception instance for a crate error: `str(exc)` is the message, `exc.hint` the
/// library's hint in the package's words ([`PythonNames`]).
fn exception<'py>(py: Python<'py>, e: &Error) -> PyResult<Bound<'py, PyAny>> {
    let (class, errno) = class_of(e);
    let exc = py
        .import("modelseal.errors")?
        .getattr("_from_rust")?
        .call1((class, e.to_string(), e.hint(&PythonNames), errno))?;
    if let Error::Model(ModelError::DisallowedGlobal { globals, .. }) = e {
        exc.setattr("globals", globals.clone())?;
    }
    Ok(exc)
}

fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match exception(py, &e) {
        Ok(exc) => PyErr::from_value(exc),
        Err(import_failed) => import_failed,
    }
}

/// A report value of the library (`modelseal::report`: the shape `--json` prints) as Python
/// objects: objects become dicts, arrays lists, numbers int or float.
fn to_python<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, None, Some(f)) => f.into_pyobject(py)?.into_any(),
            _ => py.None().into_bound(py),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(to_python(py, x)?)?;
            }
            l.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_python(py, x)?)?;
            }
            d.into_any()
        }
    })
}

fn to_dict<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyDict>> {
    Ok(to_python(py, v)?.cast_into::<PyDict>()?)
}

/// An in-memory binary file owned by Rust, held in segments.
///
/// `joblib.dump` writes into one (appending), and `seal_bytes` takes its bytes without copying
/// them. `open_bytes` returns each checked file as one that the unpickler reads front to back:
/// such a buffer *consumes* what it is read past, releasing each segment (`scan::SEGMENT_BYTES`)
/// once the position is beyond it, so a model being built and the bytes it is built from are never
/// both held whole. File-like: `write`, `read`, `readinto`, `readline`, `peek`, `seek`, `tell`,
/// `len()`; `bytes(buf)` copies it out while nothing has been released.
#[pyclass(module = "modelseal._modelseal")]
#[derive(Default)]
struct Buffer {
    /// The retained segments; the first starts at `base`.
    segs: std::collections::VecDeque<Vec<u8>>,
    base: usize,
    len: usize,
    pos: usize,
    consume: bool,
}

impl Buffer {
    fn consuming(segments: Vec<Vec<u8>>) -> Buffer {
        let len = segments.iter().map(Vec::len).sum();
        Buffer {
            segs: segments.into(),
            base: 0,
            len,
            pos: 0,
            consume: true,
        }
    }

    /// Everything written, moved out (one segment: no copy).
    fn take_all(&mut self) -> Vec<u8> {
        let segs = std::mem::take(&mut self.segs);
        self.pos = 0;
        self.len = 0;
        self.base = 0;
        if segs.len() == 1 {
            segs.into_iter().next().unwrap_or_default()
        } else {
            segs.into_iter().flatten().collect()
        }
    }

    /// How many bytes a read of `n` (negative: all) at the position returns.
    fn span(&self, n: Option<isize>) -> usize {
        let rest = self.len.saturating_sub(self.pos);
        match n {
            Some(n) if n >= 0 => (n as usize).min(rest),
            _ => rest,
        }
    }

    /// Calls `f` with each retained piece of `[from, from + n)`, in order.
    fn pieces<'s>(&'s self, from: usize, n: usize, mut f: impl FnMut(&'s [u8])) {
        let mut at = self.base;
        let (mut from, end) = (from, from + n);
        for seg in &self.segs {
            let seg_end = at + seg.len();
            if from < seg_end && from < end {
                let stop = end.min(seg_end);
                f(&seg[from - at..stop - at]);
                from = stop;
            }
            if from >= end {
                break;
            }
            at = seg_end;
        }
    }

    /// Moves the position past `n` bytes, releasing (when consuming) every segment it passed.
    fn advance(&mut self, n: usize) {
        self.pos += n;
        if self.consume {
            while let Some(front) = self.segs.front() {
                if self.base + front.len() > self.pos {
                    break;
                }
                self.base += front.len();
                self.segs.pop_front();
            }
        }
    }

    fn bytes_at<'py>(
        &self,
        py: Python<'py>,
        from: usize,
        n: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        PyBytes::new_with(py, n, |out| {
            let mut w = 0;
            self.pieces(from, n, |p| {
                out[w..w + p.len()].copy_from_slice(p);
                w += p.len();
            });
            Ok(())
        })
    }
}

#[pymethods]
impl Buffer {
    #[new]
    fn new() -> Self {
        Buffer::default()
    }

    /// Appends bytes (bytes, bytearray or any buffer); returns how many.
    fn write(&mut self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        if self.consume {
            return Err(pyo3::exceptions::PyOSError::new_err(
                "this buffer holds an opened file and is read-only",
            ));
        }
        if self.pos != self.len {
            return Err(pyo3::exceptions::PyOSError::new_err(
                "modelseal Buffer only appends: seek to the end before writing",
            ));
        }
        if self.segs.is_empty() {
            self.segs.push_back(Vec::new());
        }
        let last = self.segs.back_mut().expect("one segment");
        let n = if let Ok(b) = data.cast::<PyBytes>() {
            last.extend_from_slice(b.as_bytes());
            b.as_bytes().len()
        } else {
            // A memoryview (the pickle framer writes those) or another buffer, read through the
            // buffer protocol, which refuses what is not a buffer (`bytes(5)` would write five
            // zeros).
            let view = match pyo3::buffer::PyBuffer::<u8>::get(data) {
                Ok(v) => v,
                // Another item format (a numpy array's memory): its bytes, through a byte view.
                Err(_) => {
                    let bytes = data
                        .py()
                        .import("builtins")?
                        .getattr("memoryview")?
                        .call1((data,))?
                        .call_method1("cast", ("B",))?;
                    pyo3::buffer::PyBuffer::<u8>::get(&bytes)?
                }
            };
            let (start, n) = (last.len(), view.item_count());
            last.resize(start + n, 0);
            view.copy_to_slice(data.py(), &mut last[start..])?;
            n
        };
        self.len += n;
        self.pos = self.len;
        Ok(n)
    }

    /// Reads up to `n` bytes (all that is left when `n` is omitted or negative).
    #[pyo3(signature = (n=-1))]
    fn read<'py>(&mut self, py: Python<'py>, n: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let n = self.span(n);
        let out = self.bytes_at(py, self.pos, n)?;
        self.advance(n);
        Ok(out)
    }

    /// Reads into a writable, C-contiguous buffer (a `bytearray`, a numpy array, an `array`);
    /// returns how many bytes were read, which may be fewer than it holds (at most to the end of a
    /// segment): one copy, straight from the segment into the target's own memory.
    fn readinto(&mut self, target: &Bound<'_, PyAny>) -> PyResult<usize> {
        let py = target.py();
        // A byte view of the target's own memory (`memoryview(t).cast("B")`): slicing it slices
        // that memory, where slicing a bytearray would copy it.
        let bytes = py
            .import("builtins")?
            .getattr("memoryview")?
            .call1((target,))?
            .call_method1("cast", ("B",))?;
        let view = pyo3::buffer::PyBuffer::<u8>::get(&bytes)?;
        if view.readonly() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "readinto() needs a writable buffer",
            ));
        }
        let want = self.span(Some(view.item_count() as isize));
        let mut piece: &[u8] = &[];
        self.pieces(self.pos, want, |p| {
            if piece.is_empty() {
                piece = p;
            }
        });
        let n = piece.len();
        if n == 0 {
            return Ok(0);
        }
        if n == view.item_count() {
            view.copy_from_slice(py, piece)?;
        } else {
            let head = bytes.get_item(pyo3::types::PySlice::new(py, 0, n as isize, 1))?;
            pyo3::buffer::PyBuffer::<u8>::get(&head)?.copy_from_slice(py, piece)?;
        }
        self.advance(n);
        Ok(n)
    }

    /// Reads up to and including the next newline (at most `size` bytes).
    #[pyo3(signature = (size=-1))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let max = self.span(size);
        let mut n = 0;
        let mut found = false;
        self.pieces(self.pos, max, |p| {
            if found {
                return;
            }
            match p.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    n += i + 1;
                    found = true;
                }
                None => n += p.len(),
            }
        });
        let out = self.bytes_at(py, self.pos, n)?;
        self.advance(n);
        Ok(out)
    }

    /// Returns up to `n` bytes without moving the position.
    #[pyo3(signature = (n=1))]
    fn peek<'py>(&self, py: Python<'py>, n: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.bytes_at(py, self.pos, self.span(n))
    }

    /// Moves the position: `whence` 0 from the start, 1 from the current position, 2 from the end.
    /// A consuming buffer cannot go back before what it has released.
    #[pyo3(signature = (offset, whence=0))]
    fn seek(&mut self, offset: i64, whence: i32) -> PyResult<usize> {
        let base = match whence {
            0 => 0i64,
            1 => self.pos as i64,
            2 => self.len as i64,
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "whence must be 0, 1 or 2",
                ))
            }
        };
        let to = match base.checked_add(offset) {
            Some(t) if t >= 0 => t as usize,
            Some(_) => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "negative seek position",
                ))
            }
            None => {
                return Err(pyo3::exceptions::PyOverflowError::new_err(
                    "seek position out of range",
                ))
            }
        };
        if to < self.base {
            return Err(pyo3::exceptions::PyOSError::new_err(format!(
                "cannot seek to {to}: this buffer released the bytes before {} as they were read",
                self.base
            )));
        }
        if to >= self.pos {
            self.advance(to - self.pos);
        } else {
            self.pos = to;
        }
        Ok(self.pos)
    }

    fn tell(&self) -> usize {
        self.pos
    }

    fn readable(&self) -> bool {
        true
    }

    fn writable(&self) -> bool {
        !self.consume
    }

    fn seekable(&self) -> bool {
        true
    }

    fn flush(&self) {}

    fn __len__(&self) -> usize {
        self.len
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        if self.base > 0 {
            return Err(pyo3::exceptions::PyOSError::new_err(
                "this buffer released bytes as they were read",
            ));
        }
        self.bytes_at(py, 0, self.len)
    }
}

/// Seals in-memory files, signed with `signing_key` and encrypted to every recipient, into
/// `out_path` (written to a temporary file beside it and renamed into place only when complete),
/// or, with no `out_path`, into memory. Returns the header and manifest as a dict, and the archive's
/// bytes when it was sealed into memory.
#[pyfunction]
#[pyo3(signature = (
    files, signing_key, recipients, shared_key, name, version, description, metadata, requires,
    metrics, train_data, source, expires_at, expires_after, out_path, force, compression="auto",
    level=None, public=false, oms_key=None
))]
#[allow(clippy::too_many_arguments)]
fn seal_bytes<'py>(
    py: Python<'py>,
    files: Vec<(String, Bound<'py, PyAny>)>,
    signing_key: PathBuf,
    recipients: Vec<PathBuf>,
    shared_key: Option<PathBuf>,
    name: String,
    version: String,
    description: String,
    metadata: BTreeMap<String, String>,
    requires: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
    train_data: Option<PathBuf>,
    source: Option<PathBuf>,
    expires_at: Option<u64>,
    expires_after: Option<u64>,
    out_path: Option<PathBuf>,
    force: bool,
    compression: &str,
    level: Option<i32>,
    public: bool,
    oms_key: Option<PathBuf>,
) -> PyResult<(Bound<'py, PyDict>, Option<Bound<'py, PyBytes>>)> {
    let limits = Limits::default();
    let compression = match level {
        Some(l) => seal::CompressionChoice::level(l),
        None => seal::CompressionChoice::parse(compression),
    }
    .map_err(|e| to_py(py, e))?;
    let mut owned = Vec::with_capacity(files.len());
    for (path, data) in &files {
        let bytes = if let Ok(buf) = data.cast::<Buffer>() {
            // Moved out of the Buffer, not copied: the Buffer is left empty.
            buf.borrow_mut().take_all()
        } else if let Ok(b) = data.cast::<PyBytes>() {
            // The crate's `Source::Bytes` owns its bytes: one copy out of the Python object.
            b.as_bytes().to_vec()
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{path}: expected bytes or a modelseal Buffer"
            )));
        };
        owned.push((path.clone(), bytes));
    }
    drop(files);
    let inputs = seal::inputs_from_memory(owned, &limits).map_err(|e| to_py(py, e))?;
    let (summary, bytes) = py
        .detach(
            move || -> Result<(seal::SealSummary, Option<Vec<u8>>), Error> {
                let keys = seal::SealKeys::read(&signing_key, &recipients, shared_key.as_deref())?;
                let oms = oms_key
                    .as_deref()
                    .map(modelseal::oms::EcSigningKey::read)
                    .transpose()?;
                let details = Details {
                    metrics,
                    train_data: train_data.as_deref().map(seal::reference).transpose()?,
                    source: source.as_deref().map(seal::reference).transpose()?,
                    requires,
                    ..Details::default()
                };
                let expiry = match (expires_at, expires_after) {
                    (Some(t), _) => Some(Expiry::At(t)),
                    (None, Some(s)) => Some(Expiry::After(std::time::Duration::from_secs(s))),
                    (None, None) => None,
                };
                let opts = keys
                    .options(&name, &version)?
                    .with_description(description)
                    .with_metadata(metadata)
                    .with_compression(compression)
                    .with_details(details)
                    .with_limits(limits)
                    .with_also_reads(train_data.iter().chain(&source).chain(&oms_key).cloned())
                    .with_public(public)
                    .with_oms_key(oms.as_ref())
                    .with_expiry(expiry)?;
                match out_path {
                    Some(out) => {
                        let out_opts = OutputOptions {
                            force,
                            fsync: false,
                        };
                        Ok((seal::seal_file(&inputs, &opts, &out, out_opts)?, None))
                    }
                    None => {
                        let mut archive = std::io::Cursor::new(Vec::new());
                        let summary = seal::seal_to_writer(&inputs, &opts, &mut archive)?;
                        Ok((summary, Some(archive.into_inner())))
                    }
                }
            },
        )
        .map_err(|e| to_py(py, e))?;
    let report = to_dict(py, &modelseal::report::sealed(&summary))?;
    Ok((report, bytes.map(|b| PyBytes::new(py, &b))))
}

/// Where an archive is read from: a file by path, bytes read in place (immutable, so safe to read
/// with the GIL released), or a binary file object read in chunks through its `read` method.
enum ArchiveSource<'a> {
    Path(PathBuf),
    Bytes(&'a [u8]),
    File(Py<PyAny>),
}

/// Bytes per `read()` call on a file object.
const FILE_READ_BYTES: usize = 1 << 20;

impl<'a> ArchiveSource<'a> {
    /// `str`/`os.PathLike` is a path, `bytes` is the archive itself, anything with `read` is a
    /// binary file object.
    fn from_py(archive: &'a Bound<'_, PyAny>) -> PyResult<ArchiveSource<'a>> {
        if let Ok(b) = archive.cast::<PyBytes>() {
            return Ok(ArchiveSource::Bytes(b.as_bytes()));
        }
        if let Ok(p) = archive.extract::<PathBuf>() {
            return Ok(ArchiveSource::Path(p));
        }
        if archive.hasattr("read")? {
            return Ok(ArchiveSource::File(archive.clone().unbind()));
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "an archive is a path, bytes or a binary file object, not {}",
            archive.get_type().name()?
        )))
    }

    /// Runs `work` (the library's one-pass readers) on a reader over the archive, with the GIL
    /// released. A file object is read here, on the calling thread, holding the GIL only while its
    /// `read()` runs, and handed to `work` on a worker thread: Python runs signal handlers only on
    /// the main thread, so Ctrl-C during a slow `read()` ends the call with `KeyboardInterrupt`,
    /// and an exception `read()` raises is raised as itself.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(Box<dyn std::io::Read + Send + '_>) -> Result<T, Error> + Send,
    ) -> PyResult<T> {
        let file = match self {
            ArchiveSource::Path(path) => {
                return py
                    .detach(|| {
                        let f = std::fs::File::open(path)
                            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
                        work(Box::new(BufReader::with_capacity(1 << 20, f)))
                    })
                    .map_err(|e| to_py(py, e))
            }
            ArchiveSource::Bytes(b) => {
                return py.detach(|| work(Box::new(*b))).map_err(|e| to_py(py, e))
            }
            ArchiveSource::File(f) => f,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>, String>>(4);
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                work(Box::new(ChannelReader {
                    rx,
                    chunk: Vec::new(),
                    pos: 0,
                }))
            });
            let mut raised: Option<PyErr> = None;
            loop {
                let next = match read_chunk(file.bind(py)) {
                    Ok(chunk) => chunk,
                    Err(ReadFailure::Raised(e)) => {
                        raised = Some(e);
                        Err("the file object's read() raised".to_string())
                    }
                    Err(ReadFailure::Refused(why)) => Err(why),
                };
                let next = match (next, py.check_signals()) {
                    (_, Err(interrupted)) => {
                        raised.get_or_insert(interrupted);
                        Err("interrupted".to_string())
                    }
                    (next, Ok(())) => next,
                };
                let last = !matches!(&next, Ok(chunk) if !chunk.is_empty());
                // The worker stopped reading (it refused the archive): nothing more to send.
                if py.detach(|| tx.send(next)).is_err() || last {
                    break;
                }
            }
            drop(tx);
            let result = py.detach(|| worker.join());
            match (raised, result) {
                (Some(e), _) => Err(e),
                (None, Ok(r)) => r.map_err(|e| to_py(py, e)),
                (None, Err(_)) => Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "the reading thread panicked",
                )),
            }
        })
    }
}

enum ReadFailure {
    /// `read()` raised this.
    Raised(PyErr),
    /// It returned something that is not a chunk of a binary file.
    Refused(String),
}

/// One `file.read(n)`: a bytes-like result (`bytes`, `bytearray`, `memoryview`) of at most `n`
/// bytes, copied; empty at the end.
fn read_chunk(file: &Bound<'_, PyAny>) -> Result<Result<Vec<u8>, String>, ReadFailure> {
    let got = file
        .call_method1("read", (FILE_READ_BYTES,))
        .map_err(ReadFailure::Raised)?;
    let data = if let Ok(bytes) = got.cast::<PyBytes>() {
        bytes.as_bytes().to_vec()
    } else {
        let view = pyo3::buffer::PyBuffer::<u8>::get(&got).map_err(|_| {
            ReadFailure::Refused(format!(
                "the file object's read() returned {}, not bytes (open it in binary mode)",
                got.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        view.to_vec(file.py()).map_err(ReadFailure::Raised)?
    };
    if data.len() > FILE_READ_BYTES {
        return Err(ReadFailure::Refused(format!(
            "the file object's read({FILE_READ_BYTES}) returned {} bytes",
            data.len()
        )));
    }
    Ok(Ok(data))
}

/// `std::io::Read` over the chunks the calling thread reads from a file object.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => return Ok(0),
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(why)) => return Err(std::io::Error::other(why)),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Opens an archive into memory. Every check runs in Rust before anything is returned: header,
/// trust, signature, expiry, key unwrap and commitment, decryption, decompression, the tar walk,
/// each file's size and SHA-256, the payload digest; then, when `allow_globals` is given, every
/// pickle is re-walked statically and refused if it imports a global outside it (or differs from
/// the signed manifest's record); then the `expect` requirements must match the manifest exactly.
/// Returns `(report, [(archive_path, Buffer), ...])`; `report["manifest"]` is the manifest.
#[pyfunction]
#[pyo3(signature = (
    archive, trust, identity=None, shared_key=None, allow_globals=Vec::new(), expect=Vec::new(),
    max_bytes=1u64 << 34, state=None, no_state=false
))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn open_bytes<'py>(
    py: Python<'py>,
    archive: Bound<'py, PyAny>,
    trust: Vec<PathBuf>,
    identity: Option<PathBuf>,
    shared_key: Option<PathBuf>,
    allow_globals: Vec<String>,
    expect: Vec<(String, String)>,
    max_bytes: u64,
    state: Option<PathBuf>,
    no_state: bool,
) -> PyResult<(
    Bound<'py, PyDict>,
    Bound<'py, PyList>,
    ResolvedGlobals,
    Acceptance,
)> {
    let source = ArchiveSource::from_py(&archive)?;
    let (report, files, policy, acceptance) = source.run(py, |input| {
        // None opens a public archive; an encrypted one then refuses (NoOpeningKey).
        let key = OpeningKey::read(identity.as_deref(), shared_key.as_deref())?;
        let checks = open::ModelChecks {
            allow_globals: Some(allow_globals.clone()),
            expect,
        };
        let reading = Reading::new(&trust, state.as_deref(), no_state)?;
        // Not recorded yet: `load` records the archive only after its own version gate.
        let (unrecorded, files) = open::Archive::read(input, &reading.options().limits)?
            .verify(&reading.options())?
            .decrypt(Decryption::from(key.as_ref()))
            .to_memory_unrecorded(max_bytes, &checks)?;
        // The policy the restricted unpickler applies: the one the static check just passed.
        let policy = scan::resolve_globals(&unrecorded.opened().manifest, &allow_globals)?;
        let report = open::Report::from(unrecorded.opened().clone());
        let acceptance = Acceptance {
            pending: std::sync::Mutex::new(Some((unrecorded, reading.state))),
        };
        Ok((report, files, policy, acceptance))
    })?;
    let d = to_dict(py, &modelseal::report::verified(&report))?;
    let out = PyList::empty(py);
    for (p, data) in files {
        out.append((p.as_str(), Buffer::consuming(data.into_segments())))?;
    }
    Ok((d, out, ResolvedGlobals { policy }, acceptance))
}

/// An opened archive not yet recorded in the anti-rollback state: `accept()` records it (after
/// `load`'s own checks passed), once.
#[pyclass(module = "modelseal._modelseal", frozen)]
struct Acceptance {
    pending: std::sync::Mutex<Option<(open::Unrecorded, Option<RollbackState>)>>,
}

#[pymethods]
impl Acceptance {
    /// Records the archive as accepted (re-checking the state under its lock).
    fn accept(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some((unrecorded, state)) = taken else {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "this archive was already accepted",
            ));
        };
        py.detach(move || unrecorded.accept(state.as_ref()).map(|_| ()))
            .map_err(|e| to_py(py, e))
    }
}

/// The trust store and anti-rollback state of one call, as the CLI's `-t`, `--state` and
/// `--no-state` choose them (the library's rules).
struct Reading {
    store: TrustStore,
    state: Option<RollbackState>,
}

impl Reading {
    fn new(trust: &[PathBuf], state: Option<&Path>, no_state: bool) -> Result<Reading, Error> {
        Ok(Reading {
            store: TrustStore::load(trust)?,
            state: RollbackState::choose(state, no_state),
        })
    }

    fn options(&self) -> ReadOptions<'_> {
        ReadOptions {
            state: self.state.as_ref(),
            ..ReadOptions::new(&self.store)
        }
    }
}

/// Every archive check and the model checks, then the checked files in memory (at most
/// `max_bytes`), with the manifest.
fn open_in_memory(
    input: Box<dyn std::io::Read + Send + '_>,
    reading: &Reading,
    key: Option<&OpeningKey>,
    max_bytes: u64,
    checks: &open::ModelChecks,
) -> Result<(open::Opened, open::OpenedFiles), Error> {
    open::open_reader_to_memory(
        input,
        Decryption::from(key),
        &reading.options(),
        max_bytes,
        checks,
    )
}

/// A resolved allowed-globals policy, shared with the library's cache (no copy per load): what the
/// restricted unpickler asks of it is `get(name)` -> `(kind, canonical, uses)` or None, and
/// `prefixes`.
#[pyclass(module = "modelseal._modelseal", frozen)]
struct ResolvedGlobals {
    policy: std::sync::Arc<GlobalPolicy>,
}

#[pymethods]
impl ResolvedGlobals {
    /// `(kind, canonical name, uses)` for an admitted exact name, else None.
    fn get(&self, name: &str) -> Option<(&'static str, String, Vec<String>)> {
        self.policy
            .names
            .get(name)
            .map(|a| (a.kind, a.canonical.clone(), a.uses.clone()))
    }

    /// The explicit `pkg.*` prefixes, without the `.*`.
    #[getter]
    fn prefixes(&self) -> Vec<String> {
        self.policy.prefixes.clone()
    }

    /// The profiles used, as `sklearn@1.9`.
    #[getter]
    fn profiles(&self) -> Vec<String> {
        self.policy.profiles.clone()
    }

    fn __len__(&self) -> usize {
        self.policy.names.len()
    }
}

/// The resolved policy as the restricted unpickler reads it: `{"names": {name: (kind, canonical,
/// uses)}, "prefixes": [...], "profiles": [...]}`.
fn policy_dict<'py>(py: Python<'py>, policy: &GlobalPolicy) -> PyResult<Bound<'py, PyDict>> {
    let names = PyDict::new(py);
    for (name, a) in &policy.names {
        names.set_item(name, (a.kind, a.canonical.as_str(), a.uses.clone()))?;
    }
    let d = PyDict::new(py);
    d.set_item("names", names)?;
    d.set_item("prefixes", policy.prefixes.clone())?;
    d.set_item("profiles", policy.profiles.clone())?;
    Ok(d)
}

/// Resolves allowed-globals entries for a model recording `versions` (distribution -> version),
/// as `load` does: the restricted unpickler's policy (for tests and review tools).
#[pyfunction]
#[pyo3(signature = (entries, versions=BTreeMap::new()))]
fn resolve_globals<'py>(
    py: Python<'py>,
    entries: Vec<String>,
    versions: BTreeMap<String, String>,
) -> PyResult<Bound<'py, PyDict>> {
    let policy = GlobalPolicy::resolve(&entries, &versions).map_err(|e| to_py(py, e))?;
    policy_dict(py, &policy)
}

/// Every global each pickle in the archive imports that `allow_globals` does not allow, after the
/// archive's checks and before anything is unpickled: `[(archive_path, [global, ...]), ...]`.
/// A file that is neither a walkable pickle nor a recognised safe format raises.
#[pyfunction]
#[pyo3(signature = (archive, trust, identity=None, shared_key=None, allow_globals=Vec::new(), max_bytes=1u64 << 34))]
fn untrusted_globals(
    py: Python<'_>,
    archive: Bound<'_, PyAny>,
    trust: Vec<PathBuf>,
    identity: Option<PathBuf>,
    shared_key: Option<PathBuf>,
    allow_globals: Vec<String>,
    max_bytes: u64,
) -> PyResult<Vec<(String, Vec<String>)>> {
    let source = ArchiveSource::from_py(&archive)?;
    source.run(py, |input| {
        let key = OpeningKey::read(identity.as_deref(), shared_key.as_deref())?;
        // A review, not an acceptance: no anti-rollback state is read or recorded.
        let reading = Reading::new(&trust, None, true)?;
        let (opened, files) = open_in_memory(
            input,
            &reading,
            key.as_ref(),
            max_bytes,
            &open::ModelChecks::default(),
        )?;
        let policy = scan::resolve_globals(&opened.manifest, &allow_globals)?;
        scan::untrusted_in_memory(&opened.manifest, &files, &policy)
    })
}

/// Verifies an archive: header, trust, signatures, expiry, the payload's structure and digest. With
/// no key nothing is decrypted and `manifest` is None; with `identity` or `shared_key` the payload
/// is decrypted and every file checked too (then discarded), and the manifest is returned.
#[pyfunction]
#[pyo3(signature = (archive, trust, identity=None, shared_key=None, state=None, no_state=false))]
fn verify<'py>(
    py: Python<'py>,
    archive: Bound<'py, PyAny>,
    trust: Vec<PathBuf>,
    identity: Option<PathBuf>,
    shared_key: Option<PathBuf>,
    state: Option<PathBuf>,
    no_state: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let source = ArchiveSource::from_py(&archive)?;
    let report = source.run(py, |input| -> Result<open::Report, Error> {
        let key = OpeningKey::read(identity.as_deref(), shared_key.as_deref())?;
        let reading = Reading::new(&trust, state.as_deref(), no_state)?;
        let opts = reading.options();
        match &key {
            Some(k) => open::verify_decrypted(input, Decryption::from(k), &opts).map(Into::into),
            None => open::verify_reader(input, &opts),
        }
    })?;
    to_dict(py, &modelseal::report::verified(&report))
}

/// Generates a key pair: `PREFIX.key` (secret, mode 0600, never overwriting) and `PREFIX.pub`.
/// Returns `(key_path, pub_path)`.
#[pyfunction]
fn keygen(py: Python<'_>, prefix: PathBuf) -> PyResult<(PathBuf, PathBuf)> {
    SecretKey::generate()
        .write_pair(&prefix)
        .map_err(|e| to_py(py, e))
}

/// Generates a shared key for CI recipients: `PREFIX.key`, mode 0600. Returns its path.
#[pyfunction]
fn keygen_shared(py: Python<'_>, prefix: PathBuf) -> PyResult<PathBuf> {
    SharedKey::generate()
        .write(&prefix)
        .map_err(|e| to_py(py, e))
}

/// The key id of a `.pub` file, as `verify` reports `verified_signer`.
#[pyfunction]
fn key_id(py: Python<'_>, public_key: PathBuf) -> PyResult<String> {
    PublicKey::read(&public_key)
        .map(|k| k.key_id().to_string())
        .map_err(|e| to_py(py, e))
}

/// The crate's `RequirementMismatch` refusal as a `VersionMismatchError` instance (not raised), so
/// the Python version gate reports what `modelseal open --expect` reports.
#[pyfunction]
fn requirement_mismatch<'py>(
    py: Python<'py>,
    name: String,
    required: String,
    expected: String,
) -> PyResult<Bound<'py, PyAny>> {
    let e: Error = ModelError::RequirementMismatch {
        name,
        required,
        expected,
    }
    .into();
    exception(py, &e)
}

#[pymodule]
fn _modelseal(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MODELSEAL_VERSION", modelseal::VERSION)?;
    m.add_class::<Buffer>()?;
    m.add_class::<ResolvedGlobals>()?;
    m.add_class::<Acceptance>()?;
    m.add_function(wrap_pyfunction!(seal_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(open_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(keygen, m)?)?;
    m.add_function(wrap_pyfunction!(keygen_shared, m)?)?;
    m.add_function(wrap_pyfunction!(key_id, m)?)?;
    m.add_function(wrap_pyfunction!(untrusted_globals, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_globals, m)?)?;
    m.add_function(wrap_pyfunction!(requirement_mismatch, m)?)?;
    m.add_function(wrap_pyfunction!(_vocabulary, m)?)?;
    Ok(())
}
