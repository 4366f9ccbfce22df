"""Datasets by name, each with its official (or documented, fixed) train/test split.

``load_dataset(name) -> (train, test)`` returns two :class:`SeriesSet`. Names:

- ``digits``: scikit-learn's handwritten digits (1,797 images of 8x8, 10 classes), read row by
  row as 8 time steps of 8 features (pixel intensities 0-16 scaled to [0, 1]). Split: a fixed
  stratified 75/25 train/test split (seed 0, ``stratified_split`` over the labels), i.e.
  1,347 train / 450 test. Needs scikit-learn (``pip install lstmkit[data]``).

- ``mnist1d``: Greydanus (2020), generated offline by the mnist1d package with its default
  arguments (``get_dataset_args()``: 5,000 samples, seed 42, 80/20 split): 4,000 train /
  1,000 test series of 40 steps, 10 classes. Never the package's download path. numpy's global
  random state, which the generator reseeds, is restored afterwards.

- ``ucr:NAME`` (or ``uea:NAME``): any UCR/UEA classification dataset through aeon's
  ``load_classification``, with the archive's official train/test split. Univariate,
  multivariate and variable-length (e.g. JapaneseVowels) series are kept as they are. The
  datasets aeon ships load offline; any other name needs ``download=True`` and a network.
  Short aliases: ``gunpoint``, ``italypower``, ``basicmotions``, ``japanesevowels``.

Unknown names raise ``ValueError`` with the close ones.
"""

from __future__ import annotations

import difflib
from typing import Callable

import numpy as np

from ..checks import require
from ..nn.names import register_into, unknown_name
from .files import SeriesSet, parse_labels
from .splits import stratified_split

__all__ = ["load_dataset", "list_datasets", "register_dataset", "aeon_shipped", "describe_split", "describe_test_split"]

_DATASETS: dict[str, Callable[[], tuple[SeriesSet, SeriesSet]]] = {}


def register_dataset(name: str):
    return register_into(_DATASETS, "dataset", name)


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


_ALIASES = {"gunpoint": "GunPoint", "italypower": "ItalyPowerDemand", "basicmotions": "BasicMotions",
            "japanesevowels": "JapaneseVowels"}


def load_dataset(name: str, download: bool = False) -> tuple[SeriesSet, SeriesSet]:
    """(train, test) for a dataset name: a registered one, an alias, or ``ucr:NAME``."""
    key = str(name).lower()
    if key.startswith(("ucr:", "uea:")):
        return _load_aeon(str(name)[4:], download)
    if key in _ALIASES:
        return _load_aeon(_ALIASES[key], download)
    if key not in _DATASETS:
        raise unknown_name("dataset", name, list(_DATASETS) + list(_ALIASES),
                           extra=", or ucr:NAME for any UCR/UEA classification dataset")
    return _DATASETS[key]()


def describe_split(name: str) -> str:
    """How the test split of dataset ``name`` is defined, for reports: the archive's official split,
    or (digits, which has none) lstmkit's fixed documented one."""
    key = str(name).lower()
    if key == "digits":
        return "the fixed test split of digits (stratified 25%, seed 0: scikit-learn defines no official one)"
    if key.startswith(("ucr:", "uea:")):
        return f"the official test split of {str(name)[4:]} (UCR/UEA archive)"
    if key in _ALIASES:
        return f"the official test split of {_ALIASES[key]} (UCR/UEA archive)"
    return f"the official test split of {name}"


def describe_test_split(data: dict, n_test: int) -> str:
    """What the test part of a classification run is, from its ``data`` config: a dataset's
    official (or fixed) split, the user's test file, or a split carved from the training file."""
    if data.get("name"):
        return f"{describe_split(data['name'])} ({n_test} samples)"
    if data.get("test"):
        return f"the test file `{data['test']}` ({n_test} samples)"
    return (f"a stratified {data['test_fraction']:.0%} test split carved from `{data['train']}` (seed "
            f"{data['split_seed']}; {n_test} samples)")


def aeon_shipped() -> list[str]:
    """Names of the classification datasets that aeon ships (loadable offline)."""
    import os

    datasets = _require("aeon.datasets")
    root = os.path.join(os.path.dirname(datasets.__file__), "data")
    return sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, f"{d}_TRAIN.ts")))


def _load_aeon(name: str, download: bool) -> tuple[SeriesSet, SeriesSet]:
    datasets = _require("aeon.datasets")
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"bad UCR/UEA dataset name {name!r}")
    shipped = aeon_shipped()
    if name not in shipped and not download:
        close = difflib.get_close_matches(name, shipped, n=2)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"UCR/UEA dataset {name!r} is not shipped with aeon (offline: {', '.join(shipped)}).{hint} "
                         "Pass download=True (needs network), or load your .ts files with lstmkit.data.load_ts.")
    parts = []
    for split in ("train", "test"):
        try:
            X, y = datasets.load_classification(name, split=split)
        except Exception as e:  # aeon raises several types for unknown names and network failures
            raise ValueError(f"could not load UCR/UEA dataset {name!r} ({split}): {e}") from None
        seqs = [np.asarray(case, dtype=np.float32).T.copy() for case in X]  # (C, T_i) -> (T_i, C)
        for i, s_ in enumerate(seqs):
            if not np.isfinite(s_).all():
                raise ValueError(f"UCR/UEA dataset {name!r} ({split}) case {i} has missing values (NaN)")
        parts.append(SeriesSet(seqs, parse_labels(y)))
    return parts[0], parts[1]



def _require(module: str, extra: str = "data"):
    return require(module, f"this dataset needs the package {module!r}", extra)


@register_dataset("digits")
def _digits() -> tuple[SeriesSet, SeriesSet]:
    sk = _require("sklearn.datasets")
    bunch = sk.load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # (1797, 8, 8): 8 steps of 8 features
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, 0.25, seed=0)
    take = lambda idx: SeriesSet([images[i] for i in idx], labels[idx])  # noqa: E731
    return take(train_idx), take(test_idx)


@register_dataset("mnist1d")
def _mnist1d() -> tuple[SeriesSet, SeriesSet]:
    gen = _require("mnist1d.data")
    state = np.random.get_state()  # make_dataset reseeds numpy's global generator
    try:
        d = gen.make_dataset(gen.get_dataset_args())
    finally:
        np.random.set_state(state)
    as_set = lambda x, y: SeriesSet([row.astype(np.float32)[:, None] for row in x], np.asarray(y, dtype=np.int64))  # noqa: E731
    return as_set(d["x"], d["y"]), as_set(d["x_test"], d["y_test"])
