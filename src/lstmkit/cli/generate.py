"""`lstmkit generate train|sample`: character- or word-level language model."""
import sys

from ..apps import generate as app
from .common import Formatter, add_common, fraction, positive_float, positive_int, say, verbose


def register(sub):
    p = sub.add_parser("generate", help="language model: train on text, sample new text (Tang poems, code)",
                       formatter_class=Formatter,
                       description="Character-level (or word-level) language model on any UTF-8 text, "
                                   "Chinese included, and sampling with temperature, top-k and a prime.")
    p.set_defaults(func=lambda a: (p.print_help(sys.stderr), 2)[1])
    acts = p.add_subparsers(dest="action", metavar="ACTION")

    t = acts.add_parser("train", help="train a language model", formatter_class=Formatter,
                        description="Train on a text file or a built-in corpus; report validation loss "
                                    "and bits per character; write samples.")
    t.add_argument("text", nargs="?", default=None, help="UTF-8 text file (or use --corpus)")
    t.add_argument("--corpus", choices=("tang", "stdlib"), default=None,
                   help="built-in corpus: Tang poems from fortunes-zh (falls back to stdlib if missing), "
                        "or Python's standard-library source")
    t.add_argument("--tang-path", default=None,
                   help="a fortune-format file of Tang poems (default: fortunes-zh's tang300 through the "
                        "data cache, see `lstmkit data`)")
    t.add_argument("--encoding-errors", choices=("strict", "replace"), default="strict",
                   help="what to do with bytes that are not UTF-8: stop with an error, or replace them")
    t.add_argument("--level", choices=("char", "word"), default="char", help="token unit")
    t.add_argument("--max-tokens", type=positive_int, default=None,
                   help="vocabulary cap (default: all characters; 10000 words)")
    t.add_argument("--max-chars", type=positive_int, default=None, help="use only the first N characters")
    t.add_argument("--seq-len", type=positive_int, default=64, help="window length (truncated BPTT)")
    t.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm", help="recurrent cell")
    t.add_argument("--layers", type=positive_int, default=1, help="stacked recurrent layers")
    t.add_argument("--embed-dim", type=positive_int, default=64, help="embedding size")
    t.add_argument("--units", type=positive_int, default=128, help="recurrent units")
    t.add_argument("--epochs", type=positive_int, default=5, help="training epochs")
    t.add_argument("--batch-size", type=positive_int, default=32, help="windows per update")
    t.add_argument("--lr", type=positive_float, default=0.003, help="Adam learning rate")
    t.add_argument("--val-fraction", type=fraction, default=0.1, help="last part of the text held out")
    t.add_argument("--dropout", type=float, default=0.0, help="dropout rate before the output layer")
    t.add_argument("--patience", type=positive_int, default=3,
                   help="stop after this many epochs without a better validation loss; keep the best weights")
    _sampling_options(t)
    add_common(t)
    t.set_defaults(func=run_train)

    s = acts.add_parser("sample", help="sample from a trained language model", formatter_class=Formatter,
                        description="Sample text (or Tang poems) from a model of `generate train`.")
    s.add_argument("--model", required=True, help="run folder of `generate train`, or its model.safetensors")
    s.add_argument("--prime", default=None, help="text to start from (for poems: the first characters)")
    poem = s.add_mutually_exclusive_group()
    poem.add_argument("--poem", dest="poem", action="store_true", default=None,
                      help="lay out a poem with --line-chars characters per half-line")
    poem.add_argument("--free", dest="poem", action="store_false", help="free text even from a Tang model")
    _sampling_options(s)
    add_common(s)
    s.set_defaults(func=run_sample)


def _sampling_options(p):
    p.add_argument("--samples", type=positive_int, default=3, help="how many samples")
    p.add_argument("--length", type=positive_int, default=300, help="tokens per free-text sample")
    p.add_argument("--temperature", type=positive_float, default=0.8,
                   help="below 1: safer choices; above 1: more surprising ones")
    p.add_argument("--top-k", type=positive_int, default=None, help="sample among the k likeliest tokens only")
    p.add_argument("--line-chars", type=int, choices=(5, 7), default=5, help="characters per half-line of a poem")
    p.add_argument("--verses", type=positive_int, default=4, help="half-lines per poem (4 or 8 are classical)")


def run_train(a):
    metrics, texts, out = app.train(
        a.text, corpus=a.corpus, out=a.out, level=a.level, max_tokens=a.max_tokens, seq_len=a.seq_len,
        embed_dim=a.embed_dim, units=a.units, layers=a.layers, cell=a.cell, epochs=a.epochs,
        batch_size=a.batch_size, learning_rate=a.lr, val_fraction=a.val_fraction, max_chars=a.max_chars,
        samples=a.samples, sample_length=a.length, temperature=a.temperature, top_k=a.top_k,
        line_chars=a.line_chars, verses=a.verses, dropout=a.dropout, patience=a.patience, seed=a.seed, tang_path=a.tang_path, encoding_errors=a.encoding_errors,
        verbose=verbose(a), log=say)
    unit = "character" if a.level == "char" else "word"
    say(f"val_loss: {metrics['val_loss']:.4f} nats/{unit}; bits_per_{unit}: {metrics['bits_per_' + unit]:.3f} "
        f"(uniform guess: {metrics['uniform_bits']:.2f})")
    for t in texts:
        say("-" * 40)
        say(t)
    say(f"outputs in {out}")


def run_sample(a):
    texts, out = app.sample(a.model, out=a.out, n=a.samples, length=a.length, prime=a.prime,
                            temperature=a.temperature, top_k=a.top_k, line_chars=a.line_chars,
                            verses=a.verses, poem=a.poem, seed=a.seed)
    for t in texts:
        say("-" * 40)
        say(t)
    say(f"outputs in {out}")
