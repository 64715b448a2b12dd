"""Whole-model gradients (every layer's backward chained by Sequential, with
the loss fused onto the final activation where it can be) against finite
differences in float64."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit import losses
from lstmkit.models.training import _fuse
from gradcheck_util import numeric_grad

F64 = dict(dtype="float64")
RNN = dict(dtype="float64", engine="reference")


def model_loss_and_grads(model, loss, x, y):
    fused = _fuse(model, loss)

    def value():
        out = model.forward(x, return_logits=fused)
        return loss.forward(out, y, mask=model.output_mask, from_logits=fused or loss.from_logits)

    value()
    dx = model.backward(loss.backward(), from_logits=fused)
    return value, {k: v.copy() for k, v in model.grads.items()}, dx, fused


def check(model, loss, x, y, expect_fused):
    value, grads, dx, fused = model_loss_and_grads(model, loss, x, y)
    assert fused == expect_fused
    params = model.params
    worst = []
    assert set(grads) == set(params)
    for k, p in params.items():
        num = numeric_grad(value, p, eps=1e-5)
        err = np.abs(grads[k] - num).max() / max(np.abs(num).max(), 1e-12)
        worst.append(err)
        assert err < 1e-6, (k, err)
    if x.dtype.kind == "f":
        num = numeric_grad(value, x, eps=1e-5)
        assert np.abs(dx - num).max() / np.abs(num).max() < 1e-6
    print(f"max relative error over {len(params)} weights: {max(worst):.1e}")
    return fused


def gen(seed):
    """Each test (and each parametrized case) draws from its own seeded generator."""
    return np.random.default_rng(seed)


IDS = np.array([[3, 1, 4, 1, 5], [2, 6, 5, 0, 0], [6, 2, 1, 3, 0]])        # zeros are padding


@pytest.mark.parametrize("head, loss, y, fused", [
    (lambda: lk.Dense(1, activation="sigmoid", **F64), "binary_crossentropy", np.array([1, 0, 1]), True),
    (lambda: lk.Dense(4, activation="softmax", **F64), "categorical_crossentropy", np.eye(4)[[0, 3, 2]], True),
    (lambda: lk.Dense(4, activation="softmax", **F64), "sparse_categorical_crossentropy", np.array([1, 3, 0]), True),
    (lambda: lk.Dense(2, **F64), "mse", gen(10).normal(size=(3, 2)), False),
    (lambda: lk.Dense(2, activation="tanh", **F64), "mae", gen(11).normal(size=(3, 2)), False),
    (lambda: lk.Dense(3, activation="softmax", **F64), "mse", gen(12).uniform(size=(3, 3)), False),
    (lambda: lk.Dense(1, activation="sigmoid", **F64), "mse", np.array([1.0, 0.0, 1.0]), False),
    (lambda: lk.Dense(2, **F64), lambda: losses.BinaryCrossentropy(from_logits=True), np.eye(2)[[0, 1, 1]], False),
])
def test_embedding_lstm_dense(head, loss, y, fused):
    model = lk.Sequential([lk.Embedding(7, 3, mask_zero=True, **F64), lk.LSTM(4, **RNN), head()], seed=1)
    loss = loss() if callable(loss) else losses.get(loss)
    check(model, loss, IDS, y, fused)


@pytest.mark.parametrize("reduction", ["mean", "sum_over_time"])
def test_per_time_step_sequence_loss_with_mask(reduction):
    model = lk.Sequential([lk.Embedding(7, 3, mask_zero=True, **F64), lk.LSTM(4, return_sequences=True, **RNN),
                           lk.Dense(5, activation="softmax", **F64)], seed=2)
    y = gen(20).integers(0, 5, IDS.shape)
    loss = losses.SparseCategoricalCrossentropy(reduction=reduction)
    check(model, loss, IDS, y, True)
    np.testing.assert_array_equal(model.output_mask, IDS != 0)


def test_bidirectional_gru_stack():
    x = gen(30).normal(size=(3, 4, 2))
    model = lk.Sequential([lk.Bidirectional(lk.GRU(3, return_sequences=True, **RNN)),
                           lk.Bidirectional(lk.GRU(2, **RNN), merge_mode="sum"),
                           lk.Dense(3, activation="softmax", **F64)], seed=3)
    check(model, losses.get("categorical_crossentropy"), x, np.eye(3)[[0, 2, 1]], True)


def test_simple_rnn_dropout_free_stack_with_flatten():
    rng = gen(40)
    x = rng.normal(size=(3, 4, 2))
    model = lk.Sequential([lk.SimpleRNN(3, return_sequences=True, **RNN), lk.LSTM(2, return_sequences=True, **RNN),
                           lk.Flatten(), lk.Dense(1, **F64)], seed=4)
    check(model, losses.get("mse"), x, rng.normal(size=(3, 1)), False)
