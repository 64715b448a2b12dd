"""The fast engine: compiled, fused Numba kernels for the whole time loop.

Each module here mirrors a module of ``lstmkit.cells`` with the same
forward/backward contract (plus a streaming step()); the reference engine
stays the ground truth. See docs/kernels.md.
"""
from . import gru, lstm, simple_rnn

KERNELS = {"lstm": lstm, "gru": gru, "simple_rnn": simple_rnn}
