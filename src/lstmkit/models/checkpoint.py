"""Checkpoints: all that fit needs to go on, bit for bit, after its process dies.

One checkpoint is one safetensors file, ``ckpt-EEEEE-BBBBBB.safetensors`` (the epoch,
then the batches done in it), holding

  tensors    the weights ("<layer>/<param>"), the optimizer's moments
             ("__optimizer__/<slot>/<weight>", as saved models have them), the arrays
             of the callbacks' state (early stopping's best weights) and the carried
             states of stateful layers
  metadata   "state": JSON with the position (epoch, batch), the training setup it
             belongs to (samples, batch size, shuffling), the optimizer's step count
             and learning rate, every random generator's state (the shuffling
             generator as it was when the epoch began, so the epoch's order can be
             drawn again; each layer's dropout generator as it is now), the running
             sums of the epoch (loss, per-output losses, metrics' totals), the
             History and each callback's state; "sha256" over tensors and state.

Numbers that are NumPy scalars keep their dtype in the JSON ({"$np": "<f4", "v": x}):
Python floats round-trip exactly, so the logs after a resume are the very numbers an
uninterrupted run logs. Arrays inside states are moved to tensors ({"$tensor": name}).

Writing is atomic (lstmkit.io: temporary file, fsync, rename, fsync of the folder);
the oldest files beyond ``keep`` are removed only after the new one is in place, so a
kill at any moment leaves the newest complete checkpoint. Reading never unpickles;
a file that is truncated, damaged or not a checkpoint is refused in words and the
one before it is used.
"""
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save

from .. import io
from .saving import OPTIMIZER_PREFIX, weights_digest

FORMAT = "lstmkit-checkpoint"
FORMAT_VERSION = "1"
NAME = "ckpt-{epoch:05d}-{batch:06d}.safetensors"
PATTERN = re.compile(r"^ckpt-(\d{5,})-(\d{6,})\.safetensors$")
CALLBACK_PREFIX = "__callback__/"
STATE_PREFIX = "__stateful__/"


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be resumed from (or must not be overwritten)."""


# ---- numbers and arrays inside JSON ----------------------------------------------------
def encode(obj, tensors, prefix):
    """obj as JSON-able values: NumPy scalars tagged with their dtype, arrays moved
    into ``tensors`` under names starting with ``prefix``."""
    if isinstance(obj, np.ndarray):
        name = f"{prefix}{len([k for k in tensors if k.startswith(prefix)])}"
        tensors[name] = np.ascontiguousarray(obj)
        return {"$tensor": name}
    if isinstance(obj, np.generic):
        return {"$np": obj.dtype.str, "v": obj.item()}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"checkpoint state dicts need string keys; got {sorted(map(repr, obj))}")
        return {"$dict": {k: encode(v, tensors, prefix) for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        return {"$" + type(obj).__name__: [encode(v, tensors, prefix) for v in obj]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot keep a {type(obj).__name__} in a checkpoint")


def decode(obj, tensors):
    if isinstance(obj, dict):
        if "$tensor" in obj:
            return np.array(tensors[obj["$tensor"]])            # a writable copy
        if "$np" in obj:
            return np.dtype(obj["$np"]).type(obj["v"])
        if "$dict" in obj:
            return {k: decode(v, tensors) for k, v in obj["$dict"].items()}
        if "$list" in obj:
            return [decode(v, tensors) for v in obj["$list"]]
        if "$tuple" in obj:
            return tuple(decode(v, tensors) for v in obj["$tuple"])
        raise ValueError(f"unknown entry {sorted(obj)} in the checkpoint state")
    return obj


def _digest(tensors, state_json):
    return hashlib.sha256((weights_digest(tensors) + "|" + state_json).encode()).hexdigest()


# ---- the folder ------------------------------------------------------------------------
def listing(directory):
    """[(epoch, batch, path)] of the checkpoint files in directory, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    out = []
    for p in directory.iterdir():
        m = PATTERN.match(p.name)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), p))
    return sorted(out)


def remove_leftovers(directory):
    """Temporary files of writes that a kill interrupted (never complete checkpoints)."""
    directory = Path(directory)
    if directory.is_dir():
        for p in directory.glob(".tmp-*.safetensors"):
            try:
                p.unlink()
            except OSError:
                pass


def write(directory, epoch, batch, tensors, state, keep):
    """Write one checkpoint atomically, then remove all but the newest ``keep``."""
    directory = Path(directory)
    state_json = json.dumps(state, sort_keys=True)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "state": state_json,
                "sha256": _digest(tensors, state_json)}
    path = directory / NAME.format(epoch=epoch, batch=batch)
    io.atomic_write_bytes(path, save(tensors, metadata=metadata))
    for _, _, old in listing(directory)[:-keep]:
        try:
            old.unlink()
        except OSError:
            pass
    return path


def read(path):
    """(tensors, state) of one checkpoint file; ValueError saying in words what is wrong."""
    header = io.read_safetensors_header(path)        # truncated, damaged, foreign: refused here
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is a safetensors file but not a lstmkit checkpoint (its metadata "
                         f"has keys {sorted(meta)}, no format={FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} is checkpoint format version {meta.get('format_version')!r}; "
                         f"this lstmkit reads version {FORMAT_VERSION}")
    tensors = load_file(str(path))
    state_json = meta.get("state", "")
    if _digest(tensors, state_json) != meta.get("sha256"):
        raise ValueError(f"{str(path)!r}: its contents are not those that were written: the SHA-256 of "
                         f"the tensors and state differs from the one recorded (damaged bytes)")
    try:
        state = json.loads(state_json)
    except json.JSONDecodeError:
        raise ValueError(f"{str(path)!r}: the state is not valid JSON") from None
    return tensors, state


def latest(directory, log=None, refused=None):
    """(path, tensors, state) of the newest checkpoint in directory that reads back whole, or
    None when there is none. Each newer file refused is named, with the reason, through log
    (stderr by default) and appended to the list ``refused`` when one is given, and the one before
    it is tried."""
    refused = [] if refused is None else refused
    log = log or (lambda msg: print(msg, file=sys.stderr))
    for _, _, path in reversed(listing(directory)):
        try:
            tensors, state = read(path)
        except (ValueError, OSError) as e:
            log(f"lstmkit: refusing checkpoint {path.name}: {e}; trying the one before it")
            refused.append(f"{path.name}: {e}")
            continue
        return path, tensors, state
    return None


# ---- what a model and its training hold -------------------------------------------------
def generators(model, layers):
    """{name: numpy Generator} of every random generator the layers hold (dropout, noise),
    in a fixed order: '<layer index>/<attribute>' (and '/<attribute>' once more for a
    cell inside a layer)."""
    out = {}
    for k, layer in enumerate(layers):
        for attr, value in sorted(vars(layer).items()):
            if isinstance(value, np.random.Generator):
                out[f"{k}/{attr}"] = value
            elif type(value).__module__.startswith("lstmkit.") and hasattr(value, "__dict__") \
                    and value not in layers:
                for sub, v in sorted(vars(value).items()):
                    if isinstance(v, np.random.Generator):
                        out[f"{k}/{attr}/{sub}"] = v
    return out


def model_tensors(model):
    """The weights and the optimizer's moments, as a saved model holds them."""
    tensors = {k: np.ascontiguousarray(v) for k, v in model.params.items()}
    for key, slots in model.optimizer.state.items():
        for slot, arr in slots.items():
            tensors[f"{OPTIMIZER_PREFIX}{slot}/{key}"] = np.ascontiguousarray(arr)
    return tensors


def restore_model(model, tensors, path, order=None):
    """Put a checkpoint's weights and optimizer moments into model (in place). ``order``: the weight
    names in the saving model's order; when this model's names differ only because automatic layer
    names moved on ('lstm' became 'lstm_1' in the same process), the weights are matched by place."""
    weights = {k: v for k, v in tensors.items() if not k.startswith(("__"))}
    expected = {k: v.shape for k, v in model.params.items()}
    got = {k: v.shape for k, v in weights.items()}
    if expected != got and order is not None and sorted(order) == sorted(weights) \
            and [weights[k].shape for k in order] == list(expected.values()):
        rename = dict(zip(order, expected))

        def renamed(k):
            if k.startswith(OPTIMIZER_PREFIX):
                slot, key = k[len(OPTIMIZER_PREFIX):].split("/", 1)
                return f"{OPTIMIZER_PREFIX}{slot}/{rename.get(key, key)}"
            return k if k.startswith("__") else rename[k]
        tensors = {renamed(k): v for k, v in tensors.items()}
        weights = {k: v for k, v in tensors.items() if not k.startswith(("__"))}
        got = {k: v.shape for k, v in weights.items()}
    if expected != got:
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        wrong = [f"{k} is {tuple(got[k])} there, {tuple(expected[k])} here" for k in expected
                 if k in got and got[k] != expected[k]]
        parts = ([f"this model's weights {missing} are not in it"] if missing else []) + \
                ([f"it holds weights {extra} this model has no place for"] if extra else []) + wrong
        raise CheckpointError(f"{str(path)!r} does not fit this model: {'; '.join(parts)}")
    model.set_weights(weights)
    opt = model.optimizer
    opt.state = {}
    for name, arr in tensors.items():
        if name.startswith(OPTIMIZER_PREFIX):
            slot, key = name[len(OPTIMIZER_PREFIX):].split("/", 1)
            if key not in expected or arr.shape != expected[key]:
                raise CheckpointError(f"{str(path)!r}: optimizer state {name!r} has no weight of shape "
                                      f"{arr.shape} in this model")
            opt.state.setdefault(key, {})[slot] = np.array(arr)
