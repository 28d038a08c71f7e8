"""Times joblib.load and modelseal.load on the inputs python/bench/prepare.py made: medians of RUNS
interleaved rounds (each round loads the forest once per way and the Iris tree 20 times per way).
Run it alternately with two installed builds of modelseal to compare them; it reports, it does not
assert.

    python python/bench/load_time.py DIR RUNS
"""
import sys, time, statistics, joblib, modelseal
d = sys.argv[1]; runs = int(sys.argv[2])
t = {}
def timed(name, fn):
    s = time.perf_counter(); fn(); t.setdefault(name, []).append(time.perf_counter() - s)
kw = dict(trust=[f"{d}/alice.pub"], identity=f"{d}/bob.key")
for _ in range(runs):
    timed("joblib.load forest", lambda: joblib.load(f"{d}/forest.joblib"))
    timed("modelseal.load forest none", lambda: modelseal.load(f"{d}/forest-none.mseal", **kw))
    timed("modelseal.load forest auto", lambda: modelseal.load(f"{d}/forest-auto.mseal", **kw))
    for _ in range(20):
        timed("joblib.load iris", lambda: joblib.load(f"{d}/iris.joblib"))
        timed("modelseal.load iris", lambda: modelseal.load(f"{d}/iris.mseal", **kw))
for k, v in t.items():
    print(f"{k:30s} {statistics.median(v)*1000:8.2f} ms")
