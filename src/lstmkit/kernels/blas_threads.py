"""One BLAS thread inside the engine; the engine makes its own threads.

BLAS is called in two places: per step inside the compiled loops (numba's
np.dot, SciPy's OpenBLAS) and for the whole-sequence products around them
(NumPy's OpenBLAS). On this machine, shared with other processes, OpenBLAS's
own threads wait for each other whenever a core is busy elsewhere: the same
per-step product (64 x 512) x (512 x 2048) took 2.3 to 94 ms with two BLAS
threads and a steady 1.7 ms with one; the projection x W_x at B = 32 went
from 2 us to 120 us per step (median). So inside forward() and backward()
every BLAS runs on one thread, and the parallelism comes from the engine's
own threads, which share no work and never wait on each other: batch row
chunks for the loops (support.run_chunks) and independent products for the
whole-sequence work (support.run_tasks).

This needs threadpoolctl; without it the context does nothing and BLAS keeps
its default threads.
"""
import threading
from contextlib import contextmanager

try:
    import threadpoolctl
except ImportError:                                            # optional
    threadpoolctl = None

_libs = None
_lock = threading.Lock()
_depth = 0
_saved = []


def _blas_libs():
    global _libs
    if _libs is None:
        # numba's np.dot calls SciPy's BLAS, NumPy's products its own; load
        # SciPy's first so that the controller sees both
        import scipy.linalg.cython_blas  # noqa: F401
        _libs = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    return _libs


@contextmanager
def single_threaded_blas():
    """Every BLAS library on one thread inside the block (re-entrant, thread-safe);
    the previous thread counts come back when the outermost block exits."""
    global _depth, _saved
    if threadpoolctl is None:
        yield
        return
    with _lock:
        if _depth == 0:
            _saved = [(lib, lib.num_threads) for lib in _blas_libs()]
            for lib, _ in _saved:
                lib.set_num_threads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, n in _saved:
                    lib.set_num_threads(n)
