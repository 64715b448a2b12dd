"""Dates of a series: read from a CSV column, the step between them, the dates
after the end (for forecasts), and the position of each date in its year.

Dates are NumPy datetime64[s] arrays (no pandas in the library's path).
"""
from datetime import datetime

import numpy as np

from .errors import DataError

ISO_HINT = "ISO 8601 like 2024-01-31, 2024-01 or 2024-01-31T12:00, or give --date-format"


def parse_dates(path, name, values, lines, fmt=None):
    """Strings -> datetime64[s] (N,), naming the line of the first bad or
    out-of-order value. fmt: a strptime format ("%d/%m/%Y"); None reads ISO 8601."""
    out = []
    for v, line in zip(values, lines):
        text = v.strip()
        try:
            d = np.datetime64(datetime.strptime(text, fmt), "s") if fmt else np.datetime64(text, "s")
        except ValueError:
            expected = f"the format {fmt!r}" if fmt else ISO_HINT
            raise DataError(f"{path}, line {line}: column {name!r}: cannot read {v!r} as a date "
                            f"(expected {expected})") from None
        if np.isnat(d):
            raise DataError(f"{path}, line {line}: column {name!r}: missing date ({v!r})")
        if out and d <= out[-1][0]:
            raise DataError(f"{path}, line {line}: column {name!r}: dates must increase; {text} comes "
                            f"after {out[-1][1]} (line {out[-1][2]})")
        out.append((d, text, line))
    return np.array([d for d, _, _ in out], "datetime64[s]")


def _month_parts(dates):
    months = dates.astype("datetime64[M]")
    return months, dates - months.astype(dates.dtype)                         # month, time into the month


def _is_month_end(dates):
    return np.all((dates + np.timedelta64(1, "D")).astype("datetime64[M]") != dates.astype("datetime64[M]"))


def month_step(dates):
    """The step in whole months if the dates sit at a constant number of months
    apart and at the same time of month (or all at month ends): monthly,
    quarterly, yearly data. Else None."""
    if len(dates) < 2:
        return None
    months, offset = _month_parts(dates)
    if np.any(offset != offset[0]) and not _is_month_end(dates):
        return None
    gaps = np.diff(months.astype(np.int64))
    return int(gaps[0]) if np.all(gaps == gaps[0]) and gaps[0] > 0 else None


def typical_step(dates):
    """Median spacing as a timedelta64[s]."""
    if len(dates) < 2:
        raise DataError("a series with dates needs at least two rows to know its step")
    return np.median(np.diff(dates).astype(np.int64)).astype("timedelta64[s]")


def extend(dates, k):
    """The dates followed by k more at the series' step: whole months for
    monthly-type series (month ends stay month ends; a day past the end of a
    short month becomes its last day), else the median spacing."""
    if k <= 0:
        return dates
    m = month_step(dates)
    if m is None:
        new = dates[-1] + typical_step(dates) * np.arange(1, k + 1)
    else:
        months, offset = _month_parts(dates)
        nxt = months[-1] + m * np.arange(1, k + 1)                             # (k,) months
        start = nxt.astype(dates.dtype)
        length = (nxt + 1).astype(dates.dtype) - start                         # each month's length
        if _is_month_end(dates):
            new = start + length - np.timedelta64(1, "D")
        else:
            last_day = length - np.timedelta64(1, "D")
            new = start + np.minimum(offset[-1], last_day + (offset[-1] % np.timedelta64(1, "D")))
    return np.concatenate([dates, new.astype(dates.dtype)])


def year_fraction(dates):
    """Position of each date in its calendar year, in [0, 1)."""
    years = dates.astype("datetime64[Y]")
    start = years.astype("datetime64[s]")
    length = (years + 1).astype("datetime64[s]") - start
    return (dates - start).astype(np.float64) / length.astype(np.float64)


def steps_per_year(dates):
    return 365.2425 * 86400 / typical_step(dates).astype(np.float64)


def month_fraction(dates):
    """Position in the year counted in months, in [0, 1): (month - 1 + fraction of
    the month gone) / 12. For monthly or quarterly data every month gets the same
    share of the year (by days, March 1 would sit at 59/365 of a year, in the
    second twelfth, with February)."""
    months = dates.astype("datetime64[M]")
    start = months.astype("datetime64[s]")
    length = (months + 1).astype("datetime64[s]") - start
    into = (dates - start).astype(np.float64) / length.astype(np.float64)
    return (months.astype(np.int64) % 12 + into) / 12
