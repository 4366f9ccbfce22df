"""Any user file of sequence classification data, by format: ``.npz``, wide or long CSV, ``.ts``,
MNIST IDX images, or a text,label CSV (what ``data.train``/``data.test`` and ``lstmkit
predict``/``evaluate`` read)."""

from __future__ import annotations

import os
from typing import Sequence

from .csvfiles import check_class_labels, load_csv, load_long_csv
from .files import load_mnist_idx, load_npz, load_ts
from .text import load_text_csv

__all__ = ["format_of", "load_inputs"]


def format_of(path: str, fmt: str) -> str:
    """``fmt``, or for "auto" the format the suffix of ``path`` names."""
    if fmt != "auto":
        return fmt
    p = path.lower()
    for suffix, kind in ((".npz", "npz"), (".csv", "csv"), (".ts", "ts"), (".idx", "idx"), ("-ubyte", "idx"),
                         ("-ubyte.gz", "idx"), (".gz", "idx")):
        if p.endswith(suffix):
            return kind
    raise ValueError(f"cannot tell the format of {path!r} from its suffix; set data.format to npz, csv, ts, idx, "
                     "text or long")


def load_inputs(path: str | os.PathLike, fmt: str = "auto", labels_path: str | None = None,
                label_column: str | int | None = None, text_column: str = "text", labelled: bool = True, *,
                header: bool | None = None, layout: str | None = None, id_column: str | None = None,
                time_column: str | None = None, feature_columns: Sequence[str] | None = None,
                ids: bool = False) -> tuple:
    """(inputs, labels) from a user file: inputs are (T_i, D) float arrays, or strings for text
    (labels None when ``labelled`` is False). ``ids=True``: (inputs, labels, ids), ids None
    unless the file names its series (long CSV). ``header`` applies to wide CSV, ``layout`` to
    ``.npz``, ``id_column``, ``time_column`` and ``feature_columns`` to long CSV, as the keys of
    :class:`lstmkit.tasks.classify.DataConfig`; given for another format, they are errors."""
    path = str(path)
    kind = format_of(path, fmt)
    for key, value, default, applies in (("header", header, None, "csv"), ("layout", layout, None, "npz")):
        if value != default and kind != applies:
            raise ValueError(f"{path}: {key}={value!r} applies to {applies} files; this one is read as {kind}")
    if kind != "long" and (id_column, time_column, feature_columns) != (None, None, None):
        raise ValueError(f"{path}: id_column, time_column and feature_columns apply to format long; this file is read "
                         f"as {kind}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file {path} does not exist")
    if kind == "text":
        texts, labels = load_text_csv(path, text_column, (label_column or "label") if labelled else None)
        return (texts, labels, None) if ids else (texts, labels)
    if kind == "npz":
        s = load_npz(path, layout)
    elif kind == "csv":
        s = load_csv(path, (0 if label_column is None else label_column) if labelled else None, header)
        if labelled:
            check_class_labels(path, s.labels, "the first column" if label_column is None else repr(label_column))
    elif kind == "long":
        if id_column is None:
            raise ValueError(f"{path}: format long needs id_column (data.id_column, --id-column)")
        s = load_long_csv(path, id_column, label_column or "label", time_column, feature_columns,
                          require_label=labelled)
    elif kind == "ts":
        s = load_ts(path)
    else:
        s = load_mnist_idx(path, labels_path)
    out = (s.sequences, s.labels if labelled else None)
    return (*out, s.ids) if ids else out
