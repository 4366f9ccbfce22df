"""The task registry: every task lstmkit trains is declared once, in its own module.

A task module ends with ``register_task(Task(...))``: its name, config class and training
function, what ``lstmkit predict`` reads for it and how it predicts, how ``lstmkit evaluate``
re-scores a saved run, what ``lstmkit tune`` optimises and searches by default (:class:`Tuning`),
and what it supports (resume, multi-process training, export). The CLI, ``--resume``, ``--devices``,
tune and export look tasks up here (``lstmkit tasks`` prints the table);
no other list of task names exists in the code. :data:`_MODULES` is where a new task is added:
the modules imported, once, the first time the registry is asked.

Run directories name their task in ``config.yaml`` (``task:``) and in ``model.json``;
:func:`task_of_run` reads it, so every command dispatches on the run itself.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..nn.names import unknown_name

__all__ = ["Task", "Prediction", "Tuning", "register_task", "get_task", "list_tasks", "task_of_run"]

_MODULES = ("classify", "forecast", "segment", "generate", "superres", "video", "clips", "caption")


@dataclass(frozen=True)
class Prediction:
    """What a task's ``predict`` gives back: ``text`` (CSV or JSON) for the CLI to write to
    ``--output`` or stdout, or None when the task wrote its files itself; ``summary`` is printed
    (JSON) either way when there is no text."""

    text: str | None
    summary: dict
    what: str = "predictions"  # e.g. "12 forecasts", for the line that names the output file


@dataclass(frozen=True)
class Tuning:
    """What ``lstmkit tune`` optimises for a task, and the ranges it searches when no tune file names any.

    ``metrics``: the validation numbers the task's training returns, each ``"maximize"`` or
    ``"minimize"``; ``val_X`` is ``metrics["val"]["X"]`` of the returned metrics (a dotted ``X`` reads
    a nested block: ``val_greedy.bleu4``). ``objective``: the one optimised unless a tune file names
    another. ``space``: the default search space in a tune file's ``search`` format (dotted config
    key -> range); a key the base config lacks is left out. ``trial``: ``key=value`` overrides of each
    trial's own run that do not change what the objective reads (e.g. skipping baselines); best.yaml
    does not carry them.
    """

    objective: str
    metrics: dict[str, str]
    space: dict[str, dict]
    trial: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.metrics.items() if not k.startswith("val_") or v not in ("maximize", "minimize")}
        if bad or self.objective not in self.metrics:
            raise ValueError(f"Tuning: metrics must map val_* names to 'maximize' or 'minimize' and include the "
                             f"objective {self.objective!r}, got {self.metrics!r}")


@dataclass(frozen=True)
class Task:
    """What is particular to one task.

    ``train(config, out_dir, resume=False) -> metrics``: one run, writing its run directory.
    ``predict(run_dir, input, options) -> Prediction``: predictions for ``input`` (a path of the
    kind ``predict_input`` names, or None where the task needs none); ``options`` holds the
    command's options by name (``output`` among them), of which the task reads those it lists in
    ``predict_options``. ``evaluate(run_dir, data, options) -> dict``: re-score the saved run on
    its test data (``data`` None) or on ``data``, the block ``metrics.json`` holds; None (every task but
    forecasting): the lifecycle's :func:`lstmkit.tasks.lifecycle.evaluate_run` over ``steps`` (:meth:`rescore`),
    which reads ``--data`` through ``steps.given`` where the task declares it.
    ``multi_process``: None where ``--devices N`` works (the loss is a mean over samples), else why
    not. ``export``: ``"module:function"`` of the task's ONNX graph builder (resolved when a run is
    exported), or None. ``tune``: what ``lstmkit tune`` optimises and searches (:class:`Tuning`).
    ``explain``: ``"module:function"`` of ``explain(run_dir, input, options) -> dict`` (``lstmkit explain``:
    gates, attributions and their faithfulness check; :mod:`lstmkit.explain`), or None.
    ``steps``: what the task declares into the run lifecycle (:class:`lstmkit.tasks.lifecycle.Steps`);
    a tune trial runs them with the test part left unscored.
    """

    name: str
    summary: str
    config: type
    train: Callable[..., dict]
    predict: Callable[..., Prediction]
    predict_input: str
    input_required: bool = True
    predict_options: tuple[str, ...] = ()
    evaluate: Callable[..., dict] | None = None
    evaluate_options: tuple[str, ...] = ()
    resume: bool = True
    multi_process: str | None = "has not been checked under torch.distributed"
    export: str | None = None
    tune: Tuning | None = None
    explain: str | None = None
    steps: Any = None  # the task's lifecycle.Steps (its train is lifecycle.run_task over them); required

    def supports(self) -> dict[str, Any]:
        return {"resume": self.resume, "evaluate": True, "multi-process": self.multi_process is None,
                "export": self.export is not None, "explain": self.explain is not None}

    def rescore(self, run_dir: str | os.PathLike, data: str | None = None, options: dict | None = None) -> dict:
        """``lstmkit evaluate RUN [--data ...]``: the task's own ``evaluate``, else the lifecycle's."""
        if self.evaluate is not None:
            return self.evaluate(run_dir, data, options or {})
        from .lifecycle import evaluate_run

        return evaluate_run(self.steps, self.config, run_dir, data, options)

    def explainer(self) -> Callable[..., dict]:
        """The task's ``explain(run_dir, input, options) -> dict`` (``lstmkit explain``), imported now."""
        if self.explain is None:
            raise ValueError(f"`lstmkit explain` does not explain {self.name!r} runs (it explains "
                             f"{', '.join(t.name for t in list_tasks() if t.explain) or 'no task'})")
        module, _, function = self.explain.partition(":")
        return getattr(importlib.import_module(module), function)


_TASKS: dict[str, Task] = {}
_loaded = False


def register_task(task: Task) -> Task:
    """Add ``task`` to the registry (at the bottom of its module); a duplicate name, or a task without
    the ``steps`` every run goes through, raises."""
    if task.name in _TASKS and _TASKS[task.name] is not task:
        raise ValueError(f"task {task.name!r} is already registered")
    if task.steps is None:
        raise ValueError(f"task {task.name!r} declares no steps: every task runs through the run lifecycle "
                         "(lstmkit.tasks.lifecycle.Steps)")
    _TASKS[task.name] = task
    return task


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _MODULES:
            importlib.import_module(f"{__package__}.{module}")
        _loaded = True


def get_task(name: object) -> Task:
    """The registered task ``name``; an unknown name raises ValueError naming the close ones."""
    _load()
    if not isinstance(name, str) or name not in _TASKS:
        raise unknown_name("task", name, _TASKS, extra=" (see `lstmkit tasks`)")
    return _TASKS[name]


def list_tasks() -> list[Task]:
    _load()
    return [_TASKS[k] for k in sorted(_TASKS)]


def task_of_run(run_dir: str | os.PathLike) -> Task:
    """The task of a run directory, from its ``config.yaml`` (``task:``, classify when absent in
    runs written before the field existed) or, lacking one, its ``model.json``."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"run directory {run} does not exist")
    if (run / "config.yaml").is_file():
        from .config import load_yaml

        return get_task(load_yaml(run / "config.yaml").get("task", "classify"))
    if (run / "model.json").is_file():
        from ..checkpoint import load_checkpoint

        return get_task(load_checkpoint(run)[1].get("task"))
    raise ValueError(f"{run} is not an lstmkit run directory: model.safetensors is missing, and so are the "
                     "config.yaml and model.json that name its task")
