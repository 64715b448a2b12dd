"""lk.config: one documented object for the engine's process-wide settings,
a per-thread context manager, and no setting of anyone else's changed
behind the user's back (BLAS threads, the floating-point mode)."""
import os
import threading

import numpy as np
import pytest

import lstmkit as lk
from lstmkit.kernels import lstm

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "lstmkit")


def test_defaults_set_and_errors():
    assert lk.config.threads >= 1 and lk.config.flush_denormals is True
    assert lk.config.reuse_buffers is True and lk.config.compile_ahead in (True, False)
    before = lk.config.threads
    try:
        lk.config.set(threads=3)
        assert lk.config.threads == 3
        lk.config.threads = 2                                  # attribute form of set()
        assert lk.config.threads == 2
    finally:
        lk.config.set(threads=before)
    with pytest.raises(ValueError, match="threads must be a positive integer; got 0"):
        lk.config.set(threads=0)
    with pytest.raises(ValueError, match="flush_denormals must be True or False"):
        lk.config.set(flush_denormals="yes")
    with pytest.raises(ValueError, match="no setting 'thread'"):
        lk.config.set(thread=1)
    with pytest.raises(AttributeError, match="no setting"):
        lk.config.nothing
    assert "threads=" in repr(lk.config)


def test_context_manager_is_per_thread_and_nests():
    base = lk.config.threads
    seen = {}

    def other():
        seen["other"] = lk.config.threads

    with lk.config(threads=base + 5):
        assert lk.config.threads == base + 5
        with lk.config(flush_denormals=False):
            assert lk.config.threads == base + 5 and lk.config.flush_denormals is False
        assert lk.config.flush_denormals is True
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen["other"] == base                               # another thread keeps the default
    assert lk.config.threads == base


def test_engine_calls_change_no_blas_setting():
    """The first version set every BLAS library to one thread for the whole
    process inside each forward and backward; now nothing in the library
    touches BLAS's threads (only the command line may, for its own run)."""
    import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS too)
    import threadpoolctl
    ctl = threadpoolctl.ThreadpoolController()
    before = [(lib.prefix, lib.num_threads) for lib in ctl.select(user_api="blas").lib_controllers]
    seen = []
    stop = threading.Event()

    def watch():                                               # what another thread sees meanwhile
        while not stop.is_set():
            seen.append([lib.num_threads for lib in
                         threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers])

    w = threading.Thread(target=watch)
    w.start()
    try:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((40, 50, 8)).astype(np.float32)
        W_x, W_h = (rng.standard_normal((k, 4 * 16)).astype(np.float32) for k in (8, 16))
        for _ in range(3):
            hs, st, cache = lstm.forward(x, W_x, W_h)
            lstm.backward(np.ones_like(hs), None, cache)
    finally:
        stop.set()
        w.join()
    after = [(lib.prefix, lib.num_threads) for lib in ctl.select(user_api="blas").lib_controllers]
    assert after == before
    assert all(s == [n for _, n in before] for s in seen)
    for dirpath, _, files in os.walk(SRC):                     # and no library module asks for it
        for f in files:
            if f.endswith(".py") and "cli" not in dirpath.split(os.sep):
                with open(os.path.join(dirpath, f)) as fh:
                    text = fh.read()
                assert "threadpool_limits" not in text and "set_num_threads" not in text, f


def test_layer_names_are_unique_across_threads():
    lk.layers.Layer.reset_names()
    names = []

    def build():
        for _ in range(50):
            names.append(lk.Dense(2).name)

    ts = [threading.Thread(target=build) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(set(names)) == 200
    lk.layers.Layer.reset_names()
    assert lk.Dense(2).name == "dense"
