"""Forecasting transforms, fit on the training part only and inverted on forecasts.

``SeriesTransform(log, seasonal_period, difference, standardize, power)`` applies, in this order:

1. ``log``: natural log (the series must be positive); or ``power=λ`` (λ > 0): the Box-Cox
   transform (y^λ - 1) / λ (the series must be >= 0; λ = 0.5 is the square root that
   stabilises the variance of counts such as sunspot numbers). Inverting maps a forecast below
   the transform's floor (-1/λ, the image of 0) to 0, the lower bound of the series;
2. ``seasonal_period=m``: seasonal differencing w_t = y_t - y_{t-m};
3. ``difference=True``: first differencing v_t = w_t - w_{t-1};
4. ``standardize``: (v - mean) / std with mean and std of the training part.

Each differencing step shortens the transformed series at its start (by m, then by 1).
``inverse(z_future, history)`` turns forecasts of the transformed series for the steps right
after ``history`` back to the original scale: it unstandardises, then rebuilds each level from
the history's last values, step by step through the horizon, then exponentiates. So feeding the
true transformed future gives back the true future exactly (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxcox import box_cox, check_power, inverse_box_cox

__all__ = ["SeriesTransform"]


@dataclass
class SeriesTransform:
    log: bool = False
    seasonal_period: int = 0  # 0: no seasonal differencing
    difference: bool = False
    standardize: bool = True
    power: float | None = None  # Box-Cox lambda > 0; None: no power transform

    def __post_init__(self) -> None:
        m = self.seasonal_period
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0 or m == 1:
            raise ValueError(f"seasonal_period must be 0 (none) or an int >= 2, got {m!r}")
        self.power = check_power(self.power)
        if self.power is not None and self.log:
            raise ValueError("log and power are two ways to transform the levels; set one of them")
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def unfitted(self) -> "SeriesTransform":
        """A new transform with these settings and no fitted statistics."""
        return SeriesTransform(self.log, self.seasonal_period, self.difference, self.standardize, self.power)

    @property
    def lost(self) -> int:
        """Steps the differencing removes from the start of a transformed series."""
        return self.seasonal_period + int(self.difference)

    def _levels(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None]
        if not np.isfinite(y).all():
            raise ValueError("the series contains NaN or inf; apply a gap policy first")
        if self.log:
            if (y <= 0).any():
                raise ValueError("log needs a positive series; found values <= 0")
            y = np.log(y)
        elif self.power is not None:
            y = box_cox(y, self.power)
        return y

    def _difference(self, y: np.ndarray) -> np.ndarray:
        if self.seasonal_period:
            y = y[self.seasonal_period :] - y[: -self.seasonal_period]
        if self.difference:
            y = np.diff(y, axis=0)
        return y

    def fit(self, train) -> "SeriesTransform":
        """Fit the standardisation on the training part (after log and differencing)."""
        y = self._levels(train)
        if len(y) <= self.lost + 1:
            raise ValueError(f"the training part has {len(y)} steps; the transform needs more than {self.lost + 1}")
        v = self._difference(y)
        self.mean_ = v.mean(axis=0) if self.standardize else np.zeros(v.shape[1])
        std = v.std(axis=0) if self.standardize else np.ones(v.shape[1])
        self.std_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, y) -> np.ndarray:
        """(T, C) -> (T - lost, C) on the model's scale."""
        if self.mean_ is None:
            raise ValueError("call fit on the training part first")
        v = self._difference(self._levels(y))
        if v.shape[1] != len(self.mean_):
            raise ValueError(f"the series has {v.shape[1]} columns, the transform was fit on {len(self.mean_)}")
        return (v - self.mean_) / self.std_

    def inverse(self, z_future, history) -> np.ndarray:
        """Forecasts (h, C) on the model's scale for the h steps after ``history`` (T, C) ->
        forecasts on the original scale."""
        if self.mean_ is None:
            raise ValueError("call fit on the training part first")
        z = np.asarray(z_future, dtype=np.float64)
        if z.ndim == 1:
            z = z[:, None]
        levels = self._levels(history)
        if len(levels) < self.lost + 1:
            raise ValueError(f"history has {len(levels)} steps; inverting needs at least {self.lost + 1}")
        v = z * self.std_ + self.mean_
        m = self.seasonal_period
        w_hist = levels[m:] - levels[:-m] if m else levels
        if self.difference:  # w_t = w_{t-1} + v_t
            v = w_hist[-1] + np.cumsum(v, axis=0)
        if m:  # y_t = w_t + y_{t-m}, where y_{t-m} may itself be a forecast
            extended = np.concatenate([levels[-m:], np.empty_like(v)])
            for t in range(len(v)):
                extended[m + t] = v[t] + extended[t]
            v = extended[m:]
        if self.log:
            return np.exp(v)
        if self.power is not None:
            return inverse_box_cox(v, self.power)
        return v
