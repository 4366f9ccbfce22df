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

**Rolling** (:class:`RollingConformal`, what a forecasting run calibrates since issue 23): the
calibration forecasts start at *every* origin of the validation end (stride 1), each running to
the end of the training part (so step k has one score per origin at least k steps before that
end), and every score is scaled: |y - f| / s. Step k's interval is f_k ± q_k · s_k with q_k the
finite-sample quantile of step k's scaled scores when it has at least ``min_per_step`` of them,
else of the scores of all the steps that have fewer (pooled; all steps when even that pool is
too small) -- many more scores per step than one window of test-like origins gives.

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

__all__ = ["SplitConformal", "RollingConformal", "conformal_quantile", "conformal_from_dict"]


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


@dataclass
class RollingConformal:
    """Calibrated on ragged scaled scores by step (see the module docstring): ``scores[k]`` holds
    |y - f| / s of step k + 1 over the calibration origins that reach it."""

    scores: list[np.ndarray]
    min_per_step: int = 19

    @classmethod
    def fit(cls, scores_by_step, min_per_step: int = 19) -> "RollingConformal":
        scores = [np.asarray(v, dtype=np.float64).ravel() for v in scores_by_step]
        if not scores or not scores[0].size:
            raise ValueError("rolling conformal calibration needs at least one score for step 1")
        if any(not np.isfinite(v).all() or (v < 0).any() for v in scores):
            raise ValueError("conformal scores must be finite and non-negative")
        if isinstance(min_per_step, bool) or not isinstance(min_per_step, int) or min_per_step < 1:
            raise ValueError(f"min_per_step must be an int >= 1, got {min_per_step!r}")
        return cls(scores, min_per_step)

    def to_dict(self) -> dict:
        return {"kind": "rolling", "scores": [v.tolist() for v in self.scores], "min_per_step": self.min_per_step}

    @classmethod
    def from_dict(cls, d: dict) -> "RollingConformal":
        try:
            return cls.fit(d["scores"], int(d["min_per_step"]))
        except (KeyError, TypeError) as e:
            raise ValueError(f"a saved conformal calibration is malformed ({e})") from None

    @property
    def method(self) -> str:
        few = sum(len(v) < self.min_per_step for v in self.scores)
        return (f"rolling origins, scaled by the model's spread; {len(self.scores) - few} steps per step, "
                f"{few} pooled ({len(self.scores[0])} origins)")

    def multipliers(self, h: int, level: float) -> np.ndarray:
        """q_k for steps 1..h: the factor on the model's spread."""
        if h > len(self.scores):
            raise ValueError(f"calibrated for {len(self.scores)} steps, asked for {h}")
        alpha = 1 - level
        few = [v for v in self.scores if len(v) < self.min_per_step]
        pool = np.concatenate(few) if few else np.empty(0)
        if pool.size < self.min_per_step:
            pool = np.concatenate(self.scores)
        q_pool = conformal_quantile(pool, alpha) if few else None
        return np.array([conformal_quantile(v, alpha) if len(v) >= self.min_per_step else q_pool
                         for v in self.scores[:h]], dtype=np.float64)

    def interval(self, f, spread, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around forecasts ``f`` (R, h) with the model's ``spread`` (R, h)."""
        f, spread = np.atleast_2d(f), np.atleast_2d(spread)
        half = self.multipliers(f.shape[1], level)[None] * spread
        return f - half, f + half


def conformal_from_dict(d: dict) -> SplitConformal | RollingConformal:
    """A saved calibration: rolling (``kind: rolling``) or a split one of runs before issue 23."""
    if not isinstance(d, dict):
        raise ValueError(f"a saved conformal calibration is malformed (a {type(d).__name__})")
    return RollingConformal.from_dict(d) if d.get("kind") == "rolling" else SplitConformal.from_dict(d)
