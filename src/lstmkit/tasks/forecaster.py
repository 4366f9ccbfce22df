"""A trained forecaster in use: forecasts from raw histories, streamed or batched, and its run files.

:class:`Forecaster` holds the ensemble members with the per-series transforms and the covariate
scaling fitted at training time, and forecasts (points and intervals) from a raw history;
:class:`ForecastStream` does the same one observation at a time with the LSTM state carried
between calls; :func:`load_forecaster` reads one back from a run directory (safetensors + JSON,
nothing unpickled) and :func:`read_forecast_input` reads a user's CSV history for it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .. import __version__
from ..checkpoint import META, load_checkpoint, save_checkpoint
from ..data.series import GAPS_HINT, Series, _read_csv, calendar_features, fill_gaps, future_times
from ..data.transforms import SeriesTransform
from ..models import create_model
from ..models.forecaster import LSTMForecaster
from ..nn import LSTMState
from .config import to_plain

__all__ = ["Forecast", "Forecaster", "ForecastStream", "load_forecaster", "read_forecast_input"]


@dataclass
class Forecast:
    """Forecasts for the ``horizon`` steps after a history: times (h,), point (h, C), the
    central ``level`` interval (h, C) each and the sample paths they come from (S, h, C) (None
    without a probabilistic model)."""

    times: np.ndarray
    point: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    level: float
    names: tuple[str, ...]
    samples: np.ndarray | None = None

    def quantiles(self, probs) -> np.ndarray:
        """(len(probs), h, C) quantiles of the sample paths."""
        if self.samples is None:
            raise ValueError("this forecast has no sample paths (a model trained with likelihood 'mse')")
        return np.quantile(self.samples, probs, axis=0)


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
        self.models = [m.double().cpu().eval() for m in models]  # NumPy in and out: on the CPU, whatever trained them
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
        lower = upper = levels = None
        if probabilistic:
            levels = np.stack([tf.inverse(p[:horizon], history) for p in np.concatenate(paths)])
            a = (1 - self.level) / 2
            lower, upper = np.quantile(levels, a, axis=0), np.quantile(levels, 1 - a, axis=0)
        return Forecast(times, point, lower, upper, self.level, self.targets, levels)

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


def read_forecast_input(path: str | os.PathLike, fc: Forecaster, time_column: str | None = None, gaps: str = "error", *,
                        gaps_hint: str = GAPS_HINT) -> tuple[Series, np.ndarray | None]:
    """(history, future covariates) from a CSV with the model's columns (``time_column``: default the
    one the run was trained on, else ``time``). Rows after the last row
    with a target value are the forecast window: there the targets are empty and the model's
    future covariates must be given for the whole trained horizon (``future`` is None for models
    without any). Times are checked over all rows (sorted, unique, evenly spaced); gaps in the
    history follow ``gaps`` (``gaps_hint``: how an error names the setting that interpolates)."""
    path = str(path)
    C = len(fc.targets)
    if time_column is None:
        time_column = (fc.meta.get("data") or {}).get("time_column", "time")
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


