"""Hyperparameter search for sequence classification with Optuna: ``lstmkit tune CONFIG``.

A tune config names a base run and the ranges to search (seed 004 §5: hidden size, layers,
learning rate, batch size, dropout)::

    base: classify/digits          # a preset or a YAML file (relative to this file), or inline
                                   # task/data/model/train sections instead of base
    overrides: {train.epochs: 30}  # optional, applied to the base (also a list of "key=value")
    metric: val_accuracy           # val_accuracy | val_macro_f1 (maximised) | val_loss (minimised)
    seed: 0                        # the TPE sampler's seed
    search:
      model.hidden_size: {type: int, low: 16, high: 256, log: true}
      train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      train.batch_size: {type: categorical, choices: [16, 32, 64, 128]}
    pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 5}

Each search key is a dotted path that must exist in the resolved base config (``model.*`` keys
the base's model section names, any ``train.*`` field, and ``data.normalize``, ``data.min_freq``,
``data.max_vocab``); a key the base lacks can be added through ``overrides`` first. Sequence
length is not searchable: a classification run takes each series at its own length and there is
no truncation or resampling knob to tune (windows belong to forecasting).

Each trial turns its sampled values into ``--set``-style overrides of the base, trains with
:func:`lstmkit.tasks.classify.fit_classifier` on the training split (which carves its validation
split, seed ``train.seed``), reports the validation metric after every epoch (a pruner may stop
it there) and returns the best per-epoch value. The official test split is never looked at:
``lstmkit train best.yaml`` scores it once, for the chosen configuration only.

The study lives in an Optuna storage (default ``sqlite:///<out>/study.db``) and resumes when the
command is rerun with the same storage and study name. ``workers > 1`` creates the study once,
then starts that many processes (one thread each) that share the storage and split the trials.
Outputs in ``--out``: ``trials.csv``, ``trials.json``, ``report.md``, ``optimization_history.png``,
``param_importances.png`` (when it can be computed), ``tune_config.yaml`` (resolved) and
``best.yaml`` (the base with the best values, fully resolved: ``lstmkit train best.yaml``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import io
import json
import logging
import math
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from ..checks import check_int
from ..checkpoint import atomic_write_bytes
from .classify import ClassifyConfig, fit_classifier, load_data
from .config import apply_overrides, build, dump_yaml, load_yaml, to_plain

__all__ = ["SearchParam", "TuneConfig", "load_tune_config", "run_tune", "write_outputs",
           "run_tune_command", "METRICS", "PRUNERS"]

log = logging.getLogger(__name__)

# metric -> direction
METRICS = {"val_accuracy": "maximize", "val_macro_f1": "maximize", "val_loss": "minimize"}
# pruner name -> optuna.pruners class
PRUNERS = {"median": "MedianPruner", "percentile": "PercentilePruner", "successive_halving": "SuccessiveHalvingPruner",
           "hyperband": "HyperbandPruner", "threshold": "ThresholdPruner", "none": "NopPruner"}
# data fields that change preprocessing only (the data source stays fixed for a study)
_DATA_KEYS = ("data.normalize", "data.min_freq", "data.max_vocab")
_BASE_SECTIONS = ("task", "data", "model", "train")
_TUNE_KEYS = ("base", "overrides", "metric", "seed", "search", "pruner")
_OUTPUTS = ("trials.json", "trials.csv", "report.md", "tune_config.yaml", "best.yaml", "study.db")
_PRESETS = resources.files("lstmkit") / "configs"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError("hyperparameter search needs Optuna: pip install 'lstmkit[tune]'") from None
    return optuna


# --------------------------------------------------------------------------------- config


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class SearchParam:
    """One search dimension: ``int`` / ``float`` between ``low`` and ``high`` (``log`` scale or a
    ``step``), or ``categorical`` over ``choices``."""

    type: Literal["int", "float", "categorical"]
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: list | None = None

    def __post_init__(self) -> None:
        if self.type not in ("int", "float", "categorical"):
            raise ValueError(f"type must be one of 'int', 'float', 'categorical', got {self.type!r}")
        if not isinstance(self.log, bool):
            raise ValueError(f"log must be true or false, got {self.log!r}")
        if self.type == "categorical":
            extra = [k for k in ("low", "high", "step") if getattr(self, k) is not None] + (["log"] if self.log else [])
            if extra:
                raise ValueError(f"a categorical parameter takes choices only, not {', '.join(extra)}")
            if not isinstance(self.choices, list) or not self.choices:
                raise ValueError(f"choices must be a non-empty list, got {self.choices!r}")
            bad = [c for c in self.choices if not (c is None or isinstance(c, (bool, int, float, str)))]
            if bad:
                raise ValueError(f"choices must be numbers, strings, booleans or null (Optuna stores them), "
                                 f"got {bad[0]!r}")
            if len({json.dumps(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"choices has duplicates: {self.choices}")
            return
        if self.choices is not None:
            raise ValueError(f"choices apply to type categorical only; a {self.type} parameter takes low and high")
        kind = int if self.type == "int" else (int, float)
        for name in ("low", "high"):
            v = getattr(self, name)
            if not (_is_number(v) and isinstance(v, kind)):
                raise ValueError(f"{name} must be {'an int' if self.type == 'int' else 'a finite number'}, got {v!r}")
        if self.type == "float":
            self.low, self.high = float(self.low), float(self.high)
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0, got low={self.low}")
        if self.step is not None:
            if self.log:
                raise ValueError("step and log cannot be combined")
            if not (_is_number(self.step) and isinstance(self.step, kind) and self.step > 0):
                kind_name = "int" if self.type == "int" else "number"
                raise ValueError(f"step must be a positive {kind_name}, got {self.step!r}")

    def endpoints(self) -> list:
        """The values that bound the range (each must make a valid config)."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def suggest(self, trial, name: str):
        if self.type == "int":
            return trial.suggest_int(name, self.low, self.high, step=self.step or 1, log=self.log)
        if self.type == "float":
            return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)
        return trial.suggest_categorical(name, self.choices)

    def describe(self) -> str:
        if self.type == "categorical":
            return ", ".join(map(str, self.choices))
        scale = ", log" if self.log else (f", step {self.step}" if self.step is not None else "")
        return f"{self.low:g} .. {self.high:g}{scale}"


def _lookup(data: dict, dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def overrides_for(params: dict[str, Any]) -> list[str]:
    """``key=value`` overrides (``lstmkit train --set``) for sampled values."""
    return [f"{k}={json.dumps(v)}" for k, v in params.items()]


def _pruner(spec: dict):
    optuna = _optuna()
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"pruner must be a mapping with a type ({', '.join(PRUNERS)}), got {spec!r}")
    kwargs = dict(spec)
    name = kwargs.pop("type")
    if name not in PRUNERS:
        from ..nn.names import unknown_name

        raise unknown_name("pruner", name, PRUNERS)
    try:
        return getattr(optuna.pruners, PRUNERS[name])(**kwargs)
    except TypeError as e:
        raise ValueError(f"pruner {name!r}: {e} (see optuna.pruners.{PRUNERS[name]})") from None


@dataclass
class TuneConfig:
    """A search: the resolved base run (a classify config as a plain mapping), the ranges and the
    metric; validated on construction."""

    base: dict
    search: dict[str, SearchParam]
    metric: Literal["val_accuracy", "val_macro_f1", "val_loss"] = "val_accuracy"
    pruner: dict = field(default_factory=lambda: {"type": "median"})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(map(repr, METRICS))}, got {self.metric!r}")
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.base, dict):
            raise ValueError(f"base must be a classify config mapping, got {self.base!r}")
        if self.base.get("task", "classify") != "classify":
            raise ValueError(f"lstmkit tune searches classification runs (task: classify); the base has "
                             f"task {self.base.get('task')!r}")
        self.base = to_plain(build(ClassifyConfig, self.base))  # fully resolved: every field present
        if not isinstance(self.search, dict) or not self.search:
            raise ValueError("search must be a non-empty mapping of dotted config keys to ranges, "
                             "e.g. {train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}")
        search = {}
        for key, spec in self.search.items():
            key = str(key)
            if not (key.startswith(("model.", "train.")) or key in _DATA_KEYS):
                raise ValueError(f"search key {key!r}: only model.*, train.* and {', '.join(_DATA_KEYS)} can be "
                                 "searched (the data source and the task stay fixed within a study)")
            found, _ = _lookup(self.base, key)
            if not found:
                raise ValueError(f"search key {key!r} does not exist in the base config; add it to the base "
                                 f"(e.g. overrides: {{{key}: VALUE}}) or fix the name")
            try:
                param = spec if isinstance(spec, SearchParam) else build(SearchParam, spec, f"search.{key}")
            except ValueError as e:
                raise ValueError(f"search.{key}: {e}") from None
            for value in param.endpoints():  # each bound must give a buildable config
                try:
                    build(ClassifyConfig, apply_overrides(self.base, overrides_for({key: value})))
                except ValueError as e:
                    raise ValueError(f"search.{key}: the value {value!r} makes an invalid config ({e})") from None
            search[key] = param
        self.search = search
        _pruner(self.pruner)  # validates type and arguments

    @property
    def direction(self) -> str:
        return METRICS[self.metric]

    def apply(self, params: dict[str, Any]) -> ClassifyConfig:
        """The base config with sampled values applied (as ``--set`` overrides)."""
        return build(ClassifyConfig, apply_overrides(self.base, overrides_for(params)))

    def to_dict(self) -> dict:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TuneConfig":
        return build(cls, data)


def _find(path: str, relative_to: Path | None = None) -> Path:
    """A YAML file (relative paths also against ``relative_to``) or a packaged preset."""
    for candidate in (Path(path), *((relative_to / path,) if relative_to is not None else ())):
        if candidate.is_file():
            return candidate
    preset = _PRESETS.joinpath(*f"{path.removesuffix('.yaml')}.yaml".split("/"))
    if preset.is_file():
        return Path(str(preset))
    raise FileNotFoundError(f"config {path} does not exist (nor is it a packaged preset such as classify/digits)")


def _as_overrides(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, dict):
        return overrides_for({str(k): v for k, v in value.items()})
    raise ValueError(f"{where} must be a mapping {{key.sub: value}} or a list of 'key.sub=value' strings, "
                     f"got {value!r}")


def load_tune_config(path: str | os.PathLike, overrides: Sequence[str] = (), seed: int | None = None) -> TuneConfig:
    """A :class:`TuneConfig` from a YAML file or a packaged preset (``tune/digits``).

    ``overrides`` (``key=value``) apply to the base run after the file's own ``overrides``;
    ``seed`` replaces the file's sampler seed."""
    file = _find(str(path))
    data = load_yaml(file)
    unknown = [k for k in data if k not in _TUNE_KEYS + _BASE_SECTIONS]
    if unknown:
        import difflib

        close = difflib.get_close_matches(str(unknown[0]), _TUNE_KEYS + _BASE_SECTIONS, n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"{file}: unknown key {unknown[0]!r}{hint} (valid: {', '.join(_TUNE_KEYS + _BASE_SECTIONS)})")
    inline = {k: data[k] for k in _BASE_SECTIONS if k in data}
    if "base" in data:
        if inline:
            raise ValueError(f"{file}: give the base run either as base: (a preset or file) or as inline "
                             f"{'/'.join(_BASE_SECTIONS)} sections, not both (found {', '.join(inline)})")
        if not isinstance(data["base"], str):
            raise ValueError(f"{file}: base must name a preset (e.g. classify/digits) or a YAML file, "
                             f"got {data['base']!r}")
        base = load_yaml(_find(data["base"], file.parent))
    elif inline:
        base = inline
    else:
        raise ValueError(f"{file}: no base run; add base: classify/digits (a preset or file) or "
                         "data/model/train sections")
    base = apply_overrides(base, _as_overrides(data.get("overrides"), "overrides") + list(overrides))
    fields = {k: data[k] for k in ("metric", "seed", "search", "pruner") if k in data}
    if "search" not in fields:
        raise ValueError(f"{file}: no search section: name the ranges to search, e.g. search: "
                         "{train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}")
    if seed is not None:
        fields["seed"] = seed
    return TuneConfig(base=base, **fields)


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
        optuna = _optuna()
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


def _storage(url: str):
    """An RDB URL becomes an RDBStorage with heartbeats (a killed worker's trial turns FAIL on the
    next run instead of staying RUNNING) and, for SQLite, a patient lock timeout; other
    storage strings go to Optuna as they are."""
    optuna = _optuna()
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        return url
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite:") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=30, grace_period=120)


def _sampler(seed: int, offset: int = 0, constant_liar: bool = False):
    """TPE seeded with ``seed + offset``: a resumed study (offset = trials so far) or another
    worker does not replay the same random start-up points."""
    return _optuna().samplers.TPESampler(seed=(seed + offset) % 2**32, constant_liar=constant_liar)


def _log_trial(study, trial) -> None:
    value = "" if trial.value is None else f" {trial.value:.4f}"
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    log.info(f"trial {trial.number} {trial.state.name.lower()}{value} after {trial.user_attrs.get('epochs', '?')} "
             f"epoch(s), {trial.user_attrs.get('seconds', 0):.1f} s: {params}")


def _optimize(config: TuneConfig, storage, study_name: str, n_trials: int, sampler_seed: int,
              constant_liar: bool = False) -> None:
    """Load the study (``storage``: a URL or an Optuna storage) and run ``n_trials`` trials in this process."""
    optuna = _optuna()
    base = build(ClassifyConfig, config.base)
    x, y = _training_part(base)
    storage = _storage(storage) if isinstance(storage, str) else storage
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=_sampler(config.seed, sampler_seed, constant_liar),
                              pruner=_pruner(config.pruner))
    # a diverging learning rate fails its trial (NaN loss), not the search
    study.optimize(Objective(config, x, y), n_trials=n_trials, catch=(FloatingPointError,), callbacks=[_log_trial])


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
    _optuna().logging.set_verbosity(_optuna().logging.WARNING)
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
    optuna = _optuna()
    n_trials, workers = check_int("n_trials", n_trials), check_int("workers", workers)
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
            _optimize(config, db, study_name, n_trials, offset)
        else:
            _run_workers(config, storage, study_name, n_trials, workers, offset)
    finally:  # what finished is written even when a worker failed or the run was interrupted
        seconds = time.perf_counter() - start
        study = optuna.load_study(study_name=study_name, storage=db)
        summary = write_outputs(study, config, out, storage)
    summary["seconds"] = round(seconds, 3)
    return summary


# ------------------------------------------------------------------------------- outputs


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _trial_row(t) -> dict:
    attrs = t.user_attrs
    return {"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params),
            "duration_s": None if t.duration is None else round(t.duration.total_seconds(), 3),
            "train_seconds": attrs.get("seconds"), "epochs": attrs.get("epochs"), "best_epoch": attrs.get("best_epoch"),
            "pruned_at_epoch": attrs.get("pruned_at_epoch"), "selected_value": attrs.get("selected_value"),
            "pid": attrs.get("pid"), "overrides": attrs.get("overrides"),
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
    optuna = _optuna()
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


def _report(study, config: TuneConfig, storage: str, rows: list[dict], best, plots: list[str]) -> str:
    metric, direction = config.metric, config.direction
    counts = {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    train = config.base["train"]
    lines = [f"# Hyperparameter search: {study.study_name}", "",
             f"Metric: best per-epoch `{metric}` ({direction}) on the validation split carved from the training "
             f"data (train.val_fraction={train['val_fraction']}, seed {train['seed']}). The test split is not used "
             "here; `lstmkit train best.yaml` scores it once for the chosen configuration.", "",
             f"Storage `{storage}`; {len(rows)} trial(s): "
             + ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
             + f"; pruner {config.pruner}; TPE sampler seed {config.seed}.", ""]
    if best is None:
        lines += ["No trial completed: no best configuration yet (best.yaml not written).", ""]
    else:
        a = best.user_attrs
        lines += ["## Best trial", "",
                  f"Trial {best.number}: {metric} **{best.value:.4f}** at epoch {a.get('best_epoch')} of "
                  f"{a.get('epochs')}, {a.get('seconds', 0):.1f} s of training. The weights `lstmkit train` keeps are "
                  f"chosen by train.monitor ({train['monitor']}); with those, {metric} was "
                  f"{_fmt(a.get('selected_value'))}.", "",
                  "| parameter | value |", "|---|---|", *(f"| {k} | {_fmt(v)} |" for k, v in best.params.items()), "",
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
                         + " | ".join(_fmt(r["params"].get(k, "")) for k in keys)
                         + f" | {r['epochs']} | {_fmt(r['train_seconds'])} |")
        lines.append("")
    lines += ["## Search space", "", "| parameter | type | range |", "|---|---|---|",
              *(f"| {k} | {p.type} | {p.describe()} |" for k, p in config.search.items()), ""]
    if plots:
        lines += ["## Plots", "", *(f"![{Path(p).stem.replace('_', ' ')}]({p})" for p in plots), ""]
    return "\n".join(lines)


def write_outputs(study, config: TuneConfig, out_dir: str | os.PathLike, storage: str = "") -> dict:
    """trials.csv / trials.json, report.md, plots and best.yaml for every trial of ``study``;
    returns a summary (counts, best trial, paths)."""
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
    if best is not None:
        resolved = to_plain(config.apply(best.params))
        head = (f"# best trial {best.number} of study {study.study_name!r}: {config.metric} {best.value:.4f} on "
                f"validation\n# lstmkit train best.yaml\n")
        atomic_write_bytes(out / "best.yaml", (head + dump_yaml(resolved)).encode())
    elif (out / "best.yaml").exists():
        (out / "best.yaml").unlink()
    plots = _write_plots(study, out, config.metric, len(complete))
    atomic_write_bytes(out / "report.md", _report(study, config, storage, rows, best, plots).encode())
    counts = {s.lower(): sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    return {"study": study.study_name, "storage": storage, "out": str(out), "metric": config.metric,
            "direction": config.direction, "trials": len(rows), **counts,
            "best": None if best is None else {"number": best.number, "value": best.value, "params": best.params},
            "best_config": None if best is None else str(out / "best.yaml")}


# ----------------------------------------------------------------------------------- CLI


def run_tune_command(args: argparse.Namespace) -> int:
    """``lstmkit tune``: runs the search, writes the outputs, prints a JSON summary on stdout."""
    optuna = _optuna()
    config = load_tune_config(args.config, args.set or [], args.seed)
    name = args.study_name or Path(args.config).stem
    out = Path(args.out) if args.out else Path("runs") / "tune" / name
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials are logged by lstmkit, one line each
    try:
        summary = run_tune(config, out, args.trials, args.storage, name, args.workers)
    except WorkerError as e:
        log.error(f"lstmkit tune: {e}; the outputs in {out} cover the trials that finished")
        return 1
    sys.stdout.write(json.dumps(summary, indent=1) + "\n")  # the CLI's result on stdout
    return 0
