"""Keras 3 (on its PyTorch backend) both ways: identical predictions on random
weights for every layer kind, masks included; .keras and .weights.h5 files
read with h5py; a model trained in one library loads into the other."""
import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras                                     # noqa: E402
import numpy as np                               # noqa: E402
import pytest                                    # noqa: E402

import lstmkit as lk                             # noqa: E402
from lstmkit.interop.keras import KerasConversionError, from_keras, to_keras    # noqa: E402

REPO = Path(__file__).resolve().parents[1]
L = keras.layers
ATOL = 1e-5


def randomize_keras(model, seed=0, scale=0.5):
    """Random weights (constant ones cannot catch a swapped gate order)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.normal(scale=scale, size=w.shape) for w in layer.get_weights()])
    return model


def randomize(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    for v in model.params.values():
        v[...] = rng.normal(scale=scale, size=v.shape)
    return model


def predict_keras(model, x):
    return keras.ops.convert_to_numpy(model(x))


def ragged_ids(rng, batch=6, T=7, vocab=20):
    x = rng.integers(1, vocab, size=(batch, T))
    x[0, :3] = 0          # pre-padding
    x[1, 4:] = 0          # post-padding
    x[2, 2:4] = 0         # a hole
    x[3] = 0              # nothing
    return x


def keras_text_model(reset_after):
    return keras.Sequential([
        keras.Input((7,), dtype="int32"), L.Embedding(20, 5, mask_zero=True),
        L.Bidirectional(L.GRU(4, return_sequences=True, reset_after=reset_after), merge_mode="sum"),
        L.LSTM(4, return_sequences=True),
        L.Bidirectional(L.SimpleRNN(3, return_sequences=True, activation="relu"), merge_mode="concat",
                        backward_layer=L.LSTM(3, return_sequences=True, go_backwards=True)),
        L.GRU(3, reset_after=reset_after, go_backwards=True), L.Dropout(0.2), L.Dense(2, activation="softmax")])


def test_keras_comes_without_tensorflow_or_jax():
    # `pip install keras` (the test extra) must not have pulled either backend
    assert keras.backend.backend() == "torch"
    assert importlib.util.find_spec("tensorflow") is None and importlib.util.find_spec("jax") is None


@pytest.mark.parametrize("reset_after", [True, False])
def test_from_a_live_keras_model(reset_after):
    km = randomize_keras(keras_text_model(reset_after), seed=1)
    x = ragged_ids(np.random.default_rng(2))
    model = from_keras(km)
    assert [type(l).__name__ for l in model.layers] == ["Embedding", "Bidirectional", "LSTM", "Bidirectional",
                                                        "GRU", "Dropout", "Dense"]
    np.testing.assert_allclose(model.predict(x), predict_keras(km, x), rtol=0, atol=ATOL)


def test_keras_files_read_with_h5py(tmp_path):
    km = randomize_keras(keras_text_model(True), seed=3)
    km.save(tmp_path / "m.keras")
    km.save_weights(tmp_path / "m.weights.h5")
    x = ragged_ids(np.random.default_rng(4))
    expected = predict_keras(km, x)
    np.testing.assert_allclose(lk.interop.keras.from_keras(tmp_path / "m.keras").predict(x), expected, atol=ATOL)
    target = randomize(from_keras(keras_text_model(True)), seed=5)             # same layers, other weights
    from_keras(tmp_path / "m.weights.h5", model=target)
    np.testing.assert_allclose(target.predict(x), expected, atol=ATOL)
    # the .keras file needs h5py only: read it where keras cannot be imported
    np.save(tmp_path / "x.npy", x)
    code = ("import sys; sys.modules['keras'] = None\n"
            "import numpy as np\n"
            "from lstmkit.interop.keras import from_keras\n"
            f"m = from_keras({str(tmp_path / 'm.keras')!r})\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r})))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=ATOL)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_keras(tmp_path, dtype):
    model = lk.Sequential([
        lk.Embedding(20, 5, input_length=7, mask_zero=True, dtype=dtype),
        lk.LSTM(4, return_sequences=True, two_biases=True, dtype=dtype),        # goes as the sum of its biases
        lk.Bidirectional(lk.GRU(4, return_sequences=True, dtype=dtype), merge_mode="ave"),
        lk.RNNStack([lk.GRU(3, reset_after=False, return_sequences=True, dtype=dtype),
                     lk.SimpleRNN(3, return_sequences=True, activation="relu", dtype=dtype)]),
        lk.Bidirectional(lk.LSTM(3, dtype=dtype), merge_mode="mul"),
        lk.Dense(2, activation="sigmoid", dtype=dtype)])
    randomize(model, seed=6)
    x = ragged_ids(np.random.default_rng(7))
    km = to_keras(model)
    np.testing.assert_allclose(predict_keras(km, x), model.predict(x), rtol=0,
                               atol=ATOL if dtype == "float32" else 1e-7)
    km.save(tmp_path / "m.keras")
    np.testing.assert_allclose(from_keras(tmp_path / "m.keras").predict(x), model.predict(x),
                               atol=ATOL if dtype == "float32" else 1e-7)


@pytest.mark.slow
def test_trained_in_keras_loads_into_lstmkit_and_back():
    rng = np.random.default_rng(8)
    x = np.stack([ragged_ids(rng) for _ in range(6)]).reshape(-1, 7)
    y = (x[:, -1] % 2).astype("float32")
    km = keras.Sequential([keras.Input((7,), dtype="int32"), L.Embedding(20, 8, mask_zero=True),
                           L.GRU(8, return_sequences=True), L.LSTM(6), L.Dense(1, activation="sigmoid")])
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    before = [w.copy() for w in km.get_weights()]
    km.fit(x, y, epochs=3, batch_size=12, verbose=0)
    assert max(np.abs(a - b).max() for a, b in zip(km.get_weights(), before)) > 1e-2
    model = from_keras(km)
    np.testing.assert_allclose(model.predict(x), predict_keras(km, x), atol=ATOL)
    # and trained further in lstmkit, back into Keras
    model.compile(optimizer="adam", loss="binary_crossentropy")
    p0 = model.predict(x)
    model.fit(x, y, epochs=3, batch_size=12, verbose=0)
    assert np.abs(model.predict(x) - p0).max() > 1e-3
    np.testing.assert_allclose(predict_keras(to_keras(model), x), model.predict(x), atol=ATOL)


def test_what_is_refused_or_warned(tmp_path):
    conv = keras.Sequential([keras.Input((7, 3)), L.Conv1D(4, 3)])
    with pytest.raises(KerasConversionError, match="Conv1D has no lstmkit counterpart"):
        from_keras(conv)
    hard = keras.Sequential([keras.Input((7, 3)), L.LSTM(4, recurrent_activation="hard_sigmoid")])
    with pytest.raises(KerasConversionError, match="recurrent_activation='hard_sigmoid'"):
        from_keras(hard)
    with pytest.raises(KerasConversionError, match="pass the lstmkit model"):
        from_keras(tmp_path / "w.weights.h5")
    small = keras.Sequential([keras.Input((7, 3)), L.LSTM(4), L.Dense(1)])
    small.save_weights(tmp_path / "w.weights.h5")
    other = lk.Sequential([lk.LSTM(5, input_shape=(7, 3)), lk.Dense(1)])
    with pytest.raises(KerasConversionError, match=r"needs arrays of shapes \[\(3, 20\)"):
        from_keras(tmp_path / "w.weights.h5", model=other)
    (tmp_path / "bad.keras").write_bytes(b"no zip here")
    with pytest.raises(KerasConversionError, match="not a .keras file"):
        from_keras(tmp_path / "bad.keras")
    backwards = lk.Sequential([lk.Embedding(9, 3, input_length=5, mask_zero=True),
                               lk.LSTM(3, go_backwards=True, return_sequences=True), lk.GRU(2)])
    with pytest.warns(UserWarning, match="mask unreversed"):
        to_keras(backwards)
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # without a mask there is nothing to warn about
        to_keras(lk.Sequential([lk.LSTM(3, go_backwards=True, return_sequences=True, input_shape=(5, 2)),
                                lk.GRU(2)]))


# ---- functional models -------------------------------------------------------------------------

def keras_seq2seq():
    src = keras.Input((None,), dtype="int32", name="src")
    tgt = keras.Input((None,), dtype="int32", name="tgt")
    enc, h, c = L.LSTM(6, return_sequences=True, return_state=True)(L.Embedding(20, 5, mask_zero=True)(src))
    dec = L.LSTM(6, return_sequences=True)(L.Embedding(15, 5)(tgt), initial_state=[h, c])
    ctx, w = L.Attention(use_scale=True, score_mode="concat")([dec, enc], return_attention_scores=True)
    add = L.AdditiveAttention()([dec, enc])
    out = L.Dense(15, activation="softmax")(L.Concatenate()([dec, ctx, L.Multiply()([ctx, add])]))
    return keras.Model([src, tgt], [out, w])


def test_functional_from_keras_live_and_files(tmp_path):
    rng = np.random.default_rng(10)
    km = randomize_keras(keras_seq2seq(), seed=11)
    xs = ragged_ids(rng, T=7)
    xt = rng.integers(1, 15, size=(6, 6))
    expected = [keras.ops.convert_to_numpy(t) for t in km([xs, xt])]
    model = from_keras(km)
    assert isinstance(model, lk.Model) and model.input_names == ["src", "tgt"]
    for got, want in zip(model.predict([xs, xt]), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    km.save(tmp_path / "m.keras")
    km.save_weights(tmp_path / "m.weights.h5")
    for got, want in zip(from_keras(tmp_path / "m.keras").predict([xs, xt]), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    target = randomize(from_keras(keras_seq2seq()), seed=12)
    from_keras(tmp_path / "m.weights.h5", model=target)
    for got, want in zip(target.predict([xs, xt]), expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


def test_functional_to_keras_every_layer(tmp_path):
    rng = np.random.default_rng(13)
    src = lk.Input(shape=(None,), dtype="int32", name="src")
    tgt = lk.Input(shape=(None,), dtype="int32", name="tgt")
    v = lk.Input(shape=(4,), name="v")
    enc, hf, cf, hb, cb = lk.Bidirectional(lk.LSTM(4, return_sequences=True, return_state=True))(
        lk.Embedding(20, 5, mask_zero=True)(src))
    h = lk.Concatenate()([hf, hb])
    c = lk.Concatenate()([cf, cb])
    # a masked decoder given initial states: Keras would drop the mask here, to_keras hands it over
    dec = lk.LSTM(8, return_sequences=True)(lk.Embedding(15, 5, mask_zero=True)(tgt), initial_state=[h, c])
    ctx = lk.Attention()([dec, enc])
    rep = lk.RepeatVector(6)(lk.Dense(8, activation="tanh")(v))
    mixed = lk.Average()([lk.Subtract()([ctx, dec]), lk.Add()([rep, dec])])
    td = lk.TimeDistributed(lk.Dense(3, activation="softmax"))(mixed)
    cos = lk.Dot(axes=1, normalize=True)([h, lk.Dense(8)(v)])
    model = lk.Model([src, tgt, v], [td, cos])
    randomize(model, seed=14)
    xs = ragged_ids(rng, T=7)
    xt = ragged_ids(rng, T=6, vocab=15)
    xv = rng.normal(size=(6, 4)).astype("float32")
    km = to_keras(model)
    want = model.predict([xs, xt, xv])
    for got, w in zip(km([xs, xt, xv]), want):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), w, rtol=0, atol=ATOL)
    km.save(tmp_path / "g.keras")
    for got, w in zip(from_keras(tmp_path / "g.keras").predict([xs, xt, xv]), want):
        np.testing.assert_allclose(got, w, rtol=0, atol=ATOL)
    general = lk.Model(src, lk.Attention(score_mode="general")([enc, enc]))
    with pytest.raises(KerasConversionError, match="score_mode='general'"):
        to_keras(general)


def test_a_keras_recurrent_call_with_initial_state_drops_the_mask_warned():
    src = keras.Input((None,), dtype="int32")
    h0 = keras.Input((3,))
    c0 = keras.Input((3,))
    out = L.LSTM(3, return_sequences=True)(L.Embedding(15, 2, mask_zero=True)(src), initial_state=[h0, c0])
    with pytest.warns(UserWarning, match="without the mask of its input"):
        from_keras(keras.Model([src, h0, c0], out))
