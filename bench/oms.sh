#!/usr/bin/env bash
# `modelseal oms verify` against `model_signing verify key` (PyPI model-signing 1.1.1), whole
# process, with hyperfine: (a) one 1 GiB weights file, (b) a directory of 2000 files, 500 MB in
# all. Both tools verify the same bundle (signed by model_signing), from a warm page cache.
# Prints a Markdown table of means and the ratio, and keeps hyperfine's JSON in $W.
#
# Usage: bench/oms.sh      (RUNS=5 by default; BENCH_DIR=/tmp/modelseal-oms-bench)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${BENCH_DIR:-${TMPDIR:-/tmp}/modelseal-oms-bench}
RUNS=${RUNS:-5}
mkdir -p "$W"

if ! command -v hyperfine >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] && echo || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq hyperfine >/dev/null
fi
if [ ! -x "$W/venv/bin/model_signing" ]; then
  python3 -m venv "$W/venv"
  "$W/venv/bin/pip" install -q model-signing==1.1.1 pyopenssl
fi
(cd "$ROOT" && cargo build --release --locked -q --bin modelseal)
MS="$ROOT/target/release/modelseal"
PY="$W/venv/bin/model_signing"

cd "$W"
[ -f ec.pem ] || { openssl ecparam -name prime256v1 -genkey -noout -out ec.pem && openssl ec -in ec.pem -pubout -out ec.pub 2>/dev/null; }
[ -f weights_1g.bin ] || head -c $((1 << 30)) /dev/urandom > weights_1g.bin
if [ ! -d many ]; then
  mkdir -p many.tmp
  for d in $(seq 0 19); do
    mkdir -p many.tmp/shard$d
    for f in $(seq 0 99); do head -c 250000 /dev/urandom > many.tmp/shard$d/part$f.bin; done
  done
  mv many.tmp many
fi
"$PY" sign key --private_key ec.pem --signature weights.sig weights_1g.bin >/dev/null
"$PY" sign key --private_key ec.pem --signature many.sig many >/dev/null
# Both must accept before anything is timed.
"$MS" oms verify --public-key ec.pub --signature weights.sig weights_1g.bin >/dev/null
"$MS" oms verify --public-key ec.pub --signature many.sig many >/dev/null

row() { # name, model, signature
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$W/$1.json" \
    -n modelseal "$MS oms verify --public-key ec.pub --signature $3 $2" \
    -n model_signing "$PY verify key --public_key ec.pub --signature $3 $2" >&2
  python3 - "$W/$1.json" "$1" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms, py = r["modelseal"], r["model_signing"]
print(f"| {sys.argv[2]} | {ms['mean']:.2f} ± {ms['stddev']:.2f} s | {py['mean']:.2f} ± {py['stddev']:.2f} s | {py['mean'] / ms['mean']:.2f}× |")
PY
}
echo "| model | modelseal oms verify | model_signing verify key | model_signing / modelseal |"
echo "|---|---|---|---|"
row "1 GiB file" weights_1g.bin weights.sig
row "2000 files, 500 MB" many many.sig
echo
echo "$(nproc) CPUs, $(uname -sr), model-signing $("$W/venv/bin/pip" show model-signing | sed -n 's/^Version: //p'), $RUNS runs after 1 warm-up"
