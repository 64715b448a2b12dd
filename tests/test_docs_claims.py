"""Every code identifier the docs and READMEs quote (in `inline code`) exists:
files, dotted names (resolved by import), and names written like code
(snake_case with an underscore, CamelCase), which must appear in the source.
Docs that name things the code no longer has are how a new maintainer gets
misled; this keeps them honest as the code moves."""
import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = (["README.md", "benchmarks/README.md"]
        + [os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(ROOT, "docs"))) if f.endswith(".md")]
        + [os.path.join("examples", d, "README.md") for d in sorted(os.listdir(os.path.join(ROOT, "examples")))
           if os.path.exists(os.path.join(ROOT, "examples", d, "README.md"))])
CODE_DIRS = ("src", "benchmarks", "tests", "examples", ".ci")
FILE_DIRS = ("", "src/lstmkit", "src/lstmkit/kernels", "src/lstmkit/layers", "src/lstmkit/cells",
             "src/lstmkit/models", "src/lstmkit/cli", "src/lstmkit/apps", "src/lstmkit/data", "benchmarks",
             "tests", "docs")
# module prefixes a dotted name may start with, and where they live
PREFIXES = {"lk": "lstmkit", "lstmkit": "lstmkit", "kernels": "lstmkit.kernels",
            "cells": "lstmkit.cells", "layers": "lstmkit.layers", "models": "lstmkit.models",
            "engines": "lstmkit.engines", "settings": "lstmkit.settings"}
for _mod in ("support", "gemm", "workspace", "skeleton", "policy", "threads", "packed", "packed_cells",
             "cache", "ahead", "warmup", "activations", "denormals", "prefetch", "optim", "embedding",
             "lstm", "gru", "simple_rnn"):
    PREFIXES.setdefault(_mod, f"lstmkit.kernels.{_mod}")
for _cls, _mod in (("RNNLayer", "lstmkit.layers.recurrent"), ("Stream", "lstmkit.layers.stream"),
                   ("Sequential", "lstmkit.models.sequential"), ("PackedWeights", "lstmkit.layers.packed")):
    PREFIXES[_cls] = f"{_mod}.{_cls}"


# names quoted on purpose that are not lstmkit's
NOT_OURS = {
    "recurrent_kernel": "Keras's name for W_h (docs/math.md's conversion table)",
    "model_weights": "the HDF5 group of a Keras 2 file (docs/interop.md)",
    "__future__": "the standard library the imitate-code example trains on",
    "_py_abc": "the same", "_pydecimal.py": "the same", "_sign": "the same", "_exp": "the same",
    "NotImplemented": "the same",
}


def _inline_code(text):
    text = re.sub(r"```.*?```", "", text, flags=re.S)           # fenced blocks are examples, not claims
    return re.findall(r"`([^`\n]+)`", text)


def _source_words():
    words = set()
    for d in CODE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            if "__pycache__" in dirpath or ".venv" in dirpath:
                continue
            for f in files:
                if f == os.path.basename(__file__):
                    continue                                   # this file names missing things on purpose
                if f.endswith((".py", ".sh", ".toml", "Makefile")) or f == "run":
                    with open(os.path.join(dirpath, f), encoding="utf-8", errors="replace") as fh:
                        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", fh.read()))
    with open(os.path.join(ROOT, "Makefile")) as fh:
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", fh.read()))
    return words


WORDS = _source_words()


def _file_exists(token, here=""):
    """A path from the repository's usual folders, or from the quoting doc's own
    folder (an example's README names its train.py)."""
    name = token.rstrip("/")
    return any(os.path.exists(os.path.join(ROOT, d, name)) for d in FILE_DIRS + (here,))


def _resolve(dotted):
    head, *rest = dotted.split(".")
    target = PREFIXES[head]
    parts = target.split(".")
    for i in range(len(parts), 0, -1):                          # import the longest module prefix
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ImportError:
            continue
    else:
        return False
    for attr in parts[i:] + rest:
        if not hasattr(obj, attr):
            try:
                obj = importlib.import_module(f"{obj.__name__}.{attr}")
                continue
            except (ImportError, AttributeError):
                return False
        obj = getattr(obj, attr)
    return True


def check(token, here=""):
    """None when fine (or not a code reference), else why not."""
    t = token.strip()
    if " " in t or t.startswith(("-", "$", "/")) or t in NOT_OURS:
        return None                                            # commands, options, absolute paths, prose
    if re.fullmatch(r"[\w.-]+\.(json|txt|png|csv|npz|safetensors|log)", t):
        return None                                            # a file a run writes, not the repository's
    if re.fullmatch(r"[\w./-]+\.(py|md|json|sh|toml|txt|cfg)", t) or re.fullmatch(r"[\w-]+(/[\w.-]+)+/?", t):
        if t.split("/")[0] == "results":
            return None                                        # benchmark outputs
        ext = os.path.splitext(t.rstrip("/"))[1]
        if ext and ext not in (".py", ".md", ".json", ".sh", ".toml", ".txt", ".cfg"):
            return None                                        # a file a run writes (model.spm.model, ...)
        if re.fullmatch(r"[\w-]+(/[\w.-]+)+/?", t) and not t.split("/")[0] in (
                "src", "tests", "benchmarks", "docs", "examples", "kernels", "layers", "cells", "models",
                "cli", "apps", "data", "results", "interop", "analysis"):
            return None                                        # a/b in prose, not a path
        return None if _file_exists(t, here) else "no such file"
    t = re.sub(r"\(.*\)$", "", t)                              # name(args) -> name
    t = re.sub(r"\[.*\]$", "", t)
    t = t.split("=")[0]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", t):
        return None                                            # math, shapes, literals
    head = t.split(".")[0]
    if "." in t and head in PREFIXES:
        return None if _resolve(t) else "does not resolve"
    names = t.split(".")
    # written like code: a private name, snake_case whose parts are all longer
    # than a letter (x_t, W_h, b_hn are the math's names), or CamelCase
    codey = [n for n in names if n.startswith("_") or re.search(r"[a-z][A-Z]", n)
             or ("_" in n and all(len(p) > 1 for p in n.split("_")) and not n.isupper())]
    missing = [n for n in codey if n not in WORDS]
    return f"{', '.join(missing)} not in the source" if missing else None


@pytest.mark.parametrize("doc", DOCS)
def test_quoted_identifiers_exist(doc):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        tokens = _inline_code(f.read())
    here = os.path.dirname(doc)
    bad = sorted({f"`{t}`: {why}" for t in tokens if (why := check(t, here))})
    assert not bad, f"{doc} quotes code that does not exist:\n  " + "\n  ".join(bad)


def test_the_checker_catches_what_it_should():
    assert check("support.input_side_grads") == "does not resolve"
    assert check("_spread_mask") is not None
    assert check("src/lstmkit/kernels/nothing.py") == "no such file"
    assert check("kernels/gemm.py") is None and check("lk.config") is None
    assert check("skeleton.forward_rows") is None and check("RNNLayer.stream") is None
    assert check("forward_lookup(ids, table, W_h)") is None
    assert check("tanh(s*z)*a + d") is None                    # math is not a claim
    assert check("x_t") is None and check("metrics.json") is None
