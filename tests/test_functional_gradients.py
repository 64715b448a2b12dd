"""Whole functional models against finite differences in float64: every weight
(and every float input) of a graph with a shared layer, two inputs, attention,
several outputs, and an encoder reached only through a decoder's initial_state.

The loss is what fit trains: every output's loss (fused with its sigmoid or
softmax head where it can be), weighted by loss_weights, summed.
"""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.models import training
from gradcheck_util import numeric_grad

TOL = 1e-6
EPS = 1e-4                  # central differences: truncation ~eps^2, rounding ~1e-16/eps


def loss_and_grads(model, x, y):
    xs, ys = training.standardize(model, x, y)
    sws = [None] * len(ys)
    fused = training.fused_heads(model)

    def value():
        outs, masks = model.forward_heads(xs, training=True, fused=fused)
        return training._losses(model, outs, masks, ys, sws, fused, backward=False)[0]

    outs, masks = model.forward_heads(xs, training=True, fused=fused)
    _, _, douts, _ = training._losses(model, outs, masks, ys, sws, fused, backward=True)
    model.backward_heads(douts, fused=fused)
    grads = {k: np.array(v, copy=True) for k, v in model.grads.items()}
    dxs = [None if g is None else np.array(g, copy=True) for g in model._input_grads]
    return value, xs, grads, dxs, fused


def check(model, x, y, expect_fused=None, skip=()):
    value, xs, grads, dxs, fused = loss_and_grads(model, x, y)
    if expect_fused is not None:
        assert fused == expect_fused
    params = model.params
    assert set(grads) == set(params)
    errors = {}
    for k, p in params.items():
        if any(s in k for s in skip):
            continue
        num = numeric_grad(value, p, eps=EPS)
        scale = max(np.abs(num).max(), np.abs(grads[k]).max(), 1e-12)
        errors[k] = float(np.abs(grads[k] - num).max() / scale)
        assert np.abs(num).max() > 0 or np.abs(grads[k]).max() == 0, k
    for i, (a, g) in enumerate(zip(xs, dxs)):
        if a.dtype.kind == "f":
            num = numeric_grad(value, a, eps=EPS)
            errors[f"input {i}"] = float(np.abs(g - num).max() / max(np.abs(num).max(), 1e-12))
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOL, (worst, errors)
    return errors


rng = np.random.default_rng(0)
F64 = dict(dtype="float64")
ENGINES = ["reference", "fast"]


def ids(B, T, V, pad_from=None):
    a = rng.integers(1, V, size=(B, T))
    if pad_from is not None:
        for i, n in enumerate(pad_from):
            a[i, n:] = 0
    return a


@pytest.mark.parametrize("engine", ENGINES)
def test_shared_lstm_on_two_inputs(engine):
    """A siamese pair: one LSTM reads both inputs; its gradients add up."""
    a, b = lk.Input(shape=(5, 3), dtype="float64"), lk.Input(shape=(4, 3), dtype="float64")
    lstm = lk.LSTM(4, engine=engine, seed=1, **F64)
    merged = lk.Concatenate(**F64)([lstm(a), lstm(b)])
    out = lk.Dense(1, activation="sigmoid", seed=2, **F64)(merged)
    model = lk.Model([a, b], out)
    model.compile("sgd", loss="binary_crossentropy")
    x = [rng.normal(size=(3, 5, 3)), rng.normal(size=(3, 4, 3))]
    errs = check(model, x, np.array([1.0, 0.0, 1.0]), expect_fused=[True])
    assert set(model.params) == {f"{lstm.name}/W_x", f"{lstm.name}/W_h", f"{lstm.name}/b_x",
                                 f"{model.layers[-1].name}/W", f"{model.layers[-1].name}/b"}
    assert errs


def test_shared_dense_applied_to_its_own_output():
    """d(d(x)): the second call's forward overwrites the first's cache; each node keeps its own."""
    x_in = lk.Input(shape=(3,), dtype="float64")
    d = lk.Dense(3, activation="tanh", seed=3, **F64)
    out = lk.Dense(2, seed=4, **F64)(d(d(x_in)))
    model = lk.Model(x_in, out)
    model.compile("sgd", loss="mse")
    check(model, rng.normal(size=(4, 3)), rng.normal(size=(4, 2)))


@pytest.mark.parametrize("engine", ENGINES)
def test_shared_embedding_two_id_inputs_and_features(engine):
    """An Embedding (mask_zero) shared by two id inputs -- its gradient table is reused
    in place between calls -- and a third, real-valued input."""
    q, d = lk.Input(shape=(None,), dtype="int64"), lk.Input(shape=(None,), dtype="int64")
    feats = lk.Input(shape=(2,), dtype="float64")
    emb = lk.Embedding(7, 3, mask_zero=True, seed=5, **F64)
    hq = lk.GRU(4, engine=engine, seed=6, **F64)(emb(q))
    hd = lk.LSTM(4, engine=engine, seed=7, **F64)(emb(d))
    z = lk.Add(**F64)([hq, hd])
    z = lk.Concatenate(**F64)([lk.Multiply(**F64)([z, hq]), feats])
    out = lk.Dense(3, activation="softmax", seed=8, **F64)(z)
    model = lk.Model([q, d, feats], out)
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    spread_out(model)
    x = {q.node.layer.name: ids(3, 5, 7, [5, 3, 2]), d.node.layer.name: ids(3, 4, 7, [2, 4, 1]),
         feats.node.layer.name: rng.normal(size=(3, 2))}
    check(model, x, np.array([0, 2, 1]), expect_fused=["rows"])


def spread_out(model):
    """Embeddings of size ~1 instead of ~0.05 and attention scalars off their start
    of 1, so that every weight has a gradient well above the rounding of finite differences."""
    for layer in model.layers:
        if isinstance(layer, lk.Embedding):
            layer.params["embeddings"] *= 20
        if isinstance(layer, lk.Attention):
            for p in layer.params.values():
                p[...] = p + rng.normal(size=p.shape) * 0.3


def attention_seq2seq(engine, V=6, H=4, E=3, score_mode="dot", attention="luong", **kw):
    enc_in = lk.Input(shape=(None,), dtype="int64", name="enc")
    dec_in = lk.Input(shape=(None,), dtype="int64", name="dec")
    enc_seq, h, c = lk.LSTM(H, return_sequences=True, return_state=True, engine=engine, seed=11, **F64)(
        lk.Embedding(V, E, mask_zero=True, seed=10, **F64)(enc_in))
    dec_seq = lk.LSTM(H, return_sequences=True, engine=engine, seed=13, **F64)(
        lk.Embedding(V, E, mask_zero=True, seed=12, **F64)(dec_in), initial_state=[h, c])
    if attention == "luong":
        ctx = lk.Attention(use_scale=True, score_mode=score_mode, seed=14, **F64)([dec_seq, enc_seq])
    else:
        ctx = lk.AdditiveAttention(seed=14, **F64)([dec_seq, enc_seq])
    out = lk.Dense(V, activation="softmax", seed=15, **F64)(lk.Concatenate(**F64)([dec_seq, ctx]))
    return lk.Model([enc_in, dec_in], out, **kw)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("score_mode, attention", [("dot", "luong"), ("general", "luong"),
                                                   ("concat", "luong"), (None, "bahdanau")])
def test_encoder_decoder_with_attention(engine, score_mode, attention):
    model = attention_seq2seq(engine, score_mode=score_mode, attention=attention)
    spread_out(model)
    model.compile("sgd", loss=lk.SparseCategoricalCrossentropy(reduction="sum_over_time"))
    x = [ids(3, 5, 6, [5, 3, 2]), ids(3, 4, 6, [4, 2, 3])]
    y = rng.integers(0, 6, size=(3, 4))
    errs = check(model, x, y, expect_fused=[True])
    enc_keys = [k for k in errs if k.startswith(model.layers[2].name) or k.startswith(model.layers[3].name)]
    assert enc_keys                               # the encoder's weights were checked


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_softmax_head_at_real_steps_only(engine, smoothing):
    """A mean over real steps (the default reduction) lets the head project only the
    unmasked steps (Dense.forward_rows): same loss, same gradients, with label smoothing
    and per-sample weights."""
    model = attention_seq2seq(engine, score_mode="general")
    spread_out(model)
    model.compile("sgd", loss=lk.SparseCategoricalCrossentropy(label_smoothing=smoothing))
    x = [ids(3, 5, 6, [5, 3, 2]), ids(3, 4, 6, [4, 2, 3])]
    y = rng.integers(0, 6, size=(3, 4))
    # (the attention's scale has a gradient near 1e-5 here, at the rounding of finite
    # differences; test_encoder_decoder_with_attention checks it)
    check(model, x, y, expect_fused=["rows"], skip=("scale",))
    assert model.compacted == [True] and model._run["logits"][model.outputs[0].node.id].shape == (9, 6)
    xs, ys = training.standardize(model, x, y)
    sw = [np.array([1.0, 0.5, 2.0])]
    fused = training.fused_heads(model)
    outs, masks = model.forward_heads(xs, training=True, fused=fused)
    compact = training._losses(model, outs, masks, ys, sw, fused, backward=False)[0]
    outs, masks = model.forward_heads(xs, training=True, fused=[False])
    full = training._losses(model, outs, masks, ys, sw, [False], backward=False)[0]
    assert model.compacted == [False] and abs(compact - full) < 1e-12 * max(1.0, abs(full))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_initial_state_gradient_reaches_the_encoder(engine, cell):
    """The encoder's output is thrown away: its only way to the loss is the decoder's
    initial state. A second decoder state comes in as a model input and gets its gradient."""
    Cell = {"lstm": lk.LSTM, "gru": lk.GRU, "simple_rnn": lk.SimpleRNN}[cell]
    n_states = 2 if cell == "lstm" else 1
    enc_in = lk.Input(shape=(4, 2), dtype="float64")
    dec_in = lk.Input(shape=(3, 2), dtype="float64")
    _, *states = Cell(3, return_state=True, engine=engine, seed=20, **F64)(enc_in)
    extra = lk.Input(shape=(3,), dtype="float64")
    states = [lk.Add(**F64)([states[0], extra])] + states[1:]
    seq = Cell(3, return_sequences=True, engine=engine, seed=21, **F64)(dec_in, initial_state=states)
    out = lk.Dense(2, seed=22, **F64)(seq)
    model = lk.Model([enc_in, dec_in, extra], out)
    model.compile("sgd", loss="mse")
    x = [rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 3, 2)), rng.normal(size=(2, 3))]
    errs = check(model, x, rng.normal(size=(2, 3, 2)))
    assert len(states) == n_states and errs["input 2"] < TOL and errs["input 0"] < TOL


def test_bidirectional_encoder_states_into_two_decoders():
    enc_in = lk.Input(shape=(4, 2), dtype="float64")
    bi = lk.Bidirectional(lk.LSTM(3, return_state=True, engine="reference", seed=30, **F64))
    out, hf, cf, hb, cb = bi(enc_in)
    dec_in = lk.Input(shape=(3, 2), dtype="float64")
    fwd = lk.LSTM(3, return_sequences=True, engine="reference", seed=31, **F64)(dec_in, initial_state=[hf, cf])
    bwd = lk.LSTM(3, return_sequences=True, engine="reference", seed=32, **F64)(dec_in, initial_state=[hb, cb])
    y = lk.Dense(1, seed=33, **F64)(lk.Concatenate(**F64)([fwd, bwd, lk.RepeatVector(3, **F64)(out)]))
    model = lk.Model([enc_in, dec_in], y)
    model.compile("sgd", loss="mse")
    check(model, [rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 3, 2))], rng.normal(size=(2, 3, 1)))


def test_two_outputs_with_loss_weights_and_a_time_distributed_head():
    x_in = lk.Input(shape=(4, 3), dtype="float64")
    seq = lk.LSTM(4, return_sequences=True, engine="reference", seed=40, **F64)(x_in)
    tags = lk.TimeDistributed(lk.Dense(3, activation="softmax", seed=41, **F64), name="tags")(seq)
    total = lk.Dense(1, seed=42, name="total", **F64)(lk.LSTM(2, engine="reference", seed=43, **F64)(seq))
    model = lk.Model(x_in, [tags, total])
    model.compile("sgd", loss={"tags": "sparse_categorical_crossentropy", "total": "mse"},
                  loss_weights={"tags": 0.7, "total": 2.5})
    y = {"tags": rng.integers(0, 3, size=(3, 4)), "total": rng.normal(size=(3, 1))}
    check(model, rng.normal(size=(3, 4, 3)), y, expect_fused=["rows", False])


def test_an_output_without_loss_gets_no_stale_gradient():
    x_in = lk.Input(shape=(3,), dtype="float64")
    a = lk.Dense(2, name="a", seed=50, **F64)(x_in)
    b = lk.Dense(2, name="b", seed=51, **F64)(x_in)
    model = lk.Model(x_in, [a, b])
    model.compile("sgd", loss={"a": "mse"})
    x, y = rng.normal(size=(4, 3)), {"a": rng.normal(size=(4, 2))}
    check(model, x, y)
    assert np.all(model.grads["b/W"] == 0)


def test_custom_cell_rnn_and_unmerged_bidirectional_in_a_graph():
    """lk.layers.RNN(cell) takes an initial_state from a Bidirectional(merge_mode=None)
    encoder given Keras's flat initial_state list; masks from an Embedding travel through."""
    ids_in = lk.Input(shape=(None,), dtype="int64")
    x_in = lk.Input(shape=(3, 2), dtype="float64")
    h0 = lk.Input(shape=(3,), dtype="float64")
    seq = lk.Embedding(6, 2, mask_zero=True, seed=60, **F64)(ids_in)
    bi = lk.Bidirectional(lk.GRU(3, return_state=True, return_sequences=True, engine="reference",
                                 seed=61, **F64), merge_mode=None)
    out_f, out_b, h_f, h_b = bi(seq, initial_state=[h0, h0])
    cell_rnn = lk.RNN(lk.LSTMCell(3), return_sequences=True, seed=62, dtype="float64")
    dec = cell_rnn(x_in, initial_state=[h_f, h_b])
    att = lk.Attention(**F64)([dec, lk.Add(**F64)([out_f, out_b])])
    y = lk.Dense(1, seed=63, **F64)(lk.Concatenate(**F64)([dec, att]))
    model = lk.Model([ids_in, x_in, h0], y)
    model.compile("sgd", loss="mse")
    spread_out(model)
    x = [ids(2, 5, 6, [5, 3]), rng.normal(size=(2, 3, 2)), rng.normal(size=(2, 3))]
    errs = check(model, x, rng.normal(size=(2, 3, 1)))
    assert errs["input 2"] < TOL
