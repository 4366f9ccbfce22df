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

**Score scale** (:class:`ScoreScale`, ``evaluate.conformal_scale``): the rolling scores above are
taken ``spread``-scaled (|y - f| / s), or (a forecasting run's default since issue 23, part 4) on
the series' level-transform scale (``transform``:
|T(y) - T(f)| with T the log, the Box-Cox power or the identity the model reads the levels through;
the interval is then T⁻¹(T(f_k) ± q_k), asymmetric on the original scale). The spread scaling
transfers the selection model's calibration to the final model only as far as the two models'
spreads agree; the transform scale does not read the model's spread at all.

**Too few scores for a level** (:meth:`RollingConformal.multipliers`): a bounded quantile at level
1 - α needs n ≥ ⌈(1 - α)/α⌉ scores (19 at 95%, 99 at 99%), so a step uses its own scores only when
it has at least max(``min_per_step``, that many); the other steps share the pooled quantile of their
scores, or of all the steps' scores when that pool is still too small; when even all the scores are
too few the interval is unbounded (``inf``; its width is reported as None), never silently clamped.

The finite-sample quantile of n scores is the ⌈(n + 1)(1 - α)⌉-th smallest (Vovk et al. 2005;
Lei et al. 2018, "Distribution-free predictive inference for regression", JASA 113(523)); when
⌈(n + 1)(1 - α)⌉ > n the interval is unbounded (``inf``). The guarantee (coverage ≥ 1 - α) holds
for exchangeable residuals; residuals of a time series at consecutive origins, and the selection
model standing in for the final one, only approximate that -- which is why a run reports the
coverage on held-out data, not the guarantee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..boxcox import box_cox, check_power, inverse_box_cox

__all__ = ["SplitConformal", "RollingConformal", "ScoreScale", "SCALES", "conformal_quantile", "min_scores",
           "conformal_from_dict"]

SCALES = ("spread", "transform")


def conformal_quantile(scores, alpha: float) -> float:
    """The ⌈(n + 1)(1 - α)⌉-th smallest of ``scores`` (inf when that exceeds n)."""
    scores = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if scores.size == 0 or not np.isfinite(scores).all():
        raise ValueError("conformal scores must be a non-empty finite array")
    k = math.ceil((scores.size + 1) * (1 - alpha) - 1e-12)
    return float("inf") if k > scores.size else float(scores[k - 1])


def min_scores(alpha: float) -> int:
    """The fewest scores whose finite-sample (1 - α) quantile is bounded: ⌈(1 - α)/α⌉ (19 at α = 0.05)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return math.ceil((1 - alpha) / alpha - 1e-9)


@dataclass(frozen=True)
class ScoreScale:
    """Where rolling conformal scores are taken (see the module docstring): ``spread`` or ``transform``
    (with the series' level transform: ``log``, or Box-Cox ``power``, or neither: the identity)."""

    kind: str = "spread"
    log: bool = False
    power: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCALES:
            raise ValueError(f"evaluate.conformal_scale must be one of {', '.join(map(repr, SCALES))}, "
                             f"got {self.kind!r}")
        object.__setattr__(self, "power", check_power(self.power))
        if self.log and self.power is not None:
            raise ValueError("a conformal score scale takes log or a Box-Cox power, not both")

    def _t(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.log:
            if (x <= 0).any():
                raise ValueError("the log score scale needs positive actuals and forecasts")
            return np.log(x)
        return box_cox(x, self.power, "the actuals and forecasts") if self.power is not None else x

    def _inv(self, z: np.ndarray) -> np.ndarray:
        if self.log:
            return np.exp(z)
        return inverse_box_cox(z, self.power) if self.power is not None else z

    def scores(self, y, f, spread) -> np.ndarray:
        """Scores of actuals ``y`` against forecasts ``f`` with the model's ``spread`` (same shapes)."""
        if self.kind == "spread":
            return np.abs(np.asarray(y, dtype=np.float64) - f) / spread
        return np.abs(self._t(y) - self._t(f))

    def band(self, f, spread, half) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around ``f`` for score quantiles ``half`` (broadcast against ``f``)."""
        if self.kind == "spread":
            return f - half * spread, f + half * spread
        z = self._t(f)
        return self._inv(z - half), self._inv(z + half)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "log": self.log, "power": self.power}


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
    scale: ScoreScale = field(default_factory=ScoreScale)

    @classmethod
    def fit(cls, scores_by_step, min_per_step: int = 19, scale: ScoreScale | None = None) -> "RollingConformal":
        scores = [np.asarray(v, dtype=np.float64).ravel() for v in scores_by_step]
        if not scores or not scores[0].size:
            raise ValueError("rolling conformal calibration needs at least one score for step 1")
        if any(not np.isfinite(v).all() or (v < 0).any() for v in scores):
            raise ValueError("conformal scores must be finite and non-negative")
        if isinstance(min_per_step, bool) or not isinstance(min_per_step, int) or min_per_step < 1:
            raise ValueError(f"min_per_step must be an int >= 1, got {min_per_step!r}")
        return cls(scores, min_per_step, ScoreScale() if scale is None else scale)

    def to_dict(self) -> dict:
        return {"kind": "rolling", "scores": [v.tolist() for v in self.scores], "min_per_step": self.min_per_step,
                "scale": self.scale.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "RollingConformal":
        try:  # runs saved before the score scale was a choice: spread
            return cls.fit(d["scores"], int(d["min_per_step"]), ScoreScale(**d.get("scale", {})))
        except (KeyError, TypeError) as e:
            raise ValueError(f"a saved conformal calibration is malformed ({e})") from None

    @property
    def method(self) -> str:
        few = sum(len(v) < self.min_per_step for v in self.scores)
        on = "scaled by the model's spread" if self.scale.kind == "spread" else \
            f"on the {'log' if self.scale.log else 'level'} scale the model reads" + \
            (f" (Box-Cox {self.scale.power:g})" if self.scale.power is not None else "")
        return (f"rolling origins, {on}; {len(self.scores) - few} steps per step, "
                f"{few} pooled ({len(self.scores[0])} origins)")

    def multipliers(self, h: int, level: float) -> np.ndarray:
        """q_k for steps 1..h: the score quantiles (with ``spread``: the factor on the model's spread). A step
        uses its own scores when it has max(``min_per_step``, :func:`min_scores`) of them, else the pool."""
        if h > len(self.scores):
            raise ValueError(f"calibrated for {len(self.scores)} steps, asked for {h}")
        alpha = 1 - level
        need = max(self.min_per_step, min_scores(alpha))
        few = [v for v in self.scores if len(v) < need]
        pool = np.concatenate(few) if few else np.empty(0)
        if pool.size < need:
            pool = np.concatenate(self.scores)
        q_pool = conformal_quantile(pool, alpha) if few else None
        return np.array([conformal_quantile(v, alpha) if len(v) >= need else q_pool
                         for v in self.scores[:h]], dtype=np.float64)

    def interval(self, f, spread, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around forecasts ``f`` (R, h) with the model's ``spread`` (R, h)."""
        f, spread = np.atleast_2d(f), np.atleast_2d(spread)
        return self.scale.band(f, spread, self.multipliers(f.shape[1], level)[None])


def conformal_from_dict(d: dict) -> SplitConformal | RollingConformal:
    """A saved calibration: rolling (``kind: rolling``) or a split one of runs before issue 23."""
    if not isinstance(d, dict):
        raise ValueError(f"a saved conformal calibration is malformed (a {type(d).__name__})")
    return RollingConformal.from_dict(d) if d.get("kind") == "rolling" else SplitConformal.from_dict(d)
