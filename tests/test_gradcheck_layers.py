"""Layer-level finite-difference checks (float64): Bidirectional in every merge
mode and two stacked layers, for each cell, with masks and initial states;
the loss reads the outputs and the final states."""
import numpy as np
import pytest

from lstmkit.layers import LSTM, GRU, SimpleRNN, Bidirectional, RNNStack
from gradcheck_util import layer_gradient_errors

TOL = 1e-6
B, T, D, H = 2, 4, 3, 3
MASK = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], bool)

CELLS = [
    pytest.param(LSTM, {}, id="lstm"),
    pytest.param(GRU, {"reset_after": True}, id="gru-reset_after"),
    pytest.param(GRU, {"reset_after": False, "two_biases": True}, id="gru-reset_before"),
    pytest.param(SimpleRNN, {"activation": "tanh"}, id="rnn-tanh"),
    pytest.param(SimpleRNN, {"activation": "relu"}, id="rnn-relu"),
]


def make(cls, options, seed, units=H, **kwargs):
    settings = {"return_sequences": True, "two_biases": True, **options, **kwargs}
    # torch_uniform biases: nonzero, so a wrong bias gradient cannot hide behind b = 0
    return cls(units, dtype="float64", seed=seed, engine="reference",
               bias_initializer="torch_uniform", **settings)


def states(cls, n_dirs, rng, units=H):
    n = 2 if cls is LSTM else 1
    one = lambda: tuple(rng.normal(scale=0.5, size=(B, units)) for _ in range(n))
    return one() if n_dirs == 1 else (one(), one())


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("cls, options", CELLS)
def test_bidirectional_gradients(cls, options, merge_mode):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D))
    bi = Bidirectional(make(cls, options, seed=1), merge_mode=merge_mode)
    errors = layer_gradient_errors(bi, x, initial_state=states(cls, 2, rng), mask=MASK)
    assert len([k for k in errors if k.startswith("initial_state")]) == 2 * len(bi.forward_layer.state_names)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("cls, options", CELLS)
def test_two_stacked_layers_gradients(cls, options):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, D))
    stack = RNNStack([make(cls, options, seed=2), make(cls, options, seed=3, units=2)])
    init = [states(cls, 1, rng), states(cls, 1, rng, units=2)]
    errors = layer_gradient_errors(stack, x, initial_state=init, mask=MASK)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("cls, options", CELLS)
def test_stacked_bidirectional_gradients(cls, options):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, T, D))
    stack = RNNStack([Bidirectional(make(cls, options, seed=4)),
                      Bidirectional(make(cls, options, seed=5), merge_mode="sum")])
    errors = layer_gradient_errors(stack, x, initial_state=[states(cls, 2, rng), states(cls, 2, rng)])
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("cls, options", CELLS)
def test_single_layer_go_backwards_and_last_output(cls, options):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(B, T, D))
    layer = make(cls, options, seed=6, go_backwards=True, return_sequences=False)
    errors = layer_gradient_errors(layer, x, initial_state=states(cls, 1, rng), mask=MASK)
    assert max(errors.values()) < TOL, errors


def test_the_layer_check_catches_a_wrong_merge_gradient():
    # mul's backward must use the other direction's output; a plain pass-through must fail
    rng = np.random.default_rng(4)
    x = rng.normal(size=(B, T, D))
    bi = Bidirectional(make(LSTM, {}, seed=7), merge_mode="mul")
    bi.merge_mode = "sum"                          # backward for sum, forward for mul below
    forward = Bidirectional.forward

    def mul_forward(self, *a, **k):
        self.merge_mode = "mul"
        out = forward(self, *a, **k)
        self.merge_mode = "sum"
        return out

    bi.forward = mul_forward.__get__(bi)
    errors = layer_gradient_errors(bi, x)
    assert errors["x"] > 1e-3
