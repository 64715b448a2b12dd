"""The machine's measured float32 matrix-multiply peak (NumPy's BLAS, same threads)."""
import time

import numpy as np


def sgemm_gflops(n=2048, repeats=5):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    np.dot(a, b)                                             # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.dot(a, b)
        best = min(best, time.perf_counter() - t0)
    return {"n": n, "best_s": best, "gflops": 2.0 * n ** 3 / best / 1e9}


def rnn_flops(case):
    """FLOPs of the recurrent layers: 2*B*T*(D+H)*G*H per forward, 2x that for
    backward (the dense head and embedding are left out)."""
    from weights import GATES
    net, B, T = case.net, case.batch, case.length
    G, H = GATES[net.cell], net.units
    fwd, D = 0, net.embed
    for _ in range(net.layers):
        fwd += 2 * B * T * (D + H) * G * H
        D = H
    return fwd * (3 if case.kind == "train" else 1)
