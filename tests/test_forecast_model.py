"""The network side of forecasting on small generated series: inputs and
targets in every mode and back, the recursive roll, the calendar inputs, and
short trainings of the three kinds of forecaster."""
import numpy as np
import pytest

from lstmkit.apps import forecast_model as fm
from lstmkit.data.calendar import Calendar

S = 12


def series(n=96, F=2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return 20 + 0.1 * t + 4 * np.sin(2 * np.pi * t / S + np.arange(F)) + 0.3 * rng.normal(size=(n, F))


class Constant:
    """A stand-in model whose every output is `value`."""

    def __init__(self, n_out, value=0.0):
        self.n_out, self.value = n_out, value

    def predict(self, x, batch_size=None):
        return np.full((len(x), self.n_out), self.value)


@pytest.mark.parametrize("mode", fm.MODES)
@pytest.mark.parametrize("deseason", [False, True])
def test_targets_map_back_to_the_actual_values(mode, deseason):
    v = series()
    frame = fm.Frame(v, 1, 72, Calendar(len(v), S, None), mode, deseason, window=10)
    origins = np.arange(frame.lookback(10) - 1, 90)
    y = frame.direct_targets(origins, 4)                                     # (M, 4) in the network's units
    assert np.allclose(frame.target_units(y, origins), frame.actual(origins, 4))
    q = np.stack([y - 1, y, y + 1], axis=-1)                                 # quantiles map back in order
    back = frame.target_units(q, origins)
    assert np.allclose(back[..., 1], frame.actual(origins, 4)) and np.all(np.diff(back, axis=-1) > 0)
    x = frame.inputs(*frame.rows(origins, 10))
    assert x.shape == (len(origins), 10, 2 + 2)                              # 2 columns + season sin, cos
    if mode == "relative":
        assert np.allclose(x[:, -1, :2], 0)                                  # windows end at 0
    if mode == "mean":
        assert np.allclose(x[:, :, :2].mean(axis=1), 0)                      # windows average 0
    if mode == "scaled":                                                     # each window: mean 0, deviation 1
        assert np.allclose(x[:, :, :2].mean(axis=1), 0) and np.allclose(x[:, :, :2].std(axis=1), 1)


def test_scaled_mode_normalises_each_window_by_itself():
    """Mode "scaled": a window and the same window's fluctuations made 3 times larger look the same to the
    network, and a one-step output of 0.5 rolls to the window's mean plus half its deviation."""
    v = series(F=1)
    cal = Calendar(len(v), S, None)
    loud = v.copy()
    loud[50:60] = v[50:60].mean() + 3 * (v[50:60] - v[50:60].mean())
    a, b = (fm.Frame(x, 0, 72, cal, "scaled", window=10) for x in (v, loud))
    o = np.array([59])
    xa, xb = a.inputs(*a.rows(o, 10)), b.inputs(*b.rows(o, 10))
    assert np.allclose(xa, xb)
    rows = a.work[50:60][None]                                               # (1, 10, 1)
    out = fm.forecast_recursive(Constant(1, 0.5), a, o, 10, 1)
    want = rows.mean() + 0.5 * rows.std()                                    # in the network's series
    assert np.allclose(out[0, 0], a.scaler.inverse_transform(np.array([[want]]), column=0)[0, 0])
    assert np.allclose(fm.forecast_direct(Constant(1, 0.5), a, o, 10), out)
    flat = fm.Frame(np.full((96, 1), 5.0) + np.arange(96)[:, None] * 1e-9, 0, 72, cal, "scaled", window=10)
    assert np.all(flat.rows_scale(flat.rows(o, 10)[0]) >= 0.1 * flat.dscale)   # a flat window: the floor


def test_lookback_and_training_origins():
    v = series()
    frame = fm.Frame(v, 0, 72, Calendar(len(v), S, None), "seasonal")
    assert frame.lookback(10) == 22
    o = fm.training_origins("direct", frame.lookback(10), 3, 72)
    assert o[0] == 21 and o[-1] + 3 == 71                                     # targets stop before the test period
    assert fm.training_origins("recursive", 10, 3, 72)[-1] == 70
    with pytest.raises(ValueError, match="needs a season length"):
        fm.Frame(v, 0, 72, Calendar(len(v), None, None), "seasonal")
    with pytest.raises(ValueError, match="needs the window length"):
        fm.Frame(v, 0, 72, Calendar(len(v), None, None), "mean")


def test_recursive_roll_with_a_model_that_predicts_no_change():
    """Zero outputs mean: no change from the last value (relative), from the
    seasonal naive forecast (seasonal), the training mean (level)."""
    v = series(F=1)
    origins = np.arange(40, 80)
    cal = Calendar(len(v), S, None)
    rel = fm.Frame(v, 0, 72, cal, "relative")
    out = fm.forecast_recursive(Constant(1), rel, origins, 8, 5)
    assert np.allclose(out, v[origins, 0][:, None])
    sea = fm.Frame(v, 0, 72, cal, "seasonal")
    out = fm.forecast_recursive(Constant(1), sea, origins, 8, 15)           # past one season: rolled values
    h = np.arange(1, 16)
    assert np.allclose(out, v[origins[:, None] + h - S * ((h - 1) // S + 1), 0])
    mean = fm.Frame(v, 0, 72, cal, "mean", window=8)                        # zero: the window's mean, rolled
    out = fm.forecast_recursive(Constant(1), mean, origins, 8, 3)
    rows = list(v[origins[:, None] - 7 + np.arange(8), 0].T)
    for k in range(3):
        rows.append(np.mean(rows[-8:], axis=0))
        assert np.allclose(out[:, k], rows[-1])
    assert np.allclose(fm.forecast_direct(Constant(1), mean, origins, 8), out[:, :1])
    lev = fm.Frame(v, 0, 72, cal, "level")
    assert np.allclose(fm.forecast_recursive(Constant(1), lev, origins, 8, 3), v[:72, 0].mean())
    # the direct path agrees with the roll for one step
    assert np.allclose(fm.forecast_direct(Constant(1), sea, origins, 8),
                       fm.forecast_recursive(Constant(1), sea, origins, 8, 1))


def test_roll_past_the_end_uses_extended_dates():
    v = series(n=60, F=1)
    months = (np.datetime64("2010-01", "M") + np.arange(60)).astype("datetime64[s]")
    cal = Calendar(60, S, months)
    frame = fm.Frame(v, 0, 48, cal, "relative")
    out = fm.forecast_recursive(Constant(1, 0.5), frame, np.array([59]), 12, 6)
    step = frame.dscale[0] * frame.scaler.std[0] * 0.5                        # half a typical step, each step
    assert np.allclose(np.diff(np.concatenate([[v[59, 0]], out[0]])), step)


@pytest.mark.parametrize("kind", fm.KINDS)
def test_short_trainings_learn(kind):
    v = series(n=160, F=1)
    frame = fm.Frame(v, 0, 128, Calendar(160, S, None), "relative")
    q = [0.1, 0.5, 0.9] if kind == "quantiles" else None
    model, hist, info = fm.fit(frame, kind, "lstm", 8, 12, 3, 128, epochs=12, patience=4, seed=0,
                               quantiles=q, refit=True)
    assert hist["loss"][-1] < hist["loss"][0]
    assert 1 <= info["epochs"] <= 12 and info["refit_windows"] == info["train_windows"] + info["validation_windows"]
    origins = np.arange(127, 157)
    if kind == "quantiles":
        out = fm.forecast_quantiles(model, frame, origins, 12, 3)
        assert out.shape == (30, 3, 3) and np.all(np.diff(out, axis=-1) >= 0)
    elif kind == "direct":
        assert fm.forecast_direct(model, frame, origins, 12).shape == (30, 3)
    else:
        assert fm.forecast_recursive(model, frame, origins, 12, 3).shape == (30, 3)


def test_conformal_margin():
    """Scores are the distances outside the interval; the margin is the
    ceil((n + 1) level)-th smallest, per horizon step."""
    lo, hi = np.zeros((9, 2)), np.ones((9, 2))
    y = np.stack([np.arange(9) / 4.0 - 0.5, np.full(9, 0.5)], axis=1)          # step 1: scores -0.5..1; step 2 inside
    m = fm.conformal_margin(lo, hi, y, 0.8)                                  # k = ceil(10 * 0.8) = 8
    s1 = np.sort(np.maximum(lo[:, 0] - y[:, 0], y[:, 0] - hi[:, 0]))
    assert np.isclose(m[0], s1[7]) and np.isclose(m[1], -0.5)              # inside everywhere: narrows by 0.5
    assert np.isclose(fm.conformal_margin(lo, hi, y, 0.99)[0], s1[-1])       # too few windows: the largest
    # widened by the margin, the calibration values are covered at least at the level
    inside = (y >= lo - m) & (y <= hi + m)
    assert inside.mean(axis=0).min() >= 0.8
    with pytest.raises(ValueError, match="at least one"):
        fm.conformal_margin(lo[:0], hi[:0], y[:0], 0.9)


def test_calibration_windows_are_the_validation_windows():
    """fit hands back the origins of its validation windows (the last ones before the test period)."""
    v = series(n=160, F=1)
    frame = fm.Frame(v, 0, 128, Calendar(160, S, None), "mean", window=12)
    model, _, info = fm.fit(frame, "quantiles", "lstm", 4, 12, 2, 128, epochs=2, seed=0,
                            quantiles=[0.05, 0.5, 0.95], val_windows=20)
    vo = info["validation_origins"]
    assert len(vo) == 20 and vo[-1] + 2 == 127 and np.all(np.diff(vo) == 1)
    q = fm.forecast_quantiles(model, frame, vo, 12, 3)
    m = fm.conformal_margin(q[..., 0], q[..., 2], frame.actual(vo, 2), 0.9)
    assert m.shape == (2,) and np.all(np.isfinite(m))


def test_linear_skip_adds_a_linear_map_of_the_last_steps():
    """build(skip=k): the output is the network's plus a linear map (no bias) of
    the last k steps of the window, zero at first; trained with the rest."""
    import lstmkit as lk
    x = np.random.default_rng(1).normal(size=(5, 12, 3)).astype(np.float32)   # (B, W, F + K)
    plain = fm.build("lstm", 4, 12, 3, 2, seed=0)
    model = fm.build("gru", 4, 12, 3, 2, seed=0, skip=4)
    assert isinstance(plain, lk.Sequential) and isinstance(model, lk.Model)
    skip = [k for k in model.params if k.startswith("ar_skip/")]
    assert skip == ["ar_skip/W"] and model.params["ar_skip/W"].shape == (4 * 3, 2)
    assert not model.params["ar_skip/W"].any()                                # starts as the plain network
    before = model.predict(x)
    W = np.random.default_rng(2).normal(size=(12, 2)).astype(np.float32)
    model.params["ar_skip/W"][...] = W
    after = model.predict(x)
    np.testing.assert_allclose(after - before, x[:, -4:].reshape(5, -1) @ W, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"skip must be a whole number of steps from 0 to the window \(12\); got 13"):
        fm.build("lstm", 4, 12, 3, 2, seed=0, skip=13)


def test_skip_learns_a_linear_series_and_weight_decay_shrinks_weights():
    rng = np.random.default_rng(0)
    n = 200
    y = np.zeros(n)
    for t in range(2, n):                                                     # AR(2) with a season-like swing
        y[t] = 1.2 * y[t - 1] - 0.5 * y[t - 2] + rng.normal()
    frame = fm.Frame(y[:, None], 0, 160, Calendar(n, None, None, []), "level")
    common = dict(epochs=8, seed=0, batch_size=16)
    model, hist, _ = fm.fit(frame, "recursive", "lstm", 4, 8, 1, 160, skip=3, **common)
    assert hist["loss"][-1] < hist["loss"][0] and np.abs(model.params["ar_skip/W"]).max() > 0.05
    assert type(model.optimizer).__name__ == "Adam"
    norms = {}
    for wd in (0.0, 20.0):
        m, _, _ = fm.fit(frame, "recursive", "lstm", 4, 8, 1, 160, weight_decay=wd, **common)
        assert type(m.optimizer).__name__ == ("AdamW" if wd else "Adam")
        norms[wd] = np.sqrt(sum(float((p.astype(np.float64) ** 2).sum()) for p in m.params.values()))
    assert norms[20.0] < 0.8 * norms[0.0]
