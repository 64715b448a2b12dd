"""Labelled texts for classification from three layouts:

- a CSV file with a text column and a label column;
- a folder with one sub-folder per class, one text file per example (the
  aclImdb layout; its unlabelled ``unsup`` folder is skipped);
- a Keras ``imdb.npz`` (x_train, y_train, x_test, y_test of word-id lists).
"""
import os
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError
from .tables import read_csv_columns
from .textfile import read_text


@dataclass
class LabelledTexts:
    texts: list = None           # list of str, or None when the data are ids already
    ids: list = None             # list of id lists (imdb.npz), else None
    labels: list = field(default_factory=list)   # class names (str), one per example
    source: str = ""

    def __len__(self):
        return len(self.labels)


def load_csv(path, text_col="text", label_col="label", encoding_errors="strict"):
    cols, _ = read_csv_columns(path, [text_col, label_col], encoding_errors)
    labels = [v.strip() for v in cols[label_col]]
    return LabelledTexts(texts=cols[text_col], labels=labels, source=os.fspath(path))


def load_folder(path, encoding_errors="strict"):
    subdirs = sorted(d for d in os.listdir(path)
                     if os.path.isdir(os.path.join(path, d)) and d != "unsup" and not d.startswith("."))
    if not subdirs:
        raise DataError(f"{path}: no class sub-folders; expected one sub-folder per class "
                        f"holding one text file per example")
    texts, labels = [], []
    for label in subdirs:
        folder = os.path.join(path, label)
        for name in sorted(os.listdir(folder)):
            file = os.path.join(folder, name)
            if os.path.isfile(file) and not name.startswith("."):
                texts.append(read_text(file, errors=encoding_errors, allow_empty=True))
                labels.append(label)
    if not texts:
        raise DataError(f"{path}: the class sub-folders {subdirs} hold no files")
    return LabelledTexts(texts=texts, labels=labels, source=os.fspath(path))


def load_npz(path, split="train"):
    """Keras imdb.npz: object arrays of id lists, which np.load cannot open
    without pickle; see npz_ids for how they are read safely."""
    from .npz_ids import read_npz_arrays
    arrays = read_npz_arrays(path)
    xk, yk = f"x_{split}", f"y_{split}"
    for k in (xk, yk):
        if k not in arrays:
            raise DataError(f"{path}: no array {k!r}; it holds {sorted(arrays)} "
                            f"(expected x_train, y_train, x_test, y_test)")
    x, y = arrays[xk], arrays[yk]
    if len(x) != len(y):
        raise DataError(f"{path}: {xk} has {len(x)} rows but {yk} has {len(y)}")
    ids = [[int(i) for i in row] for row in x]
    labels = [str(int(v)) for v in np.asarray(y).ravel()]
    return LabelledTexts(ids=ids, labels=labels, source=os.fspath(path))


def load_labelled(path, text_col="text", label_col="label", split="train", encoding_errors="strict"):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        return load_folder(path, encoding_errors)
    if path.endswith(".npz"):
        return load_npz(path, split)
    return load_csv(path, text_col, label_col, encoding_errors)


def select_classes(data, classes):
    """Keep only the examples of the listed classes (e.g. positive vs negative)."""
    if not classes:
        return data
    present = set(data.labels)
    missing = [c for c in classes if c not in present]
    if missing:
        raise DataError(f"{data.source}: no examples of class(es) {missing}; "
                        f"the labels present are {sorted(present)}")
    keep = [i for i, lab in enumerate(data.labels) if lab in set(classes)]
    return LabelledTexts(texts=None if data.texts is None else [data.texts[i] for i in keep],
                         ids=None if data.ids is None else [data.ids[i] for i in keep],
                         labels=[data.labels[i] for i in keep], source=data.source)


def check_classes(data, label_col="label"):
    classes = sorted(set(data.labels))
    if len(classes) < 2:
        raise DataError(f"{data.source}: label column {label_col!r} holds one class "
                        f"({classes[0]!r} for all {len(data)} rows); expected at least 2 classes")
    return classes
