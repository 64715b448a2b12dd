"""Two promises of the functional API, checked head-on (issue 9):

- masks travel through the graph as in Keras 3: from Embedding(mask_zero) through
  a recurrent layer, a Dense branch, a Concatenate and the head to the
  loss, so padded steps change neither the loss nor any gradient; an Add with an
  unmasked input drops the mask (Keras 3), and then they do count;
- a layer called twice is one set of weights whose gradients are the sum of what
  two separate copies of it (same weights) would get, on both engines.
"""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.models import training

F64 = dict(dtype="float64")


def loss_and_grads(model, x, y):
    """What one training step computes (the loss and every weight's gradient), without the update."""
    xs, ys = training.standardize(model, x, y)
    fused = training.fused_heads(model)
    outs, masks = model.forward_heads(xs, training=True, fused=fused)
    loss, _, douts, _ = training._losses(model, outs, masks, ys, [None] * len(ys), fused, backward=True)
    model.backward_heads(douts, fused=fused)
    return float(loss), {k: np.array(v, copy=True) for k, v in model.grads.items()}, masks


def tagger(seed=0):
    """ids -> Embedding(mask_zero) -> LSTM (sequence) -> Dense branch -> Concatenate -> softmax head."""
    ids = lk.Input(shape=(None,), dtype="int64")
    seq = lk.LSTM(4, return_sequences=True, seed=seed, **F64)(lk.Embedding(9, 3, mask_zero=True, seed=seed, **F64)(ids))
    side = lk.Dense(4, seed=seed + 2, **F64)(lk.Dense(2, activation="tanh", seed=seed + 1, **F64)(seq))
    merged = lk.Concatenate(**F64)([seq, side])
    return ids, lk.Dense(3, activation="softmax", seed=seed + 3, **F64)(merged)


def test_padded_steps_change_nothing_downstream():
    ids_in, out = tagger()
    model = lk.Model(ids_in, out)
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(1, 9, size=(3, 6))
    x[0, 4:] = 0
    x[2, 2:] = 0
    y = rng.integers(0, 3, size=(3, 6))
    loss, grads, masks = loss_and_grads(model, x, y)
    np.testing.assert_array_equal(masks[0], x != 0)                 # the mask reached the output
    y2 = y.copy()
    y2[x == 0] = (y2[x == 0] + 1) % 3                               # other targets at the padded steps
    loss2, grads2, _ = loss_and_grads(model, x, y2)
    assert loss2 == pytest.approx(loss, abs=1e-14)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], atol=1e-14, err_msg=k)
    # and the padded steps are really padding: the loss equals the mean over real steps only
    p = model.predict(x)
    real = x != 0
    expect = -np.log(np.take_along_axis(p, y[..., None], -1)[..., 0])[real].mean()
    assert loss == pytest.approx(expect, rel=1e-10)


def test_time_distributed_head_keeps_the_mask_as_keras3():
    ids = lk.Input(shape=(None,), dtype="int64")
    seq = lk.LSTM(4, return_sequences=True, seed=0, **F64)(lk.Embedding(9, 3, mask_zero=True, seed=0, **F64)(ids))
    out = lk.TimeDistributed(lk.Dense(3, activation="softmax", seed=1, **F64))(seq)
    model = lk.Model(ids, out)
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(3)
    x = rng.integers(1, 9, size=(2, 5))
    x[0, 2:] = 0
    y = rng.integers(0, 3, size=(2, 5))
    loss, grads, masks = loss_and_grads(model, x, y)
    np.testing.assert_array_equal(masks[0], x != 0)
    y2 = y.copy()
    y2[0, 2:] = (y2[0, 2:] + 1) % 3
    loss2, grads2, _ = loss_and_grads(model, x, y2)
    assert loss2 == pytest.approx(loss, abs=1e-14)
    for k in grads:
        np.testing.assert_allclose(grads2[k], grads[k], atol=1e-14, err_msg=k)


def test_add_with_an_unmasked_input_drops_the_mask_as_keras3():
    ids = lk.Input(shape=(None,), dtype="int64")
    extra = lk.Input(shape=(None, 4), dtype="float64")
    seq = lk.LSTM(4, return_sequences=True, seed=0, **F64)(lk.Embedding(9, 3, mask_zero=True, seed=0, **F64)(ids))
    out = lk.Dense(3, activation="softmax", seed=1, **F64)(lk.Add(**F64)([seq, extra]))
    model = lk.Model([ids, extra], out)
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.integers(1, 9, size=(2, 5))
    x[1, 3:] = 0
    e = rng.normal(size=(2, 5, 4))
    y = rng.integers(0, 3, size=(2, 5))
    loss, _, masks = loss_and_grads(model, [x, e], y)
    assert masks[0] is None
    y2 = y.copy()
    y2[1, 3:] = (y2[1, 3:] + 1) % 3
    assert abs(loss_and_grads(model, [x, e], y2)[0] - loss) > 1e-6   # padded steps count now


def siamese(shared, engine):
    """Two inputs through an LSTM (one shared, or two copies with the same weights), then a head."""
    a, b = lk.Input(shape=(5, 3), dtype="float64"), lk.Input(shape=(4, 3), dtype="float64")
    first = lk.LSTM(4, engine=engine, seed=1, name="enc", **F64)
    second = first if shared else lk.LSTM(4, engine=engine, seed=1, name="enc_copy", **F64)
    merged = lk.Concatenate(**F64)([first(a), second(b)])
    out = lk.Dense(1, activation="sigmoid", seed=2, name="head", **F64)(merged)
    model = lk.Model([a, b], out)
    model.compile("sgd", loss="binary_crossentropy")
    return model, first, second


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_a_shared_layer_gets_the_sum_of_two_copies_gradients(engine):
    rng = np.random.default_rng(2)
    x = [rng.normal(size=(3, 5, 3)), rng.normal(size=(3, 4, 3))]
    y = np.array([1.0, 0.0, 1.0])
    shared, enc, _ = siamese(True, engine)
    split, one, two = siamese(False, engine)
    two.set_weights(one.get_weights())
    for name in ("W_x", "W_h", "b_x"):
        np.testing.assert_array_equal(enc.params[name], one.params[name])
    loss_s, g_s, _ = loss_and_grads(shared, x, y)
    loss_c, g_c, _ = loss_and_grads(split, x, y)
    assert loss_s == pytest.approx(loss_c, abs=1e-14)
    assert len(g_s) == 5 and len(g_c) == 8                          # one LSTM's weights, not two
    for name in ("W_x", "W_h", "b_x"):
        a, b = g_c[f"enc/{name}"], g_c[f"enc_copy/{name}"]
        assert np.abs(a).max() > 0 and np.abs(b).max() > 0
        np.testing.assert_allclose(g_s[f"enc/{name}"], a + b, atol=1e-13, err_msg=name)
    np.testing.assert_allclose(g_s["head/W"], g_c["head/W"], atol=1e-13)
    # a second step from the same start gives the same sum: no call's cache leaks into the next
    loss_s2, g_s2, _ = loss_and_grads(shared, x, y)
    for k in g_s:
        np.testing.assert_allclose(g_s2[k], g_s[k], atol=1e-14, err_msg=k)
