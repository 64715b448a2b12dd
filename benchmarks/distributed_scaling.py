"""Data-parallel scaling on one machine: 2 processes x 1 thread (gloo, lstmkit.distributed)
against 1 process x 2 threads and 1 process x 1 thread, on workloads A and B (training).

    .venv/bin/python benchmarks/distributed_scaling.py [--steps 12] [--cases A-lstm-b128,B-lstm-b64]

Every configuration runs fit() on the same global batches (A: batch 128, so each of 2 ranks
takes 64; B: batch 64, 32 each) and times each step (a callback's clock between batch ends,
the first 2 steps left out: compilation and warm-up). It prints per configuration the median
step time and its spread (min-max), the speed-up of 2x1 over 1x1 and the scaling efficiency
speed-up / 2, and 2x1 against 1x2. Timings on a shared machine are noisy: the load of other
processes (quiet.py) is printed beside them.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _cases():
    sys.path.insert(0, str(HERE))
    from workloads import CASES
    by_id = {c.id: c for c in CASES}
    return {"A-lstm-b128": replace(by_id["A-lstm-b128-train"], id="A-lstm-b128"),
            "B-lstm-b64": replace(by_id["B-lstm-train"], id="B-lstm-b64")}


def worker(case_id, steps, out):
    """One process (or one rank): fit on `steps` global batches, write the step times."""
    import lstmkit as lk
    from data import make
    case = _cases()[case_id]
    net = case.net
    x, y = make(replace(case, batch=case.batch * steps), seed=1)
    layer = {"lstm": lk.LSTM, "gru": lk.GRU, "rnn": lk.SimpleRNN}[net.cell]
    model = lk.Sequential([lk.Embedding(net.vocab, net.embed, input_length=case.length),
                           layer(net.units), lk.Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer=lk.Adam(1e-3), loss="binary_crossentropy")

    class Clock(lk.Callback):
        def __init__(self):
            self.t = [time.perf_counter()]

        def on_batch_end(self, batch, logs=None):
            self.t.append(time.perf_counter())

    clock = Clock()
    model.fit(x, y, batch_size=case.batch, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
    if os.environ.get("RANK", "0") == "0":
        Path(out).write_text(json.dumps(np.diff(clock.t).tolist()))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(case_id, steps, procs, threads):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update(NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), LSTMKIT_PRIORITY=os.environ.get("LSTMKIT_PRIORITY", "1"))
    out = tempfile.mktemp(suffix=".json")
    port = str(_free_port())
    ps = []
    for r in range(procs):
        e = dict(env)
        if procs > 1:
            e.update(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(procs), MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=port)
        ps.append(subprocess.Popen([sys.executable, __file__, "--worker", case_id, str(steps), out], env=e,
                                   cwd=HERE))
    for p in ps:
        if p.wait() != 0:
            raise SystemExit(f"{case_id} {procs}x{threads}: a process failed")
    t = json.loads(Path(out).read_text())
    os.unlink(out)
    return np.array(t[2:]) * 1000.0                          # ms per step, warm-up left out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--cases", default="A-lstm-b128,B-lstm-b64")
    ap.add_argument("--worker", nargs=3, metavar=("CASE", "STEPS", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        sys.path.insert(0, str(HERE))
        return worker(a.worker[0], int(a.worker[1]), a.worker[2])
    sys.path.insert(0, str(HERE))
    from quiet import sample
    rows = []
    for case_id in a.cases.split(","):
        res = {}
        load = []
        for procs, threads in ((1, 1), (1, 2), (2, 1)):
            load.append(sample(0.5))
            res[(procs, threads)] = run(case_id, a.steps, procs, threads)
        med = {k: float(np.median(v)) for k, v in res.items()}
        speedup = med[(1, 1)] / med[(2, 1)]
        row = {"case": case_id, **{f"{p}x{t}_ms": [med[(p, t)], float(res[(p, t)].min()),
                                                   float(res[(p, t)].max())] for p, t in res},
               "speedup_2x1_over_1x1": speedup, "efficiency_2x1": speedup / 2,
               "ratio_1x2_over_2x1": med[(1, 2)] / med[(2, 1)], "others_cpu_share": float(np.median(load))}
        rows.append(row)
        print(f"{case_id}: 1x1 {med[(1, 1)]:.0f} ms, 1x2 {med[(1, 2)]:.0f} ms, 2x1 {med[(2, 1)]:.0f} ms per step "
              f"(median of {len(res[(1, 1)])}); 2x1 speed-up over 1x1 {speedup:.2f} (efficiency "
              f"{speedup / 2:.0%}); 1x2 / 2x1 time {row['ratio_1x2_over_2x1']:.2f}; "
              f"others' CPU share {row['others_cpu_share']:.2f}", flush=True)
    out = HERE / "results" / "distributed_scaling.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
