"""The network side of forecasting: windows of a series as inputs, the three
kinds of forecaster, and their forecasts back in the series' units.

A window that ends at origin o reads steps o - W + 1 .. o and forecasts
o + 1 .. o + H. Inputs per step: the F standardised columns (scaled with the
training period's mean and deviation), and the calendar features of that step
(lstmkit.data.calendar). With mode "relative" the columns are taken relative
to the window's last step, in units of a typical one-step change (step_scale),
and so are the targets: a trend then looks the same at any level. Mode "mean"
does the same relative to the window's mean (the level that DeepAR-style
per-window scaling uses), which one noisy last value moves less. Mode
"scaled" normalises each window by itself (RevIN-style instance
normalisation): relative to its mean and in units of its own standard
deviation (at least a tenth of the typical one-step change), so a calm
stretch and a volatile one look alike to the network and its forecasts scale
with the window's volatility. With mode
"seasonal" the network reads and predicts seasonal differences instead,
y_t - y_{t-s} (in units of their typical size): it forecasts the change from
the seasonal naive forecast, as a SARIMA model with D = 1 does; a window then
needs s more steps of history.

    direct      RNN -> Dense(H): the H future values of the target at once
    recursive   RNN -> Dense(F): the next step of every column; rolled forward
                H times, each forecast fed back as the newest input
    quantiles   RNN -> Dense(H * Q) trained with the pinball loss: Q quantiles
                of each of the H future values (prediction intervals)
"""
import numpy as np

from ..data.scaling import StandardScaler
from .baselines import climatology
from .common import recurrent_layer

MODES = ("relative", "mean", "seasonal", "level", "scaled")
WINDOWED = ("mean", "scaled")                     # modes taken relative to the window's mean
STRATEGIES = ("direct", "recursive")


def step_scale(scaled_train, lag=1):
    """Typical change over `lag` steps (one step, or a season) of each
    standardised column over the training period."""
    d = (scaled_train[lag:] - scaled_train[:-lag]).std(axis=0)                 # (F,)
    return np.where(d > 0, d, 1.0)


class Frame:
    """A series made ready for the network.

    values (N, F) raw; t_idx the target column; cut the first test step
    (scaling, step sizes and the seasonal profile come from values[:cut]);
    calendar a data.calendar.Calendar (its features are inputs). state: the
    dict of a saved model (Frame.state()) to reuse instead of fitting.

    deseason: subtract from each standardised column its seasonal profile --
    the mean of each position in the season over the training period, once
    the trend is taken out (baselines.climatology) -- so the network sees
    anomalies; the profile is added back to its forecasts.
    """

    def __init__(self, values, t_idx, cut, calendar, mode="relative", deseason=False, state=None, window=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
        if mode in WINDOWED and not window:
            raise ValueError(f"mode {mode!r} needs the window length (window=)")
        self.window = window                                                   # what mode "mean" averages over
        self.values = np.asarray(values, np.float64)                          # (N, F)
        self.t_idx, self.calendar, self.mode = t_idx, calendar, mode
        if state is not None:
            self.scaler = StandardScaler.from_dict(state["scaler"])
            self.profile = None if state.get("profile") is None else np.asarray(state["profile"])
            scaled = self.scaler.transform(self.values)
        else:
            self.scaler = StandardScaler().fit(self.values[:cut])
            scaled = self.scaler.transform(self.values)                        # (N, F)
            self.profile = None
            if deseason:
                if not calendar.season:
                    raise ValueError("deseasonalising needs a season length")
                prof, _ = climatology(scaled[:cut], self.bins(np.arange(cut)), calendar.season)
                self.profile = prof.T                                          # (F, season)
        if mode == "seasonal" and not (calendar.season and calendar.season > 1):
            raise ValueError("mode 'seasonal' needs a season length of 2 or more")
        self.lag = calendar.season if mode == "seasonal" else 1
        self.work = scaled - self.profile_at(np.arange(len(scaled)))          # (N, F) what the network sees
        self.dscale = (np.asarray(state["step_scale"], np.float64) if state is not None
                       else step_scale(self.work[:cut], self.lag))             # (F,)

    def state(self):
        return {"scaler": self.scaler.to_dict(), "step_scale": self.dscale.tolist(), "mode": self.mode,
                "profile": None if self.profile is None else self.profile.tolist()}

    def bins(self, steps):
        return np.floor(self.calendar.position(steps) + 1e-9).astype(np.int64) % self.calendar.season

    def profile_at(self, steps):
        """(len(steps), F) the seasonal profile at these steps (zeros without deseasonalising)."""
        steps = np.asarray(steps)
        if self.profile is None:
            return np.zeros((len(steps), self.values.shape[1]))
        return self.profile[:, self.bins(steps)].T

    @property
    def n_inputs(self):
        return self.values.shape[1] + 2 * len(self.calendar.kinds)

    def lookback(self, window):
        """Steps of history a window needs: the window, and a season more for seasonal differences."""
        return window + (self.lag if self.mode == "seasonal" else 0)

    # ---- inputs and targets ----------------------------------------------------------
    def rows(self, origins, window):
        """The network's series over the lookback of each window: (M, L, F), and the step indices (M, L)."""
        L = self.lookback(window)
        steps = origins[:, None] - L + 1 + np.arange(L)                        # (M, L)
        return self.work[steps], steps

    def inputs(self, rows, steps):
        """rows (M, L, F) of the network's series at the step indices steps (M, L) -> (M, W, F + K)."""
        if self.mode == "seasonal":
            x = (rows[:, self.lag:] - rows[:, :-self.lag]) / self.dscale          # seasonal differences
            steps = steps[:, self.lag:]
        elif self.mode == "relative":
            x = (rows - rows[:, -1:, :]) / self.dscale
        elif self.mode == "mean":
            x = (rows - rows[:, -self.window:].mean(axis=1, keepdims=True)) / self.dscale
        elif self.mode == "scaled":
            x = (rows - rows[:, -self.window:].mean(axis=1, keepdims=True)) / self.rows_scale(rows)[:, None, :]
        else:
            x = rows
        cal = self.calendar.features(steps.ravel()).reshape(steps.shape + (-1,))  # (M, W, K)
        return np.concatenate([x, cal], axis=-1)

    def rows_scale(self, rows):
        """(M, F) mode "scaled"'s unit for windows rows (M, L, F): the standard deviation of each column over
        the window, at least a tenth of its typical one-step change (dscale), so a flat window divides by no
        near-zero."""
        return np.maximum(rows[:, -self.window:].std(axis=1), 0.1 * self.dscale)

    def unit(self, origins, column=slice(None)):
        """(M, F) or (M,): what the network's outputs are in units of, for the windows ending at origins:
        the window's own scale (mode "scaled"), else the typical one-step change of the training period."""
        if self.mode == "scaled":
            return self.rows_scale(self.work[self.window_steps(origins)])[:, column]
        return np.broadcast_to(self.dscale, (len(origins), len(self.dscale)))[:, column]

    def window_mean(self, origins, column=slice(None)):
        """The mean of the network's series over the window ending at each origin: (M,) or (M, F)."""
        return self.work[self.window_steps(origins), column].mean(axis=1)

    def window_steps(self, origins):
        """(M, W) the steps of the window (of length `window`) ending at each origin."""
        return origins[:, None] - self.window + 1 + np.arange(self.window)

    def reference(self, origins, horizon, column):
        """(M, H) what the targets are taken relative to: the window's last value
        (relative), its mean (mean), the seasonal naive forecast from the origin
        (seasonal), 0 (level)."""
        h = np.arange(1, horizon + 1)
        if self.mode == "relative":
            return np.repeat(self.work[origins, column][:, None], horizon, axis=1)
        if self.mode in WINDOWED:
            return np.repeat(self.window_mean(origins, column)[:, None], horizon, axis=1)
        if self.mode == "seasonal":
            back = self.lag * ((h - 1) // self.lag + 1)                        # whole seasons back (H,)
            return self.work[origins[:, None] + h - back, column]
        return np.zeros((len(origins), horizon))

    def direct_targets(self, origins, horizon):
        """(M, H) targets of the direct and quantile models, in the network's units."""
        y = self.work[origins[:, None] + 1 + np.arange(horizon), self.t_idx]    # (M, H)
        if self.mode == "level":
            return y
        return (y - self.reference(origins, horizon, self.t_idx)) / self.unit(origins, self.t_idx)[:, None]

    def step_targets(self, origins):
        """(M, F) the next step of every column, for the recursive model."""
        y = self.work[origins + 1]                                             # (M, F)
        if self.mode == "level":
            return y
        if self.mode in WINDOWED:
            return (y - self.window_mean(origins)) / self.unit(origins)
        return (y - self.work[origins + 1 - self.lag]) / self.dscale

    def step_reference(self, rows):
        """What a one-step output is relative to, from the rows (M, L, F) of the windows being rolled."""
        if self.mode in WINDOWED:
            return rows[:, -self.window:].mean(axis=1)                         # (M, F)
        return rows[:, -self.lag, :]

    def step_unit(self, rows):
        """(M, F) the unit of a one-step output, from the rows (M, L, F) of the windows being rolled."""
        return self.rows_scale(rows) if self.mode == "scaled" else self.dscale

    # ---- outputs back to the series' units ---------------------------------------------
    def target_units(self, out, origins, network_units=True):
        """Outputs for the target, (M, H) or (M, H, Q), from the windows ending at
        origins (M,) -> the target's units. network_units=False: out already
        holds values of the network's series (the recursive roll)."""
        H = out.shape[1]
        if network_units and self.mode != "level":
            ref = self.reference(origins, H, self.t_idx)                       # (M, H)
            unit = self.unit(origins, self.t_idx)[:, None]                     # (M, 1)
            out = out * unit.reshape(unit.shape + (1,) * (out.ndim - 2)) + ref.reshape(ref.shape + (1,) * (out.ndim - 2))
        steps = origins[:, None] + 1 + np.arange(H)                            # (M, H)
        prof = self.profile_at(steps.ravel())[:, self.t_idx].reshape(steps.shape)
        out = out + prof.reshape(prof.shape + (1,) * (out.ndim - 2))
        return self.scaler.inverse_transform(out, column=self.t_idx)

    def actual(self, origins, horizon):
        return self.values[origins[:, None] + 1 + np.arange(horizon), self.t_idx]  # (M, H)


def build(cell, units, window, n_inputs, n_outputs, seed, dropout=0.0, loss="mse", learning_rate=0.005,
          skip=0, weight_decay=0.0):
    """The forecaster's network: RNN -> [Dropout] -> Dense(n_outputs).

    skip=k > 0 adds a linear autoregressive skip beside it (LSTNet's
    "highway"): a linear map, without bias, of the last k steps of the window's
    inputs, added to the head's output. Both are one network trained together
    end to end; the skip starts at zero (the plain network), and carries a
    linear or seasonal component the recurrent part need not learn.
    weight_decay > 0: AdamW (decoupled weight decay) instead of Adam."""
    import lstmkit as lk
    if not (isinstance(skip, (int, np.integer)) and 0 <= skip <= window):
        raise ValueError(f"skip must be a whole number of steps from 0 to the window ({window}); got {skip!r}")
    opt = (lk.AdamW(learning_rate, weight_decay=weight_decay, clipnorm=5.0) if weight_decay
           else lk.Adam(learning_rate, clipnorm=5.0))
    if not skip:
        layers = [recurrent_layer(cell, units, input_shape=(window, n_inputs))]
        if dropout:
            layers.append(lk.Dropout(dropout))
        model = lk.Sequential(layers + [lk.Dense(n_outputs)], seed=seed)
    else:
        s = 1000 * seed                                                        # each layer its own seed
        x = lk.Input(shape=(window, n_inputs))                                 # (B, W, F + K)
        h = recurrent_layer(cell, units, seed=s + 1)(x)                        # (B, units)
        if dropout:
            h = lk.Dropout(dropout, seed=s + 2)(h)
        head = lk.Dense(n_outputs, seed=s + 3)(h)                              # (B, n_outputs)
        last = lk.Flatten()(lk.Cropping1D((window - skip, 0))(x))              # (B, k (F + K))
        ar = lk.Dense(n_outputs, use_bias=False, kernel_initializer="zeros", name="ar_skip")(last)
        model = lk.Model(x, lk.Add()([head, ar]))                             # (B, n_outputs)
    model.compile(optimizer=opt, loss=loss)
    return model


def forecast_direct(model, frame, origins, window, batch_size=256):
    out = model.predict(frame.inputs(*frame.rows(origins, window)), batch_size=batch_size)   # (M, H)
    return frame.target_units(out, origins)


def forecast_quantiles(model, frame, origins, window, n_quantiles, batch_size=256):
    """(M, H, Q) in the target's units, sorted along Q (quantiles that cross are put in order)."""
    out = model.predict(frame.inputs(*frame.rows(origins, window)), batch_size=batch_size)   # (M, H * Q)
    out = np.sort(out.reshape(len(origins), -1, n_quantiles), axis=-1)        # (M, H, Q)
    return frame.target_units(out, origins)


def conformal_margin(lower, upper, actual, level):
    """Split conformal calibration of intervals (conformalised quantile
    regression): on calibration windows the model did not train on, the score
    of each value is how far it lies outside its interval, max(lower - y, y -
    upper) (negative inside); the margin of each horizon step is the
    ceil((n + 1) level)-th smallest of its n scores (the largest, if n is too
    small for that). [lower - margin, upper + margin] then covers a new value
    with probability at least `level` if calibration and test windows are
    exchangeable; a negative margin narrows intervals that were too wide.
    lower, upper, actual (n, H) -> (H,)."""
    score = np.maximum(lower - actual, actual - upper)                         # (n, H)
    n = len(score)
    if n < 1:
        raise ValueError("conformal calibration needs at least one calibration window")
    k = min(n, int(np.ceil((n + 1) * level)))
    return np.sort(score, axis=0)[k - 1]                                       # (H,)


def forecast_recursive(model, frame, origins, window, horizon, batch_size=256):
    """Roll the one-step model forward: each step's forecast of every column
    becomes the newest row of the window. Steps past the end of the series
    take their calendar features from the extended dates."""
    rows, steps = frame.rows(origins, window)                                  # (M, L, F), (M, L)
    out = np.zeros((len(origins), horizon))
    for k in range(horizon):
        nxt = model.predict(frame.inputs(rows, steps), batch_size=batch_size)  # (M, F)
        if frame.mode != "level":
            nxt = frame.step_reference(rows) + nxt * frame.step_unit(rows)     # back to the network's series
        out[:, k] = nxt[:, frame.t_idx]
        rows = np.concatenate([rows[:, 1:], nxt[:, None, :]], axis=1)
        steps = steps + 1
    return frame.target_units(out, origins, network_units=False)               # (M, H)

KINDS = ("direct", "recursive", "quantiles")


def training_origins(kind, lookback, horizon, cut):
    """Origins with a full lookback (Frame.lookback) whose targets all lie before
    the test period: the direct and quantile models need o + H <= cut - 1, the
    one-step (recursive) model o + 1 <= cut - 1."""
    last = cut - 1 - (1 if kind == "recursive" else horizon)
    return np.arange(lookback - 1, last + 1)


def fit(frame, kind, cell, units, window, horizon, cut, val_fraction=0.1, epochs=30, patience=0,
        batch_size=32, learning_rate=0.005, seed=0, dropout=0.0, quantiles=None, refit=False, verbose=0,
        val_windows=None, checkpoint=None, skip=0, weight_decay=0.0):
    """Train one forecaster on the windows before the test period.

    The last val_fraction of those windows (or the last val_windows of them),
    in time order, is the validation set; with patience, training stops when the validation loss has not
    improved for that many epochs and keeps the best epoch's weights. With
    refit, a fresh model (same seed) then trains on all the windows, the
    validation ones included, for the best number of epochs.
    checkpoint: fit's checkpoint options (checkpoint_dir, resume, ...) for the
    first training (not the refit). skip, weight_decay: see build.
    Returns (model, history, {"epochs": best epoch count, windows ...,
    "validation_origins": the origins (array) of the validation windows}).
    Without refit the model never trained on those windows (early stopping
    only watched them): they can calibrate its intervals (conformal_margin)."""
    import lstmkit as lk
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    origins = training_origins(kind, frame.lookback(window), horizon, cut)
    n_val = val_windows or max(1, int(round(len(origins) * val_fraction)))
    if len(origins) - n_val < 1:
        raise ValueError(f"{len(origins)} training windows are too few for a validation split")
    X = frame.inputs(*frame.rows(origins, window))                             # (M, W, F + K)
    if kind == "recursive":
        Y, n_out, loss = frame.step_targets(origins), frame.values.shape[1], "mse"
    elif kind == "direct":
        Y, n_out, loss = frame.direct_targets(origins, horizon), horizon, "mse"
    else:
        Y, n_out, loss = frame.direct_targets(origins, horizon), horizon * len(quantiles), lk.Pinball(quantiles)
    tr, va = slice(0, len(origins) - n_val), slice(len(origins) - n_val, None)
    make = lambda: build(cell, units, window, frame.n_inputs, n_out, seed, dropout, loss, learning_rate, skip,
                         weight_decay)
    model = make()
    stop = [lk.EarlyStopping(patience=patience, restore_best_weights=True)] if patience else []
    hist = model.fit(X[tr], Y[tr], epochs=epochs, batch_size=batch_size, validation_data=(X[va], Y[va]),
                     callbacks=stop, verbose=verbose, seed=seed, **(checkpoint or {})).history
    best = int(np.argmin(hist["val_loss"])) + 1 if patience else epochs
    info = {"epochs": best, "train_windows": len(origins) - n_val, "validation_windows": n_val,
            "validation_origins": origins[len(origins) - n_val:],
            "validation_loss": float(min(hist["val_loss"]) if patience else hist["val_loss"][-1])}
    if refit:
        model = make()
        model.fit(X, Y, epochs=best, batch_size=batch_size, verbose=verbose, seed=seed)
        info["refit_windows"] = len(origins)
    return model, hist, info
