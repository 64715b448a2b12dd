"""lstmkit.seq2seq: gradients of the whole encoder-decoder against finite
differences, the loss kernel against its NumPy equations, decoding
(greedy = beam 1, beam finds sequences at least as likely as greedy's,
batched = one at a time) and save/load giving identical translations."""
import os
import sys

import numpy as np
import pytest

import lstmkit as lk
from lstmkit.data.subwords import BOS, EOS, PAD
from lstmkit.seq2seq import Seq2Seq, search, training
from lstmkit.seq2seq.loss import reference_cross_entropy, token_cross_entropy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gradcheck_util import numeric_grad, rel_err  # noqa: E402

SRC = [[5, 6, 7, 4], [7, 4, 5], [6, 6]]
TGT = [[4, 5, 6, 3], [7, 3], [5, 6, 4, 3]]


def _loss_and_grads(model, s, tin, tout, eps=0.1):
    real = tout != PAD
    out = model.forward(s, tin, training=True)
    loss, _, dlogits = token_cross_entropy(model.output_layer.forward(out[real]), tout[real], eps)
    dout = np.zeros_like(out)
    dout[real] = model.output_layer.backward_logits(dlogits)
    model.backward(dout)
    return loss, {k: v.copy() for k, v in model.grads.items()}


SLOW = pytest.mark.slow


@pytest.mark.parametrize("config", [
    dict(attention="general"), pytest.param(dict(attention="dot", engine="fast"), marks=SLOW),
    pytest.param(dict(attention="additive", cell="gru"), marks=SLOW),
    pytest.param(dict(attention=None, bidirectional=True), marks=SLOW),
    pytest.param(dict(attention="general", input_feeding=True, layers=2), marks=SLOW),
], ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_whole_model_gradients(config):
    config = {"engine": "reference", **config}
    model = Seq2Seq(8, 8, embed_dim=3, units=4, dtype="float64", seed=1, dropout=0.0, **config)
    r = np.random.default_rng(5)
    for p in model.params.values():                      # away from the near-uniform attention of the start
        p[...] = r.normal(0, 0.5, p.shape)
    s, tin, tout = training.batch_arrays(SRC, TGT, np.arange(3))
    real = tout != PAD
    _, grads = _loss_and_grads(model, s, tin, tout)

    def loss():
        out = model.forward(s, tin, training=True)
        return token_cross_entropy(model.output_layer.forward(out[real]), tout[real], 0.1, need_grad=False)[0]
    for name, p in model.params.items():
        assert rel_err(grads[name], numeric_grad(loss, p)) < 2e-5, name


def test_dropout_backward_uses_the_forward_masks():
    """With dropout, the gradient is that of the loss under the same masks."""
    model = Seq2Seq(8, 8, embed_dim=3, units=4, dtype="float64", seed=1, dropout=0.3,
                    input_feeding=True, engine="reference")
    s, tin, tout = training.batch_arrays(SRC, TGT, np.arange(3))
    model.dropout_rng = np.random.default_rng(9)
    _, grads = _loss_and_grads(model, s, tin, tout)
    real = tout != PAD
    name = "decoder0/W_x"

    def loss():
        model.dropout_rng = np.random.default_rng(9)          # the same masks every time
        out = model.forward(s, tin, training=True)
        return token_cross_entropy(model.output_layer.forward(out[real]), tout[real], 0.1, need_grad=False)[0]
    assert rel_err(grads[name], numeric_grad(loss, model.params[name])) < 1e-6


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_kernel_matches_equations(eps, dtype):
    r = np.random.default_rng(0)
    z = (r.normal(size=(37, 101)) * 4).astype(dtype)
    y = r.integers(0, 101, 37)
    loss, nll, g = token_cross_entropy(z.copy(), y, eps)
    ref_loss, ref_nll, ref_g = reference_cross_entropy(z, y, eps)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert abs(loss - ref_loss) < tol * 10 and abs(nll - ref_nll) < tol * 10
    np.testing.assert_allclose(g, ref_g, atol=tol)
    with pytest.raises(ValueError, match="label_smoothing"):
        token_cross_entropy(z.copy(), y, 1.0)


def _trained_toy(attention="general", seed=0, epochs=20):
    """A model that learned to copy short digit strings in reverse."""
    r = np.random.default_rng(seed)
    src = [list(r.integers(4, 12, r.integers(2, 5))) for _ in range(200)]
    tgt = [s[::-1] + [EOS] for s in src]
    model = Seq2Seq(12, 12, embed_dim=12, units=24, dropout=0.0, seed=seed, attention=attention)
    hist = training.fit(model, (src, tgt), (src[:50], tgt[:50]), lk.Adam(0.01, clipnorm=5.0), epochs=epochs,
                        batch_size=32, seed=seed, verbose=0)
    return model, src, hist


def _logprob(model, src, out):
    """log p(out + EOS | src) under teacher forcing."""
    tgt = out + [EOS]
    s = training.pad([src])
    tin = np.array([[BOS] + tgt[:-1]])
    h = model.forward(s, tin)
    z = model.output_layer.forward(h[0]).astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return float(logp[np.arange(len(tgt)), tgt].sum())


def test_training_learns_and_decoders_agree():
    model, src, hist = _trained_toy()
    assert hist["val_loss"][-1] < 0.5 * hist["val_loss"][0]
    test = src[:40]
    greedy = search.translate_ids(model, test, beam=1)
    assert np.mean([g == s[::-1] for g, s in zip(greedy, test)]) > 0.7
    # beam 1 is greedy; batched equals one sentence at a time
    assert [search.beam_search(model, training.pad([s]), beam=1, alpha=0.0)[0] for s in test] == greedy
    beam = search.translate_ids(model, test, beam=4, alpha=0.0, batch_size=7)
    assert [search.beam_search(model, training.pad([s]), beam=4, alpha=0.0)[0] for s in test] == beam
    # with no length penalty, beam search never ends with a less likely translation than greedy
    for s, g, b in zip(test, greedy, beam):
        assert _logprob(model, s, b) >= _logprob(model, s, g) - 1e-4


def test_save_load_identical_translations(tmp_path):
    model, src, _ = _trained_toy(attention="additive", epochs=3)
    model.save(tmp_path / "m.safetensors")
    again = lk.load_model(tmp_path / "m.safetensors")
    assert type(again) is Seq2Seq and again.attention_score == "additive"
    for k, v in model.params.items():
        np.testing.assert_array_equal(again.params[k], v)
    test = src[:30]
    assert search.translate_ids(again, test, beam=3) == search.translate_ids(model, test, beam=3)
    assert search.translate_ids(again, test, beam=1) == search.translate_ids(model, test, beam=1)


def test_config_errors():
    with pytest.raises(ValueError, match="units must be even"):
        Seq2Seq(10, 10, units=7, bidirectional=True)
    with pytest.raises(ValueError, match="input feeding .* needs attention"):
        Seq2Seq(10, 10, attention=None, input_feeding=True)
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2Seq(10, 10, attention="luong")


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_global_attention_equations_through_the_library_layers(score):
    """GlobalAttention runs its scores, masked softmax and context on layers/attention.py;
    its output is Luong's equations written out here, also after a weight is replaced
    (as set_weights / load_model do)."""
    from lstmkit.seq2seq.attention import GlobalAttention
    r = np.random.default_rng(3)
    att = GlobalAttention(4, 4, score=score, attention_dim=3, dtype="float64", seed=2)
    for name in list(att.params):
        att.params[name] = r.normal(size=att.params[name].shape)            # new arrays, not in place
    h, m = r.normal(size=(2, 3, 4)), r.normal(size=(2, 5, 4))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    p = att.params
    if score == "dot":
        s = h @ m.transpose(0, 2, 1)
    elif score == "general":
        s = h @ (m @ p["W_a"]).transpose(0, 2, 1)
    else:
        s = np.tanh((h @ p["W_q"])[:, :, None] + (m @ p["W_k"])[:, None]) @ p["v"]
    s = np.where(mask[:, None], s, -np.inf)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    want = np.tanh(np.concatenate([a @ m, h], -1) @ p["W_c"])
    out, weights, _ = att.attend(h, att.keys(m), m, mask)
    assert np.abs(out - want).max() < 1e-12 and np.abs(weights - a).max() < 1e-12
    assert type(att._core).__module__ == "lstmkit.layers.attention"
