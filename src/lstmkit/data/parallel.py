"""Parallel text: sentence pairs for translation, and their splits.

Two sources:

- the German-English example sentences of the Ding dictionary (Debian package
  trans-de-en, file usr/share/trans/de-en). A line reads

      German | sub-entry | ... :: English | sub-entry | ...

  The " | " parts line up one to one, "; " separates alternatives within a
  part, and {m} {pl} {adj} (grammar), [ugs.] [Br.] (usage) and <...> (other
  spellings) are tags. A pair is kept where both sides of a part are whole
  sentences -- first letter a capital, last character one of . ? !, at least
  3 words -- taking the first such alternative on each side. Sentences that
  still hold inline alternatives ("torn/ripped") or optional words in
  parentheses ("(wirklich)") are left out: neither side says which variant the
  other one translates. About 16.3k unique pairs remain.

- the user's own file of pairs: the Tatoeba / manythings layout (no header,
  ``source<TAB>target[<TAB>attribution]``), or a CSV/TSV with a header naming
  the columns. Any language and script.

Splits are seeded and made by source sentence: every pair whose source is in
the test (or validation) split is there whole, so no test source sentence is
ever seen in training.
"""
import csv
import io
import os
import re
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError
from .textfile import read_text

DING_FILE = os.path.join("usr", "share", "trans", "de-en")
DING_DATASET = "trans-de-en"

_TAG = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:?!])")


@dataclass
class Pairs:
    """Sentence pairs: src[i] translates to tgt[i]."""
    src: list = field(default_factory=list)
    tgt: list = field(default_factory=list)
    source: str = ""                     # where they came from, for messages and metrics
    src_lang: str = "src"
    tgt_lang: str = "tgt"

    def __len__(self):
        return len(self.src)

    def subset(self, index):
        return Pairs([self.src[i] for i in index], [self.tgt[i] for i in index], self.source,
                     self.src_lang, self.tgt_lang)


# ---- the Ding dictionary ----------------------------------------------------------------
def strip_tags(text):
    """Drop {..}, [..] and <..> tags; tidy the spaces they leave."""
    text = " ".join(_TAG.sub(" ", text).split())
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def is_sentence(text):
    return len(text.split()) >= 3 and text[:1].isupper() and text[-1:] in ".?!"


def _clean_sentence(text):
    return not any(c in text for c in "/()")


def parse_ding(text, keep_variants=False):
    """The (German, English) sentence pairs of a Ding dictionary file, in file
    order, duplicates removed. keep_variants=True also keeps sentences with
    inline alternatives or optional words (see the module docstring)."""
    pairs, seen = [], set()
    for line in text.splitlines():
        if line.startswith("#") or " :: " not in line:
            continue
        de, en = line.split(" :: ", 1)
        de_parts, en_parts = de.split(" | "), en.split(" | ")
        if len(de_parts) != len(en_parts):
            continue                                   # the parts do not line up: no pair is certain
        for d, e in zip(de_parts, en_parts):
            ds = [a for a in map(strip_tags, d.split("; ")) if is_sentence(a)]
            es = [a for a in map(strip_tags, e.split("; ")) if is_sentence(a)]
            if not ds or not es:
                continue
            pair = (ds[0], es[0])
            if not keep_variants and not (_clean_sentence(pair[0]) and _clean_sentence(pair[1])):
                continue
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
    return pairs


def ding_path(path=None, log=print):
    """The de-en file: `path` if given (the file or an unpacked package root), else
    through the data cache (lstmkit.datasets, data set 'trans-de-en')."""
    if path is not None:
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, DING_FILE)
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file; expected the Ding dictionary file "
                            f"usr/share/trans/de-en of the Debian package trans-de-en")
        return path
    try:
        from .. import datasets
    except ImportError:
        raise DataError("the Ding pairs come through the data cache (lstmkit.datasets), which this "
                        "lstmkit does not have; pass the file instead: apt-get download trans-de-en "
                        "&& dpkg -x trans-de-en_*.deb DIR, then --ding DIR") from None
    root = datasets.fetch(DING_DATASET, log=log)   # its errors (DataError) say what to run
    return os.path.join(os.fspath(root), datasets.SOURCES[DING_DATASET].files["de-en"])


def load_ding(path=None, keep_variants=False, log=print):
    path = ding_path(path, log)
    pairs = parse_ding(read_text(path, what="Ding dictionary file"), keep_variants)
    if not pairs:
        raise DataError(f"{path}: no sentence pairs found; expected lines 'German | ... :: English | ...'")
    return Pairs([p[0] for p in pairs], [p[1] for p in pairs], f"ding:{path}", "de", "en")


# ---- the user's own pairs ------------------------------------------------------------------
def _column(header, col, path, what):
    if isinstance(col, int) or (isinstance(col, str) and col.isdigit()):
        i = int(col)
        if header is not None and i >= len(header):
            raise DataError(f"{path}, line 1: {what} column {i} does not exist; the header has "
                            f"{len(header)} columns {header}")
        return i
    if header is None:
        raise DataError(f"{path}: {what} column {col!r} is a name but the file has no header "
                        f"(pass --header, or column numbers counted from 0)")
    if col not in header:
        raise DataError(f"{path}, line 1: no column {col!r}; the header has {header}")
    return header.index(col)


def read_pairs(path, src_col=0, tgt_col=1, header=None, delimiter=None, encoding_errors="strict"):
    """Sentence pairs from a TSV/CSV file.

    src_col, tgt_col: column names (with a header) or numbers from 0. Default
    0 and 1, the Tatoeba/manythings layout `source<TAB>target<TAB>attribution`
    (reverse the direction with src_col=1, tgt_col=0). header: None = the file
    has one when the columns are given by name. delimiter: None = a tab if the
    first line holds one, else a comma.
    """
    path = os.fspath(path)
    text = read_text(path, errors=encoding_errors, what="file of sentence pairs")
    if delimiter is None:
        first = text.split("\n", 1)[0]
        delimiter = "\t" if "\t" in first else ","
    if header is None:
        header = not (str(src_col).isdigit() and str(tgt_col).isdigit())
    if delimiter == "\t":
        # a TSV of sentences: quotes are text, not quoting
        rows = [line.split("\t") for line in text.splitlines()]
        row_lines = list(range(1, len(rows) + 1))
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows, row_lines = [], []
        try:
            while True:
                start = reader.line_num + 1
                try:
                    rows.append(next(reader))
                except StopIteration:
                    break
                row_lines.append(start)
        except csv.Error as e:
            raise DataError(f"{path}, line {reader.line_num}: malformed CSV ({e})") from None
    names = None
    if header:
        names = [h.strip() for h in rows[0]]
        rows, row_lines = rows[1:], row_lines[1:]
    si = _column(names, src_col, path, "source")
    ti = _column(names, tgt_col, path, "target")
    if si == ti:
        raise DataError(f"{path}: the source and target columns are the same ({src_col!r})")
    src, tgt = [], []
    need = max(si, ti) + 1
    shown = "source<TAB>target[<TAB>more]" if delimiter == "\t" else f"{need} fields"
    for row, line in zip(rows, row_lines):
        if not row or all(not c.strip() for c in row):
            continue                                       # blank lines carry nothing
        if len(row) < need:
            raise DataError(f"{path}, line {line}: {len(row)} column{'s' * (len(row) != 1)}; "
                            f"expected at least {need} ({shown}, delimiter {delimiter!r})")
        s, t = row[si].strip(), row[ti].strip()
        for side, value in (("source", s), ("target", t)):
            if not value:
                raise DataError(f"{path}, line {line}: the {side} sentence is empty")
        src.append(s)
        tgt.append(t)
    if not src:
        raise DataError(f"{path}: no sentence pairs found")
    src_lang = names[si] if names else "src"
    tgt_lang = names[ti] if names else "tgt"
    return Pairs(src, tgt, path, src_lang, tgt_lang)


# ---- splits --------------------------------------------------------------------------------
def split_pairs(pairs, val_fraction=0.05, test_fraction=0.05, seed=0):
    """{'train', 'val', 'test'} -> Pairs, seeded, made by unique source sentence
    so that a source sentence (and every translation of it) lies in one split only."""
    for name, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= v < 1:
            raise DataError(f"{name} must be in [0, 1); got {v}")
    if val_fraction + test_fraction >= 1:
        raise DataError(f"val_fraction + test_fraction must be below 1; got {val_fraction + test_fraction}")
    sources = sorted(set(pairs.src))
    order = np.random.default_rng(seed).permutation(len(sources))
    n_test = int(round(test_fraction * len(sources)))
    n_val = int(round(val_fraction * len(sources)))
    if (test_fraction and not n_test) or (val_fraction and not n_val) or n_test + n_val >= len(sources):
        raise DataError(f"{pairs.source}: {len(sources)} distinct source sentences are too few for "
                        f"splits of {val_fraction:.0%} and {test_fraction:.0%}")
    which = {}
    for rank, k in enumerate(order):
        which[sources[k]] = "test" if rank < n_test else ("val" if rank < n_test + n_val else "train")
    index = {"train": [], "val": [], "test": []}
    for i, s in enumerate(pairs.src):
        index[which[s]].append(i)
    return {name: pairs.subset(ix) for name, ix in index.items()}


def write_split(path, pairs):
    """One pair per line: source<TAB>target (tabs and newlines inside are spaces)."""
    from ..io import write_text
    clean = lambda s: " ".join(s.split())
    write_text(path, "".join(f"{clean(s)}\t{clean(t)}\n" for s, t in zip(pairs.src, pairs.tgt)))


def read_split(path, src_lang="src", tgt_lang="tgt"):
    p = read_pairs(path, 0, 1, header=False, delimiter="\t")
    p.src_lang, p.tgt_lang = src_lang, tgt_lang
    return p
