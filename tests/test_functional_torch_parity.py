"""An encoder-decoder with attention, built with lk.Input/lk.Model, against the
same network written in PyTorch with the weights copied over: the loss and
every gradient agree to 1e-5 in float32 and 1e-10 in float64.

The network: token ids -> Embedding(mask_zero) -> LSTM encoder (sequence and
final state); target ids -> Embedding(mask_zero) -> LSTM decoder started from
the encoder's state; Luong attention of the decoder steps over the encoder
steps (value mask from the source padding, query mask from the target's);
[decoder, context] -> Dense softmax; sparse cross-entropy over the real
target steps. In PyTorch, the LSTM is written out step by step with the same
gate order (i, f, g, o) and the same masking (state carried over padding, the
previous output repeated), and autograd gives the gradients.
"""
import numpy as np
import pytest
import torch

import lstmkit as lk
from lstmkit.models import training

TOL = {"float32": 1e-5, "float64": 1e-10}
TORCH = {"float32": torch.float32, "float64": torch.float64}
V_SRC, V_TGT, E, H = 9, 7, 5, 6


def lk_model(dtype, engine, score_mode, use_scale):
    kw = dict(dtype=dtype)
    src = lk.Input(shape=(None,), dtype="int64", name="source")
    tgt = lk.Input(shape=(None,), dtype="int64", name="target_in")
    enc_seq, h, c = lk.LSTM(H, return_sequences=True, return_state=True, engine=engine, seed=1, **kw)(
        lk.Embedding(V_SRC, E, mask_zero=True, embeddings_initializer="random_normal", seed=0, **kw)(src))
    dec_seq = lk.LSTM(H, return_sequences=True, engine=engine, seed=3, **kw)(
        lk.Embedding(V_TGT, E, mask_zero=True, embeddings_initializer="random_normal", seed=2, **kw)(tgt),
        initial_state=[h, c])
    ctx = lk.Attention(use_scale=use_scale, score_mode=score_mode, seed=4, **kw)([dec_seq, enc_seq])
    out = lk.Dense(V_TGT, activation="softmax", seed=5, **kw)(lk.Concatenate(**kw)([dec_seq, ctx]))
    model = lk.Model([src, tgt], out)
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(7)
    for k, p in model.params.items():                   # weights of size ~1: gradients well above rounding
        p[...] = (p + rng.normal(size=p.shape) * (0.5 if "embeddings" in k else 0.2)).astype(p.dtype)
    return model


def torch_lstm(x, mask, W_x, W_h, b, h, c):
    """Batch-major LSTM, gates (i, f, g, o), state carried and output repeated at masked steps."""
    outs, prev = [], torch.zeros_like(h)
    Hn = h.shape[1]
    for t in range(x.shape[1]):
        z = x[:, t] @ W_x + h @ W_h + b
        i, f = torch.sigmoid(z[:, :Hn]), torch.sigmoid(z[:, Hn:2 * Hn])
        g, o = torch.tanh(z[:, 2 * Hn:3 * Hn]), torch.sigmoid(z[:, 3 * Hn:])
        c_new = f * c + i * g
        h_new = o * torch.tanh(c_new)
        m = mask[:, t:t + 1]
        h, c = torch.where(m, h_new, h), torch.where(m, c_new, c)
        prev = torch.where(m, h_new, prev)
        outs.append(prev)
    return torch.stack(outs, 1), h, c


def torch_loss(P, src, tgt, y, score_mode, use_scale):
    src_mask, tgt_mask = torch.tensor(src != 0), torch.tensor(tgt != 0)
    enc, h, c = torch_lstm(P["enc_emb"][torch.tensor(src)], src_mask, P["enc_Wx"], P["enc_Wh"], P["enc_b"],
                           torch.zeros(len(src), H, dtype=P["enc_b"].dtype),
                           torch.zeros(len(src), H, dtype=P["enc_b"].dtype))
    dec, _, _ = torch_lstm(P["dec_emb"][torch.tensor(tgt)], tgt_mask, P["dec_Wx"], P["dec_Wh"], P["dec_b"], h, c)
    if score_mode == "dot":
        s = dec @ enc.transpose(1, 2)
    else:
        s = dec @ P["att_W"] @ enc.transpose(1, 2)
    if use_scale:
        s = s * P["att_scale"]
    s = torch.where(~src_mask[:, None, :], s - 1e9, s)
    ctx = torch.softmax(s, -1) @ enc
    ctx = torch.where(tgt_mask[:, :, None], ctx, torch.zeros_like(ctx))
    logits = torch.cat([dec, ctx], -1) @ P["W"] + P["b"]
    logp = torch.log_softmax(logits, -1)
    nll = -logp.gather(-1, torch.tensor(y)[..., None])[..., 0]
    return (nll * tgt_mask).sum() / tgt_mask.sum()


def names(model):
    emb_s, emb_t, enc, dec, att, dense = [model.get_layer(n) for n in (
        model.layers[2].name, model.layers[4].name, model.layers[3].name, model.layers[5].name,
        model.layers[6].name, model.layers[8].name)]
    m = {"enc_emb": f"{emb_s.name}/embeddings", "dec_emb": f"{emb_t.name}/embeddings",
         "enc_Wx": f"{enc.name}/W_x", "enc_Wh": f"{enc.name}/W_h", "enc_b": f"{enc.name}/b_x",
         "dec_Wx": f"{dec.name}/W_x", "dec_Wh": f"{dec.name}/W_h", "dec_b": f"{dec.name}/b_x",
         "W": f"{dense.name}/W", "b": f"{dense.name}/b"}
    for k in att.params:
        m[f"att_{k}"] = f"{att.name}/{k}"
    return m


def data(seed=0, B=4, Ts=6, Tt=5):
    rng = np.random.default_rng(seed)
    src = rng.integers(1, V_SRC, size=(B, Ts))
    tgt = rng.integers(1, V_TGT, size=(B, Tt))
    for i, (ls, lt) in enumerate(zip([6, 4, 2, 5], [5, 3, 4, 1])):
        src[i, ls:] = 0
        tgt[i, lt:] = 0
    return src, tgt, rng.integers(0, V_TGT, size=(B, Tt))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("score_mode, use_scale", [("dot", True), ("general", False)])
def test_attention_seq2seq_matches_pytorch(dtype, engine, score_mode, use_scale):
    model = lk_model(dtype, engine, score_mode, use_scale)
    src, tgt, y = data()
    xs, ys = training.standardize(model, [src, tgt], y)
    fused = training.fused_heads(model)
    assert fused == ["rows"]                                      # the loss runs on the logits of real steps
    outs, masks = model.forward_heads(xs, training=True, fused=fused)
    loss, _, douts, _ = training._losses(model, outs, masks, ys, [None], fused, backward=True)
    model.backward_heads(douts, fused=fused)
    grads = {k: np.array(v, copy=True) for k, v in model.grads.items()}

    mapping = names(model)
    assert set(mapping.values()) == set(model.params)
    P = {k: torch.tensor(model.params[v], dtype=TORCH[dtype], requires_grad=True) for k, v in mapping.items()}
    t_loss = torch_loss(P, src, tgt, y, score_mode, use_scale)
    t_loss.backward()
    tol = TOL[dtype]
    assert abs(loss - t_loss.item()) <= tol * max(1.0, abs(t_loss.item())), (loss, t_loss.item())
    for k, v in mapping.items():
        theirs = P[k].grad.numpy()
        err = np.abs(grads[v] - theirs).max()
        assert err <= tol * max(1.0, np.abs(theirs).max()), (k, err)
        assert np.abs(theirs).max() > 1e-4, k                     # every weight gets a gradient
