"""modelseal against joblib, side by side in one process: load, dump, a tiny model, peak memory, and
what the checks themselves cost. It reports; it asserts nothing (times belong in a benchmark, not
a test).

    python python/bench/speed.py [--quick] [--runs N] [--dir DIR]

The default model is a ~120 MB RandomForest (60 trees on 200,000 x 40); --quick trains a small one
and runs each measurement once (CI runs it so, to keep it working). Each round times every
operation once, alternating, so that a shared machine's drift weighs on all alike; the figures are
medians. Peak memory is the growth of the peak RSS (VmHWM) of a fresh child process that loads
the model once, so each figure is one load's and nothing else's.

Targets (issue 13): load of a compress="none" archive <= 1.3x joblib.load; of a compress="auto"
archive <= 1.1x joblib.load of a compress=3 file; dump(compress="none") <= 1.5x joblib.dump; peak
memory of load <= joblib's + 32 MiB; the Iris tree <= 1 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import joblib
import sklearn
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

import modelseal
from modelseal import _modelseal as native

# VmHWM, the peak RSS of this process's memory since exec: ru_maxrss would also count the memory
# of the parent it was forked from (Linux carries it across exec).
_CHILD = r"""
import json, sys
def hwm():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
kind, path, trust, identity = sys.argv[1:5]
import joblib, modelseal, sklearn.ensemble  # imports are not part of a load's memory
before = hwm()
if kind == "joblib":
    m = joblib.load(path)
else:
    m = modelseal.load(path, trust=[trust], identity=identity, no_state=True)
print(json.dumps({"kib": hwm() - before}))
"""


def peak_growth_mib(kind: str, path: str, trust: str, identity: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, path, trust, identity],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)["kib"] / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small model, one round (for CI)")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    runs = args.runs or (1 if args.quick else 5)

    t = time.perf_counter()
    if args.quick:
        X, y = make_classification(n_samples=5_000, n_features=20, random_state=0)
        forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    else:
        X, y = make_classification(n_samples=200_000, n_features=40, n_informative=20, random_state=0)
        forest = RandomForestClassifier(n_estimators=60, n_jobs=2, random_state=0).fit(X, y)
        forest.n_jobs = 1
    Xi, yi = load_iris(return_X_y=True)
    iris = DecisionTreeClassifier(random_state=0).fit(Xi, yi)
    print(f"trained in {time.perf_counter() - t:.1f} s; python {platform.python_version()}, "
          f"scikit-learn {sklearn.__version__}, joblib {joblib.__version__}, "
          f"modelseal {modelseal.MODELSEAL_VERSION}, {os.cpu_count()} cores")

    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        p = lambda name: os.path.join(d, name)  # noqa: E731
        alice = modelseal.keygen(p("alice"))
        bob = modelseal.keygen(p("bob"))
        seal = dict(signing_key=alice[0], recipients=[bob[1]], name="bench", version="1.0.0")
        opening = dict(trust=[alice[1]], identity=bob[0], no_state=True)

        def fresh(path: str) -> str:
            if os.path.exists(path):
                os.remove(path)
            return path

        ops = {
            "joblib.dump": lambda: joblib.dump(forest, fresh(p("f.joblib"))),
            "joblib.dump compress=3": lambda: joblib.dump(forest, fresh(p("f3.joblib")), compress=3),
            "modelseal.dump none": lambda: modelseal.dump(forest, fresh(p("f-none.mseal")), compress="none", **seal),
            "  joblib.dump into memory (the Buffer dump seals)": lambda: joblib.dump(forest, native.Buffer()),
            "modelseal.dump auto": lambda: modelseal.dump(forest, fresh(p("f-auto.mseal")), **seal),
            "joblib.load": lambda: joblib.load(p("f.joblib")),
            "joblib.load compress=3": lambda: joblib.load(p("f3.joblib")),
            "modelseal.load none": lambda: modelseal.load(p("f-none.mseal"), **opening),
            "modelseal.load auto": lambda: modelseal.load(p("f-auto.mseal"), **opening),
            # What the checks cost, each on its own (same archive as "modelseal.load none"):
            "  verify, no key (header, signature, BLAKE3)": lambda: modelseal.verify(
                p("f-none.mseal"), trust=opening["trust"], no_state=True),
            "  verify with key (+ decrypt, tar walk, SHA-256)": lambda: modelseal.verify(
                p("f-none.mseal"), trust=opening["trust"], identity=bob[0], no_state=True),
            "  checks + globals walk, into memory (open_bytes)": lambda: native.open_bytes(
                p("f-none.mseal"), opening["trust"], bob[0], None, list(modelseal.DEFAULT_ALLOWED_GLOBALS),
                [], 1 << 34, None, True),
        }
        # Built once: the two archives and files the loads read, and the unpickler's inputs.
        for name in ("joblib.dump", "joblib.dump compress=3", "modelseal.dump none", "modelseal.dump auto"):
            ops[name]()
        joblib.dump(iris, p("iris.joblib"))
        modelseal.dump(iris, p("iris.mseal"), **seal)
        tiny = {
            "joblib.load iris": lambda: joblib.load(p("iris.joblib")),
            "modelseal.load iris": lambda: modelseal.load(p("iris.mseal"), **opening),
            "  iris: checks + globals walk (open_bytes)": lambda: native.open_bytes(
                p("iris.mseal"), opening["trust"], bob[0], None, list(modelseal.DEFAULT_ALLOWED_GLOBALS),
                [], 1 << 34, None, True),
        }

        times: dict = {}
        for _ in range(runs):
            for name, fn in ops.items():
                t = time.perf_counter()
                fn()
                times.setdefault(name, []).append(time.perf_counter() - t)
            for _ in range(5 if args.quick else 50):
                for name, fn in tiny.items():
                    t = time.perf_counter()
                    fn()
                    times.setdefault(name, []).append(time.perf_counter() - t)
        sizes = {n: os.path.getsize(p(n)) for n in ("f.joblib", "f3.joblib", "f-none.mseal", "f-auto.mseal")}
        memory = {
            "joblib.load": peak_growth_mib("joblib", p("f.joblib"), alice[1], bob[0]),
            "modelseal.load none": peak_growth_mib("modelseal", p("f-none.mseal"), alice[1], bob[0]),
            "modelseal.load auto": peak_growth_mib("modelseal", p("f-auto.mseal"), alice[1], bob[0]),
        }

    med = {k: statistics.median(v) for k, v in times.items()}
    print("sizes: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()))
    print(f"medians of {runs} interleaved rounds:")
    against = {
        "modelseal.dump none": ("joblib.dump", 1.5),
        "modelseal.dump auto": ("joblib.dump compress=3", None),
        "modelseal.load none": ("joblib.load", 1.3),
        "modelseal.load auto": ("joblib.load compress=3", 1.1),
        "modelseal.load iris": ("joblib.load iris", None),
    }
    for name, value in med.items():
        unit = f"{value * 1e3:9.2f} ms"
        line = f"  {name:52s} {unit}"
        if name in against:
            base, target = against[name]
            line += f"   {value / med[base]:5.2f}x {base}" + (f" (target <= {target}x)" if target else "")
        if name == "modelseal.load iris":
            line += " (target <= 1 ms)"
        print(line)
    derived = {
        "  dump none, sealing alone (dump - joblib into memory)": med["modelseal.dump none"]
        - med["  joblib.dump into memory (the Buffer dump seals)"],
        "  load none, unpickling alone (load - open_bytes)": med["modelseal.load none"]
        - med["  checks + globals walk, into memory (open_bytes)"],
        "  iris, unpickling alone (load - open_bytes)": med["modelseal.load iris"]
        - med["  iris: checks + globals walk (open_bytes)"],
    }
    print("derived:")
    for name, value in derived.items():
        print(f"  {name:52s} {value * 1e3:9.2f} ms")
    print("peak RSS growth of one load in a fresh process:")
    for name, mib in memory.items():
        extra = "" if name == "joblib.load" else f"   {mib - memory['joblib.load']:+.1f} MiB (target <= +32)"
        print(f"  {name:52s} {mib:9.1f} MiB{extra}")


if __name__ == "__main__":
    main()
