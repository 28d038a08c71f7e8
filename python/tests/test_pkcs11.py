"""A PKCS#11 token key from Python (issue 15 §1): `signing_key=` takes an RFC 7512 URI, as the
CLI's `-k` does, with a real SoftHSM2 token made for the test. The archive verifies with the
token key's signing-only `.pub`; a wrong PIN is refused with a hint and leaves no file.

The module is loaded into this process, and SoftHSM2 reads SOFTHSM2_CONF once per process, so
this file runs its token tests in a subprocess each. Without SoftHSM2 the tests skip, unless CI is
set: then they fail."""

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "123456"


def _softhsm():
    if not (os.path.exists(MODULE) and shutil.which("softhsm2-util")):
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is missing and CI is set: .ci/run installs softhsm2")
        pytest.skip("SoftHSM2 (softhsm2-util, libsofthsm2.so) is not installed")


def _cli() -> str:
    cli = os.environ.get("MODELSEAL_CLI") or str(
        pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "modelseal"
    )
    if not os.path.exists(cli):
        if os.environ.get("CI"):
            pytest.fail(f"no modelseal binary at {cli}")
        pytest.skip(f"no modelseal binary at {cli}")
    return cli


@pytest.fixture
def token(tmp_path):
    _softhsm()
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "py", "--pin", PIN, "--so-pin", "654321"],
        env=env, check=True, capture_output=True,
    )
    pin = tmp_path / "pin"
    pin.write_text(PIN + "\n")
    pin.chmod(0o600)
    uri = f"pkcs11:token=py;object=signer?module-path={MODULE}&pin-source=file:{pin}"
    p = subprocess.run([_cli(), "keygen", "--pkcs11", uri, "-o", str(tmp_path / "signer")],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return tmp_path, env, uri


def _python(env, code: str):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True)


def test_dump_signs_with_a_token_key_and_the_signing_only_pub_verifies(token):
    d, env, uri = token
    p = _python(env, f"""
        import modelseal
        from sklearn.tree import DecisionTreeClassifier
        d = {str(d)!r}
        modelseal.keygen(d + "/bob")
        clf = DecisionTreeClassifier(max_depth=2).fit([[0, 0], [1, 1], [0, 1], [1, 0]], [0, 1, 0, 1])
        modelseal.dump(clf, d + "/m.mseal", signing_key={uri!r}, recipients=d + "/bob.pub",
                       name="m", version="1.0.0")
        info = modelseal.verify(d + "/m.mseal", trust=d + "/signer.pub", no_state=True)
        assert info["signer"] == modelseal.key_id(d + "/signer.pub"), info
        got = modelseal.load(d + "/m.mseal", trust=d + "/signer.pub", identity=d + "/bob.key",
                             no_state=True)
        assert got.predict([[1, 1]]).tolist() == [1]
        # The token key's .pub is a trust anchor only: not a recipient.
        try:
            modelseal.dump(clf, d + "/n.mseal", signing_key={uri!r}, recipients=d + "/signer.pub",
                           name="m", version="1.0.0")
        except modelseal.KeyFileError as e:
            assert e.hint, e
        else:
            raise AssertionError("a signing-only .pub was accepted as a recipient")
        import os
        assert not os.path.exists(d + "/n.mseal")
        print("ok")
    """)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stdout + p.stderr


def test_a_wrong_pin_is_refused_with_a_hint_and_no_file(token):
    d, env, uri = token
    wrong = d / "wrong-pin"
    wrong.write_text("000000\n")
    wrong.chmod(0o600)
    bad = uri.replace(f"pin-source=file:{d / 'pin'}", f"pin-source=file:{wrong}")
    p = _python(env, f"""
        import os, modelseal
        d = {str(d)!r}
        modelseal.keygen(d + "/bob")
        try:
            modelseal.dump({{"w": 1}}, d + "/m.mseal", signing_key={bad!r},
                           recipients=d + "/bob.pub", name="m", version="1.0.0")
        except ValueError as e:  # a problem with the call (exit 2 from the CLI), not a refusal
            assert "PIN" in str(e) or "pin" in str(e), e
            assert e.hint and "--" not in e.hint, e.hint
            assert not os.path.exists(d + "/m.mseal")
            print("refused:", type(e).__name__)
        else:
            raise AssertionError("a wrong PIN signed")
    """)
    assert p.returncode == 0 and p.stdout.strip() == "refused: ValueError", p.stdout + p.stderr
