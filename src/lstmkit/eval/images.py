"""Images in reports: atomic PNG writes, tiled grids, and the grids the vision tasks show (binary images,
frame strips, one sample per class, completions)."""

from __future__ import annotations

import io
import os

import numpy as np

from ..checks import require
from ..checkpoint import atomic_write_bytes

__all__ = ["write_png", "image_grid", "binary_grid", "frame_strip", "class_strip", "completion_grid"]


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write ``(H, W)`` or ``(H, W, 3)`` floats in [0, 1] (or uint8) as a PNG, atomically."""
    Image = require("PIL.Image", "PNG output needs Pillow", "vision")
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.dtype != np.uint8:
        if not np.isfinite(a).all():
            raise ValueError("image contains NaN or inf")
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def image_grid(images: np.ndarray, ncol: int | None = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``(N, H, W)`` or ``(N, H, W, C)`` images into one ``(rows*(H+pad)-pad, ...)`` image."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim not in (3, 4) or len(a) == 0:
        raise ValueError(f"images must be a non-empty (N, H, W) or (N, H, W, C) array, got shape {a.shape}")
    n, h, w = a.shape[:3]
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    out = np.full((nrow * (h + pad) - pad, ncol * (w + pad) - pad, *a.shape[3:]), pad_value, dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, ncol)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = a[k]
    return out


def binary_grid(images, ncol: int | None = None, pixels: int = 48) -> np.ndarray:
    """Binary images (N, 1, H, W) or (N, H, W) (an array, or a tensor) -> one grid image for a PNG: ink
    black on white, each image scaled up (nearest) to about ``pixels`` pixels high, a grey line between."""
    a = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    a = a.reshape(-1, *a.shape[-2:]).astype(np.float32)
    scale = max(1, pixels // a.shape[1])
    a = np.repeat(np.repeat(1.0 - a, scale, axis=1), scale, axis=2)
    return image_grid(a, ncol=ncol, pad=2, pad_value=0.6)


def completion_grid(images: np.ndarray, filled: np.ndarray, draws: int) -> np.ndarray:
    """A :func:`binary_grid` with a row per image (K, H, W): the image, its top half (bottom grey) and its
    ``draws`` completions (``filled``: (K * draws, H, W), each image's in turn)."""
    h = images.shape[1]
    top = images.astype(np.float32).copy()
    top[:, h // 2:] = 0.5
    tiles = []
    for i in range(len(images)):
        tiles += [images[i], top[i], *filled[i * draws:(i + 1) * draws]]
    return binary_grid(np.stack(tiles), ncol=2 + draws)


def frame_strip(inputs: np.ndarray, truth: np.ndarray, pred: np.ndarray | None = None) -> np.ndarray:
    """Rows of (T, H, W) frames: the input frames, then the true frames, then the predicted frames (when given)."""
    rows = [inputs, truth] + ([] if pred is None else [pred])
    width = max(len(r) for r in rows)
    blank = np.ones_like(inputs[:1])
    tiles = np.concatenate([np.concatenate([r, np.repeat(blank, width - len(r), 0)]) for r in rows])
    return image_grid(tiles, ncol=width, pad=2, pad_value=0.5)


def class_strip(x: np.ndarray, labels: np.ndarray, num_classes: int, step: int = 1) -> np.ndarray:
    """One sample per class as a row of its frames / slices (every ``step``-th): ``x`` (N, T, H, W) or
    (N, T, 1, H, W) with ``labels`` (N,)."""
    firsts = [int(np.flatnonzero(labels == k)[0]) for k in range(num_classes) if (labels == k).any()]
    x = x[firsts][:, ::step]
    x = x[:, :, 0] if x.ndim == 5 else x  # -> (K, T, H, W)
    return image_grid(x.reshape(-1, *x.shape[2:]), ncol=x.shape[1])
