"""Fast LSTM kernel == reference LSTM cell, outputs, final states and every gradient."""
import numba
import numpy as np
import pytest

from lstmkit import engines
from lstmkit.cells import lstm as ref
from lstmkit.kernels import lstm as fast
from lstmkit.kernels import support
from test_fast_support import assert_close, compare_engines, make_case, mask_with_padding

DTYPES = [np.float32, np.float64]


def case(dtype, B=3, T=5, D=4, H=6, **kw):
    return make_case(dtype, B, T, D, H, 4, 2, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_matches_reference(dtype, reverse):
    compare_engines(ref, fast, case(dtype), dtype, reverse=reverse)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_mask_with_padding_and_masked_row(dtype, reverse):
    B, T = 4, 7
    compare_engines(ref, fast, case(dtype, B=B, T=T), dtype, mask=mask_with_padding(B, T),
                    reverse=reverse)


@pytest.mark.parametrize("dtype", DTYPES)
def test_boolean_mask(dtype):
    m = mask_with_padding(4, 6).astype(bool)
    compare_engines(ref, fast, case(dtype, B=4, T=6), dtype, mask=m)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("b_x,b_h", [(True, False), (False, False), (False, True)])
def test_missing_biases(dtype, b_x, b_h):
    compare_engines(ref, fast, case(dtype, b_x=b_x, b_h=b_h), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_dhs,dstate_used", [(False, (True, True)), (True, (False, False)),
                                                 (False, (True, False)), (True, (False, True))])
def test_missing_output_gradients(dtype, use_dhs, dstate_used):
    compare_engines(ref, fast, case(dtype), dtype, use_dhs=use_dhs, dstate_used=dstate_used)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,T,D,H", [(1, 6, 3, 5), (3, 1, 4, 2), (1, 1, 1, 1), (2, 4, 9, 3), (3, 0, 4, 2)])
def test_small_shapes(dtype, B, T, D, H):
    compare_engines(ref, fast, case(dtype, B=B, T=T, D=D, H=H), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
def test_threaded_batch_chunks(dtype, reverse, monkeypatch):
    monkeypatch.setattr(support, "PARALLEL_MIN_WORK", 0)                # split the products too
    B = support.PARALLEL_MIN_BATCH + 7                         # odd size: unequal chunks
    assert support.n_chunks(B, 8) == min(2, numba.get_num_threads())  # two chunks where two threads exist
    compare_engines(ref, fast, case(dtype, B=B, T=6, D=5, H=8), dtype,
                    mask=mask_with_padding(B, 6), reverse=reverse)


def test_long_float32_sequence_with_vanishing_gradients():
    # small recurrent weights: gradients shrink into the float32 subnormal range
    c = case(np.float32, B=4, T=300, D=3, H=8, seed=3)
    c["W_h"] *= np.float32(0.05)
    c["W_x"] *= np.float32(0.05)
    c["dhs"][:, :-1] = 0
    compare_engines(ref, fast, c, np.float32)


def test_float64_state_given_as_float32_is_converted():
    c = case(np.float64)
    state = tuple(s.astype(np.float32).astype(np.float64) for s in c["state0"])
    hs_f, _, _ = fast.forward(c["x"], c["W_x"], c["W_h"], state0=tuple(s.astype(np.float32) for s in state))
    hs_r, _, _ = ref.forward(c["x"], c["W_x"], c["W_h"], state0=state)
    assert hs_f.dtype == np.float64
    assert_close(hs_f, hs_r, np.float64, "outputs")


@pytest.mark.parametrize("dtype", DTYPES)
def test_step_equals_one_step_of_forward(dtype):
    c = case(dtype, B=3, T=1, D=4, H=6)
    x_t = c["x"][:, 0]
    hs, (h_T, c_T), _ = ref.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"])
    h_t, (h_s, c_s) = fast.step(x_t, c["state0"], c["W_x"], c["W_h"], c["b_x"], c["b_h"])
    assert h_t is h_s
    assert_close(h_t, hs[:, 0], dtype, "step h")
    assert_close(c_s, c_T, dtype, "step c")
    # in place, without biases
    hs, (h_T, c_T), _ = ref.forward(c["x"], c["W_x"], c["W_h"], None, None, c["state0"])
    state = tuple(s.copy() for s in c["state0"])
    h_t, new_state = fast.step(x_t, state, c["W_x"], c["W_h"], out=state)
    assert new_state[0] is state[0] and new_state[1] is state[1]
    assert_close(state[0], h_T, dtype, "in-place step h")
    assert_close(state[1], c_T, dtype, "in-place step c")


def test_step_rejects_mismatched_shapes():
    c = case(np.float32)
    with pytest.raises(ValueError):
        fast.step(c["x"][:2, 0], c["state0"], c["W_x"], c["W_h"])


def test_contract_and_registration():
    assert engines.get_engine("lstm", "auto") is fast
    assert engines.get_engine("lstm", "fast") is fast
    assert (fast.N_GATES, fast.STATE_NAMES, fast.GATE_NAMES) == (ref.N_GATES, ref.STATE_NAMES, ref.GATE_NAMES)
    c = case(np.float32)
    with pytest.raises(NotImplementedError):
        fast.forward(c["x"], c["W_x"], c["W_h"], recurrent_mask=np.ones((3, 6), np.float32))
    with pytest.raises(ValueError):
        fast.forward(c["x"], c["W_x"][:, :-1], c["W_h"])
    with pytest.raises(TypeError):
        fast.forward(c["x"].astype(np.float16), c["W_x"].astype(np.float16), c["W_h"].astype(np.float16))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("B", [4, support.PARALLEL_MIN_BATCH + 5])
def test_unfused_input_path(dtype, reverse, B, monkeypatch):
    """Large H takes x W_x out of the per-step product (one product over all
    steps before the loop, dx after it); the same results either way."""
    monkeypatch.setattr(fast, "FUSE_INPUT_MAX_HIDDEN", 0)
    assert not fast.fuse_input(4, 6)
    T = 6
    compare_engines(ref, fast, case(dtype, B=B, T=T), dtype, mask=mask_with_padding(B, T),
                    reverse=reverse)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_twice_on_one_cache(dtype):
    """backward overwrites the cached gates with dL/dz; a second backward
    from the same forward recomputes them and gives the same gradients."""
    c = case(dtype, B=3, T=5)
    mask = mask_with_padding(3, 5)
    hs, state, cache = fast.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"],
                                    mask=mask)
    g1 = fast.backward(c["dhs"], c["dstate"], cache)
    g1 = {k: (tuple(a.copy() for a in v) if isinstance(v, tuple) else v.copy()) for k, v in g1.items()}
    g2 = fast.backward(c["dhs"], c["dstate"], cache)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    for k in ("x", "W_x", "W_h", "b_x", "b_h"):
        np.testing.assert_allclose(g2[k], g1[k], rtol=tol, atol=tol, err_msg=k)
    for a, b in zip(g2["state0"], g1["state0"]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("B", [5, support.PARALLEL_MIN_BATCH + 3])
def test_packed_recurrent_products(dtype, reverse, B, monkeypatch):
    """Large H runs the per-step products on weights packed once per call
    (kernels/gemm.py), forward, backward and inference: H = 64 stands in for
    it here."""
    monkeypatch.setattr(fast, "FUSE_INPUT_MAX_HIDDEN", 0)
    assert fast.pack_recurrent(64)
    T = 5
    c = case(dtype, B=B, T=T, D=3, H=64)
    mask = mask_with_padding(B, T)
    compare_engines(ref, fast, c, dtype, mask=mask, reverse=reverse)
    hs_ref, state_ref, _ = ref.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"],
                                       mask=mask, reverse=reverse)
    hs, state, _ = fast.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"],
                                mask=mask, reverse=reverse, need_cache=False)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(hs, hs_ref, rtol=tol, atol=tol)
    for a, b in zip(state, state_ref):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
