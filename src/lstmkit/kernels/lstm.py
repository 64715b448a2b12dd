"""LSTM, fast engine: the cell's gate math and cache layout inside the
skeleton's compiled time loops (kernels/skeleton.py). Same contract as
lstmkit.cells.lstm.

Gate order in every weight matrix (columns, blocks of H): input gate i,
forget gate f, candidate g, output gate o -- PyTorch's order.

    z_t = x_t W_x + b_x + b_h + h_{t-1} W_h                   (B, 4H) preactivations
    i_t = sigmoid(z_i)   f_t = sigmoid(z_f)   g_t = tanh(z_g)   o_t = sigmoid(z_o)
    c_t = f_t * c_{t-1} + i_t * g_t                           cell state
    h_t = o_t * tanh(c_t)                                     hidden state

sigmoid(z) = tanh(z/2)/2 + 1/2, the reference's own form (activations.py).

Caches of the training forward (read by backward): the activated gates
(4, T, B*H), c_{t-1} (T, B*H) and each step's [x_t, h_{t-1}, 1] rows
(skeleton.StackedCell). tanh(c_t) is recomputed in backward from the gates
and c_{t-1}: one tanh per element is cheaper than writing and reading a
(T, B*H) array. Backward overwrites the cached gates with dL/dz, so a
second backward from the same forward first recomputes them.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from . import gemm, skeleton, support, workspace
from .activations import (fast_tanh, sigmoid_pass, sigmoid_sum_bias_pass, sigmoid_sum_pass, tanh_pass,
                          tanh_sum_bias_pass, tanh_sum_pass)
from .skeleton import JIT, implements
from .views import block, run
from .packed_cells import preactivations
from .support import cast_like

N_GATES = 4
STATE_NAMES = ("h", "c")
GATE_NAMES = ("input_gate", "forget_gate", "candidate", "output_gate")


class Train(NamedTuple):
    """The training forward's arguments, unfused: x W_x is in xw, the step adds b."""
    loop: skeleton.Loop
    x: np.ndarray              # (B, T, D) the input, batch-major
    xw: np.ndarray             # (4, T, B*H) x W_x for all steps (unfused), else a placeholder
    b: np.ndarray              # (4H,) b_x + b_h (unfused: added in the step's gate passes)
    W: np.ndarray              # per gate, packed: [W_x; W_h; b] (fused) or W_h (unfused), (4, P, K, 32)
    xh_all: np.ndarray         # (T, B, D+H+1) cache: each step's [x_t, h_{t-1}, 1]
    gates: np.ndarray          # (4, T, B*H) cache: i, f, g, o
    c_prevs: np.ndarray        # (T, B*H) cache: c_{t-1}
    z: np.ndarray              # (4, B*H) scratch: the step's preactivations (products)
    c_new: np.ndarray          # (B*H,) scratch
    tanh_c: np.ndarray         # (B*H,) scratch


class TrainFused(Train):
    """The same fields; the step multiplies [x_t, h_{t-1}, 1] by the stacked weights."""


class Infer(NamedTuple):
    loop: skeleton.Loop
    table: np.ndarray          # input projections: (4, T*B, H) gate-major, or a folded (V, 4H) table
    rows: np.ndarray           # (T, B) int64: the table row each step of each sequence reads
    x_t: np.ndarray            # (4, B*H) scratch: the step's input projections
    W: np.ndarray              # (4, P, H, 32) W_h per gate, packed
    z: np.ndarray              # (4, B*H) scratch
    gate: np.ndarray           # (4, B*H) scratch: i, f, g, o
    c_new: np.ndarray          # (B*H,) scratch
    tanh_c: np.ndarray         # (B*H,) scratch


class Backward(NamedTuple):
    """Backward's arguments, unfused: the step gets dh_{t-1} from W_h alone."""
    loop: skeleton.Loop
    gates: np.ndarray          # (4, T, B*H) the forward's gates, overwritten with dL/dz
    dz: np.ndarray             # the same array (skeleton.StackedCell's name for it)
    c_prevs: np.ndarray        # (T, B*H)
    W_back: np.ndarray         # per gate, packed: W_xh^T (fused, (4, P, H, D+H+1)) or W_h^T
    dx: np.ndarray             # (B, T, D) dL/dx, written per step when fused
    dxh: np.ndarray            # (B, K) scratch: dL/d[x_t, h_{t-1}, 1] (fused) or dL/dh_{t-1}
    work: np.ndarray           # (4, B*H) scratch: tanh_c, dh_skip, dh_new, dct


class BackwardFused(Backward):
    """The same fields; the step's product gives [dx_t, dh_{t-1}, -] at once."""


# ---- compiled: one step ---------------------------------------------------------------

@njit(**support.INLINE)
def _update_state(i, f, g, o, m, c_new, tanh_c, out, h, c):
    """The cell update over flat runs of n*H numbers: c_new, tanh_c (scratch),
    out (the step's output) and the carried h, c in place. Four passes
    writing one array each, so LLVM keeps every one SIMD."""
    one = cast_like(h, 1.0)
    for k in range(c_new.shape[0]):
        c_new[k] = f[k] * c[k] + i[k] * g[k]                 # c_t = f*c_{t-1} + i*g
    for k in range(c_new.shape[0]):
        tanh_c[k] = fast_tanh(c_new[k])
    for k in range(c_new.shape[0]):
        h_new = o[k] * tanh_c[k]                             # h_t = o*tanh(c_t)
        out[k] = m[k] * h_new
        h[k] = m[k] * h_new + (one - m[k]) * h[k]            # a masked step carries the state
    for k in range(c_new.shape[0]):
        c[k] = m[k] * c_new[k] + (one - m[k]) * c[k]


@implements(skeleton.forward_step, Train, TrainFused)
def _forward_step(cls):
    fused = cls is TrainFused                                  # a constant: one path is compiled

    def step(a, t, lo, n, m, out):
        H = a.loop.H
        P, base = n * H, lo * H
        # views (kernels/views.py): run(a, index, P) is a[index...:...+P] flat,
        # block(a, index, n, H) the same as (n, H)
        h, c = block(a.loop.carry, (0, lo, 0), n, H), block(a.loop.carry, (1, lo, 0), n, H)   # (n, H) state
        h_run, c_run = run(a.loop.carry, (0, lo, 0), P), run(a.loop.carry, (1, lo, 0), P)
        z_i, z_f = run(a.z, (0, base), P), run(a.z, (1, base), P)
        z_g, z_o = run(a.z, (2, base), P), run(a.z, (3, base), P)
        xh = block(a.xh_all, (t, lo, 0), n, a.xh_all.shape[2])   # (n, D+H+1) this step's [x_t, h_{t-1}, 1]
        support.fill_step_rows(xh, a.x, h, lo, t)
        support.copy_run(c_run, run(a.c_prevs, (t, base), P))
        i, f = run(a.gates, (0, t, base), P), run(a.gates, (1, t, base), P)
        g, o = run(a.gates, (2, t, base), P), run(a.gates, (3, t, base), P)
        if fused:
            for q in range(4):                                 # z_q = [x_t, h_{t-1}, 1] W_xh,q
                gemm.dot(xh, a.W[q], block(a.z, (q, base), n, H), q < 0)   # q < 0: False (gemm.dot)
            sigmoid_pass(z_i, i)                               # i_t = sigmoid(z_i)
            sigmoid_pass(z_f, f)                               # f_t = sigmoid(z_f)
            tanh_pass(z_g, g)                                  # g_t = tanh(z_g)
            sigmoid_pass(z_o, o)                               # o_t = sigmoid(z_o)
        else:
            for q in range(4):                                 # h_{t-1} W_h,q; x_t W_x,q is in xw
                gemm.dot(h, a.W[q], block(a.z, (q, base), n, H), q < 0)
            sigmoid_sum_bias_pass(z_i, run(a.xw, (0, t, base), P), a.b[0:H], i)      # i = sigmoid(h W_hi + (x W_xi + b_i))
            sigmoid_sum_bias_pass(z_f, run(a.xw, (1, t, base), P), a.b[H:2 * H], f)
            tanh_sum_bias_pass(z_g, run(a.xw, (2, t, base), P), a.b[2 * H:3 * H], g)
            sigmoid_sum_bias_pass(z_o, run(a.xw, (3, t, base), P), a.b[3 * H:4 * H], o)
        _update_state(i, f, g, o, m, run(a.c_new, (base,), P), run(a.tanh_c, (base,), P), out,
                      h_run, c_run)
    return step


@implements(skeleton.infer_step, Infer)
def _infer_step(cls):
    def step(a, lo, n, m, out):
        H = a.loop.H
        P, base = n * H, lo * H
        h = block(a.loop.carry, (0, lo, 0), n, H)             # views: see the forward step
        for q in range(4):                                     # h_{t-1} W_h,q
            gemm.dot(h, a.W[q], block(a.z, (q, base), n, H), q < 0)   # q < 0: False (gemm.dot)
        i, f = run(a.gate, (0, base), P), run(a.gate, (1, base), P)
        g, o = run(a.gate, (2, base), P), run(a.gate, (3, base), P)
        sigmoid_sum_pass(run(a.z, (0, base), P), run(a.x_t, (0, base), P), i)   # i_t = sigmoid(x_t W_xi + b_i + h W_hi)
        sigmoid_sum_pass(run(a.z, (1, base), P), run(a.x_t, (1, base), P), f)   # f_t
        tanh_sum_pass(run(a.z, (2, base), P), run(a.x_t, (2, base), P), g)      # g_t = tanh(...)
        sigmoid_sum_pass(run(a.z, (3, base), P), run(a.x_t, (3, base), P), o)   # o_t
        _update_state(i, f, g, o, m, run(a.c_new, (base,), P), run(a.tanh_c, (base,), P), out,
                      run(a.loop.carry, (0, lo, 0), P), run(a.loop.carry, (1, lo, 0), P))
    return step


@implements(skeleton.backward_step, Backward, BackwardFused)
def _backward_step(cls):
    fused = cls is BackwardFused

    def step(a, t, lo, n, m, dout):
        H = a.loop.H
        P, base = n * H, lo * H
        one = cast_like(a.work, 1.0)
        tanh_c, dh_skip = run(a.work, (0, base), P), run(a.work, (1, base), P)   # views: see forward
        dh_new, dct = run(a.work, (2, base), P), run(a.work, (3, base), P)
        dh = run(a.loop.carry, (0, lo, 0), P)                  # dL/dh_t, dL/dc_t from the step after
        dc = run(a.loop.carry, (1, lo, 0), P)
        i, f = run(a.gates, (0, t, base), P), run(a.gates, (1, t, base), P)   # overwritten below by dz_i, dz_f
        g, o = run(a.gates, (2, t, base), P), run(a.gates, (3, t, base), P)   # ... by dz_g, dz_o
        c_prev = run(a.c_prevs, (t, base), P)
        for k in range(P):
            tanh_c[k] = fast_tanh(f[k] * c_prev[k] + i[k] * g[k])     # tanh(c_t) again rather than cached
        skeleton.split_gradient(m, dh, dout, dh_skip, dh_new)          # through h = m*h_new + (1-m)*h_{t-1}
        for k in range(P):
            # backprop through h_t = o * tanh(c_t) into c_t (with what came through c), then o's sigmoid
            oo = o[k]
            dct[k] = m[k] * dc[k] + dh_new[k] * oo * (one - tanh_c[k] * tanh_c[k])
            o[k] = (dh_new[k] * tanh_c[k]) * (oo * (one - oo))
        for k in range(P):
            # backprop through c = m*c_new + (1-m)*c_{t-1} and c_t = f * c_{t-1} + i * g into c_{t-1}
            dc[k] = dct[k] * f[k] + (one - m[k]) * dc[k]
        for k in range(P):
            # ... and into the gates, then through their nonlinearities
            ii, ff, gg = i[k], f[k], g[k]
            i[k] = (dct[k] * gg) * (ii * (one - ii))
            f[k] = (dct[k] * c_prev[k]) * (ff * (one - ff))
            g[k] = (dct[k] * ii) * (one - gg * gg)
        # backprop through z = [x_t, h_{t-1}, 1] W_xh (fused) or h_{t-1} W_h (+ x_t W_x + b):
        # one product per gate, summed
        dxh = block(a.dxh, (lo, 0), n, a.dxh.shape[1])
        for q in range(4):
            gemm.dot(block(a.gates, (q, t, base), n, H), a.W_back[q], dxh, q > 0)
        # dx_t out, dh_{t-1} = product + skip: the same lines end simple_rnn's
        # backward step; a shared inlined helper broke float32 input gradients
        # in some runs, for a cause not found (docs/kernels.md, "Compile time")
        D = a.dx.shape[2] if fused else 0
        if fused:
            for r in range(n):
                for j in range(D):
                    a.dx[lo + r, t, j] = dxh[r, j]
        for r in range(n):
            for j in range(H):
                dh[r * H + j] = dxh[r, D + j] + dh_skip[r * H + j]
    return step


skeleton.stacked_skips(Train, TrainFused, Backward, BackwardFused)   # padded rows of the row-skipping loops


class Step(skeleton.Step):
    """This cell's marker for skeleton.step_rows (the streaming step)."""


STEP = Step(n_gates=4, n_states=2)
skeleton.name_types("lstm", Train, TrainFused, Infer, Backward, BackwardFused, Step)    # unique numba type names (see there)


@implements(skeleton.step_rows, Step)
def _step_rows(cls):
    def step(cell, x, pack, h, c, h_out, c_out, flag):
        """One LSTM step over packed weights for every row (skeleton.step_rows):
        x (B, D), h, c (B, H) -> h_out, c_out (B, H)."""
        B, H = h.shape
        Z = np.empty((B, 4 * H), h.dtype)                          # (B, 4H) i f g o
        preactivations(x, h, pack, Z)
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
    return step


# ---- Python side ----------------------------------------------------------------------

class _LSTM(skeleton.StackedCell):
    name, N_GATES, STATE_NAMES = "lstm", N_GATES, STATE_NAMES
    SKIPS_PADDING = True
    Train, TrainFused, Infer, Backward, BackwardFused = Train, TrainFused, Infer, Backward, BackwardFused

    def caches(self, T, B, H, dt):
        return dict(gates=workspace.lease((4, T, B * H), dt), c_prevs=workspace.lease((T, B * H), dt))

    def scratch(self, kind, B, H, K, dt, ws):
        if kind == "backward":
            return dict(work=ws.empty((4, B * H), dt))
        out = dict(z=ws.empty((4, B * H), dt), c_new=ws.empty((B * H,), dt),
                   tanh_c=ws.empty((B * H,), dt))
        if kind == "infer":
            out["gate"] = ws.empty((4, B * H), dt)
        return out

    def dz(self, cache, ws):
        if cache.get("used"):
            _restore_gates(cache)
        cache["used"] = True
        return cache["gates"]                                  # backward overwrites the gates with dL/dz


def _restore_gates(cache):
    """A second backward from one forward: the first one overwrote the cached
    gates with dL/dz, so they are recomputed from the cached [x_t, h_{t-1}, 1]
    rows, one product over all steps (the forward's own arithmetic up to
    rounding). Rare, so plain NumPy."""
    gates, xh_all, W_xh = cache["gates"], cache["xh_all"], cache["W_xh"]
    T, B, K = xh_all.shape
    H = W_xh.shape[1] // N_GATES
    z = xh_all.reshape(T * B, K) @ W_xh                        # (T*B, 4H)
    half = gates.dtype.type(0.5)
    for q in range(N_GATES):
        zq = z[:, q * H:(q + 1) * H]
        act = np.tanh(zq) if q == 2 else np.tanh(half * zq) * half + half   # g: tanh; i, f, o: sigmoid
        gates[q].reshape(T * B, H)[...] = act


CELL = _LSTM()


def forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, need_cache=True, need_outputs=True):
    """Run the LSTM over a whole sequence; see lstmkit.cells.lstm.forward and
    skeleton.forward. Returns (hs (B, T, H), (h_T, c_T), cache)."""
    return skeleton.forward(CELL, x, W_x, W_h, b_x, b_h, state0, mask, reverse, recurrent_mask,
                            need_cache, need_outputs)


def backward(dhs, dstate, cache):
    """Backpropagation through time for forward(); see lstmkit.cells.lstm.backward."""
    return skeleton.backward(CELL, dhs, dstate, cache)


def project_table(E, W_x, b_x=None, b_h=None, empty=None):
    """E (V, D) -> E W_x + b_x + b_h (V, 4H), the table forward_lookup reads."""
    return skeleton.project_table(CELL, E, W_x, b_x, b_h, empty)


def forward_lookup(ids, table, W_h, state0=None, mask=None, reverse=False, need_outputs=True):
    """Inference from token ids (B, T) through a table made by project_table.
    Returns (hs (B, T, H) or None, (h_T, c_T))."""
    return skeleton.forward_lookup(CELL, ids, table, W_h, state0, mask, reverse, need_outputs)
