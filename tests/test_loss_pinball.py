"""The pinball (quantile) loss: value and gradient against torch in float64,
gradient by finite differences, the quantile it is minimised at, shapes,
saving, and a small model whose quantile outputs cover what they should."""
import numpy as np
import pytest
import torch

import lstmkit as lk
from lstmkit import losses
from gradcheck_util import numeric_grad as numeric, rel_err

TAUS = (0.05, 0.5, 0.9)


def torch_pinball(pred, y, taus):
    """The same loss written in torch: pred (..., K*Q), y (..., K)."""
    p = torch.tensor(pred, requires_grad=True)
    t = torch.tensor(taus, dtype=torch.float64)
    u = torch.tensor(y)[..., None] - p.reshape(y.shape + (len(taus),))
    value = torch.maximum(t * u, (t - 1) * u).mean()
    value.backward()
    return value.item(), p.grad.numpy()


@pytest.mark.parametrize("shape", [(5, 3), (4, 6, 2)], ids=["per-sample", "per-step"])
def test_value_and_gradient_match_torch_and_finite_differences(shape):
    rng = np.random.default_rng(1)
    y = rng.normal(size=shape)
    pred = rng.normal(size=shape[:-1] + (shape[-1] * len(TAUS),))
    loss = losses.Pinball(TAUS)
    value = loss(pred, y)
    g = loss.backward()
    want, want_g = torch_pinball(pred, y, TAUS)
    assert abs(value - want) < 1e-12
    assert np.allclose(g, want_g, atol=1e-14)
    assert rel_err(g, numeric(lambda: loss(pred, y), pred)) < 1e-8


def test_slopes_by_hand():
    loss = losses.Pinball((0.1, 0.9))
    # one target 1.0; quantile predictions 0.0 (too low) and 3.0 (too high)
    value = loss(np.array([[0.0, 3.0]]), np.array([[1.0]]))
    assert abs(value - (0.1 * 1.0 + 0.1 * 2.0) / 2) < 1e-12       # tau u, (tau - 1) u
    assert np.allclose(loss.backward(), [[-0.1 / 2, 0.1 / 2]])  # -tau, 1 - tau, over K*Q = 2


def test_minimum_is_the_empirical_quantile():
    y = np.random.default_rng(2).exponential(size=(401, 1))
    for tau in (0.1, 0.5, 0.8):
        loss = losses.Pinball((tau,))
        best = np.quantile(y, tau, method="inverted_cdf")
        at = lambda p: loss(np.full((len(y), 1), p), y)
        assert at(best) <= min(at(best - 0.01), at(best + 0.01))
        assert at(best) < at(np.mean(y)) or abs(best - np.mean(y)) < 1e-9


def test_shapes_config_and_names():
    loss = losses.Pinball(TAUS)
    with pytest.raises(ValueError, match=r"3 quantiles .* shape \(4, 6\); got \(4, 5\)"):
        loss(np.zeros((4, 5)), np.zeros((4, 2)))
    assert abs(loss(np.zeros((4, 3)), np.zeros(4))) < 1e-12     # (B,) targets meet (B, Q) outputs
    for bad in ((), (0.0, 0.5), (1.5,)):
        with pytest.raises(ValueError, match="quantiles must be numbers in"):
            losses.Pinball(bad)
    back = losses.deserialize(losses.serialize(loss))
    assert isinstance(back, losses.Pinball) and back.quantiles.tolist() == list(TAUS)
    assert isinstance(losses.get("pinball"), losses.Pinball)


def test_a_model_learns_its_quantiles(tmp_path):
    """Dense(2) on a noisy linear target: the 0.1 and 0.9 outputs bracket about 80 %."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (2000, 1))
    y = 2 * x[:, 0] + rng.normal(scale=0.5, size=2000)
    model = lk.Sequential([lk.Dense(2, input_shape=(1,))], seed=0)
    model.compile(optimizer=lk.Adam(0.05), loss=lk.Pinball((0.1, 0.9)))
    model.fit(x[:1500], y[:1500], epochs=40, batch_size=100, verbose=0)
    p = model.predict(x[1500:])
    inside = np.mean((y[1500:] >= p[:, 0]) & (y[1500:] <= p[:, 1]))
    assert 0.72 < inside < 0.88, inside
    model.save(tmp_path / "m.safetensors")
    again = lk.load_model(tmp_path / "m.safetensors")
    assert again.loss.quantiles.tolist() == [0.1, 0.9]
    assert np.allclose(again.predict(x[1500:]), p)
