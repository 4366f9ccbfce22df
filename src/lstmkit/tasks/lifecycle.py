"""The one run lifecycle: :func:`run_task` is what ``lstmkit train`` runs for every task, each declaring
its :class:`Steps` (see docs/architecture.md).

A run, in order::

    seed -> steps.prepare(config) -> start_run (config.yaml, written once) -> steps.train(run, data)
         -> steps.score(run, data, "val") -> steps.score(run, data, "test") -> metrics.json
         -> model files (RUN/ and RUN/baselines/<label>/) -> history.json -> report.md -> finish_run

The task declares only what is particular to it (:class:`Steps`): its data, how it trains each
role (``run.fit(role, ...)``: the shared :func:`lstmkit.tasks.trainer.fit`, checkpointed under
``RUN/checkpoint/model`` or ``RUN/checkpoint/baselines/<label>``), its scores on one part, its own
``metrics.json`` keys and its report (an :class:`lstmkit.eval.report.Report` it fills in; the lifecycle
writes it). ``score_test=False`` (a tune trial) never asks for the test part's scores: the run
writes its model, ``history.json`` and a ``metrics.json`` with ``test: null`` and no report.
A role that needs stages of its own (forecasting's selection run and refit per ensemble member)
trains each with ``run.stage("member-1", ...)`` / ``run.stage("member-1/refit", ...)`` and records the
role with ``run.add``: each stage checkpoints in its own folder, so it resumes like every other role.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..checkpoint import META, atomic_write_bytes, load_checkpoint, save_checkpoint
from ..models import create_model
from .config import build
from .runs import (BASELINES_DIR, CHECKPOINT_DIR, MODEL, RoleResult, baseline_dir, checkpointing, common_metrics,
                   environment, finish_run, load_model, rescoring, save_model, saved_config, start_run, write_metrics)
from .trainer import FitResult, fit, seed_everything

__all__ = ["Steps", "Run", "Trained", "Scores", "run_task", "resume_run", "evaluate_run", "test_block", "nested_test_block"]

log = logging.getLogger(__name__)


@dataclass
class Trained:
    """One role of a run: its network (None for a rule such as bicubic or copy-last), the spec
    ``model.json`` records (registry ``name`` + kwargs), its fit, wall and CPU seconds, and the extra
    ``model.json`` fields its saved files carry. ``role``: what metrics.json's common fields say of
    it when the network alone does not tell (an ensemble: its members' parameters and epochs summed)."""

    model: nn.Module | None = None
    spec: dict | None = None
    result: FitResult = field(default_factory=FitResult)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    meta: dict = field(default_factory=dict)
    role: RoleResult | None = None

    @property
    def params(self) -> int:
        return 0 if self.model is None else sum(p.numel() for p in self.model.parameters())

    @property
    def history(self) -> list:
        return self.result.history

    @property
    def device(self) -> str:
        """Where its network is (metrics.json's ``device``)."""
        return str(next(self.model.parameters()).device)

    def fit_fields(self) -> dict:
        """metrics.json's ``epochs``, ``best_epoch`` and ``stopped_early`` of its fit."""
        r = self.result
        return {"epochs": r.epochs, "best_epoch": r.best_epoch, "stopped_early": r.stopped_early}

    def role_result(self) -> RoleResult:
        return self.role or RoleResult(self.params, int(self.result.epochs), float(self.seconds))


@dataclass
class Scores:
    """A task's scores on one part (``"val"`` or ``"test"``): the model's block (``metrics.json``'s
    ``val`` / ``test``), each baseline role's block on the same part, and what the report shows of
    them (predictions, images), which is never written to metrics.json."""

    model: dict
    baselines: dict[str, Any] = field(default_factory=dict)
    outputs: Any = None


class Run:
    """The run being made, as a task's steps see it: ``out`` (the run directory), ``config``,
    ``score_test``, the trained ``roles`` (``"model"`` first, then the baselines by label), and the
    shared ways to build and train a role."""

    def __init__(self, task: str, out: Path, config: Any, checkpoint: Path, score_test: bool) -> None:
        self.task, self.out, self.config, self.checkpoint, self.score_test = task, out, config, checkpoint, score_test
        self.roles: dict[str, Trained] = {}
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    @property
    def train(self):
        return self.config.train

    @property
    def model(self) -> Trained:
        return self.roles[MODEL]

    @property
    def baselines(self) -> dict[str, Trained]:
        return {k: v for k, v in self.roles.items() if k != MODEL}

    def build(self, name: str, kwargs: dict) -> nn.Module:
        """The registry's model ``name`` built from ``kwargs``, with every generator seeded from
        ``train.seed`` first (each role starts from the same seed)."""
        seed_everything(self.train.seed)
        return create_model(name, **kwargs)

    def fit(self, role: str, model: nn.Module, spec: dict, batches, val, loss: Callable, evaluate: Callable,
            meta: dict | None = None) -> Trained:
        """Train ``model`` as ``role`` with the shared loop, checkpointed in its own folder (a resumed run
        continues it there; a finished role comes back without training), and record it."""
        cpu, wall = time.process_time(), time.perf_counter()
        result = self.stage(_folder(role), model, batches, val, loss, evaluate)
        return self.add(role, Trained(model, spec, result, time.perf_counter() - wall, time.process_time() - cpu,
                                      dict(meta or {})))

    def stage(self, name: str, model: nn.Module, batches, val, loss: Callable, evaluate: Callable,
              lr_schedule: list[float] | None = None, meta: dict | None = None) -> FitResult:
        """Train ``model`` with the shared loop as the stage ``name`` of a role (``member-1``,
        ``member-1/refit``), checkpointed in ``RUN/checkpoint/<name>``, without recording a role (the
        task records its role from its stages with :meth:`add`). ``lr_schedule``: a replayed schedule
        (a refit), which is not checkpointed mid-way: its weights are kept there once trained
        (``meta`` beside them), so a resumed run takes them back and a refit cut short runs again whole."""
        where = checkpointing(self.checkpoint / name)
        if lr_schedule is None:
            return fit(model, batches, val, loss, evaluate, self.train, **where)
        folder = where["checkpoint_dir"]
        if (folder / META).is_file():  # trained before the run was interrupted
            model.load_state_dict(load_checkpoint(folder)[0])
            return FitResult(epochs=len(lr_schedule))
        result = fit(model, batches, val, loss, evaluate, self.train, lr_schedule=lr_schedule, log_dir=where["log_dir"])
        save_checkpoint(folder, model.state_dict(), {**(meta or {}), "epochs": len(lr_schedule)})
        return result

    def add(self, role: str, trained: Trained | None = None) -> Trained:
        """Record a role that :meth:`fit` did not train (a rule, or a closed-form fit)."""
        if role in self.roles:
            raise ValueError(f"role {role!r} is already in this run; give baselines distinct labels")
        if not self.roles and role != MODEL:
            raise ValueError(f"the run's first role must be {MODEL!r}, got {role!r}")
        self.roles[role] = trained if trained is not None else Trained()
        return self.roles[role]

    def histories(self) -> dict[str, tuple[list, int | None]]:
        """(history, best epoch) of the model (``"model"``) and of its baseline (``"baseline"``), for a
        report's learning curves."""
        return {("model" if role == MODEL else "baseline"): (t.history, t.result.best_epoch)
                for role, t in self.roles.items()}

    def cpu_seconds(self) -> float:
        return time.process_time() - self.cpu0

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.wall0


def _folder(role: str) -> str:
    """Where a role's files go inside the run (and inside its ``checkpoint/``): the model at the top
    (``model`` for its checkpoint), a baseline under ``baselines/<label>``."""
    if not role or "/" in role or role in (".", ".."):
        raise ValueError(f"a role is a name without '/', got {role!r}")
    return MODEL if role == MODEL else f"{BASELINES_DIR}/{role}"


def test_block(scores: Scores) -> dict:
    """``lstmkit evaluate``'s block where metrics.json keeps each baseline's test scores themselves."""
    return {"test": scores.model, "baselines": scores.baselines}


def nested_test_block(scores: Scores) -> dict:
    """``lstmkit evaluate``'s block where metrics.json keeps each baseline's test scores under ``test``."""
    return {"test": scores.model, "baselines": {role: {"test": b} for role, b in scores.baselines.items()}}


@dataclass(frozen=True)
class Steps:
    """What one task declares into :func:`run_task`.

    - ``prepare(config) -> data``: the task's data, splits carved (:mod:`lstmkit.data.splits`);
      errors here leave no run directory behind;
    - ``train(run, data)``: every role, the model first (``run.fit`` / ``run.add``);
    - ``score(run, data, part) -> Scores``: ``part`` ``"val"`` or ``"test"``; the test part is asked
      for only when the run scores it;
    - ``metrics(run, data, scores) -> dict``: the task's own ``metrics.json`` keys, with
      ``"baselines"``: what it records of each baseline role (``scores`` holds ``"val"`` and ``"test"``);
    - ``report(run, data, metrics, scores) -> Report``: the report, which the lifecycle writes;
    - ``save(run, data)``: the model files, where a role is more than one network (classification's
      ensemble members); by default each role's network goes to ``RUN/`` or ``RUN/baselines/<label>/``;
    - ``restore(run, data)``: for ``lstmkit evaluate`` (:func:`evaluate_run`), what the task's test
      scoring reads beside the roles loaded from the run directory (caption's decoder around its model);
    - ``block(scores) -> dict``: what ``lstmkit evaluate`` prints of the test part's scores, the block
      ``metrics.json`` holds (:func:`test_block`, or :func:`nested_test_block` where metrics.json keeps a
      baseline's test scores under its ``test``);
    - ``given(run, data, options) -> (data, source)``: for ``lstmkit evaluate RUN [--data ...]``, the data
      whose test part is scored, from what ``--data`` names (``data`` None: the run's own) read with the
      command's ``options``, and how the printed block names it (classification: a labelled file or a
      dataset). None: ``--data`` is refused and the test part is ``prepare``'s.
    """

    task: str
    prepare: Callable[[Any], Any]
    train: Callable[[Run, Any], None]
    score: Callable[[Run, Any, str], Scores]
    metrics: Callable[[Run, Any, dict], dict]
    report: Callable[[Run, Any, dict, dict], Any]
    save: Callable[[Run, Any], None] | None = None
    restore: Callable[[Run, Any], None] | None = None
    block: Callable[[Scores], dict] = test_block
    given: Callable[[Run, str | None, dict], tuple[Any, str]] | None = None


def run_task(steps: Steps, config: Any, out_dir: str | os.PathLike, resume: bool = False,
             score_test: bool = True) -> dict:
    """One run of ``steps``' task with ``config`` into ``out_dir``; returns metrics.json's dict.
    ``resume``: continue the interrupted run there (its config.yaml must equal ``config``).
    ``score_test=False``: a tune trial, which never scores the test part."""
    out = Path(out_dir)
    seed_everything(config.train.seed)
    data = steps.prepare(config)
    run = Run(steps.task, out, config, start_run(out, config, resume), score_test)
    steps.train(run, data)
    if MODEL not in run.roles:
        raise ValueError(f"{steps.task}: training recorded no {MODEL!r} role")
    scores = {"val": steps.score(run, data, "val")}
    if score_test:
        scores["test"] = steps.score(run, data, "test")
    roles = {role: t.role_result() for role, t in run.roles.items()}
    m = run.model
    if score_test:
        own = steps.metrics(run, data, scores)
        baselines = own.pop("baselines")
        metrics = {**common_metrics(roles, scores["test"].model, scores["val"].model, baselines), **own}
    else:  # a trial: what the objective reads, and no test part
        baselines = {role: {"val": b} for role, b in scores["val"].baselines.items()}
        metrics = {**common_metrics(roles, None, scores["val"].model, {r: baselines.get(r, {}) for r in run.baselines}),
                   "epochs": m.result.epochs, "best_epoch": m.result.best_epoch, "seed": run.train.seed}
    (steps.save or _save_roles)(run, data)
    metrics = write_metrics(out, metrics, m.history)
    if score_test:
        steps.report(run, data, metrics, scores).write(out, environment())
    finish_run(out)
    return metrics


def resume_run(out_dir: str | os.PathLike, task: str | None = None) -> dict:
    """Continue the interrupted run in ``out_dir`` with the ``config.yaml`` it saved (a run of ``task``,
    or of any task that resumes when None); returns metrics.json. What ``lstmkit train --resume DIR`` runs."""
    from .registry import get_task

    saved = saved_config(out_dir, task)  # raises for a run that does not resume, and says why
    found = get_task(saved.get("task", "classify"))
    return found.train(build(found.config, saved), Path(out_dir), resume=True)


def _save_roles(run: Run, data: Any) -> None:
    for role, t in run.roles.items():
        if t.model is None:
            continue
        where = run.out if role == MODEL else run.out / _folder(role)
        save_model(where, t.model, t.spec, run.task, t.meta)
        if role != MODEL and t.history:
            atomic_write_bytes(where / "history.json", json.dumps(t.history, indent=1, allow_nan=False).encode())


def evaluate_run(steps: Steps, config_cls: type, run_dir: str | os.PathLike, data: str | None = None,
                 options: dict | None = None) -> dict:
    """``lstmkit evaluate RUN [--data ...]`` for every task on the lifecycle: the run's ``config.yaml``
    rebuilds its data through ``steps.prepare`` (seeded as in training; ``steps.given`` where the task
    reads ``--data`` and the command's ``options``), each role of ``metrics.json`` comes back from the run
    directory (its network from ``RUN/`` or its baseline folder, a role without one by its label),
    ``steps.restore`` adds what the task's scoring reads beside them, and ``steps.score(run, data, "test")``
    re-scores them on the device the run trained on (:func:`lstmkit.tasks.runs.rescoring`, which refuses
    ``data`` for a task without ``given``). Returns ``steps.block`` of those scores, the block metrics.json
    holds, after ``"data"``: what was scored."""
    out = Path(run_dir)
    config, device = rescoring(out, config_cls, None if steps.given else data)
    roles = _saved_roles(out)
    seed_everything(config.train.seed)
    run = Run(steps.task, out, config, out / CHECKPOINT_DIR, True)
    if steps.given is None:
        prepared, source = steps.prepare(config), "the run's test split"
    else:
        prepared, source = steps.given(run, data, options or {})
    for role in roles:
        where = out if role == MODEL else baseline_dir(out, role)
        if role == MODEL or (where / META).is_file():
            model, meta = load_model(where, steps.task, device)
            run.add(role, Trained(model, meta["model"], meta=meta))
        else:  # a rule or a retrieval: nothing saved
            run.add(role)
    if steps.restore is not None:
        steps.restore(run, prepared)
    return {"data": source, **steps.block(steps.score(run, prepared, "test"))}


def _saved_roles(out: Path) -> list[str]:
    """The roles of the finished run ``out``: the model, then each baseline of its ``metrics.json``."""
    if not (out / "metrics.json").is_file():
        raise ValueError(f"{out} has no metrics.json: the run did not finish, so there is nothing to re-score "
                         f"(continue it with `lstmkit train --resume {out}`)")
    return [MODEL, *json.loads((out / "metrics.json").read_text()).get("baselines", {})]  # {}: an old classify run
