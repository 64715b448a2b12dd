"""Held-out bits with the state carried between windows, and the learning-curve
callback's time budget."""
import math

import numpy as np
import pytest

import lstmkit as lk
from lstmkit.apps.lm_eval import LMCurve, stream_bits
from lstmkit.data.windows import lm_windows


def _model(V=11, T=8):
    m = lk.Sequential([lk.Embedding(V, 6, input_length=T), lk.LSTM(7, return_sequences=True),
                       lk.LSTM(5, return_sequences=True), lk.Dense(V, activation="softmax")], seed=1)
    m.compile(optimizer=lk.Adam(0.01), loss="sparse_categorical_crossentropy")
    return m


def test_carried_state_equals_one_long_pass():
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 11, 203)
    m = _model()
    short, n = stream_bits(m, ids, rows=3, seq_len=5)
    long, n2 = stream_bits(m, ids, rows=3, seq_len=70)            # each row in one window
    assert n == n2 == 202
    assert short == pytest.approx(long, rel=1e-5)
    # one row, one window: the plain mean of -log2 p(next token)
    p = m.forward(ids[None, :-1], training=False)[0]                      # (N-1, V)
    want = -np.mean(np.log2(p[np.arange(202), ids[1:]]))
    assert stream_bits(m, ids, rows=1, seq_len=7)[0] == pytest.approx(want, rel=1e-5)
    # windows from a zero state lose context: worse than carrying it, for a trained model
    text = np.tile(np.arange(2, 11), 40)
    x, y = lm_windows(text, 8)
    m.fit(x, y, epochs=30, batch_size=8, verbose=0)
    assert stream_bits(m, text, rows=2, seq_len=8)[0] < 0.5


def test_curve_points_and_time_budget():
    ids = np.random.default_rng(1).integers(2, 11, 8 * 400 + 1)
    x, y = lm_windows(ids, 8)
    m = _model()
    curve = LMCurve(x[:16], y[:16], 8 * 8, len(x), 8, every=0.0, max_seconds=1e-9)
    m.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[curve])
    assert curve.stopped_by_budget
    assert curve.tokens == 8 * 8                                   # stopped after the first batch
    assert len(m.history.history["loss"]) == 1
    secs, tokens, train_bits, val_bits = curve.points[-1]
    assert tokens == 64 and math.isfinite(train_bits) and 0 < val_bits < 10
    assert curve.cpu_report()["process_cpu_seconds"] > 0
