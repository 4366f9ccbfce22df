"""Moving digits: the Moving MNIST protocol (Srivastava et al. 2015) with real handwritten digits.

Each clip is ``frames`` frames of a ``size`` x ``size`` canvas (64 x 64, 20 frames: 10 to read,
10 to predict) on which ``digits`` glyphs (28 x 28) move in straight lines and bounce off the
edges, as in Srivastava et al.'s generator: a glyph's top-left corner starts uniformly in
``[0, size - glyph_size]`` squared, moves ``speed`` pixels per frame in a uniform random
direction, and at an edge is mirrored back inside with its velocity component there reversed.
Overlapping digits combine by the pixel-wise maximum.

The glyphs are :func:`lstmkit.data.images.load_glyphs` (scikit-learn's 8 x 8 digits upscaled,
or MNIST IDX files given with ``mnist``); test clips are made from the test glyphs only, which
no training clip contains. Each split has a fixed default seed, so "the test set" is the same
clips everywhere.

:func:`load_clip` reads a user's clip from a ``.npy`` file (never unpickling) for prediction.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import torch

from ..checks import check_int
from .files import read_npy
from .images import load_glyphs

__all__ = ["moving_digits", "bouncing_paths", "load_clip", "SPLIT_SEEDS", "config_clips", "FrameBatches"]

SPLIT_SEEDS = {"train": 20150001, "test": 20150002}  # the default seed of each split's clips


def bouncing_paths(rng: np.random.Generator, n: int, digits: int, frames: int, limit: int, speed: float
                   ) -> np.ndarray:
    """Top-left corners ``(n, digits, frames, 2)`` (row, col) as ints in ``[0, limit]``: straight
    lines at ``speed`` pixels per frame in uniform random directions, reflected at 0 and ``limit``."""
    pos = rng.uniform(0, limit, size=(n, digits, 2))
    theta = rng.uniform(0, 2 * np.pi, size=(n, digits))
    vel = speed * np.stack([np.sin(theta), np.cos(theta)], axis=-1)  # -> (n, digits, 2)
    out = np.empty((n, digits, frames, 2), dtype=np.int64)
    for t in range(frames):
        out[:, :, t] = np.rint(pos)
        pos = pos + vel
        low, high = pos < 0, pos > limit
        pos = np.where(low, -pos, np.where(high, 2 * limit - pos, pos))  # reflect back inside
        vel = np.where(low | high, -vel, vel)
    return out


def moving_digits(n: int, seed: int | None = None, split: Literal["train", "test"] = "train", size: int = 64,
                  digits: int = 2, frames: int = 20, glyph_size: int = 28, mnist: str | os.PathLike | None = None,
                  speed: float | None = None) -> np.ndarray:
    """``n`` clips ``(n, frames, size, size)`` float32 in [0, 1] of ``digits`` bouncing digits.

    ``seed``: None uses the split's fixed default (:data:`SPLIT_SEEDS`). ``speed``: pixels per
    frame, None for Srivastava et al.'s 0.1 of the free range ``size - glyph_size`` (3.6 px at
    64 / 28)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n = check_int("n", n)
    size, digits, frames = check_int("size", size, 8), check_int("digits", digits), check_int("frames", frames)
    glyph_size = check_int("glyph_size", glyph_size, 4)
    if glyph_size > size:
        raise ValueError(f"glyph_size={glyph_size} does not fit on a size={size} canvas")
    limit = size - glyph_size
    if speed is None:
        speed = 0.1 * limit
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not np.isfinite(speed) or speed < 0:
        raise ValueError(f"speed must be a number of pixels per frame >= 0, got {speed!r}")
    if speed > limit:
        raise ValueError(f"speed={speed} pixels per frame exceeds the free range size - glyph_size = {limit}: a digit "
                         "would jump across the canvas")
    rng = np.random.default_rng(SPLIT_SEEDS[split] if seed is None else check_int("seed", seed, 0))
    glyphs = load_glyphs(split, glyph_size, mnist).images
    which = rng.integers(0, len(glyphs), size=(n, digits))
    paths = bouncing_paths(rng, n, digits, frames, limit, float(speed))
    clips = np.zeros((n, frames, size, size), dtype=np.float32)
    for i in range(n):
        for d in range(digits):
            g = glyphs[which[i, d]]
            for t in range(frames):
                r, c = paths[i, d, t]
                window = clips[i, t, r:r + glyph_size, c:c + glyph_size]
                np.maximum(window, g, out=window)
    return clips


def load_clip(path: str | os.PathLike, frames: int = 10, size: int | tuple[int, int] = 64) -> np.ndarray:
    """A clip ``(frames, H, W)`` float32 in [0, 1] from a ``.npy`` file holding ``(T, H, W)`` (or
    ``(T, 1, H, W)``) floats in [0, 1] or uint8 0-255; clear errors for anything else."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    a = read_npy(path, "clip", "frames")
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3:
        raise ValueError(f"{path}: a clip must be (T, H, W) = ({frames}, {h}, {w}) greyscale frames, got shape {a.shape}")
    if a.shape[0] != frames:
        raise ValueError(f"{path}: the clip has {a.shape[0]} frames but the model reads {frames}; give exactly the "
                         f"{frames} frames before the ones to predict")
    if a.shape[1:] != (h, w):
        raise ValueError(f"{path}: frames are {a.shape[1]}x{a.shape[2]} (HxW) but the model needs {h}x{w}")
    if a.min() < 0 or a.max() > 1:
        raise ValueError(f"{path}: float frames must lie in [0, 1] (ink high), got values in "
                         f"[{a.min():.3g}, {a.max():.3g}]; divide uint8 frames by 255")
    return a


def config_clips(cfg, split: Literal["train", "test"]) -> np.ndarray:
    """The moving-digit clips of one split of a video config's ``data`` (:class:`lstmkit.tasks.video.VideoDataConfig`):
    its clip count, seed, canvas and frames (``input_frames + output_frames``)."""
    n = cfg.train_clips if split == "train" else cfg.test_clips
    seed = cfg.train_seed if split == "train" else cfg.test_seed
    return moving_digits(n, seed, split, size=cfg.size, digits=cfg.digits, frames=cfg.input_frames + cfg.output_frames,
                         glyph_size=cfg.glyph_size, mnist=cfg.mnist)


class FrameBatches:
    """(inputs, targets) float32 batches of clips (N, T, H, W): the first ``split_at`` frames and the rest;
    ``shuffle``: in a new order each epoch, from ``seed + epoch`` (called with the epoch); iterating gives
    epoch 0's."""

    def __init__(self, clips: np.ndarray, split_at: int, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        self.clips, self.split_at, self.batch_size, self.shuffle, self.seed = clips, split_at, batch_size, shuffle, seed

    def __call__(self, epoch: int = 0):
        order = (np.random.default_rng(self.seed + epoch).permutation(len(self.clips)) if self.shuffle
                 else np.arange(len(self.clips)))
        for start in range(0, len(order), self.batch_size):
            x = torch.from_numpy(self.clips[np.sort(order[start:start + self.batch_size])])
            yield x[:, : self.split_at], x[:, self.split_at:]

    def __iter__(self):
        return self()
