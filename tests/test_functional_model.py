"""lk.Input / lk.Model: building graphs, the errors a user meets, several inputs
and outputs in fit/evaluate/predict, the same training as Sequential, summary
with "Connected to", save/load, and the inference shortcuts (embedding folding)."""
import numpy as np
import pytest

import lstmkit as lk


def seed_model_pair(seed=0, T=12, V=50):
    """The seed model twice, as a Sequential and functionally, with the same weights."""
    seq = lk.Sequential([lk.Embedding(V, 8, input_length=T), lk.LSTM(6), lk.Dense(1, activation="sigmoid")],
                        seed=seed)
    ids = lk.Input(shape=(T,), dtype="int32")
    x = lk.Embedding(V, 8)(ids)
    x = lk.LSTM(6)(x)
    out = lk.Dense(1, activation="sigmoid")(x)
    fun = lk.Model(ids, out)
    for a, b in zip(seq.layers, fun.layers[1:]):
        b.set_weights(a.get_weights())
    return seq, fun


def token_task(n=96, T=12, V=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, V, size=(n, T))
    y = (x[:, :3].mean(1) > V / 2).astype(np.float32)
    return x, y


# ---- building --------------------------------------------------------------------------------
def test_symbolic_calls_record_shapes_and_outputs():
    enc = lk.Input(shape=(None, 7), name="encoder_in")
    assert enc.shape == (None, None, 7) and enc.dtype == np.float32
    lstm = lk.LSTM(5, return_state=True, return_sequences=True)
    seq, h, c = lstm(enc)
    assert seq.shape == (None, None, 5) and h.shape == (None, 5) and c.shape == (None, 5)
    assert lstm.output == [seq, h, c] and lstm.input is enc
    assert repr(h).endswith(f"from {lstm.name}[0][1]>")
    dense = lk.Dense(3)
    y = dense(seq)
    y2 = dense(lk.Input(shape=(4, 5)))
    with pytest.raises(AttributeError, match="called 2 times"):
        dense.output
    assert dense.get_output_at(1) is y2 and y.shape == (None, None, 3)
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(h)
    with pytest.raises(TypeError, match="one tensor, not a list"):
        a, b = y


def test_graph_errors_name_the_problem():
    a, b = lk.Input(shape=(3,), name="a"), lk.Input(shape=(3,), name="b")
    s = lk.Add()([a, b])
    with pytest.raises(ValueError, match="graph disconnected.*'b'"):
        lk.Model(a, s)
    with pytest.raises(ValueError, match=r"built for inputs of shape \(None, 3\).*\(None, 4\)"):
        d = lk.Dense(2)
        d(a)
        d(lk.Input(shape=(4,)))
    with pytest.raises(ValueError, match="used by different layers"):
        lk.Model(a, lk.Dense(1, name="same")(lk.Dense(2, name="same")(a)))
    with pytest.raises(ValueError, match="Concatenate.*match except"):
        lk.Concatenate(axis=1)([lk.Input(shape=(2, 3)), lk.Input(shape=(2, 4))])
    with pytest.raises(TypeError, match="symbolic tensors"):
        lk.Model(a, np.zeros(3))
    with pytest.raises(ValueError, match="Input needs a shape"):
        lk.Input()
    model = lk.Model([a, b], s)
    with pytest.raises(ValueError, match=r"takes 2 inputs \['a', 'b'\]; got a list of 1"):
        model.predict([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"input 'b' of model .* expects arrays of shape \(None, 3\); got shape \(2, 5\)"):
        model.predict([np.zeros((2, 3)), np.zeros((2, 5))])
    with pytest.raises(ValueError, match=r"lacks \['b'\]"):
        model.predict({"a": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="different numbers of samples"):
        model.predict([np.zeros((2, 3)), np.zeros((3, 3))])


def test_layers_order_and_eager_calls():
    a = lk.Input(shape=(4, 2))
    lstm = lk.LSTM(3, return_state=True)
    _, h, c = lstm(a)
    b = lk.Input(shape=(5, 2))
    dec = lk.LSTM(3, return_sequences=True)
    y = lk.Dense(1)(dec(b, initial_state=[h, c]))
    model = lk.Model([a, b], y)
    # Keras's order for the seq2seq recipe: the inputs, then the layers as called
    assert [type(l).__name__ for l in model.layers] == ["InputLayer", "InputLayer", "LSTM", "LSTM", "Dense"]
    assert model.input == [a, b] and model.output is y and model.get_layer(lstm.name) is lstm
    x = np.random.default_rng(0).normal(size=(2, 4, 2)).astype(np.float32)
    out, hh, cc = lstm(x)                                    # arrays in: the layer runs
    np.testing.assert_allclose(hh, lstm.forward(x)[1])


def test_nested_sequential_and_model_as_layers():
    rng = np.random.default_rng(1)
    inner_seq = lk.Sequential([lk.Dense(4, activation="tanh", input_dim=3), lk.Dense(2)], seed=1)
    i1 = lk.Input(shape=(3,))
    inner = lk.Model(i1, lk.Dense(3, activation="relu", seed=2)(i1), name="inner")
    x_in = lk.Input(shape=(3,))
    out = inner_seq(inner(x_in))
    model = lk.Model(x_in, out)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), inner_seq.predict(inner.predict(x)), rtol=1e-6)
    assert set(model.params) == {f"inner/{inner.layers[1].name}/W", f"inner/{inner.layers[1].name}/b",
                                 *[f"{inner_seq.name}/{k}" for k in inner_seq.params]}
    model.compile(lk.SGD(0.1), loss="mse")
    before = model.evaluate(x, np.ones((5, 2)))
    for _ in range(20):
        model.train_on_batch(x, np.ones((5, 2)))
    assert model.evaluate(x, np.ones((5, 2))) < 0.5 * before


# ---- training --------------------------------------------------------------------------------------
def test_functional_seed_model_trains_exactly_as_sequential():
    x, y = token_task()
    seq, fun = seed_model_pair()
    for m in (seq, fun):
        m.compile(optimizer=lk.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    np.testing.assert_array_equal(seq.predict(x), fun.predict(x))
    h1 = seq.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, seed=3)
    h2 = fun.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, seed=3)
    assert h1.history == h2.history and set(h2.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for a, b in zip(seq.get_weights().values(), fun.get_weights().values()):
        np.testing.assert_array_equal(a, b)
    assert seq.evaluate(x, y) == fun.evaluate(x, y)


def two_in_two_out(seed=0):
    ids = lk.Input(shape=(None,), dtype="int32", name="ids")
    extra = lk.Input(shape=(2,), name="extra")
    seq = lk.LSTM(8, return_sequences=True, seed=seed)(lk.Embedding(20, 6, mask_zero=True, seed=seed)(ids))
    tags = lk.Dense(3, activation="softmax", name="tags", seed=seed)(seq)
    summary = lk.Concatenate()([lk.LSTM(4, seed=seed)(seq), extra])
    flag = lk.Dense(1, activation="sigmoid", name="flag", seed=seed)(summary)
    return lk.Model([ids, extra], [tags, flag])


def multi_task(n=128, T=6, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 20, size=(n, T))
    lengths = rng.integers(2, T + 1, size=n)
    ids[np.arange(T)[None, :] >= lengths[:, None]] = 0
    extra = rng.normal(size=(n, 2)).astype(np.float32)
    tags = ids % 3
    flag = ((extra[:, 0] > 0) ^ (ids[:, 0] > 10)).astype(np.float32)
    return {"ids": ids, "extra": extra}, {"tags": tags, "flag": flag}


def test_two_inputs_two_outputs_fit_evaluate_predict():
    x, y = multi_task()
    model = two_in_two_out()
    model.compile(optimizer=lk.Adam(0.02), loss={"tags": "sparse_categorical_crossentropy",
                                                  "flag": "binary_crossentropy"},
                  loss_weights={"tags": 1.0, "flag": 0.5}, metrics=["accuracy"])
    h = model.fit(x, y, epochs=12, batch_size=32, validation_split=0.25, verbose=0, seed=0)
    assert set(h.history) == {"loss", "tags_loss", "flag_loss", "tags_accuracy", "flag_accuracy",
                              "val_loss", "val_tags_loss", "val_flag_loss", "val_tags_accuracy",
                              "val_flag_accuracy"}
    logs = model.evaluate(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["tags_loss"] + 0.5 * logs["flag_loss"], rel=1e-6)
    assert logs["tags_accuracy"] > 0.9                        # tag = id % 3 is easy per step
    tags, flag = model.predict([x["ids"], x["extra"]], batch_size=50)
    assert tags.shape == (128, 6, 3) and flag.shape == (128, 1)
    real = x["ids"] != 0
    assert logs["tags_accuracy"] == pytest.approx((tags.argmax(-1) == y["tags"])[real].mean())  # padding ignored
    assert h.history["loss"][-1] < h.history["loss"][0]
    as_list = model.evaluate([x["ids"], x["extra"]], [y["tags"], y["flag"]])
    assert as_list == pytest.approx(list(logs.values()))
    with pytest.raises(ValueError, match="unknown outputs"):
        model.fit(x, {"tags": y["tags"], "nope": y["flag"]}, verbose=0)
    with pytest.raises(ValueError, match="has a loss but no target"):
        model.fit(x, {"tags": y["tags"]}, verbose=0)


def test_sample_weights_per_output_and_train_on_batch():
    x, y = multi_task(32)
    model = two_in_two_out()
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "binary_crossentropy"])
    w = np.linspace(0.5, 2, 32)
    plain = model.evaluate(x, y, return_dict=True)
    weighted = model.evaluate(x, y, sample_weight={"flag": w}, return_dict=True)
    assert weighted["tags_loss"] == pytest.approx(plain["tags_loss"])
    assert weighted["flag_loss"] != pytest.approx(plain["flag_loss"])
    loss = model.train_on_batch(x, y, sample_weight={"flag": w})
    assert loss == pytest.approx(weighted["loss"], rel=1e-5)


# ---- summary, save, load ---------------------------------------------------------------------------
def test_summary_connected_to(capsys):
    model = two_in_two_out()
    model.summary()
    text = capsys.readouterr().out
    assert "Connected to" in text and "Output Shape" in text
    emb, lstm1, lstm2 = model.layers[2], model.layers[3], model.layers[5]
    assert f"{emb.name} (Embedding)" in text and "ids[0][0]" in text
    line = next(l for l in text.splitlines() if l.startswith(f"{lstm2.name} (LSTM)"))
    assert line.split()[-1] == f"{lstm1.name}[0][0]"
    cat = next(l for l in text.splitlines() if "(Concatenate)" in l)
    i = text.splitlines().index(cat)
    assert cat.endswith(f"{lstm2.name}[0][0]") and text.splitlines()[i + 1].strip() == "extra[0][0]"
    total = int(text.split("Total params: ")[1].split()[0].replace(",", ""))
    assert total == sum(v.size for v in model.params.values())


def test_save_load_round_trip_with_attention_shared_layer_and_state(tmp_path):
    rng = np.random.default_rng(0)
    enc_in = lk.Input(shape=(None,), dtype="int32", name="enc")
    dec_in = lk.Input(shape=(None,), dtype="int32", name="dec")
    emb = lk.Embedding(12, 5, mask_zero=True)                       # shared by encoder and decoder
    enc_seq, h, c = lk.LSTM(6, return_sequences=True, return_state=True)(emb(enc_in))
    dec_seq = lk.LSTM(6, return_sequences=True)(emb(dec_in), initial_state=[h, c])
    ctx, weights = lk.Attention(use_scale=True)([dec_seq, enc_seq], return_attention_scores=True)
    out = lk.Dense(12, activation="softmax", name="next")(lk.Concatenate()([dec_seq, ctx]))
    model = lk.Model([enc_in, dec_in], [out, weights])
    model.compile(optimizer=lk.Adam(0.01), loss={"next": "sparse_categorical_crossentropy"},
                  metrics={"next": ["accuracy"]})
    x = [rng.integers(1, 12, size=(8, 5)), rng.integers(1, 12, size=(8, 4))]
    x[0][:, 3:] = 0
    y = {"next": rng.integers(0, 12, size=(8, 4))}
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    path = tmp_path / "s2s.lstmkit"
    model.save(path)
    loaded = lk.load_model(path)
    assert type(loaded) is lk.Model and [l.name for l in loaded.layers] == [l.name for l in model.layers]
    for a, b in zip(model.predict(x), loaded.predict(x)):
        np.testing.assert_array_equal(a, b)
    assert loaded.predict(x)[1][:, :, 3:].max() < 1e-6            # masked encoder steps get no attention
    # training resumes identically: same optimizer state
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for k, v in model.get_weights().items():
        np.testing.assert_allclose(loaded.get_weights()[k], v, rtol=1e-6, atol=1e-7)
    assert loaded.output_names == ["next", weights.node.layer.name]
    with open(path, "rb") as f:
        assert b"pickle" not in f.read()


def test_load_keeps_sequential_and_rebuilds_a_graph_of_merges(tmp_path):
    a, b = lk.Input(shape=(3, 4)), lk.Input(shape=(4,))
    s = lk.Multiply()([lk.Add()([a, b]), lk.RepeatVector(3)(b)])
    s = lk.Dot(axes=(2, 1), normalize=True)([s, b])
    s = lk.TimeDistributed(lk.Dense(2))(lk.Concatenate(axis=1)([lk.Subtract()([a, a]), lk.Average()([a, a])]))
    model = lk.Model([a, b], s)
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4))]
    model.save(tmp_path / "m.lstmkit")
    loaded = lk.load_model(tmp_path / "m.lstmkit")
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    seq = lk.Sequential([lk.LSTM(3, input_shape=(4, 2)), lk.Dense(1)])
    seq.save(tmp_path / "s.lstmkit")
    assert type(lk.load_model(tmp_path / "s.lstmkit")) is lk.Sequential


# ---- inference shortcuts -----------------------------------------------------------------------------
def test_embedding_folds_into_the_recurrent_layer_at_inference(monkeypatch):
    x, _ = token_task(20)
    seq, fun = seed_model_pair()
    calls = []
    lstm = fun.layers[2]
    original = type(lstm).forward_from_embedding
    monkeypatch.setattr(type(lstm), "forward_from_embedding",
                        lambda self, *a, **k: calls.append(self.name) or original(self, *a, **k))
    p = fun.predict(x)
    assert calls == [lstm.name]                                # the folded path ran
    np.testing.assert_array_equal(p, seq.predict(x))
    np.testing.assert_allclose(p, fun.forward(x, training=True), rtol=1e-5, atol=1e-6)
    # not when the embedding's output is read twice
    ids = lk.Input(shape=(12,), dtype="int32")
    e = lk.Embedding(50, 8)(ids)
    two = lk.Model(ids, lk.Add()([lk.LSTM(4)(e), lk.GRU(4)(e)]))
    calls.clear()
    two.predict(x)
    assert calls == []
