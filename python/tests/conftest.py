"""Each test gets its own anti-rollback state (the per-user default lives under XDG_STATE_HOME),
so that tests sealing the same model name and version again do not see each other's records."""

import pytest


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
