import numpy as np
import pytest
import torch

from lstmkit.data.splits import carve_validation
from lstmkit.data.natural import (TEST_IMAGES, TRAIN_IMAGES, PatchPairs, crop_to_multiple, downscale,
                                  list_natural_images, load_natural, luminance, natural_split, rgb_to_ycbcr,
                                  ycbcr_to_rgb)


def test_every_bundled_image_loads_offline_as_luminance():
    assert not set(TRAIN_IMAGES) & set(TEST_IMAGES)
    assert list_natural_images() == sorted(TRAIN_IMAGES + TEST_IMAGES)
    test = natural_split("test")
    assert list(test) == ["chelsea", "coffee", "rocket"]
    assert test["chelsea"].shape == (300, 451)
    for name in list_natural_images():
        y = load_natural(name)
        assert y.ndim == 2 and y.dtype == np.float32 and min(y.shape) >= 150, name
        assert 0.0 <= y.min() and y.max() <= 1.0 and y.std() > 0.02, name


def test_split_and_name_errors():
    with pytest.raises(ValueError, match="unknown natural image 'chelsey'; did you mean 'chelsea'"):
        load_natural("chelsey")
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        natural_split("val")


def test_ycbcr_is_bt601_full_range_and_round_trips():
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-5)
    ycc = rgb_to_ycbcr(np.array([[1.0, 0, 0], [1, 1, 1]]))
    np.testing.assert_allclose(ycc[0], [0.299, 0.5 - 0.168736, 1.0], atol=1e-6)
    np.testing.assert_allclose(ycc[1], [1.0, 0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(luminance(np.dstack([rgb, np.ones((5, 7))])), rgb_to_ycbcr(rgb)[..., 0])
    grey = rgb[..., 0]
    assert np.array_equal(luminance(grey), grey)
    with pytest.raises(ValueError, match=r"image must be \(H, W\) or \(H, W, 3\|4\), got shape \(5, 7, 2\)"):
        luminance(rgb[..., :2])
    with pytest.raises(ValueError, match=r"rgb must be \(\.\.\., 3\)"):
        rgb_to_ycbcr(rgb[..., :2])


def test_downscale_is_antialiased_bicubic():
    hr = np.random.default_rng(1).random((12, 20)).astype(np.float32)
    lr = downscale(hr, 2)
    assert lr.shape == (6, 10) and lr.dtype == np.float32
    want = torch.nn.functional.interpolate(torch.from_numpy(hr)[None, None], size=(6, 10), mode="bicubic",
                                           antialias=True, align_corners=False).clamp(0, 1)[0, 0].numpy()
    np.testing.assert_allclose(lr, want, atol=1e-6)
    np.testing.assert_allclose(downscale(np.full((8, 8), 0.3, np.float32), 4), 0.3, atol=1e-6)
    assert downscale(np.dstack([hr, hr, hr]), 2).shape == (6, 10, 3)
    assert crop_to_multiple(hr[:11, :19], 4).shape == (8, 16)
    with pytest.raises(ValueError, match="multiples of 4"):
        downscale(hr[:10], 4)
    with pytest.raises(ValueError, match="smaller than the scale 4"):
        crop_to_multiple(hr[:3], 4)


def test_carve_validation_along_the_longer_side():
    image = np.arange(100 * 60, dtype=np.float32).reshape(100, 60)  # taller than wide: rows are carved
    train, val = carve_validation(image, 0.2, min_size=8, multiple=4)
    assert train.shape == (80, 60) and val.shape == (20 + 0, 60)
    assert np.array_equal(np.concatenate([train, val]), image)
    train, val = carve_validation(image.T, 0.1, min_size=16, multiple=4)  # wide: columns; val >= min_size
    assert train.shape == (60, 84) and val.shape == (60, 16)
    with pytest.raises(ValueError, match="too small to carve a validation part of 20% and keep 52 pixels"):
        carve_validation(image, 0.2, min_size=52, multiple=4)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        carve_validation(image, 1.0)
    with pytest.raises(ValueError, match=r"image of 100x60 \(HxW\) is smaller than 64 pixels"):
        carve_validation(image, 0.2, min_size=64)


def test_patch_pairs_are_aligned_seeded_and_augmented():
    rng = np.random.default_rng(0)
    images = [rng.random((40, 50)).astype(np.float32), rng.random((33, 64)).astype(np.float32)]
    pairs = PatchPairs(images, scale=2, patch=8, seed=3)
    lr, hr = next(pairs.batches(1, 5, 5))
    assert lr.shape == (5, 1, 8, 8) and hr.shape == (5, 1, 16, 16)
    # each LR patch is the downscaled HR patch (inside, where the 8-pixel kernel stays in the patch)
    for a, b in zip(lr, hr):
        np.testing.assert_allclose(downscale(b[0].numpy(), 2)[2:-2, 2:-2], a[0, 2:-2, 2:-2].numpy(), atol=1e-5)
    again = torch.cat([x for x, _ in pairs.batches(1, 7, 3)])  # same (seed, epoch), another batch size
    assert torch.equal(again[:5], lr)
    assert not torch.equal(next(pairs.batches(2, 5, 5))[0], lr)
    a, b = pairs.fixed(4), pairs.fixed(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # without augmentation every patch is a crop of the image pair at aligned LR/HR offsets
    coded = (np.arange(40 * 50, dtype=np.float64).reshape(40, 50) / (40 * 50)).astype(np.float32)  # value -> position
    lr, hr = PatchPairs([coded], scale=2, patch=8, seed=0, augment=False).fixed(3)
    full_lr = downscale(coded, 2)
    for a, b in zip(lr[:, 0].numpy(), hr[:, 0].numpy()):
        i, j = divmod(int(round(float(b[0, 0]) * 40 * 50)), 50)
        assert i % 2 == 0 and j % 2 == 0
        np.testing.assert_array_equal(b, coded[i:i + 16, j:j + 16])
        np.testing.assert_array_equal(a, full_lr[i // 2:i // 2 + 8, j // 2:j // 2 + 8])
    # augmentation draws several of the 8 flips/rotations: patches from one flat-gradient image differ in direction
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    lr, _ = PatchPairs([ramp], 2, 8, seed=0).fixed(40)
    gx, gy = (lr[:, 0, :, -1] - lr[:, 0, :, 0]).mean(1), (lr[:, 0, -1] - lr[:, 0, 0]).mean(1)
    directions = {(int(torch.sign(x)), int(torch.sign(y))) for x, y in zip(gx.round(decimals=3), gy.round(decimals=3))}
    assert directions == {(1, 0), (-1, 0), (0, 1), (0, -1)}


def test_flat_patches_are_redrawn():
    half = np.zeros((64, 64), np.float32)
    half[:, 32:] = np.random.default_rng(0).random((64, 32))  # left half flat black
    _, hr = PatchPairs([half], 2, 8, seed=0, min_std=0.05).fixed(30)
    assert hr.flatten(1).std(1).min() >= 0.05
    _, hr = PatchPairs([half], 2, 8, seed=0).fixed(30)
    assert hr.flatten(1).std(1).min() < 0.05


def test_patch_pairs_errors():
    with pytest.raises(ValueError, match=r"image 0 of shape \(20, 40\) must be \(H, W\) with both sides >= 24"):
        PatchPairs([np.zeros((20, 40), np.float32)], scale=2, patch=12)
    with pytest.raises(ValueError, match="images is empty"):
        PatchPairs([], scale=2, patch=8)
    with pytest.raises(ValueError, match="patch must be an int >= 2"):
        PatchPairs([np.zeros((20, 40), np.float32)], scale=2, patch=1)
    with pytest.raises(ValueError, match=r"min_std must be a number in \[0, 0.5\), got -1"):
        PatchPairs([np.zeros((20, 40), np.float32)], scale=2, patch=4, min_std=-1)
