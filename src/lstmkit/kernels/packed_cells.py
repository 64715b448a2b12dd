"""What one step of each cell over packed weights shares: the layout, the
preactivation product and its measurements. The cells' own step math is in
their modules (`step_rows` of lstm.py, gru.py, simple_rnn.py); the entry
points that RNNLayer.step and RNNLayer.stream call are in kernels/packed.py.

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

from .support import cast_like

_JIT = dict(cache=True, nogil=True, error_model="numpy")

BLAS_MIN_ROWS = 2
BLAS_MAX_WORK = 4 * 65536


def pack_shape(D, H, n_gates):
    return (D + H + 2, n_gates * H)


@njit(**_JIT)
def accumulate(Z, zr, lo, n, V, r, W, row0, col0):
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
def accumulate_rows(Z, n, V, W, row0):
    """Z[r, :n] += V[r] @ W[row0:row0+k, :n] for every row r of V: accumulate's
    sums, the same expression element by element (so the same bits), with each
    four rows of W read once for all the rows of V instead of once per row. A
    few rows over big weights (beam search's step: 5 rows of [x | h], 512 x
    1024 weights, 2 MB) read the weights from L2/L3 once instead of 5 times:
    132 -> 51 us per LSTM step at H = 256 (float32, one thread)."""
    B, k = V.shape
    k4 = k - k % 4
    for i in range(0, k4, 4):
        q = row0 + i
        for r in range(B):
            v0, v1, v2, v3 = V[r, i], V[r, i + 1], V[r, i + 2], V[r, i + 3]
            for j in range(n):
                Z[r, j] += (v0 * W[q, j] + v1 * W[q + 1, j]) + (v2 * W[q + 2, j] + v3 * W[q + 3, j])
    for i in range(k4, k):
        for r in range(B):
            vi = V[r, i]
            for j in range(n):
                Z[r, j] += vi * W[row0 + i, j]


@njit(**_JIT)
def blas_rows(B, K, N):
    """Rows per BLAS product of (rows, K) x (K, N), or 0 for the plain loops."""
    rows = BLAS_MAX_WORK // (K * N)
    return rows if B >= BLAS_MIN_ROWS and rows >= BLAS_MIN_ROWS else 0


@njit(**_JIT)
def blas_dot_rows(V, W, Z, rows):
    """Z = V @ W, `rows` rows of V per BLAS call."""
    for lo in range(0, V.shape[0], rows):
        hi = min(V.shape[0], lo + rows)
        np.dot(V[lo:hi], W, Z[lo:hi])


@njit(**_JIT)
def preactivations(x, h, pack, Z):
    """Z (B, G*H) = x W_x + h_{t-1} W_h + b_x + b_h."""
    B, D = x.shape
    H, n = h.shape[1], Z.shape[1]
    rows = blas_rows(B, D + H, n)
    if rows == 0:
        for r in range(B):
            for j in range(n):
                Z[r, j] = pack[D + H, j] + pack[D + H + 1, j]
        accumulate_rows(Z, n, x, pack, 0)                      # x W_x, then h W_h, as per row
        accumulate_rows(Z, n, h, pack, D)
        return
    xh = np.empty((B, D + H), Z.dtype)                         # (B, D+H) [x | h]
    for r in range(B):
        for i in range(D):
            xh[r, i] = x[r, i]
        for i in range(H):
            xh[r, D + i] = h[r, i]
    blas_dot_rows(xh, pack[:D + H], Z, rows)                       # [x | h] [W_x; W_h]
    for r in range(B):
        for j in range(n):
            Z[r, j] += pack[D + H, j] + pack[D + H + 1, j]
