"""Runs the workloads of bench/compare.sh alternately and writes bench/results.md.

Each command runs under /usr/bin/time (wall seconds, peak RSS); modelseal and its peer alternate
within every round, so both see the same machine state. Medians and ratios are reported; on a
shared, noisy machine only ratios taken in one run mean anything.
"""
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

MS = os.environ["MS"]
W = os.environ["W"]
RUNS = int(os.environ.get("RUNS", "5"))
PY = os.path.join(W, "venv", "bin", "python")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(W)
AGE_PUB = open("age.pub").read().strip()


def timed(cmd):
    """Runs a shell command under /usr/bin/time; returns (seconds, peak RSS MiB)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M", "bash", "-c", cmd], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"command failed: {cmd}\n{out.stderr}")
    wall, rss = out.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def clean(*paths):
    for p in paths:
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)


def compare(name, ours, peer, prepare=lambda: None):
    """Alternates `ours` and `peer` RUNS times; returns a result row."""
    t_ours, t_peer, r_ours, r_peer = [], [], [], []
    for i in range(RUNS):
        order = [("ours", ours), ("peer", peer)] if i % 2 == 0 else [("peer", peer), ("ours", ours)]
        for who, cmd in order:
            prepare()
            subprocess.run(["sync"])
            wall, rss = timed(cmd)
            (t_ours if who == "ours" else t_peer).append(wall)
            (r_ours if who == "ours" else r_peer).append(rss)
    m_ours, m_peer = statistics.median(t_ours), statistics.median(t_peer)
    row = (name, m_ours, max(r_ours), m_peer, max(r_peer), m_ours / m_peer)
    print(f"{name}: modelseal {m_ours:.2f} s ({max(r_ours):.0f} MiB) vs peer {m_peer:.2f} s ({max(r_peer):.0f} MiB): ratio {row[-1]:.2f}", flush=True)
    return row


rows = []
seal = f"{MS} -q seal -k ms-author.key -r ms-reader.pub --name weights --model-version 1.0.0 --force -o w.mseal weights_1g.bin"
age_sign = f"age -r {AGE_PUB} -o w.age weights_1g.bin && minisign -S -s mini.key -m w.age >/dev/null"
# Each side starts without its previous output: deleting a 1 GiB file is not part of sealing.
fresh_outputs = lambda: clean("w.mseal", "w.age", "w.age.minisig", "wmodel.sig")
rows.append(compare("seal 1 GiB float32 vs age -r + minisign -S", seal, age_sign, prepare=fresh_outputs))
rows.append(compare("seal 1 GiB float32 vs model_signing sign key (hash only)", seal,
                    f"{W}/venv/bin/model_signing --log-level ERROR sign key --private_key ec.key --signature wmodel.sig wmodel",
                    prepare=fresh_outputs))
# The open workloads read the archives the seal workloads made: make sure both exist.
subprocess.run(["bash", "-c", f"{seal} && {age_sign}"], check=True)
open_ms = f"rm -rf out && {MS} -q open --no-state -t ms-author.pub -i ms-reader.key -o out w.mseal"
open_peer = "minisign -V -p mini.pub -m w.age >/dev/null && age -d -i age.key -o out.bin w.age"
rows.append(compare("open 1 GiB vs minisign -V + age -d", open_ms, open_peer, prepare=lambda: clean("out", "out.bin")))
rows.append(compare("verify 1 GiB (no key) vs model_signing verify key",
                    f"{MS} -q verify --no-state -t ms-author.pub w.mseal",
                    f"{W}/venv/bin/model_signing --log-level ERROR verify key --public_key ec.pub --signature wmodel.sig wmodel"))
clean("out", "out.bin")

# scikit-learn RandomForest (~120 MB joblib): seal vs joblib.dump(compress=3), and sizes.
dump_c3 = (f"{PY} -c \"import joblib,time; m=joblib.load('rf.joblib'); t=time.time(); joblib.dump(m,'rf_c3.joblib',compress=3); "
           f"open('dump_c3.t','w').write(str(time.time()-t))\"")
seal_rf = f"{MS} -q seal -k ms-author.key -r ms-reader.pub --name rf --model-version 1.0.0 --force -o rf.mseal rf.joblib"
t_dump, t_seal = [], []
for i in range(RUNS):
    subprocess.run(["bash", "-c", dump_c3], check=True)
    t_dump.append(float(open("dump_c3.t").read()))
    t_seal.append(timed(seal_rf)[0])
m_dump, m_seal = statistics.median(t_dump), statistics.median(t_seal)
rows.append(("seal 120 MB RandomForest joblib vs joblib.dump(compress=3) (in-process dump time)", m_seal, timed(seal_rf)[1], m_dump, float("nan"), m_seal / m_dump))
open_rf = timed(f"rm -rf rfout && {MS} -q open --no-state -t ms-author.pub -i ms-reader.key -o rfout rf.mseal")
size_ms, size_c3, size_raw = os.path.getsize("rf.mseal"), os.path.getsize("rf_c3.joblib"), os.path.getsize("rf.joblib")
same = open("rf.joblib", "rb").read() == open("rfout/rf.joblib", "rb").read()
clean("rfout")

big = []
if os.environ.get("SKIP_8G") != "1":
    if not os.path.exists("weights_8g.bin"):
        subprocess.run(["bash", "-c", "for i in 1 2 3 4 5 6 7 8; do cat weights_1g.bin; done > weights_8g.bin"], check=True)
    big.append(("seal 8 GiB",) + timed(f"{MS} -q seal -k ms-author.key -r ms-reader.pub --name big --model-version 1.0.0 --force -o big.mseal weights_8g.bin"))
    big.append(("verify 8 GiB",) + timed(f"{MS} -q verify --no-state -t ms-author.pub big.mseal"))
    big.append(("open 8 GiB",) + timed(f"rm -rf bigout && {MS} -q open --no-state -t ms-author.pub -i ms-reader.key -o bigout big.mseal"))
    clean("bigout", "big.mseal")

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
lines = [
    f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores ({cpu}), "
    f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, Linux {platform.release()}; "
    f"medians of {RUNS} alternating runs; page cache warm. Command: `bench/compare.sh`.",
    "",
    "| workload | modelseal | peak RSS | peer | peer peak RSS | ratio (modelseal / peer) |",
    "|---|---|---|---|---|---|",
]
for name, ours, rss, peer, prss, ratio in rows:
    prss_s = "n/a (in-process)" if prss != prss else f"{prss:.0f} MiB"
    lines.append(f"| {name} | {ours:.2f} s | {rss:.0f} MiB | {peer:.2f} s | {prss_s} | {ratio:.2f} |")
lines += [
    "",
    f"RandomForest: joblib file {size_raw/1e6:.1f} MB; joblib compress=3 {size_c3/1e6:.1f} MB; "
    f"modelseal archive {size_ms/1e6:.1f} MB ({size_ms/size_c3:.2f} x compress=3); "
    f"open {open_rf[0]:.2f} s, {open_rf[1]:.0f} MiB peak; opened file byte-identical: {same}.",
]
if big:
    lines += ["", "| 8 GiB input | wall | peak RSS |", "|---|---|---|"]
    lines += [f"| {n} | {w:.1f} s | {r:.0f} MiB |" for n, w, r in big]
out = "\n".join(lines) + "\n"
open(os.path.join(ROOT, "bench", "results.md"), "w").write(out)
print(out)
