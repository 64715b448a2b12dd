"""One step of each cell, for all rows of a batch, over packed weights: the
math behind kernels/packed.py (RNNLayer.step and RNNLayer.stream).

`pack` (D + H + 2, G*H), one C array (layers/packed.py keeps the layer's
params as views into it):

    rows 0 .. D-1      W_x
    rows D .. D+H-1    W_h
    row  D+H           b_x   (zeros without a bias)
    row  D+H+1         b_h   (zeros without a second bias)

Numba caches packed.py's kernels with this file's code compiled in and
checks only packed.py for changes: after editing this file, delete the
kernels' __pycache__ (docs/kernels.md, "Compile time").

Gate order and equations are the cells' (lstmkit.cells). Every function here
reads all of row r of h and c before writing row r of h_out and c_out, and the
BLAS path reads all of h first, so the outputs may be the state arrays.

One LSTM step (D = H = 32, float32), measured inside a compiled loop, with
the input and recurrent products done two ways:

    batch             1       2       4      16      64     256
    plain loops     0.51    1.36    2.68    9.51   39.9    121   us
    one np.dot      0.68    0.81    1.35    4.33   15.9     53   us

At batch 1 the loops win (the BLAS call's fixed cost); from 2 rows on one
BLAS product of [x | h] with the stacked [W_x; W_h] does. BLAS_MIN_ROWS
is that switch.

Each BLAS call is kept at BLAS_MAX_WORK multiply-adds or fewer (the batch
split into row blocks): OpenBLAS gives a product one thread per 4 * 65536
multiply-adds (interface/gemm.c), so up to that it runs on the calling
thread, above that on two, which on this shared machine wait for each
other -- batch 128 took 68-200 us per LSTM step with two BLAS threads and
44 us with one. Switching threads from here is no option (threadpoolctl
costs 6 us per switch), so the products are kept small instead. A layer
whose single row is above the limit uses the loops.
"""
import numpy as np
from numba import njit

from .activations import fast_tanh
from .support import cast_like

_JIT = dict(cache=True, nogil=True, error_model="numpy")

BLAS_MIN_ROWS = 2
BLAS_MAX_WORK = 4 * 65536


def pack_shape(D, H, n_gates):
    return (D + H + 2, n_gates * H)


@njit(**_JIT)
def _accumulate(Z, zr, lo, n, V, r, W, row0, col0):
    """Z[zr, lo:lo+n] += V[r] @ W[row0:row0+k, col0:col0+n], k = V.shape[1].

    Four rows of W per pass over z: z then goes through memory once per four
    rows instead of once per row. Measured on 64 x 128 float32: 0.79 us one
    row at a time, 0.36 us four at a time (the 32 KB of weights coming from L2
    then bound it; FMA contraction and eight rows gained nothing).
    Indices rather than row views (V[r]): numba counts references on every
    view, atomically, which cost about 10% of the LSTM step."""
    k = V.shape[1]
    k4 = k - k % 4
    for i in range(0, k4, 4):
        q = row0 + i
        v0, v1, v2, v3 = V[r, i], V[r, i + 1], V[r, i + 2], V[r, i + 3]
        for j in range(n):
            c = col0 + j
            Z[zr, lo + j] += (v0 * W[q, c] + v1 * W[q + 1, c]) + (v2 * W[q + 2, c] + v3 * W[q + 3, c])
    for i in range(k4, k):
        vi = V[r, i]
        for j in range(n):
            Z[zr, lo + j] += vi * W[row0 + i, col0 + j]


@njit(**_JIT)
def _blas_rows(B, K, N):
    """Rows per BLAS product of (rows, K) x (K, N), or 0 for the plain loops."""
    rows = BLAS_MAX_WORK // (K * N)
    return rows if B >= BLAS_MIN_ROWS and rows >= BLAS_MIN_ROWS else 0


@njit(**_JIT)
def _dot_rows(V, W, Z, rows):
    """Z = V @ W, `rows` rows of V per BLAS call."""
    for lo in range(0, V.shape[0], rows):
        hi = min(V.shape[0], lo + rows)
        np.dot(V[lo:hi], W, Z[lo:hi])


@njit(**_JIT)
def _preactivations(x, h, pack, Z):
    """Z (B, G*H) = x W_x + h_{t-1} W_h + b_x + b_h."""
    B, D = x.shape
    H, n = h.shape[1], Z.shape[1]
    rows = _blas_rows(B, D + H, n)
    if rows == 0:
        for r in range(B):
            for j in range(n):
                Z[r, j] = pack[D + H, j] + pack[D + H + 1, j]
            _accumulate(Z, r, 0, n, x, r, pack, 0, 0)
            _accumulate(Z, r, 0, n, h, r, pack, D, 0)
        return
    xh = np.empty((B, D + H), Z.dtype)                         # (B, D+H) [x | h]
    for r in range(B):
        for i in range(D):
            xh[r, i] = x[r, i]
        for i in range(H):
            xh[r, D + i] = h[r, i]
    _dot_rows(xh, pack[:D + H], Z, rows)                       # [x | h] [W_x; W_h]
    for r in range(B):
        for j in range(n):
            Z[r, j] += pack[D + H, j] + pack[D + H + 1, j]


@njit(**_JIT)
def lstm_rows(x, pack, h, c, h_out, c_out):
    """x (B, D), h, c (B, H) -> h_out, c_out (B, H)."""
    B, H = h.shape
    Z = np.empty((B, 4 * H), h.dtype)                          # (B, 4H) i f g o
    _preactivations(x, h, pack, Z)
    half, one = cast_like(Z, 0.5), cast_like(Z, 1.0)
    for r in range(B):
        # sigmoid(i, f, o), tanh(g) in one pass, as y = tanh(s*z)*s + (1 - s)
        # with s = 1/2 (sigmoid) or 1 (tanh): one loop of 4H = 128 ran in
        # 59 ns, three (64, 32, 32) in 218 ns -- a loop of 32 is shorter than
        # one unrolled AVX-512 iteration (64) and runs scalar
        for j in range(4 * H):
            s = one if (j >= 2 * H) & (j < 3 * H) else half
            Z[r, j] = fast_tanh(s * Z[r, j]) * s + (one - s)
        # c_t = f*c_{t-1} + i*g into Z's f block: a pass writing one array
        # stays SIMD (c_out may be c, which fails LLVM's overlap check)
        for k in range(H):
            Z[r, H + k] = Z[r, H + k] * c[r, k] + Z[r, k] * Z[r, 2 * H + k]
        for k in range(H):
            c_out[r, k] = Z[r, H + k]
        for k in range(H):
            h_out[r, k] = Z[r, 3 * H + k] * fast_tanh(Z[r, H + k])     # h_t = o*tanh(c_t)


@njit(**_JIT)
def gru_rows(x, pack, h, h_out, reset_after):
    """x (B, D), h (B, H) -> h_out (B, H)."""
    B, D = x.shape
    H = h.shape[1]
    bx, bh = D + H, D + H + 1
    A = np.empty((B, 3 * H), h.dtype)                          # (B, 3H) x W_x + biases, r z n
    HW = np.empty((B, 3 * H), h.dtype)                         # (B, 3H) h W_h (+ b_hn)
    rh = np.empty((B, H), h.dtype)                             # (B, H) r*h, without reset_after
    zero, half, one = cast_like(h, 0.0), cast_like(h, 0.5), cast_like(h, 1.0)
    rows = _blas_rows(B, max(D, H), 3 * H)
    if rows == 0:
        for r in range(B):
            for j in range(3 * H):
                A[r, j] = zero
                HW[r, j] = zero
            _accumulate(A, r, 0, 3 * H, x, r, pack, 0, 0)
            # without reset_after the n block of HW is (r*h) W_hn, below
            _accumulate(HW, r, 0, 3 * H if reset_after else 2 * H, h, r, pack, D, 0)
    else:
        _dot_rows(x, pack[:D], A, rows)
        _dot_rows(h, pack[D:D + H], HW, rows)
    for r in range(B):
        # b_h joins the input side except, with reset_after, its n block (inside r * (...))
        for j in range(3 * H):
            inner = reset_after and j >= 2 * H
            A[r, j] += pack[bx, j] + (zero if inner else pack[bh, j])
            HW[r, j] += pack[bh, j] if inner else zero
        for j in range(2 * H):                                 # r, z: sigmoid
            A[r, j] = fast_tanh(half * (A[r, j] + HW[r, j])) * half + half
        if reset_after:
            for k in range(H):
                A[r, 2 * H + k] = fast_tanh(A[r, 2 * H + k] + A[r, k] * HW[r, 2 * H + k])
        else:
            for k in range(H):
                rh[r, k] = A[r, k] * h[r, k]
            for k in range(H):
                HW[r, 2 * H + k] = zero
            _accumulate(HW, r, 2 * H, H, rh, r, pack, D, 2 * H)   # (r*h) W_hn
            for k in range(H):
                A[r, 2 * H + k] = fast_tanh(A[r, 2 * H + k] + HW[r, 2 * H + k])
        for k in range(H):                                     # h_t = (1-z)*n + z*h_{t-1}, into r's block
            A[r, k] = (one - A[r, H + k]) * A[r, 2 * H + k] + A[r, H + k] * h[r, k]
        for k in range(H):
            h_out[r, k] = A[r, k]


@njit(**_JIT)
def rnn_rows(x, pack, h, h_out, relu):
    """x (B, D), h (B, H) -> h_out (B, H)."""
    B, H = h.shape
    Z = np.empty((B, H), h.dtype)
    _preactivations(x, h, pack, Z)
    zero = cast_like(Z, 0.0)
    for r in range(B):
        for j in range(H):
            h_out[r, j] = (zero if Z[r, j] < zero else Z[r, j]) if relu else fast_tanh(Z[r, j])
