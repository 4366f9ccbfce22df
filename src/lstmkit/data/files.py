"""Loaders for the sequence formats users bring: ``.npz``, MNIST IDX, CSV and UCR/sktime ``.ts``.

Each returns a :class:`SeriesSet`: a list of (T_i, D) float arrays (variable lengths kept as
they are: nothing is truncated or resampled) and an array of labels of any type. Malformed,
truncated or non-finite input raises ``ValueError`` naming the file and what is wrong; no
loader unpickles anything.
"""

from __future__ import annotations

import csv
import gzip
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SeriesSet", "load_npz", "load_idx", "load_mnist_idx", "load_csv", "load_ts"]


@dataclass
class SeriesSet:
    """sequences: list of (T_i, D) float32 arrays; labels: (n,) array (None for unlabelled)."""

    sequences: list[np.ndarray]
    labels: np.ndarray | None

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.sequences):
            raise ValueError(f"{len(self.sequences)} sequences but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_features(self) -> int:
        return self.sequences[0].shape[1] if self.sequences else 0

    @property
    def lengths(self) -> np.ndarray:
        return np.array([s.shape[0] for s in self.sequences], dtype=np.int64)


def _finite(path, what: str, a: np.ndarray) -> None:
    if not np.isfinite(a).all():
        raise ValueError(f"{path}: {what} contains NaN or inf")


def load_npz(path: str | os.PathLike) -> SeriesSet:
    """An ``.npz`` with ``X`` (n, T) or (n, T, D), optional ``y`` (n,) and ``lengths`` (n,)."""
    try:
        with open(path, "rb") as fh:  # we own the handle: closed on errors too
            f = np.load(fh, allow_pickle=False)
            if not hasattr(f, "files"):
                raise ValueError(f"{path}: a single .npy array, expected an .npz archive with X (and y, lengths)")
            files = set(f.files)
            if "X" not in files:
                raise ValueError(f"{path}: no array 'X' (found {sorted(files)}); expected X, optional y and lengths")
            X = f["X"]
            y = f["y"] if "y" in files else None
            lengths = f["lengths"] if "lengths" in files else None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise ValueError(f"{path}: contains pickled data, which is refused (never unpickled); save numeric arrays with numpy.savez") from None
        raise
    if X.dtype.kind not in "iuf":
        raise ValueError(f"{path}: X must be numeric, got dtype {X.dtype}")
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{path}: X must be (n, T) or (n, T, D) with n, T >= 1, got shape {X.shape}")
    n, total = X.shape[:2]
    if lengths is None:
        lengths = np.full(n, total)
    elif lengths.shape != (n,) or lengths.dtype.kind not in "iu":
        raise ValueError(f"{path}: lengths must be {n} integers, got shape {lengths.shape} dtype {lengths.dtype}")
    elif lengths.min() < 1 or lengths.max() > total:
        raise ValueError(f"{path}: lengths must lie in [1, T={total}], got [{lengths.min()}, {lengths.max()}]")
    seqs = [X[i, : lengths[i]].astype(np.float32) for i in range(n)]
    for i, s in enumerate(seqs):
        _finite(path, f"X[{i}] within its length", s)
    if y is not None and y.shape != (n,):
        raise ValueError(f"{path}: y must have shape ({n},), got {y.shape}")
    return SeriesSet(seqs, y)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzipped, into an array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX body has {len(data) - header} bytes, the header {shape} needs {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def load_mnist_idx(images: str | os.PathLike, labels: str | os.PathLike | None = None) -> SeriesSet:
    """MNIST-style IDX images (n, rows, cols) read row by row: each image is ``rows`` steps of
    ``cols`` features, scaled to [0, 1]."""
    x = load_idx(images)
    if x.ndim != 3:
        raise ValueError(f"{images}: expected images (n, rows, cols), got shape {x.shape}")
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    seqs = [(img.astype(np.float32) / scale) for img in x]
    y = None
    if labels is not None:
        y = load_idx(labels)
        if y.shape != (len(seqs),):
            raise ValueError(f"{labels}: expected {len(seqs)} labels, got shape {y.shape}")
    return SeriesSet(seqs, y)


def load_csv(path: str | os.PathLike, label_column: str | int | None = 0) -> SeriesSet:
    """One univariate series per row: a label column and one column per time step
    (``label_column=None``: no labels, every column is a step).

    A header row is detected when its non-label cells are not numbers. Shorter series leave
    trailing cells empty; an empty cell followed by a value, or a non-number, is an error.
    """
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: no rows")

    def is_number(c: str) -> bool:
        try:
            float(c)
            return True
        except ValueError:
            return False

    header = None
    skip = label_column if isinstance(label_column, int) else 0 if label_column is not None else -1
    if not all(is_number(c) or not c.strip() for i, c in enumerate(rows[0]) if i != skip):
        header, rows = rows[0], rows[1:]
    if isinstance(label_column, str):
        if header is None or label_column not in header:
            raise ValueError(f"{path}: no column named {label_column!r} (header: {header})")
        label_column = header.index(label_column)
    if not rows:
        raise ValueError(f"{path}: a header but no data rows")
    labels, seqs = [], []
    for r_i, row in enumerate(rows, start=2 if header else 1):
        if label_column is not None:
            if label_column >= len(row):
                raise ValueError(f"{path}, line {r_i}: no label column {label_column}")
            labels.append(row[label_column].strip())
        cells = [c.strip() for j, c in enumerate(row) if j != label_column]
        while cells and cells[-1] == "":
            cells.pop()
        if not cells:
            raise ValueError(f"{path}, line {r_i}: no values")
        try:
            values = np.array([float(c) for c in cells], dtype=np.float32)
        except ValueError:
            bad = next(c for c in cells if not is_number(c))
            raise ValueError(f"{path}, line {r_i}: {bad!r} is not a number (only trailing cells may be empty)") from None
        _finite(path, f"line {r_i}", values)
        seqs.append(values[:, None])
    return SeriesSet(seqs, parse_labels(labels) if label_column is not None else None)


def parse_labels(labels) -> np.ndarray:
    """Labels read as text: int64 when all are whole numbers, float when numeric, else as given."""
    try:
        as_float = np.array([float(v) for v in labels])
        if np.all(as_float == np.round(as_float)):
            return as_float.astype(np.int64)
        return as_float
    except ValueError:
        return np.array(labels)


def load_ts(path: str | os.PathLike) -> SeriesSet:
    """A UCR/UEA (sktime) ``.ts`` classification file: ``@`` header lines, then ``@data`` and
    one case per line, dimensions separated by ``:``, the class label last. Every dimension of
    a case must have the same length; cases may differ (variable length is kept). Missing
    values (``?`` or NaN) are refused."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read as text ({e})") from None
    meta: dict[str, str] = {}
    data_at = None
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.lower() == "@data":
            data_at = i + 1
            break
        if s.startswith("@"):
            key, _, value = s[1:].partition(" ")
            meta[key.lower()] = value.strip()
        else:
            raise ValueError(f"{path}, line {i + 1}: expected a header line starting with '@' before @data")
    if data_at is None:
        raise ValueError(f"{path}: no @data line")
    class_label = meta.get("classlabel", "false").split()
    has_labels = bool(class_label) and class_label[0].lower() == "true"
    allowed = set(class_label[1:]) if has_labels else set()
    if meta.get("timestamps", "false").lower() == "true":
        raise ValueError(f"{path}: timestamped .ts files are not supported")
    seqs, labels = [], []
    for i, line in enumerate(lines[data_at:], start=data_at + 1):
        s = line.strip()
        if not s:
            continue
        parts = s.split(":")
        if has_labels:
            label, parts = parts[-1].strip(), parts[:-1]
            if allowed and label not in allowed:
                raise ValueError(f"{path}, line {i}: class {label!r} is not among @classLabel {sorted(allowed)}")
            labels.append(label)
        if not parts:
            raise ValueError(f"{path}, line {i}: no values")
        dims = []
        for d in parts:
            cells = [c.strip() for c in d.split(",")]
            if any(c in ("?", "") or c.lower() == "nan" for c in cells):
                raise ValueError(f"{path}, line {i}: missing values ('?' or NaN) are not supported")
            try:
                dims.append(np.array([float(c) for c in cells], dtype=np.float32))
            except ValueError:
                raise ValueError(f"{path}, line {i}: a value is not a number") from None
        if len({len(d) for d in dims}) != 1:
            raise ValueError(f"{path}, line {i}: dimensions have different lengths {[len(d) for d in dims]}")
        if seqs and len(dims) != seqs[0].shape[1]:
            raise ValueError(f"{path}, line {i}: {len(dims)} dimensions, earlier cases have {seqs[0].shape[1]}")
        case = np.stack(dims, axis=1)
        _finite(path, f"line {i}", case)
        seqs.append(case)
    if not seqs:
        raise ValueError(f"{path}: no cases after @data")
    return SeriesSet(seqs, parse_labels(labels) if has_labels else None)
