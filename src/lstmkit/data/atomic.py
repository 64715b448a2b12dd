"""Atomic writes: a file a user keeps is written to a temporary name in the
same folder and then renamed, so an interrupted run never leaves half a file."""
import json
import os
import tempfile
from contextlib import contextmanager


@contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it to ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]        # keep the extension: some writers look at it
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
