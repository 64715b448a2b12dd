"""Gate activations over time: run a recurrent layer of a model on one input
with the reference engine and read its cache.

cache["gates"] (B, T, G*H) holds the activated gates in the cell's order
(LSTM: input, forget, candidate, output; GRU: reset, update, candidate). A
simple RNN has no gates; its hidden state is returned under "hidden".

layer_trace() returns everything a layer computes at each step -- the gates,
the LSTM's cell state c_t and the hidden state h_t -- for the web page's
heat maps (lstmkit.serve) and any other look inside.
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


def recurrent_layers(model):
    """[(index in model.layers, layer, label)] of every recurrent layer of a
    Sequential; a Bidirectional gives its two halves (the forward one first)."""
    out = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, RNNLayer):
            out.append((i, layer, layer.name))
        elif isinstance(layer, Bidirectional):
            for half in (layer.forward_layer, layer.backward_layer):
                if isinstance(half, RNNLayer):
                    out.append((i, half, f"{layer.name} ({'backward' if half.go_backwards else 'forward'})"))
    return out


def layer_trace(layer, x):
    """One recurrent layer over one input x (1, T, D), reference engine, float64.

    Returns {name: (T, H)} in reading order of the input (a go_backwards layer
    reads from the end, but row t is still input position t):
      LSTM        input_gate, forget_gate, candidate, output_gate, cell_state, hidden
      GRU         reset_gate, update_gate, candidate, hidden
      simple RNN  hidden
    cell_state is c_t = f_t * c_{t-1} + i_t * g_t, hidden is h_t.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)                            # (1, T, D)
    engine = get_engine(layer.cell, "reference")
    p = {k: np.asarray(v, np.float64) for k, v in layer.params.items()}
    hs, _, cache = engine.forward(x, p["W_x"], p["W_h"], p.get("b_x"), p.get("b_h"),
                                  reverse=layer.go_backwards, **layer.cell_options())
    out = {}
    if "gates" in cache:
        H = layer.units
        gates = cache["gates"][0]                                              # (T, G*H)
        for k, name in enumerate(engine.GATE_NAMES):
            out[name] = gates[:, k * H:(k + 1) * H]
        if layer.cell == "lstm":
            # c_t from the cached c_{t-1} (row t holds the state step t read)
            out["cell_state"] = out["forget_gate"] * cache["c_prevs"][0] + out["input_gate"] * out["candidate"]
    out["hidden"] = hs[0]                                                      # (T, H) h_t
    return out
