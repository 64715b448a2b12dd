"""`lstmkit gradients`: the vanishing-gradient experiment."""
from ..apps import gradients as app
from .common import Formatter, add_common, positive_int, say


def register(sub):
    p = sub.add_parser("gradients", help="vanishing gradients: simple RNN vs LSTM vs GRU",
                       formatter_class=Formatter,
                       description="Backpropagate a loss on the last step through a simple RNN, an LSTM "
                                   "and a GRU of the same size on the same random sequences; plot the "
                                   "norm of dL/dh_k (and dL/dc_k) against the distance from the loss, and "
                                   "the distribution of the LSTM's forget gate and of diag dc_t/dc_(t-1).")
    p.add_argument("--steps", type=positive_int, default=200, help="sequence length")
    p.add_argument("--units", type=positive_int, default=64, help="hidden size of every cell")
    p.add_argument("--input-dim", type=positive_int, default=None, help="input features (default: --units)")
    p.add_argument("--batch", type=positive_int, default=32, help="sequences averaged over")
    p.add_argument("--forget-bias", type=float, default=1.0, help="initial LSTM forget-gate bias")
    add_common(p)
    p.set_defaults(func=run)


def run(a):
    _, _, out = app.run(out=a.out, steps=a.steps, units=a.units, input_dim=a.input_dim, batch=a.batch,
                        seed=a.seed, forget_bias=a.forget_bias, log=say)
    say(f"outputs in {out}")
