"""Shared by the applications: run folders, model bundles (model + meta.json),
model construction from a cell name."""
import json
import os
import time

import numpy as np

from ..io import write_json
from ..data.errors import DataError

MODEL_FILE = "model.safetensors"
META_FILE = "meta.json"
CELL_LAYERS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}


def make_run_dir(command, out=None):
    """out, or runs/<command>-<timestamp> (made unique); created, returned."""
    if out is None:
        base = os.path.join("runs", f"{command}-{time.strftime('%Y%m%d-%H%M%S')}")
        out, n = base, 1
        while os.path.exists(out):
            n += 1
            out = f"{base}-{n}"
    if os.path.exists(out) and not os.path.isdir(out):
        raise DataError(f"{out}: exists and is not a folder; choose another --out")
    os.makedirs(out, exist_ok=True)
    return out


def recurrent_layer(cell, units, bidirectional=False, seed=None, **kwargs):
    import lstmkit as lk
    if cell not in CELL_LAYERS:
        raise DataError(f"unknown cell {cell!r}; expected one of {sorted(CELL_LAYERS)}")
    layer = getattr(lk, CELL_LAYERS[cell])(units, seed=seed, **kwargs)
    return lk.Bidirectional(layer) if bidirectional else layer


def early_stopping(patience):
    """Stop when the validation loss has not improved for `patience` epochs and
    keep the best epoch's weights; None: train every epoch."""
    import lstmkit as lk
    if not patience:
        return []
    return [lk.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]


def save_bundle(model, meta, out_dir):
    """The model file and meta.json (tokenizer, labels, scaling ...) side by side."""
    path = os.path.join(out_dir, MODEL_FILE)
    model.save(path)
    write_json(os.path.join(out_dir, META_FILE), meta)
    return path


def load_bundle(path, app=None):
    """path: a run folder or its model file. Returns (model, meta)."""
    import lstmkit as lk
    path = os.fspath(path)
    model_path = os.path.join(path, MODEL_FILE) if os.path.isdir(path) else path
    if not os.path.exists(model_path):
        raise DataError(f"{model_path}: no such model file (expected a run folder or its {MODEL_FILE})")
    meta_path = os.path.join(os.path.dirname(os.path.abspath(model_path)), META_FILE)
    if not os.path.exists(meta_path):
        raise DataError(f"{meta_path}: missing; a model trained by lstmkit keeps its tokenizer "
                        f"and settings there, beside {os.path.basename(model_path)}")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{meta_path}: not valid JSON ({e})") from None
    if app is not None and meta.get("app") != app:
        raise DataError(f"{model_path}: a model of '{meta.get('app')}', expected one of '{app}'")
    try:
        model = lk.load_model(model_path)
    except (ValueError, OSError) as e:
        raise DataError(f"{model_path}: cannot load the model ({e})") from None
    return model, meta




def to_jsonable(x):
    if isinstance(x, dict):
        return {k: to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x
