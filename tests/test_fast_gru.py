"""Fast GRU kernel == reference GRU cell (both reset_after forms), outputs,
final state and every gradient."""
import numpy as np
import pytest

from lstmkit import engines
from lstmkit.cells import gru as ref
from lstmkit.kernels import gru as fast
from lstmkit.kernels import support
from test_fast_support import assert_close, compare_engines, make_case, mask_with_padding

DTYPES = [np.float32, np.float64]
FORMS = [True, False]


def case(dtype, B=3, T=5, D=4, H=6, **kw):
    return make_case(dtype, B, T, D, H, 3, 1, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", FORMS)
@pytest.mark.parametrize("reverse", [False, True])
def test_matches_reference(dtype, reset_after, reverse):
    compare_engines(ref, fast, case(dtype), dtype, reverse=reverse, reset_after=reset_after)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", FORMS)
@pytest.mark.parametrize("reverse", [False, True])
def test_mask_with_padding_and_masked_row(dtype, reset_after, reverse):
    B, T = 4, 7
    compare_engines(ref, fast, case(dtype, B=B, T=T), dtype, mask=mask_with_padding(B, T),
                    reverse=reverse, reset_after=reset_after)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", FORMS)
@pytest.mark.parametrize("b_x,b_h", [(True, False), (False, False), (False, True)])
def test_missing_biases(dtype, reset_after, b_x, b_h):
    compare_engines(ref, fast, case(dtype, b_x=b_x, b_h=b_h), dtype, reset_after=reset_after)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", FORMS)
def test_missing_output_gradients(dtype, reset_after):
    compare_engines(ref, fast, case(dtype), dtype, use_dhs=False, reset_after=reset_after)
    compare_engines(ref, fast, case(dtype), dtype, dstate_used=(False,), reset_after=reset_after)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,T,D,H", [(1, 6, 3, 5), (3, 1, 4, 2), (1, 1, 1, 1)])
def test_small_shapes(dtype, B, T, D, H):
    for reset_after in FORMS:
        compare_engines(ref, fast, case(dtype, B=B, T=T, D=D, H=H), dtype, reset_after=reset_after)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", FORMS)
def test_threaded_batch_chunks(dtype, reset_after, monkeypatch):
    monkeypatch.setattr(support, "PARALLEL_MIN_WORK", 0)                # split the products too
    B = support.PARALLEL_MIN_BATCH + 7
    compare_engines(ref, fast, case(dtype, B=B, T=6, D=5, H=8), dtype,
                    mask=mask_with_padding(B, 6), reverse=True, reset_after=reset_after)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", FORMS)
def test_step_equals_one_step_of_forward(dtype, reset_after):
    c = case(dtype, B=3, T=1, D=4, H=6)
    hs, _, _ = ref.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"],
                           reset_after=reset_after)
    h_t, (h_s,) = fast.step(c["x"][:, 0], c["state0"], c["W_x"], c["W_h"], c["b_x"], c["b_h"],
                            reset_after=reset_after)
    assert h_t is h_s
    assert_close(h_t, hs[:, 0], dtype, "step h")
    state = (c["state0"][0].copy(),)
    hs, _, _ = ref.forward(c["x"], c["W_x"], c["W_h"], None, c["b_h"], state, reset_after=reset_after)
    fast.step(c["x"][:, 0], state, c["W_x"], c["W_h"], None, c["b_h"], out=state, reset_after=reset_after)
    assert_close(state[0], hs[:, 0], dtype, "in-place step h")


def test_contract_and_registration():
    assert engines.get_engine("gru", "auto") is fast
    assert (fast.N_GATES, fast.STATE_NAMES, fast.GATE_NAMES) == (ref.N_GATES, ref.STATE_NAMES, ref.GATE_NAMES)
    c = case(np.float32)
    with pytest.raises(NotImplementedError):
        fast.forward(c["x"], c["W_x"], c["W_h"], recurrent_mask=np.ones((3, 6), np.float32))
    with pytest.raises(ValueError):
        fast.forward(c["x"], c["W_x"], c["W_h"], reset_after="yes")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", FORMS)
@pytest.mark.parametrize("reverse", [False, True])
def test_packed_recurrent_products(dtype, reset_after, reverse, monkeypatch):
    """Large H runs the per-step products with W_h through gemm.packed_dot
    (forward, backward and inference); H = 64 stands in for it here."""
    from lstmkit.kernels import gemm
    monkeypatch.setattr(gemm, "PACKED_MIN_HIDDEN", 0)
    assert gemm.use_packed(64)
    B, T = 5, 6
    c = case(dtype, B=B, T=T, D=3, H=64)
    mask = mask_with_padding(B, T)
    compare_engines(ref, fast, c, dtype, mask=mask, reverse=reverse, reset_after=reset_after)
    hs_ref, state_ref, _ = ref.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"],
                                       mask=mask, reverse=reverse, reset_after=reset_after)
    hs, state, _ = fast.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"],
                                mask=mask, reverse=reverse, reset_after=reset_after,
                                need_cache=False)
    assert_close(hs, hs_ref, dtype, "inference hs")
    assert_close(state[0], state_ref[0], dtype, "inference h_T")
