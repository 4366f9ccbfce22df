"""Segmentation data: generated ``digit-scenes`` and a loader for a folder of image/mask pairs.

- :func:`digit_scenes`: square canvases holding 1 to ``max_digits`` real handwritten digits
  (:func:`lstmkit.data.images.load_glyphs`: scikit-learn's digits upscaled, or MNIST IDX files)
  with a per-pixel label: 0 background, ``1 + d`` for digit ``d`` (11 classes, :data:`SCENE_CLASSES`).
  A pixel belongs to a digit where that glyph's ink is at least ``threshold``. Digits may
  overlap (each new one is placed so that its box covers at most ``max_overlap`` of an earlier
  box, when such a place is found in 50 draws; otherwise it is left out): the image is the
  pixel-wise maximum of the glyphs, and an overlapped pixel belongs to the glyph with the most
  ink there (the first placed on a tie). Each split has a fixed default seed
  (:data:`SPLIT_SEEDS`); test scenes are built from the TEST glyphs, train and val scenes from
  the training glyphs with different seeds, so the three are reproducible and distinct.
  ``rotate`` / ``rescale`` (training augmentation, default off) turn and resize each placed
  glyph about its centre by a random angle in ±``rotate`` degrees and a factor in
  [1 - ``rescale``, 1 + ``rescale``] (bilinear, within its box: ink pushed out of the box is cut)
  before the scene is composed, so image and mask move together.
- :func:`load_mask_folder`: a user folder ``DIR/images/NAME.png`` + ``DIR/masks/NAME.png``
  (same NAME, same size), where a mask is a single-channel PNG whose pixel values are class
  indices (0 .. K-1). Images may be any format Pillow reads (.png .jpg .jpeg .bmp .tif .tiff).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from ..checks import check_int, require
from .images import load_glyphs, read_image
from .splits import random_split

__all__ = ["SCENE_CLASSES", "SPLIT_SEEDS", "GLYPH_JITTER", "Scenes", "digit_scenes", "transform_glyph",
           "check_glyph_jitter", "load_mask_folder", "image_channels", "CLASS_WEIGHTS", "load_segment_data",
           "class_weights", "fresh_scenes"]

log = logging.getLogger(__name__)

SCENE_CLASSES = ("background",) + tuple(f"digit {d}" for d in range(10))
SPLIT_SEEDS = {"train": 20160101, "val": 20160202, "test": 20160303}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_TRIES = 50


@dataclass(frozen=True)
class Scenes:
    """``images`` (N, C, H, W) float32 in [0, 1], ``masks`` (N, H, W) int64 class indices,
    ``classes`` the class names (index = label), ``names`` one name per image."""

    images: np.ndarray
    masks: np.ndarray
    classes: tuple[str, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.masks)

    def take(self, idx: np.ndarray) -> "Scenes":
        """The scenes at ``idx``."""
        return Scenes(self.images[idx], self.masks[idx], self.classes, tuple(self.names[i] for i in idx))


def _overlap(a: tuple[int, int], b: tuple[int, int], g: int) -> float:
    """Fraction of a g x g box at ``a`` covered by the one at ``b``."""
    dy, dx = max(0, g - abs(a[0] - b[0])), max(0, g - abs(a[1] - b[1]))
    return dy * dx / (g * g)


GLYPH_JITTER = {"rotate": 180, "rescale": 0.5}  # the largest rotate (degrees) and rescale (fraction)


def check_glyph_jitter(prefix: str = "", **values) -> None:
    """ValueError unless each of ``rotate`` / ``rescale`` given is a number in [0, its GLYPH_JITTER bound];
    ``prefix`` goes before the name in the message (e.g. ``"data."``)."""
    for name, value in values.items():
        top = GLYPH_JITTER[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
            raise ValueError(f"{prefix}{name} must be a number in [0, {top}], got {value!r}")


def transform_glyph(glyph: np.ndarray, angle, scale) -> np.ndarray:
    """``glyph`` (g, g) or a stack (N, g, g) turned by ``angle`` degrees (counter-clockwise as
    displayed) and resized by ``scale`` about its centre (numbers, or one per glyph of a stack);
    bilinear, zero outside the source, the same box and dtype."""
    stack = np.asarray(glyph)
    single = stack.ndim == 2
    stack = stack[None] if single else stack
    n, g = stack.shape[0], stack.shape[-1]
    c = (g - 1) / 2
    t = np.deg2rad(np.broadcast_to(np.asarray(angle, np.float64), (n,)))[:, None, None]
    s = np.broadcast_to(np.asarray(scale, np.float64), (n,))[:, None, None]
    yy, xx = np.mgrid[0:g, 0:g].astype(np.float64) - c
    # inverse map: a displayed pixel (row y down, column x right) reads the source at R(-angle) p / scale
    sy = (np.cos(t) * yy + np.sin(t) * xx) / s + c
    sx = (np.cos(t) * xx - np.sin(t) * yy) / s + c
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    fy, fx = sy - y0, sx - x0
    padded = np.pad(stack, ((0, 0), (1, 1), (1, 1)))  # zero border: reads outside the box see no ink
    which = np.arange(n)[:, None, None]

    def at(y, x):
        return padded[which, np.clip(y, -1, g) + 1, np.clip(x, -1, g) + 1]

    out = ((1 - fy) * (1 - fx) * at(y0, x0) + (1 - fy) * fx * at(y0, x0 + 1)
           + fy * (1 - fx) * at(y0 + 1, x0) + fy * fx * at(y0 + 1, x0 + 1)).astype(stack.dtype)
    return out[0] if single else out


def digit_scenes(split: Literal["train", "val", "test"], n: int, size: int = 32, max_digits: int = 4,
                 glyph_size: int = 14, seed: int | None = None, mnist: str | os.PathLike | None = None,
                 threshold: float = 0.4, max_overlap: float = 0.25, rotate: float = 0.0,
                 rescale: float = 0.0) -> Scenes:
    """``n`` scenes of ``size`` x ``size`` pixels with 1..``max_digits`` digits of ``glyph_size`` pixels.

    ``seed`` defaults to the split's fixed seed (:data:`SPLIT_SEEDS`); ``split`` "test" draws
    from the test glyphs, "train" and "val" from the training glyphs. ``mnist``: a directory with
    the MNIST IDX files (otherwise scikit-learn's digits). ``rotate`` (degrees, in [0, 180]) and
    ``rescale`` (in [0, 0.5]) randomly turn and resize each placed glyph (0: as drawn; with both 0
    the scenes are those of earlier versions). Returns :class:`Scenes` with one channel and the
    11 classes of :data:`SCENE_CLASSES`.
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_SEEDS)}, got {split!r}")
    n = check_int("n", n)
    size = check_int("size", size, 8, 512)
    max_digits = check_int("max_digits", max_digits, 1, 16)
    glyph_size = check_int("glyph_size", glyph_size, 4, size)
    seed = SPLIT_SEEDS[split] if seed is None else check_int("seed", seed, 0)
    if not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if not (isinstance(max_overlap, (int, float)) and 0 <= max_overlap <= 1):
        raise ValueError(f"max_overlap must be in [0, 1], got {max_overlap!r}")
    check_glyph_jitter(rotate=rotate, rescale=rescale)
    glyphs = load_glyphs("test" if split == "test" else "train", glyph_size, mnist)
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), np.float32)
    masks = np.zeros((n, size, size), np.int64)
    g = glyph_size
    plan: list[tuple[int, int, tuple[int, int]]] = []  # (scene, glyph, place), in drawing order
    turns: list[tuple[float, float]] = []  # (angle, scale) per placed glyph, with rotate or rescale
    for i in range(n):
        places: list[tuple[int, int]] = []
        for _ in range(int(rng.integers(1, max_digits + 1))):
            k = int(rng.integers(len(glyphs)))
            for _ in range(_TRIES):
                at = (int(rng.integers(0, size - g + 1)), int(rng.integers(0, size - g + 1)))
                if all(_overlap(p, at, g) <= max_overlap for p in places):
                    break
            else:
                continue  # no room: fewer digits in this scene
            places.append(at)
            plan.append((i, k, at))
            if rotate or rescale:
                turns.append((rng.uniform(-rotate, rotate), 1 + rng.uniform(-rescale, rescale)))
    placed = glyphs.images[[k for _, k, _ in plan]]  # (P, g, g)
    if turns:
        angles, scales = np.array(turns).T
        placed = transform_glyph(placed, angles, scales)
    ink = images  # the most ink seen so far at each pixel: the image itself
    for (i, k, at), glyph in zip(plan, placed):
        window = (i, slice(at[0], at[0] + g), slice(at[1], at[1] + g))
        owner = (glyph > ink[window]) & (glyph >= threshold)  # the glyph with the most ink owns a pixel
        masks[window][owner] = 1 + int(glyphs.labels[k])
        ink[window] = np.maximum(ink[window], glyph)
    names = tuple(f"{split}-{seed}-{i:05d}" for i in range(n))
    return Scenes(images[:, None], masks, SCENE_CLASSES, names)


# ------------------------------------------------------------------------- user folders


def image_channels(path: str | os.PathLike) -> int:
    """1 for a greyscale image file (with or without alpha), 3 for colour; ValueError if the
    file is not an image."""
    Image = require("PIL.Image", "images need Pillow", "vision")
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode == "P":  # a palette: grey only if every palette entry is grey
                rgb = np.asarray(im.convert("RGB"))
                return 1 if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all() else 3
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"{path} is not a readable image file ({type(e).__name__}: {e})") from None
    return 1 if mode in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F") else 3


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"mask {path} is not a readable image file ({type(e).__name__}: {e})") from None
    if arr.ndim != 2 or mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
        raise ValueError(f"mask {path} must be a single-channel PNG whose pixel values are class indices "
                         f"(mode L, P or I), got mode {mode} with shape {arr.shape}")
    return arr.astype(np.int64)


def _listing(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist: a mask folder holds images/NAME.png and masks/NAME.png")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        if p.suffix.lower() not in suffixes:
            raise ValueError(f"{p} is not an image file: {folder.name}/ may only hold {' '.join(suffixes)} files")
        if p.stem in out:
            raise ValueError(f"{folder} holds two files named {p.stem!r} ({out[p.stem].name}, {p.name})")
        out[p.stem] = p
    return out


def load_mask_folder(directory: str | os.PathLike, classes: Sequence[str] | int | None = None,
                     channels: int | None = None, size: tuple[int, int] | None = None) -> Scenes:
    """Image/mask pairs from ``directory/images/NAME.*`` and ``directory/masks/NAME.png``.

    ``classes``: the class names (mask value i is ``classes[i]``) or their number; ``None``
    takes 0 .. the largest value in any mask. ``channels`` (1 or 3): what every image must have
    (``None``: whatever the first image has; all must agree). ``size`` (H, W): what every image
    must be (``None``: the first image's; all must agree). Raises ValueError naming the file for
    a missing partner, a file that is not an image, a wrong channel count or size, or a mask
    value outside the classes.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"mask folder {str(directory)!r} does not exist")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    if isinstance(classes, int) and not isinstance(classes, bool):
        names = tuple(str(i) for i in range(check_int("classes", classes, 2)))
    elif classes is None:
        names = None
    elif isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes):
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(f"classes must list at least 2 distinct names, got {list(classes)!r}")
        names = tuple(classes)
    else:
        raise TypeError(f"classes must be a list of names, a number of classes or None, got {classes!r}")
    images, masks = _listing(root / "images", IMAGE_SUFFIXES), _listing(root / "masks", (".png",))
    for a, b, where in ((images, masks, "masks"), (masks, images, "images")):
        missing = sorted(set(a) - set(b))
        if missing:
            raise ValueError(f"{a[missing[0]]} has no partner in {root / where}/ (same name expected; "
                             f"{len(missing)} unpaired: {', '.join(missing[:5])})")
    if not images:
        raise ValueError(f"{root / 'images'} holds no images")
    xs, ys = [], []
    for stem in sorted(images):
        c = image_channels(images[stem])
        channels = c if channels is None else channels
        if c != channels:
            raise ValueError(f"{images[stem]} has {c} channel{'s' * (c > 1)} but {channels} are needed "
                             f"(every image in {root / 'images'} must have the same)")
        x = read_image(images[stem], channels)
        if size is not None and x.shape[:2] != tuple(size):
            raise ValueError(f"{images[stem]} is {x.shape[1]}x{x.shape[0]} (WxH) but {size[1]}x{size[0]} is needed "
                             f"(every image in {root / 'images'} must have the same size)")
        size = x.shape[:2]
        y = _read_mask(masks[stem])
        if y.shape != x.shape[:2]:
            raise ValueError(f"mask {masks[stem]} is {y.shape[1]}x{y.shape[0]} (WxH) but its image is "
                             f"{x.shape[1]}x{x.shape[0]}")
        if names is not None and y.max() >= len(names):
            bad = sorted(set(np.unique(y).tolist()) - set(range(len(names))))
            raise ValueError(f"mask {masks[stem]} holds labels {bad} outside the {len(names)} classes "
                             f"(valid: 0..{len(names) - 1} = {', '.join(names)})")
        xs.append(x.reshape(*x.shape[:2], channels).transpose(2, 0, 1))
        ys.append(y)
    if names is None:
        top = max(int(y.max()) for y in ys)
        names = tuple(str(i) for i in range(max(top + 1, 2)))
        log.info(f"{root}: {len(names)} classes inferred from the masks (0..{top})")
    return Scenes(np.stack(xs).astype(np.float32), np.stack(ys), names, tuple(sorted(images)))


# ---------------------------------------------------------------------------- a task's data

CLASS_WEIGHTS = ("none", "inverse_sqrt", "inverse")


def load_segment_data(data, val_fraction: float, seed: int) -> tuple[Scenes, Scenes, Scenes]:
    """(train, val, test) scenes of a segment config's ``data`` (:class:`lstmkit.tasks.segment.SegmentData`):
    a mask folder (its test part carved with ``data.split_seed``) or generated digit scenes; val is
    carved from the training scenes with ``seed``."""
    if data.path is not None:
        every = load_mask_folder(data.path, data.classes)
        rest, test = random_split(len(every), data.test_fraction, data.split_seed, "data.test_fraction",
                                  at_least_one=False)
        train = every.take(rest)
    else:
        kw = dict(size=data.size, max_digits=data.max_digits, glyph_size=data.glyph_size, mnist=data.mnist)
        train = digit_scenes("train", data.train_scenes, seed=data.train_seed, **kw)
        test_set = digit_scenes("test", data.test_scenes, seed=data.test_seed, **kw)
    fit_idx, val_idx = random_split(len(train), val_fraction, seed, "train.val_fraction", at_least_one=False)
    if data.path is not None:
        return train.take(fit_idx), train.take(val_idx), every.take(test)
    return train.take(fit_idx), train.take(val_idx), test_set


def class_weights(masks: np.ndarray, num_classes: int, kind: str) -> np.ndarray | None:
    """(K,) float32 cross-entropy weights from the pixel frequencies f_k of ``masks``: ``"inverse_sqrt"``
    f_k^-1/2, ``"inverse"`` f_k^-1 (classes absent from ``masks`` get the largest present weight),
    scaled so that sum_k f_k w_k = 1 (the average pixel keeps weight 1); ``"none"`` -> None."""
    if kind not in CLASS_WEIGHTS:
        raise ValueError(f"class_weights must be one of {', '.join(map(repr, CLASS_WEIGHTS))}, got {kind!r}")
    if kind == "none":
        return None
    freq = np.bincount(np.asarray(masks).ravel(), minlength=num_classes)[:num_classes] / np.asarray(masks).size
    present = freq > 0
    w = np.zeros(num_classes)
    w[present] = freq[present] ** (-0.5 if kind == "inverse_sqrt" else -1.0)
    w[~present] = w[present].max()
    return (w / (freq * w).sum()).astype(np.float32)


def fresh_scenes(data, n: int, seed: int) -> Callable[[int], Scenes] | None:
    """For a segment config's ``data`` (:class:`lstmkit.tasks.segment.SegmentData`) with ``data.fresh_scenes``: ``epoch -> n`` new training scenes (training glyphs, ``data.rotate`` and
    ``data.rescale`` applied), seeded from (``data.train_seed``, ``seed``, epoch) so the model and the
    baseline see the same ones; otherwise None."""
    if not data.fresh_scenes:
        return None

    def draw(epoch: int) -> Scenes:
        epoch_seed = int(np.random.SeedSequence([data.train_seed, seed, epoch]).generate_state(1)[0])
        return digit_scenes("train", n, size=data.size, max_digits=data.max_digits, glyph_size=data.glyph_size,
                            seed=epoch_seed, mnist=data.mnist, rotate=data.rotate, rescale=data.rescale)
    return draw
