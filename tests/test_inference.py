"""Inference without caches (training=False) and the embedding folded into
the first recurrent layer give the results of the cached forward."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.kernels import lstm as fast_lstm

TOL = {np.float32: 1e-6, np.float64: 1e-12}


def _lstm_args(dtype, B=5, T=7, D=3, H=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    W_x = (0.5 * rng.standard_normal((D, 4 * H))).astype(dtype)
    W_h = (0.5 * rng.standard_normal((H, 4 * H))).astype(dtype)
    b_x, b_h = (rng.standard_normal(4 * H).astype(dtype) for _ in range(2))
    state0 = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    mask = rng.random((B, T)) > 0.3
    mask[0] = False                                        # a sequence that is all padding
    return x, W_x, W_h, b_x, b_h, state0, mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("B", [5, 70])                     # 70 rows: split over threads
def test_cacheless_forward_equals_cached(dtype, reverse, masked, B):
    x, W_x, W_h, b_x, b_h, state0, mask = _lstm_args(dtype, B=B)
    mask = mask if masked else None
    hs, state, cache = fast_lstm.forward(x, W_x, W_h, b_x, b_h, state0, mask=mask, reverse=reverse)
    hs2, state2, cache2 = fast_lstm.forward(x, W_x, W_h, b_x, b_h, state0, mask=mask,
                                            reverse=reverse, need_cache=False)
    assert cache is not None and cache2 is None
    # training runs one product with [x_t, h_{t-1}, 1] per step, inference adds a
    # precomputed x W_x + b to h_{t-1} W_h: the same sums, rounded in another order
    tol = TOL[dtype]
    np.testing.assert_allclose(hs2, hs, rtol=tol, atol=tol)
    for a, b in zip(state2, state):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    hs3, state3, _ = fast_lstm.forward(x, W_x, W_h, b_x, b_h, state0, mask=mask, reverse=reverse,
                                       need_cache=False, need_outputs=False)
    assert hs3 is None
    for a, b in zip(state3, state2):
        np.testing.assert_array_equal(a, b)                # outputs or not, the same arithmetic


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
def test_forward_lookup_equals_embedded_forward(dtype, reverse):
    rng = np.random.default_rng(1)
    _, W_x, W_h, b_x, b_h, state0, mask = _lstm_args(dtype)
    E = rng.standard_normal((11, W_x.shape[0])).astype(dtype)
    ids = rng.integers(0, 11, mask.shape)
    hs, state, _ = fast_lstm.forward(E[ids], W_x, W_h, b_x, b_h, state0, mask=mask, reverse=reverse)
    table = fast_lstm.project_table(E, W_x, b_x, b_h)
    hs2, state2 = fast_lstm.forward_lookup(ids, table, W_h, state0, mask=mask, reverse=reverse)
    np.testing.assert_allclose(hs2, hs, rtol=0, atol=TOL[dtype])
    for a, b in zip(state2, state):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL[dtype])
    with pytest.raises(ValueError, match="ids must lie"):
        fast_lstm.forward_lookup(ids + 11, table, W_h)


def _model(cell, return_sequences, mask_zero, dtype="float32", engine="auto"):
    layer = getattr(lk, cell)(4, return_sequences=return_sequences, engine=engine, dtype=dtype)
    model = lk.Sequential([lk.Embedding(13, 3, mask_zero=mask_zero, dtype=dtype), layer,
                           lk.Dense(2, activation="sigmoid", dtype=dtype)], seed=3)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def _unfolded_predict(model, ids):
    """The layers one by one, cached forward: no cacheless path, no folding."""
    emb, rnn, head = model.layers
    x = emb.forward(ids)
    return head.forward(rnn.forward(x, training=True, mask=emb.compute_mask(ids, None)))


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_zero", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_folded_predict_equals_unfolded(cell, return_sequences, mask_zero, dtype):
    model = _model(cell, return_sequences, mask_zero, dtype)
    ids = np.random.default_rng(2).integers(0, 13, (6, 9))
    ids[1, 5:] = 0                                         # padding at the end
    got = model.predict(ids, batch_size=4)
    want = np.concatenate([_unfolded_predict(model, ids[:4]), _unfolded_predict(model, ids[4:])])
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[np.dtype(dtype).type])


def test_folded_table_follows_weight_changes():
    model = _model("LSTM", False, True)
    ids = np.random.default_rng(4).integers(0, 13, (3, 5))
    before = model.predict(ids)
    assert model.layers[1]._fold is not None               # the folded path ran
    model.layers[0].params["embeddings"][ids[0, 0]] += 1.0  # in place, as an optimizer would
    after = model.predict(ids)
    assert not np.allclose(after[0], before[0])
    np.testing.assert_allclose(after, _unfolded_predict(model, ids), rtol=0, atol=1e-6)
    model.layers[1].params["W_x"] *= 0.5
    np.testing.assert_allclose(model.predict(ids), _unfolded_predict(model, ids), rtol=0, atol=1e-6)


def test_folded_table_memory_is_leased_and_given_back():
    """A big folded table comes from the kernels' buffer pool, is held by the
    fold and goes back when the fold is dropped; the next fold (a fresh
    model, say) computes its table again, into the same memory."""
    import gc
    from lstmkit.kernels import workspace
    V, H = 700, 32                                          # a (700, 128) float32 table: 358 KB, pooled
    model = lk.Sequential([lk.Embedding(V, 8), lk.LSTM(H), lk.Dense(1)])
    model.build((None,))
    ids = np.random.default_rng(5).integers(0, V, (4, 6))
    gc.collect()
    leased = workspace.pooled_bytes()[1]
    first = model.predict_on_batch(ids)
    rnn = model.layers[1]
    table = rnn._fold[3]
    assert workspace.pooled_bytes()[1] == leased + table.nbytes      # held by the fold
    address, kept = table.ctypes.data, table.copy()
    del table
    rnn._fold = None                                        # dropped: the memory goes back
    assert workspace.pooled_bytes()[1] == leased
    again = model.predict_on_batch(ids)
    assert rnn._fold[3].ctypes.data == address              # the same memory, folded again
    np.testing.assert_array_equal(rnn._fold[3], kept)
    np.testing.assert_array_equal(again, first)
    with lk.config(reuse_buffers=False):
        rnn._fold = None
        np.testing.assert_array_equal(model.predict_on_batch(ids), first)


@pytest.mark.parametrize("engine", ["auto", "reference"])
def test_backward_after_inference_forward_recomputes(engine):
    """Layer.forward defaults to training=False and callers (gradient checks)
    run backward after it: the layer reruns the forward with caches."""
    x, *_ = _lstm_args(np.float32)
    layer = lk.LSTM(4, return_sequences=True, engine=engine, seed=5)
    dout = np.random.default_rng(6).standard_normal((5, 7, 4)).astype(np.float32)
    out = layer.forward(x)
    dx = layer.backward(dout)
    out_t = layer.forward(x, training=True)
    dx_t = layer.backward(dout)
    np.testing.assert_allclose(out, out_t, rtol=TOL[np.float32], atol=TOL[np.float32])
    np.testing.assert_array_equal(dx, dx_t)                # both from the cached forward


def test_model_backward_after_folded_forward():
    model = _model("LSTM", False, True)
    ids = np.random.default_rng(7).integers(0, 13, (4, 6))
    dout = np.ones((4, 2), np.float32)
    model.forward(ids)                                     # folded, cacheless
    model.backward(dout)
    folded = {k: v.copy() for k, v in model.trainable_grads().items()}
    model.forward(ids, training=True)
    model.backward(dout)
    for k, v in model.trainable_grads().items():
        np.testing.assert_allclose(folded[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("B", [5, 70])
def test_simple_rnn_cacheless_forward_equals_cached(dtype, reverse, activation, B):
    from lstmkit.kernels import simple_rnn
    x, W_x, W_h, b_x, b_h, state0, mask = _lstm_args(dtype, B=B)
    W_x, W_h, b_x, b_h = W_x[:, :4], W_h[:, :4], b_x[:4], b_h[:4]
    args = (x, W_x, W_h, b_x, b_h, state0[:1])
    hs, state, cache = simple_rnn.forward(*args, mask=mask, reverse=reverse, activation=activation)
    hs2, state2, cache2 = simple_rnn.forward(*args, mask=mask, reverse=reverse,
                                             activation=activation, need_cache=False)
    assert cache is not None and cache2 is None
    # training sums [x_t, h_{t-1}, 1] W_xh in one product, inference adds x W_x + b
    # to h_{t-1} W_h: the same sums rounded in another order (as for the LSTM)
    tol = TOL[dtype]
    np.testing.assert_allclose(hs2, hs, rtol=tol, atol=tol)
    np.testing.assert_allclose(state2[0], state[0], rtol=tol, atol=tol)
    hs3, state3, _ = simple_rnn.forward(*args, mask=mask, reverse=reverse, activation=activation,
                                        need_cache=False, need_outputs=False)
    assert hs3 is None
    np.testing.assert_array_equal(state3[0], state2[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("B", [5, 70])
def test_gru_cacheless_forward_equals_cached(dtype, reverse, reset_after, B):
    from lstmkit.kernels import gru
    x, W_x, W_h, b_x, b_h, state0, mask = _lstm_args(dtype, B=B)
    W_x, W_h, b_x, b_h = W_x[:, :12], W_h[:, :12], b_x[:12], b_h[:12]
    args = (x, W_x, W_h, b_x, b_h, state0[:1])
    hs, state, cache = gru.forward(*args, mask=mask, reverse=reverse, reset_after=reset_after)
    hs2, state2, cache2 = gru.forward(*args, mask=mask, reverse=reverse, reset_after=reset_after,
                                      need_cache=False)
    assert cache is not None and cache2 is None
    np.testing.assert_array_equal(hs2, hs)
    np.testing.assert_array_equal(state2[0], state[0])
    hs3, state3, _ = gru.forward(*args, mask=mask, reverse=reverse, reset_after=reset_after,
                                 need_cache=False, need_outputs=False)
    assert hs3 is None
    np.testing.assert_array_equal(state3[0], state[0])
