"""CSV loaders for sequence classification: wide and long files, both returning a :class:`SeriesSet`.

- **Wide** (:func:`load_csv`): one univariate series per row, a label column and one column
  per time step; shorter series leave trailing cells empty.
- **Long** (:func:`load_long_csv`): one row per time step of many series (the layout most
  sensor data comes in), ``id, time, channel..., label``; a series is all the rows of one id.

A file that does not fit the layout it is read as is an error, never a guess: a header that
names long-format columns (``id``, ``time``...) or rows that look long (the first column
repeats each value in one run while another column counts up within every run) read as wide;
a pandas index column; a label column that holds data (:func:`check_class_labels`).

Header rule of a wide file (``header=None``): the first row is a header when

1. one of its step cells is not a number (``label,t0,t1,...``); or
2. its cells are the column positions pandas writes for numbered columns: the step cells are
   0, 1, ..., k-1 or 1, ..., k (k >= 2) as wide as the widest data row, under a label cell
   that is a name (not a number), or the whole row is such a count (``0,1,...,T``, a frame
   built from an array); or an empty first cell is followed by names or by 0, 1, ... (a pandas
   index column, which is then refused); or
3. its label cell is a name (not a number) while every other row's label is a number.

Otherwise it is data (a single row is data unless rule 1 holds: rules 2 and 3 compare it with
the rows below). ``header=True``/``False`` overrides the rule, and a ``label_column`` given by
name implies a header. Rules 2 and 3 log the line they read as a header.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import os
from typing import Sequence

import numpy as np

from .files import SeriesSet, _finite_cast, _label, _text_lines, parse_labels

__all__ = ["load_csv", "load_long_csv", "long_feature_columns", "check_class_labels"]

log = logging.getLogger(__name__)

# names of the columns of a long file (one row per time step), never of a wide one
LONG_NAMES = ("id", "time", "timestamp", "datetime", "date", "series_id", "sample_id", "case_id", "time_step")
_LONG_HINT = ("read it with data.format: long and data.id_column (and data.time_column); lstmkit predict/evaluate: "
              "--format long --id-column NAME [--time-column NAME]")


def _rows(path) -> list[tuple[int, list[str]]]:
    """(line number, stripped cells) of every non-blank row; errors name the line."""
    reader = csv.reader(io.StringIO(_text_lines(path), newline=""))
    rows = []
    try:
        for r in reader:
            if any(c.strip() for c in r):
                rows.append((reader.line_num, [c.strip() for c in r]))
    except csv.Error as e:
        raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({e})") from None
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def _is_number(c: str) -> bool:
    try:
        float(c)
        return True
    except ValueError:
        return False


def _name(c: str | None) -> bool:
    return bool(c) and not _is_number(c)


def _count(cells: Sequence[str], start: tuple[int, ...] = (0, 1)) -> bool:
    """``cells`` are the integers s, s+1, ..., s+k-1 (k >= 2, s in ``start``), written as digits."""
    if len(cells) < 2 or not all(c.isascii() and c.isdigit() for c in cells):
        return False
    v = [int(c) for c in cells]
    return v[0] in start and v == list(range(v[0], v[0] + len(v)))


def _trim(cells: list[str]) -> list[str]:
    cells = list(cells)
    while cells and cells[-1] == "":
        cells.pop()
    return cells


def _header_reason(rows: list[list[str]], label_col: int | None) -> str | None:
    """Why the first row is a header (the module docstring's rule), or None when it is data."""
    first = _trim(rows[0])
    if any(_name(c) for j, c in enumerate(first) if j != label_col):
        return "names"
    if len(rows) < 2:  # the rules below compare the row with data rows
        return None
    full = len(first) >= max(len(_trim(r)) for r in rows[1:])  # a header spans every data row
    lab = first[label_col] if label_col is not None and label_col < len(first) else None
    steps = [c for j, c in enumerate(first) if j != label_col]
    if first and first[0] == "" and (any(_name(c) for c in first[1:]) or _count(first[1:], (0,))):
        return "an unnamed first column under column names"
    if full and _count(steps) and (label_col is None or _name(lab)):
        return "its cells count the columns (0, 1, ... or 1, 2, ...), as pandas writes them"
    if full and label_col is not None and _count(first):
        return "its cells count the columns (0, 1, ... or 1, 2, ...), as pandas writes them"
    if label_col is not None and _name(lab):
        others = [r[label_col] if label_col < len(r) else "" for r in rows[1:]]
        if others and all(o and _is_number(o) for o in others):
            return f"its label cell {lab!r} is a name above numeric labels"
    return None


def _check_index(path, names: list[str], data: list[tuple[int, list[str]]]) -> None:
    """pandas' ``to_csv`` writes its index as an unnamed first column of distinct row numbers."""
    if not names or names[0] != "" or not data:
        return
    first = [r[0] if r else "" for _, r in data]
    if all(c.isascii() and c.lstrip("-").isdigit() for c in first) and len(set(map(int, first))) == len(first):
        raise ValueError(f"{path}: the first column has no name and numbers the rows ({', '.join(first[:3])}, ...): "
                         "a pandas index column, not data. Write the file with DataFrame.to_csv(..., index=False), "
                         "or remove that column")


def _counts_up(v: np.ndarray) -> bool:
    """Strictly increasing by a constant step (a run of fewer than 3 values counts too)."""
    if len(v) < 3:
        return len(v) < 2 or v[1] > v[0]
    d = np.diff(v)
    return bool(d[0] > 0 and np.allclose(d, d[0], rtol=1e-6, atol=0))


def _check_long(path, names: list[str] | None, data: list[tuple[int, list[str]]]) -> None:
    """Refuse a long-format file read as wide: long column names, or the first column repeating
    each value in one run (two runs of 3+ rows at least) while another column counts up by a
    constant step within every run (a time column)."""
    hit = [n for n in names or [] if n.lower() in LONG_NAMES]
    if hit:
        raise ValueError(f"{path}: column {hit[0]!r} belongs to a long-format file (one row per time step), but it "
                         f"is read as wide (one series per row: a label column and one column per step); {_LONG_HINT}")
    runs = [(k, sum(1 for _ in g)) for k, g in itertools.groupby(r[0] if r else "" for _, r in data)]
    if len(runs) < 2 or len({k for k, _ in runs}) < len(runs) or sum(n >= 3 for _, n in runs) < 2:
        return
    bounds = np.cumsum([0] + [n for _, n in runs])
    for j in range(1, min(len(r) for _, r in data)):
        try:
            col = np.array([float(r[j]) for _, r in data])
        except ValueError:
            continue
        if np.isfinite(col).all() and all(_counts_up(col[a:b]) for a, b in zip(bounds[:-1], bounds[1:])):
            what = f"column {names[j]!r}" if names else f"column {j}"
            raise ValueError(f"{path}: looks like a long-format file (one row per time step): the first column "
                             f"repeats each value in one run of rows ({runs[0][0]!r} x{runs[0][1]}, {runs[1][0]!r} "
                             f"x{runs[1][1]}, ...) and {what} counts up within every run; {_LONG_HINT}")


def load_csv(path: str | os.PathLike, label_column: str | int | None = 0, header: bool | None = None) -> SeriesSet:
    """One univariate series per row (a "wide" file): a label column and one column per time
    step (``label_column=None``: no labels, every column is a step).

    ``header``: True, False, or None to detect it by the rule in this module's docstring; a
    ``label_column`` given by name implies a header. Shorter series leave trailing cells empty;
    an empty cell followed by a value, or a non-number, is an error, and so are a pandas index
    column and a file that looks long-format (:func:`load_long_csv` reads those).
    """
    if isinstance(label_column, bool) or not isinstance(label_column, (str, int, type(None))):
        raise TypeError(f"label_column must be a column name, a column index or None, got {label_column!r}")
    if isinstance(label_column, int) and label_column < 0:
        raise ValueError(f"label_column must be a column index >= 0, got {label_column}")
    if header is not None and not isinstance(header, bool):
        raise TypeError(f"header must be True, False or None (detect it), got {header!r}")
    if isinstance(label_column, str) and header is False:
        raise ValueError(f"label_column={label_column!r} names a column, which needs a header row, but header=False; "
                         "give the label column's index instead")
    rows = _rows(path)
    if header is None:
        reason = "a label column named" if isinstance(label_column, str) else _header_reason([r for _, r in rows],
                                                                                         label_column)
        header = reason is not None
        if reason and reason.startswith(("its", "an")):
            log.info(f"{path}: line {rows[0][0]} read as a header: {reason} (header=False reads it as data)")
    names = rows[0][1] if header else None
    data = rows[1:] if header else rows
    if header:
        _check_index(path, names, data)
    if isinstance(label_column, str):
        if names.count(label_column) != 1:
            raise ValueError(f"{path}: {'no' if label_column not in names else 'more than one'} column named "
                             f"{label_column!r} (header: {names})")
        label_column = names.index(label_column)
    if not data:
        raise ValueError(f"{path}: a header but no data rows")
    _check_long(path, names, data)
    labels, seqs = [], []
    for line, row in data:
        if label_column is not None:
            if label_column >= len(row):
                raise ValueError(f"{path}, line {line}: no label column {label_column}")
            labels.append(_label(path, line, row[label_column]))
        cells = _trim([c for j, c in enumerate(row) if j != label_column])
        if not cells:
            raise ValueError(f"{path}, line {line}: no values")
        try:
            values = np.array([float(c) for c in cells], dtype=np.float64)
        except ValueError:
            bad = next(c for c in cells if not _is_number(c))
            raise ValueError(f"{path}, line {line}: {bad!r} is not a number (only trailing cells may be empty)") from None
        seqs.append(_finite_cast(path, f"line {line}", values)[:, None])
    return SeriesSet(seqs, parse_labels(labels) if label_column is not None else None)


def check_class_labels(path, labels: np.ndarray | None, column: str = "the first column") -> None:
    """Refuse a label column that holds data rather than classes: non-integer numbers with more
    distinct values than half the rows (and more than 2), as the first time step of a file with
    no label column does. Class labels like 1.0, 2.0 read as integers and never trip this."""
    if labels is None or labels.dtype.kind != "f" or (labels == np.round(labels)).all():
        return
    distinct = np.unique(labels)
    if len(distinct) > max(2, len(labels) / 2):
        raise ValueError(f"{path}: the label column ({column}) holds {len(distinct)} distinct non-integer numbers in "
                         f"{len(labels)} rows (e.g. {', '.join(f'{v:g}' for v in labels[:3])}): it looks like data, "
                         "not class labels. Name the column that holds the labels with data.label_column (a header "
                         "name or a 0-based index; --label-column for lstmkit evaluate), or add a label column")


def _names(what: str, value, none: bool = True) -> None:
    if not (isinstance(value, str) and value or none and value is None):
        raise TypeError(f"{what} must be a column name{' or None' if none else ''}, got {value!r}")


def long_feature_columns(path: str | os.PathLike, id_column: str, label_column: str | None = "label",
                         time_column: str | None = None) -> list[str]:
    """The feature columns :func:`load_long_csv` reads when none are named: every column of the
    header but the id, time and label columns, in file order."""
    return _long_header(path, _rows(path)[0][1], id_column, label_column, time_column, None, False)[1]


def _long_header(path, names: list[str], id_column, label_column, time_column, feature_columns,
                 require_label: bool) -> tuple[list[str], list[str]]:
    """(the role columns present, the feature columns), checked against the header ``names``."""
    _names("id_column", id_column, none=False)
    _names("label_column", label_column)
    _names("time_column", time_column)
    if feature_columns is not None and (isinstance(feature_columns, str) or not all(
            isinstance(c, str) and c for c in feature_columns) or not feature_columns):
        raise TypeError(f"feature_columns must be a non-empty list of column names or None, got {feature_columns!r}")
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ValueError(f"{path}: the header names column {dup!r} more than once: {names}")
    roles = [c for c in (id_column, time_column, label_column) if c is not None]
    wanted = roles + list(feature_columns or [])
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"{path}: a column is named twice among id, time, label and feature columns: {wanted}")
    for c in wanted:
        if c not in names and not (c == label_column and not require_label):
            raise ValueError(f"{path}: no column named {c!r} (columns: {names})")
    features = list(feature_columns) if feature_columns is not None else [n for n in names if n not in roles]
    if "" in features:
        raise ValueError(f"{path}: column {names.index('')} has no name (a pandas index? write the file with "
                         "DataFrame.to_csv(..., index=False)); name it, or list data.feature_columns")
    if not features:
        raise ValueError(f"{path}: no feature columns besides {roles}")
    return [c for c in roles if c in names], features


def _times(path, column: str, raw: list[str], lines: list[int]) -> np.ndarray:
    """A time column as float64 numbers or datetime64; errors name the line."""
    try:
        times = np.array([float(t) for t in raw])
    except ValueError:
        pass
    else:
        bad = np.flatnonzero(~np.isfinite(times))
        if len(bad):
            raise ValueError(f"{path}, line {lines[bad[0]]}: time {raw[bad[0]]!r} in column {column!r} is not finite")
        return times
    try:
        times = np.array(raw, dtype="datetime64")
    except (ValueError, OverflowError):
        bad = next((i for i, t in enumerate(raw) if not _is_date(t)), 0)
        raise ValueError(f"{path}, line {lines[bad]}: time {raw[bad]!r} in column {column!r} is neither a number nor "
                         "an ISO date; every time of the column must be one kind") from None
    bad = np.flatnonzero(np.isnat(times))
    if len(bad):
        raise ValueError(f"{path}, line {lines[bad[0]]}: time {raw[bad[0]]!r} in column {column!r} is not a date")
    return times


def _is_date(t: str) -> bool:
    try:
        np.datetime64(t)
        return True
    except ValueError:
        return False


def load_long_csv(path: str | os.PathLike, id_column: str, label_column: str | None = "label",
                  time_column: str | None = None, feature_columns: Sequence[str] | None = None, *,
                  require_label: bool = True) -> SeriesSet:
    """Many multivariate series from one "long" CSV with a header: one row per time step, a
    series is all the rows of one ``id_column`` value (rows of different ids may interleave).

    Series come in the order their ids first appear (``SeriesSet.ids``, as written); each holds
    its rows sorted by ``time_column`` (numbers or ISO dates; a time repeated within an id is an
    error), or in file order without one. Features are ``feature_columns`` in that order, or
    every column but the id, time and label columns in file order. The label (``label_column``,
    never a feature; None: no labels) must be the same on every row of an id. Empty cells, NaN
    and non-numbers are errors naming the line. ``require_label=False`` (prediction inputs)
    reads files without the label column (labels None).
    """
    rows = _rows(path)
    names, data = rows[0][1], rows[1:]
    present, features = _long_header(path, names, id_column, label_column, time_column, feature_columns, require_label)
    if label_column not in present:
        label_column = None
    if not data:
        raise ValueError(f"{path}: a header but no data rows")
    at = {c: names.index(c) for c in [*present, *features]}
    order: dict[str, list[int]] = {}
    values = np.empty((len(data), len(features)))
    for i, (line, r) in enumerate(data):
        if len(r) != len(names):
            raise ValueError(f"{path}, line {line}: {len(r)} cells, the header has {len(names)}")
        for c in present:
            if not r[at[c]]:
                raise ValueError(f"{path}, line {line}: empty {c!r} cell; every row needs one")
        for j, c in enumerate(features):
            cell = r[at[c]]
            try:
                values[i, j] = float(cell)
            except ValueError:
                what = "is empty (missing values are not supported)" if not cell else f"{cell!r} is not a number"
                raise ValueError(f"{path}, line {line}, column {c!r}: {what}") from None
            if not math.isfinite(values[i, j]):
                raise ValueError(f"{path}, line {line}, column {c!r}: {cell!r} is not a finite number (missing values "
                                 "are not supported)")
        order.setdefault(r[at[id_column]], []).append(i)
    lines = [line for line, _ in data]
    times = None if time_column is None else _times(path, time_column, [r[at[time_column]] for _, r in data], lines)
    seqs, labels = [], []
    for key, idx in order.items():
        idx = np.array(idx)
        if label_column is not None:
            texts = [data[i][1][at[label_column]] for i in idx]
            other = next((k for k, t in enumerate(texts) if t != texts[0]), None)
            if other is not None:
                raise ValueError(f"{path}: id {key!r} has label {texts[0]!r} (line {lines[idx[0]]}) and {texts[other]!r} "
                                 f"(line {lines[idx[other]]}); the label must be the same on every row of a series")
            labels.append(_label(path, lines[idx[0]], texts[0]))
        if times is not None:
            idx = idx[np.argsort(times[idx], kind="stable")]
            same = np.flatnonzero(times[idx][1:] == times[idx][:-1])
            if len(same):
                a, b = sorted((lines[idx[same[0]]], lines[idx[same[0] + 1]]))
                raise ValueError(f"{path}: id {key!r} has time {data[idx[same[0]]][1][at[time_column]]!r} twice "
                                 f"(lines {a} and {b}); each time step of a series needs its own time")
        seqs.append(_finite_cast(path, f"id {key!r}", values[idx]))
    return SeriesSet(seqs, parse_labels(labels) if label_column is not None else None, np.array(list(order)))
