"""Images for the vision pipelines: handwritten digit glyphs, image files, PNG grids.

- :func:`load_glyphs`: real handwritten digits to build scenes, clips and volumes from --
  scikit-learn's digits (8x8, upscaled) or MNIST IDX files a user gives. Train and test glyphs
  come from disjoint images (scikit-learn: the same fixed stratified 75/25 split as the
  ``digits`` classification dataset; MNIST: its official train/t10k files), so test scenes are
  made from digits no model has seen.
- :func:`read_image`: one image file as float32 in [0, 1], with a clear error for files that are
  not images, and for the wrong channel count when one is required.

PNG writing and tiled grids for reports live in :mod:`lstmkit.eval.images`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..checks import require
from .files import load_idx
from .splits import stratified_split

__all__ = ["Glyphs", "load_glyphs", "resize", "read_image"]

_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass(frozen=True)
class Glyphs:
    """Digit images ``(N, S, S)`` float32 in [0, 1] (ink is high) and labels ``(N,)`` int64 0-9."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _pil():
    return require("PIL.Image", "images need Pillow", "vision")


def resize(images: np.ndarray, size: int | tuple[int, int], mode: Literal["bicubic", "bilinear", "nearest"] = "bicubic"
           ) -> np.ndarray:
    """Resize ``(N, H, W)`` or ``(N, H, W, C)`` float images (values kept in [min, max] of the input)."""
    import torch
    import torch.nn.functional as F

    size = (size, size) if isinstance(size, int) else tuple(size)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C), got shape {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    x = x.unsqueeze(1) if images.ndim == 3 else x.permute(0, 3, 1, 2)
    kw = {} if mode == "nearest" else {"align_corners": False, "antialias": True}
    y = F.interpolate(x, size=size, mode=mode, **kw)
    y = y.clamp(float(images.min()), float(images.max()))
    y = y.squeeze(1) if images.ndim == 3 else y.permute(0, 2, 3, 1)
    return np.ascontiguousarray(y.numpy())


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{directory} has no {stem} (or {stem}.gz): an MNIST directory holds "
                            f"{', '.join(n for pair in _MNIST_FILES.values() for n in pair)}")


def load_glyphs(split: Literal["train", "test"], size: int = 16, mnist: str | os.PathLike | None = None) -> Glyphs:
    """Handwritten digits at ``size`` x ``size`` for building scenes.

    ``mnist``: a directory holding the four MNIST IDX files (plain or ``.gz``); without it,
    scikit-learn's digits, upscaled from 8x8 with antialiased bicubic interpolation.
    """
    if split not in _MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 4 <= size <= 256:
        raise ValueError(f"size must be an int in [4, 256], got {size!r}")
    if mnist is not None:
        d = Path(mnist)
        if not d.is_dir():
            raise FileNotFoundError(f"mnist={str(mnist)!r} is not a directory holding the MNIST IDX files")
        images, labels = (load_idx(_find(d, stem)) for stem in _MNIST_FILES[split])
        if images.ndim != 3 or labels.shape != (len(images),):
            raise ValueError(f"{d}: expected images (n, rows, cols) and n labels, got {images.shape} and {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(f"{d}: MNIST labels must be digits 0-9, got values in [{labels.min()}, {labels.max()}]")
        images = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
    else:
        bunch = require("sklearn.datasets", "digit glyphs need scikit-learn (or mnist=DIR)", "data").load_digits()
        images, labels = (bunch.images / 16.0).astype(np.float32), bunch.target
        train_idx, test_idx = stratified_split(labels, 0.25, seed=0)
        keep = train_idx if split == "train" else test_idx
        images, labels = images[keep], labels[keep]
    if not np.isfinite(images).all():
        raise ValueError("digit images contain NaN or inf")
    if images.shape[1:] != (size, size):
        images = resize(images, size)
    lo, hi = images.min(axis=(1, 2), keepdims=True), images.max(axis=(1, 2), keepdims=True)
    images = (images - lo) / np.maximum(hi - lo, 1e-6)  # each glyph spans [0, 1]
    return Glyphs(np.ascontiguousarray(images, dtype=np.float32), np.asarray(labels, dtype=np.int64))


def read_image(path: str | os.PathLike, channels: int | None = None, size: tuple[int, int] | None = None
               ) -> np.ndarray:
    """An image file as float32 in [0, 1]: ``(H, W)`` for grey, ``(H, W, C)`` otherwise.

    ``channels`` (1 or 3) converts greyscale/RGB/RGBA to that many channels; ``None`` keeps the
    file's. ``size`` ``(H, W)`` raises if the image has another size (it is never resized here).
    """
    Image = _pil()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image {str(path)!r} does not exist")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    try:
        with Image.open(p) as im:
            im.load()
            if channels is None:
                channels = 1 if im.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
            im = im.convert("L" if channels == 1 else "RGB")
            arr = np.asarray(im)
    except (OSError, ValueError, SyntaxError) as e:  # PIL.UnidentifiedImageError is an OSError
        raise ValueError(f"{path} is not a readable image file ({type(e).__name__}: {e})") from None
    arr = arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else max(float(arr.max()), 1.0))
    if size is not None and arr.shape[:2] != tuple(size):
        raise ValueError(f"{path} is {arr.shape[1]}x{arr.shape[0]} (WxH); this model needs {size[1]}x{size[0]}")
    return arr
