"""The opposite failure: real fitted scikit-learn models must load with the defaults.

Every estimator of ``all_estimators()`` and the realistic composites of
``python/profiles/models.py`` are sealed with ``modelseal.dump``, loaded with ``modelseal.load``
and its default ``allow_globals`` (``@sklearn``), and their outputs compared exactly with those
of the same model after a plain joblib round trip. The same archives must also pass the Rust check the CLI's
``open --allow-globals @sklearn`` runs (``untrusted_globals`` is that check). Fails below 99% of the
estimators or 95% of the composites, and prints every miss with its reason.
"""

from __future__ import annotations

import os
import re
import sys

import pytest

import modelseal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "profiles"))

import models  # noqa: E402

from test_modelseal import Keys  # noqa: E402


def _round_trip(keys: Keys, case: "models.Case", path) -> str:
    """'' when the model loads and predicts identically; else why not."""
    if isinstance(case.model, BaseException):
        return f"not fitted here: {type(case.model).__name__}: {case.model}"
    before = _reference(case)
    try:
        modelseal.dump(case.model, path, signing_key=keys.key("alice"),
                       recipients=[keys.pub("bob")], name=_archive_name(case.name), version="1.0.0",
                       force=True)
        untrusted = modelseal.untrusted_globals(path, trust=keys.pub("alice"), identity=keys.key("bob"))
        if any(untrusted.values()):
            return f"the CLI's @sklearn check refuses {untrusted}"
        got = modelseal.load(path, trust=keys.pub("alice"), identity=keys.key("bob"))
    except modelseal.RefusedError as e:
        return f"{type(e).__name__}: {e}"
    after = {k: v for k, v in models.outputs(got, case.X).items() if k in before}
    if not models.same_outputs(before, after):
        return "outputs differ"
    return ""


def _archive_name(case_name: str) -> str:
    """A model name of its own for each case: anti-rollback refuses a second, different model
    under one name and version from one signer."""
    return re.sub(r"[^A-Za-z0-9._/-]+", "-", case_name).strip("-./")[:100] or "m"


def _reference(case: "models.Case") -> dict:
    """The outputs to reproduce: those of the model after a plain joblib round trip (a pickle
    round trip may change the last bit of some float sums, with or without modelseal), for the
    methods that give the same result twice (a random DummyClassifier, BernoulliRBM's
    score_samples do not)."""
    import io

    import joblib

    once, twice = models.outputs(case.model, case.X), models.outputs(case.model, case.X)
    buf = io.BytesIO()
    joblib.dump(case.model, buf)
    buf.seek(0)
    ref = models.outputs(joblib.load(buf), case.X)
    return {
        k: ref[k] for k in once if models.same_outputs({k: once[k]}, {k: twice[k]})
    }


def _run(keys, tmp_path, cases, floor, what):
    misses = []
    total = 0
    for case in cases:
        total += 1
        why = _round_trip(keys, case, tmp_path / "m.mseal")
        if why:
            misses.append(f"{case.name}: {why}")
    loaded = total - len(misses)
    print(f"\n{what}: {loaded} of {total} load with the defaults and predict identically")
    for m in misses:
        print("  miss:", m)
    assert loaded >= floor * total, "\n".join(misses)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    return Keys(tmp_path_factory.mktemp("breadth-keys"))


def test_every_estimator_loads_with_the_defaults(keys, tmp_path):
    _run(keys, tmp_path, models.estimators(), 0.99, "all_estimators()")


def test_realistic_composites_load_with_the_defaults(keys, tmp_path):
    _run(keys, tmp_path, models.composites(), 0.95, "composites")
