"""Images in reports: atomic PNG writes and tiled grids."""

from __future__ import annotations

import io
import os

import numpy as np

from ..checks import require
from ..checkpoint import atomic_write_bytes

__all__ = ["write_png", "image_grid"]


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
