"""`lstmkit forecast train|predict`: time-series forecasting."""
import argparse
import sys

from ..apps import forecast as app
from ..data.series import DATASETS
from .common import (Formatter, add_checkpoint, add_common, checkpoint_args, comma_list, fraction,
                     positive_float, positive_int, say, verbose)

DATASET_HELP = "a real series shipped with statsmodels: " + "; ".join(f"{k}: {v}" for k, v in DATASETS.items())


def register(sub):
    p = sub.add_parser("forecast", help="time-series forecasting against classical baselines",
                       formatter_class=Formatter,
                       description="Forecast a series from sliding windows of CSV columns (univariate or "
                                   "multivariate); compare RMSE and MAE with naive, ETS and SARIMA baselines.")
    p.set_defaults(func=lambda a: (p.print_help(sys.stderr), 2)[1])
    acts = p.add_subparsers(dest="action", metavar="ACTION")

    t = acts.add_parser("train", help="train a forecaster", formatter_class=Formatter,
                        description="Train on the first part of the series, test on the last part; report "
                                    "RMSE/MAE per horizon step beside naive, seasonal, exponential-smoothing "
                                    "and SARIMA baselines, and the coverage of the prediction intervals.")
    _source(t)
    t.add_argument("--window", type=positive_int, default=24, help="past steps the model reads")
    t.add_argument("--horizon", type=positive_int, default=1, help="future steps it predicts")
    t.add_argument("--strategy", choices=app.STRATEGIES, default="direct",
                   help="direct: one output per future step; recursive: a one-step model fed its own forecasts")
    t.add_argument("--season", type=positive_int, default=None,
                   help="season length, for the calendar inputs and the seasonal baselines (default: the "
                        "dataset's; none for a CSV)")
    t.add_argument("--features", type=_features, default=list(app.FEATURES),
                   help="calendar inputs: season (sin/cos of the position in the season), month (sin/cos of "
                        "the position in the year; needs dates), comma-separated, or none")
    t.add_argument("--interval", type=_zero_or_fraction, default=0.9,
                   help="coverage of the prediction interval (a second model trained with the pinball loss); "
                        "0 for none")
    t.add_argument("--calibration", choices=app.CALIBRATIONS, default="conformal",
                   help="conformal: calibrate the interval on the quantile model's validation windows (split "
                        "conformal; that model is then not refitted), so that it covers about the level asked "
                        "for; none: the quantile model's raw interval (often too narrow)")
    t.add_argument("--baselines", type=_baselines, default=list(app.BASELINES),
                   help="classical forecasts to compare: naive (last value, seasonal naive), anomaly "
                        "(seasonal anomaly persistence), ets (Holt-Winters), sarima (order search by AICc); "
                        "comma-separated, or none")
    t.add_argument("--test-fraction", type=fraction, default=0.2, help="last part of the series for testing")
    t.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="last part of the training windows for validation (early stopping)")
    t.add_argument("--mode", choices=app.MODES, default="relative",
                   help="relative: windows and targets as changes from the window's last value (handles "
                        "trends); mean: the same from the window's mean; scaled: from the window's mean in units of the window's "
                        "standard deviation (each window normalised by itself); seasonal: seasonal differences, targets as changes from the seasonal naive "
                        "forecast (needs --season); level: standardised values as they are")
    t.add_argument("--deseason", action="store_true",
                   help="subtract each column's seasonal profile (training-period mean of each position in the "
                        "season) before the network, add it back to the forecasts")
    t.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm", help="recurrent cell")
    t.add_argument("--units", type=positive_int, default=32, help="recurrent units")
    t.add_argument("--epochs", type=positive_int, default=30, help="training epochs (at most, with --patience)")
    t.add_argument("--patience", type=int, default=0,
                   help="stop when the validation loss has not improved for this many epochs, keeping the "
                        "best epoch (0: train every epoch)")
    t.add_argument("--refit", action="store_true",
                   help="after training, train afresh on the validation windows too, for the best epoch count")
    t.add_argument("--dropout", type=_zero_or_fraction, default=0.0, help="dropout before the output layer")
    t.add_argument("--skip", type=int, default=0, metavar="K",
                   help="a linear autoregressive skip beside the network (LSTNet's highway): a linear map of "
                        "the last K steps of the window added to its output, trained with it (0: none; at most "
                        "--window)")
    t.add_argument("--weight-decay", type=float, default=0.0,
                   help="decoupled weight decay (AdamW instead of Adam), e.g. 0.001; 0: none")
    t.add_argument("--ensemble", type=positive_int, default=1,
                   help="train this many networks (seeds --seed, --seed + 1, ...) and forecast with the mean of "
                        "their forecasts")
    t.add_argument("--batch-size", type=positive_int, default=32, help="windows per update")
    t.add_argument("--lr", type=positive_float, default=0.005, help="Adam (AdamW) learning rate")
    add_checkpoint(t)
    add_common(t)
    t.set_defaults(func=run_train)

    r = acts.add_parser("predict", help="forecast the steps after the end of a series", formatter_class=Formatter,
                        description="Read the series, forecast the steps after its end with a trained model "
                                    "(and its interval); write forecast.csv and forecast.png.")
    r.add_argument("--model", required=True, help="run folder of `forecast train`, or its model.safetensors")
    r.add_argument("csv", nargs="?", default=None, help="CSV file with the model's columns (and date column)")
    r.add_argument("--dataset", choices=sorted(DATASETS), default=None, help=DATASET_HELP)
    r.add_argument("--horizon", type=positive_int, default=None,
                   help="steps to forecast (a recursive model: any number; default: the trained horizon)")
    add_common(r)
    r.set_defaults(func=run_predict)


def _source(p):
    p.add_argument("csv", nargs="?", default=None, help="CSV file with a header row")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=None, help=DATASET_HELP)
    p.add_argument("--columns", type=comma_list, default=None, help="input columns, comma-separated")
    p.add_argument("--target", default=None, help="column to forecast (default: the first of --columns)")
    p.add_argument("--date-column", default=None,
                   help="column of dates (ISO 8601, e.g. 2024-01-31; or see --date-format): plots against "
                        "dates, the month-of-year inputs, dates in predict's forecast.csv")
    p.add_argument("--date-format", default=None, help="strptime format of the dates, e.g. %%d/%%m/%%Y")
    p.add_argument("--encoding-errors", choices=("strict", "replace"), default="strict",
                   help="what to do with bytes that are not UTF-8: stop with an error, or replace them")


def _choices(text, allowed, what):
    items = comma_list(text)
    if items == ["none"]:
        return []
    bad = [i for i in items if i not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad or text!r}; expected some of "
                                         f"{','.join(allowed)} or none")
    return items


def _features(text):
    return _choices(text, app.FEATURES, "calendar features")


def _baselines(text):
    return _choices(text, app.BASELINES, "baselines")


def _zero_or_fraction(text):
    """0 (off), or a number in (0, 1)."""
    try:
        if float(text) == 0:
            return 0.0
    except ValueError:
        pass
    return fraction(text)


def run_train(a):
    metrics, out = app.train(a.csv, a.dataset, a.columns, a.target, out=a.out, window=a.window,
                             horizon=a.horizon, season=a.season, test_fraction=a.test_fraction,
                             val_fraction=a.val_fraction, cell=a.cell,
                             units=a.units, epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr,
                             mode=a.mode, deseason=a.deseason, strategy=a.strategy, features=a.features, interval=a.interval,
                             baselines=a.baselines, date_column=a.date_column, date_format=a.date_format,
                             patience=a.patience, refit=a.refit, dropout=a.dropout, seed=a.seed,
                             encoding_errors=a.encoding_errors, verbose=verbose(a), log=say,
                             checkpoint=checkpoint_args(a), ensemble=a.ensemble, calibration=a.calibration,
                             skip=a.skip, weight_decay=a.weight_decay)
    t = metrics["test"]
    line = f"test_rmse: {t['model']['rmse']:.4f}"
    if metrics.get("best_baseline"):
        b = metrics["best_baseline"]
        line += f" (best baseline, {b}: {t[b]['rmse']:.4f})"
    say(line)
    if metrics["intervals"].get("model"):
        say(f"interval_coverage: {metrics['intervals']['model']['coverage']:.3f} "
            f"(nominal {metrics['interval_level']:.2f})")
    say(f"outputs in {out}")


def run_predict(a):
    pred, out = app.predict(a.model, a.csv, a.dataset, out=a.out, horizon=a.horizon)
    for h, v in enumerate(pred):
        say(f"step {h + 1}: {v:.6g}")
    say(f"outputs in {out}")
