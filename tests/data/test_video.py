"""Moving digits (Srivastava et al.'s protocol) and the .npy clip loader."""

import numpy as np
import pytest

from lstmkit.data.images import load_glyphs
from lstmkit.data.video import SPLIT_SEEDS, bouncing_paths, load_clip, moving_digits


def test_paths_stay_inside_bounce_and_keep_their_speed():
    paths = bouncing_paths(np.random.default_rng(0), 200, 2, 40, limit=36, speed=3.6)
    assert paths.shape == (200, 2, 40, 2) and paths.min() == 0 and paths.max() == 36
    step = np.diff(paths, axis=2)  # -> (n, digits, frames - 1, 2)
    assert np.abs(step).max() <= 4  # 3.6 px per frame per axis, rounded
    # every path that reaches an edge turns back there: the step's sign flips
    flips = np.sign(step[..., 1:, :]) * np.sign(step[..., :-1, :]) < 0
    assert flips.any()
    at_edge = (paths[..., 1:-1, :] <= 4) | (paths[..., 1:-1, :] >= 32)
    assert not (flips & ~at_edge).any()  # and only near an edge


def test_clips_shape_range_and_overlap_by_maximum(monkeypatch):
    clips = moving_digits(6, seed=1, split="train", size=48, digits=2, frames=7, glyph_size=20)
    assert clips.shape == (6, 7, 48, 48) and clips.dtype == np.float32
    assert clips.min() == 0 and clips.max() <= 1
    # rebuild clip 0 from the same draws: maximum of the two placed glyphs, never their sum
    rng = np.random.default_rng(1)
    glyphs = load_glyphs("train", 20).images
    which = rng.integers(0, len(glyphs), size=(6, 2))
    paths = bouncing_paths(rng, 6, 2, 7, 28, 2.8)
    for t in range(7):
        layers = np.zeros((2, 48, 48), np.float32)
        for d in range(2):
            r, c = paths[0, d, t]
            layers[d, r:r + 20, c:c + 20] = glyphs[which[0, d]]
        np.testing.assert_array_equal(clips[0, t], layers.max(0))
    assert (moving_digits(50, seed=2, frames=3) <= 1).all()  # overlaps never exceed 1 (a sum would)


def test_digits_move_between_frames():
    clips = moving_digits(20, seed=3, frames=4)
    assert np.abs(np.diff(clips, axis=1)).mean(axis=(2, 3)).min() > 0


def test_deterministic_per_seed_and_fixed_default_per_split():
    a, b = moving_digits(4, seed=5, frames=3), moving_digits(4, seed=5, frames=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, moving_digits(4, seed=6, frames=3))
    np.testing.assert_array_equal(moving_digits(3, frames=2, split="test"),
                                  moving_digits(3, seed=SPLIT_SEEDS["test"], frames=2, split="test"))
    assert SPLIT_SEEDS["train"] != SPLIT_SEEDS["test"]


def test_test_clips_use_test_glyphs_only(monkeypatch):
    used = []
    import lstmkit.data.video as video

    real = video.load_glyphs

    def spy(split, size, mnist=None):
        used.append(split)
        return real(split, size, mnist)

    monkeypatch.setattr(video, "load_glyphs", spy)
    moving_digits(2, split="test", frames=2)
    moving_digits(2, split="train", frames=2)
    assert used == ["test", "train"]
    train, test = load_glyphs("train", 28).images, load_glyphs("test", 28).images
    flat_train = {g.tobytes() for g in train}
    assert not any(g.tobytes() in flat_train for g in test)  # disjoint glyph images


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "val"}, "split must be 'train' or 'test'"),
    ({"glyph_size": 80}, "glyph_size=80 does not fit on a size=64 canvas"),
    ({"speed": -1.0}, "speed must be a number of pixels per frame >= 0"),
    ({"speed": 40.0}, "speed=40.0 pixels per frame exceeds the free range size - glyph_size = 36"),
    ({"digits": 0}, "digits must be an int >= 1"),
])
def test_generator_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        moving_digits(2, **kwargs)


def _save(tmp_path, array, name="clip.npy"):
    path = tmp_path / name
    np.save(path, array)
    return path


def test_load_clip_reads_floats_uint8_and_a_channel_axis(tmp_path):
    clip = np.random.default_rng(0).random((10, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(load_clip(_save(tmp_path, clip)), clip)
    np.testing.assert_array_equal(load_clip(_save(tmp_path, clip[:, None], "c.npy")), clip)
    u8 = (clip * 255).astype(np.uint8)
    np.testing.assert_allclose(load_clip(_save(tmp_path, u8, "u.npy")), u8 / 255.0, atol=1e-7)
    assert load_clip(_save(tmp_path, clip[:4, :8, :8], "s.npy"), frames=4, size=8).shape == (4, 8, 8)


@pytest.mark.parametrize("array, match", [
    (np.zeros((10, 64)), r"a clip must be \(T, H, W\) = \(10, 64, 64\) greyscale frames, got shape \(10, 64\)"),
    (np.zeros((10, 3, 64, 64)), r"got shape \(10, 3, 64, 64\)"),
    (np.zeros((20, 64, 64)), "the clip has 20 frames but the model reads 10"),
    (np.zeros((10, 32, 32)), r"frames are 32x32 \(HxW\) but the model needs 64x64"),
    (np.full((10, 64, 64), np.nan), "contains NaN or inf"),
    (np.full((10, 64, 64), 255.0), r"float frames must lie in \[0, 1\]"),
    (np.zeros((10, 64, 64), dtype=complex), "frames must be floats in \\[0, 1\\] or uint8, got dtype complex128"),
])
def test_load_clip_errors(tmp_path, array, match):
    with pytest.raises(ValueError, match=match):
        load_clip(_save(tmp_path, array))


def test_load_clip_refuses_pickles_and_non_arrays(tmp_path):
    obj = np.empty(2, dtype=object)
    obj[:] = [np.zeros(3), "x"]
    with pytest.raises(ValueError, match="holds Python objects, not a numeric array"):
        load_clip(_save(tmp_path, obj))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(ValueError, match="is not a .npy array file"):
        load_clip(tmp_path / "junk.npy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_clip(tmp_path / "missing.npy")
