"""The math of each recurrent cell, reference engine (plain NumPy).

Every cell module exposes the same contract, shared with the fast engine in
``lstmkit.kernels``:

    forward(x, W_x, W_h, b_x=None, b_h=None, state0=None, mask=None, reverse=False,
            recurrent_mask=None, **options)
        -> (hs, final_state_tuple, cache)
    backward(dhs, dstate, cache) -> dict(x, W_x, W_h, b_x, b_h, state0)

plus N_GATES, STATE_NAMES and GATE_NAMES. x is batch-major (B, T, D).
"""
from . import gru, lstm, simple_rnn

CELLS = {"lstm": lstm, "gru": gru, "simple_rnn": simple_rnn}
