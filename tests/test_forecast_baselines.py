"""The classical baselines on series whose answers are known: exact seasonal
series, statsmodels' own forecasts at the end of the training period, an AR(1)
process for the order search, and the interval coverage computation."""
import numpy as np
import pytest

from lstmkit.apps import baselines as bl
from lstmkit.apps.forecast import coverage, scores
from lstmkit.data.calendar import Calendar

S = 12


@pytest.fixture(autouse=True)
def one_blas_thread():
    """As the CLI: statsmodels' small fits on one BLAS thread (the library
    itself changes no BLAS setting; apps/baselines.py says why this matters)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def seasonal_series(n=120, trend=0.0, noise=0.0, seed=0):
    t = np.arange(n)
    pattern = np.array([3, 5, 9, 12, 14, 13, 10, 6, 2, 0, -1, 1], float)
    return 50 + trend * t + pattern[t % S] + noise * np.random.default_rng(seed).normal(size=n)


def test_naive_forecasts_on_an_exact_seasonal_series():
    y = seasonal_series(n=130)
    origins = np.arange(95, 110)
    assert np.allclose(bl.seasonal_naive(y, origins, 15, S), y[origins[:, None] + 1 + np.arange(15)])  # H > season
    assert np.allclose(bl.last_value(y, origins, 3), y[origins][:, None])
    with pytest.raises(ValueError, match="a full season"):
        bl.seasonal_naive(y, np.array([5]), 1, S)


def test_seasonal_anomaly_is_climatology_plus_the_last_anomaly():
    y = seasonal_series()
    cut, origins, H = 96, np.arange(95, 110), 6
    bins = np.arange(130) % S
    target = y[origins[:, None] + 1 + np.arange(H)]
    assert np.allclose(bl.seasonal_anomaly(y, cut, origins, H, S, bins), target)      # exact: no anomaly left
    shifted = y.copy()
    shifted[100:] += 7.0                                                              # a lasting anomaly ...
    f = bl.seasonal_anomaly(shifted, cut, np.array([102]), 4, S, bins)
    assert np.allclose(f, shifted[103:107])                                           # ... persists
    trended = seasonal_series(trend=0.5)
    f = bl.seasonal_anomaly(trended, cut, origins, H, S, bins)
    assert np.allclose(f, trended[origins[:, None] + 1 + np.arange(H)])             # the trend carries on
    profile, slope = bl.climatology(trended[:cut], bins[:cut], S)
    assert abs(slope - 0.5) < 1e-12 and abs(profile.sum()) < 1e-9


def test_ets_from_every_origin_matches_statsmodels():
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    y = seasonal_series(n=144, trend=0.3, noise=0.8)
    cut, H = 120, 5
    ets = bl.ETS().fit(y[:cut], S)
    assert ets.info["model"].startswith("ETS(A,") and ets.info["models tried"] == 6
    spec = ets.spec
    ref = ExponentialSmoothing(y[:cut], initialization_method="estimated", **spec).fit()
    # from the end of the training period: statsmodels' own forecast
    assert np.allclose(ets.forecast(y, np.array([cut - 1]), H)[0], ref.forecast(H), atol=1e-6)
    # one step from every training origin: statsmodels' fitted values
    origins = np.arange(S, cut - 1)
    assert np.allclose(ets.forecast(y, origins, 1)[:, 0], ref.fittedvalues[origins + 1], atol=1e-6)
    # later origins see later data only: changing the future does not change a forecast
    z = y.copy()
    z[130:] += 100
    assert np.allclose(ets.forecast(z, np.array([125]), H), ets.forecast(y, np.array([125]), H))
    rmse = np.sqrt(np.mean((ets.forecast(y, np.arange(cut - 1, 139), H) -
                            y[np.arange(cut - 1, 139)[:, None] + 1 + np.arange(H)]) ** 2))
    assert rmse < 2.0                                                                   # noise 0.8


def test_statespace_forecasts_match_statsmodels_mean_and_variance():
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    y = seasonal_series(n=150, trend=0.2, noise=1.0, seed=3)
    cut, H = 120, 4
    res = SARIMAX(y[:cut], order=(1, 1, 1), seasonal_order=(0, 1, 1, S)).fit(disp=False)
    ext = SARIMAX(np.concatenate([y, np.full(H, np.nan)]), order=(1, 1, 1),
                  seasonal_order=(0, 1, 1, S)).filter(res.params)
    mean, var = bl.statespace_forecasts(ext, np.array([cut - 1, len(y) - 1]), H)
    want = res.get_forecast(H)
    assert np.allclose(mean[0], want.predicted_mean, atol=1e-8)
    assert np.allclose(var[0], want.var_pred_mean, rtol=1e-8)
    full = SARIMAX(y, order=(1, 1, 1), seasonal_order=(0, 1, 1, S)).filter(res.params)
    assert np.allclose(mean[1], full.forecast(H), atol=1e-8)


def test_sarima_search_finds_an_ar1_and_its_intervals_cover():
    rng = np.random.default_rng(5)
    e = rng.normal(size=2500)
    y = np.zeros(2500)
    for t in range(1, 2500):
        y[t] = 0.8 * y[t - 1] + e[t]
    plan = {"d": 0, "D": 0, "trend": "c",
            "grid": [((p, 0, q), (0, 0, 0, 0), 0) for p, q in ((1, 0), (0, 1), (0, 0))]}
    model = bl.SARIMA(plan).fit(y[:500], None)
    assert model.info["model"] == "ARIMA(1, 0, 0)" and model.info["models tried"] == 3
    assert abs(model.params[1] - 0.8) < 0.08                                          # the AR coefficient
    origins = np.arange(499, 2499)
    mean, (lo, hi) = model.forecast(y, origins, 1, level=0.9)
    actual = y[origins + 1][:, None]
    cov = coverage(actual, lo, hi)
    assert 0.87 < cov["coverage"] < 0.93 and abs(cov["width"] - 2 * 1.645) < 0.3       # sigma = 1
    assert np.sqrt(np.mean((mean - actual) ** 2)) < 1.15


def test_sarima_plan_decides_differencing_and_the_grid():
    rng = np.random.default_rng(0)
    seasonal = seasonal_series(n=144, noise=0.5)
    plan = bl.sarima_plan(seasonal, S, np.arange(144) % S)
    assert plan["D"] == 1 and len(plan["grid"]) == 36 and plan["grid"][-1][1] == (1, 1, 1, S)
    walk = np.cumsum(rng.normal(size=300))
    assert bl.sarima_plan(walk, None, None)["d"] == 1
    noise = rng.normal(size=300)
    plan = bl.sarima_plan(noise, None, None)
    assert (plan["d"], plan["D"], plan["trend"], len(plan["grid"])) == (0, 0, "c", 9)
    weekly = bl.sarima_plan(np.sin(2 * np.pi * np.arange(400) / 52) + 0.1 * rng.normal(size=400), 52,
                            np.arange(400) % 52)
    assert {g[2] for g in weekly["grid"]} == {1, 2, 3} and all(g[1] == (0, 0, 0, 0) for g in weekly["grid"])


def test_fourier_seasonal_regression_forecasts_a_long_season():
    rng = np.random.default_rng(1)
    n, s = 420, 52
    pos = np.arange(n + 10) % s
    y = 10 + 3 * np.sin(2 * np.pi * np.arange(n) / s) + 0.2 * rng.normal(size=n)
    plan = {"d": 0, "D": 0, "trend": "c", "grid": [((1, 0, 0), (0, 0, 0, 0), 1)]}
    model = bl.SARIMA(plan).fit(y[:350], s, pos[:350])
    assert model.info["model"] == "ARIMA(1, 0, 0) + 1 Fourier pairs (season 52)"
    origins = np.arange(349, n - 10)
    mean, _ = model.forecast(y, origins, 10, pos)
    assert np.sqrt(np.mean((mean - y[origins[:, None] + 1 + np.arange(10)]) ** 2)) < 0.3


def test_baselines_together_and_their_names():
    y = seasonal_series(n=96, noise=0.3)
    cal = Calendar(96, S, None)
    b = bl.Baselines(y, 72, S, cal, which=("naive", "anomaly"))
    fc, bands = b.forecast(np.arange(71, 90), 3)
    assert set(fc) == {"last value", "seasonal naive (12)", "seasonal anomaly (12)"} and bands == {}
    assert all(f.shape == (19, 3) for f in fc.values())
    with pytest.raises(ValueError, match=r"unknown baselines \['prophet'\]"):
        bl.Baselines(y, 72, S, cal, which=("prophet",))


def test_coverage_and_scores():
    actual = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    lo, hi = actual - 1, actual + 1
    hi[0, 0] = 0.5                                                   # one value above its interval
    lo[3, 1] = 8.5                                                   # one below
    c = coverage(actual, lo, hi)
    assert c["coverage"] == 6 / 8 and [p["coverage"] for p in c["per_step"]] == [0.75, 0.75]
    assert abs(c["width"] - np.mean(hi - lo)) < 1e-12
    s = scores(actual, actual + np.array([[1.0, -2.0]]))
    assert abs(s["rmse"] - np.sqrt(2.5)) < 1e-12 and s["mae"] == 1.5
    assert [p["rmse"] for p in s["per_step"]] == [1.0, 2.0]
