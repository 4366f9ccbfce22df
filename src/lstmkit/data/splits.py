"""Every split lstmkit carves, in one module: a validation part from the training data (and a test
part where a dataset has none). The recorded results depend on the exact indices each one draws,
so each kind is kept as it was and pinned in ``tests/data/test_splits.py``:

- :func:`random_split` -- a seeded random share of ``range(n)`` (segment's scenes, video's clips,
  caption's images, and the test part carved from a user folder of masks or a Flickr8k folder);
- :func:`stratified_split` -- a seeded share of every class (classification, generation's digits,
  action and volume clips, a carved classification test part);
- :func:`carve_validation` -- the last share of an image along its longer side (super-resolution,
  whose training pairs are patches cut from whole images);
- :func:`split_points` -- forecasting's test part of one series: from ``data.test_start`` (or its
  last ``data.test_size`` steps) to ``data.test_end`` or its end;
- :func:`series_validation` -- the last steps of every series' training part (forecasting, whose
  validation ends follow the training parts in time).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..checks import check_int
from .preprocess import _label_array
from .series import Series

__all__ = ["random_split", "stratified_split", "carve_validation", "series_validation", "split_points"]


def random_split(n: int, fraction: float, seed: int, what: str = "train.val_fraction", at_least_one: bool = True,
                 min_kept: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(kept, carved) sorted index arrays: ``round(n * fraction)`` of ``range(n)`` carved at random
    (``numpy.random.default_rng(seed).permutation(n)``'s first ones), at least one when
    ``at_least_one``. Raises, naming ``what``, when nothing is carved or fewer than ``min_kept`` stay."""
    k = int(round(n * fraction))
    if at_least_one:
        k = max(1, k)
    if k < 1 or n - k < min_kept:
        left = "no carved items" if k < 1 else f"{n - k} remaining item(s), fewer than {min_kept}"
        raise ValueError(f"{what}: {fraction:.0%} of {n} items leaves {left}; use more data or another fraction")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


def stratified_split(labels: Sequence[Any], fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): about ``fraction`` of each class goes to validation (at least one
    of every class with two or more members); sorted within each part."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    seed = check_int("seed", seed, minimum=0)
    labels = _label_array(labels)
    if labels.size < 2:
        raise ValueError(f"need at least 2 samples to split, got {labels.size}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1), len(idx) - 1) if len(idx) >= 2 else 0
        val.extend(idx[:k].tolist())
    val = np.array(sorted(val), dtype=np.int64)
    train = np.setdiff1d(np.arange(labels.size), val)
    if val.size == 0:
        raise ValueError("no class has two or more samples: cannot carve a stratified validation split")
    return train, val


def carve_validation(image: np.ndarray, fraction: float, min_size: int = 1, multiple: int = 1
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train part, validation part): the last ``fraction`` of ``image`` along its longer side.

    The validation part is at least ``min_size`` long; both parts are cut at a multiple of
    ``multiple`` (the scale, so LR grids stay aligned). Raises if the image or either part is
    shorter than ``min_size`` on a side.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if min(image.shape[:2]) < min_size:
        raise ValueError(f"image of {image.shape[0]}x{image.shape[1]} (HxW) is smaller than {min_size} pixels")
    axis = 0 if image.shape[0] > image.shape[1] else 1
    n = image.shape[axis]
    held = max(int(round(fraction * n)), min_size)
    held = -(-held // multiple) * multiple
    cut = n - held
    cut -= cut % multiple
    if cut < min_size:
        raise ValueError(f"image of {image.shape[0]}x{image.shape[1]} (HxW) is too small to carve a validation "
                         f"part of {fraction:.0%} and keep {min_size} pixels for training")
    if axis == 0:
        return image[:cut], image[cut:]
    return image[:, :cut], image[:, cut:]


def series_validation(n_train: Sequence[int], val_size: int | None, horizon: int) -> tuple[int, list[int]]:
    """(val, fit_ends): the last ``val`` steps of every training part ``[0, n_train[i])`` are its
    validation end, so the fit reads rows ``[0, fit_ends[i])`` with ``fit_ends[i] = n_train[i] - val``.
    ``val`` is ``val_size``, or by default ``max(horizon, round(0.2 * min(n_train)))``: at least one
    forecast window, a fifth of the shortest training part."""
    val = val_size or max(horizon, round(0.2 * min(n_train)))
    return val, [n - val for n in n_train]


def _time_value(value, times: np.ndarray, what: str):
    if times.dtype.kind in "iu":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{what} must be an integer step for integer times, got {value!r}")
        return value
    try:
        return np.datetime64(str(value)).astype(times.dtype)
    except ValueError:
        raise ValueError(f"{what} must be a date like '1958-01' or '1921', got {value!r}") from None


def split_points(s: Series, d: Any, horizon: int = 1) -> tuple[int, int]:
    """(n_train, n_end): the test part of ``s`` is rows [n_train, n_end), at least ``horizon``
    (evaluate.horizon) steps long; ``d``: a forecasting data config (its ``test_start`` or
    ``test_size``, and ``test_end``)."""
    n_end = len(s)
    if d.test_end is not None:
        n_end = int(np.searchsorted(s.times, _time_value(d.test_end, s.times, "data.test_end"), side="right"))
    if d.test_size is not None:
        n_train = n_end - d.test_size
    else:
        n_train = int(np.searchsorted(s.times, _time_value(d.test_start, s.times, "data.test_start")))
    if n_train <= 0 or n_train >= n_end:
        raise ValueError(f"series {s.name!r} ({s.times[0]} .. {s.times[-1]}): the test part [{d.test_start or ''}"
                         f"{'' if d.test_size is None else f'last {d.test_size}'} .. {d.test_end or 'end'}] leaves "
                         f"{max(n_train, 0)} training and {max(n_end - max(n_train, 0), 0)} test steps; both must be >= 1")
    if horizon > n_end - n_train:
        raise ValueError(f"series {s.name!r}: evaluate.horizon={horizon} is longer than its test part ({n_end - n_train} "
                         f"steps) from {s.times[n_train]} to {s.times[n_end - 1]}; shorten evaluate.horizon or lengthen "
                         "the test part (data.test_size, data.test_start or data.test_end)")
    return n_train, n_end
