"""The Tang poems of the Debian package fortunes-zh (file ``tang300``).

Format: records separated by lines holding only ``%``. A record starts with a
title line ``《…》`` and an author line ``作者：…``, each wrapped in ANSI colour
codes (ESC[32m … ESC[m), followed by the poem's lines: 5 or 7 characters per
half-line plus punctuation (，。？！).
"""
import os
import re
from dataclasses import dataclass

from .errors import DataError
from .textfile import read_text

TANG_PATH = "/usr/share/games/fortunes/tang300"
INSTALL_HINT = "`lstmkit data fetch fortunes-zh` gets them"

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
PUNCT = set("，。？！、；：“”‘’（）《》·・—…「」 ")


@dataclass
class Poem:
    title: str
    author: str
    lines: list          # the poem's text lines, punctuation kept

    def text(self):
        return "\n".join(self.lines)


def strip_ansi(text):
    return ANSI_RE.sub("", text)


def parse_fortunes(text):
    """Split a fortune file into records (lists of non-empty lines)."""
    records, current = [], []
    for line in text.splitlines():
        if line.strip() == "%":
            if current:
                records.append(current)
            current = []
        elif line.strip():
            current.append(line.rstrip())
    if current:
        records.append(current)
    return records


def parse_tang(text):
    poems = []
    for rec in parse_fortunes(strip_ansi(text)):
        title = author = ""
        body = []
        for line in rec:
            s = line.strip()
            if s.startswith("《") and not title and not body:
                title = s.strip("《》")
            elif s.startswith("作者：") and not author and not body:
                author = s[len("作者："):]
            else:
                body.append(s)
        if body:
            poems.append(Poem(title, author, body))
    return poems


def half_line_lengths(poem):
    """Characters between punctuation marks in each line, e.g. [5, 5, 5, 5]."""
    out = []
    for line in poem.lines:
        out += [len(part) for part in re.split(r"[，。？！、；：]", line) if part]
    return out


def is_regular(poem, n=None):
    """True for a poem whose half-lines all have 5 (or all 7) characters."""
    lens = set(half_line_lengths(poem))
    return len(lens) == 1 and lens <= ({n} if n else {5, 7})


def load_tang(path=TANG_PATH):
    if not os.path.exists(path):
        raise DataError(f"{path}: Tang poems not found; {INSTALL_HINT}")
    poems = parse_tang(read_text(path, what="fortune file"))
    if not poems:
        raise DataError(f"{path}: no poems found; expected records separated by '%' lines")
    return poems


def corpus_text(poems):
    """The training text: poem bodies, one blank line between poems."""
    return "\n\n".join(p.text() for p in poems) + "\n"
