"""Recurrent networks against classical forecasts on real series shipped with
statsmodels: the table of examples/forecast-statsmodels/README.md.

    python examples/forecast-statsmodels/benchmark.py            # all series (co2 alone takes 40 min)
    python examples/forecast-statsmodels/benchmark.py --series sunspots --seeds 2
    # in parallel, then one table:
    python examples/forecast-statsmodels/benchmark.py --series co2 --out runs/a &
    python examples/forecast-statsmodels/benchmark.py --series sunspots,elnino,elec_equip,unemp --out runs/b
    python examples/forecast-statsmodels/benchmark.py --combine runs/a runs/b --out runs/all

For each series (the last 20 % is the test period):
  1. The classical methods (apps.baselines) fit on everything before the test period.
  2. For each cell (LSTM, GRU), configurations are scored by rolling-origin
     validation: the last three tenths of the period before the test are three
     validation blocks; for each, a one-step model trains on everything before
     the block (early stopping on the block) and is scored on it (RMSE, one
     step, series' units); the score is the mean over the blocks. Each fold's
     scaling, step sizes and seasonal profile come from the steps before its
     block, as the test period's from the steps before it (FOLD_STATS; before
     2026-11-30 they included the block: a leak, see Bench.score). Stage 1
     tries the inputs: window x mode (relative, seasonal, level) x
     deseasonalised or not x calendar inputs or not, with 32 units. The LSTM
     then tries two variants of the stage-1 winner (stage 1b): a longer window
     (twice the longest of stage 1: two years of weeks for co2) and the window
     mean instead of the last value as the level (mode "mean"), and (added
     2026-11-30) each window normalised by its own mean and deviation (mode
     "scaled", RevIN-style). Stage 2 tries
     units x dropout for the winner so far: 32/64 x 0/0.2 (GRU), 8/16/32/64 x
     0/0.2 (LSTM: small models for the short series). The LSTM then tries
     (stage 3) a linear autoregressive skip beside the network (LSTNet's
     highway, fm.build's skip): over the last season + 1 steps, over the whole
     window, and over the last season + 1 steps of a window of three seasons
     (series with seasons of at most 20 steps); then, for the winner so far,
     decoupled weight decay (AdamW) of 0.01 and 0.1; then (stage 4, added
     2026-11-30) the learning rate: 0.002 or 0.001 instead of --lr, or --lr
     halved every 25 epochs. The lowest score wins. The test period is not
     looked at.
  3. With that configuration, for each seed: a one-step model (horizon 1, and
     rolled forward for the recursive multi-step forecast), a direct model of
     horizon H, and (LSTM) a quantile model for 90 % intervals: each trains
     with early stopping on the last tenth of the period before the test, then
     afresh on all of it for the epoch count early stopping chose -- except
     the quantile model, which is not refitted: its validation windows
     calibrate its intervals (split conformal, fm.conformal_margin).
  4. Everything forecasts from every origin of the test period; RMSE and MAE
     in the series' units. Networks: mean and standard deviation over seeds,
     and the ensemble (the mean of the seeds' forecasts: one forecaster).
Writes results.json, results.md and one PNG per series into --out.

--cells hybrid adds the ARIMA + network hybrid (Zhang 2003), a forecaster of
its own, labelled so in every table (the pure LSTM's rows stay as they are):
a classical method (ETS or SARIMA) forecasts one step, and an LSTM forecasts
that method's next one-step error from a window of its past errors. It is
validated as it forecasts the test period: on each of the networks' blocks
its base is refitted (order search included) on everything before the block;
its configuration (base x window x units) is the best of its own search on
those blocks. The validation scores then pick one forecaster per series --
the pure LSTM, the GRU or the hybrid (the last tables); see Bench.hybrid.
"""
import argparse
import itertools
import json
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

import lstmkit
from lstmkit import plotting
from lstmkit.apps import baselines as bl
from lstmkit.apps import forecast_model as fm
from lstmkit.apps.forecast import coverage, errors
from lstmkit.data.calendar import Calendar
from lstmkit.data.series import DATASETS, SEASONS, load_dataset
from lstmkit.data.windows import chronological_split
from lstmkit.io import write_json, write_text

HERE = os.path.dirname(os.path.abspath(__file__))
# windows tried, and the multi-step horizon reported, per series
SERIES = {"sunspots": {"windows": (11, 22), "horizon": 5},
          "co2": {"windows": (26, 52), "horizon": 13},
          "elnino": {"windows": (12, 24), "horizon": 6},
          "elec_equip": {"windows": (12, 24), "horizon": 6},
          "unemp": {"windows": (8, 16), "horizon": 4}}
MODES = ("relative", "seasonal", "level")
FEATURES = ((), ("season", "month"))
INPUTS = ("window", "mode", "deseason", "features")
CONFIG = INPUTS + ("units", "dropout", "skip", "weight_decay", "lr", "lr_halflife")   # what a configuration is
# options of stages 3 and 4, and their defaults (lr 0: the run's --lr; lr_halflife 0: a constant rate)
NEW = {"skip": 0, "weight_decay": 0.0, "lr": 0.0, "lr_halflife": 0}
DECAYS = (0.01, 0.1)
RATES = ((0.002, 0), (0.001, 0), (0.0, 25))     # stage 4: (learning rate, epochs over which it halves; 0: constant)
STAGE2 = {"gru": ((32, 0.0), (64, 0.0), (32, 0.2), (64, 0.2)),          # units, dropout
          "lstm": tuple(itertools.product((8, 16, 32, 64), (0.0, 0.2)))}
VARIANTS = ("lstm",)                         # cells that try stage 1b (longer window, window mean), stages 3 and 4
CELLS = ("lstm", "gru")
LEVEL = 0.9
HYBRID = {"dropout": 0.0, "mode": "level"}                  # the residual network of --cells hybrid
HYBRID_SEARCH = {"units": (8, 16, 32)}                       # ... and what its validation search tries
BASES = ("ETS", "SARIMA")                                    # the hybrid's base: searched with the network
# the validation protocol of the networks' selection (results.json: each network's "fold_stats"): each fold's
# statistics (scaling, step sizes, seasonal profile) from the steps before its block. Scores of another protocol
# ("with_block", before 2026-11-30: statistics up to the block's end, the block included; a network without the
# field) are never reused for a selection of this one (Bench.cached).
FOLD_STATS = "before_block"


def hybrid_first_step(season):
    """The first step whose base error the hybrid's network sees: a base's first errors reflect its start-up."""
    return 2 * season + 2


def hybrid_windows(season):
    """The windows of past errors the hybrid's search tries: 12 and 24 steps, at most two seasons each
    (a season and two seasons when both caps meet)."""
    ws = sorted({min(12, 2 * season), min(24, 2 * season)})
    return ws if len(ws) == 2 else sorted({season, 2 * season})


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def key(cfg):
    """A configuration as a string (the options of stage 3 at their defaults if absent)."""
    return json.dumps({k: {**NEW, **cfg}[k] for k in CONFIG}, sort_keys=True)


def stage3_skips(best, season):
    """The skips stage 3 tries for the best configuration so far: over the last
    season + 1 steps (as a seasonal AR model reads) and over the whole window;
    and a window of three seasons with the season + 1 skip, if a season is at
    most 20 steps."""
    W, k = best["window"], min(best["window"], season + 1)
    tries = [{**NEW, **best, "skip": s} for s in sorted({k, W})]
    if season <= 20 and 3 * season != W:
        tries.append({**NEW, **best, "window": 3 * season, "skip": season + 1})
    return tries


class Bench:
    def __init__(self, args):
        self.a = args
        self.bar = None

    def rate(self, cfg, windows):
        """The learning rate of a configuration: its lr (0: the run's --lr), constant, or with lr_halflife = E
        > 0 halved every E epochs (exponential decay per update, an epoch being the updates of `windows`
        training windows in batches of --batch-size; a refit, on more windows, follows the same decay per
        update)."""
        lr, half = cfg.get("lr") or self.a.lr, cfg.get("lr_halflife", 0)
        if not half:
            return lr
        per_epoch = -(-int(windows) // self.a.batch_size)
        return lstmkit.ExponentialDecay(lr, decay_steps=half * per_epoch, decay_rate=0.5)

    def train(self, frame, kind, cell, cfg, H, cut, seed, refit, quantiles=None):
        a = self.a
        n = len(fm.training_origins(kind, frame.lookback(cfg["window"]), H, cut))
        lr = self.rate(cfg, n - max(1, int(round(n * a.val_fraction))))         # the windows fit() trains on
        model, hist, info = fm.fit(frame, kind, cell, cfg["units"], cfg["window"], H, cut,
                                   val_fraction=a.val_fraction, epochs=a.epochs, patience=a.patience,
                                   batch_size=a.batch_size, learning_rate=lr, seed=seed, dropout=cfg["dropout"],
                                   quantiles=quantiles, refit=refit, skip=cfg.get("skip", 0),
                                   weight_decay=cfg.get("weight_decay", 0.0))
        self.bar.update(1)
        return model, info

    def frame(self, v, cut, cal_args, cfg):
        return fm.Frame(v, 0, cut, Calendar(*cal_args, kinds=cfg["features"]), cfg["mode"], cfg["deseason"],
                        window=cfg["window"])

    def score(self, v, cut, cal_args, cell, cfg, before_block=True):
        """Validation RMSE (one step, in the series' units) by rolling origin:
        fold k validates on the k-th of the last `folds` blocks of the period
        before the test (each a tenth of it) and trains on everything before
        that block; the mean over the folds.

        The frame's statistics (scaling, step sizes, seasonal profile) come
        from the steps before the block only (before_block, the default and
        the protocol FOLD_STATS), as the test period's come from the steps
        before it; with before_block=False from everything up to the block's
        END, the block included: the leaky protocol of the selections before
        2026-11-30 (their recorded scores are so)."""
        a = self.a
        block = max(2, int(round(cut * a.val_fraction)))
        scores, epochs = [], []
        for k in range(a.folds):
            end = cut - k * block                                              # the fold's validation ends here
            frame = self.frame(v, end - block if before_block else end, cal_args, cfg)
            lr = self.rate(cfg, len(fm.training_origins("recursive", frame.lookback(cfg["window"]), 1, end)) - block)
            model, _, info = fm.fit(frame, "recursive", cell, cfg["units"], cfg["window"], 1, end,
                                    epochs=a.epochs, patience=a.patience, batch_size=a.batch_size,
                                    learning_rate=lr, seed=1000 + k, dropout=cfg["dropout"], val_windows=block,
                                    skip=cfg.get("skip", 0), weight_decay=cfg.get("weight_decay", 0.0))
            self.bar.update(1)
            W = cfg["window"]
            origins = fm.training_origins("recursive", frame.lookback(W), 1, end)[-block:]
            scores.append(rmse(fm.forecast_direct(model, frame, origins, W), frame.actual(origins, 1)))
            epochs.append(info["epochs"])
        return {**cfg, "validation_rmse": float(np.mean(scores)), "fold_rmse": scores, "epochs": epochs}

    def rescore(self, name, v, cut, cal_args, cell, log):
        """The earlier run's chosen configuration of `cell` (--reuse-stage1), scored again on the same folds with
        the frame's statistics from before each block (score(before_block=True)): comparable with the hybrid's
        validation score, whose base and scaling see nothing of the block either."""
        net = self.earlier(name).get("networks", {}).get(cell)
        if not net:
            return None
        cfg = net["config"]
        r = self.score(v, cut, cal_args, cell, cfg, before_block=True)
        old = min(x["validation_rmse"] for x in net["selection"])
        log(f"  {cell}: the chosen configuration's validation RMSE with statistics from before each block "
            f"{r['validation_rmse']:.4f} (with the block: {old:.4f})")
        return {"config": cfg, "validation_rmse": r["validation_rmse"], "fold_rmse": r["fold_rmse"],
                "epochs": r["epochs"], "validation_rmse_with_block": old}

    def earlier(self, name):
        """This series' results in an earlier run's results.json (--reuse-stage1), or {}."""
        if not self.a.reuse_stage1:
            return {}
        doc = json.loads(open(self.a.reuse_stage1, encoding="utf-8").read())
        same = ("folds", "epochs", "patience", "batch_size", "lr", "val_fraction", "test_fraction")
        if any(doc["settings"][k] != getattr(self.a, k) for k in same):
            raise SystemExit(f"--reuse-stage1: {self.a.reuse_stage1} was made with other settings")
        return doc["series"].get(name, {})

    def cached(self, name, cell):
        """Validation scores from an earlier run's results.json (--reuse-stage1), by configuration
        (any stage: the same configuration scores the same, the runs being deterministic) -- only scores made
        by this protocol (FOLD_STATS): an earlier network of the leaky protocol (no "fold_stats") gives none
        of its selection, only its chosen configuration's rescore (--rescore), which was scored this way."""
        nets = self.earlier(name).get("networks", {})
        net = nets.get(cell, {})
        if net.get("fold_stats") == FOLD_STATS:
            rows = net.get("selection", [])
        else:
            re = nets.get(cell + "_rescored")
            rows = [{**re["config"], "validation_rmse": re["validation_rmse"], "fold_rmse": re["fold_rmse"],
                     "epochs": re["epochs"]}] if re else []
        return {key(r): r for r in rows}

    def same_test(self, name, cell, cfg, frame, cut, o1, act1):
        """The earlier run's (--reuse-stage1) test results of `cell` if it chose the same configuration: its
        final trainings see nothing of the folds, so they do not depend on the validation protocol. Checked by
        training seed 0's one-step model again: its test RMSE must equal the earlier run's (relative 1e-6),
        else None (everything is trained). -> (results, seed 0's one-step forecasts) or None."""
        a = self.a
        old = self.earlier(name).get("networks", {}).get(cell)
        if not old or key(old["config"]) != key(cfg) or len(old["h1"]) != a.seeds or \
                (cell == "lstm" and a.intervals and "intervals" not in old):
            return None
        one, _ = self.train(frame, "recursive", cell, cfg, 1, cut, 0, refit=True)
        p1 = fm.forecast_direct(one, frame, o1, cfg["window"])
        if not np.isclose(rmse(p1, act1), old["h1"][0]["rmse"], rtol=1e-6, atol=0):
            return None
        keep = ("h1", "direct", "recursive", "epochs", "h1_ensemble", "direct_ensemble", "recursive_ensemble",
                "intervals", "intervals_calibrated")
        return {k: old[k] for k in keep if k in old}, p1

    def classical(self, name, y, cut, season, cal_args, log):
        """The classical methods fitted on y[:cut]. With --reuse-stage1, SARIMA fits only the orders the earlier
        run's search chose (one fit instead of the grid: the same model, the search being deterministic;
        series() checks that its test errors are the earlier run's)."""
        prior = self.earlier(name).get("baseline_info", {}).get("SARIMA")
        if not prior:
            return bl.Baselines(y, cut, season, Calendar(*cal_args), bl.NAMES, log=lambda m: log("  " + m))
        c = bl.Baselines(y, cut, season, Calendar(*cal_args), ("naive", "anomaly", "ets"),
                         log=lambda m: log("  " + m))
        pos = c.position(cut)[:cut] if season else None
        plan = bl.sarima_plan(y[:cut], season, pos)
        if (plan["d"], plan["D"], plan["trend"]) != (prior["d"], prior["D"], prior["trend"]):
            raise SystemExit(f"--reuse-stage1: {name}'s SARIMA differencing differs from the earlier run's")
        grid = [(tuple(prior["order"]), tuple(prior["seasonal_order"]), prior["fourier_pairs"])]
        c.sarima = bl.SARIMA({**plan, "grid": grid}).fit(y[:cut], season, pos)
        c.which.append("sarima")
        c.info["SARIMA"] = {**prior, "refitted": "the earlier run's choice only (--reuse-stage1)"}
        log(f"  SARIMA: refitted the earlier search's choice, {c.sarima.info['model']}")
        return c

    def select(self, name, v, cut, cal_args, cell, log):
        """Stage 1: the inputs (window x mode x deseasonalising x calendar) with 32
        units and no dropout; stage 2: units x dropout for the stage-1 winner.
        Each by the lowest mean validation RMSE."""
        rows = []
        cached = self.cached(name, cell)

        def scored(cfg):
            """The configuration's validation score: from --reuse-stage1's run if it has it, else trained."""
            cfg = {**NEW, **cfg}
            if key(cfg) in cached:
                self.bar.update(self.a.folds)
                return {**cached[key(cfg)], **NEW, **{k: cfg[k] for k in CONFIG}, "stage": cfg["stage"],
                        "reused": True}
            return self.score(v, cut, cal_args, cell, cfg)

        show = lambda r: log(f"    {cell} W={r['window']:<3} {r['mode']:<8} deseason={'yes' if r['deseason'] else 'no '} "
                             f"calendar={'yes' if r['features'] else 'no '} units={r['units']:<3} "
                             f"dropout={r['dropout']} skip={r.get('skip', 0)} weight decay={r.get('weight_decay', 0)} "
                             f"lr={r.get('lr') or self.a.lr} halving every {r.get('lr_halflife') or '-'} epochs: "
                             f"validation RMSE {r['validation_rmse']:.4f} "
                             f"(epochs {r['epochs']})")
        for W, mode, deseason, feats in itertools.product(SERIES[name]["windows"], MODES, (False, True), FEATURES):
            if deseason and mode == "seasonal":
                continue                                 # seasonal differences leave no profile to remove
            cfg = {"window": W, "mode": mode, "deseason": deseason, "features": list(feats), "units": 32,
                   "dropout": 0.0, "stage": 1}
            rows.append(scored(cfg))
            show(rows[-1])
        first = min(rows, key=lambda r: r["validation_rmse"])
        if cell in VARIANTS:
            longer = {**first, "window": 2 * max(SERIES[name]["windows"])}
            tries = [longer] + ([{**first, "mode": m} for m in fm.WINDOWED] if first["mode"] in ("relative", "level")
                                else [])
            for cfg in tries:
                rows.append(scored({**{k: cfg[k] for k in INPUTS}, "units": 32, "dropout": 0.0, "stage": "1b"}))
                show(rows[-1])
            first = min(rows, key=lambda r: r["validation_rmse"])
        for units, dropout in STAGE2[cell]:
            if (units, dropout) == (32, 0.0):
                continue
            rows.append(scored({**{k: first[k] for k in INPUTS}, "units": units, "dropout": dropout, "stage": 2}))
            show(rows[-1])
        best = min([first] + [r for r in rows if r["stage"] == 2], key=lambda r: r["validation_rmse"])
        if cell in VARIANTS:                             # stage 3: the linear skip, then weight decay
            for cfg in stage3_skips(best, SEASONS[name]):
                rows.append(scored({**{k: cfg[k] for k in CONFIG}, "stage": 3}))
                show(rows[-1])
            best = min([best] + [r for r in rows if r["stage"] == 3], key=lambda r: r["validation_rmse"])
            for wd in DECAYS:
                rows.append(scored({**{k: best.get(k, 0) for k in CONFIG}, "weight_decay": wd, "stage": 3}))
                show(rows[-1])
            best = min([best] + [r for r in rows if r["stage"] == 3], key=lambda r: r["validation_rmse"])
            for lr, half in RATES:                       # stage 4: a lower learning rate, or a decaying one
                rows.append(scored({**{k: best.get(k, 0) for k in CONFIG}, "lr": lr, "lr_halflife": half,
                                    "stage": 4}))
                show(rows[-1])
            best = min([best] + [r for r in rows if r["stage"] == 4], key=lambda r: r["validation_rmse"])
        return {**NEW, **{k: best[k] for k in CONFIG if k in best}}, rows

    def series(self, name, log):
        a, spec = self.a, SERIES[name]
        v, cols, dates = load_dataset(name)
        y, season, N, H = v[:, 0], SEASONS[name], len(v), spec["horizon"]
        cut = chronological_split(N, a.test_fraction)
        cal_args = (N, season, dates)
        o1, oH = np.arange(cut - 1, N - 1), np.arange(cut - 1, N - H)         # test origins
        act1, actH = y[o1 + 1][:, None], y[oH[:, None] + 1 + np.arange(H)]
        out = {"steps": N, "season": season, "horizon": H, "test_start": str(dates[cut])[:10],
               "test_origins": {"1": len(o1), str(H): len(oH)}, "description": DATASETS[name]}

        log(f"{name}: {N} steps, season {season}, test period from {out['test_start']} "
            f"({len(o1)} one-step origins)")
        t0 = time.time()
        classical = self.classical(name, y, cut, season, cal_args, log)
        fc1, bands1 = classical.forecast(o1, 1, LEVEL)
        fcH, bandsH = classical.forecast(oH, H, LEVEL)
        out["baselines"] = {k: {"h1": errors(act1, fc1[k]), "multi": errors(actH, fcH[k]),
                                "at_H": errors(actH[:, -1], fcH[k][:, -1])} for k in fc1}
        prior = self.earlier(name).get("baselines")
        if prior and not np.isclose(prior["SARIMA"]["h1"]["rmse"], out["baselines"]["SARIMA"]["h1"]["rmse"],
                                    rtol=1e-9, atol=0):
            raise SystemExit(f"--reuse-stage1: {name}'s SARIMA does not reproduce the earlier run's test errors")
        out["baseline_info"] = classical.info
        out["baseline_intervals"] = {k: {"h1": coverage(act1, *bands1[k]), "multi": coverage(actH, *bandsH[k])}
                                     for k in bands1}
        out["baseline_seconds"] = time.time() - t0

        out["networks"] = {}
        for cell in a.cells:
            t0 = time.time()
            if cell == "hybrid":
                out["networks"]["hybrid"] = self.hybrid(name, y, cut, classical, cal_args, o1, act1, log)
                if a.rescore:
                    for c in a.rescore:
                        r = self.rescore(name, v, cut, cal_args, c, log)
                        if r:
                            out["networks"][c + "_rescored"] = r
                continue
            cfg, grid = self.select(name, v, cut, cal_args, cell, log)
            log(f"  {cell}: chose {cfg}")
            frame = self.frame(v, cut, cal_args, cfg)
            W = cfg["window"]
            res = {"config": cfg, "selection": grid, "fold_stats": FOLD_STATS, "h1": [], "direct": [],
                   "recursive": [], "epochs": []}
            same = self.same_test(name, cell, cfg, frame, cut, o1, act1)
            if same:
                self.bar.update(a.seeds * (3 if cell == "lstm" and a.intervals else 2) - 1)
                if cell == "lstm":
                    self.plot(name, dates, o1, act1, same[1], fc1)
                res.update({**same[0], "test_reused": "the earlier run's test results (the same configuration; "
                                                  "seed 0's one-step model trained again reproduces them)",
                            "seconds": time.time() - t0})
                out["networks"][cell] = res
                log(f"  {cell}: the earlier run's test results (the same configuration, checked on seed 0): "
                    f"one-step test RMSE {np.mean([r['rmse'] for r in res['h1']]):.4f}")
                continue
            preds = {"h1": [], "direct": [], "recursive": []}
            qs = []
            for seed in range(a.seeds):
                one, info = self.train(frame, "recursive", cell, cfg, 1, cut, seed, refit=True)
                direct, info_d = self.train(frame, "direct", cell, cfg, H, cut, seed, refit=True)
                res["epochs"].append([info["epochs"], info_d["epochs"]])
                p1 = fm.forecast_direct(one, frame, o1, W)
                pr = fm.forecast_recursive(one, frame, oH, W, H)
                pd = fm.forecast_direct(direct, frame, oH, W)
                for key, p, act in (("h1", p1, act1), ("direct", pd, actH), ("recursive", pr, actH)):
                    res[key].append({**errors(act, p), "at_H": errors(act[:, -1], p[:, -1])})
                    preds[key].append(p)
                if cell == "lstm" and a.intervals:
                    quant = [round((1 - LEVEL) / 2, 6), 0.5, round(1 - (1 - LEVEL) / 2, 6)]
                    qm, qinfo = self.train(frame, "quantiles", cell, cfg, H, cut, seed, refit=False, quantiles=quant)
                    vo = qinfo["validation_origins"]
                    qv = fm.forecast_quantiles(qm, frame, vo, W, 3)
                    margin = fm.conformal_margin(qv[..., 0], qv[..., 2], frame.actual(vo, H), LEVEL)   # (H,)
                    qs.append((fm.forecast_quantiles(qm, frame, oH, W, 3), margin))
            for key, act in (("h1", act1), ("direct", actH), ("recursive", actH)):
                ens = np.mean(preds[key], axis=0)
                res[key + "_ensemble"] = {**errors(act, ens), "at_H": errors(act[:, -1], ens[:, -1])}
            if qs:
                res["intervals"] = [coverage(actH, q[..., 0], q[..., 2]) for q, _ in qs]
                res["intervals_calibrated"] = [{**coverage(actH, q[..., 0] - m, q[..., 2] + m), "margin": m.tolist()}
                                               for q, m in qs]
            res["seconds"] = time.time() - t0
            out["networks"][cell] = res
            if cell == "lstm":
                self.plot(name, dates, o1, act1, preds["h1"][0], fc1)
            seeds = ", ".join(f"{r['rmse']:.4f}" for r in res["h1"])
            log(f"  {cell}: one-step test RMSE {np.mean([r['rmse'] for r in res['h1']]):.4f} (seeds {seeds})")
        return out

    def base_folds(self, name, y, cut, cal_args, log):
        """The hybrid's bases on the validation folds, refitted as for the test period: for fold k (the
        k-th of the last `folds` blocks before the test, as in score()), ETS and SARIMA -- SARIMA's
        differencing and AICc order search included -- fitted on everything before the block, then
        filtered along the series with those parameters. -> per fold {base: one-step errors at steps
        first_step .. end - 1} (the block is their last `block` entries), {base: its RMSE on each fold's
        block}, and the block length."""
        a, season = self.a, SEASONS[name]
        start = hybrid_first_step(season)
        block = max(2, int(round(cut * a.val_fraction)))
        prior = self.earlier(name).get("networks", {}).get("hybrid", {}).get("base_fold_errors")
        if prior and len(prior) == a.folds and prior[0].get("first_step") == start:
            # the earlier run's fold fits (deterministic: the same data, search and fits)
            log("  hybrid: the bases' fold fits of the earlier run (--reuse-stage1)")
            self.bar.update(a.folds)
            folds = [{b: np.asarray(f[b]) for b in BASES} for f in prior]
            return folds, {b: [rmse(f[b][-block:], 0) for f in folds] for b in BASES}, block
        folds = []
        for k in range(a.folds):
            end = cut - k * block                                              # the fold's block ends here
            fit = bl.Baselines(y[:end], end - block, season, Calendar(*cal_args), ("ets", "sarima"),
                               log=lambda m: log(f"  (hybrid fold {k + 1}) " + m))
            fc, _ = fit.forecast(np.arange(start - 1, end - 1), 1, LEVEL)
            folds.append({b: y[start:end] - fc[b][:, 0] for b in BASES})
            self.bar.update(1)
        fold_rmse = {b: [rmse(f[b][-block:], 0) for f in folds] for b in BASES}
        return folds, fold_rmse, block

    def hybrid(self, name, y, cut, classical, cal_args, o1, act1, log):
        """The ARIMA + network hybrid (Zhang 2003), chosen on validation like the networks.

        1. Validation, rolling origin on the networks' blocks (score()): for
           each fold the base -- ETS or SARIMA -- is fitted (orders and
           parameters) on everything before the fold's block, exactly as it is
           fitted before the test period (base_folds); the residual network
           trains on that fit's one-step errors up to the block's end (early
           stopping on the block, as the networks' folds) and forecasts the next
           error; the hybrid's error on the block is the base's error minus that
           forecast. A small search of its own: base x window x units
           (HYBRID_SEARCH); epochs by early stopping. The lowest mean RMSE
           over the folds is the hybrid's configuration and validation score,
           comparable with the LSTM's and the GRU's validation_rmse.
        2. On the test period: the chosen base as fitted before the test period
           (the baseline of the table), filtered along the series with those
           parameters, forecasts one step from every origin; the network reads a
           window of its past one-step errors and forecasts the next one; the sum
           is the hybrid's forecast. The network trains on errors before the test
           period only (early stopping on the last tenth of them, then refitted)."""
        a, season, N = self.a, SEASONS[name], len(y)
        start = hybrid_first_step(season)             # a base's first errors reflect its start-up
        folds, base_folds, block = self.base_folds(name, y, cut, cal_args, log)
        base_val = {b: float(np.mean(v)) for b, v in base_folds.items()}
        log("  hybrid: the bases' one-step validation RMSE (refitted before each block) " +
            ", ".join(f"{k} {v:.4f}" for k, v in base_val.items()))
        rows = []
        for base, W, units in itertools.product(BASES, hybrid_windows(season), HYBRID_SEARCH["units"]):
            scores, epochs = [], []
            for k, f in enumerate(folds):
                resid = np.asarray(f[base])                                    # step t is step start + t of y
                end = len(resid)
                # the scaling from the errors before the block (as the test period's from those before it)
                frame = fm.Frame(resid[:, None], 0, end - block, Calendar(end, None, None, []), HYBRID["mode"])
                model, _, info = fm.fit(frame, "recursive", "lstm", units, W, 1, end, epochs=a.epochs,
                                        patience=a.patience, batch_size=a.batch_size, learning_rate=a.lr,
                                        seed=1000 + k, val_windows=block)
                self.bar.update(1)
                origins = fm.training_origins("recursive", frame.lookback(W), 1, end)[-block:]
                scores.append(rmse(fm.forecast_direct(model, frame, origins, W), frame.actual(origins, 1)))
                epochs.append(info["epochs"])
            rows.append({"base": base, "window": W, "units": units, "validation_rmse": float(np.mean(scores)),
                         "fold_rmse": scores, "epochs": epochs})
            log(f"    hybrid {base} + LSTM({units}) on a window of {W} errors: validation RMSE "
                f"{rows[-1]['validation_rmse']:.4f} (epochs {epochs})")
        best = min(rows, key=lambda r: r["validation_rmse"])
        chosen, W, units = best["base"], best["window"], best["units"]
        log(f"  hybrid: chose {chosen} + LSTM({units}), window {W}: validation RMSE {best['validation_rmse']:.4f}")
        res = {"config": {**HYBRID, "units": units, "window": W, "first_step": int(start), "base": chosen},
               "base_validation_rmse": base_val, "base_fold_rmse": base_folds, "validation_rmse": best["validation_rmse"],
               "fold_rmse": best["fold_rmse"], "selection": rows,
               "protocol": "base refitted (orders and parameters) and errors scaled before each validation block",
               "base_fold_errors": [{"first_step": int(start), **{b: f[b].tolist() for b in BASES}} for f in folds]}
        old = self.earlier(name).get("networks", {}).get("hybrid")
        if old and {"base": "SARIMA", **old["config"]} == res["config"] and len(old["h1"]) == a.seeds:
            # the same forecaster on the test period as the earlier run's (an earlier run without a base used
            # SARIMA; the runs are deterministic): its test results
            self.bar.update(a.seeds)
            log(f"  {chosen} + LSTM on its errors: the earlier run's test results (the same forecaster)")
            return {**res, "h1": old["h1"], "h1_ensemble": old["h1_ensemble"],
                    "base_h1": old.get("base_h1", old.get("sarima_h1")), "reused": True}
        origins = np.arange(start - 1, N - 1)
        fc, _ = classical.forecast(origins, 1, LEVEL)
        base = np.full(N, np.nan)
        base[origins + 1] = fc[chosen][:, 0]
        resid = (y - base)[start:]                    # step t of resid is step start + t of y
        frame = fm.Frame(resid[:, None], 0, cut - start, Calendar(len(resid), None, None, []), HYBRID["mode"])
        res.update({"h1": [], "base_h1": errors(act1, base[o1 + 1][:, None])})
        preds = []
        for seed in range(a.seeds):
            model, _, _ = fm.fit(frame, "recursive", "lstm", units, W, 1, cut - start,
                                 val_fraction=a.val_fraction, epochs=a.epochs, patience=a.patience,
                                 batch_size=a.batch_size, learning_rate=a.lr, seed=seed, refit=True)
            self.bar.update(1)
            p = base[o1 + 1][:, None] + fm.forecast_direct(model, frame, o1 - start, W)   # (M, 1)
            res["h1"].append(errors(act1, p))
            preds.append(p)
        res["h1_ensemble"] = errors(act1, np.mean(preds, axis=0))
        log(f"  {chosen} + LSTM on its errors: one-step test RMSE {np.mean([r['rmse'] for r in res['h1']]):.4f} "
            f"({chosen} alone {res['base_h1']['rmse']:.4f})")
        return res

    def plot(self, name, dates, o1, act1, p1, fc1):
        best = sorted((k for k in fc1 if k != "last value"), key=lambda k: rmse(act1, fc1[k]))[:2]
        plotting.forecast(act1[:, 0], {"LSTM (seed 0)": p1[:, 0], **{k: fc1[k][:, 0] for k in best}},
                          os.path.join(self.a.out, f"{name}.png"),
                          f"{name}: one step ahead on the test period", x=dates[o1 + 1])


def verdict(x, best):
    """A forecaster's RMSE against the best classical method's: beats (below), matches (at most 2 % above),
    loses."""
    return "beats" if x < best else ("matches" if x <= best * 1.02 else "loses")


def choose(nets):
    """One forecaster by validation RMSE on the same blocks: nets {name: results} in order of preference
    (a tie keeps the first, the pure LSTM). A forecaster's score is its chosen configuration's: the
    validation_rmse it records, or else the lowest of its selection. -> (name, {name: score})."""
    vs = {k: n["validation_rmse"] if "validation_rmse" in n else min(x["validation_rmse"] for x in n["selection"])
          for k, n in nets.items()}
    return min(vs, key=lambda k: vs[k]), vs


def fmt(e, key="rmse"):
    return f"{e[key]:.4g}"


def spread(runs, key="rmse", sub=None):
    vals = [(r[sub] if sub else r)[key] for r in runs]
    return f"{np.mean(vals):.4g} ± {np.std(vals):.2g}"


def table(results, seeds):
    """The Markdown tables of the README."""
    lines = []
    for title, key, net_key, sub in (("Horizon 1 (one step ahead)", "h1", "h1", None),
                                     ("Multi-step: RMSE over steps 1..H", "multi", None, None)):
        lines += [f"### {title}", ""]
        if key == "h1":
            lines += ["| series | LSTM | GRU | LSTM ensemble | GRU ensemble | last value | seasonal naive | "
                      "seasonal anomaly | ETS | SARIMA | best |", "|" + "---|" * 11]
        else:
            lines += ["| series (H) | LSTM direct | LSTM recursive | GRU direct | GRU recursive | last value | "
                      "seasonal naive | seasonal anomaly | ETS | SARIMA | best |", "|" + "---|" * 11]
        for name, r in results.items():
            s = r["season"]
            b = r["baselines"]
            base = [b["last value"][key], b[f"seasonal naive ({s})"][key], b[f"seasonal anomaly ({s})"][key],
                    b["ETS"][key], b["SARIMA"][key]]
            nets = r["networks"]
            if key == "h1":
                cells = [spread(nets[c]["h1"]) for c in ("lstm", "gru")] + \
                        [fmt(nets[c]["h1_ensemble"]) for c in ("lstm", "gru")]
                cand = {"LSTM": np.mean([x["rmse"] for x in nets["lstm"]["h1"]]),
                        "GRU": np.mean([x["rmse"] for x in nets["gru"]["h1"]])}
                row = f"| {name} | "
            else:
                cells = [spread(nets[c][k]) for c in ("lstm", "gru") for k in ("direct", "recursive")]
                cand = {f"{c.upper()} {k}": np.mean([x["rmse"] for x in nets[c][k]])
                        for c in ("lstm", "gru") for k in ("direct", "recursive")}
                row = f"| {name} ({r['horizon']}) | "
            names = ["last value", "seasonal naive", "seasonal anomaly", "ETS", "SARIMA"]
            cand.update({n: e["rmse"] for n, e in zip(names, base)})
            lines.append(row + " | ".join(cells + [fmt(e) for e in base]) + f" | {min(cand, key=cand.get)} |")
        lines.append("")
    lines += ["### Horizon 1, MAE", "",
              "| series | LSTM | GRU | last value | seasonal naive | seasonal anomaly | ETS | SARIMA | best |",
              "|" + "---|" * 9]
    for name, r in results.items():
        s, b, nets = r["season"], r["baselines"], r["networks"]
        base = {"last value": b["last value"]["h1"], "seasonal naive": b[f"seasonal naive ({s})"]["h1"],
                "seasonal anomaly": b[f"seasonal anomaly ({s})"]["h1"], "ETS": b["ETS"]["h1"],
                "SARIMA": b["SARIMA"]["h1"]}
        cand = {c.upper(): np.mean([x["mae"] for x in nets[c]["h1"]]) for c in ("lstm", "gru")}
        cand.update({n: e["mae"] for n, e in base.items()})
        lines.append(f"| {name} | " + " | ".join([spread(nets[c]["h1"], "mae") for c in ("lstm", "gru")] +
                                                [fmt(e, "mae") for e in base.values()]) +
                     f" | {min(cand, key=cand.get)} |")
    lines.append("")
    lines += ["RMSE and MAE in each series' units over the test period; networks: mean ± standard deviation over "
              f"{seeds} seeds; ensemble: the mean of the {seeds} seeds' forecasts. Multi-step MAE in results.json.",
              ""]
    lines += ["### Does the LSTM match the best classical method at horizon 1?", "",
              "| series | best classical | LSTM (mean over seeds) | ratio | verdict | LSTM ensemble "
              f"({seeds} seeds) | ratio | verdict |", "|" + "---|" * 8]
    won = lambda vs: [n for n, v in vs.items() if v != "loses"]
    said = lambda vs: f"{len(won(vs))} of {len(vs)} series ({', '.join(won(vs)) or 'none'})"
    single, ensemble, best_rmse = {}, {}, {}
    for name, r in results.items():
        lstm = np.mean([x["rmse"] for x in r["networks"]["lstm"]["h1"]])
        sd = np.std([x["rmse"] for x in r["networks"]["lstm"]["h1"]])
        ens = r["networks"]["lstm"]["h1_ensemble"]["rmse"]
        best = min(r["baselines"], key=lambda k: r["baselines"][k]["h1"]["rmse"])
        br = best_rmse[name] = r["baselines"][best]["h1"]["rmse"]
        single[name], ensemble[name] = verdict(lstm, br), verdict(ens, br)
        lines.append(f"| {name} | {best} {br:.4g} | {lstm:.4g} ± {sd:.2g} | {lstm / br:.3f} | {single[name]} | "
                     f"{ens:.4g} | {ens / br:.3f} | {ensemble[name]} |")
    lines += ["", f"The pure LSTM matches or beats the best classical method on {said(single)}; as an ensemble "
              f"on {said(ensemble)}."]
    hyb = {n: r["networks"]["hybrid"] for n, r in results.items() if "hybrid" in r["networks"]}
    if hyb:
        lines += ["", "### The hybrid: an LSTM on the one-step errors of a classical method, chosen on validation",
                  "", "A classical model corrected by a network (the ARIMA + network hybrid of Zhang 2003), not the "
                  "pure LSTM. It is validated on the networks' rolling-origin blocks, and as it forecasts the test "
                  "period: before each block its base (ETS or SARIMA, orders searched and parameters fitted) is "
                  "refitted on everything before the block, and its network trains on that fit's one-step errors. "
                  "Its own search, on those blocks: base x window of past errors x units "
                  f"({' / '.join(map(str, HYBRID_SEARCH['units']))}); epochs by early stopping. Ratios are to the "
                  "best classical method on the test period, as above.", "",
                  "| series | validation RMSE: ETS / SARIMA alone | chosen hybrid | its validation RMSE | base on "
                  "test | hybrid (mean over seeds) | ratio | verdict | hybrid ensemble | ratio | verdict |",
                  "|" + "---|" * 11]
        h_single, h_ens = {}, {}
        for name, h in hyb.items():
            c = h["config"]
            base = c.get("base", "SARIMA")
            bv = h.get("base_validation_rmse")
            bt = h.get("base_h1", h.get("sarima_h1"))["rmse"]
            m, sd = np.mean([x["rmse"] for x in h["h1"]]), np.std([x["rmse"] for x in h["h1"]])
            e, br = h["h1_ensemble"]["rmse"], best_rmse[name]
            h_single[name], h_ens[name] = verdict(m, br), verdict(e, br)
            lines.append(f"| {name} | {' / '.join(f'{bv[k]:.4g}' for k in BASES) if bv else '-'} | "
                         f"{base} + LSTM({c['units']}), window {c['window']} | "
                         f"{h['validation_rmse']:.4g} | {bt:.4g} | "
                         f"{m:.4g} ± {sd:.2g} | {m / br:.3f} | {h_single[name]} | {e:.4g} | {e / br:.3f} | "
                         f"{h_ens[name]} |")
        lines += ["", f"The hybrid matches or beats the best classical method on {said(h_single)}; as an ensemble "
                  f"on {said(h_ens)}."]
        both = [n for n in hyb if "validation_rmse" in hyb[n]]
        if both:
            fair = any(c + "_rescored" in results[n]["networks"] or
                       results[n]["networks"].get(c, {}).get("fold_stats") == FOLD_STATS for n in both for c in CELLS)
            lines += ["", "### One forecaster per series, chosen on validation: the pure LSTM, the GRU or the hybrid",
                      "", "Each series' pick is the lowest validation RMSE on the same rolling-origin blocks (a tie "
                      "keeps the pure LSTM)."]
            if fair:
                lines[-1] += (" Every score here takes each fold's scaling, step sizes and seasonal profile from the "
                              "steps before its block (as the hybrid's, and as for the test period): a network "
                              "selected so shows its selection's score; a network selected by the earlier, leaky "
                              "protocol (statistics up to the block's end) shows its chosen configuration scored "
                              "again, with the leaky score in brackets, and takes no part if not scored again.")
            else:
                lines[-1] += (" Each score is the best of that forecaster's own search: about 30 configurations for "
                              "the LSTM, 23 for the GRU, " + f"{len(BASES) * 2 * len(HYBRID_SEARCH['units'])}"
                              " for the hybrid.")
            lines += ["", "| series | LSTM validation RMSE | GRU | hybrid | chosen | test RMSE (mean over seeds) | "
                      "ratio | verdict | ensemble | ratio | verdict |", "|" + "---|" * 11]
            c_single, c_ens, picks = {}, {}, {}
            for name in both:
                r = results[name]
                nets = {"LSTM": r["networks"]["lstm"], "GRU": r["networks"].get("gru"), "hybrid": hyb[name]}
                shown = {}
                if fair:
                    for c, k in (("lstm", "LSTM"), ("gru", "GRU")):
                        if nets[k] and nets[k].get("fold_stats") == FOLD_STATS:
                            continue                                   # its own selection's score is fair
                        re = r["networks"].get(c + "_rescored")
                        nets[k] = {**nets[k], "validation_rmse": re["validation_rmse"]} if re else None
                        if re:
                            shown[k] = f"{re['validation_rmse']:.4g} ({re['validation_rmse_with_block']:.4g})"
                pick, vs = choose({k: v for k, v in nets.items() if v})
                picks[name] = (pick, nets[pick])
                m = np.mean([x["rmse"] for x in nets[pick]["h1"]])
                e, br = nets[pick]["h1_ensemble"]["rmse"], best_rmse[name]
                c_single[name], c_ens[name] = verdict(m, br), verdict(e, br)
                lines.append(f"| {name} | " + " | ".join(shown.get(k, f"{vs[k]:.4g}" if k in vs else "-") for k in nets) +
                             f" | {pick} | {m:.4g} | {m / br:.3f} | {c_single[name]} | {e:.4g} | {e / br:.3f} | "
                             f"{c_ens[name]} |")
            lines += ["", f"Chosen on validation, the forecaster matches or beats the best classical method "
                      f"on {said(c_single)}; as an ensemble on {said(c_ens)}."]
            names = ["last value", "seasonal naive", "seasonal anomaly", "ETS", "SARIMA"]
            lines += ["", "### Horizon 1: the pure LSTM, the hybrid and the validation pick against every classical "
                      "method", "", "RMSE, networks as the mean over seeds. The last column names every classical "
                      "method whose test RMSE is below the pick's.", "",
                      "| series | pure LSTM | hybrid | picked on validation | " + " | ".join(names) +
                      " | classical methods that beat the pick |", "|" + "---|" * 10]
            for name in both:
                r, s = results[name], results[name]["season"]
                b = r["baselines"]
                cl = dict(zip(names, [b["last value"]["h1"]["rmse"], b[f"seasonal naive ({s})"]["h1"]["rmse"],
                                      b[f"seasonal anomaly ({s})"]["h1"]["rmse"], b["ETS"]["h1"]["rmse"],
                                      b["SARIMA"]["h1"]["rmse"]]))
                mean = lambda net: np.mean([x["rmse"] for x in net["h1"]])
                pick, net = picks[name]
                beat = [f"{k} ({v:.4g})" for k, v in cl.items() if v < mean(net)]
                lines.append(f"| {name} | {mean(r['networks']['lstm']):.4g} | {mean(hyb[name]):.4g} | {pick} "
                             f"{mean(net):.4g} | " + " | ".join(f"{v:.4g}" for v in cl.values()) +
                             f" | {', '.join(beat) or 'none'} |")
    lines += ["", "beats: the LSTM's RMSE (the mean over seeds of single models; or the ensemble, the mean of the "
              "seeds' forecasts, which is one forecaster) is below the best classical method's; matches: at most "
              "2 % above it; loses: more than 2 % above.", ""]
    lines += ["### 90 % prediction intervals on the test period (steps 1..H)", "",
              "| series | LSTM quantile model: coverage | width | calibrated (conformal): coverage | width | "
              "SARIMA: coverage | width |", "|" + "---|" * 7]
    cov = lambda q: (f"{np.mean([x['coverage'] for x in q]):.1%} ± {np.std([x['coverage'] for x in q]):.1%} | "
                     f"{np.mean([x['width'] for x in q]):.4g}")
    for name, r in results.items():
        q, qc = r["networks"]["lstm"].get("intervals"), r["networks"]["lstm"].get("intervals_calibrated")
        s = r["baseline_intervals"]["SARIMA"]["multi"]
        if q:
            lines.append(f"| {name} | {cov(q)} | {cov(qc) if qc else '- | -'} | {s['coverage']:.1%} | {s['width']:.4g} |")
    lines += ["", "Calibrated: each quantile model's interval widened (or narrowed) per horizon step by the split "
              "conformal margin from its validation windows, which it did not train on.", ""]
    lines += ["", "### What each series got", "",
              "| series | LSTM configuration | GRU configuration | ETS | SARIMA |", "|---|---|---|---|---|"]
    for name, r in results.items():
        c = {k: r["networks"][k]["config"] for k in ("lstm", "gru")}
        desc = lambda x: (f"window {x['window']}, {x['mode']}{', deseasonalised' if x['deseason'] else ''}, "
                          f"calendar {'yes' if x['features'] else 'no'}, {x['units']} units"
                          f"{', dropout ' + str(x['dropout']) if x['dropout'] else ''}"
                          f"{', linear skip over ' + str(x['skip']) + ' steps' if x.get('skip') else ''}"
                          f"{', weight decay ' + str(x['weight_decay']) if x.get('weight_decay') else ''}"
                          f"{', learning rate ' + str(x['lr']) if x.get('lr') else ''}"
                          f"{', learning rate halved every ' + str(x['lr_halflife']) + ' epochs' if x.get('lr_halflife') else ''}")
        leaky = lambda k: "" if r["networks"][k].get("fold_stats") == FOLD_STATS else " (chosen by leaky fold scores)"
        lines.append(f"| {name} | {desc(c['lstm'])}{leaky('lstm')} | {desc(c['gru'])}{leaky('gru')} | "
                     f"{r['baseline_info']['ETS']['model']} | {r['baseline_info']['SARIMA']['model']} |")
    if any(r["networks"][k].get("fold_stats") != FOLD_STATS for r in results.values() for k in ("lstm", "gru")):
        lines += ["", "Chosen by leaky fold scores: selected before 2026-11-30, when each validation fold's statistics "
                  "(scaling, step sizes, seasonal profile) included the scored block; every other configuration was "
                  "chosen with statistics from before the block (FOLD_STATS)."]
    return "\n".join(lines) + "\n"


def combine(dirs, out):
    """One table from several runs (same settings, different series)."""
    docs = [json.loads(open(os.path.join(d, "results.json"), encoding="utf-8").read()) for d in dirs]
    pick = lambda st: {k: v for k, v in st.items() if k not in ("series", "combine", "cells", "reuse_stage1", "rescore",
                                                                     "fold_stats")}
    if any(pick(d["settings"]) != pick(docs[0]["settings"]) for d in docs):
        raise SystemExit(f"combine: the runs in {dirs} were made with different settings")
    results = {}
    for d in docs:                       # runs may hold different series, or different cells of one series
        for name, r in d["series"].items():
            if name in results:
                results[name] = {**results[name], "networks": {**results[name]["networks"], **r["networks"]}}
            else:
                results[name] = r
    order = [n for n in SERIES if n in results]
    results = {n: results[n] for n in order}
    seeds = docs[0]["settings"]["seeds"]
    cells = sorted({c for r in results.values() for c in r["networks"]})
    os.makedirs(out, exist_ok=True)
    doc = {"lstmkit": docs[0]["lstmkit"], "settings": {**docs[0]["settings"], "series": ",".join(order),
                                                       "cells": [c for c in CELLS + ("hybrid",) if c in cells]},
           "seconds": sum(d["seconds"] for d in docs),
           "parts": [{"series": list(d["series"]), "cells": d["settings"]["cells"], "seconds": d["seconds"]}
                     for d in docs], "series": results}
    write_json(os.path.join(out, "results.json"), doc)
    write_text(os.path.join(out, "results.md"), table(results, seeds))
    print(table(results, seeds))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", default=",".join(SERIES), help="comma-separated, of " + ", ".join(SERIES))
    p.add_argument("--seeds", type=int, default=3, help="seeds per network (mean and spread)")
    p.add_argument("--folds", type=int, default=3,
                   help="rolling-origin validation folds per configuration when choosing (one seed each)")
    p.add_argument("--cells", default=",".join(CELLS),
                   help="networks, comma-separated: lstm, gru, and hybrid (ETS or SARIMA + an LSTM on its "
                        "one-step errors, both chosen on validation)")
    p.add_argument("--epochs", type=int, default=200, help="at most; early stopping decides")
    p.add_argument("--patience", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="length of a validation block, as a fraction of the period before the test")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--no-intervals", dest="intervals", action="store_false")
    p.add_argument("--reuse-stage1", metavar="RESULTS_JSON",
                   help="take the validation scores of configurations an earlier run's results.json already "
                        "scored (same settings; any stage) instead of training them again -- only scores of this "
                        "run's protocol (fold statistics from before each block; of an earlier, leaky selection only "
                        "its --rescore'd choice); also its SARIMA orders (one fit, not the search), its hybrid's test "
                        "results if the hybrid is the same, and a network's test results if its configuration is "
                        "the same (checked: seed 0's one-step model is trained again and must reproduce them)")
    p.add_argument("--rescore", default="", metavar="CELLS",
                   help="with --cells hybrid and --reuse-stage1: score the earlier run's chosen configuration of "
                        "these cells (comma-separated: lstm, gru) again with each fold's statistics from before "
                        "its block, as the hybrid's; the pick between them then uses these scores")
    p.add_argument("--out", default=HERE, help="where results.json, results.md and the plots go")
    p.add_argument("--combine", nargs="+", metavar="DIR",
                   help="train nothing: join the results.json of runs over parts of the series (e.g. run in "
                        "parallel) into one results.json and results.md in --out")
    a = p.parse_args(argv)
    if a.combine:
        return combine(a.combine, a.out)
    a.cells = a.cells.split(",")
    a.rescore = [c for c in a.rescore.split(",") if c]
    a.fold_stats = FOLD_STATS                       # recorded in results.json's settings (the protocol)
    if set(a.rescore) - set(CELLS):
        p.error(f"unknown cells to rescore {sorted(set(a.rescore) - set(CELLS))}; expected some of lstm, gru")
    if a.rescore and not ("hybrid" in a.cells and a.reuse_stage1):
        p.error("--rescore needs --cells hybrid and --reuse-stage1 (the run whose choices it scores again)")
    if set(a.cells) - set(CELLS + ("hybrid",)):
        p.error(f"unknown cells {sorted(set(a.cells) - set(CELLS + ('hybrid',)))}; expected some of lstm, gru, hybrid")
    names = a.series.split(",")
    bad = [n for n in names if n not in SERIES]
    if bad:
        p.error(f"unknown series {bad}; expected some of {list(SERIES)}")
    os.makedirs(a.out, exist_ok=True)
    b = Bench(a)
    stage1 = max(len(SERIES[n]["windows"]) for n in names) * (2 * len(MODES) - 1) * len(FEATURES)
    hyb = lambda n: a.seeds + a.folds * (1 + len(BASES) * len(hybrid_windows(SEASONS[n])) * len(HYBRID_SEARCH["units"]))
    per_cell = lambda c: 0 if c == "hybrid" else (stage1 + (3 + 3 + len(DECAYS) + len(RATES) if c in VARIANTS else 0) + len(STAGE2[c]) - 1) * a.folds \
        + a.seeds * 2
    total = len(names) * (sum(per_cell(c) for c in a.cells) + (a.seeds if "lstm" in a.cells and a.intervals else 0)) \
        + (sum(hyb(n) for n in names) if "hybrid" in a.cells else 0) + len(names) * len(a.rescore) * a.folds
    results = {}
    t0 = time.time()
    # one BLAS thread for the whole script (as the CLI): small matrices, a shared machine
    with threadpool_limits(limits=1, user_api="blas"), \
            tqdm(total=total, desc="trainings", file=sys.stderr, unit="model") as bar:
        b.bar = bar
        log = lambda m: tqdm.write(m, file=sys.stderr)
        for name in names:
            results[name] = b.series(name, log)
    settings = {k: v for k, v in vars(a).items() if k != "out"}
    doc = {"lstmkit": lstmkit.__version__, "settings": settings, "seconds": time.time() - t0, "series": results}
    write_json(os.path.join(a.out, "results.json"), doc)
    if set(a.cells) >= set(CELLS):
        write_text(os.path.join(a.out, "results.md"), table(results, a.seeds))
        print(table(results, a.seeds))
    print(f"done in {time.time() - t0:.0f} s; results in {a.out}")


if __name__ == "__main__":
    main()
