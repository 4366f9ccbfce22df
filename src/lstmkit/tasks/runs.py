"""The run-directory contract shared by the task pipelines.

A run directory holds ``config.yaml`` (the resolved config), ``model.safetensors`` +
``model.json`` (weights and a description to rebuild the model from the registry; nothing is
unpickled), ``metrics.json`` (``test``, ``val``, ``baselines``, ``train_seconds``, ...),
``history.json`` (one row per epoch) and ``report.md`` with its PNGs.

The classification and forecasting pipelines predate this module and write the same files
themselves; the vision pipelines use :func:`save_model`, :func:`load_model` and
:func:`write_run`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..checkpoint import META, atomic_write_bytes, load_checkpoint, save_checkpoint
from ..models import create_model
from .config import dump_yaml, to_plain
from .trainer import resolve_device

__all__ = ["save_model", "load_model", "write_run", "model_spec"]


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
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{Path(directory)}: weights do not fit the described model ({e})") from None
    return model.to(resolve_device(device)).eval(), meta


def write_run(out: str | os.PathLike, config: Any, metrics: dict, history: list | None = None) -> dict:
    """Write ``config.yaml``, ``metrics.json`` and ``history.json`` atomically (the model and the
    report are written by the task); returns the metrics as written (with ``threads``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {**metrics, "threads": torch.get_num_threads()}
    atomic_write_bytes(out / "config.yaml", dump_yaml(to_plain(config)).encode())
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=1, allow_nan=False).encode())
    if history is not None:
        atomic_write_bytes(out / "history.json", json.dumps(history, indent=1, allow_nan=False).encode())
    return metrics
