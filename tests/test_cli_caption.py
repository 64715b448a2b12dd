"""`lstmkit caption train|eval|describe` on a small generated set: the run folder,
the scores beside the baselines, and bad input refused in one line."""
import json
import os
import subprocess
import sys

import pytest

from caption_fixture import draw, shapes_set, write_csv
from lstmkit.cli.main import main


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMKIT_DATA", str(tmp_path / "cache"))


@pytest.fixture
def shapes_csv(tmp_path):
    rows = shapes_set(str(tmp_path / "img"), copies=6)
    return str(write_csv(tmp_path / "img" / "caps.csv", rows)), str(tmp_path / "img"), rows


def _train(csv, out, *extra):
    return main(["caption", "train", "--data", f"csv:{csv}", "--epochs", "60", "--units", "32",
                 "--embed-dim", "16", "--min-count", "1", "--lr", "0.01", "--dropout", "0",
                 "--test-split", "0.25", "--val-split", "0.1", "--samples", "4", "--out", str(out),
                 "--quiet", *extra])


def test_train_eval_describe(tmp_path, shapes_csv, capsys):
    csv, folder, rows = shapes_csv
    out = tmp_path / "run"
    assert _train(csv, out) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m) >= {"model", "most_frequent", "nearest_neighbour", "examples", "train_seconds"}
    assert m["images"] == {"train": 23, "val": 4, "test": 9}
    # colour and shape are what HOG + colour histogram see: the model names them
    assert m["model"]["bleu1"] > m["most_frequent"]["bleu1"]
    assert m["model"]["bleu2"] > m["most_frequent"]["bleu2"]
    assert m["model"]["object_share"] > m["most_frequent"]["object_share"]
    tsv = (out / "captions.tsv").read_text().splitlines()
    assert tsv[0] == "image\tgenerated\tnearest_neighbour\treferences" and len(tsv) == 10
    capsys.readouterr()
    assert main(["caption", "eval", str(out), "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    again = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert again["model"] == m["model"]                           # the same test split, same captions
    other = shapes_set(str(tmp_path / "other"), copies=1)
    ocsv = write_csv(tmp_path / "other" / "o.csv", [(n, c.replace("A ", "One ")) for n, c in other])
    assert main(["caption", "eval", str(out), "--data", f"csv:{ocsv}", "--out", str(tmp_path / "ev2"),
                 "--quiet"]) == 0
    m2 = json.loads((tmp_path / "ev2" / "metrics.json").read_text())
    assert len((tmp_path / "ev2" / "captions.tsv").read_text().splitlines()) == 1 + len(other)
    assert m2["model"]["object_share"] > 0.5 and m2["data"] == f"csv:{ocsv}"
    capsys.readouterr()
    new = draw(str(tmp_path / "new.png"), "blue", "disc", seed=99)
    assert main(["caption", "describe", "--model", str(out), new]) == 0
    path, caption = capsys.readouterr().out.strip().split("\t")
    assert path == new and "blue" in caption


def test_other_data_and_chinese_characters(tmp_path, shapes_csv):
    csv, folder, rows = shapes_csv
    zh = {"red": "红", "green": "绿", "blue": "蓝", "square": "方块", "disc": "圆盘"}
    zrows = [(n, zh[c.split()[1]] + "色" + zh[c.split()[2].rstrip(".")] + "。") for n, c in rows]
    zcsv = write_csv(tmp_path / "img" / "zh.csv", zrows)
    out = tmp_path / "zh"
    assert _train(str(zcsv), out, "--lang", "zh") == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["vocab"]["tokens"] == "char"
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"]["object_share"] is None and m["model"]["bleu1"] > 50
    assert os.path.getsize(out / "contact_sheet.png") > 10000


def _one_line_error(args, capsys, code=1):
    assert main(args) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_bad_input_one_line(tmp_path, shapes_csv, capsys):
    csv, folder, rows = shapes_csv
    missing = write_csv(tmp_path / "missing.csv", rows[:3] + [("nowhere.png", "A hole.")])
    err = _one_line_error(["caption", "train", "--data", f"csv:{missing}", "--images", folder], capsys)
    assert "1 caption line(s) name images that do not exist" in err and "line 5" in err
    empty = write_csv(tmp_path / "empty.csv", rows[:3] + [(rows[0][0], "")])
    err = _one_line_error(["caption", "train", "--data", f"csv:{empty}", "--images", folder], capsys)
    assert "line 5: empty caption" in err
    (tmp_path / "img" / "bad.png").write_bytes(b"garbage")
    bad = write_csv(tmp_path / "img" / "bad.csv", rows[:5] + [("bad.png", "A broken image.")])
    err = _one_line_error(["caption", "train", "--data", f"csv:{bad}", "--quiet"], capsys)
    assert "bad.png: cannot read it as an image" in err
    err = _one_line_error(["caption", "train", "--data", "parquet:x"], capsys)
    assert "expected one of tuxpaint, emoji" in err
    err = _one_line_error(["caption", "train", "--data", f"csv:{csv}", "--encoder", "hog", "--arch",
                           "attention", "--quiet"], capsys)
    assert "the attention model needs places" in err
    err = _one_line_error(["caption", "describe", "--model", str(tmp_path / "norun"), "x.png"], capsys)
    assert "no such model file" in err


def test_describe_missing_image(tmp_path, shapes_csv, capsys):
    csv, folder, rows = shapes_csv
    out = tmp_path / "run"
    assert main(["caption", "train", "--data", f"csv:{csv}", "--epochs", "1", "--units", "8",
                 "--embed-dim", "4", "--pca", "5", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "meta.json").read_text())["pca"] == 5
    capsys.readouterr()
    assert main(["caption", "describe", "--model", str(out), os.path.join(folder, rows[0][0])]) == 0
    err = _one_line_error(["caption", "describe", "--model", str(out), str(tmp_path / "gone.png")], capsys)
    assert "gone.png: no such image file" in err


def test_torchvision_refusal_from_the_command_line(tmp_path, shapes_csv):
    """In a fresh process: torchvision is not importable beside torch 2.13.0 here."""
    csv, folder, rows = shapes_csv
    r = subprocess.run([sys.executable, "-m", "lstmkit", "caption", "train", "--data", f"csv:{csv}",
                        "--encoder", "torchvision:resnet18", "--out", str(tmp_path / "tv")],
                       capture_output=True, text=True, env={**os.environ, "LSTMKIT_DATA": str(tmp_path / "c")})
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1
    assert "torchvision" in r.stderr and "onnx:PATH" in r.stderr
