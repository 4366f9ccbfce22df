"""Segmentation metrics from a confusion matrix, and colourised mask / overlay PNGs.

Metrics (:func:`segmentation_metrics`), from a (K, K) pixel confusion matrix (row = true class,
column = predicted class, :func:`segmentation_confusion` accumulates it batch by batch):

- pixel accuracy: correct pixels / all pixels;
- IoU of class k: TP / (TP + FP + FN); ``None`` (not 0, not 1) for a class that appears in
  neither the truth nor the prediction, since there is nothing to score;
- mIoU: the mean IoU over the classes that appear in the truth or the prediction (the ``None``
  classes are excluded from the mean, as in torchmetrics' ``JaccardIndex`` with absent classes
  skipped); a class that is only predicted counts with IoU 0.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from ..checks import check_int
from .images import image_grid, write_png
from .metrics import confusion_matrix

__all__ = ["segmentation_confusion", "segmentation_metrics", "class_palette", "colorize_mask",
           "write_segmentation_overlays"]


def segmentation_confusion(truth, pred, num_classes: int) -> np.ndarray:
    """(K, K) pixel counts for label maps of any equal shape, e.g. (N, H, W)."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(f"truth and prediction must have the same shape, got {truth.shape} and {pred.shape}")
    return confusion_matrix(truth.reshape(-1), pred.reshape(-1), num_classes)


def segmentation_metrics(cm: np.ndarray, class_names: Sequence[str] | None = None) -> dict:
    """{"pixel_accuracy", "miou", "iou": {class name: IoU or None}} from a (K, K) confusion matrix."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.dtype.kind not in "iu":
        raise ValueError(f"cm must be a square matrix of integer counts, got {cm.shape} {cm.dtype}")
    k = cm.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names but cm is {k}x{k}")
    total = int(cm.sum())
    if total == 0:
        raise ValueError("cm is empty: no pixels to score")
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    present = union > 0
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
    return {"pixel_accuracy": float(tp.sum() / total), "miou": float(iou[present].mean()),
            "iou": {n: (float(v) if p else None) for n, v, p in zip(names, iou, present)}}


def class_palette(num_classes: int) -> np.ndarray:
    """(K, 3) float colours in [0, 1]: black for class 0 (background), then tab10/tab20-like hues."""
    base = np.array([[0, 0, 0], [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                     [140, 86, 75], [227, 119, 194], [188, 189, 34], [23, 190, 207], [255, 255, 255],
                     [174, 199, 232], [255, 187, 120], [152, 223, 138], [255, 152, 150], [197, 176, 213],
                     [196, 156, 148], [247, 182, 210], [219, 219, 141], [158, 218, 229]], np.float32) / 255.0
    if num_classes <= len(base):
        return base[:num_classes]
    rng = np.random.default_rng(0)  # more classes than named colours: fixed random ones
    return np.concatenate([base, rng.uniform(0.2, 1.0, (num_classes - len(base), 3)).astype(np.float32)])


def colorize_mask(mask, num_classes: int) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) float colours of :func:`class_palette`."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "iu" or (mask.size and (mask.min() < 0 or mask.max() >= num_classes)):
        raise ValueError(f"mask must be (H, W) class indices in [0, {num_classes}), got shape {mask.shape} "
                         f"dtype {mask.dtype}")
    return class_palette(num_classes)[mask]


def _grey_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] with C 1 or 3 -> (H, W, 3)."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"each image must be (H, W), (1, H, W) or (3, H, W), got shape {a.shape}")
    a = np.clip(a, 0.0, 1.0).transpose(1, 2, 0)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def write_segmentation_overlays(path: str | os.PathLike, images, truth, predictions: Mapping[str, np.ndarray],
                                num_classes: int, scale: int = 4, alpha: float = 0.6) -> None:
    """One row per image: the image | truth | each prediction, masks drawn over the image.

    ``images`` (N, C, H, W) in [0, 1]; ``truth`` (N, H, W) and each of ``predictions`` (model
    name -> (N, H, W)) class indices; labelled pixels (class > 0) are blended with their class
    colour at ``alpha``. Each pixel is drawn ``scale`` x ``scale``.
    """
    truth = np.asarray(truth)
    images = np.asarray(images)
    if truth.ndim != 3 or len(images) != len(truth) or len(truth) == 0:
        raise ValueError(f"images (N, C, H, W) and truth (N, H, W) must hold the same N >= 1 items, got "
                         f"{images.shape} and {truth.shape}")
    scale = check_int("scale", scale)
    tiles = []
    for i in range(len(truth)):
        rgb = _grey_rgb(images[i])
        row = [rgb]
        for mask in [truth[i]] + [np.asarray(p)[i] for p in predictions.values()]:
            if mask.shape != truth[i].shape:
                raise ValueError(f"every prediction must be {truth.shape}, got a mask of shape {mask.shape} at {i}")
            colour = colorize_mask(mask, num_classes)
            labelled = (mask > 0)[..., None]
            row.append(np.where(labelled, (1 - alpha) * rgb + alpha * colour, rgb))
        tiles.extend(row)
    grid = image_grid(np.stack(tiles).repeat(scale, axis=1).repeat(scale, axis=2), ncol=2 + len(predictions), pad=2)
    write_png(path, grid)
