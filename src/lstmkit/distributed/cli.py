"""The `lstmkit` command under torchrun: every rank runs the command, rank 0 speaks.

    torchrun --nproc-per-node 2 -m lstmkit classify train reviews.csv ...

Each rank reads the data and trains (fit shards every batch and sums the
gradients: data_parallel.py), so every rank ends with the same model. Rank 0
writes the run folder and prints; the others write into a temporary folder
that is removed when the command ends, print nothing and show no progress bar.
"""
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager, redirect_stdout

from .data_parallel import env_rank, launched


@contextmanager
def quiet_unless_rank_zero(args):
    """Around a command's run: nothing changes on rank 0 (or outside torchrun); on
    the other ranks --out goes to a temporary folder, --quiet is set, stdout is dropped."""
    if not launched() or env_rank() == 0:
        yield
        return
    tmp = tempfile.mkdtemp(prefix=f"lstmkit-rank{env_rank()}-")
    if hasattr(args, "out"):
        args.out = os.path.join(tmp, "run")
    if hasattr(args, "quiet"):
        args.quiet = True
    try:
        with open(os.devnull, "w") as null, redirect_stdout(null):
            yield
    finally:
        sys.stdout.flush()
        shutil.rmtree(tmp, ignore_errors=True)
