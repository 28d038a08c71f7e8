"""modelseal: seal a trained model into one archive that is signed by its author and encrypted to
its recipients, and refuse to unpickle anything whose signature, hash, allowed globals or library
versions do not check out.

The API has the shape of joblib's::

    import modelseal
    modelseal.keygen("alice"); modelseal.keygen("bob")          # alice.key/.pub, bob.key/.pub
    modelseal.dump(clf, "iris.mseal", signing_key="alice.key", recipients=["bob.pub"],
                   name="iris-tree", version="1.0.0")
    clf = modelseal.load("iris.mseal", trust=["alice.pub"], identity="bob.key")
    info = modelseal.verify("iris.mseal", trust=["alice.pub"])  # no key needed

Every archive check (format, trust, Ed25519 signature, expiry, decryption, each file's SHA-256)
and the static walk of the pickle's imported globals run in Rust, in the ``modelseal`` crate that
the ``modelseal`` CLI also uses. Failures raise a subclass of :class:`RefusedError` whose ``str()``
and ``.hint`` are the CLI's ``error:`` and ``hint:`` lines. See ``help(modelseal.load)``.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import io as _io
import os
import re
import sys
import warnings
from typing import Any, BinaryIO, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _modelseal as _native
from . import _unpickle
from .errors import (
    DecryptionError,
    DisallowedGlobalError,
    ExpiredError,
    FormatError,
    EquivocationError,
    KeyFileError,
    RefusedError,
    RollbackError,
    SignatureError,
    UnsafeContentError,
    UntrustedSignerError,
    VersionMismatchError,
)

__version__ = "0.1.0"

__all__ = [
    "dump",
    "dumps",
    "load",
    "loads",
    "verify",
    "untrusted_globals",
    "keygen",
    "keygen_shared",
    "key_id",
    "DEFAULT_ALLOWED_GLOBALS",
    "MODEL_FILE",
    "VERSION_POLICIES",
    "RefusedError",
    "SignatureError",
    "ExpiredError",
    "UntrustedSignerError",
    "DecryptionError",
    "FormatError",
    "UnsafeContentError",
    "VersionMismatchError",
    "DisallowedGlobalError",
    "KeyFileError",
    "RollbackError",
    "EquivocationError",
]

#: A path: ``str`` or ``os.PathLike``.
StrPath = Union[str, "os.PathLike[str]"]

#: The archive path under which :func:`dump` stores the joblib bytes.
MODEL_FILE = "model.joblib"

#: The crate version inside this package (the format and checks it implements).
MODELSEAL_VERSION: str = _native.MODELSEAL_VERSION

#: What :func:`load` lets a pickle import, by default: ``"@sklearn"``, the shipped scikit-learn
#: profile for the scikit-learn release the model records. It is a set of exact names generated
#: from real fitted models (every estimator of ``all_estimators()`` and common composites): the
#: estimator classes and the internal types fitted models hold, numpy's array, scalar, dtype and
#: random-state reconstructors, and a short audited list of pure functions (metrics, ufuncs) that
#: models keep as values. It never names a package. Other entries an ``allow_globals`` tuple may
#: hold: exact names (``"mypkg.MyEstimator"``), ``"@/path/to/list.txt"`` (one entry per line) and,
#: explicitly, ``"pkg.*"`` for a whole package (which admits its functions too: only for code you
#: trust). Example: ``modelseal.DEFAULT_ALLOWED_GLOBALS + ("mypkg.MyEstimator",)``.
DEFAULT_ALLOWED_GLOBALS: Tuple[str, ...] = ("@sklearn",)

#: The values ``version_policy`` accepts in :func:`load`.
VERSION_POLICIES = ("strict", "minor", "off")

# (distribution name recorded in `requires`, module to import) for the libraries the gate compares.
_GATED_LIBRARIES = (
    ("scikit-learn", "sklearn"),
    ("numpy", "numpy"),
    ("scipy", "scipy"),
    ("joblib", "joblib"),
)

# (distribution, module) of the libraries that have an opt-in profile.
_PROFILED_LIBRARIES = (
    ("xgboost", "xgboost"),
    ("lightgbm", "lightgbm"),
    ("catboost", "catboost"),
    ("imbalanced-learn", "imblearn"),
)

_DEFAULT_MAX_BYTES = 1 << 34  # 16 GiB: larger models need load(..., max_bytes=...)


# --------------------------------------------------------------------------------------------------
# keys


def keygen(prefix: StrPath) -> Tuple[str, str]:
    """Generates a key pair and writes ``PREFIX.key`` (the secret: signing and decryption, mode
    0600) and ``PREFIX.pub`` (the public key to share: a trust anchor for ``load(trust=...)`` and a
    recipient for ``dump(recipients=...)``). Never overwrites: raises ``FileExistsError`` if either
    file exists. Returns ``(key_path, pub_path)``. Same files as ``modelseal keygen -o PREFIX``.
    """
    k, p = _native.keygen(os.fspath(prefix))
    return os.fspath(k), os.fspath(p)


def keygen_shared(prefix: StrPath) -> str:
    """Generates a shared symmetric key for CI recipients and writes ``PREFIX.key`` (mode 0600),
    never overwriting. Pass it as ``shared_key=`` to both :func:`dump` and :func:`load`. Same file
    as ``modelseal keygen --shared -o PREFIX``. Returns its path."""
    return os.fspath(_native.keygen_shared(os.fspath(prefix)))


def key_id(public_key: StrPath) -> str:
    """The key id (32 hex digits) of a ``.pub`` file: what :func:`verify` reports as
    ``verified_signer`` and ``signer``."""
    return _native.key_id(os.fspath(public_key))


# --------------------------------------------------------------------------------------------------
# dump


def _paths(value: Union[None, StrPath, Iterable[StrPath]]) -> List[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, os.PathLike)):
        return [os.fspath(value)]  # type: ignore[list-item]
    return [os.fspath(v) for v in value]


def _running_version(module: str) -> Optional[str]:
    """The version of an importable module, importing it if needed; None when it is absent."""
    try:
        m = sys.modules.get(module) or importlib.import_module(module)
    except ImportError:
        return None
    v = getattr(m, "__version__", None)
    return v if isinstance(v, str) else None


def _running_requires() -> Dict[str, str]:
    """`requires` for the manifest: this Python and each gated library that is importable."""
    import platform

    requires = {"python": platform.python_version()}
    for dist, module in _GATED_LIBRARIES:
        v = _running_version(module)
        if v is not None:
            requires[dist] = v
    # Libraries with an opt-in profile (@xgboost...), when the model's code imported them: the
    # profile is chosen by this version at load time.
    for dist, module in _PROFILED_LIBRARIES:
        if module in sys.modules:
            v = getattr(sys.modules[module], "__version__", None)
            if isinstance(v, str):
                requires[dist] = v
    return requires


def _value_error(message: str, hint: str) -> ValueError:
    """A ``ValueError`` carrying ``.hint``, as every exception of this package does."""
    e = ValueError(message)
    e.hint = hint  # type: ignore[attr-defined]
    return e


_EXPIRY_HINT = (
    "give expires= as a timedelta after now (timedelta(days=90)), a timezone-aware datetime in "
    "the future, or Unix seconds"
)


def _expiry(
    expires: Union[None, int, float, _dt.datetime, _dt.timedelta],
) -> Tuple[Optional[int], Optional[int]]:
    """``(at, after)``: an instant in Unix seconds, or seconds after the creation time, which the
    library resolves (so ``SOURCE_DATE_EPOCH`` applies as it does to the CLI's ``--expires 90d``).
    An instant not after the creation time is refused by the library, with its hint."""
    if expires is None:
        return None, None
    if isinstance(expires, bool):
        raise TypeError("expires must be a datetime, a timedelta or Unix seconds, not a bool")
    if isinstance(expires, _dt.timedelta):
        seconds = int(expires.total_seconds())
        if seconds <= 0:
            raise _value_error(
                f"expires={expires!r} is not after the creation time", _EXPIRY_HINT
            )
        return None, seconds
    if isinstance(expires, _dt.datetime):
        try:
            at: Union[int, float] = expires.timestamp()
        except (ValueError, OverflowError, OSError):
            raise _value_error(f"expires={expires!r} is not a time after 1970", _EXPIRY_HINT) from None
    elif isinstance(expires, (int, float)):
        at = expires
    else:
        raise TypeError(
            f"expires must be a datetime, a timedelta or Unix seconds, not {type(expires).__name__}"
        )
    if not at >= 0 or at >= 2**63:  # also NaN
        raise _value_error(f"expires={expires!r} is not a time after 1970", _EXPIRY_HINT)
    return int(at), None


def _compression(compress: Union[str, int, bool]) -> Tuple[str, Optional[int]]:
    """``compress=`` as the library takes it: ``"auto"``, ``"zstd"``, ``"none"``, or a zstd level
    (``0``/``False`` store, ``True`` is zstd at its default level), as joblib's ``compress=``."""
    if isinstance(compress, bool):
        return ("zstd" if compress else "none"), None
    if isinstance(compress, int):
        if not 0 <= compress <= 19:
            raise _value_error(
                f"invalid compression {compress!r}: a zstd level is 1-19",
                "compress= takes 'auto', 'zstd' (level 3), 'none' (or 0), or a zstd level 1-19",
            )
        return ("none", None) if compress == 0 else ("zstd", compress)
    if isinstance(compress, str):
        return compress, None
    raise TypeError(f"compress must be a str or an int zstd level, not {type(compress).__name__}")


def _protocol(protocol: Optional[int]) -> Optional[int]:
    """Protocols 0 and 1 have no PROTO opcode, so no reader can tell their bytes from any other
    file; protocol 2 has no bytes opcode, so every bytes value becomes a call of
    ``_codecs.encode``, a function the globals check does not let a pickle call. Archives of those
    could never load: they are refused here, where the choice is made."""
    import pickle

    if protocol is None:
        return None
    if isinstance(protocol, bool) or not isinstance(protocol, int):
        raise TypeError(f"protocol must be an int, not {type(protocol).__name__}")
    if protocol < 0:
        return None  # pickle's "highest protocol"
    if not 3 <= protocol <= pickle.HIGHEST_PROTOCOL:
        raise _value_error(
            f"protocol={protocol} cannot be loaded: modelseal reads pickle protocols 3 to "
            f"{pickle.HIGHEST_PROTOCOL}",
            "leave protocol= unset (joblib's default) or give 3 or higher",
        )
    return protocol


def _max_bytes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_bytes must be an int, not {type(value).__name__}")
    if not 0 <= value < 2**64:
        raise _value_error(
            f"max_bytes={value} is not a number of bytes", "give max_bytes= as 0 to 2**64 - 1"
        )
    return value


def _is_file_object(value: Any) -> bool:
    return not isinstance(value, (str, bytes, bytearray, memoryview, os.PathLike)) and (
        hasattr(value, "read") or hasattr(value, "write")
    )


def _archive(value: Any) -> Any:
    """What the native functions take as an archive: a path (``str``), ``bytes`` (read in place),
    or a binary file object (read in chunks by Rust, with every check and limit of a file)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)  # a mutable buffer could change while Rust reads it
    if _is_file_object(value):
        if not hasattr(value, "read"):
            raise TypeError("the archive file object has no read() method")
        return value
    return os.fspath(value)


def _str_map(name: str, value: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for k, v in (value or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"{name} must map str to str; got {k!r}: {v!r}")
        out[k] = v
    return out


def dump(
    obj: Any,
    path: Union[StrPath, BinaryIO],
    *,
    signing_key: Optional[StrPath] = None,
    recipients: Union[StrPath, Sequence[StrPath]] = (),
    shared_key: Optional[StrPath] = None,
    name: str,
    version: str,
    description: str = "",
    metadata: Optional[Mapping[str, str]] = None,
    metrics: Optional[Mapping[str, float]] = None,
    train_data: Optional[StrPath] = None,
    source: Optional[StrPath] = None,
    expires: Union[None, int, float, _dt.datetime, _dt.timedelta] = None,
    force: bool = False,
    compress: Union[str, int] = "auto",
    protocol: Optional[int] = None,
    public: bool = False,
    oms_key: Optional[StrPath] = None,
) -> Dict[str, Any]:
    """Serialises ``obj`` with joblib and seals it into the archive ``path`` (a path, or a binary
    file object the archive is written to once it is complete).

    The joblib bytes are stored as ``model.joblib`` in an archive signed with ``signing_key`` and
    encrypted so that only ``recipients`` (and holders of ``shared_key``) can open it; anyone with
    the signer's ``.pub`` can verify it. The archive is written to a temporary file beside ``path``
    and renamed into place only when complete.

    Args:
        obj: the model (any object joblib can pickle; typically a fitted scikit-learn estimator).
        path: the archive to write (``.mseal`` by convention), or a binary file object open for
            writing (nothing is written to it unless sealing succeeded; ``force`` does not apply).
        signing_key: your secret ``.key`` file (mode 0600), from :func:`keygen`. Defaults to the
            file named by ``MODELSEAL_SIGNING_KEY_FILE``.
        recipients: ``.pub`` files of whoever may open the archive (one path or a list).
        shared_key: a :func:`keygen_shared` key file, for CI openers without a key pair.
            At least one recipient or a shared key is required, unless ``public``.
        name: model name, 1-128 bytes of ``[A-Za-z0-9._/-]`` (e.g. ``"iris-tree"``, ``"fraud/v2"``).
        version: model version, semver (``"1.0.0"``).
        description: free text.
        metadata: free-form ``str -> str`` pairs (e.g. ``{"cv_accuracy": "0.95"}``). The
            object's class is added as ``estimator_class`` unless you set that key.
        metrics: scores, ``str -> finite float``.
        train_data: a file recorded by name, size and SHA-256 (not included in the archive).
        source: the training code, recorded the same way.
        expires: when the archive stops verifying: a ``datetime``, a ``timedelta`` from now, or
            Unix seconds.
        force: replace an existing ``path`` (otherwise ``FileExistsError``).
        compress: ``"auto"`` (default, as the CLI): zstd when a sample of the model compresses by
            more than 10% (fitted scikit-learn models typically shrink 3-5x); ``"zstd"``: always,
            at level 3; ``"none"`` (or ``0``): store, the fastest to seal (a single pass) for a
            larger archive; an int 1-19: zstd at that level (as joblib's ``compress=3``).
        protocol: the pickle protocol passed to ``joblib.dump`` (default: joblib's), 3 or higher:
            protocols 0-2 are refused, as their archives could never load (0 and 1 cannot be told
            from other bytes; 2 writes bytes values as calls of ``_codecs.encode``).
        public: seal a public archive, for a model published openly: signed, manifest-checked,
            bounded and rollback-protected like any other, but stored in the clear, for no
            recipient (give neither ``recipients`` nor ``shared_key``). :func:`load` and
            :func:`verify` then need no ``identity``, and ``verify`` shows the manifest.
        oms_key: a P-256 private key in PEM (mode 0600, as ``openssl`` writes it): the archive
            also carries an OpenSSF Model Signing bundle of its files, which ``modelseal open
            --oms-signature FILE`` writes out for ``model_signing verify key`` (FORMAT.md §11.5).

    Recorded automatically in the manifest's ``requires``: the running versions of python and of
    scikit-learn, numpy, scipy and joblib (those importable), which :func:`load` compares against
    its own under ``version_policy``.

    Returns:
        The archive's header fields and ``manifest`` as a dict (the shape of ``verify``'s).

    Raises:
        KeyFileError: a key file is damaged, of the wrong type, or a secret one is readable by
            others.
        ValueError: bad name, version, metadata, expiry, compression or protocol, no recipient
            (and not ``public``), or recipients with ``public=True``.
        FileExistsError: ``path`` exists and ``force`` is false.
        OSError: a file cannot be read or written.
    """
    import joblib

    if signing_key is None:
        signing_key = os.environ.get("MODELSEAL_SIGNING_KEY_FILE") or None
    if signing_key is None:
        raise _value_error(
            "no signing key was given",
            "give signing_key= (a .key file from modelseal.keygen) or set "
            "MODELSEAL_SIGNING_KEY_FILE",
        )
    compression, level = _compression(compress)
    protocol = _protocol(protocol)
    meta = _str_map("metadata", metadata)
    cls = type(obj)
    meta.setdefault("estimator_class", f"{cls.__module__}.{cls.__qualname__}")
    scores: Dict[str, float] = {}
    for k, v in (metrics or {}).items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"metrics must map str to float; got {k!r}: {v!r}")
        try:
            scores[k] = float(v)
        except OverflowError:
            raise _value_error(
                f"metrics[{k!r}] is too large for a float", "give metrics= as finite floats"
            ) from None
    expires_at, expires_after = _expiry(expires)

    if isinstance(path, (bytes, bytearray, memoryview)):
        raise TypeError(
            "dump() writes to a path (str or os.PathLike) or a binary file object; "
            "dumps() returns the archive's bytes"
        )
    to_file = _is_file_object(path)
    if to_file and not hasattr(path, "write"):
        raise TypeError("the archive file object has no write() method")
    # joblib writes into a Rust-owned buffer that seal_bytes takes over without a copy.
    buf = _native.Buffer()
    joblib.dump(obj, buf, protocol=protocol)
    report, data = _native.seal_bytes(
        [(MODEL_FILE, buf)],
        os.fspath(signing_key),
        _paths(recipients),
        os.fspath(shared_key) if shared_key is not None else None,
        name,
        version,
        description,
        meta,
        _running_requires(),
        scores,
        os.fspath(train_data) if train_data is not None else None,
        os.fspath(source) if source is not None else None,
        expires_at,
        expires_after,
        None if to_file else os.fspath(path),  # type: ignore[arg-type]
        bool(force),
        compression=compression,
        level=level,
        public=bool(public),
        oms_key=os.fspath(oms_key) if oms_key is not None else None,
    )
    if to_file:
        _write_all(path, data)
    return report


def _write_all(f: Any, data: bytes) -> None:
    """Writes all of `data` to a binary file object: a raw stream (a pipe, a socket) may take
    fewer bytes than it is given, and an archive cut short would only be refused when loaded."""
    view = memoryview(data)
    while view:
        n = f.write(view)
        if not n:
            raise OSError(
                f"the file object took no bytes with {len(view)} of the archive left to write "
                "(is it non-blocking?)"
            )
        view = view[n:]


def dumps(obj: Any, **kwargs: Any) -> bytes:
    """:func:`dump` into memory: returns the archive's bytes (the same keyword arguments, without
    ``path`` and ``force``). :func:`loads` opens them."""
    if "force" in kwargs:
        raise TypeError("dumps() takes no force= (it writes no file)")
    out = _io.BytesIO()
    dump(obj, out, **kwargs)
    return out.getvalue()


# --------------------------------------------------------------------------------------------------
# load


def _major_minor(v: str) -> Optional[Tuple[int, int]]:
    m = re.match(r"\s*v?(\d+)\.(\d+)", v)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _version_gate(manifest: Mapping[str, Any], policy: str) -> None:
    """Compares the recorded library versions against the running ones, before unpickling."""
    if policy == "off":
        return
    recorded: List[Tuple[str, str, str]] = [
        (dist, module, manifest["requires"][dist])
        for dist, module in _GATED_LIBRARIES
        if dist in manifest["requires"]
    ]
    # The version the static pickle walk found in the estimator state, when it found one.
    for f in manifest["files"]:
        if f.get("sklearn_version"):
            recorded.append(("scikit-learn", "sklearn", f["sklearn_version"]))
    for dist, module, version in recorded:
        running = _running_version(module)
        if running is None:
            probe = _native.requirement_mismatch(dist, version, "(none)")
            raise VersionMismatchError(
                f"model requires {dist}=={version}, and {dist} is not installed here", probe.hint
            )
        if policy == "strict" and dist == "scikit-learn":
            same = version == running
        else:
            same = _major_minor(version) is not None and _major_minor(version) == _major_minor(
                running
            )
        if not same:
            raise _native.requirement_mismatch(dist, version, running)


_UNPICKLE_HINT = (
    "do not load it; review it with modelseal.untrusted_globals() and add exact names to "
    "allow_globals= only if you trust their code"
)
_CONTENT_HINT = "do not load it: the pickle is malformed or hostile; ask the signer for a fresh dump"


def _policy(resolved: Any) -> "_unpickle.Policy":
    """The unpickler's policy from what the native module resolved: its ``ResolvedGlobals`` (from
    ``open_bytes``) or the dict of ``resolve_globals``."""
    if isinstance(resolved, dict):
        return _unpickle.Policy(dict(resolved["names"]), resolved["prefixes"])
    return _unpickle.Policy(resolved, resolved.prefixes)


def _unpickle_model(
    model_file: Any, policy: "_unpickle.Policy", member: str, version: str, max_bytes: int
) -> Any:
    """The joblib bytes through the restricted unpickler (never ``joblib.load``), with
    scikit-learn's ``InconsistentVersionWarning`` raised as an error under ``"strict"``."""
    with warnings.catch_warnings():
        inconsistent: Optional[type] = None
        if version == "strict":
            try:
                from sklearn.exceptions import InconsistentVersionWarning as inconsistent
            except ImportError:
                inconsistent = None
            if inconsistent is not None:
                warnings.simplefilter("error", inconsistent)
        try:
            return _unpickle.load(model_file, policy, max_bytes)
        except _unpickle.Refused as e:
            if e.kind == "global":
                err = DisallowedGlobalError(
                    f"{member}: unpickling asked for {e}, which is outside the allowed globals "
                    "(refused at unpickling time, before it was used)",
                    _UNPICKLE_HINT,
                )
                err.globals = [e.name] if e.name else []
                raise err from None
            raise UnsafeContentError(f"{member}: {e}", _CONTENT_HINT) from None
        except Exception as e:
            if inconsistent is not None and isinstance(e, inconsistent):
                raise VersionMismatchError(
                    str(e),
                    "use a runtime that matches the model's requirements, or a model built "
                    "for yours",
                ) from None
            raise


def load(
    path: Union[StrPath, bytes, BinaryIO],
    trust: Union[None, StrPath, Sequence[StrPath]] = None,
    identity: Optional[StrPath] = None,
    *,
    shared_key: Optional[StrPath] = None,
    allow_globals: Iterable[str] = DEFAULT_ALLOWED_GLOBALS,
    version_policy: str = "strict",
    expect: Optional[Mapping[str, str]] = None,
    max_bytes: int = _DEFAULT_MAX_BYTES,
    with_info: bool = False,
    state: Optional[StrPath] = None,
    no_state: bool = False,
) -> Any:
    """Opens a modelseal archive and returns the model in it, unpickled only after every check
    passed.

    In order, and stopping at the first failure:

    1. In Rust, the archive checks: format, the signer in ``trust``, the Ed25519 signature, expiry,
       unwrapping the key with ``identity`` (or ``shared_key``) and its commitment, decryption,
       decompression under limits, the archive entries, each file's size and SHA-256 against the
       signed manifest, the payload digest.
    2. In Rust, the globals check: the pickle is walked statically (opcodes are read, never run) and
       refused if it imports any global outside ``allow_globals`` (all of them are named, in
       ``DisallowedGlobalError.globals``), or if its globals differ from those the signed manifest
       recorded when it was sealed. Then ``expect`` is checked.
    3. The version gate: the versions of scikit-learn, numpy, scipy and joblib recorded by
       :func:`dump` are compared with the running ones under ``version_policy``.
    4. Only then the joblib bytes are unpickled by modelseal's restricted unpickler (never
       ``joblib.load``): each global must be the exact object its listed name stands for, only
       allowed classes and audited reconstructors are ever called, and the state of native types
       (numpy arrays and dtypes, scikit-learn trees, boosting predictors, neighbour trees) is
       validated before it is set. Under ``"strict"``, scikit-learn's
       ``InconsistentVersionWarning`` is raised as an error.

    Args:
        path: the archive: a path, its ``bytes``, or a binary file object (read to its end,
            with the same checks and limits as a file).
        trust: the signers you trust: ``.pub`` files or directories of them (one or a list). A key
            carried by the archive is never trusted for that reason. Default: the directory named
            by ``MODELSEAL_TRUST``, else modelseal's default trust directory (as the CLI's ``-t``).
        identity: your secret ``.key`` file, whose public half the archive was sealed to. Defaults
            to ``MODELSEAL_IDENTITY_FILE``. Not needed for a public archive (``dump(public=True)``).
        shared_key: a shared key file instead of an identity (defaults to
            ``MODELSEAL_SHARED_KEY_FILE`` when no identity is given).
        allow_globals: the globals the pickle may import. Default :data:`DEFAULT_ALLOWED_GLOBALS`
            (``("@sklearn",)``: the shipped list of exact names for the scikit-learn release the
            model records). Add exact names, e.g. ``modelseal.DEFAULT_ALLOWED_GLOBALS +
            ("mypkg.MyEstimator",)``, ``"@/path/list.txt"``, or ``"pkg.*"`` (warned about), only for
            code you trust: an allowed class's code runs when it is built.
        version_policy: ``"strict"`` (default): the scikit-learn version must equal the one the
            model was built with (scikit-learn only guarantees a pickle in the same version), and
            numpy, scipy and joblib must match in major.minor; a library recorded but not installed
            is a mismatch. ``"minor"``: major.minor must match for all four. ``"off"``: no
            comparison, which gives up the guarantee that the model behaves as it did when it was
            validated (a model unpickled by another scikit-learn may predict differently or break).
        expect: ``{name: version}`` pairs the manifest's ``requires`` must declare exactly (the
            CLI's ``--expect``), e.g. ``{"scikit-learn": "1.5.2"}``.
        max_bytes: the most bytes of model files held in memory (default 16 GiB).
        state: the anti-rollback state file (the CLI's ``--state``). By default the per-user one
            the CLI uses: an archive older than, or forked from, one accepted before under the same
            name and signer is refused (:class:`RollbackError`), and an accepted one is recorded,
            after every check above passed and before anything is unpickled.
        no_state: skip the anti-rollback state knowingly (the CLI's ``--no-state``).
        with_info: return ``(model, info)``, where ``info`` is :func:`verify`'s dict with the
            ``manifest`` (metadata, metrics, requires, file hashes, signer).

    Returns:
        The unpickled model (or ``(model, info)`` with ``with_info=True``).

    Raises:
        SignatureError: the archive was altered, truncated or extended after signing.
        ExpiredError: the archive's expiry time has passed.
        UntrustedSignerError: the signer is not in ``trust``.
        DecryptionError: the archive was not sealed for ``identity`` / ``shared_key``.
        FormatError: not a modelseal archive this version reads.
        UnsafeContentError: unsafe or inconsistent contents (or over ``max_bytes``).
        DisallowedGlobalError: the pickle imports something outside ``allow_globals``.
        VersionMismatchError: library versions differ under ``version_policy`` or ``expect``.
        KeyFileError: a key file is damaged, of the wrong type, or a secret one readable by others.
        OSError: a file cannot be read (``FileNotFoundError`` ...).
        ValueError: bad arguments (no key, an unknown ``version_policy`` ...).

    All but the last two derive from :class:`RefusedError`; every exception has ``.hint``.
    """
    if version_policy not in VERSION_POLICIES:
        raise _value_error(
            f"version_policy must be one of {', '.join(VERSION_POLICIES)}; got {version_policy!r}",
            "use version_policy='strict' (the default), 'minor' or, knowingly, 'off'",
        )
    if isinstance(allow_globals, str):
        raise TypeError("allow_globals must be a collection of names, not one str")
    allow = list(allow_globals)
    for g in allow:
        if not isinstance(g, str) or not g.strip("."):
            raise _value_error(
                f"allow_globals entries must be non-empty names; got {g!r}",
                "allow_globals= takes '@sklearn', '@/path/to/list', exact names such as "
                "'mypkg.MyEstimator', or 'pkg.*'",
            )
    for g in allow:
        if g.endswith(".*"):
            warnings.warn(
                f"allow_globals={g!r} admits every name under that package, including functions "
                "that run processes or touch files; list exact names instead",
                stacklevel=2,
            )
    if identity is None and shared_key is None:
        identity = os.environ.get("MODELSEAL_IDENTITY_FILE") or None
        if identity is None:
            shared_key = os.environ.get("MODELSEAL_SHARED_KEY_FILE") or None
    expected = [(str(k), str(v)) for k, v in (expect or {}).items()]
    max_bytes = _max_bytes(max_bytes)

    info, files, resolved, acceptance = _native.open_bytes(
        _archive(path),
        _paths(trust),
        os.fspath(identity) if identity is not None else None,
        os.fspath(shared_key) if shared_key is not None else None,
        allow,
        expected,
        int(max_bytes),
        os.fspath(state) if state is not None else None,
        bool(no_state),
    )
    manifest = info["manifest"]
    by_path = dict(files)
    if MODEL_FILE in by_path:
        member = MODEL_FILE
    elif len(by_path) == 1:
        member = next(iter(by_path))
    else:
        raise _value_error(
            f"the archive holds {len(by_path)} files and none is {MODEL_FILE}: it was not made by "
            "modelseal.dump",
            "open it with the command line's `modelseal open`, which writes every file out",
        )
    model_file = by_path.pop(member)
    del files, by_path
    _version_gate(manifest, version_policy)
    # Every check but the unpickler's own passed: only now is the archive recorded as accepted in
    # the anti-rollback state (a model refused above must not lock out older good ones).
    acceptance.accept()
    model = _unpickle_model(model_file, _policy(resolved), member, version_policy, int(max_bytes))
    return (model, info) if with_info else model


def loads(data: bytes, trust: Union[None, StrPath, Sequence[StrPath]] = None, identity: Optional[StrPath] = None, **kwargs: Any) -> Any:
    """:func:`load` from the archive's bytes (what :func:`dumps` returns), with the same checks and
    arguments."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"loads() takes the archive's bytes, not {type(data).__name__}")
    return load(bytes(data) if not isinstance(data, bytes) else data, trust, identity, **kwargs)


# --------------------------------------------------------------------------------------------------
# review


def untrusted_globals(
    path: Union[StrPath, bytes, BinaryIO],
    trust: Union[None, StrPath, Sequence[StrPath]] = None,
    identity: Optional[StrPath] = None,
    *,
    shared_key: Optional[StrPath] = None,
    allow_globals: Iterable[str] = DEFAULT_ALLOWED_GLOBALS,
    max_bytes: int = _DEFAULT_MAX_BYTES,
) -> Dict[str, List[str]]:
    """Lists, for each file of the archive, every global its pickle imports that ``allow_globals``
    does not allow, without unpickling anything (as skops' ``get_untrusted_types``). Runs every
    archive check of :func:`load` first. An empty list means the file passes the name check.

    Returns:
        ``{archive_path: [global, ...]}``.

    Raises the archive refusals of :func:`load`, and :class:`UnsafeContentError` for a file that
    is neither a walkable pickle nor a recognised safe format (a gzip- or xz-wrapped joblib file,
    a ``.npy`` object array...).
    """
    if isinstance(allow_globals, str):
        raise TypeError("allow_globals must be a collection of names, not one str")
    if identity is None and shared_key is None:
        identity = os.environ.get("MODELSEAL_IDENTITY_FILE") or None
        if identity is None:
            shared_key = os.environ.get("MODELSEAL_SHARED_KEY_FILE") or None
    return dict(
        _native.untrusted_globals(
            _archive(path),
            _paths(trust),
            os.fspath(identity) if identity is not None else None,
            os.fspath(shared_key) if shared_key is not None else None,
            list(allow_globals),
            _max_bytes(max_bytes),
        )
    )


# --------------------------------------------------------------------------------------------------
# verify


def verify(
    path: Union[StrPath, bytes, BinaryIO],
    trust: Union[None, StrPath, Sequence[StrPath]] = None,
    *,
    identity: Optional[StrPath] = None,
    shared_key: Optional[StrPath] = None,
    state: Optional[StrPath] = None,
    no_state: bool = False,
) -> Dict[str, Any]:
    """Verifies an archive without unpickling anything, and returns what it established.

    Without a key (the usual CI gate): the header, the signer in ``trust``, the signature, expiry,
    and the digest of the whole encrypted payload. Nothing is decrypted, so ``info["manifest"]``
    is None. With ``identity`` or ``shared_key`` the payload is also decrypted and every file's
    size and SHA-256 checked (then discarded), and the manifest is returned.

    Returns:
        A dict with the fields of ``modelseal verify --json``: ``model_name``, ``model_version``,
        ``signer``, ``verified_signer``, ``cosigners``, ``created``, ``expires`` (RFC 3339 or
        None), ``recipients``, sizes, ``payload_blake3``, ``manifest_sha256``, ``verified``
        (always True: a failure raises) and ``manifest``.

    ``path`` is a path, the archive's ``bytes`` or a binary file object, as for :func:`load`.
    ``state`` and ``no_state`` are :func:`load`'s: a verified archive is checked against and
    recorded in the anti-rollback state, as ``modelseal verify`` does.

    Raises the exceptions of :func:`load` for its archive checks.
    """
    return _native.verify(
        _archive(path),
        _paths(trust),
        os.fspath(identity) if identity is not None else None,
        os.fspath(shared_key) if shared_key is not None else None,
        os.fspath(state) if state is not None else None,
        bool(no_state),
    )
