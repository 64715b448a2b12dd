"""Every cell in lstmkit.cells.CELLS keeps the shared contract (the fast
kernels mirror it): names, defaults, step-by-step consistency, zero gradients
for zero upstream gradients."""
import numpy as np
import pytest

from lstmkit.cells import CELLS
from lstmkit.engines import get_engine

OPTIONS = {"lstm": [{}], "gru": [{"reset_after": True}, {"reset_after": False}],
           "simple_rnn": [{"activation": "tanh"}, {"activation": "relu"}]}
CASES = [(name, opt) for name in CELLS for opt in OPTIONS[name]]


def args(cell, dtype=np.float64, B=3, T=5, D=2, H=4, seed=0):
    rng = np.random.default_rng(seed)
    G = cell.N_GATES
    x = rng.normal(size=(B, T, D)).astype(dtype)
    W_x, W_h = rng.normal(scale=0.5, size=(D, G * H)).astype(dtype), rng.normal(scale=0.5, size=(H, G * H)).astype(dtype)
    b_x, b_h = rng.normal(size=G * H).astype(dtype), rng.normal(size=G * H).astype(dtype)
    return x, W_x, W_h, b_x, b_h


def test_every_cell_is_registered_with_its_names():
    assert set(CELLS) == {"lstm", "gru", "simple_rnn"}
    for name, cell in CELLS.items():
        assert get_engine(name, "reference") is cell
        assert len(cell.GATE_NAMES) == cell.N_GATES
        assert cell.STATE_NAMES[0] == "h"
    assert CELLS["gru"].GATE_NAMES == ("reset_gate", "update_gate", "candidate")


@pytest.mark.parametrize("name, options", CASES)
def test_one_step_at_a_time_equals_the_whole_sequence(name, options):
    # what a streaming step() does: carry the state by hand, one step per call
    cell = CELLS[name]
    x, W_x, W_h, b_x, b_h = args(cell)
    hs, state, _ = cell.forward(x, W_x, W_h, b_x, b_h, **options)
    s = None
    for t in range(x.shape[1]):
        h_t, s, _ = cell.forward(x[:, t:t + 1], W_x, W_h, b_x, b_h, s, **options)
        np.testing.assert_allclose(h_t[:, 0], hs[:, t], rtol=0, atol=1e-14)
    for a, b in zip(s, state):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name, options", CASES)
def test_zero_state_default_and_zero_upstream_gradient(name, options):
    cell = CELLS[name]
    x, W_x, W_h, b_x, b_h = args(cell)
    zeros = tuple(np.zeros((3, 4)) for _ in cell.STATE_NAMES)
    hs, state, cache = cell.forward(x, W_x, W_h, b_x, b_h, **options)
    hs0, _, _ = cell.forward(x, W_x, W_h, b_x, b_h, zeros, **options)
    np.testing.assert_array_equal(hs, hs0)
    g = cell.backward(None, None, cache)
    for k in ("x", "W_x", "W_h", "b_x", "b_h"):
        np.testing.assert_array_equal(g[k], 0)
    assert len(g["state0"]) == len(cell.STATE_NAMES)
    # a nonzero upstream gradient gives nonzero gradients everywhere it should
    g = cell.backward(np.ones_like(hs), None, cache)
    assert all(np.abs(g[k]).max() > 0 for k in ("x", "W_x", "W_h", "b_x", "b_h"))


@pytest.mark.parametrize("name, options", CASES)
def test_float32_forward_matches_float64(name, options):
    cell = CELLS[name]
    a64 = args(cell)
    a32 = [a.astype(np.float32) for a in a64]
    hs64, _, c64 = cell.forward(*a64, **options)
    hs32, _, c32 = cell.forward(*a32, **options)
    assert hs32.dtype == np.float32
    np.testing.assert_allclose(hs32, hs64, rtol=0, atol=1e-5)
    g64 = cell.backward(np.ones_like(hs64), None, c64)
    g32 = cell.backward(np.ones_like(hs32), None, c32)
    for k in ("x", "W_x", "W_h", "b_x", "b_h"):
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, options", CASES)
def test_shape_errors_name_the_argument(name, options):
    cell = CELLS[name]
    x, W_x, W_h, b_x, b_h = args(cell)
    with pytest.raises(ValueError, match="W_x must have shape"):
        cell.forward(x[:, :, :1], W_x, W_h, **options)
    with pytest.raises(ValueError, match="b_h must have shape"):
        cell.forward(x, W_x, W_h, b_x, b_h[:-1], **options)
    with pytest.raises(ValueError, match="mask must have shape"):
        cell.forward(x, W_x, W_h, mask=np.ones((3, 4), bool), **options)
    with pytest.raises(TypeError, match="W_h has dtype float32"):
        cell.forward(x, W_x, W_h.astype(np.float32), **options)
