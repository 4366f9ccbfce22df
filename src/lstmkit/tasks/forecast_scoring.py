"""Scoring forecasts: rolling origins through the test part (and the validation ends), against
statistical baselines fitted on the same training part.

Point metrics for every method; for the LSTM (from its sample paths) and every baseline with a
predictive distribution (:meth:`lstmkit.eval.stat_baselines.Baseline.predictive`) also the CRPS
and the pinball loss at the quantiles (1 - level)/2, 0.5, (1 + level)/2 (``pinball_lower``,
``pinball_median``, ``pinball_upper``). The LSTM's coverage is reported at several levels
(``coverage_levels``) and per horizon step (``coverage_by_step``), for its own sample-path
intervals (``model``) and, once calibrated on the validation end, the split-conformal ones
(``conformal``, :mod:`lstmkit.eval.conformal`)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import nn

from ..data.series import Series
from ..data.splits import series_validation
from ..data.transforms import SeriesTransform
from ..eval import forecast_metrics as fm
from ..eval.conformal import RollingConformal, ScoreScale, SplitConformal
from ..eval.stat_baselines import make_baseline

if TYPE_CHECKING:
    from .forecast import ForecastConfig
    from .forecaster import Forecaster

    ModelAt = Callable[[int, int], Forecaster]  # (series index, origin index) -> the forecaster to use there

__all__ = ["evaluate_forecasts", "validation_scores", "choose_intervals", "epoch_scores", "integrate_errors",
           "transform_scale", "score_scale", "rows_csv", "LEVELS"]

LEVELS = (0.5, 0.8, 0.95)  # coverage and fan-chart levels, with evaluate.level
DRAWS = 1000  # draws of a baseline's predictive distribution


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


def _levels(level: float) -> list[float]:
    return sorted({*LEVELS, float(level)})


def _probabilistic(y: np.ndarray, draws: np.ndarray, level: float) -> dict:
    """CRPS and pinball losses of draws (S, R, h) against actuals (R, h)."""
    taus = ((1 - level) / 2, 0.5, (1 + level) / 2)
    q = np.quantile(draws, taus, axis=0)
    return {"crps": fm.crps_from_samples(y, draws),
            **{f"pinball_{n}": fm.pinball(y, q[i], t) for i, (n, t) in enumerate(zip(("lower", "median", "upper"), taus))}}


def _coverage(y: np.ndarray, bands: dict[float, tuple[np.ndarray, np.ndarray]], level: float) -> dict:
    """Coverage at each level, and per horizon step at ``level``, of intervals {level: (lower, upper)}."""
    lo, hi = bands[level]
    return {"levels": {f"{v:g}": fm.coverage(y, *bands[v]) for v in bands},
            "by_step": [float(((y[:, k] >= lo[:, k]) & (y[:, k] <= hi[:, k])).mean()) for k in range(y.shape[1])],
            "width": _width(lo, hi)}


def _width(lo: np.ndarray, hi: np.ndarray) -> float | None:
    """Mean width; None when an interval is unbounded (too few calibration residuals for its level)."""
    return fm.mean_width(lo, hi) if np.isfinite(lo).all() and np.isfinite(hi).all() else None


def _collect(fc: Forecaster, series: list[Series], splits: list[tuple[int, int]], cfg: ForecastConfig,
             model_at: ModelAt | None = None) -> dict:
    """Forecasts at rolling origins over [n_train, n_end) of each series: actuals, the LSTM's points
    and sample paths, the baselines' points, intervals and draws, per-forecast rows. ``model_at(i, j)``:
    the forecaster for the j-th origin of series i (default: ``fc`` for every origin)."""
    e = cfg.evaluate
    C, P = len(fc.targets), len(fc.past)
    stride = e.stride or e.horizon
    rows, ins, Y, F_, L, U, S = [], [], [], [], [], [], []
    base_specs = list(e.baselines)
    if not any((b if isinstance(b, str) else b.get("name")) == "naive2" for b in base_specs):
        base_specs.append({"name": "naive2", "m": e.season})  # OWA's reference, always computed
    base_out: dict[str, dict[str, list]] = {}
    for i, (s, (n_train, n_end)) in enumerate(zip(series, splits)):
        fitted = []
        for c in range(C):
            bs = [make_baseline(b) for b in base_specs]
            for b in bs:
                b.fit(s.values[:n_train, c])
            fitted.append(bs)
        for j, o in enumerate(_origins(n_train, n_end, e.horizon, stride)):
            hist = s.head(o)
            future = s.values[o : o + fc.horizon, C + P:] if fc.future else None  # its whole trained window
            out = (fc if model_at is None else model_at(i, j)).predict(hist, e.horizon, future)
            actual = s.values[o : o + e.horizon, :C]
            for c in range(C):
                Y.append(actual[:, c])
                F_.append(out.point[:, c])
                ins.append(s.values[:n_train, c])
                if out.lower is not None:
                    L.append(out.lower[:, c])
                    U.append(out.upper[:, c])
                    S.append(out.samples[:, :, c])
                for b in fitted[c]:
                    d = base_out.setdefault(b.name, {"f": [], "lo": [], "hi": [], "draws": []})
                    d["f"].append(b.forecast(s.values[:o, c], e.horizon))
                    iv = b.interval(s.values[:o, c], e.horizon, e.level)
                    if iv is not None:
                        d["lo"].append(iv[0])
                        d["hi"].append(iv[1])
                    draws = b.predictive(s.values[:o, c], e.horizon, DRAWS)
                    if draws is not None:
                        d["draws"].append(draws)
                for k in range(e.horizon):
                    rows.append({"series": s.name, "target": fc.targets[c], "origin": str(s.times[o]),
                                 "time": str(s.times[o + k]), "step": k + 1, "actual": float(actual[k, c]),
                                 "forecast": float(out.point[k, c]),
                                 "lower": None if out.lower is None else float(out.lower[k, c]),
                                 "upper": None if out.upper is None else float(out.upper[k, c]),
                                 **{name: float(d["f"][-1][k]) for name, d in base_out.items()}})
    return {"y": np.array(Y), "f": np.array(F_), "ins": ins, "lower": np.array(L) if L else None,
            "upper": np.array(U) if U else None, "samples": np.stack(S, axis=1) if S else None,
            "baselines": base_out, "rows": rows}


def _model_bands(samples: np.ndarray, level: float) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """{level: (lower, upper)} central intervals of sample paths (S, R, h) at every reported level."""
    return {v: tuple(np.quantile(samples, [(1 - v) / 2, (1 + v) / 2], axis=0)) for v in _levels(level)}


def _spread(got: dict, level: float) -> np.ndarray:
    """The model's predictive spread (R, h): the width of its central ``level`` interval (> 0)."""
    return np.maximum(got["upper"] - got["lower"], 1e-12 * (1 + np.abs(got["f"])))


Conformal = SplitConformal | RollingConformal


def _conformal_crps(got: dict, band: tuple[np.ndarray, np.ndarray], level: float) -> float | None:
    """CRPS of the sample paths rescaled to the conformal intervals: each path's deviation from the
    point forecast times (conformal width / the model's width) at ``level``, per forecast and step --
    the predictive distribution whose central interval is the conformal one. None when unbounded."""
    lo, hi = band
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None
    factor = (hi - lo) / _spread(got, level)
    return fm.crps_from_samples(got["y"], got["f"] + (got["samples"] - got["f"]) * factor)


def _score(got: dict, cfg: ForecastConfig, conformal: Conformal | None) -> tuple[dict, dict]:
    e = cfg.evaluate
    Y, F_ = got["y"], got["f"]
    model = _scores(Y, F_, got["ins"], e.season, got["lower"], got["upper"])
    if got["samples"] is not None:
        model.update(_probabilistic(Y, got["samples"], e.level))
        kinds = {"model": _model_bands(got["samples"], e.level)}
        if conformal is not None:
            spread = _spread(got, e.level)
            kinds["conformal"] = {v: conformal.interval(F_, spread, v) for v in _levels(e.level)}
        cover = {k: _coverage(Y, b, e.level) for k, b in kinds.items()}
        if conformal is not None:
            model["crps_conformal"] = _conformal_crps(got, kinds["conformal"][e.level], e.level)
        model["coverage_levels"] = {k: c["levels"] for k, c in cover.items()}
        model["coverage_by_step"] = {k: c["by_step"] for k, c in cover.items()}
        model["width_by_kind"] = {k: c["width"] for k, c in cover.items()}
        if e.intervals == "conformal" and conformal is not None:
            lo, hi = kinds["conformal"][e.level]
            model["coverage"], model["width"] = fm.coverage(Y, lo, hi), _width(lo, hi)
        model["intervals"] = e.intervals if conformal is not None else "model"
    baselines = {}
    for name, d in got["baselines"].items():
        full = len(d["lo"]) == len(d["f"])
        baselines[name] = _scores(Y, np.array(d["f"]), got["ins"], e.season, np.array(d["lo"]) if full else None,
                                  np.array(d["hi"]) if full else None)
        if len(d["draws"]) == len(d["f"]):
            baselines[name].update(_probabilistic(Y, np.stack(d["draws"], axis=1), e.level))
    n2 = next(v for k, v in baselines.items() if k.startswith("naive2"))
    for scores in [model, *baselines.values()]:
        scores["owa"] = 0.5 * (scores["smape"] / n2["smape"] + scores["mase"] / n2["mase"])
    model["n_forecasts"] = len(Y)
    return model, baselines


def evaluate_forecasts(fc: Forecaster, series: list[Series], splits: list[tuple[int, int]], cfg: ForecastConfig,
                       conformal: Conformal | None = None, model_at: ModelAt | None = None
                       ) -> tuple[dict, dict, list[dict]]:
    """(model metrics, {baseline: metrics}, per-forecast rows) at rolling origins over the test parts.
    With ``conformal`` (calibrated on the validation end), its intervals are scored too and, with
    ``evaluate.intervals: conformal``, are the rows' ``lower``/``upper`` and the reported coverage.
    ``model_at``: as in :func:`_collect` (a backtest that refits)."""
    got = _collect(fc, series, splits, cfg, model_at)
    model, baselines = _score(got, cfg, conformal)
    if got["samples"] is not None:
        e = cfg.evaluate
        use_conformal = conformal is not None and e.intervals == "conformal"
        bands = {v: conformal.interval(got["f"], _spread(got, e.level), v) for v in _levels(e.level)} \
            if use_conformal else _model_bands(got["samples"], e.level)
        for i, r in enumerate(got["rows"]):  # rows are (forecast, step) in order
            a, k = divmod(i, cfg.evaluate.horizon)
            for v, (lo, hi) in bands.items():
                r[f"lower_{v:g}"], r[f"upper_{v:g}"] = float(lo[a, k]), float(hi[a, k])
            if use_conformal:
                r["lower"], r["upper"] = r[f"lower_{e.level:g}"], r[f"upper_{e.level:g}"]
    return model, baselines, got["rows"]


def _cross_conformal(got: dict, level: float) -> dict | None:
    """Validation coverage of conformal intervals calibrated on the other half of the validation
    forecasts (earlier half <-> later half, averaged): how well the method calibrates on data it
    was not calibrated on. With one forecast (per target and series), the halves are its odd and
    even steps (the pooled method). None when neither can be split."""
    y, f, spread = got["y"], got["f"], _spread(got, level)
    R, h = y.shape
    if R < 2:
        if h < 2:
            return None
        y, f, spread = y.T, f.T, spread.T  # rows: steps, pooled below
        R = h
        halves = [np.arange(0, R, 2), np.arange(1, R, 2)]
    else:
        halves = [np.arange(R // 2), np.arange(R // 2, R)]
    out: dict[str, float] = {}
    for cal, chk in (halves, halves[::-1]):
        cp = SplitConformal.fit(y[cal], f[cal], spread[cal], min_per_step=19 if got["y"].shape[0] >= 2 else R + 1)
        for v in _levels(level):
            lo, hi = cp.interval(f[chk], spread[chk], v)
            out[f"{v:g}"] = out.get(f"{v:g}", 0.0) + fm.coverage(y[chk], lo, hi) * len(chk) / R
    return out


def score_scale(cfg: ForecastConfig) -> ScoreScale:
    """``evaluate.conformal_scale`` with the level transform (log or Box-Cox power) the model reads."""
    return ScoreScale(cfg.evaluate.conformal_scale, cfg.transform.log, cfg.transform.power)


def _rolling_scores(selection: Forecaster, series: list[Series], splits: list[tuple[int, int]], val: int,
                    cfg: ForecastConfig) -> list[list[float]]:
    """Scores by step (ragged; |y - f| / s, or on the transform's scale: :func:`score_scale`) of the
    selection model's forecasts from every origin o in [n - val, n) of each training part (n its
    length), each running min(horizon, n - o) steps: nothing at or after n is read."""
    e = cfg.evaluate
    scale = score_scale(cfg)
    C = len(selection.targets)
    out: list[list[float]] = [[] for _ in range(e.horizon)]
    for whole, (n, _) in zip(series, splits):
        s = whole.head(n)  # nothing at or after n is read, not even known covariates
        for o in range(n - val, n):
            h = min(e.horizon, n - o)
            future = s.values[o : o + selection.horizon, C + len(selection.past):] if selection.future else None
            if future is not None and len(future) < selection.horizon:
                break  # the model reads future covariates for its whole window: they must lie inside [0, n)
            got = selection.predict(s.head(o), h, future)
            y = s.values[o : o + h, :C]
            spread = np.maximum(got.upper - got.lower, 1e-12 * (1 + np.abs(got.point)))
            for k in range(h):
                out[k].extend(scale.scores(y[k], got.point[k], spread[k]).tolist())
    return out


def _rolling_cv(selection: Forecaster, series: list[Series], splits: list[tuple[int, int]], val: int,
                cfg: ForecastConfig) -> dict | None:
    """Validation coverage of rolling conformal intervals by two-fold cross-fitting in time: each
    half of the validation end's origins is scored with the calibration of the other half (the
    earlier half's forecasts stop at the middle, so its scores never read the later half).
    None when either half has no score."""
    e = cfg.evaluate
    mid = [n - val + val // 2 for n, _ in splits]
    early = _rolling_scores(selection, series, [(m, 0) for m in mid], val // 2, cfg)
    late = _rolling_scores(selection, series, splits, val - val // 2, cfg)
    if not early[0] or not late[0]:
        return None
    out: dict[str, float] = {}
    total = 0
    for cal, chk in ((early, late), (late, early)):
        cp = RollingConformal.fit(cal, scale=score_scale(cfg))
        steps = [k for k in range(len(chk)) if chk[k]]
        n = sum(len(chk[k]) for k in steps)
        total += n
        for v in _levels(e.level):
            q = cp.multipliers(max(steps) + 1, v)
            hit = sum(int((np.asarray(chk[k]) <= q[k]).sum()) for k in steps)
            out[f"{v:g}"] = out.get(f"{v:g}", 0.0) + hit
    return {k: v / total for k, v in out.items()}


def validation_scores(selection: Forecaster, series: list[Series], splits: list[tuple[int, int]],
                      cfg: ForecastConfig) -> tuple[dict, dict, Conformal | None]:
    """The test metrics, measured instead on the validation ends of the training parts by the
    selection runs (fitted without them), at rolling origins like the test; baselines fitted on the
    same shortened parts. What recipes are compared on: the test split stays unseen. Also the
    conformal calibration from the selection runs' forecasts of the validation ends (None without
    sample paths; ``evaluate.calibration``: ``rolling``, from every origin of the validation end,
    or ``window``, from the test-like origins only), and in the scores ``conformal_cv_coverage``:
    its coverage by two-fold cross-fitting over the validation end (what choosing
    ``evaluate.intervals`` is based on). Empty when the validation end is shorter than the horizon."""
    val = series_validation([n for n, _ in splits], cfg.val_size, cfg.evaluate.horizon)[0]
    if val < cfg.evaluate.horizon:
        return {}, {}, None
    got = _collect(selection, [s.head(n) for s, (n, _) in zip(series, splits)], [(n - val, n) for n, _ in splits], cfg)
    scores, baselines = _score(got, cfg, None)
    conformal: Conformal | None = None
    if got["samples"] is not None:
        if cfg.evaluate.calibration == "rolling":
            conformal = RollingConformal.fit(_rolling_scores(selection, series, splits, val, cfg),
                                             scale=score_scale(cfg))
            scores["conformal_cv_coverage"] = _rolling_cv(selection, series, splits, val, cfg)
        else:
            conformal = SplitConformal.fit(got["y"], got["f"], _spread(got, cfg.evaluate.level))
            scores["conformal_cv_coverage"] = _cross_conformal(got, cfg.evaluate.level)
        scores["conformal_method"] = conformal.method
    return scores, baselines, conformal


def choose_intervals(val: dict, level: float) -> tuple[str, dict[str, float]]:
    """``evaluate.intervals: auto``: the kind whose coverage on the validation end is closer to nominal,
    as the mean absolute gap over the reported levels (:data:`LEVELS` and ``level``): the model's intervals
    by the selection runs' forecasts there (``coverage_levels.model``), the conformal ones by two-fold
    cross-fitting in time (``conformal_cv_coverage``, calibrated on data they are not checked on).
    Returns (kind, {kind: gap}); 'model' when conformal has no validation evidence or on a tie."""
    gaps: dict[str, float] = {}
    for kind, cov in (("model", (val.get("coverage_levels") or {}).get("model")),
                      ("conformal", val.get("conformal_cv_coverage"))):
        if cov:
            gaps[kind] = float(np.mean([abs(cov[f"{v:g}"] - v) for v in _levels(level)]))
    if "conformal" in gaps and ("model" not in gaps or gaps["conformal"] < gaps["model"]):
        return "conformal", gaps
    return "model", gaps


def integrate_errors(err: torch.Tensor, scale: torch.Tensor, tf: SeriesTransform) -> torch.Tensor:
    """Errors of the transformed series (B, T, n, C) -> the errors they make on the scale before the
    differencing (after the log or power transform): times the standardisation's scale (B, C), summed back
    through the first and the seasonal differencing along the steps (zero errors before step 1)."""
    e = err * scale[:, None, None, :]
    if tf.difference:
        e = e.cumsum(2)
    m = tf.seasonal_period
    if m:
        B, T, n, C = e.shape
        pad = -n % m
        e = torch.nn.functional.pad(e, (0, 0, 0, pad)).reshape(B, T, (n + pad) // m, m, C).cumsum(2)
        e = e.reshape(B, T, n + pad, C)[:, :, :n]
    return e


def epoch_scores(select: str, scales: np.ndarray, tf: SeriesTransform):
    """The validation of a member's epochs over every (origin, step) pair of the validation ends, each
    origin's forecast cut at the end of the training part: the likelihood's loss (``nll``), the point
    forecasts' squared error on the model's scale (``mse``) and on the scale before the differencing
    (``level``: :func:`integrate_errors`; ``scales`` (S, C) the series' standardisation scales). ``loss``, what
    picks the epoch and steps the plateau, is ``select``'s."""
    def evaluate(model: nn.Module, batches) -> dict:
        total = {"nll": 0.0, "mse": 0.0, "level": 0.0}
        count = 0.0
        first = 0
        for b in batches:
            n = float(b[2][:, 1].sub(b[2][:, 0]).clamp(min=0).sum())
            nll, err, mask = model.loss_and_errors(*b)  # one forward for all three scores
            total["nll"] += float(nll) * n
            pairs = float(mask.sum()) * err.shape[-1]
            scale = torch.as_tensor(scales[first : first + len(err)], dtype=err.dtype)
            first += len(err)
            total["mse"] += float(err.square().sum()) / pairs * n
            total["level"] += float(integrate_errors(err, scale, tf).square().sum()) / pairs * n
            count += n
        out = {k: v / count for k, v in total.items()}
        return {"loss": out["nll" if select == "loss" else select], **out}

    return evaluate


def transform_scale(tf: SeriesTransform, C: int) -> np.ndarray:
    """A fitted transform's standardisation scale per target (ones without standardisation)."""
    return np.ones(C) if tf.std_ is None else np.broadcast_to(np.asarray(tf.std_, dtype=np.float64), (C,)).copy()


def rows_csv(rows: list[dict], fieldnames: list[str] | None = None, lineterminator: str = "\r\n") -> str:
    """Forecast rows (dicts) as CSV text, a missing value (None) as an empty cell; the columns are
    ``fieldnames``, else the first row's keys (no rows, no fieldnames: an empty file)."""
    buf = io.StringIO()
    if fieldnames or rows:
        w = csv.DictWriter(buf, fieldnames=fieldnames or list(rows[0]), lineterminator=lineterminator)
        w.writeheader()
        w.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return buf.getvalue()
