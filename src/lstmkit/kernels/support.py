"""Plumbing shared by the kernel modules: argument normalisation, dtype-typed
constants inside compiled code, and how a batch is split across threads.

Every compiled loop is specialised once per dtype (float32, float64) and per
array layout; the Python wrappers hand it C-contiguous arrays of one dtype
only, so each kernel has exactly two specialisations.
"""
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit
from numba.extending import overload

from . import workspace
from .prefetch import prefetch

DTYPES = (np.float32, np.float64)

# The time loops split the batch over threads from this many rows on, or
# earlier when the per-step product is big (rows x H >= PARALLEL_MIN_STATE):
# splitting a small step makes each thread's work too small to pay for it.
PARALLEL_MIN_BATCH = 16
PARALLEL_MIN_STATE = 8192

# The backward loop flushes subnormal floats to zero (see denormals.py); the
# benchmark flips this to measure what it buys.
FLUSH_DENORMALS = True


def cast_like(arr, value):
    """value converted to arr's dtype, inside compiled code (float32 * 0.5
    would otherwise promote to float64)."""
    return arr.dtype.type(value)


@overload(cast_like)
def _cast_like_impl(arr, value):
    dtype = arr.dtype
    return lambda arr, value: dtype(value)


_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_JIT)
def spread_mask(m, mask, t, lo, n, H):
    """m (n*H,) <- mask[t, lo:lo+n], each row's value spread over its H numbers."""
    for r in range(n):
        m[r * H:(r + 1) * H] = mask[t, lo + r]


@njit(**_JIT)
def gather_inputs(table, rows, t, lo, n, H, x_t):
    """x_t (G, n*H) <- table[q, rows[t, lo + r]] for each gate q and row r: this
    step's input projections as flat runs, looked up by row in a gate-major
    (G, R, H) table."""
    for q in range(table.shape[0]):
        for r in range(n):
            src, dst = table[q, rows[t, lo + r]], x_t[q, r * H:(r + 1) * H]
            for j in range(H):
                dst[j] = src[j]


@njit(**_JIT)
def gather_token_rows(table, rows, t, lo, n, H, x_t):
    """As gather_inputs for a row-major (R, G*H) table: a token's G gate
    blocks are one run of G*H numbers, so a lookup missing the cache costs
    one burst of adjacent lines instead of G scattered ones."""
    for r in range(n):
        src = table[rows[t, lo + r]]
        for q in range(x_t.shape[0]):
            dst = x_t[q, r * H:(r + 1) * H]
            for j in range(H):
                dst[j] = src[q * H + j]


@njit(**_JIT)
def prefetch_token_rows(table, rows, t, lo, n):
    """Ask for the rows of a row-major (R, G*H) table that step t reads for rows
    lo..lo+n-1 of the batch, one prefetch per 64-byte line, so that their
    cache misses overlap with the work of the step before."""
    width = table.shape[1]
    line = 64 // table.itemsize                                # numbers per cache line
    for r in range(n):
        start = rows[t, lo + r] * width
        for k in range(0, width, line):
            prefetch(table, start + k)
        prefetch(table, start + width - 1)                     # the row need not start a line


def token_rows(ids, mask, n_rows):
    """The (T, B) int64 row indices forward_lookup's loops read, from token ids
    (B, T) that must lie in [0, n_rows); mask, if given, must match ids."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"forward_lookup: ids must be (batch, time); got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= n_rows):
        raise ValueError(f"forward_lookup: ids must lie in [0, {n_rows})")
    if mask is not None and np.shape(mask) != ids.shape:
        raise ValueError(f"forward_lookup: mask {np.shape(mask)} must match ids {ids.shape}")
    return np.ascontiguousarray(ids.T, dtype=np.int64)                  # (T, B)


def check_dtype(x):
    if x.dtype not in DTYPES:
        raise TypeError(f"the fast engine runs float32 or float64; x has dtype {x.dtype}")


def contiguous(a, dtype):
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


def time_major_mask(mask, dtype):
    """(mask as a (T, B) C array of dtype, has_mask); a 1x1 placeholder when there
    is none, so the compiled loop sees one type either way."""
    if mask is None:
        return np.ones((1, 1), dtype), False
    return np.ascontiguousarray(np.asarray(mask).T, dtype=dtype), True


def time_major(a, dtype=None):
    """(B, T, ...) -> (T, B, ...) as a C array (one copy, into pooled memory)."""
    src = np.swapaxes(a, 0, 1)
    out = workspace.empty(src.shape, a.dtype if dtype is None else dtype)
    np.copyto(out, src, casting="same_kind")
    return out


def batch_major(a_tm, B):
    """(T, B*H) -> (B, T, H) as a C array (one copy, into pooled memory)."""
    T, BH = a_tm.shape
    src = a_tm.reshape(T, B, BH // B if B else 0).transpose(1, 0, 2)
    out = workspace.empty(src.shape, a_tm.dtype)
    np.copyto(out, src)
    return out


def n_chunks(batch, hidden):
    """How many threads share the batch's time loop: one for small work, else
    all of numba's, with at least 4 rows each."""
    if batch < PARALLEL_MIN_BATCH and batch * hidden < PARALLEL_MIN_STATE:
        return 1
    return max(1, min(numba.get_num_threads(), batch // 4))


_pool = None


def run_chunks(kernel, B, H, *args):
    """kernel(lo, hi, *args) over row chunks of the batch (B rows, hidden size
    H), one chunk per thread.
    The kernels are compiled with nogil=True, so the threads really run at once;
    Python threads rather than numba's prange because BLAS called inside an
    OpenMP region falls back to a slow, warning-spewing mode."""
    n = n_chunks(B, H)
    if n == 1:
        kernel(0, B, *args)
        return
    bounds = [(k * B // n, (k + 1) * B // n) for k in range(n)]
    futures = [_pool_instance().submit(kernel, lo, hi, *args) for lo, hi in bounds[1:]]
    kernel(*bounds[0], *args)
    for f in futures:
        f.result()


_zeros = {}


def zeros_cached(n, dtype):
    """A shared zero vector standing in for a missing bias in step(). Not
    marked read-only: numba would compile another specialisation for that;
    the kernels only read it."""
    key = (n, np.dtype(dtype))
    z = _zeros.get(key)
    if z is None:
        z = _zeros[key] = np.zeros(n, dtype)
    return z


# Whole-sequence products with at least this many output numbers (rows x H)
# are spread over threads.
PARALLEL_MIN_WORK = 1 << 18


def _pool_instance():
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, numba.get_num_threads() - 1),
                                   thread_name_prefix="lstmkit-kernel")
    return _pool


def run_tasks(tasks, work):
    """Run independent closures, spread over the threads when the products
    are big (work = rows x H >= PARALLEL_MIN_WORK). NumPy releases the GIL
    inside BLAS, and each thread's BLAS call is single-threaded
    (blas_threads.py), so the threads work side by side without OpenBLAS's
    thread hand-offs."""
    n = min(numba.get_num_threads(), len(tasks))
    if n <= 1 or work < PARALLEL_MIN_WORK:
        for task in tasks:
            task()
        return

    def group(k):
        for task in tasks[k::n]:
            task()
    futures = [_pool_instance().submit(group, k) for k in range(1, n)]
    group(0)
    for f in futures:
        f.result()


def gate_blocks(W, n_gates):
    """(rows, G*H) -> (G, rows, H) contiguous: one block per gate, so each
    gate's product is a plain 2-D np.dot inside the loop."""
    H = W.shape[1] // n_gates
    return np.ascontiguousarray(W.reshape(W.shape[0], n_gates, H).transpose(1, 0, 2))


def gate_major_projection(x_tm, W_x, b_x, b_h, n_gates):
    """x W_x + b_x + b_h for all steps, one BLAS product per gate.

    x_tm (T, B, D) -> (G, T, B*H): for one gate and one step the whole batch is
    one contiguous run, the layout the compiled loops want.
    """
    T, B, D = x_tm.shape
    H = W_x.shape[1] // n_gates
    x2 = x_tm.reshape(T * B, D)
    xw = workspace.empty((n_gates, T * B, H), x_tm.dtype)
    # one pass over xw for both biases (b_x + b_h is tiny); rounds differently
    # from adding them one after the other, by about an ulp
    b = b_x if b_h is None else b_h if b_x is None else b_x + b_h

    def gate(q):
        cols = slice(q * H, (q + 1) * H)
        np.matmul(x2, W_x[:, cols], out=xw[q])                 # (T*B, H)
        if b is not None:
            xw[q] += b[cols]
    run_tasks([lambda q=q: gate(q) for q in range(n_gates)], T * B * H)
    return xw.reshape(n_gates, T, B * H)


def input_side_grads(x_tm, da_all, W_x):
    """Undo xw = x W_x + b for all steps: da_all (G, T, B*H) gradients of the
    input-side preactivations -> dx (B, T, D), dW_x (D, G*H), db (G*H,)."""
    T, B, D = x_tm.shape
    G = da_all.shape[0]
    H = W_x.shape[1] // G
    x2 = x_tm.reshape(T * B, D)
    da = da_all.reshape(G, T * B, H)                           # (G, T*B, H)
    dW_x = np.empty((D, G * H), x_tm.dtype)
    db = np.empty(G * H, x_tm.dtype)
    dx = workspace.empty((T * B, D), x_tm.dtype)

    def weights(q):
        cols = slice(q * H, (q + 1) * H)
        dW_x[:, cols] = x2.T @ da[q]
        db[cols] = da[q].sum(axis=0)

    def inputs(rows):
        # dx = sum over gates of da_q W_xq^T, for a block of rows
        for q in range(G):
            part = da[q, rows] @ W_x[:, q * H:(q + 1) * H].T
            if q == 0:
                dx[rows] = part
            else:
                dx[rows] += part
    half = T * B // 2
    run_tasks([lambda q=q: weights(q) for q in range(G)]
              + [lambda: inputs(slice(0, half)), lambda: inputs(slice(half, T * B))], T * B * H)
    return batch_major(dx.reshape(T, B * D), B), dW_x, db


def recurrent_grads(inputs, dahs, H):
    """Undo the per-step products with W_h for all steps: gate q's block of
    W_h multiplied inputs[q] (T, B*H) and its output had gradient dahs[q]
    (T, B*H) -> dW_h (H, G*H), db_h (G*H,)."""
    G = len(dahs)
    dW_h = np.empty((H, G * H), dahs[0].dtype)
    db = np.empty(G * H, dahs[0].dtype)

    def gate(q):
        cols = slice(q * H, (q + 1) * H)
        dah2 = dahs[q].reshape(-1, H)                          # (T*B, H)
        dW_h[:, cols] = inputs[q].reshape(-1, H).T @ dah2
        db[cols] = dah2.sum(axis=0)
    run_tasks([lambda q=q: gate(q) for q in range(G)], dahs[0].size)
    return dW_h, db


def sum_of_products(X, dZ):
    """X^T dZ for X (R, K), dZ (R, N): the gradient of Z = X W summed over all R
    rows, as two half sums on two threads when the product is big."""
    R = X.shape[0]
    halves = [slice(0, R // 2), slice(R // 2, R)]
    parts = [None, None]

    def half(k):
        parts[k] = X[halves[k]].T @ dZ[halves[k]]
    run_tasks([lambda: half(0), lambda: half(1)], R * dZ.shape[1] // 4)
    parts[0] += parts[1]
    return parts[0]


def row_products(A, W):
    """A W for A (R, K), W (K, N), the rows split in two halves over the
    threads when the product is big."""
    R = A.shape[0]
    out = workspace.empty((R, W.shape[1]), A.dtype)
    halves = [slice(0, R // 2), slice(R // 2, R)]

    def half(k):
        np.matmul(A[halves[k]], W, out=out[halves[k]])
    run_tasks([lambda: half(0), lambda: half(1)], R * W.shape[1])
    return out


@njit(**_JIT)
def fill_step_rows(xh, x, h, lo, t):
    """xh (n, D+H+1) <- rows [x[lo + r, t], h[r], 1]: one step's input to the
    stacked product [x_t, h_{t-1}, 1] W_xh of the training loops."""
    n, D, H = h.shape[0], x.shape[2], h.shape[1]
    one = cast_like(h, 1.0)
    for r in range(n):
        for j in range(D):
            xh[r, j] = x[lo + r, t, j]
        for j in range(H):
            xh[r, D + j] = h[r, j]
        xh[r, D + H] = one


@njit(**_JIT)
def gather_step(table, rows, step, T, reverse, lo, n, H, x_t):
    """x_t <- this step's input projections (gather_token_rows for a folded
    (R, G*H) table, gather_inputs for a (G, R, H) projection), and for a
    folded table a prefetch of the next step's rows while this one computes."""
    t = T - 1 - step if reverse else step
    if table.ndim == 2:                                        # decided at compile time
        gather_token_rows(table, rows, t, lo, n, H, x_t)
        if step + 1 < T:
            prefetch_token_rows(table, rows, t - 1 if reverse else t + 1, lo, n)
    else:
        gather_inputs(table, rows, t, lo, n, H, x_t)
