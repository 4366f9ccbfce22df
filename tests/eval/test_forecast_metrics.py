import sys

import numpy as np
import pytest

from lstmkit.eval.baselines import drift, naive, naive2, seasonal_indices, seasonal_naive, seasonality_test
from lstmkit.eval.forecast_metrics import (coverage, crps_from_samples, crps_gaussian, mae, mape, mase, mean_width, owa,
                                           pinball, rmse, smape)


def test_point_metrics_by_hand():
    y, f = [1.0, 2.0, 4.0], [2.0, 2.0, 2.0]
    assert mae(y, f) == pytest.approx(1.0)
    assert rmse(y, f) == pytest.approx(np.sqrt(5 / 3))
    assert mape(y, f) == pytest.approx(100 / 3 * (1 + 0 + 0.5))
    assert smape(y, f) == pytest.approx(200 / 3 * (1 / 3 + 0 + 2 / 6))
    assert mase(y, f, insample=[1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(1.0)  # naive in-sample MAE is 1
    assert mase(y, f, insample=[1.0, 5.0, 2.0, 6.0, 3.0], m=2) == pytest.approx(1.0)  # |y_t - y_{t-2}| = 1
    assert smape([0.0], [0.0]) == 0.0


def test_several_series_average_per_series():
    y = np.array([[1.0, 1.0], [10.0, 10.0]])
    f = np.array([[2.0, 2.0], [10.0, 12.0]])
    assert mae(y, f) == pytest.approx((1 + 1) / 2)
    assert rmse(y, f) == pytest.approx((1 + np.sqrt(2)) / 2)
    assert mase(y, f, insample=[[0.0, 1.0], [0.0, 2.0]]) == pytest.approx((1 / 1 + 1 / 2) / 2)


def test_owa_of_naive2_is_one_and_intervals():
    rng = np.random.default_rng(0)
    hist = 10 + rng.standard_normal(40).cumsum()
    y = hist[-1] + rng.standard_normal(6)
    n2 = naive2(hist, 6, 1)
    assert owa(y, n2, n2, hist) == pytest.approx(1.0)
    assert owa(y, y + 0.01, n2, hist) < 0.1
    assert coverage([1, 2, 3, 4], [0, 2.5, 2, 0], [2, 3, 4, 3.9]) == 0.5
    assert mean_width([0, 1], [2, 5]) == 3.0


@pytest.mark.parametrize("call, match", [
    (lambda: mae([1, 2], [1]), "same shape"),
    (lambda: rmse([1, np.nan], [1, 2]), "finite"),
    (lambda: mape([0, 1], [1, 1]), "MAPE is undefined when an actual value is 0"),
    (lambda: mase([1, 2], [1, 2], insample=[3, 3, 3]), "constant at lag 1"),
    (lambda: mase([1, 2], [1, 2], insample=[1, 2], m=2), "needs more than 2"),
    (lambda: mase([1, 2], [1, 2], insample=[1, 2, 3], m=0), r"m \(seasonal period\) must be an int >= 1, got 0"),
    (lambda: coverage([1], [2], [1]), "lower <= upper"),
    (lambda: naive([1.0], 0), "horizon h must be an int >= 1, got 0"),
    (lambda: seasonal_naive([1.0, 2.0], 3, m=4), "at least 4"),
    (lambda: seasonal_indices([1.0, -1.0, 2.0, 3.0], 2), "positive series"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_simple_baselines():
    x = np.array([1.0, 2.0, 3.0, 7.0])
    np.testing.assert_array_equal(naive(x, 3), [7, 7, 7])
    np.testing.assert_array_equal(seasonal_naive(x, 5, m=2), [3, 7, 3, 7, 3])
    np.testing.assert_allclose(drift(x, 2), [9, 11])


@pytest.mark.parametrize("strategy, ours", [
    ("last", lambda x, h: naive(x, h)),
    ("seasonal_last", lambda x, h: seasonal_naive(x, h, 12)),
    ("drift", lambda x, h: drift(x, h)),
])
def test_simple_baselines_equal_aeon_naive_forecaster(strategy, ours):
    from aeon.forecasting import NaiveForecaster

    train, _ = _airline()
    for n, h in ((108, 36), (25, 1), (97, 13)):
        expected = NaiveForecaster(strategy=strategy, seasonal_period=12).direct_forecast(train[:n], h)
        np.testing.assert_array_equal(ours(train[:n], h), expected)  # bit for bit


def _airline():
    from aeon.datasets import load_airline

    y = np.asarray(load_airline(), dtype=np.float64)
    return y[:108], y[108:]  # train through 1957-12, test: the 36 months of 1958-1960


def _indices_by_hand(x, m):
    """Ratios to the centred moving average (2×m for even m), averaged per position, mean 1."""
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    half = len(weights) // 2
    trend = np.full(len(x), np.nan)
    trend[half : len(x) - half] = np.convolve(x, weights, mode="valid")
    idx = np.array([np.nanmean((x / trend)[p::m]) for p in range(m)])
    return idx / idx.mean()


def _seasonal_by_hand(x, m):
    d = x - x.mean()
    acfs = np.array([(d[k:] * d[:-k]).sum() / (d * d).sum() for k in range(1, m + 1)])
    return bool(abs(acfs[-1]) > 1.645 * np.sqrt((1 + 2 * (acfs[:-1] ** 2).sum()) / len(x)))


def test_seasonal_indices_and_test_equal_the_classical_computation_by_hand():
    # statsmodels' decomposition gives exactly (bit for bit) the indices computed by hand
    train, _ = _airline()
    np.testing.assert_array_equal(seasonal_indices(train, 12), _indices_by_hand(train, 12))
    odd = train[:99]
    np.testing.assert_array_equal(seasonal_indices(odd, 7), _indices_by_hand(odd, 7))
    # and statsmodels' ACF the same seasonality decisions (its ACF differs from ours by an ulp or so)
    for m in (2, 4, 7, 11, 12):
        for n in range(3 * m, len(train) + 1, 3):
            assert seasonality_test(train[:n], m) == _seasonal_by_hand(train[:n], m), (m, n)


def test_naive2_reproduces_the_published_airline_anchor():
    train, test = _airline()
    assert seasonality_test(train, 12)
    assert mape(test, naive2(train, 36, 12)) == pytest.approx(12.95, abs=0.005)  # the Naive2 anchor
    rng = np.random.default_rng(0)
    noise = 5 + rng.standard_normal(120)
    assert not seasonality_test(noise, 12)
    np.testing.assert_array_equal(naive2(noise, 4, 12), naive(noise, 4))


def test_naive2_without_statsmodels_is_a_clear_import_error(monkeypatch):
    train, _ = _airline()
    monkeypatch.setitem(sys.modules, "statsmodels.tsa.stattools", None)
    with pytest.raises(ImportError, match="naive2 needs 'statsmodels.tsa.stattools': pip install statsmodels"):
        naive2(train, 12, 12)
    np.testing.assert_array_equal(naive2(train, 3, 1), naive(train, 3))  # no seasonal test at m = 1: no statsmodels


# ---- probabilistic scores


def test_crps_from_samples_equals_the_double_sum():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(37, 3, 4)), rng.normal(size=(3, 4))
    brute = np.abs(x - y).mean(axis=0) - 0.5 * np.abs(x[:, None] - x[None]).mean(axis=(0, 1))
    assert crps_from_samples(y, x) == pytest.approx(brute.mean(), rel=1e-12)
    assert crps_from_samples(2.0, np.array([2.0])) == 0.0  # one sample at the actual
    assert crps_from_samples(0.0, np.array([1.0, -1.0])) == pytest.approx(1.0 - 0.5 * 1.0)


def test_crps_from_many_gaussian_samples_matches_the_closed_form():
    rng = np.random.default_rng(1)
    y, mu, sigma = np.array([0.3, -1.0, 2.5]), np.array([0.0, 0.5, 1.0]), np.array([1.0, 2.0, 0.5])
    x = mu + sigma * rng.standard_normal((200_000, 3))
    assert crps_from_samples(y, x) == pytest.approx(crps_gaussian(y, mu, sigma), rel=5e-3)
    assert crps_gaussian(0.0, 0.0, 1.0) == pytest.approx((np.sqrt(2) - 1) / np.sqrt(np.pi))


def test_pinball():
    assert pinball([1.0, 3.0], [2.0, 2.0], 0.9) == pytest.approx((0.1 * 1 + 0.9 * 1) / 2)
    assert pinball([1.0, 3.0], [2.0, 2.0], 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="tau must be in"):
        pinball([1.0], [1.0], 1.0)


def test_probabilistic_score_errors():
    with pytest.raises(ValueError, match="samples must have shape"):
        crps_from_samples(np.zeros(3), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="finite"):
        crps_from_samples(np.zeros(1), np.full((2, 1), np.nan))
    with pytest.raises(ValueError, match="sigma must be positive"):
        crps_gaussian(0.0, 0.0, 0.0)


def test_coverage_of_unbounded_intervals():
    assert coverage([1.0, 5.0], [-np.inf, 0.0], [np.inf, 2.0]) == 0.5
    with pytest.raises(ValueError, match="finite"):
        coverage([1.0], [np.nan], [2.0])
