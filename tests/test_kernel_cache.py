"""Where compiled kernels are kept and when they are stale (kernels/cache.py),
saves into the cache from two processes at once, and the claims that keep
two processes from compiling the same kernel (kernels/ahead.py)."""
import os
import shutil
import threading
import time

import numpy as np
import pytest

from lstmkit.kernels import ahead, cache, skeleton


def test_kernels_use_lstmkit_cache_folder():
    assert skeleton.forward_rows._cache._cache_path == cache.cache_dir()
    assert os.path.basename(cache.cache_dir()).endswith(cache.SOURCE_STAMP.hex()[:16])
    from lstmkit.kernels import gemm, lstm
    assert gemm.dot_rows._cache._cache_path == cache.cache_dir()
    assert lstm._update_state._cache._cache_path == cache.cache_dir()


def test_an_edit_to_any_kernel_file_makes_every_kernel_stale(tmp_path):
    """numba stamps a cached function with its own file only; the kernels
    compile in code from other files, so the stamp is all of them."""
    copy = tmp_path / "kernels"
    shutil.copytree(cache.HERE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert cache._compute_stamp(str(copy)) == cache.SOURCE_STAMP
    with open(copy / "activations.py", "a") as f:             # a file no loop is defined in
        f.write("\n# an edit\n")
    assert cache._compute_stamp(str(copy)) != cache.SOURCE_STAMP


def test_two_saves_at_once_keep_their_own_entries(tmp_path, monkeypatch):
    """numba picks a data file number from the index it read; two processes
    saving versions of one function at once picked the same number, and one's
    code was filed under the other's signature. Saves into the kernel cache
    hold a lock: slowed down so that they overlap, each still gets its own."""
    from numba.core import caching
    monkeypatch.setattr(cache, "cache_dir", lambda: str(tmp_path))
    original = caching.IndexDataCacheFile.save.__wrapped__
    real_load = caching.IndexDataCacheFile._load_index

    def slow_load(self):                                       # widen the read-then-write window
        overloads = real_load(self)
        time.sleep(0.2)
        return overloads
    monkeypatch.setattr(caching.IndexDataCacheFile, "_load_index", slow_load)

    def run(save):
        files = [caching.IndexDataCacheFile(str(tmp_path), f"f-{save.__name__}", b"stamp") for _ in range(2)]
        ts = [threading.Thread(target=save, args=(files[i], f"key{i}", f"data{i}")) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return [files[0].load(f"key{i}") for i in range(2)]

    assert run(caching.IndexDataCacheFile.save) == ["data0", "data1"]   # with the lock
    assert run(original) != ["data0", "data1"]                          # numba's own: an entry lost or crossed


def test_claims(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "cache_dir", lambda: str(tmp_path))
    calls = []
    assert ahead.run("k1-test", lambda: calls.append(1) or "first") == "first"
    assert os.path.exists(tmp_path / "claims" / "k1-test.done")
    assert ahead.run("k1-test", lambda: "again") == "again"           # ready in this process
    # a kernel another (live) process claimed: skipped with wait=False
    with open(tmp_path / "claims" / "k2-test.claim", "w") as f:
        f.write(str(os.getppid()))
    assert ahead.run("k2-test", lambda: "mine", wait=False) is None
    # a claim by a process that has died is taken over
    with open(tmp_path / "claims" / "k3-test.claim", "w") as f:
        f.write("999999999")
    assert ahead.run("k3-test", lambda: "taken over") == "taken over"
    # an error leaves no claim behind
    def boom():
        raise RuntimeError("compile failed")
    try:
        ahead.run("k4-test", boom)
    except RuntimeError:
        pass
    assert not os.path.exists(tmp_path / "claims" / "k4-test.claim")


def test_argument_classes_pickle_by_reference():
    """numba's cache index pickles each compiled loop's argument types. A
    class pickle cannot find under its module and name (skeleton.name_types
    renames them) went by value: read back in the next process it was a new
    class, no entry matched, and every loop compiled again at each start,
    4 s before the first batch with a warm cache."""
    import pickle

    from lstmkit.kernels import KERNELS
    classes = [c for mod in KERNELS.values() for c in vars(mod).values()
               if isinstance(c, type) and issubclass(c, tuple) and hasattr(c, "_fields")]
    assert len(classes) >= 18
    for cls in classes + [skeleton.Loop]:
        # plain pickle: by reference or not at all (numba's cloudpickle falls
        # back to by value, which in the same process even reads back as cls)
        assert pickle.loads(pickle.dumps(cls)) is cls, cls.__qualname__


CHILD = r"""
import numpy as np
import pytest
import lstmkit as lk
from lstmkit.kernels import ahead
rng = np.random.default_rng(0)
x, y = rng.integers(1, 20, size=(16, 5)), rng.integers(0, 2, size=16).astype(float)
m = lk.Sequential([lk.Embedding(20, 4, input_length=5), lk.LSTM(6, engine="fast"),
                   lk.Dense(1, activation="sigmoid")], seed=1)
m.compile(optimizer=lk.Adam(0.01), loss="binary_crossentropy")
m.fit(x, y, epochs=1, batch_size=8, verbose=0, validation_split=0.25)
m.predict(x)
for p in ahead.helpers().values():            # the helper's kernels saved too
    p.wait()
"""


@pytest.mark.slow
def test_a_second_process_compiles_nothing():
    """A fit and predict run twice in fresh processes: the second loads every
    kernel from the cache and saves none (NUMBA_DEBUG_CACHE logs each save)."""
    import subprocess
    import sys
    from pathlib import Path
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=src, NUMBA_DEBUG_CACHE="1")
    logs = [subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                           timeout=600) for _ in range(2)]
    for r in logs:
        assert r.returncode == 0, r.stderr[-2000:]
    second = logs[1].stdout + logs[1].stderr
    assert "data loaded" in second
    assert "data saved" not in second, [ln for ln in second.splitlines() if "saved" in ln]


def test_no_two_kernels_share_a_qualified_name():
    """numba names machine code after module, qualified name, argument types
    and a per-process counter. Two different functions with one qualified name
    (closures from one factory) compiled by two processes into the cache can get
    the same symbol, and a loop loaded from the cache then calls the wrong one
    (the GRU's reset_before/reset_after steps did). So every compiled function
    the kernel modules hold, directly or in a module-level dict, has its own."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import lstmkit.kernels as package

    seen = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        values = []
        for value in vars(module).values():
            values.extend(value.values() if isinstance(value, dict) else [value])
        for value in values:
            if isinstance(value, CPUDispatcher):
                f = value.py_func
                key = (f.__module__, f.__qualname__)
                assert seen.setdefault(key, f) is f, f"two kernels named {key}"
    assert ("lstmkit.kernels.gru", "gru_step_reset_before") in seen
    assert len(seen) > 20
