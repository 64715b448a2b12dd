"""The functional API's new layers, one by one: Concatenate, Add, Subtract,
Average, Multiply, Dot, RepeatVector, Cropping1D, TimeDistributed, Attention (dot,
general, concat; scale; masks; causal) and AdditiveAttention.

Each backward is checked twice in float64, under a random upstream gradient
on every output: against central finite differences, and against the same
formula written in PyTorch (autograd). Masks follow Keras 3's rules.
"""
import numpy as np
import pytest
import torch

import lstmkit as lk
from gradcheck_util import numeric_grad, rel_err

F64 = dict(dtype="float64")


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def run_checks(layer, inputs, torch_fn, mask=None, seed=0, **call):
    """Forward/backward of `layer` on `inputs` (a list of arrays) against finite
    differences and against torch_fn(inputs_t, params_t) -> outputs (same
    structure). Returns the errors, all asserted below 1e-7."""
    rng = np.random.default_rng(seed)
    takes_list = isinstance(layer, (lk.layers.merge._Merge, lk.Attention))
    arg = inputs if takes_list else inputs[0]
    out = layer.forward(arg, mask=mask, **call)
    outs = as_list(out)
    ws = [rng.normal(size=o.shape) for o in outs]
    dx = layer.backward(ws if isinstance(out, list) else ws[0])
    dxs = as_list(dx)
    grads = {k: np.array(v, copy=True) for k, v in layer.grads.items()}

    def loss():
        o = as_list(layer.forward(arg, mask=mask, **call))
        return float(sum((a * w).sum() for a, w in zip(o, ws)))

    errors = {}
    for i, (x, g) in enumerate(zip(inputs, dxs)):
        errors[f"x{i}"] = rel_err(g, numeric_grad(loss, x))
    for k, p in layer.params.items():
        errors[k] = rel_err(grads[k], numeric_grad(loss, p))
    # PyTorch: the same formula under autograd
    xt = [torch.tensor(x, requires_grad=True) for x in inputs]
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    ot = as_list(torch_fn(xt, pt))
    for a, b in zip(outs, ot):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-12, atol=1e-12)
    sum((o * torch.tensor(w)).sum() for o, w in zip(ot, ws)).backward()
    for i, (x, g) in enumerate(zip(xt, dxs)):
        errors[f"torch x{i}"] = rel_err(g, x.grad.numpy())
    for k, p in pt.items():
        errors[f"torch {k}"] = rel_err(grads[k], p.grad.numpy())
    assert max(errors.values()) < 1e-7, errors
    return errors


rng = np.random.default_rng(42)
B, T, D = 3, 4, 5


def r(*shape):
    return rng.normal(size=shape)


def mask_of(lengths, T=T):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


# ---- merge layers ------------------------------------------------------------------------------
def test_concatenate_features_and_time():
    a, b = r(B, T, 2), r(B, T, 3)
    run_checks(lk.Concatenate(**F64), [a, b], lambda x, p: torch.cat(x, dim=-1))
    c = r(B, 2, 3)
    run_checks(lk.Concatenate(axis=1, **F64), [b, c], lambda x, p: torch.cat(x, dim=1))


def test_concatenate_masks_follow_keras3():
    layer = lk.Concatenate()
    a, b = np.zeros((2, 3, 2)), np.zeros((2, 3, 4))
    ma = np.array([[1, 1, 0], [1, 0, 0]], bool)
    mb = np.array([[1, 0, 0], [1, 1, 0]], bool)
    np.testing.assert_array_equal(layer.compute_mask([a, b], [ma, mb]), ma | mb)        # features: any
    np.testing.assert_array_equal(layer.compute_mask([a, b], [ma, None]), np.ones((2, 3), bool))
    assert layer.compute_mask([a, b], [None, None]) is None
    t = lk.Concatenate(axis=1)
    np.testing.assert_array_equal(t.compute_mask([a, a], [ma, None]),
                                  np.concatenate([ma, np.ones((2, 3), bool)], axis=1))   # time: joined


@pytest.mark.parametrize("cls, fn", [
    (lk.Add, lambda x, p: x[0] + x[1] + x[2]),
    (lk.Average, lambda x, p: (x[0] + x[1] + x[2]) / 3),
    (lk.Multiply, lambda x, p: x[0] * x[1] * x[2]),
])
def test_elementwise_three_inputs(cls, fn):
    run_checks(cls(**F64), [r(B, T, D), r(B, T, D), r(B, T, D)], fn)


def test_subtract_and_broadcast_of_lower_rank():
    run_checks(lk.Subtract(**F64), [r(B, T, D), r(B, T, D)], lambda x, p: x[0] - x[1])
    # (B, D) meets (B, T, D): Keras gives the lower-rank input an axis after the batch
    run_checks(lk.Add(**F64), [r(B, T, D), r(B, D)], lambda x, p: x[0] + x[1][:, None, :])
    run_checks(lk.Multiply(**F64), [r(B, 1, D), r(B, T, D)], lambda x, p: x[0] * x[1])


def test_multiply_with_masks_as_keras3():
    a, b = r(B, T, D), r(B, T, D)
    ma, mb = mask_of([4, 2, 1]), mask_of([3, 3, 0])

    def torch_fn(x, p):
        ta = torch.where(torch.tensor(ma)[..., None], x[0], torch.ones_like(x[0]))
        tb = torch.where(torch.tensor(mb)[..., None], x[1], torch.ones_like(x[1]))
        return torch.where(torch.tensor(ma | mb)[..., None], ta * tb, torch.zeros_like(ta))

    run_checks(lk.Multiply(**F64), [a, b], torch_fn, mask=[ma, mb])
    layer = lk.Multiply()
    np.testing.assert_array_equal(layer.compute_mask([a, b], [ma, mb]), ma | mb)
    assert layer.compute_mask([a, b], [ma, None]) is None
    # one mask only: that input's masked steps count as 1, nothing is zeroed
    out = layer.forward([a, b], mask=[ma, None])
    np.testing.assert_allclose(out, np.where(ma[..., None], a, 1.0) * b, rtol=1e-6)


def test_add_mask_is_the_or_when_all_have_one():
    ma, mb = mask_of([4, 2, 1]), mask_of([3, 3, 0])
    layer = lk.Add()
    np.testing.assert_array_equal(layer.compute_mask([0, 0], [ma, mb]), ma | mb)
    assert layer.compute_mask([0, 0], [ma, None]) is None


@pytest.mark.parametrize("axes, shapes, fn", [
    (2, [(B, T, D), (B, 6, D)], lambda x, p: x[0] @ x[1].transpose(1, 2)),
    ((1, 1), [(B, T, D), (B, T, 2)], lambda x, p: x[0].transpose(1, 2) @ x[1]),
    (1, [(B, D), (B, D)], lambda x, p: (x[0] * x[1]).sum(-1, keepdim=True)),
    ((2, 1), [(B, T, D), (B, D)], lambda x, p: (x[0] @ x[1][:, :, None])[..., 0]),
    (-1, [(B, D), (B, T, D)], lambda x, p: (x[1] @ x[0][:, :, None])[..., 0]),
])
def test_dot(axes, shapes, fn):
    layer = lk.Dot(axes=axes, **F64)
    xs = [r(*s) for s in shapes]
    expect = lk.Dot(axes=axes).compute_output_shape([s[1:] for s in shapes])
    assert layer.forward(xs).shape[1:] == expect
    run_checks(layer, xs, fn)


def test_dot_normalize_is_cosine():
    xs = [r(B, T, D), r(B, 6, D)]
    f = lambda x, p: torch.nn.functional.normalize(x[0], dim=-1) @ \
        torch.nn.functional.normalize(x[1], dim=-1).transpose(1, 2)
    run_checks(lk.Dot(axes=2, normalize=True, **F64), xs, f)
    out = lk.Dot(axes=1, normalize=True)([np.array([[3.0, 4.0]]), np.array([[6.0, 8.0]])])
    np.testing.assert_allclose(out, [[1.0]])


# ---- RepeatVector, TimeDistributed ------------------------------------------------------------------
def test_repeat_vector():
    layer = lk.RepeatVector(4, **F64)
    run_checks(layer, [r(B, D)], lambda x, p: x[0][:, None, :].expand(B, 4, D))
    assert layer.compute_output_shape((D,)) == (4, D)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        lk.RepeatVector(0)


def test_cropping1d():
    layer = lk.Cropping1D((1, 2), **F64)
    run_checks(layer, [r(B, T + 3, D)], lambda x, p: x[0][:, 1:-2])
    assert layer.compute_output_shape((T + 3, D)) == (T, D)
    last = lk.Cropping1D((T - 2, 0), **F64)                            # the last two steps
    x = r(B, T, D)
    np.testing.assert_array_equal(last.forward(x), x[:, -2:])
    np.testing.assert_array_equal(last.backward(np.ones((B, 2, D)))[:, :-2], 0.0)
    np.testing.assert_array_equal(last.compute_mask(x, mask_of([3, 2, 1])), mask_of([3, 2, 1])[:, -2:])
    assert lk.Cropping1D(2).cropping == (2, 2)
    assert lk.layers.layer_from_config(lk.layers.serialize_layer(last)).cropping == (T - 2, 0)
    with pytest.raises(ValueError, match="cropping must be a whole number >= 0 or a pair"):
        lk.Cropping1D((1, -1))
    with pytest.raises(ValueError, match=r"cropping \(2, 2\) leaves no step of a sequence of 4"):
        lk.Cropping1D(2).forward(r(B, 4, D))


def test_time_distributed_dense_equals_dense_per_step():
    inner = lk.Dense(3, activation="tanh", seed=1, **F64)
    layer = lk.TimeDistributed(inner)
    x = r(B, T, D)
    errs = run_checks(layer, [x], lambda x, p: torch.tanh(x[0] @ p[f"{inner.name}/W"] + p[f"{inner.name}/b"]))
    assert set(layer.params) == {f"{inner.name}/W", f"{inner.name}/b"}
    assert layer.compute_output_shape((T, D)) == (T, 3)
    np.testing.assert_array_equal(layer.compute_mask(x, mask_of([1, 2, 3])), mask_of([1, 2, 3]))  # Keras 3
    assert layer.compute_mask(x, None) is None
    assert errs


def test_time_distributed_lstm_on_4d_input():
    inner = lk.LSTM(2, engine="reference", seed=3, **F64)
    layer = lk.TimeDistributed(inner)
    x = r(2, 3, 4, D)                                                  # (B, T, T2, D)
    out = layer.forward(x)
    assert out.shape == (2, 3, 2)
    np.testing.assert_allclose(out[1, 2], inner.forward(x[1:2, 2])[0])
    w = rng.normal(size=out.shape)

    def loss():
        return float((layer.forward(x) * w).sum())

    layer.forward(x)
    dx = layer.backward(w)
    assert rel_err(dx, numeric_grad(loss, x)) < 1e-7
    g = {k: v.copy() for k, v in layer.grads.items()}
    for k, p in layer.params.items():
        assert rel_err(g[k], numeric_grad(loss, p)) < 1e-7


# ---- attention -------------------------------------------------------------------------------------
def torch_attention(q, v, k, scores_fn, q_mask=None, v_mask=None, causal=False):
    s = scores_fn(q, k)
    hide = None
    if v_mask is not None:
        hide = ~torch.tensor(v_mask)[:, None, :]
    if causal:
        Tq, Tv = s.shape[1:]
        fut = torch.arange(Tv)[None, :] > torch.arange(Tq)[:, None]
        hide = fut[None] if hide is None else hide | fut[None]
    if hide is not None:
        s = torch.where(hide, s - 1e9, s)
    a = torch.softmax(s, dim=-1)
    out = a @ v
    if q_mask is not None:
        out = torch.where(torch.tensor(q_mask)[:, :, None], out, torch.zeros_like(out))
    return out, a


SCORES = {
    ("dot", False): lambda p: lambda q, k: q @ k.transpose(1, 2),
    ("dot", True): lambda p: lambda q, k: (q @ k.transpose(1, 2)) * p["scale"],
    ("general", False): lambda p: lambda q, k: q @ p["W"] @ k.transpose(1, 2),
    ("general", True): lambda p: lambda q, k: (q @ p["W"] @ k.transpose(1, 2)) * p["scale"],
    ("concat", False): lambda p: lambda q, k: p["concat_score_weight"] *
    torch.tanh(q[:, :, None] + k[:, None]).sum(-1),
    ("concat", True): lambda p: lambda q, k: p["concat_score_weight"] *
    torch.tanh(p["scale"] * (q[:, :, None] + k[:, None])).sum(-1),
}


@pytest.mark.parametrize("mode", ["dot", "general", "concat"])
@pytest.mark.parametrize("use_scale", [False, True])
@pytest.mark.parametrize("with_key", [False, True])
def test_attention_scores_and_backward(mode, use_scale, with_key):
    Tq, Tv, dq = 3, 5, (4 if mode == "general" else D)
    layer = lk.Attention(use_scale=use_scale, score_mode=mode, seed=0, **F64)
    inputs = [r(B, Tq, dq), r(B, Tv, 6)] + ([r(B, Tv, D)] if with_key else [])
    if not with_key and mode != "general":
        inputs[1] = r(B, Tv, D)                                     # the value is the key: same size as q
    layer.build([x.shape[1:] for x in inputs])
    for k in layer.params:                                         # move the scalars off 1
        layer.params[k][...] = layer.params[k] + rng.normal(size=layer.params[k].shape) * 0.3
    q_mask = mask_of([3, 2, 1], Tq)
    v_mask = mask_of([5, 3, 1], Tv)

    def fn(x, p, masks=True):
        k = x[2] if with_key else x[1]
        return torch_attention(x[0], x[1], k, SCORES[(mode, use_scale)](p),
                               q_mask if masks else None, v_mask if masks else None)

    run_checks(layer, inputs, lambda x, p: fn(x, p, False)[0])
    run_checks(layer, inputs, lambda x, p: list(fn(x, p)), mask=[q_mask, v_mask], return_attention_scores=True)


@pytest.mark.parametrize("use_scale", [True, False])
def test_additive_attention(use_scale):
    layer = lk.AdditiveAttention(use_scale=use_scale, seed=0, **F64)
    inputs = [r(B, 3, D), r(B, 5, D)]
    v_mask = mask_of([5, 2, 4], 5)

    def fn(x, p):
        w = p["scale"] if use_scale else 1.0
        return list(torch_attention(x[0], x[1], x[1], lambda q, k: (w * torch.tanh(q[:, :, None] + k[:, None])).sum(-1),
                                    None, v_mask))

    run_checks(layer, inputs, fn, mask=[None, v_mask], return_attention_scores=True)
    if use_scale:
        assert layer.params["scale"].shape == (D,)


def test_attention_causal_mask_and_masked_outputs():
    layer = lk.Attention(**F64)
    q = r(B, 4, D)
    q_mask = mask_of([4, 2, 3], 4)
    out, a = layer.forward([q, q], mask=[q_mask, q_mask], return_attention_scores=True, use_causal_mask=True)
    assert np.allclose(np.triu(a[0], 1), 0)                          # no step looks ahead
    assert np.allclose(a.sum(-1), 1)
    assert np.all(out[1, 2:] == 0) and np.all(a[1][:, 2:] < 1e-300)  # masked query rows, masked values
    np.testing.assert_array_equal(layer.compute_mask([q, q], [q_mask, None]), q_mask)
    run_checks(layer, [q, r(B, 4, D)], lambda x, p: list(torch_attention(
        x[0], x[1], x[1], lambda q, k: q @ k.transpose(1, 2), q_mask, None, causal=True)),
        mask=[q_mask, None], return_attention_scores=True, use_causal_mask=True)


def test_attention_errors_and_config():
    with pytest.raises(ValueError, match="score_mode must be one of"):
        lk.Attention(score_mode="bilinear")
    with pytest.raises(ValueError, match="takes a list"):
        lk.Attention()(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="same size"):
        lk.Attention().build([(3, 4), (5, 6)])
    layer = lk.AdditiveAttention(use_scale=False, dropout=0.1)
    cfg = layer.get_config()
    assert "score_mode" not in cfg and cfg["use_scale"] is False
    assert type(lk.layers.layer_from_config({"class_name": "AdditiveAttention", "config": cfg})) is lk.AdditiveAttention


def test_attention_dropout_only_in_training():
    layer = lk.Attention(dropout=0.5, seed=1, **F64)
    q, v = r(B, 3, D), r(B, 5, D)
    a_inf = layer.forward([q, v], return_attention_scores=True)[1]
    np.testing.assert_allclose(a_inf.sum(-1), 1)
    _, a_tr = layer.forward([q, v], training=True, return_attention_scores=True)
    assert np.any(a_tr == 0) and np.allclose(a_tr[a_tr > 0], 2 * a_inf[a_tr > 0])
    w = rng.normal(size=(B, 3, D))
    layer.backward([w, np.zeros_like(a_tr)])                        # dropout's keep mask in the backward
