import numpy as np
import pytest

from lstmkit.data.series import load_series
from lstmkit.data.transforms import SeriesTransform

CASES = [dict(), dict(log=True), dict(difference=True), dict(seasonal_period=12), dict(log=True, seasonal_period=12),
         dict(log=True, seasonal_period=12, difference=True), dict(seasonal_period=12, difference=True, standardize=False),
         dict(power=0.5), dict(power=0.5, difference=True), dict(power=0.25, seasonal_period=12, difference=True),
         dict(power=1.5, seasonal_period=12)]


@pytest.mark.parametrize("kw", CASES)
def test_inverse_of_the_true_future_is_the_true_future(kw):
    y = load_series("airline").values
    train, test = y[:108], y[108:]
    t = SeriesTransform(**kw).fit(train)
    z_all = t.transform(y)
    assert len(z_all) == len(y) - t.lost
    z_future = z_all[108 - t.lost :]  # the transformed values of the 36 test months
    np.testing.assert_allclose(t.inverse(z_future, train), test, rtol=1e-10)


def test_statistics_come_from_the_training_part_only():
    y = load_series("airline").values
    t = SeriesTransform(log=True, seasonal_period=12).fit(y[:108])
    z = t.transform(y[:108])
    np.testing.assert_allclose([z.mean(), z.std()], [0, 1], atol=1e-12)
    assert abs(t.transform(y)[96:].mean()) > 0.1  # the test part is not forced to mean 0


def test_transform_errors():
    with pytest.raises(ValueError, match="seasonal_period must be 0"):
        SeriesTransform(seasonal_period=1)
    with pytest.raises(ValueError, match="log needs a positive series"):
        SeriesTransform(log=True).fit(np.array([1.0, 0.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="call fit"):
        SeriesTransform().transform(np.ones(5))
    with pytest.raises(ValueError, match="has 13 steps; the transform needs more than 14"):
        SeriesTransform(seasonal_period=12, difference=True).fit(np.arange(1.0, 14.0))
    with pytest.raises(ValueError, match="NaN or inf"):
        SeriesTransform().fit(np.array([1.0, np.nan, 2.0, 3.0]))
    t = SeriesTransform().fit(np.random.default_rng(0).standard_normal((20, 2)))
    with pytest.raises(ValueError, match="has 3 columns, the transform was fit on 2"):
        t.transform(np.ones((5, 3)))


def test_power_is_box_cox_and_square_root_at_one_half():
    y = np.array([0.0, 1.0, 4.0, 9.0, 16.0, 25.0])
    t = SeriesTransform(power=0.5, standardize=False).fit(y)
    np.testing.assert_allclose(t.transform(y)[:, 0], 2 * (np.sqrt(y) - 1))  # (y^0.5 - 1) / 0.5
    # a zero is allowed (sunspot numbers have them) and a forecast below the floor -1/lambda maps to 0
    np.testing.assert_allclose(t.inverse(np.array([-2.0, -5.0, 0.0]), y)[:, 0], [0.0, 0.0, 1.0])


def test_power_errors():
    for bad in (0, 0.0, -0.5, float("nan"), float("inf"), True, "0.5"):
        with pytest.raises(ValueError, match="power must be null or a Box-Cox lambda > 0"):
            SeriesTransform(power=bad)
    with pytest.raises(ValueError, match="log and power are two ways"):
        SeriesTransform(log=True, power=0.5)
    with pytest.raises(ValueError, match=r"power \(Box-Cox lambda 0.5\) needs the series >= 0"):
        SeriesTransform(power=0.5).fit(np.array([1.0, -0.1, 2.0, 3.0]))


def test_unfitted_copies_the_settings_without_the_statistics():
    t = SeriesTransform(seasonal_period=12, difference=True, power=0.5).fit(load_series("airline").values[:108])
    u = t.unfitted()
    assert (u.log, u.seasonal_period, u.difference, u.standardize, u.power) == (False, 12, True, True, 0.5)
    assert u.mean_ is None and t.mean_ is not None
