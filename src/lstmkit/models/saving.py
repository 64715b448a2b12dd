"""One-file persistence: a safetensors file whose tensors are the weights,
keyed "<layer name>/<param>", and whose metadata holds the model config (the
layers as serialize_layer writes them) and the compile settings as JSON.

Loading reads the JSON and raw arrays only -- it never runs code from the file.
It checks the file before it builds anything: the header against the file's
size (truncated, damaged, appended-to), the config's sizes against the number
of weight values the file holds (a 10^12-unit layer is refused before any
allocation), and, after reading, the weights against the SHA-256 recorded at
saving (tampered bytes). Each refusal says what was expected and what was found.
"""
import hashlib
import json
import math

import numpy as np
from safetensors.numpy import load_file, save

from .. import __version__, io, losses, optimizers
from ..layers.base import layer_from_config, serialize_layer

FORMAT = "lstmkit"
FORMAT_VERSION = "1"
OPTIMIZER_PREFIX = "__optimizer__/"     # optimizer state: "__optimizer__/<slot>/<weight name>"
SIZE_KEYS = ("units", "input_dim", "output_dim", "filters", "num_heads", "key_dim", "value_dim")
SHAPE_KEYS = ("input_shape", "batch_input_shape")


def weights_digest(tensors):
    """SHA-256 over the tensors' names, dtypes, shapes and little-endian bytes, in name order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        v = np.ascontiguousarray(tensors[k])
        v = v.astype(v.dtype.newbyteorder("<"), copy=False)
        h.update(f"{k}|{v.dtype.str}|{v.shape}|".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def _sizes(cfg, where="model"):
    """Yield (place, key, value) for each size-like number in a layer config, at any depth."""
    if isinstance(cfg, dict):
        where = cfg["name"] if isinstance(cfg.get("name"), str) else where
        for k, v in cfg.items():
            if k in SIZE_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool):
                yield where, k, v
            elif k in SHAPE_KEYS and isinstance(v, list) and v and isinstance(v[-1], (int, float)):
                yield where, f"{k}[-1]", v[-1]
            else:
                yield from _sizes(v, where)
    elif isinstance(cfg, list):
        for v in cfg:
            yield from _sizes(v, where)


def check_config_sizes(cfg, n_values, path):
    """Refuse a config whose sizes cannot match the weights in the file, before anything is built:
    a layer of U units, a vocabulary of V, a feature size D each own at least that many weight values."""
    for place, key, value in _sizes(cfg):
        if not (isinstance(value, int) and 0 < value <= max(n_values, 1)):
            raise ValueError(f"{str(path)!r}: layer {place!r} asks for {key}={value!r}, but the file holds "
                             f"{n_values:,} weight values in all; expected a positive size of at most "
                             f"that (a damaged or tampered config); refused before building anything")


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
    metadata["weights_sha256"] = weights_digest(tensors)
    io.atomic_write_bytes(path, save(tensors, metadata=metadata))


def load_model(path, compile=True):
    """Rebuild a model saved by save_model (a Sequential or a functional Model):
    same layers, same graph, same weights, compiled as it was."""
    header = io.read_safetensors_header(path)
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is a safetensors file but not a lstmkit model: its metadata "
                         f"has keys {sorted(meta)} and no format='lstmkit' (weights alone? load them "
                         f"with safetensors.numpy.load_file)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} has lstmkit format version {meta.get('format_version')!r}; "
                         f"this lstmkit reads version {FORMAT_VERSION}")
    cfg = _json(meta, "model", path)
    n_values = sum(math.prod(e["shape"]) for k, e in header.items() if k != "__metadata__")
    check_config_sizes(cfg, n_values, path)
    model = _build(lambda: layer_from_config(cfg), path, "model config")
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
    if "weights_sha256" in meta and weights_digest({**weights, **{OPTIMIZER_PREFIX + k: v for k, v in
                                                                   opt_state.items()}}) != meta["weights_sha256"]:
        raise ValueError(f"{str(path)!r}: the weights are not those that were saved: their SHA-256 differs "
                         f"from the one recorded in the file (damaged or tampered bytes)")
    model.set_weights(weights)
    if compile and "compile" in meta and hasattr(model, "compile"):
        cc = _json(meta, "compile", path)
        if hasattr(model, "compile_from_config"):
            _build(lambda: model.compile_from_config(cc), path, "compile settings")
        else:
            _build(lambda: model.compile(optimizer=optimizers.deserialize(cc["optimizer"]),
                                         loss=losses.deserialize(cc["loss"]), metrics=cc["metrics"]),
                   path, "compile settings")
        opt = model.optimizer
        try:
            opt.iterations = int(meta.get("optimizer_iterations", 0))
        except ValueError:
            raise ValueError(f"{str(path)!r}: optimizer_iterations is {meta['optimizer_iterations']!r}; "
                             f"expected an integer") from None
        for name, arr in opt_state.items():
            slot, key = name.split("/", 1)
            if key not in expected or arr.shape != expected[key]:
                raise ValueError(f"{str(path)!r}: optimizer state {name!r} has no matching weight of "
                                 f"shape {arr.shape}")
            opt.state.setdefault(key, {})[slot] = np.array(arr)          # a writable copy
    return model


def _json(meta, key, path):
    try:
        return json.loads(meta[key])
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{str(path)!r}: expected the {key} settings as JSON in the metadata; found text "
                         f"that is not valid JSON ({type(e).__name__})") from None


def _build(make, path, what):
    """Run make() on settings read from a file; a malformed one is a ValueError naming the file."""
    try:
        return make()
    except ValueError as e:
        raise ValueError(f"{str(path)!r}: {e}") from None
    except (TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
        raise ValueError(f"{str(path)!r}: the {what} in the file is malformed "
                         f"({type(e).__name__}: {e})") from None
