"""Compile (or load from the kernel cache, kernels/cache.py) the kernels ahead
of use: for each cell and dtype the training loops (fused and unfused), the
inference loop over projections and over a folded embedding, the products
around them, the streaming step and stream kernels, and the optimizer and
Embedding kernels.

    lstmkit warmup [--cells lstm,gru] [--dtypes float32]
    python -m lstmkit.kernels.warmup

Prints the time taken: from an empty cache this is the compile time a first
use would pay; afterwards the time to load every kernel from disk.
"""
import argparse
import time

import numpy as np

CELLS = ("lstm", "gru", "simple_rnn")
DTYPES = ("float32", "float64")
_OPTIONS = {"lstm": [{}], "gru": [{"reset_after": True}], "simple_rnn": [{"activation": "tanh"}]}


def warm_cell(name, dtype, first=None):
    """Run every path of one cell kernel once on tiny data (the argument types
    of a real call are the same, so the compiled code is what a real call
    uses). In the order a model needs them after a first training call:
    training (fused as `first` says, first), the optimizer and Embedding
    kernels, inference (over projections and over a folded embedding), the
    other training variant, the streaming kernels."""
    from . import KERNELS, packed, policy
    mod, dtype = KERNELS[name], np.dtype(dtype)
    G = mod.N_GATES
    B, T, D, H = 5, 3, 2, 3
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    W_x = rng.standard_normal((D, G * H)).astype(dtype)
    W_h = rng.standard_normal((H, G * H)).astype(dtype)
    b = np.zeros(G * H, dtype)
    mask = np.ones((B, T))
    variants = (True, False) if first is None else (first, not first)
    for opts in _OPTIONS[name]:
        def train(fuse):
            with policy.forced(fuse_input=fuse):
                hs, state, cache = mod.forward(x, W_x, W_h, b, b, mask=mask, **opts)
                mod.backward(hs, state, cache)
        train(variants[0])
        warm_training(dtype)
        table_opts = {"reset_after": opts["reset_after"]} if name == "gru" else {}
        lookup_opts = dict(opts, b_h=b) if name == "gru" else opts
        table = mod.project_table(rng.standard_normal((7, D)).astype(dtype), W_x, b, b, **table_opts)
        mod.forward_lookup(np.zeros((B, T), np.int64), table, W_h, **lookup_opts)
        mod.forward(x, W_x, W_h, b, b, mask=mask, need_cache=False, **opts)
        train(variants[1])
    packed.stream_entry(name, dtype)                           # what RNNLayer.stream and .step run
    packed.step_kernel(name, dtype)


def warm_training(dtype, common_only=False):
    """The kernels of a training step outside the cells; the argument types
    are the ones optimizers.py and layers/embedding.py pass. common_only:
    Adam and the Embedding gradient only."""
    from . import embedding, optim
    c = np.dtype(dtype).type                                   # np.float32 or np.float64: also the scalars' type
    a = [np.zeros(4, c) for _ in range(4)]
    optim.adam_range(0, 4, *a, *(c(0.5) for _ in range(8)))    # Adam over element ranges (optimizers.py)
    table = np.zeros((3, 2), c)
    embedding.scatter_add_rows(table, np.zeros(2, np.int64), np.ones((2, 2), c),
                               np.empty(3, np.int64), 0, np.zeros(3, np.bool_))
    if common_only:
        return
    optim.sgd(a[0], a[1], c(1), c(0.1))
    for nesterov in (False, True):
        optim.sgd_momentum(a[0], a[1], a[2], c(1), c(0.1), c(0.9), nesterov)
    optim.rmsprop(*a[:3], *(c(0.5) for _ in range(5)))
    optim.rmsprop_momentum(*a, *(c(0.5) for _ in range(6)))
    optim.sum_squares(a[0])


def warm(cells=CELLS, dtypes=DTYPES, progress=None):
    """Compile or load the kernels of `cells` in `dtypes`; returns seconds taken."""
    t0 = time.perf_counter()
    for dtype in dtypes:
        for name in cells:
            if progress:
                progress(f"{name} {dtype}")
            warm_cell(name, dtype)
    return time.perf_counter() - t0


def warm_all():
    return warm()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lstmkit.kernels.warmup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", default=",".join(CELLS))
    p.add_argument("--dtypes", default=",".join(DTYPES))
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    from . import cache
    t1 = time.perf_counter()
    seconds = warm(args.cells.split(","), args.dtypes.split(","))
    print(f"import {t1 - t0:.2f} s, compile or load the kernels {seconds:.2f} s "
          f"(cache: {cache.cache_dir()})")


if __name__ == "__main__":
    main()
