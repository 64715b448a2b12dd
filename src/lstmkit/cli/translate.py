"""`lstmkit translate train|eval|translate`: an encoder-decoder with attention.

    lstmkit translate train --ding                      # German -> English on the Ding pairs
    lstmkit translate train pairs.tsv                   # your own pairs (source<TAB>target)
    lstmkit translate eval --model RUN                  # BLEU/chrF on the run's test split
    echo "Guten Morgen." | lstmkit translate --model RUN
"""
import sys

from ..apps import translate as app
from ..data.errors import DataError
from .common import Formatter, add_checkpoint, add_common, checkpoint_args, fraction, positive_float, positive_int, say, verbose


def _decode_options(p, defaults=True):
    p.add_argument("--beam", type=int, default=5 if defaults else None,
                   help="beam width (1: greedy)" + ("" if defaults else "; default: the run's"))
    p.add_argument("--alpha", type=float, default=0.6 if defaults else None,
                   help="length penalty of beam search, ((5 + length) / 6) ** alpha; 0 = none"
                        + ("" if defaults else "; default: the run's"))


def _data_options(p):
    p.add_argument("--src-col", default="0", help="source column: a number from 0, or a header name")
    p.add_argument("--tgt-col", default="1", help="target column: a number from 0, or a header name")
    p.add_argument("--header", action="store_true", default=None,
                   help="the file's first line names the columns (implied by column names)")


def register(sub):
    p = sub.add_parser("translate", help="machine translation: encoder-decoder with attention, BLEU/chrF",
                       formatter_class=Formatter, description=__doc__)
    p.add_argument("--model", default=None, help="run folder of `translate train`: translate stdin with it")
    p.add_argument("--text", default=None, help="translate this text instead of stdin")
    _decode_options(p, defaults=False)
    p.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    p.set_defaults(func=run_default)
    acts = p.add_subparsers(dest="action", metavar="ACTION")

    t = acts.add_parser("train", help="train on the Ding pairs or your own file", formatter_class=Formatter,
                        description="Train an encoder-decoder; write the model, tokenizers, splits, "
                                    "metrics, samples and attention pictures to a run folder.")
    t.add_argument("pairs", nargs="?", default=None,
                   help="TSV/CSV of sentence pairs (Tatoeba/manythings layout: source<TAB>target<TAB>...)")
    t.add_argument("--ding", nargs="?", const=True, default=None, metavar="PATH",
                   help="the Ding German-English pairs (Debian trans-de-en): through the data cache, "
                        "or from PATH (the file, or an unpacked package)")
    _data_options(t)
    t.add_argument("--tokens", choices=("subword", "word", "char"), default="subword",
                   help="token unit: SentencePiece subwords, words or characters")
    t.add_argument("--src-vocab", type=positive_int, default=4000, help="source vocabulary size")
    t.add_argument("--tgt-vocab", type=positive_int, default=4000, help="target vocabulary size")
    t.add_argument("--max-len", type=positive_int, default=50, help="leave out longer training pairs (tokens)")
    t.add_argument("--max-words", type=positive_int, default=None,
                   help="use only the pairs with at most this many words on each side (before the splits)")
    t.add_argument("--max-pairs", type=positive_int, default=None, help="use a random subset of this many pairs")
    t.add_argument("--cell", choices=("lstm", "gru"), default="lstm", help="recurrent cell")
    t.add_argument("--layers", type=positive_int, default=1, help="stacked layers (encoder and decoder)")
    t.add_argument("--bidirectional", action="store_true", help="bidirectional encoder (units/2 each way)")
    t.add_argument("--embed-dim", type=positive_int, default=256, help="embedding size")
    t.add_argument("--units", type=positive_int, default=256, help="decoder units (and encoder outputs)")
    t.add_argument("--attention", choices=("general", "dot", "additive"), default="general",
                   help="score: Luong general/dot, Bahdanau additive")
    t.add_argument("--no-attention", dest="attention", action="store_const", const="none",
                   help="the plain encoder-decoder: the final state is all the decoder sees")
    t.add_argument("--input-feeding", action="store_true",
                   help="feed the attentional state to the next step (the Seq2Seq container with its own "
                        "training loop; the default model is an lk.Model trained by Model.fit)")
    t.add_argument("--dropout", type=float, default=0.3, help="dropout rate")
    t.add_argument("--label-smoothing", type=float, default=0.1, help="label smoothing of the loss")
    t.add_argument("--epochs", type=positive_int, default=10, help="training epochs")
    t.add_argument("--batch-size", type=positive_int, default=64, help="sentence pairs per update")
    t.add_argument("--lr", type=positive_float, default=0.002, help="Adam learning rate")
    t.add_argument("--clipnorm", type=positive_float, default=5.0, help="clip the global gradient norm")
    t.add_argument("--patience", type=int, default=3,
                   help="stop after this many epochs without a better validation loss, keep the best "
                        "weights (0: train every epoch)")
    t.add_argument("--val-fraction", type=fraction, default=0.05, help="validation share (by source sentence)")
    t.add_argument("--test-fraction", type=fraction, default=0.05, help="test share (by source sentence)")
    t.add_argument("--eval-limit", type=positive_int, default=None, help="score only the first N test pairs")
    _decode_options(t)
    add_common(t)
    add_checkpoint(t)
    t.set_defaults(func=run_train)

    e = acts.add_parser("eval", help="BLEU and chrF of a trained model", formatter_class=Formatter,
                        description="Score a run on its own test split (or on a file of pairs), beside "
                                    "the copy-the-source baseline.")
    e.add_argument("--model", required=True, help="run folder of `translate train`")
    e.add_argument("pairs", nargs="?", default=None, help="a TSV/CSV of pairs (default: the run's test split)")
    _data_options(e)
    e.add_argument("--limit", type=positive_int, default=None, help="score only the first N pairs")
    _decode_options(e, defaults=False)
    add_common(e)
    e.set_defaults(func=run_eval)

    r = acts.add_parser("translate", help="translate text", formatter_class=Formatter,
                        description="Translate the given text, or each line of stdin.")
    r.add_argument("--model", required=True, help="run folder of `translate train`")
    r.add_argument("text", nargs="*", help="text to translate (default: the lines of stdin)")
    _decode_options(r, defaults=False)
    r.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    r.set_defaults(func=run_translate)


def _col(value):
    return int(value) if str(value).isdigit() else value


def run_train(a):
    if a.pairs is None and a.ding is None:
        raise DataError("give a file of sentence pairs, or --ding for the Ding German-English pairs")
    if a.pairs is not None and a.ding is not None:
        raise DataError("give either a file of sentence pairs or --ding, not both")
    m, out = app.train(a.pairs, ding=a.ding, out=a.out, src_col=_col(a.src_col), tgt_col=_col(a.tgt_col),
                       header=a.header, tokens=a.tokens, src_vocab=a.src_vocab, tgt_vocab=a.tgt_vocab,
                       max_len=a.max_len, max_pairs=a.max_pairs, max_words=a.max_words, embed_dim=a.embed_dim, units=a.units,
                       layers=a.layers, cell=a.cell, bidirectional=a.bidirectional, attention=a.attention,
                       input_feeding=a.input_feeding, dropout=a.dropout, label_smoothing=a.label_smoothing,
                       epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr, clipnorm=a.clipnorm,
                       patience=a.patience, beam=a.beam, alpha=a.alpha, val_fraction=a.val_fraction,
                       test_fraction=a.test_fraction, eval_limit=a.eval_limit, seed=a.seed,
                       verbose=verbose(a), log=say, checkpoint=checkpoint_args(a))
    say(f"outputs in {out}")


def run_eval(a):
    res, out = app.evaluate(a.model, a.pairs, a.out, a.beam, a.alpha, _col(a.src_col), _col(a.tgt_col),
                            a.header, limit=a.limit, log=say)
    say(f"outputs in {out}")


def _lines(texts):
    if texts:
        return list(texts)
    if sys.stdin is None or sys.stdin.isatty():
        raise DataError("no text: give it as arguments or on stdin (echo 'Guten Morgen.' | lstmkit translate "
                        "--model RUN)")
    lines = sys.stdin.read().splitlines()
    if not lines:
        raise DataError("stdin is empty; expected one sentence per line")
    return lines


def run_translate(a):
    run = app.load_run(a.model)                      # a bad model is named before stdin is read
    for line in app.translate_lines(run, _lines(a.text), a.beam, a.alpha):
        print(line, flush=True)


def run_default(a):
    if a.model is None:
        raise DataError("give an action (train, eval, translate) or --model RUN to translate stdin; "
                        "see lstmkit translate --help")
    run = app.load_run(a.model)
    for line in app.translate_lines(run, _lines([a.text] if a.text is not None else []), a.beam, a.alpha):
        print(line, flush=True)
