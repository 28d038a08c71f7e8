"""The opt-in profiles with the real libraries from PyPI: xgboost, lightgbm, catboost and
imbalanced-learn models load with ``allow_globals=DEFAULT_ALLOWED_GLOBALS + ("@<profile>",)`` and
predict identically, and are refused with the defaults alone (their classes are not on
``@sklearn``)."""

from __future__ import annotations

import os
import sys

import pytest

import modelseal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "profiles"))

import models  # noqa: E402

from test_modelseal import Keys  # noqa: E402


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    return Keys(tmp_path_factory.mktemp("third-party-keys"))


@pytest.mark.parametrize("profile", sorted(models.THIRD_PARTY))
def test_profile_loads_its_library_models(keys, tmp_path, profile):
    pytest.importorskip(models.THIRD_PARTY[profile][1])
    allow = modelseal.DEFAULT_ALLOWED_GLOBALS + (f"@{profile}",)
    cases = list(models.third_party(profile))
    assert cases
    for i, case in enumerate(cases):
        assert not isinstance(case.model, BaseException), f"{case.name}: {case.model}"
        path = tmp_path / f"{case.name}.mseal"
        modelseal.dump(case.model, path, signing_key=keys.key("alice"),
                       recipients=[keys.pub("bob")], name=f"{profile}-{i}", version="1.0.0")
        info = modelseal.verify(path, trust=keys.pub("alice"), identity=keys.key("bob"))
        assert models.THIRD_PARTY[profile][0] in info["manifest"]["requires"]
        with pytest.raises(modelseal.DisallowedGlobalError) as e:
            modelseal.load(path, trust=keys.pub("alice"), identity=keys.key("bob"))
        assert e.value.globals, case.name
        got = modelseal.load(path, trust=keys.pub("alice"), identity=keys.key("bob"),
                             allow_globals=allow)
        assert models.same_outputs(models.outputs(case.model, case.X), models.outputs(got, case.X)), case.name


def test_a_profile_for_another_release_is_refused_by_name(keys, tmp_path):
    from test_modelseal import seal_raw

    archive = tmp_path / "old.mseal"
    requires = modelseal._running_requires()
    requires["xgboost"] = "1.7.6"
    seal_raw(keys, b"\x80\x04N.", archive, requires=requires)
    with pytest.raises(modelseal.VersionMismatchError) as e:
        modelseal.load(archive, trust=keys.pub("alice"), identity=keys.key("bob"),
                       allow_globals=modelseal.DEFAULT_ALLOWED_GLOBALS + ("@xgboost",))
    assert "xgboost 1.7.6" in str(e.value) and "allow_globals=" in e.value.hint
