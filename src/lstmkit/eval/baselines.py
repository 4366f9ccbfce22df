"""Statistical reference forecasts that every forecasting run is scored against.

``naive`` (last value), ``seasonal_naive`` (the last season repeated), ``drift`` (the line
through the first and last values, extended), and ``naive2``, the M4 competition's benchmark:
if the series passes M4's seasonality test at period ``m``, divide out classical
multiplicative seasonal indices, forecast the last deseasonalised value, and multiply the
indices back; otherwise the naive forecast. All take a finite 1-D history and a horizon ``h``
and return an (h,) float64 array. The richer statistical baselines (Holt-Winters, SARIMA) come
from statsmodels in the forecasting pipeline, never re-implemented here.

The autocorrelations of the seasonality test and the seasonal indices are statsmodels'
(``acf``, ``seasonal_decompose``). The three simple forecasts are one NumPy line each and give
exactly aeon's ``NaiveForecaster`` (strategies "last", "seasonal_last" and "drift", tested), which
fits one estimator per step of the horizon; docs/architecture.md says why they stay here.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_int, require

__all__ = ["naive", "seasonal_naive", "drift", "naive2", "seasonality_test", "seasonal_indices"]


def _history(x, h: int, need: int = 1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise ValueError("history must be a finite 1-D array")
    if len(x) < need:
        raise ValueError(f"history has {len(x)} values; this forecast needs at least {need}")
    check_int("horizon h", h)
    return x


def naive(x, h: int) -> np.ndarray:
    x = _history(x, h)
    return np.full(h, x[-1])


def seasonal_naive(x, h: int, m: int) -> np.ndarray:
    x = _history(x, h, need=m)
    return np.resize(x[-m:], h)  # repeats the last season


def drift(x, h: int) -> np.ndarray:
    x = _history(x, h, need=2)
    slope = (x[-1] - x[0]) / (len(x) - 1)
    return x[-1] + slope * np.arange(1, h + 1)


def _statsmodels(module: str):
    return require(module, f"naive2 needs {module!r}", "forecast", pip="statsmodels")


def seasonality_test(x, m: int) -> bool:
    """M4's test: |ACF(m)| > 1.645 · sqrt((1 + 2 Σ_{k<m} ACF(k)²) / n), for series with n >= 3m."""
    x = np.asarray(x, dtype=np.float64)
    if m <= 1 or len(x) < 3 * m:
        return False
    acfs = _statsmodels("statsmodels.tsa.stattools").acf(x, nlags=m, fft=False)[1:]  # lags 1 .. m
    limit = 1.645 * np.sqrt((1 + 2 * (acfs[:-1] ** 2).sum()) / len(x))
    return bool(abs(acfs[-1]) > limit)


def seasonal_indices(x, m: int) -> np.ndarray:
    """Classical multiplicative decomposition (statsmodels' ``seasonal_decompose``): the (m,)
    seasonal indices (mean 1) for positions 0..m-1 of ``x``, from the ratios of ``x`` to its
    centred moving average (2×m for even m)."""
    x = np.asarray(x, dtype=np.float64)
    if (x <= 0).any():
        raise ValueError("multiplicative seasonal indices need a positive series")
    decompose = _statsmodels("statsmodels.tsa.seasonal").seasonal_decompose
    return np.asarray(decompose(x, model="multiplicative", period=m).seasonal[:m], dtype=np.float64)


def naive2(x, h: int, m: int) -> np.ndarray:
    """M4's Naive2: the naive forecast of the seasonally adjusted series, reseasonalised."""
    x = _history(x, h)
    if not seasonality_test(x, m):
        return naive(x, h)
    idx = seasonal_indices(x, m)
    n = len(x)
    adjusted = x / idx[np.arange(n) % m]
    return adjusted[-1] * idx[np.arange(n, n + h) % m]
