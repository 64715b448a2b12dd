"""Optimizers against hand-computed updates and torch.optim on the same
gradients; clipping; learning-rate schedules."""
import math

import numpy as np
import pytest
import torch

import lstmkit as lk
from lstmkit import optimizers, schedules

rng = np.random.default_rng(0)
P0 = {"a/W": rng.normal(size=(3, 4)), "b/b": rng.normal(size=(4,))}
GRADS = [{k: rng.normal(size=v.shape) for k, v in P0.items()} for _ in range(5)]


def run_ours(opt, steps=5):
    params = {k: v.copy() for k, v in P0.items()}
    arrays = dict(params)
    for g in GRADS[:steps]:
        opt.apply(params, g)
    for k in params:
        assert params[k] is arrays[k]                    # updated in place: layers see the change
    return params


def run_torch(make, steps=5):
    tensors = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in P0.items()}
    opt = make(list(tensors.values()))
    for g in GRADS[:steps]:
        for k, t in tensors.items():
            t.grad = torch.tensor(g[k])
        opt.step()
    return {k: t.detach().numpy() for k, t in tensors.items()}


@pytest.mark.parametrize("ours, theirs", [
    (lambda: lk.SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (lambda: lk.SGD(0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    (lambda: lk.SGD(0.1, momentum=0.9, nesterov=True), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    (lambda: lk.Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7)),
    (lambda: lk.Adam(0.01, beta_1=0.5, beta_2=0.9, epsilon=1e-8), lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.5, 0.9), eps=1e-8)),
    (lambda: lk.AdamW(0.01, weight_decay=0.1), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-7)),
    (lambda: lk.AdamW(schedules.StepDecay(0.05, 2, 0.5), weight_decay=0.3, beta_1=0.5, epsilon=1e-8, clipnorm=1.0),
     None),
    (lambda: lk.RMSprop(0.01), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7)),
    (lambda: lk.RMSprop(0.01, rho=0.99, momentum=0.5), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-7, momentum=0.5)),
], ids=["sgd", "momentum", "nesterov", "adam", "adam-betas", "adamw", "adamw-schedule-clipped", "rmsprop",
        "rmsprop-momentum"])
def test_matches_torch(ours, theirs):
    if theirs is None:                   # AdamW with a step schedule and clipnorm: torch's scheduler and clipping
        def theirs(p):
            return _TorchAdamWScheduled(p)
    a, b = run_ours(ours()), run_torch(theirs)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-12)


class _TorchAdamWScheduled:
    """torch.optim.AdamW (lr 0.05 halved every 2 steps, weight decay 0.3, betas (0.5, 0.999), eps 1e-8)
    on gradients scaled to a global norm of at most 1: what lk.AdamW with StepDecay and clipnorm must match.
    (The scaling by hand: torch's clip_grad_norm_ divides by norm + 1e-6.)"""

    def __init__(self, params):
        self.params = params
        self.opt = torch.optim.AdamW(params, lr=0.05, weight_decay=0.3, betas=(0.5, 0.999), eps=1e-8)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=2, gamma=0.5)

    def step(self):
        norm = float(torch.sqrt(sum((t.grad ** 2).sum() for t in self.params)))
        for t in self.params:
            t.grad *= min(1.0, 1.0 / norm)
        self.opt.step()
        self.sched.step()


def test_adamw_decay_is_decoupled():
    # with a zero gradient Adam does not move; AdamW still shrinks each weight by lr * weight_decay of itself
    p = {"w": np.array([1.0, -2.0, 4.0])}
    opt = lk.AdamW(0.1, weight_decay=0.5)
    opt.apply(p, {"w": np.zeros(3)})
    np.testing.assert_allclose(p["w"], [0.95, -1.9, 3.8])
    # weight_decay 0 is Adam, bit for bit, in float32 too
    a = {k: v.astype(np.float32) for k, v in P0.items()}
    b = {k: v.copy() for k, v in a.items()}
    adam, adamw = lk.Adam(0.01), lk.AdamW(0.01, weight_decay=0.0)
    for g in GRADS:
        adam.apply(a, g)
        adamw.apply(b, g)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert optimizers.get("adamw").weight_decay == 0.004
    back = optimizers.deserialize(optimizers.serialize(lk.AdamW(0.01, weight_decay=0.2, beta_1=0.8)))
    assert isinstance(back, lk.AdamW) and back.weight_decay == 0.2 and back.beta_1 == 0.8
    with pytest.raises(ValueError, match="weight_decay must be a number >= 0; got -1"):
        lk.AdamW(weight_decay=-1)


def test_hand_computed_steps():
    g1, g2 = GRADS[0]["a/W"], GRADS[1]["a/W"]
    p = run_ours(lk.SGD(0.1, momentum=0.9), steps=2)["a/W"]
    v1 = g1
    v2 = 0.9 * v1 + g2
    np.testing.assert_allclose(p, P0["a/W"] - 0.1 * v1 - 0.1 * v2)
    # Adam's first step moves every weight by lr * sign(g) (up to epsilon): m_hat = g, v_hat = g^2
    p = run_ours(lk.Adam(0.01, epsilon=0.0), steps=1)["a/W"]
    np.testing.assert_allclose(p, P0["a/W"] - 0.01 * np.sign(g1))
    p = run_ours(lk.RMSprop(0.01, rho=0.9, epsilon=0.0), steps=1)["a/W"]
    np.testing.assert_allclose(p, P0["a/W"] - 0.01 * g1 / np.sqrt(0.1 * g1 * g1))


def test_clipping():
    g = {k: v * 100 for k, v in GRADS[0].items()}
    norm = math.sqrt(sum((v ** 2).sum() for v in g.values()))
    clipped = lk.SGD(1.0, clipnorm=1.0).clip(g)
    assert abs(math.sqrt(sum((v ** 2).sum() for v in clipped.values())) - 1.0) < 1e-12
    np.testing.assert_allclose(clipped["a/W"], g["a/W"] / norm)          # one scale for all: the direction stays
    small = {k: v * 1e-3 for k, v in g.items()}
    np.testing.assert_array_equal(lk.SGD(1.0, clipnorm=1.0).clip(small)["b/b"], small["b/b"])
    cv = lk.SGD(1.0, clipvalue=0.5).clip(GRADS[0])
    assert np.abs(cv["a/W"]).max() == 0.5
    np.testing.assert_array_equal(cv["a/W"], np.clip(GRADS[0]["a/W"], -0.5, 0.5))
    # torch.nn.utils.clip_grad_norm_ then SGD is the same step
    params = run_ours(lk.SGD(0.1, clipnorm=0.5), steps=1)
    ts = [torch.tensor(v.copy(), requires_grad=True) for v in P0.values()]
    for t, k in zip(ts, P0):
        t.grad = torch.tensor(GRADS[0][k])
    torch.nn.utils.clip_grad_norm_(ts, 0.5)
    torch.optim.SGD(ts, lr=0.1).step()
    for t, k in zip(ts, P0):
        np.testing.assert_allclose(params[k], t.detach().numpy(), rtol=1e-6)


def test_schedules():
    s = schedules.StepDecay(0.1, step_size=10, gamma=0.5)
    assert [s(0), s(9), s(10), s(25)] == [0.1, 0.1, 0.05, 0.025]
    e = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert abs(e(5) - 0.1 * 0.5 ** 0.5) < 1e-15
    assert schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)(15) == 0.05
    c = schedules.CosineDecay(0.1, decay_steps=100, alpha=0.1)
    assert c(0) == pytest.approx(0.1) and c(50) == pytest.approx(0.1 * (0.5 * 0.9 + 0.1))
    assert c(100) == pytest.approx(0.01) and c(500) == pytest.approx(0.01)
    # the optimizer asks the schedule for each step's rate: SGD steps shrink as it decays
    opt = lk.SGD(learning_rate=schedules.StepDecay(1.0, step_size=1, gamma=0.5))
    p = {"w": np.zeros(1)}
    for _ in range(3):
        opt.apply(p, {"w": np.ones(1)})
    assert p["w"][0] == -(1.0 + 0.5 + 0.25)
    # matches torch's StepLR stepped every update
    t = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([t], lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(topt, step_size=1, gamma=0.5)
    for _ in range(3):
        t.grad = torch.ones(1)
        topt.step()
        sched.step()
    assert t.item() == p["w"][0]


def test_errors_and_names():
    assert isinstance(optimizers.get("adam"), lk.Adam) and optimizers.get("adam").learning_rate == 0.001
    with pytest.raises(ValueError, match="optimizer must be an Optimizer or one of"):
        optimizers.get("adagrad")
    with pytest.raises(ValueError, match="learning_rate must be a positive number or a schedule; got -1"):
        lk.SGD(-1)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum"):
        lk.SGD(0.1, nesterov=True)
    spec = optimizers.serialize(lk.Adam(schedules.CosineDecay(0.01, 100), clipnorm=1.0))
    back = optimizers.deserialize(spec)
    assert isinstance(back.learning_rate, schedules.CosineDecay) and back.clipnorm == 1.0
