"""`lstmkit generate train|sample`: character- or word-level language model."""
import sys

from ..apps import generate as app
from ..apps.sampling import FORM_NAMES, FORMS
from ..apps.text_corpora import CORPORA
from .common import (Formatter, add_checkpoint, add_common, checkpoint_args, fraction, positive_float,
                     positive_int, say, verbose)


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
    t.add_argument("--corpus", choices=CORPORA, default=None,
                   help="built-in corpus: tang = the 313 poems of fortunes-zh (data cache; falls back to "
                        "stdlib if missing); tang-full = the 57,607 Tang poems of npm chinese-poetry (data cache); "
                        "linux = C files of the Linux kernel's kernel/, mm/, fs/ext4/ (Debian "
                        "linux-source-6.1, data cache); stdlib = Python's standard-library source")
    t.add_argument("--corpus-dir", default=None, metavar="DIR",
                   help="tang-full: a folder of chinese-poetry's poet.tang.N.json files (or one such JSON "
                        "file); linux: a folder of C sources; instead of the data cache")
    t.add_argument("--tang-path", default=None,
                   help="a fortune-format file of Tang poems (default: fortunes-zh's tang300 through the "
                        "data cache, see `lstmkit data`)")
    t.add_argument("--script", choices=("traditional", "simplified"), default="traditional",
                   help="tang-full: keep the corpus's traditional script, or convert it with OpenCC")
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
    t.add_argument("--val-fraction", type=fraction, default=None,
                   help="held out for validation: the last part of the text (default 0.1), or for "
                        "tang-full and linux that share of the poems or files (default 0.05)")
    t.add_argument("--test-fraction", type=fraction, default=0.05,
                   help="tang-full and linux: share of the poems or files held out for the test")
    t.add_argument("--min-count", type=positive_int, default=None,
                   help="characters seen fewer times in training share the unknown id (default: 2 for "
                        "tang-full and linux, else 1)")
    base = t.add_mutually_exclusive_group()
    base.add_argument("--baseline", dest="baseline", action="store_true", default=None,
                      help="also fit the Kneser-Ney n-gram baseline (default: on for tang-full and linux)")
    base.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the n-gram baseline")
    t.add_argument("--kn-orders", default="2,3,4",
                   help="n-gram orders the baseline chooses from on the validation text")
    t.add_argument("--init-from", default=None, metavar="RUN",
                   help="go on training the model of an earlier run (its tokenizer and window length; a "
                        "fresh Adam); the corpus and split must be the same")
    t.add_argument("--max-minutes", type=positive_float, default=None,
                   help="stop training after this many minutes (at the end of a batch)")
    t.add_argument("--curve-every", type=positive_float, default=60.0,
                   help="seconds of training between two points of the learning curve (curve.png)")
    t.add_argument("--form-check", type=int, default=None,
                   help="poems sampled to measure the share with the requested form (default: 100 for "
                        "tang-full, 0 otherwise)")
    t.add_argument("--dropout", type=float, default=0.0, help="dropout rate before the output layer")
    t.add_argument("--patience", type=positive_int, default=3,
                   help="stop after this many epochs without a better validation loss; keep the best weights")
    _sampling_options(t)
    add_checkpoint(t)
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
    s.add_argument("--acrostic", default=None, metavar="CHARS",
                   help="an acrostic poem (藏头诗): line i begins with character i; 4 characters give a "
                        "quatrain, 8 a regulated verse (or set --form)")
    s.add_argument("--unconstrained", action="store_true",
                   help="let the model write the punctuation and line breaks itself: the form is then "
                        "measured (form.json), not imposed")
    _sampling_options(s)
    add_common(s)
    s.set_defaults(func=run_sample)


def _sampling_options(p):
    p.add_argument("--samples", type=positive_int, default=3, help="how many samples")
    p.add_argument("--length", type=positive_int, default=300, help="tokens per free-text sample")
    p.add_argument("--temperature", type=positive_float, default=0.8,
                   help="below 1: safer choices; above 1: more surprising ones")
    p.add_argument("--top-k", type=positive_int, default=None, help="sample among the k likeliest tokens only")
    p.add_argument("--form", choices=tuple(FORMS), default=None,
                   help="poem form: " + ", ".join(f"{k} = {FORM_NAMES[k]} ({n} lines of {c})"
                                                   for k, (c, n) in FORMS.items()))
    p.add_argument("--line-chars", type=int, choices=(5, 7), default=5,
                   help="characters per line (句) of a poem, without --form")
    p.add_argument("--verses", type=positive_int, default=4,
                   help="lines (句) per poem without --form: 4 is a quatrain, 8 a regulated verse")


def _orders(text):
    try:
        orders = tuple(sorted({int(t) for t in text.split(",") if t.strip()}))
    except ValueError:
        orders = ()
    if not orders or min(orders) < 2 or max(orders) > 8:
        from ..data.errors import DataError
        raise DataError(f"--kn-orders: expected numbers from 2 to 8 separated by commas; got {text!r}")
    return orders


def run_train(a):
    metrics, texts, out = app.train(
        a.text, corpus=a.corpus, out=a.out, level=a.level, max_tokens=a.max_tokens, seq_len=a.seq_len,
        embed_dim=a.embed_dim, units=a.units, layers=a.layers, cell=a.cell, epochs=a.epochs,
        batch_size=a.batch_size, learning_rate=a.lr,
        val_fraction=a.val_fraction, max_chars=a.max_chars,
        samples=a.samples, sample_length=a.length, temperature=a.temperature, top_k=a.top_k,
        line_chars=a.line_chars, verses=a.verses, dropout=a.dropout, patience=a.patience, seed=a.seed,
        tang_path=a.tang_path, encoding_errors=a.encoding_errors, corpus_dir=a.corpus_dir, script=a.script,
        test_fraction=a.test_fraction, min_count=a.min_count, baseline=a.baseline,
        kn_orders=_orders(a.kn_orders), max_minutes=a.max_minutes, curve_every=a.curve_every, form=a.form,
        form_check=a.form_check, init_from=a.init_from, verbose=verbose(a), log=say,
        checkpoint=checkpoint_args(a))
    unit = "character" if a.level == "char" else "word"
    say(f"val_loss: {metrics['val_loss']:.4f} nats/{unit}; bits_per_{unit}: {metrics['bits_per_' + unit]:.3f} "
        f"(uniform guess: {metrics['uniform_bits']:.2f})")
    tr = metrics["training"]
    say(f"trained on {tr['tokens_trained']:,} {unit}s ({tr['epochs_of_data']:.2f} passes over the training "
        f"text) in {tr['train_seconds'] / 60:.1f} min: {tr[unit + 's_per_second']:,.0f} {unit}s/second"
        + (f" (other processes took {tr['cpu']['others_share']:.0%} of the machine's CPU meanwhile)"
           if "others_share" in tr["cpu"] else ""))
    kn = metrics.get("baseline_kneser_ney")
    say(f"held-out bits per {unit} (state carried along the text):")
    for part, bits in metrics["heldout_bits"].items():
        line = f"  {part:>4}: {metrics['model_config']['layers']}x{metrics['model_config']['units']} " \
               f"{a.cell.upper()} {bits:.3f}"
        if kn and f"{part}_bits" in kn:
            better = "LSTM better" if bits < kn[f"{part}_bits"] else "n-gram better"
            line += f"   Kneser-Ney {kn['order']}-gram {kn[f'{part}_bits']:.3f}   ({better})"
        say(line)
    fc = metrics.get("form_check")
    if fc:
        say(f"poems with {fc['lines']} lines of {fc['line_chars']} characters, of {fc['poems']} sampled: "
            f"constrained sampler {fc['constrained']:.0%}, model's own layout {fc['free']:.0%}")
    for t in texts:
        say("-" * 40)
        say(t)
    say(f"outputs in {out}")


def run_sample(a):
    texts, out, stats = app.sample(a.model, out=a.out, n=a.samples, length=a.length, prime=a.prime,
                                   temperature=a.temperature, top_k=a.top_k, line_chars=a.line_chars,
                                   verses=a.verses, poem=a.poem, seed=a.seed, form=a.form,
                                   acrostic=a.acrostic, free=a.unconstrained, return_stats=True)
    for t in texts:
        say("-" * 40)
        say(t)
    if stats:
        say("-" * 40)
        say(f"{stats['with_form']} of {stats['poems']} poems have {stats['lines']} lines of "
            f"{stats['line_chars']} characters ({stats['share']:.0%}, {stats['mode']} sampling)"
            + (f"; acrostic kept in {stats['acrostic_share']:.0%}" if "acrostic_share" in stats else ""))
    say(f"outputs in {out}")
