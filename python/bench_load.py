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


def median_time(fn, runs: int, before=None) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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
        sealed = os.path.join(d, "forest.mseal")

        def joblib_dump():
            joblib.dump(forest, plain)

        def seal():
            modelseal.dump(forest, sealed, signing_key=alice[0], recipients=[bob[1]],
                           name="bench-forest", version="1.0.0", force=True)

        def remove(p):
            return lambda: os.path.exists(p) and os.remove(p)

        dump_joblib = median_time(joblib_dump, args.runs, remove(plain))
        dump_sealed = median_time(seal, args.runs, remove(sealed))
        load_joblib = median_time(lambda: joblib.load(plain), args.runs)
        load_sealed = median_time(
            lambda: modelseal.load(sealed, trust=[alice[1]], identity=bob[0]), args.runs
        )
        size_plain, size_sealed = os.path.getsize(plain), os.path.getsize(sealed)
        info = modelseal.verify(sealed, trust=[alice[1]])

    mb = 1e6
    print(f"joblib file {size_plain / mb:.1f} MB, sealed archive {size_sealed / mb:.1f} MB "
          f"({info['compression']})")
    print(f"medians of {args.runs} runs:")
    print(f"  joblib.dump    {dump_joblib:7.3f} s")
    print(f"  modelseal.dump {dump_sealed:7.3f} s   ratio {dump_sealed / dump_joblib:.2f}x (target <= 2x)")
    print(f"  joblib.load    {load_joblib:7.3f} s")
    print(f"  modelseal.load {load_sealed:7.3f} s   ratio {load_sealed / load_joblib:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
