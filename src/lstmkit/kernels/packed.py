"""The compiled entry points of one recurrent step over packed weights: what
RNNLayer.step and RNNLayer.stream (layers/stream.py) call. The step math is
each cell's `step_rows` (skeleton.step_rows); the checks and the state
handling around it are written once here, `stream` and `step`, and bound to
each cell by a one-line entry point per cell (the layers call them with the
cell's arity, and a constant marker picks the cell's math at compile time):

  stream_<cell>(x, pack, state, y, flag): state (S, B, H), the stream's own
      stacked state (h, then c for the LSTM), written in place; y (B, H)
      receives h_t;
  step_<cell>(x, pack, h[, c], h_out[, c_out], flag): the layer.step form,
      the state as separate arrays; the outputs may be the inputs.
flag: GRU reset_after, simple RNN relu; unused by the LSTM.

One packed weight array instead of W_x, W_h, b_x, b_h: each array argument of
a compiled call costs its unboxing (about 0.06-0.1 us) at every step.
"""
import numpy as np
from numba import from_dtype, njit, types

from . import gru, lstm, simple_rnn
from .skeleton import step_rows

_JIT = dict(cache=True, nogil=True, error_model="numpy")

_SHAPE_ERROR = "step: shapes of x_t, state, weights or out do not agree"


@njit(**_JIT)
def _shapes_agree(cell, x, pack, B, H):
    D = x.shape[1]
    return x.shape[0] == B and pack.shape[0] == D + H + 2 and pack.shape[1] == cell.n_gates * H


@njit(**_JIT)
def stream(cell, x, pack, state, y, flag):
    """x (B, D), state (S, B, H) updated in place; y (B, H) <- h_t."""
    B, H = y.shape
    S = cell.n_states
    if not (_shapes_agree(cell, x, pack, B, H) and state.shape[0] == S and state.shape[1] == B
            and state.shape[2] == H):
        raise ValueError(_SHAPE_ERROR)
    h, c = state[0], state[S - 1]                              # c is h for one-state cells
    step_rows(cell, x, pack, h, c, h, c, flag)
    for r in range(B):
        for k in range(H):
            y[r, k] = h[r, k]


@njit(**_JIT)
def step(cell, x, pack, h, c, h_out, c_out, flag):
    """x (B, D), h, c (B, H) -> h_out, c_out (B, H) (c, c_out: h, h_out for one-state cells)."""
    B, H = h.shape
    if not (_shapes_agree(cell, x, pack, B, H) and c.shape == h.shape and h_out.shape == h.shape
            and c_out.shape == h.shape):
        raise ValueError(_SHAPE_ERROR)
    step_rows(cell, x, pack, h, c, h_out, c_out, flag)


_LSTM, _GRU, _RNN = lstm.STEP, gru.STEP, simple_rnn.STEP


@njit(**_JIT)
def stream_lstm(x, pack, state, y, flag):
    stream(_LSTM, x, pack, state, y, flag)


@njit(**_JIT)
def stream_gru(x, pack, state, y, flag):
    stream(_GRU, x, pack, state, y, flag)


@njit(**_JIT)
def stream_simple_rnn(x, pack, state, y, flag):
    stream(_RNN, x, pack, state, y, flag)


@njit(**_JIT)
def step_lstm(x, pack, h, c, h_out, c_out, flag):
    step(_LSTM, x, pack, h, c, h_out, c_out, flag)


@njit(**_JIT)
def step_gru(x, pack, h, h_out, flag):
    step(_GRU, x, pack, h, h, h_out, h_out, flag)


@njit(**_JIT)
def step_simple_rnn(x, pack, h, h_out, flag):
    step(_RNN, x, pack, h, h, h_out, h_out, flag)


STREAM = {"lstm": stream_lstm, "gru": stream_gru, "simple_rnn": stream_simple_rnn}
STEP = {"lstm": step_lstm, "gru": step_gru, "simple_rnn": step_simple_rnn}
N_STATES = {"lstm": 2, "gru": 1, "simple_rnn": 1}


def _array(dtype, ndim):
    return types.Array(from_dtype(np.dtype(dtype)), ndim, "C")


def stream_entry(cell, dtype):
    """The compiled stream kernel of a cell for one dtype, as a plain callable
    without numba's dispatcher: the dispatcher types every argument at every
    call (0.33 us for this call); the caller checks the arrays it passes
    instead -- an array of another dtype, rank or layout would be misread.
    Loaded from numba's disk cache or compiled on first use."""
    A2, A3 = _array(dtype, 2), _array(dtype, 3)
    return STREAM[cell].compile((A2, A2, A3, A2, types.boolean))


_step_kernels = {}


def step_kernel(cell, dtype):
    """The layer.step kernel of a cell for one dtype: a dispatcher of its own
    that holds the one signature (C arrays of dtype) with compiling switched
    off, so a call with anything else -- another dtype, a strided view, a
    read-only array -- raises TypeError instead of compiling another
    specialisation; the layer then converts or reports. Its typing of the six
    arrays costs less than checking them in Python."""
    key = (cell, np.dtype(dtype))
    d = _step_kernels.get(key)
    if d is None:
        d = njit(**_JIT)(STEP[cell].py_func)
        A2 = _array(dtype, 2)
        n = N_STATES[cell]
        d.compile((A2, A2) + (A2,) * (2 * n) + (types.boolean,))
        d.disable_compile()
        _step_kernels[key] = d
    return d
