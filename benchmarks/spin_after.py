"""How long each framework's threads keep the CPU after a call returns.

    python benchmarks/spin_after.py [--repeats 7]

Workload E's training step (seq2seq_bench.py), 2 threads each, as run.py
sets them. For lstmkit, torch and no call at all: make the call, then sleep
in 0.5 ms naps while reading the process's CPU time (time.process_time) at
1, 2, 5 ... 200 ms after the call's end. CPU burnt beyond the no-call line is
threads spinning after the call (OpenMP's wait policy) -- time that, in an
interleaved run with no settle, the next framework's call competes with.
Prints medians over the repeats, in ms of CPU.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import envsetup  # noqa: E402

SINCE = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def burnt_after(fn, repeats):
    """Median CPU ms of the process at each SINCE (s) after fn() returns."""
    import numpy as np
    rows = []
    for _ in range(repeats):
        fn()
        c0, w0, row = time.process_time(), time.perf_counter(), []
        for s in SINCE:
            while time.perf_counter() - w0 < s:
                time.sleep(0.0005)
            row.append((time.process_time() - c0) * 1e3)
        rows.append(row)
    return np.median(np.array(rows), axis=0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    envsetup.apply()
    import seq2seq_bench
    import workloads
    envsetup.limit_threads()
    case = next(c for c in workloads.CASES if c.id == "E-seq2seq-train")
    runners, _ = seq2seq_bench.runners(case, log=lambda m: None)
    calls = {"lstmkit": runners["lstmkit"][0], "torch": runners["torch_default"][0], "no call": lambda: None}
    for fn in calls.values():
        fn(), fn()
    print("CPU ms burnt by the process after the call, by wall time since its end "
          f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load {os.getloadavg()[0]:.1f}):")
    for name, fn in calls.items():
        med = burnt_after(fn, args.repeats)
        print(f"  {name:8s} " + "  ".join(f"{s * 1e3:g} ms: {m:.1f}" for s, m in zip(SINCE, med)))


if __name__ == "__main__":
    main()
