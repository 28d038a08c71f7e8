"""Native half of modelseal (Rust, pyo3). Use the functions of the `modelseal` package instead."""

from typing import Any, Dict, List, Optional, Tuple

MODELSEAL_VERSION: str

def seal_bytes(
    files: List[Tuple[str, bytes]],
    signing_key: str,
    recipients: List[str],
    shared_key: Optional[str],
    name: str,
    version: str,
    description: str,
    metadata: Dict[str, str],
    requires: Dict[str, str],
    metrics: Dict[str, float],
    train_data: Optional[str],
    source: Optional[str],
    expires_unix: Optional[int],
    out_path: str,
    force: bool,
) -> Dict[str, Any]: ...
def open_bytes(
    path: str,
    trust: List[str],
    identity: Optional[str] = None,
    shared_key: Optional[str] = None,
    allow_globals: Optional[List[str]] = None,
    expect: List[Tuple[str, str]] = ...,
    max_bytes: int = ...,
) -> Tuple[Dict[str, Any], List[Tuple[str, bytes]]]: ...
def verify(
    path: str, trust: List[str], identity: Optional[str] = None, shared_key: Optional[str] = None
) -> Dict[str, Any]: ...
def keygen(prefix: str) -> Tuple[str, str]: ...
def keygen_shared(prefix: str) -> str: ...
def key_id(public_key: str) -> str: ...
def global_allowed(global_: str, prefixes: List[str]) -> bool: ...
def requirement_mismatch(name: str, required: str, expected: str) -> BaseException: ...
