"""``report.md`` for a classification run: metrics, per-class table, confusion matrix, curves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..checkpoint import atomic_write_bytes
from .metrics import format_confusion
from .plots import plot_confusion_matrix, plot_learning_curves

__all__ = ["write_classification_report"]


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def write_classification_report(out: str | os.PathLike, *, config: dict, metrics: dict, per_class: Sequence[dict],
                                cm: np.ndarray, classes: Sequence, history: Sequence[dict], best_epoch: int,
                                environment: str) -> None:
    """Write ``confusion_matrix.png``, ``learning_curves.png`` and ``report.md`` into ``out``."""
    out = Path(out)
    plot_confusion_matrix(cm, classes, out / "confusion_matrix.png", title="test split")
    plot_learning_curves(history, out / "learning_curves.png", metric="accuracy", best_epoch=best_epoch)
    data = config["data"]
    source = data.get("name") or data.get("train")
    model = config["model"]
    train = config["train"]
    val, test = metrics["val"], metrics["test"]
    best = history[best_epoch - 1]
    lines = [
        f"# Classification run: {source} · {model.get('name', 'rnn_classifier')}",
        "",
        f"Test accuracy **{_pct(test['accuracy'])}**, macro-F1 {_pct(test['macro_f1'])} on the official test "
        f"split ({metrics['n_test']} samples); weights selected on a validation split carved from the "
        f"{metrics['n_train']} training samples (`{train['monitor']}`, epoch {best_epoch} of {metrics['epochs']}"
        f"{', stopped early' if metrics['stopped_early'] else ''}).",
        "",
        "| split | accuracy | macro-F1 | balanced accuracy | loss |",
        "|---|---|---|---|---|",
        *(f"| {name} | {_pct(m['accuracy'])} | {_pct(m['macro_f1'])} | {_pct(m['balanced_accuracy'])} | {m['loss']:.4f} |"
          for name, m in (("validation", val), ("test", test))),
        "",
        f"Training: {metrics['train_seconds']:.1f} s, {metrics['epochs']} epochs, seed {metrics['seed']}, "
        f"{metrics['parameters']:,} parameters, device {metrics['device']}; {environment}.",
        f"At the selected epoch: train loss {best['train_loss']:.4f}, learning rate {best['lr']:.2e}, "
        f"mean gradient norm {best['grad_norm_mean']:.3f} (clipped in {100 * best['clipped_fraction']:.0f}% of steps).",
        "",
        "## Per class (test)",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
        *(f"| {r['class']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |" for r in per_class),
        "",
        "## Confusion matrix (test; rows true, columns predicted)",
        "",
        "```",
        format_confusion(cm, classes),
        "```",
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "## Learning curves",
        "",
        "![learning curves](learning_curves.png)",
        "",
        "## Reproduce",
        "",
        "```",
        "lstmkit train config.yaml   # the resolved config saved beside this report",
        "```",
        "",
    ]
    atomic_write_bytes(out / "report.md", "\n".join(lines).encode())
