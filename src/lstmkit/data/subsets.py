"""Subsets of a labelled dataset: some of its classes, and a stratified share of its training part.

``data.classes`` keeps the samples of the listed classes (train and test alike), ``data.train_fraction``
a stratified, seeded share of the training samples (at least one per class); the test part is never
subsampled. A transfer experiment reads as two configs: pretrain on ``classes: [0, 1, 2, 3, 4]``,
fine-tune on ``classes: [5, 6, 7, 8, 9]`` with ``train_fraction: 0.05``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["check_subset", "class_indices", "fraction_indices"]


def check_subset(classes: Any, train_fraction: Any, where: str = "data") -> None:
    """Validate ``data.classes`` (None or a non-empty list of distinct labels) and ``data.train_fraction``
    (None or a number in (0, 1])."""
    if classes is not None:
        if not isinstance(classes, (list, tuple)) or len(classes) < 2 or not all(
                isinstance(c, (int, str)) and not isinstance(c, bool) for c in classes):
            raise ValueError(f"{where}.classes must be a list of two or more class labels (ints or strings), "
                             f"got {classes!r}")
        if len({str(c) for c in classes}) != len(classes):
            raise ValueError(f"{where}.classes lists a class twice: {classes!r}")
    if train_fraction is not None and (isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float))
                                       or not 0 < train_fraction <= 1):
        raise ValueError(f"{where}.train_fraction must be a number in (0, 1] (the share of training samples kept), "
                         f"got {train_fraction!r}")


def class_indices(labels: Sequence, classes: Sequence | None, where: str = "data") -> np.ndarray:
    """Indices of the samples whose label is one of ``classes`` (compared as strings, so ``5`` in a
    YAML list matches the label ``5`` or ``"5"``); every listed class must occur."""
    labels = np.asarray(labels)
    if classes is None:
        return np.arange(len(labels))
    as_str = np.array([str(v) for v in labels])
    present = set(as_str.tolist())
    missing = [c for c in classes if str(c) not in present]
    if missing:
        raise ValueError(f"{where}.classes: {missing} not among the data's classes "
                         f"{sorted(present, key=lambda s: (len(s), s))}")
    return np.flatnonzero(np.isin(as_str, [str(c) for c in classes]))


def fraction_indices(labels: Sequence, fraction: float | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a stratified share ``fraction`` of the samples: per class
    ``max(1, round(fraction * n_class))`` drawn with ``numpy.random.default_rng(seed)``."""
    labels = np.asarray(labels)
    if fraction is None or fraction >= 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    as_str = np.array([str(v) for v in labels])
    for c in sorted(set(as_str.tolist())):
        idx = np.flatnonzero(as_str == c)
        rng.shuffle(idx)
        keep.extend(idx[: max(1, int(round(fraction * len(idx))))].tolist())
    return np.array(sorted(keep), dtype=np.int64)
