"""The compiled cross-entropy passes (lstmkit/loss_kernels.py): float32's own exponential
against float64's, and forward / backward / fused against the equations written in NumPy."""
import numpy as np
import pytest

from lstmkit import loss_kernels as K


def reference(z, y, eps):
    """loss per row, NLL per row, log-sum-exp, and the gradient p - q, in float64."""
    z = np.asarray(z, np.float64)
    N, C = z.shape
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    logp = z - lse[:, None]
    nll = -logp[np.arange(N), y]
    loss = (1 - eps) * nll - eps * logp.mean(axis=1)
    q = np.full((N, C), eps / C)
    q[np.arange(N), y] += 1 - eps
    return loss, nll, lse, np.exp(logp) - q


def test_float32_exponential_is_accurate():
    x = np.concatenate([np.linspace(-87.0, 0.0, 200_001), [-1e-30, 0.0, 1e-7, 2e-7]]).astype(np.float32)
    out = np.empty_like(x)
    K._exp_f32(x, np.float32(0.0), out, np.empty(len(x), np.int32))
    want = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out / want - 1)) < 5e-7
    # below float32's normal range: exactly 0; -inf too
    K._exp_f32(np.array([-87.5, -100.0, -1e30, -np.inf], np.float32), np.float32(0.0), out[:4],
               np.empty(4, np.int32))
    assert np.all(out[:4] == 0.0)
    # the shift is subtracted first: exp(x - s) for large logits
    x = np.array([1000.0, 999.0, 990.0], np.float32)
    K._exp_f32(x, np.float32(1000.0), out[:3], np.empty(3, np.int32))
    np.testing.assert_allclose(out[:3], np.exp([0.0, -1.0, -10.0]), rtol=5e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("shape", [(1, 3), (7, 13), (37, 1001)])
def test_passes_match_the_equations(dtype, eps, shape):
    rng = np.random.default_rng(sum(shape))
    N, C = shape
    z = (rng.normal(size=shape) * 4).astype(dtype)
    z[0, 0] = 40.0                                            # a dominant logit: others' p underflows
    y = rng.integers(0, C, N).astype(np.int64)
    dl = rng.uniform(0.5, 2.0, N)
    r_loss, r_nll, r_lse, r_g = reference(z, y, eps)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    lse, loss, nll = (np.empty(N) for _ in range(3))
    K.xent_forward(z, y, eps, lse, loss, nll)
    for got, want in ((lse, r_lse), (loss, r_loss), (nll, r_nll)):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 10)
    out = np.empty_like(z)
    K.xent_backward(z, y, eps, lse, dl, out)
    np.testing.assert_allclose(out, dl[:, None] * r_g, atol=tol)
    fused = z.copy()
    lse2, loss2, nll2 = (np.empty(N) for _ in range(3))
    K.xent_fused(fused, y, eps, dl, lse2, loss2, nll2)
    np.testing.assert_allclose(fused, dl[:, None] * r_g, atol=tol)
    np.testing.assert_array_equal(loss2, loss)
    np.testing.assert_array_equal(nll2, nll)
    assert fused.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_split_over_threads_change_no_number(dtype):
    """The passes run row ranges on the engine's threads (policy.loss_threads): 1, 2 or 3
    ranges give the same bits, forward, backward and fused."""
    from lstmkit.kernels import policy
    rng = np.random.default_rng(3)
    N, C = 37, 300
    z = (rng.standard_normal((N, C)) * 3).astype(dtype)
    y = rng.integers(0, C, N)
    dl = rng.uniform(0.1, 1.0, N)
    runs = []
    for chunks in (1, 2, 3):
        with policy.forced(chunks=chunks):
            lse, loss, nll = (np.empty(N) for _ in range(3))
            K.xent_forward(z, y, 0.1, lse, loss, nll)
            grad = np.empty_like(z)
            K.xent_backward(z, y, 0.1, lse, dl, grad)
            fused = z.copy()
            out = [np.empty(N) for _ in range(3)]
            K.xent_fused(fused, y, 0.1, dl, *out)
            runs.append([lse, loss, nll, grad, fused] + out)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert np.array_equal(a, b)
    want = reference(z, y, 0.1)
    np.testing.assert_allclose(runs[1][1], want[0], rtol=2e-5 if dtype == np.float32 else 1e-12)
