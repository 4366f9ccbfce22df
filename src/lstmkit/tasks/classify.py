"""Sequence classification end to end: config -> data -> model -> training -> evaluation -> run directory.

``train_classifier(config, out_dir)`` is what ``lstmkit train`` runs for ``task: classify``:

1. load the dataset (a name from :func:`lstmkit.data.list_datasets`, an alias, ``ucr:NAME``, or
   user files) with its official train/test split;
2. carve a stratified validation split from the training data (seed ``train.seed``); fit the
   label map, the per-feature standardisation (valid steps only) or the text vocabulary on
   the remaining training part only;
3. build the model from the registry and train it with :func:`lstmkit.tasks.trainer.fit`
   (length-grouped batches, best-on-validation weights: :func:`lstmkit.tasks.classifier.fit_classifier`); ``data.augment`` (docs/augment.md)
   augments the training batches on the fly, never validation or test;
4. score validation and the official test split once; the run lifecycle
   (:func:`lstmkit.tasks.lifecycle.run_task`) writes the run directory, whose ``model.json`` holds
   the architecture, labels, normalisation or vocabulary (everything :func:`load_classifier` needs),
   and the report adds ``confusion_matrix.png``;
5. fit and score the baselines of ``evaluate.baselines`` (MiniRocket, 1-NN DTW:
   :mod:`lstmkit.eval.classify_baselines`) on the same training and test splits.

``train.ensemble: K`` trains K members and averages their probabilities
(:mod:`lstmkit.tasks.classify_ensemble`); ``model.name: auto`` chooses the model by cross-validation
on the training split and keeps its fold models (:mod:`lstmkit.tasks.classify_auto`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch

from ..data.datasets import describe_test_split
from ..data.preprocess import Preprocessor
from ..data.inputs import load_inputs
from ..models.registry import check_model_arguments, check_model_task
from .config import check_task, model_section, to_plain
from . import classify_io
from .classifier import Classifier, Prepared, fit_classifier, load_classifier, prepare_training
from .classify_data import DataConfig, Format, data_options, load_data
from .registry import Task, Tuning, register_task
from .lifecycle import Run, Scores, Steps, Trained, run_task
from .runs import RoleResult
from .trainer import TrainConfig
from .classify_ensemble import (ClassifyEvalConfig, ClassifyTrainConfig, EnsembleClassifier, ensemble_section,
                                fit_members, member_scores, save_members)
from ..eval.classify_baselines import baselines_section, run_baselines

__all__ = ["DataConfig", "Format", "ClassifyConfig", "Preprocessor", "Classifier", "train_classifier", "load_classifier",
           "load_inputs", "fit_classifier", "prepare_training"]

log = logging.getLogger(__name__)

@dataclass
class ClassifyConfig:
    data: DataConfig
    model: dict[str, Any] = field(default_factory=lambda: {"name": "rnn_classifier"})  # or {name: auto, ...}
    train: ClassifyTrainConfig = field(default_factory=ClassifyTrainConfig)
    evaluate: ClassifyEvalConfig = field(default_factory=ClassifyEvalConfig)
    task: Literal["classify"] = "classify"

    def __post_init__(self) -> None:
        check_task(self, "classify")
        model_section("model", self.model, "rnn_classifier")
        if type(self.train) is TrainConfig:  # a plain TrainConfig given in code: the classification fields' defaults
            self.train = ClassifyTrainConfig(**asdict(self.train))
        name = self.model.get("name", "rnn_classifier")
        if name == "auto":  # chosen by cross-validation on the training split (lstmkit.tasks.classify_auto)
            from .classify_auto import check_auto

            check_auto(self.model, self.train)
            return
        check_model_task(name, "classify")  # before any data loads
        check_model_arguments(name, (k for k in self.model if k != "name"))


@dataclass
class _Data:
    train: tuple[list, np.ndarray] | None  # None: a saved run re-scored (lstmkit evaluate), its model alone
    test: tuple[list, np.ndarray]
    fitted: Any = None  # classify_ensemble.Fitted, once trained
    curriculum: Any = None  # the first member's length schedule (train.curriculum: length)
    classifier: Any = None  # a saved run's (classify_io.given); else fitted.classifier


def _prepare(config: ClassifyConfig) -> _Data:
    train, test = load_data(config.data)
    return _Data(train, test)


def _train(run: Run, data: _Data) -> None:
    """The model role: one network, an ensemble of members (``checkpoint/member<i>``) or, with
    ``model.name: auto``, the model chosen by cross-validation on the training split alone."""
    config, (x_train, y_train), d = run.config, data.train, run.config.data

    def summary(p: Prepared) -> None:
        data.curriculum = getattr(p.train_set, "curriculum", None) or getattr(
            getattr(p.train_set, "base", None), "curriculum", None)
        log.info(f"data {d.name or d.train}: {p.summary(len(data.test[0]))}")

    if config.model.get("name") == "auto":  # the test split waits for the scoring step
        from .classify_auto import train_auto

        fitted = train_auto(x_train, y_train, config, summary)
    else:
        fitted = fit_members(x_train, y_train, config, summary, run.checkpoint)
    data.fitted = fitted
    members = getattr(fitted.classifier, "members", [fitted.classifier])
    parameters = sum(p.numel() for m in members for p in m.model.parameters())
    run.add("model", Trained(result=fitted.results[0], seconds=fitted.seconds,
                             role=RoleResult(parameters, sum(r.epochs for r in fitted.results), fitted.seconds)))


def _score(run: Run, data: _Data, part: str) -> Scores:
    """Validation: the members' (or the folds') mean; test: the model, once, and the baselines of
    ``evaluate.baselines`` (fitted on the training part, scored on the test part)."""
    if part == "val":
        return Scores(data.fitted.val)
    x_test, y_test = data.test
    test_metrics, per_class, cm = (data.classifier or data.fitted.classifier).evaluate(x_test, y_test)
    if data.train is None:  # lstmkit evaluate: the baselines are not saved
        return Scores(test_metrics, {}, (per_class, cm))
    baselines = run_baselines(run.config.evaluate.baselines, *data.train, x_test, y_test, seed=run.train.seed)
    for b, v in baselines.items():
        run.add(b, Trained(role=RoleResult(seconds=v.get("train_seconds", 0.0))))
    return Scores(test_metrics, baselines, (per_class, cm))


def _metrics(run: Run, data: _Data, scores: dict) -> dict:
    config, fitted, (x_test, y_test) = run.config, data.fitted, data.test
    clf, first = fitted.classifier, fitted.results[0]
    members = getattr(clf, "members", [clf])
    metrics = {"baselines": scores["test"].baselines,
               **run.model.fit_fields(),
               "seed": config.train.seed, "device": str(next(members[0].model.parameters()).device),
               "threads": torch.get_num_threads(), "parameters": run.model.role.params,
               "n_train": len(data.train[0]), "n_test": len(x_test), **fitted.extra_metrics}
    if isinstance(clf, EnsembleClassifier):
        own = member_scores(clf, x_test, y_test)
        metrics["ensemble"] = {
            "requested": config.train.ensemble if config.model.get("name") != "auto" else len(members),
            "member_test_accuracy_mean": float(np.mean([m["accuracy"] for m in own])),
            "members": [{"seed": s, "epochs": r.epochs, "best_epoch": r.best_epoch, "val_accuracy": v["accuracy"],
                         "test_accuracy": o["accuracy"], "test_loss": o["loss"]}
                        for s, r, v, o in zip(fitted.member_seeds, fitted.results, fitted.vals, own)]}
    if fitted.after_test is not None:  # auto: the analysis of the candidates not chosen, on the test split
        metrics.update(fitted.after_test(x_test, y_test))
    if data.curriculum is not None:  # what each epoch trained on (the first member's schedule)
        metrics["curriculum"] = data.curriculum.schedule(first.epochs)
    return metrics


def _save(run: Run, data: _Data) -> None:
    d, clf = run.config.data, data.fitted.classifier
    saved = {**to_plain(asdict(d)), **({"feature_columns": data_options(d)["feature_columns"]} if d.format == "long" else {})}
    save_members(run.out, getattr(clf, "members", [clf]), {"data": saved},
                 [{"train_seed": s} for s in data.fitted.member_seeds])


def _report(run: Run, data: _Data, metrics: dict, scores: dict):
    from ..eval.report import classification_report

    resolved, first, (per_class, cm) = to_plain(run.config), data.fitted.results[0], scores["test"].outputs
    return classification_report(run.out, config=resolved, metrics=metrics, per_class=per_class, cm=cm,
                                 classes=data.fitted.classifier.classes, history=first.history,
                                 best_epoch=first.best_epoch,
                                 test_split=describe_test_split(resolved["data"], len(data.test[0])),
                                 sections=[*baselines_section(metrics), *data.fitted.report_sections,
                                           *auto_sections(metrics), *ensemble_section(metrics)])


def _block(scores: Scores) -> dict:
    per_class, cm = scores.outputs
    return {**scores.model, "per_class": per_class, "confusion_matrix": cm.tolist()}


STEPS = Steps("classify", _prepare, _train, _score, _metrics, _report, save=_save, block=_block,
              given=classify_io.given)


def train_classifier(config: ClassifyConfig, out_dir: str | os.PathLike, resume: bool = False,
                     score_test: bool = True) -> dict:
    """Run one classification experiment and write its run directory; returns metrics.json
    (:func:`lstmkit.tasks.lifecycle.run_task`; ``resume``: continue the interrupted run there)."""
    if type(config.train) is TrainConfig:  # assigned after construction: the classification fields' defaults
        config = replace(config, train=ClassifyTrainConfig(**asdict(config.train)))
    return run_task(STEPS, config, out_dir, resume, score_test)


def auto_sections(metrics: dict) -> list:
    if "auto" not in metrics:
        return []
    from .classify_auto import auto_section

    return [auto_section(metrics["auto"])]


register_task(Task(
    "classify", "sequence classification: series (any length, any features) or text", ClassifyConfig,
    train_classifier, classify_io.predict_run, "a series file (.npz, .csv, long CSV, .ts, IDX) or a text CSV", steps=STEPS,
    predict_options=classify_io.PREDICT_OPTIONS, evaluate_options=classify_io.EVALUATE_OPTIONS, multi_process=None,
    export="lstmkit.export.onnx:_classifier_export",
    explain="lstmkit.explain.tasks:explain_classifier_run",
    tune=Tuning("val_accuracy", {"val_accuracy": "maximize", "val_macro_f1": "maximize", "val_loss": "minimize"}, {
        "model.hidden_size": {"type": "int", "low": 16, "high": 256, "log": True},
        "model.num_layers": {"type": "int", "low": 1, "high": 3},
        "train.lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
        "train.batch_size": {"type": "categorical", "choices": [16, 32, 64, 128]},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5}})))
