"""The texts `generate train` learns from, each split into training,
validation and (where the corpus allows) test text:

- ``tang``: the 313 poems of fortunes-zh (the small offline set); the last
  part of the text is held out.
- ``tang-full``: the 57,607 poems of the npm package chinese-poetry, through
  the data cache (or a folder of its JSON files, ``corpus_dir``); split by poem.
- ``linux``: C files of the Linux kernel (kernel/, mm/, fs/ext4/) from
  Debian's linux-source-6.1, through the data cache (or a folder of C files);
  split by file.
- ``stdlib``: Python's standard-library source; the last part held out.
- a UTF-8 text file of your own; the last part held out.
"""
import os
from dataclasses import dataclass, field

from ..data.chinese_poetry import find_tang_folder, load_poems, split_poems, to_simplified
from ..data.corpora import stdlib_source
from ..data.errors import DataError
from ..data.tang import corpus_text, load_tang
from ..data.textfile import read_text

CORPORA = ("tang", "tang-full", "linux", "stdlib")
POETRY = ("tang", "tang-full")              # corpora whose samples are laid out as poems


@dataclass
class Corpus:
    name: str
    train: str
    val: str
    test: str = None
    split: str = "the last part of the text held out"
    info: dict = field(default_factory=dict)

    @property
    def poetry(self):
        return self.name in POETRY


def fetch_dataset(name, log=print):
    """The unpacked root of a data set of the data cache (lstmkit.datasets)."""
    try:
        from .. import datasets
    except ImportError:
        raise DataError(f"the data cache (lstmkit.datasets) is not available to fetch {name}; "
                        f"pass the files yourself (--corpus-dir)") from None
    return datasets.fetch(name, log=log)


def _tail_split(text, val_fraction):
    if not 0 < val_fraction < 1:
        raise DataError(f"the validation fraction must be in (0, 1); got {val_fraction}")
    cut = int(round(len(text) * (1 - val_fraction)))
    return text[:cut], text[cut:]


def tang_file(log=print):
    """fortunes-zh's tang300 through the data cache (an installed fortunes-zh is used as it is)."""
    from .. import datasets
    return str(datasets.fetch("fortunes-zh", log=log) / datasets.SOURCES["fortunes-zh"].files["tang300"])


def load(path=None, corpus=None, corpus_dir=None, tang_path=None, max_chars=None, val_fraction=None,
         test_fraction=0.05, script="traditional", seed=0, encoding_errors="strict", log=print):
    """-> Corpus. max_chars caps the text (for tang-full and linux: the
    training text; their held-out parts stay whole). val_fraction: default
    0.05 of the poems or files for tang-full and linux, else 0.1 of the text."""
    if val_fraction is None:
        val_fraction = 0.05 if corpus in ("tang-full", "linux") else 0.1
    if corpus == "tang":
        try:
            tang_path = tang_path or tang_file(log)
            poems = load_tang(tang_path)
            text = corpus_text(poems)
            log(f"Tang poems: {len(poems)} poems, {len(text)} characters from {tang_path}")
            text = text[:max_chars] if max_chars else text
            return Corpus("tang", *_tail_split(text, val_fraction))
        except DataError as e:
            log(f"note: {e}")
            log("falling back to Python's standard-library source (the seeds' 'imitate code' case)")
            corpus = "stdlib"
    if corpus == "tang-full":
        return _tang_full(corpus_dir, max_chars, val_fraction, test_fraction, script, seed, log)
    if corpus == "linux":
        from ..data.linux_source import linux_corpus
        return linux_corpus(corpus_dir, max_chars, val_fraction, test_fraction, seed, log)
    if corpus == "stdlib":
        text = stdlib_source(max_chars or 200_000)
        log(f"Python standard-library source: {len(text)} characters")
        return Corpus("stdlib", *_tail_split(text, val_fraction))
    if corpus is not None:
        raise DataError(f"unknown corpus {corpus!r}; expected one of {', '.join(CORPORA)}")
    if path is None:
        raise DataError(f"give a UTF-8 text file, or --corpus {'|'.join(CORPORA)}")
    text = read_text(path, errors=encoding_errors, what="UTF-8 text file")
    text = text[:max_chars] if max_chars else text
    return Corpus(os.path.basename(os.fspath(path)), *_tail_split(text, val_fraction))


def _tang_full(corpus_dir, max_chars, val_fraction, test_fraction, script, seed, log):
    if script not in ("traditional", "simplified"):
        raise DataError(f"script must be 'traditional' or 'simplified'; got {script!r}")
    if corpus_dir is None:
        from .. import datasets
        root = fetch_dataset("chinese-poetry", log=log)
        corpus_dir = find_tang_folder(root / datasets.SOURCES["chinese-poetry"].files["quantangshi"])
    folder = corpus_dir
    poems = load_poems(folder, log=log)
    if script == "simplified":
        poems = to_simplified(poems)
        log("converted to simplified script with OpenCC (t2s)")
    train, val, test = split_poems(poems, val_fraction, test_fraction, seed)
    text = corpus_text(train)
    if max_chars and len(text) > max_chars:
        text = text[:max_chars]
    c = Corpus("tang-full", text, corpus_text(val), corpus_text(test),
               split=f"split by poem (seed {seed}); held-out poems share no line with a training poem",
               info={"poems": {"train": len(train), "val": len(val), "test": len(test)},
                     "script": script, "folder": os.fspath(folder)})
    log(f"Tang poems (chinese-poetry, {script} script): {len(train)} training, {len(val)} validation, "
        f"{len(test)} test poems; {len(c.train):,} / {len(c.val):,} / {len(c.test):,} characters")
    return c
