"""Clips and volumes: motion-labelled digit clips, 3D shape volumes, and MedMNIST-3D files.

- :func:`motion_clips`: one real handwritten digit (:func:`lstmkit.data.images.load_glyphs`)
  moving on a small canvas. The class is the motion (left, right, up, down, clockwise,
  counter-clockwise, zoom in, zoom out); the digit is random and uninformative. The *anchor*
  frame ``lengths // 2`` has a class-independent state: its position is uniform on the canvas,
  its angle uniform on the circle and its scale log-uniform, for every class, and the clip is
  built outwards from it. So the anchor frame alone cannot tell the class, by construction
  (``tests/data/test_clips.py`` checks it statistically). Translations wrap around the canvas
  (a torus) and angles are on the full circle, so position and angle are uniform in every
  frame, not only the anchor; the scale of the zoom classes drifts away from the anchor.
  Clips have between ``min_frames`` and ``max_frames`` valid frames, zero-padded to
  ``max_frames``.
- :func:`shape_volumes`: 3D solids with elliptic cross-sections whose radius follows a
  class-defined profile along z (cylinder, sphere, cone up, cone down, spindle, hourglass). Every
  class has the same cross-section at the middle slice (``depth // 2``: random radius, ellipse,
  centre and brightness), so the middle slice alone is ambiguous and the slice sequence is not.
- :func:`load_medmnist3d`: a MedMNIST-3D ``.npz`` (``train_images (N, 28, 28, 28) uint8``,
  ``train_labels (N, 1)``, ``val_*``, ``test_*``), single-label only.

All three return :class:`ClipSet` (per split for the loader): ``x`` with clips ``(N, T, 1, S, S)``
or volumes ``(N, D, H, W)`` float32 in [0, 1], ``lengths``, ``labels`` and class names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .images import load_glyphs

__all__ = ["ClipSet", "MOTIONS", "SHAPES", "motion_clips", "shape_volumes", "load_medmnist3d"]

MOTIONS = ("left", "right", "up", "down", "clockwise", "counterclockwise", "zoom_in", "zoom_out")
SHAPES = ("cylinder", "sphere", "cone_up", "cone_down", "spindle", "hourglass")
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ClipSet:
    """Labelled clips ``(N, T, 1, S, S)`` or volumes ``(N, D, H, W)``, float32 in [0, 1].

    ``lengths`` (N,): valid frames of each clip (frames past it are zero), or the depth of every
    volume; ``labels`` (N,) int64 indices into ``classes``.
    """

    x: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def _int_in(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {value!r}")
    return int(value)


def _common(n, seed, split) -> None:
    _int_in("n", n, 1, 10**7)
    _int_in("seed", seed, 0, 2**63 - 1)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test' (disjoint digit glyphs), got {split!r}")


# ------------------------------------------------------------------------------ clips


def _render(glyphs, angle, scale, size: int, orbit: int):
    """Glyphs (M, g, g) placed ``orbit`` px right of the centre of an (S, S) canvas, then rotated
    (radians, clockwise on screen) and scaled about the centre -> (M, S, S) float32."""
    import torch
    import torch.nn.functional as F

    m, g = glyphs.shape[0], glyphs.shape[-1]
    canvas = np.zeros((m, 1, size, size), np.float32)
    o = (size - g) // 2
    canvas[:, 0, o:o + g, o + orbit:o + orbit + g] = glyphs
    # affine_grid maps output coordinates to input ones: the inverse of rotate-then-scale
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    theta = np.stack([np.stack([cos, sin, np.zeros(m)], 1), np.stack([-sin, cos, np.zeros(m)], 1)], 1)
    theta = torch.from_numpy(theta.astype(np.float32))
    grid = F.affine_grid(theta, [m, 1, size, size], align_corners=False)
    out = F.grid_sample(torch.from_numpy(canvas), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[:, 0].numpy()


def motion_clips(n: int, seed: int, split: Literal["train", "test"] = "train", size: int = 32, glyph_size: int = 14,
                 min_frames: int = 8, max_frames: int = 12, noise: float = 0.05, orbit: int | None = None,
                 mnist: str | os.PathLike | None = None) -> ClipSet:
    """``n`` clips of one moving digit, classes :data:`MOTIONS` (balanced, shuffled).

    Per clip: a random digit of ``split``'s glyphs, a length in [``min_frames``, ``max_frames``],
    the anchor frame ``length // 2`` at a uniform position, uniform angle and log-uniform scale in
    [0.75, 1.33]; the motion's speed is random (2-3 px, 30-45 degrees or x1.07-1.11 per frame).
    Rotation and scaling are about a pivot ``orbit`` px left of the digit's centre (default
    ``(size - glyph_size) // 3``), so a rotating digit also circles the pivot and the direction
    shows even for a symmetric digit such as 0. Pixels get Gaussian noise of std ``noise`` and
    are clipped to [0, 1].
    """
    _common(n, seed, split)
    size = _int_in("size", size, 8, 256)
    glyph_size = _int_in("glyph_size", glyph_size, 4, size)
    min_frames = _int_in("min_frames", min_frames, 2, 1000)
    max_frames = _int_in("max_frames", max_frames, min_frames, 1000)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < 1:
        raise ValueError(f"noise must be a number in [0, 1), got {noise!r}")
    orbit = (size - glyph_size) // 3 if orbit is None else _int_in("orbit", orbit, 0, (size - glyph_size) // 2)
    glyphs = load_glyphs(split, glyph_size, mnist).images
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    k = len(MOTIONS)
    labels = rng.permutation(np.arange(n) % k).astype(np.int64)
    lengths = rng.integers(min_frames, max_frames + 1, n)
    digit = rng.integers(0, len(glyphs), n)
    # the anchor frame's state: the same distribution for every class
    pos0 = rng.integers(0, size, (n, 2))  # (row, col) shift of the centred glyph, mod size
    angle0 = rng.uniform(0, 2 * np.pi, n)
    logscale0 = rng.uniform(np.log(0.75), np.log(1.33), n)
    # the motion: one coordinate changes linearly in time
    step = (rng.integers(2, 4, n), np.deg2rad(rng.uniform(30, 45, n)), np.log(rng.uniform(1.07, 1.11, n)))
    t = np.arange(max_frames)[None, :] - (lengths // 2)[:, None]  # (N, T) frames from the anchor
    velocity = np.zeros((n, 4))  # d(row), d(col), d(angle), d(log scale) per frame
    sign = {"left": (1, -1), "right": (1, 1), "up": (0, -1), "down": (0, 1)}
    for c, name in enumerate(MOTIONS):
        rows = labels == c
        if name in sign:
            axis, s = sign[name]
            velocity[rows, axis] = s * step[0][rows]
        elif name in ("clockwise", "counterclockwise"):
            velocity[rows, 2] = (1 if name == "clockwise" else -1) * step[1][rows]
        else:
            velocity[rows, 3] = (1 if name == "zoom_in" else -1) * step[2][rows]
    shift = np.round(pos0[:, None, :] + velocity[:, None, :2] * t[..., None]).astype(np.int64) % size  # (N, T, 2)
    angle = angle0[:, None] + velocity[:, None, 2] * t
    scale = np.exp(logscale0[:, None] + velocity[:, None, 3] * t)
    x = np.zeros((n, max_frames, 1, size, size), np.float32)
    chunk = max(1, 4096 // max_frames)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        frames = _render(np.repeat(glyphs[digit[a:b]], max_frames, 0), angle[a:b].ravel(), scale[a:b].ravel(), size, orbit)
        frames = frames.reshape(b - a, max_frames, size, size)
        for i in range(b - a):
            for j in range(lengths[a + i]):
                x[a + i, j, 0] = np.roll(frames[i, j], tuple(shift[a + i, j] - size // 2), axis=(0, 1))
    if noise:
        valid = (np.arange(max_frames)[None, :] < lengths[:, None])[:, :, None, None, None]
        x = np.clip(x + noise * rng.standard_normal(x.shape, dtype=np.float32), 0, 1) * valid
    return ClipSet(x.astype(np.float32), lengths.astype(np.int64), labels, MOTIONS)


# ----------------------------------------------------------------------------- volumes


def _profile(name: str, z: np.ndarray) -> np.ndarray:
    """Radius relative to the middle slice's at z in [-1, 1] (the solid's extent); 1 at z = 0."""
    return {"cylinder": np.ones_like(z), "sphere": np.sqrt(np.clip(1 - z ** 2, 0, None)),
            "cone_up": 1 - z, "cone_down": 1 + z, "spindle": 1 - np.abs(z), "hourglass": 1 + np.abs(z)}[name]


def shape_volumes(n: int, seed: int, split: Literal["train", "test"] = "train", size: int = 28, depth: int = 28,
                  noise: float = 0.1) -> ClipSet:
    """``n`` volumes ``(depth, size, size)`` of one solid each, classes :data:`SHAPES` (balanced).

    The solid spans ``2h + 1`` slices around the middle slice ``depth // 2`` (h random in
    [0.3, 0.45] x depth); its cross-section is an ellipse (random axes ratio, orientation and
    centre) whose radius follows the class's profile along z and equals a random r0 in
    [0.12, 0.22] x size at the middle slice for every class. Random brightness in [0.5, 1],
    Gaussian noise of std ``noise``, clipped to [0, 1]. ``split`` only changes the random stream
    (train and test volumes are independent draws).
    """
    _common(n, seed, split)
    size = _int_in("size", size, 8, 256)
    depth = _int_in("depth", depth, 4, 256)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < 1:
        raise ValueError(f"noise must be a number in [0, 1), got {noise!r}")
    rng = np.random.default_rng([seed, 2 if split == "train" else 3])
    labels = rng.permutation(np.arange(n) % len(SHAPES)).astype(np.int64)
    half = rng.uniform(0.3, 0.45, n) * depth
    r0 = rng.uniform(0.12, 0.22, n) * size
    ratio = rng.uniform(0.7, 1.0, n)  # minor / major axis
    phi = rng.uniform(0, np.pi, n)
    centre = rng.uniform(0.35, 0.65, (n, 2)) * size
    bright = rng.uniform(0.5, 1.0, n)
    zz = np.arange(depth) - depth // 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    x = np.empty((n, depth, size, size), np.float32)
    for i in range(n):
        z = zz / half[i]
        r = r0[i] * _profile(SHAPES[labels[i]], z) * (np.abs(z) <= 1)  # (D,)
        dy, dx = yy - centre[i, 0], xx - centre[i, 1]
        u = dx * np.cos(phi[i]) + dy * np.sin(phi[i])
        v = (-dx * np.sin(phi[i]) + dy * np.cos(phi[i])) / ratio[i]
        dist = np.sqrt(u ** 2 + v ** 2)  # (S, S) elliptic distance in major-axis pixels
        inside = 0.5 + 0.5 * np.tanh(r[:, None, None] - dist[None])  # soft edge, (D, S, S)
        x[i] = bright[i] * inside * (r[:, None, None] > 0)
    if noise:
        x += noise * rng.standard_normal(x.shape, dtype=np.float32)
    np.clip(x, 0, 1, out=x)
    return ClipSet(x, np.full(n, depth, np.int64), labels, SHAPES)


# ---------------------------------------------------------------------------- MedMNIST


def load_medmnist3d(path: str | os.PathLike) -> dict[str, ClipSet]:
    """``{"train", "val", "test"}`` volumes from a MedMNIST-3D ``.npz`` (organmnist3d, nodulemnist3d ...).

    Images ``(N, D, H, W)`` (uint8 scaled to [0, 1], floats kept and required in [0, 1]); labels
    ``(N,)`` or ``(N, 1)`` class indices. Multi-label files (labels ``(N, k)``, k > 1, e.g.
    chestmnist) are refused: only single-label classification is supported. Class names are the
    indices as strings (the files carry no names). Loaded with ``allow_pickle=False``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"MedMNIST-3D file {str(path)!r} does not exist")
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{p} is not a readable .npz file ({type(e).__name__}: {e})") from None
    need = [f"{s}_{kind}" for s in _SPLITS for kind in ("images", "labels")]
    missing = [k for k in need if k not in arrays]
    if missing:
        raise ValueError(f"{p} lacks {', '.join(missing)}: a MedMNIST-3D file holds {', '.join(need)} "
                         f"(found {', '.join(sorted(arrays)) or 'nothing'})")
    out, shape, num_classes = {}, None, 0
    for s in _SPLITS:
        images, labels = arrays[f"{s}_images"], arrays[f"{s}_labels"]
        if images.ndim != 4:
            raise ValueError(f"{p}: {s}_images must be volumes (N, D, H, W), got rank {images.ndim} shape "
                             f"{images.shape}")
        if shape is not None and images.shape[1:] != shape:
            raise ValueError(f"{p}: {s}_images are {images.shape[1:]} volumes but train_images are {shape}")
        shape = images.shape[1:]
        if labels.ndim == 2 and labels.shape[1] > 1:
            raise ValueError(f"{p}: {s}_labels are multi-label {labels.shape}; only single-label files (labels (N,) "
                             "or (N, 1)) are supported")
        if labels.ndim == 2:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise ValueError(f"{p}: {s}_labels must be (N,) or (N, 1), got shape {labels.shape}")
        if len(labels) != len(images):
            raise ValueError(f"{p}: {len(images)} {s}_images but {len(labels)} {s}_labels")
        if len(images) == 0:
            raise ValueError(f"{p}: {s}_images is empty")
        if images.dtype == np.uint8:
            x = images.astype(np.float32) / 255.0
        elif images.dtype.kind == "f":
            if not np.isfinite(images).all():
                raise ValueError(f"{p}: {s}_images contain NaN or inf")
            if images.min() < 0 or images.max() > 1:
                raise ValueError(f"{p}: float {s}_images must lie in [0, 1], got [{images.min()}, {images.max()}]")
            x = images.astype(np.float32)
        else:
            raise ValueError(f"{p}: {s}_images must be uint8 or float, got {images.dtype}")
        if labels.dtype.kind == "f":
            if not np.isfinite(labels).all():
                raise ValueError(f"{p}: {s}_labels contain NaN or inf")
            if not (labels == np.round(labels)).all():
                raise ValueError(f"{p}: {s}_labels must be integer class indices")
        elif labels.dtype.kind not in "iu":
            raise ValueError(f"{p}: {s}_labels must be integer class indices, got {labels.dtype}")
        if labels.min() < 0:
            raise ValueError(f"{p}: {s}_labels must be class indices >= 0, got {labels.min()}")
        labels = labels.astype(np.int64)
        num_classes = max(num_classes, int(labels.max()) + 1)
        out[s] = (x, labels)
    if num_classes < 2:
        raise ValueError(f"{p}: labels hold only one class; classification needs at least 2")
    classes = tuple(str(c) for c in range(num_classes))
    return {s: ClipSet(x, np.full(len(y), x.shape[1], np.int64), y, classes) for s, (x, y) in out.items()}

