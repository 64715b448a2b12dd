"""The recurrent layers wire the cell engines correctly: shapes, options,
gradients by finite differences (float64), errors that name the argument."""
import numpy as np
import pytest

from lstmkit.layers import LSTM, GRU, SimpleRNN, Bidirectional, RNNStack
from gradcheck_util import numeric_grad, rel_err


def check_layer_grads(layer, x, mask=None, tol=1e-6):
    rng = np.random.default_rng(1)
    out = layer.forward(x, mask=mask)
    w = rng.normal(size=out.shape)
    loss = lambda: float((layer.forward(x, mask=mask) * w).sum())
    layer.forward(x, mask=mask)
    dx = layer.backward(w)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    assert rel_err(dx, numeric_grad(loss, x)) < tol
    params = layer.params
    assert set(grads) == set(params)
    for k, p in params.items():
        assert rel_err(grads[k], numeric_grad(loss, p)) < tol, k


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_lstm_layer_gradients(return_sequences, go_backwards):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 3))
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    layer = LSTM(3, return_sequences=return_sequences, go_backwards=go_backwards,
                 dtype="float64", seed=0, two_biases=True, engine="reference")
    check_layer_grads(layer, x, mask)


def test_bidirectional_and_stack_gradients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 3))
    for mode in ("concat", "sum", "mul", "ave"):
        bi = Bidirectional(LSTM(3, return_sequences=True, dtype="float64", seed=1, engine="reference"),
                           merge_mode=mode)
        check_layer_grads(bi, x)
    stack = RNNStack([LSTM(3, return_sequences=True, dtype="float64", seed=2, engine="reference"),
                      Bidirectional(LSTM(2, return_sequences=True, dtype="float64", seed=3,
                                         engine="reference"))])
    check_layer_grads(stack, x)
    assert stack.forward(x).shape == (2, 4, 4)


def test_go_backwards_reverses_time():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    f = LSTM(4, return_sequences=True, seed=0)
    b = LSTM.from_config({**f.get_config(), "go_backwards": True, "name": "b"})
    b.set_weights(f.get_weights())
    # reading x backwards equals reading the time-flipped x forwards, with outputs reversed
    np.testing.assert_allclose(b.forward(x), f.forward(x[:, ::-1]), rtol=1e-6, atol=1e-6)


def test_return_state_and_counts():
    layer = LSTM(32, return_state=True, input_dim=32)
    assert layer.count_params() == 8320                      # Keras's count for LSTM(32) on 32 inputs
    out, h, c = layer.forward(np.zeros((3, 7, 32), np.float32))
    assert out.shape == h.shape == c.shape == (3, 32)
    np.testing.assert_array_equal(out, h)
    assert layer.params["b_x"][32:64].tolist() == [1.0] * 32  # unit_forget_bias


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="units must be a positive integer; got 0"):
        LSTM(0)
    with pytest.raises(ValueError, match="dropout"):
        LSTM(3, dropout=1.5)
    layer = LSTM(3, input_dim=4)
    with pytest.raises(ValueError, match="built for 4 input features; got input with 5"):
        layer.forward(np.zeros((1, 2, 5)))
    with pytest.raises(ValueError, match=r"\(batch, time, features\)"):
        layer.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(LSTM(3), merge_mode="max")


def test_dropout_only_in_training():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    layer = LSTM(5, dropout=0.5, recurrent_dropout=0.5, seed=0)
    a, b = layer.forward(x), layer.forward(x)
    np.testing.assert_array_equal(a, b)                      # inference is deterministic
    t = layer.forward(x, training=True)
    assert not np.allclose(t, a)                             # training drops units
    dx = layer.backward(np.ones_like(t))
    assert dx.shape == x.shape and np.isfinite(dx).all()


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_streaming_step_matches_forward_and_writes_in_place(cls, engine):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 3)).astype(np.float32)
    layer = cls(4, return_sequences=True, seed=0, engine=engine, input_dim=3)
    expected = layer.forward(x)                                  # (B, T, H)
    state = tuple(np.zeros((2, 4), np.float32) for _ in layer.state_names)
    for t in range(x.shape[1]):
        h, new_state = layer.step(x[:, t], state, out=state)     # the state arrays are updated in place
        assert all(a is b for a, b in zip(new_state, state))
        np.testing.assert_allclose(h, expected[:, t], rtol=1e-5, atol=1e-6)
    h2, _ = layer.step(x[:, 0].tolist())                         # lists and no state are accepted
    np.testing.assert_allclose(h2, expected[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("init", ["glorot_uniform", "orthogonal", "torch_uniform", "zeros"])
def test_initialized_weights_are_c_contiguous(init):
    # the kernels take C-order arrays; anything else is copied on every call
    layer = LSTM(5, input_dim=3, kernel_initializer=init, recurrent_initializer=init)
    assert all(p.flags.c_contiguous for p in layer.params.values())


def test_a_built_model_has_its_stacks_params():
    import lstmkit as lk
    model = lk.Sequential([lk.Embedding(9, 3, input_length=5),
                           RNNStack([GRU(4, return_sequences=True), LSTM(2, return_sequences=True)])])
    # the stack's layers are built with the model, each from the shape before it
    assert model.built and model.count_params() == 9 * 3 + (3 * 12 + 4 * 12 + 2 * 12) + (4 * 8 + 2 * 8 + 8)
