"""Argument checks and statsmodels access shared by :mod:`lstmkit.eval.stat_baselines`."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from statistics import NormalDist
from typing import Iterator

import numpy as np

from ..checks import require

log = logging.getLogger("lstmkit.eval.stat_baselines")

def _series(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array of shape (T,), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} must be finite (NaN or inf found at index {int(np.flatnonzero(~np.isfinite(x))[0])})")
    return x


def _choice(value, what: str, valid: tuple) -> object:
    if value not in valid:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, valid))}, got {value!r}")
    return value


def _flag(value, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be True or False, got {value!r}")
    return bool(value)


def _int_tuple(value, what: str, length: int) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) != length or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in value):
        raise ValueError(f"{what} must be a tuple of {length} non-negative ints, got {value!r}")
    return tuple(int(v) for v in value)


def _positive(x: np.ndarray, what: str, why: str) -> None:
    if (x <= 0).any():
        raise ValueError(f"{what} has non-positive values (min {x.min():g}); {why} needs a positive series")


def _z(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise ValueError(f"level must be a coverage probability strictly between 0 and 1, got {level!r}")
    return NormalDist().inv_cdf(0.5 + float(level) / 2)


def _statsmodels(module: str):
    return require(module, f"the holt_winters and sarima baselines need {module!r}", "data", pip="statsmodels")


@contextmanager
def _statsmodels_notices(what: str) -> Iterator[None]:
    """Log, instead of raising, the notices statsmodels gives for every fit on some series.

    ConvergenceWarning: the optimiser stopped at its iteration limit; the estimate is still the
    best found, and a baseline must not fail on it. UserWarning "Non-stationary starting
    autoregressive parameters" / "Non-invertible starting MA parameters": SARIMAX replaced its
    own starting values by zeros before optimising, which is harmless. Any other warning is
    re-issued unchanged.
    """
    ConvergenceWarning = _statsmodels("statsmodels.tools.sm_exceptions").ConvergenceWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, ConvergenceWarning) or (
                issubclass(w.category, UserWarning) and text.startswith(("Non-stationary starting", "Non-invertible starting"))):
            log.warning("%s: %s", what, text)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
