"""The fast engine: compiled, fused Numba kernels for the whole time loop.

Each cell module here (lstm, gru, simple_rnn) has the contract of its
reference twin in ``lstmkit.cells`` (forward, backward, N_GATES, STATE_NAMES,
GATE_NAMES) plus folded-embedding inference (project_table, forward_lookup);
the time loops and the wrappers around them are written once, in
skeleton.py, and each cell adds its gate math and cache layout. The
reference engine stays the ground truth. See docs/kernels.md.
"""
from . import ahead, cache

ahead.prestart()               # first run of this lstmkit (no cache folder yet): the helper starts importing now
cache.install()                # before any kernel is decorated: where compiled kernels live

from . import inner  # noqa: E402

inner.install()                # inner functions compiled once, inside their callers

from . import gru, lstm, simple_rnn  # noqa: E402

KERNELS = {"lstm": lstm, "gru": gru, "simple_rnn": simple_rnn}
