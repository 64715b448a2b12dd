"""Time series for forecasting: CSV columns, or a real series shipped with
statsmodels (no download)."""
import numpy as np

from .errors import DataError
from .tables import parse_floats, read_csv_columns

# name -> (loader, default target column, a natural season length)
DATASETS = {"sunspots": "yearly sunspot activity 1700-2008 (season 11: the solar cycle)",
            "co2": "weekly Mauna Loa CO2 1958-2001, gaps interpolated (season 52)"}
SEASONS = {"sunspots": 11, "co2": 52}


def load_dataset(name):
    """-> (values (N, 1), column names, time labels (N,))."""
    try:
        from statsmodels import datasets
    except ImportError:
        raise DataError(f"--dataset {name} needs statsmodels: pip install statsmodels") from None
    if name == "sunspots":
        df = datasets.sunspots.load_pandas().data
        return df[["SUNACTIVITY"]].to_numpy(np.float64), ["SUNACTIVITY"], df["YEAR"].to_numpy()
    if name == "co2":
        df = datasets.co2.load_pandas().data.interpolate(limit_direction="both")
        return df[["co2"]].to_numpy(np.float64), ["co2"], np.asarray(df.index.year + (df.index.dayofyear - 1) / 365.25)
    raise DataError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")


def load_csv_series(path, columns, encoding_errors="strict"):
    """-> (values (N, F), column names, time labels (N,) = row numbers)."""
    if not columns:
        raise DataError(f"{path}: say which columns to use with --columns a,b,...")
    cols, lines = read_csv_columns(path, columns, encoding_errors)
    values = np.array([parse_floats(path, c, cols[c], lines) for c in columns], np.float64).T   # (N, F)
    return values, list(columns), np.arange(len(values))
