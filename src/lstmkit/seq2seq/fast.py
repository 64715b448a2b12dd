"""Small compiled helpers for seq2seq (Numba), one idea each.

softmax_xent: the loss over the output layer's logits, one pass per row
(rows spread over the threads): the row's max, log-sum-exp, the smoothed loss
and NLL, and the gradient p - q written over the logits. NumPy needs five
passes over the (N, V) array and three temporaries of its size.
"""
import math

import numpy as np
from numba import njit, prange

_JIT = dict(cache=True, nogil=True, fastmath=False)


@njit(parallel=True, **_JIT)
def softmax_xent(z, y, eps, need_grad, losses, nlls):
    N, V = z.shape
    off = eps / V
    for n in prange(N):
        row = z[n]
        m = row[0]
        for v in range(1, V):
            if row[v] > m:
                m = row[v]
        s = 0.0
        total = 0.0
        for v in range(V):
            s += math.exp(row[v] - m)
            total += row[v]
        lse = m + math.log(s)                                   # log sum_v exp z_v
        nll = lse - row[y[n]]                                   # -log p_y
        nlls[n] = nll
        losses[n] = (1.0 - eps) * nll + eps * (lse - total / V)  # -sum_v q_v log p_v
        if need_grad:
            for v in range(V):
                row[v] = math.exp(row[v] - lse) - off           # p - eps/V
            row[y[n]] -= 1.0 - eps                              # ... - (1 - eps) at the target
