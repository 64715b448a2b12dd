"""Keras 3 models both ways: ``to_keras(model)`` builds the Keras model of an
lstmkit model with its weights; ``from_keras(source)`` reads a Keras model --
a live ``keras.Model``, a ``.keras`` file, or a ``.weights.h5`` file into a
given lstmkit model -- into lstmkit. Files are read with h5py and zipfile
alone: Keras itself is needed only by to_keras and for live models.

Layers: Embedding, SimpleRNN, LSTM, GRU (both reset_after forms),
Bidirectional, Dense (linear, sigmoid, tanh, relu, softmax), Dropout, Flatten.
Layouts, Keras -> lstmkit:

    LSTM       kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,), gates i, f, c, o
               -> W_x, W_h, b_x as they are (lstmkit's i, f, g, o is the same order)
    GRU        gates z, r, h -> lstmkit's r, z, n (the first two blocks swap);
               reset_after=True: bias (2, 3H) = [input bias, recurrent bias] -> b_x, b_h;
               reset_after=False: bias (3H,) -> b_x
    SimpleRNN  kernel, recurrent_kernel, bias -> W_x, W_h, b_x
    Dense      kernel (D, U), bias -> W, b;     Embedding  embeddings -> embeddings

An lstmkit LSTM or SimpleRNN with two biases goes to Keras as their sum (the
two are added anyway); a GRU(reset_after=False) too. A GRU(reset_after=True)
keeps both rows. Masks: both follow Keras's rules (zero_output_for_mask,
Bidirectional zeroing its masked outputs), so padded sequences give the same
outputs.

Weights files (``.weights.h5``, and the one inside a ``.keras`` zip): Keras 3
stores each layer under ``layers/<class name in snake_case>[_<n>]``, numbered
in the model's layer order per class (``lstm``, ``lstm_1``, ...), its arrays
in ``vars/0, 1, ...`` -- under ``cell/vars`` for recurrent layers and
``forward_layer/...``, ``backward_layer/...`` for Bidirectional. Loading
follows that order, as Keras's own load_weights does, and checks every shape.

Keras runs here on its PyTorch backend: importing this module's Keras paths
sets KERAS_BACKEND=torch unless the environment already chose a backend.
"""
import io
import json
import os
import re
import zipfile

import numpy as np

from ..layers import (LSTM, GRU, SimpleRNN, Bidirectional, RNNStack, Embedding, Dense, Dropout, Flatten)
from ..layers.recurrent import RNNLayer

KERAS_VERSION = "3.15.1"
_RECURRENT = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}
_ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "softmax")


class KerasConversionError(ValueError):
    """A Keras model or file holds something lstmkit cannot represent (or the reverse)."""


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        raise ImportError("to_keras and live Keras models need Keras 3: pip install 'lstmkit[keras]'") from None
    return keras


def _snake(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def swap_gru_gates(a, H):
    """Last axis in blocks of H: Keras's z, r, h <-> lstmkit's r, z, n (its own inverse)."""
    return np.concatenate([a[..., H:2 * H], a[..., :H], a[..., 2 * H:]], axis=-1)


# ---- weights: lstmkit layer <-> Keras's list of arrays --------------------------------------

def keras_weights(layer):
    """The arrays Keras's get_weights() gives for the counterpart of an lstmkit layer."""
    p = layer.params
    if isinstance(layer, Embedding):
        return [p["embeddings"]]
    if isinstance(layer, Dense):
        return [p["W"]] + ([p["b"]] if layer.use_bias else [])
    if isinstance(layer, Bidirectional):
        return keras_weights(layer.forward_layer) + keras_weights(layer.backward_layer)
    if isinstance(layer, RNNLayer):
        H = layer.units
        fix = (lambda a: swap_gru_gates(a, H)) if isinstance(layer, GRU) else (lambda a: a)
        out = [fix(p["W_x"]), fix(p["W_h"])]
        if layer.use_bias:
            b_h = p.get("b_h", np.zeros_like(p["b_x"]))
            if isinstance(layer, GRU) and layer.reset_after:
                out.append(np.stack([fix(p["b_x"]), fix(b_h)]))                    # (2, 3H)
            else:
                out.append(fix(p["b_x"] + b_h))                                    # one bias: the sum
        return out
    return []


def lstmkit_weights(layer, arrays, where):
    """Keras's arrays for layer -> {param: array} (Bidirectional: its params keys)."""
    arrays = [np.asarray(a) for a in arrays]
    if isinstance(layer, Bidirectional):
        n = len(keras_weights(layer.forward_layer))
        if len(arrays) != 2 * n:
            raise KerasConversionError(f"{where}: Bidirectional {layer.name!r} needs {2 * n} arrays; got "
                                       f"{len(arrays)}")
        fw = lstmkit_weights(layer.forward_layer, arrays[:n], where)
        bw = lstmkit_weights(layer.backward_layer, arrays[n:], where)
        return {**{f"forward/{k}": v for k, v in fw.items()}, **{f"backward/{k}": v for k, v in bw.items()}}
    expected = keras_weights(layer)
    if [a.shape for a in arrays] != [e.shape for e in expected]:
        raise KerasConversionError(f"{where}: {type(layer).__name__} {layer.name!r} needs arrays of shapes "
                                   f"{[e.shape for e in expected]}; the Keras layer has "
                                   f"{[a.shape for a in arrays]}")
    if isinstance(layer, Embedding):
        return {"embeddings": arrays[0]}
    if isinstance(layer, Dense):
        return dict(zip(["W", "b"], arrays))
    if isinstance(layer, RNNLayer):
        H = layer.units
        fix = (lambda a: swap_gru_gates(a, H)) if isinstance(layer, GRU) else (lambda a: a)
        w = {"W_x": fix(arrays[0]), "W_h": fix(arrays[1])}
        if layer.use_bias:
            bias = arrays[2]
            if isinstance(layer, GRU) and layer.reset_after:
                w["b_x"] = fix(bias[0])
                if "b_h" in layer.params:
                    w["b_h"] = fix(bias[1])
                elif np.any(bias[1][2 * H:]):
                    raise KerasConversionError(
                        f"{where}: GRU {layer.name!r} has one bias, but the Keras layer's recurrent bias of "
                        f"the candidate sits inside r * (...) and is not zero; build it with two_biases=True")
                else:
                    w["b_x"] = w["b_x"] + fix(bias[1])
            else:
                w["b_x"] = fix(bias)
                if "b_h" in layer.params:
                    w["b_h"] = np.zeros_like(w["b_x"])
        return w
    return {}


# ---- Keras layer configs -> lstmkit layers ----------------------------------------------------

def _dtype(cfg):
    d = cfg.get("dtype")
    if isinstance(d, dict):
        d = d.get("config", {}).get("name")
    return d if d in ("float32", "float64") else "float32"


def _activation(cfg, key, where, allowed):
    a = cfg.get(key)
    if isinstance(a, dict):
        a = a.get("config", {}).get("name", a.get("class_name"))
    a = a or "linear"
    if a not in allowed:
        raise KerasConversionError(f"{where}: {key}={a!r} has no lstmkit equivalent here (lstmkit: {allowed})")
    return a


def layer_from_keras(spec, where="Keras model"):
    """An lstmkit layer (unbuilt) from a Keras layer's {"class_name", "config"}."""
    cls, cfg = spec["class_name"], spec["config"]
    name = cfg.get("name", cls)
    where = f"{where}, layer {name!r} ({cls})"
    common = {"dtype": _dtype(cfg)}
    if cls == "Embedding":
        return Embedding(cfg["input_dim"], cfg["output_dim"], mask_zero=cfg.get("mask_zero", False), **common)
    if cls == "Dense":
        return Dense(cfg["units"], activation=_activation(cfg, "activation", where, _ACTIVATIONS),
                     use_bias=cfg.get("use_bias", True), **common)
    if cls == "Dropout":
        return Dropout(cfg["rate"], **common)
    if cls == "Flatten":
        return Flatten(**common)
    if cls == "Bidirectional":
        if cfg.get("merge_mode") not in ("concat", "sum", "mul", "ave"):
            raise KerasConversionError(f"{where}: merge_mode={cfg.get('merge_mode')!r}; a Sequential layer "
                                       f"needs one of concat, sum, mul, ave")
        fwd = layer_from_keras(cfg["layer"], where)
        bwd = layer_from_keras(cfg["backward_layer"], where) if cfg.get("backward_layer") else None
        return Bidirectional(fwd, merge_mode=cfg["merge_mode"], backward_layer=bwd, **common)
    if cls in _RECURRENT:
        if cfg.get("return_state"):
            raise KerasConversionError(f"{where}: return_state=True has no place in a Sequential model")
        options = dict(return_sequences=cfg.get("return_sequences", False), go_backwards=cfg.get("go_backwards", False),
                       use_bias=cfg.get("use_bias", True), dropout=cfg.get("dropout", 0.0),
                       recurrent_dropout=cfg.get("recurrent_dropout", 0.0), stateful=cfg.get("stateful", False),
                       zero_output_for_mask=cfg.get("zero_output_for_mask", False), **common)
        if cls == "SimpleRNN":
            return SimpleRNN(cfg["units"], activation=_activation(cfg, "activation", where, ("tanh", "relu")),
                             **options)
        _activation(cfg, "activation", where, ("tanh",))
        _activation(cfg, "recurrent_activation", where, ("sigmoid",))
        if cls == "LSTM":
            return LSTM(cfg["units"], unit_forget_bias=cfg.get("unit_forget_bias", True), **options)
        reset_after = cfg.get("reset_after", True)
        return GRU(cfg["units"], reset_after=reset_after, two_biases=reset_after, **options)
    raise KerasConversionError(f"{where}: Keras's {cls} has no lstmkit counterpart here (covered: Embedding, "
                               f"SimpleRNN, LSTM, GRU, Bidirectional, Dense, Dropout, Flatten)")


def _input_shape(cfg_layers, where):
    """(shape without the batch axis, is_int) from a Sequential config's InputLayer, or the
    first layer's build_config."""
    first = cfg_layers[0]
    if first["class_name"] == "InputLayer":
        c = first["config"]
        shape = c.get("batch_shape") or ([None] + list(c.get("shape", [])))
        return tuple(shape[1:])
    build = first.get("build_config", {}).get("input_shape")
    if build is None:
        raise KerasConversionError(f"{where}: the config does not give the input shape")
    return tuple(build[1:])


def model_from_keras_config(config, where="Keras model"):
    """An lstmkit Sequential (built, weights not yet set) from a Keras Sequential config
    ({"class_name": "Sequential", "config": {...}} or its inner "config")."""
    from ..models.sequential import Sequential
    if "class_name" in config:
        if config["class_name"] != "Sequential":
            raise KerasConversionError(f"{where}: a Keras {config['class_name']} model; lstmkit reads "
                                       f"Sequential models here")
        config = config["config"]
    specs = config["layers"]
    shape = _input_shape(specs, where)
    layers = [layer_from_keras(s, where) for s in specs if s["class_name"] != "InputLayer"]
    _warn_reversed_masks(layers, where)
    model = Sequential(layers)
    model.build(shape)
    return model


def _warn_reversed_masks(layers, where):
    """Keras passes on the mask of a go_backwards layer's output as it came in, while the
    outputs are reversed; lstmkit reverses the mask with them. Say so where it matters."""
    import warnings
    masked = False
    for i, layer in enumerate(layers):
        if isinstance(layer, Embedding):
            masked = layer.mask_zero
        elif isinstance(layer, RNNLayer) and masked:
            if layer.go_backwards and layer.return_sequences and i < len(layers) - 1:
                warnings.warn(f"{where}: {type(layer).__name__} {layer.name!r} reads backwards and returns its "
                              f"sequence reversed; Keras hands the next layers the mask unreversed, lstmkit "
                              f"reversed: on padded input the layers after it differ", stacklevel=3)
            masked = masked and layer.return_sequences
        elif isinstance(layer, Bidirectional):
            masked = masked and layer.return_sequences
        elif isinstance(layer, Flatten):
            masked = False


# ---- weights files -------------------------------------------------------------------------------

def _h5_arrays(group):
    """A layer's arrays in a Keras 3 weights file: its vars/0, 1, ..., then those of
    its cell, forward_layer, backward_layer (in Keras's order)."""
    arrays = []
    if "vars" in group:
        v = group["vars"]
        arrays += [np.asarray(v[k]) for k in sorted(v.keys(), key=int)]
    for child in ("cell", "forward_layer", "backward_layer"):
        if child in group:
            arrays += _h5_arrays(group[child])
    return arrays


def _flat_layers(model):
    """The layers as Keras lays them out: an RNNStack's layers each on their own."""
    out = []
    for layer in model.layers:
        out += layer.layers if isinstance(layer, RNNStack) else [layer]
    return out


def _h5_keys(layers):
    seen, keys = {}, []
    for layer in layers:
        base = _snake(type(layer).__name__)
        n = seen.get(base, 0)
        seen[base] = n + 1
        keys.append(base if n == 0 else f"{base}_{n}")
    return keys


def load_weights_h5(model, source, where=None):
    """Set an lstmkit model's weights from a Keras 3 weights file (a path, or an open
    h5py.File / file object), layer by layer in Keras's order. Returns the model."""
    import h5py
    where = where or str(source)
    with h5py.File(source, "r") as f:
        if "layers" not in f:
            raise KerasConversionError(f"{where}: not a Keras 3 weights file (no 'layers' group; Keras 2 "
                                       f"files are not read)")
        group = f["layers"]
        layers = _flat_layers(model)
        keys = _h5_keys(layers)
        for layer, key in zip(layers, keys):
            if not layer.params:
                continue
            if key not in group:
                raise KerasConversionError(f"{where}: no weights for {type(layer).__name__} {layer.name!r} "
                                           f"(looked for layers/{key}; the file has {sorted(group.keys())})")
            layer.set_weights({k: np.asarray(v, layer.dtype)
                               for k, v in lstmkit_weights(layer, _h5_arrays(group[key]), where).items()})
        extra = sorted(k for k in group.keys() if k not in keys and _h5_arrays(group[k]))
        if extra:
            raise KerasConversionError(f"{where}: the file has weights for layers the model lacks: {extra}")
    return model


def read_keras_file(path):
    """An lstmkit model from a .keras file (its config.json and model.weights.h5)."""
    path = os.fspath(path)
    try:
        z = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise KerasConversionError(f"{path}: no such file") from None
    except zipfile.BadZipFile:
        raise KerasConversionError(f"{path}: not a .keras file (a zip with config.json and "
                                   f"model.weights.h5)") from None
    with z:
        names = set(z.namelist())
        if not {"config.json", "model.weights.h5"} <= names:
            raise KerasConversionError(f"{path}: a .keras file holds config.json and model.weights.h5; this "
                                       f"zip has {sorted(names)}")
        config = json.loads(z.read("config.json"))
        model = model_from_keras_config(config, where=path)
        return load_weights_h5(model, io.BytesIO(z.read("model.weights.h5")), where=path)


# ---- the two directions ------------------------------------------------------------------------

def from_keras(source, model=None):
    """An lstmkit model from Keras: a keras.Model (Sequential), a .keras file, or --
    with `model`, an lstmkit model of the same layers -- a .weights.h5 file."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path.endswith(".weights.h5") or path.endswith(".h5"):
            if model is None:
                raise KerasConversionError(f"{path}: a weights file holds no layers; pass the lstmkit model "
                                           f"to load it into (model=...), or read the .keras file")
            if not os.path.exists(path):
                raise KerasConversionError(f"{path}: no such file")
            return load_weights_h5(model, path)
        return read_keras_file(path)
    keras = _keras()
    if not isinstance(source, keras.Model):
        raise TypeError(f"from_keras expects a keras.Model or a path; got {type(source).__name__}")
    if model is None:
        model = model_from_keras_config({"class_name": type(source).__name__, "config": source.get_config()})
    ours = _flat_layers(model)
    theirs = [l for l in source.layers if type(l).__name__ != "InputLayer"]
    if len(ours) != len(theirs):
        raise KerasConversionError(f"the Keras model has {len(theirs)} layers, the lstmkit model {len(ours)}")
    for a, b in zip(ours, theirs):
        if a.params:
            a.set_weights({k: np.asarray(v, a.dtype)
                           for k, v in lstmkit_weights(a, b.get_weights(), f"Keras layer {b.name!r}").items()})
    return model


def _keras_layer(keras, layer):
    L = keras.layers
    dt = layer.dtype.name
    if isinstance(layer, Embedding):
        return L.Embedding(layer.input_dim, layer.output_dim, mask_zero=layer.mask_zero, dtype=dt, name=layer.name)
    if isinstance(layer, Dense):
        return L.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias, dtype=dt,
                       name=layer.name)
    if isinstance(layer, Dropout):
        return L.Dropout(layer.rate, dtype=dt, name=layer.name)
    if isinstance(layer, Flatten):
        return L.Flatten(dtype=dt, name=layer.name)
    if isinstance(layer, Bidirectional):
        if layer.merge_mode is None:
            raise KerasConversionError(f"Bidirectional {layer.name!r} has merge_mode=None (two outputs)")
        return L.Bidirectional(_keras_layer(keras, layer.forward_layer), merge_mode=layer.merge_mode,
                               backward_layer=_keras_layer(keras, layer.backward_layer), name=layer.name)
    if isinstance(layer, RNNLayer):
        if layer.stateful:
            raise KerasConversionError(f"layer {layer.name!r} is stateful; Keras needs a fixed batch size for "
                                       f"that: convert a stateless copy")
        options = dict(return_sequences=layer.return_sequences, go_backwards=layer.go_backwards,
                       use_bias=layer.use_bias, dropout=layer.dropout, recurrent_dropout=layer.recurrent_dropout,
                       zero_output_for_mask=layer.zero_output_for_mask, dtype=dt, name=layer.name)
        if isinstance(layer, SimpleRNN):
            return L.SimpleRNN(layer.units, activation=layer.activation, **options)
        if isinstance(layer, LSTM):
            return L.LSTM(layer.units, unit_forget_bias=layer.unit_forget_bias, **options)
        return L.GRU(layer.units, reset_after=layer.reset_after, **options)
    raise KerasConversionError(f"layer {layer.name!r}: {type(layer).__name__} has no Keras conversion (covered: "
                               f"Embedding, SimpleRNN, LSTM, GRU, Bidirectional, RNNStack, Dense, Dropout, Flatten)")


def to_keras(model):
    """The keras.Sequential of an lstmkit Sequential, with its weights."""
    keras = _keras()
    if not model.built or model.input_shape is None:
        raise KerasConversionError(f"model {model.name!r} is not built, so its input shape is unknown")
    layers = _flat_layers(model)
    _warn_reversed_masks(layers, f"model {model.name!r}")
    ints = isinstance(layers[0], Embedding)
    inp = keras.Input(shape=tuple(model.input_shape), dtype="int32" if ints else layers[0].dtype.name)
    out = keras.Sequential([inp] + [_keras_layer(keras, l) for l in layers], name=model.name)
    for ours, theirs in zip(layers, out.layers):
        if ours.params:
            theirs.set_weights(keras_weights(ours))
    return out
