"""Compile (or load from numba's disk cache) every kernel specialisation:
three cells x forward/backward/step/inference (cacheless forward and
forward_lookup), and the packed step and stream kernels of layers/stream.py,
x float32/float64 (the threaded batch path runs the same compiled functions,
so it needs nothing extra), plus the optimizer updates and the Embedding
gradient in both dtypes.

    python -m lstmkit.kernels.warmup

Prints the wall time. From a cold cache this is the compile time CI pays once;
afterwards it is the time to load every kernel from disk.
"""
import time

import numpy as np


def warm_all():
    from . import KERNELS, packed, support
    options = {"lstm": {}, "gru": {"reset_after": True}, "simple_rnn": {"activation": "tanh"}}
    table_options = {"lstm": {}, "gru": {"reset_after": True}, "simple_rnn": {}}
    for name, mod in KERNELS.items():
        G, S = mod.N_GATES, len(mod.STATE_NAMES)
        for dtype in support.DTYPES:
            B, T, D, H = 2, 3, 2, 2
            x = np.ones((B, T, D), dtype)
            W_x, W_h = np.full((D, G * H), 0.1, dtype), np.full((H, G * H), 0.1, dtype)
            b = np.zeros(G * H, dtype)
            hs, state, cache = mod.forward(x, W_x, W_h, b, b, mask=np.ones((B, T)), **options[name])
            mod.backward(hs, state, cache)
            mod.step(x[:, 0], state, W_x, W_h, b, b, **options[name])
            mod.step(x[:, 0], state, W_x, W_h, b, b, out=state, **options[name])
            # inference: the loop over a gate-major projection, then over a folded table
            mod.forward(x, W_x, W_h, b, b, mask=np.ones((B, T)), need_cache=False, **options[name])
            table = mod.project_table(np.ones((5, D), dtype), W_x, b, b, **table_options[name])
            mod.forward_lookup(np.zeros((B, T), np.int64), table, W_h, **options[name])
            packed.stream_entry(name, dtype)                  # what RNNLayer.stream and .step run
            packed.step_kernel(name, dtype)
    warm_training()


def warm_training():
    """The kernels of a training step outside the cells; the argument types
    are the ones optimizers.py and layers/embedding.py pass."""
    from . import embedding, optim, support
    for c in support.DTYPES:                     # np.float32, np.float64: also the scalars' type
        a = [np.zeros(4, c) for _ in range(4)]
        optim.sgd(a[0], a[1], c(1), c(0.1))
        for nesterov in (False, True):
            optim.sgd_momentum(a[0], a[1], a[2], c(1), c(0.1), c(0.9), nesterov)
        optim.adam(*a, *(c(0.5) for _ in range(8)))
        optim.rmsprop(*a[:3], *(c(0.5) for _ in range(5)))
        optim.rmsprop_momentum(*a, *(c(0.5) for _ in range(6)))
        optim.sum_squares(a[0])
        table = np.zeros((3, 2), c)
        embedding.scatter_add_rows(table, np.zeros(2, np.int64), np.ones((2, 2), c),
                                   np.empty(3, np.int64), 0, np.zeros(3, np.bool_))


def main():
    t0 = time.perf_counter()
    import lstmkit.kernels  # noqa: F401
    t1 = time.perf_counter()
    warm_all()
    t2 = time.perf_counter()
    print(f"import {t1 - t0:.2f} s, compile or load all kernels {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
