"""`lstmkit forecast` end to end on generated CSVs and a statsmodels series."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lstmkit", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def one_line_error(r, *words):
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert all(w in lines[0] for w in words), lines[0]


def write_series(path, n=200):
    t = np.arange(n)
    temp = 10 + 5 * np.sin(2 * np.pi * t / 12)
    load = 3 + 0.5 * np.cos(2 * np.pi * t / 12)
    path.write_text("temp,load\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in zip(temp, load)))
    return path


def test_univariate_train_and_predict(tmp_path):
    csv = write_series(tmp_path / "s.csv")
    r = run_cli("forecast", "train", csv, "--columns", "temp", "--window", 12, "--season", 12, "--epochs", 3,
                "--units", 8, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("model", "last value", "seasonal naive (12)"):
        assert m["test"][name]["rmse"] >= 0 and m["test"][name]["mae"] >= 0
    assert m["test"]["seasonal naive (12)"]["rmse"] < 1e-6      # an exact seasonal series
    assert (tmp_path / "run" / "forecast.png").read_bytes()[:8] == PNG
    rmse = float(re.search(r"test_rmse: ([0-9.]+)", r.stdout).group(1))
    assert rmse == m["test"]["model"]["rmse"] or abs(rmse - m["test"]["model"]["rmse"]) < 1e-3
    r = run_cli("forecast", "predict", "--model", tmp_path / "run", csv, "--out", tmp_path / "p")
    assert r.returncode == 0, r.stderr
    rows = (tmp_path / "p" / "forecast.csv").read_text().splitlines()
    assert rows[0] == "step,temp" and len(rows) == 2 and 0 < float(rows[1].split(",")[1]) < 20


def test_multivariate_multistep(tmp_path):
    csv = write_series(tmp_path / "s.csv")
    r = run_cli("forecast", "train", csv, "--columns", "temp,load", "--target", "load", "--window", 8,
                "--horizon", 3, "--epochs", 2, "--units", 8, "--mode", "level", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["horizon"] == 3 and m["target"] == "load" and m["mode"] == "level"
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert len(meta["scaler"]["mean"]) == 2


def test_sunspots_dataset(tmp_path):
    r = run_cli("forecast", "train", "--dataset", "sunspots", "--window", 11, "--epochs", 2, "--units", 8,
                "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["source"] == "sunspots" and m["season"] == 11
    assert 0 < m["test"]["model"]["rmse"] < 200          # sunspot numbers are in the tens to hundreds


def test_bad_inputs(tmp_path):
    csv = write_series(tmp_path / "s.csv", n=40)
    one_line_error(run_cli("forecast", "train", tmp_path / "none.csv", "--columns", "x"), "none.csv")
    one_line_error(run_cli("forecast", "train", csv, "--columns", "pressure"), "s.csv", "'pressure'", "temp")
    one_line_error(run_cli("forecast", "train", csv, "--columns", "temp", "--target", "load"), "load")
    one_line_error(run_cli("forecast", "train", csv), "--columns")
    one_line_error(run_cli("forecast", "train", csv, "--columns", "temp", "--window", 100), "too short")
    (tmp_path / "txt.csv").write_text("temp\n1.0\n2.0\nwarm\n")
    one_line_error(run_cli("forecast", "train", tmp_path / "txt.csv", "--columns", "temp"),
                   "line 4", "expected a number", "'warm'")


def test_relative_windows_round_trip():
    from lstmkit.apps.forecast import from_relative, step_scale, to_relative
    X = np.array([[[1.0, 10.0], [2.0, 12.0], [4.0, 13.0]]])                  # (1, 3, 2)
    Y = np.array([[5.0, 7.0]])                                               # target column 0
    dscale = np.array([2.0, 1.0])
    Xr, Yr, anchor = to_relative(X, 0, dscale, Y)
    assert Xr[0, -1].tolist() == [0.0, 0.0] and Xr[0, 0].tolist() == [-1.5, -3.0]
    assert Yr.tolist() == [[0.5, 1.5]]
    assert np.allclose(from_relative(Yr, anchor, dscale[0]), Y)
    assert step_scale(np.array([[0.0], [1.0], [3.0]])).tolist() == [0.5]
