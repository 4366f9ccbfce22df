"""Binarised digit images for autoregressive generation (PixelRNN, PixelCNN).

:func:`load_binary_images` gives train / validation / test splits of binary images
``(N, H, W)`` uint8 in {0, 1}:

- ``name="digits"``: scikit-learn's 8x8 handwritten digits through
  :func:`lstmkit.data.images.load_glyphs` at size 8 (no resizing). ``load_glyphs`` divides the
  original 0..16 values by 16 and then rescales each glyph to span [0, 1] (min-max per glyph);
  a pixel is 1 when that value is >= ``threshold`` (0.5: half of the glyph's darkest ink; for
  the 98% of glyphs whose darkest pixel is 16 that is exactly "original value >= 8"). Train and
  test images are disjoint (the fixed stratified 75/25 split of the ``digits`` classification
  dataset: 1347 / 450 images).
- ``name="mnist"``: an MNIST IDX directory (``path``), 28x28, binarised the same way, its
  official train / t10k split.

The validation split is carved from the training images only (stratified by digit, seed
``seed``); the test split is the test glyphs, untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..checks import check_int
from .images import load_glyphs
from .splits import stratified_split
from .subsets import class_indices, fraction_indices

__all__ = ["BinaryImages", "binarize", "load_binary_images"]


@dataclass(frozen=True)
class BinaryImages:
    """Binary images ``(N, H, W)`` uint8 in {0, 1} per split, with their digit labels."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray
    val_labels: np.ndarray
    test_labels: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of every image."""
        return tuple(self.train.shape[1:])


def binarize(images: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Images with values in [0, 1] -> uint8 {0, 1}: 1 where the value is >= ``threshold``."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}")
    a = np.asarray(images)
    if not np.issubdtype(a.dtype, np.number) or a.size == 0:
        raise ValueError(f"images must be a non-empty numeric array, got dtype {a.dtype} and shape {a.shape}")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise ValueError("images must hold finite values in [0, 1] to be binarised (divide 8-bit images by 255)")
    return (a >= threshold).astype(np.uint8)


def load_binary_images(name: Literal["digits", "mnist"] = "digits", path: str | os.PathLike | None = None,
                       threshold: float = 0.5, val_fraction: float = 0.1, seed: int = 0,
                       max_train: int | None = None, classes: list | None = None,
                       train_fraction: float | None = None) -> BinaryImages:
    """Binarised digits split into train / validation (carved from train) / test.

    ``path``: the MNIST IDX directory (``name="mnist"`` only). ``max_train``: keep a stratified
    subset of that many training images (before carving validation), e.g. to fit a CPU budget.
    ``classes``: keep only these digits (every split); ``train_fraction``: then a stratified share of
    the training images (seeded with ``seed``), before validation is carved.
    """
    if name not in ("digits", "mnist"):
        raise ValueError(f"name must be 'digits' (scikit-learn 8x8) or 'mnist' (an IDX directory in path), got {name!r}")
    if (name == "mnist") != (path is not None):
        raise ValueError("name 'mnist' needs path (the directory with the MNIST IDX files); 'digits' takes no path, "
                         f"got name={name!r}, path={path!r}")
    if not (isinstance(val_fraction, float) and 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must be a float in (0, 1), got {val_fraction!r}")
    if max_train is not None:
        max_train = check_int("max_train", max_train, minimum=10)
    size = 8 if name == "digits" else 28
    train, test = load_glyphs("train", size, mnist=path), load_glyphs("test", size, mnist=path)
    x, y = binarize(train.images, threshold), train.labels
    test_x, test_y = binarize(test.images, threshold), test.labels
    if classes is not None:
        keep, keep_t = class_indices(y, classes, "data"), class_indices(test_y, classes, "data")
        x, y, test_x, test_y = x[keep], y[keep], test_x[keep_t], test_y[keep_t]
    if train_fraction is not None:
        keep = fraction_indices(y, train_fraction, seed)
        x, y = x[keep], y[keep]
    if max_train is not None and max_train < len(y):
        keep, _ = stratified_split(y, 1 - max_train / len(y), seed=seed)
        x, y = x[keep], y[keep]
    tr, va = stratified_split(y, val_fraction, seed=seed)
    return BinaryImages(x[tr], x[va], test_x, y[tr], y[va], test_y)
