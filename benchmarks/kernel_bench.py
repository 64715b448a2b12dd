"""Kernel-level timing: the fast recurrent kernels (layer-free: forward, and
forward + backward) against torch.nn.LSTM/GRU/RNN in the same process, per
step, and the streaming step. The model-level comparison is run.py.

    PYTHONPATH=src python benchmarks/kernel_bench.py [--quick] [--cells lstm,gru]
        [--configs "32,500,32,32;64,100,128,512"] [--repeats N] [--no-torch]

Times are total / T in microseconds, median of the repeats with the minimum in
parentheses, float32; the engines take turns call by call, so a change in the
machine's load hits both. torch runs on lk.config.threads threads with
flush-denormal on. "f+b" is forward plus backward (torch:
`out.sum().backward()`; fast: backward with dL/dh = 1).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import lstmkit as lk  # noqa: E402
from lstmkit.kernels import KERNELS  # noqa: E402

CONFIGS = [(32, 500, 32, 32), (128, 500, 32, 32), (64, 100, 128, 512)]   # (B, T, D, H)
QUICK = [(32, 500, 32, 32), (64, 100, 128, 512)]
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
TORCH = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}


def fast_case(cell, B, T, D, H, rng):
    mod, G = KERNELS[cell], GATES[cell]
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W_x = (rng.standard_normal((D, G * H)) / np.sqrt(D)).astype(np.float32)
    W_h = (rng.standard_normal((H, G * H)) / np.sqrt(H)).astype(np.float32)
    b = np.zeros(G * H, np.float32)
    dhs = np.ones((B, T, H), np.float32)

    def fwd():
        return mod.forward(x, W_x, W_h, b, b, need_cache=False)

    def fwd_bwd():
        hs, state, cache = mod.forward(x, W_x, W_h, b, b)
        return mod.backward(dhs, None, cache)
    return fwd, fwd_bwd


def torch_case(cell, B, T, D, H):
    import torch
    net = getattr(torch.nn, TORCH[cell])(D, H, batch_first=True)
    x = torch.randn(B, T, D)
    xg = x.clone().requires_grad_(True)

    def fwd():
        with torch.inference_mode():
            return net(x)

    def fwd_bwd():
        out, _ = net(xg)
        out.sum().backward()
    return fwd, fwd_bwd


def interleaved(fns, repeats):
    """(medians, minima) of each fn's time, the fns taking turns."""
    for fn in fns:
        fn()                                                   # warm up (compile, caches)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times], [min(ts) for ts in times]


def stream_case(n_calls):
    layer = lk.LSTM(32, input_dim=32, seed=0)
    s = layer.stream(batch=1)
    x_t = np.random.default_rng(1).standard_normal((1, 32)).astype(np.float32)

    def run():
        for _ in range(n_calls):
            s.step(x_t)
    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"fewer shapes {QUICK} and 3 repeats")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--cells", default="lstm")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--configs", default=None, help="e.g. 32,500,32,32;128,500,32,32")
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    rng = np.random.default_rng(0)
    configs = (QUICK if args.quick else CONFIGS) if args.configs is None else [
        tuple(int(v) for v in c.split(",")) for c in args.configs.split(";")]
    if not args.no_torch:
        import torch
        torch.set_num_threads(lk.config.threads)
        torch.set_flush_denormal(True)
    print(f"{'cell':>10} {'B':>4} {'T':>4} {'D':>4} {'H':>4} | {'fast fwd':>14} {'fast f+b':>14} | "
          f"{'torch fwd':>14} {'torch f+b':>14}   us per step: median (min)")
    for cell in args.cells.split(","):
        for B, T, D, H in configs:
            fns = list(fast_case(cell, B, T, D, H, rng))
            if not args.no_torch:
                fns += list(torch_case(cell, B, T, D, H))
            med, best = interleaved(fns, repeats)
            cols = [f"{m / T * 1e6:7.1f} ({b / T * 1e6:.1f})" for m, b in zip(med, best)]
            print(f"{cell:>10} {B:4d} {T:4d} {D:4d} {H:4d} | " + " ".join(cols[:2]) + " | "
                  + " ".join(cols[2:]))
    n_calls = 2000
    med, best = interleaved([stream_case(n_calls)], repeats)
    print(f"stream step, LSTM batch 1, D 32, H 32: {med[0] / n_calls * 1e6:.2f} us per call median "
          f"({best[0] / n_calls * 1e6:.2f} min)")


if __name__ == "__main__":
    main()
