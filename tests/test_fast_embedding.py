"""The Embedding gradient's scatter-add kernel (lstmkit.kernels.embedding)
against np.add.at, and the layer around it over several steps: repeated ids,
the first and last rows, rows touched in one step and not the next, an id
buffer the caller overwrites between steps."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.kernels import embedding as kernels

DTYPES = [np.float32, np.float64]
V, E = 23, 5


def dense_grad(ids, dout, dtype):
    expected = np.zeros((V, E), dtype)                                   # (V, E)
    np.add.at(expected, ids.ravel(), dout.reshape(-1, E))
    return expected


def step_ids():
    """Three steps: repeats, both ends of the table; rows 0, 3 and V-1 of
    step 1 are absent from step 2, row 0 comes back in step 3."""
    return [np.array([[0, 3, 3, V - 1], [3, 7, 0, 0]]),                  # (2, 4)
            np.array([[1, 2, 2, 2], [7, 8, 9, 1]]),
            np.array([[0, 0, 0, 0], [V - 1, 5, 5, 0]])]


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_kernel_matches_add_at_and_clears_old_rows(dtype):
    rng = np.random.default_rng(0)
    table = np.zeros((V, E), dtype)
    touched, seen, n = np.empty(V, np.int64), np.zeros(V, np.bool_), 0
    for ids in step_ids():
        dout = rng.standard_normal(ids.shape + (E,)).astype(dtype)       # (B, T, E)
        n = kernels.scatter_add_rows(table, ids.reshape(-1), dout.reshape(-1, E), touched, n, seen)
        expected = dense_grad(ids, dout, dtype)
        # np.add.at adds in the same order, from the same zero: equal, not just close
        np.testing.assert_array_equal(table, expected)
        assert sorted(touched[:n]) == sorted(set(ids.ravel().tolist()))  # the rows to clear next time
        assert not seen.any()                                             # scratch left clean


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_backward_over_steps(dtype):
    rng = np.random.default_rng(1)
    emb = lk.Embedding(V, E, dtype=dtype, seed=0)
    buffer = np.empty((2, 4), np.int64)            # a loader that refills one array every step
    for step, ids in enumerate(step_ids()):
        buffer[...] = ids
        out = emb.forward(buffer, training=True)                         # (2, 4, E)
        np.testing.assert_array_equal(out, emb.params["embeddings"][ids])
        dout = rng.standard_normal(out.shape).astype(dtype)
        assert emb.backward(dout) is None
        g = emb.grads["embeddings"]
        assert g.shape == (V, E) and g.dtype == dtype
        np.testing.assert_array_equal(g, dense_grad(ids, dout, dtype))
        if step == 1:
            # rows of step 1 that step 2 does not look up: exactly zero now
            np.testing.assert_array_equal(g[[0, 3, V - 1]], 0.0)
            assert np.abs(g[[1, 2, 7, 8, 9]]).min() > 0


def test_backward_checks_dout_shape():
    emb = lk.Embedding(V, E)
    emb.forward(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"must have shape \(2, 3, 5\); got \(2, 3, 4\)"):
        emb.backward(np.zeros((2, 3, 4), np.float32))


def test_sentiment_shape_gradient():
    # the benchmark's shape: many repeats per row, some rows unused
    rng = np.random.default_rng(2)
    emb = lk.Embedding(10000, 32, seed=0)
    for _ in range(2):
        ids = rng.integers(0, 10000, (32, 500))
        emb.forward(ids, training=True)
        dout = rng.standard_normal((32, 500, 32)).astype(np.float32)
        emb.backward(dout)
        expected = np.zeros((10000, 32), np.float32)
        np.add.at(expected, ids.ravel(), dout.reshape(-1, 32))
        np.testing.assert_array_equal(emb.grads["embeddings"], expected)
