"""The parts of a training step around the recurrent kernels: Adam.apply on
the sentiment model's parameters, Embedding forward/backward, and a whole
train_on_batch. Medians in milliseconds.

    PYTHONPATH=src python benchmarks/optim_step.py [--repeats 50]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from timing import measure  # noqa: E402

import lstmkit as lk  # noqa: E402

V, E, H, T = 10000, 32, 32, 500


def model_params(rng):
    """The parameter set of Embedding(10000, 32) -> LSTM(32) -> Dense(1)."""
    shapes = {"emb/embeddings": (V, E), "lstm/W_x": (E, 4 * H), "lstm/W_h": (H, 4 * H),
              "lstm/b": (4 * H,), "dense/W": (H, 1), "dense/b": (1,)}
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    grads = {k: rng.standard_normal(s).astype(np.float32) * 1e-2 for k, s in shapes.items()}
    return params, grads


def main(repeats):
    rng = np.random.default_rng(0)
    params, grads = model_params(rng)
    rows = []
    for name, opt in [("Adam.apply", lk.Adam()), ("Adam.apply clipnorm=1", lk.Adam(clipnorm=1.0)),
                      ("SGD(momentum=0.9).apply", lk.SGD(momentum=0.9)), ("RMSprop.apply", lk.RMSprop())]:
        rows.append((name, measure(lambda: opt.apply(params, grads), repeats, warmup=3)["median"]))

    for B in (32, 128):
        emb = lk.Embedding(V, E)
        ids = rng.integers(0, V, size=(B, T))                             # (B, T)
        dout = rng.standard_normal((B, T, E)).astype(np.float32)          # (B, T, E)
        rows.append((f"Embedding.forward B={B}", measure(lambda: emb.forward(ids, training=True),
                                                         repeats, warmup=3)["median"]))
        emb.forward(ids, training=True)
        rows.append((f"Embedding.backward B={B}", measure(lambda: emb.backward(dout),
                                                          repeats, warmup=3)["median"]))

    for B in (32,):
        m = lk.Sequential([lk.Embedding(V, E), lk.LSTM(H), lk.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy")
        m.build((None,))
        x = rng.integers(0, V, size=(B, T))
        y = rng.integers(0, 2, size=(B, 1)).astype(np.float32)
        rows.append((f"train_on_batch B={B}", measure(lambda: m.train_on_batch(x, y),
                                                      max(repeats // 2, 30), warmup=3)["median"]))
    for name, ms in rows:
        print(f"{name:32s} {ms:8.3f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=50)
    main(ap.parse_args().repeats)
