"""Compiled passes (Numba) for the cross-entropy of a softmax head given its
logits and class ids, with label smoothing: what losses.SparseCategoricalCrossentropy
runs on logits of shape (N, C), and seq2seq's per-token loss. NumPy needs five
passes over the (N, C) array and three temporaries of its size; these visit
each row once while it sits in the cache, rows spread over the engine's own
threads (kernels/threads.py), not numba's prange: prange's OpenMP pool is a
second pool whose threads spin after each loss, and in a training step they
took the second core from the engine's threads for the products and
recurrent kernels that come next.

    lse_n   = log sum_c exp z_nc                              log-sum-exp of row n
    nll_n   = lse_n - z_n,y_n                                 -log p_n,y_n
    loss_n  = (1 - eps) nll_n + eps (lse_n - mean_c z_nc)     -sum_c q_nc log p_nc,
                                                              q = (1 - eps) onehot(y) + eps / C
    dz_nc   = dl_n (exp(z_nc - lse_n) - q_nc)                 the gradient, p - q per row

xent_forward / xent_backward are the two halves (a loss whose backward comes
later); xent_fused does both in one visit of each row and writes the gradient
over the logits (a training step that needs the gradient at once).

float32 logits take their own kernels, because the exponential is most of the
work (4000 classes: 4000 exponentials per row): math.exp in Numba is a scalar
call per element (no vector library is linked), 6-10x slower than a vector
loop. So float32 computes exp(x), x <= 0, itself, in a loop LLVM vectorises:

    k = round(x / ln 2), r = x - k ln 2 (ln 2 in two parts, exact k ln2_hi)   |r| <= ln(2)/2
    exp(r) ~ 1 + r + r^2/2 + ... + r^6/720                                    (Taylor, error < 2e-8)
    exp(x) = exp(r) 2^k, 2^k built from its exponent bits (k + 127) << 23

relative error under 5e-7 (a few float32 ulps; tests/test_loss_kernels.py),
and exactly 0 below x = -87 (where float32's normal range ends). The sums run
in float32 with reassociation allowed (vector partial sums). float64 keeps
math.exp, exact to the last bit, for the gradient checks.
"""
import math

import numpy as np
from numba import njit

_JIT = dict(cache=True, nogil=True)
# reassociation (vector sums) and contraction, but not "no NaN / no inf": a NaN logit stays NaN
_FAST = {"reassoc", "contract", "arcp", "nsz", "afn"}

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693145751953125)                 # ln 2 with the low 12 bits zero: k ln2_hi is exact
_LN2_LO = np.float32(1.428606765330187e-06)             # ln 2 - _LN2_HI
_FLOOR = np.float32(-87.0)                              # exp(-87) ~ 1.6e-38, near float32's smallest normal


@njit(fastmath=_FAST, **_JIT)
def _exp_f32(x, shift, out, bits):
    """out[c] <- exp(x[c] - shift) (x - shift <= about 0), float32; bits: scratch (C,) int32."""
    scale = bits.view(np.float32)
    for c in range(x.shape[0]):
        v = x[c] - shift
        w = max(v, _FLOOR)
        k = np.floor(w * _LOG2E + np.float32(0.5))                       # round(w / ln 2)
        r = w - k * _LN2_HI - k * _LN2_LO                                  # w - k ln 2, |r| <= 0.35
        q = np.float32(1.0) + r * (np.float32(1.0) + r * (np.float32(0.5) + r * (
            np.float32(1 / 6) + r * (np.float32(1 / 24) + r * (np.float32(1 / 120)
                                                                + r * np.float32(1 / 720))))))
        out[c] = q if v >= _FLOOR else np.float32(0.0)                     # exp(r)
        bits[c] = (np.int32(k) + np.int32(127)) << 23                      # the bits of 2^k
    for c in range(x.shape[0]):
        out[c] *= scale[c]                                                  # exp(r) 2^k


@njit(fastmath=_FAST, **_JIT)
def _row_stats_f32(row, e, bits):
    """-> (max, sum_c exp(row_c - max), sum of the row); e <- exp(row - max)."""
    m = row[0]
    total = np.float32(0.0)
    for c in range(row.shape[0]):
        m = max(m, row[c])
        total += row[c]
    _exp_f32(row, m, e, bits)
    s = np.float32(0.0)
    for c in range(row.shape[0]):
        s += e[c]
    return m, s, total


@njit(fastmath=_FAST, **_JIT)
def _forward_f32(lo, hi, z, y, eps, lse, losses, nlls, grad_scale):
    """The loss of rows lo..hi-1; with grad_scale (N,) not empty, also the gradient
    dl_n (p_n - q_n) written over z (the fused pass)."""
    C = z.shape[1]
    off = np.float32(eps / C)
    e = np.empty(C, np.float32)
    bits = np.empty(C, np.int32)
    for n in range(lo, hi):
        row = z[n]
        m, s, total = _row_stats_f32(row, e, bits)
        l = m + math.log(s)                                                # log sum_c exp z_c
        nll = l - row[y[n]]                                                # -log p_y
        lse[n] = l
        nlls[n] = nll
        losses[n] = (1.0 - eps) * nll + eps * (l - total / C)              # -sum_c q_c log p_c
        if grad_scale.shape[0]:
            d = np.float32(grad_scale[n])
            inv = np.float32(1.0) / s
            for c in range(C):
                row[c] = d * (e[c] * inv - off)                             # dl (p - eps/C)
            row[y[n]] -= d * np.float32(1.0 - eps)                          # ... - (1 - eps) at the target


@njit(fastmath=_FAST, **_JIT)
def _backward_f32(lo, hi, z, y, eps, lse, dl, out):
    C = z.shape[1]
    off = np.float32(eps / C)
    bits = np.empty(C, np.int32)
    for n in range(lo, hi):
        o = out[n]
        _exp_f32(z[n], np.float32(lse[n]), o, bits)                        # p = exp(z - lse)
        d = np.float32(dl[n])
        for c in range(C):
            o[c] = d * (o[c] - off)                                         # dl (p - eps/C)
        o[y[n]] -= d * np.float32(1.0 - eps)                                # ... - (1 - eps) at the target


@njit(**dict(_JIT, fastmath=False))
def _forward_exact(lo, hi, z, y, eps, lse, losses, nlls, grad_scale):
    C = z.shape[1]
    for n in range(lo, hi):
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
        if grad_scale.shape[0]:
            d = grad_scale[n]
            for c in range(C):
                row[c] = d * (math.exp(row[c] - l) - eps / C)   # dl (p - eps/C)
            row[y[n]] -= d * (1.0 - eps)                         # ... - (1 - eps) at the target


@njit(**dict(_JIT, fastmath=False))
def _backward_exact(lo, hi, z, y, eps, lse, dl, out):
    C = z.shape[1]
    off = eps / C
    for n in range(lo, hi):
        d = dl[n]
        l = lse[n]
        for c in range(C):
            out[n, c] = d * (math.exp(z[n, c] - l) - off)        # p - eps/C
        out[n, y[n]] -= d * (1.0 - eps)                          # ... - (1 - eps) at the target


_NO_GRAD = np.empty(0)


def _run(kernel, z, *args):
    """kernel(lo, hi, z, *args) over row ranges of z on the engine's threads
    (kernels/threads.py): the rows split when there are at least
    policy.LOSS_MIN_ELEMENTS logits. Each row is computed alike in any range,
    so the split changes no number."""
    from .kernels import policy, threads
    from .settings import config
    N = z.shape[0]
    n = policy.loss_threads(N, z.size, config.threads)
    threads.run(kernel, threads.bounds(N, n), z, *args)


def xent_forward(z, y, eps, lse, losses, nlls):
    """z (N, C) logits, y (N,) ids -> fills lse, losses, nlls (N,) (float64)."""
    f = _forward_f32 if z.dtype == np.float32 else _forward_exact
    _run(f, z, y, float(eps), lse, losses, nlls, _NO_GRAD)


def xent_backward(z, y, eps, lse, dl, out):
    """out (N, C) <- dl_n (softmax(z_n) - q_n): the gradient for the logits."""
    f = _backward_f32 if z.dtype == np.float32 else _backward_exact
    _run(f, z, y, float(eps), lse, np.ascontiguousarray(dl, dtype=np.float64), out)


def xent_fused(z, y, eps, dl, lse, losses, nlls):
    """xent_forward, then the gradient dl_n (p_n - q_n) written over z, in one visit of each row."""
    f = _forward_f32 if z.dtype == np.float32 else _forward_exact
    _run(f, z, y, float(eps), lse, losses, nlls, np.ascontiguousarray(dl, dtype=np.float64))
