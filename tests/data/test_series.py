import numpy as np
import pytest

from lstmkit.data.series import Series, fill_gaps, list_series, load_series, load_series_csv, sliding_windows


def test_named_series_have_their_documented_span_and_step():
    air = load_series("airline")
    assert (len(air), air.step, str(air.times[0]), str(air.times[-1])) == (144, "1M", "1949-01-01", "1960-12-01")
    assert air.values[:3, 0].tolist() == [112, 118, 132]
    sun = load_series("sunspots")
    assert (len(sun), sun.step, str(sun.times[0])[:4], str(sun.times[-1])[:4]) == (309, "1Y", "1700", "2008")
    assert sorted(list_series()) == ["airline", "co2", "co2-monthly", "sunspots"]


def test_co2_monthly_is_the_mean_of_each_months_weeks():
    weekly, monthly = load_series("co2", gaps="interpolate"), load_series("co2-monthly")
    assert (len(monthly), monthly.step, str(monthly.times[0]), str(monthly.times[-1])) == \
        (526, "1M", "1958-03-01", "2001-12-01")
    assert np.isfinite(monthly.values).all()
    # 1958-03 has one observed week (1958-03-29); 1959-01's weeks are all observed
    assert monthly.values[0, 0] == weekly.values[0, 0]
    jan59 = (weekly.times >= np.datetime64("1959-01-01")) & (weekly.times < np.datetime64("1959-02-01"))
    assert monthly.values[10, 0] == pytest.approx(weekly.values[jan59, 0].mean())
    with pytest.raises(ValueError, match="5 missing values"):
        load_series("co2-monthly", gaps="error")


def test_co2_gap_policy_is_explicit(caplog):
    with caplog.at_level("INFO", logger="lstmkit"):
        co2 = load_series("co2")
    assert len(co2) == 2284 and co2.step == "7D" and np.isfinite(co2.values).all()
    assert any("filled 59 missing values" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="59 missing values .* gaps='interpolate'"):
        load_series("co2", gaps="error")
    with pytest.raises(ValueError, match="unknown series 'airlines'.*airline"):
        load_series("airlines")


def test_fill_gaps_interpolates_linearly_and_never_extrapolates():
    v = np.array([[1.0], [np.nan], [np.nan], [4.0]])
    np.testing.assert_allclose(fill_gaps(v, "interpolate", "x")[:, 0], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="missing at the end"):
        fill_gaps(np.array([[1.0], [np.nan]]), "interpolate", "x")
    with pytest.raises(ValueError, match="gaps must be"):
        fill_gaps(v, "drop", "x")


def _csv(tmp_path, lines):
    p = tmp_path / "s.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_csv_with_targets_and_covariates(tmp_path):
    p = _csv(tmp_path, ["date,sales,price,promo", "2020-01-31,10,1.5,0", "2020-02-29,12,1.4,1",
                        "2020-03-31,,1.3,0", "2020-04-30,15,1.2,1"])
    with pytest.raises(ValueError, match="1 missing values"):
        load_series_csv(p, "date", ["sales"], ["promo"])
    s = load_series_csv(p, "date", ["sales"], ["promo"], gaps="interpolate")
    assert s.names == ("sales", "promo") and s.step == "1M"  # month ends are regular months
    np.testing.assert_allclose(s.values[:, 0], [10, 12, 13.5, 15])
    ints = load_series_csv(_csv(tmp_path, ["t,y", "3,1", "5,2", "7,3"]), "t", ["y"])
    assert ints.step == "2"


@pytest.mark.parametrize("lines, match", [
    (["date,y", "2020-01-01,1", "2020-01-03,2", "2020-01-02,3"], r"2020-01-02 \(row 2\) is out of order"),
    (["date,y", "2020-01-01,1", "2020-01-02,2", "2020-01-02,3"], r"2020-01-02 \(row 2\) is duplicate"),
    (["date,y", "2020-01-01,1", "2020-01-02,2", "2020-01-03,3", "2020-01-05,4"], r"irregular spacing: most steps are 1D"),
    (["date,y", "2020-01-01,1", "2020-01-02,x"], r"row 2, column 'y': 'x' is not a number"),
    (["date,y", "2020-01-01,1", "2020-01-02"], r"row 2: 1 fields, the header has 2"),
    (["date,z", "2020-01-01,1"], r"no column 'y'"),
    (["date,y", "yesterday,1"], r"neither integers nor ISO dates"),
    (["date,y"], r"a header but no data rows"),
    (["date,y", "2020-01-01,inf"], r"values contain inf"),
])
def test_csv_errors_name_the_row(tmp_path, lines, match):
    with pytest.raises(ValueError, match=match):
        load_series_csv(_csv(tmp_path, lines), "date", ["y"])


def test_series_validates_itself():
    with pytest.raises(ValueError, match="2 columns but 1 names"):
        Series(np.zeros((3, 2)), np.arange(3), ("a",))
    with pytest.raises(ValueError, match="must be 3 datetime64 or integer values"):
        Series(np.zeros(3), np.array([0.0, 1.0, 2.0]), ("a",))


def test_sliding_windows():
    v = np.arange(10.0)
    x, y = sliding_windows(v, 4, 2)
    assert x.shape == (5, 4, 1) and y.shape == (5, 2, 1)
    assert x[0, :, 0].tolist() == [0, 1, 2, 3] and y[0, :, 0].tolist() == [4, 5]
    assert x[-1, :, 0].tolist() == [4, 5, 6, 7] and y[-1, :, 0].tolist() == [8, 9]
    x, _ = sliding_windows(v, 4, 2, stride=3)
    assert x[:, 0, 0].tolist() == [0, 3]
    with pytest.raises(ValueError, match="shorter than input_length \\+ horizon = 12"):
        sliding_windows(v, 8, 4)
    with pytest.raises(ValueError, match="horizon must be an int >= 1, got 0"):
        sliding_windows(v, 4, 0)
