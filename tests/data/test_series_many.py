import datetime
import os

import numpy as np
import pytest

from lstmkit.data.series import Series, calendar_features, future_times, load_series_long, load_tsf


def _days(*dates):
    return np.array(dates, dtype="datetime64[D]")


# --- future_times ---------------------------------------------------------------------------

@pytest.mark.parametrize("times, step, expected", [
    (np.arange(np.datetime64("1949-01"), np.datetime64("1950-01")).astype("datetime64[D]"), "1M",
     _days("1950-01-01", "1950-02-01", "1950-03-01")),
    (_days("2000-01-31", "2000-02-29", "2000-03-31"), "1M", _days("2000-04-30", "2000-05-31", "2000-06-30")),
    (_days("1999-07-31", "1999-10-31"), "3M", _days("2000-01-31", "2000-04-30", "2000-07-31")),
    (_days("2000-01-15", "2000-04-15"), "3M", _days("2000-07-15", "2000-10-15", "2001-01-15")),
    (_days("1700-01-01", "1701-01-01", "1702-01-01"), "1Y", _days("1703-01-01", "1704-01-01", "1705-01-01")),
    (_days("1958-03-29", "1958-04-05"), "7D", _days("1958-04-12", "1958-04-19", "1958-04-26")),
    (_days("2020-02-27", "2020-02-28"), "1D", _days("2020-02-29", "2020-03-01", "2020-03-02")),
    (np.array([3, 5, 7]), "2", np.array([9, 11, 13])),
])
def test_future_times_continue_the_grid_and_round_trip(times, step, expected):
    future = future_times(times, step, 3)
    assert future.dtype == expected.dtype and future.tolist() == expected.tolist()
    series = Series(np.zeros(len(times)), times, ("y",))
    assert series.step == step
    extended = Series(np.zeros(len(times) + 3), np.concatenate([times, future]), ("y",))
    assert extended.step == step


def test_future_times_from_one_time_uses_the_given_step():
    assert future_times(_days("2000-01-31"), "1M", 3).tolist() == _days("2000-02-29", "2000-03-31", "2000-04-30").tolist()
    assert future_times(_days("2000-01-31"), "2M", 2).tolist() == _days("2000-03-31", "2000-05-31").tolist()
    assert future_times(np.array([5]), "3", 2).tolist() == [8, 11]
    years = np.array(["2000"], dtype="datetime64[Y]")  # coarser than days: the result is in days
    assert future_times(years, "1M", 1).tolist() == _days("2000-02-01").tolist()


@pytest.mark.parametrize("times, step, horizon, match", [
    (np.array([1, 2]), "1", 0, r"horizon must be an int >= 1, got 0"),
    (np.array([1, 2]), "1", True, r"horizon must be an int >= 1, got True"),
    (np.array([1, 2]), "1", 1.0, r"horizon must be an int >= 1, got 1.0"),
    (np.array([1, 3]), "1", 1, r"step '1' does not match the times, which step by '2'"),
    (_days("2000-01-01", "2000-02-01"), "31D", 1, r"step '31D' does not match the times, which step by '1M'"),
    (np.array([1, 2]), "1M", 1, r"step '1M' does not suit int64 times; valid: \"k\" \(k integer steps\)"),
    (_days("2000-01-01"), "1", 1, r"step '1' does not suit datetime64\[D\] times; valid: \"kD\" \(k days\), \"kM\""),
    (_days("2000-01-01"), "0D", 1, r"step '0D' does not suit .* k >= 1"),
    (np.array([], dtype=np.int64), "1", 1, r"times must be a non-empty 1-D datetime64 or integer array, got shape \(0,\)"),
    (_days("2001-01-30"), "1M", 2, r"day 30 of the month does not exist in 2001-02; a monthly grid keeps one day"),
])
def test_future_times_errors(times, step, horizon, match):
    with pytest.raises(ValueError, match=match):
        future_times(times, step, horizon)


# --- calendar_features ----------------------------------------------------------------------

def test_calendar_defaults_follow_the_step():
    monthly = np.arange(np.datetime64("1949-01"), np.datetime64("1950-01")).astype("datetime64[D]")
    features, names = calendar_features(monthly, "1M")
    assert names == ("month_sin", "month_cos") and features.shape == (12, 2) and features.dtype == np.float64
    angle = 2 * np.pi * np.arange(12) / 12
    np.testing.assert_allclose(features, np.stack([np.sin(angle), np.cos(angle)], axis=1), atol=1e-15)
    assert calendar_features(_days("2000-01-01", "2000-04-01"), "3M")[1] == ("month_sin", "month_cos")
    assert calendar_features(_days("1958-03-29", "1958-04-05"), "7D")[1] == ("week_sin", "week_cos")
    assert calendar_features(_days("2024-01-01", "2024-01-02"), "1D")[1] == (
        "dayofweek_sin", "dayofweek_cos", "dayofyear_sin", "dayofyear_cos")
    for times, step in ((_days("1700-01-01", "1701-01-01", "1702-01-01"), "1Y"), (np.arange(3), "1")):
        features, names = calendar_features(times, step)
        assert names == () and features.shape == (3, 0) and features.dtype == np.float64


def test_calendar_values_are_exact():
    # 2024-01-01 is a Monday (day of week 0), day of year 0, ISO week 1, quarter 0.
    days = _days("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06", "2024-01-07",
                 "2024-01-08")
    features, names = calendar_features(days, "1D", ["dayofweek", "dayofyear", "quarter"])
    assert names == ("dayofweek_sin", "dayofweek_cos", "dayofyear_sin", "dayofyear_cos", "quarter_sin", "quarter_cos")
    weekday = np.array([0, 1, 2, 3, 4, 5, 6, 0])
    np.testing.assert_allclose(features[:, 0], np.sin(2 * np.pi * weekday / 7), atol=1e-15)
    np.testing.assert_allclose(features[:, 1], np.cos(2 * np.pi * weekday / 7), atol=1e-15)
    np.testing.assert_allclose(features[:, 2], np.sin(2 * np.pi * np.arange(8) / 365.25), atol=1e-15)
    assert features[:, 4].tolist() == [0.0] * 8 and features[:, 5].tolist() == [1.0] * 8
    quarters, _ = calendar_features(_days("2023-02-15", "2023-05-15", "2023-08-15", "2023-11-15"), "3M", ["quarter"])
    np.testing.assert_allclose(quarters, [[0, 1], [1, 0], [0, -1], [-1, 0]], atol=1e-15)


def test_calendar_week_is_the_iso_week_and_features_stay_in_range():
    days = np.arange(np.datetime64("1999-12-20"), np.datetime64("2027-01-10"))  # years with 52 and 53 ISO weeks
    features, _ = calendar_features(days, "1D", ["week", "dayofweek", "dayofyear", "month", "quarter"])
    iso = np.array([datetime.date.fromisoformat(str(d)).isocalendar()[1] for d in days])
    angle = 2 * np.pi * (iso - 1) / 52.1775
    np.testing.assert_allclose(features[:, :2], np.stack([np.sin(angle), np.cos(angle)], axis=1), atol=1e-12)
    assert iso.max() == 53 and np.abs(features).max() <= 1.0


def test_calendar_features_of_future_times_continue_the_cycle():
    past = np.arange(np.datetime64("1949-01"), np.datetime64("1950-07")).astype("datetime64[D]")  # 18 months
    future = future_times(past, "1M", 6)
    both, _ = calendar_features(np.concatenate([past, future]), "1M")
    np.testing.assert_allclose(calendar_features(future, "1M")[0], both[18:], atol=1e-15)
    np.testing.assert_allclose(both[18:], both[6:12], atol=1e-12)  # 1950-07 .. 12 again


@pytest.mark.parametrize("times, step, names, match", [
    (_days("2000-01-01", "2000-02-01"), "1M", ["weekday"],
     r"unknown calendar feature 'weekday'.* Valid: dayofweek, dayofyear, month, quarter, week"),
    (_days("1700-01-01", "1701-01-01"), "1Y", ["month"],
     r"calendar feature 'month' is constant on step '1Y': a step of 1Y lands on the same month every time"),
    (_days("1700-01-01", "1702-01-01"), "2Y", ["dayofyear"], r"'dayofyear' is constant on step '2Y'.*\(up to leap days\)"),
    (_days("1958-03-29", "1958-04-05"), "7D", ["dayofweek"],
     r"'dayofweek' is constant on step '7D': a step of 7D lands on the same day of the week every time"),
    (np.arange(3), "1", ["month"], r"'month' is constant on step '1': integer times carry no calendar"),
    (_days("2000-01-01", "2000-02-01"), "1M", ["month", "month"], r"calendar features named twice: \['month', 'month'\]"),
    (_days("2000-01-01", "2000-02-01"), "1D", None, r"step '1D' does not match the times, which step by '1M'"),
])
def test_calendar_feature_errors(times, step, names, match):
    with pytest.raises(ValueError, match=match):
        calendar_features(times, step, names)


# --- load_series_long -----------------------------------------------------------------------

def _csv(tmp_path, lines):
    p = tmp_path / "long.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_long_csv_groups_by_id_in_order_of_appearance(tmp_path):
    p = _csv(tmp_path, ["store,date,sales,promo",
                        "b,2020-01-31,1,0", "a,2020-01-01,10,1", "b,2020-02-29,2,1",
                        "a,2020-01-08,,0", "", "a,2020-01-15,30,1", "c,2020-05-01,7,0", "b,2020-03-31,3,0"])
    with pytest.raises(ValueError, match=r"long.csv, series 'a': 1 missing values \(first at row 4\)"):
        load_series_long(p, "date", "store", ["sales"], ["promo"])
    b, a, c = load_series_long(p, "date", "store", ["sales"], ["promo"], gaps="interpolate")
    assert (b.name, b.step, b.names, b.values.tolist()) == ("b", "1M", ("sales", "promo"), [[1, 0], [2, 1], [3, 0]])
    assert (a.name, a.step, a.values[:, 0].tolist(), str(a.times[-1])) == ("a", "7D", [10, 20, 30], "2020-01-15")
    assert (c.name, len(c), c.step, c.values.tolist()) == ("c", 1, "1D", [[7, 0]])  # one row: the default step
    ints = load_series_long(_csv(tmp_path, ["id,t,y", "x,0,1", "y,5,2", "x,2,3", "y,6,4"]), "t", "id", ["y"])
    assert [(s.name, s.step, s.times.tolist(), s.values[:, 0].tolist()) for s in ints] == [
        ("x", "2", [0, 2], [1, 3]), ("y", "1", [5, 6], [2, 4])]


@pytest.mark.parametrize("lines, match", [
    (["id,date,y", "a,2020-01-01,1", "b,2020-01-01,1", "a,2020-01-02,2", "a,2020-01-02,3"],
     r"long.csv, series 'a': time 2020-01-02 \(row 4\) is duplicate after 2020-01-02"),
    (["id,date,y", "a,2020-01-02,1", "b,2020-01-01,1", "a,2020-01-01,2"],
     r"series 'a': time 2020-01-01 \(row 3\) is out of order after 2020-01-02"),
    (["id,date,y", "b,2020-01-01,1", "a,2020-01-01,1", "a,2020-01-02,2", "a,2020-01-04,3", "a,2020-01-05,3"],
     r"series 'a': irregular spacing: most steps are 1D, but 2020-01-02 -> 2020-01-04 \(row 4\) is 2D"),
    (["id,date,y", "a,2020-01-01,1", ",2020-01-02,2"], r"long.csv, row 2: empty 'id' cell; every row needs a series id"),
    (["id,date,y", "a,2020-01-01,1", "a,,2"], r"long.csv, row 2: empty 'date' cell; every row needs a time"),
    (["key,date,y", "a,2020-01-01,1"], r"no column 'id'; columns: \['key', 'date', 'y'\]"),
    (["id,date,y", "a,2020-01-01,1", "a,2020-01-02,x"], r"row 2, column 'y': 'x' is not a number"),
    (["id,date,y", "a,2020-01-01,1", "a,2020-01-02,"], r"series 'a': column 0 is missing at the end"),
])
def test_long_csv_errors_name_the_series_and_row(tmp_path, lines, match):
    with pytest.raises(ValueError, match=match):
        load_series_long(_csv(tmp_path, lines), "date", "id", ["y"], gaps="interpolate")


def test_long_csv_id_column_cannot_be_a_value_column(tmp_path):
    p = _csv(tmp_path, ["id,date,y", "a,2020-01-01,1"])
    with pytest.raises(ValueError, match=r"a column is named twice among time, id, targets and covariates: \['y', 'date', 'y'\]"):
        load_series_long(p, "date", "y", ["y"])


# --- load_tsf -------------------------------------------------------------------------------

def _tsf(tmp_path, header, data):
    p = tmp_path / "t.tsf"
    p.write_text("# a test file\n" + "\n".join(header) + "\n@data\n" + "\n".join(data) + "\n")
    return p


NAMED = ["@relation t", "@attribute series_name string", "@attribute start_timestamp date"]


def test_tsf_shipped_with_aeon():
    import aeon.datasets

    path = os.path.join(os.path.dirname(aeon.datasets.__file__), "data", "UnitTest", "UnitTest_Tsf_Loader.tsf")
    t1, t2, t3 = load_tsf(path)
    assert [(s.name, len(s), s.step, s.names) for s in (t1, t2, t3)] == [
        ("T1", 7, "1Y", ("value",)), ("T2", 3, "1Y", ("value",)), ("T3", 5, "1Y", ("value",))]
    assert t2.values[:, 0].tolist() == [887896.51, 887068.98, 971549.04]
    assert t3.times.tolist() == _days("1973-01-01", "1974-01-01", "1975-01-01", "1976-01-01", "1977-01-01").tolist()
    assert str(t1.times[0]) == "1979-01-01" and str(t1.times[-1]) == "1985-01-01"


def test_tsf_calendar_frequencies_with_start_timestamps(tmp_path, caplog):
    p = _tsf(tmp_path, NAMED + ["@frequency monthly", "@horizon 2"],
             ["s1:1949-01-01 00-00-00:112,118,132", "s2:2000-01-31 00-00-00:1,2,3,4"])
    s1, s2 = load_tsf(p)
    assert (s1.name, s1.step, s1.values[:, 0].tolist()) == ("s1", "1M", [112, 118, 132])
    assert s1.times.tolist() == _days("1949-01-01", "1949-02-01", "1949-03-01").tolist()
    assert s2.times.tolist() == _days("2000-01-31", "2000-02-29", "2000-03-31", "2000-04-30").tolist()
    (q,) = load_tsf(_tsf(tmp_path, NAMED + ["@frequency quarterly"], ["q:1990-10-01 00-00-00:1,2,3"]))
    assert q.step == "3M" and q.times.tolist() == _days("1990-10-01", "1991-01-01", "1991-04-01").tolist()
    (w,) = load_tsf(_tsf(tmp_path, NAMED + ["@frequency weekly"], ["w:2020-01-01 00-00-00:1,2"]))
    assert w.step == "7D" and w.times.tolist() == _days("2020-01-01", "2020-01-08").tolist()
    with caplog.at_level("INFO", logger="lstmkit"):
        (d,) = load_tsf(_tsf(tmp_path, NAMED + ["@frequency daily"], ["d:2020-02-28 12-00-00:1,2,3"]))
    assert d.step == "1D" and d.times.tolist() == _days("2020-02-28", "2020-02-29", "2020-03-01").tolist()
    assert any("time of day; a daily series keeps only the date" in r.getMessage() for r in caplog.records)


def test_tsf_without_timestamps_or_with_sub_daily_steps_gets_integer_times(tmp_path, caplog):
    (a, b) = load_tsf(_tsf(tmp_path, ["@relation t", "@attribute series_name string", "@frequency daily"],
                           ["a:1,2,3", "b:4,5"]))
    assert (a.name, a.step, a.times.dtype, a.times.tolist(), b.values[:, 0].tolist()) == ("a", "1", np.int64,
                                                                                           [0, 1, 2], [4, 5])
    with caplog.at_level("INFO", logger="lstmkit"):
        (h,) = load_tsf(_tsf(tmp_path, NAMED + ["@frequency hourly"], ["h:2017-01-01 14-00-00:1,2,3"]))
    assert h.times.tolist() == [0, 1, 2] and h.step == "1"
    assert any("@frequency hourly is finer than a day: integer time steps" in r.getMessage() for r in caplog.records)
    (n,) = load_tsf(_tsf(tmp_path, ["@relation t", "@attribute region string"], ["north:5,6"]))
    assert (n.name, n.times.tolist()) == ("0", [0, 1])  # no series_name attribute: named by position


def test_tsf_missing_values_follow_the_gap_policy(tmp_path):
    p = _tsf(tmp_path, NAMED + ["@frequency monthly", "@missing true"],
             ["ok:2000-01-01 00-00-00:1,2", "gappy:2000-01-01 00-00-00:1,?,?,4"])
    with pytest.raises(ValueError, match=r"t.tsf, series 'gappy': 2 missing values \(first at row 1\); pass gaps='interpolate'"):
        load_tsf(p)
    ok, gappy = load_tsf(p, gaps="interpolate")
    assert ok.values[:, 0].tolist() == [1, 2] and gappy.values[:, 0].tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"series 'end': column 0 is missing at the end"):
        load_tsf(_tsf(tmp_path, NAMED + ["@frequency monthly"], ["end:2000-01-01 00-00-00:1,?"]), gaps="interpolate")


@pytest.mark.parametrize("text, match", [
    ("@relation t\n@attribute series_name string\na:1,2\n", r"t.tsf: not a valid .tsf file: Missing @data tag"),
    ("@relation t\n@attribute series_name string\n@data\na:1,x\n", r"t.tsf: not a valid .tsf file: could not convert"),
    ("@relation t\n@attribute series_name string\n@data\na:b:1,2\n", r"not a valid .tsf file: Missing attributes/values"),
    ("", r"t.tsf: not a valid .tsf file: Empty file"),
    ("@relation t\n@attribute series_name string\n@frequency fortnightly\n@data\na:1,2\n",
     r"unknown tsf @frequency 'fortnightly'.* Valid: 10_minutes, .*, yearly \(in .*t.tsf\)"),
    ("@relation t\n@attribute series_name string\n@attribute start_timestamp date\n@frequency monthly\n@data\n"
     "a:2001-01-30 00-00-00:1,2\n", r"t.tsf, series 'a': day 30 of the month does not exist in 2001-02"),
])
def test_tsf_errors_name_the_file(tmp_path, text, match):
    p = tmp_path / "t.tsf"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_tsf(p)
    with pytest.raises(FileNotFoundError):
        load_tsf(tmp_path / "absent.tsf")
