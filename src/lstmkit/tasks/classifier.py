"""A trained classifier in use: :class:`Classifier` (the network with its preprocessing, predicting
from raw inputs), and :func:`load_classifier`, which reads one back from a run directory (an ensemble
run gives an :class:`lstmkit.tasks.classify_ensemble.EnsembleClassifier` of its members)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..checkpoint import save_checkpoint
from ..data.collate import SequenceBatches
from ..data.preprocess import Preprocessor
from ..eval.metrics import logit_report
from .classify_ensemble import EnsembleClassifier, load_members
from .config import to_plain
from .runs import load_model

__all__ = ["Classifier", "load_classifier"]


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
