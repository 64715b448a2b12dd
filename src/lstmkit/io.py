"""Files: atomic writes and safe reading of safetensors headers.

Atomic: write to a temporary file in the target's directory, fsync it, then
os.replace it over the target -- a crash or an error mid-write leaves the old
file intact and no half-written one. Safe: safetensors holds only a JSON
header and raw arrays, so loading never runs code (no pickle).
"""
import json
import os
import struct
import tempfile
from contextlib import contextmanager

MAX_HEADER = 100 * 1024 * 1024          # safetensors' own limit on the JSON header


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory):
    try:                                         # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


@contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; when the block ends without an
    error, the temporary file is synced to disk and renamed to ``path``.
    The temporary name keeps the extension: some writers look at it."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())                 # the bytes are on disk before the rename
        os.chmod(tmp, 0o666 & ~_umask())         # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _fsync_dir(directory)


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _describe(head):
    """A guess at what a file is from its first bytes, for error messages."""
    kinds = [(b"PK\x03\x04", "a zip archive (a Keras .keras file or a PyTorch .pt checkpoint?)"),
             (b"\x89HDF", "an HDF5 file (a Keras .h5 file?)"), (b"\x80", "a Python pickle"),
             (b"\x08", "a protobuf (an ONNX model?)"), (b"{", "a JSON text file")]
    for magic, kind in kinds:
        if head.startswith(magic):
            return kind
    return f"a file starting with {head[:16]!r}"


def read_safetensors_metadata(path):
    """The __metadata__ dict of a safetensors file, with clear errors for anything else."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, not a model file")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        if n is None or n > min(size - 8, MAX_HEADER) or n < 2:
            f.seek(0)
            raise ValueError(f"{path!r} is not a lstmkit model file (safetensors): found {_describe(f.read(16))}")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path!r} is not a lstmkit model file (safetensors): found {_describe(head + raw[:8])}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path!r} is not a lstmkit model file: its header is not a JSON object")
    return header.get("__metadata__") or {}
