"""``lstmkit backtest``: rolling-origin forecasts of a trained forecasting run over a window of its
own series (or of a new one), scored like a run's test part.

From the origin ``start`` to the end of the series, every ``stride`` steps, the saved model
forecasts ``horizon`` steps reading every actual before the origin; the baselines of the run's
config are fitted on the history before ``start`` (the backtest's "training part") and forecast
from the same origins. With ``retrain_every=K`` the model is not the saved one: the run's whole
recipe (its config: members, validation split, refit, seed) is trained again on the history before
every K-th origin and forecasts the K origins from there; the intervals stay the run's kind (the
run's conformal calibration, when it scored conformal intervals, is not re-calibrated). Scoring is :func:`lstmkit.tasks.forecast_scoring.evaluate_forecasts`,
so a backtest whose window is the run's test part gives the run's test metrics."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..checkpoint import atomic_write_dir
from ..data.series import Series, future_times
from ..data.splits import _time_value
from ..eval.report import backtest_report
from .forecast import read_forecast_input, saved_series
from .forecast_io import saved_run
from .forecast_scoring import evaluate_forecasts, rows_csv

if TYPE_CHECKING:
    from .forecast_scoring import ModelAt
from .registry import task_of_run

__all__ = ["backtest_run", "default_output"]

log = logging.getLogger(__name__)


def default_output(run: str | os.PathLike, start, horizon: int) -> Path:
    """``RUN/backtest-<start>-h<H>``."""
    return Path(run) / f"backtest-{str(start).replace('/', '-').replace(' ', '_')}-h{horizon}"


def _start_index(s: Series, start) -> int:
    """The row of ``start`` (a time like '1958-01', or an int step for integer times) in ``s``."""
    if s.times.dtype.kind in "iu" and isinstance(start, str):
        try:
            start = int(start)
        except ValueError:
            raise ValueError(f"--start must be an integer step for series {s.name!r} (integer times), "
                             f"got {start!r}") from None
    t = _time_value(start, s.times, "--start")
    if t < s.times[0] or t > s.times[-1]:
        raise ValueError(f"--start {start} is outside series {s.name!r} ({s.times[0]} .. {s.times[-1]})")
    n = int(np.searchsorted(s.times, t))
    if n < 1:
        raise ValueError(f"--start {start} is the first time of series {s.name!r}: a backtest needs history "
                         "before its first origin; start later")
    return n


def _with_future(history: Series, future: np.ndarray | None) -> Series:
    """The CSV's history followed by its trailing rows of future covariates (targets and past
    covariates missing there), so the last origins get the model's known inputs."""
    if future is None:
        return history
    rows = np.full((len(future), history.values.shape[1]), np.nan)
    rows[:, history.values.shape[1] - future.shape[1]:] = future
    times = np.concatenate([history.times, future_times(history.times, history.step, len(future))])
    return Series(np.concatenate([history.values, rows]), times, history.names, history.name)


def _refitting(config, fc, series: list[Series], splits: list[tuple[int, int]], every: int, stride: int,
               refits: dict) -> "ModelAt":
    """``model_at`` for :func:`evaluate_forecasts` that refits the run's recipe (its config: members,
    validation, refit, seed) every ``every`` origins: origins ``j`` with the same ``j // every`` share
    a forecaster trained on each series up to that block's first origin. Fitted on first use and kept
    in ``refits`` {block: forecaster}."""
    from .forecast import fit_ensemble

    columns = (list(fc.targets), list(fc.past), list(fc.future))

    def model_at(i: int, j: int):
        block = j // every
        if block not in refits:
            ends = [n + block * every * stride for n, _ in splits]
            log.info(f"backtest: refitting the run's recipe on the history before origin {block * every + 1} "
                     f"({series[0].times[ends[0]]})")
            refits[block] = fit_ensemble(series, ends, config, columns, fc.calendar, None)[0]
        return refits[block]

    return model_at


def backtest_run(run: str | os.PathLike, start, horizon: int, stride: int | None = None, input: str | None = None,
                 output: str | os.PathLike | None = None, retrain_every: int | None = None,
                 gaps: str = "error") -> dict:
    """Backtest a forecasting run from ``start`` to the end of its series (or of the CSV ``input``)
    and write ``output`` (default :func:`default_output`): ``backtest.csv`` (one row per forecast
    step), ``backtest.json`` (the metrics) and ``report.md``. Returns backtest.json's content."""
    task = task_of_run(run)
    if task.name != "forecast":
        raise ValueError(f"{run} holds a {task.name!r} model; `lstmkit backtest` needs a forecasting run")
    for name, v in (("--horizon", horizon), ("--stride", stride), ("--retrain-every", retrain_every)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    out = Path(output) if output is not None else default_output(run, start, horizon)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output directory {out} exists and is not empty; choose another --output or remove it")
    config, fc, conformal = saved_run(run)
    if horizon > fc.horizon:
        raise ValueError(f"--horizon {horizon} is longer than the run's trained horizon ({fc.horizon} steps); "
                         f"backtest at most {fc.horizon} steps ahead, or train a run with a longer evaluate.horizon")
    if input:
        history, future = read_forecast_input(input, fc, gaps=gaps, gaps_hint="pass --gaps interpolate")
        series, ends = [_with_future(history, future)], [len(history)]
    else:
        series = saved_series(fc)
        ends = [len(s) for s in series]
    splits = []
    for s, n in zip(series, ends):
        n_start = _start_index(s, start)
        # a model with future covariates reads them for its whole trained window after an origin
        n_end = min(n, len(s) - fc.horizon + horizon) if fc.future else n
        if n_end - n_start < horizon:
            known = " and known covariates" if fc.future else ""
            raise ValueError(f"series {s.name!r}: from --start {start} ({s.times[n_start]}) the series has "
                             f"{max(n_end - n_start, 0)} step(s) with actuals{known}, fewer than --horizon {horizon}; "
                             "start earlier or shorten the horizon")
        splits.append((n_start, n_end))
    cfg = replace(config, evaluate=replace(config.evaluate, horizon=horizon, stride=stride or horizon))
    refits: dict[int, object] = {}
    model_at = None if retrain_every is None else _refitting(config, fc, series, splits, retrain_every,
                                                             stride or horizon, refits)
    model, baselines, rows = evaluate_forecasts(fc, series, splits, cfg, conformal, model_at)
    origins = {(r["series"], r["origin"]) for r in rows}
    s0, (n0, e0), every = series[0], splits[0], stride or horizon
    last = n0 + (e0 - horizon - n0) // every * every  # the last origin of the first series
    result = {"run": str(run), "data": str(input) if input else "the run's series",
              "start": str(s0.times[n0]), "last_origin": str(s0.times[last]), "end": str(s0.times[last + horizon - 1]),
              "horizon": horizon, "stride": every,
              "origins": len(origins), "n_series": len(series), "level": cfg.evaluate.level,
              "season": cfg.evaluate.season, "retrain_every": retrain_every, "refits": len(refits),
              "model": model, "baselines": baselines}
    atomic_write_dir(out, {"backtest.csv": rows_csv(rows).encode(),
                 "backtest.json": json.dumps(result, indent=1, allow_nan=False).encode(),
                 "report.md": backtest_report(result).encode()})
    return result
