"""One process of the distributed tests (tests/test_distributed.py): trains a small
model with fit, as a user script would, and (on rank 0, or alone) writes the final
weights and the history. Run with RANK/WORLD_SIZE/MASTER_* set for a rank of a
data-parallel run, without them for the one-process reference.

    python tests/dist_worker.py OUT.npz sequential|functional [die]
"""
import json
import os
import sys

import numpy as np

import lstmkit as lk


def data(n=45, T=9, vocab=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, vocab, size=(n, T))
    for row, k in zip(x, rng.integers(1, T + 1, size=n)):
        row[k:] = 0                                            # post-padding, random lengths
    y = (x[:, 0] % 2).astype(np.float64)
    return x, y


def sequential():
    model = lk.Sequential([lk.Embedding(30, 6, input_length=9, mask_zero=True, dtype="float64"),
                           lk.LSTM(5, return_sequences=True, dtype="float64"),
                           lk.GRU(4, dtype="float64"),
                           lk.Dense(1, activation="sigmoid", dtype="float64")], seed=1)
    model.compile(optimizer=lk.Adam(learning_rate=0.02), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def functional():
    """Two outputs with their own counts: a per-step masked loss and a per-sample one."""
    ids = lk.Input(shape=(9,), dtype="int32", name="ids")
    seq = lk.LSTM(5, return_sequences=True, dtype="float64")(lk.Embedding(30, 6, mask_zero=True, dtype="float64")(ids))
    steps = lk.Dense(30, activation="softmax", name="steps", dtype="float64")(seq)
    label = lk.Dense(1, activation="sigmoid", name="label", dtype="float64")(lk.GRU(4, dtype="float64")(seq))
    model = lk.Model(ids, [steps, label], seed=2)
    model.compile(optimizer=lk.Adam(learning_rate=0.02),
                  loss={"steps": "sparse_categorical_crossentropy", "label": "binary_crossentropy"},
                  loss_weights={"steps": 0.5, "label": 1.0})
    return model


class Die(lk.Callback):
    """Rank 1 dies in the middle of the first epoch."""

    def on_batch_end(self, batch, logs=None):
        if os.environ.get("RANK") == "1" and batch == 1:
            os._exit(3)


def main():
    out, kind = sys.argv[1], sys.argv[2]
    x, y = data()
    model = sequential() if kind == "sequential" else functional()
    if os.environ.get("RANK", "0") != "1":
        # the same starting weights in the reference and on rank 0; rank 1 keeps its own
        # random ones, so only fit's broadcast of rank 0's weights can make the runs agree
        rng = np.random.default_rng(7)
        model.set_weights({k: rng.normal(0.0, 0.3, v.shape) for k, v in model.get_weights().items()})
    target = y if kind == "sequential" else {"steps": np.roll(x, -1, axis=1), "label": y}
    callbacks = [Die()] if "die" in sys.argv[3:] else []
    # 45 samples, 20% held out: 36 to train in batches of 7, the last of 1 -- a rank gets none
    history = model.fit(x, target, batch_size=7, epochs=3, validation_split=0.2, seed=5, verbose=0,
                        callbacks=callbacks)
    if os.environ.get("RANK", "0") == "0":
        np.savez(out, **{k.replace("/", "__"): v for k, v in model.get_weights().items()})
        with open(out + ".json", "w") as f:
            json.dump(history.history, f)


if __name__ == "__main__":
    main()
