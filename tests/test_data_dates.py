"""Dates from a CSV column, the dates after the end of a series, and the
calendar inputs built on them (small generated files)."""
import numpy as np
import pytest

from lstmkit.data import dates as D
from lstmkit.data.calendar import Calendar
from lstmkit.data.errors import DataError
from lstmkit.data.series import load_csv_series


def write(path, rows, header="date,load"):
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def test_iso_dates_and_values(tmp_path):
    csv = write(tmp_path / "m.csv", [f"2020-{m:02d}-01,{m * 1.5}" for m in range(1, 13)])
    values, names, dates = load_csv_series(csv, ["load"], date_column="date")
    assert names == ["load"] and values.shape == (12, 1) and values[2, 0] == 4.5
    assert dates.dtype == np.dtype("datetime64[s]") and str(dates[0]) == "2020-01-01T00:00:00"
    assert D.month_step(dates) == 1


def test_date_format(tmp_path):
    csv = write(tmp_path / "d.csv", ["31/01/2021,1", "01/02/2021,2", "02/02/2021,3"])
    _, _, dates = load_csv_series(csv, ["load"], date_column="date", date_format="%d/%m/%Y")
    assert [str(d)[:10] for d in dates] == ["2021-01-31", "2021-02-01", "2021-02-02"]


def test_errors_name_file_line_and_value(tmp_path):
    csv = write(tmp_path / "bad.csv", ["2020-01-01,1", "2020-02-01,2", "next month,3"])
    with pytest.raises(DataError, match=r"bad\.csv, line 4: column 'date': cannot read 'next month' as a date "
                                        r"\(expected ISO 8601"):
        load_csv_series(csv, ["load"], date_column="date")
    with pytest.raises(DataError, match=r"line 2: .*\(expected the format '%d/%m/%Y'\)"):
        load_csv_series(write(tmp_path / "iso.csv", ["2020-01-01,1"]), ["load"], date_column="date",
                        date_format="%d/%m/%Y")
    with pytest.raises(DataError, match=r"line 1: no column 'when'; the header has \['date', 'load'\]"):
        load_csv_series(csv, ["load"], date_column="when")
    back = write(tmp_path / "back.csv", ["2020-03-01,1", "2020-02-01,2"])
    with pytest.raises(DataError, match=r"line 3: column 'date': dates must increase; 2020-02-01 comes after "
                                        r"2020-03-01 \(line 2\)"):
        load_csv_series(back, ["load"], date_column="date")
    with pytest.raises(DataError, match="cannot also be an input column"):
        load_csv_series(csv, ["load", "date"], date_column="date")


def test_extend_keeps_months_whole_and_weeks_even():
    monthly = np.array(["2021-11-30", "2021-12-30", "2022-01-30"], "datetime64[s]")
    assert D.month_step(monthly) == 1
    assert [str(d)[:10] for d in D.extend(monthly, 2)[3:]] == ["2022-02-28", "2022-03-30"]
    ends = np.array(["2021-11-30", "2021-12-31", "2022-01-31"], "datetime64[s]")
    assert [str(d)[:10] for d in D.extend(ends, 2)[3:]] == ["2022-02-28", "2022-03-31"]
    starts = np.array(["2021-11-01", "2021-12-01", "2022-01-01"], "datetime64[s]")
    assert [str(d)[:10] for d in D.extend(starts, 3)[3:]] == ["2022-02-01", "2022-03-01", "2022-04-01"]
    quarterly = np.array(["2020-01-01", "2020-04-01", "2020-07-01"], "datetime64[s]")
    assert str(D.extend(quarterly, 1)[-1])[:10] == "2020-10-01"
    weekly = np.arange(np.datetime64("2020-01-04"), np.datetime64("2020-03-01"), 7).astype("datetime64[s]")
    ext = D.extend(weekly, 2)
    assert np.all(np.diff(ext) == np.timedelta64(7 * 86400, "s")) and len(ext) == len(weekly) + 2


def test_year_fraction():
    d = np.array(["2021-01-01", "2021-07-02T12:00", "2020-12-31"], "datetime64[s]")
    f = D.year_fraction(d)
    assert f[0] == 0 and abs(f[1] - 0.5) < 1e-9 and abs(f[2] - 365 / 366) < 1e-12


def test_calendar_positions_and_features():
    months = (np.datetime64("2000-01", "M") + np.arange(36)).astype("datetime64[s]")
    cal = Calendar(36, 12, months)
    assert cal.annual and cal.names == ["season_sin", "season_cos"]       # month pair would repeat the season
    pos = cal.position(np.arange(40))                                      # past the end: extended dates
    assert np.allclose(pos[[0, 12, 24, 36]], 0) and np.all(np.floor(pos[:12] + 1e-9) == np.arange(12))
    f = cal.features(np.array([0, 3, 39]))
    assert f.shape == (3, 2) and np.allclose(f[0], [0, 1]) and np.allclose(f[2], f[1], atol=0.02)
    days = np.arange(np.datetime64("2021-01-01"), np.datetime64("2021-03-01")).astype("datetime64[s]")
    cal = Calendar(len(days), 7, days)                                     # a weekly season in daily data
    assert not cal.annual and cal.names == ["season_sin", "season_cos", "month_sin", "month_cos"]
    assert np.allclose(cal.position(np.arange(8)), [0, 1, 2, 3, 4, 5, 6, 0])
    assert Calendar(50, 11, None).names == ["season_sin", "season_cos"]      # no dates: step index
    assert Calendar(50, None, None).names == [] and Calendar(50, None, None).features(np.arange(3)).shape == (3, 0)
    years = np.array([f"{y}-01-01" for y in range(1900, 1950)], "datetime64[s]")
    assert Calendar(50, 11, years).names == ["season_sin", "season_cos"]    # yearly data: no month pair
    assert Calendar(50, 11, years, kinds=()).names == []
    with pytest.raises(ValueError, match="unknown calendar features"):
        Calendar(50, 11, None, kinds=("weekday",))
