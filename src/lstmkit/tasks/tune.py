"""Hyperparameter search with Optuna for every task: ``lstmkit tune CONFIG``.

CONFIG is a tune file (a base run, the ranges, a metric, a pruner: :mod:`lstmkit.tasks.tune_config`)
or a training config such as ``forecast/sunspots``, searched with its task's objective and default
space (:class:`lstmkit.tasks.registry.Tuning`); ``--set`` overrides the base either way.

Each trial turns its sampled values into ``--set``-style overrides of the base. A classification
trial trains with :func:`lstmkit.tasks.classify.fit_classifier` on the training split (which carves
its validation split, seed ``train.seed``), reports the validation metric after every epoch (a
pruner may stop it there) and returns the best per-epoch value; the official test split is never
looked at. A trial of any other task runs the task's run lifecycle into
``<out>/trials/<study>/<number>`` with the test part never scored (:func:`trial_run`) and returns the
metric read from the ``val`` block of the metrics it returns (:func:`validation_value`). ``lstmkit
train best.yaml`` is the run whose test score counts.

The study lives in an Optuna storage (default ``sqlite:///<out>/study.db``) and resumes when the
command is rerun with the same storage and study name. ``workers > 1`` (classification) creates the
study once, then starts that many processes (one thread each) that share the storage and split the
trials. Outputs in ``--out``: ``trials.csv``, ``trials.json``, ``report.md``,
``optimization_history.png``, ``param_importances.png`` (when it can be computed),
``tune_config.yaml`` (resolved) and ``best.yaml`` (:func:`write_outputs`, the report by
:mod:`lstmkit.eval.tune_report`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..checks import check_int
from ..checkpoint import atomic_write_bytes
from ..eval.tune_report import fmt, write_report
from .classify import ClassifyConfig, fit_classifier, load_data
from .config import build, dump_yaml, to_plain
from .tune_config import PRUNERS, SearchParam, TuneConfig, _pruner, load_tune_config, overrides_for, require_optuna

__all__ = ["SearchParam", "TuneConfig", "load_tune_config", "run_tune", "write_outputs", "WorkerError",
           "validation_value", "PRUNERS"]

log = logging.getLogger(__name__)

_OUTPUTS = ("trials.json", "trials.csv", "report.md", "tune_config.yaml", "best.yaml", "study.db", "trials")


# ------------------------------------------------------------------------------- trials


def _training_part(config: ClassifyConfig) -> tuple[list, np.ndarray]:
    """The training split only: load_data also gives the test split, which tuning never touches."""
    train, _test = load_data(config.data)
    return train


class Objective:
    """The function Optuna minimises or maximises: train one configuration, report per epoch."""

    def __init__(self, config: TuneConfig, inputs: Sequence, labels: np.ndarray) -> None:
        self.config, self.inputs, self.labels = config, inputs, labels

    def __call__(self, trial) -> float:
        optuna = require_optuna()
        tc = self.config
        params = {key: p.suggest(trial, key) for key, p in tc.search.items()}
        run = tc.apply(params)
        trial.set_user_attr("overrides", overrides_for(params))
        trial.set_user_attr("config", to_plain(run))
        trial.set_user_attr("pid", os.getpid())
        metric, sign = tc.metric, (1 if tc.direction == "maximize" else -1)
        seen: list[float] = []

        def report(epoch: int, row: dict) -> None:
            value = float(row[metric])
            seen.append(value)
            trial.report(value, epoch)
            if trial.should_prune():
                trial.set_user_attr("pruned_at_epoch", epoch)
                raise optuna.TrialPruned(f"pruned at epoch {epoch} ({metric} {value:.4f})")

        d = run.data
        quiet = dataclasses.replace(run.train, progress="off")  # one log line per trial, not per epoch
        if run.model.get("name") == "auto":  # a trial is the whole cross-validated search: its chosen CV score
            return self._auto_trial(trial, dataclasses.replace(run, train=quiet), metric)
        start = time.perf_counter()
        try:
            _, result, selected = fit_classifier(self.inputs, self.labels, run.model, quiet, d.normalize, d.min_freq,
                                                 d.max_vocab, callbacks=[report])
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
            trial.set_user_attr("epochs", len(seen))
        best = max(seen, key=lambda v: sign * v if math.isfinite(v) else -math.inf)
        trial.set_user_attr("best_epoch", seen.index(best) + 1)
        # the weights `lstmkit train` keeps are chosen by train.monitor; their score on the metric:
        trial.set_user_attr("selected_value", float(selected.get(metric.removeprefix("val_"), math.nan)))
        return best

    def _auto_trial(self, trial, run: ClassifyConfig, metric: str) -> float:
        """A ``model.name: auto`` trial: the search on the training split (no epochs to prune); its value is the
        chosen candidate's cross-validated ``metric`` (lstmkit.tasks.classify_auto)."""
        from .classify_auto import train_auto

        start = time.perf_counter()
        try:
            fitted = train_auto(self.inputs, self.labels, run)
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        trial.set_user_attr("chosen", fitted.extra_metrics["auto"]["chosen"])
        trial.set_user_attr("epochs", sum(r.epochs for r in fitted.results))  # over the chosen candidate's folds
        return float(fitted.val[metric.removeprefix("val_")])


def validation_value(metrics: dict, metric: str) -> float:
    """``metric`` (``val_X``, X dotted for a nested block) from the ``val`` block of a run's metrics:
    the only block a trial's objective reads."""
    node = metrics.get("val")
    for part in metric.removeprefix("val_").split("."):
        if not isinstance(node, dict) or part not in node:
            held = ", ".join(f"val_{k}" for k in node) if isinstance(node, dict) else "nothing"
            raise ValueError(f"the run reports no {metric} on validation (its val block holds {held}); name another "
                             "metric in a tune file (metric: ...)")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise ValueError(f"{metric} is not a number in the run's metrics: {node!r}")
    return float(node)


def _last(value):
    """An ensemble reports one number per member: the longest (epochs) or latest (best epoch)."""
    return max(value) if isinstance(value, list) and value else value


def trial_run(task, config, run_dir: Path) -> dict:
    """One trial's run: the task's lifecycle with the test part never scored (only ``metrics["val"]`` is
    read)."""
    from .lifecycle import run_task

    return run_task(task.steps, config, run_dir, score_test=False)


class RunObjective:
    """A trial of any task: its own ``train`` into ``<out>/trials/<study>/<number>``, scored by the
    validation metric of the metrics it returns."""

    def __init__(self, config: TuneConfig, out: Path) -> None:
        self.config, self.out = config, out

    def __call__(self, trial) -> float:
        tc = self.config
        params = {key: p.suggest(trial, key) for key, p in tc.search.items()}
        run = tc.apply(params, trial=True)
        run = dataclasses.replace(run, train=dataclasses.replace(run.train, progress="off"))  # one line per trial
        run_dir = self.out / "trials" / trial.study.study_name / str(trial.number)
        trial.set_user_attr("overrides", overrides_for(params))
        trial.set_user_attr("config", to_plain(tc.apply(params)))
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("run_dir", str(run_dir))
        start = time.perf_counter()
        try:
            metrics = trial_run(tc.task, run, run_dir)
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        trial.set_user_attr("epochs", _last(metrics.get("epochs")))
        trial.set_user_attr("best_epoch", _last(metrics.get("best_epoch")))
        value = validation_value(metrics, tc.metric)
        if not math.isfinite(value):
            raise FloatingPointError(f"{tc.metric} is {value}")
        return value


def _storage(url: str):
    """An RDB URL becomes an RDBStorage with heartbeats (a killed worker's trial turns FAIL on the
    next run instead of staying RUNNING) and, for SQLite, a patient lock timeout; other
    storage strings go to Optuna as they are."""
    optuna = require_optuna()
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        return url
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite:") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=30, grace_period=120)


def _sampler(seed: int, offset: int = 0, constant_liar: bool = False):
    """TPE seeded with ``seed + offset``: a resumed study (offset = trials so far) or another
    worker does not replay the same random start-up points."""
    return require_optuna().samplers.TPESampler(seed=(seed + offset) % 2**32, constant_liar=constant_liar)


def _log_trial(study, trial) -> None:
    value = "" if trial.value is None else f" {trial.value:.4f}"
    params = ", ".join(f"{k}={fmt(v)}" for k, v in trial.params.items())
    log.info(f"trial {trial.number} {trial.state.name.lower()}{value} after {trial.user_attrs.get('epochs', '?')} "
             f"epoch(s), {trial.user_attrs.get('seconds', 0):.1f} s: {params}")


def _optimize(config: TuneConfig, storage, study_name: str, n_trials: int, sampler_seed: int,
              constant_liar: bool = False, out: str | os.PathLike = ".") -> None:
    """Load the study (``storage``: a URL or an Optuna storage) and run ``n_trials`` trials in this
    process; ``out``: the study's output directory (where trials of tasks other than classify run)."""
    optuna = require_optuna()
    if config.task.name == "classify":
        objective = Objective(config, *_training_part(build(ClassifyConfig, config.base)))
    else:
        objective = RunObjective(config, Path(out))
    storage = _storage(storage) if isinstance(storage, str) else storage
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=_sampler(config.seed, sampler_seed, constant_liar),
                              pruner=_pruner(config.pruner))
    # a diverging learning rate fails its trial (NaN loss), not the search
    study.optimize(objective, n_trials=n_trials, catch=(FloatingPointError,), callbacks=[_log_trial])


def _worker_main() -> None:
    """Entry point of a worker process (``run_tune`` starts it; the job arrives on stdin)."""
    import torch

    job = json.loads(sys.stdin.read())
    torch.set_num_threads(1)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[worker {job['worker']}] %(message)s"))
    root = logging.getLogger("lstmkit")
    root.handlers[:] = [handler]
    root.setLevel(job["log_level"])
    root.propagate = False
    require_optuna().logging.set_verbosity(require_optuna().logging.WARNING)
    _optimize(TuneConfig.from_dict(job["config"]), job["storage"], job["study_name"], job["n_trials"],
              job["sampler_seed"], constant_liar=True)


class WorkerError(RuntimeError):
    """A worker process exited with an error (its log is on stderr)."""


def _run_workers(config: TuneConfig, storage: str, study_name: str, n_trials: int, workers: int, offset: int) -> None:
    shares = [n_trials // workers + (i < n_trials % workers) for i in range(workers)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    src = str(Path(__file__).resolve().parents[2])  # the directory holding the lstmkit package
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    level = logging.getLogger("lstmkit").getEffectiveLevel()
    procs = []
    try:
        for i, share in enumerate(shares):
            if share == 0:
                continue
            job = {"worker": i, "config": config.to_dict(), "storage": storage, "study_name": study_name,
                   "n_trials": share, "sampler_seed": offset + 1_000_003 * i, "log_level": level}
            p = subprocess.Popen([sys.executable, "-c", "from lstmkit.tasks.tune import _worker_main; _worker_main()"],
                                 stdin=subprocess.PIPE, env=env, text=True)
            p.stdin.write(json.dumps(job))
            p.stdin.close()
            procs.append((i, p))
        log.info(f"{len(procs)} worker processes share {n_trials} trials ({', '.join(map(str, shares))})")
        failed = [(i, p.wait()) for i, p in procs]
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
    failed = [(i, rc) for i, rc in failed if rc != 0]
    if failed:
        raise WorkerError("; ".join(f"worker {i} exited with code {rc}" for i, rc in failed) + " (see its log above)")


def run_tune(config: TuneConfig, out_dir: str | os.PathLike, n_trials: int, storage: str | None = None,
             study_name: str = "tune", workers: int = 1) -> dict:
    """Run ``n_trials`` more trials of the study (created or resumed), then write the outputs;
    returns the summary :func:`write_outputs` returns."""
    optuna = require_optuna()
    n_trials, workers = check_int("n_trials", n_trials), check_int("workers", workers)
    if workers > 1 and config.task.name != "classify":
        raise ValueError(f"--workers {workers}: worker processes share classification studies only; a "
                         f"{config.task.name!r} trial is a full training run (its own process may use every "
                         "thread): run it with --workers 1")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not any((out / n).exists() for n in _OUTPUTS):
        raise ValueError(f"--out {out} is a non-empty directory that is not an lstmkit tune output; choose another")
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{out / 'study.db'}"
    db = _storage(storage)
    # created once here: concurrent creation by several workers races on SQLite
    study = optuna.create_study(storage=db, study_name=study_name, load_if_exists=True,
                                direction=config.direction, sampler=_sampler(config.seed),
                                pruner=_pruner(config.pruner))
    if study.direction.name.lower() != config.direction:
        raise ValueError(f"study {study_name!r} in {storage} was created to {study.direction.name.lower()}, but "
                         f"metric {config.metric} needs {config.direction}; use another --study-name")
    previous = study.user_attrs.get("metric")
    if previous is None:
        study.set_user_attr("metric", config.metric)
        study.set_user_attr("tune_config", config.to_dict())
    elif previous != config.metric:
        raise ValueError(f"study {study_name!r} in {storage} optimises {previous}, not {config.metric}; use another "
                         "--study-name")
    elif study.user_attrs.get("tune_config") != config.to_dict():
        log.warning(f"study {study_name!r} was started with a different tune config; its earlier trials stay in it")
    offset = len(study.trials)
    if offset:
        log.info(f"resuming study {study_name!r}: {offset} trial(s) so far, {n_trials} more")
    atomic_write_bytes(out / "tune_config.yaml", dump_yaml(config.to_dict()).encode())
    start = time.perf_counter()
    workers = min(workers, n_trials)
    try:
        if workers == 1:
            _optimize(config, db, study_name, n_trials, offset, out=out)
        else:
            _run_workers(config, storage, study_name, n_trials, workers, offset)
    finally:  # what finished is written even when a worker failed or the run was interrupted
        seconds = time.perf_counter() - start
        study = optuna.load_study(study_name=study_name, storage=db)
        summary = write_outputs(study, config, out, storage)
    summary["seconds"] = round(seconds, 3)
    return summary


def write_outputs(study, config: TuneConfig, out_dir: str | os.PathLike, storage: str = "") -> dict:
    """best.yaml (the base config with the best trial's values, fully resolved: ``lstmkit train
    best.yaml``; removed while no trial has completed), then the trials, report and plots
    (:func:`lstmkit.eval.tune_report.write_report`, whose summary it returns)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        head = (f"# best trial {best.number} of study {study.study_name!r}: {config.metric} {best.value:.4f} on "
                f"validation\n# lstmkit train best.yaml\n")
        atomic_write_bytes(out / "best.yaml", (head + dump_yaml(to_plain(config.apply(best.params)))).encode())
    elif (out / "best.yaml").exists():
        (out / "best.yaml").unlink()
    return write_report(study, config, out, storage)
