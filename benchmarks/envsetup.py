"""Thread and BLAS settings; import before numpy, torch or numba.

Every framework gets 2 threads. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, set on
some machines, make a current numpy's OpenBLAS pick slower kernels: they are
removed for the run (what was there is recorded in the results).
"""
import os

THREADS = 2
REMOVED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def apply(threads=THREADS):
    """Set the environment; returns what it changed, for the record. The
    lstmkit of this checkout (src/) comes first on the path, for this process
    and the memory subprocesses."""
    import sys
    if SRC not in sys.path:
        sys.path.insert(0, SRC)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if SRC not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([SRC] + paths)
    before = {k: os.environ.get(k) for k in REMOVED + THREAD_VARS}
    for k in REMOVED:
        os.environ.pop(k, None)
    for k in THREAD_VARS:
        os.environ[k] = str(threads)
    return {"before": before, "threads": threads}


def limit_threads(threads=THREADS):
    """After imports: pin each library's thread pool (torch, numba, BLAS)."""
    info = {}
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
        threadpool_limits(threads)
        # NumPy's BLAS serves only lstmkit here (torch and ONNX Runtime bring their own). lstmkit's two
        # threads are its Numba pool; a second pool of two spinning OpenBLAS threads beside it slows
        # the dense heads (D: 185 -> 140 ms, same run). The library leaves BLAS alone (issue 10); a user
        # sets it as the CLI does (--blas-threads, default 1), and so does this harness.
        threadpool_limits(1, user_api='blas')
        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "prefix", "version",
                                                      "architecture", "num_threads")}
                               for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed; env vars only"
    try:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        info["numba_threads"] = numba.get_num_threads()
        info["numba_threading_layer"] = numba.config.THREADING_LAYER
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(threads)
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info
