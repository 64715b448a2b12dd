"""`lstmkit classify train|eval|predict`: text classification (sentiment)."""
import sys

from ..apps import classify as app
from ..data.errors import DataError
from ..data.textfile import read_text
from .common import (Formatter, add_checkpoint, add_common, checkpoint_args, comma_list, fraction,
                     positive_float, positive_int, say, verbose)

DATA_HELP = ("a CSV file (with --text-col and --label-col), a folder with one sub-folder per class "
             "(aclImdb layout), or a Keras imdb.npz")


def register(sub):
    p = sub.add_parser("classify", help="text classification: the seeds' sentiment model",
                       formatter_class=Formatter,
                       description="Train, evaluate and apply a text classifier: Embedding -> LSTM "
                                   "(or GRU, simple RNN, bidirectional) -> Dense(softmax).")
    p.set_defaults(func=lambda a: _missing_action(p))
    acts = p.add_subparsers(dest="action", metavar="ACTION")

    t = acts.add_parser("train", help="train a classifier", formatter_class=Formatter,
                        description="Train on labelled texts; report validation accuracy, per-class "
                                    "precision/recall and a confusion matrix.")
    t.add_argument("data", help=DATA_HELP)
    _data_options(t)
    t.add_argument("--classes", type=comma_list, default=None,
                   help="keep only these labels, comma-separated (e.g. positive,negative)")
    t.add_argument("--max-tokens", type=positive_int, default=10000,
                   help="vocabulary cap, counting the padding and out-of-vocabulary ids")
    t.add_argument("--maxlen", type=positive_int, default=500, help="pad or truncate every text to this many tokens")
    t.add_argument("--padding", choices=("pre", "post"), default="pre", help="where padding goes")
    t.add_argument("--truncating", choices=("pre", "post"), default="pre",
                   help="which end of a long text is cut (pre keeps the end)")
    t.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm", help="recurrent cell")
    t.add_argument("--bidirectional", action="store_true", help="read the text both ways")
    t.add_argument("--embed-dim", type=positive_int, default=32, help="embedding size")
    t.add_argument("--units", type=positive_int, default=32, help="recurrent units")
    t.add_argument("--epochs", type=positive_int, default=3, help="training epochs")
    t.add_argument("--batch-size", type=positive_int, default=64, help="examples per update")
    t.add_argument("--lr", type=positive_float, default=0.005, help="Adam learning rate")
    t.add_argument("--val-split", type=fraction, default=0.2, help="fraction held out for validation")
    t.add_argument("--patience", type=positive_int, default=2,
                   help="stop after this many epochs without a better validation loss; keep the best weights")
    t.add_argument("--max-examples", type=positive_int, default=None,
                   help="use at most this many examples (a random subset)")
    add_checkpoint(t)
    add_common(t)
    t.set_defaults(func=run_train)

    e = acts.add_parser("eval", help="evaluate a trained classifier on labelled data", formatter_class=Formatter,
                        description="Accuracy, per-class precision/recall and confusion matrix of a trained "
                                    "model on labelled data (the test split of an imdb.npz).")
    e.add_argument("data", help=DATA_HELP)
    e.add_argument("--model", required=True, help="run folder of `classify train`, or its model.safetensors")
    e.add_argument("--encoding-errors", choices=("strict", "replace"), default="strict",
                   help="what to do with bytes that are not UTF-8: stop with an error, or replace them")
    add_common(e)
    e.set_defaults(func=run_eval)

    r = acts.add_parser("predict", help="label text lines (stdin or --input)", formatter_class=Formatter,
                        description="Print the predicted label and its probability for each input line.")
    r.add_argument("--model", required=True, help="run folder of `classify train`, or its model.safetensors")
    r.add_argument("--input", default=None, help="UTF-8 text file, one text per line (default: stdin)")
    add_common(r)
    r.set_defaults(func=run_predict)


def _data_options(p):
    p.add_argument("--text-col", default="text", help="CSV column holding the text")
    p.add_argument("--label-col", default="label", help="CSV column holding the label")
    p.add_argument("--encoding-errors", choices=("strict", "replace"), default="strict",
                   help="what to do with bytes that are not UTF-8: stop with an error, or replace them")


def _missing_action(p):
    p.print_help(sys.stderr)
    return 2


def run_train(a):
    metrics, out = app.train(a.data, out=a.out, text_col=a.text_col, label_col=a.label_col,
                             classes=a.classes, max_tokens=a.max_tokens, maxlen=a.maxlen,
                             padding=a.padding, truncating=a.truncating, cell=a.cell,
                             bidirectional=a.bidirectional, embed_dim=a.embed_dim, units=a.units,
                             epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr,
                             val_split=a.val_split, max_examples=a.max_examples, patience=a.patience, seed=a.seed,
                             encoding_errors=a.encoding_errors, verbose=verbose(a), log=say,
                             checkpoint=checkpoint_args(a))
    say(f"val_accuracy: {metrics['val_accuracy']:.4f} (majority class: {metrics['majority_baseline']:.4f})")
    say(f"outputs in {out}")


def run_eval(a):
    metrics, out = app.evaluate(a.model, a.data, out=a.out, encoding_errors=a.encoding_errors, log=say)
    say(f"accuracy: {metrics['accuracy']:.4f}")
    say(f"outputs in {out}")


def run_predict(a):
    if a.input:
        lines = read_text(a.input, what="text file").splitlines()
    else:
        try:
            lines = sys.stdin.read().splitlines()
        except UnicodeDecodeError as e:
            raise DataError(f"stdin: not UTF-8 text ({e.reason} at byte {e.start})") from None
    rows, out = app.predict(a.model, lines, out=a.out)
    for label, p, text in rows:
        say(f"{label}\t{p:.3f}\t{text}")
    print(f"outputs in {out}", file=sys.stderr)
