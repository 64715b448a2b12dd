"""The fast engine's building blocks: the tanh approximation and the
floating-point mode, plus the helpers the per-cell test files share
(fast engine == reference engine on generated data)."""
import numpy as np
import pytest
from numba import njit

from lstmkit.kernels import lstm as fast_lstm
from lstmkit.kernels.activations import fast_tanh, tanh_rational_f32

# fast == reference: max |fast - ref| <= TOL * max(1, max |ref|), per array
TOL = {np.float32: 1e-5, np.float64: 1e-10}


def assert_close(fast, ref, dtype, what):
    if ref is None:
        assert fast is None, f"{what}: reference is None but fast engine returned an array"
        return
    assert fast is not None, f"{what}: fast engine returned None"
    assert fast.shape == ref.shape, f"{what}: shape {fast.shape} != {ref.shape}"
    assert fast.dtype == ref.dtype, f"{what}: dtype {fast.dtype} != {ref.dtype}"
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    err = float(np.abs(fast.astype(np.float64) - ref.astype(np.float64)).max(initial=0.0))
    assert err <= TOL[dtype] * scale, f"{what}: max error {err:.3g} (scale {scale:.3g})"


def make_case(dtype, B, T, D, H, n_gates, n_states, seed=0, b_x=True, b_h=True):
    rng = np.random.default_rng(seed)
    def r(*shape, s=1.0):
        return (rng.standard_normal(shape) * s).astype(dtype)
    return dict(x=r(B, T, D), W_x=r(D, n_gates * H, s=0.5), W_h=r(H, n_gates * H, s=0.5),
                b_x=r(n_gates * H, s=0.3) if b_x else None, b_h=r(n_gates * H, s=0.3) if b_h else None,
                state0=tuple(r(B, H) for _ in range(n_states)), dhs=r(B, T, H),
                dstate=tuple(r(B, H) for _ in range(n_states)))


def compare_engines(ref, fast, case, dtype, mask=None, reverse=False, use_dhs=True,
                    dstate_used=None, **options):
    """Run both engines forward and backward on case; assert every output and gradient agrees."""
    args = (case["x"], case["W_x"], case["W_h"], case["b_x"], case["b_h"], case["state0"])
    hs_r, st_r, cache_r = ref.forward(*args, mask=mask, reverse=reverse, **options)
    hs_f, st_f, cache_f = fast.forward(*args, mask=mask, reverse=reverse, **options)
    assert_close(hs_f, hs_r, dtype, "outputs")
    for i, (a, b) in enumerate(zip(st_f, st_r)):
        assert_close(a, b, dtype, f"final state {i}")
    dhs = case["dhs"] if use_dhs else None
    dstate = case["dstate"]
    if dstate_used is not None:
        dstate = tuple(d if keep else None for d, keep in zip(dstate, dstate_used))
    g_r = ref.backward(dhs, dstate, cache_r)
    g_f = fast.backward(dhs, dstate, cache_f)
    for k in ("x", "W_x", "W_h", "b_x", "b_h"):
        assert_close(g_f[k], g_r[k], dtype, f"gradient {k}")
    for i, (a, b) in enumerate(zip(g_f["state0"], g_r["state0"])):
        assert_close(a, b, dtype, f"gradient state0[{i}]")


def mask_with_padding(B, T, seed=1):
    """A mask with trailing padding, a whole row masked and one hole mid-sequence."""
    rng = np.random.default_rng(seed)
    m = np.ones((B, T), np.float32)
    for b in range(B):
        m[b, rng.integers(1, T + 1):] = 0                      # trailing padding
    m[0] = 0                                                   # a whole row masked
    if B > 2 and T > 3:
        m[2, 1] = 0                                            # a hole
        m[2, 2:] = 1
    return m


@njit(cache=True, error_model="numpy")
def _compiled_tanh(x, out):
    for i in range(x.size):
        out[i] = fast_tanh(x[i])


def _float32_grid():
    # dense around 0 and the clamp, logarithmic over the whole float32 range, and the ends
    dense = np.linspace(-12, 12, 2_000_001, dtype=np.float32)
    tiny = np.geomspace(np.float32(1e-38), np.float32(3e38), 200_000).astype(np.float32)
    return np.concatenate([dense, tiny, -tiny, np.float32([0, np.inf, -np.inf])])


def test_tanh_float32_max_error_over_the_float_range():
    x = _float32_grid()
    exact = np.tanh(x.astype(np.float64))
    out = np.empty_like(x)
    _compiled_tanh(x, out)
    err = np.abs(out.astype(np.float64) - exact)
    assert err.max() < 4e-7, f"max abs error {err.max():.3g} at x={x[err.argmax()]}"
    small = np.abs(x) < 1
    rel = err[small & (x != 0)] / np.abs(exact[small & (x != 0)])
    assert rel.max() < 2.5e-7                                  # about 2 ulp
    assert np.abs(out).max() <= 1.0                            # sigmoid stays in [0, 1]
    np.testing.assert_array_equal(out, tanh_rational_f32(x))  # the documented formula is the compiled one


def test_tanh_float64_is_libm_exact():
    x = np.linspace(-30, 30, 200_001)
    out = np.empty_like(x)
    _compiled_tanh(x, out)
    assert np.abs(out - np.tanh(x)).max() <= 2.3e-16


def test_tanh_propagates_nan():
    out = np.empty(1, np.float32)
    _compiled_tanh(np.float32([np.nan]), out)
    assert np.isnan(out[0])


@pytest.mark.parametrize("flush", [True, False])
def test_floating_point_mode_is_restored_after_a_kernel(flush):
    import lstmkit as lk
    case = make_case(np.float32, 2, 3, 2, 3, 4, 2)
    with lk.config(flush_denormals=flush):
        hs, st, cache = fast_lstm.forward(case["x"], case["W_x"], case["W_h"], case["b_x"], case["b_h"])
        fast_lstm.backward(case["dhs"], None, cache)
    # subnormal arithmetic outside the kernel still works (FTZ/DAZ did not leak)
    assert np.float32(1e-38) * np.float32(0.25) != 0
    assert np.float32(3e-39) + np.float32(0) != 0


def test_workspace_leases_and_returns_buffers():
    import gc

    import lstmkit as lk
    from lstmkit.kernels import skeleton, workspace
    workspace.clear()
    gc.collect()
    out = workspace.pooled_bytes()[1]                           # leased by others (a live model's fold table)
    shape = (workspace.MIN_BYTES // 4 + 1,)
    a = workspace.lease(shape, np.float32)
    b = workspace.lease(shape, np.float32)
    assert not np.shares_memory(a, b)                           # two leases, two buffers
    assert a.ctypes.data % workspace.ALIGN == 0 == b.ctypes.data % workspace.ALIGN  # on cache lines
    a_raw = workspace._leased[id(a)]
    workspace.release(a)
    c = workspace.lease(shape, np.float32)
    assert workspace._leased[id(c)] is a_raw                    # given back, then reused
    workspace.release(b, c, None, np.zeros(3))                  # others (and None) are ignored
    assert workspace.pooled_bytes() == (2 * a.nbytes, out)
    with workspace.scope() as ws:
        d = ws.empty(shape, np.float32)
        assert workspace.pooled_bytes()[1] == out + d.nbytes
    assert workspace.pooled_bytes() == (2 * a.nbytes, out)       # the scope gave it back
    owner = skeleton.Cache()
    e = workspace.lease(shape, np.float32)
    workspace.hold(owner, e)
    del owner
    gc.collect()
    assert workspace.pooled_bytes()[1] == out                   # held until its owner went
    with lk.config(reuse_buffers=False):
        f = workspace.lease(shape, np.float32)
        assert id(f) not in workspace._leased and workspace.pooled_bytes()[1] == out
        assert f.ctypes.data % workspace.ALIGN == 0
    with lk.config(pool_max_bytes=0):
        g = workspace.lease(shape, np.float32)
        workspace.clear()
        workspace.release(g)
        assert workspace.pooled_bytes() == (0, out)             # over the limit: let go
    workspace.clear()


def test_outputs_of_two_calls_do_not_share_memory():
    from lstmkit.kernels import workspace
    case = make_case(np.float32, 8, 200, 8, 48, 4, 2)          # big enough for pooled arrays
    args = (case["x"], case["W_x"], case["W_h"], case["b_x"], case["b_h"])
    hs1, _, cache1 = fast_lstm.forward(*args)
    first = hs1.copy()
    hs2, _, cache2 = fast_lstm.forward(case["x"] * np.float32(0.5), *args[1:])
    np.testing.assert_array_equal(hs1, first)
    g1 = fast_lstm.backward(case["dhs"], None, cache1)
    g2 = fast_lstm.backward(case["dhs"], None, cache2)
    assert not np.shares_memory(g1["x"], g2["x"])
    assert not np.shares_memory(hs1, hs2)
    for a in (hs1, hs2, g1["x"], g2["x"], g1["W_h"]):          # nothing leased is handed out
        assert id(a) not in workspace._leased and (a.base is None or id(a.base) not in workspace._leased)


def test_specialisations_are_the_ones_each_path_needs():
    """Masks, missing biases, missing gradients, reverse and the cell options
    are runtime values, not new numba types: each loop has one compiled
    version per (argument class, dtype) -- the classes being the paths
    (fused or not, the GRU's two forms), and for inference the table's rank."""
    from lstmkit.kernels import KERNELS, policy, skeleton
    for mod in KERNELS.values():
        for dtype in (np.float32, np.float64):
            G, S = mod.N_GATES, len(mod.STATE_NAMES)
            for fuse in (True, False):
                for kw in (dict(b_x=False, b_h=False), dict()):
                    c = make_case(dtype, 2, 3, 2, 3, G, S, **kw)
                    with policy.forced(fuse_input=fuse):
                        hs, st, cache = mod.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"],
                                                    mask=mask_with_padding(2, 3), reverse=fuse)
                        mod.backward(None if fuse else c["dhs"], None, cache)
                        mod.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], need_cache=False)
                    table = mod.project_table(c["x"][0], c["W_x"])
                    mod.forward_lookup(np.zeros((2, 3), np.int64), table, c["W_h"], need_outputs=False)
    for loop in (skeleton.forward_rows, skeleton.backward_rows, skeleton.infer_rows):
        keys = []
        for sig in loop.signatures:
            a = sig[2]                                          # (lo, hi, a)
            table = a.types[a.fields.index("table")] if "table" in a.fields else None
            keys.append((a.instance_class, a.types[0].types[a.types[0].fields.index("carry")].dtype,
                         None if table is None else table.ndim))
        assert len(keys) == len(set(keys)), f"{loop.__name__}: more than one version of a path: {keys}"
    classes = {k[0].__name__.split("_", 1)[1] for k in keys}      # lstm_Infer -> Infer (skeleton.name_types)
    assert {"Infer", "InferResetBefore"} & classes


def test_aligned_zeros():
    from lstmkit.kernels import workspace
    for dtype in (np.float32, np.float64):
        for shape in [(3, 5), (1,), (2, 3, 7)]:
            a = workspace.aligned_zeros(shape, dtype)
            assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
            assert a.ctypes.data % 64 == 0 and not a.any()
            a[...] = 1                                          # writable, the whole shape
            assert a.sum() == np.prod(shape)


def test_unowned_arrays_are_the_same_memory():
    """support.unowned (the time loops' arguments without reference counts):
    views of its arrays read and write the caller's memory, nested tuples and
    scalars come through unchanged."""
    from typing import NamedTuple
    from lstmkit.kernels.support import unowned

    class Args(NamedTuple):
        x: np.ndarray
        inner: tuple
        k: int

    @njit
    def fill(a):
        a = unowned(a)
        y, s = a.inner
        for r in range(a.x.shape[0]):
            row = a.x[r, 1:]                                    # a view of a view
            for j in range(row.shape[0]):
                row[j] = r * 10 + j + a.k
        y.reshape(-1)[:] = s
        return a.x[:, 1:].sum()

    x, y = np.zeros((3, 4)), np.zeros((2, 2), np.float32)
    total = fill(Args(x, (y, 2.5), 7))
    assert np.array_equal(x[:, 0], np.zeros(3)) and np.array_equal(x[:, 1:], np.arange(3)[:, None] * 10 + np.arange(3) + 7)
    assert total == x.sum() and np.all(y == 2.5)
