"""Generates the shipped scikit-learn trust profile from real fitted models.

    python python/profiles/make_profiles.py [--out src/scan/profiles/sklearn-1.9.json]

Fits every estimator of ``all_estimators()`` and the composites of ``models.py``, saves each with
``joblib.dump`` as ``modelseal.dump`` does, and reads the bytes back with the restricted
unpickler's recorder: every global the pickles name, what it resolves to, and how the pickle uses
it (called with arguments, built with ``__new__``, or referenced as a value). The profile is that
set of exact names, nothing more:

* classes, with the ways they were built;
* reconstructors: only those the restricted unpickler audits (``RECONSTRUCTORS``);
* functions (values only, never called while loading): only those on :data:`FUNCTIONS` below,
  each with its reason. A function seen in a model but not on that list stops the generator.

The output records the library versions it ran on; the Rust static check and the Python loader
both read it (``modelseal::models::globals``). Runs from the source tree (the recorder is
``python/python/modelseal/_unpickle.py``, loaded by path) with scikit-learn, numpy, scipy, joblib
and pandas installed.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import models  # noqa: E402

#: Functions fitted models hold as values (scorers, selectors, FunctionTransformer), each a pure
#: computation on arrays: no file, process, network or import access, no callable argument it
#: calls back with attacker data. A function not listed here never loads by default.
FUNCTIONS = {
    "numpy.log1p": "ufunc: elementwise log(1 + x)",
    "numpy.expm1": "ufunc: elementwise exp(x) - 1",
    "sklearn.feature_selection._univariate_selection.f_classif": "ANOVA F-value of features (array arithmetic)",
    "sklearn.feature_selection._mutual_info.mutual_info_classif": "mutual information estimate (nearest-neighbour counts)",
    "sklearn.metrics._classification.accuracy_score": "metric: fraction of equal labels",
    "sklearn.metrics._classification.f1_score": "metric: F1 from label counts",
    "sklearn.metrics._regression.r2_score": "metric: coefficient of determination",
    "sklearn.metrics._scorer._passthrough_scorer": "calls the estimator's own score method",
    "sklearn.metrics._classification.balanced_accuracy_score": "metric: mean per-class recall",
    "sklearn.cluster._kmeans._kmeans_single_lloyd": "one k-means run on arrays (BisectingKMeans)",
    "numpy.mean": "arithmetic mean (FeatureAgglomeration's pooling function)",
    "scipy._lib.array_api_compat.numpy._aliases.asarray": "array conversion (SplineTransformer)",
    "sklearn.utils.validation.check_array": "input validation of an array (no I/O)",
}

#: What the profile never lists, whatever models use it, and why. Models that need these are
#: reported as not loadable by default (the breadth test counts them as misses).
EXCLUDED = {
    "builtins.getattr": "returns any attribute of any object: with it one REDUCE calls anything",
    "scipy.stats._discrete_distns.": (
        "discrete distributions pickle bound methods through builtins.getattr"
    ),
    "scipy.stats._distn_infrastructure.rv_discrete_frozen": "holds a discrete distribution",
}


def _excluded(name: str) -> str:
    for key, why in EXCLUDED.items():
        if name == key or (key.endswith(".") and name.startswith(key)):
            return why
    return ""

# Which estimators fail to fit is not a generator error: they are reported and skipped.


def _record(model: object, seen: dict) -> None:
    import joblib

    buf = io.BytesIO()
    joblib.dump(model, buf)
    buf.seek(0)
    _unpickle().Recorder(buf, seen).load()


@functools.lru_cache(maxsize=None)
def _unpickle():
    """The package's restricted unpickler, loaded from the source tree (it imports nothing of the
    package), so that the generator runs before the package is built."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "modelseal", "_unpickle.py")
    spec = importlib.util.spec_from_file_location("modelseal_unpickle_source", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="sklearn", choices=["sklearn", *models.THIRD_PARTY])
    ap.add_argument("--out", default=None, help="output JSON (default: src/scan/profiles/<profile>-<major.minor>.json)")
    args = ap.parse_args()
    profiles_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "scan", "profiles")

    import joblib
    import scipy
    import sklearn

    seen: dict = {}
    fitted, failed = 0, []
    if args.profile == "sklearn":
        cases = list(models.estimators()) + list(models.composites())
        dist, module, base = "scikit-learn", sklearn, {}
    else:
        # A third-party profile lists only what its models need beyond @sklearn, which it is
        # used with (`@sklearn,@xgboost`).
        dist, modname = models.THIRD_PARTY[args.profile]
        module = __import__(modname)
        cases = list(models.third_party(args.profile))
        mm = ".".join(sklearn.__version__.split(".")[:2])
        with open(os.path.join(profiles_dir, f"sklearn-{mm}.json")) as f:
            b = json.load(f)
        base = {**b["classes"], **b["reconstructors"], **b["functions"]}
    for case in cases:
        if isinstance(case.model, BaseException):
            failed.append(f"{case.name}: cannot be fitted here ({type(case.model).__name__}: {case.model})")
            continue
        _record(case.model, seen)
        fitted += 1

    classes, functions, reconstructors, problems = {}, {}, {}, []
    excluded = {}
    for name in sorted(seen):
        rec = seen[name]
        if name in base:
            continue
        why = _excluded(name) or _excluded(rec["canonical"])
        if why:
            excluded[name] = why
            continue
        if rec["kind"] == "class":
            classes[name] = {"canonical": rec["canonical"], "uses": sorted(rec["uses"])}
        elif rec["kind"] == "reconstructor":
            reconstructors[name] = {"canonical": rec["canonical"]}
        else:
            if "call" in rec["uses"]:
                problems.append(f"{name}: a function called while loading")
            if name not in FUNCTIONS:
                problems.append(f"{name}: a function not on the audited FUNCTIONS list")
                continue
            functions[name] = {"canonical": rec["canonical"], "reason": FUNCTIONS[name]}
    for f in failed:
        print("not fitted:", f, file=sys.stderr)
    for name, why in excluded.items():
        print(f"excluded: {name}: {why}", file=sys.stderr)
    if problems:
        for p in problems:
            print("refused:", p, file=sys.stderr)
        return 1

    major_minor = ".".join(module.__version__.split(".")[:2])
    profile = {
        "profile": args.profile,
        "applies_to": {dist: major_minor},
        "generated_by": "python/profiles/make_profiles.py",
        "generated_on": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "joblib": joblib.__version__,
            dist: module.__version__,
        },
        "models": fitted,
        "classes": classes,
        "reconstructors": reconstructors,
        "functions": functions,
        "excluded": excluded,
    }
    out = args.out or os.path.join(profiles_dir, f"{args.profile}-{major_minor}.json")
    with open(out, "w") as f:
        json.dump(profile, f, indent=1, sort_keys=True)
        f.write("\n")
    print(
        f"{out}: {len(classes)} classes, {len(reconstructors)} reconstructors, {len(functions)} "
        f"functions from {fitted} fitted models ({len(failed)} not fitted)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
