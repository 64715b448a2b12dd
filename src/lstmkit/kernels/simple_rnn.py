"""Simple (Elman) RNN, fast engine: the cell's math and cache layout inside
the skeleton's compiled time loops (kernels/skeleton.py). Same contract as
lstmkit.cells.simple_rnn.

    s_t = act(x_t W_x + b_x + b_h + h_{t-1} W_h)       act = tanh or relu   (the seeds' U x_t + W s_{t-1} + b)

One gate, so the stacked product of skeleton.StackedCell is
[x_t, h_{t-1}, 1] (D+H+1) times [W_x; W_h; b] (D+H+1, H). Cache of the
training forward: act(...) before the mask (T, B*H), which is all the
derivative needs (tanh' = 1 - s^2, relu' = [s > 0]), and the rows.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from ..cells.activations import ACTIVATIONS
from . import gemm, skeleton, support, workspace
from .activations import fast_tanh
from .skeleton import JIT, implements
from .packed_cells import preactivations
from .support import cast_like

N_GATES = 1
STATE_NAMES = ("h",)
GATE_NAMES = ("hidden",)


class Train(NamedTuple):
    """The training forward's arguments, unfused: x W_x is in xw, the step adds b."""
    loop: skeleton.Loop
    x: np.ndarray              # (B, T, D)
    xw: np.ndarray             # (1, T, B*H) x W_x for all steps (unfused), else a placeholder
    b: np.ndarray              # (H,) b_x + b_h (unfused: added in the step's activation pass)
    W: np.ndarray              # packed, (1, P, K, 32): [W_x; W_h; b] (fused) or W_h
    xh_all: np.ndarray         # (T, B, D+H+1) cache: each step's [x_t, h_{t-1}, 1]
    h_news: np.ndarray         # (T, B*H) cache: act(...) before the mask
    relu: bool
    z: np.ndarray              # (1, B*H) scratch: the step's product


class TrainFused(Train):
    """The same fields; the step multiplies [x_t, h_{t-1}, 1] by the stacked weights."""


class Infer(NamedTuple):
    loop: skeleton.Loop
    table: np.ndarray          # (1, T*B, H) projections, or a folded (V, H) table
    rows: np.ndarray           # (T, B) int64
    x_t: np.ndarray            # (1, B*H) scratch: the step's input projections
    W: np.ndarray              # (1, P, H, 32) W_h, packed
    relu: bool
    z: np.ndarray              # (1, B*H) scratch
    act: np.ndarray            # (B*H,) scratch


class Backward(NamedTuple):
    loop: skeleton.Loop
    h_news: np.ndarray         # (T, B*H) the forward's act(...)
    dz: np.ndarray             # (1, T, B*H) receives dL/d(preactivation)
    W_back: np.ndarray         # (1, P, H, 32) [W_x; W_h; b]^T (fused) or W_h^T, packed
    dx: np.ndarray             # (B, T, D) written per step when fused
    dxh: np.ndarray            # (B, K) scratch: dL/d[x_t, h_{t-1}, 1] (fused) or dL/dh_{t-1}
    relu: bool
    work: np.ndarray           # (2, B*H) scratch: dh_skip, dh_new


class BackwardFused(Backward):
    """The same fields; the step's product gives [dx_t, dh_{t-1}, -] at once."""


# ---- compiled: one step ---------------------------------------------------------------

@njit(**support.INLINE)
def _activate(z, relu, act):
    """act = act(z) over one flat run: s_t = tanh (or relu) of the preactivation."""
    zero = cast_like(act, 0.0)
    if relu:
        for k in range(act.shape[0]):
            act[k] = zero if z[k] < zero else z[k]             # NaN passes, as np.maximum
    else:
        for k in range(act.shape[0]):
            act[k] = fast_tanh(z[k])


@njit(**support.INLINE)
def _activate_sum(z, xw, relu, act):
    """act = act(z + xw) over one flat run."""
    zero = cast_like(act, 0.0)
    if relu:
        for k in range(act.shape[0]):
            v = z[k] + xw[k]
            act[k] = zero if v < zero else v
    else:
        for k in range(act.shape[0]):
            act[k] = fast_tanh(z[k] + xw[k])


@njit(**support.INLINE)
def _activate_sum_bias(z, xw, b, relu, act):
    """act = act(z + (xw + b)), b (H,) added to each run of H numbers (the
    training step's bias; the same sums as _activate_sum over xw + b)."""
    zero = cast_like(act, 0.0)
    H = b.shape[0]
    for r in range(act.shape[0] // H):
        if relu:
            for j in range(H):
                v = z[r * H + j] + (xw[r * H + j] + b[j])
                act[r * H + j] = zero if v < zero else v
        else:
            for j in range(H):
                act[r * H + j] = fast_tanh(z[r * H + j] + (xw[r * H + j] + b[j]))


@implements(skeleton.forward_step, Train, TrainFused)
def _forward_step(cls):
    fused = cls is TrainFused

    def step(a, t, lo, n, m, out):
        H = a.loop.H
        P, base = n * H, lo * H
        h = a.loop.carry[0, lo:lo + n]                         # (n, H)
        z = a.z[0, base:base + P]
        act = a.h_news[t, base:base + P]
        if fused:
            xh = a.xh_all[t, lo:lo + n]                        # (n, D+H+1) [x_t, h_{t-1}, 1]
            support.fill_step_rows(xh, a.x, h, lo, t)
            gemm.dot(xh, a.W[0], z.reshape((n, H)), False)    # U x_t + W s_{t-1} + b, one product
            _activate(z, a.relu, act)                         # s_t = act(...)
        else:
            support.fill_step_rows(a.xh_all[t, lo:lo + n], a.x, h, lo, t)   # kept for the weight gradients
            gemm.dot(h, a.W[0], z.reshape((n, H)), False)     # W s_{t-1}; U x_t is in xw
            _activate_sum_bias(z, a.xw[0, t, base:base + P], a.b, a.relu, act)
        skeleton.masked_update(act, m, out, h.reshape(P))
    return step


@implements(skeleton.infer_step, Infer)
def _infer_step(cls):
    def step(a, lo, n, m, out):
        H = a.loop.H
        P, base = n * H, lo * H
        h = a.loop.carry[0, lo:lo + n]
        z = a.z[0, base:base + P]
        gemm.dot(h, a.W[0], z.reshape((n, H)), False)         # W s_{t-1}
        _activate_sum(z, a.x_t[0, base:base + P], a.relu, a.act[base:base + P])
        skeleton.masked_update(a.act[base:base + P], m, out, h.reshape(P))
    return step


@implements(skeleton.backward_step, Backward, BackwardFused)
def _backward_step(cls):
    fused = cls is BackwardFused

    def step(a, t, lo, n, m, dout):
        H = a.loop.H
        P, base = n * H, lo * H
        zero, one = cast_like(a.work, 0.0), cast_like(a.work, 1.0)
        dh_skip, dh_new = a.work[0, base:base + P], a.work[1, base:base + P]
        dh = a.loop.carry[0, lo:lo + n].reshape(P)
        act, da = a.h_news[t, base:base + P], a.dz[0, t, base:base + P]
        skeleton.split_gradient(m, dh, dout, dh_skip, dh_new)
        # backprop through s_t = act(U x_t + W s_{t-1} + b)
        if a.relu:
            for k in range(P):
                da[k] = dh_new[k] * (one if act[k] > zero else zero)
        else:
            for k in range(P):
                da[k] = dh_new[k] * (one - act[k] * act[k])
        dxh = a.dxh[lo:lo + n]
        gemm.dot(da.reshape((n, H)), a.W_back[0], dxh, False)  # backprop through the product
        # the same lines as the end of lstm's backward step, kept copied (see there)
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


STEP = Step(n_gates=1, n_states=1)
skeleton.name_types("simple_rnn", Train, TrainFused, Infer, Backward, BackwardFused, Step)    # unique numba type names (see there)


@implements(skeleton.step_rows, Step)
def _step_rows(cls):
    def step(cell, x, pack, h, c, h_out, c_out, flag):
        """One simple-RNN step over packed weights for every row (skeleton.step_rows):
        x (B, D), h (B, H) -> h_out (B, H); flag = relu."""
        relu = flag
        B, H = h.shape
        Z = np.empty((B, H), h.dtype)
        preactivations(x, h, pack, Z)
        zero = cast_like(Z, 0.0)
        for r in range(B):
            for j in range(H):
                h_out[r, j] = (zero if Z[r, j] < zero else Z[r, j]) if relu else fast_tanh(Z[r, j])
    return step



# ---- Python side ----------------------------------------------------------------------

class _SimpleRNN(skeleton.StackedCell):
    name, N_GATES, STATE_NAMES = "simple_rnn", N_GATES, STATE_NAMES
    SKIPS_PADDING = True
    Train, TrainFused, Infer, Backward, BackwardFused = Train, TrainFused, Infer, Backward, BackwardFused

    def options(self, activation="tanh"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
        return {"activation": activation}

    def flags(self, opts):
        return {"relu": opts["activation"] == "relu"}

    def caches(self, T, B, H, dt):
        return dict(h_news=workspace.lease((T, B * H), dt))

    def scratch(self, kind, B, H, K, dt, ws):
        if kind == "backward":
            return dict(work=ws.empty((2, B * H), dt))
        out = dict(z=ws.empty((1, B * H), dt))
        if kind == "infer":
            out["act"] = ws.empty((B * H,), dt)
        return out

    def dz(self, cache, ws):
        return ws.empty((1, cache["T"], cache["B"] * cache["H"]), cache["dtype"])


CELL = _SimpleRNN()


def forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, activation="tanh", need_cache=True, need_outputs=True):
    """Run the simple RNN over a whole sequence; see lstmkit.cells.simple_rnn.forward
    and skeleton.forward. Returns (hs (B, T, H), (h_T,), cache)."""
    return skeleton.forward(CELL, x, W_x, W_h, b_x, b_h, state0, mask, reverse, recurrent_mask,
                            need_cache, need_outputs, activation=activation)


def backward(dhs, dstate, cache):
    """Backpropagation through time for forward(); see lstmkit.cells.simple_rnn.backward."""
    return skeleton.backward(CELL, dhs, dstate, cache)


def project_table(E, W_x, b_x=None, b_h=None, empty=None):
    """E (V, D) -> E W_x + b_x + b_h (V, H), the table forward_lookup reads."""
    return skeleton.project_table(CELL, E, W_x, b_x, b_h, empty)


def forward_lookup(ids, table, W_h, state0=None, mask=None, reverse=False, need_outputs=True,
                   activation="tanh"):
    """Inference from token ids (B, T) through a table made by project_table.
    Returns (hs (B, T, H) or None, (h_T,))."""
    return skeleton.forward_lookup(CELL, ids, table, W_h, state0, mask, reverse, need_outputs,
                                   activation=activation)
