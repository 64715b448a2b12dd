"""`lstmkit inspect`: gate activations of a trained model over an input text."""

from ..apps import inspect as app
from ..data.textfile import read_text
from .common import Formatter, add_common, positive_int, say


def register(sub):
    p = sub.add_parser("inspect", help="heat maps of gate activations over an input text",
                       formatter_class=Formatter,
                       description="For a model of `classify train` or `generate train` and an input text, "
                                   "plot each gate of the first recurrent layer over time (LSTM: input, "
                                   "forget, candidate, output; GRU: reset, update, candidate), one PNG per gate.")
    p.add_argument("--model", required=True, help="run folder of classify/generate train, or its model.safetensors")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the input text")
    src.add_argument("--input", help="UTF-8 file holding the input text")
    p.add_argument("--max-tokens", type=positive_int, default=200, help="use the last N tokens of the text")
    add_common(p)
    p.set_defaults(func=run)


def run(a):
    text = a.text if a.text is not None else read_text(a.input, what="text file")
    _, out = app.run(a.model, text, out=a.out, max_tokens=a.max_tokens, log=say)
    say(f"outputs in {out}")
