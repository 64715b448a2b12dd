"""The register-tiled product over packed weights (kernels/gemm.py) == A @ W:
any size (partial last panels), strided and transposed A, accumulation,
nothing written outside C, and rows computed alike however they are split."""
import numpy as np
import pytest

from lstmkit.kernels import gemm, threads

NB = {np.dtype(t): gemm.no_bias(t) for t in (np.float32, np.float64)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (1, 1, 32), (3, 5, 7), (4, 7, 64), (9, 65, 128), (32, 64, 96),
                                   (6, 0, 32), (5, 300, 33), (13, 600, 70)])
def test_dot_equals_matmul(dtype, M, K, N):
    rng = np.random.default_rng(M * 100 + K)
    # A and C as row slices of wider arrays: rows contiguous, row stride larger than K, N
    A = rng.standard_normal((M + 2, K + 3)).astype(dtype)[1:M + 1, 2:K + 2]
    W = rng.standard_normal((K, N)).astype(dtype)
    big = np.full((M + 1, N + 40), np.nan, dtype)
    C = big[:M, 3:N + 3]
    Wp = gemm.pack(W)
    gemm.dot_rows(0, M, A, Wp, C, False, NB[np.dtype(dtype)])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C, A @ W, rtol=tol, atol=tol * max(K, 1))
    assert np.isnan(big[:M, :3]).all() and np.isnan(big[:M, N + 3:]).all()   # nothing written outside C
    assert np.isnan(big[M:]).all()
    before = C.copy()
    gemm.dot_rows(0, M, A, Wp, C, True, NB[np.dtype(dtype)])      # C += A @ W
    np.testing.assert_allclose(C, before + A @ W, rtol=tol, atol=tol * max(K, 1))
    At = np.asfortranarray(A)                                    # A = X.T, strided along k
    C2 = np.empty((M, N), dtype)
    gemm.dot_rows(0, M, At, Wp, C2, False, NB[np.dtype(dtype)])
    np.testing.assert_array_equal(C2, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_kernel_any_layout(dtype):
    """rows_kernel: one compiled product for A in C order, in F order (X.T)
    and strided, each with the bits dot_rows compiled for that layout gives."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 37)).astype(dtype)
    Wp = gemm.pack(rng.standard_normal((37, 45)).astype(dtype))
    Wt = gemm.pack(rng.standard_normal((300, 45)).astype(dtype))
    kernels = set()
    for A, Wq in ((X, Wp), (X.T, Wt), (X[::2], Wp)):                # C, F, neither
        for accumulate in (False, True):
            want, got = (np.ones((A.shape[0], 45), dtype) for _ in range(2))
            gemm.dot_rows(0, A.shape[0], A, Wq, want, accumulate, NB[np.dtype(dtype)])
            kernel = gemm.rows_kernel(A, Wq, got, NB[np.dtype(dtype)])
            kernel(0, A.shape[0], A, Wq, got, accumulate, NB[np.dtype(dtype)])
            np.testing.assert_array_equal(got, want)
            kernels.add(id(kernel))
    assert len(kernels) == 1                                     # the same compiled function each time


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_alike_however_split(dtype):
    """Each output row comes out with the same bits whether it is computed
    in a 4-row tile or alone, in one call or in a thread's share."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((203, 700)).astype(dtype)            # 3 k blocks, a remainder of rows
    Wp = gemm.pack(rng.standard_normal((700, 45)).astype(dtype))
    whole = np.empty((203, 45), dtype)
    gemm.dot_rows(0, 203, A, Wp, whole, False, NB[np.dtype(dtype)])
    for lo, hi in [(0, 1), (1, 6), (6, 203), (101, 102)]:
        part = np.empty((203, 45), dtype)
        gemm.dot_rows(lo, hi, A, Wp, part, False, NB[np.dtype(dtype)])
        np.testing.assert_array_equal(part[lo:hi], whole[lo:hi])
    for n in (2, 3, 7):
        split = np.empty((203, 45), dtype)
        threads.run(gemm.dot_rows, threads.bounds(203, n, 4), A, Wp, split, False, gemm.no_bias(dtype))
        np.testing.assert_array_equal(split, whole)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", [(1, 3, 7), (203, 700, 45), (300, 32, 128)])
def test_bias_in_the_tiles_is_the_bias_added_after(dtype, M, K, N):
    """dot_rows with a bias gives the bits of C filled with the bias and then
    accumulated into (input_projection's way); in one k block (K <= KC) also
    those of the product followed by a pass that adds the bias
    (project_table's way), signed zeros included; however the rows are
    split, and nothing written outside C."""
    rng = np.random.default_rng(M + K)
    A = rng.standard_normal((M, K)).astype(dtype)
    A[0] = 0.0                                                   # a row whose sums are zeros
    W = rng.standard_normal((K, N)).astype(dtype)
    b = rng.standard_normal(N).astype(dtype)
    b[:2] = 0.0, -0.0                                            # -0 + sum: the sign of a zero sum
    Wp = gemm.pack(W)
    after = np.empty((M, N), dtype)
    if K <= gemm.KC:
        gemm.dot_rows(0, M, A, Wp, after, False, gemm.no_bias(dtype))
        after += b
    else:
        after[...] = b
        gemm.dot_rows(0, M, A, Wp, after, True, gemm.no_bias(dtype))
    for n in (1, 2, 3):
        big = np.full((M, N + 40), np.nan, dtype)
        C = big[:, 3:N + 3]
        threads.run(gemm.dot_rows, threads.bounds(M, n, 8), A, Wp, C, False, b)
        np.testing.assert_array_equal(C.view(f"i{C.itemsize}"), after.view(f"i{C.itemsize}"))
        assert np.isnan(big[:, :3]).all() and np.isnan(big[:, N + 3:]).all()
    np.testing.assert_allclose(after, A @ W + b, rtol=1e-4 if dtype == np.float32 else 1e-11,
                               atol=1e-3 if dtype == np.float32 else 1e-10)
    C = np.empty((M, N), dtype)
    threads.matmul(A, Wp, C, 2, bias=b)
    np.testing.assert_array_equal(C, after)
    with pytest.raises(ValueError, match="bias"):
        gemm.dot_rows(0, M, A, Wp, C, True, b)                   # a bias replaces accumulate
    with pytest.raises(ValueError, match="bias"):
        gemm.dot_rows(0, M, A, Wp, C, False, b[:-1])


def test_pack_layout_and_errors():
    W = np.arange(3 * 70, dtype=np.float32).reshape(3, 70)
    Wp = gemm.pack(W)
    assert Wp.shape == (3, 3, 32) and Wp.ctypes.data % 64 == 0
    np.testing.assert_array_equal(Wp[1, 2], W[2, 32:64])
    np.testing.assert_array_equal(Wp[2, 2, :6], W[2, 64:])
    assert not Wp[2, :, 6:].any()                                # zero padded
    G = gemm.pack_gates(np.arange(5 * 12, dtype=np.float64).reshape(5, 12), 3)
    assert G.shape == (3, 1, 5, 32)
    np.testing.assert_array_equal(G[1, 0, :, :4], np.arange(60).reshape(5, 12)[:, 4:8])
    with pytest.raises(ValueError, match="do not agree"):
        gemm.dot_rows(0, 2, np.zeros((2, 4), np.float32), Wp, np.zeros((2, 70), np.float32), False, gemm.no_bias(np.float32))


def test_bounds():
    assert threads.bounds(10, 1) == [(0, 10)]
    assert threads.bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert threads.bounds(10, 3, align=4) == [(0, 4), (4, 8), (8, 10)]
    assert threads.bounds(2, 5) == [(0, 1), (1, 2)]
    for n, parts, align in [(203, 7, 4), (5, 2, 4), (64, 4, 1)]:
        b = threads.bounds(n, parts, align)
        assert b[0][0] == 0 and b[-1][1] == n and all(x[1] == y[0] for x, y in zip(b, b[1:]))
