"""Functional models (lk.Model) to and from PyTorch: an attention encoder-decoder
and graphs with every merge layer compute the same in torch, a training step on
either side gives the same weights, and from_torch reads them back."""
import numpy as np
import pytest
import torch

import lstmkit as lk
from lstmkit.interop.torch import from_torch, to_torch
from lstmkit.interop.torch_graph import TorchGraph


def randomize(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    for v in model.params.values():
        v[...] = rng.normal(scale=scale, size=v.shape)
    return model


def ids(rng, shape, vocab):
    x = rng.integers(1, vocab, size=shape)
    x[0, shape[1] - 2:] = 0            # post-padding
    x[1, :2] = 0                       # pre-padding
    x[2, 3] = 0                        # a hole
    return x


def seq2seq(dtype="float64", score_mode="dot"):
    """Keras's seq2seq recipe with attention: the encoder's states start the decoder."""
    src = lk.Input(shape=(None,), dtype="int32", name="source")
    tgt = lk.Input(shape=(None,), dtype="int32", name="target_in")
    enc, h, c = lk.LSTM(6, return_sequences=True, return_state=True, dtype=dtype)(
        lk.Embedding(20, 5, mask_zero=True, dtype=dtype)(src))
    dec = lk.LSTM(6, return_sequences=True, dtype=dtype)(lk.Embedding(15, 5, mask_zero=True, dtype=dtype)(tgt),
                                                         initial_state=[h, c])
    ctx = lk.Attention(use_scale=True, score_mode=score_mode, dtype=dtype)([dec, enc])
    probs = lk.Dense(15, activation="softmax", name="next", dtype=dtype)(lk.Concatenate(dtype=dtype)([dec, ctx]))
    return lk.Model([src, tgt], probs)


def torch_out(module, *xs):
    with torch.no_grad():
        out = module(*[torch.from_numpy(x) for x in xs])
    return [o.numpy() for o in out] if isinstance(out, list) else out.numpy()


@pytest.mark.parametrize("score_mode", ["dot", "general", "concat"])
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float64", 1e-12)])
def test_attention_seq2seq_same_outputs(score_mode, dtype, tol):
    rng = np.random.default_rng(1)
    model = randomize(seq2seq(dtype, score_mode))
    xs, xt = ids(rng, (4, 7), 20), ids(rng, (4, 6), 15)
    module = to_torch(model)
    assert isinstance(module, TorchGraph)
    np.testing.assert_allclose(torch_out(module.eval(), xs, xt), model.predict([xs, xt]), rtol=0, atol=tol)


def test_every_graph_layer():
    rng = np.random.default_rng(2)
    dt = "float64"
    a = lk.Input(shape=(None, 3), name="a")
    v = lk.Input(shape=(4,), name="v")
    seq, hf, cf, hb, cb = lk.Bidirectional(lk.LSTM(4, return_sequences=True, return_state=True, dtype=dt),
                                           dtype=dt)(a)
    gru_seq = lk.GRU(8, return_sequences=True, go_backwards=True, dtype=dt)(a)
    both = lk.Add(dtype=dt)([seq, gru_seq])
    diff = lk.Subtract(dtype=dt)([seq, gru_seq])
    avg = lk.Average(dtype=dt)([both, diff, seq])
    rep = lk.RepeatVector(5, dtype=dt)(lk.Dense(8, activation="tanh", dtype=dt)(v))
    ctx, scores = lk.AdditiveAttention(dtype=dt)([avg, rep], return_attention_scores=True)
    causal = lk.Attention(dtype=dt)([avg, avg], use_causal_mask=True)
    td = lk.TimeDistributed(lk.Dense(3, activation="relu", dtype=dt), dtype=dt)(lk.Multiply(dtype=dt)([ctx, causal]))
    states = lk.Concatenate(dtype=dt)([hf, cf, hb, cb])
    dot = lk.Dot(axes=1, normalize=True, dtype=dt)([states, lk.Dense(16, dtype=dt)(v)])
    gru2 = lk.GRU(4, dtype=dt)(td, initial_state=[lk.Dense(4, dtype=dt)(v)])
    model = lk.Model([a, v], [td, dot, gru2, scores])
    randomize(model, seed=3)
    x1 = rng.normal(size=(3, 5, 3))
    x2 = rng.normal(size=(3, 4))
    ours = model.predict([x1, x2])
    theirs = torch_out(to_torch(model), x1, x2)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(t, o, rtol=0, atol=1e-12)


def test_a_training_step_on_each_side_gives_the_same_weights():
    rng = np.random.default_rng(4)
    ours = randomize(seq2seq("float64"), seed=5)
    theirs = to_torch(ours)
    xs, xt = ids(rng, (6, 7), 20), ids(rng, (6, 6), 15)
    y = rng.integers(0, 15, size=(6, 6))
    ours.compile(optimizer=lk.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
    opt = torch.optim.Adam([p for p in theirs.parameters() if p.requires_grad], lr=0.01, eps=1e-7)
    mask = torch.from_numpy(xt != 0)                       # padded target steps do not count
    for _ in range(2):
        ours.train_on_batch([xs, xt], y)
        theirs.train()
        p = theirs(torch.from_numpy(xs), torch.from_numpy(xt))
        nll = -torch.log(torch.gather(p, 2, torch.from_numpy(y)[..., None]))[..., 0]
        loss = (nll * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    back = from_torch(theirs)
    for (k, v), w in zip(ours.params.items(), back.params.values()):
        np.testing.assert_allclose(w, v, rtol=0, atol=1e-10, err_msg=k)
    np.testing.assert_allclose(torch_out(to_torch(ours).eval(), xs, xt), torch_out(theirs.eval(), xs, xt),
                               atol=1e-12)
