"""The run folders the server offers, and the models in them.

The server looks for run folders under the directory given on the command
line (--runs): folders holding a metrics.json or a meta.json, at most a few
levels deep. Each is known by an id, its path relative to that directory.
The browser names a run only by such an id, which is looked up in the list
the server made; no path from a request ever reaches the file system.

A model is loaded on first use and kept (the few most recently used ones).
Layers keep caches of their last call, so every computation with a model
holds that model's lock; long jobs take it for short stretches (one token of
a generation, one document of the pattern-search corpus), so requests for the
same model take turns instead of waiting for each other to finish.
"""
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..analysis.gates import recurrent_layers
from ..data.errors import DataError
from .params import RequestError

META, METRICS, MODEL, HISTORY = "meta.json", "metrics.json", "model.safetensors", "history.png"
MODEL_APPS = ("classify", "generate", "translate")      # apps whose models the pages can open
PAGES = {"classify": ["gates"], "generate": ["gates", "generate"], "translate": ["gates", "translate"]}
CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "simple RNN"}
MAX_JSON_BYTES = 20 * 1024 * 1024
SKIP_DIRS = {"__pycache__", "node_modules", "attention", "splits"}


@dataclass
class RunInfo:
    id: str
    folder: str
    app: str = None
    meta: dict = None
    metrics: dict = None
    has_model: bool = False
    history_png: str = None
    mtime: float = 0.0
    problems: list = field(default_factory=list)

    @property
    def pages(self):
        return PAGES.get(self.app, []) if self.has_model else []


def _read_json(path, problems):
    try:
        if os.path.getsize(path) > MAX_JSON_BYTES:
            problems.append(f"{os.path.basename(path)}: larger than {MAX_JSON_BYTES // 2**20} MB, not read")
            return None
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        return d if isinstance(d, dict) else None
    except (OSError, ValueError) as e:
        problems.append(f"{os.path.basename(path)}: {e}")
        return None


def _inside(root, path):
    """path is a regular file whose real location is inside root (no symlink out)."""
    real = os.path.realpath(path)
    return os.path.isfile(real) and os.path.commonpath([root, real]) == root


def scan(root, max_depth=4, max_runs=500):
    """{id: RunInfo} of the run folders under root, newest first."""
    root = os.path.realpath(root)
    found = {}
    if not os.path.isdir(root):
        return found
    for folder, dirs, files in os.walk(root, followlinks=False):
        depth = 0 if folder == root else os.path.relpath(folder, root).count(os.sep) + 1
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS) if depth < max_depth else []
        if META not in files and METRICS not in files:
            continue
        rid = "." if folder == root else os.path.relpath(folder, root).replace(os.sep, "/")
        info = RunInfo(id=rid, folder=folder)
        if META in files and _inside(root, os.path.join(folder, META)):
            info.meta = _read_json(os.path.join(folder, META), info.problems)
        if METRICS in files and _inside(root, os.path.join(folder, METRICS)):
            info.metrics = _read_json(os.path.join(folder, METRICS), info.problems)
        info.app = (info.meta or {}).get("app") or (info.metrics or {}).get("app")
        info.has_model = info.meta is not None and MODEL in files and _inside(root, os.path.join(folder, MODEL))
        if HISTORY in files and _inside(root, os.path.join(folder, HISTORY)):
            info.history_png = os.path.join(folder, HISTORY)
        info.mtime = max(os.path.getmtime(os.path.join(folder, f)) for f in (META, METRICS) if f in files)
        found[rid] = info
        if len(found) >= max_runs:
            break
    return dict(sorted(found.items(), key=lambda kv: -kv[1].mtime))


HEADLINES = ("val_accuracy", "majority_baseline", "val_loss", "bits_per_character", "bits_per_word",
             "heldout_bits", "bleu", "chrf", "copy_baseline", "epochs_run", "tokens_per_s", "train_seconds")


def _scalars(d, prefix="", depth=0, out=None, limit=80):
    """Flattened numbers and short strings of a metrics dict (no lists, no long texts)."""
    out = {} if out is None else out
    for k, v in d.items():
        if len(out) >= limit:
            break
        key = f"{prefix}{k}"
        if isinstance(v, bool) or v is None:
            out[key] = v
        elif isinstance(v, (int, float)):
            out[key] = v if np.isfinite(v) else str(v)
        elif isinstance(v, str) and len(v) <= 200:
            out[key] = v
        elif isinstance(v, dict) and depth < 2 and k not in ("history", "tokenizer"):
            _scalars(v, key + ".", depth + 1, out, limit)
    return out


def summary(info, full=False):
    """What the Models page shows of a run."""
    m = info.metrics or {}
    meta = info.meta or {}
    cell = meta.get("cell") or (meta.get("settings") or {}).get("cell") or m.get("cell")
    out = {"id": info.id, "app": info.app, "command": m.get("command"), "has_model": info.has_model,
           "pages": info.pages, "cell": cell, "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(info.mtime)),
           "corpus": m.get("corpus") or meta.get("corpus") or m.get("source") or meta.get("source"),
           "headline": {k: v for k, v in _scalars({k: m[k] for k in HEADLINES if k in m}).items()},
           "has_history_png": info.history_png is not None, "problems": info.problems}
    if full:
        out["metrics"] = _scalars(m, limit=200)
        hist = m.get("history")
        if isinstance(hist, dict):
            out["history"] = {k: [float(x) for x in v] for k, v in hist.items()
                              if isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v)}
    return out


# ---- loaded models ------------------------------------------------------------------------------

@dataclass
class Probe:
    """One recurrent layer the Gates page can look at: label, the layer, and
    inputs(ids) -> the (1, T, D) sequence that layer reads for those token ids."""
    label: str
    layer: object
    inputs: object


class LoadedRun:
    """A run's model with what reads text for it; subclasses per app."""
    app = None

    def __init__(self, info):
        self.info = info
        self.lock = threading.Lock()

    def tokens(self, text):
        """(ids, pieces, oov (bool list)) of a text, aligned one to one."""
        raise NotImplementedError

    def probes(self):
        raise NotImplementedError

    def reference_texts(self):
        """[(source name, text)] the run folder keeps (for the pattern search)."""
        return []


def _read_small(path, limit=2_000_000):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(limit)
    except OSError:
        return ""


class SequentialRun(LoadedRun):
    """A classify or generate run: a Sequential over token ids and its tokenizer."""

    def __init__(self, info):
        super().__init__(info)
        from ..apps.common import load_bundle
        from ..data.tokenizer import Tokenizer
        self.app = info.app
        self.model, self.meta = load_bundle(info.folder, info.app)
        if not self.meta.get("tokenizer"):
            raise DataError(f"run {info.id}: trained on word ids without a tokenizer, so it cannot read text")
        self.tok = Tokenizer.from_dict(self.meta["tokenizer"])
        self._probes = []
        for i, layer, label in recurrent_layers(self.model):
            self._probes.append(Probe(f"{label}: {CELL_NAMES.get(layer.cell, layer.cell)} {layer.units}", layer,
                                      self._inputs_for(i)))

    def _inputs_for(self, index):
        def inputs(ids):
            x = np.asarray([ids], np.int64)                                   # (1, T)
            for before in self.model.layers[:index]:
                x = before.forward(x, training=False)                         # (1, T, D) at the end
            return x
        return inputs

    def tokens(self, text):
        pieces = self.tok.split(text)
        ids = [self.tok.index.get(t, 1) for t in pieces]
        return ids, pieces, [i == 1 for i in ids]

    def probes(self):
        return self._probes

    def reference_texts(self):
        path = os.path.join(self.info.folder, "samples.txt")
        if self.app == "generate" and os.path.exists(path) and _inside(self.info.folder, path):
            text = _read_small(path)
            return [("the run's samples", t) for t in text.split("\n\n") if t.strip()]
        return []

    @property
    def poetry(self):
        from ..apps.text_corpora import POETRY
        return self.meta.get("corpus") in POETRY


class TranslateRun(LoadedRun):
    """A translate run: its model's step decoder (seq2seq/graph.py's GraphDecoder for an
    lk.Model, or a Seq2Seq container) and its two tokenizers; the Gates page looks
    at the encoder's layers over the source sentence."""
    app = "translate"

    def __init__(self, info):
        super().__init__(info)
        from ..apps.translate import load_run
        from ..seq2seq.graph import decoder_for
        model, self.src, self.tgt, self.meta = load_run(info.folder)
        self.model = decoder_for(model)
        m = self.model
        self._probes = []
        for k, enc in enumerate(m.encoder):
            halves = [(enc.forward_layer, "forward"), (enc.backward_layer, "backward")] \
                if hasattr(enc, "forward_layer") else [(enc, None)]
            for layer, side in halves:
                label = f"encoder {k}" + (f" ({side})" if side else "") + f": {CELL_NAMES.get(layer.cell, layer.cell)} {layer.units}"
                self._probes.append(Probe(label, layer, self._inputs_for(k)))

    def _inputs_for(self, k):
        def inputs(ids):
            x = self.model.src_embedding.forward(np.asarray([ids], np.int64))  # (1, S, E)
            for layer in self.model.encoder[:k]:
                x = layer.forward(x, training=False)                            # (1, S, H)
                x = x[0] if isinstance(x, list) else x                          # [sequence, states...]
            return x
        return inputs

    def tokens(self, text):
        ids = self.src.encode(text)
        return ids, self.src.id_pieces(ids), [i == 1 for i in ids]

    def probes(self):
        return self._probes

    def reference_texts(self):
        out = []
        for part in ("val", "test", "train"):
            path = os.path.join(self.info.folder, "splits", f"{part}.tsv")
            if os.path.exists(path) and _inside(self.info.folder, path):
                for line in _read_small(path).splitlines():
                    src = line.split("\t", 1)[0].strip()
                    if src:
                        out.append((f"{part} split", src))
        return out


class Registry:
    """The runs under one folder, rescanned when listed; models loaded on use."""

    def __init__(self, root, limits, search_texts=()):
        self.root = os.path.realpath(root) if root else None
        self.limits = limits
        self.search_texts = list(search_texts)          # [(name, text)] given by the operator
        self._runs = {}
        self._scanned = 0.0
        self._loaded = OrderedDict()
        self._lock = threading.Lock()
        self._loading = {}

    def runs(self, rescan=True):
        with self._lock:
            if self.root and (rescan or not self._scanned) and time.monotonic() - self._scanned > 1.0:
                self._runs = scan(self.root)
                self._scanned = time.monotonic()
            return dict(self._runs)

    def info(self, run_id):
        if not isinstance(run_id, str) or not run_id:
            raise RequestError("run: missing; expected the id of a run from the list (GET /api/runs)")
        runs = self.runs()
        if run_id not in runs:
            raise RequestError(f"run {run_id!r}: no such run under the server's runs folder", 404)
        return runs[run_id]

    def load(self, run_id, apps=MODEL_APPS):
        """The LoadedRun of a run id, loading it if needed."""
        info = self.info(run_id)
        if info.app not in apps or not info.has_model:
            what = f"a model of {info.app}" if info.has_model else "no model file"
            raise RequestError(f"run {run_id!r}: {what}; this page opens models of {', '.join(apps)}")
        with self._lock:
            loaded = self._loaded.get(run_id)
            if loaded is not None and loaded.info.mtime == info.mtime:
                self._loaded.move_to_end(run_id)
                return loaded
            gate = self._loading.setdefault(run_id, threading.Lock())
        with gate:                                     # one load per run at a time
            with self._lock:
                loaded = self._loaded.get(run_id)
                if loaded is not None and loaded.info.mtime == info.mtime:
                    return loaded
            cls = TranslateRun if info.app == "translate" else SequentialRun
            try:
                loaded = cls(info)
            except DataError as e:
                raise RequestError(str(e)) from None
            with self._lock:
                self._loaded[run_id] = loaded
                self._loaded.move_to_end(run_id)
                while len(self._loaded) > self.limits.loaded_models:
                    self._loaded.popitem(last=False)
            return loaded
