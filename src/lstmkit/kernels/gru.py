"""GRU, fast engine: the whole time loop, forward and backward, in one
compiled Numba function each. Same contract as lstmkit.cells.gru.

Gate order in every weight matrix (columns, blocks of H): reset gate r,
update gate z, candidate n -- PyTorch's order.

    r_t = sigmoid(x_t W_xr + b_xr + b_hr + h_{t-1} W_hr)           reset_gate
    z_t = sigmoid(x_t W_xz + b_xz + b_hz + h_{t-1} W_hz)           update_gate
    reset_after=True  (PyTorch):  n_t = tanh(x_t W_xn + b_xn + r_t * (h_{t-1} W_hn + b_hn))
    reset_after=False (Cho):      n_t = tanh(x_t W_xn + b_xn + b_hn + (r_t * h_{t-1}) W_hn)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                          hidden state

Layout and threading as in lstmkit.kernels.lstm: time-major, gate-major
arrays (3, T, B*H), flat elementwise passes over a chunk's B*H numbers, one
np.dot per gate and step, row chunks in threads for large batches.

Inference as in the LSTM too: a loop that keeps no caches (_infer_rows) and
an Embedding folded into the input side (project_table, forward_lookup).
With reset_after the table holds x W_x + b_x + b_hr, b_hz only: b_hn is
multiplied by r_t, so the loop adds it there.
"""
import numpy as np
from numba import njit

from ..cells.checks import check_sequence_args
from ..cells.gru import _check_reset_after
from . import gemm, support, workspace
from .blas_threads import single_threaded_blas
from .activations import fast_tanh
from .denormals import flush_denormals_begin, flush_denormals_end
from .support import cast_like

N_GATES = 3
STATE_NAMES = ("h",)
GATE_NAMES = ("reset_gate", "update_gate", "candidate")

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_JIT)
def _sigmoid_gate(a, zh, gate):
    """gate = sigmoid(a + zh) = tanh((a + zh)/2)/2 + 1/2 over one flat run:
    the reset or update gate from its input side a and its product zh = h W_h."""
    half = cast_like(gate, 0.5)
    for k in range(gate.shape[0]):
        gate[k] = fast_tanh(half * (a[k] + zh[k])) * half + half


@njit(**_JIT)
def _candidate_reset_after(a_n, reset_gate, zn, b_hn, candidate):
    """n = tanh(a_n + r * (h W_hn + b_hn)) over one flat run; zn = h W_hn,
    b_hn tiled over the rows."""
    for k in range(candidate.shape[0]):
        candidate[k] = fast_tanh(a_n[k] + reset_gate[k] * (zn[k] + b_hn[k]))


@njit(**_JIT)
def _candidate_reset_before(h, reset_gate, W_hn, W_hnp, packed, rh, zn, a_n, candidate):
    """n = tanh(a_n + (r * h) W_hn): fills rh = r * h_{t-1} (n, H) and zn, its
    product, on the way. h, rh, zn (n, H); the rest flat runs."""
    P = candidate.shape[0]
    h_flat, rh_flat, zn_flat = h.reshape(P), rh.reshape(P), zn.reshape(P)
    for k in range(P):
        rh_flat[k] = reset_gate[k] * h_flat[k]
    gemm.dot(rh, W_hn, W_hnp, packed, zn)
    for k in range(P):
        candidate[k] = fast_tanh(a_n[k] + zn_flat[k])


@njit(**_JIT)
def _update_state(update_gate, candidate, m, out, h_flat):
    """h_t = (1 - z) * n + z * h_{t-1} over flat runs: writes the step's output
    (0 where masked) and the carried state h_flat in place."""
    one = cast_like(h_flat, 1.0)
    for k in range(h_flat.shape[0]):
        h_new = (one - update_gate[k]) * candidate[k] + update_gate[k] * h_flat[k]
        out[k] = m[k] * h_new
        h_flat[k] = m[k] * h_new + (one - m[k]) * h_flat[k]  # a masked step carries the state


@njit(**_JIT)
def _advance_state(update_gate, candidate, h_flat):
    """_update_state without a mask and without outputs, h_t written over
    h_{t-1} in one pass (the same numbers: there m = 1 and (1 - m) * h = 0)."""
    one = cast_like(h_flat, 1.0)
    for k in range(h_flat.shape[0]):
        h_flat[k] = (one - update_gate[k]) * candidate[k] + update_gate[k] * h_flat[k]


@njit(**_JIT)
def _forward_rows(lo, hi, xw, W_hq, W_hp, packed, b_hn, h0, mask, has_mask, reverse, reset_after,
                  flush, hs, gates, h_prevs, hn_or_rh, h_T):
    """The forward time loop for batch rows lo..hi-1; fills the output arrays
    and the caches backward reads.

    xw (3, T, B*H) input projections with biases (b_hn left out when
    reset_after); W_hq (3, H, H) per-gate recurrent weights, W_hp the same
    packed for gemm.packed_dot when packed (large H); b_hn (H,);
    mask (T, B); hs, h_prevs, hn_or_rh (T, B*H); gates (3, T, B*H).
    """
    old_mode = flush_denormals_begin() if flush else np.uint32(0)
    n, T, H = hi - lo, xw.shape[1], W_hq.shape[1]
    P, base = n * H, lo * H
    h = h0[lo:hi].copy()                                       # (n, H) hidden state
    h_flat = h.reshape(P)
    z = np.empty((3, n, H), h.dtype)                           # products with W_hr, W_hz, W_hn
    z_flat = z.reshape((3, P))
    rh = np.empty((n, H), h.dtype)                             # r * h_{t-1} (reset_after=False)
    b_tiled = np.empty(P, h.dtype)                             # b_hn repeated for every row
    for r in range(n):
        b_tiled[r * H:(r + 1) * H] = b_hn
    m = np.ones(P, h.dtype)
    for step in range(T):
        t = T - 1 - step if reverse else step
        if has_mask:
            support.spread_mask(m, mask, t, lo, n, H)
        h_prevs[t, base:base + P] = h_flat
        reset_gate, update_gate = gates[0, t, base:base + P], gates[1, t, base:base + P]
        candidate, stash = gates[2, t, base:base + P], hn_or_rh[t, base:base + P]
        for q in range(3 if reset_after else 2):
            gemm.dot(h, W_hq[q], W_hp[q], packed, z[q])
        _sigmoid_gate(xw[0, t, base:base + P], z_flat[0], reset_gate)
        _sigmoid_gate(xw[1, t, base:base + P], z_flat[1], update_gate)
        if reset_after:
            zn = z_flat[2]
            for k in range(P):
                stash[k] = zn[k] + b_tiled[k]                  # h W_hn + b_hn, for backward
            _candidate_reset_after(xw[2, t, base:base + P], reset_gate, z_flat[2], b_tiled,
                                   candidate)
        else:
            _candidate_reset_before(h, reset_gate, W_hq[2], W_hp[2], packed, rh, z[2],
                                    xw[2, t, base:base + P], candidate)
            stash[:] = rh.reshape(P)                           # r * h_{t-1}, for backward
        _update_state(update_gate, candidate, m, hs[t, base:base + P], h_flat)
    h_T[lo:hi] = h
    if flush:
        flush_denormals_end(old_mode)


@njit(**_JIT)
def _infer_rows(lo, hi, table, rows, W_hq, W_hp, packed, b_hn, h0, mask, has_mask, reverse,
                reset_after, flush, keep_hs, hs, h_T):
    """The forward time loop for inference, rows lo..hi-1: keeps only the state
    (and the outputs when keep_hs), so a step's working set stays in L1.

    table: input projections with biases (b_hn left out when reset_after),
    and rows (T, B) the row of table each (step, sequence) reads: either
    x W_x + b for every step, gate-major (3, R = T*B, H), or an embedding
    table folded through W_x, row-major (R = vocab, 3H) with rows = the token
    ids. hs (T, B*H), or a placeholder when not keep_hs.
    """
    old_mode = flush_denormals_begin() if flush else np.uint32(0)
    n, T, H = hi - lo, rows.shape[0], W_hq.shape[1]
    P, base = n * H, lo * H
    h = h0[lo:hi].copy()                                       # (n, H) hidden state
    h_flat = h.reshape(P)
    z = np.empty((3, n, H), h.dtype)                           # products with W_hr, W_hz, W_hn
    z_flat = z.reshape((3, P))
    x_t = np.empty((3, P), h.dtype)                            # this step's input projections
    g = np.empty((3, P), h.dtype)                              # this step's activated r, z, n
    rh = np.empty((n, H), h.dtype)                             # r * h_{t-1} (reset_after=False)
    b_tiled = np.empty(P, h.dtype)
    for r in range(n):
        b_tiled[r * H:(r + 1) * H] = b_hn
    scratch_out = np.empty(P, h.dtype)                         # the output when hs is not kept
    m = np.ones(P, h.dtype)
    for step in range(T):
        t = T - 1 - step if reverse else step
        if has_mask:
            support.spread_mask(m, mask, t, lo, n, H)
        support.gather_step(table, rows, step, T, reverse, lo, n, H, x_t)
        for q in range(3 if reset_after else 2):
            gemm.dot(h, W_hq[q], W_hp[q], packed, z[q])
        _sigmoid_gate(x_t[0], z_flat[0], g[0])
        _sigmoid_gate(x_t[1], z_flat[1], g[1])
        if reset_after:
            _candidate_reset_after(x_t[2], g[0], z_flat[2], b_tiled, g[2])
        else:
            _candidate_reset_before(h, g[0], W_hq[2], W_hp[2], packed, rh, z[2], x_t[2], g[2])
        if has_mask or keep_hs:
            out = hs[t, base:base + P] if keep_hs else scratch_out[:]
            _update_state(g[1], g[2], m, out, h_flat)
        else:                                                  # only the state goes on
            _advance_state(g[1], g[2], h_flat)
    h_T[lo:hi] = h
    if flush:
        flush_denormals_end(old_mode)


@njit(**_JIT)
def _backward_rows(lo, hi, dhs, has_dhs, dh_T, gates, h_prevs, hn_or_rh, mask, has_mask,
                   reverse, reset_after, W_hqT, W_hqTp, packed, flush, da_all, dah_n, dh0):
    """BPTT for batch rows lo..hi-1. Fills da_all (3, T, B*H), the gradients of
    the input-side preactivations (r, z, n); dah_n (T, B*H), the gradient of
    h W_hn + b_hn (reset_after only); and dh0."""
    old_mode = flush_denormals_begin() if flush else np.uint32(0)
    n, T, H = hi - lo, gates.shape[1], W_hqT.shape[1]
    P, base = n * H, lo * H
    one = cast_like(gates, 1.0)
    dh = dh_T[lo:hi].copy()                                    # (n, H) dL/dh_t
    dh_flat = dh.reshape(P)
    dh_new = np.empty(P, dh.dtype)
    dh_skip = np.empty(P, dh.dtype)
    d_rh = np.empty((n, H), dh.dtype)                          # gradient of r*h (reset_after=False)
    d_rh_flat = d_rh.reshape(P)
    dh_q = np.empty((n, H), dh.dtype)
    dh_q_flat = dh_q.reshape(P)
    no_dhs = np.zeros(P, dh.dtype)
    m = np.ones(P, dh.dtype)
    for step in range(T):
        t = step if reverse else T - 1 - step
        if has_mask:
            for r in range(n):
                m[r * H:(r + 1) * H] = mask[t, lo + r]
        dout = dhs[t, base:base + P] if has_dhs else no_dhs
        reset_gate, update_gate = gates[0, t, base:base + P], gates[1, t, base:base + P]
        candidate, h_prev = gates[2, t, base:base + P], h_prevs[t, base:base + P]
        stash = hn_or_rh[t, base:base + P]
        da_r, da_z, da_n = da_all[0, t, base:base + P], da_all[1, t, base:base + P], da_all[2, t, base:base + P]
        for k in range(P):
            # backprop through the carry h = m*h_new + (1-m)*h_{t-1}
            dh_skip[k] = (one - m[k]) * dh_flat[k]
            dh_new[k] = m[k] * (dh_flat[k] + dout[k])
        for k in range(P):
            # backprop through h_t = (1-z)*n + z*h_{t-1}, then through n = tanh(...) and z = sigmoid(...)
            da_n[k] = (dh_new[k] * (one - update_gate[k])) * (one - candidate[k] * candidate[k])
            da_z[k] = (dh_new[k] * (h_prev[k] - candidate[k])) * (update_gate[k] * (one - update_gate[k]))
            dh_flat[k] = dh_new[k] * update_gate[k]           # the z*h_{t-1} path
        if reset_after:
            dah = dah_n[t, base:base + P]
            for k in range(P):
                # backprop through r * (h W_hn + b_hn), then through r = sigmoid(...)
                da_r[k] = (da_n[k] * stash[k]) * (reset_gate[k] * (one - reset_gate[k]))
                dah[k] = da_n[k] * reset_gate[k]
            gemm.dot(dah.reshape((n, H)), W_hqT[2], W_hqTp[2], packed, dh_q)  # backprop through h W_hn
        else:
            gemm.dot(da_n.reshape((n, H)), W_hqT[2], W_hqTp[2], packed, d_rh)  # backprop through (r*h) W_hn
            for k in range(P):
                da_r[k] = (d_rh_flat[k] * h_prev[k]) * (reset_gate[k] * (one - reset_gate[k]))
                dh_q_flat[k] = d_rh_flat[k] * reset_gate[k]
        for k in range(P):
            dh_flat[k] += dh_q_flat[k]
        for q in range(2):                                     # backprop through h W_hr, h W_hz
            gemm.dot(da_all[q, t, base:base + P].reshape((n, H)), W_hqT[q], W_hqTp[q], packed, dh_q)
            for k in range(P):
                dh_flat[k] += dh_q_flat[k]
        for k in range(P):
            dh_flat[k] += dh_skip[k]
    dh0[lo:hi] = dh
    if flush:
        flush_denormals_end(old_mode)


def _split_b_h(b_h, H, dt, reset_after):
    """(b_h's part that joins the input side, b_hn (H,) kept for inside r * (...)).
    With reset_after b_hn sits inside r * (h W_hn + b_hn), so only the r and
    z blocks of b_h can join the projection; without, all of b_h can."""
    if b_h is None or not reset_after:
        return b_h, np.zeros(H, dt)
    outer = np.concatenate([b_h[:2 * H], np.zeros(H, b_h.dtype)])
    return outer, np.ascontiguousarray(b_h[2 * H:], dtype=dt)


def _forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, reset_after=True, need_cache=True, need_outputs=True):
    """The body of forward(), run with BLAS threads set."""
    reset_after = _check_reset_after(reset_after)
    if recurrent_mask is not None:
        raise NotImplementedError("the fast GRU kernel has no recurrent dropout; "
                                  "use the reference engine")
    if state0 is None:
        state0 = (np.zeros((x.shape[0], W_h.shape[0]), x.dtype),)
    B, T, D, H = check_sequence_args(x, W_x, W_h, b_x, b_h, state0, mask, N_GATES, 1)
    support.check_dtype(x)
    dt = x.dtype
    b_h_outer, b_hn = _split_b_h(b_h, H, dt, reset_after)
    x_tm = support.time_major(x)                               # (T, B, D)
    xw = support.gate_major_projection(x_tm, W_x, b_x, b_h_outer, N_GATES)  # (3, T, B*H)
    if not need_cache:
        # every (step, sequence) reads its own row of the projections
        rows = np.arange(T * B, dtype=np.int64).reshape(T, B)           # (T, B)
        hs, state = _infer(xw.reshape(N_GATES, T * B, H), rows, W_h, b_hn, state0, mask,
                           reverse, reset_after, need_outputs)
        return hs, state, None
    h0 = support.contiguous(state0[0], dt)
    m, has_mask = support.time_major_mask(mask, dt)
    hs, h_prevs, hn_or_rh = (workspace.empty((T, B * H), dt) for _ in range(3))
    gates = workspace.empty((3, T, B * H), dt)                        # activated r, z, n
    h_T = np.empty((B, H), dt)
    W_hq, packed = support.gate_blocks(W_h, 3), gemm.use_packed(H)
    support.run_chunks(_forward_rows, B, H, xw, W_hq, gemm.blocks_or_placeholder(W_hq, packed),
                       packed, b_hn, h0, m, has_mask,
                       bool(reverse), reset_after, support.FLUSH_DENORMALS,
                       hs, gates, h_prevs, hn_or_rh, h_T)
    cache = dict(x_tm=x_tm, W_x=W_x, W_h=W_h, has_b_x=b_x is not None, has_b_h=b_h is not None,
                 gates=gates, h_prevs=h_prevs, hn_or_rh=hn_or_rh, mask=m, has_mask=has_mask,
                 reverse=bool(reverse), reset_after=reset_after)
    return support.batch_major(hs, B), (h_T,), cache


def _infer(table, rows, W_h, b_hn, state0, mask, reverse, reset_after, need_outputs):
    """Run _infer_rows: table (3, R, H) gate-major or (R, 3H) row-major
    projections, rows (T, B) int64 indices into it, b_hn (H,).
    Returns (hs (B, T, H) or None, (h_T,))."""
    T, B = rows.shape
    H = W_h.shape[0]
    dt = table.dtype
    h0 = np.zeros((B, H), dt) if state0 is None else support.contiguous(state0[0], dt)
    m, has_mask = support.time_major_mask(mask, dt)
    hs = workspace.empty((T, B * H), dt) if need_outputs else np.empty((1, 1), dt)
    h_T = np.empty((B, H), dt)
    W_hq, packed = support.gate_blocks(np.asarray(W_h, dt), 3), gemm.use_packed(H)
    support.run_chunks(_infer_rows, B, H, table, rows, W_hq, gemm.blocks_or_placeholder(W_hq, packed),
                       packed, b_hn, h0, m, has_mask, bool(reverse), reset_after, support.FLUSH_DENORMALS,
                       bool(need_outputs), hs, h_T)
    return (support.batch_major(hs, B) if need_outputs else None), (h_T,)


def project_table(E, W_x, b_x=None, b_h=None, reset_after=True):
    """An embedding table folded through the input side: E (V, D) ->
    E W_x + b_x + b_h' (V, 3H), the table forward_lookup reads, where b_h'
    is b_h with its n block zeroed when reset_after (b_hn sits inside
    r * (h W_hn + b_hn) there; forward_lookup adds it in the loop).
    E[ids] W_x + b equals (E W_x + b)[ids], so a model fed by an Embedding
    can skip the per-step input product at inference."""
    reset_after = _check_reset_after(reset_after)
    support.check_dtype(E)
    if E.ndim != 2 or W_x.shape != (E.shape[1], W_x.shape[1]) or W_x.shape[1] % N_GATES:
        raise ValueError(f"project_table: E (V, D) and W_x (D, 3H) do not agree: "
                         f"{E.shape} and {W_x.shape}")
    H = W_x.shape[1] // N_GATES
    with single_threaded_blas():
        table = np.ascontiguousarray(E) @ W_x                  # (V, 3H)
    for b in (b_x, _split_b_h(b_h, H, E.dtype, reset_after)[0]):
        if b is not None:
            table += b
    return table


def forward_lookup(ids, table, W_h, state0=None, mask=None, reverse=False, need_outputs=True,
                   b_h=None, reset_after=True):
    """Inference from token ids through a (V, 3H) table made by project_table
    (with the same b_h and reset_after): the same result as
    forward(E[ids], W_x, W_h, b_x, b_h, ..., need_cache=False), up to rounding
    of the input product. ids (B, T) integers in [0, V).
    Returns (hs (B, T, H) or None, (h_T,))."""
    reset_after = _check_reset_after(reset_after)
    H = W_h.shape[0]
    if table.ndim != 2 or table.shape[1] != N_GATES * H or W_h.shape != (H, N_GATES * H):
        raise ValueError(f"forward_lookup: table {table.shape} and W_h {W_h.shape} do not agree")
    if b_h is not None and np.shape(b_h) != (N_GATES * H,):
        raise ValueError(f"forward_lookup: b_h must have shape ({N_GATES * H},); got {np.shape(b_h)}")
    rows = support.token_rows(ids, mask, table.shape[0])               # (T, B)
    b_hn = _split_b_h(b_h, H, table.dtype, reset_after)[1]
    with single_threaded_blas():
        return _infer(np.ascontiguousarray(table), rows, W_h, b_hn, state0, mask, reverse,
                      reset_after, need_outputs)


def _backward(dhs, dstate, cache):
    """The body of backward(), run with BLAS threads set."""
    gates, x_tm, reset_after = cache["gates"], cache["x_tm"], cache["reset_after"]
    T, B, _ = x_tm.shape
    H = cache["W_h"].shape[0]
    dt = x_tm.dtype
    dh_T = None if dstate is None else dstate[0]
    dh_T = np.zeros((B, H), dt) if dh_T is None else support.contiguous(dh_T, dt)
    has_dhs = dhs is not None
    dhs_tm = support.time_major(dhs, dt).reshape(T, B * H) if has_dhs else np.zeros((1, 1), dt)

    da_all = workspace.empty((3, T, B * H), dt)                       # input-side preactivation gradients
    dah_n = workspace.empty((T, B * H) if reset_after else (1, 1), dt)
    dh0 = np.empty((B, H), dt)
    W_hqT = np.ascontiguousarray(support.gate_blocks(cache["W_h"], 3).transpose(0, 2, 1))  # (3, H, H)
    packed = gemm.use_packed(H)
    support.run_chunks(_backward_rows, B, H, dhs_tm, has_dhs, dh_T, gates, cache["h_prevs"],
                       cache["hn_or_rh"], cache["mask"], cache["has_mask"], cache["reverse"],
                       reset_after, W_hqT, gemm.blocks_or_placeholder(W_hqT, packed), packed,
                       support.FLUSH_DENORMALS, da_all, dah_n, dh0)
    dx, dW_x, db_x = support.input_side_grads(x_tm, da_all, cache["W_x"])
    h_prevs = cache["h_prevs"]
    if reset_after:
        # W_hn multiplied h_{t-1}; its output's gradient is r * dn
        dW_h, db_h = support.recurrent_grads([h_prevs, h_prevs, h_prevs],
                                             [da_all[0], da_all[1], dah_n], H)
    else:
        # W_hn multiplied r * h_{t-1}; its output's gradient is dn itself
        dW_h, db_h = support.recurrent_grads([h_prevs, h_prevs, cache["hn_or_rh"]],
                                             [da_all[0], da_all[1], da_all[2]], H)
    return dict(x=dx, W_x=dW_x, W_h=dW_h,
                b_x=db_x if cache["has_b_x"] else None,
                b_h=db_h if cache["has_b_h"] else None,
                state0=(dh0,))


def forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, reset_after=True, need_cache=True,
            need_outputs=True):
    """Run the GRU over a whole sequence; see lstmkit.cells.gru.forward.

    Returns (hs, (h_T,), cache): hs (B, T, H), the final state and an opaque cache.

    need_cache=False (inference): no cache is kept (None in its place);
    with need_outputs=False also hs is None.
    """
    with single_threaded_blas():
        return _forward(x, W_x, W_h, b_x, b_h, state0, mask, reverse, recurrent_mask, reset_after,
                        need_cache, need_outputs)


def backward(dhs, dstate, cache):
    """Backpropagation through time for forward(); see lstmkit.cells.gru.backward."""
    with single_threaded_blas():
        return _backward(dhs, dstate, cache)


@njit(**_JIT)
def _step_into(x_t, h, W_x, W_h, b_x, b_h, reset_after, h_out):
    """One step for rows of x_t (B, D): writes h_t into h_out (B, H), which may
    be h itself. Plain loops instead of np.dot, as in the LSTM's step."""
    B, H = h.shape
    D = x_t.shape[1]
    if (h_out.shape != h.shape or x_t.shape[0] != B or W_x.shape != (D, 3 * H)
            or W_h.shape != (H, 3 * H) or b_x.shape[0] != 3 * H or b_h.shape[0] != 3 * H):
        raise ValueError("step(): shapes of x_t, state, weights or out do not agree")
    half, one = cast_like(h, 0.5), cast_like(h, 1.0)
    a = np.empty(3 * H, h.dtype)                               # input side: x W_x + biases
    hw = np.empty(3 * H, h.dtype)                              # h_{t-1} W_h (+ b_hn with reset_after)
    rh = np.empty(H, h.dtype)
    h_new = np.empty(H, h.dtype)
    for r in range(B):
        for j in range(3 * H):
            a[j] = b_x[j]
        for j in range(2 * H if reset_after else 3 * H):
            a[j] += b_h[j]
        for i in range(D):
            xv = x_t[r, i]
            for j in range(3 * H):
                a[j] += xv * W_x[i, j]
        for j in range(3 * H):
            hw[j] = b_h[j] if reset_after and j >= 2 * H else cast_like(h, 0.0)
        for i in range(H):
            hv = h[r, i]
            for j in range(2 * H if not reset_after else 3 * H):
                hw[j] += hv * W_h[i, j]
        for j in range(2 * H):                                 # r and z: sigmoid
            a[j] = fast_tanh(half * (a[j] + hw[j])) * half + half
        if not reset_after:
            for k in range(H):
                rh[k] = a[k] * h[r, k]
            for i in range(H):                                 # (r*h) W_hn
                for k in range(H):
                    hw[2 * H + k] += rh[i] * W_h[i, 2 * H + k]
            for k in range(H):
                a[2 * H + k] = fast_tanh(a[2 * H + k] + hw[2 * H + k])
        else:
            for k in range(H):
                a[2 * H + k] = fast_tanh(a[2 * H + k] + a[k] * hw[2 * H + k])
        for k in range(H):
            h_new[k] = (one - a[H + k]) * a[2 * H + k] + a[H + k] * h[r, k]  # h_t = (1-z)*n + z*h_{t-1}
        for k in range(H):
            h_out[r, k] = h_new[k]


@njit(**_JIT)
def _step_new(x_t, h, W_x, W_h, b_x, b_h, reset_after):
    h_out = np.empty_like(h)
    _step_into(x_t, h, W_x, W_h, b_x, b_h, reset_after, h_out)
    return h_out


def step(x_t, state, W_x, W_h, b_x=None, b_h=None, out=None, reset_after=True):
    """One GRU step for streaming inference, in one compiled call.

    x_t (B, D); state = (h,), (B, H). out, optional (h_out,) to write the new
    state into (may be the state itself). Returns (h_t, (h_t,)).
    """
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
        h_t = _step_new(x_t, h, W_x, W_h, b_x, b_h, bool(reset_after))
    else:
        h_t = out[0]
        _step_into(x_t, h, W_x, W_h, b_x, b_h, bool(reset_after), h_t)
    return h_t, (h_t,)
