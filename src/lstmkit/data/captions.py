"""Images with captions, from the layouts users have and from two real sets in
the data cache.

Every reader returns a CaptionSet: one entry per distinct image (an absolute
path), each with one or more captions. Problems are refused in one line that
names the file and line: a caption naming an image that does not exist (the
first few listed, with the count), an empty caption, a caption file with no
captions. Images are not opened here (data/images.py does that, when the
features are computed).

Layouts
- COCO captions: ``annotations/captions_<split>.json`` with ``images``
  ([{id, file_name}]) and ``annotations`` ([{image_id, caption}]); the images
  in ``<root>/<split>/`` (or the folder given).
- Flickr8k/30k: ``Flickr8k.token.txt`` / ``results_20130124.token`` lines
  ``NAME.jpg#k<TAB>caption``, or the ``captions.txt`` CSV (``image,caption``
  header); the images in ``Flicker8k_Dataset``/``Images``/``flickr30k_images``
  beside it (or the folder given).
- CSV: columns ``image`` and ``caption`` (names can be changed), several rows
  per image allowed; relative paths from the folder given, else the CSV's.
- Tux Paint stamps (Debian tuxpaint-stamps-default, GPL-2): ``<category>/.../
  NAME.png`` beside ``NAME.txt`` whose first line is the English caption and
  whose other lines are ``xx.utf8=`` translations (``zh_CN`` for Chinese).
- Emoji (Debian fonts-noto-color-emoji + PyPI emoji): every single-code-point
  emoji the font draws, rendered once to PNG (data/emoji_images.py), with its
  CLDR name in English or Chinese.
"""
import json
import os
from dataclasses import dataclass, field

from .errors import DataError
from .textfile import read_text

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
LANGS = {"en": None, "zh": "zh_CN"}           # caption language -> Tux Paint's locale prefix


@dataclass
class CaptionSet:
    images: list = field(default_factory=list)       # absolute paths, distinct
    captions: list = field(default_factory=list)     # per image: a list of one or more captions
    groups: list = field(default_factory=list)       # per image: a category ('' when none)
    lang: str = "en"
    source: str = ""

    def __len__(self):
        return len(self.images)

    def subset(self, idx):
        idx = list(idx)
        return CaptionSet([self.images[i] for i in idx], [self.captions[i] for i in idx],
                          [self.groups[i] for i in idx], self.lang, self.source)


def _collect(pairs, source, lang, what_missing):
    """pairs: (image path, caption, where) in file order -> CaptionSet; refuses empty
    captions and images that do not exist (listing the first few)."""
    order, caps, missing = {}, [], []
    for path, caption, where in pairs:
        text = " ".join(str(caption).split())
        if not text:
            raise DataError(f"{where}: empty caption for image {os.path.basename(path)!r}")
        if path not in order:
            if not os.path.isfile(path):
                missing.append((where, path))
                continue
            order[path] = len(caps)
            caps.append([])
        caps[order[path]].append(text)
    if missing:
        shown = "; ".join(f"{w}: {p}" for w, p in missing[:3])
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise DataError(f"{source}: {len(missing)} caption line(s) name images that do not exist "
                        f"{what_missing}: {shown}{more}")
    if not caps:
        raise DataError(f"{source}: no captions found")
    images = list(order)
    return CaptionSet(images, caps, [""] * len(images), lang, os.fspath(source))


def _image_dir(given, candidates, source):
    if given is not None:
        if not os.path.isdir(given):
            raise DataError(f"{given}: no such image folder")
        return os.path.abspath(given)
    for c in candidates:
        if os.path.isdir(c):
            return os.path.abspath(c)
    raise DataError(f"{source}: cannot find the image folder (looked for "
                    f"{', '.join(candidates)}); pass it with --images")


# ---- COCO ---------------------------------------------------------------------------------

def read_coco(path, images=None):
    path = os.fspath(path)
    try:
        data = json.loads(read_text(path, what="COCO captions JSON"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DataError(f"{path}: expected a COCO captions file, an object with lists 'images' "
                        f"and 'annotations'")
    split = os.path.basename(path)
    split = split[len("captions_"):-len(".json")] if split.startswith("captions_") else ""
    root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    folder = _image_dir(images, [os.path.join(root, split)] if split else [], path)
    names = {}
    for k, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise DataError(f"{path}: images[{k}]: expected an object with 'id' and 'file_name', got {im!r:.80}")
        names[im["id"]] = im["file_name"]
    pairs = []
    for k, a in enumerate(data["annotations"]):
        where = f"{path}: annotations[{k}]"
        if not isinstance(a, dict) or "image_id" not in a or not isinstance(a.get("caption"), str):
            raise DataError(f"{where}: expected an object with 'image_id' and 'caption', got {a!r:.80}")
        if a["image_id"] not in names:
            raise DataError(f"{where}: image_id {a['image_id']!r} is not among the file's images")
        pairs.append((os.path.join(folder, names[a["image_id"]]), a["caption"], where))
    return _collect(pairs, path, "en", f"in {folder}")


# ---- Flickr8k / Flickr30k -----------------------------------------------------------------

def read_flickr(path, images=None):
    path = os.fspath(path)
    text = read_text(path, what="Flickr caption file")
    here = os.path.dirname(os.path.abspath(path))
    folder = _image_dir(images, [os.path.join(here, d) for d in
                                 ("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images",
                                  "flickr30k_images", "flickr30k-images")], path)
    lines = text.splitlines()
    if lines and lines[0].strip().lower().replace(" ", "") in ("image,caption", '"image","caption"'):
        return read_csv(path, images=folder)                  # the Kaggle captions.txt
    pairs = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, sep, caption = line.partition("\t")
        if not sep:
            raise DataError(f"{path}, line {n}: expected 'IMAGE#k<TAB>caption', got {line[:60]!r}")
        name = name.strip().split("#")[0]
        pairs.append((os.path.join(folder, name), caption, f"{path}, line {n}"))
    return _collect(pairs, path, "en", f"in {folder}")


# ---- CSV ----------------------------------------------------------------------------------

def read_csv(path, images=None, image_col="image", caption_col="caption", lang="en"):
    from .tables import read_csv_columns
    path = os.fspath(path)
    cols, lines = read_csv_columns(path, [image_col, caption_col])
    folder = os.path.abspath(images) if images is not None else os.path.dirname(os.path.abspath(path))
    if images is not None and not os.path.isdir(images):
        raise DataError(f"{images}: no such image folder")
    pairs = [(os.path.join(folder, name.strip()), cap, f"{path}, line {n}")
             for name, cap, n in zip(cols[image_col], cols[caption_col], lines)]
    return _collect(pairs, path, lang, f"in {folder}")


# ---- Tux Paint stamps -----------------------------------------------------------------------

def tuxpaint_caption(txt_path, lang="en"):
    """The caption of one stamp in a language ('en' or 'zh'), or None when the file
    has none in that language."""
    text = read_text(txt_path, what="Tux Paint stamp description")
    lines = [ln.strip() for ln in text.splitlines()]
    if lang == "en":
        return lines[0] if lines and lines[0] and "=" not in lines[0].split(" ")[0] else None
    prefix = f"{LANGS[lang]}.utf8="
    for ln in lines[1:]:
        if ln.startswith(prefix):
            return ln[len(prefix):].strip() or None
    return None


def read_tuxpaint(stamps=None, lang="en"):
    """The stamps with a PNG and a caption in `lang`; stamps=None: from the data cache.
    groups hold the top-level category (animals, symbols, ...)."""
    if lang not in LANGS:
        raise DataError(f"Tux Paint captions: lang must be one of {sorted(LANGS)}; got {lang!r}")
    if stamps is None:
        from .. import datasets
        stamps = datasets.fetch("tuxpaint-stamps-default") / datasets.SOURCES["tuxpaint-stamps-default"].files["stamps"]
    stamps = os.path.abspath(stamps)
    if not os.path.isdir(stamps):
        raise DataError(f"{stamps}: no such folder (expected Tux Paint's stamps folder)")
    images, caps, groups = [], [], []
    for dirpath, dirnames, filenames in os.walk(stamps):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(".png"):
                continue
            png = os.path.join(dirpath, name)
            txt = png[:-4] + ".txt"
            if not os.path.isfile(txt):
                continue                            # _mirror.png / _flip.png variants have no text
            caption = tuxpaint_caption(txt, lang)
            if caption is None:
                continue
            images.append(png)
            caps.append([caption])
            groups.append(os.path.relpath(dirpath, stamps).split(os.sep)[0])
    if not images:
        raise DataError(f"{stamps}: no stamp PNG with a caption in {lang!r} beside it")
    return CaptionSet(images, caps, groups, lang, stamps)


# ---- emoji ----------------------------------------------------------------------------------

def read_emoji(lang="en", font=None, folder=None, progress=True):
    """Every single-code-point emoji the font draws, as PNG files rendered once,
    captioned with its CLDR name (underscores to spaces). font=None: from the data
    cache; folder=None: the cache's derived/ folder."""
    from .emoji_images import render_emoji
    if lang not in LANGS:
        raise DataError(f"emoji captions: lang must be one of {sorted(LANGS)}; got {lang!r}")
    table = render_emoji(font=font, folder=folder, progress=progress)
    images, caps, groups = [], [], []
    for png, names, group in table:
        images.append(png)
        caps.append([names[lang]])
        groups.append(group)
    return CaptionSet(images, caps, groups, lang, os.path.dirname(images[0]) if images else "")


def read_any(kind, path=None, images=None, lang="en", image_col="image", caption_col="caption"):
    """One entry point for the command line: kind in READERS."""
    if kind == "tuxpaint":
        return read_tuxpaint(path, lang)
    if kind == "emoji":
        return read_emoji(lang, font=path)
    if path is None:
        raise DataError(f"--data {kind} needs a file: --data {kind}:PATH")
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if kind == "coco":
        return read_coco(path, images)
    if kind == "flickr":
        return read_flickr(path, images)
    if kind == "csv":
        return read_csv(path, images, image_col, caption_col, lang)
    raise DataError(f"unknown caption data {kind!r}; expected one of {READERS}")


READERS = ("tuxpaint", "emoji", "coco", "flickr", "csv")
