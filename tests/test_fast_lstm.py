"""What only the fast LSTM does: a second backward from one forward (the first
overwrote the cached gates), and float32 gradients decaying through the
subnormal range. The paths every cell shares are in test_fast_cells.py."""
import numpy as np
import pytest

from lstmkit.cells import lstm as ref
from lstmkit.kernels import lstm as fast, policy
from test_fast_support import compare_engines, make_case, mask_with_padding


def case(dtype, B=3, T=5, D=4, H=6, **kw):
    return make_case(dtype, B, T, D, H, 4, 2, **kw)


def test_long_float32_sequence_with_vanishing_gradients():
    # small recurrent weights: gradients shrink into the float32 subnormal range
    c = case(np.float32, B=4, T=300, D=3, H=8, seed=3)
    c["W_h"] *= np.float32(0.05)
    c["W_x"] *= np.float32(0.05)
    c["dhs"][:, :-1] = 0
    compare_engines(ref, fast, c, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fuse", [True, False])
def test_backward_twice_on_one_cache(dtype, fuse):
    """backward overwrites the cached gates with dL/dz; a second backward
    from the same forward recomputes them and gives the same gradients."""
    c = case(dtype, B=3, T=5)
    mask = mask_with_padding(3, 5)
    with policy.forced(fuse_input=fuse):
        hs, state, cache = fast.forward(c["x"], c["W_x"], c["W_h"], c["b_x"], c["b_h"],
                                        c["state0"], mask=mask)
        g1 = fast.backward(c["dhs"], c["dstate"], cache)
        g2 = fast.backward(c["dhs"], c["dstate"], cache)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    for k in ("x", "W_x", "W_h", "b_x", "b_h"):
        np.testing.assert_allclose(g2[k], g1[k], rtol=tol, atol=tol, err_msg=k)
    for a, b in zip(g2["state0"], g1["state0"]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
