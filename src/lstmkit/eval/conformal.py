"""Split-conformal prediction intervals for multi-step forecasts.

Calibration residuals come from forecasts the model did not see the actuals of (in a forecasting
run: the selection model's rolling-origin forecasts over the validation end of the training part;
never the test part). For a forecast ``f`` (R, h) with actuals ``y`` and the model's predictive
spread ``s`` (R, h) (the width of its own central interval), the interval at level 1 - α is

- **per step** (every step has at least ``min_per_step`` residuals): f_k ± q_k, q_k the
  finite-sample quantile of the absolute residuals |y - f| of step k;
- **pooled** (fewer): f_k ± q · s_k, q the finite-sample quantile of the normalised residuals
  |y - f| / s pooled over all steps -- the model's spread carries how uncertainty grows with the
  step, the calibration only rescales it.

The finite-sample quantile of n scores is the ⌈(n + 1)(1 - α)⌉-th smallest (Vovk et al. 2005;
Lei et al. 2018, "Distribution-free predictive inference for regression", JASA 113(523)); when
⌈(n + 1)(1 - α)⌉ > n the interval is unbounded (``inf``). The guarantee (coverage ≥ 1 - α) holds
for exchangeable residuals; residuals of a time series at consecutive origins, and the selection
model standing in for the final one, only approximate that -- which is why a run reports the
coverage on held-out data, not the guarantee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SplitConformal", "conformal_quantile"]


def conformal_quantile(scores, alpha: float) -> float:
    """The ⌈(n + 1)(1 - α)⌉-th smallest of ``scores`` (inf when that exceeds n)."""
    scores = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if scores.size == 0 or not np.isfinite(scores).all():
        raise ValueError("conformal scores must be a non-empty finite array")
    k = math.ceil((scores.size + 1) * (1 - alpha) - 1e-12)
    return float("inf") if k > scores.size else float(scores[k - 1])


@dataclass
class SplitConformal:
    """Calibrated on (y, f, spread), each (R, h): see the module docstring."""

    residuals: np.ndarray  # (R, h) absolute residuals
    normalised: np.ndarray  # (R, h) residuals over the model's spread
    per_step: bool

    @classmethod
    def fit(cls, y, f, spread, min_per_step: int = 19) -> "SplitConformal":
        """``min_per_step``: residuals each step needs for per-step quantiles (19: enough for a
        bounded 95% interval, ⌈20 · 0.95⌉ = 19); with fewer, the steps are pooled."""
        y, f, spread = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (y, f, spread))
        if not y.shape == f.shape == spread.shape or y.size == 0:
            raise ValueError(f"actuals, forecasts and spreads must have the same (R, h) shape, got {y.shape}, "
                             f"{f.shape}, {spread.shape}")
        if (spread <= 0).any() or not np.isfinite(spread).all():
            raise ValueError("the model's spread must be positive and finite")
        r = np.abs(y - f)
        return cls(r, r / spread, len(r) >= min_per_step)

    def to_dict(self) -> dict:
        """Plain lists, for a run's ``model.json`` (what ``lstmkit evaluate`` rebuilds it from)."""
        return {"residuals": self.residuals.tolist(), "normalised": self.normalised.tolist(), "per_step": self.per_step}

    @classmethod
    def from_dict(cls, d: dict) -> "SplitConformal":
        try:
            return cls(np.asarray(d["residuals"], dtype=np.float64), np.asarray(d["normalised"], dtype=np.float64),
                       bool(d["per_step"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"a saved conformal calibration is malformed ({e})") from None

    @property
    def method(self) -> str:
        return "per step" if self.per_step else "pooled over steps, scaled by the model's spread"

    def interval(self, f, spread, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around forecasts ``f`` (R, h) with the model's ``spread`` (R, h)."""
        f, spread = np.atleast_2d(f), np.atleast_2d(spread)
        alpha = 1 - level
        if self.per_step:
            if f.shape[1] > self.residuals.shape[1]:
                raise ValueError(f"calibrated for {self.residuals.shape[1]} steps, asked for {f.shape[1]}")
            half = np.array([conformal_quantile(self.residuals[:, k], alpha) for k in range(f.shape[1])])[None]
        else:
            half = conformal_quantile(self.normalised, alpha) * spread
        return f - half, f + half
