"""Time-series forecasting with an LSTM (or GRU, simple RNN) against the
methods forecasters use: windows of the past -> the next `horizon` values of
the target, with prediction intervals, compared with naive, seasonal,
exponential-smoothing and SARIMA forecasts (apps.baselines).

The split is chronological: the last test_fraction of the series is the test
period; the network's validation windows are the last part of the period
before it; the classical methods fit on the whole period before it. Scaling
is fitted on that period only. Every method forecasts from every origin in the
test period (the last observed step o, with cut - 1 <= o <= N - 1 - H) using
the data up to o only.

ensemble=N trains N networks (seeds seed .. seed + N - 1) and forecasts with
the mean of their forecasts: one forecaster, less dependent on one seed's
luck. skip=k adds a linear autoregressive map of the window's last k steps to
the network's output, trained with it (forecast_model.build); weight_decay
trains with AdamW instead of Adam. calibration="conformal" calibrates the quantile model's interval on its
validation windows (split conformal, forecast_model.conformal_margin): that
model is then never refitted on them, and its interval is widened (or
narrowed) per horizon step by the margin, which predict applies too.
"""
import os

import numpy as np

from .. import plotting
from ..io import write_json, write_text
from ..data.calendar import KINDS as FEATURES, Calendar
from ..data.errors import DataError
from ..data.series import SEASONS, load_csv_series, load_dataset
from ..data.windows import chronological_split
from . import baselines as bl
from . import forecast_model as fm
from .common import load_bundle, make_run_dir, save_bundle, to_jsonable

MODES, STRATEGIES = fm.MODES, fm.STRATEGIES
BASELINES = bl.NAMES
QUANTILE_FILE = "quantiles.safetensors"
CALIBRATIONS = ("conformal", "none")


def ensemble_file(k):
    """The k-th extra member (k >= 1) of an ensemble; member 0 is the run folder's model file."""
    return f"ensemble-{k}.safetensors"


def load_series(path=None, dataset=None, columns=None, target=None, encoding_errors="strict", date_column=None,
                date_format=None):
    """-> (values (N, F), names, target index, dates (N,) or None, source name)."""
    if dataset:
        values, names, dates = load_dataset(dataset)
    elif path:
        values, names, dates = load_csv_series(path, columns, encoding_errors, date_column, date_format)
    else:
        raise DataError("give a CSV file with --columns, or --dataset " + "|".join(sorted(SEASONS)))
    target = target or names[0]
    if target not in names:
        raise DataError(f"target {target!r} is not among the columns {names}; add it to --columns")
    return values, names, names.index(target), dates, dataset or os.fspath(path)


def errors(y_true, y_pred):
    d = np.asarray(y_pred) - np.asarray(y_true)
    return {"rmse": float(np.sqrt(np.mean(d ** 2))), "mae": float(np.mean(np.abs(d)))}


def scores(actual, pred):
    """Errors over all steps, and per horizon step h = 1 .. H. actual, pred (M, H)."""
    out = errors(actual, pred)
    out["per_step"] = [errors(actual[:, h], pred[:, h]) for h in range(actual.shape[1])]
    return out


def coverage(actual, lower, upper):
    """Share of the actual values inside [lower, upper], and the mean width, over
    all steps and per horizon step. All (M, H)."""
    inside = (actual >= lower) & (actual <= upper)                             # (M, H)
    width = upper - lower
    return {"coverage": float(inside.mean()), "width": float(width.mean()),
            "per_step": [{"coverage": float(inside[:, h].mean()), "width": float(width[:, h].mean())}
                         for h in range(actual.shape[1])]}


def check_length(source, N, lookback, window, horizon):
    if N < lookback + horizon:
        extra = f" plus a season of history for --mode seasonal ({lookback - window})" if lookback > window else ""
        raise DataError(f"{source}: the series has {N} steps, too short for window={window}{extra} and "
                        f"horizon={horizon}: it needs at least {lookback + horizon} (and more to train and test)")


def test_origins(N, cut, horizon):
    return np.arange(cut - 1, N - horizon)


def train(path=None, dataset=None, columns=None, target=None, out=None, window=24, horizon=1, season=None,
          test_fraction=0.2, val_fraction=0.1, cell="lstm", units=32, epochs=30, batch_size=32,
          learning_rate=0.005, mode="relative", deseason=False, strategy="direct", features=FEATURES, interval=0.9,
          baselines=BASELINES, date_column=None, date_format=None, patience=0, refit=False, dropout=0.0,
          seed=0, encoding_errors="strict", verbose=1, log=print, checkpoint=None, ensemble=1,
          calibration="conformal", skip=0, weight_decay=0.0):
    if mode not in MODES:
        raise DataError(f"mode must be one of {MODES}; got {mode!r}")
    if strategy not in STRATEGIES:
        raise DataError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")
    if not (isinstance(ensemble, int) and ensemble >= 1):
        raise DataError(f"ensemble must be a whole number of networks, 1 or more; got {ensemble!r}")
    if not (isinstance(skip, int) and 0 <= skip <= window):
        raise DataError(f"skip must be a whole number of steps from 0 to the window ({window}); got {skip!r}")
    if not weight_decay >= 0:
        raise DataError(f"weight_decay must be 0 or more; got {weight_decay!r}")
    if calibration not in CALIBRATIONS:
        raise DataError(f"calibration must be one of {CALIBRATIONS}; got {calibration!r}")
    if interval and not 0 < interval < 1:
        raise DataError(f"interval must be a coverage level in (0, 1), e.g. 0.9; got {interval}")
    values, names, t_idx, dates, source = load_series(path, dataset, columns, target, encoding_errors,
                                                      date_column, date_format)
    season = season if season is not None else SEASONS.get(dataset)
    N = len(values)
    if (deseason or mode == "seasonal") and not (season and season > 1):
        raise DataError(f"{'--deseason' if deseason else '--mode seasonal'} needs a season: give --season")
    check_length(source, N, window + (season if mode == "seasonal" else 0), window, horizon)
    cut = chronological_split(N, test_fraction)                                # first test step
    calendar = Calendar(N, season, dates, features)
    frame = fm.Frame(values, t_idx, cut, calendar, mode, deseason, window=window)
    kind = "direct" if strategy == "direct" else "recursive"
    n_train = len(fm.training_origins(kind, frame.lookback(window), horizon, cut))
    origins = test_origins(N, cut, horizon)
    if n_train < 2 or len(origins) < 1:
        raise DataError(f"{source}: {N} steps are too few for window={window}, horizon={horizon} and a test "
                        f"fraction of {test_fraction}: {max(n_train, 0)} training and {max(len(origins), 0)} "
                        f"test windows")
    out_dir = make_run_dir("forecast", out)
    log(f"run folder: {out_dir}")
    log(f"series of {N} steps, columns {names}, target {names[t_idx]}; inputs per step: "
        f"{names + calendar.names}; {n_train} training windows (the last {val_fraction:.0%} for validation), "
        f"{len(origins)} test origins")

    common = dict(cell=cell, units=units, window=window, horizon=horizon, cut=cut, val_fraction=val_fraction,
                  epochs=epochs, patience=patience, batch_size=batch_size, learning_rate=learning_rate,
                  seed=seed, dropout=dropout, refit=refit, verbose=verbose, skip=skip, weight_decay=weight_decay)
    model, hist, fit_info = fm.fit(frame, kind, checkpoint=checkpoint, **common)
    fit_info.pop("validation_origins")
    members = [model]
    for k in range(1, ensemble):
        log(f"training ensemble member {k + 1} of {ensemble} (seed {seed + k}) ...")
        members.append(fm.fit(frame, kind, **{**common, "seed": seed + k})[0])
    meta = {"app": "forecast", "columns": names, "target": names[t_idx], "window": window, "horizon": horizon,
            "season": season, "cell": cell, "strategy": strategy, "features": calendar.kinds,
            "feature_names": calendar.names, "date_column": date_column, "date_format": date_format,
            "ensemble": ensemble, **frame.state()}
    quantiles = None
    if interval:
        quantiles = [round((1 - interval) / 2, 6), 0.5, round(1 - (1 - interval) / 2, 6)]
        log(f"training the quantile model ({quantiles}) for {interval:.0%} intervals ...")
        conformal = calibration == "conformal"
        qmodel, qhist, q_info = fm.fit(frame, "quantiles", quantiles=quantiles,
                                       **{**common, "refit": common["refit"] and not conformal})
        meta["quantiles"] = quantiles
        margin = np.zeros(horizon)
        if conformal:                                # on the validation windows, which it did not train on
            vo = q_info["validation_origins"]
            qv = fm.forecast_quantiles(qmodel, frame, vo, window, len(quantiles))
            margin = fm.conformal_margin(qv[..., 0], qv[..., -1], frame.actual(vo, horizon), interval)
            log(f"conformal calibration on {len(vo)} validation windows: interval widened by "
                f"{', '.join(f'{m:.4g}' for m in margin)} (per step)")
        meta["conformal_margin"] = margin.tolist()
    model_path = save_bundle(model, meta, out_dir)
    for k, member in enumerate(members[1:], 1):
        member.save(os.path.join(out_dir, ensemble_file(k)))
    if interval:
        qmodel.save(os.path.join(out_dir, QUANTILE_FILE))

    actual = frame.actual(origins, horizon)                                    # (M, H)
    label = cell.upper() if cell != "rnn" else "SimpleRNN"
    preds = [fm.forecast_direct(m, frame, origins, window) if strategy == "direct"
             else fm.forecast_recursive(m, frame, origins, window, horizon) for m in members]
    pred = np.mean(preds, axis=0)                                              # (M, H)
    report = {"model": scores(actual, pred)}
    if ensemble > 1:
        for k, p in enumerate(preds):
            report[f"model (member {k + 1} of {ensemble}, seed {seed + k})"] = scores(actual, p)
    intervals = {}
    if interval:
        q = fm.forecast_quantiles(qmodel, frame, origins, window, len(quantiles))     # (M, H, 3)
        if conformal:
            intervals["model (uncalibrated)"] = coverage(actual, q[..., 0], q[..., 2])
            q[..., 0] -= margin
            q[..., 2] += margin
        intervals["model"] = coverage(actual, q[..., 0], q[..., 2])
        report["model (median of the quantile model)"] = scores(actual, q[..., 1])
    classical = bl.Baselines(values[:, t_idx], cut, season, calendar, baselines, log)
    fc, bands = classical.forecast(origins, horizon, interval or 0.9)
    base_info = classical.info
    for name, f in fc.items():
        report[name] = scores(actual, f)
    if interval:
        for name, (lo, hi) in bands.items():
            intervals[name] = coverage(actual, lo, hi)

    log(f"test period ({len(origins)} origins, horizon {horizon}), in the target's units, over all steps:")
    log(f"{'forecast':<40}{'RMSE':>10}{'MAE':>10}")
    for name, e in report.items():
        who = (label + " (" + strategy + ")" if name == "model" else label + name[5:] if name.startswith("model")
               else name)
        log(f"{who:<40}{e['rmse']:>10.4f}{e['mae']:>10.4f}")
    for name, c in intervals.items():
        who = label + name[5:] if name.startswith("model") else name          # "LSTM", "LSTM (uncalibrated)"
        log(f"{interval:.0%} interval of {who}: coverage {c['coverage']:.1%}, "
            f"mean width {c['width']:.4g}")

    x = dates if dates is not None else np.arange(N)
    shown = sorted(fc, key=lambda k: report[k]["rmse"])[:2]                   # the two best baselines
    for h in sorted({1, horizon}):
        band = (q[:, h - 1, 0], q[:, h - 1, 2], f"{interval:.0%} interval") if interval else None
        plotting.forecast(actual[:, h - 1], {f"{label} ({strategy})": pred[:, h - 1],
                                             **{k: fc[k][:, h - 1] for k in shown}},
                          os.path.join(out_dir, "forecast.png" if h == 1 else f"forecast-h{h}.png"),
                          f"{names[t_idx]}: {h} step{'s' if h > 1 else ''} ahead on the test period",
                          x=x[origins + h], band=band)
    plotting.history(hist, os.path.join(out_dir, "history.png"), "forecaster training (scaled MSE)")
    metrics = {"app": "forecast", "command": "train", "source": source, "target": names[t_idx], "cell": cell,
               "window": window, "horizon": horizon, "season": season, "mode": mode, "deseason": deseason,
               "strategy": strategy, "ensemble": ensemble, "skip": skip, "weight_decay": weight_decay,
               "calibration": calibration if interval else None,
               "features": calendar.names, "test_origins": len(origins),
               "test_start": _when(x[cut]), "test": report, "intervals": intervals,
               "interval_level": interval, "quantiles": quantiles, "baselines": base_info,
               "training": fit_info, "history": hist, "model": model_path,
               "beats_last_value": report["model"]["rmse"] < report["last value"]["rmse"]
               if "last value" in report else None}
    if fc:
        best = min(fc, key=lambda k: report[k]["rmse"])
        metrics["best_baseline"] = best
        metrics["beats_best_baseline"] = report["model"]["rmse"] <= report[best]["rmse"]
    write_json(os.path.join(out_dir, "metrics.json"), to_jsonable(metrics))
    return metrics, out_dir


def predict(model_path, path=None, dataset=None, out=None, horizon=None, log=print):
    """Forecast the steps after the end of the series; writes forecast.csv (and
    the interval, if the model has a quantile model) and forecast.png."""
    model, meta = load_bundle(model_path, "forecast")
    values, names, t_idx, dates, source = load_series(path, dataset, meta["columns"], meta["target"],
                                                      date_column=meta.get("date_column"),
                                                      date_format=meta.get("date_format"))
    if names != meta["columns"]:
        raise DataError(f"columns {names} differ from the model's {meta['columns']}")
    W, strategy = meta["window"], meta.get("strategy", "direct")
    H = horizon or meta["horizon"]
    if strategy == "direct" and H != meta["horizon"]:
        raise DataError(f"a direct model forecasts exactly {meta['horizon']} steps; got --horizon {H} "
                        f"(a recursive model, --strategy recursive, forecasts any number)")
    N = len(values)
    calendar = Calendar(N, meta.get("season"), dates, meta.get("features", []))
    if calendar.names != meta.get("feature_names", []):
        raise DataError(f"{source}: the model was trained with calendar inputs {meta.get('feature_names')} but "
                        f"this series gives {calendar.names} (dates missing, or another step between them?)")
    frame = fm.Frame(values, t_idx, N, calendar, meta.get("mode", "relative"), state=meta, window=W)
    if N < frame.lookback(W):
        raise DataError(f"{source}: the series has {N} steps; the model reads {frame.lookback(W)} "
                        f"(windows of {W}" + (f" and a season more)" if frame.lookback(W) > W else ")"))
    origin = np.array([N - 1])
    folder = os.fspath(model_path) if os.path.isdir(model_path) else os.path.dirname(os.path.abspath(model_path))
    members = [model]
    if meta.get("ensemble", 1) > 1:
        import lstmkit as lk
        for k in range(1, meta["ensemble"]):
            path = os.path.join(folder, ensemble_file(k))
            if not os.path.exists(path):
                raise DataError(f"{path}: missing; the model is an ensemble of {meta['ensemble']} networks")
            members.append(lk.load_model(path))
    if strategy == "direct":
        pred = np.mean([fm.forecast_direct(m, frame, origin, W)[0] for m in members], axis=0)       # (H,)
    else:
        pred = np.mean([fm.forecast_recursive(m, frame, origin, W, H)[0] for m in members], axis=0)
    band = None
    qpath = os.path.join(folder, QUANTILE_FILE)
    if meta.get("quantiles") and os.path.exists(qpath):
        import lstmkit as lk
        q = fm.forecast_quantiles(lk.load_model(qpath), frame, origin, W, len(meta["quantiles"]))[0]  # (Hq, 3)
        margin = np.asarray(meta.get("conformal_margin") or np.zeros(len(q)))  # (Hq,) from the calibration
        band = (q[:, 0] - margin, q[:, -1] + margin)
    out_dir = make_run_dir("forecast-predict", out)
    future = None
    if dates is not None:
        from ..data.dates import extend
        future = extend(dates, H)[N:]
    head = ["step"] + (["date"] if future is not None else []) + [meta["target"]]
    if band is not None:
        head += [f"lower_{meta['quantiles'][0]:g}", f"upper_{meta['quantiles'][-1]:g}"]
    rows = []
    for h, v in enumerate(pred):
        row = [str(h + 1)] + ([_when(future[h])] if future is not None else []) + [f"{v:.6g}"]
        if band is not None:
            row += [f"{band[0][h]:.6g}", f"{band[1][h]:.6g}"] if h < len(band[0]) else ["", ""]
        rows.append(",".join(row))
    write_text(os.path.join(out_dir, "forecast.csv"), ",".join(head) + "\n" + "\n".join(rows) + "\n")
    x = dates if dates is not None else np.arange(N)
    xf = future if future is not None else np.arange(N, N + H)
    past = min(N, max(4 * W, 3 * H))
    plotting.future(x[-past:], values[-past:, t_idx], xf, pred, os.path.join(out_dir, "forecast.png"),
                    f"{meta['target']}: the next {H} steps", band=None if band is None else
                    (xf[:len(band[0])], band[0], band[1], f"{meta['quantiles'][-1] - meta['quantiles'][0]:.0%} interval"))
    return pred, out_dir


def _when(x):
    """A step for people: its date (YYYY-MM-DD when it has no time of day), or its index."""
    if isinstance(x, np.datetime64):
        return str(x)[:10] if x == x.astype("datetime64[D]") else str(x)
    return int(x)
