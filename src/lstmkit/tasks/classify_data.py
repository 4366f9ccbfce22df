"""The classification task's data: its config section (:class:`DataConfig`) and a config's train and
test parts (a named dataset's official split, or the user's files read by
:func:`lstmkit.data.inputs.load_inputs`), restricted to ``data.classes`` and ``data.train_fraction`` when
they are set."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from ..data import LabelMap, load_dataset, stratified_split
from ..data.augment import Augment, list_augmentations
from ..data.csvfiles import long_feature_columns
from ..data.files import LAYOUTS
from ..data.inputs import load_inputs
from ..data.subsets import check_subset, class_indices, fraction_indices
from .config import path_field

__all__ = ["DataConfig", "Format", "data_options", "load_data"]

log = logging.getLogger("lstmkit.tasks.classify")  # the task's log, as before this module was split off

Format = Literal["auto", "npz", "csv", "ts", "idx", "text", "long"]


@dataclass
class DataConfig:
    """Where the data comes from: a dataset ``name``, or user files ``train`` (+ ``test``)."""

    name: str | None = None  # digits | mnist1d | gunpoint | ... | ucr:NAME
    train: str | None = path_field()  # user file: .npz, .csv, .ts, IDX images, or a text,label CSV
    test: str | None = path_field()  # user test file; without one, a stratified test split is carved
    train_labels: str | None = path_field()  # IDX label files (format idx)
    test_labels: str | None = path_field()
    format: Format = "auto"  # auto: by file suffix (.npz .csv .ts .idx/.gz/-ubyte); text and long need naming
    label_column: str | int | None = None  # csv: the label column (default 0); text, long: default "label"
    text_column: str = "text"
    header: bool | None = None  # csv: a header row? None: detected (docs/classify.md, "CSV files")
    layout: Literal["ntd", "ndt"] | None = None  # npz: X is (n, T, D) or (n, D, T) (aeon/sktime); None: ntd, warned
    # when it looks transposed
    id_column: str | None = None  # long: the column naming each row's series (required)
    time_column: str | None = None  # long: rows are sorted by it within each series
    feature_columns: list[str] | None = None  # long: default every column but id, time and label
    normalize: bool = True  # per-feature standardisation fit on the training part
    min_freq: int = 1  # text vocabulary: keep tokens seen at least this often in training
    max_vocab: int | None = 20000  # text vocabulary size, specials included
    test_fraction: float = 0.25  # user files without a test file only
    split_seed: int = 0  # seed of that test split, and of the train_fraction subset
    classes: list | None = None  # keep only these classes (train and test), e.g. [5, 6, 7, 8, 9]
    train_fraction: float | None = None  # keep a stratified share of the training samples (seed split_seed)
    download: bool = False  # UCR/UEA datasets aeon does not ship (needs network)
    # training-batch augmentation, e.g. [{name: jitter, sigma: 0.03, p: 0.5}] (docs/augment.md); stored resolved
    augment: list[dict[str, Any]] = field(default_factory=list)
    # an override of data.train replaces the config file's dataset (lstmkit.tasks.config.drop_replaced)
    REPLACES: ClassVar[dict] = {"train": (("name", "download"), "the dataset")}

    def __post_init__(self) -> None:
        if (self.name is None) == (self.train is None):
            raise ValueError("data needs exactly one of name (a dataset name, see `lstmkit datasets`) "
                             f"or train (a file path); got name={self.name!r}, train={self.train!r}")
        if self.format not in get_args(Format):
            raise ValueError(f"data.format must be one of {', '.join(get_args(Format))}; got {self.format!r}")
        if self.name is not None and (self.test or self.train_labels or self.test_labels):
            raise ValueError("data.test / train_labels / test_labels apply to user files (data.train), not to data.name")
        if not (isinstance(self.test_fraction, float) and 0 < self.test_fraction < 1):
            raise ValueError(f"data.test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if self.header is not None and not isinstance(self.header, bool):
            raise ValueError(f"data.header must be true, false or null (detect it), got {self.header!r}")
        if self.layout is not None and self.layout not in LAYOUTS:
            raise ValueError(f"data.layout must be ntd (n, T, D) or ndt (n, D, T: aeon/sktime), got {self.layout!r}")
        long = {"id_column": self.id_column, "time_column": self.time_column, "feature_columns": self.feature_columns}
        if self.format != "long":
            given = [k for k, v in long.items() if v is not None]
            if given:
                raise ValueError(f"data.{given[0]} applies to long CSV files (data.format: long), not format "
                                 f"{self.format!r}")
        elif not isinstance(self.id_column, str) or not self.id_column:
            raise ValueError(f"data.format: long needs data.id_column, the column naming each row's series; got "
                             f"{self.id_column!r}")
        elif self.header is False or isinstance(self.label_column, int):
            raise ValueError("data.format: long reads columns by the names in its header: data.header cannot be false, "
                             f"and data.label_column must be a name (got {self.label_column!r})")
        check_subset(self.classes, self.train_fraction)
        self.augment = _augment(self.augment).config


def _augment(specs) -> Augment:
    """A series augmentation pipeline from a ``data.augment`` list; errors name the entry."""
    try:
        augment = Augment(specs)
    except ValueError as e:
        raise ValueError(f"data.{e}") from None
    if augment.kind == "image":
        raise ValueError(f"data.augment: {', '.join(c['name'] for c in augment.config)} are image ops for (B, C, H, W) "
                         "tensors; classification batches are (B, T, D) series (series ops: "
                         f"{', '.join(list_augmentations('series'))})")
    return augment



def data_options(cfg: DataConfig) -> dict:
    """load_inputs options from a data config; a long file's features resolved from the training
    file, so that the test file (and later predictions) read the same columns in the same order."""
    options = {"header": cfg.header, "layout": cfg.layout}
    if cfg.format == "long":
        features = cfg.feature_columns or long_feature_columns(cfg.train, cfg.id_column, cfg.label_column or "label",
                                                               cfg.time_column)
        options.update(id_column=cfg.id_column, time_column=cfg.time_column, feature_columns=features)
    return options


def load_data(cfg: DataConfig) -> tuple[tuple[list, np.ndarray], tuple[list, np.ndarray]]:
    """((train inputs, labels), (test inputs, labels)) with the official or documented split, restricted
    to ``data.classes`` and a stratified ``data.train_fraction`` of the training part when set."""
    (x, y), (xt, yt) = _load_split(cfg)
    if cfg.classes is None and cfg.train_fraction is None:
        return (x, y), (xt, yt)
    keep, keep_t = class_indices(y, cfg.classes), class_indices(yt, cfg.classes)
    x, y, xt, yt = [x[i] for i in keep], np.asarray(y)[keep], [xt[i] for i in keep_t], np.asarray(yt)[keep_t]
    share = fraction_indices(y, cfg.train_fraction, cfg.split_seed)
    log.info(f"data subset: classes {cfg.classes or 'all'}, {len(share)} of {len(y)} training samples "
             f"(train_fraction {cfg.train_fraction or 1}), {len(yt)} test samples")
    return ([x[i] for i in share], y[share]), (xt, yt)


def _load_split(cfg: DataConfig) -> tuple[tuple[list, np.ndarray], tuple[list, np.ndarray]]:
    if cfg.name is not None:
        train, test = load_dataset(cfg.name, download=cfg.download)
        return (train.sequences, train.labels), (test.sequences, test.labels)
    options = data_options(cfg)
    x, y = load_inputs(cfg.train, cfg.format, cfg.train_labels, cfg.label_column, cfg.text_column, **options)
    if y is None:
        raise ValueError(f"{cfg.train}: training data has no labels")
    try:
        LabelMap.fit(y)  # one class, say, is the training file's mistake: name it
    except ValueError as e:
        raise ValueError(f"{cfg.train}: {e}") from None
    if cfg.test is not None:
        xt, yt = load_inputs(cfg.test, cfg.format, cfg.test_labels, cfg.label_column, cfg.text_column, **options)
        if yt is None:
            raise ValueError(f"{cfg.test}: test data has no labels")
        return (x, y), (xt, yt)
    tr, te = stratified_split(y, cfg.test_fraction, seed=cfg.split_seed)
    log.info(f"no data.test given: carved a stratified {cfg.test_fraction:.0%} test split (seed {cfg.split_seed})")
    return ([x[i] for i in tr], y[tr]), ([x[i] for i in te], y[te])
