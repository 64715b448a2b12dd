"""Simple (Elman) RNN, fast engine: the whole time loop, forward and backward,
in one compiled Numba function each. Same contract as lstmkit.cells.simple_rnn.

    h_t = act(x_t W_x + b_x + b_h + h_{t-1} W_h)      act = tanh or relu

Layout and threading as in lstmkit.kernels.lstm: time-major arrays (T, B*H),
flat elementwise passes over a chunk's B*H numbers, one np.dot per step,
row chunks in threads for large batches; inference without caches and with
an Embedding folded into the input side (project_table, forward_lookup) as
in the LSTM.
"""
import numpy as np
from numba import njit

from ..cells.activations import ACTIVATIONS
from ..cells.checks import check_sequence_args
from . import support, workspace
from .blas_threads import single_threaded_blas
from .activations import fast_tanh
from .denormals import flush_denormals_begin, flush_denormals_end
from .support import cast_like

N_GATES = 1
STATE_NAMES = ("h",)
GATE_NAMES = ("hidden",)

_JIT = dict(cache=True, nogil=True, error_model="numpy")


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
    return activation == "relu"


@njit(**_JIT)
def _activate(xw_t, z_flat, relu, act):
    """act = act(xw_t + z) over one flat run: s_t = tanh (or relu) of U x_t + W s_{t-1} + b."""
    zero = cast_like(act, 0.0)
    if relu:
        for k in range(act.shape[0]):
            v = xw_t[k] + z_flat[k]
            act[k] = zero if v < zero else v                   # NaN passes, as np.maximum
    else:
        for k in range(act.shape[0]):
            act[k] = fast_tanh(xw_t[k] + z_flat[k])


@njit(**_JIT)
def _step(h, W_h, z, xw_t, m, relu, act, out):
    """One step over a chunk's rows: act = act(xw_t + h W_h) (the new state
    before the mask), out = m * act, and h (n, H) updated in place."""
    P = act.shape[0]
    one = cast_like(act, 1.0)
    h_flat, z_flat = h.reshape(P), z.reshape(P)
    np.dot(h, W_h, z)
    _activate(xw_t, z_flat, relu, act)
    for k in range(P):
        out[k] = m[k] * act[k]
        h_flat[k] = m[k] * act[k] + (one - m[k]) * h_flat[k]  # a masked step carries the state


@njit(**_JIT)
def _advance(h, W_h, z, xw_t, relu):
    """_step without a mask and without outputs: the new state written over h
    (n, H) directly (the same numbers: there m = 1 and (1 - m) * h = 0)."""
    P = h.size
    np.dot(h, W_h, z)
    _activate(xw_t, z.reshape(P), relu, h.reshape(P))


@njit(**_JIT)
def _forward_rows(lo, hi, x, W_xh, h0, mask, has_mask, reverse, relu, flush,
                  keep_hs, hs, h_news, xh_all, h_T):
    """The forward time loop for batch rows lo..hi-1, one product per step:
    z = [x_t, h_{t-1}, 1] W_xh with W_xh = [W_x; W_h; b_x + b_h] (D+H+1, H), as
    in the LSTM's training loop. x (B, T, D) as given; mask (T, B); hs,
    h_news (T, B*H): the outputs and the new states before the mask, which
    backward reads; xh_all (T, B, D+H+1) each step's [x_t, h_{t-1}, 1], which
    the weight gradients read."""
    old_mode = flush_denormals_begin() if flush else np.uint32(0)
    n, T, D, H = hi - lo, h_news.shape[0], x.shape[2], h0.shape[1]
    P, base = n * H, lo * H
    one = cast_like(h_news, 1.0)
    h = h0[lo:hi].copy()                                       # (n, H) hidden state
    h_flat = h.reshape(P)
    z = np.empty((n, H), h.dtype)
    z_flat = z.reshape(P)
    no_input = np.zeros(P, h.dtype)                            # the input is inside the product
    scratch_out = np.empty(P, h.dtype)                         # the output when hs is not kept
    m = np.ones(P, h.dtype)
    for step in range(T):
        t = T - 1 - step if reverse else step
        if has_mask:
            support.spread_mask(m, mask, t, lo, n, H)
        xh = xh_all[t, lo:hi]                                  # (n, D+H+1)
        support.fill_step_rows(xh, x, h, lo, t)
        out = hs[t, base:base + P] if keep_hs else scratch_out[:]
        act = h_news[t, base:base + P]
        np.dot(xh, W_xh, z)                                    # U x_t + W s_{t-1} + b, one product
        _activate(no_input, z_flat, relu, act)                 # s_t = act(...)
        for k in range(P):
            out[k] = m[k] * act[k]
            h_flat[k] = m[k] * act[k] + (one - m[k]) * h_flat[k]  # a masked step carries the state
    h_T[lo:hi] = h
    if flush:
        flush_denormals_end(old_mode)


@njit(**_JIT)
def _infer_rows(lo, hi, table, rows, W_h, h0, mask, has_mask, reverse, relu, flush,
                keep_hs, hs, h_T):
    """The forward time loop for inference, rows lo..hi-1: keeps only the state
    (and the outputs when keep_hs), so a step's working set stays in L1.

    table: input projections with biases, and rows (T, B) the row of table
    each (step, sequence) reads: either x W_x + b for every step, (1, R = T*B, H),
    or an embedding table folded through W_x, (R = vocab, H) with rows = the
    token ids, whose rows are fetched a step ahead. hs (T, B*H), or a
    placeholder when not keep_hs.
    """
    old_mode = flush_denormals_begin() if flush else np.uint32(0)
    n, T, H = hi - lo, rows.shape[0], W_h.shape[0]
    P, base = n * H, lo * H
    h = h0[lo:hi].copy()                                       # (n, H) hidden state
    z = np.empty((n, H), h.dtype)                              # h_{t-1} W_h
    x_t = np.empty((1, P), h.dtype)                            # this step's input projections
    act = np.empty(P, h.dtype)                                 # the new state before the mask
    scratch_out = np.empty(P, h.dtype)                         # the output when hs is not kept
    m = np.ones(P, h.dtype)
    for step in range(T):
        t = T - 1 - step if reverse else step
        if has_mask:
            support.spread_mask(m, mask, t, lo, n, H)
        support.gather_step(table, rows, step, T, reverse, lo, n, H, x_t)
        if has_mask or keep_hs:
            out = hs[t, base:base + P] if keep_hs else scratch_out[:]
            _step(h, W_h, z, x_t[0], m, relu, act, out)
        else:                                                  # only the state goes on
            _advance(h, W_h, z, x_t[0], relu)
    h_T[lo:hi] = h
    if flush:
        flush_denormals_end(old_mode)


@njit(**_JIT)
def _backward_rows(lo, hi, dhs, has_dhs, dh_T, h_news, mask, has_mask, reverse, relu, W_xhT,
                   flush, da_all, dx, dh0):
    """BPTT for batch rows lo..hi-1: fills da_all (T, B*H), the gradients of
    the preactivations, dx (B, T, D) and dh0. W_xhT (H, D+H+1): one product per
    step gives [dx_t, dh_{t-1}, -]."""
    old_mode = flush_denormals_begin() if flush else np.uint32(0)
    n, T, H = hi - lo, h_news.shape[0], W_xhT.shape[0]
    D = dx.shape[2]
    P, base = n * H, lo * H
    zero, one = cast_like(h_news, 0.0), cast_like(h_news, 1.0)
    dh = dh_T[lo:hi].copy()                                    # (n, H) dL/dh_t
    dh_flat = dh.reshape(P)
    dh_skip = np.empty(P, dh.dtype)
    dxh = np.empty((n, W_xhT.shape[1]), dh.dtype)              # dL/d[x_t, h_{t-1}, 1]
    no_dhs = np.zeros(P, dh.dtype)
    m = np.ones(P, dh.dtype)
    for step in range(T):
        t = step if reverse else T - 1 - step
        if has_mask:
            support.spread_mask(m, mask, t, lo, n, H)
        dout = dhs[t, base:base + P] if has_dhs else no_dhs
        act, da = h_news[t, base:base + P], da_all[t, base:base + P]
        for k in range(P):
            dh_skip[k] = (one - m[k]) * dh_flat[k]            # backprop through the carried state
        # backprop through s_t = act(U x_t + W s_{t-1} + b)
        if relu:
            for k in range(P):
                da[k] = (m[k] * (dh_flat[k] + dout[k])) * (one if act[k] > zero else zero)
        else:
            for k in range(P):
                da[k] = (m[k] * (dh_flat[k] + dout[k])) * (one - act[k] * act[k])
        np.dot(da.reshape((n, H)), W_xhT, dxh)                 # backprop through [x_t, s_{t-1}, 1] W_xh
        for r in range(n):
            for j in range(D):
                dx[lo + r, t, j] = dxh[r, j]
            for j in range(H):
                dh[r, j] = dxh[r, D + j] + dh_skip[r * H + j]
    dh0[lo:hi] = dh
    if flush:
        flush_denormals_end(old_mode)


def _forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, activation="tanh", need_cache=True, need_outputs=True):
    """The body of forward(), run with BLAS threads set."""
    relu = _check_activation(activation)
    if recurrent_mask is not None:
        raise NotImplementedError("the fast simple-RNN kernel has no recurrent dropout; "
                                  "use the reference engine")
    if state0 is None:
        state0 = (np.zeros((x.shape[0], W_h.shape[0]), x.dtype),)
    B, T, D, H = check_sequence_args(x, W_x, W_h, b_x, b_h, state0, mask, N_GATES, 1)
    support.check_dtype(x)
    dt = x.dtype
    if not need_cache:
        x_tm = support.time_major(x)                           # (T, B, D)
        xw = support.gate_major_projection(x_tm, W_x, b_x, b_h, 1)  # (1, T, B*H)
        # every (step, sequence) reads its own row of the projections
        rows = np.arange(T * B, dtype=np.int64).reshape(T, B)           # (T, B)
        hs, state = _infer(xw.reshape(1, T * B, H), rows, np.ascontiguousarray(W_h), state0,
                           mask, reverse, relu, need_outputs)
        return hs, state, None
    x = np.ascontiguousarray(x)
    b = np.zeros(H, dt)
    for bias in (b_x, b_h):
        if bias is not None:
            b += bias
    W_xh = np.empty((D + H + 1, H), dt)                        # [W_x; W_h; b]
    W_xh[:D], W_xh[D:D + H], W_xh[D + H] = W_x, W_h, b
    h0 = support.contiguous(state0[0], dt)
    m, has_mask = support.time_major_mask(mask, dt)
    hs = workspace.empty((T, B * H), dt) if need_outputs else np.empty((1, 1), dt)
    h_news = workspace.empty((T, B * H), dt)
    xh_all = workspace.empty((T, B, D + H + 1), dt)            # [x_t, h_{t-1}, 1]
    h_T = np.empty((B, H), dt)
    support.run_chunks(_forward_rows, B, H, x, W_xh, h0, m, has_mask, bool(reverse), relu,
                       support.FLUSH_DENORMALS, bool(need_outputs), hs, h_news, xh_all, h_T)
    cache = dict(W_xh=W_xh, D=D, has_b_x=b_x is not None, has_b_h=b_h is not None,
                 h_news=h_news, xh_all=xh_all, mask=m, has_mask=has_mask,
                 reverse=bool(reverse), relu=relu)
    return (support.batch_major(hs, B) if need_outputs else None), (h_T,), cache


def _infer(table, rows, W_h, state0, mask, reverse, relu, need_outputs):
    """Run _infer_rows: table (1, R, H) projections or (R, H) a folded
    embedding table, rows (T, B) int64 indices into it. Returns (hs (B, T, H) or None, (h_T,))."""
    T, B = rows.shape
    H = W_h.shape[0]
    dt = table.dtype
    h0 = np.zeros((B, H), dt) if state0 is None else support.contiguous(state0[0], dt)
    m, has_mask = support.time_major_mask(mask, dt)
    hs = workspace.empty((T, B * H), dt) if need_outputs else np.empty((1, 1), dt)
    h_T = np.empty((B, H), dt)
    support.run_chunks(_infer_rows, B, H, table, rows, np.ascontiguousarray(W_h, dt), h0, m,
                       has_mask, bool(reverse), relu, support.FLUSH_DENORMALS, bool(need_outputs),
                       hs, h_T)
    return (support.batch_major(hs, B) if need_outputs else None), (h_T,)


def project_table(E, W_x, b_x=None, b_h=None):
    """An embedding table folded through the input side: E (V, D) ->
    E W_x + b_x + b_h (V, H), the table forward_lookup reads.
    E[ids] W_x + b equals (E W_x + b)[ids], so a model fed by an Embedding
    can skip the per-step input product at inference."""
    support.check_dtype(E)
    if E.ndim != 2 or W_x.ndim != 2 or W_x.shape[0] != E.shape[1]:
        raise ValueError(f"project_table: E (V, D) and W_x (D, H) do not agree: "
                         f"{E.shape} and {W_x.shape}")
    with single_threaded_blas():
        table = np.ascontiguousarray(E) @ W_x                  # (V, H)
    for b in (b_x, b_h):
        if b is not None:
            table += b
    return table


def forward_lookup(ids, table, W_h, state0=None, mask=None, reverse=False, need_outputs=True,
                   activation="tanh"):
    """Inference from token ids through a (V, H) table made by project_table: the
    same result as forward(E[ids], W_x, W_h, b_x, b_h, ..., need_cache=False), up
    to rounding of the input product. ids (B, T) integers in [0, V).
    Returns (hs (B, T, H) or None, (h_T,))."""
    relu = _check_activation(activation)
    H = W_h.shape[0]
    if table.ndim != 2 or table.shape[1] != H or W_h.shape != (H, H):
        raise ValueError(f"forward_lookup: table {table.shape} and W_h {W_h.shape} do not agree")
    rows = support.token_rows(ids, mask, table.shape[0])               # (T, B)
    with single_threaded_blas():
        return _infer(np.ascontiguousarray(table), rows, W_h, state0, mask, reverse, relu, need_outputs)


def _backward(dhs, dstate, cache):
    """The body of backward(), run with BLAS threads set."""
    xh_all, W_xh, D = cache["xh_all"], cache["W_xh"], cache["D"]
    T, B, K = xh_all.shape
    H = W_xh.shape[1]
    dt = xh_all.dtype
    dh_T = None if dstate is None else dstate[0]
    dh_T = np.zeros((B, H), dt) if dh_T is None else support.contiguous(dh_T, dt)
    has_dhs = dhs is not None
    dhs_tm = support.time_major(dhs, dt).reshape(T, B * H) if has_dhs else np.zeros((1, 1), dt)
    da_all = workspace.empty((T, B * H), dt)
    dx = workspace.empty((B, T, D), dt)
    dh0 = np.empty((B, H), dt)
    support.run_chunks(_backward_rows, B, H, dhs_tm, has_dhs, dh_T, cache["h_news"], cache["mask"],
                       cache["has_mask"], cache["reverse"], cache["relu"],
                       np.ascontiguousarray(W_xh.T), support.FLUSH_DENORMALS, da_all, dx, dh0)
    # one product over all steps for [W_x; W_h; b] (the row of ones gives the bias)
    dW = support.sum_of_products(xh_all.reshape(T * B, K), da_all.reshape(T * B, H))
    db = dW[D + H]
    return dict(x=dx, W_x=dW[:D], W_h=dW[D:D + H],
                b_x=db if cache["has_b_x"] else None,
                b_h=db.copy() if cache["has_b_h"] else None,
                state0=(dh0,))


def forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, activation="tanh", need_cache=True,
            need_outputs=True):
    """Run the simple RNN over a whole sequence; see lstmkit.cells.simple_rnn.forward.

    Returns (hs, (h_T,), cache): hs (B, T, H), the final state and an opaque cache.
    need_cache=False (inference): no cache is kept (None in its place);
    with need_outputs=False also hs is None.
    """
    with single_threaded_blas():
        return _forward(x, W_x, W_h, b_x, b_h, state0, mask, reverse, recurrent_mask, activation,
                        need_cache, need_outputs)


def backward(dhs, dstate, cache):
    """Backpropagation through time for forward(); see lstmkit.cells.simple_rnn.backward."""
    with single_threaded_blas():
        return _backward(dhs, dstate, cache)


@njit(**_JIT)
def _step_into(x_t, h, W_x, W_h, b_x, b_h, relu, h_out):
    """One step for rows of x_t (B, D): writes h_t into h_out (B, H), which may
    be h itself. Plain loops instead of np.dot, as in the LSTM's step."""
    B, H = h.shape
    D = x_t.shape[1]
    if (h_out.shape != h.shape or x_t.shape[0] != B or W_x.shape != (D, H)
            or W_h.shape != (H, H) or b_x.shape[0] != H or b_h.shape[0] != H):
        raise ValueError("step(): shapes of x_t, state, weights or out do not agree")
    zero = cast_like(h, 0.0)
    a = np.empty(H, h.dtype)
    for r in range(B):
        for j in range(H):
            a[j] = b_x[j] + b_h[j]
        for i in range(D):
            xv = x_t[r, i]
            for j in range(H):
                a[j] += xv * W_x[i, j]
        for i in range(H):
            hv = h[r, i]
            for j in range(H):
                a[j] += hv * W_h[i, j]
        for j in range(H):
            h_out[r, j] = (zero if a[j] < zero else a[j]) if relu else fast_tanh(a[j])


@njit(**_JIT)
def _step_new(x_t, h, W_x, W_h, b_x, b_h, relu):
    h_out = np.empty_like(h)
    _step_into(x_t, h, W_x, W_h, b_x, b_h, relu, h_out)
    return h_out


def step(x_t, state, W_x, W_h, b_x=None, b_h=None, out=None, activation="tanh"):
    """One simple-RNN step for streaming inference, in one compiled call.

    x_t (B, D); state = (h,), (B, H). out, optional (h_out,) to write the new
    state into (may be the state itself). Returns (h_t, (h_t,)).
    """
    relu = _check_activation(activation)
    # strided x[:, t] or transposed weights (torch's weight_hh.T) would each
    # make numba compile another specialisation
    h = state[0]
    if not (x_t.flags.c_contiguous and W_x.flags.c_contiguous and W_h.flags.c_contiguous
            and h.flags.c_contiguous):
        x_t, W_x, W_h, h = (np.ascontiguousarray(a) for a in (x_t, W_x, W_h, h))
    if b_x is None:
        b_x = support.zeros_cached(W_h.shape[1], x_t.dtype)
    if b_h is None:
        b_h = support.zeros_cached(W_h.shape[1], x_t.dtype)
    if out is None:
        h_t = _step_new(x_t, h, W_x, W_h, b_x, b_h, relu)
    else:
        h_t = out[0]
        _step_into(x_t, h, W_x, W_h, b_x, b_h, relu, h_t)
    return h_t, (h_t,)
