"""`lstmkit forecast train|predict`: time-series forecasting."""
import sys

from ..apps import forecast as app
from ..data.series import DATASETS
from .common import (Formatter, add_checkpoint, add_common, checkpoint_args, comma_list, fraction,
                     positive_float, positive_int, say, verbose)

DATASET_HELP = "a real series shipped with statsmodels: " + "; ".join(f"{k}: {v}" for k, v in DATASETS.items())


def register(sub):
    p = sub.add_parser("forecast", help="time-series forecasting against naive baselines",
                       formatter_class=Formatter,
                       description="Forecast a series from sliding windows of CSV columns (univariate or "
                                   "multivariate); compare RMSE and MAE with naive baselines.")
    p.set_defaults(func=lambda a: (p.print_help(sys.stderr), 2)[1])
    acts = p.add_subparsers(dest="action", metavar="ACTION")

    t = acts.add_parser("train", help="train a forecaster", formatter_class=Formatter,
                        description="Train on the first part of the series, test on the last part; "
                                    "report RMSE/MAE beside the last-value and seasonal baselines.")
    _source(t)
    t.add_argument("--window", type=positive_int, default=24, help="past steps the model reads")
    t.add_argument("--horizon", type=positive_int, default=1, help="future steps it predicts")
    t.add_argument("--season", type=positive_int, default=None,
                   help="season length for the seasonal-naive baseline (default: 11 sunspots, 52 co2)")
    t.add_argument("--test-fraction", type=fraction, default=0.2, help="last part of the series for testing")
    t.add_argument("--mode", choices=("relative", "level"), default="relative",
                   help="relative: windows and targets as changes from the window's last value (handles "
                        "trends); level: standardised values as they are")
    t.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm", help="recurrent cell")
    t.add_argument("--units", type=positive_int, default=32, help="recurrent units")
    t.add_argument("--epochs", type=positive_int, default=30, help="training epochs")
    t.add_argument("--batch-size", type=positive_int, default=32, help="windows per update")
    t.add_argument("--lr", type=positive_float, default=0.005, help="Adam learning rate")
    add_checkpoint(t)
    add_common(t)
    t.set_defaults(func=run_train)

    r = acts.add_parser("predict", help="forecast the steps after the end of a series", formatter_class=Formatter,
                        description="Read the series, forecast the next --horizon steps with a trained model.")
    r.add_argument("--model", required=True, help="run folder of `forecast train`, or its model.safetensors")
    r.add_argument("csv", nargs="?", default=None, help="CSV file with the model's columns")
    r.add_argument("--dataset", choices=sorted(DATASETS), default=None, help=DATASET_HELP)
    add_common(r)
    r.set_defaults(func=run_predict)


def _source(p):
    p.add_argument("csv", nargs="?", default=None, help="CSV file with a header row")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=None, help=DATASET_HELP)
    p.add_argument("--columns", type=comma_list, default=None, help="input columns, comma-separated")
    p.add_argument("--target", default=None, help="column to forecast (default: the first of --columns)")
    p.add_argument("--encoding-errors", choices=("strict", "replace"), default="strict",
                   help="what to do with bytes that are not UTF-8: stop with an error, or replace them")


def run_train(a):
    metrics, out = app.train(a.csv, a.dataset, a.columns, a.target, out=a.out, window=a.window,
                             horizon=a.horizon, season=a.season, test_fraction=a.test_fraction, cell=a.cell,
                             units=a.units, epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr, mode=a.mode,
                             seed=a.seed, encoding_errors=a.encoding_errors, verbose=verbose(a),
                             log=say, checkpoint=checkpoint_args(a))
    t = metrics["test"]
    say(f"test_rmse: {t['model']['rmse']:.4f} (last value: {t['last value']['rmse']:.4f})")
    say(f"outputs in {out}")


def run_predict(a):
    pred, out = app.predict(a.model, a.csv, a.dataset, out=a.out)
    for h, v in enumerate(pred):
        say(f"step {h + 1}: {v:.6g}")
    say(f"outputs in {out}")
