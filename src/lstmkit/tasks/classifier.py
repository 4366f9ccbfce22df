"""One classifier, trained and in use: :func:`fit_classifier` (:func:`prepare_training`: the validation
split, the preprocessing fitted on the rest, the model built from the registry and its batches; then the
shared training loop), :class:`Classifier` (the network with its preprocessing, predicting from raw
inputs), and :func:`load_classifier`, which reads one back from a run directory (an ensemble run gives an
:class:`lstmkit.tasks.classify_ensemble.EnsembleClassifier` of its members). Every classification run
(its ensemble members, ``model.name: auto``'s folds), ``lstmkit tune`` and the scikit-learn wrapper train
through :func:`fit_classifier`."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import __version__
from ..checkpoint import save_checkpoint
from ..data import LabelMap, stratified_split
from ..data.augment import AugmentedBatches
from ..data.collate import SequenceBatches
from ..data.curriculum import CurriculumBatches
from ..data.preprocess import Preprocessor
from ..eval.metrics import logit_report, logit_scores
from ..models import create_model
from .classify_data import _augment
from .classify_ensemble import EnsembleClassifier, load_members
from .config import to_plain
from .runs import load_model
from .trainer import FitResult, TrainConfig, fit, seed_everything

__all__ = ["Classifier", "load_classifier", "fit_classifier", "prepare_training", "Prepared", "build_model"]

log = logging.getLogger("lstmkit.tasks.classify")  # the task's log, as before this module was split off
_FCN = ("lstm_fcn", "mlstm_fcn")


def _batches(inputs: list[np.ndarray], targets: np.ndarray | None, pre: Preprocessor, batch_size: int,
             shuffle: bool = False, seed: int = 0, dtype: torch.dtype = torch.float32) -> SequenceBatches:
    dtype = torch.int64 if pre.kind == "tokens" else dtype
    return SequenceBatches(inputs, targets, batch_size, shuffle=shuffle, seed=seed, dtype=dtype)


@dataclass
class Classifier:
    """A trained classifier with its preprocessing: predicts from raw inputs."""

    model: nn.Module
    pre: Preprocessor
    spec: dict
    batch_size: int = 256
    dtype: Literal["float32", "float64"] = "float32"  # of the series fed to the model (set with model.to)
    meta: dict = field(default_factory=dict)  # model.json's description when loaded from a run

    @property
    def classes(self) -> list:
        return list(self.pre.labels.classes)

    @torch.no_grad()
    def logits(self, inputs: Sequence) -> torch.Tensor:
        """(n, C) logits on the CPU, rows in input order (batched by length inside)."""
        arrays = self.pre.inputs(inputs)
        batches = _batches(arrays, None, self.pre, self.batch_size, dtype=getattr(torch, self.dtype))
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        try:
            logits = torch.cat([self.model(x.to(device), n.to(device)) for x, n in batches])
        finally:
            self.model.train(was_training)
        return batches.restore_order(logits.cpu())

    def predict_proba(self, inputs: Sequence) -> np.ndarray:
        """(n, C) class probabilities, rows in input order."""
        return torch.softmax(self.logits(inputs).double(), dim=1).numpy()

    def predict(self, inputs: Sequence) -> list:
        return self.pre.labels.decode(self.logits(inputs).argmax(1))

    def evaluate(self, inputs: Sequence, labels: Sequence) -> tuple[dict, list[dict], np.ndarray]:
        """(metrics incl. loss and n, per-class report, confusion matrix) against true labels."""
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
        return logit_report(self.logits(inputs), self.pre.targets(labels), self.classes)

    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> None:
        meta = {"task": "classify", "lstmkit_version": __version__, "model": to_plain(self.spec),
                "preprocess": self.pre.to_dict(), "dtype": self.dtype, **(extra or {})}
        save_checkpoint(directory, self.model.state_dict(), meta)


def _load_one(directory: str | os.PathLike, device: str = "cpu") -> Classifier:
    model, meta = load_model(directory, "classify", device)
    pre = Preprocessor.from_dict(meta.get("preprocess") or {})
    dtype = meta.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"{Path(directory) / 'model.json'}: dtype {dtype!r} is not float32 or float64")
    return Classifier(model, pre, dict(meta["model"]), dtype=dtype, meta=meta)


def load_classifier(directory: str | os.PathLike, device: str = "cpu") -> Classifier | EnsembleClassifier:
    """A classifier from a run directory (safetensors + JSON; nothing is unpickled); an ensemble run
    (``train.ensemble`` > 1 or ``model.name: auto``) gives an :class:`EnsembleClassifier` of all its members."""
    return load_members(directory, _load_one(directory, device), lambda path: _load_one(path, device))


# ---------------------------------------------------------------------------------- model


def build_model(spec: dict, pre: Preprocessor, lengths: np.ndarray) -> tuple[nn.Module, dict]:
    """(model, the exact kwargs it was built from) for a config ``model`` section."""
    kwargs = dict(spec)
    name = kwargs.pop("name", "rnn_classifier")
    kwargs["num_classes"] = len(pre.labels)
    if pre.kind == "tokens":
        if name != "rnn_classifier":
            raise ValueError(f"text input needs model.name 'rnn_classifier' (token-input mode), got {name!r}")
        kwargs["vocab_size"] = len(pre.vocab)
        kwargs.setdefault("input_size", 64)  # the embedding width
    else:
        if kwargs.get("input_size", pre.num_features) != pre.num_features:
            raise ValueError(f"model.input_size={kwargs['input_size']} but the data has {pre.num_features} features")
        kwargs["input_size"] = pre.num_features
    if name in _FCN and kwargs.get("dimension_shuffle", True):
        if lengths.min() != lengths.max():
            raise ValueError(f"{name} with dimension_shuffle needs equal-length series, but lengths range "
                             f"{lengths.min()}..{lengths.max()}; set model.dimension_shuffle=false")
        kwargs["max_length"] = int(lengths.max())
    return create_model(name, **kwargs), {"name": name, **kwargs}


def _loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    x, lengths, y = batch
    return F.cross_entropy(model(x, lengths), y)


def _evaluate(model: nn.Module, batches) -> dict:
    logits = torch.cat([model(b[0], b[1]) for b in batches])
    y = torch.cat([b[2] for b in batches])
    return logit_scores(logits, y, logits.shape[1])


# ------------------------------------------------------------------------------- training


@dataclass
class Prepared:
    """What training starts from: the model, its exact spec, the fitted preprocessing and batches."""

    model: nn.Module
    spec: dict
    pre: Preprocessor
    train_set: SequenceBatches | CurriculumBatches | AugmentedBatches
    val_set: SequenceBatches
    sizes: dict = field(default_factory=dict)  # n_train, n_val, min/max steps, features, classes, parameters

    def summary(self, n_test: int) -> str:
        """The one line a run starts with: what is trained on what."""
        z = self.sizes
        steps = f"{z['min_steps']}" if z["min_steps"] == z["max_steps"] else f"{z['min_steps']}-{z['max_steps']}"
        features = "token ids" if self.pre.kind == "tokens" else f"{z['features']} feature(s)"
        return (f"{z['n_train']} train / {z['n_val']} validation / {n_test} test samples, {steps} steps, {features}, "
                f"{z['classes']} classes; {self.spec['name']} with {z['parameters']:,} parameters")


def prepare_training(inputs: Sequence, labels: np.ndarray, model_spec: dict, train: TrainConfig,
                     normalize: bool = True, min_freq: int = 1, max_vocab: int | None = None,
                     augment: Sequence[dict] = (), split: tuple[np.ndarray, np.ndarray] | None = None) -> Prepared:
    """Carve validation (stratified, seed ``train.seed``; or the given ``split``, (train indices,
    validation indices)), fit preprocessing on the rest, build the model (seeded) and the
    length-grouped batches; ``augment`` (a ``data.augment`` list) wraps the training batches only,
    seeded from ``train.seed`` and the epoch."""
    if len(inputs) == 0:
        raise ValueError("the training data is empty: no samples to fit on")
    if labels is None or len(labels) != len(inputs):
        raise ValueError(f"{len(inputs)} training inputs need as many labels, got "
                         f"{None if labels is None else len(labels)}")
    LabelMap.fit(labels)  # a clear error for one class before anything else
    tr, va = stratified_split(labels, train.val_fraction, seed=train.seed) if split is None else split
    pick = lambda idx: [inputs[i] for i in idx]  # noqa: E731
    # labels: all training labels (the label map is not a statistic); the rest: the training part only
    pre = Preprocessor.fit(pick(tr), labels, normalize=normalize, min_freq=min_freq, max_vocab=max_vocab)
    x_tr, x_va = pre.inputs(pick(tr)), pre.inputs(pick(va))
    y_tr, y_va = pre.targets(labels[tr]), pre.targets(labels[va])
    seed_everything(train.seed)
    model, spec = build_model(model_spec, pre, np.array([len(a) for a in x_tr + x_va]))
    train_set = _batches(x_tr, y_tr, pre, train.batch_size, shuffle=True, seed=train.seed)
    if train.curriculum == "length":  # short sequences first (lstmkit.data.curriculum)
        train_set = CurriculumBatches(train_set, train.curriculum_start, train.curriculum_epochs, seed=train.seed)
        log.info(f"curriculum by length: {train_set.curriculum.schedule(train.epochs)[:train.curriculum_epochs + 1]}")
    aug = _augment(augment)
    if len(aug):
        if pre.kind == "tokens":
            raise ValueError("data.augment works on numeric series; text input has nothing to augment")
        if "max_length" in spec and not aug.keeps_lengths:
            raise ValueError(f"data.augment shortens series (window_slice with stretch: false) but {spec['name']} with "
                             "dimension_shuffle needs equal lengths; use stretch: true or model.dimension_shuffle=false")
        log.info(f"augmenting training batches: {aug.config}")
        train_set = AugmentedBatches(train_set, aug, seed=train.seed)
    steps = [len(a) for a in x_tr + x_va]
    sizes = {"n_train": len(x_tr), "n_val": len(x_va), "min_steps": min(steps), "max_steps": max(steps),
             "features": pre.num_features, "classes": len(pre.labels),
             "parameters": sum(p.numel() for p in model.parameters())}
    return Prepared(model, spec, pre, train_set, _batches(x_va, y_va, pre, max(train.batch_size, 256)), sizes)


def fit_classifier(inputs: Sequence, labels: np.ndarray, model_spec: dict, train: TrainConfig,
                   normalize: bool = True, min_freq: int = 1, max_vocab: int | None = None,
                   callbacks: Sequence = (), augment: Sequence[dict] = (),
                   checkpoint_dir: str | os.PathLike | None = None,
                   resume: bool = False, on_prepared: Callable[[Prepared], None] | None = None,
                   log_dir: str | os.PathLike | None = None, split: tuple[np.ndarray, np.ndarray] | None = None,
                   ) -> tuple[Classifier, FitResult, dict]:
    """:func:`prepare_training`, then train; returns (classifier, fit result, validation metrics
    of the selected weights). ``callbacks``, ``checkpoint_dir``, ``resume`` and ``log_dir`` go to
    :func:`lstmkit.tasks.trainer.fit`. ``on_prepared`` is called with the :class:`Prepared` data and
    model before training starts (a run logs its one-line summary there)."""
    p = prepare_training(inputs, labels, model_spec, train, normalize, min_freq, max_vocab, augment, split)
    if on_prepared is not None:
        on_prepared(p)
    result = fit(p.model, p.train_set.batches, p.val_set, _loss, _evaluate, train, callbacks=callbacks,
                 checkpoint_dir=checkpoint_dir, resume=resume, log_dir=log_dir)
    p.model.eval()
    return Classifier(p.model, p.pre, p.spec), result, result.best  # fit restored the best epoch's weights
