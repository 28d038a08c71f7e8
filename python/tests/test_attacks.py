"""The attack corpus: hostile pickles, each sealed by a *trusted* signer, each refused before any
effect, through both checks.

Every case is loaded twice: through ``modelseal.load`` (the Rust static walk runs first, then the
restricted unpickler), and straight through the restricted unpickler with the default policy (so
that it is shown to stop the attack on its own, not only behind the static walk). After each,
the marker files must not exist and the loopback server must have received nothing.
"""

from __future__ import annotations

import io
import os
import pickle
import socket
import struct
import threading

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

import modelseal
from modelseal import _modelseal as native
from modelseal import _unpickle

from test_modelseal import Keys, seal_raw


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    return Keys(tmp_path_factory.mktemp("attack-keys"))


@pytest.fixture(scope="module")
def policy():
    import sklearn

    return modelseal._policy(native.resolve_globals(["@sklearn"], {"scikit-learn": sklearn.__version__}))


class Listener:
    """A TCP server on 127.0.0.1 that counts connections; stops itself."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
                self.connections += 1
                c.close()
            except OSError:
                continue

    def close(self) -> int:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
        return self.connections


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def unicode(s: str) -> bytes:
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def call(module: str, name: str, *args: bytes) -> bytes:
    """A protocol-2 pickle of ``module.name(*args)``; args are already-encoded pushes."""
    return b"\x80\x02" + op_global(module, name) + b"(" + b"".join(args) + b"tR."


class Reduce:
    """Pickles as ``func(*args)`` then BUILD ``state``: how to write crafted reductions."""

    def __init__(self, func, args, state=None):
        self.r = (func, args) if state is None else (func, args, state)

    def __reduce__(self):
        return self.r


def assert_refused_both_ways(keys, policy, tmp_path, payload: bytes, exc, unpickler_kind=None):
    archive = tmp_path / f"attack-{len(os.listdir(tmp_path))}.mseal"
    seal_raw(keys, payload, archive)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(exc):
        modelseal.load(archive, trust=keys.pub("alice"), identity=keys.key("bob"))
    assert sorted(os.listdir(tmp_path)) == before
    # The restricted unpickler alone, without the static walk in front of it.
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(payload), policy, 1 << 30)
    if unpickler_kind is not None:
        assert e.value.kind == unpickler_kind, e.value
    return e.value


MARK = "/tmp/modelseal-attack-marker"


@pytest.fixture(autouse=True)
def no_marker():
    if os.path.exists(MARK):
        os.remove(MARK)
    yield
    assert not os.path.exists(MARK), "an attack had an effect"


# --- code execution ------------------------------------------------------------------------------


def test_sklearn_function_that_runs_a_python_script(keys, policy, tmp_path):
    payload = call(
        "sklearn.utils._testing",
        "assert_run_python_script_without_output",
        unicode(f"open({MARK!r}, 'w')"),
    )
    assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.DisallowedGlobalError, "global")


def test_getattr_gadget_turns_one_reduce_into_any_call(keys, policy, tmp_path):
    payload = (
        b"\x80\x02" + op_global("builtins", "getattr") + b"(" + op_global("os", "path")
        + unicode("exists") + b"tR."
    )
    assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.DisallowedGlobalError, "global")


def test_attribute_walk_through_an_allowed_module(keys, policy, tmp_path):
    # Protocol 4 dotted names: sklearn.base, then .os.system; a module reached as an attribute.
    for p in (
        b"\x80\x04\x8c\x0csklearn.base\x8c\tos.system\x93" + unicode(f"touch {MARK}") + b"\x85R.",
        b"\x80\x04\x8c\x15sklearn.tree._classes\x8c\x02np\x93.",
    ):
        err = assert_refused_both_ways(keys, policy, tmp_path, p, modelseal.DisallowedGlobalError, "global")
        assert "sklearn." in str(err)


def test_a_listed_name_that_resolves_elsewhere_is_refused(policy):
    # The caller lists a name; the object behind it lives in another module.
    p = modelseal._policy(native.resolve_globals(["sklearn.utils.validation.warnings.warn"]))
    payload = b"\x80\x04\x8c\x18sklearn.utils.validation\x8c\rwarnings.warn\x93."
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(payload), p, 1 << 20)
    assert e.value.kind == "global" and "which is" in str(e.value)


def test_a_value_only_function_is_never_called(keys, policy, tmp_path):
    # numpy.log1p is on the list (FunctionTransformer holds it), as a value only.
    payload = call("numpy", "log1p", b"G" + struct.pack(">d", 1.0))
    err = assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.UnsafeContentError, "content")
    assert "value only" in str(err)


def test_a_class_is_built_only_the_way_real_models_build_it(keys, policy, tmp_path):
    # DecisionTreeClassifier is built with __new__ in real pickles, never called with arguments.
    payload = call("sklearn.tree._classes", "DecisionTreeClassifier", unicode("gini"))
    err = assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.UnsafeContentError)
    assert "does not allow it to be called" in str(err) or "not allow" in str(err)


def test_calling_the_result_of_a_call_is_refused(policy):
    # REDUCE on an object that did not come from find_class (here: the result of dtype(...)).
    payload = b"\x80\x02" + op_global("numpy", "dtype") + b"(" + unicode("f8") + b"\x89\x88tR)R."
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(payload), policy, 1 << 20)
    assert "did not come from an allowed global" in str(e.value)


def test_build_on_a_class_or_function_is_refused(policy):
    payload = b"\x80\x02" + op_global("numpy", "log1p") + b"}b."
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(payload), policy, 1 << 20)
    assert "BUILD on" in str(e.value)


def test_persistent_ids_and_extension_codes_are_refused(policy):
    for payload in (b"\x80\x02K\x01Q.", b"\x80\x02\x82\x01."):
        with pytest.raises(_unpickle.Refused):
            _unpickle.load(io.BytesIO(payload), policy, 1 << 20)


# --- threads ----------------------------------------------------------------------------------


def test_the_check_holds_in_a_worker_thread_and_in_nested_object_arrays(keys, policy, tmp_path):
    import joblib

    inner = pickle.dumps(Reduce(os.system, (f"touch {MARK}",)), 2)
    # A joblib file whose object array's nested pickle calls posix.system.
    buf = io.BytesIO()
    joblib.dump(np.array(["a", None], dtype=object), buf)
    data = buf.getvalue()
    start = data.index(b"\x80", data.index(b"NumpyArrayWrapper") + 1)
    start = data.index(b"\x80", start + 2) if data[start + 1 : start + 2] not in (b"\x02", b"\x03", b"\x04", b"\x05") else start
    evil = data[:start] + inner
    errors = []

    def work():
        try:
            _unpickle.load(io.BytesIO(evil), policy, 1 << 20)
        except _unpickle.Refused as e:
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert len(errors) == 1 and errors[0].kind == "global"
    with pytest.raises(modelseal.DisallowedGlobalError):
        archive = tmp_path / "nested.mseal"
        seal_raw(keys, evil, archive)
        modelseal.load(archive, trust=keys.pub("alice"), identity=keys.key("bob"))


# --- files and network ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module,name",
    [
        ("shutil", "rmtree"),
        ("sklearn.datasets._base", "_fetch_remote"),
        ("sklearn.utils._testing", "create_memmap_backed_data"),
        ("numpy", "save"),
        ("numpy", "load"),
        ("io", "open"),
    ],
)
def test_functions_that_touch_files(keys, policy, tmp_path, module, name):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "f").write_text("x")
    payload = call(module, name, unicode(str(victim)))
    assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.DisallowedGlobalError, "global")
    assert (victim / "f").read_text() == "x"


@pytest.mark.parametrize(
    "module,name",
    [("urllib.request", "urlopen"), ("sklearn.datasets._openml", "_open_openml_url"), ("socket", "create_connection")],
)
def test_functions_that_open_connections(keys, policy, tmp_path, listener, module, name):
    payload = call(module, name, unicode(f"http://127.0.0.1:{listener.port}/stage2"))
    assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.DisallowedGlobalError, "global")
    assert listener.close() == 0


# --- memory corruption ------------------------------------------------------------------------


def _dtype_reduce(code, state):
    return Reduce(np.dtype, (code, False, True), state)


def test_dtype_declaring_objects_over_raw_bytes(keys, policy, tmp_path):
    from numpy._core.multiarray import _reconstruct

    fake = _dtype_reduce("V8", (3, "|", None, None, None, 8, 1, 0x3F))
    arr = Reduce(_reconstruct, (np.ndarray, (0,), b"b"), (1, (1,), fake, False, b"\x41" * 8))
    payload = pickle.dumps(arr, 4)
    err = assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.UnsafeContentError)
    assert "flags" in str(err)


def test_structured_dtype_with_object_field_over_bytes(policy):
    from numpy._core.multiarray import _reconstruct

    obj = np.dtype("O")
    fake = _dtype_reduce("V16", (3, "|", None, ("a", "b"), {"a": (obj, 0), "b": (np.dtype("i8"), 8)}, 16, 1, 0x3F))
    arr = Reduce(_reconstruct, (np.ndarray, (0,), b"b"), (1, (1,), fake, False, b"\x41" * 16))
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(pickle.dumps(arr, 4)), policy, 1 << 20)
    assert "holding Python objects" in str(e.value)


@pytest.mark.parametrize("field,value", [("left_child", 10**6), ("right_child", 0), ("feature", 99)])
def test_tree_with_out_of_range_nodes(keys, policy, tmp_path, field, value):
    import joblib
    from sklearn.tree._tree import Tree

    X, y = load_iris(return_X_y=True)
    clf = DecisionTreeClassifier(random_state=0).fit(X, y)
    t = clf.tree_
    state = t.__getstate__()
    state["nodes"] = state["nodes"].copy()
    state["nodes"][field][0] = value
    clf.tree_ = Reduce(Tree, (t.n_features, np.array(t.n_classes, dtype=np.intp), t.n_outputs), state)
    buf = io.BytesIO()
    joblib.dump(clf, buf)
    err = assert_refused_both_ways(keys, policy, tmp_path, buf.getvalue(), modelseal.UnsafeContentError)
    assert "Tree" in str(err)


def test_tree_node_count_beyond_its_nodes(policy):
    from sklearn.tree._tree import Tree

    X, y = load_iris(return_X_y=True)
    t = DecisionTreeClassifier(random_state=0).fit(X, y).tree_
    state = t.__getstate__()
    state["node_count"] = 10**6
    bad = Reduce(Tree, (t.n_features, np.array(t.n_classes, dtype=np.intp), t.n_outputs), state)
    with pytest.raises(_unpickle.Refused):
        _unpickle.load(io.BytesIO(pickle.dumps(bad, 4)), policy, 1 << 20)


def test_forest_tree_taking_more_features_than_the_forest(policy):
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True)
    rf = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    rf.n_features_in_ = 2  # the forest calls its trees without input checks
    buf = io.BytesIO()
    joblib.dump(rf, buf)
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(buf.getvalue()), policy, 1 << 20)
    assert "features" in str(e.value)


# --- memory bombs ------------------------------------------------------------------------------


def test_a_tiny_pickle_declaring_a_huge_array(keys, policy, tmp_path):
    import joblib

    buf = io.BytesIO()
    joblib.dump(np.zeros(4), buf)
    data = buf.getvalue()
    # Rewrite the wrapper's shape (4,) as (2**31,): 16 GiB declared, 32 bytes present.
    small = pickle.dumps((4,), 4)[pickle.dumps((4,), 4).index(b"K") :][:2]
    assert small in data
    evil = data.replace(small, b"J" + (2**31 - 1).to_bytes(4, "little"), 1)
    # The static walk refuses it first (its array data is missing); the unpickler on its own
    # refuses before allocating.
    err = assert_refused_both_ways(keys, policy, tmp_path, evil, modelseal.RefusedError, "content")
    assert "bytes" in str(err)


def test_reconstruct_with_a_huge_shape_and_bytearray_sizes(policy):
    from numpy._core.multiarray import _reconstruct

    for obj in (Reduce(_reconstruct, (np.ndarray, (2**31,), b"b")),):
        with pytest.raises(_unpickle.Refused):
            _unpickle.load(io.BytesIO(pickle.dumps(obj, 4)), policy, 1 << 20)
    p = modelseal._policy(native.resolve_globals(["builtins.bytearray"]))
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(call("builtins", "bytearray", b"J\x00\x00\x00\x80")), p, 1 << 20)
    assert "never a size" in str(e.value)


def test_max_bytes_bounds_every_array(keys, tmp_path):
    # An object array of one shared item repeated: about 2 bytes of pickle (a memo get) per
    # element, 8 bytes of array per element. The archive fits in max_bytes; the array does not.
    shared = ("x",)
    archive = tmp_path / "amplified.mseal"
    modelseal.dump(np.array([shared] * 100_000 + [None], dtype=object), archive,
                   signing_key=keys.key("alice"), recipients=[keys.pub("bob")], name="amp",
                   version="1.0.0", compress="none")
    size = os.path.getsize(archive)
    assert size < 400_000
    with pytest.raises(modelseal.UnsafeContentError) as e:
        modelseal.load(archive, trust=keys.pub("alice"), identity=keys.key("bob"), max_bytes=500_000)
    assert "max_bytes" in str(e.value)


# --- the allowed native state still loads ------------------------------------------------------


def test_real_tree_forest_hgb_and_knn_load_and_predict(keys, tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_iris(return_X_y=True)
    for est in (
        DecisionTreeClassifier(random_state=0),
        RandomForestClassifier(n_estimators=3, random_state=0),
        HistGradientBoostingClassifier(max_iter=5),
        KNeighborsClassifier(),
    ):
        est.fit(X, y)
        archive = tmp_path / f"{type(est).__name__}.mseal"
        # A name of its own: anti-rollback refuses a second, different "m 1.0.0" from one signer.
        modelseal.dump(est, archive, signing_key=keys.key("alice"), recipients=[keys.pub("bob")],
                       name=type(est).__name__, version="1.0.0")
        got = modelseal.load(archive, trust=keys.pub("alice"), identity=keys.key("bob"))
        assert np.array_equal(got.predict(X), est.predict(X))


# --- found by an independent review: check-then-change, missing native checks, sizes ----------


def _joblib_bytes(obj) -> bytes:
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


def _second_build(obj, state) -> bytes:
    """A protocol-4 pickle of ``(obj, obj)`` whose second element re-BUILDs the memoised obj with
    ``state``: the memo gives back the already checked object."""
    body = pickle.dumps(obj, 4)
    assert body.endswith(b".")
    first = body[:-1]  # the object, memoised
    # BINGET the memo entry of obj (the last MEMOIZE of its construction before BUILD is its id)
    state_bytes = pickle.dumps(state, 4)[2:-1]  # without PROTO and STOP
    state_bytes = state_bytes[9:] if state_bytes[:1] == b"\x95" else state_bytes  # drop FRAME
    return first + b"\x94" + state_bytes + b"b."


def test_a_second_build_on_a_checked_object_is_refused(policy):
    X, y = load_iris(return_X_y=True)
    clf = DecisionTreeClassifier(random_state=0).fit(X, y)
    payload = _second_build(clf, {"n_features_in_": 1})
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(payload), policy, 1 << 30)
    assert "second BUILD" in str(e.value)


def test_build_on_an_object_no_allowed_call_created_is_refused(policy):
    # BUILD on a plain dict (created by EMPTY_DICT, not by an allowed call).
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(b"\x80\x04}}b."), policy, 1 << 20)
    assert "no allowed call created" in str(e.value)


def test_sub_array_dtype_larger_than_its_item(keys, policy, tmp_path):
    from numpy._core.multiarray import _reconstruct

    fake = _dtype_reduce("V8", (3, "|", (np.dtype("f8"), (10**8,)), None, None, 8, 1, 0))
    arr = Reduce(_reconstruct, (np.ndarray, (0,), b"b"), (1, (1,), fake, False, b"\x00" * 8))
    err = assert_refused_both_ways(keys, policy, tmp_path, pickle.dumps(arr, 4), modelseal.UnsafeContentError)
    assert "sub-array" in str(err)


def test_zero_byte_items_cannot_make_huge_arrays(policy):
    from numpy._core.multiarray import _reconstruct

    arr = Reduce(_reconstruct, (np.ndarray, (0,), b"b"), (1, (10**8,), np.dtype("V0"), False, b""))
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(pickle.dumps(arr, 4)), policy, 1 << 20)
    assert "zero bytes" in str(e.value)


def test_deeply_nested_tuple_keys_are_refused_before_hashing(keys, policy, tmp_path):
    n = 10**5
    payload = b"\x80\x04}" + b")" + b"\x85" * n + b"K\x01s."
    err = assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.UnsafeContentError)
    assert "nested" in str(err)


def test_svc_whose_support_bookkeeping_does_not_add_up(keys, policy, tmp_path):
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True)
    svc = SVC().fit(X, y)
    svc._n_support = np.array([10**6, 10**6, 10**6], dtype=np.int32)
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(svc), modelseal.UnsafeContentError)
    assert "_n_support" in str(err)
    svc = SVC().fit(X, y)
    svc.support_vectors_ = np.zeros((0, 4))
    with pytest.raises(_unpickle.Refused):
        _unpickle.load(io.BytesIO(_joblib_bytes(svc)), policy, 1 << 30)


def test_sparse_coefficients_with_indices_outside_the_matrix(keys, policy, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    lr = LogisticRegression().fit(X, y).sparsify()
    lr.coef_.indices[0] = 10**9
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(lr), modelseal.UnsafeContentError)
    assert "csr_matrix" in str(err)


def test_mt19937_position_outside_its_key(keys, policy, tmp_path):
    from sklearn.dummy import DummyClassifier

    X, y = load_iris(return_X_y=True)
    rs = np.random.RandomState(0)
    dummy = DummyClassifier(strategy="uniform", random_state=rs).fit(X, y)
    st = rs.get_state(legacy=False)
    st["state"]["pos"] = 2**31 - 1
    # numpy itself accepts the position; the pickle carries it as the bit generator's state.
    rs._bit_generator.state = st
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(dummy), modelseal.UnsafeContentError)
    assert "MT19937" in str(err)


def test_gradient_boosting_stages_wider_than_its_output(policy):
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = load_iris(return_X_y=True)
    gb = GradientBoostingRegressor(n_estimators=3).fit(X, X[:, 0])
    gb.estimators_ = np.concatenate([gb.estimators_, gb.estimators_], axis=1)
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(_joblib_bytes(gb)), policy, 1 << 30)
    assert "trees per iteration" in str(e.value)


def test_a_tree_without_nodes_is_refused(policy):
    from sklearn.tree._tree import Tree

    bare = Reduce(Tree, (4, np.array([3], dtype=np.intp), 1))
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(pickle.dumps(bare, 4)), policy, 1 << 20)
    assert "without nodes" in str(e.value)


def test_a_wrong_cython_checksum_is_a_typed_refusal(keys, policy, tmp_path):
    from numpy.random.bit_generator import SeedSequence, __pyx_unpickle_SeedSequence

    payload = pickle.dumps(Reduce(__pyx_unpickle_SeedSequence, (SeedSequence, 0x1234, None)), 4)
    assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.UnsafeContentError, "content")


def test_scipy_distribution_state_must_be_scipys_own(keys, policy, tmp_path):
    from scipy import stats

    frozen = stats.loguniform(0.01, 10)
    frozen.dist._parse_arg_template = f"open({MARK!r}, 'w')"
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(frozen), modelseal.UnsafeContentError)
    assert "_parse_arg_template differs" in str(err)


# --- found by a second independent review: fitted arrays that compiled code trusts -------------


def _refused(policy, model, expected: str) -> None:
    with pytest.raises(_unpickle.Refused) as e:
        _unpickle.load(io.BytesIO(_joblib_bytes(model)), policy, 1 << 30)
    assert expected in str(e.value), e.value


def test_gradient_boosting_members_and_width(keys, policy, tmp_path):
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = load_iris(return_X_y=True)
    gb = GradientBoostingRegressor(n_estimators=2).fit(X, X[:, 0])
    gb.estimators_[1, 0] = DummyRegressor().fit(X, X[:, 0])
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(gb), modelseal.UnsafeContentError)
    assert "member of estimators_" in str(err)
    gb = GradientBoostingRegressor(n_estimators=2).fit(X, X[:, 0])
    gb.estimators_ = np.repeat(gb.estimators_, 40, axis=1)
    gb.n_trees_per_iteration_ = 40
    _refused(policy, gb, "trees per iteration")


@pytest.mark.parametrize("which", ["KMeans", "BisectingKMeans"])
def test_kmeans_centres_wider_than_the_input(keys, policy, tmp_path, which):
    from sklearn import cluster

    X, _ = load_iris(return_X_y=True)
    km = getattr(cluster, which)(n_clusters=2, random_state=0).fit(X)
    if which == "KMeans":
        km.cluster_centers_ = np.zeros((2, 300_000))
    else:
        km._bisecting_tree.left.center = np.zeros(300_000)
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(km), modelseal.UnsafeContentError)
    assert "centre" in str(err)


def test_kd_tree_whose_last_level_is_not_leaves(keys, policy, tmp_path):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neighbors._kd_tree import KDTree, newObj

    X, y = load_iris(return_X_y=True)
    knn = KNeighborsClassifier(algorithm="kd_tree", leaf_size=5).fit(X, y)
    state = list(knn._tree.__getstate__())
    nodes = state[2].copy()
    nodes["is_leaf"] = 0
    state[2] = nodes
    knn._tree = Reduce(newObj, (KDTree,), tuple(state))
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(knn), modelseal.UnsafeContentError)
    assert "last level" in str(err)


def test_hgb_categorical_split_on_a_numeric_feature(policy):
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, _ = load_iris(return_X_y=True)
    hgb = HistGradientBoostingRegressor(max_iter=3).fit(X, X[:, 0])
    nodes = hgb._predictors[0][0].nodes
    inner = np.flatnonzero(~nodes["is_leaf"].astype(bool))
    nodes["is_categorical"][inner[0]] = 1
    _refused(policy, hgb, "cat")  # the bitset index or the numeric-feature check, whichever first
    hgb = HistGradientBoostingRegressor(max_iter=3).fit(X, X[:, 0])
    hgb._bin_mapper.is_categorical_ = np.zeros(1, dtype=np.uint8)
    _refused(policy, hgb, "one flag per feature")


def test_sparse_svr_dual_that_does_not_store_every_value(keys, policy, tmp_path):
    import scipy.sparse
    from sklearn.svm import SVR

    X, _ = load_iris(return_X_y=True)
    svr = SVR().fit(scipy.sparse.csr_matrix(X), X[:, 0])
    svr._dual_coef_ = scipy.sparse.csr_matrix(svr._dual_coef_.shape)
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(svr), modelseal.UnsafeContentError)
    assert "sparse dual" in str(err)


@pytest.mark.parametrize("change", ["degree", "coefficients"])
def test_spline_whose_knots_coefficients_and_degree_disagree(keys, policy, tmp_path, change):
    from sklearn.preprocessing import SplineTransformer

    X, _ = load_iris(return_X_y=True)
    st = SplineTransformer().fit(X)
    b = st.bsplines_[0]
    if change == "degree":
        b.k = 300_000
    else:
        b._c = np.ascontiguousarray(b._c[:1])
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(st), modelseal.UnsafeContentError)
    assert "BSpline" in str(err)


def test_a_hyper_parameter_fit_would_refuse(keys, policy, tmp_path):
    # FeatureHasher(n_features=0) divides by zero in compiled code (SIGFPE) at transform.
    from sklearn.feature_extraction import FeatureHasher

    fh = FeatureHasher().fit([{"a": 1}])
    fh.n_features = 0
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(fh), modelseal.UnsafeContentError)
    assert "parameter fit would refuse" in str(err)


# --- found by a third independent review: index maps and callables ------------------------------


def test_onehot_encoder_whose_output_widths_do_not_follow_from_its_categories(keys, policy, tmp_path):
    from sklearn.preprocessing import OneHotEncoder

    enc = OneHotEncoder(sparse_output=False).fit([["a", "x"], ["b", "y"]])
    enc._n_features_outs = [10**12, 1 - 10**12]
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(enc), modelseal.UnsafeContentError)
    assert "_n_features_outs" in str(err)


@pytest.mark.parametrize("which", ["CountVectorizer", "DictVectorizer"])
def test_vocabulary_pointing_outside_the_matrix(keys, policy, tmp_path, which):
    from sklearn import feature_extraction

    if which == "CountVectorizer":
        v = feature_extraction.text.CountVectorizer().fit(["apple pear fig"])
        v.vocabulary_["apple"] = 2**31 - 1
    else:
        v = feature_extraction.DictVectorizer(sparse=False).fit([{"a": 1, "b": 2}])
        v.vocabulary_["a"] = 2**31 - 1
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(v), modelseal.UnsafeContentError)
    assert "vocabulary_" in str(err)


def test_multilabel_binarizer_cache_that_disagrees_with_its_classes(policy):
    from sklearn.preprocessing import MultiLabelBinarizer

    mlb = MultiLabelBinarizer().fit([["a"], ["b"]])
    mlb._cached_dict = {"a": 2**31 - 1, "b": 0}
    _refused(policy, mlb, "_cached_dict")


@pytest.mark.parametrize("which", ["KNeighborsClassifier", "RadiusNeighborsClassifier"])
def test_brute_neighbours_whose_training_rows_are_gone(keys, policy, tmp_path, which):
    from sklearn import neighbors

    X, y = load_iris(return_X_y=True)
    m = getattr(neighbors, which)(algorithm="brute").fit(X, y)
    m._fit_X = np.zeros((0, 4))
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(m), modelseal.UnsafeContentError)
    assert "n_samples_fit_" in str(err)


def test_a_compiled_function_is_held_only_where_real_models_hold_it(keys, policy, tmp_path):
    from sklearn.cluster._kmeans import _kmeans_single_lloyd
    from sklearn.preprocessing import FunctionTransformer

    ft = FunctionTransformer(func=_kmeans_single_lloyd, kw_args={"centers_init": np.zeros((2, 1))})
    ft.fit(np.zeros((2, 1)))
    err = assert_refused_both_ways(keys, policy, tmp_path, _joblib_bytes(ft), modelseal.UnsafeContentError)
    assert "only sklearn.cluster._bisect_k_means.BisectingKMeans._kmeans_single" in str(err)
    import functools

    inside = FunctionTransformer(func=functools.partial(np.log1p)).fit(np.zeros((2, 1)))
    inside.func = functools.partial(_kmeans_single_lloyd, np.zeros((2, 1)))
    _refused(policy, inside, "functools.partial")


@pytest.mark.parametrize(
    "module,name", [("pickle", "loads"), ("_pickle", "loads"), ("joblib.numpy_pickle", "load"), ("numpy", "loads")]
)
def test_a_pickle_nested_in_a_bytes_value_is_never_unpickled(keys, policy, tmp_path, module, name):
    # A second-stage pickle carried as a bytes value, handed to a function that unpickles it.
    inner = pickle.dumps(Reduce(os.system, (f"touch {MARK}",)), 2)
    payload = call(module, name, b"B" + len(inner).to_bytes(4, "little") + inner)
    assert_refused_both_ways(keys, policy, tmp_path, payload, modelseal.DisallowedGlobalError, "global")
