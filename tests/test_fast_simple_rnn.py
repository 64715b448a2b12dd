"""Fast simple-RNN kernel == reference simple RNN (tanh and relu), outputs,
final state and every gradient."""
import numpy as np
import pytest

from lstmkit import engines
from lstmkit.cells import simple_rnn as ref
from lstmkit.kernels import simple_rnn as fast
from lstmkit.kernels import support
from test_fast_support import assert_close, compare_engines, make_case, mask_with_padding

DTYPES = [np.float32, np.float64]
FORMS = ["tanh", "relu"]


def case(dtype, B=3, T=5, D=4, H=6, **kw):
    return make_case(dtype, B, T, D, H, 1, 1, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FORMS)
@pytest.mark.parametrize("reverse", [False, True])
def test_matches_reference(dtype, activation, reverse):
    compare_engines(ref, fast, case(dtype), dtype, reverse=reverse, activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FORMS)
@pytest.mark.parametrize("reverse", [False, True])
def test_mask_with_padding_and_masked_row(dtype, activation, reverse):
    B, T = 4, 7
    compare_engines(ref, fast, case(dtype, B=B, T=T), dtype, mask=mask_with_padding(B, T),
                    reverse=reverse, activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FORMS)
@pytest.mark.parametrize("b_x,b_h", [(True, False), (False, False), (False, True)])
def test_missing_biases(dtype, activation, b_x, b_h):
    compare_engines(ref, fast, case(dtype, b_x=b_x, b_h=b_h), dtype, activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FORMS)
def test_missing_output_gradients(dtype, activation):
    compare_engines(ref, fast, case(dtype), dtype, use_dhs=False, activation=activation)
    compare_engines(ref, fast, case(dtype), dtype, dstate_used=(False,), activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,T,D,H", [(1, 6, 3, 5), (3, 1, 4, 2), (1, 1, 1, 1)])
def test_small_shapes(dtype, B, T, D, H):
    for activation in FORMS:
        compare_engines(ref, fast, case(dtype, B=B, T=T, D=D, H=H), dtype, activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FORMS)
def test_threaded_batch_chunks(dtype, activation, monkeypatch):
    monkeypatch.setattr(support, "PARALLEL_MIN_WORK", 0)                # split the products too
    B = support.PARALLEL_MIN_BATCH + 7
    compare_engines(ref, fast, case(dtype, B=B, T=6, D=5, H=8), dtype,
                    mask=mask_with_padding(B, 6), reverse=True, activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", FORMS)
def test_step_equals_one_step_of_forward(dtype, activation):
    c = case(dtype, B=3, T=1, D=4, H=6)
    hs, _, _ = ref.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"], c["state0"],
                           activation=activation)
    h_t, (h_s,) = fast.step(c["x"][:, 0], c["state0"], c["W_x"], c["W_h"], c["b_x"], c["b_h"],
                            activation=activation)
    assert h_t is h_s
    assert_close(h_t, hs[:, 0], dtype, "step h")
    state = (c["state0"][0].copy(),)
    hs, _, _ = ref.forward(c["x"], c["W_x"], c["W_h"], None, c["b_h"], state, activation=activation)
    fast.step(c["x"][:, 0], state, c["W_x"], c["W_h"], None, c["b_h"], out=state, activation=activation)
    assert_close(state[0], hs[:, 0], dtype, "in-place step h")


def test_contract_and_registration():
    assert engines.get_engine("simple_rnn", "auto") is fast
    assert (fast.N_GATES, fast.STATE_NAMES, fast.GATE_NAMES) == (ref.N_GATES, ref.STATE_NAMES, ref.GATE_NAMES)
    c = case(np.float32)
    with pytest.raises(NotImplementedError):
        fast.forward(c["x"], c["W_x"], c["W_h"], recurrent_mask=np.ones((3, 6), np.float32))
    with pytest.raises(ValueError):
        fast.forward(c["x"], c["W_x"], c["W_h"], activation="sigmoid")
