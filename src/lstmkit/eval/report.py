"""``report.md`` for a run: :class:`Report`, the one builder every task's report goes through (it
ends each report with the same environment line and "Reproduce" section and writes it atomically),
and the reports of classification (metrics, per-class table, confusion matrix, curves),
forecasting (model against baselines, intervals, a forecast plot) and a forecasting backtest. The
vision tasks' reports are in :mod:`lstmkit.eval.vision_report`."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Sequence

import numpy as np

from ..checkpoint import atomic_write_bytes
from .metrics import format_confusion
from .plots import plot_confusion_matrix, plot_forecast, plot_learning_curves

__all__ = ["Report", "classification_report", "forecast_report", "backtest_report", "reproduce_section",
           "transfer_lines", "TRANSFER_FILE"]

TRANSFER_FILE = "transfer.json"  # written by lstmkit.tasks.transfer when a run starts from another run's weights


class Report:
    """A ``report.md`` built top to bottom: ``Report(title)``, then :meth:`text`, :meth:`section`,
    :meth:`table`, :meth:`figure` in reading order, then :meth:`write`, which adds what every report
    ends with (the environment line and :func:`reproduce_section`). Each method returns the report."""

    def __init__(self, title: str) -> None:
        self.lines = [f"# {title}", ""]

    def text(self, *lines: str) -> "Report":
        """Lines as they are, then a blank line (one paragraph, or any markdown block)."""
        self.lines += [*lines, ""]
        return self

    def section(self, title: str, lines: Sequence[str] = ()) -> "Report":
        """A ``## title`` heading, then ``lines`` (as :meth:`text`) when given."""
        self.lines += [f"## {title}", ""]
        return self.text(*lines) if lines else self

    def table(self, headers: Sequence[str], rows: Sequence[Sequence]) -> "Report":
        """A markdown table; cells are written with ``str``."""
        self.lines += ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
        return self.text(*("| " + " | ".join(map(str, row)) + " |" for row in rows))

    def figure(self, path: str | os.PathLike, caption: str = "") -> "Report":
        """An image (``path`` relative to the report)."""
        return self.text(f"![{caption}]({Path(path).as_posix()})")

    def write(self, out: str | os.PathLike, environment: str) -> Path:
        """Write ``out/report.md`` atomically, ending with ``Environment: {environment}.`` and the
        "Reproduce" section; returns its path."""
        lines = [*self.lines, *transfer_lines(out), f"Environment: {environment}.", "", *reproduce_section(out)]
        path = Path(out) / "report.md"
        atomic_write_bytes(path, "\n".join(lines).encode())
        return path


def reproduce_section(out: str | os.PathLike) -> list[str]:
    """The report's "Reproduce" lines: the command that trains this run again from the resolved
    config saved beside the report (its data paths are absolute, so it works from any directory)."""
    config = Path(out).resolve() / "config.yaml"
    return ["## Reproduce", "", "```", f"lstmkit train {shlex.quote(str(config))} --out NEW_RUN_DIR", "```",
            "", "`config.yaml` is the fully resolved config saved beside this report; its data paths are absolute.", ""]


def transfer_lines(out: str | os.PathLike) -> list[str]:
    """A "Transfer" section naming the source run (path and weights' SHA-256), what was loaded, skipped
    and frozen, for a run started from another run's weights (``out/transfer.json``); none otherwise."""
    path = Path(out) / TRANSFER_FILE
    if not path.is_file():
        return []
    r = json.loads(path.read_text())
    lines = ["## Transfer", ""]
    if r.get("source"):
        lines.append(f"Initialised from `{r['source']}` (model.safetensors SHA-256 `{r['sha256']}`): "
                     f"{len(r['loaded'])} tensor(s) loaded, {len(r['skipped'])} skipped (shape mismatch), "
                     f"{len(r['new'])} new (as initialised).")
    if r.get("frozen"):
        lines.append(f"Frozen ({r['frozen_parameters']:,} weights): {', '.join(f'`{n}`' for n in r['frozen'])}.")
    lines += [f"- skipped `{i['name']}`: {i['source_shape']} in the source, {i['shape']} here" for i in r.get("skipped", [])]
    return [*lines, ""]


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def classification_report(out: str | os.PathLike, *, config: dict, metrics: dict, per_class: Sequence[dict],
                          cm: np.ndarray, classes: Sequence, history: Sequence[dict], best_epoch: int, test_split: str,
                          sections: Sequence[tuple[str, Sequence[str]]] = ()) -> Report:
    """Write ``confusion_matrix.png`` and ``learning_curves.png`` into ``out``; returns the report (the
    run lifecycle writes it);
    ``test_split`` says what was scored (:func:`lstmkit.data.datasets.describe_test_split`);
    ``sections`` ((title, markdown lines) pairs: baselines, ensemble, model selection) follow the
    training summary."""
    out = Path(out)
    plot_confusion_matrix(cm, classes, out / "confusion_matrix.png", title="test split")
    plot_learning_curves(history, out / "learning_curves.png", metric="accuracy", best_epoch=best_epoch)
    data = config["data"]
    source = data.get("name") or data.get("train")
    model = config["model"]
    train = config["train"]
    val, test = metrics["val"], metrics["test"]
    best = history[best_epoch - 1]
    report = Report(f"Classification run: {source} · {model.get('name', 'rnn_classifier')}")
    if "auto" in metrics:  # model.name auto: chosen and stopped by cross-validation (its section below)
        how, val_name = (f"model and weights chosen by {metrics['auto']['folds']}-fold cross-validation on the "
                         f"{metrics['n_train']} training samples (`{train['monitor']}`; model selection below)",
                         "cross-validation (mean of folds)")
    else:
        members = f" (member 0 of {len(metrics['ensemble']['members'])})" if "ensemble" in metrics else ""
        how, val_name = (f"weights selected on a validation split carved from the {metrics['n_train']} training "
                         f"samples (`{train['monitor']}`, epoch {best_epoch} of {metrics['epochs']}"
                         f"{', stopped early' if metrics['stopped_early'] else ''}{members})",
                         "validation (mean of members)" if members else "validation")
    report.text(f"Test accuracy **{_pct(test['accuracy'])}**, macro-F1 {_pct(test['macro_f1'])} on "
                f"{test_split}; {how}.")
    report.table(["split", "accuracy", "macro-F1", "balanced accuracy", "loss"],
                 [(name, _pct(m["accuracy"]), _pct(m["macro_f1"]), _pct(m["balanced_accuracy"]), f"{m['loss']:.4f}")
                  for name, m in ((val_name, val), ("test", test))])
    report.text(f"Training: {metrics['train_seconds']:.1f} s, {metrics['epochs']} epochs, seed {metrics['seed']}, "
                f"{metrics['parameters']:,} parameters, device {metrics['device']}.",
                f"At the selected epoch: train loss {best['train_loss']:.4f}, learning rate {best['lr']:.2e}, mean "
                f"gradient norm {best['grad_norm_mean']:.3f} (clipped in {100 * best['clipped_fraction']:.0f}% of "
                "steps).")
    for title, lines in sections:
        report.section(title, lines)
    report.section("Per class (test)").table(
        ["class", "precision", "recall", "F1", "support"],
        [(r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"])
         for r in per_class])
    report.section("Confusion matrix (test; rows true, columns predicted)",
                   ["```", format_confusion(cm, classes), "```"])
    report.figure("confusion_matrix.png", "confusion matrix")
    report.section("Learning curves").figure("learning_curves.png", "learning curves")
    return report


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def forecast_report(out: str | os.PathLike, *, config: dict, metrics: dict, series: Sequence, splits: Sequence,
                    rows: Sequence[dict], max_panels: int = 4) -> Report:
    """Write ``forecast.png`` into ``out`` and return the report that shows it (the run lifecycle writes
    ``report.md``). ``series``: objects with ``name``,
    ``times``, ``values``; ``splits``: (n_train, n_end) per series; ``rows``: the per-forecast
    rows of ``forecasts.csv``. The plot shows, per series, each origin's first ``stride`` steps
    (so the forecasts tile the test part), with the first target."""
    out = Path(out)
    stride = min(metrics["stride"], metrics["horizon"])
    panels = []
    for s, (n_train, n_end) in list(zip(series, splits))[:max_panels]:
        target = rows[0]["target"] if rows else ""
        mine = [r for r in rows if r["series"] == s.name and r["target"] == target and r["step"] <= stride]
        if not mine:
            continue
        base_names = [k for k in mine[0] if k in metrics["baselines"]]
        levels = sorted(float(k[len("lower_"):]) for k in mine[0] if k.startswith("lower_"))
        show = [b for b in base_names if not b.startswith("naive(") and b != "naive"][:3]
        keep = slice(max(0, n_train - 4 * max(metrics["horizon"], metrics["season"])), n_train)
        times = s.times[n_train : n_train + len(mine)]
        panels.append({"name": f"{s.name} · {target}", "history_times": s.times[keep], "history": s.values[keep, 0],
                       "times": times, "actual": [r["actual"] for r in mine], "forecast": [r["forecast"] for r in mine],
                       "lower": None if mine[0]["lower"] is None else [r["lower"] for r in mine],
                       "upper": None if mine[0]["upper"] is None else [r["upper"] for r in mine],
                       "level": metrics["level"], "baselines": {b: [r[b] for r in mine] for b in show},
                       "bands": {v: ([r[f"lower_{v:g}"] for r in mine], [r[f"upper_{v:g}"] for r in mine])
                                 for v in levels}})
    if panels:
        plot_forecast(out / "forecast.png", panels, title=f"test part, horizon {metrics['horizon']}, stride {stride}")
    data, test = config["data"], metrics["test"]
    source = data.get("name") or data.get("path")
    table = [("LSTM" + (f" (ensemble of {metrics['ensemble']})" if metrics["ensemble"] > 1 else ""), test),
             *metrics["baselines"].items()]
    report = Report(f"Forecasting run: {source} · {config['model'].get('head', 'direct')} head, "
                    f"{config['model'].get('likelihood', 'mse')} loss")
    report.text(f"Test part {metrics['test_start']} .. {metrics['test_end']} of {metrics['n_series']} series: "
                f"{test['n_forecasts']} forecasts of {metrics['horizon']} step(s) from rolling origins every "
                f"{metrics['stride']} step(s), each reading every actual before its origin (no refitting). Baselines "
                "are fitted on the same training part. MASE and OWA use season m = "
                f"{metrics['season']}; OWA is relative to Naive2 (Naive2 = 1).")
    lo, hi = (1 - metrics["level"]) / 2, (1 + metrics["level"]) / 2
    report.table(["method", "MAE", "MSE", "RMSE", "MAPE %", "sMAPE %", "MASE", "OWA",
                  f"{100 * metrics['level']:.0f}% coverage", "width", "CRPS", f"pinball {lo:g}", "pinball 0.5",
                  f"pinball {hi:g}"],
                 [(name, _num(m["mae"]), _num(m["mse"]), _num(m["rmse"]), _num(m.get("mape"), 2), _num(m["smape"], 2),
                   _num(m["mase"]), _num(m["owa"]), _num(m.get("coverage")), _num(m.get("width")), _num(m.get("crps")),
                   _num(m.get("pinball_lower")), _num(m.get("pinball_median")), _num(m.get("pinball_upper")))
                  for name, m in table])
    report.text("CRPS and pinball losses are on the series' scale (lower is better); a method without a "
                "predictive distribution (Naive2) has none.")
    _coverage_section(report, metrics)
    report.text(f"Training: {metrics['train_seconds']:.1f} s, epochs {metrics['epochs']} (selected "
                f"{metrics['best_epoch']} on validation loss {metrics['val']['loss']:.4f}), seed {metrics['seed']}, "
                f"{metrics['parameters']:,} parameters per member.")
    if panels:
        report.figure("forecast.png", "forecast")
    report.text("Every forecast is in `forecasts.csv` (with each baseline's).")
    return report


def _coverage_section(report: Report, metrics: dict) -> None:
    """Coverage of the LSTM's intervals by level and by horizon step, the model's sample-path
    intervals against the split-conformal ones (when calibrated)."""
    test, val = metrics["test"], metrics.get("val") or {}
    if "coverage_levels" not in test:
        return
    kinds = list(test["coverage_levels"])
    levels = list(test["coverage_levels"]["model"])
    report.section("Interval coverage (test)", [
        f"Intervals reported above: **{test.get('intervals', 'model')}**. `model`: quantiles of the LSTM's sample "
        "paths; `conformal`: conformal, calibrated on the selection model's forecasts of the validation end "
        f"({val.get('conformal_method', 'n/a')}; see `lstmkit.eval.conformal`). Validation coverage of conformal "
        "intervals by two-fold cross-fitting over the validation end (earlier half against later half): "
        + (", ".join(f"{100 * float(k):.0f}%: {_num(v)}" for k, v in val["conformal_cv_coverage"].items())
           if val.get("conformal_cv_coverage") else "n/a (fewer than 2 validation forecasts)") + "."])
    report.table(["intervals", *(f"{100 * float(v):.0f}%" for v in levels), "width"],
                 [(k, *(_num(test["coverage_levels"][k][v]) for v in levels), _num(test["width_by_kind"][k]))
                  for k in kinds])
    steps = len(test["coverage_by_step"]["model"])
    if steps > 1:
        report.text(f"By horizon step ({100 * metrics['level']:.0f}% intervals):")
        report.table(["step", *kinds], [(k + 1, *(_num(test["coverage_by_step"][n][k], 2) for n in kinds))
                                        for k in range(steps)])


def backtest_report(result: dict) -> str:
    """``report.md`` of ``lstmkit backtest`` (:func:`lstmkit.tasks.forecast_backtest.backtest_run`'s
    result): the window, origins and refits, then the model and each baseline's scores."""
    keys = ("mae", "rmse", "smape", "mase", "owa", "coverage", "crps")
    methods = {"model (LSTM)": result["model"], **result["baselines"]}
    report = Report(f"Backtest of {result['run']}")
    report.text(f"Data: {result['data']}. Origins from {result['start']} to {result['last_origin']} every "
                f"{result['stride']} step(s), {result['horizon']} step(s) ahead ({result['origins']} origin(s) over "
                f"{result['n_series']} series); "
                + ("the model is not refitted" if result["retrain_every"] is None else
                   f"the run's recipe is refitted every {result['retrain_every']} origin(s) on the history before "
                   f"them ({result['refits']} fit(s))")
                + f", the baselines are fitted on the history before {result['start']}.")
    report.table(["method", *keys], [[name, *("" if m.get(k) is None else f"{m[k]:.4g}" for k in keys)]
                                     for name, m in methods.items()])
    return "\n".join(report.lines)
