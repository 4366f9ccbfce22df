"""PNG plots for run reports: learning curves, a confusion matrix, forecasts with intervals.

Built on ``matplotlib.figure.Figure`` directly (no pyplot, so no global backend or figure
state), rendered to bytes and written atomically. Needs matplotlib (``lstmkit[train]``).
"""

from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np

from ..checks import require
from ..checkpoint import atomic_write_bytes

__all__ = ["plot_learning_curves", "plot_confusion_matrix", "plot_forecast"]


def _figure(**kwargs):
    return require("matplotlib.figure", "plots need matplotlib", "train").Figure(**kwargs)


def _save(fig, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def plot_learning_curves(history: Sequence[dict], path: str | os.PathLike, metric: str = "accuracy",
                         best_epoch: int | None = None) -> None:
    """Loss (train, val), the validation ``metric`` and the learning rate per epoch.

    ``history``: one dict per epoch with "epoch", "train_loss", "val_loss", "lr" and optionally
    "val_<metric>", "grad_norm_mean".
    """
    if not history:
        raise ValueError("history is empty: nothing to plot")
    epochs = [h["epoch"] for h in history]
    fig = _figure(figsize=(11, 3.4))
    ax_loss, ax_metric, ax_lr = fig.subplots(1, 3)
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax_loss.set(title="loss", xlabel="epoch", yscale="log")
    key = f"val_{metric}"
    if key in history[0]:
        ax_metric.plot(epochs, [h[key] for h in history], color="tab:green")
    ax_metric.set(title=f"validation {metric}", xlabel="epoch")
    ax_lr.plot(epochs, [h["lr"] for h in history], color="tab:purple")
    ax_lr.set(title="learning rate", xlabel="epoch", yscale="log")
    if "grad_norm_mean" in history[0]:
        ax_g = ax_lr.twinx()
        ax_g.plot(epochs, [h["grad_norm_mean"] for h in history], color="tab:gray", alpha=0.6, lw=0.8)
        ax_g.set_ylabel("mean gradient norm (grey)")
    if best_epoch is not None:
        for ax in (ax_loss, ax_metric):
            ax.axvline(best_epoch, color="k", ls=":", lw=0.8, label="selected")
    ax_loss.legend(fontsize=8)
    _save(fig, path)


def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence, path: str | os.PathLike, title: str = "") -> None:
    """Row-normalised colours with the raw counts written in each cell."""
    cm = np.asarray(cm)
    k = len(class_names)
    if cm.shape != (k, k):
        raise ValueError(f"cm must be ({k}, {k}) for {k} class names, got {cm.shape}")
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    size = min(3 + 0.45 * k, 14)
    fig = _figure(figsize=(size, size * 0.9))
    ax = fig.subplots()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    names = [str(c) for c in class_names]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if frac[i, j] > 0.5 else "black")
    _save(fig, path)


def plot_forecast(path: str | os.PathLike, panels: Sequence[dict], title: str = "") -> None:
    """One panel per series: history, actuals, forecast with its interval band, and baselines.

    Each panel: ``{"name", "history_times", "history", "times", "actual", "forecast",
    "lower" | None, "upper" | None, "level", "baselines": {name: values}}`` (1-D arrays; the
    times may be datetime64 or integers), and optionally ``"bands": {level: (lower, upper)}``:
    a fan chart of nested intervals (drawn instead of the one interval).
    """
    panels = list(panels)
    fig = _figure(figsize=(9, 3.2 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, p in zip(axes, panels):
        ax.plot(p["history_times"], p["history"], color="0.35", lw=1.2, label="history")
        ax.plot(p["times"], p["actual"], color="black", lw=1.6, label="actual")
        bands = p.get("bands") or {}
        for i, level in enumerate(sorted(bands, reverse=True)):  # widest first, lightest
            ax.fill_between(p["times"], bands[level][0], bands[level][1], color="tab:blue", lw=0,
                            alpha=0.15 + 0.15 * i, label=f"{100 * level:.0f}% interval")
        if p.get("lower") is not None and not bands:
            ax.fill_between(p["times"], p["lower"], p["upper"], color="tab:blue", alpha=0.2,
                            label=f"{100 * p['level']:.0f}% interval")
        for i, (name, values) in enumerate(p.get("baselines", {}).items()):
            ax.plot(p["times"], values, lw=1, ls="--", color=f"C{(i + 1) % 10}", label=name)
        ax.plot(p["times"], p["forecast"], color="tab:blue", lw=1.8, label="LSTM")
        ax.set_title(p["name"], fontsize=10)
        ax.legend(fontsize=7, ncol=3, loc="upper left")
    if title:
        fig.suptitle(title)
    _save(fig, path)
