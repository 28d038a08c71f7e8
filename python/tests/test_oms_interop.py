"""OpenSSF Model Signing interoperability, both ways, with the real model_signing CLI (FORMAT.md §11):
bundles `modelseal oms sign` writes verify with `model_signing verify key`, bundles
`model_signing sign key` writes verify with `modelseal oms verify`, and both refuse a changed file,
an extra file and another key.

Under CI (the CI variable set) a missing model_signing or modelseal binary fails the tests; elsewhere
they are skipped."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def _missing(what: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI is set, so this is a failure, not a skip)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def model_signing() -> str:
    """The model_signing CLI of this interpreter's environment (requirements-test.txt pins it)."""
    cli = pathlib.Path(sys.executable).parent / "model_signing"
    if not cli.exists():
        found = shutil.which("model_signing")
        if not found:
            _missing(f"no model_signing CLI beside {sys.executable}: pip install model-signing==1.1.1")
        cli = pathlib.Path(found)
    return str(cli)


@pytest.fixture(scope="module")
def modelseal() -> str:
    cli = os.environ.get("MODELSEAL_CLI") or str(
        pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "modelseal"
    )
    if not os.path.exists(cli):
        _missing(f"no modelseal binary at {cli}: build it with `cargo build` (python/ci.sh does)")
    return cli


def _write_key(dir: pathlib.Path, name: str, pkcs8: bool) -> tuple[pathlib.Path, pathlib.Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = dir / f"{name}.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)  # as openssl writes private keys; modelseal refuses one others can read
    public = dir / f"{name}.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return {
        "sec1": _write_key(d, "sec1", pkcs8=False),
        "pkcs8": _write_key(d, "pkcs8", pkcs8=True),
        "other": _write_key(d, "other", pkcs8=False),
    }


def _model_dir(root: pathlib.Path) -> pathlib.Path:
    m = root / "model"
    (m / "sub" / "deep").mkdir(parents=True)
    (m / "weights.bin").write_bytes(os.urandom(3 << 20))
    (m / "config.json").write_text('{"layers": 2}')
    (m / "sub" / "tokenizer.json").write_text("{}")
    (m / "sub" / "deep" / "extra.txt").write_text("x")
    (m / "a.b").write_text("dot")
    (m / "a").mkdir()
    (m / "a" / "b").write_text("component order")
    (m / ".gitignore").write_text("*.tmp")
    return m


def _single_file(root: pathlib.Path) -> pathlib.Path:
    f = root / "model.safetensors"
    f.write_bytes(os.urandom(1 << 20))
    return f


def _run(args, ok: bool):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert (p.returncode == 0) == ok, f"{args}: rc {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def _ms_sign(model_signing, model, sig, private):
    _run([model_signing, "sign", "key", "--private_key", private, "--signature", sig, model], ok=True)


def _ms_verify(model_signing, model, sig, public, ok=True):
    return _run([model_signing, "verify", "key", "--public_key", public, "--signature", sig, model], ok=ok)


def _seal_sign(modelseal, model, sig, private, spelling="--private-key"):
    _run([modelseal, "oms", "sign", spelling, private, "--signature", sig, model], ok=True)


def _seal_verify(modelseal, model, sig, public, ok=True):
    p = _run([modelseal, "oms", "verify", "--public-key", public, "--signature", sig, model], ok=ok)
    if not ok:
        # A refusal: exit 1, exactly one error line and one hint line.
        assert p.returncode == 1, p
        lines = p.stderr.splitlines()
        assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), p.stderr
    return p


@pytest.mark.parametrize("form", ["sec1", "pkcs8"])
def test_model_signing_verifies_a_modelseal_directory_bundle(modelseal, model_signing, keys, tmp_path, form):
    private, public = keys[form]
    m = _model_dir(tmp_path)
    sig = m / "model.sig"  # inside the model: left out of the signature by both tools
    _seal_sign(modelseal, m, sig, private, spelling="--private_key" if form == "sec1" else "--private-key")
    _ms_verify(model_signing, m, sig, public)
    _seal_verify(modelseal, m, sig, public)


def test_model_signing_verifies_a_modelseal_single_file_bundle(modelseal, model_signing, keys, tmp_path):
    private, public = keys["sec1"]
    f = _single_file(tmp_path)
    sig = tmp_path / "file.sig"
    _seal_sign(modelseal, f, sig, private)
    _ms_verify(model_signing, f, sig, public)


def test_modelseal_verifies_model_signing_bundles(modelseal, model_signing, keys, tmp_path):
    private, public = keys["pkcs8"]
    m = _model_dir(tmp_path)
    sig = tmp_path / "dir.sig"
    _ms_sign(model_signing, m, sig, private)
    _seal_verify(modelseal, m, sig, public)
    f = _single_file(tmp_path)
    fsig = tmp_path / "file.sig"
    _ms_sign(model_signing, f, fsig, private)
    _seal_verify(modelseal, f, fsig, public)


@pytest.mark.parametrize("signer", ["modelseal", "model_signing"])
@pytest.mark.parametrize("attack", ["tampered", "extra", "missing", "wrong_key"])
def test_both_refuse(modelseal, model_signing, keys, tmp_path, signer, attack):
    private, public = keys["sec1"]
    m = _model_dir(tmp_path)
    sig = tmp_path / "model.sig"
    if signer == "modelseal":
        _seal_sign(modelseal, m, sig, private)
    else:
        _ms_sign(model_signing, m, sig, private)
    if attack == "tampered":
        with open(m / "sub" / "tokenizer.json", "a") as f:
            f.write(" ")
    elif attack == "extra":
        (m / "sub" / "deep" / "planted.py").write_text("import os")
    elif attack == "missing":
        (m / "config.json").unlink()
    else:
        public = keys["other"][1]
    _ms_verify(model_signing, m, sig, public, ok=False)
    p = _seal_verify(modelseal, m, sig, public, ok=False)
    named = {
        "tampered": "sub/tokenizer.json",
        "extra": "sub/deep/planted.py",
        "missing": "config.json",
        "wrong_key": "key",
    }[attack]
    assert named in p.stderr.splitlines()[0]


@pytest.mark.parametrize("public", [False, True])
def test_a_bundle_carried_in_an_archive_verifies_the_opened_directory(modelseal, model_signing, keys, tmp_path, public):
    """`seal --oms-key` signs the files as OMS too; `open --oms-signature FILE` writes that bundle
    out, and the real model_signing accepts the opened directory with it, and refuses it changed."""
    private, ec_public = keys["pkcs8"]
    for who in ("alice", "bob"):
        _run([modelseal, "keygen", "-o", tmp_path / who], ok=True)
    m = _model_dir(tmp_path)
    archive = tmp_path / "m.mseal"
    to = ["--public"] if public else ["-r", tmp_path / "bob.pub"]
    _run(
        [modelseal, "seal", "-k", tmp_path / "alice.key", *to, "--oms-key", private,
         "--name", "m", "--model-version", "1.0.0", "-o", archive, m],
        ok=True,
    )
    out, sig = tmp_path / "out", tmp_path / "opened.sig"
    key = [] if public else ["-i", tmp_path / "bob.key"]
    _run(
        [modelseal, "open", "-t", tmp_path / "alice.pub", *key, "--no-state",
         "--oms-signature", sig, "-o", out, archive],
        ok=True,
    )
    assert not (out / ".modelseal").exists()
    _ms_verify(model_signing, out, sig, ec_public)
    _seal_verify(modelseal, out, sig, ec_public)
    # Another key, and a changed opened file: both tools refuse.
    _ms_verify(model_signing, out, sig, keys["other"][1], ok=False)
    with open(out / "model" / "config.json", "a") as f:
        f.write(" ")
    _ms_verify(model_signing, out, sig, ec_public, ok=False)
    _seal_verify(modelseal, out, sig, ec_public, ok=False)


def test_dump_with_oms_key_carries_a_bundle_model_signing_accepts(modelseal, model_signing, keys, tmp_path):
    """`dump(oms_key=...)` carries an OMS bundle of model.joblib; `modelseal open --oms-signature`
    writes it out and the real model_signing accepts the opened directory with it; `load` still
    loads the model. A private PEM others can read is refused, naming the Python argument."""
    import modelseal as ms
    from sklearn.tree import DecisionTreeClassifier

    private, ec_public = keys["pkcs8"]
    ms.keygen(tmp_path / "alice")
    ms.keygen(tmp_path / "bob")
    clf = DecisionTreeClassifier(max_depth=2).fit([[0, 0], [1, 1], [0, 1], [1, 0]], [0, 1, 0, 1])
    archive = tmp_path / "m.mseal"
    report = ms.dump(
        clf, archive, signing_key=tmp_path / "alice.key", recipients=tmp_path / "bob.pub",
        name="m", version="1.0.0", oms_key=private,
    )
    assert any(f["path"] == ".modelseal/oms.sig" for f in report["manifest"]["files"]), report
    loaded = ms.load(archive, trust=tmp_path / "alice.pub", identity=tmp_path / "bob.key", no_state=True)
    assert loaded.predict([[1, 1]]).tolist() == [1]
    out, sig = tmp_path / "out", tmp_path / "opened.sig"
    _run(
        [modelseal, "open", "-t", tmp_path / "alice.pub", "-i", tmp_path / "bob.key", "--no-state",
         "--oms-signature", sig, "-o", out, archive],
        ok=True,
    )
    assert sorted(p.name for p in out.iterdir()) == ["model.joblib"]
    _ms_verify(model_signing, out, sig, ec_public)
    _ms_verify(model_signing, out, sig, keys["other"][1], ok=False)

    shared = tmp_path / "shared.pem"
    shared.write_bytes(private.read_bytes())
    shared.chmod(0o644)
    with pytest.raises(ms.KeyFileError) as e:
        ms.dump(
            clf, tmp_path / "n.mseal", signing_key=tmp_path / "alice.key",
            recipients=tmp_path / "bob.pub", name="m", version="1.0.0", oms_key=shared,
        )
    assert not (tmp_path / "n.mseal").exists()
    assert "chmod" in str(e.value.hint) or "0600" in str(e.value), e.value
