"""LSTM, fast engine: the whole time loop, forward and backward, in one
compiled Numba function each. Same contract as lstmkit.cells.lstm.

Gate order in every weight matrix (columns, blocks of H): input gate i,
forget gate f, candidate g, output gate o -- PyTorch's order.

    z_t = x_t W_x + b_x + b_h + h_{t-1} W_h                   (B, 4H) preactivations
    i_t = sigmoid(z_i)   f_t = sigmoid(z_f)   g_t = tanh(z_g)   o_t = sigmoid(z_o)
    c_t = f_t * c_{t-1} + i_t * g_t                           cell state
    h_t = o_t * tanh(c_t)                                     hidden state

How the work is laid out (the why is in docs/kernels.md):
  * Training, H < 128: each step is one product per gate of the row
    [x_t, h_{t-1}, 1] with the stacked [W_x; W_h; b] (the rows are kept in
    xh_all); backward gets [dx_t, dh_{t-1}] from one product per step and the
    weight gradients from one product over all steps (xh_all^T dz).
  * Training from H = 128, and inference: x W_x + b for all steps is one BLAS
    product before the loop, and per step only h_{t-1} W_h, through weights
    packed once per call (kernels/gemm.py) from H = 128, else np.dot.
  * Inside the loop everything is time-major and gate-major: gates (4, T, B*H),
    so for one step and one gate the rows of the batch are one contiguous run
    of B*H numbers. Every elementwise pass is then one flat loop over B*H,
    which LLVM turns into SIMD code; loops over H alone (32 long) are too short
    for 16-wide AVX-512 with unrolling and ran 3x slower.
  * A pass writes few arrays: with many distinct output arrays LLVM gives up
    on the runtime aliasing checks and leaves the loop scalar.
  * Rows of the batch are independent in both recurrences, so a large batch
    is split in row chunks, each running the whole time loop in its own thread
    (the compiled loops release the GIL); only the weight gradients,
    computed afterwards, mix rows.

mask (B, T), 1 for a real step: at a masked step the state (h, c) is carried
through unchanged, the output is 0 and no gradient flows through the step.
reverse=True runs t = T-1 .. 0; outputs stay aligned with the input positions.
"""
import numpy as np
from numba import njit

from ..cells.checks import check_sequence_args
from . import gemm, support, workspace
from .blas_threads import single_threaded_blas
from .activations import fast_tanh
from .denormals import flush_denormals_begin, flush_denormals_end
from .support import cast_like

N_GATES = 4
STATE_NAMES = ("h", "c")
GATE_NAMES = ("input_gate", "forget_gate", "candidate", "output_gate")

# per gate (scale s, multiplier a, offset d) of y = tanh(s*z)*a + d
_GATE_ACT = np.array([[0.5, 0.5, 0.5],      # input gate: sigmoid
                      [0.5, 0.5, 0.5],      # forget gate: sigmoid
                      [1.0, 1.0, 0.0],      # candidate: tanh
                      [0.5, 0.5, 0.5]])     # output gate: sigmoid
GATE_ACT = {np.dtype(d): _GATE_ACT.astype(d) for d in support.DTYPES}

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_JIT)
def _activate_gate(zq, xq, gq, s, a, d):
    """gq = tanh(s*(zq + xq))*a + d over one flat run: a sigmoid or tanh gate."""
    for k in range(zq.shape[0]):
        gq[k] = fast_tanh(s * (zq[k] + xq[k])) * a + d


@njit(**_JIT)
def _gate_products(h, W_hq, W_hp, packed, z):
    """z[q] = h W_hq[q] for the four gates: with packed, through the
    register-tiled kernel over W_hp (4, H/32, H, 32), weights packed once per
    call (kernels/gemm.py); else np.dot (BLAS)."""
    for q in range(4):
        if packed:
            gemm.packed_dot(h, W_hp[q], z[q])
        else:
            np.dot(h, W_hq[q], z[q])


@njit(**_JIT)
def _activate(zq, gq, s, a, d):
    """gq = tanh(s*zq)*a + d over one flat run."""
    for k in range(zq.shape[0]):
        gq[k] = fast_tanh(s * zq[k]) * a + d


@njit(**_JIT)
def _update_state(input_gate, forget_gate, candidate, output_gate, m, c_new, tanh_c, out,
                  h_flat, c_flat):
    """The cell update for one step over flat runs of n*H numbers: fills c_new,
    tanh_c, out (the step's output) and the carried h_flat, c_flat in place.
    Four passes writing one array each, so LLVM keeps every one SIMD."""
    one = cast_like(h_flat, 1.0)
    for k in range(c_new.shape[0]):
        c_new[k] = forget_gate[k] * c_flat[k] + input_gate[k] * candidate[k]  # c_t = f*c_{t-1} + i*g
    for k in range(c_new.shape[0]):
        tanh_c[k] = fast_tanh(c_new[k])
    for k in range(c_new.shape[0]):
        h_new = output_gate[k] * tanh_c[k]                     # h_t = o*tanh(c_t)
        out[k] = m[k] * h_new
        h_flat[k] = m[k] * h_new + (one - m[k]) * h_flat[k]    # a masked step carries the state
    for k in range(c_new.shape[0]):
        c_flat[k] = m[k] * c_new[k] + (one - m[k]) * c_flat[k]


@njit(**_JIT)
def _forward_rows(lo, hi, x, fused, W_xhq, W_hq, W_hp, packed, xw, h0, c0, mask, has_mask,
                  reverse, gate_act, flush, keep_hs, hs, gates, c_prevs, xh_all, h_T, c_T):
    """The forward time loop for batch rows lo..hi-1; fills the output arrays
    and the caches backward reads.

    x (B, T, D) the input as given; W_xhq (4, D+H+1, H) per gate the input
    weights, the recurrent weights and the bias stacked, so that one product
    per gate with the row [x_t, h_{t-1}, 1] gives the whole preactivation.
    mask (T, B); hs, c_prevs (T, B*H); gates (4, T, B*H); xh_all (T, B, D+H+1)
    keeps each step's [x_t, h_{t-1}, 1] rows, which the weight gradients need.

    fused=False (large H): the per-step product is h_{t-1} W_hq alone, with
    W_hq (4, H, H), and xw (4, T, B*H) holds x W_x + b for all steps, made
    by one big product before the loop (see _forward for why).
    """
    old_mode = flush_denormals_begin() if flush else np.uint32(0)
    n, T, D, H = hi - lo, gates.shape[1], x.shape[2], h0.shape[1]
    P, base = n * H, lo * H                                    # this chunk's run in each (B*H) row
    h = h0[lo:hi].copy()                                       # (n, H) hidden state
    cell_state = c0[lo:hi].copy()                              # (n, H)
    h_flat, c_flat = h.reshape(P), cell_state.reshape(P)
    z = np.empty((4, n, H), h.dtype)                           # preactivations, one block per gate
    z_flat = z.reshape((4, P))
    c_new, tanh_c = np.empty(P, h.dtype), np.empty(P, h.dtype)
    scratch_out = np.empty(P, h.dtype)                         # the output when hs is not kept
    m = np.ones(P, h.dtype)                                    # the mask spread over H
    for step in range(T):
        t = T - 1 - step if reverse else step
        if has_mask:
            support.spread_mask(m, mask, t, lo, n, H)
        xh = xh_all[t, lo:hi]                                  # (n, D+H+1) this step's [x_t, h_{t-1}, 1]
        support.fill_step_rows(xh, x, h, lo, t)
        c_prevs[t, base:base + P] = c_flat
        if fused:
            for q in range(4):
                np.dot(xh, W_xhq[q], z[q])                     # z_q = x_t W_xq + h_{t-1} W_hq + b_q
            for q in range(4):
                _activate(z_flat[q], gates[q, t, base:base + P],
                          gate_act[q, 0], gate_act[q, 1], gate_act[q, 2])
        else:
            _gate_products(h, W_hq, W_hp, packed, z)            # h_{t-1} W_hq; x_t W_xq + b_q is in xw
            for q in range(4):
                _activate_gate(z_flat[q], xw[q, t, base:base + P], gates[q, t, base:base + P],
                               gate_act[q, 0], gate_act[q, 1], gate_act[q, 2])
        out = hs[t, base:base + P] if keep_hs else scratch_out[:]
        _update_state(gates[0, t, base:base + P], gates[1, t, base:base + P],
                      gates[2, t, base:base + P], gates[3, t, base:base + P], m, c_new,
                      tanh_c, out, h_flat, c_flat)
    h_T[lo:hi] = h
    c_T[lo:hi] = cell_state
    if flush:
        flush_denormals_end(old_mode)


@njit(**_JIT)
def _infer_rows(lo, hi, table, rows, W_hq, W_hp, packed, h0, c0, mask, has_mask, reverse,
                gate_act, flush, keep_hs, hs, h_T, c_T):
    """The forward time loop for inference, rows lo..hi-1: keeps only the state
    (and the outputs when keep_hs), so a step's working set stays in L1.

    table: input projections with biases, and rows (T, B) the row of table
    each (step, sequence) reads: either the precomputed x W_x + b for every
    step, gate-major (4, R = T*B, H), or an embedding table folded through
    W_x, row-major (R = vocab, 4H) with rows = the token ids. hs (T, B*H), or a placeholder when not keep_hs.
    """
    old_mode = flush_denormals_begin() if flush else np.uint32(0)
    n, T, H = hi - lo, rows.shape[0], h0.shape[1]
    P, base = n * H, lo * H
    h = h0[lo:hi].copy()                                       # (n, H) hidden state
    cell_state = c0[lo:hi].copy()                              # (n, H)
    h_flat, c_flat = h.reshape(P), cell_state.reshape(P)
    z = np.empty((4, n, H), h.dtype)                           # h_{t-1} W_h, one block per gate
    z_flat = z.reshape((4, P))
    x_t = np.empty((4, P), h.dtype)                            # this step's input projections
    g = np.empty((4, P), h.dtype)                              # this step's activated gates
    c_new, tanh_c = np.empty(P, h.dtype), np.empty(P, h.dtype)
    scratch_out = np.empty(P, h.dtype)                         # the output when hs is not kept
    m = np.ones(P, h.dtype)
    for step in range(T):
        t = T - 1 - step if reverse else step
        if has_mask:
            support.spread_mask(m, mask, t, lo, n, H)
        support.gather_step(table, rows, step, T, reverse, lo, n, H, x_t)
        _gate_products(h, W_hq, W_hp, packed, z)
        for q in range(4):
            _activate_gate(z_flat[q], x_t[q], g[q], gate_act[q, 0], gate_act[q, 1], gate_act[q, 2])
        out = hs[t, base:base + P] if keep_hs else scratch_out[:]
        _update_state(g[0], g[1], g[2], g[3], m, c_new, tanh_c, out, h_flat, c_flat)
    h_T[lo:hi] = h
    c_T[lo:hi] = cell_state
    if flush:
        flush_denormals_end(old_mode)


@njit(**_JIT)
def _backward_rows(lo, hi, dhs, has_dhs, dh_T, dc_T, gates, c_prevs, mask, has_mask,
                   reverse, fused, W_xhT, W_backp, packed, flush, dz_rows, dx, dh0, dc0):
    """BPTT for batch rows lo..hi-1: fills dz_rows (T, B, 4H) with the gradients
    of the preactivations, row-major so that one product per step (and one
    for all steps afterwards) serves every gate, and dx (B, T, D), dh0, dc0.
    The gates (4, T, B*H) are overwritten with the same gradients, gate-major,
    as the elementwise passes produce them. dhs (T, B*H) time-major; W_xhT
    (4H, D+H+1) the stacked weights transposed; with fused=False, only the
    recurrent rows W_h^T (4H, H): dx is then left to one product after the
    loop and this loop fills dh alone."""
    old_mode = flush_denormals_begin() if flush else np.uint32(0)
    n, T, K = hi - lo, gates.shape[1], W_xhT.shape[1]
    H = W_xhT.shape[0] // 4
    D = dx.shape[2]
    P, base = n * H, lo * H
    one = cast_like(gates, 1.0)
    dh = dh_T[lo:hi].copy()                                    # (n, H) dL/dh_t
    dh_flat = dh.reshape(P)
    dc_flat = dc_T[lo:hi].copy().reshape(P)                    # dL/dc_t
    dc_next = np.empty(P, dh.dtype)
    dh_new, tanh_c = np.empty(P, dh.dtype), np.empty(P, dh.dtype)
    dc_skip = np.zeros(P, dh.dtype)                            # parts of dh, dc that skip a masked step
    dh_skip = np.zeros(P, dh.dtype)
    dxh = np.empty((n, K), dh.dtype)                           # dL/d[x_t, h_{t-1}, 1]
    no_dhs = np.zeros(P, dh.dtype)
    m = np.ones(P, dh.dtype)
    for step in range(T):
        t = step if reverse else T - 1 - step
        if has_mask:
            support.spread_mask(m, mask, t, lo, n, H)
        dout = dhs[t, base:base + P] if has_dhs else no_dhs
        input_gate = gates[0, t, base:base + P]                # overwritten below by dz_i
        forget_gate = gates[1, t, base:base + P]               # ... by dz_f
        candidate = gates[2, t, base:base + P]                 # ... by dz_g
        output_gate = gates[3, t, base:base + P]               # ... by dz_o
        c_prev = c_prevs[t, base:base + P]
        for k in range(P):
            # tanh(c_t) again rather than cached: one tanh is cheaper than a (T, B*H) array
            tanh_c[k] = fast_tanh(forget_gate[k] * c_prev[k] + input_gate[k] * candidate[k])
        for k in range(P):
            # backprop through the carry h = m*h_new + (1-m)*h_{t-1}; same for c
            dh_skip[k] = (one - m[k]) * dh_flat[k]
            dc_skip[k] = (one - m[k]) * dc_flat[k]
            dh_new[k] = m[k] * (dh_flat[k] + dout[k])
        for k in range(P):
            # backprop through h_t = o * tanh(c_t), then through the sigmoid of o
            o = output_gate[k]
            dc_flat[k] = m[k] * dc_flat[k] + dh_new[k] * o * (one - tanh_c[k] * tanh_c[k])
            output_gate[k] = (dh_new[k] * tanh_c[k]) * (o * (one - o))
        for k in range(P):
            # backprop through c_t = f * c_{t-1} + i * g into c_{t-1}
            dc_next[k] = dc_flat[k] * forget_gate[k] + dc_skip[k]
        for k in range(P):
            # ... and into the gates, then through their nonlinearities
            i, f, g = input_gate[k], forget_gate[k], candidate[k]
            input_gate[k] = (dc_flat[k] * g) * (i * (one - i))
            forget_gate[k] = (dc_flat[k] * c_prev[k]) * (f * (one - f))
            candidate[k] = (dc_flat[k] * i) * (one - g * g)
        dc_flat, dc_next = dc_next, dc_flat
        dz_t = dz_rows[t, lo:hi]                               # (n, 4H) this step's dL/dz, row by row
        for q in range(4):
            dz_q = gates[q, t, base:base + P]
            for r in range(n):
                for j in range(H):
                    dz_t[r, q * H + j] = dz_q[r * H + j]
        # backprop through z = [x_t, h_{t-1}, 1] W_xh
        if packed:
            gemm.packed_dot(dz_t, W_backp, dxh)
        else:
            np.dot(dz_t, W_xhT, dxh)
        off = D if fused else 0
        if fused:
            for r in range(n):
                for j in range(D):
                    dx[lo + r, t, j] = dxh[r, j]
        for r in range(n):
            for j in range(H):
                dh[r, j] = dxh[r, off + j] + dh_skip[r * H + j]
    dh0[lo:hi] = dh
    dc0[lo:hi] = dc_flat.reshape((n, H))
    if flush:
        flush_denormals_end(old_mode)


# Below this hidden size the input product joins the per-step product
# ([x_t, h_{t-1}, 1] W_xh); from it on, x W_x is one product over all steps
# before the loop and the step multiplies h_{t-1} W_h alone. BLAS repacks the
# weight operand of every per-step product (docs/kernels.md), which costs
# little for a 65 x 128 matrix and much for 641 x 2048; a product over all
# T*B rows packs it once.
FUSE_INPUT_MAX_HIDDEN = 128


def fuse_input(D, H):
    return H < FUSE_INPUT_MAX_HIDDEN


def pack_recurrent(H):
    """Whether the per-step products with W_h run on weights packed once per
    call (kernels/gemm.py) rather than through BLAS: for large H, where BLAS's
    repacking on every call dominates, and when H fills whole 32-column panels."""
    return H >= FUSE_INPUT_MAX_HIDDEN and gemm.packable(H)


def recurrent_operands(W_h):
    """(W_hq (4, H, H), W_hp (4, H/32, H, 32), packed) for _gate_products,
    with a placeholder for the one not used."""
    dt, H = W_h.dtype, W_h.shape[0]
    if pack_recurrent(H):
        W_hq = support.gate_blocks(W_h, N_GATES)
        return np.empty((1, 1, 1), dt), gemm.pack_blocks(W_hq), True
    return support.gate_blocks(W_h, N_GATES), np.empty((1, 1, 1, 1), dt), False


def stacked_weights(W_x, W_h, b):
    """(D+H+1, 4H): the input weights, the recurrent weights and the bias
    (b_x + b_h) stacked, the matrix that [x_t, h_{t-1}, 1] multiplies."""
    D, H = W_x.shape[0], W_h.shape[0]
    W = np.empty((D + H + 1, N_GATES * H), W_x.dtype)
    W[:D], W[D:D + H], W[D + H] = W_x, W_h, b
    return W


def _forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
             recurrent_mask=None, need_cache=True, need_outputs=True):
    """The body of forward(), run with BLAS threads set."""
    if recurrent_mask is not None:
        raise NotImplementedError("the fast LSTM kernel has no recurrent dropout; "
                                  "use the reference engine")
    if state0 is None:
        H = W_h.shape[0]
        state0 = (np.zeros((x.shape[0], H), x.dtype), np.zeros((x.shape[0], H), x.dtype))
    B, T, D, H = check_sequence_args(x, W_x, W_h, b_x, b_h, state0, mask, N_GATES, 2)
    support.check_dtype(x)
    dt = x.dtype
    if not need_cache:
        x_tm = support.time_major(x)                                    # (T, B, D)
        xw = support.gate_major_projection(x_tm, W_x, b_x, b_h, N_GATES)  # (4, T, B*H)
        # every (step, sequence) reads its own row of the projections
        rows = np.arange(T * B, dtype=np.int64).reshape(T, B)           # (T, B)
        hs, state = _infer(xw.reshape(N_GATES, T * B, H), rows, W_h, state0, mask, reverse,
                           need_outputs)
        return hs, state, None
    x = np.ascontiguousarray(x)
    b = np.zeros(N_GATES * H, dt)
    for bias in (b_x, b_h):
        if bias is not None:
            b += bias
    W_xh = stacked_weights(np.asarray(W_x, dt), np.asarray(W_h, dt), b)  # (D+H+1, 4H)
    h0, c0 = (support.contiguous(s, dt) for s in state0)
    m, has_mask = support.time_major_mask(mask, dt)
    hs = workspace.empty((T, B * H), dt) if need_outputs else np.empty((1, 1), dt)
    gates = workspace.empty((4, T, B * H), dt)                        # activated i, f, g, o
    c_prevs = workspace.empty((T, B * H), dt)                         # c_{t-1}
    xh_all = workspace.empty((T, B, D + H + 1), dt)                   # [x_t, h_{t-1}, 1]
    h_T, c_T = np.empty((B, H), dt), np.empty((B, H), dt)
    fused = fuse_input(D, H)
    if fused:
        W_xhq, xw = support.gate_blocks(W_xh, N_GATES), np.empty((1, 1, 1), dt)
        W_hq, W_hp, packed = np.empty((1, 1, 1), dt), np.empty((1, 1, 1, 1), dt), False  # unused
    else:
        W_xhq = np.empty((1, 1, 1), dt)
        W_hq, W_hp, packed = recurrent_operands(W_xh[D:D + H])
        xw = support.gate_major_projection(support.time_major(x), W_xh[:D], W_xh[D + H], None,
                                           N_GATES)                     # (4, T, B*H)
    support.run_chunks(_forward_rows, B, H, x, fused, W_xhq, W_hq, W_hp, packed, xw, h0, c0,
                       m, has_mask,
                       bool(reverse), GATE_ACT[dt], support.FLUSH_DENORMALS, bool(need_outputs),
                       hs, gates, c_prevs, xh_all, h_T, c_T)
    cache = dict(W_xh=W_xh, D=D, fused=fused, has_b_x=b_x is not None, has_b_h=b_h is not None,
                 gates=gates, c_prevs=c_prevs, xh_all=xh_all,
                 mask=m, has_mask=has_mask, reverse=bool(reverse), used=False)
    return (support.batch_major(hs, B) if need_outputs else None), (h_T, c_T), cache


def _infer(table, rows, W_h, state0, mask, reverse, need_outputs):
    """Run _infer_rows: table (4, R, H) gate-major or (R, 4H) row-major
    projections, rows (T, B) int64 indices into it. Returns (hs (B, T, H) or None, (h_T, c_T))."""
    T, B = rows.shape
    H = W_h.shape[0]
    dt = table.dtype
    if state0 is None:
        state0 = (np.zeros((B, H), dt), np.zeros((B, H), dt))
    h0, c0 = (support.contiguous(s, dt) for s in state0)
    m, has_mask = support.time_major_mask(mask, dt)
    hs = workspace.empty((T, B * H), dt) if need_outputs else np.empty((1, 1), dt)
    h_T, c_T = np.empty((B, H), dt), np.empty((B, H), dt)
    W_hq, W_hp, packed = recurrent_operands(np.asarray(W_h, dt))
    support.run_chunks(_infer_rows, B, H, table, rows, W_hq, W_hp, packed,
                       h0, c0, m, has_mask, bool(reverse), GATE_ACT[dt], support.FLUSH_DENORMALS,
                       bool(need_outputs), hs, h_T, c_T)
    return (support.batch_major(hs, B) if need_outputs else None), (h_T, c_T)


def project_table(E, W_x, b_x=None, b_h=None):
    """An embedding table folded through the input side: E (V, D) ->
    E W_x + b_x + b_h (V, 4H), the table forward_lookup reads.
    E[ids] W_x + b equals (E W_x + b)[ids], so a model fed by an Embedding
    can skip the per-step input product at inference."""
    support.check_dtype(E)
    if E.ndim != 2 or W_x.shape != (E.shape[1], W_x.shape[1]) or W_x.shape[1] % N_GATES:
        raise ValueError(f"project_table: E (V, D) and W_x (D, 4H) do not agree: "
                         f"{E.shape} and {W_x.shape}")
    with single_threaded_blas():
        table = np.ascontiguousarray(E) @ W_x                  # (V, 4H)
    for b in (b_x, b_h):
        if b is not None:
            table += b
    return table


def forward_lookup(ids, table, W_h, state0=None, mask=None, reverse=False, need_outputs=True):
    """Inference from token ids through a (V, 4H) table made by project_table: the same
    result as forward(E[ids], W_x, W_h, b_x, b_h, ..., need_cache=False), up to
    rounding of the input product. ids (B, T) integers in [0, V).
    Returns (hs (B, T, H) or None, (h_T, c_T))."""
    H = W_h.shape[0]
    if table.ndim != 2 or table.shape[1] != N_GATES * H or W_h.shape != (H, N_GATES * H):
        raise ValueError(f"forward_lookup: table {table.shape} and W_h {W_h.shape} do not agree")
    rows = support.token_rows(ids, mask, table.shape[0])               # (T, B)
    with single_threaded_blas():
        return _infer(np.ascontiguousarray(table), rows, W_h, state0, mask, reverse, need_outputs)


def _restore_gates(cache):
    """A second backward from one forward: the first one overwrote the cached
    gates with dL/dz, so they are recomputed from the cached [x_t, h_{t-1}, 1]
    rows, one product over all steps (the forward's own arithmetic up to
    rounding). Rare, so plain NumPy."""
    gates, xh_all, W_xh = cache["gates"], cache["xh_all"], cache["W_xh"]
    T, B, K = xh_all.shape
    H = W_xh.shape[1] // N_GATES
    z = xh_all.reshape(T * B, K) @ W_xh                               # (T*B, 4H)
    for q in range(N_GATES):
        s, a, d = GATE_ACT[gates.dtype][q]
        gates[q].reshape(T * B, H)[...] = np.tanh(s * z[:, q * H:(q + 1) * H]) * a + d


def _backward(dhs, dstate, cache):
    """The body of backward(), run with BLAS threads set."""
    if cache["used"]:
        _restore_gates(cache)
    cache["used"] = True
    gates, xh_all, D = cache["gates"], cache["xh_all"], cache["D"]
    T, B, K = xh_all.shape
    H = cache["W_xh"].shape[1] // N_GATES
    dt = gates.dtype
    dh_T, dc_T = dstate if dstate is not None else (None, None)
    dh_T = np.zeros((B, H), dt) if dh_T is None else support.contiguous(dh_T, dt)
    dc_T = np.zeros((B, H), dt) if dc_T is None else support.contiguous(dc_T, dt)
    has_dhs = dhs is not None
    dhs_tm = support.time_major(dhs, dt).reshape(T, B * H) if has_dhs else np.zeros((1, 1), dt)

    fused, W_xh = cache["fused"], cache["W_xh"]
    dx = workspace.empty((B, T, D), dt) if fused else np.empty((1, 1, 1), dt)
    dz_rows = workspace.empty((T, B, N_GATES * H), dt)
    dh0, dc0 = np.empty((B, H), dt), np.empty((B, H), dt)
    W_back = np.ascontiguousarray((W_xh if fused else W_xh[D:D + H]).T)  # (4H, D+H+1) or (4H, H)
    packed = not fused and pack_recurrent(H)
    W_backp = gemm.pack(W_back) if packed else np.empty((1, 1, 1), dt)   # (H/32, 4H, 32)
    support.run_chunks(_backward_rows, B, H, dhs_tm, has_dhs, dh_T, dc_T, gates,
                       cache["c_prevs"], cache["mask"], cache["has_mask"], cache["reverse"],
                       fused, W_back, W_backp, packed, support.FLUSH_DENORMALS, dz_rows, dx,
                       dh0, dc0)
    if not fused:
        # dx = dz W_x^T for all steps at once, then back to batch-major
        dx = support.batch_major(support.row_products(dz_rows.reshape(T * B, N_GATES * H),
                                                      W_xh[:D].T).reshape(T, B * D), B)
    # the weight gradients in one product over all steps; the column of ones
    # in [x_t, h_{t-1}, 1] gives the bias
    dW = support.sum_of_products(xh_all.reshape(T * B, K), dz_rows.reshape(T * B, N_GATES * H))
    db = dW[D + H]
    grads = dict(x=dx, W_x=dW[:D], W_h=dW[D:D + H], b_x=db if cache["has_b_x"] else None,
                 b_h=db.copy() if cache["has_b_h"] else None)
    grads["state0"] = (dh0, dc0)
    return grads


def forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, need_cache=True, need_outputs=True):
    """Run the LSTM over a whole sequence; see lstmkit.cells.lstm.forward.

    need_cache=False is the inference path: no cache is kept (None is
    returned in its place) and, with need_outputs=False, no outputs either
    (hs is None); only the state travels through the loop.

    Returns (hs, (h_T, c_T), cache): hs (B, T, H), the final states and an opaque cache.
    """
    with single_threaded_blas():
        return _forward(x, W_x, W_h, b_x, b_h, state0, mask, reverse, recurrent_mask,
                        need_cache, need_outputs)


def backward(dhs, dstate, cache):
    """Backpropagation through time for forward(); see lstmkit.cells.lstm.backward."""
    with single_threaded_blas():
        return _backward(dhs, dstate, cache)


@njit(**_JIT)
def _step_into(x_t, h, c, W_x, W_h, b_x, b_h, h_out, c_out):
    """One step for rows of x_t (B, D): writes h_t, c_t into h_out, c_out (B, H).
    Reads all of h and c before writing, so h_out, c_out may be h, c themselves.
    Plain loops instead of np.dot: at batch 1 a BLAS call costs more than the
    product."""
    B, H = h.shape
    D = x_t.shape[1]
    if (c.shape != h.shape or h_out.shape != h.shape or c_out.shape != h.shape
            or x_t.shape[0] != B or W_x.shape != (D, 4 * H) or W_h.shape != (H, 4 * H)
            or b_x.shape[0] != 4 * H or b_h.shape[0] != 4 * H):
        raise ValueError("step(): shapes of x_t, state, weights or out do not agree")
    zero, half, one = cast_like(h, 0.0), cast_like(h, 0.5), cast_like(h, 1.0)
    z = np.empty(4 * H, h.dtype)                               # (4H,) one row's preactivations
    for r in range(B):
        for j in range(4 * H):
            z[j] = b_x[j] + b_h[j]
        for i in range(D):                                     # z += x_t W_x
            xv = x_t[r, i]
            for j in range(4 * H):
                z[j] += xv * W_x[i, j]
        for i in range(H):                                     # z += h_{t-1} W_h
            hv = h[r, i]
            for j in range(4 * H):
                z[j] += hv * W_h[i, j]
        for q in range(4):                                     # sigmoid for i, f, o; tanh for g
            s, a, d = (one, one, zero) if q == 2 else (half, half, half)
            for j in range(q * H, (q + 1) * H):
                z[j] = fast_tanh(s * z[j]) * a + d
        for k in range(H):
            c_new = z[H + k] * c[r, k] + z[k] * z[2 * H + k]  # c_t = f*c_{t-1} + i*g
            c_out[r, k] = c_new
            h_out[r, k] = z[3 * H + k] * fast_tanh(c_new)     # h_t = o*tanh(c_t)




@njit(**_JIT)
def _step_new(x_t, h, c, W_x, W_h, b_x, b_h):
    h_out, c_out = np.empty_like(h), np.empty_like(c)
    _step_into(x_t, h, c, W_x, W_h, b_x, b_h, h_out, c_out)
    return h_out, c_out


def step(x_t, state, W_x, W_h, b_x=None, b_h=None, out=None):
    """One LSTM step for streaming inference, in one compiled call.

    x_t (B, D); state = (h, c), each (B, H). out, optional (h_out, c_out) to
    write the new state into (may be the state arrays themselves, for an
    allocation-free loop). Returns (h_t, (h_t, c_t)).
    """
    # strided x[:, t] or transposed weights (torch's weight_hh.T) would each
    # make numba compile another specialisation
    h, c = state
    if not (x_t.flags.c_contiguous and W_x.flags.c_contiguous and W_h.flags.c_contiguous
            and h.flags.c_contiguous and c.flags.c_contiguous):
        x_t, W_x, W_h, h, c = (np.ascontiguousarray(a) for a in (x_t, W_x, W_h, h, c))
    if b_x is None:
        b_x = support.zeros_cached(W_h.shape[1], x_t.dtype)
    if b_h is None:
        b_h = support.zeros_cached(W_h.shape[1], x_t.dtype)
    if out is None:
        out = _step_new(x_t, h, c, W_x, W_h, b_x, b_h)
    else:
        _step_into(x_t, h, c, W_x, W_h, b_x, b_h, out[0], out[1])
    return out[0], (out[0], out[1])
