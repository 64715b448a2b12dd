"""Single-threaded BLAS around the kernels' whole-sequence products, for small
hidden sizes.

The products outside the time loop (x W_x for all steps, the weight
gradients) are thin: 32..128 columns, tens of thousands of rows. With
NumPy's default of one BLAS thread per core they gain little on an idle
machine, and on a busy one (other processes on the two cores) OpenBLAS's
threads wait for each other: measured medians went from 2 us to 120 us per
step for the same product. So for H < MULTITHREAD_MIN_HIDDEN they run on one
thread; the large-H case keeps BLAS's threads, where the work pays for them.

This needs threadpoolctl; without it the context does nothing.
"""
import threading
from contextlib import contextmanager

try:
    import threadpoolctl
except ImportError:                                            # optional
    threadpoolctl = None

MULTITHREAD_MIN_HIDDEN = 256

_libs = None
_lock = threading.Lock()
_depth = 0
_saved = []


def _blas_libs():
    global _libs
    if _libs is None:
        _libs = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    return _libs


@contextmanager
def single_threaded_blas(hidden):
    """One BLAS thread inside the block when hidden < MULTITHREAD_MIN_HIDDEN."""
    global _depth, _saved
    if threadpoolctl is None or hidden >= MULTITHREAD_MIN_HIDDEN:
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
