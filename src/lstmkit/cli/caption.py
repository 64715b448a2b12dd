"""`lstmkit caption train|eval|describe`: image captioning."""
import sys

from ..apps import caption as app
from ..data.errors import DataError
from .common import (Formatter, add_checkpoint, add_common, checkpoint_args, fraction, positive_float,
                     positive_int, say, verbose)

DATA_HELP = ("tuxpaint (Tux Paint stamps, data cache), emoji (Noto emoji, data cache), coco:FILE.json, "
             "flickr:Flickr8k.token.txt (or captions.txt), csv:FILE.csv (columns image,caption)")
ENCODER_HELP = ("hog (no weights), onnx:MODEL.onnx[#NODE] (a node's output), torchvision:NAME (only with "
                "torchvision and its weights already here), features:FILE.npy ((N, D) or (N, L, D))")


def register(sub):
    p = sub.add_parser("caption", help="image captioning: image features into an LSTM that writes the caption",
                       formatter_class=Formatter,
                       description="Show and Tell: an image vector is the LSTM's first input, then the caption "
                                   "word by word; or the image as the initial state, or attention over places.")
    p.set_defaults(func=lambda a: _missing_action(p))
    acts = p.add_subparsers(dest="action", metavar="ACTION")

    t = acts.add_parser("train", help="train a captioning model", formatter_class=Formatter,
                        description="Split the images, compute features once (cached), train with teacher "
                                    "forcing, then score the test images (BLEU-1..4, right-object share) beside "
                                    "the most-frequent-caption and nearest-neighbour baselines.")
    t.add_argument("--data", default="tuxpaint", help=DATA_HELP)
    _data_options(t)
    t.add_argument("--encoder", default="hog", help=ENCODER_HELP)
    t.add_argument("--arch", choices=("show-tell", "init", "attention"), default="show-tell",
                   help="image as the first input, as the initial state, or attention over places")
    t.add_argument("--tokens", choices=("word", "char"), default=None, help="default: char for zh, else word")
    t.add_argument("--embed-dim", type=positive_int, default=128, help="word embedding size")
    t.add_argument("--units", type=positive_int, default=256, help="LSTM units")
    t.add_argument("--dropout", type=float, default=0.3, help="dropout on embeddings and before the output")
    t.add_argument("--epochs", type=positive_int, default=40, help="training epochs")
    t.add_argument("--batch-size", type=positive_int, default=32, help="captions per update")
    t.add_argument("--lr", type=positive_float, default=0.003, help="Adam learning rate")
    t.add_argument("--min-count", type=positive_int, default=2, help="tokens seen fewer times become <unk>")
    t.add_argument("--max-len", type=positive_int, default=20, help="longest caption in tokens")
    t.add_argument("--test-split", type=fraction, default=0.15, help="share of images held out for the test")
    t.add_argument("--val-split", type=float, default=0.1, help="share of images for validation (0: none)")
    t.add_argument("--patience", type=positive_int, default=None,
                   help="stop after this many epochs without a better validation loss; keep the best weights")
    t.add_argument("--pca", type=int, default=128,
                   help="project the standardised features on this many principal directions first (0: off)")
    t.add_argument("--beam", type=positive_int, default=3, help="beam width (1: greedy)")
    t.add_argument("--samples", type=positive_int, default=16, help="test images on the contact sheet")
    add_checkpoint(t)
    add_common(t)
    t.set_defaults(func=run_train)

    e = acts.add_parser("eval", help="score a trained model", formatter_class=Formatter,
                        description="Scores on the run's own test split, or on all images of other data.")
    e.add_argument("run", help="run folder of `caption train`")
    e.add_argument("--data", default=None, help="other data (default: the run's test split); " + DATA_HELP)
    e.add_argument("--images", default=None, help="image folder of --data")
    e.add_argument("--beam", type=positive_int, default=None, help="beam width (default: the run's)")
    e.add_argument("--samples", type=positive_int, default=16, help="test images on the contact sheet")
    add_common(e)
    e.set_defaults(func=run_eval)

    d = acts.add_parser("describe", help="caption image files", formatter_class=Formatter,
                        description="Print one caption per image file: PATH<TAB>caption.")
    d.add_argument("images", nargs="+", help="image files")
    d.add_argument("--model", required=True, help="run folder of `caption train`")
    d.add_argument("--beam", type=positive_int, default=None, help="beam width (default: the run's)")
    d.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    d.set_defaults(func=run_describe)


def _data_options(p):
    p.add_argument("--images", default=None, help="image folder (default: found beside the caption file)")
    p.add_argument("--lang", choices=("en", "zh"), default="en",
                   help="caption language (Tux Paint: the zh_CN lines; emoji: CLDR Chinese names)")


def _missing_action(p):
    p.print_help(sys.stderr)
    return 2


def run_train(a):
    if a.pca < 0:
        raise DataError(f"--pca: expected 0 (off) or a positive number of directions, got {a.pca}")
    if not 0 <= a.val_split < 1:
        raise DataError(f"--val-split: expected a number in [0, 1), got {a.val_split}")
    metrics, out = app.train(a.data, images=a.images, lang=a.lang, tokens=a.tokens, encoder=a.encoder,
                             arch=a.arch, embed_dim=a.embed_dim, units=a.units, dropout=a.dropout,
                             epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr,
                             min_count=a.min_count, max_len=a.max_len, test_split=a.test_split,
                             val_split=a.val_split, beam=a.beam, patience=a.patience, seed=a.seed, pca=a.pca or None,
                             out=a.out, samples=a.samples, verbose=verbose(a), log=say,
                             progress=not a.quiet, checkpoint=checkpoint_args(a))
    say(f"outputs in {out}")


def run_eval(a):
    metrics, out = app.evaluate(a.run, data=a.data, images=a.images, beam=a.beam, out=a.out,
                                samples=a.samples, log=say, progress=not a.quiet)
    say(f"outputs in {out}")


def run_describe(a):
    for path, caption in app.describe(a.model, a.images, beam=a.beam):
        say(f"{path}\t{caption}")
