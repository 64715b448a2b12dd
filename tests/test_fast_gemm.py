"""The register-tiled product over packed weights (kernels/gemm.py) == A @ W."""
import numpy as np
import pytest

from lstmkit.kernels import gemm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", [(1, 1, 32), (3, 5, 32), (4, 7, 64), (9, 65, 128), (32, 64, 96),
                                   (6, 0, 32)])
def test_packed_dot_equals_matmul(dtype, M, K, N):
    rng = np.random.default_rng(M * 100 + K)
    # A and C as row slices of wider arrays: rows contiguous, row stride larger than K, N
    A = rng.standard_normal((M + 2, K + 3)).astype(dtype)[1:M + 1, 2:K + 2]
    W = rng.standard_normal((K, N)).astype(dtype)
    big = np.full((M + 1, N + 40), np.nan, dtype)
    C = big[:M, 3:N + 3]
    gemm.packed_dot(A, gemm.pack(W), C)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C, A @ W, rtol=tol, atol=tol * max(K, 1))
    assert np.isnan(big[:M, :3]).all() and np.isnan(big[:M, N + 3:]).all()   # nothing written outside C
    assert np.isnan(big[M:]).all()


def test_pack_layout_and_errors():
    W = np.arange(3 * 64, dtype=np.float32).reshape(3, 64)
    Wp = gemm.pack(W)
    assert Wp.shape == (2, 3, 32)
    np.testing.assert_array_equal(Wp[1, 2], W[2, 32:64])
    with pytest.raises(ValueError, match="multiple of 32"):
        gemm.pack(np.zeros((3, 40), np.float32))
    with pytest.raises(ValueError, match="do not agree"):
        gemm.packed_dot(np.zeros((2, 4), np.float32), Wp, np.zeros((2, 64), np.float32))
