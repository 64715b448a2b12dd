"""`lstmkit warmup`: compile the fast engine's kernels now, not at first use."""
from .common import Formatter, say

CELLS = ("lstm", "gru", "simple_rnn")
DTYPES = ("float32", "float64")


def register(sub):
    p = sub.add_parser("warmup", help="compile the fast engine's kernels ahead of use (or clear them)",
                       formatter_class=Formatter,
                       description="Compile (or load from the kernel cache) every kernel of the fast engine "
                                   "for the given cells and dtypes, so that a first fit or predict does not "
                                   "wait for numba. Prints where the kernels are kept (LSTMKIT_CACHE_DIR "
                                   "moves them) and the time taken.")
    p.add_argument("--cells", default=",".join(CELLS), help="comma list of lstm, gru, simple_rnn")
    p.add_argument("--dtypes", default="float32", help="comma list of float32, float64")
    p.add_argument("--clear", action="store_true", help="delete this lstmkit's compiled kernels instead")
    p.set_defaults(func=run)


def run(a):
    from ..kernels import cache, warmup
    if a.clear:
        cache.clear()
        say(f"cleared {cache.cache_dir()}")
        return 0
    cells = [c.strip() for c in a.cells.split(",") if c.strip()]
    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    for name, allowed in (("cells", CELLS), ("dtypes", DTYPES)):
        bad = [v for v in (cells if name == "cells" else dtypes) if v not in allowed]
        if bad:
            raise ValueError(f"--{name}: unknown {', '.join(bad)}; expected some of {', '.join(allowed)}")
    seconds = warmup.warm(cells, dtypes, progress=lambda what: say(f"compiling {what} ..."))
    say(f"kernels ready in {seconds:.1f} s ({cache.cache_dir()})")
    return 0
