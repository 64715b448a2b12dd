"""The row-skipping training loops (kernels/skeleton.py, forward_rows_live):
over trailing padding they must give exactly what the masked loops give --
outputs (0 at padded steps), final states and every gradient, to the last
bit (signed zeros aside), in float32 and float64, fused and not, both
directions, one or two chunks."""
import numpy as np
import pytest

from lstmkit.kernels import lstm, policy, simple_rnn, skeleton

CELLS = {"lstm": (lstm, 4, 2), "simple_rnn": (simple_rnn, 1, 1)}


def _problem(G, S, dt, seed=0, B=7, T=6, D=5, H=9):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D)).astype(dt)
    W_x = (0.5 * rng.standard_normal((D, G * H))).astype(dt)
    W_h = (0.5 * rng.standard_normal((H, G * H))).astype(dt)
    b_x, b_h = (0.1 * rng.standard_normal(G * H)).astype(dt), (0.1 * rng.standard_normal(G * H)).astype(dt)
    state0 = tuple(rng.standard_normal((B, H)).astype(dt) for _ in range(S))
    lens = np.array([T, 0, 3, T, 1, 5, 2][:B])                 # a full row, an empty one, the rest mixed
    mask = np.arange(T) < lens[:, None]                        # (B, T) trailing padding
    dhs = rng.standard_normal((B, T, H)).astype(dt)
    dstate = tuple(rng.standard_normal((B, H)).astype(dt) for _ in range(S))
    return x, W_x, W_h, b_x, b_h, state0, mask, dhs, dstate


def _run(mod, args, reverse, skip, chunks, fused, backward_twice=False):
    x, W_x, W_h, b_x, b_h, state0, mask, dhs, dstate = args
    with policy.forced(skip_padding=skip, chunks=chunks, fuse_input=fused):
        hs, state, cache = mod.forward(x, W_x, W_h, b_x, b_h, state0, mask=mask, reverse=reverse)
        used = cache.get("live") is not None
        grads = mod.backward(dhs, dstate, cache)
        if backward_twice:
            grads = mod.backward(dhs, dstate, cache)
    return used, [hs, *state, *(grads[k] for k in ("x", "W_x", "W_h", "b_x", "b_h")), *grads["state0"]]


def _same(got, want):
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert np.all(np.isfinite(g))
        assert np.array_equal(g, w)                            # equal to the last bit (-0 == 0)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("chunks", [1, 2])
def test_skipping_equals_the_masked_loops(cell, dt, fused, reverse, chunks):
    mod, G, S = CELLS[cell]
    args = _problem(G, S, dt)
    used, got = _run(mod, args, reverse, True, chunks, fused)
    unused, want = _run(mod, args, reverse, False, chunks, fused)
    assert used and not unused
    _same(got, want)
    hs, mask = got[0], args[6]
    assert np.all(hs[~mask] == 0)                              # padded steps output 0


def test_second_backward_from_one_forward():
    """The LSTM's backward overwrites its cached gates; a second backward
    recomputes them (lstm._restore_gates) and must still skip exactly."""
    args = _problem(4, 2, np.float64, seed=1)
    _, got = _run(lstm, args, False, True, 2, False, backward_twice=True)
    _, want = _run(lstm, args, False, False, 2, False, backward_twice=True)
    _same(got, want)


def test_other_masks_take_the_masked_loops():
    """A mask that is not trailing padding (a gap, a leading pad, a
    fractional weight) runs the masked loops; no padding at all runs the
    plain ones."""
    args = list(_problem(4, 2, np.float64, seed=2))
    for bad in ([1, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1], [1, 1, 0.5, 0, 0, 0], [1] * 6):
        mask = np.ones((7, 6))
        mask[3] = bad
        args[6] = mask
        assert skeleton.trailing_lengths(mask) is None or min(bad) == 1
        used, got = _run(lstm, args, False, True, 1, False)
        assert not used
        _, want = _run(lstm, args, False, False, 1, False)
        _same(got, want)


def test_live_order():
    lens = np.array([2, 7, 0, 5, 5, 1, 3])
    for chunks in (1, 2, 3):
        perm = skeleton.live_order(lens, chunks)
        assert sorted(perm) == list(range(7))
        for lo, hi in skeleton.threads.bounds(7, chunks):     # each chunk longest first
            part = lens[perm[lo:hi]]
            assert np.all(part[:-1] >= part[1:])
    assert list(skeleton.trailing_lengths(np.array([[1, 1, 0], [0, 0, 0], [1, 1, 1]]))) == [2, 0, 3]


@pytest.mark.parametrize("dtype,bidirectional,layers", [("float64", True, 2), ("float32", False, 1)])
def test_translation_model_step_is_unchanged(dtype, bidirectional, layers, monkeypatch):
    """One Model.fit training step of the translation graph (encoder and
    decoder masks are trailing padding; a bidirectional encoder runs one
    direction reversed) leaves the same weights with and without skipping."""
    import lstmkit as lk
    from lstmkit.models.training import train_batch
    from lstmkit.seq2seq import graph

    rng = np.random.default_rng(3)
    src = [list(rng.integers(3, 30, rng.integers(1, 9))) for _ in range(11)]
    tgt = [list(rng.integers(3, 30, rng.integers(1, 8))) + [2] for _ in src]
    x, y_in, y = graph.arrays(src, tgt)
    used = []
    plan = skeleton._live
    monkeypatch.setattr(skeleton, "_live", lambda *a: used.append(plan(*a)) or used[-1])
    weights = []
    for skip in (True, False):
        model = graph.build(30, 30, 6, 8, layers=layers, bidirectional=bidirectional, dropout=0.0, seed=0,
                            engine="fast", dtype=dtype)
        model.compile(optimizer=lk.Adam(0.01, clipnorm=1.0), loss=lk.losses.SparseCategoricalCrossentropy())
        with policy.forced(skip_padding=skip, chunks=2):
            losses = [train_batch(model, [x, y_in], y) for _ in range(2)]
        weights.append((losses, model.get_weights()))
    (l1, w1), (l2, w2) = weights
    n_rnn = layers + layers * (2 if bidirectional else 1)             # per step: decoder + encoder directions
    assert sum(u is not None for u in used) == 2 * n_rnn               # 2 steps, every layer skipped
    assert l1 == l2
    assert len(w1) == len(w2) > 0
    for a, b in zip(w1, w2):
        assert np.array_equal(a, b)
