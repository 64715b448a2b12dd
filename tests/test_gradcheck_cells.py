"""Every gradient of every reference cell against central finite differences
(float64): parameters, inputs and initial states, with masks, reverse and
recurrent dropout. Sizes are tiny (B 2, T 4, D 3, H 3) to keep this fast."""
import numpy as np
import pytest

from lstmkit.cells import lstm, gru, simple_rnn
from gradcheck_util import cell_gradient_errors

TOL = 1e-6
B, T, D, H = 2, 4, 3, 3

CELL_CASES = [
    pytest.param(lstm, {}, id="lstm"),
    pytest.param(gru, {"reset_after": True}, id="gru-reset_after"),
    pytest.param(gru, {"reset_after": False}, id="gru-reset_before"),
    pytest.param(simple_rnn, {"activation": "tanh"}, id="rnn-tanh"),
    pytest.param(simple_rnn, {"activation": "relu"}, id="rnn-relu"),
]

MASK = np.array([[1, 1, 1, 0],                                 # trailing padding
                 [0, 1, 0, 1]], bool)                          # leading and inner gaps

RUN_CASES = [
    pytest.param({}, id="plain"),
    pytest.param({"mask": MASK}, id="mask"),
    pytest.param({"reverse": True}, id="reverse"),
    pytest.param({"mask": MASK, "reverse": True}, id="mask-reverse"),
    pytest.param({"recurrent_mask": "random"}, id="recurrent_mask"),
    pytest.param({"mask": MASK, "reverse": True, "recurrent_mask": "random"}, id="all"),
]


def random_args(cell, seed=0, biases=(True, True)):
    rng = np.random.default_rng(seed)
    G = cell.N_GATES
    x = rng.normal(size=(B, T, D))
    W_x = rng.normal(scale=0.6, size=(D, G * H))
    W_h = rng.normal(scale=0.6, size=(H, G * H))
    b_x = rng.normal(scale=0.3, size=(G * H,)) if biases[0] else None
    b_h = rng.normal(scale=0.3, size=(G * H,)) if biases[1] else None
    state0 = tuple(rng.normal(scale=0.5, size=(B, H)) for _ in cell.STATE_NAMES)
    return x, W_x, W_h, b_x, b_h, state0


@pytest.mark.parametrize("run", RUN_CASES)
@pytest.mark.parametrize("cell, options", CELL_CASES)
def test_cell_gradients_match_finite_differences(cell, options, run):
    run = dict(run)
    if run.get("recurrent_mask") == "random":
        # inverted-dropout style mask: zeros and 1/keep
        run["recurrent_mask"] = np.array([[2.0, 0.0, 2.0], [2.0, 2.0, 0.0]])
    errors = cell_gradient_errors(cell, *random_args(cell), **run, **options)
    assert set(errors) >= {"x", "W_x", "W_h", "b_x", "b_h", "state0[0]"}
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOL, errors


@pytest.mark.parametrize("biases", [(True, False), (False, True), (False, False)])
@pytest.mark.parametrize("cell, options", CELL_CASES)
def test_cell_gradients_with_one_or_no_bias(cell, options, biases):
    errors = cell_gradient_errors(cell, *random_args(cell, seed=1, biases=biases), mask=MASK, **options)
    assert max(errors.values()) < TOL, errors


def test_the_check_catches_a_wrong_gradient():
    # With reset_after=True the n block of b_h sits inside r * (...): reporting
    # b_x's gradient for it (as if the biases were interchangeable) must fail.
    args = random_args(gru)
    hs, state, cache = gru.forward(*args, reset_after=True)
    g = gru.backward(np.ones_like(hs), None, cache)
    assert not np.allclose(g["b_h"][2 * H:], g["b_x"][2 * H:])
    np.testing.assert_allclose(g["b_h"][:2 * H], g["b_x"][:2 * H])   # r and z blocks are shared

    class WrongGRU:
        N_GATES, STATE_NAMES = gru.N_GATES, gru.STATE_NAMES
        forward = staticmethod(gru.forward)

        @staticmethod
        def backward(dhs, dstate, cache):
            g = gru.backward(dhs, dstate, cache)
            g["b_h"] = g["b_x"].copy()
            return g

    errors = cell_gradient_errors(WrongGRU, *args, reset_after=True)
    assert errors["b_h"] > 1e-3 and errors["W_h"] < TOL


def test_masked_steps_carry_the_state_and_output_zero():
    for cell, options in [(lstm, {}), (gru, {}), (simple_rnn, {})]:
        x, W_x, W_h, b_x, b_h, state0 = random_args(cell)
        mask = np.ones((B, T), bool)
        mask[:, 2:] = False
        hs, state, _ = cell.forward(x, W_x, W_h, b_x, b_h, state0, mask=mask, **options)
        hs2, state2, _ = cell.forward(x[:, :2], W_x, W_h, b_x, b_h, state0, **options)
        np.testing.assert_array_equal(hs[:, 2:], 0)
        np.testing.assert_allclose(hs[:, :2], hs2, rtol=0, atol=1e-15)
        for s, s2 in zip(state, state2):
            np.testing.assert_allclose(s, s2, rtol=0, atol=1e-15)


def test_reverse_reads_the_flipped_sequence():
    for cell, options in [(lstm, {}), (gru, {"reset_after": False}), (simple_rnn, {"activation": "relu"})]:
        x, W_x, W_h, b_x, b_h, state0 = random_args(cell)
        hs, state, _ = cell.forward(x, W_x, W_h, b_x, b_h, state0, reverse=True, **options)
        hs2, state2, _ = cell.forward(x[:, ::-1].copy(), W_x, W_h, b_x, b_h, state0, **options)
        np.testing.assert_allclose(hs, hs2[:, ::-1], rtol=0, atol=1e-14)
        np.testing.assert_allclose(state[0], state2[0], rtol=0, atol=1e-14)


def test_float32_stays_float32():
    for cell in (gru, simple_rnn):
        x, W_x, W_h, b_x, b_h, state0 = (a if a is None or isinstance(a, tuple) else a.astype(np.float32)
                                         for a in random_args(cell))
        state0 = tuple(s.astype(np.float32) for s in state0)
        hs, state, cache = cell.forward(x, W_x, W_h, b_x, b_h, state0, mask=MASK)
        g = cell.backward(hs, state, cache)
        assert hs.dtype == state[0].dtype == np.float32
        assert all(g[k].dtype == np.float32 for k in ("x", "W_x", "W_h", "b_x", "b_h"))
        assert g["state0"][0].dtype == np.float32


def test_bad_options_are_named():
    x, W_x, W_h, b_x, b_h, state0 = random_args(simple_rnn)
    with pytest.raises(ValueError, match="activation must be one of .* got 'sigmoid'"):
        simple_rnn.forward(x, W_x, W_h, activation="sigmoid")
    x, W_x, W_h, b_x, b_h, state0 = random_args(gru)
    with pytest.raises(ValueError, match="reset_after must be True or False; got 'yes'"):
        gru.forward(x, W_x, W_h, reset_after="yes")
    with pytest.raises(ValueError, match=r"W_x has 9 columns, not a multiple of the 4 gates"):
        lstm.forward(x, W_x, W_h)
