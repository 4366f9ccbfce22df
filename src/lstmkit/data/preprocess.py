"""Labels, normalisation and validation splits, fit on training data only.

- :class:`LabelMap`: labels of any type (str, int, float) <-> contiguous indices, JSON-able.
- :class:`Standardizer`: per-feature mean and std over the valid steps of the training
  sequences (padding never enters the statistics, since sequences are kept unpadded).
- :func:`stratified_split`: a validation split carved from training data, stratified by class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["LabelMap", "Standardizer", "stratified_split"]


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


@dataclass(frozen=True)
class LabelMap:
    """Sorted distinct labels; index i <-> ``classes[i]``."""

    classes: tuple

    @classmethod
    def fit(cls, labels: Sequence[Any]) -> "LabelMap":
        labels = np.asarray(labels)
        if labels.size == 0:
            raise ValueError("labels is empty: cannot fit a label map")
        classes = tuple(_plain(c) for c in np.unique(labels))
        if len(classes) < 2:
            raise ValueError(f"labels hold only one class ({classes[0]!r}); classification needs at least 2")
        return cls(classes)

    def encode(self, labels: Sequence[Any]) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        out = np.empty(len(labels), dtype=np.int64)
        for j, v in enumerate(labels):
            v = _plain(v)
            if v not in index:
                raise ValueError(f"label {v!r} (position {j}) was not seen in training; known: {list(self.classes)}")
            out[j] = index[v]
        return out

    def decode(self, indices: Sequence[int]) -> list:
        return [self.classes[int(i)] for i in indices]

    def __len__(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        return {"classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelMap":
        return cls(tuple(d["classes"]))


@dataclass(frozen=True)
class Standardizer:
    """Per-feature (x - mean) / std; features with std 0 keep std 1."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, sequences: Sequence[np.ndarray]) -> "Standardizer":
        if len(sequences) == 0:
            raise ValueError("sequences is empty: cannot fit normalisation statistics")
        steps = np.concatenate([np.asarray(s, dtype=np.float64) for s in sequences], axis=0)  # valid steps only
        if not np.isfinite(steps).all():
            raise ValueError("sequences contain NaN or inf")
        std = steps.std(axis=0)
        return cls(steps.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for i, s in enumerate(sequences):
            if s.ndim != 2 or s.shape[1] != len(self.mean):
                raise ValueError(f"sequences[{i}] has shape {s.shape}; expected (T, {len(self.mean)}) features")
            out.append(((s - self.mean) / self.std).astype(np.float32))
        return out

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))


def stratified_split(labels: Sequence[Any], fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): about ``fraction`` of each class goes to validation (at least one
    of every class with two or more members); sorted within each part."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    if labels.size < 2:
        raise ValueError(f"need at least 2 samples to split, got {labels.size}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1), len(idx) - 1) if len(idx) >= 2 else 0
        val.extend(idx[:k].tolist())
    val = np.array(sorted(val), dtype=np.int64)
    train = np.setdiff1d(np.arange(labels.size), val)
    if val.size == 0:
        raise ValueError("no class has two or more samples: cannot carve a stratified validation split")
    return train, val
