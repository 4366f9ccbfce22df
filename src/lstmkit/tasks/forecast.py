"""Forecasting end to end: config -> series -> transforms -> LSTM forecaster -> rolling-origin
evaluation against statistical baselines -> run directory.

``train_forecaster(config, out_dir)`` is what ``lstmkit train`` runs for ``task: forecast``:

1. load the series (a named series, a wide CSV, a long CSV with a series-id column, or a
   ``.tsf`` file) and split each at ``data.test_start`` (or its last ``data.test_size`` steps);
   the test part ends at ``data.test_end`` (inclusive) or the end of the series;
2. carve the last ``val_size`` steps of every training part as validation; fit the transforms
   (per series) and the covariate standardisation on the rest; train each ensemble member with
   :func:`lstmkit.tasks.trainer.fit` on forking sequences (every origin of every series),
   selecting the epoch by validation loss; then (``refit: true``) refit the transforms on the
   whole training part and retrain from the same seed for the selected epochs with the same
   learning-rate schedule, so the last months before the test part are used too;
3. evaluate at rolling origins through the test part (``evaluate.horizon`` steps ahead, every
   ``evaluate.stride`` steps; each forecast reads every actual before its origin, never
   refits), and compute the baselines (``evaluate.baselines``: naive, seasonal naive, Naive2,
   drift, statsmodels' Holt-Winters and SARIMA) at the same origins, fitted on the same training
   part; point metrics (MAE, MSE, RMSE, MAPE, M4 sMAPE, MASE, OWA against Naive2) and interval
   coverage and width;
4. write the run directory: ``config.yaml``, ``model.safetensors`` + ``model.json``,
   ``metrics.json`` (``{"val", "test", "baselines", "origins", ...}``), ``history.json``,
   ``forecasts.csv``, ``forecast.png`` and ``report.md``.

Ensembles (``ensemble: K``) train K members from seeds ``train.seed * 1000 + i`` and average
their point forecasts on the model's scale; their sample paths are pooled for the intervals.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..checks import check_int
from ..checkpoint import META, atomic_write_bytes, load_checkpoint, save_checkpoint
from ..data.collate import pad_sequences
from ..data.series import (GAPS_HINT, Series, _read_csv, calendar_features, fill_gaps, future_times, load_series,
                           load_series_csv, load_series_long, load_tsf)
from ..data.transforms import SeriesTransform
from ..eval import forecast_metrics as fm
from ..eval.stat_baselines import make_baseline
from ..models import create_model
from ..models.registry import check_model_arguments
from ..models.forecaster import LSTMForecaster
from ..nn import LSTMState
from .config import dump_yaml, path_field, to_plain
from .runs import LOG_DIR
from .trainer import FitResult, TrainConfig, fit, seed_everything

__all__ = ["ForecastDataConfig", "EvalConfig", "ForecastConfig", "Forecaster", "ForecastStream", "Forecast",
           "load_forecast_series", "train_forecaster", "load_forecaster", "fit_forecaster", "read_forecast_input",
           "saved_series"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- configs


@dataclass
class ForecastDataConfig:
    """Where the series come from and where the test part starts."""

    name: str | None = None  # airline | sunspots | co2
    path: str | None = path_field()  # a user file: wide CSV, long CSV (with id_column) or .tsf
    time_column: str = "time"
    id_column: str | None = None  # long CSV: one row per (series id, time)
    targets: list[str] = field(default_factory=list)  # CSV target columns
    past_covariates: list[str] = field(default_factory=list)  # observed up to the origin only
    future_covariates: list[str] = field(default_factory=list)  # known ahead (must be given for the forecast window)
    calendar: list[str] | None = None  # calendar features from the timestamps; None: the defaults for the step
    gaps: Literal["interpolate", "error"] | None = None  # None: 'interpolate' for named series, 'error' for files
    test_start: str | int | None = None  # first test time, e.g. "1958-01" or 1921
    test_size: int | None = None  # or: the last N steps of every series
    test_end: str | int | None = None  # last test time (inclusive); None: the end of the series
    # an override of a key replaces these keys of the config file (lstmkit.tasks.config.drop_replaced)
    REPLACES: ClassVar[dict] = {"path": (("name",), "the dataset"), "test_size": (("test_start",), "the test split"),
                                "test_start": (("test_size",), "the test split")}

    def __post_init__(self) -> None:
        if (self.name is None) == (self.path is None):
            raise ValueError("data needs exactly one of 'name' (a named series) or 'path' (a CSV or .tsf file)")
        if (self.test_start is None) == (self.test_size is None):
            raise ValueError("data needs exactly one of 'test_start' (a time) or 'test_size' (steps per series)")
        if self.test_size is not None:
            check_int("data.test_size", self.test_size)
        if self.path is not None and not str(self.path).endswith(".tsf") and not self.targets:
            raise ValueError("data.targets: name the target column(s) of the CSV")
        if self.gaps not in (None, "interpolate", "error"):
            raise ValueError(f"data.gaps must be 'interpolate' or 'error', got {self.gaps!r}")
        overlap = set(self.targets) & set(self.past_covariates) | set(self.targets) & set(self.future_covariates) \
            | set(self.past_covariates) & set(self.future_covariates)
        if overlap:
            raise ValueError(f"data: columns {sorted(overlap)} are listed in more than one of targets, "
                             "past_covariates and future_covariates")


@dataclass
class EvalConfig:
    """How the test part is forecast and scored."""

    horizon: int = 1  # steps ahead from each origin (the model is trained for this horizon)
    stride: int | None = None  # steps between origins; None: the horizon (forecasts tile the test part)
    season: int = 1  # m of the seasonal naive, Naive2 and MASE's scale
    level: float = 0.8  # central prediction-interval level
    samples: int = 500  # sample paths per ensemble member for the intervals
    baselines: list[Any] = field(default_factory=lambda: ["naive", "drift"])  # names or {name: ..., kwargs}

    def __post_init__(self) -> None:
        for name in ("horizon", "season", "samples"):
            check_int(f"evaluate.{name}", getattr(self, name))
        if self.stride is not None:
            check_int("evaluate.stride", self.stride)
        if isinstance(self.level, bool) or not isinstance(self.level, (int, float)) or not 0 < self.level < 1:
            raise ValueError(f"evaluate.level must be in (0, 1), got {self.level!r}")
        for spec in self.baselines:
            make_baseline(spec)  # unknown names and arguments fail here, before training


@dataclass
class ForecastConfig:
    data: ForecastDataConfig
    transform: SeriesTransform = field(default_factory=SeriesTransform)
    model: dict[str, Any] = field(default_factory=lambda: {"head": "direct", "hidden_size": 32})
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    val_size: int | None = None  # validation steps at the end of each training part; None: max(horizon, 20%)
    ensemble: int = 1  # members trained from different seeds, averaged
    refit: bool = True  # retrain on training + validation for the epochs validation chose
    task: Literal["forecast"] = "forecast"

    def __post_init__(self) -> None:
        if self.task != "forecast":
            raise ValueError(f"task must be 'forecast' here, got {self.task!r}")
        if not isinstance(self.model, dict) or self.model.get("name", "lstm_forecaster") != "lstm_forecaster":
            raise ValueError(f"model must be a mapping for 'lstm_forecaster', got {self.model!r}")
        for key in ("num_targets", "horizon", "past_covariates", "future_covariates"):
            if key in self.model:
                raise ValueError(f"model.{key} is set from the data and evaluate.horizon; remove it")
        check_model_arguments("lstm_forecaster", (k for k in self.model if k != "name"))  # before any data loads
        check_int("ensemble", self.ensemble)
        if self.val_size is not None:
            check_int("val_size", self.val_size)
        if self.train.checkpoint_every != 1:  # an ensemble with a refit stage has no resumable checkpoints
            raise ValueError(f"train.checkpoint_every applies to classification runs (checkpoints and --resume); "
                             f"forecasting does not checkpoint, got {self.train.checkpoint_every}")


# ------------------------------------------------------------------------------- data


def load_forecast_series(d: ForecastDataConfig) -> list[Series]:
    """The configured series, columns ordered targets, past covariates, future covariates."""
    covs = [*d.past_covariates, *d.future_covariates]
    hint = "set data.gaps: interpolate"
    if d.name is not None:
        if covs or d.targets:
            raise ValueError("named series have fixed columns: leave data.targets and the covariates empty")
        return [load_series(d.name, gaps=d.gaps or "interpolate", gaps_hint=hint)]
    path, gaps = str(d.path), d.gaps or "error"
    if not os.path.exists(path):
        raise ValueError(f"data.path {path!r} does not exist")
    if path.endswith(".tsf"):
        if covs or d.id_column:
            raise ValueError(".tsf files hold targets only: leave covariates and id_column empty")
        return load_tsf(path, gaps=gaps, gaps_hint=hint)
    if d.id_column is not None:
        return load_series_long(path, d.time_column, d.id_column, d.targets, covs, gaps=gaps, gaps_hint=hint)
    return [load_series_csv(path, d.time_column, d.targets, covs, gaps=gaps, gaps_hint=hint)]


def _time_value(value, times: np.ndarray, what: str):
    if times.dtype.kind in "iu":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{what} must be an integer step for integer times, got {value!r}")
        return value
    try:
        return np.datetime64(str(value)).astype(times.dtype)
    except ValueError:
        raise ValueError(f"{what} must be a date like '1958-01' or '1921', got {value!r}") from None


def split_points(s: Series, d: ForecastDataConfig, horizon: int = 1) -> tuple[int, int]:
    """(n_train, n_end): the test part of ``s`` is rows [n_train, n_end), at least ``horizon``
    (evaluate.horizon) steps long."""
    n_end = len(s)
    if d.test_end is not None:
        n_end = int(np.searchsorted(s.times, _time_value(d.test_end, s.times, "data.test_end"), side="right"))
    if d.test_size is not None:
        n_train = n_end - d.test_size
    else:
        n_train = int(np.searchsorted(s.times, _time_value(d.test_start, s.times, "data.test_start")))
    if n_train <= 0 or n_train >= n_end:
        raise ValueError(f"series {s.name!r} ({s.times[0]} .. {s.times[-1]}): the test part [{d.test_start or ''}"
                         f"{'' if d.test_size is None else f'last {d.test_size}'} .. {d.test_end or 'end'}] leaves "
                         f"{max(n_train, 0)} training and {max(n_end - max(n_train, 0), 0)} test steps; both must be >= 1")
    if horizon > n_end - n_train:
        raise ValueError(f"series {s.name!r}: evaluate.horizon={horizon} is longer than its test part ({n_end - n_train} "
                         f"steps) from {s.times[n_train]} to {s.times[n_end - 1]}; shorten evaluate.horizon or lengthen "
                         "the test part (data.test_size, data.test_start or data.test_end)")
    return n_train, n_end


# ------------------------------------------------------------------------------- the forecaster


@dataclass
class Forecast:
    """Forecasts for the ``horizon`` steps after a history: times (h,), point (h, C) and the
    central ``level`` interval (h, C) each (None without a probabilistic model)."""

    times: np.ndarray
    point: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    level: float
    names: tuple[str, ...]


def _transform_dict(tf: SeriesTransform) -> dict:
    return {**asdict(tf), "mean": tf.mean_.tolist(), "std": tf.std_.tolist()}


def _transform_from(d: dict, where: str) -> SeriesTransform:
    try:
        power = d.get("power")  # runs saved before the Box-Cox option have none
        tf = SeriesTransform(bool(d["log"]), int(d["seasonal_period"]), bool(d["difference"]), bool(d["standardize"]),
                             None if power is None else float(power))
        tf.mean_, tf.std_ = np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: a transform is incomplete or malformed ({e})") from None
    if tf.mean_.shape != tf.std_.shape or tf.mean_.ndim != 1 or not (np.isfinite(tf.std_).all() and (tf.std_ > 0).all()):
        raise ValueError(f"{where}: a transform's mean/std are malformed")
    return tf


class Forecaster:
    """A trained forecaster (ensemble members, transforms, covariate scaling): forecasts from
    raw histories, in float64 so the batch and streaming paths agree to rounding."""

    def __init__(self, models: Sequence[LSTMForecaster], spec: dict, *, targets: Sequence[str],
                 past: Sequence[str], future: Sequence[str], calendar: Sequence[str], step: str,
                 transforms: dict[str, SeriesTransform], cov_mean: np.ndarray, cov_std: np.ndarray,
                 level: float = 0.8, samples: int = 500, seed: int = 0, meta: dict | None = None) -> None:
        self.models = [m.double().eval() for m in models]
        self.spec, self.step = dict(spec), step
        self.targets, self.past, self.future, self.calendar = tuple(targets), tuple(past), tuple(future), tuple(calendar)
        self.transforms = dict(transforms)
        self.cov_mean, self.cov_std = np.asarray(cov_mean, dtype=np.float64), np.asarray(cov_std, dtype=np.float64)
        self.level, self.samples, self.seed = float(level), int(samples), int(seed)
        self.meta = meta or {}

    @property
    def config(self):
        return self.models[0].config

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def columns(self) -> tuple[str, ...]:
        return self.targets + self.past + self.future

    def transform_for(self, name: str, history: np.ndarray | None = None) -> SeriesTransform:
        """The training transform of series ``name``; a single-series model uses its one transform
        for any history; a global model fits a new one on an unseen series' ``history``."""
        if name in self.transforms:
            return self.transforms[name]
        if len(self.transforms) == 1:
            return next(iter(self.transforms.values()))
        if history is None:
            raise ValueError(f"series {name!r} was not in training; give its history to fit its transform")
        tf = next(iter(self.transforms.values()))
        return tf.unfitted().fit(history)

    # ---- inputs
    def _covariates(self, cov: np.ndarray) -> np.ndarray:
        return (cov - self.cov_mean) / self.cov_std

    def _known(self, user_future: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(T, Fu) raw known covariates and (T,) times -> (T, F) model inputs (user ones scaled, then calendar)."""
        cal = calendar_features(times, self.step, self.calendar)[0] if self.calendar else np.zeros((len(times), 0))
        n_past = len(self.past)
        scaled = (user_future - self.cov_mean[n_past:]) / self.cov_std[n_past:] if self.future else user_future
        return np.concatenate([scaled, cal], axis=1)

    def inputs(self, values: np.ndarray, times: np.ndarray, tf: SeriesTransform) -> np.ndarray:
        """Raw rows (T, C+P+Fu) and their times -> encoder inputs (T - lost, C+P+F)."""
        C, lost = len(self.targets), tf.lost
        return self._row_inputs(tf.transform(values[:, :C]), values[lost:, C:], times[lost:])

    def _row_inputs(self, z: np.ndarray, cov: np.ndarray, times: np.ndarray) -> np.ndarray:
        """z (n, C), raw covariates (n, P+Fu), times (n,) -> encoder inputs (n, C+P+F)."""
        P = len(self.past)
        past = self._covariates(cov)[:, :P] if P else np.zeros((len(z), 0))
        return np.concatenate([z, past, self._known(cov[:, P:], times)], axis=1)

    def check_history(self, s: Series) -> None:
        if s.names[: len(self.columns)] != self.columns or len(s.names) != len(self.columns):
            raise ValueError(f"series {s.name!r} has columns {list(s.names)}; the model reads {list(self.columns)} "
                             "(targets, past covariates, future covariates)")
        if s.step != self.step:
            raise ValueError(f"series {s.name!r} has step {s.step!r}; the model was trained on step {self.step!r}")

    def _future_known(self, s_times: np.ndarray, horizon: int, future: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(the ``horizon`` forecast times, known inputs (N, F) for the whole trained window): the
        model reads all N steps whatever horizon is asked, so a forecast never depends on it."""
        times = future_times(s_times, self.step, self.horizon)
        N, Fu = self.horizon, len(self.future)
        if Fu:
            f = None if future is None else np.asarray(future, dtype=np.float64)
            if f is None or f.ndim != 2 or f.shape[1] != Fu or len(f) < N:
                raise ValueError(f"the model reads future covariates {list(self.future)}: give their values for all "
                                 f"{N} forecast steps of its trained horizon (whatever horizon is asked) as a "
                                 f"({N}, {Fu}) array, got {None if f is None else f.shape}")
            if not np.isfinite(f[:N]).all():
                raise ValueError(f"future covariates {list(self.future)} are missing (NaN) in the forecast window")
            user = f[:N]
        else:
            user = np.zeros((N, 0))
        return times[:horizon], self._known(user, times)

    def _check_horizon(self, horizon: int) -> None:
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or not 1 <= horizon <= self.horizon:
            raise ValueError(f"horizon must be an int in [1, {self.horizon}] (the model was trained for "
                             f"{self.horizon} steps; retrain with evaluate.horizon for longer), got {horizon!r}")

    # ---- the forecast from encoder states
    @torch.no_grad()
    def _finish(self, hs: list[torch.Tensor], states: list[LSTMState], z_last: np.ndarray, known: np.ndarray,
                tf: SeriesTransform, history: np.ndarray, times: np.ndarray, horizon: int, intervals: bool) -> Forecast:
        C = len(self.targets)
        kn = torch.as_tensor(known, dtype=torch.float64)[None] if known.shape[1] else None
        zl = torch.as_tensor(z_last, dtype=torch.float64)[None]
        points, paths = [], []
        gen = torch.Generator().manual_seed(self.seed)
        probabilistic = intervals and self.config.likelihood != "mse"
        for m, h, st in zip(self.models, hs, states):
            params = m.forecast(h, st, zl, kn)
            points.append(m.point(params)[0].numpy())
            if probabilistic:
                u = torch.rand(self.samples, 1, self.horizon, C, generator=gen, dtype=torch.float64)
                paths.append(m.forecast(h, st, zl, kn, draws=u)[:, 0].numpy())
        point = tf.inverse(np.mean(points, axis=0)[:horizon], history)
        lower = upper = None
        if probabilistic:
            levels = np.stack([tf.inverse(p[:horizon], history) for p in np.concatenate(paths)])
            a = (1 - self.level) / 2
            lower, upper = np.quantile(levels, a, axis=0), np.quantile(levels, 1 - a, axis=0)
        return Forecast(times, point, lower, upper, self.level, self.targets)

    def predict(self, history: Series, horizon: int, future: np.ndarray | None = None,
                intervals: bool = True) -> Forecast:
        """Forecast the ``horizon`` steps after ``history`` (a Series with the training columns)
        in one batched pass over it. ``future``: (N, Fu) values of the user's future covariates
        for the whole trained horizon N, whatever ``horizon`` is asked (calendar features are
        generated); the first k steps of a horizon-N forecast are the horizon-k forecast."""
        self._check_horizon(horizon)
        self.check_history(history)
        tf = self.transform_for(history.name, history.values[:, : len(self.targets)])
        if len(history) < tf.lost + 1:
            raise ValueError(f"the history has {len(history)} steps; the transform needs at least {tf.lost + 1}")
        x = torch.as_tensor(self.inputs(history.values, history.times, tf), dtype=torch.float64)[None]
        hs, states = [], []
        with torch.no_grad():
            for m in self.models:
                out, st = m.encode(x)
                hs.append(out[:, -1])
                states.append(st)
        times, known = self._future_known(history.times, horizon, future)
        C = len(self.targets)
        return self._finish(hs, states, x[0, -1, :C].numpy(), known, tf, history.values[:, :C], times, horizon,
                            intervals)

    def stream(self, name: str | None = None) -> "ForecastStream":
        """A stream fed one observation at a time (see :class:`ForecastStream`)."""
        return ForecastStream(self, name)

    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> None:
        state = {f"{i}.{k}": v.float() for i, m in enumerate(self.models) for k, v in m.state_dict().items()}
        meta = {"task": "forecast", "lstmkit_version": __version__, "model": to_plain(self.spec),
                "members": len(self.models), "targets": list(self.targets), "past_covariates": list(self.past),
                "future_covariates": list(self.future), "calendar": list(self.calendar), "step": self.step,
                "transforms": {k: _transform_dict(v) for k, v in self.transforms.items()},
                "covariates": {"mean": self.cov_mean.tolist(), "std": self.cov_std.tolist()},
                "level": self.level, "samples": self.samples, "seed": self.seed, **(extra or {})}
        save_checkpoint(directory, state, meta)


class ForecastStream:
    """Observations in, forecasts out, with the LSTM state carried between calls.

    ``update(row, time=None)`` reads one raw observation (C targets, then past and future
    covariates); ``forecast(horizon, future=None)`` forecasts from everything read so far,
    exactly as :meth:`Forecaster.predict` does from the same history in one batched pass (same
    points, same intervals). The first ``transform.lost`` observations only fill the
    differencing buffer.
    """

    def __init__(self, forecaster: Forecaster, name: str | None = None) -> None:
        self.f = forecaster
        self.name = name or next(iter(forecaster.transforms))
        self.tf = forecaster.transform_for(self.name)
        self.buffer: list[np.ndarray] = []  # the last lost + 1 raw rows
        self.times: list = []
        self.states: list[LSTMState | None] = [None] * len(forecaster.models)
        self.hs: list[torch.Tensor | None] = [None] * len(forecaster.models)
        self.z_last: np.ndarray | None = None
        self.count = 0

    def update(self, row, time=None) -> None:
        f = self.f
        row = np.asarray(row, dtype=np.float64).reshape(-1)
        if row.shape != (len(f.columns),):
            raise ValueError(f"an observation has {len(f.columns)} values {list(f.columns)}, got {row.shape[0]}")
        if not np.isfinite(row).all():
            raise ValueError("an observation holds NaN or inf; fill it before streaming (no gap policy applies here)")
        if time is None:
            if not self.times:
                raise ValueError("give the time of the first observation")
            time = future_times(np.asarray(self.times[-1:]), f.step, 1)[0]
        elif self.times:
            expected = future_times(np.asarray(self.times[-1:]), f.step, 1)[0]
            if np.asarray(time).astype(expected.dtype) != expected:
                raise ValueError(f"observation time {time} is not the next step after {self.times[-1]} "
                                 f"(expected {expected})")
        self.times = (self.times + [np.asarray(time)])[-2:]
        lost = self.tf.lost
        self.buffer = (self.buffer + [row])[-(lost + 1):]
        self.count += 1
        if self.count <= lost:
            return
        block = np.stack(self.buffer)
        C = len(f.targets)
        x = f._row_inputs(self.tf.transform(block[:, :C])[-1:], row[None, C:], np.asarray(self.times[-1:]))
        xt = torch.as_tensor(x, dtype=torch.float64)[None]
        with torch.no_grad():
            for i, m in enumerate(f.models):
                out, self.states[i] = m.encode(xt, state=self.states[i])
                self.hs[i] = out[:, -1]
        self.z_last = x[-1, :C]

    def forecast(self, horizon: int, future: np.ndarray | None = None, intervals: bool = True) -> Forecast:
        f = self.f
        f._check_horizon(horizon)
        if self.z_last is None:
            raise ValueError(f"the stream has read {self.count} observations; forecasting needs at least "
                             f"{self.tf.lost + 1}")
        times, known = f._future_known(np.asarray(self.times), horizon, future)
        return f._finish(self.hs, self.states, self.z_last, known, self.tf,
                         np.stack(self.buffer)[:, : len(f.targets)], times, horizon, intervals)


def load_forecaster(directory: str | os.PathLike) -> Forecaster:
    """A forecaster from a run directory (safetensors + JSON; nothing is unpickled)."""
    state, meta = load_checkpoint(directory)
    where = str(Path(directory) / META)
    if meta.get("task") != "forecast":
        raise ValueError(f"{where} is not a forecasting model (task {meta.get('task')!r})")
    try:
        spec = dict(meta["model"])
        members = int(meta["members"])
        transforms = {k: _transform_from(v, where) for k, v in dict(meta["transforms"]).items()}
        kwargs = dict(targets=list(meta["targets"]), past=list(meta["past_covariates"]),
                      future=list(meta["future_covariates"]), calendar=list(meta["calendar"]), step=str(meta["step"]),
                      cov_mean=np.asarray(meta["covariates"]["mean"], dtype=np.float64),
                      cov_std=np.asarray(meta["covariates"]["std"], dtype=np.float64),
                      level=float(meta["level"]), samples=int(meta["samples"]), seed=int(meta["seed"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: incomplete or malformed description ({e})") from None
    if not transforms or members < 1 or len(kwargs["cov_mean"]) != len(kwargs["past"]) + len(kwargs["future"]):
        raise ValueError(f"{where}: inconsistent description (members, transforms or covariate scaling)")
    spec.pop("name", None)
    models = []
    for i in range(members):
        m = create_model("lstm_forecaster", **spec)
        own = {k[len(f"{i}."):]: v for k, v in state.items() if k.startswith(f"{i}.")}
        try:
            m.load_state_dict(own)
        except RuntimeError as e:
            raise ValueError(f"{Path(directory)}: weights of member {i} do not fit the described model ({e})") from None
        models.append(m)
    if sum(len(m.state_dict()) for m in models) != len(state):
        raise ValueError(f"{Path(directory)}: the weights file holds tensors the description does not account for")
    return Forecaster(models, {"name": "lstm_forecaster", **spec}, transforms=transforms, meta=meta, **kwargs)


def read_forecast_input(path: str | os.PathLike, fc: Forecaster, time_column: str = "time", gaps: str = "error", *,
                        gaps_hint: str = GAPS_HINT) -> tuple[Series, np.ndarray | None]:
    """(history, future covariates) from a CSV with the model's columns. Rows after the last row
    with a target value are the forecast window: there the targets are empty and the model's
    future covariates must be given for the whole trained horizon (``future`` is None for models
    without any). Times are checked over all rows (sorted, unique, evenly spaced); gaps in the
    history follow ``gaps`` (``gaps_hint``: how an error names the setting that interpolates)."""
    path = str(path)
    C = len(fc.targets)
    times, values, _ = _read_csv(path, time_column, list(fc.targets), [*fc.past, *fc.future])
    Series(values, times, fc.columns, os.path.basename(path))  # the time checks, over history and window
    observed = np.flatnonzero(~np.isnan(values[:, :C]).all(axis=1))
    if not observed.size:
        raise ValueError(f"{path}: no row has a target value; the history is empty")
    n = int(observed[-1]) + 1
    history = Series(fill_gaps(values[:n], gaps, path, gaps_hint=gaps_hint), times[:n], fc.columns,
                     os.path.basename(path))
    if not fc.future:
        if n < len(values):
            raise ValueError(f"{path}: {len(values) - n} trailing rows without targets, but the model reads no future "
                             "covariates; remove them")
        return history, None
    if len(values) - n < fc.horizon:
        raise ValueError(f"{path}: {len(values) - n} rows after the last target value give the future covariates "
                         f"{list(fc.future)}; the model reads them for its whole trained horizon, whatever horizon is "
                         f"asked: give {fc.horizon} rows")
    return history, values[n:, C + len(fc.past):]


def saved_series(fc: Forecaster) -> list[Series]:
    """The series a run was trained on, reloaded from its recorded data source (whole series,
    test part included)."""
    data = fc.meta.get("data")
    if not data:
        raise ValueError("the run records no data source; pass --input")
    return load_forecast_series(ForecastDataConfig(**data))


# ------------------------------------------------------------------------------- training


def _batches(seqs: list[np.ndarray], batch_size: int, seed: int, origins: np.ndarray | None = None):
    """All sequences padded once; ``batches(epoch)`` shuffles which series share a batch."""
    x, lengths = pad_sequences(seqs, dtype=torch.float32)
    o = None if origins is None else torch.as_tensor(origins, dtype=torch.int64)

    def batches(epoch: int = 0):
        order = np.random.default_rng(seed + epoch).permutation(len(seqs)) if origins is None else np.arange(len(seqs))
        for i in range(0, len(order), batch_size):
            idx = torch.as_tensor(order[i : i + batch_size])
            n = lengths[idx]
            xb = x[idx, : int(n.max())]
            yield (xb, n) if o is None else (xb, n, o[idx])

    return batches


def _loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    return model.loss(*batch)


def _evaluate(model: nn.Module, batches) -> dict:
    total = count = 0.0
    for b in batches:
        n = float(b[2][:, 1].sub(b[2][:, 0]).clamp(min=0).sum())
        total += float(model.loss(*b)) * n
        count += n
    return {"loss": total / count}


@dataclass
class _Layout:
    """What the model reads, fitted on the training parts: transforms and covariate scaling."""

    transforms: dict[str, SeriesTransform]
    cov_mean: np.ndarray
    cov_std: np.ndarray


def _fit_layout(parts: list[Series], tcfg: SeriesTransform, C: int) -> _Layout:
    tfs = {}
    for s in parts:
        tfs[s.name] = tcfg.unfitted()
        try:
            tfs[s.name].fit(s.values[:, :C])
        except ValueError as e:
            raise ValueError(f"series {s.name!r}: {e}") from None
    cov = np.concatenate([s.values[:, C:] for s in parts])
    std = cov.std(axis=0)
    return _Layout(tfs, cov.mean(axis=0), np.where(std > 0, std, 1.0))


def _cut(s: Series, n: int) -> Series:
    return Series(s.values[:n], s.times[:n], s.names, s.name)


def _val_size(cfg: ForecastConfig, n_train: Sequence[int]) -> int:
    """Validation steps held out at the end of every training part."""
    return cfg.val_size or max(cfg.evaluate.horizon, round(0.2 * min(n_train)))


def fit_forecaster(series: list[Series], n_train: list[int], cfg: ForecastConfig, columns: tuple[list, list, list],
                   calendar: Sequence[str], member: int = 0, log_dir: Path | None = None
                   ) -> tuple[Forecaster, FitResult, dict, Forecaster]:
    """Train one member on the training parts ``series[i][:n_train[i]]``; returns (a one-member
    forecaster, the selection run's fit result, validation metrics at the selected epoch, the
    selection run's forecaster: fitted without the validation ends, for scoring them).
    ``log_dir``: where ``train.logger`` writes the selection run (the refit: its ``refit/`` folder)."""
    targets, past, future = columns
    C = len(targets)
    step = series[0].step
    horizon = cfg.evaluate.horizon
    lost = cfg.transform.seasonal_period + int(cfg.transform.difference)
    val = _val_size(cfg, n_train)
    for s, n in zip(series, n_train):
        if n - val < lost + 2:
            raise ValueError(f"series {s.name!r}: its training part has {n} steps; holding out val_size={val} for "
                             f"validation and {lost} for the differencing leaves fewer than 2 to train on; "
                             "shorten val_size or the differencing, or move the test start later")
    seed = cfg.train.seed * 1000 + member
    spec = {"name": "lstm_forecaster", **cfg.model, "num_targets": C, "horizon": horizon,
            "past_covariates": len(past), "future_covariates": len(future) + 2 * len(calendar)}

    def wrap(model: nn.Module, layout: _Layout) -> Forecaster:
        """The model (trained in float32) for use: a Forecaster holds its models in float64."""
        return Forecaster([model], spec, targets=targets, past=past, future=future, calendar=calendar, step=step,
                          transforms=layout.transforms, cov_mean=layout.cov_mean, cov_std=layout.cov_std,
                          level=cfg.evaluate.level, samples=cfg.evaluate.samples, seed=cfg.train.seed)

    def make(layout: _Layout, ends: list[int]) -> tuple[nn.Module, list[np.ndarray], Forecaster]:
        """A fresh float32 model, its training inputs up to ``ends``, and an input builder."""
        seed_everything(seed)
        model = create_model("lstm_forecaster", **{k: v for k, v in spec.items() if k != "name"})
        builder = Forecaster([], spec, targets=targets, past=past, future=future, calendar=calendar, step=step,
                             transforms=layout.transforms, cov_mean=layout.cov_mean, cov_std=layout.cov_std)
        seqs = [builder.inputs(s.values[:e], s.times[:e], layout.transforms[s.name]) for s, e in zip(series, ends)]
        return model, seqs, builder

    # 1. selection: fit on the training parts minus validation, validate on the held-out ends
    fit_ends = [n - val for n in n_train]
    layout = _fit_layout([_cut(s, e) for s, e in zip(series, fit_ends)], cfg.transform, C)
    model, seqs, builder = make(layout, fit_ends)
    val_seqs = [builder.inputs(s.values[:n], s.times[:n], layout.transforms[s.name]) for s, n in zip(series, n_train)]
    origins = np.array([[e - lost - 1, n - lost] for e, n in zip(fit_ends, n_train)])
    tc = cfg.train
    result = fit(model, _batches(seqs, tc.batch_size, seed), list(_batches(val_seqs, 256, 0, origins)()),
                 _loss, _evaluate, tc, log_dir=log_dir)
    val_metrics = dict(result.best)
    selection = wrap(model, layout)
    if not cfg.refit:
        return selection, result, val_metrics, selection
    # 2. refit on whole training parts for the chosen epochs with the same learning rates
    layout = _fit_layout([_cut(s, n) for s, n in zip(series, n_train)], cfg.transform, C)
    model, seqs, _ = make(layout, n_train)
    schedule = [row["lr"] for row in result.history[: result.best_epoch]]
    fit(model, _batches(seqs, tc.batch_size, seed), [], _loss, _evaluate, tc, lr_schedule=schedule,
        log_dir=None if log_dir is None else log_dir / "refit")
    return wrap(model, layout), result, val_metrics, selection


# ------------------------------------------------------------------------------- evaluation


def _origins(n_train: int, n_end: int, horizon: int, stride: int) -> list[int]:
    return list(range(n_train, n_end - horizon + 1, stride))


def _scores(y: np.ndarray, f: np.ndarray, insample: list[np.ndarray], m: int, lower=None, upper=None) -> dict:
    """Per-forecast metrics (rows: one origin of one target of one series) averaged over rows."""
    mse = fm.mse(y.ravel(), f.ravel())  # pooled over all forecasts, as the RMSE
    out = {"mae": fm.mae(y, f), "mse": mse, "rmse": float(np.sqrt(mse)), "smape": fm.smape(y, f)}
    try:
        out["mape"] = fm.mape(y, f)
    except ValueError:
        out["mape"] = None  # an actual is 0
    out["mase"] = float(np.mean([fm.mase(a, b, ins, m) for a, b, ins in zip(y, f, insample)]))
    if lower is not None:
        out["coverage"] = fm.coverage(y, lower, upper)
        out["width"] = fm.mean_width(lower, upper)
    return out


def evaluate_forecasts(fc: Forecaster, series: list[Series], splits: list[tuple[int, int]], cfg: ForecastConfig
                       ) -> tuple[dict, dict, list[dict]]:
    """(model metrics, {baseline: metrics}, per-forecast rows) at rolling origins over the test parts."""
    e = cfg.evaluate
    C, P = len(fc.targets), len(fc.past)
    stride = e.stride or e.horizon
    rows, ins, Y, F_, L, U = [], [], [], [], [], []
    base_specs = list(e.baselines)
    if not any((b if isinstance(b, str) else b.get("name")) == "naive2" for b in base_specs):
        base_specs.append({"name": "naive2", "m": e.season})  # OWA's reference, always computed
    bases = {}
    base_out: dict[str, dict[str, list]] = {}
    for s, (n_train, n_end) in zip(series, splits):
        fitted = []
        for c in range(C):
            bs = [make_baseline(b) for b in base_specs]
            for b in bs:
                b.fit(s.values[:n_train, c])
            fitted.append(bs)
        for o in _origins(n_train, n_end, e.horizon, stride):
            hist = _cut(s, o)
            future = s.values[o : o + e.horizon, C + P:] if fc.future else None
            out = fc.predict(hist, e.horizon, future)
            actual = s.values[o : o + e.horizon, :C]
            for c in range(C):
                Y.append(actual[:, c])
                F_.append(out.point[:, c])
                ins.append(s.values[:n_train, c])
                if out.lower is not None:
                    L.append(out.lower[:, c])
                    U.append(out.upper[:, c])
                for b in fitted[c]:
                    d = base_out.setdefault(b.name, {"f": [], "lo": [], "hi": []})
                    d["f"].append(b.forecast(s.values[:o, c], e.horizon))
                    iv = b.interval(s.values[:o, c], e.horizon, e.level)
                    if iv is not None:
                        d["lo"].append(iv[0])
                        d["hi"].append(iv[1])
                    bases[b.name] = b
                for k in range(e.horizon):
                    rows.append({"series": s.name, "target": fc.targets[c], "origin": str(s.times[o]),
                                 "time": str(s.times[o + k]), "step": k + 1, "actual": float(actual[k, c]),
                                 "forecast": float(out.point[k, c]),
                                 "lower": None if out.lower is None else float(out.lower[k, c]),
                                 "upper": None if out.upper is None else float(out.upper[k, c]),
                                 **{name: float(d["f"][-1][k]) for name, d in base_out.items()}})
    Y, F_ = np.array(Y), np.array(F_)
    model = _scores(Y, F_, ins, e.season, np.array(L) if L else None, np.array(U) if U else None)
    baselines = {}
    for name, d in base_out.items():
        full = len(d["lo"]) == len(d["f"])
        baselines[name] = _scores(Y, np.array(d["f"]), ins, e.season, np.array(d["lo"]) if full else None,
                                  np.array(d["hi"]) if full else None)
    n2 = next(v for k, v in baselines.items() if k.startswith("naive2"))
    for scores in [model, *baselines.values()]:
        scores["owa"] = 0.5 * (scores["smape"] / n2["smape"] + scores["mase"] / n2["mase"])
    model["n_forecasts"] = len(Y)
    return model, baselines, rows


def _validation_scores(selection: Forecaster, series: list[Series], splits: list[tuple[int, int]],
                       cfg: ForecastConfig) -> tuple[dict, dict]:
    """The test metrics, measured instead on the validation ends of the training parts by the
    selection runs (fitted without them), at rolling origins like the test; baselines fitted on the
    same shortened parts. What recipes are compared on: the test split stays unseen. Empty when
    the validation end is shorter than the horizon."""
    val = cfg.val_size or max(cfg.evaluate.horizon, round(0.2 * min(n for n, _ in splits)))
    if val < cfg.evaluate.horizon:
        return {}, {}
    scores, baselines, _ = evaluate_forecasts(selection, [_cut(s, n) for s, (n, _) in zip(series, splits)],
                                              [(n - val, n) for n, _ in splits], cfg)
    return scores, baselines


# ------------------------------------------------------------------------------- the run


def _members(members: list[Forecaster]) -> Forecaster:
    """One forecaster averaging one-member forecasters fitted on the same data (same transforms)."""
    first = members[0]
    return Forecaster([m.models[0] for m in members], first.spec, targets=first.targets, past=first.past,
                      future=first.future, calendar=first.calendar, step=first.step, transforms=first.transforms,
                      cov_mean=first.cov_mean, cov_std=first.cov_std, level=first.level, samples=first.samples,
                      seed=first.seed)


def _ensemble(series: list[Series], n_train: list[int], cfg: ForecastConfig, columns, calendar, log_root: Path
              ) -> tuple[Forecaster, list[FitResult], list[dict], Forecaster]:
    """(the ensemble, fit results, validation losses, the ensemble of the selection runs); member i
    logs to ``log_root/member-<i+1>`` when ``train.logger`` is set."""
    members, results, vals, selections = [], [], [], []
    for i in range(cfg.ensemble):
        f, r, v, sel = fit_forecaster(series, n_train, cfg, columns, calendar, member=i,
                                      log_dir=log_root / f"member-{i + 1}")
        members.append(f)
        results.append(r)
        vals.append(v)
        selections.append(sel)
        log.info(f"member {i + 1}/{cfg.ensemble}: best epoch {r.best_epoch}, val_loss {v['loss']:.4f}, {r.seconds:.1f}s")
    return _members(members), results, vals, _members(selections)


def _parameters(config: ForecastConfig, targets: int, calendar: int) -> int:
    d = config.data
    spec = {k: v for k, v in config.model.items() if k != "name"}
    model = create_model("lstm_forecaster", **spec, num_targets=targets, horizon=config.evaluate.horizon,
                         past_covariates=len(d.past_covariates),
                         future_covariates=len(d.future_covariates) + 2 * calendar)
    return sum(p.numel() for p in model.parameters())


def train_forecaster(config: ForecastConfig, out_dir: str | os.PathLike) -> dict:
    """Run one forecasting experiment and write its run directory; returns metrics.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = config.data
    series = load_forecast_series(d)
    steps = {s.step for s in series}
    if len(steps) != 1:
        raise ValueError(f"the series have different steps {sorted(steps)}; a model reads one step size")
    names = [s.name for s in series]
    if len(set(names)) != len(names):
        raise ValueError("series names must be unique (they key the per-series transforms)")
    C = len(series[0].names) - len(d.past_covariates) - len(d.future_covariates)
    targets = list(series[0].names[:C])
    columns = (targets, list(d.past_covariates), list(d.future_covariates))
    calendar = calendar_features(series[0].times, series[0].step, d.calendar)[1] if (d.calendar is None or d.calendar) \
        else ()
    calendar = tuple(dict.fromkeys(n.rsplit("_", 1)[0] for n in calendar))
    splits = [split_points(s, d, config.evaluate.horizon) for s in series]
    val = _val_size(config, [n for n, _ in splits])
    inputs = len(series[0].names) + 2 * len(calendar)
    log.info(f"data {d.name or d.path}: {len(series)} series, step {series[0].step}, "
             f"{sum(n for n, _ in splits) - val * len(series)} train / {val * len(series)} validation / "
             f"{sum(e - n for n, e in splits)} test steps, {C} target(s) + {inputs - C} input feature(s), horizon "
             f"{config.evaluate.horizon}; lstm_forecaster, {_parameters(config, C, len(calendar)):,} parameters "
             f"per member x {config.ensemble}")
    start = time.perf_counter()
    shutil.rmtree(out / LOG_DIR, ignore_errors=True)  # an earlier run's, in a directory being reused
    fc, results, vals, selection = _ensemble(series, [n for n, _ in splits], config, columns, calendar, out / LOG_DIR)
    train_seconds = time.perf_counter() - start
    val, val_baselines = _validation_scores(selection, series, splits, config)
    test, baselines, rows = evaluate_forecasts(fc, series, splits, config)
    e = config.evaluate
    metrics = {"val": {"loss": float(np.mean([v["loss"] for v in vals])), **val}, "val_baselines": val_baselines,
               "test": test, "baselines": baselines,
               "horizon": e.horizon, "stride": e.stride or e.horizon, "level": e.level, "season": e.season,
               "train_seconds": round(train_seconds, 3), "epochs": [r.epochs for r in results],
               "best_epoch": [r.best_epoch for r in results], "ensemble": config.ensemble, "seed": config.train.seed,
               "threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in fc.models[0].parameters()),
               "n_series": len(series), "test_start": str(series[0].times[splits[0][0]]),
               "test_end": str(series[0].times[splits[0][1] - 1])}
    resolved = to_plain(config)
    atomic_write_bytes(out / "config.yaml", dump_yaml(resolved).encode())
    fc.save(out, {"data": to_plain(asdict(d)), "train_seed": config.train.seed})
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=1, allow_nan=False).encode())
    atomic_write_bytes(out / "history.json", json.dumps([r.history for r in results], indent=1).encode())
    _write_rows(out / "forecasts.csv", rows)
    from ..eval.report import write_forecast_report

    write_forecast_report(out, config=resolved, metrics=metrics, series=series, splits=splits, rows=rows,
                          environment=f"lstmkit {__version__}, torch {torch.__version__}, {platform.machine()}, "
                                      f"{torch.get_num_threads()} thread(s)")
    return metrics


def _write_rows(path: Path, rows: list[dict]) -> None:
    import csv
    import io

    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
    atomic_write_bytes(path, buf.getvalue().encode())
