"""The Gates page's computations: what one recurrent layer does at each token
of a text (heat maps), and LSTMVis's pattern search (Strobelt et al.): the
units that stay on over a stretch of the text the user selects, then the
passages of a reference corpus where the same units are on together.

Maps travel as base64 of little-endian float32, row-major (T, H): a 500-token
text through 128 units is 6 maps x 256 KB, decoded in the browser with one
Float32Array (JSON numbers would cost 5-10x the bytes and the time).
"""
import base64
import threading
import time

import numpy as np

from ..analysis.gates import layer_trace
from .params import RequestError

TITLES = {"input_gate": "input gate i_t", "forget_gate": "forget gate f_t", "output_gate": "output gate o_t",
          "candidate": "candidate g_t", "cell_state": "cell state c_t", "hidden": "hidden state h_t",
          "reset_gate": "reset gate r_t", "update_gate": "update gate z_t"}
ORDER = ("input_gate", "forget_gate", "output_gate", "reset_gate", "update_gate", "candidate", "cell_state",
         "hidden")
GATES = {"input_gate", "forget_gate", "output_gate", "reset_gate", "update_gate"}     # sigmoids, in [0, 1]
MAPS_PER_CELL = {"lstm": 6, "gru": 4, "simple_rnn": 1}
DOC_TOKENS = 1000          # a longer reference text is read in pieces of this many tokens, each from state 0


def _probe(run, index):
    probes = run.probes()
    if not probes:
        raise RequestError(f"run {run.info.id!r}: the model has no recurrent layer")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(probes):
        raise RequestError(f"layer: expected an integer from 0 to {len(probes) - 1}; got {index!r}")
    return probes[index]


def trace(run, text, layer_index, limits):
    """(pieces, oov flags, {map name: (T, H) float64}, seconds) for one text."""
    probe = _probe(run, layer_index)
    ids, pieces, oov = run.tokens(text)
    if not ids:
        raise RequestError("text: no tokens in it; type some text")
    cells = len(ids) * probe.layer.units * MAPS_PER_CELL.get(probe.layer.cell, 6)
    if cells > limits.gates_cells:
        raise RequestError(f"text: {len(ids):,} tokens x {probe.layer.units} units x "
                           f"{MAPS_PER_CELL.get(probe.layer.cell, 6)} maps is {cells:,} numbers; this server "
                           f"sends at most {limits.gates_cells:,}: give a shorter text", 413)
    t0 = time.perf_counter()
    with run.lock:
        maps = layer_trace(probe.layer, probe.inputs(ids))
    return pieces, oov, maps, time.perf_counter() - t0


def value_range(name, a):
    """(lo, hi) of the colour scale: [0, 1] for a gate, symmetric around 0 otherwise."""
    if name in GATES:
        return 0.0, 1.0
    m = float(np.abs(a).max()) if a.size else 1.0
    m = 1.0 if name in ("candidate", "hidden") and m <= 1.0 else max(m, 1e-6)
    return -m, m


def encode_map(name, a):
    a32 = np.ascontiguousarray(a, dtype="<f4")                                   # (T, H)
    lo, hi = value_range(name, a32)
    return {"name": name, "title": TITLES.get(name, name), "kind": "gate" if name in GATES else "signed",
            "lo": lo, "hi": hi, "min": float(a32.min()), "max": float(a32.max()),
            "data": base64.b64encode(a32.tobytes()).decode("ascii")}


def joiner(run):
    """How the page joins tokens back into text: characters and subword pieces
    touch, words take a space."""
    kind = getattr(getattr(run, "tok", None), "kind", None) or getattr(getattr(run, "src", None), "kind", None)
    return "" if kind in ("char", "subword") else " "


def gates_response(run, text, layer_index, limits):
    pieces, oov, maps, seconds = trace(run, text, layer_index, limits)
    probe = run.probes()[layer_index]
    order = [n for n in ORDER if n in maps]
    return {"run": run.info.id, "layer": layer_index, "layers": [p.label for p in run.probes()],
            "cell": probe.layer.cell, "units": probe.layer.units, "tokens": pieces, "oov": oov,
            "joiner": joiner(run), "shape": [len(pieces), probe.layer.units],
            "maps": [encode_map(n, maps[n]) for n in order], "compute_ms": seconds * 1e3}


# ---- pattern search -----------------------------------------------------------------------------

class Corpus:
    """The reference texts of a run read by one layer: [(source, pieces, values (T, H) float16)]
    for one map, built once (under the run's lock, a document at a time)."""

    def __init__(self, layer_index, name, docs):
        self.key = (layer_index, name)
        self.docs = docs
        self.tokens = sum(len(d[1]) for d in docs)


def _documents(run, extra, limit):
    """(source, text) pieces of at most DOC_TOKENS tokens, up to `limit` tokens in all."""
    out, total = [], 0
    for source, text in list(run.reference_texts()) + list(extra):
        ids, pieces, _ = run.tokens(text)
        for k in range(0, len(ids), DOC_TOKENS):
            n = min(DOC_TOKENS, len(ids) - k, limit - total)
            if n <= 0:
                return out
            out.append((source, ids[k:k + n], pieces[k:k + n]))
            total += n
    return out


_corpus_locks = {}
_corpus_locks_guard = threading.Lock()


def corpus(run, layer_index, name, extra, limits):
    cache = run.__dict__.setdefault("_corpora", {})
    key = (layer_index, name)
    if key in cache:
        return cache[key]
    with _corpus_locks_guard:
        gate = _corpus_locks.setdefault((id(run), key), threading.Lock())
    with gate:
        if key in cache:
            return cache[key]
        probe = _probe(run, layer_index)
        docs = []
        for source, ids, pieces in _documents(run, extra, limits.search_corpus_tokens):
            with run.lock:
                maps = layer_trace(probe.layer, probe.inputs(ids))
            docs.append((source, pieces, maps[name].astype(np.float16)))
        cache.clear()                                   # one corpus per run at a time: memory
        cache[key] = Corpus(layer_index, name, docs)
        return cache[key]


def pattern_units(values, start, end, threshold):
    """Units whose value is at least `threshold` at every step of [start, end]."""
    return np.flatnonzero((values[start:end + 1] >= threshold).all(axis=0))


def window_matches(values, units, length, threshold):
    """For every window of `length` steps: (shared, extra, score), where shared
    counts the query's units on all through the window, extra the other units
    on all through it, score = shared / (|units| + extra): the Jaccard index of
    the two sets, 1 for the same set."""
    T, H = values.shape
    if T < length:
        z = np.zeros(0)
        return z, z, z
    on = (values >= threshold).astype(np.int32)                               # (T, H)
    cs = np.concatenate([np.zeros((1, H), np.int32), np.cumsum(on, axis=0)])  # (T+1, H)
    all_on = (cs[length:] - cs[:-length]) == length                          # (T-L+1, H)
    shared = all_on[:, units].sum(axis=1)
    extra = all_on.sum(axis=1) - shared
    return shared, extra, shared / (len(units) + extra)


def pattern_distance(values, query, units, starts):
    """Mean absolute difference between the pattern units' values in the windows
    starting at `starts` and in the query (L, |units|): breaks ties in the score
    in favour of passages the units read most alike."""
    acc = np.zeros(len(starts))
    for k in range(query.shape[0]):
        acc += np.abs(values[starts + k][:, units] - query[k]).sum(axis=1)
    return acc / max(1, query.size)


def search(run, text, layer_index, name, start, end, threshold, top, limits, extra_texts=()):
    pieces, _, maps, _ = trace(run, text, layer_index, limits)
    if name not in maps:
        raise RequestError(f"map: this layer has no {name!r}; expected one of {', '.join(maps)}")
    T = len(pieces)
    if not 0 <= start <= end < T:
        raise RequestError(f"start, end: expected 0 <= start <= end < {T} (the text's tokens); got {start}, {end}")
    values = maps[name]
    units = pattern_units(values, start, end, threshold)
    L = end - start + 1
    out = {"units": units.tolist(), "length": L, "threshold": threshold, "map": name, "matches": []}
    if not len(units):
        out["message"] = (f"no unit stays at {threshold} or above over the {L} selected tokens; select fewer "
                          f"tokens or lower the threshold")
        return out
    t0 = time.perf_counter()
    c = corpus(run, layer_index, name, extra_texts, limits)
    docs = [("your text", pieces, values)] + c.docs
    query = values[start:end + 1, units]                                   # (L, |units|)
    cands = []
    for d, (source, doc_pieces, v) in enumerate(docs):
        v = np.asarray(v, np.float32)
        shared, more, score = window_matches(v, units, L, threshold)
        good = np.flatnonzero(shared > 0)
        if d == 0:
            good = good[good != start]                  # the selection itself
        dist = pattern_distance(v, query, units, good)
        for k in np.lexsort((dist, -score[good]))[:top * 4]:
            p = good[k]
            cands.append((-float(score[p]), float(dist[k]), d, int(p), int(shared[p]), int(more[p])))
    cands.sort()
    taken, ctx = {}, 24
    for negscore, _, d, p, shared, more in cands:
        spans = taken.setdefault(d, [])
        if any(abs(p - q) < L for q in spans):
            continue                                    # overlaps a better match
        spans.append(p)
        source, doc_pieces, _ = docs[d]
        out["matches"].append({"source": source, "score": -negscore, "shared": shared, "extra": more,
                               "start": p, "before": doc_pieces[max(0, p - ctx):p],
                               "match": doc_pieces[p:p + L], "after": doc_pieces[p + L:p + L + ctx]})
        if len(out["matches"]) >= top:
            break
    out["corpus"] = {"documents": len(docs), "tokens": T + c.tokens,
                     "sources": sorted({s for s, _, _ in docs})}
    out["search_ms"] = (time.perf_counter() - t0) * 1e3
    return out
