"""`lstmkit classify` end to end through a subprocess on small generated data."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lstmkit", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=env, timeout=300)


def one_line_error(r, *words):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def make_csv(path, n=300, classes=("neg", "pos"), seed=0):
    rng = np.random.default_rng(seed)
    words = {"pos": "good great love happy superb".split(), "neg": "bad awful hate sad poor".split(),
             "meh": "okay fine average plain so".split()}
    filler = "the a film movie it was this".split()
    rows = ["text,label"]
    for _ in range(n):
        c = classes[rng.integers(len(classes))]
        toks = rng.choice(filler + words[c] * 2, size=7)
        rows.append(f"\"{' '.join(toks)}\",{c}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("cls")
    data = make_csv(d / "data.csv")
    out = d / "run"
    r = run_cli("classify", "train", data, "--maxlen", 10, "--epochs", 2, "--units", 8, "--embed-dim", 8,
                "--lr", 0.03, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    return data, out, r


def test_train_writes_model_metrics_and_plots(trained):
    _, out, r = trained
    assert f"outputs in {out}" in r.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert metrics["val_accuracy"] > 0.8             # the words give the class away
    assert set(metrics["validation"]["per_class"]) == {"neg", "pos"}
    for png in ("confusion.png", "history.png"):
        assert (out / png).read_bytes()[:8] == PNG
    meta = json.loads((out / "meta.json").read_text())
    assert meta["labels"] == ["neg", "pos"] and meta["tokenizer"]["kind"] == "word"
    import lstmkit as lk
    model = lk.load_model(str(out / "model.safetensors"))
    assert model.predict(np.zeros((1, 10), np.int64)).shape == (1, 2)
    line = [l for l in r.stdout.splitlines() if l.startswith("val_accuracy:")][0]
    assert 0 <= float(line.split()[1]) <= 1


def test_eval_and_predict(trained, tmp_path):
    data, out, _ = trained
    r = run_cli("classify", "eval", data, "--model", out, "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["accuracy"] > 0.8
    assert "confusion matrix" in r.stdout
    r = run_cli("classify", "predict", "--model", out / "model.safetensors", "--out", tmp_path / "p",
                stdin="a great happy love film\nawful sad bad hate\n")
    assert r.returncode == 0, r.stderr
    rows = [l.split("\t") for l in r.stdout.splitlines() if "\t" in l]
    assert [row[0] for row in rows] == ["pos", "neg"]
    assert all(0.5 <= float(row[1]) <= 1.0 for row in rows)
    assert (tmp_path / "p" / "predictions.tsv").exists()
    (tmp_path / "lines.txt").write_text("love love great\n\nhate awful\n", encoding="utf-8")
    r = run_cli("classify", "predict", "--model", out, "--input", tmp_path / "lines.txt", "--out", tmp_path / "p2")
    assert r.returncode == 0, r.stderr
    assert [l.split("\t")[0] for l in r.stdout.splitlines()] == ["pos", "neg"]   # blank line skipped


def test_multiclass_gru_bidirectional(tmp_path):
    data = make_csv(tmp_path / "d.csv", n=240, classes=("neg", "pos", "meh"))
    r = run_cli("classify", "train", data, "--maxlen", 8, "--epochs", 1, "--units", 6, "--embed-dim", 6,
                "--cell", "gru", "--bidirectional", "--out", tmp_path / "r", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert np.array(m["validation"]["confusion"]).shape == (3, 3)


def test_folder_layout_and_imdb_npz(tmp_path):
    for c, words in (("pos", "good great"), ("neg", "bad awful"), ("unsup", "whatever")):
        (tmp_path / "imdb" / c).mkdir(parents=True)
        for i in range(30):
            (tmp_path / "imdb" / c / f"{i}.txt").write_text(f"this film {words} {i}", encoding="utf-8")
    r = run_cli("classify", "train", tmp_path / "imdb", "--maxlen", 6, "--epochs", 1, "--units", 4,
                "--embed-dim", 4, "--out", tmp_path / "r1", "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r1" / "meta.json").read_text())["labels"] == ["neg", "pos"]

    x = np.empty(40, dtype=object)
    x[:] = [[1] + [5 + (i % 2)] * (3 + i % 4) for i in range(40)]
    y = np.array([i % 2 for i in range(40)])
    np.savez(tmp_path / "imdb.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    r = run_cli("classify", "train", tmp_path / "imdb.npz", "--max-tokens", 20, "--maxlen", 8, "--epochs", 2,
                "--units", 4, "--embed-dim", 4, "--lr", 0.05, "--out", tmp_path / "r2", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("classify", "eval", tmp_path / "imdb.npz", "--model", tmp_path / "r2", "--out", tmp_path / "e2")
    assert r.returncode == 0, r.stderr
    assert 0 <= json.loads((tmp_path / "e2" / "metrics.json").read_text())["accuracy"] <= 1


def test_bad_inputs_give_one_clear_line(tmp_path):
    one_line_error(run_cli("classify", "train", tmp_path / "missing.csv"), "missing.csv", "no such")
    (tmp_path / "empty.csv").write_text("")
    one_line_error(run_cli("classify", "train", tmp_path / "empty.csv"), "empty.csv", "empty")
    data = make_csv(tmp_path / "d.csv", n=20)
    one_line_error(run_cli("classify", "train", data, "--label-col", "sentiment"),
                   "d.csv", "line 1", "'sentiment'", "['text', 'label']")
    (tmp_path / "bad.csv").write_bytes(b"text,label\ngood film,pos\nbad \xd1 film,neg\n")
    one_line_error(run_cli("classify", "train", tmp_path / "bad.csv"), "bad.csv", "line 3", "UTF-8", "0xd1")
    (tmp_path / "one.csv").write_text("text,label\na,pos\nb,pos\nc,pos\n")
    one_line_error(run_cli("classify", "train", tmp_path / "one.csv"), "one.csv", "one class", "'pos'")
    (tmp_path / "ragged.csv").write_text("text,label\na,pos\nb,neg,extra\n")
    one_line_error(run_cli("classify", "train", tmp_path / "ragged.csv"), "line 3", "expected 2 fields")
    one_line_error(run_cli("classify", "train", data, "--maxlen", "zero"), "--maxlen", "positive integer")
    one_line_error(run_cli("classify", "predict", "--model", tmp_path / "nomodel"), "nomodel")


def test_replace_mode_survives_bad_bytes(tmp_path):
    rows = b"text,label\n" + b"".join(b"good \xd1 great %d,pos\nbad \xff awful %d,neg\n" % (i, i) for i in range(20))
    (tmp_path / "moji.csv").write_bytes(rows)
    r = run_cli("classify", "train", tmp_path / "moji.csv", "--encoding-errors", "replace", "--maxlen", 6,
                "--epochs", 1, "--units", 4, "--embed-dim", 4, "--out", tmp_path / "r", "--quiet")
    assert r.returncode == 0, r.stderr


def test_scores_per_class():
    from lstmkit.apps.scores import confusion_matrix, per_class
    m = confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], 2)
    assert m.tolist() == [[1, 1], [1, 2]]
    s = per_class(m, ["a", "b"])
    assert s["b"]["precision"] == pytest.approx(2 / 3) and s["b"]["recall"] == pytest.approx(2 / 3)
    assert s["a"]["support"] == 2
