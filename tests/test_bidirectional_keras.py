"""Bidirectional as Keras has it: merge_mode=None returns the two directions
as a list (and backward takes a list), and initial_state may be Keras's flat
list [h_f, c_f, h_b, c_b] as well as the pair ((h_f, c_f), (h_b, c_b))."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.layers import LSTM, GRU, SimpleRNN, Bidirectional
from gradcheck_util import layer_gradient_errors

ENGINES = ["reference", "fast"]
B, T, D, H = 2, 4, 3, 3
MASK = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], bool)


def make(cls, engine, **kw):
    return cls(H, dtype="float64", engine=engine, seed=1, two_biases=True, bias_initializer="torch_uniform",
               **kw)


def states(cls, rng):
    return [rng.normal(scale=0.5, size=(B, H)) for _ in range(2 if cls is LSTM else 1)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
def test_merge_mode_none_is_concat_split(cls, engine, return_sequences, return_state):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D))
    kw = dict(return_sequences=return_sequences, return_state=return_state)
    split = Bidirectional(make(cls, engine, **kw), merge_mode=None)
    joined = Bidirectional(make(cls, engine, **kw), merge_mode="concat")
    out = split.forward(x, mask=MASK)
    ref = joined.forward(x, mask=MASK)
    n = len(split.forward_layer.state_names)
    assert isinstance(out, list) and len(out) == 2 + (2 * n if return_state else 0)
    ref_out, ref_states = (ref[0], ref[1:]) if return_state else (ref, [])
    np.testing.assert_array_equal(np.concatenate(out[:2], axis=-1), ref_out)
    for a, b in zip(out[2:], ref_states):
        np.testing.assert_array_equal(a, b)
    shapes = split.compute_output_shape((T, D))
    assert [tuple(s) for s in shapes] == [o.shape[1:] for o in out]
    assert len(split.compute_mask(x, MASK)) == len(out)
    # backward takes the list; the same numbers as concat with the gradients side by side
    d = [rng.normal(size=o.shape) for o in out]
    dx = split.backward(d)
    d_ref = [np.concatenate(d[:2], axis=-1)] + d[2:]
    dx_ref = joined.backward(d_ref if return_state else d_ref[0])
    np.testing.assert_array_equal(dx, dx_ref)
    for k in split.params:
        np.testing.assert_array_equal(split.grads[k], joined.grads[k])


@pytest.mark.parametrize("engine", ENGINES)
def test_merge_mode_none_gradients_and_an_unused_direction(engine):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, D))
    bi = Bidirectional(make(LSTM, engine, return_sequences=True, return_state=True), merge_mode=None)
    errors = layer_gradient_errors(bi, x, initial_state=states(LSTM, rng) + states(LSTM, rng), mask=MASK)
    assert max(errors.values()) < 1e-6, errors
    # a direction nobody reads gets None as its gradient (a functional graph may leave it unused)
    out = bi.forward(x)
    dx = bi.backward([np.ones_like(out[0]), None] + [None] * 4)
    assert np.all(bi.backward_layer.grads["W_x"] == 0) and np.abs(bi.forward_layer.grads["W_x"]).max() > 0
    assert dx.shape == x.shape


def test_sequential_refuses_two_outputs():
    with pytest.raises(ValueError, match="merge_mode=None"):
        lk.Sequential([Bidirectional(LSTM(3), merge_mode=None)])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_flat_initial_state_equals_the_nested_pair(cls, engine):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, T, D))
    f, b = states(cls, rng), states(cls, rng)
    bi = Bidirectional(make(cls, engine, return_sequences=True))
    nested = bi.forward(x, initial_state=(tuple(f), tuple(b)))
    flat = bi.forward(x, initial_state=f + b)                     # Keras: [h_f, c_f, h_b, c_b]
    np.testing.assert_array_equal(flat, nested)
    zeros = bi.forward(x)
    assert np.abs(flat - zeros).max() > 1e-3                       # the states were used
    errors = layer_gradient_errors(bi, x, initial_state=f + b, mask=MASK)
    assert sum(k.startswith("initial_state") for k in errors) == 2 * len(f)
    assert max(errors.values()) < 1e-6, errors


def test_initial_state_errors_name_the_forms():
    bi = Bidirectional(LSTM(H, seed=0))
    x = np.zeros((B, T, D), "float32")
    s = np.zeros((B, H), "float32")
    with pytest.raises(ValueError, match="flat list must hold 4 arrays .* got 3"):
        bi.forward(x, initial_state=[s, s, s])
    with pytest.raises(ValueError, match="must be a pair .* got 3 items"):
        bi.forward(x, initial_state=[(s, s), (s, s), (s, s)])
    bi.forward(x, initial_state=[None, (s, s)])                   # the nested form may leave one out
