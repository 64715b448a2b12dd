"""One beam-search step's candidate selection, compiled: for each sentence, the
`k` best of its k x V candidate extensions, without building the (k, V)
log-probabilities.

    log p_jv   = (z_jv - m_j) - log sum_u exp(z_ju - m_j)    m_j = max_u z_ju: log-softmax of row j
    cand_jv    = score_j + log p_jv                          score after extending prefix j by token v
    finished j: its one candidate is (j, PAD) at score_j (a finished prefix continues with padding, free)

The k best candidates come back best first; equal scores keep the order of
(j, v) (the earlier prefix, then the smaller token id, first). Nothing of
size V is written: each row is read three times (max, sum of exponentials,
the scan against the current k-th best), in the cache. float32 logits take
loss_kernels' vectorised exponential for the sum (about 5e-7 relative, beside
float32's own 6e-8); float64 logits take math.exp.
"""
import math

import numpy as np
from numba import njit

from ..loss_kernels import _exp_f32

_JIT = dict(cache=True, nogil=True)


@njit(**_JIT)
def _insert(vals, idx, v, i):
    """Put candidate (v, i) into vals/idx (k best so far, best first) if it beats the last."""
    k = vals.shape[0]
    if not v > vals[k - 1]:
        return
    p = k - 1
    while p > 0 and v > vals[p - 1]:                  # strict: an earlier candidate stays ahead on a tie
        vals[p] = vals[p - 1]
        idx[p] = idx[p - 1]
        p -= 1
    vals[p] = v
    idx[p] = i


@njit(**_JIT)
def _log_normaliser_f32(row, e, bits):
    """-> (m, log sum_v exp(z_v - m)), m the row's max: log p_v = (z_v - m) - the second."""
    m = row[0]
    for v in range(row.shape[0]):
        m = max(m, row[v])
    _exp_f32(row, m, e, bits)
    s = 0.0
    for v in range(row.shape[0]):
        s += e[v]
    return m, math.log(s)


@njit(**_JIT)
def _log_normaliser_f64(row):
    m = row[0]
    for v in range(row.shape[0]):
        if row[v] > m:
            m = row[v]
    s = 0.0
    for v in range(row.shape[0]):
        s += math.exp(row[v] - m)
    return m, math.log(s)


def select(logits, scores, finished, pad, new_scores, origin, token):
    """logits (B k, V), scores (B, k) float64, finished (B, k) -> fills new_scores (B, k),
    origin (B, k) (which prefix each survivor extends) and token (B, k), best first."""
    _select(np.ascontiguousarray(logits), scores, finished, pad, logits.dtype == np.float32,
            new_scores, origin, token)


@njit(**_JIT)
def _select(logits, scores, finished, pad, f32, new_scores, origin, token):
    B, k = scores.shape
    V = logits.shape[1]
    vals = np.empty(k, np.float64)
    idx = np.empty(k, np.int64)
    e = np.empty(V, np.float32)
    bits = np.empty(V, np.int32)
    for b in range(B):
        vals[:] = -np.inf
        idx[:] = -1
        for j in range(k):
            s = scores[b, j]
            r = b * k + j
            if finished[b, j]:
                _insert(vals, idx, s, j * V + pad)
                continue
            if s == -np.inf:
                continue                                # every candidate of this prefix is -inf
            row = logits[r]
            m, log_sum = _log_normaliser_f32(row, e, bits) if f32 else _log_normaliser_f64(row)
            for v in range(V):
                c = s + ((row[v] - m) - log_sum)                       # score + log p_v
                if c > vals[k - 1]:
                    _insert(vals, idx, c, j * V + v)
        # fewer than k finite candidates (a tiny vocabulary): fill with -inf ones, in (j, v) order
        n = 0
        for p in range(k):
            if idx[p] >= 0:
                n += 1
        i = 0
        while n < k:
            used = False
            for p in range(n):
                if idx[p] == i:
                    used = True
            if not used:
                vals[n] = -np.inf
                idx[n] = i
                n += 1
            i += 1
        for p in range(k):
            new_scores[b, p] = vals[p]
            origin[b, p] = idx[p] // V
            token[b, p] = idx[p] % V
