"""Time-series forecasting with an LSTM: windows of the past -> the next
`horizon` values of the target, compared with naive baselines.

Scaling is fitted on the training period only. The split is chronological:
the last test_fraction of the series is the test period, and the validation
windows are the last part of the training period.
"""
import os

import numpy as np

from .. import plotting
from ..io import write_json, write_text
from ..data.errors import DataError
from ..data.scaling import StandardScaler
from ..data.series import SEASONS, load_csv_series, load_dataset
from ..data.windows import chronological_split, forecast_windows
from .common import load_bundle, make_run_dir, recurrent_layer, save_bundle, to_jsonable


def load_series(path=None, dataset=None, columns=None, target=None, encoding_errors="strict"):
    if dataset:
        values, names, times = load_dataset(dataset)
    elif path:
        values, names, times = load_csv_series(path, columns, encoding_errors)
    else:
        raise DataError("give a CSV file with --columns, or --dataset sunspots|co2")
    target = target or names[0]
    if target not in names:
        raise DataError(f"target {target!r} is not among the columns {names}; add it to --columns")
    return values, names, names.index(target), times


MODES = ("relative", "level")


def step_scale(scaled_train):
    """Typical one-step change of each (standardised) column over the training period."""
    d = np.diff(scaled_train, axis=0).std(axis=0)                              # (F,)
    return np.where(d > 0, d, 1.0)


def to_relative(X, t_idx, dscale, Y=None):
    """Make windows relative to their last step, in units of a typical step:
    a trend then looks the same at any level, so the model never has to
    extrapolate beyond the levels it saw in training (CO2 keeps rising)."""
    anchor = X[:, -1, :]                                                       # (M, F)
    Xr = (X - anchor[:, None, :]) / dscale                                     # (M, W, F)
    Yr = None if Y is None else (Y - anchor[:, t_idx, None]) / dscale[t_idx]   # (M, H)
    return Xr, Yr, anchor[:, t_idx]


def from_relative(pred, anchor_t, dscale_t):
    return pred * dscale_t + anchor_t[:, None]                                 # (M, H) standardised


def errors(y_true, y_pred):
    d = np.asarray(y_pred) - np.asarray(y_true)
    return {"rmse": float(np.sqrt(np.mean(d ** 2))), "mae": float(np.mean(np.abs(d)))}


def baselines(raw_target, starts, window, horizon, season):
    """Naive forecasts for the windows starting at `starts`, each (M, horizon):
    last value (repeat the last observed value) and seasonal naive (the value one
    season before each target step; needs season >= horizon to use only the past)."""
    h = np.arange(horizon)
    out = {"last value": np.repeat(raw_target[starts + window - 1][:, None], horizon, axis=1)}
    if season:
        idx = starts[:, None] + window + h - season                            # (M, horizon)
        if season >= horizon and idx.min() >= 0:
            out[f"seasonal naive ({season})"] = raw_target[idx]
    return out


def train(path=None, dataset=None, columns=None, target=None, out=None, window=24, horizon=1, season=None,
          test_fraction=0.2, val_fraction=0.1, cell="lstm", units=32, epochs=30, batch_size=32,
          learning_rate=0.005, mode="relative", seed=0, encoding_errors="strict", verbose=1, log=print,
          checkpoint=None):
    if mode not in MODES:
        raise DataError(f"mode must be one of {MODES}; got {mode!r}")
    values, names, t_idx, times = load_series(path, dataset, columns, target, encoding_errors)
    season = season if season is not None else SEASONS.get(dataset)
    N = len(values)
    cut = chronological_split(N, test_fraction)                                # first test step
    scaler = StandardScaler().fit(values[:cut])                                # training period only
    scaled = scaler.transform(values)                                          # (N, F)
    try:
        X, Y = forecast_windows(scaled, scaled[:, t_idx], window, horizon)    # (M, W, F), (M, H)
    except ValueError as e:
        raise DataError(str(e)) from None
    dscale = step_scale(scaled[:cut])
    Xm, Ym, anchor = to_relative(X, t_idx, dscale, Y) if mode == "relative" else (X, Y, None)
    starts = np.arange(len(X))
    last_target = starts + window + horizon - 1
    first_target = starts + window
    is_train = last_target < cut
    is_test = first_target >= cut
    tr, te = np.where(is_train)[0], np.where(is_test)[0]
    n_val = max(1, int(round(len(tr) * val_fraction)))
    if len(tr) - n_val < 1 or len(te) < 1:
        raise DataError(f"{N} steps are too few for window={window}, horizon={horizon} and a test "
                        f"fraction of {test_fraction}: {len(tr)} training and {len(te)} test windows")
    tr, va = tr[:-n_val], tr[-n_val:]
    out_dir = make_run_dir("forecast", out)
    log(f"run folder: {out_dir}")
    log(f"series of {N} steps, columns {names}, target {names[t_idx]}; windows: {len(tr)} train, "
        f"{len(va)} validation, {len(te)} test")

    import lstmkit as lk
    model = lk.Sequential([recurrent_layer(cell, units, input_shape=(window, len(names))),
                           lk.Dense(horizon)], seed=seed)
    model.compile(optimizer=lk.Adam(learning_rate, clipnorm=5.0), loss="mse")
    hist = model.fit(Xm[tr], Ym[tr], epochs=epochs, batch_size=batch_size, validation_data=(Xm[va], Ym[va]),
                     verbose=verbose, seed=seed, **(checkpoint or {})).history
    meta = {"app": "forecast", "columns": names, "target": names[t_idx], "window": window,
            "horizon": horizon, "season": season, "scaler": scaler.to_dict(), "cell": cell, "mode": mode,
            "step_scale": dscale.tolist()}
    model_path = save_bundle(model, meta, out_dir)

    out_te = model.predict(Xm[te], batch_size=256)                              # (M, H)
    if mode == "relative":
        out_te = from_relative(out_te, anchor[te], dscale[t_idx])
    pred = scaler.inverse_transform(out_te, column=t_idx)                      # (M, H) target units
    raw_target = values[:, t_idx]
    actual = scaler.inverse_transform(Y[te], column=t_idx)
    report = {"model": errors(actual, pred)}
    base = baselines(raw_target, starts[te], window, horizon, season)
    for name, b in base.items():
        report[name] = errors(actual, b)
    log(f"test period ({len(te)} windows, horizon {horizon}), in the target's units:")
    log(f"{'forecast':<24}{'RMSE':>10}{'MAE':>10}")
    for name, e in report.items():
        log(f"{name:<24}{e['rmse']:>10.4f}{e['mae']:>10.4f}")
    plot_x = times[first_target[te]]
    plotting.forecast(actual[:, 0], {"LSTM" if cell == "lstm" else cell.upper(): pred[:, 0],
                                     **{k: v[:, 0] for k, v in base.items()}},
                      os.path.join(out_dir, "forecast.png"),
                      f"{names[t_idx]}: one step ahead on the test period", x=plot_x)
    plotting.history(hist, os.path.join(out_dir, "history.png"), "forecaster training (scaled MSE)")
    metrics = {"app": "forecast", "command": "train", "source": dataset or os.fspath(path),
               "target": names[t_idx], "window": window, "horizon": horizon, "season": season, "mode": mode,
               "test": report, "history": hist, "model": model_path,
               "beats_last_value": report["model"]["rmse"] < report["last value"]["rmse"]}
    write_json(os.path.join(out_dir, "metrics.json"), to_jsonable(metrics))
    return metrics, out_dir


def predict(model_path, path=None, dataset=None, out=None, log=print):
    """Forecast the `horizon` steps after the end of the series; writes forecast.csv."""
    model, meta = load_bundle(model_path, "forecast")
    values, names, t_idx, _ = load_series(path, dataset, meta["columns"], meta["target"])
    if names != meta["columns"]:
        raise DataError(f"columns {names} differ from the model's {meta['columns']}")
    W = meta["window"]
    if len(values) < W:
        raise DataError(f"the series has {len(values)} steps; the model reads windows of {W}")
    scaler = StandardScaler.from_dict(meta["scaler"])
    x = scaler.transform(values[-W:])[None]                                    # (1, W, F)
    if meta.get("mode") == "relative":
        dscale = np.asarray(meta["step_scale"])
        xr, _, anchor = to_relative(x, t_idx, dscale)
        raw = from_relative(model.predict(xr), anchor, dscale[t_idx])
    else:
        raw = model.predict(x)
    pred = scaler.inverse_transform(raw, column=t_idx)[0]                      # (H,)
    out_dir = make_run_dir("forecast-predict", out)
    write_text(os.path.join(out_dir, "forecast.csv"),
               "step," + meta["target"] + "\n" + "".join(f"{h + 1},{v:.6g}\n" for h, v in enumerate(pred)))
    return pred, out_dir
