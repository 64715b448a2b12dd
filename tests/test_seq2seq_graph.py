"""The translation model as an lk.Model (lstmkit/seq2seq/graph.py): gradients of the whole
graph against finite differences, the PyTorch anchor (benchmarks/translate_anchor.py) equal on
copied weights (probabilities, loss, every gradient, decoded tokens; float64), Model.fit learning
a toy task with greedy = beam 1, batched = one at a time and beam never less likely than greedy,
and lk.save_model / lk.load_model giving identical translations."""
import os
import sys

import numpy as np
import pytest
import torch

import lstmkit as lk
from lstmkit.data.subwords import EOS, PAD
from lstmkit.models import training as T
from lstmkit.seq2seq import graph, search

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
import translate_anchor as anchor  # noqa: E402
from gradcheck_util import numeric_grad, rel_err  # noqa: E402

SRC = [[5, 6, 7, 8, 9], [9, 4, 5], [6, 6], [7, 8, 9, 10]]
TGT = [[4, 5, 6, 3], [7, 3], [8, 9, 4, 5, 3], [10, 3]]
SLOW = pytest.mark.slow


def _model(seed=1, scale=0.5, **config):
    config = {"engine": "reference", **config}
    m = graph.build(12, 11, embed_dim=4, units=6, dropout=0.0, seed=seed, dtype="float64", **config)
    m.compile(optimizer="adam", loss=lk.losses.SparseCategoricalCrossentropy(label_smoothing=0.1))
    r = np.random.default_rng(5)
    for p in m.params.values():                  # away from the near-uniform attention of the start
        p[...] = r.normal(0, scale, p.shape)
    return m


def _loss(model, xs, y, backward):
    """The training step's loss (smoothed cross-entropy over real target tokens) and, with
    backward, every parameter's gradient -- what Model.fit computes before its update."""
    fused = T.fused_heads(model)
    outs, masks = T._forward(model, xs, True, fused)
    total, _, douts, _ = T._losses(model, outs, masks, [y], [None], fused, backward=backward)
    if not backward:
        return total
    T._backward(model, douts, fused)
    return total, {k: v.copy() for k, v in model.trainable_grads().items()}


CONFIGS = [dict(attention="general"),
           pytest.param(dict(attention="dot", engine="fast"), marks=SLOW),
           pytest.param(dict(attention="additive", cell="gru"), marks=SLOW),
           pytest.param(dict(attention=None, bidirectional=True), marks=SLOW),
           pytest.param(dict(attention="general", bidirectional=True, layers=2), marks=SLOW)]
IDS = lambda c: "-".join(f"{k}={v}" for k, v in c.items())


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_whole_graph_gradients(config):
    model = _model(**config)
    x, y_in, y = graph.arrays(SRC[:3], TGT[:3])
    assert T.fused_heads(model) == ["rows"]             # the head projects real target steps only
    _, grads = _loss(model, [x, y_in], y, True)
    assert set(grads) == set(model.params)
    for name, p in model.params.items():
        assert rel_err(grads[name], numeric_grad(lambda: _loss(model, [x, y_in], y, False), p)) < 2e-5, name


ANCHOR = [dict(attention="general"), dict(attention="dot"), dict(attention="additive"), dict(attention=None),
          dict(attention="general", bidirectional=True, layers=2),
          pytest.param(dict(attention="additive", cell="gru", bidirectional=True, layers=2), marks=SLOW),
          pytest.param(dict(attention="general", engine="fast"), marks=SLOW)]


@pytest.mark.parametrize("config", ANCHOR, ids=IDS)
def test_anchor_equals_the_graph(config):
    model = _model(scale=0.4, **config)
    tm = anchor.from_graph(model)
    x, y_in, y = graph.arrays(SRC, TGT)
    real = y != PAD
    loss, grads = _loss(model, [x, y_in], y, True)
    probs = model.predict([x, y_in], batch_size=len(x))                       # (B, T, V)
    tm.train()
    xt, yit, yt = (torch.as_tensor(a.astype(np.int64)) for a in (x, y_in, y))
    logits = tm.output(tm(xt, yit)[yt != PAD])
    t_loss = torch.nn.functional.cross_entropy(logits, yt[yt != PAD], label_smoothing=0.1)
    t_loss.backward()
    np.testing.assert_allclose(probs[real], torch.softmax(logits, -1).detach().numpy(), rtol=0, atol=1e-10)
    assert abs(loss - float(t_loss.detach())) < 1e-10
    theirs = anchor.torch_grads_as_graph(model, tm)
    assert set(theirs) == set(grads)
    for k, g in grads.items():
        np.testing.assert_allclose(g, theirs[k], rtol=0, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("config", [dict(attention="general"),
                                    dict(attention="additive", bidirectional=True, layers=2)], ids=IDS)
def test_anchor_decodes_as_the_graph(config):
    model = _model(seed=2, scale=0.8, **config)
    tm = anchor.from_graph(model)
    ids = SRC + [[4, 4, 11], [10]]
    assert search.translate_ids(model, ids, beam=1) == anchor.translate_ids(tm, ids, beam=1)
    assert search.translate_ids(model, ids, beam=4, alpha=0.6) == anchor.translate_ids(tm, ids, beam=4, alpha=0.6)


def _trained_toy(attention="general", seed=0, epochs=20):
    """A graph that learned to write short digit strings in reverse, by Model.fit."""
    r = np.random.default_rng(seed)
    src = [list(r.integers(4, 12, r.integers(2, 5))) for _ in range(200)]
    tgt = [s[::-1] + [EOS] for s in src]
    model = graph.build(12, 12, embed_dim=12, units=24, dropout=0.0, seed=seed, attention=attention)
    model.compile(optimizer=lk.Adam(0.01, clipnorm=5.0), loss="sparse_categorical_crossentropy")
    x, y_in, y = graph.arrays(src, tgt)
    hist = model.fit([x, y_in], y, batch_size=32, epochs=epochs, verbose=0, seed=seed,
                     validation_data=([x[:50], y_in[:50]], y[:50])).history
    return model, src, hist


def _logprob(model, src, out):
    """log p(out + EOS | src) under teacher forcing."""
    x, y_in, y = graph.arrays([src], [out + [EOS]])
    p = model.predict([x, y_in])[0]
    return float(np.log(p[np.arange(y.shape[1]), y[0]]).sum())


def test_fit_learns_and_decoders_agree():
    model, src, hist = _trained_toy()
    assert hist["val_loss"][-1] < 0.5 * hist["val_loss"][0]
    test = src[:40]
    greedy = search.translate_ids(model, test, beam=1)
    assert np.mean([g == s[::-1] for g, s in zip(greedy, test)]) > 0.7
    dec = graph.GraphDecoder(model)
    pad = lambda s: graph.arrays([s], [[EOS]])[0]
    # beam 1 is greedy; batched equals one sentence at a time
    assert [search.beam_search(dec, pad(s), beam=1, alpha=0.0)[0] for s in test] == greedy
    beam = search.translate_ids(model, test, beam=4, alpha=0.0, batch_size=7)
    assert [search.beam_search(dec, pad(s), beam=4, alpha=0.0)[0] for s in test] == beam
    # with no length penalty, beam search never ends with a less likely translation than greedy
    for s, g, b in zip(test, greedy, beam):
        assert _logprob(model, s, b) >= _logprob(model, s, g) - 1e-4


def test_save_load_identical_translations(tmp_path):
    model, src, _ = _trained_toy(attention="additive", epochs=3)
    lk.save_model(model, tmp_path / "m.safetensors")
    again = lk.load_model(tmp_path / "m.safetensors")
    assert graph.is_graph(again) and graph.describe(again) == graph.describe(model)
    for k, v in model.params.items():
        np.testing.assert_array_equal(again.params[k], v)
    test = src[:30]
    assert search.translate_ids(again, test, beam=3) == search.translate_ids(model, test, beam=3)
    assert search.translate_ids(again, test, beam=1) == search.translate_ids(model, test, beam=1)


def test_config_errors():
    with pytest.raises(ValueError, match="units must be even"):
        graph.build(10, 10, units=7, bidirectional=True)
    with pytest.raises(ValueError, match="attention must be one of"):
        graph.build(10, 10, attention="luong")
    with pytest.raises(ValueError, match="cell must be"):
        graph.build(10, 10, cell="rnn")
