"""Scoring forecasts: rolling origins through the test part (and the validation ends), against
statistical baselines fitted on the same training part."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..data.series import Series
from ..eval import forecast_metrics as fm
from ..eval.stat_baselines import make_baseline

if TYPE_CHECKING:
    from .forecast import ForecastConfig
    from .forecaster import Forecaster

__all__ = ["evaluate_forecasts", "validation_scores"]


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
            hist = s.head(o)
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


def validation_scores(selection: Forecaster, series: list[Series], splits: list[tuple[int, int]],
                       cfg: ForecastConfig) -> tuple[dict, dict]:
    """The test metrics, measured instead on the validation ends of the training parts by the
    selection runs (fitted without them), at rolling origins like the test; baselines fitted on the
    same shortened parts. What recipes are compared on: the test split stays unseen. Empty when
    the validation end is shorter than the horizon."""
    val = cfg.val_size or max(cfg.evaluate.horizon, round(0.2 * min(n for n, _ in splits)))
    if val < cfg.evaluate.horizon:
        return {}, {}
    scores, baselines, _ = evaluate_forecasts(selection, [s.head(n) for s, (n, _) in zip(series, splits)],
                                              [(n - val, n) for n, _ in splits], cfg)
    return scores, baselines


