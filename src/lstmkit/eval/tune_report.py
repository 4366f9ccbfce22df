"""The report of ``lstmkit tune``: trials.csv / trials.json, report.md and the plots, from an Optuna
study and its tune config (:class:`lstmkit.tasks.tune_config.TuneConfig`, read for its metric,
direction, search space, base run and task). ``best.yaml`` is written by :mod:`lstmkit.tasks.tune`."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any

from ..checks import require
from ..checkpoint import atomic_write_bytes

__all__ = ["write_report", "fmt"]

log = logging.getLogger(__name__)


def fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _trial_row(t) -> dict:
    attrs = t.user_attrs
    return {"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params),
            "duration_s": None if t.duration is None else round(t.duration.total_seconds(), 3),
            "train_seconds": attrs.get("seconds"), "epochs": attrs.get("epochs"), "best_epoch": attrs.get("best_epoch"),
            "pruned_at_epoch": attrs.get("pruned_at_epoch"), "selected_value": attrs.get("selected_value"),
            "pid": attrs.get("pid"), "overrides": attrs.get("overrides"), "run_dir": attrs.get("run_dir"),
            "datetime_start": None if t.datetime_start is None else t.datetime_start.isoformat(timespec="seconds")}


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


def _plot(path: Path, draw) -> None:
    """Render one optuna.visualization.matplotlib plot to ``path`` (pyplot style kept local)."""
    optuna = require("optuna", "hyperparameter search needs Optuna", "tune")
    import matplotlib
    from matplotlib import pyplot as plt

    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = draw()
        fig = ax.figure
        try:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        finally:
            plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _write_plots(study, out: Path, metric: str, n_complete: int) -> list[str]:
    from optuna.visualization import matplotlib as ovm  # importable without matplotlib; its plots are not

    if importlib.util.find_spec("matplotlib") is None:
        log.warning("plots skipped: they need matplotlib (pip install 'lstmkit[train]')")
        return []
    written = []
    if n_complete:
        _plot(out / "optimization_history.png", lambda: ovm.plot_optimization_history(study, target_name=metric))
        written.append("optimization_history.png")
    if n_complete < 2:
        log.info("parameter importances skipped: they need at least 2 completed trials")
        return written
    try:
        _plot(out / "param_importances.png", lambda: ovm.plot_param_importances(study))
        written.append("param_importances.png")
    except ImportError as e:
        log.info(f"parameter importances skipped: the importance evaluator needs a package not installed ({e})")
    except (ValueError, RuntimeError, ZeroDivisionError) as e:
        log.info(f"parameter importances skipped: {e}")
    return written


def _report(study, config, storage: str, rows: list[dict], best, plots: list[str]) -> str:
    metric, direction = config.metric, config.direction
    counts = {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    train, task = config.base["train"], config.task.name
    if task == "classify":
        how = (f"Metric: best per-epoch `{metric}` ({direction}) on the validation split carved from the training "
               f"data (train.val_fraction={train['val_fraction']}, seed {train['seed']}). The test split is not used "
               "here; `lstmkit train best.yaml` scores it once for the chosen configuration.")
    else:
        how = (f"Metric: `{metric}` ({direction}), read from the validation block (`val`) of the metrics each "
               f"trial's {task} run returns (under trials/). "
               + "A trial is the task's training run with its test part never scored. "
               + "Trials are not pruned (the pruner acts on per-epoch reports, which classify trials give).")
    lines = [f"# Hyperparameter search: {study.study_name}", "", how, "",
             f"Storage `{storage}`; {len(rows)} trial(s): "
             + ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
             + f"; pruner {config.pruner}; TPE sampler seed {config.seed}.", ""]
    if best is None:
        lines += ["No trial completed: no best configuration yet (best.yaml not written).", ""]
    else:
        a = best.user_attrs
        if task == "classify":
            said = (f"Trial {best.number}: {metric} **{best.value:.4f}** at epoch {a.get('best_epoch')} of "
                    f"{a.get('epochs')}, {a.get('seconds', 0):.1f} s of training. The weights `lstmkit train` keeps "
                    f"are chosen by train.monitor ({train['monitor']}); with those, {metric} was "
                    f"{fmt(a.get('selected_value'))}.")
        else:
            said = (f"Trial {best.number}: {metric} **{best.value:.4f}** (best epoch {a.get('best_epoch')} of "
                    f"{a.get('epochs')}), {a.get('seconds', 0):.1f} s; its run directory is `{a.get('run_dir')}`.")
        lines += ["## Best trial", "", said, "",
                  "| parameter | value |", "|---|---|", *(f"| {k} | {fmt(v)} |" for k, v in best.params.items()), "",
                  "Reproduce: `lstmkit train best.yaml` (the base config with these values, fully resolved; "
                  "the same values as `--set` overrides are in trials.json).", ""]
    done = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    done.sort(key=lambda r: r["value"], reverse=direction == "maximize")
    if done:
        keys = list(config.search)
        lines += [f"## Top trials ({min(10, len(done))} of {len(done)} completed)", "",
                  f"| trial | {metric} | " + " | ".join(keys) + " | epochs | seconds |",
                  "|---:|---:|" + "---:|" * len(keys) + "---:|---:|"]
        for r in done[:10]:
            lines.append(f"| {r['number']} | {r['value']:.4f} | "
                         + " | ".join(fmt(r["params"].get(k, "")) for k in keys)
                         + f" | {r['epochs']} | {fmt(r['train_seconds'])} |")
        lines.append("")
    lines += ["## Search space", "", "| parameter | type | range |", "|---|---|---|",
              *(f"| {k} | {p.type} | {p.describe()} |" for k, p in config.search.items()), ""]
    if plots:
        lines += ["## Plots", "", *(f"![{Path(p).stem.replace('_', ' ')}]({p})" for p in plots), ""]
    return "\n".join(lines)


def write_report(study, config, out_dir: str | os.PathLike, storage: str = "") -> dict:
    """trials.csv / trials.json, report.md and the plots for every trial of ``study``; returns a summary
    (counts, best trial, paths; ``best_config``: where :mod:`lstmkit.tasks.tune` writes best.yaml)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    rows = [_trial_row(t) for t in trials]
    atomic_write_bytes(out / "trials.json", json.dumps(_json_safe(rows), indent=1, allow_nan=False).encode())
    keys = list(dict.fromkeys([*config.search, *(k for r in rows for k in r["params"])]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    columns = ["number", "state", "value", "duration_s", "train_seconds", "epochs", "best_epoch", "pruned_at_epoch"]
    w.writerow(columns + [f"params_{k}" for k in keys])
    for r in rows:
        w.writerow(["" if r[c] is None else r[c] for c in columns] + [r["params"].get(k, "") for k in keys])
    atomic_write_bytes(out / "trials.csv", buf.getvalue().encode())

    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    plots = _write_plots(study, out, config.metric, len(complete))
    atomic_write_bytes(out / "report.md", _report(study, config, storage, rows, best, plots).encode())
    counts = {s.lower(): sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    return {"study": study.study_name, "storage": storage, "out": str(out), "metric": config.metric,
            "direction": config.direction, "trials": len(rows), **counts,
            "best": None if best is None else {"number": best.number, "value": best.value, "params": best.params},
            "best_config": None if best is None else str(out / "best.yaml")}
