"""The restricted unpickler that :func:`modelseal.load` reads joblib files with.

It replaces ``joblib.load`` rather than wrapping it. Every rule is enforced by the unpickler's own
opcode handlers, so it holds in any thread and for the nested pickles of object arrays (which this
module reads itself, with the same policy and budget):

* ``find_class`` is the check. A global is looked up by its exact fully qualified name in the
  policy *before* its module is imported, and the object it resolves to must be the listed one:
  its canonical ``__module__.__qualname__`` must equal what the policy recorded for that name
  (``sklearn.base.os.system`` resolves to ``os.system`` and is refused even if listed). Modules
  are never returned.
* ``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``INST`` and ``OBJ`` call only objects that came out of
  ``find_class`` in this load, and only the way the policy allows for that name: a class recorded
  as constructed with arguments (``call``), or with ``__new__`` and no arguments (``new``), or one
  of the audited reconstructors in :data:`RECONSTRUCTORS`, each of which checks its arguments
  before it runs. Functions on the policy's function list are values only and are never called
  during loading.
* ``BUILD`` sets state only on an object an allowed call created in this load, at most once,
  never on a class, function or module. The state of native types is validated first
  (:data:`STATE_CHECKS` and the array and dtype checks): numpy arrays and dtypes, scikit-learn's
  ``Tree``, the histogram gradient boosting predictors, the neighbours' KD / ball trees and their
  metrics, scipy.stats distributions.
* After unpickling, :func:`validate` walks the object graph and runs the checks that involve
  several objects (an estimator and its trees, libsvm's arrays, sparse matrices, random states)
  on the final objects, which nothing can change any more.
* ``APPEND(S)``, ``SETITEM(S)`` and ``ADDITEMS`` act only on plain lists, dicts (and allowed dict
  subclasses) and sets; persistent ids, extension codes and out-of-band buffers are refused.
* Every array's size is bounded by the bytes actually present and by the caller's ``max_bytes``
  before anything is allocated.

``Recorder`` is the same unpickler with every global admitted and every use recorded: the profile
generator (``python/profiles/make_profiles.py``) runs it on real fitted models.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import sys
import types
from pickle import _Unpickler  # type: ignore[attr-defined]
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

# Pickle opcodes (pickle.py's constants are bytes; the dispatch table is keyed by their int value).
_REDUCE = pickle.REDUCE[0]
_BUILD = pickle.BUILD[0]
_NEWOBJ = pickle.NEWOBJ[0]
_NEWOBJ_EX = pickle.NEWOBJ_EX[0]
_INST = pickle.INST[0]
_OBJ = pickle.OBJ[0]
_APPEND = pickle.APPEND[0]
_APPENDS = pickle.APPENDS[0]
_SETITEM = pickle.SETITEM[0]
_SETITEMS = pickle.SETITEMS[0]
_ADDITEMS = pickle.ADDITEMS[0]
_PERSID = pickle.PERSID[0]
_BINPERSID = pickle.BINPERSID[0]
_EXT1 = pickle.EXT1[0]
_EXT2 = pickle.EXT2[0]
_EXT4 = pickle.EXT4[0]
_NEXT_BUFFER = pickle.NEXT_BUFFER[0]
_READONLY_BUFFER = pickle.READONLY_BUFFER[0]

#: The name of joblib's array record class.
WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"

#: Object-flag bits of a numpy dtype (NPY_ITEM_REFCOUNT | NPY_LIST_PICKLE | NPY_ITEM_IS_POINTER):
#: what only a dtype holding Python objects carries. With NPY_ITEM_REFCOUNT set, numpy treats the
#: item's bytes as object pointers. (NPY_NEEDS_INIT, 0x08, is also set on 'U' dtypes, and
#: NPY_NEEDS_PYAPI, 0x10, on plain structured dtypes such as scikit-learn's tree node record.)
_OBJECT_FLAGS = 0x01 | 0x02 | 0x04

#: Deepest nesting of tuples and frozensets (real models nest a few levels).
_MAX_NESTING = 100

#: Largest number of dimensions of an array (numpy's own maximum is 64).
_MAX_NDIM = 64


class Refused(Exception):
    """A rule of the restricted unpickler refused the pickle. ``kind`` is ``"global"`` (a global
    outside the policy, ``.name`` set) or ``"content"`` (anything else)."""

    def __init__(self, kind: str, message: str, name: Optional[str] = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


def _content(message: str) -> Refused:
    return Refused("content", message)


def canonical(obj: Any) -> Optional[str]:
    """The name an object really lives under: ``__module__.__qualname__`` for classes and functions
    (numpy ufuncs included), or None for anything else (modules, instances, loaders...)."""
    if isinstance(obj, types.ModuleType):
        return None
    if not (isinstance(obj, type) or callable(obj)):
        return None
    try:
        module = getattr(obj, "__module__", None)
        qual = getattr(obj, "__qualname__", None)
    except Exception:
        return None
    if isinstance(module, str) and isinstance(qual, str) and module and qual:
        return f"{module}.{qual}"
    return None


class Entry:
    """What the policy says of one global: its kind (``class``, ``function`` or
    ``reconstructor``), the ways it may be called (``call``: with arguments, ``new``: ``__new__``
    without arguments), and the canonical name it must resolve to."""

    __slots__ = ("kind", "uses", "canonical")

    def __init__(self, kind: str, uses: Iterable[str], canonical_name: str) -> None:
        self.kind = kind
        self.uses: FrozenSet[str] = frozenset(uses)
        self.canonical = canonical_name


class Policy:
    """The globals one load admits: exact names (from a profile or the caller) and explicit
    ``pkg.*`` prefixes. Built by :func:`modelseal.load` from what the native module resolved."""

    def __init__(
        self,
        entries: Any,
        prefixes: Iterable[str] = (),
    ) -> None:
        # name -> Entry, or the native module's (kind, canonical, uses) tuple, turned into an
        # Entry on first use (a profile lists hundreds of names; a model uses a few dozen).
        # `entries` is a dict or the native ResolvedGlobals: anything with get(name).
        self.entries = entries
        self.seen: Dict[str, Entry] = {}
        self.prefixes = tuple(prefixes)

    def lookup(self, name: str) -> Optional[Entry]:
        e = self.seen.get(name)
        if e is None:
            found = self.entries.get(name)
            if isinstance(found, tuple):
                found = Entry(found[0], found[2], found[1])
            if found is not None:
                e = self.seen[name] = found
        if e is not None:
            return e
        for p in self.prefixes:
            if name.startswith(p + "."):
                # A prefix admits classes (either way of construction) and values, resolved under the
                # same prefix; never a reconstructor.
                return Entry("prefix", ("call", "new"), "")
        return None


class Budget:
    """Bytes of array data one load may materialise (shared by nested unpicklers)."""

    def __init__(self, max_bytes: int) -> None:
        self.left = max_bytes

    def take(self, n: int, what: str) -> None:
        if n > self.left:
            raise _content(f"{what} needs {n} bytes, over the {self.left} bytes left of max_bytes")
        self.left -= n


def _remaining(file: Any) -> int:
    """Bytes left to read in `file` (a modelseal Buffer, BytesIO or a seekable file)."""
    pos = file.tell()
    try:
        size = len(file)
    except TypeError:
        if isinstance(file, io.BytesIO):
            size = file.getbuffer().nbytes
        else:
            end = file.seek(0, 2)
            file.seek(pos)
            size = end
    return max(0, size - pos)


def _np() -> Any:
    import numpy

    return numpy


def _shape(value: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(value, tuple) or len(value) > _MAX_NDIM:
        raise _content(f"{what}: the shape must be a tuple of at most {_MAX_NDIM} integers")
    out = []
    for d in value:
        if type(d) is not int or d < 0:  # noqa: E721 (exactly int: no numpy scalar, no bool)
            raise _content(f"{what}: shape entry {d!r} is not a non-negative int")
        out.append(d)
    return tuple(out)


def _count(shape: Tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


#: Most elements of an array whose items take no bytes (a 'V0' array of 10**9 elements costs no
#: data, yet every operation on it is a loop over 10**9 items).
_MAX_EMPTY_ITEMS = 1 << 16


def _check_count(count: int, dt: Any, what: str) -> None:
    if dt.itemsize == 0 and count > _MAX_EMPTY_ITEMS:
        raise _content(f"{what}: {count} items of zero bytes")


def check_dtype(dt: Any, what: str) -> Any:
    """Refuses a dtype whose layout could make numpy read raw bytes as object pointers: a
    structured or sub-array dtype holding objects, or any dtype whose flags claim objects that its
    fields do not have (or the reverse)."""
    np = _np()
    if not isinstance(dt, np.dtype):
        raise _content(f"{what}: the dtype is {type(dt).__name__}, not a numpy dtype")
    declares_objects = bool(dt.flags & _OBJECT_FLAGS)
    if dt.subdtype is not None:
        base, sub_shape = dt.subdtype
        check_dtype(base, f"{what} sub-array")
        if dt.itemsize != base.itemsize * _count(_shape(tuple(sub_shape), what)):
            raise _content(
                f"{what}: a sub-array dtype of {dt.itemsize} bytes for {tuple(sub_shape)} items of "
                f"{base.itemsize}"
            )
    if dt.fields is not None or dt.subdtype is not None:
        if dt.hasobject or declares_objects:
            raise _content(f"{what}: a structured or sub-array dtype holding Python objects")
        if dt.fields is not None:
            for name, field in dt.fields.items():
                fdt, offset = field[0], field[1]
                check_dtype(fdt, f"{what} field {name!r}")
                if offset < 0 or offset + fdt.itemsize > dt.itemsize:
                    raise _content(f"{what}: field {name!r} lies outside the {dt.itemsize}-byte item")
    elif dt.kind == "O":
        if dt.itemsize != np.dtype(object).itemsize:
            raise _content(f"{what}: an object dtype of item size {dt.itemsize}")
    elif declares_objects or dt.hasobject:
        raise _content(f"{what}: a {dt.kind!r} dtype flagged as holding Python objects")
    return dt


def _check_dtype_state(inst: Any, state: Any) -> None:
    """BUILD on a numpy dtype: the state numpy's ``__setstate__`` reads, checked before it is
    applied (the dtype is checked again as a whole wherever an array uses it)."""
    np = _np()
    if not isinstance(state, tuple) or not 8 <= len(state) <= 9:
        raise _content("numpy dtype state: not a tuple of 8 or 9 items")
    flags = state[7]
    if type(flags) is not int:  # noqa: E721
        raise _content("numpy dtype state: flags are not an int")
    fields = state[4]
    if fields is not None:
        if not isinstance(fields, dict):
            raise _content("numpy dtype state: fields are not a dict")
        for f in fields.values():
            if not isinstance(f, tuple) or not 2 <= len(f) <= 3 or not isinstance(f[0], np.dtype):
                raise _content("numpy dtype state: a field is not (dtype, offset[, title])")
            check_dtype(f[0], "numpy dtype state field")
            if f[0].hasobject:
                raise _content("numpy dtype state: a structured dtype holding Python objects")
    if state[2] is not None:
        sub = state[2]
        if not isinstance(sub, tuple) or len(sub) != 2 or not isinstance(sub[0], np.dtype):
            raise _content("numpy dtype state: the sub-array is not (dtype, shape)")
        check_dtype(sub[0], "numpy dtype sub-array")
    has_fields_or_sub = fields is not None or state[2] is not None
    if not has_fields_or_sub:
        # A plain dtype must keep the object flags numpy gave it when REDUCE built it.
        if (flags & _OBJECT_FLAGS) != (inst.flags & _OBJECT_FLAGS):
            raise _content(
                f"numpy dtype state: flags {flags:#x} differ from those of a {inst.str!r} dtype "
                f"({inst.flags:#x})"
            )
    elif flags & _OBJECT_FLAGS:
        # No field holds objects (checked above), so no object flag may be set.
        raise _content(f"numpy dtype state: flags {flags:#x} claim objects no field holds")


def _check_array_state(inst: Any, state: Any, budget: Budget) -> None:
    """BUILD on a numpy array: ``(version, shape, dtype, is_fortran, data)``. Object arrays take a
    list of exactly `count` items; other arrays exactly `count * itemsize` bytes."""
    np = _np()
    if type(inst) is not np.ndarray and type(inst) is not np.ma.MaskedArray:
        raise _content(f"array state on a {type(inst).__name__}")
    if type(inst) is np.ma.MaskedArray:
        if not isinstance(state, tuple) or len(state) != 7:
            raise _content("masked array state: not a tuple of 7 items")
        _version, shape, dt, fortran, raw, mask, _fill = state
        _check_array_state(np.empty(0).view(np.ndarray), (1, shape, dt, fortran, raw), budget)
        mask_dt = np.ma.make_mask_descr(dt)
        _check_array_state(np.empty(0).view(np.ndarray), (1, shape, mask_dt, fortran, mask), budget)
        return
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise _content("numpy array state: not a tuple of 4 or 5 items")
    shape, dt, data = (state[1], state[2], state[-1]) if len(state) == 5 else state[0:2] + state[3:]
    shape = _shape(shape, "numpy array state")
    dt = check_dtype(dt, "numpy array state")
    count = _count(shape)
    _check_count(count, dt, "numpy array state")
    if dt.hasobject:
        if not isinstance(data, list) or len(data) != count:
            raise _content(
                f"numpy object array state: {count} items declared, data is "
                f"{type(data).__name__}" + (f" of {len(data)}" if isinstance(data, list) else "")
            )
        budget.take(count * dt.itemsize, "an object array")
        return
    if not isinstance(data, (bytes, bytearray)) or len(data) != count * dt.itemsize:
        got = len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__
        raise _content(
            f"numpy array state: {count} x {dt.itemsize} bytes declared, data holds {got}"
        )
    budget.take(len(data), "an array")


# ---------------------------------------------------------------------------------------------
# scikit-learn's native state


def _struct_array(value: Any, what: str, dtype: Any = None, ndim: int = 1) -> Any:
    np = _np()
    if type(value) is not np.ndarray or value.ndim != ndim:
        raise _content(f"{what}: not a {ndim}-d numpy array")
    if dtype is not None and value.dtype != dtype:
        raise _content(f"{what}: dtype {value.dtype} is not {dtype}")
    return value


def _check_children(left: Any, right: Any, n: int, what: str) -> Any:
    """Node i is a leaf (both children -1) or has both children in (i, n): in range, and after it,
    so that every walk from the root ends at a leaf."""
    np = _np()
    idx = np.arange(n)
    leaf = (left == -1) & (right == -1)
    inner = ~leaf
    ok = leaf | ((left > idx) & (left < n) & (right > idx) & (right < n))
    if not bool(np.all(ok)):
        bad = int(np.flatnonzero(~ok)[0])
        raise _content(
            f"{what}: node {bad} of {n} has children ({int(left[bad])}, {int(right[bad])}) "
            "outside the tree"
        )
    return inner


def _check_tree_state(inst: Any, state: Any, budget: Budget) -> None:
    """sklearn.tree._tree.Tree: node count, child indices, feature indices and the value shape,
    which the Cython code trusts without checking."""
    np = _np()
    from sklearn.tree._tree import NODE_DTYPE

    if not isinstance(state, dict) or not {"node_count", "nodes", "values", "max_depth"} <= set(
        state
    ):
        raise _content("Tree state: not a dict with node_count, nodes, values, max_depth")
    nodes = _struct_array(state["nodes"], "Tree nodes", NODE_DTYPE)
    n = nodes.shape[0]
    if type(state["node_count"]) is not int or state["node_count"] != n or n == 0:  # noqa: E721
        raise _content(f"Tree state: node_count {state['node_count']!r} but {n} nodes")
    if type(state["max_depth"]) is not int or not 0 <= state["max_depth"] < n:  # noqa: E721
        raise _content(f"Tree state: max_depth {state['max_depth']!r} for {n} nodes")
    inner = _check_children(nodes["left_child"], nodes["right_child"], n, "Tree")
    feature = nodes["feature"]
    if not bool(np.all((feature[inner] >= 0) & (feature[inner] < inst.n_features))):
        raise _content(f"Tree state: a split on a feature outside 0..{inst.n_features}")
    values = _struct_array(state["values"], "Tree values", np.dtype(np.float64), ndim=3)
    if values.shape != (n, inst.n_outputs, inst.max_n_classes):
        raise _content(
            f"Tree state: values of shape {values.shape}, expected "
            f"{(n, inst.n_outputs, inst.max_n_classes)}"
        )


#: Most features a Tree may declare (feature importances allocate one float per feature).
_MAX_TREE_FEATURES = 1 << 26


def _check_tree_args(args: Tuple[Any, ...], budget: Budget) -> None:
    """Tree(n_features, n_classes, n_outputs): the arrays the constructor allocates are sized by
    these integers."""
    np = _np()
    if len(args) != 3:
        raise _content("Tree(...): not 3 arguments")
    n_features, n_classes, n_outputs = args
    if type(n_features) is not int or type(n_outputs) is not int:  # noqa: E721
        raise _content("Tree(...): n_features and n_outputs must be ints")
    n_classes = _struct_array(n_classes, "Tree n_classes")
    if n_classes.dtype.kind not in "iu" or n_classes.shape[0] != n_outputs or n_outputs < 1:
        raise _content(f"Tree(...): n_classes {n_classes.shape} for {n_outputs} outputs")
    if not 1 <= n_features <= _MAX_TREE_FEATURES or int(np.min(n_classes)) < 1:
        raise _content(f"Tree(...): {n_features} features (at most {_MAX_TREE_FEATURES}) or no classes")
    budget.take(8 * n_outputs, "Tree(...)")


def _check_predictor_state(inst: Any, state: Any, budget: Budget) -> None:
    """HistGradientBoosting's TreePredictor: the nodes array the Cython predictor walks."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    if not isinstance(state, dict) or "nodes" not in state:
        raise _content("TreePredictor state: no nodes")
    nodes = _struct_array(state["nodes"], "TreePredictor nodes")
    if nodes.dtype.names != PREDICTOR_RECORD_DTYPE.names:
        raise _content("TreePredictor nodes: not the predictor record dtype")
    n = nodes.shape[0]
    if n == 0:
        raise _content("TreePredictor: no nodes")
    leaf = nodes["is_leaf"].astype(bool)
    left, right = nodes["left"].astype("int64"), nodes["right"].astype("int64")
    # Leaves carry left = right = 0 in the predictor's records; make them -1 for the check.
    left[leaf] = -1
    right[leaf] = -1
    _check_children(left, right, n, "TreePredictor")
    if bool((nodes["feature_idx"][~leaf] < 0).any()):
        raise _content("TreePredictor: a negative feature index")
    for key in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        b = _struct_array(state.get(key), f"TreePredictor {key}", ndim=2)
        cat = nodes["is_categorical"].astype(bool) & ~leaf
        if cat.any() and int(nodes["bitset_idx"][cat].max()) >= b.shape[0]:
            raise _content(f"TreePredictor: a bitset index outside {key}")


def _trees_in(value: Any) -> List[Any]:
    from sklearn.tree._classes import BaseDecisionTree

    np = _np()
    items = value.ravel().tolist() if isinstance(value, np.ndarray) else value
    if not isinstance(items, (list, tuple)):
        return []
    return [e for e in items if isinstance(e, BaseDecisionTree)]


def _check_binary_tree_state(inst: Any, state: Any, budget: Budget) -> None:
    """sklearn.neighbors KDTree / BallTree: the index and node arrays the Cython queries use
    unchecked."""
    np = _np()
    if not isinstance(state, tuple) or len(state) != 13:
        raise _content("neighbors tree state: not a tuple of 13 items")
    data, idx, node_data, node_bounds = state[0], state[1], state[2], state[3]
    leaf_size, n_levels, n_nodes = state[4], state[5], state[6]
    data = _struct_array(data, "neighbors tree data", np.dtype(np.float64), ndim=2)
    n_samples, n_features = data.shape
    idx = _struct_array(idx, "neighbors tree idx_array")
    if idx.dtype.kind not in "iu" or idx.shape[0] != n_samples:
        raise _content("neighbors tree: idx_array is not one index per sample")
    if n_samples and not bool(np.array_equal(np.sort(idx), np.arange(n_samples))):
        raise _content("neighbors tree: idx_array is not a permutation of the samples")
    node_data = _struct_array(node_data, "neighbors tree node_data")
    if any(type(v) is not int for v in (leaf_size, n_levels, n_nodes)):  # noqa: E721
        raise _content("neighbors tree: sizes are not ints")
    if node_data.shape[0] != n_nodes or n_nodes < 1 or n_nodes != 2**n_levels - 1:
        raise _content(f"neighbors tree: {node_data.shape[0]} nodes, n_nodes {n_nodes}, levels {n_levels}")
    start, end = node_data["idx_start"], node_data["idx_end"]
    if not bool(np.all((start >= 0) & (start <= end) & (end <= n_samples))):
        raise _content("neighbors tree: a node's index range lies outside idx_array")
    # Queries descend from node i to 2i+1 and 2i+2 unless i is a leaf: every node whose children
    # would lie past n_nodes must be one.
    inner = ~node_data["is_leaf"].astype(bool)
    if bool(inner[(n_nodes - 1) // 2 :].any()):
        raise _content("neighbors tree: a node of the last level is not a leaf")
    bounds = _struct_array(node_bounds, "neighbors tree node_bounds", np.dtype(np.float64), ndim=3)
    rows = 2 if type(inst).__name__ == "KDTree" else 1
    if bounds.shape != (rows, n_nodes, n_features):
        raise _content(f"neighbors tree: node_bounds of shape {bounds.shape}")
    weights = state[12]
    if weights is not None:
        w = _struct_array(weights, "neighbors tree sample_weight", np.dtype(np.float64))
        if w.shape[0] != n_samples:
            raise _content("neighbors tree: sample_weight is not one per sample")
    _check_metric(state[11])


#: Distance metrics whose state is fully checked: these read nothing but X.
_PLAIN_METRICS = (
    "EuclideanDistance",
    "ManhattanDistance",
    "ChebyshevDistance",
    "MinkowskiDistance",
)


def _check_metric(metric: Any) -> None:
    name = type(metric).__name__
    if type(metric).__module__ != "sklearn.metrics._dist_metrics" or not name.startswith(
        _PLAIN_METRICS
    ):
        raise _content(f"neighbors tree: metric {name} is not one whose state is checked")


def _check_metric_state(inst: Any, state: Any, budget: Budget) -> None:
    """DistanceMetric state ``(p, vec, mat)``: the plain metrics only, without weights (a weight
    vector's length is trusted by the Cython code)."""
    np = _np()
    _check_metric(inst)
    if not isinstance(state, tuple) or len(state) != 3:
        raise _content("distance metric state: not (p, vec, mat)")
    p, vec, mat = state
    if not isinstance(p, float) or not p >= 1:
        raise _content(f"distance metric state: p = {p!r}")
    for a in (vec, mat):
        if type(a) is not np.ndarray or a.size > 1:
            raise _content("distance metric state: weights or a matrix are not supported")


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # both NaN (scipy's badvalue)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_value, a, b))
    return type(a) is type(b) and a == b


def _check_rv_generic_state(inst: Any, state: Any, budget: Budget) -> None:
    """A scipy.stats distribution object (``loguniform``, ``uniform``...): its
    ``__setstate__`` ``exec()``s ``_parse_arg_template`` from the state, so the state must be
    exactly scipy's own for the distribution of that name (the one freezing the public instance
    ``scipy.stats.<name>`` of the same class builds); only the random state may differ."""
    np = _np()
    import scipy.stats
    from scipy.stats._distn_infrastructure import rv_continuous

    if not isinstance(inst, rv_continuous):
        raise _content(f"scipy.stats: {type(inst).__name__} is not a continuous distribution")
    name = state.get("name") if isinstance(state, dict) else None
    if not isinstance(name, str) or not name.isidentifier():
        raise _content("scipy.stats distribution state: no distribution name")
    public = getattr(scipy.stats, name, None)
    if type(public) is not type(inst):
        raise _content(f"scipy.stats distribution state: {name!r} is not a {type(inst).__name__}")
    # What freezing scipy's own instance builds (rv_generic.freeze): its state is the reference.
    expected = type(public)(**public._updated_ctor_param()).__getstate__()
    if state.keys() != expected.keys():
        raise _content(f"scipy.stats distribution state of {name!r}: other attributes than scipy's")
    for k, v in state.items():
        if k == "_random_state":
            if v is not None and not isinstance(v, (np.random.RandomState, np.random.Generator)):
                raise _content(f"scipy.stats distribution state of {name!r}: a random state of type {type(v).__name__}")
        elif not _same_value(v, expected[k]):
            raise _content(f"scipy.stats distribution state of {name!r}: {k} differs from scipy's")


def _number(v: Any) -> bool:
    np = _np()
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or isinstance(v, np.number)


def _check_rv_frozen_state(inst: Any, state: Any, budget: Budget) -> None:
    """A frozen scipy.stats distribution: numeric arguments and a distribution object (whose own
    state was checked when it was built)."""
    from scipy.stats._distn_infrastructure import rv_continuous

    if not isinstance(state, dict) or not set(state) <= {"args", "kwds", "dist", "a", "b"}:
        raise _content("frozen distribution state: unexpected attributes")
    args, kwds = state.get("args", ()), state.get("kwds", {})
    if not isinstance(args, tuple) or not all(_number(a) for a in args):
        raise _content("frozen distribution state: arguments are not numbers")
    if not isinstance(kwds, dict) or not all(isinstance(k, str) and _number(v) for k, v in kwds.items()):
        raise _content("frozen distribution state: keyword arguments are not numbers")
    if not isinstance(state.get("dist"), rv_continuous):
        raise _content("frozen distribution state: dist is not a continuous distribution")
    for k in ("a", "b"):
        if k in state and not _number(state[k]):
            raise _content(f"frozen distribution state: {k} is not a number")


#: BUILD state checks, by the canonical name of the instance's class.
STATE_CHECKS: Dict[str, Callable[[Any, Any, Budget], None]] = {
    "sklearn.tree._tree.Tree": _check_tree_state,
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": _check_predictor_state,
    "sklearn.neighbors._kd_tree.KDTree": _check_binary_tree_state,
    "sklearn.neighbors._ball_tree.BallTree": _check_binary_tree_state,
}


def _state_check_for(cls: type) -> List[Callable[[Any, Any, Budget], None]]:
    checks = []
    name = canonical(cls)
    if name in STATE_CHECKS:
        checks.append(STATE_CHECKS[name])
    mods = {c.__module__ for c in cls.__mro__}
    if "sklearn.metrics._dist_metrics" in mods:
        checks.append(_check_metric_state)
    names = {canonical(c) for c in cls.__mro__}
    if "scipy.stats._distn_infrastructure.rv_generic" in names:
        checks.append(_check_rv_generic_state)
    if "scipy.stats._distn_infrastructure.rv_frozen" in names:
        checks.append(_check_rv_frozen_state)
    return checks


# ---------------------------------------------------------------------------------------------
# audited reconstructors: each checks its arguments, then does what the real function does


def _is(obj: Any, name: str) -> bool:
    return canonical(obj) == name


def _rc_reconstruct(u: "SafeUnpickler", args: Tuple[Any, ...]) -> Any:
    """numpy's ``_reconstruct(ndarray, (0,), b'b')``: an empty array that BUILD then fills."""
    np = _np()
    if len(args) != 3 or args[0] not in (np.ndarray, np.ma.MaskedArray) or args[1] != (0,):
        raise _content("numpy _reconstruct: only an empty ndarray (as numpy pickles arrays)")
    if args[2] not in (b"b", "b"):
        raise _content("numpy _reconstruct: only the placeholder dtype 'b'")
    return np.ndarray.__new__(args[0], (0,), "b")


def _rc_mareconstruct(u: "SafeUnpickler", args: Tuple[Any, ...]) -> Any:
    """numpy.ma's ``_mareconstruct(MaskedArray, ndarray, (0,), 'b')``."""
    np = _np()
    if (
        len(args) != 4
        or args[0] is not np.ma.MaskedArray
        or args[1] is not np.ndarray
        or args[2] != (0,)
        or args[3] not in ("b", b"b")
    ):
        raise _content("numpy.ma _mareconstruct: only an empty MaskedArray")
    return np.ma.core._mareconstruct(*args)


def _rc_scalar(u: "SafeUnpickler", args: Tuple[Any, ...]) -> Any:
    """numpy's ``scalar(dtype, data)``: a numpy scalar from exactly `itemsize` raw bytes, or the
    object itself for an object dtype."""
    np = _np()
    if len(args) not in (1, 2):
        raise _content("numpy scalar: not (dtype[, data])")
    dt = check_dtype(args[0], "numpy scalar")
    if dt.hasobject:
        if dt.kind != "O":
            raise _content("numpy scalar: a structured dtype holding objects")
    elif len(args) != 2 or not isinstance(args[1], bytes) or len(args[1]) != dt.itemsize:
        raise _content(f"numpy scalar: data is not exactly {dt.itemsize} bytes")
    return np._core.multiarray.scalar(*args)


def _rc_frombuffer(u: "SafeUnpickler", args: Tuple[Any, ...]) -> Any:
    """numpy's ``_frombuffer(buf, dtype, shape, order)`` (protocol 5 arrays)."""
    np = _np()
    if len(args) != 4 or not isinstance(args[0], (bytes, bytearray)):
        raise _content("numpy _frombuffer: not (bytes, dtype, shape, order)")
    dt = check_dtype(args[1], "numpy _frombuffer")
    shape = _shape(args[2], "numpy _frombuffer")
    if dt.hasobject or len(args[0]) != _count(shape) * dt.itemsize or args[3] not in ("C", "F"):
        raise _content("numpy _frombuffer: data does not match the shape and dtype")
    u.budget.take(len(args[0]), "an array")
    return np._core.numeric._frombuffer(*args)


#: The bit generators whose state is checked after loading (see _check_random).
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM")


def _bit_generator_name(value: Any) -> str:
    np = _np()
    if isinstance(value, str) and value in _BIT_GENERATORS:
        return value
    if isinstance(value, type) and value in tuple(getattr(np.random, n) for n in _BIT_GENERATORS):
        return value.__name__
    raise _content(f"numpy random: {value!r} is not one of numpy's bit generators")


def _rc_bit_generator_ctor(u: "SafeUnpickler", args: Tuple[Any, ...]) -> Any:
    """numpy's ``__bit_generator_ctor(name_or_class)``: a fresh bit generator of a known kind,
    whose state BUILD then sets (numpy checks that state)."""
    if len(args) > 1:
        raise _content("numpy __bit_generator_ctor: more than one argument")
    name = _bit_generator_name(args[0] if args else "MT19937")
    return getattr(_np().random, name)()


def _rc_seeded_ctor(kind: str) -> Callable[["SafeUnpickler", Tuple[Any, ...]], Any]:
    """numpy's ``__randomstate_ctor`` / ``__generator_ctor``: given a bit generator instance (as
    numpy >= 2 pickles them) or a name and the bit generator constructor."""

    def reconstruct(u: "SafeUnpickler", args: Tuple[Any, ...]) -> Any:
        np = _np()
        if len(args) == 1 and isinstance(args[0], np.random.BitGenerator):
            bit_gen = args[0]
        elif len(args) in (1, 2) and isinstance(args[0], str):
            if len(args) == 2 and not _is(args[1], "numpy.random._pickle.__bit_generator_ctor"):
                raise _content(f"numpy {kind}: the constructor is not numpy's")
            bit_gen = getattr(np.random, _bit_generator_name(args[0]))()
        else:
            raise _content(f"numpy {kind}: not a bit generator")
        return np.random.RandomState(bit_gen) if kind == "RandomState" else np.random.Generator(bit_gen)

    return reconstruct


def _rc_copyreg_reconstructor(u: "SafeUnpickler", args: Tuple[Any, ...]) -> Any:
    """``copyreg._reconstructor(cls, object, None)`` (protocols 0 and 1): ``object.__new__(cls)``
    for a class allowed to be built that way."""
    if len(args) != 3 or args[1] is not object or args[2] is not None:
        raise _content("copyreg._reconstructor: only (cls, object, None)")
    u.require_use(args[0], "new", "copyreg._reconstructor")
    return object.__new__(args[0])


def _rc_new_obj(u: "SafeUnpickler", args: Tuple[Any, ...]) -> Any:
    """scikit-learn's ``newObj(cls)`` (how its KD / ball trees and distance metrics pickle):
    ``cls.__new__(cls)`` for an allowed class."""
    if len(args) != 1:
        raise _content("newObj: not one argument")
    u.require_use(args[0], "new", "newObj")
    return args[0].__new__(args[0])


def _rc_pyx_unpickle(u: "SafeUnpickler", args: Tuple[Any, ...], func: Any) -> Any:
    """Cython's ``__pyx_unpickle_<Class>(cls, checksum, state)``: only for the class the function is
    named after, which must be allowed to be built with ``__new__``."""
    if len(args) != 3 or not isinstance(args[0], type) or type(args[1]) is not int:  # noqa: E721
        raise _content("Cython unpickle: not (cls, checksum, state)")
    expected = func.__name__[len("__pyx_unpickle_") :]
    if args[0].__name__ != expected or args[0].__module__ != func.__module__:
        raise _content(f"Cython unpickle: {func.__name__} asked to build {canonical(args[0])}")
    u.require_use(args[0], "new", func.__name__)
    if args[2] is not None and not isinstance(args[2], tuple):
        raise _content("Cython unpickle: the state is not a tuple")
    return func(*args)


#: The audited reconstructors, by canonical name: functions a pickle may call, each through a check
#: of its arguments. Nothing else that is not a class is ever called while loading.
RECONSTRUCTORS: Dict[str, Callable[["SafeUnpickler", Tuple[Any, ...]], Any]] = {
    "numpy._core.multiarray._reconstruct": _rc_reconstruct,
    "numpy._core.multiarray.scalar": _rc_scalar,
    "numpy._core.numeric._frombuffer": _rc_frombuffer,
    "numpy.ma.core._mareconstruct": _rc_mareconstruct,
    "numpy.random._pickle.__bit_generator_ctor": _rc_bit_generator_ctor,
    "numpy.random._pickle.__randomstate_ctor": _rc_seeded_ctor("RandomState"),
    "numpy.random._pickle.__generator_ctor": _rc_seeded_ctor("Generator"),
    "copyreg._reconstructor": _rc_copyreg_reconstructor,
    "sklearn.metrics._dist_metrics.newObj": _rc_new_obj,
    "sklearn.neighbors._kd_tree.newObj": _rc_new_obj,
    "sklearn.neighbors._ball_tree.newObj": _rc_new_obj,
}


#: Packages whose Cython classes pickle through ``__pyx_unpickle_<Class>`` functions that may be
#: called (for the class they are named after only).
_CYTHON_PICKLERS = ("sklearn.", "numpy.random.")


def reconstructor_for(name: str, func: Any) -> Optional[Callable[["SafeUnpickler", Tuple[Any, ...]], Any]]:
    r = RECONSTRUCTORS.get(name)
    if r is not None:
        return r
    short = name.rsplit(".", 1)[-1]
    if short.startswith("__pyx_unpickle_") and name.startswith(_CYTHON_PICKLERS):
        return lambda u, args: _rc_pyx_unpickle(u, args, func)
    return None


#: Arguments checks of classes called with arguments (REDUCE / INST), by canonical name.
def _check_bytearray_args(args: Tuple[Any, ...], budget: Budget) -> None:
    if len(args) > 2 or (args and not isinstance(args[0], (bytes, bytearray, str, list))):
        raise _content("bytearray(...): only from bytes, str or a list (never a size)")


def _check_dtype_args(args: Tuple[Any, ...], budget: Budget) -> None:
    # numpy pickles dtype(code, False, True): copy=True. Without the copy, dtype('f8') is numpy's
    # own float64 singleton, and BUILD would change it for the whole process.
    if (
        len(args) != 3
        or not isinstance(args[0], str)
        or len(args[0]) > 16
        or args[1] is not False
        or args[2] is not True
    ):
        raise _content("numpy dtype(...): only (type code, False, True), as numpy pickles dtypes")


def _check_no_size_args(args: Tuple[Any, ...], budget: Budget) -> None:
    for a in args:
        if type(a) is int and abs(a) > 1 << 20:  # noqa: E721
            raise _content(f"constructor argument {a} is too large")


def _check_defaultdict_args(args: Tuple[Any, ...], budget: Budget) -> None:
    import collections

    # The factory is called later, on every missing key: only plain containers and numbers.
    if len(args) > 1 or (args and args[0] not in (None, list, dict, set, int, float, collections.OrderedDict)):
        raise _content("collections.defaultdict(...): the factory is not a plain container type")


CALL_CHECKS: Dict[str, Callable[[Tuple[Any, ...], Budget], None]] = {
    "collections.defaultdict": _check_defaultdict_args,
    "builtins.bytearray": _check_bytearray_args,
    "numpy.dtype": _check_dtype_args,
    "sklearn.tree._tree.Tree": _check_tree_args,
}


# ---------------------------------------------------------------------------------------------
# the unpickler


#: What BUILD never sets state on: its ``__setstate__`` or ``__dict__`` would be the class's,
#: function's or module's own.
_NEVER_BUILT = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.BuiltinMethodType,
)


class SafeUnpickler(_Unpickler):
    """A pure-Python unpickler of joblib files (and of plain pickles with ``joblib=False``) whose
    opcode handlers enforce the policy. One instance per stream; nested object-array pickles get a
    child that shares the policy, the approvals and the budget."""

    dispatch = _Unpickler.dispatch.copy()

    def __init__(
        self,
        file: Any,
        policy: Policy,
        budget: Budget,
        *,
        joblib: bool = True,
        parent: Optional["SafeUnpickler"] = None,
    ) -> None:
        super().__init__(file)
        self.file_handle = file
        self.policy = policy
        self.budget = budget
        self.joblib = joblib
        # id(obj) -> (obj, name, entry): what find_class handed out in this load.
        self.approved: Dict[int, Tuple[Any, str, Entry]] = (
            parent.approved if parent is not None else {}
        )
        # The objects allowed calls created in this load, by id (kept alive here): BUILD sets
        # state only on those, and on each at most once, so nothing is changed after a check saw
        # it. Values: True once built.
        self.created: Dict[int, Tuple[Any, bool]] = parent.created if parent is not None else {}
        # Nesting depth of the tuples and frozensets built in this load (hashing a deeply nested
        # key overflows the C stack).
        self.depth: Dict[int, Tuple[Any, int]] = parent.depth if parent is not None else {}

    # -- globals -------------------------------------------------------------------------------

    def refuse_global(self, name: str, detail: str = "") -> Refused:
        return Refused("global", f"{name}{detail}", name)

    def entry_for(self, name: str, obj: Any) -> Optional[Entry]:
        return self.policy.lookup(name)

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if not isinstance(module, str) or not isinstance(name, str):
            raise self.refuse_global(f"{module!r}.{name!r}", " (not a name)")
        full = f"{module}.{name}"
        entry = self.policy.lookup(full)
        if entry is None:
            raise self.refuse_global(full)
        if any(not p.isidentifier() for p in full.split(".")):
            raise self.refuse_global(full, " (not a dotted name)")
        try:
            __import__(module, level=0)
            obj: Any = sys.modules[module]
            for part in name.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise _content(f"{full} cannot be imported here: {e}") from None
        real = canonical(obj)
        if real is None:
            raise self.refuse_global(full, " (a module or an object of unknown origin)")
        entry = self.admit(full, obj, real, entry)
        self.approved[id(obj)] = (obj, full, entry)
        return obj

    def admit(self, full: str, obj: Any, real: str, entry: Entry) -> Entry:
        if entry.kind == "prefix":
            if not any(real.startswith(p + ".") for p in self.policy.prefixes):
                raise self.refuse_global(full, f", which is {real}")
            return Entry("class" if isinstance(obj, type) else "function", entry.uses, real)
        if entry.kind == "listed":
            # Named by the caller: it must be what it says; a class may be built either way, any
            # other object is a value only.
            if real != full:
                raise self.refuse_global(full, f", which is {real}")
            return Entry("class" if isinstance(obj, type) else "function", entry.uses, real)
        if real != entry.canonical:
            raise self.refuse_global(full, f", which is {real}")
        if entry.kind == "class" and not isinstance(obj, type):
            raise self.refuse_global(full, " (listed as a class, is not one)")
        if entry.kind == "reconstructor" and reconstructor_for(real, obj) is None:
            raise self.refuse_global(full, " (no audited reconstructor of that name)")
        return entry

    def approval(self, obj: Any) -> Optional[Tuple[Any, str, Entry]]:
        a = self.approved.get(id(obj))
        return a if a is not None and a[0] is obj else None

    def require_use(self, cls: Any, use: str, how: str) -> Tuple[str, Entry]:
        a = self.approval(cls)
        if a is None or a[2].kind not in ("class", "prefix") or not isinstance(cls, type):
            raise _content(f"{how} on {_describe(cls)}, which is not an allowed class")
        if use not in a[2].uses:
            raise _content(f"{how} builds {a[1]}, which the policy does not allow to be built that way")
        return a[1], a[2]

    # -- calls ---------------------------------------------------------------------------------

    def call(self, func: Any, args: Any, how: str) -> Any:
        if not isinstance(args, tuple):
            raise _content(f"{how}: the arguments are not a tuple")
        a = self.approval(func)
        if a is None:
            raise _content(f"{how} calls {_describe(func)}, which did not come from an allowed global")
        obj, name, entry = a
        if entry.kind == "reconstructor":
            rc = reconstructor_for(entry.canonical, func)
            assert rc is not None  # admit() checked
            return self.built(rc(self, args))
        if entry.kind in ("class", "prefix") and isinstance(func, type):
            if "call" not in entry.uses:
                raise _content(f"{how} calls {name}, which the policy does not allow to be called")
            check = CALL_CHECKS.get(entry.canonical)
            if check is not None:
                check(args, self.budget)
            else:
                _check_no_size_args(args, self.budget)
            return self.built(func(*args))
        raise _content(f"{how} calls {name}, a function the policy lists as a value only")

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        stack[-1] = self.call(stack[-1], args, "REDUCE")

    dispatch[_REDUCE] = load_reduce

    def new(self, cls: Any, args: Any, kwargs: Any, how: str) -> Any:
        if not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise _content(f"{how}: malformed arguments")
        self.require_use(cls, "new" if not args and not kwargs else "new_args", how)
        if args or kwargs:
            _check_no_size_args(tuple(args) + tuple(kwargs.values()), self.budget)
        return self.built(cls.__new__(cls, *args, **kwargs))

    def built(self, value: Any) -> Any:
        if id(value) not in self.created:
            self.created[id(value)] = (value, False)
        return value

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self.new(cls, args, {}, "NEWOBJ"))

    dispatch[_NEWOBJ] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self.new(cls, args, kwargs, "NEWOBJ_EX"))

    dispatch[_NEWOBJ_EX] = load_newobj_ex

    def _instantiate(self, klass: Any, args: Any) -> None:
        # INST and OBJ (protocols 0 and 1), as pickle._Unpickler._instantiate decides.
        if args or not isinstance(klass, type) or hasattr(klass, "__getinitargs__"):
            value = self.call(klass, tuple(args), "INST/OBJ")
        else:
            value = self.new(klass, (), {}, "INST/OBJ")
        self.append(value)

    # -- state ---------------------------------------------------------------------------------

    def load_build(self) -> None:
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        np = _np()
        if isinstance(inst, _NEVER_BUILT):
            raise _content(f"BUILD on {_describe(inst)}")
        cls = type(inst)
        made = self.created.get(id(inst))
        if made is None or made[0] is not inst:
            raise _content(f"BUILD on {_describe(inst)}, which no allowed call created in this load")
        if made[1]:
            raise _content(f"a second BUILD on the same {_describe(cls)}")
        self.created[id(inst)] = (inst, True)
        if isinstance(inst, np.ndarray):
            _check_array_state(inst, state, self.budget)
        elif isinstance(inst, np.dtype):
            if self.approval(np.dtype) is None:
                raise _content("BUILD on a numpy dtype, and numpy.dtype is not allowed")
            _check_dtype_state(inst, state)
        else:
            for check in self.state_checks(cls):
                check(inst, state, self.budget)
        stack.append(state)
        _Unpickler.load_build(self)
        if self.joblib and canonical(cls) == WRAPPER:
            wrapper = stack.pop()
            stack.append(self.read_array(wrapper))
        elif canonical(cls) == WRAPPER:
            raise _content("a joblib array record inside an object array")

    dispatch[_BUILD] = load_build

    def state_checks(self, cls: type) -> List[Callable[[Any, Any, Budget], None]]:
        return _state_check_for(cls)

    def child(self) -> "SafeUnpickler":
        """The unpickler of a nested object-array pickle: plain pickle rules (joblib 1.6 reads it
        with a fresh ``pickle._Unpickler``), the same policy, approvals and budget."""
        return SafeUnpickler(self.file_handle, self.policy, self.budget, joblib=False, parent=self)

    def read_array(self, wrapper: Any) -> Any:
        """What joblib's ``NumpyArrayWrapper.read_array`` does, bounded: the array's bytes follow
        the record in the stream (or, for object arrays, a nested pickle)."""
        np = _np()
        d = getattr(wrapper, "__dict__", {})
        if d.get("subclass") is not np.ndarray:
            raise _content(f"joblib array record of subclass {_describe(d.get('subclass'))}")
        shape = _shape(d.get("shape"), "joblib array record")
        order = d.get("order")
        if order not in ("C", "F"):
            raise _content(f"joblib array record: order {order!r}")
        dt = check_dtype(d.get("dtype"), "joblib array record")
        count = _count(shape)
        _check_count(count, dt, "joblib array record")
        if dt.hasobject:
            array = self.child().load()
            if type(array) is not np.ndarray or not array.dtype.hasobject or array.shape != shape:
                raise _content("joblib object array: the nested pickle is not the array declared")
            return array
        nbytes = count * dt.itemsize
        align = d.get("numpy_array_alignment_bytes")
        if align is not None:
            pad = self.file_handle.read(1)
            n = pad[0] if pad else 0
            if n > 16 or len(self.file_handle.read(n)) != n:
                raise _content("joblib array record: bad alignment padding")
        left = _remaining(self.file_handle)
        if nbytes > left:
            raise _content(f"joblib array record declares {nbytes} bytes, {left} are left in the file")
        self.budget.take(nbytes, "a joblib array")
        # Read straight into the array's memory (bounded above by the bytes left in the file):
        # one copy, and no second buffer of the array's size.
        array = np.empty(count, dtype=dt)
        view = memoryview(array.view(np.uint8)) if nbytes else memoryview(b"")
        readinto = self.file_handle.readinto
        got = 0
        while got < nbytes:
            n = readinto(view[got:])
            if not n:
                raise _content("joblib array record: the data ended early")
            got += n
        del view
        if order == "F":
            array = array.reshape(shape[::-1]).transpose()
        else:
            array = array.reshape(shape)
        return array

    # -- containers ----------------------------------------------------------------------------

    def nested(self, value: Any, items: Iterable[Any]) -> Any:
        d = 1
        for x in items:
            e = self.depth.get(id(x))
            if e is not None and e[0] is x and e[1] + 1 > d:
                d = e[1] + 1
        if d > _MAX_NESTING:
            raise _content(f"tuples or frozensets nested more than {_MAX_NESTING} deep")
        self.depth[id(value)] = (value, d)
        return value

    def load_tuple(self) -> None:
        items = self.pop_mark()
        self.append(self.nested(tuple(items), items))

    dispatch[pickle.TUPLE[0]] = load_tuple

    def load_tuple1(self) -> None:
        self.stack[-1] = self.nested((self.stack[-1],), self.stack[-1:])

    dispatch[pickle.TUPLE1[0]] = load_tuple1

    def load_tuple2(self) -> None:
        items = self.stack[-2:]
        self.stack[-2:] = [self.nested(tuple(items), items)]

    dispatch[pickle.TUPLE2[0]] = load_tuple2

    def load_tuple3(self) -> None:
        items = self.stack[-3:]
        self.stack[-3:] = [self.nested(tuple(items), items)]

    dispatch[pickle.TUPLE3[0]] = load_tuple3

    def load_frozenset(self) -> None:
        items = self.pop_mark()
        # Each item's depth was bounded when it was built, so hashing them here is bounded too.
        self.append(self.nested(frozenset(items), items))

    dispatch[pickle.FROZENSET[0]] = load_frozenset

    def load_append(self) -> None:
        value = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not list:
            raise _content(f"APPEND to {_describe(target)}")
        target.append(value)

    dispatch[_APPEND] = load_append

    def load_appends(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not list:
            raise _content(f"APPENDS to {_describe(target)}")
        target.extend(items)

    dispatch[_APPENDS] = load_appends

    def _dict_target(self, target: Any, how: str) -> None:
        if type(target) is dict:
            return
        if isinstance(target, dict) and self.approval(type(target)) is not None:
            return
        raise _content(f"{how} on {_describe(target)}")

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        target = self.stack[-1]
        self._dict_target(target, "SETITEM")
        target[key] = value

    dispatch[_SETITEM] = load_setitem

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        self._dict_target(target, "SETITEMS")
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    dispatch[_SETITEMS] = load_setitems

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise _content(f"ADDITEMS to {_describe(target)}")
        target.update(items)

    dispatch[_ADDITEMS] = load_additems

    def _refuse_opcode(self, what: str) -> Callable[["SafeUnpickler"], None]:
        raise _content(f"the pickle uses {what}, which modelseal never loads")

    dispatch[_PERSID] = lambda self: self._refuse_opcode("a persistent id")
    dispatch[_BINPERSID] = lambda self: self._refuse_opcode("a persistent id")
    dispatch[_EXT1] = lambda self: self._refuse_opcode("a copyreg extension code")
    dispatch[_EXT2] = lambda self: self._refuse_opcode("a copyreg extension code")
    dispatch[_EXT4] = lambda self: self._refuse_opcode("a copyreg extension code")
    dispatch[_NEXT_BUFFER] = lambda self: self._refuse_opcode("an out-of-band buffer")
    dispatch[_READONLY_BUFFER] = lambda self: self._refuse_opcode("an out-of-band buffer")

    def persistent_load(self, pid: Any) -> Any:
        raise _content("the pickle uses a persistent id, which modelseal never loads")


def _describe(obj: Any) -> str:
    name = canonical(obj)
    if name is not None:
        return name
    if isinstance(obj, types.ModuleType):
        return f"the module {obj.__name__}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"


class Recorder(SafeUnpickler):
    """:class:`SafeUnpickler` admitting every global and recording how each is used: the profile
    generator's instrument. Never use it on untrusted bytes."""

    dispatch = SafeUnpickler.dispatch.copy()

    def __init__(self, file: Any, seen: Dict[str, Dict[str, Any]], **kw: Any) -> None:
        super().__init__(file, _RecordingPolicy(), Budget(1 << 62), **kw)
        self.seen = seen

    def child(self) -> "SafeUnpickler":
        return Recorder(self.file_handle, self.seen, joblib=False, parent=self)

    def state_checks(self, cls: type) -> List[Callable[[Any, Any, Budget], None]]:
        return []  # it records names; the breadth test runs the checks on the same models

    def admit(self, full: str, obj: Any, real: str, entry: Entry) -> Entry:
        kind = "class" if isinstance(obj, type) else (
            "reconstructor" if reconstructor_for(real, obj) is not None else "function"
        )
        rec = self.seen.setdefault(full, {"kind": kind, "canonical": real, "uses": set()})
        return Entry(kind, ("call", "new", "new_args"), real)

    def require_use(self, cls: Any, use: str, how: str) -> Tuple[str, Entry]:
        name, entry = super().require_use(cls, use, how)
        self.seen[name]["uses"].add(use)
        return name, entry

    def call(self, func: Any, args: Any, how: str) -> Any:
        a = self.approval(func)
        if a is not None and a[2].kind == "class":
            self.seen[a[1]]["uses"].add("call")
        if a is not None and a[2].kind == "function":
            self.seen[a[1]]["uses"].add("call")
            return self.built(func(*args))
        return super().call(func, args, how)


class _RecordingPolicy(Policy):
    def __init__(self) -> None:
        super().__init__({})

    def lookup(self, name: str) -> Optional[Entry]:
        return Entry("any", ("call", "new", "new_args"), "")


# ---------------------------------------------------------------------------------------------
# after loading: the live object graph


def _check_tree_estimator(est: Any) -> None:
    """A fitted decision tree splits on the features it accepts; an ensemble that calls its trees
    without input checks (forests, gradient boosting, isolation forest) holds trees that all take
    its number of features, and gradient boosting's stage array fits its output array."""
    from sklearn.tree._classes import BaseDecisionTree
    from sklearn.tree._tree import Tree

    np = _np()
    d = vars(est)
    n_features = d.get("n_features_in_")
    if isinstance(est, BaseDecisionTree) and "tree_" in d:
        tree = d["tree_"]
        if type(tree) is not Tree or type(n_features) is not int or tree.n_features != n_features:  # noqa: E721
            raise _content(
                f"{type(est).__name__}: tree_ takes {getattr(tree, 'n_features', '?')} features, "
                f"the estimator {n_features!r}"
            )
    if "estimators_" in d and not isinstance(est, BaseDecisionTree):
        members = d["estimators_"]
        members = members.ravel().tolist() if isinstance(members, np.ndarray) else members
        if not isinstance(members, list):
            raise _content(f"{type(est).__name__}: estimators_ is not a list or array")
        for t in members:
            # The ensemble reads t.tree_ as a Tree without a check: every member is a tree.
            if not isinstance(t, BaseDecisionTree) or type(vars(t).get("tree_")) is not Tree:
                raise _content(f"{type(est).__name__}: a member of estimators_ is {_describe(t)}")
            if d.get("n_features_in_") != vars(t).get("n_features_in_"):
                raise _content(
                    f"{type(est).__name__}: a tree takes {vars(t).get('n_features_in_')!r} "
                    f"features, the ensemble {n_features!r}"
                )
        if "n_trees_per_iteration_" in d:
            _check_gb_width(est, d)


def _check_gb_width(est: Any, d: dict) -> None:
    """Gradient boosting adds stage k of each iteration into column k of an array as wide as the
    init estimator's output: the stage array, the trees per iteration and the classes agree."""
    from sklearn.base import is_classifier

    np = _np()
    stages = d["estimators_"]
    k = d["n_trees_per_iteration_"]
    if is_classifier(est):
        n_classes = d.get("n_classes_")
        if type(n_classes) is not int or n_classes < 2:  # noqa: E721
            raise _content(f"{type(est).__name__}: n_classes_ is {n_classes!r}")
        expected = 1 if n_classes == 2 else n_classes
        init = d.get("init_")
        if not (isinstance(init, str) and init == "zero"):
            classes = getattr(init, "classes_", None)
            if not isinstance(classes, np.ndarray) or classes.shape != (n_classes,):
                raise _content(f"{type(est).__name__}: init_ does not predict {n_classes} classes")
    else:
        expected = 1
    if k != expected or not isinstance(stages, np.ndarray) or stages.ndim != 2 or stages.shape[1] != k:
        raise _content(
            f"{type(est).__name__}: estimators_ of shape {getattr(stages, 'shape', None)} for "
            f"{k!r} trees per iteration (expected {expected})"
        )


def _check_hgb(est: Any) -> None:
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    d = vars(est)
    if "_predictors" not in d:
        return
    n_features = d.get("n_features_in_")
    if type(n_features) is not int or not isinstance(d["_predictors"], list):  # noqa: E721
        raise _content("HistGradientBoosting: malformed fitted state")
    # Categorical splits index per-feature bitsets through a map as long as is_categorical_.
    np = _np()
    mapper = d.get("_bin_mapper")
    cat = getattr(mapper, "is_categorical_", None)
    if cat is None:
        cat = np.zeros(n_features, dtype=bool)
    if type(cat) is not np.ndarray or cat.shape != (n_features,):
        raise _content("HistGradientBoosting: is_categorical_ is not one flag per feature")
    thresholds = getattr(mapper, "bin_thresholds_", None)
    if not isinstance(thresholds, list) or len(thresholds) != n_features:
        raise _content("HistGradientBoosting: bin_thresholds_ is not one array per feature")
    cat = cat.astype(bool)
    for stage in d["_predictors"]:
        if not isinstance(stage, list):
            raise _content("HistGradientBoosting: a stage is not a list of predictors")
        for p in stage:
            if type(p) is not TreePredictor:
                raise _content("HistGradientBoosting: a predictor is not a TreePredictor")
            inner = ~p.nodes["is_leaf"].astype(bool)
            features = p.nodes["feature_idx"][inner]
            if bool((features >= n_features).any()):
                raise _content(f"HistGradientBoosting: a split on a feature outside 0..{n_features}")
            on_cat = p.nodes["is_categorical"][inner].astype(bool)
            if bool((on_cat & ~cat[features]).any()):
                raise _content("HistGradientBoosting: a categorical split on a numeric feature")


def _check_live_tree(t: Any) -> None:
    """Every Tree was given its nodes: a Tree built without state has none, and predict would walk
    a null node array. (Its nodes were checked at its one BUILD, and Tree copies them there, so
    nothing done later to the arrays reaches it.)"""
    if t.node_count < 1:
        raise _content("a Tree without nodes")


def _check_predictor(p: Any) -> None:
    _check_predictor_state(p, vars(p), Budget(1 << 62))


def _check_binary_tree(t: Any) -> None:
    _check_binary_tree_state(t, t.__getstate__(), Budget(1 << 62))


def _check_live_metric(m: Any) -> None:
    _check_metric_state(m, m.__getstate__(), Budget(1 << 62))


def _check_libsvm(est: Any) -> None:
    """The arrays scikit-learn hands to libsvm's predict, which trusts their sizes."""
    np = _np()
    d = vars(est)
    if "support_" not in d:
        return  # unfitted
    classification = est._impl in ("c_svc", "nu_svc")

    def arr(name: str, dtype: Any, ndim: int) -> Any:
        a = d.get(name)
        if type(a) is not np.ndarray or a.dtype != dtype or a.ndim != ndim:
            raise _content(f"{type(est).__name__}: {name} is not a {ndim}-d {np.dtype(dtype)} array")
        return a

    support = arr("support_", np.int32, 1)
    n_sv = support.shape[0]
    n_support = arr("_n_support", np.int32, 1)
    dual = d.get("_dual_coef_")
    shape_fit = d.get("shape_fit_")
    if not isinstance(shape_fit, tuple) or len(shape_fit) != 2:
        raise _content(f"{type(est).__name__}: shape_fit_ is not (n_samples, n_features)")
    if n_sv and (int(support.min()) < 0 or int(support.max()) >= shape_fit[0]):
        raise _content(f"{type(est).__name__}: a support index outside the training samples")
    sv = d.get("support_vectors_")
    if d.get("_sparse"):
        import scipy.sparse

        if type(sv) is not scipy.sparse.csr_matrix or type(dual) is not scipy.sparse.csr_matrix:
            raise _content(f"{type(est).__name__}: sparse support vectors are not CSR matrices")
        _check_sparse(sv)
        _check_sparse(dual)
        sv_shape, dual_shape = sv.shape, dual.shape
        # libsvm copies (n_class - 1) * n_SV values from the dual's data as if it were dense.
        if dual.nnz != dual_shape[0] * dual_shape[1] or dual.data.dtype != np.float64:
            raise _content(f"{type(est).__name__}: a sparse dual that does not store every value")
    else:
        sv = arr("support_vectors_", np.float64, 2)
        dual = arr("_dual_coef_", np.float64, 2)
        sv_shape, dual_shape = sv.shape, dual.shape
    precomputed = est.kernel == "precomputed" or callable(est.kernel)
    if not precomputed and sv_shape != (n_sv, d.get("n_features_in_")):
        raise _content(f"{type(est).__name__}: support vectors of shape {sv_shape} for {n_sv} indices")
    if classification:
        n_class = n_support.shape[0]
        pairs = n_class * (n_class - 1) // 2
        if n_class < 2 or int(n_support.min()) < 0 or int(n_support.sum()) != n_sv:
            raise _content(f"{type(est).__name__}: _n_support {n_support.tolist()} for {n_sv} vectors")
        if dual_shape != (n_class - 1, n_sv):
            raise _content(f"{type(est).__name__}: dual coefficients of shape {dual_shape}")
    else:
        pairs = 1
        if n_support.shape[0] != 2 or dual_shape != (1, n_sv):
            raise _content(f"{type(est).__name__}: dual coefficients of shape {dual_shape}")
    if arr("_intercept_", np.float64, 1).shape[0] != pairs:
        raise _content(f"{type(est).__name__}: {d['_intercept_'].shape[0]} intercepts for {pairs}")
    for name in ("_probA", "_probB"):
        if arr(name, np.float64, 1).shape[0] not in (0, pairs):
            raise _content(f"{type(est).__name__}: {name} of {d[name].shape[0]} for {pairs} pairs")


def _check_params(est: Any) -> None:
    """scikit-learn's own validation of every hyper-parameter (types and ranges), which it runs in
    fit only: a pickle can hold values fit would never accept, and compiled code trusts them (a
    FeatureHasher with n_features=0 divides by zero in C)."""
    import warnings

    validate = getattr(est, "_validate_params", None)
    if validate is None or not hasattr(est, "_parameter_constraints"):
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validate()
    except Exception as e:
        raise _content(f"{type(est).__name__}: a parameter fit would refuse: {e}") from None


def _check_kmeans(est: Any) -> None:
    """k-means: the compiled assignment code takes the number of features from the centres."""
    np = _np()
    d = vars(est)
    if "cluster_centers_" not in d:
        return
    n_features = d.get("n_features_in_")
    centers = d["cluster_centers_"]
    if type(centers) is not np.ndarray or centers.ndim != 2 or centers.shape[1] != n_features:
        raise _content(f"{type(est).__name__}: cluster centres of shape {getattr(centers, 'shape', None)} for {n_features!r} features")
    node = d.get("_bisecting_tree")
    stack = [node] if node is not None else []
    while stack:
        n = stack.pop()
        c = vars(n).get("center")
        if type(c) is not np.ndarray or c.shape != (n_features,):
            raise _content(f"{type(est).__name__}: a bisecting centre of shape {getattr(c, 'shape', None)}")
        stack.extend(x for x in (vars(n).get("left"), vars(n).get("right")) if x is not None)


#: Highest B-spline degree loaded (SplineTransformer uses 3; evaluation is quadratic in it).
_MAX_SPLINE_DEGREE = 64


def _check_bspline(b: Any) -> None:
    """scipy's BSpline, evaluated by C++ that trusts the knots, coefficients and degree to agree:
    the invariants its constructor checks, on the object as loaded."""
    np = _np()
    from scipy.interpolate import BSpline

    d = vars(b)
    t, c, k = d.get("_t"), d.get("_c"), d.get("k")
    if type(k) is not int or not 0 <= k <= _MAX_SPLINE_DEGREE:  # noqa: E721
        raise _content(f"BSpline: degree {k!r} (at most {_MAX_SPLINE_DEGREE})")
    ok = (
        type(t) is np.ndarray
        and t.dtype == np.float64
        and t.ndim == 1
        and t.flags.c_contiguous
        and type(c) is np.ndarray
        and c.dtype in (np.float64, np.complex128)
        and c.ndim >= 1
        and c.flags.c_contiguous
    )
    if not ok:
        raise _content("BSpline: knots or coefficients are not contiguous float arrays")
    n = t.shape[0] - k - 1
    if n < k + 1 or c.shape[0] < n or not np.isfinite(t).all() or (np.diff(t) < 0).any():
        raise _content(f"BSpline: {t.shape[0]} knots, {c.shape[0]} coefficients and degree {k} disagree")
    axis = d.get("axis")
    if type(axis) is not int or not 0 <= axis < c.ndim or d.get("extrapolate") not in (True, False, "periodic"):  # noqa: E721
        raise _content("BSpline: axis or extrapolate out of range")
    if d.get("_asarray") is not BSpline(np.arange(4.0), np.zeros(2), 1)._asarray:
        raise _content("BSpline: _asarray is not scipy's array conversion")


def _int_array(a: Any, lo: int, hi: int) -> bool:
    np = _np()
    return (
        type(a) is np.ndarray
        and a.ndim == 1
        and a.dtype.kind in "iu"
        and (a.size == 0 or (int(a.min()) >= lo and int(a.max()) < hi))
    )


def _check_onehot(est: Any) -> None:
    """OneHotEncoder: transform builds a sparse matrix whose column offsets come from
    `_n_features_outs` and whose codes come from categories_, the infrequent mappings and the
    dropped indices; they must agree, or scipy's C++ writes outside the output."""
    d = vars(est)
    if "categories_" not in d:
        return
    cats = d["categories_"]
    if not isinstance(cats, list) or len(cats) != d.get("n_features_in_"):
        raise _content("OneHotEncoder: categories_ is not one array per feature")
    n = [len(c) for c in cats]
    infrequent = d.get("_infrequent_indices") if d.get("_infrequent_enabled") else None
    after = list(n)
    for key, per in (("_infrequent_indices", infrequent), ("_default_to_infrequent_mappings", d.get("_default_to_infrequent_mappings") if infrequent is not None else None)):
        if per is None:
            continue
        if not isinstance(per, list) or len(per) != len(n):
            raise _content(f"OneHotEncoder: {key} is not one entry per feature")
    if infrequent is not None:
        for i, idx in enumerate(infrequent):
            if idx is None:
                continue
            if not _int_array(idx, 0, n[i]):
                raise _content("OneHotEncoder: an infrequent index outside its categories")
            after[i] = n[i] - idx.size + 1
        for i, m in enumerate(d.get("_default_to_infrequent_mappings") or []):
            if m is not None and not (_int_array(m, 0, after[i]) and m.size == n[i]):
                raise _content("OneHotEncoder: an infrequent mapping outside the grouped categories")
    drops = d.get("_drop_idx_after_grouping")
    if drops is not None:
        for i, k in enumerate(drops):
            if k is not None and not 0 <= int(k) < after[i]:
                raise _content("OneHotEncoder: a dropped index outside the categories")
    if list(d.get("_n_features_outs", [])) != est._compute_n_features_outs():
        raise _content("OneHotEncoder: _n_features_outs does not follow from the categories")


def _check_vocabulary(est: Any) -> None:
    """Count / tf-idf / dict vectorizers: vocabulary_ maps terms to columns 0..n-1, each once
    (transform builds a sparse matrix from these indices; scipy's C++ trusts them)."""
    d = vars(est)
    vocab = d.get("vocabulary_")
    if vocab is None:
        return
    if not isinstance(vocab, dict) or sorted(vocab.values()) != list(range(len(vocab))):
        raise _content(f"{type(est).__name__}: vocabulary_ is not a numbering 0..n-1 of its terms")
    names = d.get("feature_names_")
    if names is not None and len(names) != len(vocab):
        raise _content(f"{type(est).__name__}: feature_names_ and vocabulary_ differ in length")


def _check_label_binarizer(est: Any) -> None:
    """MultiLabelBinarizer's cache maps each class to its column."""
    d = vars(est)
    cache = d.get("_cached_dict")
    if cache is not None and cache != dict(zip(d.get("classes_", []), range(len(d.get("classes_", []))))):
        raise _content("MultiLabelBinarizer: _cached_dict does not follow from classes_")


def _check_neighbors(est: Any) -> None:
    """Nearest-neighbour estimators: the compiled brute-force search divides by the rows of
    _fit_X and trusts them to match n_samples_fit_ and the features."""
    np = _np()
    d = vars(est)
    if "_fit_X" not in d or "n_samples_fit_" not in d:
        return
    x, n = d["_fit_X"], d["n_samples_fit_"]
    if d.get("_fit_method") not in ("brute", "kd_tree", "ball_tree"):
        raise _content(f"{type(est).__name__}: unknown _fit_method {d.get('_fit_method')!r}")
    rows = x.shape[0] if hasattr(x, "shape") and len(x.shape) == 2 else None
    if type(n) is not int or n < 1 or rows != n:  # noqa: E721
        raise _content(f"{type(est).__name__}: _fit_X has {rows} rows for n_samples_fit_ {n!r}")
    if d.get("effective_metric_") != "precomputed" and x.shape[1] != d.get("n_features_in_"):
        raise _content(f"{type(est).__name__}: _fit_X has {x.shape[1]} columns for {d.get('n_features_in_')!r} features")
    tree = d.get("_tree")
    if tree is not None and np.asarray(tree.data).shape != x.shape:
        raise _content(f"{type(est).__name__}: the search tree holds other data than _fit_X")


#: Functions that are safe only where real models keep them: compiled code that trusts its
#: arguments' shapes. Each may appear only as the named attribute of the named class.
_BOUND_FUNCTIONS = {
    "sklearn.cluster._kmeans._kmeans_single_lloyd": (
        "sklearn.cluster._bisect_k_means.BisectingKMeans",
        "_kmeans_single",
    ),
}


def _check_sparse(m: Any) -> None:
    """scipy.sparse compressed matrices: scipy's own full format check (index bounds, lengths,
    sortedness of indptr), whose absence lets C++ kernels read outside the arrays."""
    try:
        if hasattr(m, "check_format"):
            m.check_format(full_check=True)
        else:
            m._check()
    except Exception as e:
        raise _content(f"a {type(m).__name__} with inconsistent index arrays: {e}") from None


def _check_random(obj: Any) -> None:
    """numpy's random states: a known bit generator whose position indexes inside its key."""
    np = _np()
    bg = obj._bit_generator if isinstance(obj, np.random.RandomState) else (
        obj.bit_generator if isinstance(obj, np.random.Generator) else obj
    )
    if type(bg) not in tuple(getattr(np.random, n) for n in _BIT_GENERATORS):
        raise _content(f"a numpy random state on {type(bg).__name__}, whose state is not checked")
    st = bg.state
    if type(bg) is np.random.MT19937:
        key, pos = st["state"]["key"], st["state"]["pos"]
        if not (type(key) is np.ndarray and key.shape == (624,) and 0 <= int(pos) <= 624):
            raise _content("a MT19937 state whose position lies outside its key")
    seed = getattr(bg, "seed_seq", None) or getattr(bg, "_seed_seq", None)
    if seed is not None:
        _check_seed_sequence(seed)


def _check_seed_sequence(seq: Any) -> None:
    np = _np()
    if isinstance(seq, np.random.SeedSequence):
        pool = seq.pool
        if type(pool) is not np.ndarray or pool.dtype != np.uint32 or pool.shape != (seq.pool_size,):
            raise _content("a SeedSequence whose pool does not match its pool_size")


def _graph_check(obj: Any) -> Optional[Callable[[Any], None]]:
    """The check of one live object after loading, by its class (None: nothing to check)."""
    np = _np()
    cls = type(obj)
    names = {canonical(c) for c in cls.__mro__}
    if isinstance(obj, np.ndarray):
        return lambda a: _check_count(a.size, check_dtype(a.dtype, "an array"), "an array")
    if isinstance(obj, (np.random.RandomState, np.random.Generator, np.random.BitGenerator)):
        return _check_random
    if isinstance(obj, np.random.SeedSequence):
        return _check_seed_sequence
    if "scipy.sparse._base._spbase" in names:
        return _check_sparse
    if "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in names:
        return _check_predictor
    if "sklearn.tree._tree.Tree" in names:
        return _check_live_tree
    if "sklearn.neighbors._binary_tree.BinaryTree" in names or cls.__module__ in (
        "sklearn.neighbors._kd_tree",
        "sklearn.neighbors._ball_tree",
    ) and hasattr(obj, "idx_array"):
        return _check_binary_tree
    if cls.__module__ == "sklearn.metrics._dist_metrics":
        return _check_live_metric
    if "scipy.interpolate._bsplines.BSpline" in names:
        return _check_bspline
    checks = []
    if "sklearn.base.BaseEstimator" in names:
        checks.append(_check_params)
    if "sklearn.neighbors._base.NeighborsBase" in names:
        checks.append(_check_neighbors)
    if "sklearn.preprocessing._encoders.OneHotEncoder" in names:
        checks.append(_check_onehot)
    if names & {
        "sklearn.feature_extraction.text.CountVectorizer",
        "sklearn.feature_extraction._dict_vectorizer.DictVectorizer",
    }:
        checks.append(_check_vocabulary)
    if "sklearn.preprocessing._label.MultiLabelBinarizer" in names:
        checks.append(_check_label_binarizer)
    if "sklearn.cluster._kmeans._BaseKMeans" in names:
        checks.append(_check_kmeans)
    if "sklearn.svm._base.BaseLibSVM" in names:
        checks.append(_check_libsvm)
    if names & {
        "sklearn.tree._classes.BaseDecisionTree",
        "sklearn.ensemble._forest.BaseForest",
        "sklearn.ensemble._gb.BaseGradientBoosting",
        "sklearn.ensemble._iforest.IsolationForest",
    }:
        checks.append(_check_tree_estimator)
    if "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.BaseHistGradientBoosting" in names:
        checks.append(_check_hgb)
    if checks:
        return lambda o: [c(o) for c in checks] and None
    return None


#: Most objects the post-load walk visits (each comes from at least one opcode of the pickle).
_MAX_GRAPH = 50_000_000


def _bound(v: Any) -> Optional[Tuple[str, str]]:
    if not callable(v) or isinstance(v, type):
        return None
    name = canonical(v)
    return _BOUND_FUNCTIONS.get(name) if name is not None else None


def validate(root: Any) -> None:
    """Walks the loaded object graph (containers, object arrays, instance dicts, partial objects
    and the state of the native neighbour trees) and runs the live checks on every object: the
    authoritative check of cross-object consistency, on the objects as they are once nothing can
    change them. A function of :data:`_BOUND_FUNCTIONS` may be referenced only as its owner's
    attribute."""
    import functools

    np = _np()
    seen: Set[int] = set()
    owners: Dict[int, Optional[str]] = {}  # id(instance __dict__) -> the instance's class
    keep = []  # keep visited objects alive so that ids are not reused during the walk

    def members(items: Iterable[Any], where: str) -> Iterable[Any]:
        for v in items:
            b = _bound(v)
            if b is not None:
                raise _content(f"{canonical(v)} held in {where}; only {b[0]}.{b[1]} may hold it")
            yield v

    if _bound(root) is not None:
        raise _content(f"the model is {canonical(root)} itself")
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            continue
        seen.add(id(obj))
        keep.append(obj)
        if len(seen) > _MAX_GRAPH:
            raise _content(f"the loaded model holds more than {_MAX_GRAPH} objects")
        check = _graph_check(obj)
        if check is not None:
            check(obj)
        if isinstance(obj, dict):
            owner = owners.get(id(obj))
            for k, v in obj.items():
                b = _bound(v)
                if b is not None and (owner, k) != b:
                    raise _content(
                        f"{canonical(v)} held as {k!r} of {owner or 'a dict'}; only "
                        f"{b[0]}.{b[1]} may hold it"
                    )
            stack.extend(members(obj.keys(), "a dict key"))
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(members(obj, f"a {type(obj).__name__}"))
        elif isinstance(obj, np.ndarray):
            if obj.dtype.hasobject and obj.dtype.fields is None:
                stack.extend(members(obj.ravel().tolist(), "an object array"))
        elif isinstance(obj, functools.partial):
            stack.extend(members((obj.func, obj.args, obj.keywords), "a functools.partial"))
        elif isinstance(obj, _NEVER_BUILT) or isinstance(obj, np.ufunc):
            continue  # a listed class or function itself, not state the pickle set
        else:
            d = getattr(obj, "__dict__", None)
            if isinstance(d, dict):
                owners[id(d)] = canonical(type(obj))
                stack.append(d)
            if check in (_check_binary_tree, _check_live_metric):
                stack.append(obj.__getstate__())


def load(file: Any, policy: Policy, max_bytes: int) -> Any:
    """Unpickles one joblib (or plain pickle) stream under `policy`, then validates the object
    graph it built. Raises :class:`Refused`."""
    u = SafeUnpickler(file, policy, Budget(max_bytes))
    try:
        obj = u.load()
        del u
        validate(obj)
        return obj
    except Refused:
        raise
    except RecursionError:
        raise _content("the pickle nests deeper than Python's recursion limit") from None
    except Warning:
        raise  # scikit-learn's InconsistentVersionWarning, raised as an error under "strict"
    except Exception as e:
        raise _content(f"the pickle is malformed: {type(e).__name__}: {e}") from None
