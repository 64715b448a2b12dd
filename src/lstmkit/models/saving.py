"""One-file persistence: a safetensors file whose tensors are the weights,
keyed "<layer name>/<param>", and whose metadata holds the model config (the
layers as serialize_layer writes them) and the compile settings as JSON.

Loading reads the JSON and raw arrays only -- it never runs code from the file.
"""
import json

import numpy as np
from safetensors.numpy import load_file, save

from .. import __version__, io, losses, optimizers
from ..layers.base import layer_from_config, serialize_layer

FORMAT = "lstmkit"
FORMAT_VERSION = "1"
OPTIMIZER_PREFIX = "__optimizer__/"     # optimizer state: "__optimizer__/<slot>/<weight name>"


def save_model(model, path):
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built, so it has no weights to save yet")
    tensors = {k: np.ascontiguousarray(v) for k, v in model.params.items()}
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "lstmkit_version": __version__,
                "model": json.dumps(serialize_layer(model))}
    compile_config = model.compile_config() if hasattr(model, "compile_config") else None
    if compile_config is not None:
        metadata["compile"] = json.dumps(compile_config)
        # the optimizer's moments, so that training can resume where it stopped
        opt = model.optimizer
        metadata["optimizer_iterations"] = str(opt.iterations)
        for key, slots in opt.state.items():
            for slot, arr in slots.items():
                tensors[f"{OPTIMIZER_PREFIX}{slot}/{key}"] = np.ascontiguousarray(arr)
    io.atomic_write_bytes(path, save(tensors, metadata=metadata))


def load_model(path, compile=True):
    """Rebuild a model saved by save_model: same layers, same weights, compiled as it was."""
    meta = io.read_safetensors_metadata(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is a safetensors file but not a lstmkit model: its metadata "
                         f"has keys {sorted(meta)} and no format='lstmkit' (weights alone? load them "
                         f"with safetensors.numpy.load_file)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} has lstmkit format version {meta.get('format_version')!r}; "
                         f"this lstmkit reads version {FORMAT_VERSION}")
    model = layer_from_config(json.loads(meta["model"]))
    weights = load_file(str(path))
    opt_state = {k[len(OPTIMIZER_PREFIX):]: v for k, v in weights.items() if k.startswith(OPTIMIZER_PREFIX)}
    weights = {k: v for k, v in weights.items() if not k.startswith(OPTIMIZER_PREFIX)}
    if not model.built:
        raise ValueError(f"{str(path)!r}: the model config does not give the input shape, so the "
                         f"weights cannot be placed")
    expected = {k: v.shape for k, v in model.params.items()}
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{str(path)!r}: config and weights do not match; weights missing from the "
                         f"file: {missing}; weights in the file the config has no place for: {unexpected}")
    wrong = {k: (weights[k].shape, s) for k, s in expected.items() if weights[k].shape != s}
    if wrong:
        raise ValueError(f"{str(path)!r}: weight shapes do not match the config: "
                         + ", ".join(f"{k} is {a} in the file but {b} in the model" for k, (a, b) in wrong.items()))
    model.set_weights(weights)
    if compile and "compile" in meta and hasattr(model, "compile"):
        cc = json.loads(meta["compile"])
        model.compile(optimizer=optimizers.deserialize(cc["optimizer"]), loss=losses.deserialize(cc["loss"]),
                      metrics=cc["metrics"])
        opt = model.optimizer
        opt.iterations = int(meta.get("optimizer_iterations", 0))
        for name, arr in opt_state.items():
            slot, key = name.split("/", 1)
            if key not in expected or arr.shape != expected[key]:
                raise ValueError(f"{str(path)!r}: optimizer state {name!r} has no matching weight of "
                                 f"shape {arr.shape}")
            opt.state.setdefault(key, {})[slot] = np.array(arr)          # a writable copy
    return model
