"""digit-scenes generation and the image/mask folder loader."""

import numpy as np
import pytest
from PIL import Image

from lstmkit.data.scenes import class_weights
from lstmkit.data.scenes import (SCENE_CLASSES, SPLIT_SEEDS, digit_scenes, image_channels, load_mask_folder,
                                 transform_glyph)


@pytest.fixture(scope="module")
def train():
    return digit_scenes("train", 40, size=32, glyph_size=12)


def test_shapes_classes_and_label_rule(train):
    assert train.images.shape == (40, 1, 32, 32) and train.images.dtype == np.float32
    assert train.masks.shape == (40, 32, 32) and train.masks.dtype == np.int64
    assert train.classes == SCENE_CLASSES and len(SCENE_CLASSES) == 11 and len(train.names) == 40
    assert 0 <= train.images.min() and train.images.max() <= 1 and train.masks.max() <= 10
    # a pixel is labelled exactly where the (max-composited) ink reaches the threshold
    np.testing.assert_array_equal(train.masks > 0, train.images[:, 0] >= 0.4)
    per_scene = [len(np.unique(m[m > 0])) for m in train.masks]
    assert min(per_scene) >= 1 and max(per_scene) <= 4 and max(per_scene) >= 3


def test_single_digit_scenes_hold_one_label():
    s = digit_scenes("val", 10, size=24, glyph_size=12, max_digits=1)
    assert all(len(np.unique(m[m > 0])) == 1 for m in s.masks)


def test_fixed_seeds_reproducible_and_distinct_splits(train):
    again = digit_scenes("train", 40, size=32, glyph_size=12)
    np.testing.assert_array_equal(again.images, train.images)
    np.testing.assert_array_equal(again.masks, train.masks)
    val = digit_scenes("val", 40, size=32, glyph_size=12)
    assert not np.array_equal(val.images, train.images)
    assert len(set(SPLIT_SEEDS.values())) == 3
    # the same seed with test glyphs instead of training glyphs gives other scenes
    test = digit_scenes("test", 40, size=32, glyph_size=12, seed=SPLIT_SEEDS["train"])
    assert not np.array_equal(test.images, train.images)


def test_no_overlap_when_max_overlap_is_zero():
    s = digit_scenes("train", 30, size=32, glyph_size=10, max_overlap=0.0, max_digits=4)
    # without overlap every glyph keeps all its ink pixels: labelled pixels = sum of the glyphs' own
    assert (s.masks > 0).sum() == (s.images[:, 0] >= 0.4).sum()
    assert s.images.max() == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(split="dev"), "split must be one of train, val, test"),
    (dict(n=0), "n must be an int >= 1"),
    (dict(glyph_size=40), r"glyph_size must be an int in \[4, 32\]"),
    (dict(max_digits=0), "max_digits must be an int in"),
    (dict(threshold=1.5), r"threshold must be in \(0, 1\)"),
    (dict(rotate=-1), r"rotate must be a number in \[0, 180\], got -1"),
    (dict(rescale=0.6), r"rescale must be a number in \[0, 0.5\], got 0.6"),
    (dict(rotate=True), r"rotate must be a number in \[0, 180\], got True"),
])
def test_scene_errors(kwargs, message):
    args = dict(split="train", n=2, size=32) | kwargs
    with pytest.raises(ValueError, match=message):
        digit_scenes(**args)


def test_transform_glyph_turns_counter_clockwise_and_resizes_about_the_centre():
    g = np.zeros((5, 5), np.float32)
    g[0, 2] = 1  # top centre
    np.testing.assert_array_equal(transform_glyph(g, 0, 1), g)
    turned = transform_glyph(g, 90, 1)  # counter-clockwise as displayed: the top goes to the left
    assert turned[2, 0] == pytest.approx(1) and turned.sum() == pytest.approx(1)
    assert transform_glyph(g, -90, 1)[2, 4] == pytest.approx(1)
    assert transform_glyph(g, 0, 0.5)[1, 2] == pytest.approx(1)  # half size: halfway to the centre
    assert transform_glyph(g, 0, 2).sum() == 0  # twice the size: pushed out of the box, cut
    assert transform_glyph(g, 37, 1.1).dtype == np.float32
    stack = np.random.default_rng(0).random((3, 6, 6)).astype(np.float32)
    angles, scales = np.array([0.0, 30.0, -75.0]), np.array([1.0, 0.8, 1.2])
    together = transform_glyph(stack, angles, scales)  # a stack, one angle and scale per glyph
    for i in range(3):
        np.testing.assert_array_equal(together[i], transform_glyph(stack[i], angles[i], scales[i]))
    np.testing.assert_array_equal(together[0], stack[0])


def test_rotated_and_rescaled_scenes_keep_image_and_mask_together():
    plain = digit_scenes("train", 40, size=32, max_overlap=0.0)
    moved = digit_scenes("train", 40, size=32, max_overlap=0.0, rotate=20, rescale=0.15)
    assert moved.images.shape == plain.images.shape and not np.array_equal(moved.images, plain.images)
    # no overlap: every ink pixel above the threshold is labelled, and only those
    np.testing.assert_array_equal(moved.masks > 0, moved.images[:, 0] >= 0.4)
    assert moved.images.min() >= 0 and moved.images.max() <= 1 + 1e-6
    again = digit_scenes("train", 40, size=32, max_overlap=0.0, rotate=20, rescale=0.15)
    np.testing.assert_array_equal(again.images, moved.images)  # seeded


# ----------------------------------------------------------------------- mask folders


def _folder(tmp_path, n=3, size=(8, 10), mode="L", classes=3):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(n):
        shape = size + ((3,) if mode == "RGB" else ())
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(tmp_path / "images" / f"s{i}.png")
        Image.fromarray(rng.integers(0, classes, size, dtype=np.uint8), "L").save(tmp_path / "masks" / f"s{i}.png")
    return tmp_path


def test_mask_folder_loads_pairs(tmp_path):
    s = load_mask_folder(_folder(tmp_path), classes=["sky", "road", "car"])
    assert s.images.shape == (3, 1, 8, 10) and s.masks.shape == (3, 8, 10)
    assert s.names == ("s0", "s1", "s2") and s.classes == ("sky", "road", "car")
    expected = np.asarray(Image.open(tmp_path / "masks" / "s1.png")).astype(np.int64)
    np.testing.assert_array_equal(s.masks[1], expected)
    inferred = load_mask_folder(tmp_path)
    assert inferred.classes == ("0", "1", "2")


def test_mask_folder_colour_images(tmp_path):
    s = load_mask_folder(_folder(tmp_path, mode="RGB"), classes=3)
    assert s.images.shape == (3, 3, 8, 10)


def test_mask_folder_missing_partner(tmp_path):
    _folder(tmp_path)
    (tmp_path / "masks" / "s2.png").unlink()
    with pytest.raises(ValueError, match=r"s2.png has no partner in .*masks/"):
        load_mask_folder(tmp_path)


def test_mask_folder_size_mismatch(tmp_path):
    _folder(tmp_path)
    Image.fromarray(np.zeros((8, 9), np.uint8)).save(tmp_path / "masks" / "s1.png")
    with pytest.raises(ValueError, match=r"mask .*s1.png is 9x8 \(WxH\) but its image is 10x8"):
        load_mask_folder(tmp_path)


def test_mask_folder_images_of_different_sizes(tmp_path):
    _folder(tmp_path)
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "images" / "s2.png")
    with pytest.raises(ValueError, match=r"s2.png is 6x6 \(WxH\) but 10x8 is needed"):
        load_mask_folder(tmp_path)


def test_mask_folder_labels_outside_classes(tmp_path):
    _folder(tmp_path, classes=5)
    with pytest.raises(ValueError, match=r"holds labels \[3, 4\] outside the 3 classes \(valid: 0..2 = a, b, c\)"):
        load_mask_folder(tmp_path, classes=["a", "b", "c"])


def test_mask_folder_not_an_image(tmp_path):
    _folder(tmp_path)
    (tmp_path / "images" / "s1.png").write_text("not a png")
    with pytest.raises(ValueError, match=r"s1.png is not a readable image file"):
        load_mask_folder(tmp_path)


def test_mask_folder_other_files(tmp_path):
    _folder(tmp_path)
    (tmp_path / "images" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes.txt is not an image file: images/ may only hold .png"):
        load_mask_folder(tmp_path)


def test_mask_folder_wrong_channel_count(tmp_path):
    _folder(tmp_path)
    Image.fromarray(np.zeros((8, 10, 3), np.uint8), "RGB").save(tmp_path / "images" / "s2.png")
    with pytest.raises(ValueError, match=r"s2.png has 3 channels but 1 are needed"):
        load_mask_folder(tmp_path)
    with pytest.raises(ValueError, match=r"s0.png has 1 channel but 3 are needed"):
        load_mask_folder(tmp_path, channels=3)


def test_mask_folder_colour_mask(tmp_path):
    _folder(tmp_path)
    Image.fromarray(np.zeros((8, 10, 3), np.uint8), "RGB").save(tmp_path / "masks" / "s0.png")
    with pytest.raises(ValueError, match=r"must be a single-channel PNG whose pixel values are class indices"):
        load_mask_folder(tmp_path)


def test_mask_folder_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mask_folder(tmp_path / "nope")
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="a mask folder holds images/NAME.png and masks/NAME.png"):
        load_mask_folder(tmp_path)


def test_image_channels(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), "RGB").save(tmp_path / "c.png")
    assert image_channels(tmp_path / "g.png") == 1 and image_channels(tmp_path / "c.png") == 3


def test_class_weights():
    masks = np.array([[0] * 64 + [1] * 16 + [2] * 4])  # frequencies 64/84, 16/84, 4/84; class 3 absent
    freq = np.array([64, 16, 4, 0]) / 84
    assert class_weights(masks, 4, "none") is None
    for kind, power in (("inverse_sqrt", 0.5), ("inverse", 1.0)):
        w = class_weights(masks, 4, kind)
        assert w.dtype == np.float32 and w.shape == (4,)
        np.testing.assert_allclose((freq * w).sum(), 1, rtol=1e-6)  # the average pixel keeps weight 1
        np.testing.assert_allclose(w[:3] / w[0], (freq[0] / freq[:3]) ** power, rtol=1e-6)
        assert w[3] == w[2]  # an absent class gets the largest present weight
    with pytest.raises(ValueError, match="class_weights must be one of 'none', 'inverse_sqrt', 'inverse', got 'x'"):
        class_weights(masks, 4, "x")
