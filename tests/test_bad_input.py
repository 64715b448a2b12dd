"""Every bad input we could think of, tried through the API, the file readers and the command line;
each must give one clear error of a documented type. The test writes the table of docs/errors.md from
what it saw, and fails when the committed page differs (regenerate: LSTMKIT_WRITE_DOCS=1 pytest
tests/test_bad_input.py)."""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstmkit as lk
from lstmkit.data import labelled_text, series, tables, textfile, windows
from lstmkit.data.errors import DataError

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "errors.md"
DOCUMENTED = (ValueError, TypeError, OSError, RuntimeError, FloatingPointError)
X = np.random.default_rng(0).normal(size=(4, 5, 2)).astype("float32")
IDS = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])


def seq(emb=False, mask=False, compiled=True, head=1):
    layers = ([lk.Embedding(10, 4, mask_zero=mask, name="embedding")] if emb else []) + \
             [lk.LSTM(3, name="lstm"), lk.Dense(head, activation="sigmoid", name="dense")]
    m = lk.Sequential(layers, seed=0, name="model")
    if compiled:
        m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def built():
    m = seq()
    m.predict(X)
    return m


def fit(m, x, y, **kw):
    return m.fit(x, y, verbose=0, **kw)


def files():
    """The bad files, in the current folder (the test runs in a fresh one)."""
    Path("empty.csv").write_text("")
    Path("data.csv").write_text("text,label\ngood,pos\nbad,neg\n")
    Path("ragged.csv").write_text("text,label\ngood,pos\nbad,neg,extra\n")
    Path("series.csv").write_text("temp\n1.5\n2.0\nwarm\n")
    Path("short.csv").write_text("temp\n" + "".join(f"{t}.5\n" for t in range(12)))
    Path("dated.csv").write_text("day,temp\n2024-01-01,1.5\n2024-01-02,2.0\n3 Jan 2024,2.5\n")
    Path("latin1.txt").write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    Path("one.csv").write_text("text,label\na,pos\nb,pos\nc,pos\n")
    Path("folder").mkdir()
    m = built()
    m.save("model.lstmkit")
    raw = Path("model.lstmkit").read_bytes()
    Path("truncated.lstmkit").write_bytes(raw[:-100])        # cut in the weights: the message names sizes
    Path("run").mkdir()                                 # a run folder of `generate train`, model cut short
    Path("run/meta.json").write_text('{"app": "generate"}')
    Path("run/model.safetensors").write_bytes(raw[: len(raw) - 100])
    Path("pickled").mkdir()
    Path("pickled/meta.json").write_text('{"app": "generate"}')
    Path("pickled/model.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    tampered = bytearray(raw)
    tampered[-2] ^= 1
    Path("tampered.lstmkit").write_bytes(bytes(tampered))
    Path("model.pkl").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    Path("model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    fit(seq(), X, np.ones((4, 1)), epochs=1, batch_size=2, checkpoint_dir="ckpt")   # checkpoints of a fit
    Path("damaged").mkdir()                             # the same checkpoints, each cut short
    for p in sorted(Path("ckpt").iterdir()):
        Path("damaged", p.name).write_bytes(p.read_bytes()[:-100])


def resume(m=None, y=None, **kw):
    """Resume fit from a checkpoint folder (``ckpt`` unless kw names another)."""
    kw = {"epochs": 2, "batch_size": 2, "checkpoint_dir": "ckpt", "resume": True, **kw}
    return fit(m or seq(), X, np.ones((4, 1)) if y is None else y, **kw)


API = [
    ("input of rank 2 for an LSTM", lambda: seq().predict(X[:, :, 0])),
    ("text where numbers belong", lambda: seq().predict(X.astype(str))),
    ("wrong feature count", lambda: built().predict(np.zeros((2, 5, 3)))),
    ("token id outside the vocabulary", lambda: seq(emb=True).predict(IDS + 5)),
    ("negative token id", lambda: seq(emb=True).predict(-IDS)),
    ("floats where token ids belong", lambda: seq(emb=True).predict(IDS + 0.5)),
    ("empty batch", lambda: seq().predict(np.zeros((0, 5, 2)))),
    ("no time steps", lambda: seq().predict(np.zeros((2, 0, 2)))),
    ("ragged sequences", lambda: seq(emb=True).predict([[1, 2, 3], [4]])),
    ("None as input", lambda: seq().predict(None)),
    ("NaN in the inputs", lambda: fit(seq(), np.where(X == X[1, 2, 0], np.nan, X), np.ones((4, 1)))),
    ("Inf in the labels", lambda: fit(seq(), X, np.array([[1.0], [np.inf], [0.0], [1.0]]))),
    ("labels of the wrong shape", lambda: fit(seq(), X, np.ones((4, 3)))),
    ("labels and inputs of different lengths", lambda: fit(seq(), X, np.ones((3, 1)))),
    ("training before compile", lambda: fit(seq(compiled=False), X, np.ones((4, 1)))),
    ("weights of a model not built yet", lambda: seq().get_weights()),
    ("saving a model not built yet", lambda: seq().save("unbuilt.lstmkit")),
    ("batch_size=0", lambda: fit(seq(), X, np.ones((4, 1)), batch_size=0)),
    ("validation_split=1.5", lambda: fit(seq(), X, np.ones((4, 1)), validation_split=1.5)),
    ("on_nonfinite='ignore'", lambda: fit(seq(), X, np.ones((4, 1)), on_nonfinite="ignore")),
    ("LSTM(units=0)", lambda: lk.LSTM(0)),
    ("a 10^12-unit LSTM", lambda: lk.Sequential([lk.LSTM(10 ** 12, name="huge")]).predict(X)),
    ("unknown loss", lambda: seq(compiled=False).compile(loss="hinge_squared")),
    ("unknown optimizer", lambda: seq(compiled=False).compile(optimizer="adamw2", loss="mse")),
]

FILES = [
    ("file that does not exist", lambda: tables.read_csv_columns("missing.csv", ["text"])),
    ("a folder instead of a file", lambda: textfile.read_text("folder")),
    ("empty CSV", lambda: tables.read_csv_columns("empty.csv", ["text"])),
    ("CSV without the column asked for", lambda: tables.read_csv_columns("data.csv", ["sentiment"])),
    ("CSV with a ragged row", lambda: tables.read_csv_columns("ragged.csv", ["text", "label"])),
    ("non-numeric value in a series", lambda: series.load_csv_series("series.csv", ["temp"])),
    ("text that is not UTF-8", lambda: textfile.read_text("latin1.txt")),
    ("labels with a single class", lambda: labelled_text.check_classes(labelled_text.load_csv("one.csv"))),
    ("series shorter than window + horizon",
     lambda: windows.forecast_windows(np.arange(10.0), np.arange(10.0), window=8, horizon=3)),
    ("model file that does not exist", lambda: lk.load_model("missing.lstmkit")),
    ("truncated model file", lambda: lk.load_model("truncated.lstmkit")),
    ("tampered model file (one bit)", lambda: lk.load_model("tampered.lstmkit")),
    ("a pickle as model file", lambda: lk.load_model("model.pkl")),
    ("a Keras .h5 as model file", lambda: lk.load_model("model.h5")),
    ("a CSV as model file", lambda: lk.load_model("data.csv")),
    ("unknown data set", lambda: lk.datasets.fetch("imdb")),
    ("checkpoint_every without a checkpoint folder", lambda: fit(seq(), X, np.ones((4, 1)), checkpoint_every=2)),
    ("a checkpoint folder of an earlier run, without resume", lambda: resume(resume=False)),
    ("resuming with another batch size", lambda: resume(batch_size=4)),
    ("resuming another model's checkpoints", lambda: resume(seq(head=2), np.ones((4, 2)))),
    ("resuming where every checkpoint is damaged", lambda: resume(checkpoint_dir="damaged")),
]

CLI = [
    ("CSV that does not exist", ["classify", "train", "missing.csv"]),
    ("CSV with a ragged row", ["classify", "train", "ragged.csv"]),
    ("labels with a single class", ["classify", "train", "one.csv"]),
    ("non-numeric value in a series", ["forecast", "train", "series.csv", "--columns", "temp"]),
    ("series shorter than window + horizon",
     ["forecast", "train", "short.csv", "--columns", "temp", "--window", "50"]),
    ("a date column that is not there", ["forecast", "train", "short.csv", "--columns", "temp", "--date-column", "day"]),
    ("a date that cannot be read", ["forecast", "train", "dated.csv", "--columns", "temp", "--date-column", "day"]),
    ("text that is not UTF-8", ["generate", "train", "latin1.txt"]),
    ("truncated model file", ["generate", "sample", "--model", "run"]),
    ("a pickle as model file", ["inspect", "--model", "pickled", "--text", "hello"]),
    ("a bad option value", ["classify", "train", "data.csv", "--maxlen", "zero"]),
    ("unknown data set", ["data", "fetch", "imdb"]),
    ("--resume without --checkpoint-dir", ["classify", "train", "data.csv", "--resume"]),
]


def caught(fn, name):
    try:
        fn()
    except DOCUMENTED as e:
        return e
    raise AssertionError(f"no error raised for {name!r}")


def cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def test_every_bad_input_gets_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lk.initializers, "machine_memory", lambda: 24 << 30)   # the page names 24 GiB anywhere
    files()
    rows = ["## Through the Python API", "", "| case | error | message |", "|---|---|---|"]
    for name, fn in API + [(None, None)] + FILES:
        if fn is None:
            rows += ["", "## Files, through the readers and lk.load_model", "",
                     "| case | error | message |", "|---|---|---|"]
            continue
        e = caught(fn, name)
        msg = str(e)
        assert msg and "\n" not in msg and "Traceback" not in msg, (name, msg)
        assert len(msg) > 20, (name, msg)
        rows.append(f"| {cell(name)} | `{type(e).__name__}` | {cell(msg)} |")
    rows += ["", "## On the command line (stderr, exit status)", "", "| case | command | exit | stderr |",
             "|---|---|---|---|"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    for name, args in CLI:
        r = subprocess.run([sys.executable, "-m", "lstmkit", *args], capture_output=True, text=True, env=env,
                           timeout=300)
        lines = r.stderr.strip().splitlines()
        assert r.returncode in (1, 2) and len(lines) == 1 and "Traceback" not in r.stderr, (args, r.stderr)
        assert lines[0].startswith("lstmkit ") and ": error: " in lines[0], lines
        rows.append(f"| {cell(name)} | `lstmkit {' '.join(args)}` | {r.returncode} | {cell(lines[0])} |")
    page = HEAD + "\n".join(rows) + "\n"
    if os.environ.get("LSTMKIT_WRITE_DOCS"):
        DOC.write_text(page, encoding="utf-8")
    assert DOC.exists() and DOC.read_text(encoding="utf-8") == page, \
        "docs/errors.md is stale: regenerate it with LSTMKIT_WRITE_DOCS=1 pytest tests/test_bad_input.py"


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "r.csv").write_text("text,label\na,pos\nb,neg,extra\n")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    r = subprocess.run([sys.executable, "-m", "lstmkit", "classify", "train", str(tmp_path / "r.csv"), "--debug"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and "Traceback" in r.stderr and "expected 2 fields" in r.stderr


HEAD = """# Bad input and the errors it gets

Generated by `tests/test_bad_input.py`, which tries each case below and checks that it gets one clear
error of a documented type (`ValueError`, of which lstmkit's `DataError` is one, `TypeError`, `OSError`
for files that are not there, `RuntimeError` for a model used before `compile`), with a message naming
what was expected and what came. On the command line the same errors are one line on stderr and a
non-zero exit status (1 for bad data, 2 for a bad option); `--debug` shows the Python traceback.
Do not edit by hand: `LSTMKIT_WRITE_DOCS=1 pytest tests/test_bad_input.py` writes it anew.

"""
