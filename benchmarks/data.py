"""The inputs of a case, as the seeds' models see them.

A and B: reviews of varying length (uniform between a tenth of the length and
the full length) as token ids, pre-padded with 0 to the full length, as
Keras's pad_sequences does for the seeds' IMDB model; no masking, so every
framework runs all the steps. Labels 0/1. D: random characters and
next-character targets. C: one step of random features.
"""
import numpy as np


def make(case, seed=1):
    rng = np.random.default_rng(seed)
    net, B, T = case.net, case.batch, case.length
    if case.kind == "step":
        return rng.normal(size=(B, net.embed)).astype(np.float32), None
    if net.per_step:
        x = rng.integers(0, net.vocab, size=(B, T), dtype=np.int64)
        y = rng.integers(0, net.vocab, size=(B, T), dtype=np.int64)   # next-character targets
        return x, y
    x = np.zeros((B, T), np.int64)
    lengths = rng.integers(max(1, T // 10), T + 1, size=B)
    for i, n in enumerate(lengths):
        x[i, T - n:] = rng.integers(1, net.vocab, size=n)             # pre-padding with 0
    y = rng.integers(0, 2, size=(B, 1)).astype(np.float32)             # binary labels
    return x, y
