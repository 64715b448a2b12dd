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
import warnings
import zipfile

import numpy as np

from ..layers import (LSTM, GRU, SimpleRNN, Bidirectional, RNNStack, Embedding, Dense, Dropout, Flatten)
from ..layers.attention import AdditiveAttention, Attention
from ..layers.merge import Add, Average, Concatenate, Dot, Multiply, Subtract
from ..layers.recurrent import RNNLayer
from ..layers.repeat_vector import RepeatVector
from ..layers.symbolic import InputLayer, flatten, map_structure
from ..layers.time_distributed import TimeDistributed

KERAS_VERSION = "3.15.1"
_RECURRENT = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}
_ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "softmax")
_MERGES = {"Add": Add, "Subtract": Subtract, "Average": Average, "Multiply": Multiply}


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
    if isinstance(layer, TimeDistributed):
        return keras_weights(layer.layer)
    if isinstance(layer, AdditiveAttention):
        return [p["scale"]] if layer.use_scale else []
    if isinstance(layer, Attention):
        # Keras keeps the scalars with shape (); lstmkit with (1,)
        return [p[k].reshape(()) for k in ("scale", "concat_score_weight") if k in p]
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
    if isinstance(layer, TimeDistributed):
        return {f"{layer.layer.name}/{k}": v for k, v in lstmkit_weights(layer.layer, arrays, where).items()}
    expected = keras_weights(layer)
    if [a.shape for a in arrays] != [e.shape for e in expected]:
        raise KerasConversionError(f"{where}: {type(layer).__name__} {layer.name!r} needs arrays of shapes "
                                   f"{[e.shape for e in expected]}; the Keras layer has "
                                   f"{[a.shape for a in arrays]}")
    if isinstance(layer, Embedding):
        return {"embeddings": arrays[0]}
    if isinstance(layer, Dense):
        return dict(zip(["W", "b"], arrays))
    if isinstance(layer, Attention):
        names = [k for k in ("scale", "concat_score_weight") if k in layer.params]
        return {k: a.reshape(layer.params[k].shape) for k, a in zip(names, arrays)}
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


def layer_from_keras(spec, where="Keras model", graph=False):
    """An lstmkit layer (unbuilt) from a Keras layer's {"class_name", "config"}
    (graph=True: for a functional model, which allows return_state and unmerged
    Bidirectional; the layer keeps its Keras name)."""
    cls, cfg = spec["class_name"], spec["config"]
    name = cfg.get("name", cls)
    where = f"{where}, layer {name!r} ({cls})"
    common = {"dtype": _dtype(cfg)}
    if graph:
        common["name"] = name
    if cls == "Embedding":
        return Embedding(cfg["input_dim"], cfg["output_dim"], mask_zero=cfg.get("mask_zero", False), **common)
    if cls == "Dense":
        return Dense(cfg["units"], activation=_activation(cfg, "activation", where, _ACTIVATIONS),
                     use_bias=cfg.get("use_bias", True), **common)
    if cls == "Dropout":
        return Dropout(cfg["rate"], **common)
    if cls == "Flatten":
        return Flatten(**common)
    if cls in _MERGES:
        return _MERGES[cls](**common)
    if cls == "Concatenate":
        return Concatenate(axis=cfg.get("axis", -1), **common)
    if cls == "Dot":
        return Dot(axes=cfg["axes"], normalize=cfg.get("normalize", False), **common)
    if cls == "RepeatVector":
        return RepeatVector(cfg["n"], **common)
    if cls == "TimeDistributed":
        return TimeDistributed(layer_from_keras(cfg["layer"], where, graph), **common)
    if cls == "Attention":
        return Attention(use_scale=cfg.get("use_scale", False), score_mode=cfg.get("score_mode", "dot"),
                         dropout=cfg.get("dropout", 0.0), **common)
    if cls == "AdditiveAttention":
        return AdditiveAttention(use_scale=cfg.get("use_scale", True), dropout=cfg.get("dropout", 0.0), **common)
    if cls == "Bidirectional":
        if graph and cfg.get("merge_mode") is None:
            fwd = layer_from_keras(cfg["layer"], where, graph)
            bwd = layer_from_keras(cfg["backward_layer"], where, graph) if cfg.get("backward_layer") else None
            return Bidirectional(fwd, merge_mode=None, backward_layer=bwd, **common)
        if cfg.get("merge_mode") not in ("concat", "sum", "mul", "ave"):
            raise KerasConversionError(f"{where}: merge_mode={cfg.get('merge_mode')!r}; a Sequential layer "
                                       f"needs one of concat, sum, mul, ave")
        fwd = layer_from_keras(cfg["layer"], where, graph)
        bwd = layer_from_keras(cfg["backward_layer"], where, graph) if cfg.get("backward_layer") else None
        return Bidirectional(fwd, merge_mode=cfg["merge_mode"], backward_layer=bwd, **common)
    if cls in _RECURRENT:
        if cfg.get("return_state") and not graph:
            raise KerasConversionError(f"{where}: return_state=True has no place in a Sequential model")
        options = dict(return_state=bool(cfg.get("return_state")), return_sequences=cfg.get("return_sequences", False), go_backwards=cfg.get("go_backwards", False),
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
                               f"SimpleRNN, LSTM, GRU, Bidirectional, Dense, Dropout, Flatten; in functional "
                               f"models also Attention, AdditiveAttention, Concatenate, Add, Subtract, Average, "
                               f"Multiply, Dot, RepeatVector, TimeDistributed)")


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


_MASK_OPS = ("NotEqual",)          # what Keras records for a mask handed on explicitly


def graph_from_keras_config(config, where="Keras model"):
    """An lstmkit Model (functional; weights not yet set) from a Keras Functional config:
    the layers called again in the order of the config, on the tensors their
    inbound nodes name. Masks travel with the tensors in lstmkit, so the mask
    arguments Keras records (and the NotEqual ops that make them) are left out."""
    from ..layers.symbolic import Input
    from ..models.functional import Model
    tensors = {}

    def resolve(arg):
        if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
            key = tuple(arg["config"]["keras_history"])
            if key not in tensors:
                raise KerasConversionError(f"{where}: a layer reads tensor {list(key)}, which no layer made "
                                           f"before it")
            return tensors[key]
        if isinstance(arg, (list, tuple)):                       # lists in files, tuples from get_config()
            return [resolve(a) for a in arg]
        return arg

    order = []
    masked = set()                     # ids of the tensors that carry a mask
    for spec in config["layers"]:
        cls, name = spec["class_name"], spec["config"].get("name", spec.get("name"))
        if cls == "InputLayer":
            c = spec["config"]
            shape = c.get("batch_shape") or ([None] + list(c.get("shape", [])))
            tensors[(name, 0, 0)] = Input(shape=tuple(shape[1:]), dtype=c.get("dtype", "float32"), name=name)
            order.append((name, None))
            continue
        if cls in _MASK_OPS:
            for i, _ in enumerate(spec.get("inbound_nodes", [])):
                tensors[(name, i, 0)] = None
            continue
        layer = layer_from_keras(spec, where, graph=True)
        order.append((name, layer))
        for i, node in enumerate(spec.get("inbound_nodes", [])):
            args = resolve(node.get("args", []))
            given = node.get("kwargs", {})
            first = args[0] if args else None
            in_masked = any(id(t) in masked for t in flatten(first) if t is not None)
            if "initial_state" in given and "mask" not in given and in_masked:
                warnings.warn(f"{where}: Keras ran {cls} {name!r} (called with initial_state) without the mask of "
                              f"its input, lstmkit runs it with the mask: on padded input the two differ "
                              f"(to_keras hands the mask over explicitly)", stacklevel=3)
            kwargs = {k: resolve(v) for k, v in given.items() if k not in ("mask", "training")}
            out = layer(args[0], **kwargs)
            outs = out if isinstance(out, list) else [out]
            for j, o in enumerate(outs):
                tensors[(name, i, j)] = o
            # which outputs carry a mask (for the warning above): Keras's rules, roughly
            if (isinstance(layer, Embedding) and layer.mask_zero) or (
                    in_masked and getattr(layer, "return_sequences", True)
                    and not isinstance(layer, (Dot, RepeatVector, TimeDistributed, Flatten))):
                masked.add(id(outs[0]))

    def ends(refs):
        if refs and not isinstance(refs[0], (list, tuple)):
            return tensors[tuple(refs)]                          # one tensor given without a list
        return [tensors[tuple(r)] for r in refs]

    model = Model(ends(config["input_layers"]), ends(config["output_layers"]), name=config.get("name"))
    model._keras_order = order
    return model


def model_from_keras_config(config, where="Keras model"):
    """An lstmkit model (built, weights not yet set) from a Keras config ({"class_name":
    "Sequential" or "Functional", "config": {...}}, or a Sequential's inner "config"):
    a Sequential, or a functional lk.Model."""
    from ..models.sequential import Sequential
    if "class_name" in config:
        if config["class_name"] in ("Functional", "Model"):
            return graph_from_keras_config(config["config"], where)
        if config["class_name"] != "Sequential":
            raise KerasConversionError(f"{where}: a Keras {config['class_name']} model; lstmkit reads "
                                       f"Sequential and functional models")
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
    for child in ("cell", "forward_layer", "backward_layer", "layer"):
        if child in group:
            arrays += _h5_arrays(group[child])
    return arrays


def _flat_layers(model):
    """The layers as Keras lays them out: an RNNStack's layers each on their own;
    a functional model's in the order of the Keras config it came from, if it did."""
    order = getattr(model, "_keras_order", None)
    if order is not None:
        by_name = {l.name: l for l in model.layers}
        return [by_name[name] if layer is None else layer for name, layer in order]
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
        kind = "Sequential" if isinstance(source, keras.Sequential) else "Functional"
        model = model_from_keras_config({"class_name": kind, "config": source.get_config()})
    if hasattr(model, "_nodes"):                                  # functional: the layers by name
        theirs_by_name = {l.name: l for l in source.layers}
        pairs = [(l, theirs_by_name.get(l.name)) for l in model.layers if l.params]
        missing = [a.name for a, b in pairs if b is None]
        if missing:
            raise KerasConversionError(f"the Keras model has no layers named {missing}")
    else:
        ours = _flat_layers(model)
        theirs = [l for l in source.layers if type(l).__name__ != "InputLayer"]
        if len(ours) != len(theirs):
            raise KerasConversionError(f"the Keras model has {len(theirs)} layers, the lstmkit model {len(ours)}")
        pairs = list(zip(ours, theirs))
    for a, b in pairs:
        if a.params:
            a.set_weights({k: np.asarray(v, a.dtype)
                           for k, v in lstmkit_weights(a, b.get_weights(), f"Keras layer {b.name!r}").items()})
    return model


def _keras_layer(keras, layer, graph=False):
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
    if isinstance(layer, (Add, Subtract, Average, Multiply)):
        return getattr(L, type(layer).__name__)(dtype=dt, name=layer.name)
    if isinstance(layer, Concatenate):
        return L.Concatenate(axis=layer.axis, dtype=dt, name=layer.name)
    if isinstance(layer, Dot):
        return L.Dot(axes=layer.axes, normalize=layer.normalize, dtype=dt, name=layer.name)
    if isinstance(layer, RepeatVector):
        return L.RepeatVector(layer.n, dtype=dt, name=layer.name)
    if isinstance(layer, TimeDistributed):
        return L.TimeDistributed(_keras_layer(keras, layer.layer, graph), name=layer.name)
    if isinstance(layer, AdditiveAttention):
        return L.AdditiveAttention(use_scale=layer.use_scale, dropout=layer.dropout, dtype=dt, name=layer.name)
    if isinstance(layer, Attention):
        if layer.score_mode == "general":
            raise KerasConversionError(f"Attention {layer.name!r} has score_mode='general' (q W k^T), which "
                                       f"Keras's Attention does not have (it has 'dot' and 'concat')")
        return L.Attention(use_scale=layer.use_scale, score_mode=layer.score_mode, dropout=layer.dropout,
                           dtype=dt, name=layer.name)
    if isinstance(layer, Bidirectional):
        if layer.merge_mode is None and not graph:
            raise KerasConversionError(f"Bidirectional {layer.name!r} has merge_mode=None (two outputs)")
        return L.Bidirectional(_keras_layer(keras, layer.forward_layer, graph), merge_mode=layer.merge_mode,
                               backward_layer=_keras_layer(keras, layer.backward_layer, graph), name=layer.name)
    if isinstance(layer, RNNLayer):
        if layer.stateful:
            raise KerasConversionError(f"layer {layer.name!r} is stateful; Keras needs a fixed batch size for "
                                       f"that: convert a stateless copy")
        if layer.return_state and not graph:
            raise KerasConversionError(f"layer {layer.name!r}: return_state=True has no place in a Sequential")
        options = dict(return_sequences=layer.return_sequences, return_state=layer.return_state,
                       go_backwards=layer.go_backwards,
                       use_bias=layer.use_bias, dropout=layer.dropout, recurrent_dropout=layer.recurrent_dropout,
                       zero_output_for_mask=layer.zero_output_for_mask, dtype=dt, name=layer.name)
        if isinstance(layer, SimpleRNN):
            return L.SimpleRNN(layer.units, activation=layer.activation, **options)
        if isinstance(layer, LSTM):
            return L.LSTM(layer.units, unit_forget_bias=layer.unit_forget_bias, **options)
        return L.GRU(layer.units, reset_after=layer.reset_after, **options)
    raise KerasConversionError(f"layer {layer.name!r}: {type(layer).__name__} has no Keras conversion (covered: "
                               f"Embedding, SimpleRNN, LSTM, GRU, Bidirectional, RNNStack, Dense, Dropout, Flatten)")


def graph_to_keras(model):
    """The Keras functional model of an lk.Model: the same calls on Keras layers."""
    keras = _keras()
    layers = {l.name: _keras_layer(keras, l, graph=True) for l in model.layers if not isinstance(l, InputLayer)}
    tensors = {}
    for t, name in zip(model.inputs, model.input_names):
        tensors[id(t)] = keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype.name, name=name)
    for node in model._nodes:
        args = map_structure(lambda t: tensors[id(t)], node.args)
        kwargs = {k: map_structure(lambda t: tensors[id(t)], v) for k, v in node.tensor_kwargs.items()}
        kwargs.update({k: v for k, v in node.const_kwargs.items() if k in ("return_attention_scores",
                                                                            "use_causal_mask")})
        if "initial_state" in kwargs and not isinstance(args, list):
            # Keras drops the input's mask from a recurrent call given initial_state; lstmkit keeps
            # it: hand it over by name, so that both skip the same steps
            mask = getattr(args, "_keras_mask", None)
            if mask is not None:
                kwargs["mask"] = mask
        out = layers[node.layer.name](args, **kwargs)
        for t, o in zip(node.outputs, out if isinstance(out, (list, tuple)) else [out]):
            tensors[id(t)] = o
    outs = [tensors[id(t)] for t in model.outputs]
    km = keras.Model([tensors[id(t)] for t in model.inputs], outs if model.multi_output else outs[0],
                     name=model.name)
    for layer in model.layers:
        if layer.params:
            km.get_layer(layer.name).set_weights(keras_weights(layer))
    return km


def to_keras(model):
    """The Keras model of an lstmkit model, with its weights: keras.Sequential for a
    Sequential, a functional keras.Model for an lk.Model."""
    keras = _keras()
    if hasattr(model, "_nodes"):
        return graph_to_keras(model)
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
