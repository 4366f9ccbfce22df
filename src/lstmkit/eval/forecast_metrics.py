"""Point and interval forecast metrics, with the M4 competition's definitions.

All take the actual values ``y`` and the forecast ``f`` over the same horizon (1-D arrays of
length h, or (n_series, h) for several series, averaged per series then over series).

- ``mae``, ``mse``, ``rmse`` (the root of each series' MSE);
- ``mape`` in percent: 100/h · Σ |y - f| / |y| (undefined when an actual is 0: ValueError);
- ``smape`` in percent, M4 definition: 200/h · Σ |y - f| / (|y| + |f|);
- ``mase``: MAE over the in-sample MAE of the seasonal naive forecast with period ``m`` on the
  training history ``insample`` (M4: mean |y_t - y_{t-m}| over t = m+1..n);
- ``owa`` (M4): ½ (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2), so Naive2 scores exactly 1;
- ``coverage`` (fraction of actuals inside [lower, upper]) and ``mean_width``;
- probabilistic scores: ``crps_from_samples`` (the continuous ranked probability score of a
  predictive distribution given by samples, exact for the samples' empirical distribution),
  ``crps_gaussian`` (closed form for a normal prediction) and ``pinball`` (mean quantile loss).

References: Makridakis, Spiliotis & Assimakopoulos (2020), "The M4 Competition: 100,000 time
series and 61 forecasting methods", IJF 36(1), section 2.3; Gneiting & Raftery (2007), "Strictly
proper scoring rules, prediction, and estimation", JASA 102(477) (CRPS, energy form and the
Gaussian closed form).
"""

from __future__ import annotations

import numpy as np

from ..checks import check_int

__all__ = ["mae", "mse", "rmse", "mape", "smape", "mase", "owa", "coverage", "mean_width", "crps_from_samples",
           "crps_gaussian", "pinball"]


def _pair(y, f) -> tuple[np.ndarray, np.ndarray]:
    y, f = np.asarray(y, dtype=np.float64), np.asarray(f, dtype=np.float64)
    if y.shape != f.shape or y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise ValueError(f"actuals and forecast must have the same shape (h,) or (n_series, h) with h >= 1, "
                         f"got {y.shape} and {f.shape}")
    if not (np.isfinite(y).all() and np.isfinite(f).all()):
        raise ValueError("actuals and forecast must be finite (NaN or inf found)")
    return np.atleast_2d(y), np.atleast_2d(f)


def mae(y, f) -> float:
    y, f = _pair(y, f)
    return float(np.abs(y - f).mean(axis=1).mean())


def mse(y, f) -> float:
    y, f = _pair(y, f)
    return float(((y - f) ** 2).mean(axis=1).mean())


def rmse(y, f) -> float:
    y, f = _pair(y, f)
    return float(np.sqrt(((y - f) ** 2).mean(axis=1)).mean())


def mape(y, f) -> float:
    y, f = _pair(y, f)
    if (y == 0).any():
        raise ValueError("MAPE is undefined when an actual value is 0; use smape or mase")
    return float((100 * np.abs(y - f) / np.abs(y)).mean(axis=1).mean())


def smape(y, f) -> float:
    y, f = _pair(y, f)
    denom = np.abs(y) + np.abs(f)
    terms = np.divide(2 * np.abs(y - f), denom, out=np.zeros_like(denom), where=denom > 0)  # 0/0 -> 0
    return float((100 * terms).mean(axis=1).mean())


def _scale(insample: np.ndarray, m: int) -> float:
    insample = np.asarray(insample, dtype=np.float64)
    if insample.ndim != 1 or not np.isfinite(insample).all():
        raise ValueError("insample must be a finite 1-D history")
    m = check_int("m (seasonal period)", m)
    if len(insample) <= m:
        raise ValueError(f"insample has {len(insample)} values; MASE with m={m} needs more than {m}")
    scale = np.abs(insample[m:] - insample[:-m]).mean()
    if scale == 0:
        raise ValueError(f"insample is constant at lag {m}: the MASE scale is 0")
    return float(scale)


def mase(y, f, insample, m: int = 1) -> float:
    """MAE of the forecast over the in-sample MAE of the seasonal naive (period ``m``) forecast.
    For several series pass ``insample`` as a list (one history per row of ``y``)."""
    y2, f2 = _pair(y, f)
    histories = [insample] if np.asarray(y).ndim == 1 else list(insample)
    if len(histories) != len(y2):
        raise ValueError(f"{len(y2)} series but {len(histories)} in-sample histories")
    return float(np.mean([np.abs(a - b).mean() / _scale(h, m) for a, b, h in zip(y2, f2, histories)]))


def owa(y, f, naive2, insample, m: int = 1) -> float:
    """M4's overall weighted average relative to the Naive2 forecast ``naive2`` (1.0 = Naive2)."""
    s2, m2 = smape(y, naive2), mase(y, naive2, insample, m)
    if s2 == 0 or m2 == 0:
        raise ValueError("Naive2 is exact on this horizon: OWA is undefined")
    return 0.5 * (smape(y, f) / s2 + mase(y, f, insample, m) / m2)


def coverage(y, lower, upper) -> float:
    """Fraction of actuals inside [lower, upper] (bounds may be infinite: an unbounded interval)."""
    _, hi = _pair(y, np.nan_to_num(upper, nan=np.nan, posinf=0.0, neginf=0.0))
    y, lo = _pair(y, np.nan_to_num(lower, nan=np.nan, posinf=0.0, neginf=0.0))
    lo, hi = np.atleast_2d(np.asarray(lower, dtype=np.float64)), np.atleast_2d(np.asarray(upper, dtype=np.float64))
    if (lo > hi).any():
        raise ValueError("lower exceeds upper somewhere: intervals must satisfy lower <= upper")
    return float(((y >= lo) & (y <= hi)).mean())


def mean_width(lower, upper) -> float:
    lo, hi = _pair(lower, upper)
    if (lo > hi).any():
        raise ValueError("lower exceeds upper somewhere: intervals must satisfy lower <= upper")
    return float((hi - lo).mean())


def crps_from_samples(y, samples) -> float:
    """Mean CRPS of the empirical distribution of ``samples`` against the actuals ``y``.

    ``y``: (...,) actuals; ``samples``: (n, ...) draws of the prediction for each actual (the
    sample axis first). Per point, the energy form E|X - y| - 1/2 E|X - X'| over the n samples,
    computed exactly in O(n log n) by sorting: with x_(1) <= ... <= x_(n),
    E|X - X'| = 2/n^2 * sum_i (2i - n - 1) x_(i)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim < 1 or x.shape[1:] != y.shape or x.shape[0] == 0:
        raise ValueError(f"samples must have shape (n, *y.shape) = (n, {', '.join(map(str, y.shape))}) with n >= 1, "
                         f"got {x.shape}")
    if not (np.isfinite(y).all() and np.isfinite(x).all()):
        raise ValueError("actuals and samples must be finite (NaN or inf found)")
    n = x.shape[0]
    first = np.abs(x - y).mean(axis=0)
    xs = np.sort(x, axis=0)
    w = (2 * np.arange(1, n + 1) - n - 1).reshape((n,) + (1,) * y.ndim)
    spread = 2 * (w * xs).sum(axis=0) / n ** 2  # E|X - X'|
    return float((first - 0.5 * spread).mean())


def crps_gaussian(y, mu, sigma) -> float:
    """Mean CRPS of normal predictions N(mu, sigma^2) (closed form, Gneiting & Raftery 2007):
    sigma * (z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)), z = (y - mu) / sigma."""
    from scipy.stats import norm

    y, mu, sigma = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (y, mu, sigma)))
    if (sigma <= 0).any() or not np.isfinite(sigma).all():
        raise ValueError("sigma must be positive and finite")
    z = (y - mu) / sigma
    return float((sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))).mean())


def pinball(y, q_pred, tau: float) -> float:
    """Mean quantile (pinball) loss of the predicted ``tau``-quantiles ``q_pred`` against ``y``:
    mean of max(tau (y - q), (tau - 1)(y - q))."""
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) or not 0 < tau < 1:
        raise ValueError(f"tau must be in (0, 1), got {tau!r}")
    y, q = _pair(y, q_pred)
    d = y - q
    return float(np.maximum(tau * d, (tau - 1) * d).mean())
