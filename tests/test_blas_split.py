"""NumPy (BLAS) products in row blocks over the engine's threads
(kernels/threads.blas_matmul, used by Dense): the blocks are fixed by the
shape, so 1, 2 or 3 threads give the same bits; they run in parallel only
when NumPy's BLAS runs one thread; Dense gives the same bits with 1 or 2
threads."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import lstmkit as lk
from lstmkit.kernels import policy, threads
from lstmkit.layers.dense import Dense


def operands(dtype, M=301, K=256, N=512, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype),
            rng.standard_normal((N, K)).astype(dtype), rng.standard_normal((M, N)).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_give_the_same_bits_on_any_number_of_threads(dtype):
    A, B, Bt, X = operands(dtype)                 # 2^25.2 multiply-adds: two blocks
    assert policy.blas_blocks(301, 301 * 256 * 512) == 2
    with threadpool_limits(1, user_api="blas"):
        assert threads.blas_one_thread()
        for a, b in [(A, B), (A, Bt.T), (np.asfortranarray(A), B), (X, Bt), (A.T, X)]:
            got = [threads.blas_matmul(a, b, threads=n) for n in (1, 2, 3)]
            assert got[0].shape == (a.shape[0], b.shape[1]) and got[0].dtype == dtype
            assert np.array_equal(got[0], got[1]) and np.array_equal(got[0], got[2])
            np.testing.assert_allclose(got[0], a @ b, rtol=1e-4 if dtype == np.float32 else 1e-12,
                                       atol=1e-3 if dtype == np.float32 else 1e-10)
    with threadpool_limits(2, user_api="blas"):   # BLAS threads itself: the same blocks in turn
        assert np.array_equal(threads.blas_matmul(A, B, threads=2), threads.blas_matmul(A, B, threads=1))


def test_blocks_run_in_parallel_only_when_blas_runs_one_thread(monkeypatch):
    A, B, _, _ = operands(np.float32, M=512, K=256, N=512)
    calls = []
    run = threads.run
    monkeypatch.setattr(threads, "run", lambda kernel, parts, *a: (calls.append(len(parts)),
                                                                   run(kernel, parts, *a)))
    with threadpool_limits(1, user_api="blas"):
        threads.blas_matmul(A, B, threads=2)                  # 2^26 multiply-adds: two blocks
        assert calls == [2]
        threads.blas_matmul(A[:64], B, threads=2)             # 2^23: one BLAS call
        threads.blas_matmul(A, B, threads=1)                  # two blocks in turn
        assert calls == [2]
    with threadpool_limits(2, user_api="blas"):
        threads.blas_matmul(A, B, threads=2)
        assert calls == [2]
    assert policy.blas_blocks(100, 1 << 30) == 1              # fewer rows than two BLAS_ALIGN blocks
    assert policy.blas_blocks(1000, 1 << 30) == policy.BLAS_BLOCKS


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_same_bits_with_one_or_two_threads(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 20, 256)).astype(dtype)      # 320 rows x 256 x 512: two blocks
    mask = np.arange(20)[None, :] < rng.integers(8, 21, 16)[:, None]
    runs = []
    for n in (1, 2):
        layer = Dense(512, activation="tanh", seed=0, dtype=dtype)
        with threadpool_limits(1, user_api="blas"), lk.config(threads=n):
            y = layer.forward(x, training=True)
            dx = layer.backward(np.ones_like(y))
            gw = layer.grads["W"].copy()
            z = layer.forward_rows(x, mask)
            dxr = layer.backward_logits(np.ones_like(z))
            runs.append([y, dx, gw, z, dxr, layer.grads["W"], layer.grads["b"]])
    for a, b in zip(*runs):
        assert np.array_equal(a, b)
