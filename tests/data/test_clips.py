import numpy as np
import pytest
from scipy.stats import kruskal

from lstmkit.data.clips import MOTIONS, SHAPES, load_medmnist3d, motion_clips, shape_volumes

SMALL = dict(size=24, glyph_size=10, min_frames=6, max_frames=8)


@pytest.fixture(scope="module")
def clips():
    return motion_clips(640, seed=3, **SMALL)


def test_motion_clips_layout(clips):
    n, t, s = 640, 8, 24
    assert clips.x.shape == (n, t, 1, s, s) and clips.x.dtype == np.float32
    assert clips.classes == MOTIONS and len(clips) == n
    assert np.bincount(clips.labels, minlength=len(MOTIONS)).tolist() == [n // len(MOTIONS)] * len(MOTIONS)
    assert clips.lengths.min() == 6 and clips.lengths.max() == 8
    assert 0 <= clips.x.min() and clips.x.max() <= 1
    padded = np.arange(t)[None, :] >= clips.lengths[:, None]
    assert not clips.x[padded].any()  # frames past each length are zero
    assert (clips.x[~padded].reshape(-1, s * s).max(1) > 0.5).all()  # every valid frame shows the digit


def test_motion_clips_are_seeded_and_splits_differ():
    a = motion_clips(16, seed=1, **SMALL)
    b = motion_clips(16, seed=1, **SMALL)
    c = motion_clips(16, seed=1, split="test", **SMALL)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def _mass(frames):
    return frames.reshape(len(frames), -1).sum(1)


def _brightest(frames, axis):
    """Row (axis 0) or column (axis 1) of each frame's ink profile peak."""
    return frames.sum(axis=2 - axis).argmax(1)


def test_anchor_frame_does_not_leak_the_class(clips):
    """The middle valid frame's ink mass and position have the same distribution in every class
    (Kruskal-Wallis across the 8 classes); the first frame's mass does depend on the class (zoom
    classes start small or large), which shows the test can detect a leak."""
    rows = np.arange(len(clips))
    middle = clips.x[rows, clips.lengths // 2, 0]
    first = clips.x[:, 0, 0]
    groups = lambda v: [v[clips.labels == k] for k in range(len(MOTIONS))]  # noqa: E731
    for stat in (_mass(middle), _brightest(middle, 0), _brightest(middle, 1)):
        assert kruskal(*groups(stat)).pvalue > 0.01
    assert kruskal(*groups(_mass(first))).pvalue < 1e-6


def test_motions_move_the_way_they_say():
    c = motion_clips(64, seed=0, noise=0.0, **SMALL)
    for k, sign in ((MOTIONS.index("left"), -1), (MOTIONS.index("right"), 1)):  # columns shift 2-3 px (mod S)
        for i in np.flatnonzero(c.labels == k)[:3]:
            a, b = c.x[i, 0, 0].sum(0), c.x[i, 1, 0].sum(0)
            shift = int(np.argmax([np.dot(np.roll(a, s), b) for s in range(-4, 5)])) - 4
            assert sign * shift in (2, 3), (MOTIONS[k], shift)
    zoom_in = np.flatnonzero(c.labels == MOTIONS.index("zoom_in"))[:3]
    assert all(_mass(c.x[i, :2, 0])[1] > _mass(c.x[i, :2, 0])[0] for i in zoom_in)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0), "n must be an int"), (dict(split="val"), "split must be 'train' or 'test'"),
    (dict(min_frames=5, max_frames=4), "max_frames must be an int in [5"),
    (dict(noise=1.5), "noise must be a number in [0, 1)"), (dict(glyph_size=40, size=32), "glyph_size must be"),
])
def test_motion_clips_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        motion_clips(**{"n": 8, "seed": 0, **kwargs})


def test_shape_volumes_middle_slice_is_ambiguous():
    v = shape_volumes(360, seed=0, size=20, depth=16)
    assert v.x.shape == (360, 16, 20, 20) and v.x.dtype == np.float32 and v.classes == SHAPES
    assert (v.lengths == 16).all() and 0 <= v.x.min() and v.x.max() <= 1
    groups = lambda s: [s[v.labels == k] for k in range(len(SHAPES))]  # noqa: E731
    assert kruskal(*groups(_mass(v.x[:, 8]))).pvalue > 0.01  # the middle slice: same for every class
    assert kruskal(*groups(_mass(v.x[:, 4]))).pvalue < 1e-6  # off the middle: the shape shows
    assert kruskal(*groups(_mass(v.x))).pvalue < 1e-6


def _write(path, n=(6, 3, 4), shape=(8, 8, 8), classes=3, **override):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n):
        arrays[f"{split}_images"] = rng.integers(0, 256, (k, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(k) % classes).reshape(k, 1).astype(np.uint8)
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_load_medmnist3d(tmp_path):
    path = _write(tmp_path / "organmnist3d.npz")
    splits = load_medmnist3d(path)
    raw = np.load(path)
    assert set(splits) == {"train", "val", "test"}
    tr = splits["train"]
    assert tr.x.shape == (6, 8, 8, 8) and tr.x.dtype == np.float32
    np.testing.assert_allclose(tr.x, raw["train_images"] / 255.0, rtol=1e-6)
    assert tr.labels.tolist() == [0, 1, 2, 0, 1, 2] and tr.labels.dtype == np.int64
    assert tr.classes == ("0", "1", "2") and (tr.lengths == 8).all()
    assert len(splits["val"]) == 3 and len(splits["test"]) == 4


@pytest.mark.parametrize("override, message", [
    ({"val_labels": None}, "lacks val_labels"),
    ({"train_images": np.zeros((6, 8, 8), np.uint8)}, "train_images must be volumes (N, D, H, W), got rank 3"),
    ({"test_labels": np.zeros((5, 1), np.uint8)}, "4 test_images but 5 test_labels"),
    ({"train_labels": np.zeros((6, 4), np.uint8)}, "multi-label (6, 4); only single-label"),
    ({"val_images": np.full((3, 8, 8, 8), np.nan, np.float32)}, "val_images contain NaN"),
    ({"test_images": np.zeros((4, 8, 8, 9), np.uint8)}, "test_images are (8, 8, 9) volumes but train_images"),
    ({"train_labels": -np.ones((6, 1), np.int64)}, "class indices >= 0"),
])
def test_load_medmnist3d_errors(tmp_path, override, message):
    path = _write(tmp_path / "bad.npz", **override)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_medmnist3d(path)


def test_load_medmnist3d_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_medmnist3d(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_medmnist3d(tmp_path / "text.npz")


def test_rotation_classes_turn_the_way_they_say():
    """The digit's centroid circles the pivot: clockwise on screen (rows grow downwards) for
    'clockwise', the other way for 'counterclockwise' (centroids are circular means: the canvas wraps)."""
    c = motion_clips(48, seed=0, noise=0.0, size=32, glyph_size=12, min_frames=4, max_frames=4)
    phase = np.exp(2j * np.pi * np.arange(32) / 32)

    def centroid(frame):  # (row, col) on the torus
        return np.array([np.angle((frame.sum(1) * phase).sum()), np.angle((frame.sum(0) * phase).sum())]) * 32 / (2 * np.pi)

    for name, sign in (("clockwise", 1), ("counterclockwise", -1)):
        for i in np.flatnonzero(c.labels == MOTIONS.index(name)):
            centre = np.array([centroid(f) for f in c.x[i, :3, 0]])
            (r1, c1), (r2, c2) = (np.diff(centre, axis=0) + 16) % 32 - 16
            assert sign * (c1 * r2 - r1 * c2) > 0, (name, i)  # x = col, y = row (down): cross > 0 is clockwise
