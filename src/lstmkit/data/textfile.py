"""Read a text file as UTF-8, with errors that say where the bad bytes are."""
import os

from .errors import DataError


def read_bytes(path, what="file"):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such {what}")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, expected a {what}")
    with open(path, "rb") as f:
        return f.read()


def decode_utf8(data, path, errors="strict"):
    """Decode bytes; on strict failure name the line and column of the first bad byte."""
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(f"{path}, line {line}, column {col}: not UTF-8 (byte 0x{data[e.start]:02x}); "
                        f"expected UTF-8 text (use --encoding-errors replace to substitute bad bytes)"
                        ) from None


def read_text(path, errors="strict", what="text file", allow_empty=False):
    data = read_bytes(path, what)
    text = decode_utf8(data, path, errors)
    if text.startswith("\ufeff"):
        text = text[1:]                       # a byte-order mark is not part of the text
    if not allow_empty and not text.strip():
        raise DataError(f"{path}: file is empty; expected {what} content")
    return text
