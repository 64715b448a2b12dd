"""Compiled passes (Numba) for the cross-entropy of a softmax head given its
logits and class ids, with label smoothing: what losses.SparseCategoricalCrossentropy
runs on logits of shape (N, C). NumPy needs five passes over the (N, C) array
and three temporaries of its size; these need two passes forward and one
backward, rows spread over the threads.

    lse_n   = log sum_c exp z_nc                              log-sum-exp of row n
    nll_n   = lse_n - z_n,y_n                                 -log p_n,y_n
    loss_n  = (1 - eps) nll_n + eps (lse_n - mean_c z_nc)     -sum_c q_nc log p_nc,
                                                              q = (1 - eps) onehot(y) + eps / C
    dz_nc   = dl_n (exp(z_nc - lse_n) - q_nc)                 the gradient, p - q per row
"""
import math

from numba import njit, prange

_JIT = dict(cache=True, nogil=True, fastmath=False)


@njit(parallel=True, **_JIT)
def xent_forward(z, y, eps, lse, losses, nlls):
    """z (N, C) logits, y (N,) ids -> fills lse, losses, nlls (N,)."""
    N, C = z.shape
    for n in prange(N):
        row = z[n]
        m = row[0]
        for c in range(1, C):
            if row[c] > m:
                m = row[c]
        s = 0.0
        total = 0.0
        for c in range(C):
            s += math.exp(row[c] - m)
            total += row[c]
        l = m + math.log(s)                                      # log sum_c exp z_c
        nll = l - row[y[n]]                                      # -log p_y
        lse[n] = l
        nlls[n] = nll
        losses[n] = (1.0 - eps) * nll + eps * (l - total / C)   # -sum_c q_c log p_c


@njit(parallel=True, **_JIT)
def xent_backward(z, y, eps, lse, dl, out):
    """out (N, C) <- dl_n (softmax(z_n) - q_n): the gradient for the logits."""
    N, C = z.shape
    off = eps / C
    for n in prange(N):
        d = dl[n]
        l = lse[n]
        for c in range(C):
            out[n, c] = d * (math.exp(z[n, c] - l) - off)        # p - eps/C
        out[n, y[n]] -= d * (1.0 - eps)                          # ... - (1 - eps) at the target
