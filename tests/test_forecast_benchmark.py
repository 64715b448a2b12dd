"""The script behind the forecasting table runs end to end (tiny settings, one series)."""
import json

import numpy as np
import pytest

from example_scripts import load_example


TINY = ["--series", "unemp", "--seeds", "2", "--folds", "2", "--epochs", "2", "--patience", "1"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The LSTM and GRU on unemp, tiny settings (shared by the two tests: each has its own time limit)."""
    out = tmp_path_factory.mktemp("bench")
    bench = load_example("forecast-statsmodels/benchmark.py", "forecast_benchmark")
    bench.main(TINY + ["--out", str(out)])
    return bench, out


@pytest.mark.slow
def test_benchmark_writes_its_tables(first_run):
    bench, tmp_path = first_run
    doc = json.loads((tmp_path / "results.json").read_text())
    r = doc["series"]["unemp"]
    assert r["horizon"] == 4 and r["test_origins"] == {"1": 41, "4": 38}
    assert set(r["baselines"]) == {"last value", "seasonal naive (4)", "seasonal anomaly (4)", "ETS", "SARIMA"}
    for cell in ("lstm", "gru"):
        net = r["networks"][cell]
        assert len(net["h1"]) == 2 and len(net["direct"]) == 2
        assert net["config"]["mode"] in ("relative", "mean", "seasonal", "level")
    assert len(r["networks"]["gru"]["selection"]) == 20 + 3
    # every selection scored with each fold's statistics from before its block (the protocol, recorded)
    assert doc["settings"]["fold_stats"] == "before_block"
    assert all(r["networks"][c]["fold_stats"] == "before_block" for c in ("lstm", "gru"))
    # the LSTM also tries a longer window (and the window mean, unless stage 1 chose seasonal differences),
    # then 8/16/32/64 units x dropout 0/0.2
    lstm = r["networks"]["lstm"]
    stage = [row["stage"] for row in lstm["selection"]]
    assert stage.count(1) == 20 and stage.count(2) == 7 and stage.count("1b") in (1, 3)
    # (the window mean, and each window scaled by itself, unless stage 1 chose seasonal differences)
    if stage.count("1b") == 3:
        assert [row["mode"] for row in lstm["selection"] if row["stage"] == "1b"][1:] == ["mean", "scaled"]
    assert any(row["window"] == 32 for row in lstm["selection"])
    # then (stage 3) the linear skip over the last 5 steps (season + 1), over the whole window, over 5 steps of a
    # window of 12 (three seasons) unless the window is 12 already; then weight decay 0.01 and 0.1
    three = [row for row in lstm["selection"] if row["stage"] == 3]
    assert len(three) in (4, 5) and {row["weight_decay"] for row in three[-2:]} == {0.01, 0.1}
    assert {row["skip"] for row in three[:-2]} >= {5} and all(row["skip"] > 0 for row in three[:-2])
    assert {"skip", "weight_decay", "lr", "lr_halflife"} <= set(lstm["config"])
    # then (stage 4) a lower learning rate, or the run's halved every 25 epochs
    four = [(row["lr"], row["lr_halflife"]) for row in lstm["selection"] if row["stage"] == 4]
    assert four == [(0.002, 0), (0.001, 0), (0.0, 25)]
    assert lstm["config"] in [{k: row[k] for k in lstm["config"]} for row in lstm["selection"]]
    assert len(lstm["intervals"]) == 2 and len(lstm["intervals_calibrated"]) == 2
    assert all(len(c["margin"]) == 4 for c in lstm["intervals_calibrated"])
    md = (tmp_path / "results.md").read_text()
    assert "| unemp |" in md and "### Does the LSTM match" in md and "SARIMA(" in md
    assert (tmp_path / "unemp.png").read_bytes()[:4] == b"\x89PNG"
    # runs over parts of the series join into one table
    bench.main(["--combine", str(tmp_path), "--out", str(tmp_path / "all")])
    joined = json.loads((tmp_path / "all" / "results.json").read_text())
    assert list(joined["series"]) == ["unemp"] and joined["series"]["unemp"] == r
    assert (tmp_path / "all" / "results.md").read_text() == md


@pytest.mark.slow
def test_hybrid_and_runs_over_different_cells(first_run):
    bench, tmp_path = first_run
    r = json.loads((tmp_path / "results.json").read_text())["series"]["unemp"]
    # runs over different cells of one series (SARIMA refitted with the first run's orders only: same errors)
    cuts, frame = [], bench.Bench.frame

    def spy(self, v, cut, cal_args, cfg):
        cuts.append(cut)
        return frame(self, v, cut, cal_args, cfg)

    bench.Bench.frame = spy
    try:
        bench.main(TINY + ["--cells", "gru,hybrid", "--rescore", "lstm", "--reuse-stage1", str(tmp_path / "results.json"),
                           "--out", str(tmp_path / "gru")])
    finally:
        bench.Bench.frame = frame
    again = json.loads((tmp_path / "gru" / "results.json").read_text())["series"]["unemp"]
    assert again["baselines"] == r["baselines"] and "refitted" in again["baseline_info"]["SARIMA"]
    bench.main(["--combine", str(tmp_path), str(tmp_path / "gru"), "--out", str(tmp_path / "mixed")])
    mixed = json.loads((tmp_path / "mixed" / "results.json").read_text())["series"]["unemp"]["networks"]
    assert mixed["lstm"] == r["networks"]["lstm"] and len(mixed["gru"]["h1"]) == 2
    # the hybrid: ETS or SARIMA + an LSTM on its one-step errors; its own search (base x window x units) on the
    # networks' validation blocks, the base refitted before each block
    hyb = mixed["hybrid"]
    c = hyb["config"]
    assert len(hyb["selection"]) == 2 * 2 * 3 and {r["window"] for r in hyb["selection"]} == {4, 8}
    best = min(hyb["selection"], key=lambda r: r["validation_rmse"])
    assert (c["base"], c["window"], c["units"]) == (best["base"], best["window"], best["units"])
    assert len(hyb["h1"]) == 2 and hyb["base_h1"] == r["baselines"][c["base"]]["h1"]
    assert len(hyb["fold_rmse"]) == 2 and hyb["validation_rmse"] == pytest.approx(np.mean(hyb["fold_rmse"]))
    # fold k's base is fitted on everything before its block: an ETS fitted here on the same steps forecasts
    # the block with the same errors
    from lstmkit.apps import baselines as bl
    from lstmkit.data.series import load_dataset
    y = load_dataset("unemp")[0][:, 0]
    cut = len(y) - r["test_origins"]["1"]
    block = max(2, int(round(cut * 0.1)))
    for k in range(2):
        end = cut - k * block
        ets = bl.ETS().fit(y[:end - block], 4)
        origins = np.arange(end - block - 1, end - 1)
        fc = ets.forecast(y[:end], origins, 1)[:, 0]
        assert hyb["base_fold_rmse"]["ETS"][k] == pytest.approx(np.sqrt(np.mean((y[origins + 1] - fc) ** 2)))
    assert hyb["base_validation_rmse"]["ETS"] == pytest.approx(np.mean(hyb["base_fold_rmse"]["ETS"]))
    # --rescore lstm: the first run's chosen LSTM scored again on the same folds, each frame's statistics from the
    # steps before its block (the selection's frames end with the block)
    re = mixed["lstm_rescored"]
    assert re["config"] == r["networks"]["lstm"]["config"] and len(re["fold_rmse"]) == 2
    lstm_val = min(x["validation_rmse"] for x in r["networks"]["lstm"]["selection"])
    assert re["validation_rmse_with_block"] == lstm_val
    # the first run's selection already used statistics from before each block: the rescore reproduces it
    assert re["validation_rmse"] == pytest.approx(lstm_val, rel=1e-9)
    assert {cut - block, cut - 2 * block} <= set(cuts) and cut - 3 * block not in cuts
    assert len(hyb["base_fold_errors"]) == 2 and hyb["base_fold_errors"][0]["first_step"] == 10
    md = (tmp_path / "mixed" / "results.md").read_text()
    assert "The pure LSTM matches or beats the best classical method on" in md
    assert "### The hybrid: an LSTM on the one-step errors" in md
    assert f"| {c['base']} + LSTM({c['units']}), window {c['window']} |" in md
    assert "### One forecaster per series, chosen on validation" in md and "against every classical method" in md
    # both networks were selected leak-free: each shows its own selection's score and takes part
    gru_val = min(x["validation_rmse"] for x in r["networks"]["gru"]["selection"])
    assert f"| unemp | {lstm_val:.4g} | {gru_val:.4g} | {hyb['validation_rmse']:.4g} |" in md
    # the stage-1 scores were taken from the first run, not trained again
    gru = json.loads((tmp_path / "gru" / "results.json").read_text())["series"]["unemp"]["networks"]["gru"]
    first = [row for row in gru["selection"] if row["stage"] == 1]
    assert len(first) == 20 and all(row["reused"] for row in first)
    assert [row["validation_rmse"] for row in first] == \
        [row["validation_rmse"] for row in r["networks"]["gru"]["selection"] if row["stage"] == 1]
    # the same configuration chosen: the first run's test results, after seed 0's one-step model reproduced them
    assert gru["config"] == r["networks"]["gru"]["config"] and "test_reused" in gru
    assert gru["h1"] == r["networks"]["gru"]["h1"] and gru["direct"] == r["networks"]["gru"]["direct"]


def test_learning_rate_options():
    bench = load_example("forecast-statsmodels/benchmark.py", "forecast_benchmark")
    b = bench.Bench(type("A", (), {"lr": 0.005, "batch_size": 32})())
    assert b.rate({}, 100) == 0.005 and b.rate({"lr": 0.001, "lr_halflife": 0}, 100) == 0.001
    s = b.rate({"lr": 0.0, "lr_halflife": 25}, 70)      # 70 windows: 3 updates an epoch -> halves every 75 updates
    assert s(0) == pytest.approx(0.005) and s(75) == pytest.approx(0.0025) and s(150) == pytest.approx(0.00125)
    # old configurations (no learning-rate keys) keep their keys: their cached scores stay reusable
    old = {"window": 12, "mode": "level", "deseason": False, "features": [], "units": 32, "dropout": 0.0}
    assert bench.key(old) == bench.key({**old, "skip": 0, "weight_decay": 0.0, "lr": 0.0, "lr_halflife": 0})


def test_reuse_takes_no_score_of_the_leaky_protocol(tmp_path):
    """--reuse-stage1 reuses validation scores only of networks selected with fold statistics from before
    each block; of an earlier, leaky selection (no "fold_stats") only its rescored choice."""
    bench = load_example("forecast-statsmodels/benchmark.py", "forecast_benchmark")
    settings = {"folds": 3, "epochs": 200, "patience": 20, "batch_size": 32, "lr": 0.005, "val_fraction": 0.1,
                "test_fraction": 0.2}
    row = lambda w, v: {"window": w, "mode": "level", "deseason": False, "features": [], "units": 32,
                        "dropout": 0.0, "validation_rmse": v, "fold_rmse": [v] * 3, "epochs": [5] * 3, "stage": 1}
    leaky = {"config": {**row(11, 0)}, "selection": [row(11, 1.0), row(22, 2.0)]}
    rescored = {"config": {k: v for k, v in row(11, 0).items() if k in bench.CONFIG}, "validation_rmse": 1.5,
                "fold_rmse": [1.5] * 3, "epochs": [6] * 3, "validation_rmse_with_block": 1.0}
    fair = {**leaky, "fold_stats": bench.FOLD_STATS}
    doc = {"settings": settings, "series": {"sunspots": {"networks": {"lstm": leaky, "lstm_rescored": rescored,
                                                                       "gru": leaky}}}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    a = type("A", (), {**settings, "reuse_stage1": str(path)})()
    b = bench.Bench(a)
    got = b.cached("sunspots", "lstm")                   # leaky selection: only the rescored choice, its fair score
    assert list(got) == [bench.key(row(11, 0))] and got[bench.key(row(11, 0))]["validation_rmse"] == 1.5
    assert b.cached("sunspots", "gru") == {}             # leaky and not rescored: nothing
    doc["series"]["sunspots"]["networks"]["gru"] = fair  # selected by this protocol: all its rows
    path.write_text(json.dumps(doc))
    got = b.cached("sunspots", "gru")
    assert sorted(r["validation_rmse"] for r in got.values()) == [1.0, 2.0]
    # another run's settings are refused
    path.write_text(json.dumps({**doc, "settings": {**settings, "folds": 2}}))
    with pytest.raises(SystemExit, match="other settings"):
        b.cached("sunspots", "gru")


def test_verdict_and_the_choice_between_lstm_and_hybrid():
    bench = load_example("forecast-statsmodels/benchmark.py", "forecast_benchmark")
    assert [bench.verdict(x, 1.0) for x in (0.9, 1.0, 1.02, 1.021)] == ["beats", "matches", "matches", "loses"]
    lstm = {"selection": [{"validation_rmse": 0.5}, {"validation_rmse": 0.3}, {"validation_rmse": 0.4}]}
    gru = {"selection": [{"validation_rmse": 0.35}]}
    assert bench.choose({"LSTM": lstm, "GRU": gru, "hybrid": {"validation_rmse": 0.31}}) == \
        ("LSTM", {"LSTM": 0.3, "GRU": 0.35, "hybrid": 0.31})
    assert bench.choose({"LSTM": lstm, "hybrid": {"validation_rmse": 0.3}})[0] == "LSTM"   # a tie keeps the LSTM
    assert bench.choose({"LSTM": lstm, "GRU": gru, "hybrid": {"validation_rmse": 0.29}})[0] == "hybrid"
    assert bench.choose({"LSTM": lstm, "GRU": {"selection": [{"validation_rmse": 0.2}]}})[0] == "GRU"
    # the hybrid's windows of past errors: 12 and 24 steps, at most two seasons
    assert [bench.hybrid_windows(s) for s in (4, 11, 12, 52)] == [[4, 8], [12, 22], [12, 24], [12, 24]]
