"""The Gradients page: the source notes' vanishing-gradient experiment, live
(lstmkit.analysis.gradient_flow), with the histogram of the diagonal of the
LSTM's dc_t/dc_{t-1}."""
import time

import numpy as np

from ..analysis.gradient_flow import LABELS, gradient_flow

CELLS = ("simple_rnn", "gru", "lstm")


def _clean(a):
    """Floats for JSON: an overflow (inf) or nan becomes null."""
    return [float(x) if np.isfinite(x) else None for x in np.asarray(a, np.float64)]


def experiment(cells, steps, units, batch, weight_scale, forget_bias, seed, bins=40):
    t0 = time.perf_counter()
    r = gradient_flow(steps=steps, units=units, input_dim=units, batch=batch, seed=seed,
                      forget_bias=forget_bias, cells=tuple(cells), weight_scale=weight_scale)
    out = {"steps": steps, "units": units, "batch": batch, "weight_scale": weight_scale,
           "forget_bias": forget_bias, "seed": seed, "labels": {**LABELS, "lstm_c": "LSTM, dL/dc"},
           "norms": {k: _clean(v) for k, v in r.norms.items()}}
    if r.cell_jacobian_diag is not None:
        d = r.cell_jacobian_diag[np.isfinite(r.cell_jacobian_diag)]
        counts, edges = np.histogram(d, bins=bins)
        out["jacobian"] = {"counts": counts.tolist(), "edges": _clean(edges),
                           "quantiles": {str(q): float(np.quantile(d, q / 100)) for q in (5, 50, 95)},
                           "mean": float(d.mean()), "n": int(d.size)}
        out["forget_gate_mean"] = float(r.forget.mean())
    out["seconds"] = time.perf_counter() - t0
    return out
