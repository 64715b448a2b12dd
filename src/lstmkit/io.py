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

MAX_HEADER = 100 * 1024 * 1024          # safetensors' own limit on the JSON header


def atomic_write_bytes(path, data):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())                 # the bytes are on disk before the rename
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:                                         # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


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
