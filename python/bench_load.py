"""Times modelseal.load against joblib.load, and modelseal.dump against joblib.dump, on a ~120 MB
RandomForest. Not a test: run it by hand with the package installed.

    python python/bench_load.py [--runs 3] [--dir DIR]

Prints the median of each over the runs and the ratios (targets: load within 1.5x of joblib.load,
dump within 2x of joblib.dump). Files go to a temporary directory under --dir (default: the system
temp dir); both sides read and write the same file system, and loads read from the page cache.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import joblib
import sklearn
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

import modelseal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()

    t = time.perf_counter()
    X, y = make_classification(n_samples=200_000, n_features=40, n_informative=20, random_state=0)
    forest = RandomForestClassifier(n_estimators=60, n_jobs=2, random_state=0).fit(X, y)
    forest.n_jobs = 1
    print(f"trained RandomForest in {time.perf_counter() - t:.1f} s "
          f"(python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
          f"joblib {joblib.__version__}, modelseal {modelseal.MODELSEAL_VERSION})")

    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        alice = modelseal.keygen(os.path.join(d, "alice"))
        bob = modelseal.keygen(os.path.join(d, "bob"))
        plain = os.path.join(d, "forest.joblib")
        sealed = {c: os.path.join(d, f"forest-{c}.mseal") for c in ("auto", "none")}

        def fresh(path):
            if os.path.exists(path):
                os.remove(path)
            return path

        def timed(fn):
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        # The runs are interleaved (each run times every operation once), so that the load of a
        # shared machine drifting during the benchmark weighs on every operation alike.
        times: dict = {}
        for _ in range(args.runs):
            ops = {"joblib.dump": lambda: joblib.dump(forest, fresh(plain))}
            for c, path in sealed.items():
                ops[f"modelseal.dump compress={c!r}"] = lambda c=c, path=path: modelseal.dump(
                    forest, fresh(path), signing_key=alice[0], recipients=[bob[1]],
                    name="bench-forest", version="1.0.0", compress=c)
            ops["joblib.load"] = lambda: joblib.load(plain)
            for c, path in sealed.items():
                ops[f"modelseal.load compress={c!r}"] = lambda path=path: modelseal.load(
                    path, trust=[alice[1]], identity=bob[0])
            for name, fn in ops.items():
                times.setdefault(name, []).append(timed(fn))
        sizes = {"joblib": os.path.getsize(plain)}
        sizes.update({c: os.path.getsize(p) for c, p in sealed.items()})

    med = {k: statistics.median(v) for k, v in times.items()}
    mb = 1e6
    print(f"joblib file {sizes['joblib'] / mb:.1f} MB; sealed archive {sizes['auto'] / mb:.1f} MB "
          f"with compress='auto' (zstd), {sizes['none'] / mb:.1f} MB with compress='none'")
    print(f"medians of {args.runs} interleaved runs:")
    for name, value in med.items():
        base, target = (med["joblib.dump"], 2.0) if "dump" in name else (med["joblib.load"], 1.5)
        ratio = "" if name.startswith("joblib") else (
            f"   ratio {value / base:5.2f}x (target <= {target}x)")
        print(f"  {name:32s} {value:7.3f} s{ratio}")


if __name__ == "__main__":
    main()
