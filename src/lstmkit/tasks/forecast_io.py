"""The forecasting task's commands on a saved run: ``lstmkit predict`` (``lstmkit forecast``) and
``lstmkit evaluate``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..eval.conformal import conformal_from_dict
from .forecast_scoring import rows_csv
from .registry import Prediction

__all__ = ["predict_run", "evaluate_run", "saved_run", "PREDICT_OPTIONS"]

PREDICT_OPTIONS = ("horizon", "gaps")


def predict_run(run, input: str | None, options: dict) -> Prediction:
    """Forecasts of the ``horizon`` steps (default: the trained horizon) after the history in
    ``input`` (a CSV with the model's columns; trailing rows give future covariates) or, without
    one, after the end of each series the run was trained on. CSV rows, or JSON when
    ``options["output"]`` ends in .json."""
    from .forecast import load_forecaster, read_forecast_input, saved_series

    fc = load_forecaster(run)
    horizon = options.get("horizon")
    horizon = fc.horizon if horizon is None else horizon
    if input:
        history, future = read_forecast_input(input, fc, gaps=options.get("gaps") or "error",
                                              gaps_hint="pass --gaps interpolate")
        jobs = [(history, future)]
    else:
        if fc.future:
            raise ValueError(f"the model reads future covariates {list(fc.future)}: pass an input CSV with their "
                             "values for the forecast window")
        jobs = [(s, None) for s in saved_series(fc)]
    saved = fc.meta.get("conformal") if fc.meta.get("intervals") == "conformal" else None
    conformal = None if saved is None else conformal_from_dict(saved)
    rows = []
    for history, future in jobs:
        out = fc.predict(history, horizon, future)
        if conformal is not None and out.lower is not None:  # the run's conformal intervals, as it scored them
            spread = np.maximum(out.upper - out.lower, 1e-12 * (1 + np.abs(out.point)))
            out.lower, out.upper = (v.T for v in conformal.interval(out.point.T, spread.T, fc.level))
        for k, t in enumerate(out.times):
            for c, name in enumerate(out.names):
                rows.append({"series": history.name, "time": str(t), "target": name, "forecast": float(out.point[k, c]),
                             "lower": None if out.lower is None else float(out.lower[k, c]),
                             "upper": None if out.upper is None else float(out.upper[k, c])})
    output = options.get("output")
    if output and str(output).endswith(".json"):
        text = json.dumps({"level": fc.level, "forecasts": rows}, indent=1)
    else:
        text = rows_csv(rows, ["series", "time", "target", "forecast", "lower", "upper"], lineterminator="\n")
    return Prediction(text, {"forecasts": len(rows)}, f"{len(rows)} forecasts")


def saved_run(run) -> tuple:
    """(config, forecaster, conformal calibration or None) of a forecasting run directory: what
    re-scoring it (``evaluate``, ``backtest``) starts from."""
    from .config import build, load_yaml
    from .forecast import ForecastConfig, load_forecaster

    fc = load_forecaster(run)
    saved = fc.meta.get("conformal")  # calibrated on the validation end at training time
    config = build(ForecastConfig, load_yaml(Path(run) / "config.yaml"))
    if config.evaluate.intervals == "auto":  # the kind the run chose on its validation end
        config = replace(config, evaluate=replace(config.evaluate, intervals=fc.meta.get("intervals", "model")))
    return config, fc, None if saved is None else conformal_from_dict(saved)


def evaluate_run(run, data: str | None = None, options: dict | None = None) -> dict:
    """The run's test scores recomputed from its saved model: rolling-origin forecasts over the test
    part of the series it was trained on (reloaded from its data source), with the baselines fitted
    on the same training part -- ``metrics.json``'s ``test`` and ``baselines``."""
    from .forecast import evaluate_forecasts, saved_series, split_points

    if data is not None:
        raise ValueError("evaluate --data applies to classification runs; a forecasting run is re-scored on the test "
                         "part of its own series (for new data, use lstmkit predict RUN HISTORY.csv)")
    config, fc, conformal = saved_run(run)
    series = saved_series(fc)
    splits = [split_points(s, config.data, config.evaluate.horizon) for s in series]
    test, baselines, _ = evaluate_forecasts(fc, series, splits, config, conformal)
    return {"data": "the run's test part", "test": test, "baselines": baselines}
