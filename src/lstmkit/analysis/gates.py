"""Gate activations over time: run the first recurrent layer of a model on one
input with the reference engine and read its cache.

cache["gates"] (B, T, G*H) holds the activated gates in the cell's order
(LSTM: input, forget, candidate, output; GRU: reset, update, candidate). A
simple RNN has no gates; its hidden state is returned under "hidden".
"""
import numpy as np

from ..engines import get_engine
from ..layers import Bidirectional, RNNLayer


def first_recurrent(model):
    """(index, layer) of the first recurrent layer (forward half of a Bidirectional)."""
    for i, layer in enumerate(model.layers):
        if isinstance(layer, RNNLayer):
            return i, layer
        if isinstance(layer, Bidirectional):
            return i, layer.forward_layer
    raise ValueError("the model has no recurrent layer")


def gate_activations(model, x):
    """x: one model input (1, T) ids or (1, T, D) features.
    Returns ({gate name: (T, H)}, cell name); time in reading order of the input."""
    i, layer = first_recurrent(model)
    for before in model.layers[:i]:
        x = before.forward(x, training=False)                                  # (1, T, D) at the end
    x = np.ascontiguousarray(x, dtype=layer.dtype)
    engine = get_engine(layer.cell, "reference")
    p = layer.params
    hs, _, cache = engine.forward(x, p["W_x"], p["W_h"], p.get("b_x"), p.get("b_h"),
                                  reverse=layer.go_backwards, **layer.cell_options())
    if "gates" not in cache:
        return {"hidden": hs[0]}, layer.cell
    H = layer.units
    gates = cache["gates"][0]                                                  # (T, G*H)
    out = {name: gates[:, k * H:(k + 1) * H] for k, name in enumerate(engine.GATE_NAMES)}
    if layer.cell == "lstm":
        out["cell_state_tanh"] = cache["tanh_cs"][0]                           # (T, H) tanh(c_t)
    return out, layer.cell
