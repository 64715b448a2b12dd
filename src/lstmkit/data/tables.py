"""Read a CSV file into named columns of strings, with errors naming file and line."""
import csv
import io

from .errors import DataError
from .textfile import read_text


def read_csv_columns(path, columns, encoding_errors="strict"):
    """Return ({column: [str, ...]}, line_numbers) for the requested columns.

    line_numbers[k] is the file line where row k starts, for later messages.
    """
    text = read_text(path, errors=encoding_errors, what="CSV file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as e:
        raise DataError(f"{path}: cannot read a CSV header ({e})") from None
    header = [h.strip() for h in header]
    for name in columns:
        if name not in header:
            raise DataError(f"{path}, line 1: no column {name!r}; the header has {header}")
    where = [header.index(name) for name in columns]
    out = {name: [] for name in columns}
    lines = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise DataError(f"{path}, line {reader.line_num}: malformed CSV ({e})") from None
        if not row or all(not c.strip() for c in row):
            continue                                  # blank lines carry nothing
        if len(row) != len(header):
            raise DataError(f"{path}, line {start}: expected {len(header)} fields as in the header, "
                            f"got {len(row)}")
        for name, i in zip(columns, where):
            out[name].append(row[i])
        lines.append(start)
    if not lines:
        raise DataError(f"{path}: no data rows after the header")
    return out, lines


def parse_floats(path, name, values, lines):
    """Strings -> floats, naming the line of the first value that is not a number."""
    out = []
    for v, line in zip(values, lines):
        try:
            x = float(v)
        except ValueError:
            raise DataError(f"{path}, line {line}: column {name!r}: expected a number, got {v!r}") from None
        if x != x:
            raise DataError(f"{path}, line {line}: column {name!r}: missing value (NaN); "
                            f"fill or drop it first") from None
        out.append(x)
    return out
