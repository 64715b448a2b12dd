"""BLAS threads for the command line.

The matrices of these models are small (a batch of 32 by a few hundred
units), and OpenBLAS's thread hand-offs cost more than they save on them; on
a busy two-core machine its spinning threads made training up to 20 times
slower than one thread (measured: 29 s vs 1.4 s for the same 8 batches).
So the command runs BLAS on one thread unless the user chose otherwise
through OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS or
--blas-threads. threadpoolctl (installed with scikit-learn) does the switch
at run time; without it the setting is left alone.
"""
import contextlib
import os

ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads(n=None):
    """Context manager limiting BLAS to n threads (default: 1 unless set in the environment)."""
    if n is None:
        if any(os.environ.get(v) for v in ENV_VARS):
            return contextlib.nullcontext()
        n = 1
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")
