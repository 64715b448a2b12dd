"""A training process killed with SIGKILL, several times, once in the middle of writing a checkpoint,
and resumed each time, ends with the weights and History of a run never killed, bit for bit: float64
on the reference engine, float32 on the fast one (the engine's thread count fixed, as its rounding
depends on it). After every kill the newest complete checkpoint reads back."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstmkit.models import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, os, sys, time
import numpy as np
import lstmkit as lk
from lstmkit.models import checkpoint as ckpt
engine, ckdir, out = sys.argv[1], sys.argv[2], sys.argv[3]
die_in_write = int(os.environ.get("DIE_IN_WRITE", "0"))
if die_in_write:                       # die half way through the n-th checkpoint write
    real, calls = ckpt.io.atomic_write_bytes, [0]
    def dying(path, data):
        calls[0] += 1
        if calls[0] < die_in_write:
            return real(path, data)
        with ckpt.io.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(data[:len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), 9)
    ckpt.io.atomic_write_bytes = dying

class Slow(lk.callbacks.Callback):        # time for the test to kill in the middle of training
    def on_batch_end(self, batch, logs=None):
        if not getattr(self, "said", False):
            print("training", flush=True)         # the first batch of this process is done
            self.said = True
        time.sleep(0.03)

rng = np.random.default_rng(0)
x = rng.integers(1, 20, size=(44, 7))
y = (x[:, :2].sum(1) > 20).astype(float)
dtype = "float64" if engine == "reference" else "float32"
m = lk.Sequential([lk.Embedding(20, 6, input_length=7, dtype=dtype),
                   lk.LSTM(8, engine=engine, dropout=0.2, dtype=dtype), lk.Dropout(0.3, dtype=dtype),
                   lk.Dense(1, activation="sigmoid", dtype=dtype)], seed=4)
m.compile(optimizer=lk.Adam(0.02), loss="binary_crossentropy", metrics=["accuracy"])
kw = dict(checkpoint_dir=ckdir, checkpoint_every=1, resume=True) if ckdir != "-" else {}
h = m.fit(x, y, epochs=4, batch_size=8, verbose=0, validation_split=0.2, callbacks=[Slow()], **kw)
np.savez(out, **{k.replace("/", "|"): v for k, v in m.get_weights().items()})
with open(out + ".json", "w") as f:
    json.dump(h.history, f)
"""


def start(engine, ckdir, out, **env):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), NUMBA_NUM_THREADS="2", **env)
    return subprocess.Popen([sys.executable, "-c", CHILD, engine, str(ckdir), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(out):
    with np.load(out) as f:
        weights = {k: f[k] for k in f.files}
    return weights, json.loads(Path(str(out) + ".json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_killed_four_times_then_resumed_equals_never_killed(tmp_path, engine):
    p = start(engine, "-", tmp_path / "plain.npz")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    plain = result(tmp_path / "plain.npz")

    d, out, chance = tmp_path / "ck", tmp_path / "resumed.npz", random.Random(13)
    # 1: killed half way through writing its 4th checkpoint
    p = start(engine, d, out, DIE_IN_WRITE="4")
    _, err = p.communicate(timeout=600)
    assert p.returncode == -signal.SIGKILL, err
    assert len(list(d.glob(".tmp-*.safetensors"))) == 1                     # the half-written file
    assert [(e, b) for e, b, _ in ckpt.listing(d)] == [(0, 1), (0, 2), (0, 3)]
    positions = [(0, 3)]
    # 2-4: killed at random moments of training
    for _ in range(3):
        p = start(engine, d, out)
        assert p.stdout.readline().strip() == "training"
        time.sleep(chance.uniform(0.05, 0.4))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        found = ckpt.latest(d, log=pytest.fail)                               # the newest reads back whole
        assert found is not None
        positions.append((found[2]["epoch"], found[2]["batch"]))
    assert positions == sorted(positions) and len(set(positions)) > 2, positions   # each run went further
    p = start(engine, d, out)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert "resuming from" in err
    assert not list(d.glob(".tmp-*"))                                        # leftovers cleared
    weights, history = result(out)
    assert history == plain[1]
    for k, v in plain[0].items():
        assert v.dtype == np.dtype("float64" if engine == "reference" else "float32")
        assert v.tobytes() == weights[k].tobytes(), f"{engine}: weight {k} differs"
