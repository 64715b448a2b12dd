"""What flushing subnormals buys: forward+backward, B=32, T=500, D=32, H=32,
float32, with support.FLUSH_DENORMALS on and off.

    python -m lstmkit.kernels.bench_denormals

The loss sees only the last output (dhs is zero except at t = T-1), and the
forget gate bias is 1 (f ~ 0.7): the gradient decays through the backward
recurrence and about 12% of the preactivation gradients pass through the
float32 subnormal range on their way to zero, the case where the slow path
hurts. (With f ~ 0.95 nothing gets that small in 500 steps.)
"""
import statistics
import time

import numpy as np

from . import lstm, support



def main(repeats=7):
    B, T, D, H = 32, 500, 32, 32
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W_x = (rng.standard_normal((D, 4 * H)) / np.sqrt(D)).astype(np.float32)
    W_h = (rng.standard_normal((H, 4 * H)) / np.sqrt(H) * 0.5).astype(np.float32)
    b = np.zeros(4 * H, np.float32)
    b[H:2 * H] = 1.0                                           # forget gate bias
    dhs = np.zeros((B, T, H), np.float32)
    dhs[:, -1] = 1.0

    def run():
        _, _, cache = lstm.forward(x, W_x, W_h, b)
        lstm.backward(dhs, None, cache)

    # count subnormal preactivation gradients (computed without flushing)
    support.FLUSH_DENORMALS = False
    _, _, cache = lstm.forward(x, W_x, W_h, b)
    dz = []
    orig = support.input_side_grads

    def spy(x_tm, da_all, W_x):
        dz.append(da_all.copy())
        return orig(x_tm, da_all, W_x)
    support.input_side_grads = spy
    lstm.backward(dhs, None, cache)
    support.input_side_grads = orig
    tiny = np.finfo(np.float32).tiny
    frac = float(np.mean((dz[0] != 0) & (np.abs(dz[0]) < tiny)))
    print(f"subnormal fraction of dz without flushing: {frac:.3f}")

    times = {True: [], False: []}
    for flag in (True, False):
        support.FLUSH_DENORMALS = flag
        run()
    for _ in range(repeats):
        for flag in (True, False):
            support.FLUSH_DENORMALS = flag
            t0 = time.perf_counter()
            run()
            times[flag].append(time.perf_counter() - t0)
    support.FLUSH_DENORMALS = True
    for flag in (True, False):
        ts = times[flag]
        print(f"flush={flag!s:5}: forward+backward {statistics.median(ts) * 1e3:7.1f} ms median, "
              f"{min(ts) * 1e3:7.1f} ms min ({statistics.median(ts) / T * 1e6:.1f} us/step)")


if __name__ == "__main__":
    main()
