"""Files: atomic writes and safe reading of safetensors headers.

Atomic: write to a temporary file in the target's directory, fsync it, then
os.replace it over the target -- a crash or an error mid-write leaves the old
file intact and no half-written one. Safe: safetensors holds only a JSON
header and raw arrays, so loading never runs code (no pickle).
"""
import json
import math
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


EXPECTED = "a lstmkit model file (safetensors: an 8-byte header length, a JSON header, then the weights)"
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _refuse(path, found):
    raise ValueError(f"{path!r}: expected {EXPECTED}; found {found}")


def read_safetensors_header(path):
    """The JSON header of a safetensors file, checked against the file's size, with errors that
    say in words what was expected and what was found (truncated, damaged, foreign)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, not a model file")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(9)
        if size == 0:
            _refuse(path, "an empty file")
        n = struct.unpack("<Q", head[:8])[0] if size >= 8 else 0
        if size < 10 or head[8:9] != b"{" or n > MAX_HEADER:     # no JSON header where it belongs
            # under 10 bytes nothing can be told from the bytes: they are (part of) the header's
            # length, whose first byte may well look like a pickle's or a protobuf's magic
            kind = _describe(head) if size >= 10 else f"only {size} bytes, too short for one (truncated?)"
            if kind.startswith("a file starting with"):
                kind = f"a file of {size:,} bytes in another format (it starts with {head[:8]!r})"
            _refuse(path, kind)
        if n > size - 8:
            _refuse(path, f"a truncated file: the header alone should take {n:,} bytes but only "
                          f"{size - 8:,} follow the length (a copy cut short?)")
        f.seek(8)
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        _refuse(path, f"a damaged header: its {n:,} bytes are not valid JSON ({type(e).__name__}: "
                      f"{str(e)[:80]})")
    if not isinstance(header, dict):
        _refuse(path, f"a header that is a JSON {type(header).__name__}, not an object")
    data = size - 8 - n                           # bytes of weights the file holds
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                _refuse(path, "a damaged header: __metadata__ is not a map of strings")
            continue
        try:
            dtype, shape, (start, stop) = entry["dtype"], entry["shape"], entry["data_offsets"]
            ok = (dtype in DTYPE_BYTES and isinstance(shape, list)
                  and all(isinstance(d, int) and d >= 0 for d in shape) and isinstance(start, int)
                  and isinstance(stop, int) and 0 <= start <= stop)
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            _refuse(path, f"a damaged header: the entry of tensor {key!r} is not dtype/shape/data_offsets")
        if (stop - start) != math.prod(shape) * DTYPE_BYTES[dtype]:
            _refuse(path, f"a damaged header: tensor {key!r} of shape {tuple(shape)} and dtype {dtype} "
                          f"should take {math.prod(shape) * DTYPE_BYTES[dtype]:,} bytes, its offsets say "
                          f"{stop - start:,}")
        end = max(end, stop)
    if end > data:
        _refuse(path, f"a truncated file: the weights need {end:,} bytes after the header, the file holds "
                      f"{data:,} (a copy cut short?)")
    if end < data:
        _refuse(path, f"{data - end:,} bytes after the last weight: something was appended to the file")
    return header


def read_safetensors_metadata(path):
    """The __metadata__ dict of a safetensors file, with clear errors for anything else."""
    return read_safetensors_header(path).get("__metadata__") or {}
