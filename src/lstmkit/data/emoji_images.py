"""Emoji as images: every single-code-point emoji that Noto Color Emoji draws,
rendered once with Pillow to PNG files in the data cache, each with its CLDR
name in English and Chinese from the `emoji` package.

Noto Color Emoji is a bitmap (CBDT) font: FreeType draws it only at its one
strike size, 109 pixels, and Pillow keeps the colours with embedded_color=True.
Emoji the font's version does not have come out blank and are left out.
"""
import json
import os

import numpy as np

from .errors import DataError

SIZE = 109                      # the font's only bitmap size
CANVAS = (136, 128)             # what the 109 px strike covers
VERSION = 1                     # bump when the rendering changes


def _emoji_package():
    try:
        import emoji
    except ImportError:
        raise DataError("emoji captions need the emoji package: pip install 'lstmkit[caption]'") from None
    return emoji


def emoji_names():
    """[(emoji, {'en': name, 'zh': name}, group)] for the fully qualified emoji of
    one code point (a trailing variation selector U+FE0F allowed), in code-point order."""
    emoji = _emoji_package()
    emoji.config.load_language("zh")
    out = []
    for e, d in emoji.EMOJI_DATA.items():
        if len(e.replace("\ufe0f", "")) != 1 or d.get("status") != emoji.STATUS["fully_qualified"]:
            continue
        names = {}
        for lang in ("en", "zh"):
            name = d.get(lang)
            if not name:
                break
            names[lang] = name.strip(":").replace("_", " ").strip()
        if len(names) == 2:
            out.append((e, names, f"E{d.get('E', '')}"))
    out.sort(key=lambda t: ord(t[0][0]))
    return out


def _font_path(font):
    if font is not None:
        return os.fspath(font)
    from .. import datasets
    return os.fspath(datasets.fetch("fonts-noto-color-emoji") / datasets.SOURCES["fonts-noto-color-emoji"].files["font"])


def render_emoji(font=None, folder=None, progress=True):
    """[(png path, {'en', 'zh'}, group)] for the emoji the font draws; the PNGs (RGB on
    white) are written once into `folder` (default: the cache's derived/ folder, keyed
    by the font file's size and the emoji package's version)."""
    from PIL import Image, ImageDraw, ImageFont
    from tqdm import tqdm
    emoji = _emoji_package()
    font = _font_path(font)
    if not os.path.isfile(font):
        raise DataError(f"{font}: no such font file (expected NotoColorEmoji.ttf)")
    if folder is None:
        from .. import datasets
        key = f"emoji-v{VERSION}-{emoji.__version__}-{os.path.getsize(font)}"
        folder = os.path.join(datasets.cache_root(), "derived", key)
    index = os.path.join(folder, "index.json")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            rows = json.load(f)
        if all(os.path.isfile(os.path.join(folder, r["file"])) for r in rows):
            return [(os.path.join(folder, r["file"]), r["names"], r["group"]) for r in rows]
    try:
        face = ImageFont.truetype(font, SIZE)
    except OSError as e:
        raise DataError(f"{font}: Pillow cannot open it as a font at size {SIZE} ({e})") from None
    from ..io import atomic_path, write_json
    os.makedirs(folder, exist_ok=True)
    rows = []
    todo = emoji_names()
    for e, names, group in tqdm(todo, desc="drawing emoji", unit="emoji", disable=not progress,
                                leave=False):
        im = Image.new("RGBA", CANVAS, (255, 255, 255, 0))
        ImageDraw.Draw(im).text((0, 0), e, font=face, embedded_color=True)
        if im.getbbox() is None:
            continue                                   # not in this font version
        rgb = Image.new("RGB", CANVAS, (255, 255, 255))
        rgb.paste(im, mask=im.getchannel("A"))
        name = f"u{ord(e[0]):05x}.png"
        with atomic_path(os.path.join(folder, name)) as tmp:
            rgb.save(tmp, format="PNG")
        rows.append({"file": name, "names": names, "group": group, "emoji": e})
    if not rows:
        raise DataError(f"{font}: the font drew none of {len(todo)} emoji")
    write_json(index, rows)
    return [(os.path.join(folder, r["file"]), r["names"], r["group"]) for r in rows]
