"""Classical forecasts to hold the networks against.

Every method fits on the series before the test period, y[:cut], and then
forecasts from many origins: origin o is the last observed step, and the
forecast for o + h (h = 1 .. H) uses y[:o + 1] only, with the parameters
fitted on the training period (no refit inside the test period). Each
returns forecasts (M, H) for the M origins.

    last value          y[o]
    seasonal naive      the value one season before o + h (whole seasons back)
    seasonal anomaly    climatology of the season plus the last anomaly:
                        C(o + h) + y[o] - C(o) + slope h, where C is the mean of
                        each position in the season over the training period
                        once the trend is taken out, and slope is that trend
                        (the mean change over a season / its length; about 0
                        for a series without one): see climatology()
    ETS                 Holt-Winters exponential smoothing (statsmodels),
                        additive; trend none / additive / damped, season none /
                        additive, chosen by AICc
    SARIMA              statsmodels' SARIMAX; orders by AICc over a small grid
                        (see sarima()), d and D chosen first by tests

statsmodels is imported inside the functions: the library's import path
never needs it.
"""
import warnings
from contextlib import contextmanager

import numpy as np

from ..data.errors import DataError

ARMA_ORDERS = (0, 1, 2)              # p and q of the SARIMA search
MAX_SEASONAL_ARIMA = 24              # longer seasons: Fourier terms instead of seasonal ARIMA
FOURIER_TERMS = (1, 2, 3)


def _h(H):
    return np.arange(1, H + 1)                                                 # (H,)


def last_value(y, origins, H):
    return np.repeat(y[origins][:, None], H, axis=1)                           # (M, H)


def seasonal_naive(y, origins, H, season):
    """y[o + h - season * k], k the whole seasons needed to reach the observed past."""
    h = _h(H)
    back = season * ((h - 1) // season + 1)                                    # (H,)
    idx = origins[:, None] + h - back                                          # (M, H)
    if idx.min() < 0:
        raise DataError(f"the seasonal naive forecast needs a full season ({season} steps) before "
                        f"the first origin")
    return y[idx]


def season_bins(position, season):
    """Integer position in the season, 0 .. season - 1, from a (fractional) position."""
    return np.floor(position + 1e-9).astype(np.int64) % season


def climatology(x_train, bins_train, season):
    """The seasonal profile of a training period and its trend slope.

    slope: the mean change over a season divided by its length (exact for a
    periodic series plus a straight line, and free of the seasonal pattern,
    which a least-squares line over an incomplete cycle is not). profile: the
    mean of each position in the season of x - slope t, less their mean.
    x_train (n,) or (n, F) -> profile (season,) or (season, F), slope (scalar or (F,))."""
    x = np.asarray(x_train, np.float64)
    n = len(x)
    slope = (x[season:] - x[:-season]).mean(axis=0) / season if n > season else np.zeros(x.shape[1:])
    t = np.arange(n).reshape((n,) + (1,) * (x.ndim - 1))
    flat = x - slope * t
    profile = np.zeros((season,) + x.shape[1:])
    for b in range(season):
        if np.any(bins_train == b):
            profile[b] = flat[bins_train == b].mean(axis=0)
    return profile - profile.mean(axis=0), slope


def seasonal_anomaly(y, cut, origins, H, season, bins):
    """bins (N + H,): integer season position of every step (season_bins).
    C(o + h) + (y[o] - C(o)) + slope h, with C and slope from climatology()."""
    clim, slope = climatology(y[:cut], bins[:cut], season)
    h = _h(H)
    target = origins[:, None] + h                                              # (M, H)
    return y[origins][:, None] + slope * h + clim[bins[target]] - clim[bins[origins]][:, None]


@contextmanager
def _fitting():
    """statsmodels warns freely (convergence, frequency) -- the choices are judged
    by AICc. Its small matrices run faster on one BLAS thread on a busy machine
    (a SARIMA fit: 20 s with OpenBLAS's threads, 1.7 s with one, measured here),
    but a library call changes no process-wide BLAS setting: the CLI runs on
    one BLAS thread (cli/threads.py), as do examples/forecast-statsmodels and
    the tests; a user of the API may wrap calls in threadpoolctl's limits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---- Holt-Winters exponential smoothing ----------------------------------------------

def ets_configs(season, n_train):
    out = [(None, False, None), ("add", False, None), ("add", True, None)]
    if season and season > 1 and n_train >= 2 * season + 2:
        out += [(t, d, "add") for t, d, _ in out]
    return out


class ETS:
    """Additive Holt-Winters. fit() tries every configuration of ets_configs on
    the training period and keeps the lowest AICc; forecast() runs its
    recursions over a whole series with the fitted parameters and initial
    states (so the states at o use y[:o + 1] only)."""

    def fit(self, y_train, season):
        from statsmodels.tsa.holtwinters import ExponentialSmoothing
        best = None
        configs = ets_configs(season, len(y_train))
        with _fitting():
            for trend, damped, seas in configs:
                spec = dict(trend=trend, damped_trend=damped, seasonal=seas,
                            seasonal_periods=season if seas else None)
                try:
                    res = ExponentialSmoothing(y_train, initialization_method="estimated", **spec).fit()
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if np.isfinite(res.aicc) and (best is None or res.aicc < best[1].aicc):
                    best = (spec, res)
        if best is None:
            raise DataError("no exponential smoothing model could be fitted to the training period")
        self.spec, res = best
        self.params = dict(res.params)
        t = "Ad" if self.spec["damped_trend"] else ("A" if self.spec["trend"] else "N")
        self.info = {"model": f"ETS(A,{t},{'A' if self.spec['seasonal'] else 'N'})", "aicc": float(res.aicc),
                     "params": {k: _num(self.params.get(k)) for k in SMOOTHING if _num(self.params.get(k)) is not None},
                     "grid": "trend none / additive / additive damped x season none / additive, by AICc",
                     "models tried": len(configs)}
        return self

    def run(self, y):
        """The fitted model's recursions over y (its first steps must be the training period)."""
        from statsmodels.tsa.holtwinters import ExponentialSmoothing
        p, spec = self.params, self.spec
        known = dict(initial_level=p["initial_level"])
        if spec["trend"]:
            known["initial_trend"] = p["initial_trend"]
        if spec["seasonal"]:
            known["initial_seasonal"] = np.asarray(p["initial_seasons"])
        with _fitting():
            return ExponentialSmoothing(y, initialization_method="known", **known, **spec).fit(
                optimized=False, **{k: p.get(k) for k in SMOOTHING})

    def forecast(self, y, origins, H):
        return ets_from_states(self.run(y), origins, H, self.spec, self.params.get("damping_trend"))


SMOOTHING = ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")


def ets_from_states(res, origins, H, spec, phi):
    """Forecasts from the smoothed states after each origin:
    l_o + (phi + ... + phi^h) b_o + s_{o + h - m(k + 1)}, k = (h - 1) // m."""
    h = _h(H)
    fc = np.asarray(res.level)[origins][:, None] + np.zeros(H)                # (M, H)
    if spec["trend"]:
        phi = phi if spec["damped_trend"] else 1.0
        damp = np.cumsum(phi ** h)                                             # (H,)
        fc = fc + np.asarray(res.trend)[origins][:, None] * damp
    if spec["seasonal"]:
        m = spec["seasonal_periods"]
        fc = fc + np.asarray(res.season)[origins[:, None] + h - m * ((h - 1) // m + 1)]
    return fc


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


# ---- SARIMA ---------------------------------------------------------------------------

def fourier(position, season, K):
    """(len(position), 2K): sin, cos of 2 pi k position / season, k = 1 .. K."""
    ang = 2 * np.pi * np.asarray(position)[:, None] * np.arange(1, K + 1) / season
    return np.concatenate([np.sin(ang), np.cos(ang)], axis=1)


def seasonal_strength(x, season):
    """Hyndman's F_S = max(0, 1 - var(R) / var(S + R)) from an STL fit."""
    from statsmodels.tsa.seasonal import STL
    r = STL(x, period=season, robust=True).fit()
    return max(0.0, 1.0 - np.var(r.resid) / np.var(r.seasonal + r.resid))


def needs_difference(x):
    """KPSS test of level stationarity at 5 %: True when it is rejected."""
    from statsmodels.tsa.stattools import kpss
    with _fitting():
        return kpss(x, regression="c", nlags="auto")[1] < 0.05


def sarima_plan(y_train, season, position_train):
    """Differencing and the grid, decided on the training period only.

    D = 1 when the season is strong (STL F_S > 0.64, as auto.arima's default
    does) and seasonal ARIMA is used (season <= 24); d = 1 when KPSS rejects
    stationarity of the (seasonally differenced, or Fourier-adjusted) series.
    Grid: p, q in {0, 1, 2} and seasonal P, Q in {0, 1} (36 models); for
    seasons over 24 steps (weekly data, s = 52) a seasonal ARIMA fit takes
    minutes, so the season enters as K = 1, 2, 3 Fourier pairs in a regression
    with ARIMA errors (27 models). A constant (the drift when d = 1) is
    included when d + D <= 1.
    """
    seasonal_arima = bool(season and 1 < season <= MAX_SEASONAL_ARIMA)
    x = np.asarray(y_train, np.float64)
    D = 0
    if seasonal_arima and len(x) >= 3 * season and seasonal_strength(x, season) > 0.64:
        D = 1
        x = x[season:] - x[:-season]
    if season and season > MAX_SEASONAL_ARIMA:
        F = np.column_stack([np.ones(len(x)), fourier(position_train, season, max(FOURIER_TERMS))])
        x = x - F @ np.linalg.lstsq(F, x, rcond=None)[0]
    d = int(needs_difference(x))
    if seasonal_arima:
        seasonal = [(P, D, Q, season) for P in (0, 1) for Q in (0, 1)]
        fourier_k = [0]
    else:
        seasonal = [(0, 0, 0, 0)]
        fourier_k = [k for k in FOURIER_TERMS if 2 * k <= (season or 0)] or [0]
    grid = [((p, d, q), s, k) for p in ARMA_ORDERS for q in ARMA_ORDERS for s in seasonal for k in fourier_k]
    return {"d": d, "D": D, "trend": "c" if d + D <= 1 else "n", "grid": grid}


class SARIMA:
    """statsmodels' SARIMAX, orders chosen by AICc over sarima_plan's grid on the
    training period; forecast() filters a whole series with the fitted
    parameters and forecasts from every origin (with the Kalman filter's
    forecast variance for intervals)."""

    def __init__(self, plan=None):
        self.plan = plan

    def fit(self, y_train, season, position_train=None, log=None):
        """position_train: position in the season of each training step (None without a season)."""
        from statsmodels.tsa.statespace.sarimax import SARIMAX
        plan = self.plan or sarima_plan(y_train, season, position_train)
        self.plan, self.season = plan, season
        best, failed = None, 0
        with _fitting():
            for order, sorder, K in plan["grid"]:
                exog = fourier(position_train, season, K) if K else None
                try:
                    res = SARIMAX(y_train, exog=exog, order=order, seasonal_order=sorder,
                                  trend=plan["trend"]).fit(disp=False, maxiter=200)
                except (ValueError, np.linalg.LinAlgError):
                    failed += 1
                    continue
                if log:
                    log(f"  {describe(order, sorder, K, season)}: AICc {res.aicc:.1f}")
                if np.isfinite(res.aicc) and (best is None or res.aicc < best[0].aicc):
                    best = (res, order, sorder, K)
        if best is None:
            raise DataError("no SARIMA model could be fitted to the training period")
        res, self.order, self.sorder, self.K = best
        self.params = res.params
        grid = "p, q in {0,1,2}; " + ("P, Q in {0,1}" if plan["grid"][-1][1][3] else
                                     (f"{list(FOURIER_TERMS)} Fourier pairs" if plan["grid"][-1][2] else "no season"))
        self.info = {"model": describe(self.order, self.sorder, self.K, season), "order": list(self.order),
                     "seasonal_order": list(self.sorder), "fourier_pairs": self.K, "trend": plan["trend"],
                     "d": plan["d"], "D": plan["D"], "aicc": float(res.aicc), "grid": grid + ", by AICc",
                     "models tried": len(plan["grid"]), "failed": failed}
        return self

    def forecast(self, y, origins, H, position=None, level=0.9):
        """-> forecasts (M, H), (lower, upper) of the central `level` interval.
        position (len(y) + H,): the position in the season of every step."""
        from scipy.stats import norm
        from statsmodels.tsa.statespace.sarimax import SARIMAX
        N = len(y)
        y_ext = np.concatenate([y, np.full(H, np.nan)])                      # room for forecasts past the end
        exog = fourier(position[:N + H], self.season, self.K) if self.K else None
        with _fitting():
            ext = SARIMAX(y_ext, exog=exog, order=self.order, seasonal_order=self.sorder,
                          trend=self.plan["trend"]).filter(self.params)
        mean, var = statespace_forecasts(ext, origins, H)
        half = norm.ppf(0.5 + level / 2) * np.sqrt(var)
        return mean, (mean - half, mean + half)


def describe(order, sorder, K, season):
    out = f"SARIMA{order}{sorder[:3]}_{sorder[3]}" if sorder[3] else f"ARIMA{order}"
    return out + (f" + {K} Fourier pairs (season {season})" if K else "")


def _at(ssm, name, t):
    """System matrix `name` at the steps t (M,), batch first: (M, ...). statsmodels
    keeps a time axis last only for matrices that vary with time."""
    m = np.asarray(ssm[name])
    varies = m.ndim == (2 if name in ("obs_intercept", "state_intercept") else 3)
    return np.moveaxis(m[..., t], -1, 0) if varies else np.broadcast_to(m, (len(t),) + m.shape)


def statespace_forecasts(res, origins, H):
    """h-step forecasts and their variances from every origin of a filtered
    state-space model: start from the predicted state a_{o+1|o} and its
    covariance P (which used y[:o + 1] only), then for each step
        y = Z a + d,   var = Z P Z' + obs_cov,   a <- T a + c,   P <- T P T' + R Q R'
    with the matrices of that step (they may vary with time: exog, trend)."""
    ssm = res.model.ssm
    a = res.predicted_state[:, origins + 1].T.copy()                           # (M, k)
    P = np.moveaxis(res.predicted_state_cov[:, :, origins + 1], 2, 0).copy()   # (M, k, k)
    M = len(origins)
    mean, var = np.zeros((M, H)), np.zeros((M, H))
    for j in range(H):
        t = origins + 1 + j                                                    # the step forecast, per origin
        Z = _at(ssm, "design", t)[:, 0]                                        # (M, k): one observed series
        mean[:, j] = np.einsum("mk,mk->m", Z, a) + _at(ssm, "obs_intercept", t)[:, 0]
        var[:, j] = np.einsum("mk,mkl,ml->m", Z, P, Z) + _at(ssm, "obs_cov", t)[:, 0, 0]
        T, R, Q = _at(ssm, "transition", t), _at(ssm, "selection", t), _at(ssm, "state_cov", t)
        a = np.einsum("mkl,ml->mk", T, a) + _at(ssm, "state_intercept", t)
        P = T @ P @ np.swapaxes(T, 1, 2) + R @ Q @ np.swapaxes(R, 1, 2)
    return mean, var


NAMES = ("naive", "anomaly", "ets", "sarima")


class Baselines:
    """The chosen classical methods, fitted once on y[:cut]; forecast() for any
    origins and horizon. calendar: a data.calendar.Calendar (positions in the season)."""

    def __init__(self, y, cut, season, calendar, which=NAMES, log=None):
        unknown = set(which) - set(NAMES)
        if unknown:
            raise DataError(f"unknown baselines {sorted(unknown)}; expected some of {list(NAMES)}")
        self.y, self.cut, self.season, self.calendar = np.asarray(y, np.float64), cut, season, calendar
        self.which, self.info = list(which), {}
        say = log or (lambda *a: None)
        if "ets" in which:
            say("fitting exponential smoothing (Holt-Winters) models ...")
            self.ets = ETS().fit(self.y[:cut], season)
            self.info["ETS"] = self.ets.info
            say(f"  chose {self.ets.info['model']}")
        if "sarima" in which:
            pos = self.position(cut)[:cut] if season else None
            plan = sarima_plan(self.y[:cut], season, pos)
            say(f"fitting {len(plan['grid'])} SARIMA models (d={plan['d']}, D={plan['D']}) ...")
            self.sarima = SARIMA(plan).fit(self.y[:cut], season, pos)
            self.info["SARIMA"] = self.sarima.info
            say(f"  chose {self.sarima.info['model']}")

    def position(self, n):
        return self.calendar.position(np.arange(n))

    def forecast(self, origins, H, level=0.9):
        """-> {name: (M, H)}, {name: (lower, upper)} for the methods with intervals."""
        y, s = self.y, self.season
        fc, bands = {}, {}
        if "naive" in self.which:
            fc["last value"] = last_value(y, origins, H)
            if s:
                fc[f"seasonal naive ({s})"] = seasonal_naive(y, origins, H, s)
        if "anomaly" in self.which and s:
            bins = season_bins(self.position(len(y) + H), s)
            fc[f"seasonal anomaly ({s})"] = seasonal_anomaly(y, self.cut, origins, H, s, bins)
        if "ets" in self.which:
            fc["ETS"] = self.ets.forecast(y, origins, H)
        if "sarima" in self.which:
            pos = self.position(len(y) + H) if s else None
            fc["SARIMA"], bands["SARIMA"] = self.sarima.forecast(y, origins, H, pos, level)
        return fc, bands
