"""The PyTorch anchor of `lstmkit translate` (benchmarks/translate_anchor.py)
computes what lstmkit's Seq2Seq computes: same outputs, loss and gradients on
copied weights (float64, no dropout), for each attention score, with and
without input feeding, bidirectional and stacked, LSTM and GRU; and its
decoding gives lstmkit's translations."""
import os
import sys

import numpy as np
import pytest
import torch

from lstmkit.data.subwords import PAD
from lstmkit.layers import Bidirectional
from lstmkit.seq2seq import Seq2Seq, search, training
from lstmkit.seq2seq.loss import token_cross_entropy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import translate_anchor as anchor  # noqa: E402

SRC = [[5, 6, 7, 8, 9], [9, 4, 5], [6, 6], [7, 8, 9, 10]]
TGT = [[4, 5, 6, 3], [7, 3], [8, 9, 4, 5, 3], [10, 3]]

CONFIGS = [dict(attention="general"), dict(attention="dot"), dict(attention="additive"),
           dict(attention=None), dict(attention="general", input_feeding=True),
           dict(attention="general", bidirectional=True, layers=2),
           dict(attention="additive", cell="gru", bidirectional=True, input_feeding=True, layers=2)]


def _randomize(model, seed=5, scale=0.4):
    """Weights large enough that attention is far from uniform."""
    r = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = r.normal(0, scale, p.shape)


def _torch_grads(model, tm):
    """Torch's gradients in lstmkit's names and layouts."""
    g = {"src_embedding/embeddings": tm.src_embedding.weight.grad,
         "tgt_embedding/embeddings": tm.tgt_embedding.weight.grad,
         "output/W": tm.output.weight.grad.T, "output/b": tm.output.bias.grad}

    def rnn(prefix, trnn, suffix, layer):
        g[f"{prefix}/W_x"] = getattr(trnn, f"weight_ih_{suffix}").grad.T
        g[f"{prefix}/W_h"] = getattr(trnn, f"weight_hh_{suffix}").grad.T
        g[f"{prefix}/b_x"] = getattr(trnn, f"bias_ih_{suffix}").grad
        if "b_h" in layer.params:
            g[f"{prefix}/b_h"] = getattr(trnn, f"bias_hh_{suffix}").grad
    for i, layer in enumerate(model.encoder):
        if isinstance(layer, Bidirectional):
            rnn(f"encoder{i}/forward", tm.encoder, f"l{i}", layer.forward_layer)
            rnn(f"encoder{i}/backward", tm.encoder, f"l{i}_reverse", layer.backward_layer)
        else:
            rnn(f"encoder{i}", tm.encoder, f"l{i}", layer)
    for i, layer in enumerate(model.decoder):
        rnn(f"decoder{i}", tm.decoder, f"l{i}", layer)
    if model.attention is not None:
        g["attention/W_c"] = tm.W_c.weight.grad.T
        if model.attention_score == "general":
            g["attention/W_a"] = tm.W_a.weight.grad.T
        if model.attention_score == "additive":
            g["attention/W_q"] = tm.W_q.weight.grad.T
            g["attention/W_k"] = tm.W_k.weight.grad.T
            g["attention/v"] = tm.v.weight.grad[0]
    return {k: v.detach().numpy() for k, v in g.items()}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("engine", ["reference", pytest.param("fast", marks=pytest.mark.slow)])
def test_anchor_equals_lstmkit(config, engine):
    model = Seq2Seq(12, 11, embed_dim=4, units=6, dropout=0.0, dtype="float64", seed=1, engine=engine, **config)
    _randomize(model)
    tm = anchor.from_lstmkit(model)
    s, tin, tout = training.batch_arrays(SRC, TGT, np.arange(len(SRC)))
    real = tout != PAD
    out = model.forward(s, tin, training=True)
    loss, _, dlogits = token_cross_entropy(model.output_layer.forward(out[real]), tout[real], 0.1)
    dout = np.zeros_like(out)
    dout[real] = model.output_layer.backward_logits(dlogits)
    model.backward(dout)

    tm.train()
    s_t, tin_t, tout_t = (torch.as_tensor(a) for a in (s, tin, tout))
    t_out = tm(s_t, tin_t)
    t_loss = torch.nn.functional.cross_entropy(tm.output(t_out[tout_t != PAD]), tout_t[tout_t != PAD],
                                               label_smoothing=0.1)
    t_loss.backward()
    np.testing.assert_allclose(out[real], t_out.detach().numpy()[real], rtol=0, atol=1e-10)
    assert abs(loss - float(t_loss.detach())) < 1e-10
    theirs = _torch_grads(model, tm)
    assert set(theirs) == set(model.grads)
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, theirs[k], rtol=0, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("config", [dict(attention="general"), dict(attention="additive", input_feeding=True,
                                                                    bidirectional=True)])
def test_anchor_decodes_as_lstmkit(config):
    model = Seq2Seq(12, 11, embed_dim=8, units=8, dropout=0.0, dtype="float64", seed=2, **config)
    _randomize(model, scale=0.8)
    tm = anchor.from_lstmkit(model)
    ids = SRC + [[4, 4, 11], [10]]
    assert search.translate_ids(model, ids, beam=1) == anchor.translate_ids(tm, ids, beam=1)
    assert search.translate_ids(model, ids, beam=4, alpha=0.6) == anchor.translate_ids(tm, ids, beam=4, alpha=0.6)


def test_float32_forward_close():
    model = Seq2Seq(30, 25, embed_dim=16, units=16, dropout=0.0, seed=3)
    tm = anchor.from_lstmkit(model)
    tm.eval()
    s, tin, tout = training.batch_arrays(SRC, TGT, np.arange(len(SRC)))
    out = model.forward(s, tin)
    with torch.no_grad():
        t_out = tm(torch.as_tensor(s), torch.as_tensor(tin)).numpy()
    real = tin != PAD        # the anchor packs its targets: its padded steps are not computed
    assert (~real).any()
    np.testing.assert_allclose(out[real], t_out[real], atol=1e-5)
