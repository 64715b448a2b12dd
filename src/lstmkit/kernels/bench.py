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


def median_time(fn, repeats):
    fn()                                                       # warm up (compile, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    if not args.no_torch:
        import torch
        torch.set_num_threads(2)
        torch.set_flush_denormal(True)
    print(f"{'B':>4} {'T':>4} {'D':>4} {'H':>4} | {'fast fwd':>9} {'fast f+b':>9} | "
          f"{'torch fwd':>9} {'torch f+b':>9}   (us per step)")
    for B, T, D, H in CONFIGS:
        row = [median_time(f, args.repeats) / T * 1e6 for f in fast_case(B, T, D, H, rng)]
        if not args.no_torch:
            time.sleep(1.0)            # let NumPy's/SciPy's BLAS threads stop spinning first
            row += [median_time(f, args.repeats) / T * 1e6 for f in torch_case(B, T, D, H)]
        print(f"{B:4d} {T:4d} {D:4d} {H:4d} | " + " ".join(f"{v:9.1f}" for v in row[:2]) + " | "
              + " ".join(f"{v:9.1f}" for v in row[2:]))


if __name__ == "__main__":
    main()
