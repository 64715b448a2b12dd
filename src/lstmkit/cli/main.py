"""Entry point of the `lstmkit` command (also `python -m lstmkit`)."""
import sys

from .. import __version__
from ..data.errors import DataError
from ..distributed.cli import quiet_unless_rank_zero
from . import (caption, classify, data, demo, export, forecast, generate, gradients, inspect, serve,
               translate, warmup)
from .common import Formatter, OneLineErrorParser, OptionError, positive_int
from .threads import blas_threads

COMMANDS = (classify, generate, forecast, gradients, inspect, translate, caption, export, serve, demo, data, warmup)


def build_parser():
    p = OneLineErrorParser(
        prog="lstmkit", formatter_class=Formatter,
        description="Recurrent networks (LSTM, GRU, simple RNN) from first principles: train, sample, "
                    "forecast and look inside, on your data or on real data that ships with the machine.",
        epilog="Each command writes its outputs to a run folder it prints; `lstmkit COMMAND --help` "
               "explains its options.")
    p.add_argument("--version", action="version", version=f"lstmkit {__version__}")
    p.add_argument("--blas-threads", type=positive_int, default=None,
                   help="BLAS threads (default 1: faster for these small matrices, see lstmkit.cli.threads)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    for mod in COMMANDS:
        mod.register(sub)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    prog = " ".join(["lstmkit", args.command] + ([args.action] if getattr(args, "action", None) else []))
    try:
        with blas_threads(args.blas_threads), quiet_unless_rank_zero(args):   # torchrun: rank 0 speaks
            return args.func(args) or 0
    except OptionError as e:                     # options that do not go together: as argparse's errors
        if getattr(args, "debug", False):
            raise
        print(f"{prog}: error: {e} (see {prog} --help)", file=sys.stderr)
        return 2
    except DataError as e:
        if getattr(args, "debug", False):
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:                       # a bug or an unforeseen input: one line, no traceback
        if getattr(args, "debug", False):
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"{prog}: error: {type(e).__name__}: {msg} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
