"""Cold start, as a new user sees it: a fresh Python process with an empty
kernel cache runs `import lstmkit`, builds the seeds' model
(Embedding(10000, 32) -> LSTM(32) -> Dense(1, sigmoid), Adam), fits one
epoch of 64 samples of length 500 (batch 32) and predicts them once.

    PYTHONPATH=src python benchmarks/cold_start.py [--repeats 5]

Measured per repeat, each in a new process and a new empty cache folder
(LSTMKIT_CACHE_DIR), the wall time from starting the process to the end of
`predict` (interpreter start-up included), split into import / build / fit /
predict as the process saw them; the CPU time of the process and of the
compile-ahead helper it started (kernels/ahead.py), which works on the
second core; and, for comparison:
  * warm: the same script again on the now filled cache;
  * no helper: cold, with lk.config.compile_ahead = False (one core compiles
    everything, as before the helper);
  * torch: the same model and steps in PyTorch in a fresh process (it
    compiles nothing; its import is the cost).

lstmkit's Python bytecode (.pyc) is written first (`compile_bytecode`), as
`pip install` writes it for an installed package: numpy, numba and torch
have theirs in site-packages, while a source tree may have none and this
machine's environment forbids writing them at import
(PYTHONDONTWRITEBYTECODE=1), which made every measured process compile
lstmkit's ~80 modules from source (about 0.1 s of CPU in each of the two
processes). Only the kernel cache is empty, as for a new user after an
install.

    PYTHONPATH=src python benchmarks/cold_start.py --timeline [--repeats 1]

prints instead the timeline of cold starts: from the compile-ahead log
(LSTMKIT_AHEAD_LOG, kernels/ahead.py), when the caller and the helper
finished importing, and when each started, finished or waited for each
kernel, beside the caller's import / fit / predict, in seconds from the
process start.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
sys.path.insert(0, HERE)
import quiet  # noqa: E402

CHILD_LSTMKIT = r'''
import os, sys, time, json, resource
t0 = time.time()
import numpy as np
import lstmkit as lk
t1 = time.time()
if os.environ.get("NO_HELPER"):
    lk.config.set(compile_ahead=False)
rng = np.random.default_rng(0)
x = rng.integers(1, 10000, size=(64, 500))
y = rng.integers(0, 2, size=(64, 1)).astype(np.float32)
model = lk.Sequential([lk.Embedding(10000, 32, input_length=500), lk.LSTM(32),
                       lk.Dense(1, activation="sigmoid")], seed=0)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
t2 = time.time()
model.fit(x, y, epochs=1, batch_size=32, verbose=0)
t3 = time.time()
p = model.predict(x, verbose=0)
t4 = time.time()
own = resource.getrusage(resource.RUSAGE_SELF)
from lstmkit.kernels import ahead
helpers = ahead.helpers()
for h in helpers.values():                 # after the measurement: the helper's CPU time
    h.wait()
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps(dict(start=t0, import_s=t1 - t0, build_s=t2 - t1, fit_s=t3 - t2, predict_s=t4 - t3,
                      end=t4, cpu_s=own.ru_utime + own.ru_stime, helper_cpu_s=kids.ru_utime + kids.ru_stime,
                      helpers=len(helpers), finite=bool(np.isfinite(p).all()))))
'''

CHILD_TORCH = r'''
import time, json, resource
t0 = time.time()
import numpy as np
import torch
t1 = time.time()
torch.manual_seed(0)
rng = np.random.default_rng(0)
x = torch.as_tensor(rng.integers(1, 10000, size=(64, 500)))
y = torch.as_tensor(rng.integers(0, 2, size=(64, 1)).astype(np.float32))
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.rnn, self.out = torch.nn.Embedding(10000, 32), torch.nn.LSTM(32, 32, batch_first=True), torch.nn.Linear(32, 1)
    def forward(self, ids):
        _, (h, _) = self.rnn(self.emb(ids))
        return self.out(h[-1])
net = Net()
opt = torch.optim.Adam(net.parameters())
loss_fn = torch.nn.BCEWithLogitsLoss()
t2 = time.time()
for b in range(0, 64, 32):
    opt.zero_grad()
    loss_fn(net(x[b:b + 32]), y[b:b + 32]).backward()
    opt.step()
t3 = time.time()
with torch.inference_mode():
    p = torch.sigmoid(torch.cat([net(x[b:b + 32]) for b in range(0, 64, 32)]))
t4 = time.time()
own = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(start=t0, import_s=t1 - t0, build_s=t2 - t1, fit_s=t3 - t2, predict_s=t4 - t3,
                      end=t4, cpu_s=own.ru_utime + own.ru_stime, helper_cpu_s=0.0, helpers=0,
                      finite=bool(torch.isfinite(p).all()))))
'''


def run_child(code, cache_dir, extra_env=None):
    """One fresh process; returns its record with `wall_s`: process start to the end of predict."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
               LSTMKIT_CACHE_DIR=cache_dir, **(extra_env or {}))
    env.pop("NUMBA_CACHE_DIR", None)
    meter = quiet.Meter()
    t_spawn = time.time()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=600)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}")
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    rec["wall_s"] = rec["end"] - t_spawn
    rec["others_cpu"] = meter.others()
    return rec


def compile_bytecode():
    """Write the .pyc files of lstmkit's modules beside them (__pycache__, as
    an install does); Python checks them against the sources' times, so an
    edit is never run from a stale one."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(SRC, "lstmkit")],
                   check=True, capture_output=True, timeout=300)


def _summary(recs):
    walls = [r["wall_s"] for r in recs]
    out = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
           "samples": recs}
    for k in ("import_s", "fit_s", "predict_s", "cpu_s", "helper_cpu_s", "others_cpu"):
        out[f"median_{k}"] = statistics.median(r[k] for r in recs)
    return out


def measure(repeats=5, torch=True, log=print):
    """{case: summary} for lstmkit cold, warm, cold without the helper, and torch."""
    cases = {"cold": [], "warm": [], "cold_no_helper": [], "torch": []}
    compile_bytecode()
    for i in range(repeats):
        folder = tempfile.mkdtemp(prefix="lstmkit-cold-")
        try:
            cases["cold"].append(run_child(CHILD_LSTMKIT, folder))
            time.sleep(1)                                      # the helper has finished (it was waited for)
            cases["warm"].append(run_child(CHILD_LSTMKIT, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        folder = tempfile.mkdtemp(prefix="lstmkit-cold-")
        try:
            cases["cold_no_helper"].append(run_child(CHILD_LSTMKIT, folder, {"NO_HELPER": "1"}))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if torch:
            cases["torch"].append(run_child(CHILD_TORCH, tempfile.gettempdir()))
        log(f"  cold start {i + 1}/{repeats}: " + ", ".join(
            f"{k} {v[-1]['wall_s']:.2f} s" for k, v in cases.items() if v))
    return {k: _summary(v) for k, v in cases.items() if v}


def timeline(log=print):
    """One cold start (helper on), with who compiled what when; returns its record."""
    compile_bytecode()
    folder = tempfile.mkdtemp(prefix="lstmkit-cold-")
    try:
        path = os.path.join(folder, "ahead.log")
        t_spawn = time.time()
        rec = run_child(CHILD_LSTMKIT, folder, {"LSTMKIT_AHEAD_LOG": path})
        time.sleep(0.5)
        events = []
        with open(path) as f:
            for line in f:
                t, pid, key, what = line.rstrip("\n").split(" ", 3)
                events.append((float(t), pid, what, key))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    t0 = rec["start"]
    for t, what in ((t0 + rec["import_s"], "imported"), (t0 + rec["import_s"] + rec["build_s"], "built"),
                    (rec["end"] - rec["predict_s"], "fit done"), (rec["end"], "predict done")):
        events.append((t, "caller", what, "-"))
    helpers = {pid for _, pid, what, _ in events if what == "helper imported"}
    log(f"cold start {rec['wall_s']:.2f} s (import {rec['import_s']:.2f}, fit {rec['fit_s']:.2f}, "
        f"predict {rec['predict_s']:.2f}); cpu {rec['cpu_s']:.2f} + helper {rec['helper_cpu_s']:.2f} s; "
        f"others {100 * rec['others_cpu']:.0f}%")
    for t, pid, what, key in sorted(events, key=lambda e: e[0]):     # stable: the log's order at ties
        who = "helper" if pid in helpers else "caller"
        log(f"  {t - t_spawn:6.2f} {who:6s} {what:22s} {key if key != '-' else ''}")
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--timeline", action="store_true", help="print who compiled what when, per repeat")
    args = ap.parse_args(argv)
    if args.timeline:
        for _ in range(args.repeats):
            timeline()
        return
    res = measure(args.repeats, torch=not args.no_torch)
    for k, v in res.items():
        print(f"{k:15s} median {v['median_s']:5.2f} s (min {v['min_s']:.2f}, max {v['max_s']:.2f}); "
              f"import {v['median_import_s']:.2f}, fit {v['median_fit_s']:.2f}, predict {v['median_predict_s']:.2f}; "
              f"cpu {v['median_cpu_s']:.2f} + helper {v['median_helper_cpu_s']:.2f} s; "
              f"others {100 * v['median_others_cpu']:.0f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
