"""Options every subcommand shares, and a parser whose errors are one line."""
import argparse
import sys


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints the usage and exits 2 on a bad option; we print one line
    naming the problem and where to look for help."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


class OptionError(ValueError):
    """Options that parse one by one but do not go together (``--resume`` without ``--checkpoint-dir``):
    main() prints it as argparse's own errors, one line and exit status 2."""


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def add_common(p, with_out=True):
    if with_out:
        p.add_argument("--out", metavar="DIR", default=None,
                       help="run folder for the outputs (default: runs/<command>-<timestamp>)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same run)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show the Python traceback on errors")


def add_checkpoint(p):
    """--checkpoint-dir / --checkpoint-every / --resume for a training command (fit's checkpoints)."""
    p.add_argument("--checkpoint-dir", metavar="DIR", default=None,
                   help="write training checkpoints here (each epoch end, and every --checkpoint-every batches)")
    p.add_argument("--checkpoint-every", metavar="N", type=positive_int, default=None,
                   help="also write a checkpoint every N batches (needs --checkpoint-dir)")
    p.add_argument("--keep-checkpoints", metavar="K", type=positive_int, default=3,
                   help="keep the newest K checkpoints")
    p.add_argument("--resume", action="store_true",
                   help="go on from the newest checkpoint in --checkpoint-dir (same command and options: the "
                        "result is the one an uninterrupted run gives)")


def checkpoint_args(a):
    """fit's checkpoint keyword arguments from the options of add_checkpoint (None: no checkpoints)."""
    if a.checkpoint_dir is None:
        if a.resume or a.checkpoint_every:
            raise OptionError(f"{'--resume' if a.resume else '--checkpoint-every'} needs --checkpoint-dir DIR, "
                             f"the folder of the checkpoints")
        return None
    return {"checkpoint_dir": a.checkpoint_dir, "checkpoint_every": a.checkpoint_every,
            "keep_checkpoints": a.keep_checkpoints, "resume": a.resume}


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def fraction(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {v}")
    return v


def positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v}")
    return v


def comma_list(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def verbose(args):
    return 0 if args.quiet else 1


def say(*a):
    print(*a, flush=True)
