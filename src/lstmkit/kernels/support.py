"""Array plumbing shared by the kernels: argument normalisation, layout
changes, dtype-typed constants inside compiled code, and the small compiled
copies and gathers of the time loops.

Every compiled loop is specialised once per dtype (float32, float64) and per
argument structure; the Python side hands it C-contiguous arrays of one
dtype only.

No array-to-array slice assignment (`a[i:j] = b`) in compiled code: numba
compiles a shape-mismatch error message for each, through its string
formatting, which cost about 2 s of compile time per cold start; the copies
here are plain loops.
"""
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .prefetch import prefetch
from .views import run

DTYPES = (np.float32, np.float64)
_JIT = dict(cache=True, nogil=True, error_model="numpy")
# Leaf helpers (elementwise passes, copies, gathers) are inlined into their
# callers at numba's IR level: numba compiles every function on its own to
# machine code (LLVM optimisation, code generation, wrappers) and then again
# inside each caller, so small functions cost more as functions than as code.
# One level only: the cells' steps stay functions, as numba's IR inlining of
# bigger or nested functions cost more compile time than it saved
# (docs/kernels.md, "Compile time").
INLINE = dict(_JIT, inline="always")


def cast_like(arr, value):
    """value converted to arr's dtype, inside compiled code (float32 * 0.5
    would otherwise promote to float64)."""
    return arr.dtype.type(value)


@overload(cast_like, inline="always")
def _cast_like_impl(arr, value):
    dtype = arr.dtype
    return lambda arr, value: dtype(value)


# ---- compiled helpers of the time loops ------------------------------------------------

@intrinsic
def unowned(typingctx, a):
    """a (an argument structure: arrays, nested tuples, scalars) with every
    array's reference-count handle (numba's meminfo) set to null: the same
    memory, seen by arrays that take part in no reference counting.

    Every array view numba makes (a.z[q, lo:hi], a reshape) increments the
    parent's reference count when made and decrements it when dropped, each
    an atomic instruction through a call, and numba's pruning of these pairs
    gives up across calls and loops. The time loops make a few dozen views
    per step. The LSTM's inference loop over zero rows (B = 32, H = 32,
    T = 500) took 0.26 ms, 0.085 with numba's atomics compiled out and 0.09
    with this: 0.5 us per step of counting, about a sixth of a 16-row chunk
    (1.0 ms, 0.85 without it; in one process, real-time priority). With a
    null handle the count functions return at their first test. Safe inside
    a loop whose arguments outlive it (the caller holds them) as long as no
    view escapes: the loops return nothing."""
    def drop(context, builder, ty, val):
        if isinstance(ty, types.Array):
            ary = context.make_array(ty)(context, builder, value=val)
            ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
            return ary._getvalue()
        if isinstance(ty, types.BaseTuple):
            for i, t in enumerate(ty):
                val = builder.insert_value(val, drop(context, builder, t, builder.extract_value(val, i)), i)
        return val

    def codegen(context, builder, signature, args):
        return drop(context, builder, signature.args[0], args[0])
    return a(a), codegen


@njit(**INLINE)
def spread_mask(m, mask, t, lo, n, H):
    """m (n*H,) <- mask[t, lo:lo+n], each row's value spread over its H numbers."""
    for r in range(n):
        v = mask[t, lo + r]
        for j in range(H):
            m[r * H + j] = v


@njit(**INLINE)
def copy_run(src, dst):
    """dst[k] = src[k] over a flat run."""
    for k in range(src.shape[0]):
        dst[k] = src[k]


@njit(**INLINE)
def fill_step_rows(xh, x, h, lo, t):
    """xh (n, D+H+1) <- rows [x[lo + r, t], h[r], 1]: one step's input to the
    stacked product [x_t, h_{t-1}, 1] W_xh of the fused training loops."""
    n, D, H = h.shape[0], x.shape[2], h.shape[1]
    one = cast_like(h, 1.0)
    for r in range(n):
        for j in range(D):
            xh[r, j] = x[lo + r, t, j]
        for j in range(H):
            xh[r, D + j] = h[r, j]
        xh[r, D + H] = one


@njit(**_JIT)
def gather_inputs(table, rows, t, lo, n, H, x_t):
    """x_t[q, (lo+r)*H:(lo+r+1)*H] <- table[q, rows[t, lo + r]] for each gate q
    and row r of the chunk: this step's input projections as flat runs
    (x_t (G, B*H)), looked up by row in a gate-major (G, R, H) table."""
    for q in range(table.shape[0]):
        for r in range(n):
            src, dst = run(table, (q, rows[t, lo + r], 0), H), run(x_t, (q, (lo + r) * H), H)
            for j in range(H):
                dst[j] = src[j]


@njit(**INLINE)
def gather_token_rows(table, rows, t, lo, n, H, x_t):
    """As gather_inputs for a row-major (R, G*H) table: a token's G gate
    blocks are one run of G*H numbers, so a lookup missing the cache costs
    one burst of adjacent lines instead of G scattered ones."""
    for r in range(n):
        src = run(table, (rows[t, lo + r], 0), table.shape[1])     # views.py
        for q in range(x_t.shape[0]):
            dst = run(x_t, (q, (lo + r) * H), H)
            for j in range(H):
                dst[j] = src[q * H + j]


@njit(**INLINE)
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


def gather_step(table, rows, step, T, reverse, lo, n, H, x_t):
    """x_t <- this step's input projections: gather_token_rows for a folded
    (R, G*H) table, with a prefetch of the next step's rows while this one
    computes; gather_inputs for a (G, R, H) projection. The table's rank
    picks one at compile time."""


@overload(gather_step, jit_options=_JIT)
def _gather_step(table, rows, step, T, reverse, lo, n, H, x_t):
    if table.ndim == 2:
        def folded(table, rows, step, T, reverse, lo, n, H, x_t):
            t = T - 1 - step if reverse else step
            gather_token_rows(table, rows, t, lo, n, H, x_t)
            if step + 1 < T:
                prefetch_token_rows(table, rows, t - 1 if reverse else t + 1, lo, n)
        return folded

    def projected(table, rows, step, T, reverse, lo, n, H, x_t):
        gather_inputs(table, rows, T - 1 - step if reverse else step, lo, n, H, x_t)
    return projected


# ---- Python-side argument handling ------------------------------------------------------

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


def stacked_state(states, B, H, dtype):
    """(S, B, H) C array from a tuple of S (B, H) arrays (None: zeros),
    on a cache line of its own (workspace.aligned_empty): the loops' threads
    carry their rows of it in place."""
    from .workspace import aligned_empty
    out = aligned_empty((len(states), B, H), dtype)
    for k, s in enumerate(states):
        out[k] = 0 if s is None else s
    return out


def time_major_mask(mask, dtype):
    """(mask as a (T, B) C array of dtype, has_mask); a 1x1 placeholder when there
    is none, so the compiled loop sees one type either way."""
    if mask is None:
        return np.ones((1, 1), dtype), False
    return np.ascontiguousarray(np.asarray(mask).T, dtype=dtype), True


def time_major(a, lease, dtype=None):
    """(B, T, ...) -> (T, B, ...) as a C array from lease(shape, dtype) (one copy)."""
    src = np.swapaxes(a, 0, 1)
    out = lease(src.shape, a.dtype if dtype is None else dtype)
    np.copyto(out, src, casting="same_kind")
    return out


def batch_major(a_tm, B):
    """(T, B*H) -> (B, T, H) as a new C array (one copy), the caller's to keep."""
    T, BH = a_tm.shape
    return np.ascontiguousarray(a_tm.reshape(T, B, BH // B if B else 0).transpose(1, 0, 2))


def placeholder(dtype, ndim):
    """A (1,)*ndim array standing in for an argument a loop does not read, so
    the loop's signature is the same either way."""
    return np.zeros((1,) * ndim, dtype)
