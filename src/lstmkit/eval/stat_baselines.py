"""Statistical baselines behind one interface: fit once on the training part, forecast from any
longer history with the parameters estimated on that training part.

A rolling-origin evaluation then runs without refitting: ``b = make_baseline(spec).fit(train)``,
and at each origin ``b.forecast(y[:origin], h)``, where ``y[:len(train)]`` must be ``train``. The
state is updated with the new actuals (SARIMA is re-filtered, Holt-Winters re-smoothed); the
parameters are not re-estimated.

Names (``make_baseline`` takes the name, or ``{"name": ..., **kwargs}``):

- ``naive``, ``seasonal_naive`` (``m``), ``drift``, ``naive2`` (``m``): the functions of
  :mod:`lstmkit.eval.baselines` applied to the whole history (``fit`` only records ``train``).
  Intervals for the first three are the normal-theory ones of Hyndman & Athanasopoulos,
  *Forecasting: Principles and Practice* (3rd ed.), section 5.5, with σ from the training part;
  ``naive2`` has none.
- ``holt_winters`` (``trend``, ``seasonal``, ``seasonal_periods``, ``damped``, ``log``,
  ``power``, ``n_paths``, ``seed``): statsmodels' ``ExponentialSmoothing``, initial states and smoothing
  parameters estimated on ``train``. Intervals are quantiles of ``n_paths`` simulated paths with
  normal errors (σ from the training fit), seeded by ``seed``.
- ``sarima`` (``order``, ``seasonal_order``, ``trend``, ``log``, ``power``): statsmodels' ``SARIMAX``
  fitted by maximum likelihood on ``train``; longer histories are re-filtered with
  ``SARIMAXResults.apply``. Intervals are statsmodels' Gaussian ones.

With ``log=True`` the model is fitted to ``log(y)`` and forecasts are ``exp`` of the log-scale
forecasts (the median, not the mean, on the original scale); intervals are transformed likewise.
``power=λ`` does the same with the Box-Cox transform of :mod:`lstmkit.boxcox` (λ = 0.5:
the square root), so a baseline can be fitted on the scale the LSTM reads.

statsmodels is imported only when a statsmodels baseline is fitted (``pip install statsmodels``).
"""

from __future__ import annotations

import difflib
import inspect
from statistics import NormalDist
from typing import Callable

import numpy as np

from ..boxcox import box_cox, check_power, inverse_box_cox
from ..checks import check_int
from . import baselines
from .baseline_checks import _choice, _flag, _int_tuple, _positive, _series, _statsmodels, _statsmodels_notices, _z

__all__ = ["Baseline", "make_baseline", "list_baselines"]

_REGISTRY: dict[str, type["Baseline"]] = {}


def _register(name: str) -> Callable[[type["Baseline"]], type["Baseline"]]:
    def wrap(cls: type["Baseline"]) -> type["Baseline"]:
        if name in _REGISTRY:
            raise ValueError(f"baseline {name!r} is already registered")
        _REGISTRY[name] = cls
        return cls

    return wrap


def list_baselines() -> list[str]:
    """The names ``make_baseline`` accepts."""
    return sorted(_REGISTRY)


def _unknown(kind: str, name: object, valid) -> ValueError:
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=2)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "."
    return ValueError(f"unknown {kind} {name!r}{hint} Valid: {', '.join(valid)}")


def make_baseline(spec: str | dict) -> "Baseline":
    """A baseline from its name (defaults) or from ``{"name": ..., **kwargs}``, not yet fitted.

    ``make_baseline({"name": "sarima", "order": (1, 1, 0), "seasonal_order": (0, 1, 0, 12)})``.
    Unknown names or keyword arguments raise ``ValueError`` listing the valid ones.
    """
    if isinstance(spec, str):
        name, kwargs = spec, {}
    elif isinstance(spec, dict):
        if "name" not in spec:
            raise ValueError(f"a baseline spec dict needs a 'name' key (one of {', '.join(list_baselines())}), "
                             f"got keys {sorted(spec)}")
        kwargs = dict(spec)
        name = kwargs.pop("name")
    else:
        raise TypeError(f"spec must be a baseline name or a dict with a 'name' key, got {type(spec).__name__}")
    if not isinstance(name, str) or name not in _REGISTRY:
        raise _unknown("baseline", name, _REGISTRY)
    cls = _REGISTRY[name]
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p in params if p != "self"]
    for key in kwargs:
        if key not in valid:
            raise _unknown(f"argument for baseline {name!r}", key, valid)
    missing = [p for p in valid if params[p].default is inspect.Parameter.empty and p not in kwargs]
    if missing:
        raise ValueError(f"baseline {name!r} needs {', '.join(missing)}, e.g. {{'name': {name!r}, "
                         f"{missing[0]!r}: 12}}")
    return cls(**kwargs)


# --- the interface -----------------------------------------------------------------------------

class Baseline:
    """Fit once on ``train`` (T0,), then forecast (h,) from any history (T,), T >= T0, that starts
    with ``train``, keeping the parameters estimated on ``train``.

    Subclasses set ``name`` and implement ``_fit``, ``_forecast`` and, if they have intervals,
    ``_interval``; the public methods check their arguments first.
    """

    name: str = "baseline"
    min_train: int = 1

    def __init__(self) -> None:
        self.train_: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}{'' if self.train_ is None else f' fitted on {len(self.train_)}'}>"

    def fit(self, train) -> "Baseline":
        """Estimate the parameters on ``train``, a finite 1-D array (T0,). Returns ``self``."""
        train = _series(train, "train")
        if len(train) < self.min_train:
            raise ValueError(f"train has {len(train)} values; {self.name} needs at least {self.min_train}")
        self._fit(train)
        self.train_ = train.copy()
        return self

    def _check(self, history, h) -> np.ndarray:
        if self.train_ is None:
            raise ValueError(f"{self.name} is not fitted: call fit(train) first")
        history = _series(history, "history")
        n = len(self.train_)
        if len(history) < n or not np.array_equal(history[:n], self.train_):
            raise ValueError(f"history (length {len(history)}) must start with the {n} training values {self.name} "
                             f"was fitted on")
        check_int("horizon h", h)
        return history

    def forecast(self, history, h: int) -> np.ndarray:
        """Point forecasts (h,) for the h steps after ``history`` (T,), float64."""
        history = self._check(history, h)
        return np.asarray(self._forecast(history, int(h)), dtype=np.float64)

    def interval(self, history, h: int, level: float = 0.8) -> tuple[np.ndarray, np.ndarray] | None:
        """Central prediction interval ``(lower, upper)``, each (h,), with coverage ``level``;
        None when the method has no intervals."""
        history = self._check(history, h)
        z = _z(level)
        return self._interval(history, int(h), float(level), z)

    def predictive(self, history, h: int, n: int = 1000) -> np.ndarray | None:
        """Draws (n, h) from each step's predictive distribution (for CRPS and quantile losses), on
        the series' scale; None without one. A normal prediction gives its quantiles at (i + ½)/n."""
        history = self._check(history, h)
        check_int("n (draws)", n, 2)
        return self._predictive(history, int(h), int(n))

    def _predictive(self, history: np.ndarray, h: int, n: int) -> np.ndarray | None:
        g = self._gaussian(history, h)
        if g is None:
            return None
        mu, sd = g
        grid = np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])
        return self._to_series(mu[None] + sd[None] * grid[:, None])

    def _gaussian(self, history: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean, standard deviation), each (h,), of a normal prediction (on the model's scale);
        None when the method has none."""
        return None

    def _to_series(self, x: np.ndarray) -> np.ndarray:
        """Values on the model's scale -> the series' scale (the identity here)."""
        return x

    def _fit(self, train: np.ndarray) -> None:
        pass

    def _forecast(self, history: np.ndarray, h: int) -> np.ndarray:
        raise NotImplementedError

    def _interval(self, history: np.ndarray, h: int, level: float, z: float):
        g = self._gaussian(history, h)  # a normal prediction: mean ± z sd
        return None if g is None else (self._to_series(g[0] - z * g[1]), self._to_series(g[0] + z * g[1]))


# --- simple baselines: lstmkit.eval.baselines on the whole history ----------------------------

@_register("naive")
class Naive(Baseline):
    """Last value. Interval σ_h = σ√h, σ² the mean square of the training one-step differences."""

    name = "naive"
    min_train = 2

    def _fit(self, train):
        self.sigma_ = float(np.sqrt(np.mean(np.diff(train) ** 2)))

    def _forecast(self, history, h):
        return baselines.naive(history, h)

    def _gaussian(self, history, h):
        return self._forecast(history, h), self.sigma_ * np.sqrt(np.arange(1, h + 1))


@_register("seasonal_naive")
class SeasonalNaive(Baseline):
    """The last season repeated. Interval σ_h = σ√(k+1), k = floor((h-1)/m), σ² the mean square
    of the training lag-m differences."""

    def __init__(self, m: int):
        super().__init__()
        self.m = check_int("m (seasonal period)", m)
        self.name = f"seasonal_naive({self.m})"
        self.min_train = self.m + 1

    def _fit(self, train):
        self.sigma_ = float(np.sqrt(np.mean((train[self.m:] - train[:-self.m]) ** 2)))

    def _forecast(self, history, h):
        return baselines.seasonal_naive(history, h, self.m)

    def _gaussian(self, history, h):
        return self._forecast(history, h), self.sigma_ * np.sqrt(np.arange(h) // self.m + 1)


@_register("drift")
class Drift(Baseline):
    """Line through the first and last values. Interval σ_h = σ√(h(1 + h/T)), σ the standard
    deviation (ddof 1) of the training one-step differences, T the length of the history the
    slope is taken from."""

    name = "drift"
    min_train = 3

    def _fit(self, train):
        self.sigma_ = float(np.std(np.diff(train), ddof=1))

    def _forecast(self, history, h):
        return baselines.drift(history, h)

    def _gaussian(self, history, h):
        steps = np.arange(1, h + 1)
        return self._forecast(history, h), self.sigma_ * np.sqrt(steps * (1 + steps / len(history)))


@_register("naive2")
class Naive2(Baseline):
    """M4's Naive2 (seasonally adjusted naive, period ``m``); no intervals."""

    def __init__(self, m: int):
        super().__init__()
        self.m = check_int("m (seasonal period)", m)
        self.name = f"naive2({self.m})"

    def _forecast(self, history, h):
        return baselines.naive2(history, h, self.m)


# --- statsmodels baselines ---------------------------------------------------------------------

class _LogScale(Baseline):
    """Shared ``log`` / ``power`` handling: the model sees ``log(y)`` when ``log=True``, the
    Box-Cox transform of ``y`` when ``power`` is set."""

    log: bool = False
    power: float | None = None

    def _scale(self, log, power) -> list[str]:
        """Check and set ``log`` and ``power``; the name flags they add."""
        self.log = _flag(log, "log")
        self.power = check_power(power)
        if self.log and self.power is not None:
            raise ValueError("log and power are two ways to transform the series; set one of them")
        return ["log"] * self.log + ([] if self.power is None else [f"power={self.power:g}"])

    def _to_model(self, x: np.ndarray, what: str) -> np.ndarray:
        if self.power is not None:
            return box_cox(x, self.power, what)
        if not self.log:
            return x
        _positive(x, what, "log=True")
        return np.log(x)

    def _from_model(self, x: np.ndarray) -> np.ndarray:
        if self.power is not None:
            return inverse_box_cox(x, self.power)
        return np.exp(x) if self.log else x

    def _to_series(self, x: np.ndarray) -> np.ndarray:
        return self._from_model(x)  # monotone: quantiles map to quantiles


@_register("holt_winters")
class HoltWinters(_LogScale):
    """Holt-Winters exponential smoothing (statsmodels ``ExponentialSmoothing``).

    ``trend``/``seasonal``: "add", "mul" or None; ``seasonal_periods`` is needed with a seasonal
    component; ``damped`` damps the trend. A longer history is re-smoothed from the initial
    states and with the smoothing parameters estimated on ``train``. Intervals: quantiles of
    ``n_paths`` simulated paths (additive normal errors, σ from the training fit, seed ``seed``).
    """

    def __init__(self, trend: str | None = "add", seasonal: str | None = "add", seasonal_periods: int | None = None,
                 damped: bool = False, log: bool = False, n_paths: int = 1000, seed: int = 0,
                 power: float | None = None):
        super().__init__()
        self.trend = _choice(trend, "trend", ("add", "mul", None))
        self.seasonal = _choice(seasonal, "seasonal", ("add", "mul", None))
        self.damped = _flag(damped, "damped")
        scale = self._scale(log, power)
        if self.damped and self.trend is None:
            raise ValueError("damped=True needs a trend ('add' or 'mul'), got trend=None")
        if self.seasonal is None:
            if seasonal_periods is not None:
                raise ValueError(f"seasonal_periods={seasonal_periods!r} given but seasonal=None; "
                                 f"set seasonal to 'add' or 'mul', or drop seasonal_periods")
            self.seasonal_periods = None
        else:
            if seasonal_periods is None:
                raise ValueError(f"seasonal={self.seasonal!r} needs seasonal_periods (an int >= 2, e.g. 12) "
                                 f"or seasonal=None")
            self.seasonal_periods = check_int("seasonal_periods", seasonal_periods, 2)
        self.n_paths = check_int("n_paths", n_paths, 10)
        self.seed = check_int("seed", seed, 0)
        parts = [str(self.trend).lower(), str(self.seasonal).lower()]
        if self.seasonal_periods is not None:
            parts.append(str(self.seasonal_periods))
        parts += ["damped"] * self.damped + scale
        self.name = f"holt_winters({','.join(parts)})"
        self.min_train = 2 * self.seasonal_periods if self.seasonal_periods else 3

    def _model(self, y: np.ndarray, **init):
        hw = _statsmodels("statsmodels.tsa.holtwinters")
        return hw.ExponentialSmoothing(y, trend=self.trend, damped_trend=self.damped, seasonal=self.seasonal,
                                       seasonal_periods=self.seasonal_periods, **init)

    def _fit(self, train):
        y = self._to_model(train, "train")
        with _statsmodels_notices(self.name):
            self.result_ = self._model(y, initialization_method="estimated").fit()
        p = self.result_.params
        self.params_ = {
            "smoothing_level": float(p["smoothing_level"]),
            "smoothing_trend": float(p["smoothing_trend"]) if self.trend else None,
            "smoothing_seasonal": float(p["smoothing_seasonal"]) if self.seasonal else None,
            "damping_trend": float(p["damping_trend"]) if self.damped else None,
        }
        self.initial_ = {
            "initial_level": float(p["initial_level"]),
            "initial_trend": float(p["initial_trend"]) if self.trend else None,
            "initial_seasonal": np.asarray(p["initial_seasons"], dtype=np.float64) if self.seasonal else None,
        }
        # the same σ statsmodels' simulate() would use, but frozen at the training fit
        m = self.seasonal_periods or 1
        n_params = 2 + 2 * (self.trend is not None) + (m + 1) * (self.seasonal is not None) + self.damped
        resid = y - self.result_.fittedvalues
        self.sigma_ = float(np.sqrt(np.sum(resid ** 2) / max(len(resid) - n_params, 1)))

    def _result(self, history: np.ndarray):
        """Smoothing of ``history`` from the training initial states with the training parameters
        (on ``history == train`` this reproduces the training fit)."""
        y = self._to_model(history, "history")
        model = self._model(y, initialization_method="known", **{k: v for k, v in self.initial_.items() if v is not None})
        with _statsmodels_notices(self.name):
            return model.fit(optimized=False, **self.params_)

    def _forecast(self, history, h):
        return self._from_model(np.asarray(self._result(history).forecast(h)))

    def _interval(self, history, h, level, z):
        errors = np.random.default_rng(self.seed).standard_normal((h, self.n_paths)) * self.sigma_
        with _statsmodels_notices(self.name):
            paths = np.asarray(self._result(history).simulate(h, repetitions=self.n_paths, random_errors=errors))
        lower, upper = np.quantile(paths.reshape(h, self.n_paths), [(1 - level) / 2, (1 + level) / 2], axis=1)
        return self._from_model(lower), self._from_model(upper)

    def _predictive(self, history, h, n):
        """``n`` simulated paths (as the intervals, seed ``seed``)."""
        errors = np.random.default_rng(self.seed).standard_normal((h, n)) * self.sigma_
        with _statsmodels_notices(self.name):
            paths = np.asarray(self._result(history).simulate(h, repetitions=n, random_errors=errors))
        return self._from_model(paths.reshape(h, n).T)


@_register("sarima")
class Sarima(_LogScale):
    """Seasonal ARIMA (statsmodels ``SARIMAX``), maximum likelihood on ``train``.

    ``order`` (p, d, q), ``seasonal_order`` (P, D, Q, m); ``trend`` as in SARIMAX: None, "n",
    "c", "t", "ct" or a list of polynomial coefficients' flags. A longer history is re-filtered
    with the training parameters (``SARIMAXResults.apply``); intervals are statsmodels' Gaussian
    ones (``get_forecast(h).conf_int``).
    """

    def __init__(self, order: tuple = (1, 1, 0), seasonal_order: tuple = (0, 0, 0, 0), trend: str | list | None = None,
                 log: bool = False, power: float | None = None):
        super().__init__()
        self.order = _int_tuple(order, "order (p, d, q)", 3)
        self.seasonal_order = _int_tuple(seasonal_order, "seasonal_order (P, D, Q, m)", 4)
        P, D, Q, m = self.seasonal_order
        if (P or D or Q) and m < 2:
            raise ValueError(f"seasonal_order {self.seasonal_order} has seasonal terms but period m={m}; m must be >= 2")
        if isinstance(trend, (list, tuple)):
            if not all(v in (0, 1) for v in trend):
                raise ValueError(f"trend as a list must hold 0/1 flags, got {trend!r}")
            self.trend = [int(v) for v in trend]
        else:
            self.trend = _choice(trend, "trend", (None, "n", "c", "t", "ct"))
        flags = ([] if self.trend in (None, "n") else [f"trend={self.trend}"]) + self._scale(log, power)
        self.name = (f"sarima({','.join(map(str, self.order))})({','.join(map(str, self.seasonal_order))})"
                     + (f"[{','.join(flags)}]" if flags else ""))
        d, D = self.order[1], self.seasonal_order[1]
        self.min_train = d + D * m + max(self.order[0] + self.order[2], (P + Q) * m, 1) + 2

    def _fit(self, train):
        sarimax = _statsmodels("statsmodels.tsa.statespace.sarimax")
        y = self._to_model(train, "train")
        model = sarimax.SARIMAX(y, order=self.order, seasonal_order=self.seasonal_order, trend=self.trend)
        with _statsmodels_notices(self.name):
            self.result_ = model.fit(disp=False)

    def _result(self, history: np.ndarray):
        """``history`` re-filtered with the training parameters."""
        with _statsmodels_notices(self.name):
            return self.result_.apply(self._to_model(history, "history"))

    def _forecast(self, history, h):
        return self._from_model(np.asarray(self._result(history).forecast(h)))

    def _interval(self, history, h, level, z):
        with _statsmodels_notices(self.name):
            bounds = np.asarray(self._result(history).get_forecast(h).conf_int(alpha=1 - level))
        return self._from_model(bounds[:, 0]), self._from_model(bounds[:, 1])

    def _gaussian(self, history, h):
        with _statsmodels_notices(self.name):
            f = self._result(history).get_forecast(h)
            return np.asarray(f.predicted_mean, dtype=np.float64), np.asarray(f.se_mean, dtype=np.float64)
