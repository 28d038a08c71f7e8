"""The package as a scikit-learn user expects it: file objects and bytes as joblib and skops take
them, the CLI's protections (trust directory, policy, anti-rollback state) by default, messages in
Python's words, and the dump options that used to make archives that could never load.

Real scikit-learn models, real keys, real files; every refusal asserts its class, its text, and
that nothing was written.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import pathlib
import re
import subprocess
import sys

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import modelseal
from modelseal import _modelseal as native

SETOSA = [[5.1, 3.5, 1.4, 0.2]]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    for who in ("alice", "bob", "eve"):
        modelseal.keygen(root / who)
    return root


@pytest.fixture(scope="module")
def tree():
    X, y = load_iris(return_X_y=True)
    return DecisionTreeClassifier(random_state=0).fit(X, y)


def sealing(keys, **kw):
    args = dict(
        signing_key=keys / "alice.key", recipients=[keys / "bob.pub"], name="iris-tree", version="1.0.0"
    )
    args.update(kw)
    return args


def opening(keys, **kw):
    args = dict(trust=[keys / "alice.pub"], identity=keys / "bob.key")
    args.update(kw)
    return args


# --------------------------------------------------------------------------------------------------
# file objects and bytes, both ways


def test_dumps_and_loads_round_trip_bytes(keys, tree, tmp_path):
    data = modelseal.dumps(tree, **sealing(keys))
    assert isinstance(data, bytes) and data.startswith(b"MSEAL")
    clf = modelseal.loads(data, **opening(keys))
    assert clf.predict(SETOSA).tolist() == [0]
    # The same bytes are an archive file like any other, and the other way round.
    (tmp_path / "m.mseal").write_bytes(data)
    assert modelseal.load(tmp_path / "m.mseal", **opening(keys)).predict(SETOSA).tolist() == [0]
    assert modelseal.loads(bytearray(data), **opening(keys)).predict(SETOSA).tolist() == [0]
    assert modelseal.load(memoryview(data), **opening(keys)).predict(SETOSA).tolist() == [0]
    info = modelseal.verify(data, trust=keys / "alice.pub")
    assert info["model_name"] == "iris-tree" and info["manifest"] is None


def test_dump_to_and_load_from_file_objects(keys, tree, tmp_path):
    buf = io.BytesIO()
    report = modelseal.dump(tree, buf, **sealing(keys))
    assert report["model_name"] == "iris-tree"
    buf.seek(0)
    assert modelseal.load(buf, **opening(keys)).predict(SETOSA).tolist() == [0]
    with open(tmp_path / "f.mseal", "wb") as f:
        modelseal.dump(tree, f, **sealing(keys))
    with open(tmp_path / "f.mseal", "rb") as f:
        clf, info = modelseal.load(f, with_info=True, **opening(keys))
    assert clf.predict(SETOSA).tolist() == [0] and info["manifest"]["files"][0]["path"] == "model.joblib"
    with open(tmp_path / "f.mseal", "rb") as f:
        assert modelseal.untrusted_globals(f, **opening(keys)) == {"model.joblib": []}
    with open(tmp_path / "f.mseal", "rb") as f:
        assert modelseal.verify(f, trust=keys / "alice.pub", identity=keys / "bob.key")["verified"]


def test_a_failed_dump_writes_nothing_to_the_file_object(keys, tree):
    buf = io.BytesIO()
    with pytest.raises(ValueError) as e:
        modelseal.dump(tree, buf, **sealing(keys, version="one"))
    assert "semver" in e.value.hint
    assert buf.getvalue() == b""


def test_bytes_and_file_objects_get_every_check_of_a_file(keys, tree):
    data = bytearray(modelseal.dumps(tree, **sealing(keys)))
    data[len(data) // 2] ^= 1
    with pytest.raises(modelseal.SignatureError):
        modelseal.loads(bytes(data), **opening(keys))
    with pytest.raises(modelseal.SignatureError):
        modelseal.load(io.BytesIO(bytes(data)), **opening(keys))
    with pytest.raises(modelseal.SignatureError):
        modelseal.load(io.BytesIO(bytes(data[:-1])), **opening(keys))
    with pytest.raises(modelseal.SignatureError):  # data after the signed payload
        modelseal.load(io.BytesIO(bytes(data) + b"x"), **opening(keys))
    with pytest.raises(modelseal.FormatError):
        modelseal.loads(b"PK\x03\x04 a zip, not an archive" * 10, **opening(keys))


def test_a_text_or_lying_file_object_is_refused_not_misread(keys, tree, tmp_path):
    good = modelseal.dumps(tree, **sealing(keys))

    class Liar(io.RawIOBase):
        """read(n) returns more than n bytes."""

        def read(self, n=-1):
            return b"\0" * (n + 1)

    (tmp_path / "a.mseal").write_bytes(good)
    with open(tmp_path / "a.mseal", encoding="latin-1") as text:
        with pytest.raises(OSError, match="not bytes"):
            modelseal.load(text, **opening(keys))
    with pytest.raises(OSError, match=r"returned \d+ bytes"):
        modelseal.load(Liar(), **opening(keys))
    with pytest.raises(TypeError):
        modelseal.load(12, **opening(keys))
    with pytest.raises(TypeError):
        modelseal.loads("a str", **opening(keys))


def test_a_file_object_that_never_ends_is_bounded(keys, tree):
    # An endless stream after a valid archive: the reader stops at the signed size and refuses the
    # trailing data instead of reading forever.
    good = modelseal.dumps(tree, **sealing(keys))

    class Endless(io.RawIOBase):
        def __init__(self):
            self.pos = 0

        def readable(self):
            return True

        def readinto(self, b):
            n = len(b)
            chunk = (good[self.pos : self.pos + n] if self.pos < len(good) else b"")
            chunk = chunk + b"\0" * (n - len(chunk))
            b[:n] = chunk
            self.pos += n
            return n

    with pytest.raises(modelseal.SignatureError, match="after the signed payload|trailing"):
        modelseal.load(Endless(), **opening(keys))


# --------------------------------------------------------------------------------------------------
# the CLI's defaults: trust directory, policy, anti-rollback state


def _trust_dir(tmp_path, keys, policy: str = "") -> pathlib.Path:
    d = tmp_path / "trust"
    d.mkdir(mode=0o700)
    (d / "alice.pub").write_bytes((keys / "alice.pub").read_bytes())
    if policy:
        (d / "policy.toml").write_text(policy)
    return d


def test_load_uses_the_default_trust_directory_and_its_policy(keys, tree, tmp_path, monkeypatch):
    alice = modelseal.key_id(keys / "alice.pub")
    trust = _trust_dir(tmp_path, keys, f'[[key]]\nid = "{alice}"\nmodels = ["fraud/*"]\n')
    monkeypatch.setenv("MODELSEAL_TRUST", str(trust))
    data = modelseal.dumps(tree, **sealing(keys))
    # Alice is trusted only for fraud/* models: the iris model is refused by the policy.
    with pytest.raises(modelseal.UntrustedSignerError) as e:
        modelseal.loads(data, identity=keys / "bob.key")
    assert "iris-tree" in str(e.value) and "policy scope" in e.value.hint
    fraud = modelseal.dumps(tree, **sealing(keys, name="fraud/v1"))
    assert modelseal.loads(fraud, identity=keys / "bob.key").predict(SETOSA).tolist() == [0]
    # No MODELSEAL_TRUST: the per-user directory under XDG_CONFIG_HOME, as the CLI reads it.
    monkeypatch.delenv("MODELSEAL_TRUST")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with pytest.raises(ValueError) as e:
        modelseal.loads(data, identity=keys / "bob.key")
    assert "no trust store" in str(e.value) and "trust=" in e.value.hint
    per_user = tmp_path / "config" / "modelseal" / "trust"
    per_user.mkdir(parents=True, mode=0o700)
    (per_user / "alice.pub").write_bytes((keys / "alice.pub").read_bytes())
    assert modelseal.loads(data, identity=keys / "bob.key").predict(SETOSA).tolist() == [0]


def test_a_trust_directory_others_can_write_is_refused(keys, tree, tmp_path, monkeypatch):
    trust = _trust_dir(tmp_path, keys)
    trust.chmod(0o777)
    monkeypatch.setenv("MODELSEAL_TRUST", str(trust))
    with pytest.raises(modelseal.KeyFileError) as e:
        modelseal.loads(modelseal.dumps(tree, **sealing(keys)), identity=keys / "bob.key")
    assert "chmod go-w" in e.value.hint


_LOAD_IN_A_CHILD = """
import sys, modelseal
modelseal.load(sys.argv[1], trust=[sys.argv[2]], identity=sys.argv[3])
print("loaded")
"""


def test_rollback_is_refused_across_processes_with_the_default_state(keys, tree, tmp_path):
    # The conftest gives this test its own XDG_STATE_HOME; a child process shares it, as two runs
    # of a service on one machine share the per-user state.
    v2 = tmp_path / "v2.mseal"
    v1 = tmp_path / "v1.mseal"
    modelseal.dump(tree, v2, **sealing(keys, version="2.0.0"))
    modelseal.dump(tree, v1, **sealing(keys, version="1.0.0"))
    child = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_A_CHILD, str(v2), str(keys / "alice.pub"), str(keys / "bob.key")],
        capture_output=True, text=True, env=dict(os.environ),
    )
    assert child.returncode == 0 and child.stdout.strip() == "loaded", child.stderr
    with pytest.raises(modelseal.RollbackError) as e:
        modelseal.load(v1, **opening(keys))
    assert not isinstance(e.value, modelseal.EquivocationError)
    assert "1.0.0" in str(e.value) and "2.0.0" in str(e.value)
    assert "replaying an old or forked model" in e.value.hint
    with pytest.raises(modelseal.RollbackError):
        modelseal.verify(v1, trust=keys / "alice.pub")
    assert modelseal.load(v1, no_state=True, **opening(keys)).predict(SETOSA).tolist() == [0]


def test_equivocation_is_refused_through_load(keys, tree, tmp_path):
    X, y = load_iris(return_X_y=True)
    state = tmp_path / "state.json"
    first = modelseal.dumps(tree, **sealing(keys, version="3.0.0"))
    other = modelseal.dumps(LogisticRegression(max_iter=500).fit(X, y), **sealing(keys, version="3.0.0"))
    modelseal.loads(first, state=state, **opening(keys))
    modelseal.loads(first, state=state, **opening(keys))  # the same archive again is fine
    with pytest.raises(modelseal.EquivocationError) as e:
        modelseal.loads(other, state=state, **opening(keys))
    assert isinstance(e.value, modelseal.RollbackError)
    assert "equivocation" in str(e.value) and "3.0.0" in str(e.value)


# --------------------------------------------------------------------------------------------------
# Python's words, never the CLI's flags

_FLAG = re.compile(r"(^|[\s(`'\"/])--?[a-z][a-z-]*")


def _no_cli_words(text: str) -> None:
    assert not _FLAG.search(text), f"a CLI flag in {text!r}"
    assert "modelseal help" not in text and "see `modelseal" not in text, text


def test_the_vocabulary_has_no_cli_flags():
    words = native._vocabulary()
    assert len(words) >= 19 and all(words)
    for w in words:
        _no_cli_words(w)


def test_every_message_and_hint_is_in_pythons_words(keys, tree, tmp_path):
    sealed = tmp_path / "m.mseal"
    modelseal.dump(tree, sealed, **sealing(keys))
    leaky = tmp_path / "leaky.key"
    leaky.write_bytes((keys / "alice.key").read_bytes())
    leaky.chmod(0o644)
    tampered = bytearray(sealed.read_bytes())
    tampered[-3] ^= 1
    calls = [
        lambda: modelseal.dump(tree, sealed, **sealing(keys)),  # exists: force=True
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, recipients=[])),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, name="a b")),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, version="1")),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, signing_key=leaky)),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, signing_key=keys / "bob.pub")),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, recipients=[keys / "bob.key"])),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, expires=-5)),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, expires=dt.timedelta(0))),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, expires=1000)),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, compress=30)),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, compress="gzip")),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, protocol=1)),
        lambda: modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, signing_key=None)),
        lambda: modelseal.keygen(keys / "alice"),
        lambda: modelseal.load(sealed, trust=keys / "alice.pub"),
        lambda: modelseal.load(sealed, trust=keys / "alice.pub", identity=keys / "bob.key", shared_key=keys / "bob.key"),
        lambda: modelseal.load(sealed, trust=keys / "eve.pub", identity=keys / "bob.key"),
        lambda: modelseal.load(sealed, trust=keys / "alice.pub", identity=keys / "eve.key"),
        lambda: modelseal.load(sealed, trust=keys / "alice.pub", identity=keys / "eve.pub"),
        lambda: modelseal.load(sealed, allow_globals=("x",), **opening(keys)),
        lambda: modelseal.load(sealed, allow_globals=("@nosuch",), **opening(keys)),
        lambda: modelseal.load(sealed, allow_globals=("",), **opening(keys)),
        lambda: modelseal.load(sealed, version_policy="loose", **opening(keys)),
        lambda: modelseal.load(sealed, expect={"scikit-learn": "0.1"}, **opening(keys)),
        lambda: modelseal.loads(bytes(tampered), **opening(keys)),
        lambda: modelseal.loads(b"not an archive at all, long enough" * 4, **opening(keys)),
        lambda: modelseal.load(tmp_path / "missing.mseal", **opening(keys)),
        lambda: modelseal.verify(sealed, trust=tmp_path / "nowhere"),
    ]
    seen = set()
    for call in calls:
        with pytest.raises(Exception) as e:
            call()
        exc = e.value
        assert not isinstance(exc, (OverflowError, TypeError, AttributeError)), repr(exc)
        assert getattr(exc, "hint", ""), f"no hint on {exc!r}"
        _no_cli_words(str(exc))
        _no_cli_words(exc.hint)
        seen.add(type(exc))
    assert {ValueError, FileExistsError, modelseal.KeyFileError, modelseal.DecryptionError,
            modelseal.UntrustedSignerError, modelseal.DisallowedGlobalError, modelseal.SignatureError,
            modelseal.FormatError, modelseal.VersionMismatchError, FileNotFoundError} <= seen


def test_hints_name_the_argument_to_change(keys, tree, tmp_path):
    sealed = tmp_path / "m.mseal"
    modelseal.dump(tree, sealed, **sealing(keys))
    with pytest.raises(FileExistsError) as e:
        modelseal.dump(tree, sealed, **sealing(keys))
    assert "force=True" in e.value.hint
    with pytest.raises(ValueError) as e:
        modelseal.dump(tree, tmp_path / "x.mseal", **sealing(keys, recipients=[]))
    assert "recipients=" in e.value.hint and "shared_key=" in e.value.hint
    with pytest.raises(modelseal.UntrustedSignerError) as e:
        modelseal.load(sealed, trust=keys / "eve.pub", identity=keys / "bob.key")
    assert "trust=" in e.value.hint
    with pytest.raises(ValueError) as e:
        modelseal.load(sealed, trust=keys / "alice.pub")
    assert "identity=" in e.value.hint and "shared_key=" in e.value.hint
    with pytest.raises(modelseal.KeyFileError) as e:
        modelseal.load(sealed, trust=keys / "alice.pub", identity=keys / "bob.pub")
    assert "identity=" in e.value.hint and "signing_key=" in e.value.hint


# --------------------------------------------------------------------------------------------------
# expiry, protocol and compression


def test_bad_expiries_are_value_errors_with_a_hint(keys, tree, tmp_path):
    out = tmp_path / "x.mseal"
    for bad, says in ((-5, "after 1970"), (float("nan"), "after 1970"), (dt.timedelta(days=-1), "not after"),
                      (dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc), "not after the creation time")):
        with pytest.raises(ValueError) as e:
            modelseal.dump(tree, out, **sealing(keys, expires=bad))
        assert says in str(e.value), (bad, str(e.value))
        assert "expir" in e.value.hint
        assert not out.exists()


def test_protocols_no_reader_can_check_are_refused_at_dump(keys, tree, tmp_path):
    out = tmp_path / "x.mseal"
    for protocol in (0, 1, 2):
        with pytest.raises(ValueError) as e:
            modelseal.dump(tree, out, **sealing(keys, protocol=protocol))
        assert f"protocol={protocol}" in str(e.value) and "protocol=" in e.value.hint
        assert not out.exists()
    with pytest.raises(ValueError):
        modelseal.dump(tree, out, **sealing(keys, protocol=99))
    import pickle

    for protocol in range(3, pickle.HIGHEST_PROTOCOL + 1):
        data = modelseal.dumps(tree, **sealing(keys, protocol=protocol, version=f"1.0.{protocol}"))
        assert modelseal.loads(data, no_state=True, **opening(keys)).predict(SETOSA).tolist() == [0]
    data = modelseal.dumps(tree, **sealing(keys, protocol=-1))  # pickle's "highest"
    assert modelseal.loads(data, no_state=True, **opening(keys)).predict(SETOSA).tolist() == [0]


def test_compress_takes_a_zstd_level_as_joblib_does(keys, tree, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True)
    big = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    sizes = {}
    for compress, stored in (("none", "none"), (0, "none"), (False, "none"), ("zstd", "zstd"), (True, "zstd"),
                             (1, "zstd"), (19, "zstd")):
        info = modelseal.dump(big, tmp_path / "c.mseal", force=True, **sealing(keys, compress=compress))
        assert info["compression"] == stored, (compress, info["compression"])
        sizes[compress] = (tmp_path / "c.mseal").stat().st_size
        assert modelseal.load(tmp_path / "c.mseal", no_state=True, **opening(keys)).predict(SETOSA).tolist() == [0]
    assert sizes[19] <= sizes[1] < sizes["none"]
    for bad in (20, -1, 100):
        with pytest.raises(ValueError) as e:
            modelseal.dump(tree, tmp_path / "y.mseal", **sealing(keys, compress=bad))
        assert "zstd level is 1-19" in str(e.value)
        assert not (tmp_path / "y.mseal").exists()
    with pytest.raises(TypeError):
        modelseal.dump(tree, tmp_path / "y.mseal", **sealing(keys, compress=3.5))


# --------------------------------------------------------------------------------------------------
# the opened bytes are released as the unpickler reads them


def test_a_model_larger_than_a_segment_loads_exactly(keys, tmp_path):
    import numpy as np
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 30)), rng.normal(size=(200, 3000))
    model = Ridge().fit(X, y)  # coef_ is 3000 x 30 float64: 720 KB; intercept 24 KB
    model.extra_ = rng.normal(size=(1_500_000,))  # 12 MB, three segments and a part
    model.fortran_ = np.asfortranarray(rng.normal(size=(700, 900)))
    model.empty_ = np.empty((0, 4))
    data = modelseal.dumps(model, **sealing(keys), compress="none")
    back = modelseal.loads(data, allow_globals=modelseal.DEFAULT_ALLOWED_GLOBALS, **opening(keys))
    for name in ("coef_", "intercept_", "extra_", "fortran_", "empty_"):
        a, b = getattr(model, name), getattr(back, name)
        assert a.dtype == b.dtype and a.shape == b.shape and a.flags.f_contiguous == b.flags.f_contiguous
        assert np.array_equal(a, b) and b.flags.writeable
    assert np.allclose(back.predict(X[:5]), model.predict(X[:5]))


def test_an_opened_buffer_releases_what_was_read_and_cannot_go_back(keys, tmp_path):
    import numpy as np

    import pickle

    # A pickle of one 9 MB bytes value: it imports no global, so any allow-list passes it.
    whole = pickle.dumps(np.arange(9_000_000, dtype=np.uint8).tobytes(), protocol=4)
    path = tmp_path / "b.mseal"
    native.seal_bytes(
        [("model.joblib", whole)], str(keys / "alice.key"), [str(keys / "bob.pub")], None,
        "raw", "1.0.0", "", {}, {}, {}, None, None, None, None, str(path), False, compression="none",
    )
    _, files, _, _ = native.open_bytes(str(path), [str(keys / "alice.pub")], str(keys / "bob.key"),
                                    None, [], [], 1 << 34, None, True)
    (name, buf), = files
    assert len(buf) == len(whole) and not buf.writable()
    assert bytes(buf) == whole
    head = bytearray(5_000_000)
    got = 0
    while got < len(head):
        n = buf.readinto(memoryview(head)[got:])
        assert 0 < n <= len(head) - got
        got += n
    assert bytes(head) == whole[:5_000_000] and buf.tell() == 5_000_000
    with pytest.raises(OSError, match="released"):
        buf.seek(0)  # the first 4 MiB segment is gone
    with pytest.raises(OSError, match="released"):
        bytes(buf)
    with pytest.raises(OSError):
        buf.write(b"x")
    assert buf.seek(4 << 20) == 4 << 20  # still held
    assert buf.read(3) == whole[4 << 20 : (4 << 20) + 3]
    assert buf.read() == whole[(4 << 20) + 3 :] and buf.read() == b""
    assert buf.readinto(bytearray(4)) == 0


# --------------------------------------------------------------------------------------------------
# found by an independent attack on the above (each was a defect; each is a refusal or a fix now)


def test_readinto_fills_the_targets_own_memory_on_short_reads(keys):
    import array

    import numpy as np

    buf = native.Buffer()
    buf.write(b"0123456789a")
    buf.seek(0)
    target = bytearray(16)
    assert buf.readinto(target) == 11 and bytes(target[:11]) == b"0123456789a"
    assert bytes(target[11:]) == bytes(5)
    buf.seek(0)
    grid = np.zeros((4, 4), dtype=np.uint8)
    assert buf.readinto(grid) == 11 and bytes(grid.tobytes()[:11]) == b"0123456789a"
    buf.seek(0)
    ints = array.array("i", [0] * 4)  # 16 bytes
    assert buf.readinto(ints) == 11 and ints.tobytes()[:11] == b"0123456789a"
    with pytest.raises(TypeError):
        buf.readinto(np.zeros((4, 4), dtype=np.uint8)[:, ::2])  # not contiguous
    with pytest.raises(TypeError):
        buf.readinto(b"read-only")


def test_a_model_the_version_gate_refuses_is_never_recorded(keys, tree, tmp_path):
    state = tmp_path / "state.json"
    v1 = modelseal.dumps(tree, **sealing(keys, version="1.0.0"))
    # v2 records a numpy this machine does not run: load refuses it at the version gate.
    requires = dict(modelseal._running_requires(), numpy="99.0.0")
    import joblib

    raw = io.BytesIO()
    joblib.dump(tree, raw)
    path = tmp_path / "v2.mseal"
    native.seal_bytes(
        [("model.joblib", raw.getvalue())], str(keys / "alice.key"), [str(keys / "bob.pub")], None,
        "iris-tree", "2.0.0", "", {}, requires, {}, None, None, None, None, str(path), False,
    )
    with pytest.raises(modelseal.VersionMismatchError):
        modelseal.load(path, state=state, **opening(keys))
    # Not accepted, so not recorded: the older good archive still loads.
    assert modelseal.loads(v1, state=state, **opening(keys)).predict(SETOSA).tolist() == [0]
    with pytest.raises(modelseal.RollbackError):  # and now 1.0.0 is what was accepted
        modelseal.loads(modelseal.dumps(tree, **sealing(keys, version="0.9.0")), state=state, **opening(keys))


def test_dump_never_replaces_a_file_it_reads(keys, tree, tmp_path):
    key = tmp_path / "alice.key"
    key.write_bytes((keys / "alice.key").read_bytes())
    key.chmod(0o600)
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    for target in (key, data):
        before = target.read_bytes()
        with pytest.raises(ValueError) as e:
            modelseal.dump(tree, target, force=True, train_data=data, **sealing(keys, signing_key=key))
        assert "output is also an input" in str(e.value)
        assert target.read_bytes() == before


def test_dump_writes_everything_to_a_stream_that_takes_part_of_each_write(keys, tree):
    class Trickle(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            chunk = bytes(b[:1000])
            self.data += chunk
            return len(chunk)

    out = Trickle()
    modelseal.dump(tree, out, **sealing(keys))
    assert modelseal.loads(bytes(out.data), **opening(keys)).predict(SETOSA).tolist() == [0]

    class Stuck(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            return 0

    with pytest.raises(OSError, match="took no bytes"):
        modelseal.dump(tree, Stuck(), **sealing(keys))


def test_an_exception_in_read_is_raised_as_itself(keys, tree):
    good = modelseal.dumps(tree, **sealing(keys))

    class Broken(Exception):
        pass

    class Raises(io.RawIOBase):
        def __init__(self, exc, after):
            self.exc, self.after, self.pos = exc, after, 0

        def read(self, n=-1):
            if self.pos >= self.after:
                raise self.exc
            chunk = good[self.pos : min(self.pos + n, self.after)]
            self.pos += len(chunk)
            return chunk

    for after in (0, 100, len(good) - 10):
        with pytest.raises(Broken):
            modelseal.load(Raises(Broken("disk gone"), after), **opening(keys))
        with pytest.raises(KeyboardInterrupt):
            modelseal.load(Raises(KeyboardInterrupt(), after), **opening(keys))

    class Views(io.RawIOBase):
        """read() returns bytearray and memoryview, both bytes-like."""

        def __init__(self):
            self.pos = 0

        def read(self, n=-1):
            chunk = good[self.pos : self.pos + min(n, 700)]
            self.pos += len(chunk)
            return bytearray(chunk) if self.pos % 2 else memoryview(chunk)

    assert modelseal.load(Views(), **opening(keys)).predict(SETOSA).tolist() == [0]


def test_out_of_range_arguments_are_value_errors_with_hints(keys, tree, tmp_path):
    out = tmp_path / "x.mseal"
    data = modelseal.dumps(tree, **sealing(keys))
    for call in (
        lambda: modelseal.dump(tree, out, **sealing(keys, compress=2**31)),
        lambda: modelseal.dump(tree, out, **sealing(keys, compress=20)),
        lambda: modelseal.dump(tree, out, **sealing(keys, metrics={"a": 10**400})),
        lambda: modelseal.dump(tree, out, **sealing(keys, expires=dt.datetime.min)),
        lambda: modelseal.dump(tree, out, **sealing(keys, expires=1)),
        lambda: modelseal.loads(data, max_bytes=-1, **opening(keys)),
        lambda: modelseal.loads(data, max_bytes=2**64, **opening(keys)),
    ):
        with pytest.raises(ValueError) as e:
            call()
        assert e.value.hint, repr(e.value)
        _no_cli_words(str(e.value) + " " + e.value.hint)
        assert not out.exists()
    with pytest.raises(ValueError) as e:
        modelseal.dump(tree, out, **sealing(keys, expires=1))
    assert "timedelta" in e.value.hint  # the library's expiry hint, in Python's words
    with pytest.raises(ValueError) as e:
        modelseal.dump(tree, out, **sealing(keys, compress="fast"))
    assert "invalid compression" in str(e.value) and "compress=" in e.value.hint
    with pytest.raises(TypeError, match="dumps"):
        modelseal.dump(tree, os.fsencode(out), **sealing(keys))


def test_ctrl_c_interrupts_a_load_from_a_slow_file_object(keys, tree):
    import signal
    import threading
    import time

    good = modelseal.dumps(tree, **sealing(keys))

    class Slow(io.RawIOBase):
        """A stalled network stream: a few bytes, then nothing for a long time."""

        def __init__(self):
            self.pos = 0

        def read(self, n=-1):
            if self.pos >= 100:
                time.sleep(30)
            chunk = good[self.pos : self.pos + min(n, 50)]
            self.pos += len(chunk)
            return chunk

    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            modelseal.load(Slow(), **opening(keys))
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10


# --------------------------------------------------------------------------------------------------
# public (sign-only) archives


def test_public_archives_load_and_verify_with_no_identity(keys, tree, tmp_path, monkeypatch):
    monkeypatch.delenv("MODELSEAL_IDENTITY_FILE", raising=False)
    monkeypatch.delenv("MODELSEAL_SHARED_KEY_FILE", raising=False)
    path = tmp_path / "public.mseal"
    report = modelseal.dump(tree, path, **sealing(keys, recipients=(), public=True))
    assert report["public"] is True and report["suite"] == "MSEAL1-ED25519-PUBLIC-BLAKE3"
    trust = keys / "alice.pub"
    clf = modelseal.load(path, trust=trust, no_state=True)
    assert clf.predict(SETOSA).tolist() == [0]
    # verify checks every file with no key and shows the manifest.
    info = modelseal.verify(path, trust=trust, no_state=True)
    assert info["public"] is True
    assert [f["path"] for f in info["manifest"]["files"]] == ["model.joblib"]
    # An identity given anyway is not used.
    assert modelseal.load(path, no_state=True, **opening(keys)).predict(SETOSA).tolist() == [0]
    # The same through bytes.
    data = modelseal.dumps(tree, **sealing(keys, recipients=(), public=True))
    assert modelseal.loads(data, trust=trust, no_state=True).predict(SETOSA).tolist() == [0]


def test_public_refusals_name_python_arguments_and_leave_nothing(keys, tree, tmp_path, monkeypatch):
    monkeypatch.delenv("MODELSEAL_IDENTITY_FILE", raising=False)
    monkeypatch.delenv("MODELSEAL_SHARED_KEY_FILE", raising=False)
    out = tmp_path / "mixed.mseal"
    with pytest.raises(ValueError) as e:
        modelseal.dump(tree, out, **sealing(keys, public=True))
    assert "public archive has no recipients" in str(e.value)
    assert "public=True" in e.value.hint and "recipients=" in e.value.hint
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError) as e:
        modelseal.dump(tree, out, **sealing(keys, recipients=()))
    assert "public=True" in e.value.hint
    assert list(tmp_path.iterdir()) == []
    # An encrypted archive with no identity: refused, naming identity=.
    data = modelseal.dumps(tree, **sealing(keys))
    with pytest.raises(ValueError) as e:
        modelseal.loads(data, trust=keys / "alice.pub", no_state=True)
    assert "identity=" in e.value.hint
    # A public archive altered in its clear payload: refused by the signed digest.
    public = bytearray(modelseal.dumps(tree, **sealing(keys, recipients=(), public=True)))
    public[-700] ^= 1
    with pytest.raises(modelseal.SignatureError):
        modelseal.loads(bytes(public), trust=keys / "alice.pub", no_state=True)
