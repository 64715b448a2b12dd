"""What flushing subnormals buys: forward+backward of the fast LSTM, B=32,
T=500, D=32, H=32, float32, with lk.config(flush_denormals=...) on and off.

    PYTHONPATH=src python benchmarks/denormals.py [--repeats 30]

The loss sees only the last output (dhs is zero except at t = T-1), and the
forget gate bias is 1 (f ~ 0.7): the gradient decays through the backward
recurrence and part of the preactivation gradients pass through the float32
subnormal range on their way to zero, the case where the slow path hurts.
(With f ~ 0.95 nothing gets that small in 500 steps.) The fraction printed
counts them in dL/dz, which backward leaves in the forward's gate cache.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import lstmkit as lk  # noqa: E402
from lstmkit.kernels import lstm  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args(argv)
    B, T, D, H = 32, 500, 32, 32
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W_x = (rng.standard_normal((D, 4 * H)) / np.sqrt(D)).astype(np.float32)
    W_h = (rng.standard_normal((H, 4 * H)) / np.sqrt(H) * 0.5).astype(np.float32)
    b = np.zeros(4 * H, np.float32)
    b[H:2 * H] = 1.0                                           # forget gate bias
    dhs = np.zeros((B, T, H), np.float32)
    dhs[:, -1] = 1.0

    with lk.config(flush_denormals=False):
        _, _, cache = lstm.forward(x, W_x, W_h, b)
        lstm.backward(dhs, None, cache)
    dz = cache["gates"]                                        # now dL/dz, (4, T, B*H)
    tiny = np.finfo(np.float32).tiny
    frac = float(np.mean((dz != 0) & (np.abs(dz) < tiny)))
    print(f"subnormal fraction of dL/dz without flushing: {frac:.3f}")

    def run():
        _, _, c = lstm.forward(x, W_x, W_h, b)
        lstm.backward(dhs, None, c)

    times = {True: [], False: []}
    for flag in (True, False):
        with lk.config(flush_denormals=flag):
            run()
    for _ in range(args.repeats):
        for flag in (True, False):
            with lk.config(flush_denormals=flag):
                t0 = time.perf_counter()
                run()
                times[flag].append(time.perf_counter() - t0)
    for flag in (True, False):
        ts = times[flag]
        print(f"flush={flag!s:5}: forward+backward {statistics.median(ts) * 1e3:7.1f} ms median, "
              f"{min(ts) * 1e3:7.1f} ms min ({statistics.median(ts) / T * 1e6:.1f} us/step)")


if __name__ == "__main__":
    main()
