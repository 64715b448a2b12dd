"""The inputs of a case: token ids (B, T) and labels, or one step of features for C."""
import numpy as np


def make(case, seed=1):
    rng = np.random.default_rng(seed)
    net, B, T = case.net, case.batch, case.length
    if case.kind == "step":
        return rng.normal(size=(B, net.embed)).astype(np.float32), None
    x = rng.integers(0, net.vocab, size=(B, T), dtype=np.int64)
    if net.per_step:
        y = rng.integers(0, net.vocab, size=(B, T), dtype=np.int64)   # next-character targets
    else:
        y = rng.integers(0, 2, size=(B, 1)).astype(np.float32)         # binary labels
    return x, y
