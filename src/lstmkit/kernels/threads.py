"""The engine's own threads: how a call's work is split, and the pool that runs it.

Two kinds of work are split, both by rows, so that no thread waits on another
until the call's end:
  * a time loop: the batch rows in chunks, each running the whole loop
    (rows never interact inside a recurrence);
  * a whole-sequence product (x W_x for all steps, dx, the weight
    gradients): the rows of its output.
Neither changes a result: each output row is computed alike whoever computes
it (kernels/gemm.py). The weight gradients, sums over all T*B rows, are split
by their own rows (the input features), not by the rows summed over, so each
sum runs in one thread in one fixed order.

NumPy's BLAS products outside the engine (the Dense layers, attention's
weight products) can be split over the same pool by their output rows too
(blas_matmul): only when BLAS itself runs one thread, as the lstmkit command
sets it, and each part is then one single-threaded BLAS call with the GIL
released.

The compiled functions release the GIL (nogil=True) and the pool's threads
are plain Python threads: numba's prange runs on an OpenMP-style pool, and
the time loops call no BLAS, but its threads would be a second pool beside
this one. The pool grows when lk.config.threads asks for more.

The threads sleep as soon as their part is done. A pool whose threads
watched for the next part for up to 1 ms in compiled code before sleeping
(as OpenMP's do) was tried on workload E (2026-11-30): on the loaded 2-core
VM a hand-off to a sleeping thread measured 21 us (median; 60 per training
step), the step gained nothing at real-time priority (58-66 ms either way),
and at normal priority among other processes the spinning made it 1.2-1.8x
slower (a spinning thread holds a core the woken one then waits for).
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import policy

_pool = None
_pool_size = 0
_lock = threading.Lock()


def _executor(workers):
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lstmkit-kernel")
            _pool_size = workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def bounds(n_rows, parts, align=1):
    """[(lo, hi)] cutting n_rows into `parts` nearly equal runs (each a
    multiple of `align` rows but the last)."""
    if parts <= 1:
        return [(0, n_rows)]
    units = -(-n_rows // align)
    cuts = [min(n_rows, (k * units // parts) * align) for k in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]


def run(kernel, parts, *args):
    """kernel(lo, hi, *args) for each (lo, hi) of `parts` (a list of bounds),
    the first on the calling thread, the rest on the pool."""
    if len(parts) == 1:
        kernel(*parts[0], *args)
        return
    futures = [_executor(len(parts) - 1).submit(kernel, lo, hi, *args) for lo, hi in parts[1:]]
    try:
        kernel(*parts[0], *args)
    finally:
        for f in futures:
            f.result()


def run_each(kernel, parts, args, *extra):
    """kernel(lo, hi, args[i], *extra) for each (lo, hi) = parts[i]: as run(),
    with an argument structure per part."""
    futures = [_executor(len(parts) - 1).submit(kernel, lo, hi, x, *extra)
               for (lo, hi), x in zip(parts[1:], args[1:])]
    try:
        kernel(*parts[0], args[0], *extra)
    finally:
        for f in futures:
            f.result()


def run_rows(kernel, n_rows, work, threads, *args, align=8):
    """kernel(lo, hi, *args) over row ranges of n_rows, on up to `threads`
    threads when the work (multiply-adds) pays for the split; the ranges are
    multiples of 8 rows, gemm's tile."""
    n = policy.product_threads(n_rows, work, threads)
    run(kernel, bounds(n_rows, n, align), *args)


def matmul(A, Wp, C, threads, accumulate=False, bias=None):
    """C (+)= A @ W over the threads, split by rows of C (Wp = gemm.pack(W));
    with bias (N,): C = bias + A @ W, the bias added in the product's tiles
    (gemm.dot_rows)."""
    from . import ahead
    from .gemm import no_bias, rows_kernel
    bias = no_bias(C.dtype) if bias is None else np.ascontiguousarray(bias, C.dtype)
    ahead.run(f"dot_rows.{A.dtype}",                          # one compile for every layout of A
              lambda: run_rows(rows_kernel(A, Wp, C, bias), A.shape[0], C.size * A.shape[1], threads, A, Wp,
                               C, accumulate, bias))


_blas_libs = None


def _numpy_blas():
    """threadpoolctl's controllers of NumPy's BLAS: the library shipped inside
    NumPy's own folders (numpy.libs for a wheel), else every BLAS loaded.
    SciPy brings a second OpenBLAS of its own, which NumPy never calls."""
    import os
    from threadpoolctl import ThreadpoolController
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    home = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    own = [lib for lib in libs if os.path.abspath(lib.filepath or "").startswith(
        (os.path.join(home, "numpy") + os.sep, os.path.join(home, "numpy.libs") + os.sep))]
    return tuple(own or libs)


def blas_one_thread():
    """Whether NumPy's BLAS runs one thread (read live, so a limit set for a
    block counts). False when it cannot be read: then the split is left to BLAS."""
    global _blas_libs
    if _blas_libs is None:
        try:
            _blas_libs = _numpy_blas()
        except Exception:                        # no threadpoolctl, or it cannot read the libraries
            _blas_libs = ()
    return bool(_blas_libs) and all(lib.num_threads == 1 for lib in _blas_libs)


def blas_matmul(A, B, threads=None):
    """A (M, K) @ B (K, N) by NumPy's BLAS, in row blocks whose number depends
    on the size alone (policy.blas_blocks: 2 from 2^25 multiply-adds on, each
    a multiple of policy.BLAS_ALIGN rows). The blocks run on the engine's
    threads (lk.config.threads when None) when BLAS itself runs one thread,
    else one after another. OpenBLAS's float32 rows do depend on the rows
    they are multiplied with (a block's rows differ from the whole product's
    in the last bits), so the blocks are fixed by the shape, never by the
    thread count: 1, 2 or 4 threads give the same bits
    (tests/test_blas_split.py)."""
    M, K = A.shape
    N = B.shape[1]
    parts = bounds(M, policy.blas_blocks(M, M * K * N), policy.BLAS_ALIGN)
    if len(parts) == 1:
        return A @ B
    out = np.empty((M, N), np.result_type(A, B))
    if threads is None:
        from ..settings import config
        threads = config.threads
    kernel = lambda lo, hi: np.matmul(A[lo:hi], B, out=out[lo:hi])  # noqa: E731
    if threads > 1 and blas_one_thread():
        for k in range(0, len(parts), threads):                 # at most `threads` blocks at once
            run(kernel, parts[k:k + threads])
    else:
        for lo, hi in parts:
            kernel(lo, hi)
    return out


def weight_gradient(X, dZ, threads):
    """X^T dZ for X (R, K), dZ (R, N): the gradient of Z = X W summed over the
    R rows, split over the threads by rows of the result (K), each thread
    summing over all R rows in the same k blocks. Returns (K, N)."""
    from .gemm import pack
    out = np.empty((X.shape[1], dZ.shape[1]), X.dtype)
    matmul(X.T, pack(dZ), out, threads)
    return out


def gate_weight_gradients(X, dz, threads, empty=None):
    """[X^T dz_0, ..., X^T dz_{G-1}] (K, G*H) for X (R, K) and dz (G, R, H):
    the weight gradients of G gates whose preactivations were X W_q.

    At H = 32 dz already is gemm's packed form of [dz_0 ... dz_{G-1}]
    (R, G*H): one product X^T dz, with no copy, which reads X once. Otherwise
    each gate's transpose, dz_q^T X (H, K), over X packed once for all gates:
    packing each dz_q instead (X^T pack(dz_q)) copied G arrays of R x H
    numbers where this copies one of R x K (workload D: 4 copies of 6.5 MB
    per layer against one of 9 MB; 9 ms of a 150 ms training step, on one
    thread). Each number is the same sum, in the same order, either way.
    empty: where the packed X comes from (gemm.pack)."""
    from .gemm import PANEL, pack
    G, R, H = dz.shape
    K = X.shape[1]
    out = np.empty((K, G * H), X.dtype)
    if H == PANEL:
        matmul(X.T, dz, out, threads)
        return out
    Xp = pack(X, empty=empty)                                  # (ceil(K/32), R, 32)
    part = np.empty((H, K), X.dtype)
    for q in range(G):
        matmul(dz[q].T, Xp, part, threads)                     # dW_q^T = dz_q^T X
        out[:, q * H:(q + 1) * H] = part.T
    return out
