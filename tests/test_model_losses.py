"""Losses: values against hand formulas and torch, gradients by finite
differences (from probabilities and from logits), reductions, masks, weights."""
import numpy as np
import pytest
import torch

import lstmkit as lk
from lstmkit import losses
from gradcheck_util import numeric_grad as numeric, rel_err


rng = np.random.default_rng(0)
B, T, C = 4, 3, 5
CASES = [  # (loss, predictions, targets, from_logits)
    (losses.BinaryCrossentropy(), rng.uniform(0.05, 0.95, (B, 1)), rng.integers(0, 2, B), False),
    (losses.BinaryCrossentropy(from_logits=True), rng.normal(size=(B, 2)), rng.integers(0, 2, (B, 2)), True),
    (losses.CategoricalCrossentropy(), rng.dirichlet(np.ones(C), B), np.eye(C)[rng.integers(0, C, B)], False),
    (losses.CategoricalCrossentropy(from_logits=True), rng.normal(size=(B, C)), np.eye(C)[rng.integers(0, C, B)], True),
    (losses.SparseCategoricalCrossentropy(), rng.dirichlet(np.ones(C), B), rng.integers(0, C, B), False),
    (losses.SparseCategoricalCrossentropy(from_logits=True), rng.normal(size=(B, T, C)), rng.integers(0, C, (B, T)), True),
    (losses.CategoricalCrossentropy(label_smoothing=0.2), rng.dirichlet(5 * np.ones(C), B), np.eye(C)[rng.integers(0, C, B)], False),
    (losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2), rng.normal(size=(B, T, C)), np.eye(C)[rng.integers(0, C, (B, T))], True),
    (losses.SparseCategoricalCrossentropy(label_smoothing=0.2), rng.dirichlet(5 * np.ones(C), B), rng.integers(0, C, B), False),
    (losses.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.2), rng.normal(size=(B, T, C)), rng.integers(0, C, (B, T)), True),
    (losses.MeanSquaredError(), rng.normal(size=(B, 2)), rng.normal(size=(B, 2)), False),
    (losses.MeanAbsoluteError(), rng.normal(size=(B, 2)), rng.normal(size=(B, 2)), False),
]


@pytest.mark.parametrize("loss, pred, y, _", CASES, ids=[f"{type(c[0]).__name__}-{c[3]}-{getattr(c[0], 'label_smoothing', 0)}" for c in CASES])
def test_loss_gradients(loss, pred, y, _):
    pred = pred.copy()
    loss.forward(pred, y)
    g = loss.backward()
    assert rel_err(g, numeric(lambda: loss.forward(pred, y), pred)) < 1e-6


def test_values_match_torch():
    z = rng.normal(size=(B, C))
    t = torch.tensor(z)
    ids = rng.integers(0, C, B)
    want = torch.nn.functional.cross_entropy(t, torch.tensor(ids)).item()
    assert abs(losses.SparseCategoricalCrossentropy(from_logits=True)(z, ids) - want) < 1e-12
    assert abs(losses.CategoricalCrossentropy(from_logits=True)(z, np.eye(C)[ids]) - want) < 1e-12
    p = torch.softmax(t, -1).numpy()
    assert abs(losses.SparseCategoricalCrossentropy()(p, ids) - want) < 1e-9
    yb = rng.integers(0, 2, (B, 1)).astype(float)
    want = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(z[:, :1]), torch.tensor(yb)).item()
    assert abs(losses.BinaryCrossentropy(from_logits=True)(z[:, :1], yb) - want) < 1e-12
    assert abs(losses.BinaryCrossentropy()(1 / (1 + np.exp(-z[:, :1])), yb[:, 0]) - want) < 1e-9
    assert abs(losses.MeanSquaredError()(z, z + 2) - 4.0) < 1e-12
    assert abs(losses.MeanAbsoluteError()(z, z - 3) - 3.0) < 1e-12


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_label_smoothing_matches_torch(eps, dtype):
    """PyTorch's CrossEntropyLoss(label_smoothing=eps): q = (1 - eps) onehot + eps / C; the
    sparse loss on logits (compiled passes), on probabilities, and the one-hot loss agree."""
    z = (rng.normal(size=(B, T, 7)) * 3).astype(dtype)
    ids = rng.integers(0, 7, (B, T))
    zt = torch.tensor(z.astype(np.float64), requires_grad=True)
    want = torch.nn.functional.cross_entropy(zt.reshape(-1, 7), torch.tensor(ids.reshape(-1)), label_smoothing=eps)
    want.backward()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    sparse = losses.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=eps)
    assert abs(sparse(z, ids) - want.item()) < tol
    g = sparse.backward()
    assert g.dtype == dtype and np.abs(g - zt.grad.numpy()).max() < tol
    p = np.exp(z - z.max(-1, keepdims=True)).astype(np.float64)
    p /= p.sum(-1, keepdims=True)
    assert abs(losses.SparseCategoricalCrossentropy(label_smoothing=eps)(p, ids) - want.item()) < 1e-5
    assert abs(losses.CategoricalCrossentropy(from_logits=True, label_smoothing=eps)(z, np.eye(7)[ids])
               - want.item()) < tol
    # the probabilities for metrics are made on demand, and are the softmax
    assert np.abs(sparse.y_prob - p).max() < (1e-12 if dtype == np.float64 else 1e-6)
    cfg = losses.serialize(sparse)
    assert losses.deserialize(cfg).label_smoothing == eps
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.SparseCategoricalCrossentropy(label_smoothing=1.0)


def test_logits_are_stable_and_grad_is_p_minus_y():
    z = np.array([[1000.0], [-1000.0], [0.0]])
    y = np.array([0.0, 1.0, 1.0])
    bce = losses.BinaryCrossentropy(from_logits=True)
    value = bce(z, y)
    assert np.isfinite(value) and abs(value - (1000 + 1000 + np.log(2)) / 3) < 1e-9
    np.testing.assert_allclose(bce.backward(), (np.array([[1.0], [0.0], [0.5]]) - y[:, None]) / 3)
    scce = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert np.isfinite(scce(np.array([[800.0, -800.0]]), np.array([1])))


def test_sequence_reductions_and_mask():
    z = rng.normal(size=(2, 4, 3))
    y = rng.integers(0, 3, (2, 4))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    per_step = -np.take_along_axis(losses.log_softmax(z), y[..., None], -1)[..., 0]       # (B, T)
    mean = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert abs(mean(z, y, mask=mask) - per_step[mask].mean()) < 1e-12
    summed = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum_over_time")
    assert abs(summed(z, y, mask=mask) - (per_step * mask).sum(1).mean()) < 1e-12    # E = sum_t E_t
    g = summed.backward()
    assert np.all(g[0, 2:] == 0)                                                      # padding gets no gradient
    zz = z.copy()
    assert rel_err(g, numeric(lambda: summed(zz, y, mask=mask), zz)) < 1e-6
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.MeanSquaredError(reduction="sum")


def test_sample_weights_and_errors():
    p = np.array([[0.9], [0.2], [0.6]])
    y = np.array([1, 1, 0])
    per = -np.log(np.array([0.9, 0.2, 0.4]))
    w = np.array([1.0, 3.0, 0.5])
    assert abs(losses.BinaryCrossentropy()(p, y, sample_weight=w) - (w * per).sum() / 3) < 1e-12
    with pytest.raises(ValueError, match=r"y_true has shape \(3, 2\) but the predictions have shape \(3, 1\)"):
        losses.BinaryCrossentropy()(p, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="class id 7 out of range for 5 classes"):
        losses.SparseCategoricalCrossentropy()(np.full((1, 5), 0.2), np.array([7]))
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    with pytest.raises(ValueError, match="loss must be a Loss object or one of"):
        losses.get("hinge")
