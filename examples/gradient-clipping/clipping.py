"""Exploding gradients and gradient clipping, in a few seconds.

A simple RNN (ReLU, 32 units) whose recurrent weights start 1.5 times an orthogonal matrix
learns to output the sum of the last 5 of 40 random inputs, with plain SGD (learning rate 0.03).
Without clipping the backward pass through 40 steps multiplies the gradient by about 1.5 per step
and one update throws the weights so far that the next loss is NaN: fit stops and names the epoch
and the batch. With clipnorm=5 (the gradient rescaled to norm 5 when longer) the same run learns.
"""
import numpy as np

import lstmkit as lk
from lstmkit.models.checks import NonFiniteError

T, H, SCALE = 40, 32, 1.5


def data(n=512, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, T, 1)).astype("float32")
    return x, x[:, -5:, 0].sum(1, keepdims=True)                     # (n, T, 1), (n, 1)


def train(clipnorm, epochs=10, on_nonfinite="stop", seed=0):
    """-> (per-epoch losses, the NonFiniteError that stopped training or None, skipped batches)."""
    x, y = data()
    layer = lk.SimpleRNN(H, activation="relu", input_shape=(T, 1))
    model = lk.Sequential([layer, lk.Dense(1)], seed=seed)
    layer.params["W_h"][...] *= SCALE                                   # large recurrent weights
    model.compile(optimizer=lk.SGD(0.03, clipnorm=clipnorm), loss="mse")
    try:
        h = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, on_nonfinite=on_nonfinite)
    except NonFiniteError as e:
        return [], e, 0
    return h.history["loss"], None, sum(h.history.get("skipped_batches", []))


def baseline():
    """MSE of always answering 0 (the mean): the variance of a sum of 5 standard normals, about 5."""
    _, y = data()
    return float((y ** 2).mean())
