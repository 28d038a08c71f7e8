"""The exceptions modelseal raises.

Every refusal derives from :class:`RefusedError`: a check failed, and nothing of the archive was
unpickled or returned. ``str(exc)`` is the message the ``modelseal`` CLI prints after ``error:``,
and ``exc.hint`` the line it prints after ``hint:``.

Problems with the call itself are ordinary Python exceptions, also carrying ``.hint``:
``OSError`` (and its subclasses such as ``FileNotFoundError``, ``FileExistsError``) for I/O, and
``ValueError`` for bad arguments (an invalid model name or version, no recipient, bad metadata).
"""

from __future__ import annotations

import errno as _errno
from typing import Optional

__all__ = [
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


class RefusedError(Exception):
    """A check failed and the archive or the model in it was refused.

    Attributes:
        message: what failed, with the values involved (also ``str(exc)``).
        hint: a one-line suggestion of what to do, as the CLI prints it.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self):  # keep the hint across pickling (multiprocessing, pytest-xdist)
        return (type(self), (self.message, self.hint))


class SignatureError(RefusedError):
    """The archive is not byte for byte what its signer signed: a signature that does not verify,
    a missing or duplicated signature, a payload digest mismatch, a truncated archive, data after
    the signed payload."""


class ExpiredError(RefusedError):
    """The archive's signed expiry time has passed."""


class UntrustedSignerError(RefusedError):
    """The signer is not in the trust store given (or is trusted only for other model names, or the
    trust policy requires more distinct signers)."""


class DecryptionError(RefusedError):
    """The archive cannot be decrypted with the key given: it was not sealed for this identity or
    shared key, or its key commitment or a chunk failed authentication."""


class FormatError(RefusedError):
    """The bytes are not a modelseal archive this build reads (bad magic, unsupported version,
    malformed header or manifest)."""


class UnsafeContentError(RefusedError):
    """The signed, decrypted payload holds unsafe or inconsistent contents (decompression bombs,
    links, duplicate or unlisted entries, a file whose hash differs from the manifest, a pickle whose
    globals differ from the manifest's record), or is larger than ``max_bytes``."""


class VersionMismatchError(RefusedError):
    """The model was built with library versions that the running ones do not match under the
    ``version_policy`` chosen (or that ``expect`` names)."""


class DisallowedGlobalError(RefusedError):
    """A pickle in the archive imports globals outside ``allow_globals``: unpickling it would run
    code that was not allowed. ``.globals`` lists every one of them (the static check names all
    the pickle imports; the unpickler's own check, which runs after it, names the one it met)."""

    globals: list = []


class KeyFileError(RefusedError):
    """A key file was refused: wrong type, damaged, weak, readable by others (secret keys), or a
    trust directory or policy that cannot be used."""


class RollbackError(RefusedError):
    """The anti-rollback state refused the archive (:func:`modelseal.load` and
    :func:`modelseal.verify` keep it, as the CLI does, unless ``no_state=True``): it is older than
    a version already accepted under the same model name and signer, below the trust policy's
    minimum version, or the state file itself cannot be read as modelseal wrote it."""


class EquivocationError(RollbackError):
    """The archive claims a model name and version already accepted with other contents: the
    signer (or someone holding their key) published two different models under one version."""


_REFUSALS = {cls.__name__: cls for cls in (RefusedError, *[globals()[n] for n in __all__[1:]])}

_OS_ERRORS = {
    _errno.ENOENT: FileNotFoundError,
    _errno.EEXIST: FileExistsError,
    _errno.EACCES: PermissionError,
    _errno.EPERM: PermissionError,
    _errno.EISDIR: IsADirectoryError,
    _errno.ENOTDIR: NotADirectoryError,
}


def _from_rust(kind: str, message: str, hint: str, errno: Optional[int]) -> BaseException:
    """Builds the exception for an error of the native module (called from Rust)."""
    refused = _REFUSALS.get(kind)
    if refused is not None:
        return refused(message, hint)
    if kind == "ValueError":
        exc: BaseException = ValueError(message)
    else:
        exc = _OS_ERRORS.get(errno, OSError)(message) if errno is not None else OSError(message)
        if errno is not None:
            # errno only: with strerror set too, str(exc) would drop the message.
            exc.errno = errno
    exc.hint = hint
    return exc
