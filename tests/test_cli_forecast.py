"""`lstmkit forecast` end to end on generated CSVs and a statsmodels series."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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
                "--units", 8, "--baselines", "naive,anomaly", "--interval", 0, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("model", "last value", "seasonal naive (12)", "seasonal anomaly (12)"):
        assert m["test"][name]["rmse"] >= 0 and m["test"][name]["mae"] >= 0
    assert m["test"]["seasonal naive (12)"]["rmse"] < 1e-6      # an exact seasonal series
    assert m["test"]["seasonal anomaly (12)"]["rmse"] < 1e-3
    assert m["best_baseline"] in ("seasonal naive (12)", "seasonal anomaly (12)") and m["intervals"] == {}
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
                "--horizon", 3, "--epochs", 2, "--units", 8, "--mode", "level", "--baselines", "naive",
                "--interval", 0, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["horizon"] == 3 and m["target"] == "load" and m["mode"] == "level"
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert len(meta["scaler"]["mean"]) == 2


def test_sunspots_dataset(tmp_path):
    r = run_cli("forecast", "train", "--dataset", "sunspots", "--window", 11, "--epochs", 2, "--units", 8,
                "--baselines", "naive", "--interval", 0, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["source"] == "sunspots" and m["season"] == 11 and m["test_start"] == "1947-01-01"
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


def write_dated(path, n=120, fmt="%Y-%m-%d"):
    from datetime import date
    t = np.arange(n)
    days = [date(2010 + (k // 12), k % 12 + 1, 1).strftime(fmt) for k in t]
    load = 100 + 0.2 * t + 8 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(size=n)
    path.write_text("month,load\n" + "".join(f"{d},{v:.3f}\n" for d, v in zip(days, load)))
    return path


def test_dates_intervals_recursive_and_predict(tmp_path):
    csv = write_dated(tmp_path / "m.csv")
    r = run_cli("forecast", "train", csv, "--columns", "load", "--date-column", "month", "--season", 12,
                "--window", 12, "--horizon", 3, "--strategy", "recursive", "--mode", "seasonal", "--epochs", 4,
                "--units", 8, "--baselines", "naive,anomaly", "--interval", 0.8, "--out", tmp_path / "run",
                "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["strategy"] == "recursive" and m["mode"] == "seasonal" and m["features"] == ["season_sin", "season_cos"]
    assert m["quantiles"] == [0.1, 0.5, 0.9] and m["test_start"] == "2018-01-01"
    cov = m["intervals"]["model"]
    assert 0 <= cov["coverage"] <= 1 and len(cov["per_step"]) == 3 and cov["width"] > 0
    assert len(m["test"]["model"]["per_step"]) == 3
    assert "interval_coverage:" in r.stdout
    for png in ("forecast.png", "forecast-h3.png", "history.png"):
        assert (tmp_path / "run" / png).read_bytes()[:8] == PNG
    # a recursive model forecasts any number of steps; the interval covers the trained horizon
    r = run_cli("forecast", "predict", "--model", tmp_path / "run", csv, "--horizon", 5, "--out", tmp_path / "p")
    assert r.returncode == 0, r.stderr
    rows = (tmp_path / "p" / "forecast.csv").read_text().splitlines()
    assert rows[0] == "step,date,load,lower_0.1,upper_0.9" and len(rows) == 6
    assert rows[1].startswith("1,2020-01-01,") and rows[5].startswith("5,2020-05-01,")
    point, lower, upper = [float(x) for x in rows[1].split(",")[2:]]
    assert lower < upper and 90 < point < 140
    assert rows[5].endswith(",,")                                          # no interval past step 3
    assert (tmp_path / "p" / "forecast.png").read_bytes()[:8] == PNG


def test_date_and_length_errors(tmp_path):
    csv = write_dated(tmp_path / "m.csv", n=40)
    one_line_error(run_cli("forecast", "train", csv, "--columns", "load", "--date-column", "when"),
                   "m.csv", "line 1", "'when'", "month")
    bad = tmp_path / "bad.csv"
    bad.write_text("month,load\n2020-01-01,1\n2020-02-01,2\nFeb 2020,3\n")
    one_line_error(run_cli("forecast", "train", bad, "--columns", "load", "--date-column", "month"),
                   "bad.csv, line 4", "'Feb 2020'", "as a date")
    one_line_error(run_cli("forecast", "train", csv, "--columns", "load", "--date-column", "month",
                           "--date-format", "%d.%m.%Y"), "line 2", "%d.%m.%Y")
    one_line_error(run_cli("forecast", "train", csv, "--columns", "load", "--window", 36, "--horizon", 6),
                   "m.csv", "40 steps", "too short", "window=36", "horizon=6", "at least 42")
    one_line_error(run_cli("forecast", "train", csv, "--columns", "load", "--window", 24, "--mode", "seasonal",
                           "--season", 12, "--horizon", 6), "too short", "a season of history", "at least 42")
    one_line_error(run_cli("forecast", "train", csv, "--columns", "load", "--mode", "seasonal"), "needs a season")
    one_line_error(run_cli("forecast", "train", csv, "--columns", "load", "--baselines", "prophet"),
                   "unknown baselines", "sarima")
    one_line_error(run_cli("forecast", "train", csv, "--columns", "load", "--interval", 1.5), "--interval", "(0, 1)")


@pytest.mark.slow
def test_every_baseline_on_a_dataset(tmp_path, capsys):
    """The statsmodels baselines through the command line, on the quarterly unemployment rate.
    In this process (not a subprocess): the 36 SARIMA fits take seconds of CPU, and on a shared machine a
    child `lstmkit` process may be reniced and starved past any wall-clock limit."""
    from lstmkit.cli.main import main
    rc = main(["forecast", "train", "--dataset", "unemp", "--window", "8", "--horizon", "2", "--epochs", "3",
               "--units", "8", "--out", str(tmp_path / "run"), "--quiet"])
    r = capsys.readouterr()
    assert rc == 0, r.err
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("last value", "seasonal naive (4)", "seasonal anomaly (4)", "ETS", "SARIMA"):
        assert name in m["test"] and len(m["test"][name]["per_step"]) == 2
    assert m["baselines"]["SARIMA"]["models tried"] == 36 and m["baselines"]["ETS"]["model"].startswith("ETS(")
    assert set(m["intervals"]) == {"model", "model (uncalibrated)", "SARIMA"} and m["calibration"] == "conformal"
    assert 0.5 < m["intervals"]["SARIMA"]["coverage"] <= 1.0
    assert "best baseline" in r.out


def test_ensemble_window_mean_and_conformal_interval(tmp_path, capsys):
    """--ensemble 2 --mode mean with the conformal interval, and predict with both (in this process)."""
    from lstmkit.apps import forecast_model as fm
    from lstmkit.cli.main import main
    import lstmkit as lk
    csv = write_dated(tmp_path / "m.csv")
    rc = main(["forecast", "train", str(csv), "--columns", "load", "--date-column", "month", "--season", "12",
               "--window", "12", "--horizon", "2", "--mode", "mean", "--ensemble", "2", "--epochs", "3",
               "--units", "4", "--baselines", "naive", "--interval", "0.8", "--out", str(tmp_path / "run"),
               "--quiet"])
    r = capsys.readouterr()
    assert rc == 0, r.err
    run = tmp_path / "run"
    m = json.loads((run / "metrics.json").read_text())
    meta = json.loads((run / "meta.json").read_text())
    assert m["mode"] == "mean" and m["ensemble"] == 2 and meta["ensemble"] == 2
    assert {"model (member 1 of 2, seed 0)", "model (member 2 of 2, seed 1)"} <= set(m["test"])
    assert (run / "ensemble-1.safetensors").exists() and not (run / "ensemble-2.safetensors").exists()
    # the calibrated interval is the raw one widened by the margin of each step, on both sides
    margin = np.array(meta["conformal_margin"])
    raw, cal = m["intervals"]["model (uncalibrated)"], m["intervals"]["model"]
    assert margin.shape == (2,) and m["calibration"] == "conformal"
    for h in range(2):
        assert np.isclose(cal["per_step"][h]["width"], raw["per_step"][h]["width"] + 2 * margin[h], atol=1e-6)
    # predict: the mean of the two networks, and the calibrated band
    assert main(["forecast", "predict", "--model", str(run), str(csv), "--out", str(tmp_path / "p")]) == 0
    rows = (tmp_path / "p" / "forecast.csv").read_text().splitlines()
    assert rows[0] == "step,date,load,lower_0.1,upper_0.9" and len(rows) == 3
    from lstmkit.apps.forecast import load_series
    from lstmkit.data.calendar import Calendar
    values, _, _, dates, _ = load_series(csv, columns=["load"], date_column="month")
    frame = fm.Frame(values, 0, len(values), Calendar(len(values), 12, dates, meta["features"]), "mean",
                     state=meta, window=12)
    o = np.array([len(values) - 1])
    members = [lk.load_model(str(run / "model.safetensors")), lk.load_model(str(run / "ensemble-1.safetensors"))]
    point = np.mean([fm.forecast_direct(x, frame, o, 12)[0] for x in members], axis=0)
    q = fm.forecast_quantiles(lk.load_model(str(run / "quantiles.safetensors")), frame, o, 12, 3)[0]
    for h in range(2):
        got = [float(x) for x in rows[h + 1].split(",")[2:]]
        assert np.allclose(got, [point[h], q[h, 0] - margin[h], q[h, 2] + margin[h]], rtol=1e-5)
    # calibration none: no margin, one interval entry for the model
    rc = main(["forecast", "train", str(csv), "--columns", "load", "--season", "12", "--window", "12",
               "--epochs", "2", "--units", "4", "--baselines", "naive", "--calibration", "none",
               "--out", str(tmp_path / "raw"), "--quiet"])
    assert rc == 0
    m = json.loads((tmp_path / "raw" / "metrics.json").read_text())
    assert "model (uncalibrated)" not in m["intervals"] and m["calibration"] == "none"
    assert json.loads((tmp_path / "raw" / "meta.json").read_text())["conformal_margin"] == [0.0]


def test_linear_skip_and_weight_decay(tmp_path, capsys):
    """--skip K --weight-decay: the network with a linear skip, trained with AdamW; predict reads it back."""
    from lstmkit.cli.main import main
    import lstmkit as lk
    csv = write_dated(tmp_path / "m.csv")
    rc = main(["forecast", "train", str(csv), "--columns", "load", "--date-column", "month", "--season", "12",
               "--window", "12", "--horizon", "2", "--skip", "12", "--weight-decay", "0.01", "--epochs", "3",
               "--units", "4", "--baselines", "naive", "--interval", "0", "--out", str(tmp_path / "run"), "--quiet"])
    r = capsys.readouterr()
    assert rc == 0, r.err
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["skip"] == 12 and m["weight_decay"] == 0.01
    model = lk.load_model(str(tmp_path / "run" / "model.safetensors"))
    assert model.params["ar_skip/W"].shape == (12 * 3, 2) and model.params["ar_skip/W"].any()   # load + month sin/cos
    assert main(["forecast", "predict", "--model", str(tmp_path / "run"), str(csv), "--out", str(tmp_path / "p")]) == 0
    assert len((tmp_path / "p" / "forecast.csv").read_text().splitlines()) == 3
    capsys.readouterr()
    rc = main(["forecast", "train", str(csv), "--columns", "load", "--window", "12", "--skip", "13",
               "--out", str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "skip must be a whole number of steps from 0 to the window (12); got 13" in err[0]
