"""Determinism: the same seed gives the same weights and predictions, run after run, with one thread
and with two, on each engine. Each run is a fresh process (NUMBA_NUM_THREADS fixes the engine's threads);
training shuffles, uses dropout and recurrent dropout, so every RNG the model owns is exercised."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstmkit as lk

REPO = Path(__file__).resolve().parents[1]
RUN = r"""
import hashlib, sys
import numpy as np
import lstmkit as lk
engine, cell = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(5)
x = rng.integers(1, 30, size=(96, 12))
y = (x[:, :3].sum(1) > 45).astype(float)
Layer = {"lstm": lk.LSTM, "gru": lk.GRU, "rnn": lk.SimpleRNN}[cell]
m = lk.Sequential([lk.Embedding(30, 8, input_length=12), Layer(16, engine=engine, dropout=0.1),
                   lk.Dropout(0.2), lk.Dense(1, activation="sigmoid")], seed=3)
m.compile(optimizer=lk.Adam(0.01), loss="binary_crossentropy")
m.fit(x, y, epochs=2, batch_size=16, verbose=0)
w = m.get_weights()
np.savez(sys.argv[3], pred=m.predict(x), **{k.replace("/", "|"): v for k, v in w.items()})
"""


def train(engine, cell, threads, out):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), NUMBA_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, "-c", RUN, engine, cell, str(out)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


def digest(arrays):
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode() + arrays[k].tobytes())
    return h.hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_same_seed_same_weights_across_runs_and_threads(tmp_path, engine, cell):
    runs = {(t, i): train(engine, cell, t, tmp_path / f"{t}-{i}.npz") for t in (1, 2) for i in (0, 1)}
    for t in (1, 2):                                         # run after run, bit for bit
        assert digest(runs[t, 0]) == digest(runs[t, 1]), f"{engine} {cell}: two runs with {t} thread(s) differ"
    one, two = runs[1, 0], runs[2, 0]
    # the thread count changes no bit on either engine: NumPy alone, or the fast
    # engine, whose rows come out of the same instructions whatever thread
    # computes them and whose weight gradients are split by their own rows
    # (lk.config's docs, docs/kernels.md "Threads")
    assert digest(one) == digest(two), f"{engine} {cell}: 1 and 2 threads differ"


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_two_fits_in_one_process_agree(engine):
    """Nothing global leaks between models: a second model with the same seed trains to the same weights."""
    def fit():
        rng = np.random.default_rng(8)
        x, y = rng.normal(size=(40, 6, 3)), rng.integers(0, 2, 40).astype(float)
        m = lk.Sequential([lk.GRU(5, engine=engine, dropout=0.2, recurrent_dropout=0.1 if engine == "reference"
                                  else 0.0), lk.Dense(1, activation="sigmoid")], seed=11)
        m.compile(optimizer="rmsprop", loss="binary_crossentropy")
        m.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return m.get_weights(), m.predict(x)
    (w1, p1), (w2, p2) = fit(), fit()
    assert len(w1) == len(w2) == 6                           # the layers' auto names differ ('gru', 'gru_1')
    for a, b in zip(w1.values(), w2.values()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(p1, p2)
