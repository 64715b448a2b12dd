"""Beam search's compiled candidate selection (seq2seq/topk.py) against the same step in
NumPy: log-softmax per row, finished prefixes continue with padding only, the best k of
k x V candidates per sentence, best first."""
import numpy as np
import pytest

from lstmkit.seq2seq.topk import select


def reference(logits, scores, finished, pad):
    B, k = scores.shape
    z = logits.astype(np.float64)
    V = z.shape[1]
    s = z - z.max(axis=1, keepdims=True)
    logp = (s - np.log(np.exp(s).sum(axis=1, keepdims=True))).reshape(B, k, V)
    logp[finished] = -np.inf
    logp[..., pad][finished] = 0.0
    cand = (scores[:, :, None] + logp).reshape(B, k * V)
    top = np.argsort(-cand, axis=1, kind="stable")[:, :k]          # ties: the earlier (j, v) first
    return np.take_along_axis(cand, top, 1), top // V, top % V


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B, k, V", [(1, 1, 7), (3, 4, 50), (2, 5, 4003)])
def test_select_matches_numpy(dtype, B, k, V):
    rng = np.random.default_rng(B * 100 + k * 10 + V)
    logits = (rng.normal(size=(B * k, V)) * 3).astype(dtype)
    scores = -rng.uniform(0, 5, (B, k))
    scores[0, 1:] = -np.inf                                          # the first step: one live prefix
    finished = rng.random((B, k)) < 0.3
    finished[0] = False
    got = np.empty((B, k)), np.empty((B, k), np.int64), np.empty((B, k), np.int64)
    select(logits, scores, finished, 0, *got)
    want = reference(logits, scores, finished, 0)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_select_fills_a_beam_wider_than_the_candidates():
    """Two live candidates (vocabulary 2, one prefix) for a beam of 4: the rest are -inf."""
    logits = np.array([[0.0, 1.0]] * 4, np.float32)
    scores = np.array([[0.0, -np.inf, -np.inf, -np.inf]])
    got = np.empty((1, 4)), np.empty((1, 4), np.int64), np.empty((1, 4), np.int64)
    select(logits, scores, np.zeros((1, 4), bool), 0, *got)
    assert list(got[2][0, :2]) == [1, 0] and list(got[1][0, :2]) == [0, 0]
    assert np.all(np.isneginf(got[0][0, 2:])) and np.all(np.isfinite(got[0][0, :2]))
    # each slot names a different candidate
    assert len({(o, t) for o, t in zip(got[1][0], got[2][0])}) == 4
