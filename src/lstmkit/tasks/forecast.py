"""Forecasting end to end: config -> series -> transforms -> LSTM forecaster -> rolling-origin
evaluation against statistical baselines -> run directory.

``train_forecaster(config, out_dir)`` is what ``lstmkit train`` runs for ``task: forecast``: the run
lifecycle (:func:`lstmkit.tasks.lifecycle.run_task`) over the steps this module declares (:data:`STEPS`):

1. load the series (a named series, a wide CSV, a long CSV with a series-id column, or a
   ``.tsf`` file) and split each at ``data.test_start`` (or its last ``data.test_size`` steps);
   the test part ends at ``data.test_end`` (inclusive) or the end of the series;
2. carve the last ``val_size`` steps of every training part as validation; fit the transforms
   (per series) and the covariate standardisation on the rest; train each ensemble member with
   :func:`lstmkit.tasks.trainer.fit` on forking sequences (every origin of every series),
   selecting the epoch on the forecasts from every origin of the validation ends by ``select``
   (:func:`lstmkit.tasks.forecast_scoring.epoch_scores`); then (``refit: true``) refit the transforms on the
   whole training part and retrain from the same seed for the selected epochs with the same
   learning-rate schedule, so the last months before the test part are used too;
3. evaluate at rolling origins through the test part (``evaluate.horizon`` steps ahead, every
   ``evaluate.stride`` steps; each forecast reads every actual before its origin, never
   refits), and compute the baselines (``evaluate.baselines``: naive, seasonal naive, Naive2,
   drift, statsmodels' Holt-Winters and SARIMA) at the same origins, fitted on the same training
   part; point metrics (MAE, MSE, RMSE, MAPE, M4 sMAPE, MASE, OWA against Naive2), CRPS and
   pinball losses, interval coverage (per level and per step; the model's sample-path intervals
   and split-conformal ones calibrated on the validation end, :mod:`lstmkit.tasks.forecast_scoring`)
   and width;
4. the run directory: the lifecycle's files, with ``forecasts.csv`` and ``forecast.png``.

Ensembles (``ensemble: K``) train K members from seeds ``train.seed * 1000 + i`` and average
their point forecasts on the model's scale; their sample paths are pooled for the intervals.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..checkpoint import atomic_write_bytes
from ..data.collate import pad_sequences
from ..data.series import Series, calendar_features, load_series, load_series_csv, load_series_long, load_tsf
from ..data.splits import series_validation, split_points
from ..data.transforms import SeriesTransform
from ..eval.conformal import SCALES
from ..eval.stat_baselines import make_baseline
from ..models import create_model
from ..models.registry import check_model_arguments
from . import forecast_io
from .config import path_field, to_plain
from .forecast_scoring import (choose_intervals, epoch_scores, evaluate_forecasts, rows_csv, transform_scale,
                               validation_scores)
from .forecaster import Forecast, Forecaster, ForecastStream, load_forecaster, read_forecast_input
from .lifecycle import Run, Scores, Steps, Trained, run_task
from .registry import Task, Tuning, register_task
from .runs import MODEL
from .trainer import FitResult, TrainConfig, fit, seed_everything

__all__ = ["ForecastDataConfig", "EvalConfig", "ForecastConfig", "Forecaster", "ForecastStream", "Forecast",
           "load_forecast_series", "train_forecaster", "load_forecaster", "fit_forecaster", "read_forecast_input",
           "saved_series", "split_points"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- configs


@dataclass
class ForecastDataConfig:
    """Where the series come from and where the test part starts."""

    name: str | None = None  # airline | sunspots | co2 | co2-monthly
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
    # the model's sample-path intervals, split-conformal ones, or per run the one closer to nominal on the
    # validation end (auto, the default: lstmkit.tasks.forecast_scoring.choose_intervals; the run records its
    # choice; without a validation end to calibrate on it is the model's)
    intervals: Literal["model", "conformal", "auto"] = "auto"
    # conformal calibration on the validation end: every origin there (rolling) or the test-like origins (window)
    calibration: Literal["rolling", "window"] = "rolling"
    # where rolling conformal scores are taken: |T(y) - T(f)| on the level transform's scale (log / Box-Cox /
    # identity; the default since issue 23 part 4, chosen on the development folds) or |y - f| over the model's
    # spread (parts 2-3); lstmkit.eval.conformal.ScoreScale, docs/forecast.md protocol 6
    conformal_scale: Literal["spread", "transform"] = "transform"
    baselines: list[Any] = field(default_factory=lambda: ["naive", "drift"])  # names or {name: ..., kwargs}

    def __post_init__(self) -> None:
        for name in ("horizon", "season", "samples"):
            check_int(f"evaluate.{name}", getattr(self, name))
        if self.stride is not None:
            check_int("evaluate.stride", self.stride)
        if self.intervals not in ("model", "conformal", "auto"):
            raise ValueError(f"evaluate.intervals must be one of 'model', 'conformal', 'auto', got {self.intervals!r}")
        if self.calibration not in ("rolling", "window"):
            raise ValueError(f"evaluate.calibration must be 'rolling' or 'window', got {self.calibration!r}")
        if self.conformal_scale not in SCALES:
            raise ValueError(f"evaluate.conformal_scale must be {' or '.join(map(repr, SCALES))}, "
                             f"got {self.conformal_scale!r}")
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
    # what picks each member's epoch on the validation end (every origin there) and steps the plateau: the
    # training loss ('loss', the likelihood's NLL), the point forecasts' squared error on the model's scale
    # ('mse') or on the scale before the differencing ('level': for a log series, the relative error)
    select: Literal["loss", "mse", "level"] = "loss"
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
        if self.select not in ("loss", "mse", "level"):
            raise ValueError(f"select must be one of 'loss', 'mse', 'level', got {self.select!r}")
        if self.val_size is not None:
            check_int("val_size", self.val_size)


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


def fit_forecaster(series: list[Series], n_train: list[int], cfg: ForecastConfig, columns: tuple[list, list, list],
                   calendar: Sequence[str], member: int = 0, run: Run | None = None
                   ) -> tuple[Forecaster, FitResult, dict, Forecaster]:
    """Train one member on the training parts ``series[i][:n_train[i]]``; returns (a one-member
    forecaster, the selection run's fit result, validation metrics at the selected epoch, the
    selection run's forecaster: fitted without the validation ends, for scoring them).
    ``run``: the run this member is part of; its selection run is the stage ``member-<i>`` and its refit
    ``member-<i>/refit`` (:meth:`lstmkit.tasks.lifecycle.Run.stage`: checkpointed there, logged under
    ``RUN/tensorboard/``), so a resumed run continues where this member stopped. None (a backtest's
    refit): trained without checkpoints or logs."""
    targets, past, future = columns
    C = len(targets)
    step = series[0].step
    horizon = cfg.evaluate.horizon
    lost = cfg.transform.seasonal_period + int(cfg.transform.difference)
    val, fit_ends = series_validation(n_train, cfg.val_size, horizon)
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
    layout = _fit_layout([s.head(e) for s, e in zip(series, fit_ends)], cfg.transform, C)
    model, seqs, builder = make(layout, fit_ends)
    val_seqs = [builder.inputs(s.values[:n], s.times[:n], layout.transforms[s.name]) for s, n in zip(series, n_train)]
    origins = np.array([[e - lost - 1, n - lost] for e, n in zip(fit_ends, n_train)])
    tc = cfg.train
    stage = run.stage if run is not None else _unrecorded(tc)
    name = f"member-{member + 1}"
    scales = np.stack([transform_scale(layout.transforms[s.name], C) for s in series])
    evaluate = epoch_scores(cfg.select, scales, cfg.transform)
    result = stage(name, model, _batches(seqs, tc.batch_size, seed), list(_batches(val_seqs, 256, 0, origins)()),
                   _loss, evaluate)
    val_metrics = dict(result.best)
    selection = wrap(model, layout)
    if not cfg.refit:
        return selection, result, val_metrics, selection
    # 2. refit on whole training parts for the chosen epochs with the same learning rates
    layout = _fit_layout([s.head(n) for s, n in zip(series, n_train)], cfg.transform, C)
    model, seqs, _ = make(layout, n_train)
    schedule = [row["lr"] for row in result.history[: result.best_epoch]]
    stage(f"{name}/refit", model, _batches(seqs, tc.batch_size, seed), [], _loss, evaluate, lr_schedule=schedule,
          meta={"member": member})
    return wrap(model, layout), result, val_metrics, selection


def _unrecorded(tc: TrainConfig):
    """A stage outside any run (a backtest's refit): the shared loop, without checkpoints or logs."""
    def stage(name, model, batches, val, loss, evaluate, lr_schedule=None, meta=None) -> FitResult:
        return fit(model, batches, val, loss, evaluate, tc, lr_schedule=lr_schedule)

    return stage


# ------------------------------------------------------------------------------- the run


def _members(members: list[Forecaster]) -> Forecaster:
    """One forecaster averaging one-member forecasters fitted on the same data (same transforms)."""
    first = members[0]
    return Forecaster([m.models[0] for m in members], first.spec, targets=first.targets, past=first.past,
                      future=first.future, calendar=first.calendar, step=first.step, transforms=first.transforms,
                      cov_mean=first.cov_mean, cov_std=first.cov_std, level=first.level, samples=first.samples,
                      seed=first.seed)


def fit_ensemble(series: list[Series], n_train: list[int], cfg: ForecastConfig, columns, calendar,
                 run: Run | None = None) -> tuple[Forecaster, list[FitResult], list[dict], Forecaster]:
    """(the ensemble, fit results, validation losses, the ensemble of the selection runs) trained on
    ``series[i][:n_train[i]]``; member i trains as ``run``'s stages ``member-<i+1>`` and
    ``member-<i+1>/refit`` (:func:`fit_forecaster`); ``run`` None: no checkpoints (a backtest's refit)."""
    members, results, vals, selections = [], [], [], []
    for i in range(cfg.ensemble):
        f, r, v, sel = fit_forecaster(series, n_train, cfg, columns, calendar, member=i, run=run)
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


@dataclass
class _Data:
    """The prepared series, and what training and scoring leave for the later steps."""

    series: list[Series]
    splits: list[tuple[int, int]]
    columns: tuple[list, list, list]
    calendar: tuple[str, ...]
    fc: Forecaster | None = None  # the ensemble
    selection: Forecaster | None = None  # the ensemble of the selection runs (scores the validation ends)
    results: list[FitResult] = field(default_factory=list)
    val_losses: list[dict] = field(default_factory=list)
    conformal: Any = None  # calibrated on the validation ends, used on the test part
    intervals: str = "model"  # the kind scored on the test part (evaluate.intervals, 'auto' resolved on validation)
    rows: list[dict] = field(default_factory=list)  # the test forecasts


def _prepare(config: ForecastConfig) -> _Data:
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
    val = series_validation([n for n, _ in splits], config.val_size, config.evaluate.horizon)[0]
    inputs = len(series[0].names) + 2 * len(calendar)
    log.info(f"data {d.name or d.path}: {len(series)} series, step {series[0].step}, "
             f"{sum(n for n, _ in splits) - val * len(series)} train / {val * len(series)} validation / "
             f"{sum(e - n for n, e in splits)} test steps, {C} target(s) + {inputs - C} input feature(s), horizon "
             f"{config.evaluate.horizon}; lstm_forecaster, {_parameters(config, C, len(calendar)):,} parameters "
             f"per member x {config.ensemble}")
    return _Data(series, splits, columns, calendar)


def _train(run: Run, data: _Data) -> None:
    """The ensemble's members, each a selection run and a refit (stages of the role ``model``, which is
    the whole ensemble: its members' parameters and epochs summed)."""
    start = time.perf_counter()
    data.fc, data.results, data.val_losses, data.selection = fit_ensemble(
        data.series, [n for n, _ in data.splits], run.config, data.columns, data.calendar, run)
    seconds = time.perf_counter() - start
    run.add(MODEL, Trained(nn.ModuleList(data.fc.models), seconds=seconds, result=FitResult(
        history=[r.history for r in data.results], epochs=sum(r.epochs for r in data.results))))


def _score(run: Run, data: _Data, part: str) -> Scores:
    """``val``: the selection runs on the validation ends (and the conformal calibration from them);
    ``test``: the ensemble at rolling origins through the test part. The statistical baselines are
    roles without a network."""
    e = run.config.evaluate
    if part == "val":
        val, baselines, data.conformal = validation_scores(data.selection, data.series, data.splits, run.config)
        model = {"loss": float(np.mean([v["loss"] for v in data.val_losses])), **val}
        data.intervals = e.intervals if data.conformal is not None else "model"
        if e.intervals == "auto" and data.conformal is None:
            log.info("evaluate.intervals auto: the model's (no validation forecasts to calibrate or compare on)")
        elif e.intervals == "auto":
            data.intervals, model["intervals_gap"] = choose_intervals(val, e.level)
            model["intervals_chosen"] = data.intervals
            log.info(f"evaluate.intervals auto: {data.intervals} (mean |coverage - level| on validation: "
                     + ", ".join(f"{k} {v:.3f}" for k, v in model["intervals_gap"].items()) + ")")
    else:
        config = replace(run.config, evaluate=replace(e, intervals=data.intervals))
        model, baselines, data.rows = evaluate_forecasts(data.fc, data.series, data.splits, config, data.conformal)
    for label in baselines:
        if label not in run.roles:
            run.add(label)
    return Scores(model, baselines)


def _metrics(run: Run, data: _Data, scores: dict) -> dict:
    config, e, series, splits, results = run.config, run.config.evaluate, data.series, data.splits, data.results
    return {"baselines": scores["test"].baselines, "val_baselines": scores["val"].baselines,
            "horizon": e.horizon, "stride": e.stride or e.horizon, "level": e.level, "season": e.season,
            "epochs": [r.epochs for r in results],
            "best_epoch": [r.best_epoch for r in results], "ensemble": config.ensemble, "seed": config.train.seed,
            "threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in data.fc.models[0].parameters()),
            "n_series": len(series), "test_start": str(series[0].times[splits[0][0]]),
            "test_end": str(series[0].times[splits[0][1] - 1])}


def _save(run: Run, data: _Data) -> None:
    """The ensemble, with its data source and intervals (the test forecasts beside it when scored)."""
    conformal = data.conformal
    data.fc.save(run.out, {"data": to_plain(asdict(run.config.data)), "train_seed": run.config.train.seed,
                           "intervals": data.intervals if conformal is not None else "model",
                           "conformal": None if conformal is None else conformal.to_dict()})
    if run.score_test:
        atomic_write_bytes(run.out / "forecasts.csv", rows_csv(data.rows).encode())


def _report(run: Run, data: _Data, metrics: dict, scores: dict):
    from ..eval.report import forecast_report

    return forecast_report(run.out, config=to_plain(run.config), metrics=metrics, series=data.series,
                           splits=data.splits, rows=data.rows)


STEPS = Steps("forecast", _prepare, _train, _score, _metrics, _report, _save)


def train_forecaster(config: ForecastConfig, out_dir: str | os.PathLike, resume: bool = False,
                     score_test: bool = True) -> dict:
    """Run one forecasting experiment and write its run directory; returns metrics.json
    (:func:`lstmkit.tasks.lifecycle.run_task`). ``resume``: continue the interrupted run in ``out_dir``
    (``lstmkit train --resume DIR``): finished members come back from their checkpoints, the member in
    training continues from its last one."""
    return run_task(STEPS, config, out_dir, resume, score_test)


register_task(Task(
    "forecast", "forecasting with rolling-origin evaluation against statistical baselines", ForecastConfig,
    train_forecaster, forecast_io.predict_run,
    "optional: a CSV history with the model's columns (default: the run's own series)", input_required=False,
    predict_options=forecast_io.PREDICT_OPTIONS, evaluate=forecast_io.evaluate_run, steps=STEPS,
    multi_process="trains an ensemble on forking sequences, whose loss is not a mean over rows",
    export="lstmkit.export.onnx:_forecaster_export", explain="lstmkit.explain.tasks:explain_forecaster_run",
    # MASE: MAE over the in-sample naive error, so series of different scales weigh alike (one series: MAE's order)
    tune=Tuning("val_mase", dict.fromkeys(("val_mase", "val_mae", "val_rmse", "val_smape", "val_owa", "val_loss"),
                                          "minimize"), {
        "train.lr": {"type": "float", "low": 1.0e-3, "high": 3.0e-2, "log": True},
        "model.hidden_size": {"type": "categorical", "choices": [16, 32, 64]},
        "model.num_layers": {"type": "int", "low": 1, "high": 2},
        "train.weight_decay": {"type": "float", "low": 1.0e-5, "high": 1.0e-2, "log": True}},
        trial=("evaluate.baselines=[]",))))  # Naive2 (OWA's reference) is always scored
