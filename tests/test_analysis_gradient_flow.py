"""The vanishing-gradient experiment computes what it claims."""
import numpy as np
import pytest

from lstmkit.analysis.gradient_flow import backprop_norms, gradient_flow, lstm_cell_jacobian_diag, make_layer
from lstmkit.analysis.jacobian import lstm_cell_state_jacobian_analytic
from lstmkit.engines import get_engine


@pytest.fixture(scope="module")
def flow():
    return gradient_flow(steps=60, units=24, batch=8, seed=0)


def test_simple_rnn_vanishes_orders_of_magnitude_faster_than_lstm(flow):
    assert flow.norms["simple_rnn"][50] < 1e-2 * flow.norms["lstm"][50]
    assert flow.norms["simple_rnn"][50] < 1e-2 * flow.norms["lstm_c"][50]


def test_norms_start_at_the_readout_and_decay(flow):
    for key in ("simple_rnn", "lstm", "gru"):
        n = flow.norms[key]
        assert n.shape == (61,)
        assert n[0] > 0
        assert n[50] < n[1]
    assert flow.norms["lstm_c"][0] == 0.0           # the loss reads h_T only; c_T has no direct road to it
    assert flow.norms["simple_rnn"][0] == flow.norms["lstm"][0]   # the same dL/dh_T for every cell


def test_step_by_step_backward_matches_whole_sequence_backward():
    rng = np.random.default_rng(1)
    layer = make_layer("lstm", 5, 3, seed=0)
    engine = get_engine("lstm", "reference")
    x = rng.normal(size=(2, 7, 3))
    p = layer.params
    _, _, cache = engine.forward(x, p["W_x"], p["W_h"], p["b_x"], None)
    dh = rng.normal(size=(2, 5))
    whole = engine.backward(None, (dh, None), cache)["state0"][0]          # dL/dh_0 in one call
    from lstmkit.analysis.gradient_flow import step_by_step
    _, caches = step_by_step(engine, layer, x)
    norms = backprop_norms(engine, caches, dh)
    assert norms[-1, 0] == pytest.approx(np.linalg.norm(whole, axis=1).mean(), rel=1e-10)


def test_cell_jacobian_diagonal_matches_the_closed_form():
    rng = np.random.default_rng(2)
    layer = make_layer("lstm", 4, 3, seed=0)
    engine = get_engine("lstm", "reference")
    x = rng.normal(size=(2, 6, 3))
    p = layer.params
    _, _, cache = engine.forward(x, p["W_x"], p["W_h"], p["b_x"], None)
    mine = lstm_cell_jacobian_diag(cache, p["W_h"]).reshape(2, 5, 4)          # (B, T-1, H)
    for t in (1, 3, 5):
        J = lstm_cell_state_jacobian_analytic(x, p["W_x"], p["W_h"], p["b_x"], None, t=t)   # (B, H, H)
        assert np.allclose(mine[:, t - 1], np.diagonal(J, axis1=1, axis2=2), atol=1e-12)


def test_forget_bias_changes_the_lstm_decay():
    low = gradient_flow(steps=40, units=16, batch=4, seed=0, forget_bias=-2.0, cells=("lstm",))
    high = gradient_flow(steps=40, units=16, batch=4, seed=0, forget_bias=3.0, cells=("lstm",))
    assert high.norms["lstm_c"][30] > 100 * low.norms["lstm_c"][30]
    assert high.forget.mean() > 0.85 > low.forget.mean()
