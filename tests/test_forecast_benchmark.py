"""The script behind the forecasting table runs end to end (tiny settings, one series)."""
import json

import pytest

from example_scripts import load_example


@pytest.mark.slow
def test_benchmark_writes_its_tables(tmp_path, capsys):
    bench = load_example("forecast-statsmodels/benchmark.py", "forecast_benchmark")
    bench.main(["--series", "unemp", "--seeds", "2", "--folds", "2", "--epochs", "2", "--patience", "1",
                "--out", str(tmp_path)])
    doc = json.loads((tmp_path / "results.json").read_text())
    r = doc["series"]["unemp"]
    assert r["horizon"] == 4 and r["test_origins"] == {"1": 41, "4": 38}
    assert set(r["baselines"]) == {"last value", "seasonal naive (4)", "seasonal anomaly (4)", "ETS", "SARIMA"}
    for cell in ("lstm", "gru"):
        net = r["networks"][cell]
        assert len(net["h1"]) == 2 and len(net["direct"]) == 2 and len(net["selection"]) == 20 + 3
        assert net["config"]["mode"] in ("relative", "seasonal", "level")
    assert len(r["networks"]["lstm"]["intervals"]) == 2
    md = (tmp_path / "results.md").read_text()
    assert "| unemp |" in md and "### Does the LSTM match" in md and "SARIMA(" in md
    assert (tmp_path / "unemp.png").read_bytes()[:4] == b"\x89PNG"
    # runs over parts of the series join into one table
    bench.main(["--combine", str(tmp_path), "--out", str(tmp_path / "all")])
    joined = json.loads((tmp_path / "all" / "results.json").read_text())
    assert list(joined["series"]) == ["unemp"] and joined["series"]["unemp"] == r
    assert (tmp_path / "all" / "results.md").read_text() == md
