"""Time series for forecasting: CSV columns (with an optional date column), or
a real series shipped with statsmodels (no download).

Every loader returns (values (N, F) float64, column names, dates): dates is a
datetime64[s] array (N,), or None when the series has none.
"""
import numpy as np

from .dates import parse_dates
from .errors import DataError
from .tables import parse_floats, read_csv_columns

# name -> what it is; natural season length; a multi-step horizon worth reporting
DATASETS = {"sunspots": "yearly sunspot activity 1700-2008 (season 11: the solar cycle)",
            "co2": "weekly Mauna Loa CO2 1958-2001, gaps interpolated (season 52)",
            "elnino": "monthly sea surface temperature of the El Nino region 1950-2010 (season 12)",
            "elec_equip": "monthly EU manufacturing index of electrical equipment 1995-2016 (season 12)",
            "unemp": "quarterly US unemployment rate 1959-2009, from statsmodels' macrodata (season 4)"}
SEASONS = {"sunspots": 11, "co2": 52, "elnino": 12, "elec_equip": 12, "unemp": 4}


def _statsmodels_datasets(name):
    try:
        from statsmodels import datasets
    except ImportError:
        raise DataError(f"--dataset {name} needs statsmodels: pip install statsmodels") from None
    return datasets


def load_dataset(name):
    """-> (values (N, 1), [column name], dates (N,))."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    datasets = _statsmodels_datasets(name)
    if name == "sunspots":
        df = datasets.sunspots.load_pandas().data
        years = df["YEAR"].to_numpy().astype(np.int64)
        return df[["SUNACTIVITY"]].to_numpy(np.float64), ["SUNACTIVITY"], _years(years)
    if name == "co2":
        df = datasets.co2.load_pandas().data.interpolate(limit_direction="both")
        return df[["co2"]].to_numpy(np.float64), ["co2"], df.index.to_numpy().astype("datetime64[s]")
    if name == "elnino":
        df = datasets.elnino.load_pandas().data                                  # YEAR, JAN .. DEC
        values = df.iloc[:, 1:13].to_numpy(np.float64).reshape(-1, 1)            # row-major: year by year
        start = np.datetime64(f"{int(df['YEAR'].iloc[0])}-01", "M")
        return values, ["sst"], (start + np.arange(len(values))).astype("datetime64[s]")
    if name == "elec_equip":
        from statsmodels.datasets import elec_equip
        df = elec_equip.load_pandas().data
        return df.iloc[:, :1].to_numpy(np.float64), ["elec_equip"], df.index.to_numpy().astype("datetime64[s]")
    df = datasets.macrodata.load_pandas().data                                    # unemp
    months = (df["year"].to_numpy().astype(np.int64) - 1970) * 12 + (df["quarter"].to_numpy().astype(np.int64) - 1) * 3
    return df[["unemp"]].to_numpy(np.float64), ["unemp"], months.astype("datetime64[M]").astype("datetime64[s]")


def _years(years):
    return (years - 1970).astype("datetime64[Y]").astype("datetime64[s]")


def load_csv_series(path, columns, encoding_errors="strict", date_column=None, date_format=None):
    """-> (values (N, F), column names, dates (N,) or None)."""
    if not columns:
        raise DataError(f"{path}: say which columns to use with --columns a,b,...")
    if date_column is not None and date_column in columns:
        raise DataError(f"{path}: the date column {date_column!r} cannot also be an input column")
    wanted = list(columns) + ([date_column] if date_column is not None else [])
    cols, lines = read_csv_columns(path, wanted, encoding_errors)
    values = np.array([parse_floats(path, c, cols[c], lines) for c in columns], np.float64).T   # (N, F)
    dates = None if date_column is None else parse_dates(path, date_column, cols[date_column], lines,
                                                         date_format)
    return values, list(columns), dates
