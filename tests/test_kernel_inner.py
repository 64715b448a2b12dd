"""Inner functions compiled once, inside their callers (kernels/inner.py):
no machine code of their own, the callers' results unchanged bit for bit."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from numba import njit, types
from numba.extending import overload

from lstmkit.kernels import inner


def test_in_use():
    assert inner.in_use()


def _library(dispatcher, sig):
    return dispatcher.overloads[sig].library


def _double_plus_one(x):
    """A stand-in for a cell's step: implemented by an overload below."""


@overload(_double_plus_one)
def _step_impl(x):
    def impl(x):
        return x * 2 + 1
    return impl


def test_an_inner_function_is_linked_into_its_caller_without_machine_code_of_its_own(monkeypatch):
    seen = []
    real = inner._is_inner

    def spy(library, fndesc):
        answer = real(library, fndesc)
        if answer:
            seen.append(library)
        return answer
    monkeypatch.setattr(inner, "_is_inner", spy)
    monkeypatch.setattr(inner, "PACKAGE", __name__)           # this file's overload counts as a kernel step
    monkeypatch.setattr(inner, "STEPS", ("_step_impl.",))

    @njit
    def caller(x):
        return _double_plus_one(x) + _double_plus_one(x)

    assert caller(np.int16(3)) == 14
    assert len(seen) == 1
    lib = seen[0]
    assert getattr(lib, inner._FLAG) is not None              # linkable IR only, never made machine code
    assert lib._finalized
    # asking for its machine code after all finishes it the usual way
    name = next(f.name for f in lib.get_defined_functions() if "impl" in f.name)
    assert lib.get_pointer_to_function(name) != 0
    assert getattr(lib, inner._FLAG) is None


def test_functions_outside_the_kernels_are_left_alone():
    @njit
    def plain(x):
        return x + 1

    @njit
    def outer(x):
        return plain(x) * 2

    assert outer(3) == 8
    assert plain(3) == 4                                       # its own entry point works as ever
    lib = _library(plain, (types.int64,))
    assert getattr(lib, inner._FLAG, None) is None


CHILD = r"""
import hashlib, json, sys
import numpy as np
from lstmkit.kernels import inner, lstm
from lstmkit.kernels import policy
from lstmkit.settings import config
# No compile-ahead helper: it could fill the empty cache first, and machine code
# loaded from a cache cannot be inspected (numba returns an empty listing).
config.set(compile_ahead=False)
rng = np.random.default_rng(0)
B, T, D, H = 6, 9, 5, 32
x = rng.standard_normal((B, T, D)).astype(np.float32)
W_x = (rng.standard_normal((D, 4 * H)) / 3).astype(np.float32)
W_h = (rng.standard_normal((H, 4 * H)) / 3).astype(np.float32)
b = (rng.standard_normal(4 * H) / 3).astype(np.float32)
E = rng.standard_normal((50, D)).astype(np.float32)
ids = rng.integers(0, 50, size=(B, T))
h = hashlib.sha256()
with policy.forced(fuse_input=True):
    hs, st, cache = lstm.forward(x, W_x, W_h, b, b)
    g = lstm.backward(np.ones_like(hs), None, cache)
for a in (hs, *st, g["x"], g["W_x"], g["W_h"], g["b_x"]):
    h.update(np.ascontiguousarray(a).tobytes())
hs2, st2 = lstm.forward_lookup(ids, lstm.project_table(E, W_x, b, b), W_h)
for a in (hs2, *st2):
    h.update(np.ascontiguousarray(a).tobytes())
from lstmkit.kernels import skeleton
listing = {k.__name__: "".join(c.library.get_asm_str() for c in k.overloads.values())
           for k in (skeleton.forward_rows, skeleton.backward_rows, skeleton.infer_rows)}
asm = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in listing.items()}
lines = {k: v.count("\n") for k, v in listing.items()}
print(json.dumps(dict(in_use=inner.in_use(), digest=h.hexdigest(), asm=asm, lines=lines)))
"""


@pytest.mark.slow
def test_results_are_the_same_bits_with_and_without(tmp_path):
    """The LSTM's training forward, backward and folded inference, compiled
    from an empty cache with inner libraries and without: identical bits; and
    the inference loop, which has no inner library, the same machine code."""
    out = {}
    for flag in ("1", "0"):
        env = dict(os.environ, LSTMKIT_INNER_LIBRARIES=flag, LSTMKIT_CACHE_DIR=str(tmp_path / flag))
        p = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env,
                           timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]
        out[flag] = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["1"]["in_use"] and not out["0"]["in_use"]
    for flag in out:                                          # real listings, not the cached-code placeholder
        assert min(out[flag]["lines"].values()) > 1000, out[flag]["lines"]
    assert out["1"]["digest"] == out["0"]["digest"]
    assert out["1"]["asm"]["infer_rows"] == out["0"]["asm"]["infer_rows"]
    assert out["1"]["asm"]["forward_rows"] != out["0"]["asm"]["forward_rows"]   # the training loops did change
