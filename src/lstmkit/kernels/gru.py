"""GRU, fast engine: the cell's gate math and cache layout inside the
skeleton's compiled time loops (kernels/skeleton.py). Same contract as
lstmkit.cells.gru.

Gate order in every weight matrix (columns, blocks of H): reset gate r,
update gate z, candidate n -- PyTorch's order.

    r_t = sigmoid(x_t W_xr + b_xr + b_hr + h_{t-1} W_hr)           reset_gate
    z_t = sigmoid(x_t W_xz + b_xz + b_hz + h_{t-1} W_hz)           update_gate
    reset_after=True  (PyTorch):  n_t = tanh(x_t W_xn + b_xn + r_t * (h_{t-1} W_hn + b_hn))
    reset_after=False (Cho):      n_t = tanh(x_t W_xn + b_xn + b_hn + (r_t * h_{t-1}) W_hn)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                          hidden state

The input side x W_x + b is one product per gate over all steps before the
loop (never fused with the recurrent product: the candidate needs x W_xn
and h W_hn apart). With reset_after, b_hn sits inside r * (...), so it stays
out of the projections and the loop adds it there.

Caches of the training forward: the activated gates (3, T, B*H), h_{t-1}
(T, B*H), the time-major input (T, B, D), and per step either h W_hn + b_hn
(reset_after) or r * h_{t-1} (reset_before), the values backward needs for r
and for W_hn.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from ..cells.gru import _check_reset_after
from . import gemm, skeleton, support, threads, workspace
from .activations import fast_tanh, sigmoid_sum_pass, tanh_sum_pass
from .skeleton import JIT, implements
from .packed_cells import accumulate, blas_rows, blas_dot_rows
from .support import cast_like

N_GATES = 3
STATE_NAMES = ("h",)
GATE_NAMES = ("reset_gate", "update_gate", "candidate")


class Train(NamedTuple):
    """The training forward's arguments (reset_after=True, PyTorch's form)."""
    loop: skeleton.Loop
    xw: np.ndarray             # (3, T, B*H) x W_x + b for all steps (b_hn left out when reset_after)
    W: np.ndarray              # (3, P, H, 32) W_h per gate, packed
    b_hn: np.ndarray           # (B*H,) the n block of b_h, tiled over the rows (zeros unless reset_after)
    gates: np.ndarray          # (3, T, B*H) cache: r, z, n
    h_prevs: np.ndarray        # (T, B*H) cache: h_{t-1}
    stash: np.ndarray          # (T, B*H) cache: h W_hn + b_hn (reset_after) or r * h_{t-1}
    z: np.ndarray              # (3, B*H) scratch: the step's products with W_h
    h_new: np.ndarray          # (B*H,) scratch


class TrainResetBefore(Train):
    """The same fields, reset_after=False (Cho's form)."""


class Infer(NamedTuple):
    loop: skeleton.Loop
    table: np.ndarray          # input projections: (3, T*B, H) gate-major, or a folded (V, 3H) table
    rows: np.ndarray           # (T, B) int64
    x_t: np.ndarray            # (3, B*H) scratch: the step's input projections
    W: np.ndarray              # (3, P, H, 32) W_h per gate, packed
    b_hn: np.ndarray           # (B*H,)
    z: np.ndarray              # (3, B*H) scratch
    gate: np.ndarray           # (4, B*H) scratch: r, z, n and the stash
    h_new: np.ndarray          # (B*H,) scratch


class InferResetBefore(Infer):
    """The same fields, reset_after=False."""


class Backward(NamedTuple):
    loop: skeleton.Loop
    gates: np.ndarray          # (3, T, B*H) the forward's r, z, n
    h_prevs: np.ndarray        # (T, B*H)
    stash: np.ndarray          # (T, B*H)
    W_back: np.ndarray         # (3, P, H, 32) W_h^T per gate, packed
    da: np.ndarray             # (3, T, B*H) dL/d(input-side preactivations) r, z, n
    dah_n: np.ndarray          # (T, B*H) dL/d(h W_hn + b_hn) (reset_after), else a placeholder
    work: np.ndarray           # (4, B*H) scratch: dh_skip, dh_new, d_rh, dh_q


class BackwardResetBefore(Backward):
    """The same fields, reset_after=False."""


# ---- compiled: one step ---------------------------------------------------------------

@njit(**support.INLINE)
def _candidate_after(a_n, r, zn, b, stash, n_gate):
    """stash = h W_hn + b_hn; n = tanh(a_n + r * stash), over flat runs."""
    for k in range(n_gate.shape[0]):
        stash[k] = zn[k] + b[k]
    for k in range(n_gate.shape[0]):
        n_gate[k] = fast_tanh(a_n[k] + r[k] * stash[k])


@njit(**support.INLINE)
def _reset_state(r, h, rh):
    """rh = r * h_{t-1}."""
    for k in range(rh.shape[0]):
        rh[k] = r[k] * h[k]


@njit(**support.INLINE)
def _new_state(z, n_gate, h, h_new):
    """h_new = (1 - z) * n + z * h_{t-1}."""
    one = cast_like(h, 1.0)
    for k in range(h.shape[0]):
        h_new[k] = (one - z[k]) * n_gate[k] + z[k] * h[k]


def _gru_step(reset_after):
    """One step over a chunk's n rows, for the train and the infer loops:
    h (n, H) carried in place; x_r, x_z, x_n the step's input projections;
    r, u, n_gate, stash flat runs that receive the gates (the caches in
    training, scratch at inference); z_* and h_new scratch runs."""
    def step(h, x_r, x_z, x_n, W, b_hn, z_r, z_u, z_n, h_new, r, u, n_gate, stash, m, out):
        n, H = h.shape
        rows = (n, H)
        h_flat = h.reshape(n * H)
        gemm.dot(h, W[0], z_r.reshape(rows), False)           # h_{t-1} W_hr
        gemm.dot(h, W[1], z_u.reshape(rows), False)           # h_{t-1} W_hz
        sigmoid_sum_pass(z_r, x_r, r)                         # r_t = sigmoid(x_t W_xr + b_r + h W_hr)
        sigmoid_sum_pass(z_u, x_z, u)                         # z_t = sigmoid(x_t W_xz + b_z + h W_hz)
        if reset_after:
            gemm.dot(h, W[2], z_n.reshape(rows), False)       # h_{t-1} W_hn
            _candidate_after(x_n, r, z_n, b_hn, stash, n_gate)   # n_t = tanh(a_n + r * (h W_hn + b_hn))
        else:
            _reset_state(r, h_flat, stash)                    # r_t * h_{t-1}
            gemm.dot(stash.reshape(rows), W[2], z_n.reshape(rows), False)  # (r_t * h_{t-1}) W_hn
            tanh_sum_pass(z_n, x_n, n_gate)                   # n_t = tanh(a_n + (r * h) W_hn)
        _new_state(u, n_gate, h_flat, h_new)                  # h_t = (1 - z) * n + z * h_{t-1}
        skeleton.masked_update(h_new, m, out, h_flat)
    # Each variant gets a name of its own. numba names a function's machine code
    # after its qualified name, argument types and a per-process counter; the two
    # closures share the first two, so two processes compiling them into the kernel
    # cache could give both the same symbol, and a loop loaded from the cache then
    # linked to the other variant's step (a reset_before GRU running reset_after's
    # math: CI-like runs with concurrent compiles saw errors up to 0.7).
    step.__qualname__ = f"gru_step_reset_{'after' if reset_after else 'before'}"
    return njit(**JIT)(step)


_STEP = {True: _gru_step(True), False: _gru_step(False)}


@implements(skeleton.forward_step, Train, TrainResetBefore)
def _forward_step(cls):
    gru_step = _STEP[cls is Train]

    def step(a, t, lo, n, m, out):
        H = a.loop.H
        P, base = n * H, lo * H
        run = slice(base, base + P)
        h = a.loop.carry[0, lo:lo + n]
        support.copy_run(h.reshape(P), a.h_prevs[t, run])
        gru_step(h, a.xw[0, t, run], a.xw[1, t, run], a.xw[2, t, run], a.W, a.b_hn[run],
                 a.z[0, run], a.z[1, run], a.z[2, run], a.h_new[run],
                 a.gates[0, t, run], a.gates[1, t, run], a.gates[2, t, run], a.stash[t, run], m, out)
    return step


@implements(skeleton.infer_step, Infer, InferResetBefore)
def _infer_step(cls):
    gru_step = _STEP[cls is Infer]

    def step(a, lo, n, m, out):
        H = a.loop.H
        P, base = n * H, lo * H
        run = slice(base, base + P)
        gru_step(a.loop.carry[0, lo:lo + n], a.x_t[0, run], a.x_t[1, run], a.x_t[2, run], a.W,
                 a.b_hn[run], a.z[0, run], a.z[1, run], a.z[2, run], a.h_new[run],
                 a.gate[0, run], a.gate[1, run], a.gate[2, run], a.gate[3, run], m, out)
    return step


@implements(skeleton.backward_step, Backward, BackwardResetBefore)
def _backward_step(cls):
    reset_after = cls is Backward

    def step(a, t, lo, n, m, dout):
        H = a.loop.H
        P, base = n * H, lo * H
        one = cast_like(a.work, 1.0)
        dh_skip, dh_new = a.work[0, base:base + P], a.work[1, base:base + P]
        d_rh, dh_q = a.work[2, base:base + P], a.work[3, base:base + P]
        dh = a.loop.carry[0, lo:lo + n].reshape(P)            # dL/dh_t from the step after
        r, u = a.gates[0, t, base:base + P], a.gates[1, t, base:base + P]
        n_gate, h_prev = a.gates[2, t, base:base + P], a.h_prevs[t, base:base + P]
        stash = a.stash[t, base:base + P]
        da_r, da_z, da_n = a.da[0, t, base:base + P], a.da[1, t, base:base + P], a.da[2, t, base:base + P]
        skeleton.split_gradient(m, dh, dout, dh_skip, dh_new)
        for k in range(P):
            # backprop through h_t = (1-z)*n + z*h_{t-1}, then through n = tanh(...) and z = sigmoid(...)
            da_n[k] = (dh_new[k] * (one - u[k])) * (one - n_gate[k] * n_gate[k])
            da_z[k] = (dh_new[k] * (h_prev[k] - n_gate[k])) * (u[k] * (one - u[k]))
            dh[k] = dh_new[k] * u[k]                          # the z*h_{t-1} path
        rows = (n, H)
        if reset_after:
            dah = a.dah_n[t, base:base + P]
            for k in range(P):
                # backprop through r * (h W_hn + b_hn), then through r = sigmoid(...)
                da_r[k] = (da_n[k] * stash[k]) * (r[k] * (one - r[k]))
                dah[k] = da_n[k] * r[k]
            gemm.dot(dah.reshape(rows), a.W_back[2], dh_q.reshape(rows), False)  # backprop through h W_hn
        else:
            gemm.dot(da_n.reshape(rows), a.W_back[2], d_rh.reshape(rows), False)  # backprop through (r*h) W_hn
            for k in range(P):
                da_r[k] = (d_rh[k] * h_prev[k]) * (r[k] * (one - r[k]))
                dh_q[k] = d_rh[k] * r[k]
        gemm.dot(da_r.reshape(rows), a.W_back[0], dh_q.reshape(rows), True)  # backprop through h W_hr
        gemm.dot(da_z.reshape(rows), a.W_back[1], dh_q.reshape(rows), True)  # ... and h W_hz
        for k in range(P):
            dh[k] += dh_q[k] + dh_skip[k]
    return step


class Step(skeleton.Step):
    """This cell's marker for skeleton.step_rows (the streaming step)."""


STEP = Step(n_gates=3, n_states=1)
skeleton.name_types("gru", Train, TrainResetBefore, Infer, InferResetBefore, Backward, BackwardResetBefore, Step)    # unique numba type names (see there)


@implements(skeleton.step_rows, Step)
def _step_rows(cls):
    def step(cell, x, pack, h, c, h_out, c_out, flag):
        """One GRU step over packed weights for every row (skeleton.step_rows):
        x (B, D), h (B, H) -> h_out (B, H); flag = reset_after."""
        reset_after = flag
        B, D = x.shape
        H = h.shape[1]
        bx, bh = D + H, D + H + 1
        A = np.empty((B, 3 * H), h.dtype)                          # (B, 3H) x W_x + biases, r z n
        HW = np.empty((B, 3 * H), h.dtype)                         # (B, 3H) h W_h (+ b_hn)
        rh = np.empty((B, H), h.dtype)                             # (B, H) r*h, without reset_after
        zero, half, one = cast_like(h, 0.0), cast_like(h, 0.5), cast_like(h, 1.0)
        rows = blas_rows(B, max(D, H), 3 * H)
        if rows == 0:
            for r in range(B):
                for j in range(3 * H):
                    A[r, j] = zero
                    HW[r, j] = zero
                accumulate(A, r, 0, 3 * H, x, r, pack, 0, 0)
                # without reset_after the n block of HW is (r*h) W_hn, below
                accumulate(HW, r, 0, 3 * H if reset_after else 2 * H, h, r, pack, D, 0)
        else:
            blas_dot_rows(x, pack[:D], A, rows)
            blas_dot_rows(h, pack[D:D + H], HW, rows)
        for r in range(B):
            # b_h joins the input side except, with reset_after, its n block (inside r * (...))
            for j in range(3 * H):
                inner = reset_after and j >= 2 * H
                A[r, j] += pack[bx, j] + (zero if inner else pack[bh, j])
                HW[r, j] += pack[bh, j] if inner else zero
            for j in range(2 * H):                                 # r, z: sigmoid
                A[r, j] = fast_tanh(half * (A[r, j] + HW[r, j])) * half + half
            if reset_after:
                for k in range(H):
                    A[r, 2 * H + k] = fast_tanh(A[r, 2 * H + k] + A[r, k] * HW[r, 2 * H + k])
            else:
                for k in range(H):
                    rh[r, k] = A[r, k] * h[r, k]
                for k in range(H):
                    HW[r, 2 * H + k] = zero
                accumulate(HW, r, 2 * H, H, rh, r, pack, D, 2 * H)   # (r*h) W_hn
                for k in range(H):
                    A[r, 2 * H + k] = fast_tanh(A[r, 2 * H + k] + HW[r, 2 * H + k])
            for k in range(H):                                     # h_t = (1-z)*n + z*h_{t-1}, into r's block
                A[r, k] = (one - A[r, H + k]) * A[r, 2 * H + k] + A[r, H + k] * h[r, k]
            for k in range(H):
                h_out[r, k] = A[r, k]
    return step


# ---- Python side ----------------------------------------------------------------------

class _GRU(skeleton.Cell):
    name, N_GATES, STATE_NAMES = "gru", N_GATES, STATE_NAMES

    def options(self, reset_after=True):
        return {"reset_after": _check_reset_after(reset_after)}

    def input_biases(self, b_x, b_h, H, dtype, opts):
        """With reset_after b_hn sits inside r * (h W_hn + b_hn), so only the
        r and z blocks of b_h join the input side; without, all of b_h does."""
        b_hn = np.zeros(H, dtype)
        if b_h is not None and opts["reset_after"]:
            b_hn = np.ascontiguousarray(b_h[2 * H:], dtype=dtype)
            b_h = np.concatenate([b_h[:2 * H], np.zeros(H, b_h.dtype)])
        b = b_x if b_h is None else b_h if b_x is None else b_x + b_h
        return b, b_hn

    def infer_args(self, loop, table, rows, W_h, inner_bias, opts, ws):
        H, B, dt = loop.H, rows.shape[1], table.dtype
        cls = Infer if opts["reset_after"] else InferResetBefore
        return cls(loop=loop, table=table, rows=rows, x_t=ws.empty((3, B * H), dt),
                   W=gemm.pack_gates(W_h, 3), b_hn=np.tile(inner_bias.astype(dt), B),
                   z=ws.empty((3, B * H), dt), gate=ws.empty((4, B * H), dt), h_new=ws.empty((B * H,), dt))

    def train(self, x, W_x, W_h, b_x, b_h, loop, plan, opts, cache, ws, n_threads):
        B, T, D = x.shape
        H, dt = W_h.shape[0], x.dtype
        b_outer, b_hn = self.input_biases(b_x, b_h, H, dt, opts)
        x_tm = support.time_major(x, workspace.lease)          # (T, B, D), kept for dW_x
        gates = workspace.lease((3, T, B * H), dt)
        h_prevs, stash = workspace.lease((T, B * H), dt), workspace.lease((T, B * H), dt)
        workspace.hold(cache, x_tm, gates, h_prevs, stash)
        xw = skeleton.input_projection(x_tm, W_x, b_outer, 3, ws.empty, n_threads).reshape(3, T, B * H)
        cache.update(x_tm=x_tm, W_x=W_x, W_h=W_h, gates=gates, h_prevs=h_prevs, stash=stash)
        cls = Train if opts["reset_after"] else TrainResetBefore
        return cls(loop=loop, xw=xw, W=gemm.pack_gates(W_h, 3), b_hn=np.tile(b_hn, B), gates=gates,
                   h_prevs=h_prevs, stash=stash, z=ws.empty((3, B * H), dt), h_new=ws.empty((B * H,), dt))

    def backward_args(self, cache, loop, ws):
        B, T, H, dt = cache["B"], cache["T"], cache["H"], cache["dtype"]
        reset_after = cache["opts"]["reset_after"]
        cls = Backward if reset_after else BackwardResetBefore
        return cls(loop=loop, gates=cache["gates"], h_prevs=cache["h_prevs"], stash=cache["stash"],
                   W_back=gemm.pack_rows_by_gate(cache["W_h"], 3), da=ws.empty((3, T, B * H), dt),
                   dah_n=ws.empty((T, B * H), dt) if reset_after else support.placeholder(dt, 2),
                   work=ws.empty((4, B * H), dt))

    def gradients(self, cache, a, ws, n_threads):
        B, T, D, H, dt = cache["B"], cache["T"], cache["D"], cache["H"], cache["dtype"]
        reset_after, da, dah_n = cache["opts"]["reset_after"], a.da, a.dah_n
        R = T * B
        da2 = da.reshape(3, R, H)
        # the input side, x W_x + b: dx = sum over gates of da_q W_xq^T, dW_x = x^T da
        dx_tm = ws.empty((R, D), dt)
        W_xT = gemm.pack_rows_by_gate(cache["W_x"], 3)         # per gate (H, D)
        for q in range(3):
            threads.matmul(da2[q], W_xT[q], dx_tm, n_threads, accumulate=q > 0)
        x2 = cache["x_tm"].reshape(R, D)
        dW_x = threads.gate_weight_gradients(x2, da2, n_threads)
        # the recurrent side: W_hr, W_hz multiplied h_{t-1}; W_hn multiplied h_{t-1}
        # (reset_after, its output's gradient r * dn) or r * h_{t-1} (its gradient dn)
        h_prevs = cache["h_prevs"].reshape(R, H)
        n_input = h_prevs if reset_after else cache["stash"].reshape(R, H)
        n_grad = dah_n.reshape(R, H) if reset_after else da2[2]
        dW_h = np.empty((H, 3 * H), dt)
        dW_h[:, :2 * H] = threads.gate_weight_gradients(h_prevs, da2[:2], n_threads)    # r, z
        dW_h[:, 2 * H:] = threads.weight_gradient(n_input, n_grad, n_threads)
        db_x = da2.sum(axis=1).reshape(3 * H)
        db_h = np.concatenate([db_x[:2 * H], n_grad.sum(axis=0)])
        return dict(x=support.batch_major(dx_tm.reshape(T, B * D), B), W_x=dW_x, W_h=dW_h,
                    b_x=db_x if cache["has_b_x"] else None, b_h=db_h if cache["has_b_h"] else None)


CELL = _GRU()


def forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, reset_after=True, need_cache=True, need_outputs=True):
    """Run the GRU over a whole sequence; see lstmkit.cells.gru.forward and
    skeleton.forward. Returns (hs (B, T, H), (h_T,), cache)."""
    return skeleton.forward(CELL, x, W_x, W_h, b_x, b_h, state0, mask, reverse, recurrent_mask,
                            need_cache, need_outputs, reset_after=reset_after)


def backward(dhs, dstate, cache):
    """Backpropagation through time for forward(); see lstmkit.cells.gru.backward."""
    return skeleton.backward(CELL, dhs, dstate, cache)


def project_table(E, W_x, b_x=None, b_h=None, reset_after=True, empty=None):
    """E (V, D) -> E W_x + b_x + b_h' (V, 3H), the table forward_lookup reads;
    b_h' is b_h without its n block when reset_after (forward_lookup adds b_hn
    inside r * (...) in the loop)."""
    return skeleton.project_table(CELL, E, W_x, b_x, b_h, empty, reset_after=reset_after)


def forward_lookup(ids, table, W_h, state0=None, mask=None, reverse=False, need_outputs=True,
                   b_h=None, reset_after=True):
    """Inference from token ids (B, T) through a table made by project_table
    with the same b_h and reset_after. Returns (hs (B, T, H) or None, (h_T,))."""
    return skeleton.forward_lookup(CELL, ids, table, W_h, state0, mask, reverse, need_outputs,
                                   b_h=b_h, reset_after=reset_after)
