"""Natural images bundled with scikit-image, for super-resolution.

Every image here ships inside the scikit-image wheel (``skimage/data/``): nothing is
downloaded. Images are used as their luminance, the super-resolution convention: Y of
full-range (JPEG) YCbCr with BT.601 weights, ``Y = 0.299 R + 0.587 G + 0.114 B`` in [0, 1];
a greyscale image is its own Y.

The split is fixed by name:

- ``TEST_IMAGES``: chelsea (a cat), coffee (a cup), rocket (a launch pad) -- three colour
  photographs no model sees during training or validation;
- ``TRAIN_IMAGES``: the other photographs and scans (people, coins, the moon, text, textures,
  microscopy, a retina, the Hubble deep field, a motorcycle).

Validation is carved from the training images (:func:`lstmkit.data.splits.carve_validation`): the last
``fraction`` of each one along its longer side is held out for validation patches and the rest
gives training patches, so the two never share a pixel.

Degradation (:func:`downscale`): the HR image is cropped to a multiple of the scale and shrunk
with antialiased bicubic interpolation (``torch.nn.functional.interpolate``). Training pairs
are random aligned crops of an (HR, LR) image pair with a random flip/rotation
(:class:`PatchPairs`), drawn from a generator seeded by ``(seed, epoch)``.
"""

from __future__ import annotations

from typing import Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import check_int, require
from ..nn.names import unknown_name

__all__ = ["TRAIN_IMAGES", "TEST_IMAGES", "list_natural_images", "load_natural", "natural_split", "luminance",
           "rgb_to_ycbcr", "ycbcr_to_rgb", "crop_to_multiple", "downscale", "PatchPairs"]

TRAIN_IMAGES = ("astronaut", "camera", "coins", "moon", "page", "text", "immunohistochemistry", "retina", "brick",
                "grass", "gravel", "hubble_deep_field", "motorcycle", "cell")
TEST_IMAGES = ("chelsea", "coffee", "rocket")

# BT.601 full-range (JPEG) YCbCr
_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float64)
_FROM_YCBCR = np.linalg.inv(_TO_YCBCR)


def _skimage_data():
    return require("skimage.data", "the natural images need scikit-image", "vision")


def list_natural_images() -> list[str]:
    return sorted(TRAIN_IMAGES + TEST_IMAGES)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in [0, 1] -> (..., 3) full-range YCbCr (Y in [0, 1], Cb and Cr centred on 0.5)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"rgb must be (..., 3), got shape {rgb.shape}")
    out = rgb @ _TO_YCBCR.T
    out[..., 1:] += 0.5
    return out.astype(np.float32)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`, clipped to [0, 1]."""
    y = np.array(ycbcr, dtype=np.float64)
    if y.shape[-1:] != (3,):
        raise ValueError(f"ycbcr must be (..., 3), got shape {y.shape}")
    y[..., 1:] -= 0.5
    return np.clip(y @ _FROM_YCBCR.T, 0.0, 1.0).astype(np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W) grey or (H, W, 3|4) RGB(A) in [0, 1] -> (H, W) float32 Y (alpha is ignored)."""
    a = np.asarray(image)
    if a.ndim == 2:
        return a.astype(np.float32)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return rgb_to_ycbcr(a[..., :3])[..., 0]
    raise ValueError(f"image must be (H, W) or (H, W, 3|4), got shape {a.shape}")


def _read(name: str) -> np.ndarray:
    data = _skimage_data()
    if name == "motorcycle":
        return data.stereo_motorcycle()[0]  # the left view
    return getattr(data, name)()


def load_natural(name: str) -> np.ndarray:
    """A bundled image's luminance, (H, W) float32 in [0, 1]."""
    if name not in TRAIN_IMAGES + TEST_IMAGES:
        raise unknown_name("natural image", name, list_natural_images())
    img = _read(name)
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    return luminance(img.astype(np.float32) / scale)


def natural_split(split: Literal["train", "test"]) -> dict[str, np.ndarray]:
    """``{name: luminance}`` for the fixed ``"train"`` or ``"test"`` images."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return {name: load_natural(name) for name in (TRAIN_IMAGES if split == "train" else TEST_IMAGES)}


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """The top-left crop of ``(H, W, ...)`` whose height and width are multiples of ``scale``."""
    h, w = image.shape[0] - image.shape[0] % scale, image.shape[1] - image.shape[1] % scale
    if h == 0 or w == 0:
        raise ValueError(f"image of {image.shape[0]}x{image.shape[1]} (HxW) is smaller than the scale {scale}")
    return image[:h, :w]


def downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """(H, W) or (H, W, C) with H, W multiples of ``scale`` -> (H/s, W/s[, C]) antialiased bicubic, in [0, 1]."""
    scale = check_int("scale", scale)
    a = np.asarray(hr, dtype=np.float32)
    if a.ndim not in (2, 3) or a.shape[0] % scale or a.shape[1] % scale:
        raise ValueError(f"hr must be (H, W[, C]) with H and W multiples of {scale} (see crop_to_multiple), "
                         f"got shape {a.shape}")
    x = torch.from_numpy(np.ascontiguousarray(a))
    x = x[None, None] if a.ndim == 2 else x.permute(2, 0, 1)[None]  # -> (1, C, H, W)
    y = F.interpolate(x, size=(a.shape[0] // scale, a.shape[1] // scale), mode="bicubic", align_corners=False,
                      antialias=True).clamp(0.0, 1.0)[0]  # -> (C, h, w)
    return np.ascontiguousarray((y[0] if a.ndim == 2 else y.permute(1, 2, 0)).numpy())


class PatchPairs:
    """Aligned (LR, HR) patch pairs cut at random from (HR image, its :func:`downscale`) pairs.

    ``images``: (H, W) luminance arrays in [0, 1]; each is cropped to a multiple of ``scale``
    and must hold at least one ``patch * scale`` HR patch. A draw picks an image uniformly (so a
    large image does not dominate), a position uniformly, and (with ``augment``) one of the 8
    flips/rotations applied to both patches. With ``min_std`` > 0, a draw whose HR patch has a
    standard deviation below it (flat sky, black background) is redrawn up to ``redraws`` times,
    so flat regions do not crowd out texture. Tensors are (n, 1, p, p) LR and (n, 1, s*p, s*p) HR.
    """

    def __init__(self, images: list[np.ndarray], scale: int, patch: int, seed: int = 0, augment: bool = True,
                 min_std: float = 0.0, redraws: int = 10) -> None:
        patch = check_int("patch", patch, minimum=2)  # LR pixels
        if not images:
            raise ValueError("images is empty: no image to cut patches from")
        if not (isinstance(min_std, (int, float)) and not isinstance(min_std, bool) and 0 <= min_std < 0.5):
            raise ValueError(f"min_std must be a number in [0, 0.5), got {min_std!r}")
        redraws = check_int("redraws", redraws, minimum=0)
        self.scale, self.patch, self.seed, self.augment = scale, patch, seed, augment
        self.min_std, self.redraws = float(min_std), redraws
        self.hr, self.lr = [], []
        for i, image in enumerate(images):
            hr = crop_to_multiple(np.asarray(image, dtype=np.float32), scale)
            if hr.ndim != 2 or min(hr.shape) < patch * scale:
                raise ValueError(f"image {i} of shape {np.shape(image)} must be (H, W) with both sides >= "
                                 f"{patch * scale} (patch {patch} x scale {scale})")
            self.hr.append(torch.from_numpy(np.ascontiguousarray(hr)))
            self.lr.append(torch.from_numpy(downscale(hr, scale)))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` pairs drawn one after another with ``rng``: (LR (n, 1, p, p), HR (n, 1, s*p, s*p))."""
        p, s = self.patch, self.scale
        lrs, hrs = [], []
        for _ in range(n):
            for _attempt in range(self.redraws + 1):
                k = int(rng.integers(0, len(self.lr)))
                lr, hr = self.lr[k], self.hr[k]
                i, j = int(rng.integers(0, lr.shape[0] - p + 1)), int(rng.integers(0, lr.shape[1] - p + 1))
                a, b = lr[i:i + p, j:j + p], hr[s * i:s * (i + p), s * j:s * (j + p)]
                if self.min_std == 0 or float(b.std()) >= self.min_std:
                    break
            if self.augment:
                turns, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
                a, b = torch.rot90(a, turns), torch.rot90(b, turns)
                if flip:
                    a, b = a.flip(1), b.flip(1)
            lrs.append(a)
            hrs.append(b)
        return torch.stack(lrs)[:, None].contiguous(), torch.stack(hrs)[:, None].contiguous()

    def fixed(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The same ``n`` pairs on every call (seeded by ``seed`` alone): validation patches."""
        return self.sample(n, np.random.default_rng(self.seed))

    def batches(self, epoch: int, count: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``count`` fresh pairs for ``epoch`` in batches (a function of ``(seed, epoch)``, so resumable)."""
        rng = np.random.default_rng([self.seed, epoch])
        lr, hr = self.sample(count, rng)
        for start in range(0, count, batch_size):
            yield lr[start:start + batch_size], hr[start:start + batch_size]
