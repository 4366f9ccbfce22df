"""Averaged-probability ensembles of classifiers: ``train.ensemble: K`` for any classification config.

Member ``i`` (0-based) of a ``K > 1`` ensemble trains from seed ``train.seed * 1000 + i`` (as
forecasting's ensembles do), so it carves its own validation split, draws its own initial weights
and batch order; ``K == 1`` is the plain run with ``train.seed``. The ensemble's class
probabilities are the mean of its members' softmax probabilities, and it is scored as one model:
its loss is the negative log-likelihood of those averaged probabilities.

A run directory of an ensemble holds member 0 where a one-model run holds its model
(``model.safetensors`` + ``model.json``, whose ``ensemble.members`` lists the other members'
folders) and member ``i >= 1`` in ``members/<i>/``; :func:`lstmkit.tasks.classify.load_classifier`
returns an :class:`EnsembleClassifier` of all of them, so ``lstmkit predict`` and ``lstmkit
evaluate`` use every member.

``train.budget_seconds`` (optional) caps the wall time of the members' training: a member that has
not started when the budget is spent is skipped (at least one always trains), and the run's
``metrics.json`` says how many were trained.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..checks import check_int
from ..eval.metrics import confusion_matrix, logit_scores, per_class_report
from .trainer import TrainConfig

__all__ = ["ClassifyTrainConfig", "ClassifyEvalConfig", "EnsembleClassifier", "member_seed", "MEMBERS_DIR",
           "save_members",
           "load_members", "member_scores"]

log = logging.getLogger(__name__)

MEMBERS_DIR = "members"


@dataclass
class ClassifyTrainConfig(TrainConfig):
    """:class:`lstmkit.tasks.trainer.TrainConfig` plus what classification runs add: ``ensemble``
    (members averaged) and ``budget_seconds`` (wall-time cap of the training; ``model.name: auto``
    uses its own default, :data:`lstmkit.tasks.classify_auto.DEFAULT_BUDGET`, when null)."""

    ensemble: int = 1
    budget_seconds: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ensemble = check_int("train.ensemble", self.ensemble)
        b = self.budget_seconds
        if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b <= 0):
            raise ValueError(f"train.budget_seconds must be a positive number of seconds or null, got {b!r}")


@dataclass
class ClassifyEvalConfig:
    """What a classification run scores beside its model: ``baselines``, names from
    :data:`lstmkit.eval.classify_baselines.BASELINES` (fitted on the training split, scored on the test
    split; ``[]`` turns them off), as forecasting's ``evaluate.baselines`` lists its baselines."""

    baselines: list[str] = field(default_factory=lambda: ["minirocket", "knn_dtw"])

    def __post_init__(self) -> None:
        from ..eval.classify_baselines import check_baselines

        self.baselines = check_baselines(self.baselines)


def member_seed(seed: int, i: int, k: int) -> int:
    """The training seed of member ``i`` of ``k`` (``seed`` itself for a single model)."""
    return seed if k == 1 else seed * 1000 + i


@dataclass
class EnsembleClassifier:
    """Members (:class:`lstmkit.tasks.classify.Classifier`) whose probabilities are averaged; the
    same interface as one classifier (classes, predict_proba, predict, evaluate)."""

    members: list
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        first = self.members[0].classes
        for i, m in enumerate(self.members[1:], 1):
            if m.classes != first:
                raise ValueError(f"ensemble member {i} has classes {m.classes}, member 0 has {first}")

    @property
    def pre(self):
        return self.members[0].pre

    @property
    def classes(self) -> list:
        return self.members[0].classes

    @property
    def model(self):
        raise ValueError(f"this run is an ensemble of {len(self.members)} models (train.ensemble or model.name auto); "
                         "it has no single model to export: export a one-model run")

    def member_probas(self, inputs: Sequence) -> np.ndarray:
        """(members, n, C) probabilities of every member."""
        return np.stack([m.predict_proba(inputs) for m in self.members])

    def predict_proba(self, inputs: Sequence) -> np.ndarray:
        """(n, C): the members' probabilities averaged."""
        return self.member_probas(inputs).mean(0)

    def predict(self, inputs: Sequence) -> list:
        return self.pre.labels.decode(torch.as_tensor(self.predict_proba(inputs).argmax(1)))

    def evaluate(self, inputs: Sequence, labels: Sequence) -> tuple[dict, list[dict], np.ndarray]:
        """(metrics incl. loss and n, per-class report, confusion matrix) of the averaged probabilities."""
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
        return scores_of(self.predict_proba(inputs), self.pre.targets(labels), self.classes)


def scores_of(proba: np.ndarray, y: np.ndarray, classes: Sequence) -> tuple[dict, list[dict], np.ndarray]:
    """(metrics incl. loss (NLL of ``proba``) and n, per-class report, confusion matrix)."""
    log_p = torch.log(torch.as_tensor(proba, dtype=torch.float64).clamp_min(1e-12))
    y = np.asarray(y)
    pred, k = proba.argmax(1), len(classes)
    metrics = {**logit_scores(log_p, torch.as_tensor(y), k), "n": len(y)}
    return metrics, per_class_report(y, pred, list(classes)), confusion_matrix(y, pred, k)


def member_scores(ensemble: EnsembleClassifier, inputs: Sequence, labels: Sequence) -> list[dict]:
    """Each member's own scores (accuracy, macro-F1, loss) on (inputs, labels)."""
    y = ensemble.pre.targets(labels)
    out = []
    for p in ensemble.member_probas(inputs):
        m, _, _ = scores_of(p, y, ensemble.classes)
        out.append({k: m[k] for k in ("accuracy", "macro_f1", "loss")})
    return out


def save_members(out: Path, members: list, extra: dict, member_extra: Sequence[dict] | None = None) -> None:
    """Member 0 into ``out`` (with ``ensemble`` in its model.json), the others into ``out/members/<i>``."""
    dirs = [f"{MEMBERS_DIR}/{i}" for i in range(1, len(members))]
    member_extra = member_extra or [{} for _ in members]
    for i, m in enumerate(members):
        target = out if i == 0 else out / dirs[i - 1]
        info = {"ensemble": {"members": dirs, "size": len(members)}} if i == 0 and len(members) > 1 else {}
        m.save(target, {**extra, **member_extra[i], **info})


def load_members(directory: str | os.PathLike, first, load_one) -> EnsembleClassifier | object:
    """``first`` (member 0, loaded) alone, or the ensemble of it and the members its model.json lists."""
    listed = (first.meta.get("ensemble") or {}).get("members")
    if not listed:
        return first
    root = Path(directory)
    members = [first]
    for rel in listed:
        path = (root / rel).resolve()
        if root.resolve() not in path.parents:
            raise ValueError(f"{root / 'model.json'}: ensemble member {rel!r} lies outside the run directory")
        if not (path / "model.json").is_file():
            raise ValueError(f"{root / 'model.json'} lists ensemble member {rel!r}, but {path} holds no model.json")
        members.append(load_one(path))
    return EnsembleClassifier(members, meta=first.meta)


def within_budget(start: float, budget: float | None, done: int, per_item: float) -> bool:
    """Whether another item (a member, a fold) of about ``per_item`` seconds still fits the budget;
    the first item always runs."""
    if budget is None or done == 0:
        return True
    return time.perf_counter() - start + per_item <= budget


@dataclass
class Fitted:
    """What training hands to the run: the classifier (one, or an ensemble), each member's fit result
    and validation scores, the training wall time, and what metrics.json and the report add."""

    classifier: object
    results: list
    vals: list[dict]
    seconds: float
    member_seeds: list[int]
    val: dict
    extra_metrics: dict = field(default_factory=dict)
    report_sections: list = field(default_factory=list)  # [(title, lines)]
    after_test: object = None  # callable(x_test, y_test) -> dict of analysis added to metrics at the end
    parts: dict = field(default_factory=dict)  # model.name auto: {"folds": [...], "refits": [...]} of the members


def fit_members(x: Sequence, y: np.ndarray, config, on_prepared, checkpoint: Path) -> Fitted:
    """Train ``config.train.ensemble`` members (seeds :func:`member_seed`), within
    ``train.budget_seconds`` when set; a one-member run is the plain run (checkpoint ``checkpoint/``),
    member ``i`` of an ensemble checkpoints to ``checkpoint/member<i>/``."""
    from dataclasses import replace

    from .classifier import fit_classifier
    from .runs import checkpointing

    d, k = config.data, config.train.ensemble
    budget = config.train.budget_seconds
    start = time.perf_counter()
    members, results, vals, seeds = [], [], [], []
    for i in range(k):
        per_member = (time.perf_counter() - start) / max(1, i)
        if not within_budget(start, budget, i, per_member):
            log.warning(f"train.budget_seconds={budget} spent: {k - i} of {k} ensemble members not trained")
            break
        seed = member_seed(config.train.seed, i, k)
        train = replace(config.train, seed=seed)
        where = checkpoint if k == 1 else checkpoint / f"member{i}"
        clf, result, val = fit_classifier(x, y, config.model, train, d.normalize, d.min_freq, d.max_vocab,
                                          augment=d.augment, on_prepared=on_prepared if i == 0 else None,
                                          **checkpointing(where))
        members.append(clf), results.append(result), vals.append(val), seeds.append(seed)
        if k > 1:
            log.info(f"member {i + 1}/{k} (seed {seed}): best epoch {result.best_epoch}, val accuracy "
                     f"{val['accuracy']:.4f}, {result.seconds:.1f} s")
    classifier = members[0] if k == 1 else EnsembleClassifier(members)
    val = vals[0] if k == 1 else {key: float(np.mean([v[key] for v in vals])) for key in vals[0]}
    return Fitted(classifier, results, vals, time.perf_counter() - start, seeds, val)


def ensemble_section(metrics: dict) -> list[tuple[str, list[str]]]:
    """The report's section on an ensemble's members (from metrics.json's ``ensemble``)."""
    e = metrics.get("ensemble")
    if not e:
        return []
    rows = [f"| {i} | {m['seed']} | {m['epochs']} (best {m['best_epoch']}) | "
            + ("refit on all training data, none" if m["val_accuracy"] is None else f"{100 * m['val_accuracy']:.2f}%")
            + f" | {100 * m['test_accuracy']:.2f}% |" for i, m in enumerate(e["members"])]
    return [("Ensemble", [
        f"{len(e['members'])} members (of {e['requested']} requested), class probabilities averaged; the ensemble's "
        f"test accuracy {100 * metrics['test']['accuracy']:.2f}% against {100 * e['member_test_accuracy_mean']:.2f}% "
        "for a member on average (each member scored once on the test split, after training; nothing was chosen "
        "with these scores).", "",
        "| member | seed | epochs | own validation accuracy | test accuracy |", "|---|---|---|---|---|", *rows])]
