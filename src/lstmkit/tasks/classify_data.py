"""The classification task's data: a config's train and test parts (a named dataset's official
split, or the user's files read by :func:`lstmkit.data.inputs.load_inputs`), restricted to
``data.classes`` and ``data.train_fraction`` when they are set."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ..data import LabelMap, load_dataset, stratified_split
from ..data.csvfiles import long_feature_columns
from ..data.inputs import load_inputs
from ..data.subsets import class_indices, fraction_indices

if TYPE_CHECKING:
    from .classify import DataConfig

__all__ = ["data_options", "load_data"]

log = logging.getLogger("lstmkit.tasks.classify")  # the task's log, as before this module was split off


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
