"""kernels/views.py: run() and block() are the views basic slicing and
reshape make, over the same memory."""
import numpy as np
import pytest
from numba import njit

from lstmkit.kernels.views import block, run


@njit(cache=False)
def _views(g, z, carry, q, t, base, P, lo, n, H):
    r = run(g, (q, t, base), P)
    r[0] = -1.0                                                # a view: writes reach g
    return (r.copy(), block(z, (q, base), n, H).copy(), run(carry, (0, lo, 0), n * H).copy(),
            block(carry, (1, lo, 0), n, H).copy(), run(z, (q, base), 0).copy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_views_equal_the_slices_they_replace(dtype):
    g = np.arange(4 * 5 * 12, dtype=dtype).reshape(4, 5, 12)
    z = np.arange(4 * 12, dtype=dtype).reshape(4, 12)
    carry = np.arange(2 * 4 * 3, dtype=dtype).reshape(2, 4, 3)
    before = g.copy()
    r, b, c, h, empty = _views(g, z, carry, 2, 3, 6, 6, 1, 2, 3)
    assert r[0] == -1 and g[2, 3, 6] == -1                     # a[q, t, base:base + P], written through
    np.testing.assert_array_equal(r[1:], before[2, 3, 7:12])
    np.testing.assert_array_equal(b, z[2, 6:12].reshape(2, 3))   # a[q, base:base + P].reshape((n, H))
    np.testing.assert_array_equal(c, carry[0, 1:3].reshape(6))   # a run crossing rows
    np.testing.assert_array_equal(h, carry[1, 1:3])
    assert empty.shape == (0,)
    assert r.dtype == dtype and b.flags.c_contiguous


def test_views_refuse_what_they_cannot_address():
    @njit(cache=False)
    def wrong_rank(a):
        return run(a, (0,), 2)                                 # a 2-D array needs two indices

    with pytest.raises(Exception, match="(?i)typing|invalid use|no match|run"):
        wrong_rank(np.zeros((3, 3)))
