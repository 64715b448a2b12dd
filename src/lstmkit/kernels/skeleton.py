"""The skeleton every cell kernel runs in: the time loops and the wrappers
around them, written once. A cell (kernels/lstm.py, gru.py, simple_rnn.py)
supplies only its gate math and its cache layout.

The compiled loops, each over the batch rows lo..hi-1 of one chunk (chunks
run on the engine's threads, kernels/threads.py):

    forward_rows(lo, hi, a)     training forward: fills the outputs and the caches backward reads
    infer_rows(lo, hi, a)       inference: keeps only the state (and the outputs when asked)
    backward_rows(lo, hi, a)    backpropagation through time

`a` is one typed structure of the loop's arguments: a `Loop` (what every
loop reads) plus the cell's own fields, a NamedTuple class per cell and
loop. Its class selects the cell's step at compile time: the loops call the
stubs below (forward_step, infer_step, backward_step and their *_scratch),
and each cell registers its implementations for its own classes with
`@implements(stub, ArgsClass)`. A misnamed or swapped field fails to compile
(the fields are read by name, and their shapes differ) instead of running.

Layout inside the loops: time-major and gate-major, gates (G, T, B*H), so for
one step and one gate the rows of the batch are one contiguous run of B*H
numbers; every elementwise pass is then one flat loop that LLVM turns into
SIMD code (loops over H alone, 32 long, are too short for 16-wide AVX-512
with unrolling and ran 3x slower). A chunk's part of a step is the run
[lo*H, hi*H).

Masks: mask (T, B), 1 for a real step. At a masked step the state is carried
through unchanged, the output is 0 and no gradient flows through the step:
each cell writes h = m*h_new + (1-m)*h_{t-1} with m the mask spread over H.
reverse=True runs t = T-1 .. 0; outputs stay aligned with the input positions.

Trailing padding (each row real for its first L_r steps, then padding, as
Embedding(mask_zero=True) makes for a batch of sentences): the training
loops forward_rows_live / backward_rows_live compute only the real rows of
each step instead (PyTorch's packed sequences do the same). The Python side
orders the rows by length once per call, longest first within each thread's
chunk, so that the real rows of step t are the first ones of every chunk,
and undoes the order on everything it returns. The results equal the masked
loops' exactly (tests/test_skip_padding.py): every real row is computed by
the same instructions (a product's row does not depend on the rows beside it,
kernels/gemm.py), a padded row keeps its state as the masked step does, and
the weight gradients, sums over all T*B rows, see the rows in their original
order with the same zeros at padded steps.
"""
import inspect
from typing import NamedTuple

import numpy as np
from numba import njit
from numba.extending import overload

from ..cells.checks import check_sequence_args
from ..settings import config
from . import ahead, policy, support, threads, workspace
from .denormals import flush_denormals_begin, flush_denormals_end
from .views import run

JIT = dict(cache=True, nogil=True, error_model="numpy")


class Loop(NamedTuple):
    """What every time loop reads, whatever the cell. In backward the carry is
    the gradient of the state, and the loop runs from t = T-1 down.
    The compiled loops allocate nothing: scratch comes in, B rows' worth,
    and a chunk works in its own rows of it."""
    T: int                     # steps
    H: int                     # hidden units
    reverse: bool              # run t = T-1 .. 0 (backward: 0 .. T-1)
    mask: np.ndarray           # (T, B) 1 for a real step, or a (1, 1) placeholder
    has_mask: bool
    flush: bool                # flush subnormals to zero inside the loop (lk.config.flush_denormals)
    carry: np.ndarray          # (S, B, H) in place: state0 -> final state (backward: dL/d final -> dL/d state0)
    has_seq: bool
    seq: np.ndarray            # (T, B*H) forward: the outputs h_t (written); backward: dL/dh_t (read)
    m: np.ndarray              # (B*H,) scratch: the step's mask spread over H (all ones without a mask)
    no_seq: np.ndarray         # (B*H,) scratch: the output nobody keeps; zeros in backward (no dL/dh_t)


# ---- the stubs each cell implements for its own argument classes ------------------------

def forward_step(a, t, lo, n, m, out):
    """One training step t for rows lo..lo+n-1: the state (a.loop.carry's
    rows) moves on in place, out (n*H,) receives h_t (m * h_new), the caches
    step t."""


def infer_step(a, lo, n, m, out):
    """One inference step: a.x_t (G, B*H) holds the step's input
    projections (biases included), gate-major; the state and out as in
    forward_step."""


def backward_step(a, t, lo, n, m, dout):
    """Backprop through step t: dout (n*H,) dL/dh_t from above; the carry's
    rows hold dL/d state_t on entry and dL/d state_{t-1} on return."""


def forward_skip(a, t, lo, n, out):
    """Rows lo..lo+n-1 are padding at step t (the row-skipping loop): their
    state stays as it is, out (n*H,) gets 0, and the caches get finite values
    whose terms in the weight gradients are zero, as at a masked step."""


def backward_skip(a, t, lo, n):
    """Rows lo..lo+n-1 are padding at step t: dL/dz and dL/dx of the step are
    0 there and the carried gradients pass unchanged, as at a masked step."""


def step_rows(cell, x, pack, h, c, h_out, c_out, flag):
    """One step of a cell for every row of a batch, over its packed weights
    (kernels/packed.py, layers/packed.py): x (B, D), h, c (B, H) -> h_out,
    c_out (B, H), which may be h, c themselves. `cell` is the cell's Step
    marker; c and c_out are h and h_out for one-state cells. flag: GRU
    reset_after, simple RNN relu, unused by the LSTM."""


class Step(NamedTuple):
    """A cell's marker for step_rows: its sizes, and its class picks its math."""
    n_gates: int
    n_states: int


def name_types(cell, *classes):
    """Prefix each argument class's name with its cell: lstm_Train, gru_Step.

    numba names a NamedTuple type after its class's __name__ and its field
    types, and a compiled function's symbol after its argument types' names.
    The three cells' `Step` markers (two ints each) were all `Step(int64 x
    2)`, so `packed.step` compiled for the GRU and for the simple RNN made
    one symbol, and whichever was linked first ran for both: a GRU's step for
    a simple RNN, depending on the order kernels were compiled or loaded from
    the cache. The same could happen to two cells' loops whose structures have
    equal field types. Unique names keep every specialisation apart.

    Each class is also bound under its new name in its module. numba's cache
    index pickles the argument types, and a class that pickle cannot find at
    module.qualname is pickled by value: read back in another process it is
    a new class, no type in the index equals the live one, and every loop
    was compiled again at each start (seconds, with a warm cache)."""
    import sys
    for cls in classes:
        cls.__name__ = cls.__qualname__ = f"{cell}_{cls.__name__}"
        setattr(sys.modules[cls.__module__], cls.__name__, cls)


def implements(stub, *classes):
    """Register a cell's compiled implementation of `stub` for loops whose
    argument structure is one of `classes`; numba picks it at compile time.
    Decorates a factory: make(cls) returns the implementation for class cls,
    so that a variant class (lstm.TrainFused, say) gets code in which the
    other variant's branches are constants and are never compiled."""
    def register(make):
        for cls in classes:
            impl = make(cls)

            def select(*args, cls=cls, impl=impl):
                if getattr(args[0], "instance_class", None) is cls:
                    return impl
            select.__signature__ = inspect.signature(stub)    # numba checks it against impl's
            overload(stub, jit_options=dict(JIT, cache=False))(select)
        return make
    return register


# ---- pieces every cell's step uses ----------------------------------------------------

@njit(**support.INLINE)
def masked_update(h_new, m, out, h):
    """out = m * h_new (the step's output, 0 where masked) and the carried
    h = m * h_new + (1 - m) * h_{t-1} (a masked step carries the state), over
    flat runs."""
    one = support.cast_like(h, 1.0)
    for k in range(h.shape[0]):
        out[k] = m[k] * h_new[k]
        h[k] = m[k] * h_new[k] + (one - m[k]) * h[k]


@njit(**support.INLINE)
def split_gradient(m, dh, dout, dh_skip, dh_new):
    """Backprop through the carry h_t = m * h_new + (1 - m) * h_{t-1}: dh_skip
    goes straight to h_{t-1}, dh_new = m * (dL/dh_t) into the step's math;
    dL/dh_t = dh (from the step after) + dout (from the output)."""
    one = support.cast_like(dh, 1.0)
    for k in range(dh.shape[0]):
        dh_skip[k] = (one - m[k]) * dh[k]
        dh_new[k] = m[k] * (dh[k] + dout[k])


# ---- the loops ----------------------------------------------------------------------

@njit(**JIT)
def forward_rows(lo, hi, a):
    """The training forward time loop for batch rows lo..hi-1."""
    a = support.unowned(a)                                     # no atomic counts per view (see there)
    L = a.loop
    n, H = hi - lo, L.H
    P, base = n * H, lo * H
    old_mode = flush_denormals_begin() if L.flush else np.uint32(0)
    m = run(L.m, (base,), P)
    for step in range(L.T):
        t = L.T - 1 - step if L.reverse else step
        if L.has_mask:
            support.spread_mask(m, L.mask, t, lo, n, H)
        out = run(L.seq, (t, base), P) if L.has_seq else run(L.no_seq, (base,), P)   # views.py
        forward_step(a, t, lo, n, m, out)
    if L.flush:
        flush_denormals_end(old_mode)


@njit(**JIT)
def infer_rows(lo, hi, a):
    """The inference time loop for rows lo..hi-1: keeps only the state (and
    the outputs when asked), so a step's working set stays in L1.

    a.table holds the input projections with biases and a.rows (T, B) the row
    each (step, sequence) reads: either x W_x + b for every step, gate-major
    (G, T*B, H), or an embedding table folded through W_x, row-major
    (vocab, G*H), read at the token ids with the next step's rows prefetched."""
    a = support.unowned(a)                                     # no atomic counts per view (see there)
    L = a.loop
    n, H = hi - lo, L.H
    P, base = n * H, lo * H
    old_mode = flush_denormals_begin() if L.flush else np.uint32(0)
    m = run(L.m, (base,), P)
    for step in range(L.T):
        t = L.T - 1 - step if L.reverse else step
        if L.has_mask:
            support.spread_mask(m, L.mask, t, lo, n, H)
        support.gather_step(a.table, a.rows, step, L.T, L.reverse, lo, n, H, a.x_t)
        out = run(L.seq, (t, base), P) if L.has_seq else run(L.no_seq, (base,), P)   # views.py
        infer_step(a, lo, n, m, out)
    if L.flush:
        flush_denormals_end(old_mode)


@njit(**JIT)
def backward_rows(lo, hi, a):
    """BPTT for batch rows lo..hi-1, from the last step to the first."""
    a = support.unowned(a)                                     # no atomic counts per view (see there)
    L = a.loop
    n, H = hi - lo, L.H
    P, base = n * H, lo * H
    old_mode = flush_denormals_begin() if L.flush else np.uint32(0)
    m = run(L.m, (base,), P)
    for step in range(L.T):
        t = step if L.reverse else L.T - 1 - step
        if L.has_mask:
            support.spread_mask(m, L.mask, t, lo, n, H)
        dout = run(L.seq, (t, base), P) if L.has_seq else run(L.no_seq, (base,), P)   # views.py
        backward_step(a, t, lo, n, m, dout)
    if L.flush:
        flush_denormals_end(old_mode)


@njit(**support.INLINE)
def live_rows(lens, lo, n, t):
    """How many of rows lo..lo+n-1 (ordered longest first) are real at step t."""
    k = 0
    while k < n and lens[lo + k] > t:
        k += 1
    return k


@njit(**JIT)
def forward_rows_live(lo, hi, a, lens):
    """forward_rows for trailing padding: at step t only the rows with
    lens > t run the cell's step; lens (B,) holds each row's real length,
    rows ordered longest first within the chunk, and the loop has no mask
    (its m stays all ones)."""
    a = support.unowned(a)                                     # no atomic counts per view (see there)
    L = a.loop
    n, H = hi - lo, L.H
    P, base = n * H, lo * H
    old_mode = flush_denormals_begin() if L.flush else np.uint32(0)
    m = L.m[base:base + P]
    for step in range(L.T):
        t = L.T - 1 - step if L.reverse else step
        k = live_rows(lens, lo, n, t)
        out = L.seq[t, base:base + P] if L.has_seq else L.no_seq[base:base + P]
        if k > 0:
            forward_step(a, t, lo, k, m[:k * H], out[:k * H])
        if k < n:
            forward_skip(a, t, lo + k, n - k, out[k * H:])
    if L.flush:
        flush_denormals_end(old_mode)


@njit(**JIT)
def backward_rows_live(lo, hi, a, lens):
    """backward_rows for trailing padding (see forward_rows_live)."""
    a = support.unowned(a)                                     # no atomic counts per view (see there)
    L = a.loop
    n, H = hi - lo, L.H
    P, base = n * H, lo * H
    old_mode = flush_denormals_begin() if L.flush else np.uint32(0)
    m = L.m[base:base + P]
    for step in range(L.T):
        t = step if L.reverse else L.T - 1 - step
        k = live_rows(lens, lo, n, t)
        dout = L.seq[t, base:base + P] if L.has_seq else L.no_seq[base:base + P]
        if k > 0:
            backward_step(a, t, lo, k, m[:k * H], dout[:k * H])
        if k < n:
            backward_skip(a, t, lo + k, n - k)
    if L.flush:
        flush_denormals_end(old_mode)


def stacked_skips(Train, TrainFused, Backward, BackwardFused):
    """Register forward_skip and backward_skip for a StackedCell's argument
    classes (fields xh_all, dz, dx): a padded row's cached [x_t, h_{t-1}, 1]
    becomes 0 (finite: its gradient terms are 0 * 0), its dL/dz 0 and, when
    fused, its dL/dx_t 0."""
    @implements(forward_skip, Train, TrainFused)
    def _forward(cls):
        def skip(a, t, lo, n, out):
            zero = support.cast_like(out, 0.0)
            for k in range(out.shape[0]):
                out[k] = zero
            xh = a.xh_all[t]
            for r in range(lo, lo + n):
                for j in range(xh.shape[1]):
                    xh[r, j] = zero
        return skip

    @implements(backward_skip, Backward, BackwardFused)
    def _backward(cls):
        fused = cls is BackwardFused

        def skip(a, t, lo, n):
            H = a.loop.H
            zero = support.cast_like(a.dz, 0.0)
            for q in range(a.dz.shape[0]):
                for k in range(lo * H, (lo + n) * H):
                    a.dz[q, t, k] = zero
            if fused:
                for r in range(lo, lo + n):
                    for j in range(a.dx.shape[2]):
                        a.dx[r, t, j] = zero
        return skip


# ---- the Python side ----------------------------------------------------------------

class Cache(dict):
    """What forward leaves for backward. Its big arrays are leased from the
    workspace pool and go back when this object is garbage collected."""


class Cell:
    """A cell's part of the wrappers: its constants and hooks. The skeleton's
    forward/backward/project_table/forward_lookup call these; ws is the
    call's workspace scope, for scratch sized by the batch (B rows, a chunk
    uses its own)."""
    name = None
    N_GATES = None
    STATE_NAMES = None
    SKIPS_PADDING = False      # has forward_skip/backward_skip (the row-skipping loops)

    def options(self, **options):
        """Validate the cell's options (reset_after, activation) -> dict."""
        if options:
            raise TypeError(f"the {self.name} kernel takes no option {sorted(options)}")
        return {}

    def input_biases(self, b_x, b_h, H, dtype, opts):
        """(bias folded into the input projections, inner bias kept for the loop
        (the GRU's b_hn) or zeros)."""
        b = b_x if b_h is None else b_h if b_x is None else b_x + b_h
        return b, np.zeros(H, dtype)

    def infer_args(self, loop, table, rows, W_h, inner_bias, opts, ws):
        raise NotImplementedError

    def train(self, x, W_x, W_h, b_x, b_h, loop, plan, opts, cache, ws, n_threads):
        """The training forward's argument structure: leases the caches (held
        by `cache`, workspace.hold) and this call's scratch (from ws), and
        records in `cache` what backward needs."""
        raise NotImplementedError

    def backward_args(self, cache, loop, ws):
        """Backward's argument structure, from what forward left in `cache`."""
        raise NotImplementedError

    def gradients(self, cache, a, ws, n_threads):
        """The products after backward_rows: returns the gradients dict (x,
        W_x, W_h, b_x, b_h) of the contract."""
        raise NotImplementedError


def _loop(T, B, H, reverse, mask, has_mask, carry, seq, has_seq, ws):
    dt = carry.dtype
    m, no_seq = ws.empty((B * H,), dt), ws.empty((B * H,), dt)
    m[...] = 1
    no_seq[...] = 0
    return Loop(T=T, H=H, reverse=bool(reverse), mask=mask, has_mask=has_mask,
                flush=config.flush_denormals, carry=carry, has_seq=has_seq, seq=seq, m=m,
                no_seq=no_seq)


def loop_key(kernel, a):
    """A name for the compiled loop `kernel` runs for arguments like `a` (the
    argument class and dtype fix its numba signature; inference also the
    table's rank)."""
    cls = type(a)
    return (f"{kernel.__name__}.{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}."
            f"{a.loop.carry.dtype}" + (f".t{a.table.ndim}" if hasattr(a, "table") else ""))


# The fields of the argument structures that a loop writes at every step and
# nobody reads afterwards: each chunk's thread gets arrays of its own (below).
SCRATCH = ("z", "c_new", "tanh_c", "gate", "x_t", "work", "dxh", "h_new", "act")


def _private(a):
    """A copy of `a` for one more chunk's thread: the carried state, the
    mask spread and every per-step scratch array (SCRATCH) are arrays of its
    own; the rest (weights, inputs, caches) is shared.

    Why: with one array shared, the chunks write their own rows of it, and
    even with every chunk's rows on cache lines of their own (workspace.ALIGN)
    the two threads slowed each other down: B = 32, H = 32 split in two, the
    inference loop took 2.0-2.4 ms of CPU per 16-row chunk, against 1.1 ms
    for 16 rows alone, and the call 3.2 ms against 2.4 on one thread; with
    the chunk's scratch its own, 1.15-1.2 ms per chunk and 2.1 ms per call
    (measured in one process, both threads at real-time priority). What is
    written at every step is (B, H)-sized and small, so the copies cost
    little; the caches, written once per step and read by backward, stay
    shared."""
    def own(v):
        out = workspace.aligned_empty(v.shape, v.dtype)
        out[...] = v
        return out
    L = a.loop
    loop = L._replace(carry=own(L.carry), m=own(L.m), no_seq=own(L.no_seq))
    return a._replace(loop=loop, **{k: own(getattr(a, k)) for k in SCRATCH if k in a._fields})


_entry_points = {}


def _shape_of(a):
    """What, besides the argument class and dtype, fixes the numba type of
    `a`: each array's rank, contiguity and writability."""
    return tuple(_shape_of(v) if isinstance(v, tuple) else
                 (v.ndim, v.dtype.char, v.flags.c_contiguous, v.flags.writeable)
                 if isinstance(v, np.ndarray) else type(v) for v in a)


def entry_point(kernel, a, *extra):
    """kernel's compiled entry point for arguments like `a`, (lo, hi, a, *extra).
    Calling the dispatcher types its arguments at every call, and typing an
    argument structure (two dozen fields, in Python) took 77 us, twice per
    call on two threads: a tenth of an A-sized inference call. The entry
    point for one signature unboxes its arguments without looking, so it is
    kept per argument class and the rank, dtype, contiguity and writability
    of every array (_shape_of), everything numba's type of `a` depends on."""
    key = (kernel, type(a), _shape_of(a), _shape_of(extra))
    f = _entry_points.get(key)
    if f is None:
        import numba
        f = _entry_points[key] = kernel.compile((numba.types.intp, numba.types.intp, numba.typeof(a))
                                                + tuple(numba.typeof(v) for v in extra))
    return f


def _run_chunks(kernel, a, parts, *extra):
    kernel = entry_point(kernel, a, *extra)
    if len(parts) == 1:
        kernel(*parts[0], a, *extra)
        return
    args = [a] + [_private(a) for _ in parts[1:]]
    threads.run_each(kernel, parts, args, *extra)
    for (lo, hi), p in zip(parts[1:], args[1:]):             # each chunk's rows of the state back
        a.loop.carry[:, lo:hi] = p.loop.carry[:, lo:hi]


def run_loop(kernel, a, B, H, chunks, cell, *extra):
    """kernel(lo, hi, a, *extra) over the batch's row chunks, each chunk's
    thread with scratch of its own (_private; extra is shared, read only).
    Its first run in this process goes through kernels/ahead.py: compiled
    here, or by a compile-ahead helper, never by both."""
    ahead.run(loop_key(kernel, a), lambda: _run_chunks(kernel, a, threads.bounds(B, chunks), *extra),
              helper=(cell.name, str(a.loop.carry.dtype), type(a).__name__))


def trailing_lengths(mask):
    """Each row's real length (B,) int64 if mask (B, T) is trailing padding
    exactly (values 0 and 1 only, each row 1 for its first L_r steps and 0
    after), else None."""
    mk = np.asarray(mask)
    if mk.ndim != 2:
        return None
    if mk.dtype != bool:
        if not np.all((mk == 0) | (mk == 1)):
            return None
        mk = mk != 0
    lens = np.count_nonzero(mk, axis=1)
    if not np.array_equal(mk, np.arange(mk.shape[1]) < lens[:, None]):
        return None
    return lens.astype(np.int64)


def live_order(lens, chunks):
    """The row order of the row-skipping loops: rows dealt longest first,
    round robin, into the chunks threads.bounds(B, chunks) makes, so each
    chunk holds rows longest first (its real rows at step t are its first
    ones) and the chunks get similar work. Returns perm (B,): position i
    holds original row perm[i]."""
    parts = [[] for _ in threads.bounds(len(lens), chunks)]
    sizes = [hi - lo for lo, hi in threads.bounds(len(lens), chunks)]
    c = 0
    for r in np.argsort(-lens, kind="stable"):
        while len(parts[c]) == sizes[c]:
            c = (c + 1) % len(parts)
        parts[c].append(r)
        c = (c + 1) % len(parts)
    return np.concatenate(parts).astype(np.int64)


class Live(NamedTuple):
    """The row-skipping loops' plan for one call (skeleton._live)."""
    perm: np.ndarray           # (B,) the loops' row order: position i holds the caller's row perm[i]
    inv: np.ndarray            # (B,) its inverse
    lens: np.ndarray           # (B,) real lengths in the loops' order
    chunks: int                # the loops' row chunks (threads), which the order was made for
    real: np.ndarray           # flat indices t*B + i of the real (step, row) pairs, loops' order
    real_orig: np.ndarray      # the same pairs as t*B + r in the caller's order, ascending
    src: np.ndarray            # for each of real_orig, its index t*B + i in the loops' order


def _live(cell, mask, T, B, chunks):
    """The Live plan when this training call can skip padded steps, else None."""
    if not (cell.SKIPS_PADDING and mask is not None and policy.skip_padding()):
        return None
    lens = trailing_lengths(mask)
    if lens is None or B == 0 or lens.min() >= T:              # not trailing padding, or none at all
        return None
    perm = live_order(lens, chunks)
    inv = np.argsort(perm)
    steps = np.arange(T)[:, None]
    real = np.flatnonzero(lens[perm][None, :] > steps)
    real_orig = np.flatnonzero(lens[None, :] > steps)
    src = real_orig // B * B + inv[real_orig % B]
    return Live(perm, inv, np.ascontiguousarray(lens[perm]), chunks, real, real_orig, src)


def real_rows_gradient(X, dZ, real_orig, n_rows, n_threads):
    """weight_gradient(X_full, dZ_full) (threads.weight_gradient) where the
    full (n_rows, .) operands hold X and dZ at the rows real_orig (ascending)
    and dZ = 0 elsewhere: the rows with dZ = 0 add exact zeros, so they are
    left out, but the sum keeps the full product's k blocks (gemm.KC rows of
    the full operand each, summed in registers, then added in order), so the
    result is the full product's to the last bit."""
    from .gemm import KC, pack
    out = np.zeros((X.shape[1], dZ.shape[1]), X.dtype)
    first = True
    for k0 in range(0, n_rows, KC):
        lo, hi = np.searchsorted(real_orig, (k0, k0 + KC))
        if hi > lo:
            threads.matmul(X[lo:hi].T, pack(dZ[lo:hi]), out, n_threads, accumulate=not first)
            first = False
    return out


def compile_only(kernel, *args):
    """Compile (or load) kernel for the numba types of args, without running it."""
    import numba
    return kernel.compile(tuple(numba.typeof(v) for v in args))


def example_kernels(cell, dtype, variant):
    """Yield (key, compile) for every compiled loop and product a model of
    `cell` in `dtype` needs, the training variant `variant` (a class name,
    "TrainFused" say) first. Each is built on a tiny problem when its turn
    comes; compile() compiles or loads the kernel without running it. The
    compile-ahead helper (kernels/ahead.py) goes through them in this order.

    The order is the helper's share of a first fit and predict: the caller
    compiles the training forward (claimed, so the helper skips it) and then
    the backward, which it needs right after; the helper compiles what the
    caller needs after them and `predict` needs last -- three loops of about
    equal cost on two cores, the caller forward and backward, the helper the
    inference loop over a folded table and the small kernels. The small ones
    come first: Adam and the Embedding gradient (called directly, not
    through claims: a caller that reached them before the helper had
    compiled them would compile them a second time), then the
    whole-sequence product. By the time the helper starts the inference
    loop, the caller has compiled and saved the per-step product
    (gemm.dot), which the inference loop then loads from the cache instead
    of compiling it a second time, and the helper's own numba start-up
    (paid by the first compile in a process) goes into the small kernels
    (docs/kernels.md, session 8: about 0.2 s of a cold start). With backward first instead, as before,
    the helper was still compiling the inference loop long after the caller
    had finished training (cold start 5.4 s on a quiet machine). Inference
    over projections (a model without an Embedding in front) comes last."""
    from .gemm import no_bias, pack, rows_kernel
    dt = np.dtype(dtype)
    G, S = cell.N_GATES, len(cell.STATE_NAMES)
    B, T, D, H = 5, 3, 2, 3
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype(dt)
    W_x, W_h = (rng.standard_normal((k, G * H)).astype(dt) for k in (D, H))
    b = np.zeros(G * H, dt)
    opts = cell.options(**({"reset_after": not variant.endswith("ResetBefore")}
                           if cell.name == "gru" else {}))
    first = variant.endswith("Fused")
    m, has_mask = support.time_major_mask(np.ones((B, T)), dt)
    for fused in (first, not first):
        with workspace.scope() as ws:
            cache = Cache(B=B, T=T, D=D, H=H, dtype=dt, mask=m, has_mask=has_mask, reverse=False,
                          opts=opts, plan=policy.Plan(fused, 1), has_b_x=True, has_b_h=True)
            loop = _loop(T, B, H, False, m, has_mask, np.zeros((S, B, H), dt),
                         np.empty((T, B * H), dt), True, ws)
            with policy.forced(fuse_input=fused):
                a = cell.train(x, W_x, W_h, b, b, loop, cache["plan"], opts, cache, ws, 1)
            yield loop_key(forward_rows, a), lambda: compile_only(forward_rows, 0, 1, a)
            if fused == first:
                # Adam and the Embedding gradient, then the whole-sequence product
                # (one compile for every layout of A: gemm.rows_kernel), then
                # inference over a folded table -- see the docstring
                from .warmup import warm_training
                yield f"adam-embedding.{dt}", lambda: warm_training(dt, common_only=True)
                A, C = np.zeros((B * T, D), dt), np.empty((B * T, H), dt)
                yield f"dot_rows.{dt}", lambda: rows_kernel(A, pack(np.zeros((D, H), dt)), C, no_bias(dt))
                b_inner = cell.input_biases(b, b, H, dt, opts)[1]
                infer = [cell.infer_args(loop, table, np.zeros((T, B), np.int64), W_h, b_inner, opts,
                                         ws) for table in (np.zeros((7, G * H), dt),
                                                           np.zeros((G, B * T, H), dt))]
                yield loop_key(infer_rows, infer[0]), lambda: compile_only(infer_rows, 0, 1, infer[0])
            a = cell.backward_args(cache, loop, ws)
            yield loop_key(backward_rows, a), lambda: compile_only(backward_rows, 0, 1, a)
            if fused == first:                                 # inference over projections
                yield loop_key(infer_rows, infer[1]), lambda: compile_only(infer_rows, 0, 1, infer[1])


def input_projection(x_tm, W_x, b, n_gates, lease, n_threads, rows=None):
    """x W_x + b for all steps: x_tm (T, B, D) -> (G, T*B, H) gate-major,
    from lease(shape, dtype); one product per gate over all T*B rows, or
    over the rows t*B + r listed in `rows` only (the others are left unset:
    the row-skipping loops never read a padded step's projection)."""
    from .gemm import pack_gates
    T, B, D = x_tm.shape
    H = W_x.shape[1] // n_gates
    xw = lease((n_gates, T * B, H), x_tm.dtype)
    Wp = pack_gates(W_x, n_gates, lease)
    x2 = x_tm.reshape(T * B, D)
    if rows is not None:
        x2, part = x2[rows], lease((len(rows), H), x_tm.dtype)
    for q in range(n_gates):
        out = xw[q] if rows is None else part
        # the product added to the bias rows, each block filled in the tiles'
        # threads just before them (gemm.dot_rows): one pass over xw fewer
        # than adding after, and none on the calling thread alone
        threads.matmul(x2, Wp[q], out, n_threads, bias=None if b is None else b[q * H:(q + 1) * H])
        if rows is not None:
            xw[q][rows] = part
    return xw


def forward(cell, x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, need_cache=True, need_outputs=True, **options):
    """Run cell over a whole sequence; the contract of lstmkit.cells.<cell>.forward.
    need_cache=False is the inference path: no cache (None in its place), and
    with need_outputs=False no outputs either (hs is None)."""
    opts = cell.options(**options)
    if recurrent_mask is not None:
        raise NotImplementedError(f"the fast {cell.name} kernel has no recurrent dropout; "
                                  f"use the reference engine")
    G, S = cell.N_GATES, len(cell.STATE_NAMES)
    if state0 is None:
        state0 = tuple(np.zeros((x.shape[0], W_h.shape[0]), x.dtype) for _ in range(S))
    B, T, D, H = check_sequence_args(x, W_x, W_h, b_x, b_h, state0, mask, G, S)
    support.check_dtype(x)
    dt = x.dtype
    n_threads = config.threads
    carry = support.stacked_state(state0, B, H, dt)           # becomes the final state
    m, has_mask = support.time_major_mask(mask, dt)
    if not need_cache:
        b_outer, b_inner = cell.input_biases(b_x, b_h, H, dt, opts)
        with workspace.scope() as ws:
            xw = input_projection(support.time_major(x, ws.empty), np.asarray(W_x, dt), b_outer, G,
                                  ws.empty, n_threads)        # (G, T*B, H)
            rows = np.arange(T * B, dtype=np.int64).reshape(T, B)   # step t, row r reads row t*B + r
            hs = _infer(cell, xw, rows, np.asarray(W_h, dt), b_inner, carry, m, has_mask, reverse,
                        need_outputs, opts, n_threads, ws)
        return hs, tuple(carry), None
    plan = policy.plan(cell.name, B, H, n_threads)
    live = _live(cell, mask, T, B, plan.chunks)
    if live is not None:                                       # rows in length order, no mask
        x, carry = x[live.perm], np.ascontiguousarray(carry[:, live.perm])
        m, has_mask = support.time_major_mask(None, dt)
    hs = np.empty((T, B * H), dt) if need_outputs else support.placeholder(dt, 2)
    cache = Cache(B=B, T=T, D=D, H=H, dtype=dt, mask=m, has_mask=has_mask, reverse=bool(reverse),
                  opts=opts, plan=plan, has_b_x=b_x is not None, has_b_h=b_h is not None, live=live)
    with workspace.scope() as ws:
        loop = _loop(T, B, H, reverse, m, has_mask, carry, hs, bool(need_outputs), ws)
        a = cell.train(np.ascontiguousarray(x), np.asarray(W_x, dt), np.asarray(W_h, dt), b_x, b_h,
                       loop, plan, opts, cache, ws, n_threads)
        if live is None:
            run_loop(forward_rows, a, B, H, plan.chunks, cell)
        else:
            run_loop(forward_rows_live, a, B, H, plan.chunks, cell, live.lens)
    if live is None:
        return (support.batch_major(hs, B) if need_outputs else None), tuple(carry), cache
    inv = live.inv                                             # back to the caller's row order
    hs = (np.ascontiguousarray(hs.reshape(T, B, H)[:, inv].transpose(1, 0, 2)) if need_outputs
          else None)
    return hs, tuple(carry[:, inv]), cache


def backward(cell, dhs, dstate, cache):
    """Backpropagation through time for forward(); the contract of
    lstmkit.cells.<cell>.backward."""
    B, T, H, dt = cache["B"], cache["T"], cache["H"], cache["dtype"]
    S = len(cell.STATE_NAMES)
    n_threads = config.threads
    dstate = (None,) * S if dstate is None else tuple(dstate)
    carry = support.stacked_state(dstate, B, H, dt)           # becomes dL/d state0
    live = cache.get("live")
    if live is not None:                                       # the forward's row order
        carry = np.ascontiguousarray(carry[:, live.perm])
        dhs = None if dhs is None else np.asarray(dhs)[live.perm]
    with workspace.scope() as ws:
        has_dhs = dhs is not None
        dhs_tm = (support.time_major(dhs, ws.empty, dt).reshape(T, B * H) if has_dhs
                  else support.placeholder(dt, 2))
        loop = _loop(T, B, H, cache["reverse"], cache["mask"], cache["has_mask"], carry, dhs_tm,
                     has_dhs, ws)
        a = cell.backward_args(cache, loop, ws)
        if live is None:
            run_loop(backward_rows, a, B, H, policy.loop_chunks(B, H, n_threads), cell)
        else:                                                  # the forward's chunks: rows in length order
            run_loop(backward_rows_live, a, B, H, live.chunks, cell, live.lens)
        grads = cell.gradients(cache, a, ws, n_threads)
    grads["state0"] = tuple(carry if live is None else carry[:, live.inv])
    return grads


def _infer(cell, table, rows, W_h, inner_bias, carry, m, has_mask, reverse, need_outputs, opts,
           n_threads, ws):
    """Run infer_rows; carry (S, B, H) goes from the initial to the final state.
    Returns hs (B, T, H) or None."""
    T, B = rows.shape
    H = W_h.shape[0]
    dt = table.dtype
    hs = np.empty((T, B * H), dt) if need_outputs else support.placeholder(dt, 2)
    loop = _loop(T, B, H, reverse, m, has_mask, carry, hs, bool(need_outputs), ws)
    a = cell.infer_args(loop, table, rows, W_h, inner_bias, opts, ws)
    run_loop(infer_rows, a, B, H, policy.loop_chunks(B, H, n_threads), cell)
    return support.batch_major(hs, B) if need_outputs else None


def project_table(cell, E, W_x, b_x=None, b_h=None, empty=None, **options):
    """An embedding table folded through the input side: E (V, D) ->
    E W_x + b (V, G*H), the table forward_lookup reads (b: the biases that
    join the input side, cell.input_biases). E[ids] W_x + b equals
    (E W_x + b)[ids], so a model fed by an Embedding skips the per-step
    input product at inference. empty(shape, dtype): where the table comes
    from (a layer's lease, see RNNLayer._folded_table), else new memory."""
    opts = cell.options(**options)
    support.check_dtype(E)
    G = cell.N_GATES
    if E.ndim != 2 or W_x.ndim != 2 or W_x.shape[0] != E.shape[1] or W_x.shape[1] % G:
        raise ValueError(f"project_table: E (V, D) and W_x (D, {G}H) do not agree: "
                         f"{E.shape} and {W_x.shape}")
    from .gemm import KC, pack
    H = W_x.shape[1] // G
    E = np.ascontiguousarray(E)
    table = (np.empty if empty is None else empty)((E.shape[0], G * H), E.dtype)   # (V, G*H)
    Wp = pack(np.asarray(W_x, E.dtype))
    b = cell.input_biases(b_x, b_h, H, E.dtype, opts)[0]
    if b is not None and E.shape[1] <= KC:
        # the bias added in the product's tiles: fadd(sum, b), the bits of the
        # pass after it below, which took a third of the fold on one thread
        threads.matmul(E, Wp, table, config.threads, bias=b)
        return table
    threads.matmul(E, Wp, table, config.threads)
    if b is not None:                                          # sums over several k blocks
        table += b
    return table


def forward_lookup(cell, ids, table, W_h, state0=None, mask=None, reverse=False, need_outputs=True,
                   b_h=None, **options):
    """Inference from token ids through a (V, G*H) table made by project_table:
    the result of forward(E[ids], W_x, W_h, b_x, b_h, ..., need_cache=False)
    up to the rounding of the input product. ids (B, T) integers in [0, V).
    Returns (hs (B, T, H) or None, state)."""
    opts = cell.options(**options)
    G, S = cell.N_GATES, len(cell.STATE_NAMES)
    H = W_h.shape[0]
    if table.ndim != 2 or table.shape[1] != G * H or W_h.shape != (H, G * H):
        raise ValueError(f"forward_lookup: table {table.shape} and W_h {W_h.shape} do not agree")
    if b_h is not None and np.shape(b_h) != (G * H,):
        raise ValueError(f"forward_lookup: b_h must have shape ({G * H},); got {np.shape(b_h)}")
    rows = support.token_rows(ids, mask, table.shape[0])      # (T, B)
    dt = table.dtype
    B = rows.shape[1]
    states = (None,) * S if state0 is None else tuple(state0)
    carry = support.stacked_state(states, B, H, dt)
    m, has_mask = support.time_major_mask(mask, dt)
    b_inner = cell.input_biases(None, b_h, H, dt, opts)[1]
    with workspace.scope() as ws:
        hs = _infer(cell, np.ascontiguousarray(table), rows, np.asarray(W_h, dt), b_inner, carry, m,
                    has_mask, reverse, need_outputs, opts, config.threads, ws)
    return hs, tuple(carry)


class StackedCell(Cell):
    """The Python side of a cell whose preactivation is one sum,
    z = x_t W_x + h_{t-1} W_h + b (the LSTM, the simple RNN): it can stack
    [W_x; W_h; b] and multiply the row [x_t, h_{t-1}, 1] by it in one product
    (policy.fuse_input). The subclass names its argument classes, its caches
    and its scratch; this class does the rest.

    Training: the forward keeps each step's [x_t, h_{t-1}, 1] rows (xh_all,
    (T, B, D+H+1)); backward leaves dL/dz in a (G, T, B*H) array, so the
    weight gradients are one product per gate over all steps,
    [W_x; W_h; b] gradient = xh_all^T dz (the column of ones gives the bias).
    Fused, each step's [dx_t, dh_{t-1}] comes from the same stacked weights;
    unfused, the step gets dh_{t-1} from W_h alone and dx is one product
    after the loop."""
    Train = TrainFused = Infer = Backward = BackwardFused = None

    def caches(self, T, B, H, dt):
        """The cell's own caches for backward: {name: leased array}."""
        raise NotImplementedError

    def scratch(self, kind, B, H, K, dt, ws):
        """{name: array} of the scratch fields of the cell's `kind` ("train",
        "infer", "backward") structure, B rows' worth, from ws."""
        raise NotImplementedError

    def dz(self, cache, ws):
        """The (G, T, B*H) array backward writes dL/dz into."""
        raise NotImplementedError

    def flags(self, opts):
        """The cell options as fields of its argument structures."""
        return {}

    def infer_args(self, loop, table, rows, W_h, inner_bias, opts, ws):
        from .gemm import pack_gates
        H, B, dt = loop.H, rows.shape[1], table.dtype
        return self.Infer(loop=loop, table=table, rows=rows, x_t=ws.empty((self.N_GATES, B * H), dt),
                          W=pack_gates(W_h, self.N_GATES, ws.empty), **self.flags(opts),
                          **self.scratch("infer", B, H, 0, dt, ws))

    def train(self, x, W_x, W_h, b_x, b_h, loop, plan, opts, cache, ws, n_threads):
        from .gemm import pack_gates
        B, T, D = x.shape
        H, G, dt = W_h.shape[0], self.N_GATES, x.dtype
        K = D + H + 1
        W_xh = np.empty((K, G * H), dt)                        # [W_x; W_h; b_x + b_h]
        W_xh[:D], W_xh[D:D + H] = W_x, W_h
        b = self.input_biases(b_x, b_h, H, dt, opts)[0]
        W_xh[D + H] = 0 if b is None else b
        xh_all = workspace.lease((T, B, K), dt)                # each step's [x_t, h_{t-1}, 1]
        own = self.caches(T, B, H, dt)
        workspace.hold(cache, xh_all, *own.values())
        if plan.fuse_input:
            cls, W, xw = self.TrainFused, pack_gates(W_xh, G, ws.empty), support.placeholder(dt, 3)
        else:
            cls, W = self.Train, pack_gates(W_h, G, ws.empty)
            live = cache.get("live")
            # x W_x without the bias, which the step's gate passes add: filling
            # (T*B, H) with the bias before the product was a pass over 6.5 MB
            # per gate and layer, on one thread (workload D: 9 ms of ~140)
            xw = input_projection(support.time_major(x, ws.empty), W_x, None, G, ws.empty,
                                  n_threads, None if live is None else live.real).reshape(G, T, B * H)
        cache.update(W_xh=W_xh, xh_all=xh_all, fused=plan.fuse_input, own=tuple(own), **own)
        return cls(loop=loop, x=x, xw=xw, b=W_xh[D + H], W=W, xh_all=xh_all, **own, **self.flags(opts),
                   **self.scratch("train", B, H, K, dt, ws))

    def backward_args(self, cache, loop, ws):
        from .gemm import pack_rows_by_gate
        B, T, D, H = cache["B"], cache["T"], cache["D"], cache["H"]
        G, dt, fused, W_xh = self.N_GATES, cache["dtype"], cache["fused"], cache["W_xh"]
        if fused:
            # per gate (H, D+H): dz_q -> [dx_t, dh_{t-1}]; not the bias row, whose
            # gradient dL/d1 nobody reads: 64 columns are two panels, 65 were three
            cls, K = self.BackwardFused, D + H
            W_back = pack_rows_by_gate(W_xh[:D + H], G, ws.empty)
            dx = np.empty((B, T, D), dt)
        else:
            cls, K = self.Backward, H
            W_back = pack_rows_by_gate(W_xh[D:D + H], G, ws.empty)   # per gate (H, H)
            dx = support.placeholder(dt, 3)
        return cls(loop=loop, dz=self.dz(cache, ws), W_back=W_back, dx=dx, dxh=ws.empty((B, K), dt),
                   **{k: cache[k] for k in cache["own"]}, **self.flags(cache["opts"]),
                   **self.scratch("backward", B, H, K, dt, ws))

    def gradients(self, cache, a, ws, n_threads):
        from .gemm import pack_rows_by_gate
        B, T, D, H = cache["B"], cache["T"], cache["D"], cache["H"]
        G, dt, fused, W_xh = self.N_GATES, cache["dtype"], cache["fused"], cache["W_xh"]
        dz, dx = a.dz, a.dx                                    # dz (G, T, B*H)
        live = cache.get("live")
        if live is not None:
            return self._real_rows_gradients(cache, a, live, ws, n_threads)
        if not fused:
            # dx = sum over gates of dz_q W_xq^T for all steps at once, then batch-major
            dx_tm = ws.empty((T * B, D), dt)
            W_xT = pack_rows_by_gate(W_xh[:D], G, ws.empty)   # per gate (H, D)
            for q in range(G):
                threads.matmul(dz[q].reshape(T * B, H), W_xT[q], dx_tm, n_threads, accumulate=q > 0)
            dx = support.batch_major(dx_tm.reshape(T, B * D), B)
        # the weight gradients, one product per gate over all steps; the
        # column of ones in [x_t, h_{t-1}, 1] gives the bias
        X = cache["xh_all"].reshape(T * B, D + H + 1)
        dW = threads.gate_weight_gradients(X, dz.reshape(G, T * B, H), n_threads, ws.empty)
        return self._grads(cache, dx, dW)

    def _real_rows_gradients(self, cache, a, live, ws, n_threads):
        """gradients() after the row-skipping loops: the loops' rows were in
        length order, so the real (step, row) pairs are gathered back into the
        caller's order; the products run over those pairs only, and equal the
        masked path's to the last bit (a padded pair's dz is 0: it adds
        nothing to dx's rows, and real_rows_gradient keeps the weight
        gradients' blocks)."""
        from .gemm import pack_rows_by_gate
        B, T, D, H = cache["B"], cache["T"], cache["D"], cache["H"]
        G, dt, fused, W_xh = self.N_GATES, cache["dtype"], cache["fused"], cache["W_xh"]
        N = len(live.src)
        X = np.take(cache["xh_all"].reshape(T * B, D + H + 1), live.src, axis=0,
                    out=ws.empty((N, D + H + 1), dt))          # (N, D+H+1) real rows, caller's order
        dz = np.take(a.dz.reshape(G, T * B, H), live.src, axis=1, out=ws.empty((G, N, H), dt))
        if fused:
            dx = a.dx[live.inv]
        else:
            part = ws.empty((N, D), dt)
            W_xT = pack_rows_by_gate(W_xh[:D], G, ws.empty)
            for q in range(G):
                threads.matmul(dz[q], W_xT[q], part, n_threads, accumulate=q > 0)
            dx_tm = np.zeros((T * B, D), dt)                   # a padded step's dx is 0
            dx_tm[live.real_orig] = part
            dx = support.batch_major(dx_tm.reshape(T, B * D), B)
        dW = np.empty((D + H + 1, G * H), dt)
        for q in range(G):
            dW[:, q * H:(q + 1) * H] = real_rows_gradient(X, dz[q], live.real_orig, T * B, n_threads)
        return self._grads(cache, dx, dW)

    def _grads(self, cache, dx, dW):
        D, H = cache["D"], cache["H"]
        db = dW[D + H]
        return dict(x=dx, W_x=dW[:D], W_h=dW[D:D + H], b_x=db if cache["has_b_x"] else None,
                    b_h=db.copy() if cache["has_b_h"] else None)
