"""Embedding, Dense, Dropout, Flatten: shapes, masks, backward, errors."""
import numpy as np
import pytest

import lstmkit as lk


def test_embedding_lookup_backward_and_mask():
    emb = lk.Embedding(6, 3, mask_zero=True, seed=0)
    ids = np.array([[1, 2, 2, 0], [5, 0, 0, 0]])
    out = emb.forward(ids)                                                  # (2, 4, 3)
    np.testing.assert_array_equal(out[0, 1], emb.params["embeddings"][2])
    assert emb.forward(ids).dtype == np.float32
    mask = emb.compute_mask(ids, None)
    np.testing.assert_array_equal(mask, ids != 0)
    dout = np.ones_like(out)
    assert emb.backward(dout) is None                                       # ids are not differentiable
    g = emb.grads["embeddings"]
    np.testing.assert_array_equal(g[:, 0], [4, 1, 2, 0, 0, 1])              # id 2 looked up twice, padding 0 four times


def test_embedding_errors():
    emb = lk.Embedding(10, 4)
    with pytest.raises(ValueError, match=r"token id 10 is out of range.*input_dim=10.*\[0, 9\]"):
        emb.forward(np.array([[1, 10]]))
    with pytest.raises(ValueError, match="token id -1"):
        emb.forward(np.array([[-1, 2]]))
    with pytest.raises(TypeError, match="integer token ids; got float64 values such as 0.5"):
        emb.forward(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match=r"\(batch, time\); got shape \(2, 3, 4\)"):
        emb.forward(np.zeros((2, 3, 4), np.int64))
    emb.forward(np.array([[1.0, 2.0]]))                                     # whole-number floats are fine
    with pytest.raises(ValueError, match="input_dim must be a positive integer; got 0"):
        lk.Embedding(0, 3)


def test_mask_travels_through_sequential():
    model = lk.Sequential([lk.Embedding(10, 4, mask_zero=True), lk.LSTM(5, return_sequences=True),
                           lk.Dense(3)], seed=0)
    ids = np.array([[3, 4, 0, 0], [1, 2, 3, 4]])
    out = model.predict(ids)
    np.testing.assert_array_equal(model.output_mask, ids != 0)
    # padded steps change nothing: the LSTM output at the real steps equals that of the unpadded input
    short = model.predict(ids[:1, :2])
    np.testing.assert_allclose(out[0, :2], short[0], rtol=1e-5, atol=1e-6)
    last = lk.Sequential([lk.Embedding(10, 4, mask_zero=True), lk.LSTM(5)], seed=0)
    np.testing.assert_allclose(last.predict(ids[:1]), last.predict(ids[:1, :2]), rtol=1e-5, atol=1e-6)
    assert last.output_mask is None                                         # no time axis left


@pytest.mark.parametrize("activation", ["linear", "sigmoid", "tanh", "relu", "softmax"])
def test_dense_per_time_step_and_backward(activation):
    rng = np.random.default_rng(0)
    layer = lk.Dense(4, activation=activation, dtype="float64", seed=0)
    x = rng.normal(size=(2, 3, 5))                                          # (B, T, D)
    y = layer.forward(x)
    assert y.shape == (2, 3, 4)
    np.testing.assert_allclose(y[:, 1], layer.forward(x[:, 1]))             # the same layer at each step
    layer.forward(x)
    w = rng.normal(size=y.shape)
    dx = layer.backward(w)
    eps = 1e-6
    for idx in [(0, 0, 0), (1, 2, 4), (0, 1, 3)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num = ((layer.forward(xp) - layer.forward(xm)) * w).sum() / (2 * eps)
        assert abs(num - dx[idx]) < 1e-7


def test_dense_errors():
    with pytest.raises(ValueError, match="activation must be one of .* got 'swish'"):
        lk.Dense(3, activation="swish")
    layer = lk.Dense(3, input_dim=4)
    with pytest.raises(ValueError, match=r"\(batch, \.\.\., 4\); got \(2, 5\)"):
        layer.forward(np.zeros((2, 5)))


def test_dropout_and_flatten():
    d = lk.Dropout(0.5, seed=0)
    x = np.ones((200, 10), np.float32)
    np.testing.assert_array_equal(d.forward(x), x)                          # identity at inference
    y = d.forward(x, training=True)
    assert set(np.unique(y)) == {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), y)          # the same mask backward
    f = lk.Flatten()
    z = np.arange(24.0).reshape(2, 3, 4)
    assert f.forward(z).shape == (2, 12)
    assert f.backward(f.forward(z)).shape == (2, 3, 4)
    assert f.compute_output_shape((3, 4)) == (12,)
    with pytest.raises(ValueError, match="rate must be"):
        lk.Dropout(1.0)


def test_top_level_exports():
    for name in ("Sequential", "Embedding", "Dense", "Dropout", "Flatten", "SimpleRNN", "LSTM", "GRU",
                 "Bidirectional", "load_model", "Adam", "SGD", "RMSprop", "EarlyStopping"):
        assert hasattr(lk, name), name


def test_embedding_gradient_has_no_stale_rows_across_steps():
    # the gradient table is reused between steps: rows of the previous batch must be cleared
    rng = np.random.default_rng(0)
    emb = lk.Embedding(50, 4, seed=0)
    for _ in range(3):
        ids = rng.integers(0, 50, (6, 9))
        out = emb.forward(ids)
        dout = rng.normal(size=out.shape).astype(np.float32)
        emb.backward(dout)
        expected = np.zeros((50, 4), np.float32)
        np.add.at(expected, ids.ravel(), dout.reshape(-1, 4))
        np.testing.assert_allclose(emb.grads["embeddings"], expected, rtol=1e-6, atol=1e-6)
