"""The vanishing-gradient experiment as an application: run
lstmkit.analysis.gradient_flow, print a table, write the plot and metrics."""
import os

import numpy as np

from .. import plotting
from ..analysis.gradient_flow import LABELS, gradient_flow
from ..io import write_json
from .common import make_run_dir, to_jsonable

COLUMNS = (("simple_rnn", "simple RNN h"), ("gru", "GRU h"), ("lstm", "LSTM h"), ("lstm_c", "LSTM c"))


def format_table(result):
    cols = [(k, name) for k, name in COLUMNS if k in result.norms]
    lines = [f"{'distance':>8}" + "".join(f"{name:>15}" for _, name in cols)]
    for d, row in result.table():
        lines.append(f"{d:>8}" + "".join(f"{row[k]:>15.3e}" for k, _ in cols))
    return "\n".join(lines)


def run(out=None, steps=200, units=64, input_dim=None, batch=32, seed=0, forget_bias=1.0, log=print,
        run_name="gradients"):
    out_dir = make_run_dir(run_name, out)
    log(f"run folder: {out_dir}")
    log(f"simple RNN, GRU and LSTM with {units} units on the same {batch} random sequences of {steps} "
        f"steps; loss on the last step only; LSTM forget-gate bias {forget_bias}")
    result = gradient_flow(steps=steps, units=units, input_dim=input_dim or units, batch=batch, seed=seed,
                           forget_bias=forget_bias, progress=lambda c: log(f"  backpropagating: {LABELS[c]}"))
    log("mean norm of dL/dh (and dL/dc for the LSTM) against distance from the loss:")
    log(format_table(result))
    plot = plotting.gradient_flow(result, os.path.join(out_dir, "gradient_flow.png"))
    summary = {"forget_gate_mean": float(result.forget.mean()),
               "cell_jacobian_diag_mean": float(result.cell_jacobian_diag.mean()),
               "cell_jacobian_diag_quantiles": {q: float(np.quantile(result.cell_jacobian_diag, q / 100))
                                                for q in (5, 50, 95)}}
    log(f"LSTM forget gate mean {summary['forget_gate_mean']:.3f}; diagonal of dc_t/dc_(t-1): median "
        f"{summary['cell_jacobian_diag_quantiles'][50]:.3f}, 5-95% "
        f"[{summary['cell_jacobian_diag_quantiles'][5]:.3f}, {summary['cell_jacobian_diag_quantiles'][95]:.3f}]")
    metrics = {"app": "gradients", "steps": steps, "units": units, "batch": batch, "forget_bias": forget_bias,
               "norms": {k: v.tolist() for k, v in result.norms.items()},
               "table": [{"distance": d, **row} for d, row in result.table()], **summary,
               "plot": plot}
    write_json(os.path.join(out_dir, "metrics.json"), to_jsonable(metrics))
    return result, metrics, out_dir
