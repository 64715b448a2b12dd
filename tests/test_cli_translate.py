"""`lstmkit translate train|eval|translate` end to end on the small fixture,
and its one-line errors."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO / "tests" / "data" / "pairs_de_en.tsv"
PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lstmkit", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tr") / "run"
    r = run_cli("translate", "train", PAIRS, "--src-col", "1", "--tgt-col", "0", "--tokens", "word",
                "--embed-dim", "16", "--units", "32", "--epochs", "25", "--batch-size", "16", "--lr", "0.01", "--dropout", "0",
                "--beam", "3", "--val-fraction", "0.1", "--test-fraction", "0.1", "--quiet", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


@pytest.mark.slow
def test_train_writes_the_run_folder(run):
    names = set(os.listdir(run))
    assert {"model.safetensors", "meta.json", "src.vocab.json", "tgt.vocab.json", "metrics.json",
            "samples.txt", "history.png", "splits", "attention"} <= names
    assert sorted(os.listdir(run / "splits")) == ["test.tsv", "train.tsv", "val.tsv"]
    m = json.loads((run / "metrics.json").read_text())
    for key in ("greedy", "beam", "copy_baseline"):
        assert set(m[key]) == {"bleu", "chrf"}
    # the grammar is easy: the model must beat copying the source by far
    assert m["beam"]["bleu"] > m["copy_baseline"]["bleu"] + 20
    assert m["history"]["val_loss"][-1] < m["history"]["val_loss"][0]
    # the unsmoothed validation NLL of the final weights: better than a uniform guess
    assert 0 < m["history"]["final_val_nll"] < math.log(m["tgt_vocab"])
    pngs = [run / "history.png"] + [Path(p) for p in m["attention_maps"]]
    assert len(pngs) >= 2 and all(p.read_bytes()[:8] == PNG for p in pngs)
    samples = (run / "samples.txt").read_text()
    assert samples.count("source:") >= 10 and "reference:" in samples and "output:" in samples


@pytest.mark.slow
def test_translate_stdin_and_eval(run, tmp_path):
    r = run_cli("translate", "--model", run, stdin="Wir kaufen das Buch.\nEr hört die Katze heute.\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and all(lines)
    r2 = run_cli("translate", "translate", "--model", run, "--beam", "1", "Wir kaufen das Buch.")
    assert r2.returncode == 0 and r2.stdout.strip()
    e = run_cli("translate", "eval", "--model", run, "--out", tmp_path / "ev", "--quiet")
    assert e.returncode == 0, e.stderr
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["command"] == "eval" and m["test_pairs"] > 0 and "beam" in m


@pytest.mark.slow
@pytest.mark.parametrize("stdin, message", [
    ("Wir kaufen das Buch.\n\n", "line 2: empty line"),
    ("Мы покупаем книгу.\n", "line 1: .* unknown to the source tokenizer \\(script CYRILLIC"),
])
def test_bad_input_to_translate(run, stdin, message):
    import re
    r = run_cli("translate", "--model", run, stdin=stdin)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and re.search(message, r.stderr), r.stderr


@pytest.mark.parametrize("args, message", [
    (["translate", "train"], "give a file of sentence pairs, or --ding"),
    (["translate", "--model", "nowhere"], "nowhere: no such model file"),
    (["translate"], "give an action"),
    (["translate", "train", PAIRS, "--max-words", "1"], "no pair has at most 1 words on both sides"),
    (["translate", "train", PAIRS, "--input-feeding", "--checkpoint-dir", "ck"],
     "checkpoints come with Model.fit"),
])
def test_one_line_errors(args, message):
    r = run_cli(*args, stdin="")
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr


def test_one_column_file(tmp_path):
    f = tmp_path / "one.tsv"
    f.write_text("Guten Morgen.\nGute Nacht.\n", encoding="utf-8")
    r = run_cli("translate", "train", f, "--quiet", "--out", tmp_path / "x")
    assert r.returncode == 1
    assert r.stderr.strip() == (f"lstmkit translate train: error: {f}, line 1: 1 column; expected at least 2 "
                                f"(2 fields, delimiter ',')")
