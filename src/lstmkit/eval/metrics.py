"""Classification metrics: accuracy, macro-F1, balanced accuracy, a per-class report and the
confusion matrix, computed by scikit-learn (``sklearn.metrics``); our part is checking the
inputs and choosing the classes each average runs over.

All take integer class indices ``y_true`` and ``y_pred`` of shape (n,) and ``num_classes``.
Per-class precision, recall and F1 are scikit-learn's with ``zero_division=0``: a class that is
never predicted has precision 0, a class with no true samples has recall 0, and F1 is 0 when
precision + recall is 0. Macro-F1 averages F1 over the classes present in ``y_true`` or
``y_pred`` (``f1_score(average="macro")`` over the observed labels); balanced accuracy averages
recall over the classes present in ``y_true`` (``balanced_accuracy_score``, which also warns
when a class is only predicted: a case these metrics score on purpose). :func:`logit_scores` and
:func:`logit_report` add a model's cross-entropy ``loss`` from its (n, C) logits.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..checks import require

__all__ = ["confusion_matrix", "classification_metrics", "per_class_report", "format_confusion", "logit_scores",
           "logit_report"]


def _sklearn_metrics():
    return require("sklearn.metrics", "the classification metrics need scikit-learn", "train", pip="scikit-learn")


def _check(y_true, y_pred, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must be 1-D of the same length, got {y_true.shape} and {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError("y_true is empty: no samples to score")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= num_classes:
            raise ValueError(f"{name} must hold class indices in [0, {num_classes}), got dtype {y.dtype}, "
                             f"range [{y.min()}, {y.max()}]")
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(C, C) counts; row = true class, column = predicted class."""
    y_true, y_pred = _check(y_true, y_pred, num_classes)
    if num_classes == 1:  # scikit-learn warns on a 1x1 matrix, taking it for forgotten labels
        return np.array([[y_true.size]], dtype=np.int64)
    return _sklearn_metrics().confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))


def _per_class(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int):
    """(precision, recall, f1, support), each (C,), for classes 0 .. C-1."""
    return _sklearn_metrics().precision_recall_fscore_support(y_true, y_pred, labels=np.arange(num_classes),
                                                              zero_division=0)


def classification_metrics(y_true, y_pred, num_classes: int) -> dict[str, float]:
    """{"accuracy", "macro_f1", "balanced_accuracy", "n"} (fractions in [0, 1])."""
    y_true, y_pred = _check(y_true, y_pred, num_classes)
    # one per-class pass, averaged below as f1_score and balanced_accuracy_score average it
    _, recall, f1, support = _per_class(y_true, y_pred, num_classes)
    observed = np.zeros(num_classes, dtype=bool)
    observed[y_true], observed[y_pred] = True, True
    return {
        "accuracy": float(_sklearn_metrics().accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1[observed].mean()),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "n": int(y_true.size),
    }


def per_class_report(y_true, y_pred, class_names: Sequence) -> list[dict]:
    """One row per class: {"class", "precision", "recall", "f1", "support"}."""
    y_true, y_pred = _check(y_true, y_pred, len(class_names))
    precision, recall, f1, support = _per_class(y_true, y_pred, len(class_names))
    return [{"class": class_names[i], "precision": float(precision[i]), "recall": float(recall[i]),
             "f1": float(f1[i]), "support": int(support[i])} for i in range(len(class_names))]


def format_confusion(cm: np.ndarray, class_names: Sequence) -> str:
    """The confusion matrix as aligned text (rows true, columns predicted)."""
    names = [str(c) for c in class_names]
    width = max(max(len(n) for n in names), len(str(int(cm.max()))), 4)
    first = max(max(len(n) for n in names), len("true \\ pred")) + 1
    head = "true \\ pred".ljust(first) + " ".join(n.rjust(width) for n in names)
    rows = [n.ljust(first) + " ".join(str(int(v)).rjust(width) for v in row) for n, row in zip(names, cm)]
    return "\n".join([head, *rows])


def logit_scores(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict:
    """The mean cross-entropy ``loss`` of (n, C) ``logits`` (in float32; log-probabilities are logits too)
    against the class indices ``y``, then :func:`classification_metrics` of their argmax without ``n``."""
    y_np, pred = y.cpu().numpy(), logits.argmax(1).cpu().numpy()
    return {"loss": F.cross_entropy(logits.float(), y).item(),
            **{k: v for k, v in classification_metrics(y_np, pred, num_classes).items() if k != "n"}}


def logit_report(logits: torch.Tensor, y, classes: Sequence) -> tuple[dict, list[dict], np.ndarray]:
    """(:func:`logit_scores` with ``n``, :func:`per_class_report`, :func:`confusion_matrix`) of ``logits``
    against the class indices ``y`` (an array or a tensor), ``classes`` the class names."""
    y = torch.as_tensor(y, device=logits.device)
    y_np, pred, k = y.cpu().numpy(), logits.argmax(1).cpu().numpy(), len(classes)
    return ({**logit_scores(logits, y, k), "n": len(y_np)}, per_class_report(y_np, pred, list(classes)),
            confusion_matrix(y_np, pred, k))
