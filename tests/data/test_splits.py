"""lstmkit.data.splits: the one module that carves every split. The recorded results depend on the
exact indices, so the helper is held to the code each task used before it (copied here verbatim
from commit 90da6f1) for the tasks' real settings: their presets, the defaults, and seeds 0-4."""

import numpy as np
import pytest

from lstmkit.cli import resolve_config
from lstmkit.data.splits import random_split

SEEDS = range(5)


# ------------------------------------------------------------------ the code before (90da6f1)

def _segment_split(n, fraction, seed, what):  # tasks/segment.py:_split
    k = int(round(n * fraction))
    if k < 1 or k >= n:
        raise ValueError(f"{what}: {fraction:.0%} of {n} items leaves no {'carved' if k < 1 else 'remaining'} items; "
                         "use more data or another fraction")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


def _video_split(n, fraction, seed):  # tasks/video.py:_prepare, as indices
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _caption_carve(n, fraction, seed):  # tasks/caption.py:_carve
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    if n - n_val < 1:
        raise ValueError(f"{n} training images are too few to carve a validation split of {fraction:.0%}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _flickr_test(n, fraction, seed):  # data/captions.py:load_caption_data without split files
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(fraction * n)))
    if n - n_test < 2:
        raise ValueError("too few")
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _same(a, b):
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == y.dtype


# ------------------------------------------------------------------------------- the tasks' settings

def _settings():
    """(old function, helper keywords, n, fraction, seed) for every random split a task carves."""
    seg, _ = resolve_config("segment/digit-scenes", [])
    video, _ = resolve_config("video/moving-digits", [])
    cap, _ = resolve_config("caption/digit-scenes", [])
    from lstmkit.tasks.caption import CaptionDataConfig
    from lstmkit.tasks.segment import SegmentData
    from lstmkit.tasks.video import VideoConfig

    default_video, seg_data = VideoConfig(), SegmentData()
    rows = []
    for seed in SEEDS:
        rows += [
            (lambda n, f, s: _segment_split(n, f, s, "train.val_fraction"), {"at_least_one": False},
             seg.data.train_scenes, seg.train.val_fraction, seed),
            # a user folder of 37 masks: the test part, then validation from the rest
            (lambda n, f, s: _segment_split(n, f, s, "data.test_fraction"), {"at_least_one": False},
             37, seg_data.test_fraction, seed),
            (lambda n, f, s: _segment_split(n, f, s, "train.val_fraction"), {"at_least_one": False},
             37 - int(round(37 * seg_data.test_fraction)), seg.train.val_fraction, seed),
            (_video_split, {}, video.data.train_clips, video.train.val_fraction, seed),
            (_video_split, {}, default_video.data.train_clips, default_video.train.val_fraction, seed),
            (_caption_carve, {}, cap.data.n_train, cap.train.val_fraction, seed),
            (_flickr_test, {"min_kept": 2}, 8091, CaptionDataConfig().test_fraction, seed),  # Flickr8k's size
        ]
    # the small sizes the tests train on
    rows += [(_video_split, {}, 12, 0.25, 0), (_caption_carve, {}, 10, 0.2, 3),
             (lambda n, f, s: _segment_split(n, f, s, "x"), {"at_least_one": False}, 40, 0.25, 0)]
    return rows


@pytest.mark.parametrize("old, keywords, n, fraction, seed", _settings())
def test_random_split_draws_the_indices_each_task_drew_before(old, keywords, n, fraction, seed):
    _same(random_split(n, fraction, seed, **keywords), old(n, fraction, seed))


@pytest.mark.parametrize("n, fraction, keywords, message", [
    (10, 0.01, {"at_least_one": False}, "leaves no carved items"),  # segment refused a split that carves nothing
    (2, 0.9, {}, "leaves 0 remaining item"),
    (3, 0.5, {"min_kept": 2}, "fewer than 2"),
])
def test_degenerate_splits_are_refused_naming_the_setting(n, fraction, keywords, message):
    with pytest.raises(ValueError, match=message):
        random_split(n, fraction, 0, "train.val_fraction", **keywords)
    with pytest.raises(ValueError, match="train.val_fraction"):
        random_split(n, fraction, 0, "train.val_fraction", **keywords)


def test_at_least_one_item_is_carved_unless_asked_otherwise():
    kept, carved = random_split(10, 0.01, 0)
    assert len(carved) == 1 and sorted([*kept, *carved]) == list(range(10))


def test_every_task_carves_through_this_module():
    """No task module draws its own permutation for a split any more."""
    from pathlib import Path

    import lstmkit.tasks

    for name in ("segment", "video", "caption", "clips", "generate", "superres", "classify", "classify_data"):
        text = (Path(lstmkit.tasks.__file__).parent / f"{name}.py").read_text()
        assert "default_rng(config.train.seed).permutation" not in text and "def _carve" not in text, name
        assert "def _split(" not in text, name


@pytest.mark.parametrize("n_train, val_size, horizon, val, ends", [
    ([132], None, 12, 26, [106]),  # airline test_size 12: a fifth of 132 steps (26.4) rounds to 26
    ([132], None, 30, 30, [102]),  # at least one horizon
    ([84, 60, 97], None, 6, 12, [72, 48, 85]),  # a fifth of the shortest part (12), from every part's end
    ([84, 60], 4, 6, 4, [80, 56]),  # val_size set: as given, even under the horizon
    ([10], None, 1, 2, [8]),
    ([12], None, 1, 2, [10]),  # 2.4 rounds down to 2
    ([13], None, 1, 3, [10]),  # 2.6 -> 3
])
def test_series_validation_is_the_last_steps_of_every_training_part(n_train, val_size, horizon, val, ends):
    """Forecasting's validation ends, pinned as ``_val_size`` in tasks/forecast.py carved them."""
    from lstmkit.data.splits import series_validation

    assert series_validation(n_train, val_size, horizon) == (val, ends)


def test_forecasting_carves_through_this_module():
    from pathlib import Path

    import lstmkit.tasks

    for name in ("forecast", "forecast_scoring"):
        text = (Path(lstmkit.tasks.__file__).parent / f"{name}.py").read_text()
        assert "round(0.2 *" not in text and "def _val_size" not in text, name
