"""C source of the Linux kernel as a code corpus (char-rnn's "imitate the
Linux kernel" experiment).

Debian's linux-source-6.1 package ships the kernel as one tar.xz (138 MB,
1.3 GB unpacked). The corpus is the .c files under kernel/, mm/ and fs/ext4/
(595 files, 17 MB): read once from the tarball through the data cache and
kept as plain files in the cache's derived/ folder (keyed by the tarball's
SHA-256, so another version extracts anew). A folder of your own C files works
the same way (``--corpus-dir``).

The held-out parts are whole files (a random choice by seed), so no function
of a held-out file was seen in training.
"""
import os
import tarfile

import numpy as np

from .errors import DataError
from .textfile import decode_utf8

DATASET = "linux-source-6.1"
FOLDERS = ("kernel/", "mm/", "fs/ext4/")
SUFFIXES = (".c",)


def wanted(rel, folders=FOLDERS, suffixes=SUFFIXES):
    return rel.endswith(suffixes) and rel.startswith(folders)


def extract_subset(tarball, dest, folders=FOLDERS, suffixes=SUFFIXES, log=None):
    """Copy the wanted files of a kernel tarball (paths below its top folder)
    into dest, atomically: built in dest + '.tmp' and renamed when complete."""
    tmp = f"{dest}.tmp"
    if os.path.exists(tmp):
        import shutil
        shutil.rmtree(tmp)                                 # a killed extraction's leftovers
    n = size = 0
    if log:
        log(f"reading {', '.join(folders)} ({', '.join(suffixes)}) from {tarball} (once; about a minute)")
    try:
        with tarfile.open(tarball, "r:*") as tar:
            for m in tar:                                  # streamed: one pass over the .xz
                parts = m.name.split("/", 1)
                if not m.isfile() or len(parts) < 2 or not wanted(parts[1], folders, suffixes):
                    continue
                target = os.path.join(tmp, parts[1])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with tar.extractfile(m) as src, open(target, "wb") as out:
                    out.write(src.read())
                n, size = n + 1, size + m.size
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{tarball}: cannot read the kernel tarball ({e})") from None
    if not n:
        raise DataError(f"{tarball}: no files under {', '.join(folders)}; is it a Linux source tarball?")
    os.rename(tmp, dest)
    if log:
        log(f"{n} files, {size / 1e6:.1f} MB kept in {dest}")
    return dest


def cached_subset(log=print):
    """The folder of the corpus's C files, extracted from the cached tarball on first use."""
    from .. import datasets
    root = datasets.fetch(DATASET, log=log)
    src = datasets.SOURCES[DATASET]
    tarball = os.path.join(root, src.files["tarball"])
    dest = os.path.join(datasets.cache_root(), "derived", f"{DATASET}-{src.sha256[:12]}",
                        "-".join(f.strip("/").replace("/", "_") for f in FOLDERS))
    if not os.path.isdir(dest):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        extract_subset(tarball, dest, log=log)
    return dest


def source_files(folder, suffixes=SUFFIXES):
    """Relative paths of the source files below folder, sorted."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: no such folder; expected a folder of C source files")
    out = []
    for d, dirs, files in os.walk(folder):
        dirs.sort()
        out += [os.path.relpath(os.path.join(d, f), folder) for f in sorted(files) if f.endswith(suffixes)]
    if not out:
        raise DataError(f"{folder}: no {'/'.join(suffixes)} files below it")
    return out


def read_sources(folder, files):
    """One text: each file's content after a line naming it, as a C comment."""
    parts = []
    for rel in files:
        path = os.path.join(folder, rel)
        with open(path, "rb") as f:
            text = decode_utf8(f.read(), path, errors="replace")
        parts.append(f"/* {rel} */\n{text.rstrip()}\n")
    return "\n".join(parts)


def split_files(files, val_fraction, test_fraction, seed=0):
    """(train, val, test) lists of files: a random split by file."""
    n = len(files)
    n_val, n_test = max(1, int(round(n * val_fraction))), max(1, int(round(n * test_fraction)))
    if n - n_val - n_test < 1:
        raise DataError(f"{n} source files are too few to hold out {n_val} for validation and {n_test} "
                        f"for the test")
    order = np.random.default_rng(seed).permutation(n)
    pick = lambda idx: [files[i] for i in sorted(idx)]
    return pick(order[n_val + n_test:]), pick(order[:n_val]), pick(order[n_val:n_val + n_test])


def linux_corpus(corpus_dir=None, max_chars=None, val_fraction=0.05, test_fraction=0.05, seed=0, log=print):
    from ..apps.text_corpora import Corpus
    folder = corpus_dir or cached_subset(log)
    files = source_files(folder)
    train, val, test = split_files(files, val_fraction, test_fraction, seed)
    text = read_sources(folder, train)
    if max_chars and len(text) > max_chars:
        text = text[:max_chars]
    c = Corpus("linux", text, read_sources(folder, val), read_sources(folder, test),
               split=f"split by file (seed {seed})",
               info={"files": {"train": len(train), "val": len(val), "test": len(test)},
                     "folder": os.fspath(folder), "val_files": val, "test_files": test})
    log(f"Linux kernel C source: {len(train)} training, {len(val)} validation, {len(test)} test files; "
        f"{len(c.train):,} / {len(c.val):,} / {len(c.test):,} characters"
        + (f" (training text cut to {max_chars:,})" if max_chars else ""))
    return c
