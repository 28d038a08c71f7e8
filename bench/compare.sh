#!/usr/bin/env bash
# Whole-process comparison of modelseal with what users would otherwise script:
#   age -r + minisign -S (encrypt + sign) / minisign -V + age -d, and model_signing (sign/verify
#   with a key, hashing only), plus joblib.dump(compress=3) for the scikit-learn workload.
# Sets up its own peers and data, runs modelseal and the peers alternately, and writes a Markdown
# table of medians, ratios and peak RSS (from /usr/bin/time) to bench/results.md.
#
# Usage: bench/compare.sh            (RUNS=5 by default; BENCH_DIR=/tmp/modelseal-bench;
#                                     SKIP_8G=1 skips the 8 GiB peak-memory run)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${BENCH_DIR:-${TMPDIR:-/tmp}/modelseal-bench}
export RUNS=${RUNS:-5}
mkdir -p "$W"

need_apt=()
for tool in age minisign; do command -v $tool >/dev/null || need_apt+=($tool); done
[ -x /usr/bin/time ] || need_apt+=(time)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=$([ "$(id -u)" = 0 ] && echo || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -x "$W/venv/bin/python" ]; then
  python3 -m venv "$W/venv"
  "$W/venv/bin/pip" install -q numpy scikit-learn joblib model-signing pyopenssl
fi
(cd "$ROOT" && cargo build --release -q)
MS="$ROOT/target/release/modelseal"

cd "$W"
[ -f age.key ] || age-keygen -o age.key 2>/dev/null
[ -f age.pub ] || age-keygen -y age.key > age.pub
[ -f mini.key ] || minisign -G -W -p mini.pub -s mini.key >/dev/null
[ -f ec.key ] || { openssl ecparam -name prime256v1 -genkey -noout -out ec.key && openssl ec -in ec.key -pubout -out ec.pub 2>/dev/null; }
[ -f ms-author.key ] || "$MS" keygen -o ms-author >/dev/null
[ -f ms-reader.key ] || "$MS" keygen -o ms-reader >/dev/null
venv/bin/python - <<'PY'
import os, numpy as np, joblib
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier
if not os.path.exists('weights_1g.bin'):
    np.random.default_rng(0).standard_normal(1 << 28, dtype=np.float32).tofile('weights_1g.bin')
if not os.path.exists('rf.joblib'):
    X, y = datasets.make_classification(n_samples=200000, n_features=40, n_informative=20, random_state=0)
    rf = RandomForestClassifier(n_estimators=60, n_jobs=2, random_state=0).fit(X, y)
    joblib.dump(rf, 'rf.joblib')
PY
mkdir -p wmodel && ln -f weights_1g.bin wmodel/weights.bin

export MS W
exec "$W/venv/bin/python" "$ROOT/bench/compare.py"
