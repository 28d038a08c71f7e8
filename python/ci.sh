#!/usr/bin/env bash
# Builds and tests the modelseal Python package from a clean clone, on a machine with python3 (3.11+)
# and a Rust toolchain: creates a venv, installs maturin and the test dependencies from PyPI, builds
# the wheel (its own cargo target dir, python/target), installs it, and runs pytest.
# Exits non-zero on any failure. Needs no network but PyPI and crates.io.
#
#   bash python/ci.sh                # venv in python/.venv (reused if present)
#   MODELSEAL_VENV=/tmp/v bash python/ci.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${MODELSEAL_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" "$(($(date +%s) - start))"; }

command -v cargo >/dev/null || { echo "ci.sh: cargo not found: install a Rust toolchain (1.89+)" >&2; exit 2; }
command -v "$python" >/dev/null || { echo "ci.sh: $python not found" >&2; exit 2; }

step "venv $venv"
"$python" -m venv "$venv"
py="$venv/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

step "pip install maturin and the test dependencies"
"$py" -m pip install --quiet -r "$here/requirements-test.txt"

step "build the wheel (cargo target dir $here/target)"
export CARGO_TARGET_DIR="$here/target"
rm -rf "$here/target/wheels"
(cd "$here" && "$venv/bin/maturin" build --release --interpreter "$py" --out "$here/target/wheels")

step "install the wheel"
"$py" -m pip install --quiet --force-reinstall --no-deps "$here"/target/wheels/modelseal-*.whl
"$py" -m pip check

step "the CLI, for the CLI-vs-Python parity tests (the crate's own target dir)"
(cd "$here/.." && env -u CARGO_TARGET_DIR cargo build --locked --quiet --bin modelseal)
export MODELSEAL_CLI="$here/../target/debug/modelseal"

step "pytest"
# Run from the tests directory so that the installed package is imported, not the source tree.
cd "$here/tests"
"$py" -m pytest -p no:cacheprovider -o "testpaths=." -ra .

step "the speed benchmark against joblib, quick mode (it reports, it asserts nothing)"
"$py" "$here/bench/speed.py" --quick
echo "ci.sh: passed in $(($(date +%s) - start)) s"
