"""modelseal from Python: the story, and every refusal a data scientist can meet.

Runs against real scikit-learn. Keys are made with modelseal.keygen (no CLI binary needed).
Tests marked `needs_walker` exercise the static pickle walk in Rust (src/scan/pickle.rs); while
that module is the placeholder that reports no globals they are expected to fail (xfail).
"""

from __future__ import annotations

import collections
import datetime as dt
import io
import os
import pathlib
import pickle
import stat

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import modelseal
from modelseal import _modelseal as native

SETOSA = [[5.1, 3.5, 1.4, 0.2]]


# --------------------------------------------------------------------------------------------------
# fixtures


class Keys:
    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        for who in ("alice", "bob", "eve"):
            modelseal.keygen(root / who)
        modelseal.keygen_shared(root / "ci")

    def key(self, who: str) -> str:
        return str(self.root / f"{who}.key")

    def pub(self, who: str) -> str:
        return str(self.root / f"{who}.pub")


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="session")
def tree(iris):
    X, y = iris
    return DecisionTreeClassifier(random_state=0).fit(X, y)


def seal(keys: Keys, obj, path, **kw):
    args = dict(
        signing_key=keys.key("alice"), recipients=[keys.pub("bob")], name="iris-tree", version="1.0.0"
    )
    args.update(kw)
    return modelseal.dump(obj, path, **args)


def open_as_bob(keys: Keys, path, **kw):
    args = dict(trust=[keys.pub("alice")], identity=keys.key("bob"))
    args.update(kw)
    return modelseal.load(path, **args)


def seal_raw(keys: Keys, data: bytes, path, requires=None):
    """Seals bytes as model.joblib through the low-level function, with chosen `requires`."""
    return native.seal_bytes(
        [(modelseal.MODEL_FILE, data)], keys.key("alice"), [keys.pub("bob")], None, "raw-model",
        "1.0.0", "", {}, requires if requires is not None else modelseal._running_requires(), {},
        None, None, None, None, str(path), False,
    )


def joblib_bytes(obj) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def _walker_is_placeholder() -> bool:
    """True while src/scan/pickle.rs is the placeholder: it does not even recognise a pickle."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = pathlib.Path(d)
        k = Keys(root)
        seal_raw(k, pickle.dumps(1, protocol=4), root / "p.mseal")
        # At import, before the per-test state fixture: no state, so the user's own is untouched.
        info = modelseal.verify(
            root / "p.mseal", trust=k.pub("alice"), identity=k.key("bob"), no_state=True
        )
        return info["manifest"]["files"][0]["format"] == "unknown"


WALKER_PLACEHOLDER = _walker_is_placeholder()
needs_walker = pytest.mark.xfail(
    WALKER_PLACEHOLDER,
    reason="the static pickle walker (src/scan/pickle.rs) is still the placeholder in this build",
    strict=True,
)


class Trap:
    """Unpickling this creates a file: the booby trap a pickle can carry."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# --------------------------------------------------------------------------------------------------
# the story


def test_story_iris_tree(keys, tree, tmp_path):
    archive = tmp_path / "iris.mseal"
    data = tmp_path / "iris.csv"
    data.write_text("sepal_length,sepal_width,petal_length,petal_width,species\n")
    summary = seal(keys, tree, archive, metadata={"cv_accuracy": "0.95"}, train_data=data)
    assert summary["model_name"] == "iris-tree"

    clf = open_as_bob(keys, archive)
    assert clf.predict(SETOSA).tolist() == [0]

    info = modelseal.verify(archive, trust=[keys.pub("alice")])
    assert info["verified"] is True
    assert info["model_name"] == "iris-tree" and info["model_version"] == "1.0.0"
    assert info["verified_signer"] == modelseal.key_id(keys.pub("alice"))
    assert info["manifest"] is None  # nothing decrypted without a key

    m = modelseal.verify(archive, trust=keys.pub("alice"), identity=keys.key("bob"))["manifest"]
    assert m["metadata"] == {
        "cv_accuracy": "0.95",
        "estimator_class": "sklearn.tree._classes.DecisionTreeClassifier",
    }
    assert m["requires"]["scikit-learn"] == sklearn.__version__
    assert m["requires"]["numpy"] == np.__version__
    assert m["requires"]["joblib"] == joblib.__version__
    assert "python" in m["requires"]
    assert m["train_data"]["name"] == "iris.csv"
    assert [f["path"] for f in m["files"]] == ["model.joblib"]


def test_pipeline_round_trip(keys, iris, tmp_path):
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=1000))])
    pipe.fit(X, y)
    seal(keys, pipe, tmp_path / "pipe.mseal", name="iris-pipeline")
    loaded, info = open_as_bob(keys, tmp_path / "pipe.mseal", with_info=True)
    assert isinstance(loaded, Pipeline)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X))
    assert info["manifest"]["metadata"]["estimator_class"] == "sklearn.pipeline.Pipeline"


def test_models_that_need_more_of_the_default_allow_list(keys, iris, tmp_path):
    # A RandomState inside (numpy.random constructors) and object-dtype arrays (numpy
    # _reconstruct, pickled by joblib as a nested pickle).
    X, y = iris
    labels = np.array(load_iris().target_names, dtype=object)[y]
    forest = RandomForestClassifier(n_estimators=3, random_state=np.random.RandomState(0))
    forest.fit(X, labels)
    seal(keys, forest, tmp_path / "forest.mseal", name="iris-forest")
    loaded = open_as_bob(keys, tmp_path / "forest.mseal")
    assert loaded.classes_.dtype == object
    assert loaded.predict(SETOSA).tolist() == ["setosa"]


def test_shared_key_for_ci(keys, tree, tmp_path):
    archive = tmp_path / "ci.mseal"
    seal(keys, tree, archive, recipients=[], shared_key=keys.key("ci"))
    clf = modelseal.load(archive, trust=keys.pub("alice"), shared_key=keys.key("ci"))
    assert clf.predict(SETOSA).tolist() == [0]
    with pytest.raises(modelseal.DecryptionError):
        open_as_bob(keys, archive)


def test_trust_from_environment(keys, tree, tmp_path, monkeypatch):
    trust_dir = tmp_path / "trust"
    trust_dir.mkdir()
    (trust_dir / "alice.pub").write_text(pathlib.Path(keys.pub("alice")).read_text())
    seal(keys, tree, tmp_path / "m.mseal")
    monkeypatch.setenv("MODELSEAL_TRUST", str(trust_dir))
    monkeypatch.setenv("MODELSEAL_IDENTITY_FILE", keys.key("bob"))
    assert modelseal.load(tmp_path / "m.mseal").predict(SETOSA).tolist() == [0]


# --------------------------------------------------------------------------------------------------
# refusals of the archive


@pytest.fixture
def sealed(keys, tree, tmp_path) -> pathlib.Path:
    archive = tmp_path / "iris.mseal"
    seal(keys, tree, archive)
    return archive


def _rewrite(path: pathlib.Path, change) -> pathlib.Path:
    data = bytearray(path.read_bytes())
    data = change(data)
    out = path.with_name("tampered.mseal")
    out.write_bytes(bytes(data))
    return out


def _flip(at):
    def change(data: bytearray) -> bytearray:
        i = at(data)
        data[i] ^= 0x01
        return data

    return change


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_flip(lambda d: d.index(b"iris-tree") + 3), id="signed-header"),
        pytest.param(_flip(lambda d: len(d) * 3 // 4), id="payload-middle"),
        pytest.param(_flip(lambda d: len(d) - 1), id="payload-last-byte"),
        pytest.param(lambda d: d[:-17], id="truncated"),
        pytest.param(lambda d: d + b"\0", id="trailing-byte"),
    ],
)
def test_tampered_archive_is_refused(keys, sealed, change):
    tampered = _rewrite(sealed, change)
    with pytest.raises(modelseal.SignatureError) as e:
        open_as_bob(keys, tampered)
    assert isinstance(e.value, modelseal.RefusedError)
    assert "do not use it" in e.value.hint or "fetch the archive again" in e.value.hint
    with pytest.raises(modelseal.SignatureError):  # the key-less CI gate catches it too
        modelseal.verify(tampered, trust=[keys.pub("alice")])


def test_untrusted_signer(keys, sealed):
    with pytest.raises(modelseal.UntrustedSignerError) as e:
        modelseal.load(sealed, trust=[keys.pub("eve")], identity=keys.key("bob"))
    assert "is not in the trust store" in str(e.value)
    assert "trust store" in e.value.hint


def test_wrong_identity(keys, sealed):
    with pytest.raises(modelseal.DecryptionError) as e:
        modelseal.load(sealed, trust=[keys.pub("alice")], identity=keys.key("eve"))
    assert str(e.value) == "no recipient stanza of 1 opens with this identity"
    assert e.value.hint.startswith("the archive was not sealed for this key")


def test_expired(keys, tree, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")  # 2001
    seal(keys, tree, tmp_path / "old.mseal", expires=dt.datetime(2001, 9, 10, tzinfo=dt.timezone.utc))
    with pytest.raises(modelseal.ExpiredError) as e:
        open_as_bob(keys, tmp_path / "old.mseal")
    assert "expired at 2001-09-10T00:00:00Z" in str(e.value)
    assert not isinstance(e.value, modelseal.SignatureError)


def test_not_an_archive(keys, tmp_path):
    p = tmp_path / "model.joblib"
    p.write_bytes(joblib_bytes({"a": 1}))
    with pytest.raises(modelseal.FormatError) as e:
        open_as_bob(keys, p)
    assert "not a modelseal archive" in str(e.value)


def test_secret_key_readable_by_others(keys, tree, tmp_path):
    leaky = tmp_path / "leaky.key"
    leaky.write_bytes(pathlib.Path(keys.key("alice")).read_bytes())
    leaky.chmod(0o644)
    with pytest.raises(modelseal.KeyFileError) as e:
        seal(keys, tree, tmp_path / "m.mseal", signing_key=leaky)
    assert "chmod 600" in e.value.hint
    assert not (tmp_path / "m.mseal").exists()


def test_usage_and_io_errors(keys, tree, sealed, tmp_path):
    with pytest.raises(FileExistsError) as e:
        seal(keys, tree, sealed)
    assert str(e.value) == f"{sealed}: already exists" and e.value.hint
    seal(keys, tree, sealed, force=True)
    with pytest.raises(ValueError) as e:
        seal(keys, tree, tmp_path / "x.mseal", name="iris tree")
    assert "invalid model name" in str(e.value)
    with pytest.raises(ValueError):
        seal(keys, tree, tmp_path / "x.mseal", version="1.0")
    with pytest.raises(ValueError):
        seal(keys, tree, tmp_path / "x.mseal", recipients=[])
    with pytest.raises(FileNotFoundError) as e:
        open_as_bob(keys, tmp_path / "missing.mseal")
    assert "missing.mseal" in str(e.value) and e.value.hint
    with pytest.raises(ValueError):
        open_as_bob(keys, sealed, version_policy="loose")
    with pytest.raises(ValueError) as e:
        modelseal.load(sealed, trust=keys.pub("alice"))
    assert "no key to open the archive" in str(e.value) and e.value.hint
    with pytest.raises(ValueError):
        open_as_bob(keys, sealed, shared_key=keys.key("ci"))
    with pytest.raises(ValueError):
        seal(keys, tree, tmp_path / "x.mseal", compress="fast")
    assert not (tmp_path / "x.mseal").exists()


def test_exception_hierarchy():
    refusals = [
        modelseal.SignatureError, modelseal.ExpiredError, modelseal.UntrustedSignerError,
        modelseal.DecryptionError, modelseal.FormatError, modelseal.UnsafeContentError,
        modelseal.VersionMismatchError, modelseal.DisallowedGlobalError, modelseal.KeyFileError,
        modelseal.RollbackError,
    ]
    for cls in refusals:
        assert issubclass(cls, modelseal.RefusedError) and cls.__doc__
        e = cls("message", "hint")
        assert str(e) == "message" and e.hint == "hint"
        copy = pickle.loads(pickle.dumps(e))
        assert type(copy) is cls and copy.hint == "hint"
    assert "load" in (modelseal.load.__doc__ or "") and "version_policy" in modelseal.load.__doc__


# --------------------------------------------------------------------------------------------------
# the version gate


def test_version_mismatch_is_an_error_not_a_warning(keys, tree, tmp_path):
    archive = tmp_path / "old-sklearn.mseal"
    requires = modelseal._running_requires()
    requires["scikit-learn"] = "0.0.1"
    seal_raw(keys, joblib_bytes(tree), archive, requires=requires)
    for policy in ("strict", "minor"):
        with pytest.raises(modelseal.VersionMismatchError) as e:
            open_as_bob(keys, archive, version_policy=policy)
        assert str(e.value) == (
            f"model requires scikit-learn==0.0.1, expected scikit-learn=={sklearn.__version__}"
        )
        assert e.value.hint
    # "off" gives the guarantee up knowingly (the bytes really are from this sklearn, so it loads).
    assert open_as_bob(keys, archive, version_policy="off").predict(SETOSA).tolist() == [0]


def test_minor_policy_accepts_a_patch_difference(keys, tree, tmp_path):
    major, minor = sklearn.__version__.split(".")[:2]
    requires = modelseal._running_requires()
    requires["scikit-learn"] = f"{major}.{minor}.999"
    archive = tmp_path / "patch.mseal"
    seal_raw(keys, joblib_bytes(tree), archive, requires=requires)
    with pytest.raises(modelseal.VersionMismatchError):
        open_as_bob(keys, archive)  # strict: scikit-learn must be equal
    assert open_as_bob(keys, archive, version_policy="minor").predict(SETOSA).tolist() == [0]


def test_numpy_major_minor_is_gated_under_strict(keys, tree, tmp_path):
    requires = modelseal._running_requires()
    requires["numpy"] = "1.0.0"
    archive = tmp_path / "old-numpy.mseal"
    seal_raw(keys, joblib_bytes(tree), archive, requires=requires)
    with pytest.raises(modelseal.VersionMismatchError) as e:
        open_as_bob(keys, archive)
    assert "numpy==1.0.0" in str(e.value)


def test_expect_requirements(keys, sealed):
    ok = {"scikit-learn": sklearn.__version__}
    assert open_as_bob(keys, sealed, expect=ok).predict(SETOSA).tolist() == [0]
    with pytest.raises(modelseal.VersionMismatchError) as e:
        open_as_bob(keys, sealed, expect={"scikit-learn": "0.0.1"})
    assert "expected scikit-learn==0.0.1" in str(e.value)


# --------------------------------------------------------------------------------------------------
# globals: what a pickle may import


def test_disallowed_global(keys, tmp_path):
    archive = tmp_path / "counter.mseal"
    seal(keys, collections.Counter(a=1), archive, name="counter")
    with pytest.raises(modelseal.DisallowedGlobalError) as e:
        open_as_bob(keys, archive)
    assert "collections.Counter" in str(e.value)
    assert e.value.hint.startswith("do not load it")
    assert "allow_globals=" in e.value.hint and "--" not in e.value.hint
    assert e.value.globals == ["collections.Counter"]
    allowed = modelseal.DEFAULT_ALLOWED_GLOBALS + ("collections.Counter",)
    assert open_as_bob(keys, archive, allow_globals=allowed) == collections.Counter(a=1)


@needs_walker
def test_disallowed_global_is_refused_by_the_static_walk(keys, tmp_path):
    archive = tmp_path / "counter.mseal"
    seal(keys, collections.Counter(a=1), archive, name="counter")
    with pytest.raises(modelseal.DisallowedGlobalError) as e:
        open_as_bob(keys, archive)
    # The Rust check's wording: refused before any unpickling started.
    assert str(e.value) == (
        "model.joblib imports collections.Counter, outside the allowed globals"
    )


def test_booby_trap_never_runs(keys, tmp_path):
    target = tmp_path / "pwned"
    archive = tmp_path / "trap.mseal"
    seal(keys, Trap(str(target)), archive, name="trap")
    assert not target.exists()  # dumping only pickles
    with pytest.raises(modelseal.DisallowedGlobalError) as e:
        open_as_bob(keys, archive)
    assert "io.open" in str(e.value)
    assert not target.exists()


@needs_walker
def test_booby_trap_is_recorded_and_refused_before_unpickling(keys, tmp_path):
    target = tmp_path / "pwned"
    archive = tmp_path / "trap.mseal"
    seal(keys, Trap(str(target)), archive, name="trap")
    info = modelseal.verify(archive, trust=keys.pub("alice"), identity=keys.key("bob"))
    f = info["manifest"]["files"][0]
    # A joblib file without arrays is a plain pickle: the walker may name either format.
    assert f["format"] in ("joblib", "pickle") and "io.open" in f["pickle_globals"]
    with pytest.raises(modelseal.DisallowedGlobalError) as e:
        open_as_bob(keys, archive)
    assert str(e.value) == "model.joblib imports io.open, outside the allowed globals"
    assert not target.exists()


@needs_walker
def test_manifest_records_the_estimator_globals(keys, sealed):
    info = modelseal.verify(sealed, trust=keys.pub("alice"), identity=keys.key("bob"))
    f = info["manifest"]["files"][0]
    assert f["format"] == "joblib"
    assert "sklearn.tree._classes.DecisionTreeClassifier" in f["pickle_globals"]
    assert f["sklearn_version"] == sklearn.__version__


def _stack_global_call(module: str, name: str) -> bytes:
    """A protocol 4 pickle calling module.name() with no arguments."""

    def unicode(s: str) -> bytes:
        b = s.encode()
        return b"\x8c" + bytes([len(b)]) + b  # SHORT_BINUNICODE

    return b"\x80\x04" + unicode(module) + unicode(name) + b"\x93" + b")" + b"R" + b"."


def test_a_global_reached_through_an_allowed_module_is_refused(keys, tmp_path):
    # `sklearn.datasets._base.os.getcwd` matches the `sklearn` prefix, but is os.getcwd: with
    # protocol 4 dotted names a prefix allow-list lets a pickle walk out of the package. The
    # unpickling-time gate resolves the name and refuses it (getcwd is harmless; os.system and
    # shutil.rmtree are reachable the same way).
    import sklearn.datasets._base as base

    assert base.os is os
    archive = tmp_path / "walk.mseal"
    seal_raw(keys, _stack_global_call("sklearn.datasets._base", "os.getcwd"), archive)
    with pytest.raises(modelseal.DisallowedGlobalError) as e:
        open_as_bob(keys, archive)
    assert "sklearn.datasets._base.os.getcwd" in str(e.value)
    if "refused at unpickling time" in str(e.value):  # not by a static walk that refuses it first
        assert "posix.getcwd" in str(e.value) or "nt.getcwd" in str(e.value)


def test_a_module_global_is_refused(keys, tmp_path):
    archive = tmp_path / "module.mseal"
    # GLOBAL sklearn.datasets._base.os -> the os module object itself.
    data = b"\x80\x04\x8c\x16sklearn.datasets._base\x8c\x02os\x93."
    seal_raw(keys, data, archive)
    with pytest.raises(modelseal.DisallowedGlobalError):
        open_as_bob(keys, archive)


def test_untrusted_globals_lists_every_name_outside_the_policy(keys, tmp_path):
    archive = tmp_path / "counter.mseal"
    seal(keys, {"c": collections.Counter(a=1), "o": collections.OrderedDict()}, archive, name="c")
    found = modelseal.untrusted_globals(archive, trust=keys.pub("alice"), identity=keys.key("bob"))
    assert found == {"model.joblib": ["collections.Counter", "collections.OrderedDict"]}
    allow = modelseal.DEFAULT_ALLOWED_GLOBALS + ("collections.Counter",)
    found = modelseal.untrusted_globals(
        archive, trust=keys.pub("alice"), identity=keys.key("bob"), allow_globals=allow
    )
    assert found == {"model.joblib": ["collections.OrderedDict"]}
    with pytest.raises(modelseal.DisallowedGlobalError) as e:
        open_as_bob(keys, archive)
    assert e.value.globals == ["collections.Counter", "collections.OrderedDict"]
    # Listing both loads it: exact names the caller trusts.
    got = modelseal.load(
        archive,
        trust=keys.pub("alice"),
        identity=keys.key("bob"),
        allow_globals=allow + ("collections.OrderedDict",),
    )
    assert got == {"c": collections.Counter(a=1), "o": collections.OrderedDict()}


def test_a_package_prefix_is_explicit_and_warned_about(keys, tmp_path):
    archive = tmp_path / "counter.mseal"
    seal(keys, collections.Counter(a=1), archive, name="c")
    with pytest.warns(UserWarning, match="admits every name under that package"):
        got = modelseal.load(
            archive, trust=keys.pub("alice"), identity=keys.key("bob"),
            allow_globals=("collections.*",),
        )
    assert got == collections.Counter(a=1)
    for bad in ("sklearn", "numpy"):  # a bare package is one exact name, not a prefix
        with pytest.raises(modelseal.DisallowedGlobalError):
            modelseal.load(
                archive, trust=keys.pub("alice"), identity=keys.key("bob"), allow_globals=(bad,)
            )
    with pytest.raises(ValueError) as e:
        modelseal.load(
            archive, trust=keys.pub("alice"), identity=keys.key("bob"),
            allow_globals=("builtins.eval",),
        )
    assert "never allowed" in str(e.value) and "allow_globals=" in e.value.hint


def test_buffer_is_a_binary_file():
    buf = native.Buffer()
    assert buf.write(b"ab\ncd") == 5 and buf.write(bytearray(b"e")) == 1
    assert buf.write(memoryview(b"\nf")) == 2
    assert len(buf) == 8 and buf.tell() == 8 and bytes(buf) == b"ab\ncde\nf"
    assert buf.seek(0) == 0
    assert buf.peek(2) == b"ab" and buf.tell() == 0
    assert buf.readline() == b"ab\n" and buf.read(2) == b"cd" and buf.readline() == b"e\n"
    assert buf.read() == b"f" and buf.read(5) == b"" and buf.readline() == b""
    assert buf.seek(-2, 2) == 6 and buf.read(-1) == b"\nf"
    with pytest.raises(OSError):
        buf.seek(0)
        buf.write(b"x")  # append-only
    with pytest.raises(ValueError):
        buf.seek(-1)
    with pytest.raises(TypeError):
        native.Buffer().write(5)


@pytest.mark.parametrize("protocol", [0, 1])
def test_a_protocol_0_or_1_booby_trap_never_runs(keys, tmp_path, protocol):
    # Pickles without a leading PROTO opcode sniff as "unknown" to the static walker, which the
    # Rust globals check lets through as "no globals"; the unpickling-time gate refuses them.
    # modelseal.dump refuses these protocols (test_dump_refuses_protocols_no_reader_can_check);
    # an attacker seals the bytes by other means.
    target = tmp_path / "pwned"
    archive = tmp_path / "old-protocol.mseal"
    buf = io.BytesIO()
    joblib.dump(Trap(str(target)), buf, protocol=protocol)
    seal_raw(keys, buf.getvalue(), archive)
    with pytest.raises(modelseal.RefusedError) as e:
        open_as_bob(keys, archive)
    assert isinstance(e.value, (modelseal.DisallowedGlobalError, modelseal.UnsafeContentError))
    assert not target.exists()


def test_a_timedelta_expiry_counts_from_the_creation_time_as_the_cli_does(keys, tree, tmp_path, monkeypatch):
    # The CLI's `--expires 90d` under SOURCE_DATE_EPOCH gives the same instant
    # (tests/versions_and_expiry.rs); both are resolved by modelseal::time::Expiry.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    report = seal(keys, tree, tmp_path / "m.mseal", expires=dt.timedelta(days=90))
    assert report["created"] == "2027-01-15T08:00:00Z"
    assert report["expires"] == "2027-04-15T08:00:00Z"
    with pytest.raises(ValueError, match="not after the creation time"):
        seal(keys, tree, tmp_path / "n.mseal", expires=dt.timedelta(days=-1))
    assert not (tmp_path / "n.mseal").exists()


def test_anti_rollback_is_on_as_in_the_cli_and_a_refused_model_is_never_recorded(keys, iris, tree, tmp_path):
    state = tmp_path / "state.json"
    seal(keys, tree, tmp_path / "v2.mseal", version="2.0.0")
    seal(keys, tree, tmp_path / "v1.mseal", version="1.0.0")
    open_as_bob(keys, tmp_path / "v2.mseal", state=state)
    with pytest.raises(modelseal.RollbackError) as e:
        open_as_bob(keys, tmp_path / "v1.mseal", state=state)
    assert "1.0.0" in str(e.value) and e.value.hint
    with pytest.raises(modelseal.RollbackError):
        modelseal.verify(tmp_path / "v1.mseal", trust=keys.pub("alice"), state=state)
    open_as_bob(keys, tmp_path / "v1.mseal", no_state=True)  # knowingly

    # A model the globals check refuses is not recorded as accepted (FORMAT.md section 7 order):
    # otherwise the good 3.0.0 below, with another manifest, would be refused as a fork.
    seal(keys, tree, tmp_path / "bad.mseal", version="3.0.0")
    with pytest.raises(modelseal.DisallowedGlobalError):
        open_as_bob(keys, tmp_path / "bad.mseal", state=state, allow_globals=("sklearn.pipeline.Pipeline",))
    X, y = iris
    seal(keys, LogisticRegression(max_iter=500).fit(X, y), tmp_path / "v3.mseal", version="3.0.0")
    open_as_bob(keys, tmp_path / "v3.mseal", state=state)


def _cli() -> str:
    """The modelseal binary: MODELSEAL_CLI (python/ci.sh sets it), else the crate's debug build."""
    cli = os.environ.get("MODELSEAL_CLI") or str(
        pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "modelseal"
    )
    if not os.path.exists(cli):
        pytest.skip(f"no modelseal binary at {cli}: build it with `cargo build` (python/ci.sh does)")
    return cli


def test_verify_returns_exactly_what_the_cli_prints_as_json(keys, tree, tmp_path):
    import json
    import subprocess

    archive = tmp_path / "m.mseal"
    seal(keys, tree, archive, metadata={"owner": "ml"}, expires=dt.timedelta(days=1))
    for key_args, key_kw in (([], {}), (["-i", str(keys.key("bob"))], {"identity": keys.key("bob")})):
        cli = subprocess.run(
            [_cli(), "verify", "--json", "--no-state", "-t", str(keys.pub("alice")), *key_args, str(archive)],
            capture_output=True, text=True, check=True, env={**os.environ, "MODELSEAL_TRUST": ""},
        )
        py = modelseal.verify(archive, trust=keys.pub("alice"), no_state=True, **key_kw)
        assert json.loads(cli.stdout) == py
        assert ("manifest" in py) and (py["manifest"] is None) == (not key_kw)


def test_in_memory_inputs_meet_the_rules_files_meet(keys, tmp_path):
    # The binding used to skip the reserved-name and file-count rules the CLI applies; both now
    # come from the library (seal::inputs_from_memory).
    def raw(files, compress="auto"):
        return native.seal_bytes(
            files, keys.key("alice"), [keys.pub("bob")], None, "raw-model", "1.0.0", "", {}, {}, {},
            None, None, None, None, str(tmp_path / "r.mseal"), False, compression=compress,
        )

    for files, says in (
        ([("manifest", b"x")], "manifest"),
        ([("a", b"x"), ("a", b"y")], "two inputs map to the archive path"),
        ([(f"f{i}", b"") for i in range(10_001)], "10000"),
        ([("../up", b"x")], ".."),
        ([], "no input"),
    ):
        with pytest.raises(ValueError) as e:
            raw(files)
        assert says in str(e.value), str(e.value)
        assert e.value.hint
        assert not (tmp_path / "r.mseal").exists()
    with pytest.raises(ValueError, match="compression must be auto, zstd, none or zstd:LEVEL"):
        raw([("a", b"x")], compress="gzip")
