"""The Box-Cox transform (Box & Cox 1964) for lambda > 0, shared by the forecasting transforms
(:mod:`lstmkit.data.transforms`) and the statistical baselines (:mod:`lstmkit.eval.stat_baselines`),
so the LSTM and a baseline read a series on exactly the same scale (numpy only).

``box_cox(y, lam) = (y^lam - 1) / lam`` for ``y >= 0``; ``lam = 0.5`` is (twice) the square root
shifted by -2. Its inverse maps values below the floor ``-1/lam`` (the image of 0) to 0, the lower
bound of the series, rather than to NaN. ``lam = 0`` is the log, which callers spell ``log=True``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_cox", "inverse_box_cox", "check_power"]


def check_power(power, what: str = "power") -> float | None:
    """``power`` as a Box-Cox lambda (a finite number > 0), or None."""
    if power is None:
        return None
    if isinstance(power, bool) or not isinstance(power, (int, float, np.integer, np.floating)) \
            or not np.isfinite(power) or power <= 0:
        raise ValueError(f"{what} must be null or a Box-Cox lambda > 0 (log: true is lambda = 0), got {power!r}")
    return float(power)


def box_cox(y: np.ndarray, power: float, what: str = "the series") -> np.ndarray:
    """(y^λ - 1) / λ with λ = ``power`` > 0; ``y`` must be >= 0."""
    if (y < 0).any():
        raise ValueError(f"power (Box-Cox lambda {power:g}) needs {what} >= 0; found negative values")
    return (y ** power - 1.0) / power


def inverse_box_cox(z: np.ndarray, power: float) -> np.ndarray:
    """The inverse of :func:`box_cox`; values below its floor -1/λ (the image of 0) map to 0."""
    return np.maximum(power * z + 1.0, 0.0) ** (1.0 / power)
