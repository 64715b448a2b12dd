"""ONNX export (run in onnxruntime, compared with lstmkit within 1e-5 in float32)
and import (lstmkit's own files and torch.onnx.export's), and what is refused."""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import lstmkit as lk
from lstmkit.interop.onnx import ExportError, random_input, to_onnx
from lstmkit.interop.onnx_import import OnnxImportError, from_onnx

REPO = Path(__file__).resolve().parents[1]
ATOL = 1e-5

CELLS = {
    "lstm": lambda **kw: lk.LSTM(6, **kw),
    "gru": lambda **kw: lk.GRU(6, **kw),
    "gru_reset_before": lambda **kw: lk.GRU(6, reset_after=False, **kw),
    "rnn_tanh": lambda **kw: lk.SimpleRNN(6, **kw),
    "rnn_relu": lambda **kw: lk.SimpleRNN(6, activation="relu", **kw),
}


def randomize(model, seed=0, scale=0.6):
    """Random weights everywhere (constant ones cannot catch a swapped gate order)."""
    rng = np.random.default_rng(seed)
    for v in model.params.values():
        v[...] = rng.normal(scale=scale, size=v.shape)
    return model


def ort_run(proto, x):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def padded_ids(rng, padding, batch=5, T=9, vocab=30):
    x = rng.integers(1, vocab, size=(batch, T))
    if padding is not None:
        # lengths 0 (all padding), 1, full, and some in between
        for row, n in zip(x, [4, 1, T, 0, 7][:batch]):
            if padding == "post":
                row[n:] = 0
            else:
                row[:T - n] = 0
    return x


def text_model(cell, shape, masked, return_sequences):
    make = CELLS[cell]
    if shape == "one":
        rec = [make(return_sequences=return_sequences)]
    elif shape == "bidirectional":
        rec = [lk.Bidirectional(make(return_sequences=return_sequences))]
    else:                          # stacked: a bidirectional level under a one-way one
        rec = [lk.Bidirectional(make(return_sequences=True)), make(return_sequences=return_sequences)]
    return lk.Sequential([lk.Embedding(30, 5, input_length=9, mask_zero=masked), *rec,
                          lk.Dense(3, activation="softmax")])


@pytest.mark.parametrize("padding", [None, "post", "pre"])
@pytest.mark.parametrize("shape", ["one", "bidirectional", "stacked"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_export_runs_in_onnxruntime_like_lstmkit(cell, shape, padding):
    rng = np.random.default_rng(1)
    for return_sequences in (False, True):
        model = randomize(text_model(cell, shape, padding is not None, return_sequences), seed=2)
        x = padded_ids(rng, padding)
        proto = to_onnx(model, padding=padding or "post")
        ops = {n.op_type for n in proto.graph.node}
        assert {"l": "LSTM", "g": "GRU", "r": "RNN"}[cell[0]] in ops
        assert proto.opset_import[0].version >= 17
        np.testing.assert_allclose(ort_run(proto, x), model.predict(x), rtol=0, atol=ATOL)
        # and the file reads back into the same model
        again = from_onnx(proto)
        np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=0, atol=1e-6)
        assert again.layers[0].mask_zero == (padding is not None)


@pytest.mark.parametrize("zero_output", [False, True])
def test_masked_steps_follow_zero_output_for_mask(zero_output):
    # Keras's convention (False) repeats the last real output over post-padding: the graph
    # puts it back with a Where; with True the operators' zeros stand
    rng = np.random.default_rng(9)
    model = randomize(lk.Sequential([lk.Embedding(30, 5, input_length=9, mask_zero=True),
                                     lk.LSTM(4, return_sequences=True, zero_output_for_mask=zero_output)]))
    x = padded_ids(rng, "post")
    out = model.predict(x)
    assert (np.abs(out[0, 4:]).max() == 0) == zero_output                 # row 0 has 4 real steps
    proto = to_onnx(model)
    assert ("Where" in {n.op_type for n in proto.graph.node}) != zero_output
    np.testing.assert_allclose(ort_run(proto, x), out, atol=ATOL)
    again = from_onnx(proto)
    assert again.layers[1].zero_output_for_mask == zero_output
    np.testing.assert_allclose(again.predict(x), out, atol=1e-6)


def test_the_padding_side_matters():
    # a check that can fail: pre-padded data through a graph exported for post padding
    rng = np.random.default_rng(3)
    model = randomize(text_model("lstm", "one", True, False))
    x = padded_ids(rng, "pre")
    assert np.abs(ort_run(to_onnx(model, padding="post"), x) - model.predict(x)).max() > 1e-3
    np.testing.assert_allclose(ort_run(to_onnx(model, padding="pre"), x), model.predict(x), atol=ATOL)


def test_gate_order_is_converted():
    # one operator, weights whose gate blocks all differ: a swap of two blocks would show
    layer = lk.LSTM(4, return_sequences=True, input_shape=(None, 3))
    model = randomize(lk.Sequential([layer]), seed=4)
    proto = to_onnx(model)
    W = numpy_helper.to_array(next(t for t in proto.graph.initializer if t.name.startswith("W")))
    H = 4
    # ONNX order i, o, f, c; lstmkit i, f, g, o
    np.testing.assert_array_equal(W[0, H:2 * H], layer.params["W_x"][:, 3 * H:].T)
    np.testing.assert_array_equal(W[0, 2 * H:3 * H], layer.params["W_x"][:, H:2 * H].T)
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(ort_run(proto, x), model.predict(x), atol=ATOL)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_merge_modes_and_mixed_directions(merge_mode):
    rng = np.random.default_rng(5)
    for return_sequences in (True, False):
        mixed = lk.Bidirectional(lk.GRU(4, return_sequences=return_sequences), merge_mode=merge_mode,
                                 backward_layer=lk.LSTM(4, go_backwards=True, return_sequences=return_sequences))
        model = randomize(lk.Sequential([lk.Embedding(20, 5, input_length=7, mask_zero=True),
                                         lk.Bidirectional(lk.SimpleRNN(4, return_sequences=True),
                                                          merge_mode=merge_mode),
                                         mixed, lk.Dense(2)]), seed=6)
        x = padded_ids(rng, "pre", T=7, vocab=20)
        proto = to_onnx(model, padding="pre")
        np.testing.assert_allclose(ort_run(proto, x), model.predict(x), atol=ATOL)
        np.testing.assert_allclose(from_onnx(proto).predict(x), model.predict(x), atol=1e-6)


def test_float_input_reverse_layers_dropout_flatten():
    rng = np.random.default_rng(7)
    model = randomize(lk.Sequential([
        lk.LSTM(5, go_backwards=True, return_sequences=True, input_shape=(8, 3)),
        lk.Dropout(0.5), lk.GRU(4, return_sequences=True, use_bias=False),
        lk.Dense(3, activation="tanh"), lk.Flatten(), lk.Dense(2, activation="sigmoid")]), seed=8)
    x = rng.normal(size=(4, 8, 3)).astype(np.float32)
    proto = to_onnx(model)
    assert "Dropout" not in {n.op_type for n in proto.graph.node}
    np.testing.assert_allclose(ort_run(proto, x), model.predict(x), atol=ATOL)
    np.testing.assert_allclose(from_onnx(proto).predict(x), model.predict(x), atol=1e-6)


def test_float64_model_exports_as_float32():
    model = randomize(lk.Sequential([lk.GRU(4, dtype="float64", input_shape=(None, 3)),
                                     lk.Dense(1, dtype="float64")]))
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(ort_run(to_onnx(model), x), model.predict(x), atol=ATOL)


def test_model_method_writes_a_file(tmp_path):
    model = randomize(text_model("gru", "one", True, False))
    path = model.export_onnx(tmp_path / "m.onnx", padding="pre")
    x = padded_ids(np.random.default_rng(0), "pre")
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, model.predict(x), atol=ATOL)
    np.testing.assert_allclose(lk.from_onnx(path).predict(x), model.predict(x), atol=1e-6)


def test_what_the_export_refuses():
    class Odd(lk.Layer):
        def forward(self, x, training=False, mask=None):
            return x
    model = lk.Sequential([lk.LSTM(3, return_sequences=True, input_shape=(None, 2)), Odd()])
    with pytest.raises(ExportError, match="Odd has no ONNX export"):
        to_onnx(model)
    with pytest.raises(ExportError, match="not built"):
        to_onnx(lk.Sequential([lk.LSTM(3)]))
    masked_reverse = lk.Sequential([lk.Embedding(9, 3, input_length=4, mask_zero=True),
                                    lk.LSTM(3, go_backwards=True, return_sequences=True)])
    with pytest.raises(ExportError, match="go_backwards=True outside a Bidirectional"):
        to_onnx(masked_reverse)
    stateful = lk.Sequential([lk.GRU(3, stateful=True, input_shape=(None, 2))])
    with pytest.raises(ExportError, match="stateful=True"):
        to_onnx(stateful)
    cell = lk.Sequential([lk.layers.RNN(lk.layers.LSTMCell(3), input_shape=(None, 2))])
    with pytest.raises(ExportError, match="RNN\\(cell\\)"):
        to_onnx(cell)
    with pytest.raises(ValueError, match="opset must be an integer >= 17"):
        to_onnx(lk.Sequential([lk.LSTM(3, input_shape=(None, 2))]), opset=13)
    with pytest.raises(ValueError, match="padding must be one of"):
        to_onnx(lk.Sequential([lk.LSTM(3, input_shape=(None, 2))]), padding="middle")


# ---- import of graphs written by torch.onnx.export ------------------------------------------

class TorchText(torch.nn.Module):
    """Embedding -> nn.LSTM/GRU/RNN -> Linear, read out three ways."""

    def __init__(self, kind, bidirectional, layers, readout, batch_first=True, **kw):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 5)
        self.rnn = getattr(torch.nn, kind)(5, 4, num_layers=layers, batch_first=batch_first,
                                           bidirectional=bidirectional, **kw)
        self.fc = torch.nn.Linear(8 if bidirectional else 4, 3)
        self.readout, self.batch_first = readout, batch_first

    def forward(self, ids):
        y, h = self.rnn(self.emb(ids))
        if self.readout == "h_n[-1]":
            h = h[0] if isinstance(h, tuple) else h
            return torch.sigmoid(self.fc(h[-1]))
        if self.readout == "y[-1]":
            return torch.softmax(self.fc(y[:, -1] if self.batch_first else y[-1]), -1)
        return torch.tanh(self.fc(y))


def torch_export(module, x, path, dynamo=False):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.6)
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), dynamo=dynamo, opset_version=18 if dynamo else 17,
                          input_names=["ids"], output_names=["out"])
    with torch.no_grad():
        return module(x).numpy()


@pytest.mark.parametrize("kind,bidirectional,layers,readout", [
    ("LSTM", False, 2, "y[-1]"), ("LSTM", False, 2, "h_n[-1]"), ("LSTM", True, 2, "sequence"),
    ("GRU", False, 1, "h_n[-1]"), ("GRU", True, 2, "sequence"), ("RNN", False, 2, "y[-1]"),
    ("RNN", True, 1, "sequence"),
])
def test_import_of_torch_exported_graphs(tmp_path, kind, bidirectional, layers, readout):
    x = torch.randint(0, 20, (3, 7))
    expected = torch_export(TorchText(kind, bidirectional, layers, readout), x, tmp_path / "t.onnx")
    model = lk.from_onnx(tmp_path / "t.onnx")
    np.testing.assert_allclose(model.predict(x.numpy()), expected, rtol=0, atol=ATOL)
    rec = [l for l in model.layers if not isinstance(l, (lk.Embedding, lk.Dense))]
    assert len(rec) == layers
    # and back out through lstmkit's own export
    np.testing.assert_allclose(ort_run(to_onnx(model), x.numpy()), expected, atol=ATOL)


def test_import_of_a_time_major_torch_graph_warns(tmp_path):
    x = torch.randint(0, 20, (7, 3))                                  # (time, batch)
    expected = torch_export(TorchText("GRU", False, 1, "y[-1]", batch_first=False), x, tmp_path / "t.onnx")
    with pytest.warns(UserWarning, match="time-major input"):
        model = lk.from_onnx(tmp_path / "t.onnx")
    np.testing.assert_allclose(model.predict(x.numpy().T), expected, atol=ATOL)


@pytest.mark.slow
def test_import_of_a_dynamo_exported_graph(tmp_path):
    x = torch.randint(0, 20, (3, 7))
    expected = torch_export(TorchText("LSTM", True, 2, "sequence"), x, tmp_path / "t.onnx", dynamo=True)
    np.testing.assert_allclose(lk.from_onnx(tmp_path / "t.onnx").predict(x.numpy()), expected, atol=ATOL)
    # the new exporter unrolls nn.RNN into per-step MatMul/Tanh: refused with the way out
    expected = torch_export(TorchText("RNN", False, 1, "y[-1]"), x, tmp_path / "r.onnx", dynamo=True)
    with pytest.raises(OnnxImportError, match="dynamo=False"):
        lk.from_onnx(tmp_path / "r.onnx")


def test_what_the_import_refuses(tmp_path):
    x = torch.randint(0, 20, (3, 7))
    torch_export(TorchText("LSTM", True, 1, "y[-1]"), x, tmp_path / "bi.onnx")
    with pytest.raises(OnnxImportError, match="not its final state"):
        lk.from_onnx(tmp_path / "bi.onnx")
    # a hand-made graph: an LSTM node with a non-zero initial state
    W = numpy_helper.from_array(np.ones((1, 8, 3), np.float32), "W")
    R = numpy_helper.from_array(np.ones((1, 8, 2), np.float32), "R")
    h0 = numpy_helper.from_array(np.ones((1, 1, 2), np.float32), "h0")
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "", "", "h0"], ["y", "y_h"], hidden_size=2),
             helper.make_node("Squeeze", ["y_h", "ax"], ["out"])]
    ax = numpy_helper.from_array(np.array([0], np.int64), "ax")
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, 3])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], [W, R, h0, ax])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(OnnxImportError, match="initial state is not zeros"):
        from_onnx(proto)
    (tmp_path / "junk.onnx").write_bytes(b"not a model at all")
    with pytest.raises(OnnxImportError, match="junk.onnx"):
        from_onnx(tmp_path / "junk.onnx")


# ---- the command line --------------------------------------------------------------------

def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lstmkit", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def test_cli_export_of_a_run_folder(tmp_path):
    model = randomize(text_model("lstm", "bidirectional", True, False))
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.safetensors")
    (run / "meta.json").write_text(json.dumps({"app": "classify", "padding": "pre", "maxlen": 9}))
    r = run_cli("export", "--onnx", tmp_path / "m.onnx", "--model", run)
    assert r.returncode == 0, r.stderr
    assert "padding pre" in r.stdout and "largest difference" in r.stdout
    diff = float(r.stdout.split("largest difference")[1].split()[0])
    assert diff < ATOL
    x = random_input(model, np.random.default_rng(0), padding="pre")
    got = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    np.testing.assert_allclose(got, model.predict(x), atol=ATOL)
    r = run_cli("export", "--onnx", tmp_path / "x.onnx", "--model", tmp_path / "nothing")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "no such model file" in r.stderr


# ---- functional models -----------------------------------------------------------------------

def ort_run_all(proto, feeds):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("score_mode", ["dot", "general", "concat"])
def test_functional_attention_seq2seq_in_onnxruntime(score_mode):
    rng = np.random.default_rng(20)
    src = lk.Input(shape=(None,), dtype="int32", name="source")
    tgt = lk.Input(shape=(None,), dtype="int32", name="target_in")
    enc, h, c = lk.LSTM(6, return_sequences=True, return_state=True)(lk.Embedding(20, 5, mask_zero=True)(src))
    dec = lk.LSTM(6, return_sequences=True)(lk.Embedding(15, 5, mask_zero=True)(tgt), initial_state=[h, c])
    ctx, weights = lk.Attention(use_scale=True, score_mode=score_mode)([dec, enc], return_attention_scores=True)
    add = lk.AdditiveAttention()([dec, enc])
    probs = lk.Dense(15, activation="softmax", name="next")(lk.Concatenate()([dec, ctx, lk.Multiply()([ctx, add])]))
    model = randomize(lk.Model([src, tgt], [probs, weights]), seed=21)
    xs = padded_ids(rng, "post", T=7, vocab=20)                 # an empty row too
    xt = padded_ids(rng, "post", T=6, vocab=15)
    proto = to_onnx(model)
    assert [i.name for i in proto.graph.input] == ["source", "target_in"]
    assert [o.name for o in proto.graph.output] == model.output_names and model.output_names[0] == "next"
    ops = {n.op_type for n in proto.graph.node}
    assert {"LSTM", "MatMul", "Softmax", "Concat"} <= ops
    for got, want in zip(ort_run_all(proto, {"source": xs, "target_in": xt}), model.predict([xs, xt])):
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


def test_functional_every_merge_and_state():
    rng = np.random.default_rng(22)
    a = lk.Input(shape=(None, 3), name="a")
    v = lk.Input(shape=(4,), name="v")
    seq, hf, cf, hb, cb = lk.Bidirectional(lk.LSTM(4, return_sequences=True, return_state=True))(a)
    gru_seq = lk.GRU(8, return_sequences=True, go_backwards=True)(a)
    avg = lk.Average()([lk.Add()([seq, gru_seq]), lk.Subtract()([seq, gru_seq]), seq])
    rep = lk.RepeatVector(5)(lk.Dense(8, activation="tanh")(v))
    ctx, scores = lk.AdditiveAttention()([avg, rep], return_attention_scores=True)
    causal = lk.Attention()([avg, avg], use_causal_mask=True)
    td = lk.TimeDistributed(lk.Dense(3, activation="relu"))(lk.Multiply()([ctx, causal]))
    cos = lk.Dot(axes=1, normalize=True)([lk.Concatenate()([hf, cf, hb, cb]), lk.Dense(16)(v)])
    gram = lk.Dot(axes=(2, 2))([td, td])
    last = lk.GRU(4)(td, initial_state=[lk.Dense(4)(v)])
    model = randomize(lk.Model([a, v], [td, cos, last, scores, gram]), seed=23)
    x1 = rng.normal(size=(3, 5, 3)).astype(np.float32)
    x2 = rng.normal(size=(3, 4)).astype(np.float32)
    got = ort_run_all(to_onnx(model), {"a": x1, "v": x2})
    for g_, w in zip(got, model.predict([x1, x2])):
        np.testing.assert_allclose(g_, w, rtol=0, atol=ATOL)


def test_functional_export_refusals():
    ids = lk.Input(shape=(None,), dtype="int32")
    emb = lk.Embedding(9, 3, mask_zero=True)(ids)
    model = lk.Model(ids, lk.LSTM(3)(emb))
    with pytest.raises(ExportError, match="post-padding"):
        to_onnx(model, padding="pre")


def test_cli_export_of_a_functional_run(tmp_path):
    src = lk.Input(shape=(None,), dtype="int32", name="source")
    feats = lk.Input(shape=(4,), name="features")
    seq = lk.GRU(5, return_sequences=True)(lk.Embedding(12, 3, mask_zero=True)(src),
                                           initial_state=[lk.Dense(5, activation="tanh")(feats)])
    model = randomize(lk.Model([src, feats], lk.Dense(12, activation="softmax")(seq)), seed=24)
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.safetensors")
    (run / "meta.json").write_text(json.dumps({"app": "caption"}))
    r = run_cli("export", "--onnx", tmp_path / "f.onnx", "--model", run)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split("largest difference")[1].split()[0]) < ATOL
    assert [i.name for i in onnx.load(str(tmp_path / "f.onnx")).graph.input] == ["source", "features"]
