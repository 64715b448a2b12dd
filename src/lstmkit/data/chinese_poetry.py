"""The poems of the npm package chinese-poetry (the 57,607 poems of the
Complete Tang Poems, 全唐詩, in traditional script) and the layout users can
bring their own poems in.

Layout: a folder of JSON files (``poet.tang.0.json``, ``poet.tang.1000.json``,
... in the package's ``dist/quantangshi/``), each a list of records
``{"author": str, "title": str, "paragraphs": [str, ...], "id": ...}``; one
paragraph is usually one couplet, ``秦川雄帝宅，函谷壯皇居。``. A single JSON
file of that form works too.

The editors' apparatus is cleaned out of the paragraphs before training:
notes in full-width brackets (``（一作「行」）``: a variant reading) and
footnote marks (``〖1〗``) are removed, and ``[爽]`` (a character restored by
the editors) keeps its character. Poems that still hold a lost character
(``□``, ``○``), a character composed in braces (``{艹/尔}``) or anything else
that is neither a Chinese character nor punctuation are left out, and so are
repeated poems (the same text under two authors), so that no poem of the
held-out part is also a training poem.
"""
import json
import os
import re
import unicodedata

import numpy as np

from .errors import DataError
from .tang import Poem

TANG_PATTERN = re.compile(r"poet\.tang\.(\d+)\.json$")
NOTE_RE = re.compile(r"（[^（）]*）|〖[^〖〗]*〗")          # editors' notes, footnote marks
RESTORED_RE = re.compile(r"\[([^\[\]]+)\]")               # [爽] -> 爽
# punctuation that may stay in a poem's text
POEM_PUNCT = set("，。？！、；：「」『』《》·…")


def _is_hanzi(ch):
    return unicodedata.category(ch) == "Lo" and "CJK" in unicodedata.name(ch, "")


def clean_lines(paragraphs):
    """The paragraphs with the editors' notes removed, or None when the poem
    holds something that is neither a Chinese character nor punctuation."""
    text = "\n".join(paragraphs)
    while True:                        # notes may nest, and span paragraphs: innermost first
        shorter = NOTE_RE.sub("", text)
        if shorter == text:
            break
        text = shorter
    out = []
    for para in text.split("\n"):
        s = RESTORED_RE.sub(r"\1", para).strip()
        if all(ch in POEM_PUNCT for ch in s):
            continue                   # empty, or the '。' a removed note left behind
        if not all(ch in POEM_PUNCT or _is_hanzi(ch) for ch in s):
            return None
        out.append(s)
    return out or None


def tang_files(folder):
    """The poet.tang.N.json files of a folder, in the order of N."""
    try:
        names = os.listdir(folder)
    except OSError as e:
        raise DataError(f"{folder}: cannot list the folder ({e.strerror})") from None
    found = sorted((int(m.group(1)), n) for n in names if (m := TANG_PATTERN.match(n)))
    if not found:
        raise DataError(f"{folder}: no poet.tang.N.json files; expected the chinese-poetry layout "
                        f"(a folder of JSON lists of {{author, title, paragraphs}})")
    return [os.path.join(folder, n) for _, n in found]


def find_tang_folder(root):
    """The folder under root (the unpacked npm package) holding poet.tang.0.json."""
    root = os.fspath(root)
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if "poet.tang.0.json" in files:
            return folder
    raise DataError(f"{root}: no poet.tang.0.json below it; expected the npm package chinese-poetry "
                    f"(its dist/quantangshi/ folder)")


def read_poem_file(path):
    """Poems of one JSON file of the chinese-poetry layout, uncleaned."""
    try:
        with open(path, encoding="utf-8") as f:
            records = json.load(f)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}, column {e.colno}: not valid JSON ({e.msg})") from None
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of poems, got a {type(records).__name__}")
    poems = []
    for k, r in enumerate(records):
        paras = r.get("paragraphs") if isinstance(r, dict) else None
        if not isinstance(paras, list) or not all(isinstance(p, str) for p in paras):
            raise DataError(f"{path}: poem {k} has no 'paragraphs' list of strings; expected records "
                            f"like {{\"author\": ..., \"title\": ..., \"paragraphs\": [\"...\"]}}")
        poems.append(Poem(str(r.get("title", "")), str(r.get("author", "")), list(paras)))
    return poems


def load_poems(path, log=None):
    """Cleaned, de-duplicated poems from a folder of poet.tang.N.json files or
    one JSON file. log(str) gets a line saying how many were kept."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder; expected chinese-poetry's poet.tang.N.json "
                        f"files (or run: lstmkit data fetch chinese-poetry)")
    files = tang_files(path) if os.path.isdir(path) else [path]
    raw = [p for f in files for p in read_poem_file(f)]
    poems, seen, dropped, repeated = [], set(), 0, 0
    for p in raw:
        lines = clean_lines(p.lines)
        if lines is None:
            dropped += 1
            continue
        key = "".join(lines)
        if key in seen:
            repeated += 1
            continue
        seen.add(key)
        poems.append(Poem(p.title, p.author, lines))
    if not poems:
        raise DataError(f"{path}: no usable poems in {len(raw)} records")
    if log:
        log(f"{len(raw)} poems read from {len(files)} file(s); {dropped} left out (lost or composed "
            f"characters), {repeated} repeats left out; {len(poems)} kept")
    return poems


def split_poems(poems, val_fraction=0.05, test_fraction=0.05, seed=0):
    """(train, validation, test) lists of poems: a random split by poem (a
    poem lies wholly in one part), the same for the same seed.

    The corpus repeats lines across poems (variants of one poem, quotations):
    a held-out poem sharing a line with a training poem moves to the training
    part, so that no held-out line was seen in training."""
    for name, f in (("validation", val_fraction), ("test", test_fraction)):
        if not 0 <= f < 1:
            raise DataError(f"the {name} fraction must be in [0, 1); got {f}")
    if val_fraction + test_fraction >= 1:
        raise DataError(f"validation and test fractions leave nothing to train on "
                        f"({val_fraction} + {test_fraction} >= 1)")
    n = len(poems)
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    if (val_fraction and not n_val) or (test_fraction and not n_test) or n - n_val - n_test < 1:
        raise DataError(f"{n} poems are too few to split into training, validation and test parts")
    train = set(order[n_val + n_test:].tolist())
    seen = {line for i in train for line in poems[i].lines}
    held = []
    for part in (order[:n_val], order[n_val:n_val + n_test]):
        keep = []
        for i in part.tolist():
            (train.add if any(line in seen for line in poems[i].lines) else keep.append)(i)
        held.append(keep)
    pick = lambda idx: [poems[i] for i in sorted(idx)]
    return pick(train), pick(held[0]), pick(held[1])


def to_simplified(poems):
    """The poems converted to simplified script by OpenCC (PyPI package opencc)."""
    try:
        import opencc
    except ImportError:
        raise DataError("simplified script needs OpenCC's Python package: pip install opencc") from None
    conv = opencc.OpenCC("t2s")
    return [Poem(conv.convert(p.title), conv.convert(p.author), [conv.convert(s) for s in p.lines])
            for p in poems]
