"""The run-directory contract shared by the task pipelines.

A run directory holds ``config.yaml`` (the resolved config), ``model.safetensors`` +
``model.json`` (weights and a description to rebuild the model from the registry; nothing is
unpickled), ``metrics.json`` (``test``, ``val``, ``baselines``, ``train_seconds``, ...),
``history.json`` (one row per epoch) and ``report.md`` with its PNGs. ``lstmkit evaluate RUN``
re-scores a run on the test data its ``config.yaml`` rebuilds (:func:`rescoring`).

Every task's ``metrics.json`` starts from :func:`common_metrics` (the fields every run has, per
role: the model and each baseline, whose files go to ``baselines/<label>/``, :func:`baseline_dir`).
:mod:`lstmkit.tasks.lifecycle` runs these steps in order for every task.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..checkpoint import META, atomic_write_bytes, load_checkpoint, save_checkpoint
from ..checkpoint.train_state import MANIFEST
from ..models import create_model
from .config import build, dump_yaml, load_yaml, to_plain
from .trainer import resolve_device

log = logging.getLogger(__name__)

__all__ = ["RoleResult", "common_metrics", "environment", "save_model", "load_model", "model_spec", "baseline_dir", "write_metrics",
           "BASELINES_DIR",
           "CHECKPOINT_DIR", "LOG_DIR", "interrupted",
           "start_run", "checkpointing", "finish_run", "saved_config", "check_resumable", "claim_run_dir", "rescoring"]


def model_spec(spec: dict, **fixed: Any) -> tuple[str, dict]:
    """(registry name, kwargs) from a config ``model`` section plus values the data fixes
    (e.g. the number of classes); a value the data fixes may not be set in the config."""
    kwargs = dict(spec)
    name = kwargs.pop("name", None)
    if not isinstance(name, str):
        raise ValueError(f"model needs a 'name' (see `lstmkit models`), got {spec!r}")
    for key, value in fixed.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(f"model.{key}={kwargs[key]!r} but the data sets it to {value!r}; remove it")
        kwargs[key] = value
    return name, kwargs


def save_model(directory: str | os.PathLike, model: nn.Module, spec: dict, task: str, extra: dict | None = None
               ) -> None:
    """Write the model's weights and ``{"task", "model": spec, **extra}`` (``spec`` holds the
    registry ``name`` and the kwargs it was built with)."""
    meta = {"task": task, "lstmkit_version": __version__, "model": to_plain(spec), **(extra or {})}
    save_checkpoint(directory, model.state_dict(), meta)


def load_model(directory: str | os.PathLike, task: str | tuple[str, ...], device: str = "cpu"
               ) -> tuple[nn.Module, dict]:
    """(model in eval mode, meta) from a run directory written by :func:`save_model`; raises if
    the directory holds another task's model or weights that do not fit the description."""
    state, meta = load_checkpoint(directory)
    tasks = (task,) if isinstance(task, str) else tuple(task)
    if meta.get("task") not in tasks:
        raise ValueError(f"{Path(directory) / META} holds a {meta.get('task')!r} model; this needs "
                         f"{' or '.join(map(repr, tasks))}")
    spec = dict(meta.get("model") or {})
    name = spec.pop("name", None)
    if not isinstance(name, str):
        raise ValueError(f"{Path(directory) / META}: no model name")
    model = create_model(name, **spec)
    if meta.get("dtype") == "float64":  # weights saved in float64 (a fitted LSTMClassifier) load without rounding
        model.double()
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{Path(directory)}: weights do not fit the described model ({e})") from None
    return model.to(resolve_device(device)).eval(), meta


MODEL = "model"  # the role of the run's own model; every other role is a baseline


@dataclass(frozen=True)
class RoleResult:
    """What one role of a run (the model, or a baseline) reports in metrics.json's common fields.

    ``params``: trainable weights of its network (0 for a baseline without one: a rule such as bicubic
    or copy-last, a retrieval, or a statistical model fitted per series such as Holt-Winters);
    ``epochs``: epochs it trained (0 when fitted in closed form or not trained); ``seconds``: its
    training wall time."""

    params: int = 0
    epochs: int = 0
    seconds: float = 0.0

    @classmethod
    def trained(cls, model: nn.Module | Any, result: Any, seconds: float | None = None) -> "RoleResult":
        """A role trained by :func:`lstmkit.tasks.trainer.fit`: ``model`` (or its parameter count),
        ``result`` its FitResult; ``seconds`` replaces ``result.seconds`` when the role timed more."""
        params = model if isinstance(model, int) else sum(p.numel() for p in model.parameters())
        return cls(int(params), int(result.epochs), float(result.seconds if seconds is None else seconds))


def common_metrics(roles: dict[str, RoleResult], test: dict, val: dict | None, baselines: dict[str, Any]) -> dict:
    """The fields of metrics.json every task writes (the task adds its own after them):

    - ``test``, ``val``: the model's scores on the test and validation parts (their keys are the task's);
    - ``baselines``: ``{role: what the task records of that baseline}`` (``{}`` without baselines);
    - ``params``, ``epochs_by_role``: ``{role: int}`` for ``"model"`` and every baseline role
      (:class:`RoleResult`); a task's own ``epochs`` key keeps its older meaning;
    - ``train_seconds``: the model's training wall time (rounded to the millisecond).

    ``roles`` must hold ``"model"`` and exactly the roles of ``baselines``."""
    if MODEL not in roles:
        raise ValueError(f"roles must include {MODEL!r}, got {sorted(roles)}")
    if set(roles) - {MODEL} != set(baselines):
        raise ValueError(f"the baseline roles {sorted(set(roles) - {MODEL})} differ from the baselines "
                         f"{sorted(baselines)}")
    for role, r in roles.items():
        for key in ("params", "epochs"):
            value = getattr(r, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"roles[{role!r}].{key} must be an int >= 0, got {value!r}")
    order = [MODEL, *baselines]
    return {"test": test, "val": val, "baselines": baselines, "params": {k: roles[k].params for k in order},
            "epochs_by_role": {k: roles[k].epochs for k in order},
            "train_seconds": round(float(roles[MODEL].seconds), 3)}


def environment() -> str:
    """The environment line every report ends with (before "Reproduce")."""
    return (f"lstmkit {__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
            f"{platform.machine()}, {torch.get_num_threads()} thread(s)")


def write_metrics(out: str | os.PathLike, metrics: dict, history: list) -> dict:
    """Write ``metrics.json`` (with ``threads``) and ``history.json`` atomically (``config.yaml`` was
    written once, by :func:`start_run`); returns the metrics as written."""
    out = Path(out)
    metrics = {**metrics, "threads": torch.get_num_threads()}
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=1, allow_nan=False).encode())
    atomic_write_bytes(out / "history.json", json.dumps(history, indent=1, allow_nan=False).encode())
    return metrics


BASELINES_DIR = "baselines"  # RUN/baselines/<label>/: a baseline role's model files and history.json
_OLD_BASELINE_DIR = "baseline"  # runs written before that layout: segment's, action's and volume's one baseline


def baseline_dir(run_dir: str | os.PathLike, label: str) -> Path:
    """The folder of the baseline ``label`` in a run: ``baselines/<label>/``, or ``baseline/`` in a run
    written before every task used that layout (segment, action and volume had one baseline there)."""
    run = Path(run_dir)
    new = run / BASELINES_DIR / label
    if new.is_dir() or not (run / _OLD_BASELINE_DIR / "model.json").is_file():
        return new
    return run / _OLD_BASELINE_DIR


def rescoring(run_dir: str | os.PathLike, config_cls: type, data: str | None) -> tuple[Any, torch.device]:
    """(config, device) to re-score the run ``run_dir`` on its own test data (``lstmkit evaluate RUN``
    for a task whose data is generated or read from its config): the run's ``config.yaml`` rebuilds
    the data, and the scores are computed on the device it trained on, so that on the same machine
    (and thread count) they repeat ``metrics.json``'s to the bit -- CPU where that device is absent.
    ``data`` (``--data``) must be None: only classification runs are scored on other data."""
    run = Path(run_dir)
    saved = load_yaml(run / "config.yaml")
    if data is not None:
        raise ValueError(f"evaluate --data applies to classification runs; a {saved.get('task')!r} run is re-scored "
                         f"on its own test split, rebuilt from {run / 'config.yaml'}")
    train = saved.get("train") or {}
    try:
        device = resolve_device(train.get("device", "auto"))
    except ValueError:
        log.warning(f"{run} trained on {train.get('device')!r}, which is not available here: scoring on the CPU "
                    "(the last digits may differ from metrics.json)")
        saved, device = {**saved, "train": {**train, "device": "cpu"}}, torch.device("cpu")
    return build(config_cls, saved), device


# ------------------------------------------------------------------------------ resume

def _resumable() -> list[str]:
    """The tasks whose runs checkpoint as they train and continue with ``lstmkit train --resume DIR``."""
    from .registry import list_tasks

    return [t.name for t in list_tasks() if t.resume]


CHECKPOINT_DIR = "checkpoint"  # RUN/checkpoint/ (classify) or RUN/checkpoint/<role>/ (a task that trains several models)
LOG_DIR = "tensorboard"  # RUN/tensorboard/<role>/: train.logger's files (classify's role is "model"); kept with the run


def interrupted(out: str | os.PathLike) -> bool:
    """Whether the run directory ``out`` holds a checkpoint to resume: a manifest in ``checkpoint/``
    or in one of its role folders."""
    root = Path(out) / CHECKPOINT_DIR
    return root.is_dir() and any(root.rglob(MANIFEST))


_RUN_FILES = ("config.yaml", "model.json", "model.safetensors", "metrics.json", CHECKPOINT_DIR)


def claim_run_dir(out: str | os.PathLike, overwrite: bool = False, flag: str = "--out") -> Path:
    """Make sure a new run may write into ``out``: it must not exist yet, or be empty. A directory
    holding an lstmkit run (finished or interrupted) is refused unless ``overwrite``, which empties
    it first, so no file of the old run (a ``model.onnx``, say) is left beside the new one; a
    non-empty directory that is not an lstmkit run is refused even then (it is not ours to delete)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return out
    if not any((out / name).exists() for name in _RUN_FILES):
        raise ValueError(f"{flag} {out} is a non-empty directory that is not an lstmkit run; choose another")
    if not overwrite:
        if interrupted(out):
            raise ValueError(f"{flag} {out} holds an interrupted run: continue it with `lstmkit train --resume {out}`, "
                             "start it over with --overwrite, or choose another --out")
        state = "a finished run" if (out / "metrics.json").is_file() else "an unfinished run with no checkpoint"
        raise ValueError(f"{flag} {out} holds {state}, which is never overwritten silently: choose another --out, or "
                         "pass --overwrite to delete it and start again")
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return out


def start_run(out_dir: str | os.PathLike, config: Any, resume: bool = False) -> Path:
    """Make ``out_dir`` ready for a run of ``config`` and return its checkpoint root.

    A new run creates the directory, removes an earlier run's checkpoints and logger files and writes
    ``config.yaml`` first, so an interrupted run can be resumed. ``resume`` checks instead that the
    directory holds this very config and a checkpoint (:func:`check_resumable`)."""
    out = Path(out_dir)
    resolved = to_plain(config)
    if resume:
        check_resumable(out, type(config), resolved)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT_DIR, LOG_DIR):  # an earlier run's, in a directory being reused
            if (out / name).exists():
                shutil.rmtree(out / name)
        atomic_write_bytes(out / "config.yaml", dump_yaml(resolved).encode())
    return out / CHECKPOINT_DIR


def checkpointing(directory: Path) -> dict:
    """``fit``'s ``checkpoint_dir``, ``resume`` and ``log_dir`` for the model whose checkpoint directory
    is ``directory`` (``RUN/checkpoint/<role>``, or ``RUN/checkpoint`` for a one-model run): continue
    from it when it holds a checkpoint (a resumed run; a finished model comes back without training);
    the logger writes to the same role under ``RUN/tensorboard`` (``model`` for a one-model run)."""
    root = next((p for p in (directory, *directory.parents) if p.name == CHECKPOINT_DIR), None)
    if root is None:
        raise ValueError(f"{directory} is not inside a run's {CHECKPOINT_DIR}/ folder (start_run returns it)")
    role = directory.relative_to(root).parts or ("model",)
    return {"checkpoint_dir": directory, "resume": (directory / MANIFEST).is_file(),
            "log_dir": root.parent.joinpath(LOG_DIR, *role)}


def finish_run(out_dir: str | os.PathLike) -> None:
    """Remove the checkpoints of a run whose directory is complete."""
    shutil.rmtree(Path(out_dir) / CHECKPOINT_DIR, ignore_errors=True)


def saved_config(out_dir: str | os.PathLike, task: str | None = None) -> dict:
    """The ``config.yaml`` of the run directory ``out_dir``, which must be a run of ``task`` (any
    task that resumes when None)."""
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"run directory {out} does not exist")
    if not (out / "config.yaml").is_file():
        raise ValueError(f"{out} has no config.yaml: not a run directory that can be resumed (runs of "
                         f"{', '.join(_resumable())} write it when they start)")
    data = load_yaml(out / "config.yaml")
    found = data.get("task", "classify")
    from .registry import get_task

    if not get_task(found).resume:
        raise ValueError(f"{out} is a {found!r} run, which does not resume (runs of {', '.join(_resumable())} do); "
                         "run `lstmkit train CONFIG` again")
    if task is not None and found != task:
        raise ValueError(f"{out} is a {found!r} run, not a {task!r} one: continue it with lstmkit train --resume DIR")
    return data


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_resumable(out: Path, config_cls: type, resolved: dict) -> None:
    """Refuse to resume ``out`` with a config other than its saved one, or when it holds no
    checkpoint to resume from."""
    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        raise ValueError(f"{out} has no config.yaml: not a run directory that can be resumed")
    saved = to_plain(build(config_cls, load_yaml(saved_path)))
    a, b = _flat(saved), _flat(resolved)
    changed = sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))
    if changed:
        diff = ", ".join(f"{k} {a.get(k, '<unset>')!r} there, {b.get(k, '<unset>')!r} here" for k in changed)
        raise ValueError(f"{saved_path} differs from the config given to resume: {diff}; resume with the saved "
                         "config (lstmkit train --resume DIR)")
    if not interrupted(out):
        if (out / "metrics.json").is_file():
            raise ValueError(f"{out} is a finished run (metrics.json written, its checkpoint removed): "
                             "nothing to resume")
        raise ValueError(f"{out} has no checkpoint: the run stopped before its first one was written; train it again")
