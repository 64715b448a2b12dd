"""Benchmark of the fast LSTM engine against torch.nn.LSTM in the same process.

    python -m lstmkit.kernels.bench [--quick]

Per-step times (total time / T), medians of several repeats, float32, both
libraries on 2 threads, torch with flush-denormal on. Numbers go to
docs/kernels.md.
"""
import argparse
import statistics
import time

import numpy as np

from . import lstm, support

CONFIGS = [(32, 500, 32, 32), (128, 500, 32, 32), (64, 100, 128, 512)]   # (B, T, D, H)


def fast_case(B, T, D, H, rng):
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W_x = (rng.standard_normal((D, 4 * H)) / np.sqrt(D)).astype(np.float32)
    W_h = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(np.float32)
    b_x, b_h = np.zeros(4 * H, np.float32), np.zeros(4 * H, np.float32)
    dhs = np.ones((B, T, H), np.float32)

    def fwd():
        return lstm.forward(x, W_x, W_h, b_x, b_h)

    def fwd_bwd():
        hs, state, cache = lstm.forward(x, W_x, W_h, b_x, b_h)
        return lstm.backward(dhs, None, cache)
    return fwd, fwd_bwd


def torch_case(B, T, D, H):
    import torch
    net = torch.nn.LSTM(D, H, batch_first=True)
    x = torch.randn(B, T, D)
    xg = x.clone().requires_grad_(True)

    def fwd():
        with torch.no_grad():
            return net(x)

    def fwd_bwd():
        out, _ = net(xg)
        out.sum().backward()
    return fwd, fwd_bwd


def interleaved_medians(fns, repeats):
    """Median time of each fn, running them in turn so that all see the same
    machine load (the benchmark machine is shared)."""
    for fn in fns:
        fn()                                                   # warm up (compile, caches)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times], [min(ts) for ts in times]


def step_case(n_calls=2000):
    """Streaming: batch 1, input 32, hidden 32, one call per token."""
    rng = np.random.default_rng(1)
    D = H = 32
    x_t = rng.standard_normal((1, D)).astype(np.float32)
    W_x = (rng.standard_normal((D, 4 * H)) * 0.2).astype(np.float32)
    W_h = (rng.standard_normal((H, 4 * H)) * 0.2).astype(np.float32)
    b = np.zeros(4 * H, np.float32)
    state = (np.zeros((1, H), np.float32), np.zeros((1, H), np.float32))

    def fast_new():
        for _ in range(n_calls):
            lstm.step(x_t, state, W_x, W_h, b, b)

    def fast_inplace():
        s = (state[0].copy(), state[1].copy())
        for _ in range(n_calls):
            lstm.step(x_t, s, W_x, W_h, b, b, out=s)
    return [fast_new, fast_inplace]


def torch_step_case(n_calls=2000):
    import torch
    net = torch.nn.LSTM(32, 32)
    x_t = torch.randn(1, 1, 32)
    state = (torch.zeros(1, 1, 32), torch.zeros(1, 1, 32))

    def run():
        with torch.no_grad():
            for _ in range(n_calls):
                net(x_t, state)
    return [run]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--configs", default=None, help="e.g. 32,500,32,32;128,500,32,32")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    configs = CONFIGS if args.configs is None else [
        tuple(int(v) for v in c.split(",")) for c in args.configs.split(";")]
    if not args.no_torch:
        import torch
        torch.set_num_threads(2)
        torch.set_flush_denormal(True)
    print(f"{'B':>4} {'T':>4} {'D':>4} {'H':>4} | {'fast fwd':>9} {'fast f+b':>9} | "
          f"{'torch fwd':>9} {'torch f+b':>9}   us per step: median (min)")
    for B, T, D, H in configs:
        fns = list(fast_case(B, T, D, H, rng))
        if not args.no_torch:
            fns += list(torch_case(B, T, D, H))
        med, best = interleaved_medians(fns, args.repeats)
        cells = [f"{m / T * 1e6:7.1f} ({b / T * 1e6:.1f})" for m, b in zip(med, best)]
        print(f"{B:4d} {T:4d} {D:4d} {H:4d} | " + " ".join(cells[:2]) + " | " + " ".join(cells[2:]))
    n_calls = 2000
    fns = step_case(n_calls) + ([] if args.no_torch else torch_step_case(n_calls))
    med, best = interleaved_medians(fns, args.repeats)
    names = ["fast step", "fast step, out=state", "torch nn.LSTM step"]
    for name, m, b in zip(names, med, best):
        print(f"{name:22s} batch 1, D 32, H 32: {m / n_calls * 1e6:6.2f} us per call median "
              f"({b / n_calls * 1e6:.2f} min)")


if __name__ == "__main__":
    main()
