"""Loaders for the sequence formats users bring: ``.npz``, MNIST IDX and UCR/sktime ``.ts`` (CSV
files: :mod:`lstmkit.data.csvfiles`).

Each returns a :class:`SeriesSet`: a list of (T_i, D) float arrays (variable lengths kept as
they are: nothing is truncated or resampled) and an array of labels of any type. Malformed,
truncated or non-finite input raises ``ValueError`` naming the file and what is wrong; no
loader unpickles anything.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SeriesSet", "load_npz", "load_idx", "load_mnist_idx", "load_ts", "check_layout", "LAYOUTS", "read_npy"]


@dataclass
class SeriesSet:
    """sequences: list of (T_i, D) float32 arrays; labels: (n,) array (None for unlabelled); ids:
    (n,) the series' ids where the file names them (long CSV), else None."""

    sequences: list[np.ndarray]
    labels: np.ndarray | None
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.sequences):
            raise ValueError(f"{len(self.sequences)} sequences but {len(self.labels)} labels")
        if self.ids is not None and len(self.ids) != len(self.sequences):
            raise ValueError(f"{len(self.sequences)} sequences but {len(self.ids)} ids")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_features(self) -> int:
        return self.sequences[0].shape[1] if self.sequences else 0

    @property
    def lengths(self) -> np.ndarray:
        return np.array([s.shape[0] for s in self.sequences], dtype=np.int64)


def _finite_cast(path, what: str, a: np.ndarray) -> np.ndarray:
    """``a`` as float32; ValueError naming ``what`` for NaN/inf, or values beyond float32's range."""
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{path}: {what} contains NaN or inf")
    with np.errstate(over="ignore"):
        out = a.astype(np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"{path}: {what} holds values beyond float32's range (|x| > {np.finfo(np.float32).max:.3g})")
    return out


_NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (an empty one starts with its end record)


def _npz_member(f, name: str, path) -> np.ndarray:
    """Array ``name`` of the open archive ``f``, after checking that its header declares no more
    bytes than the archive member holds (so a forged shape cannot make us allocate gigabytes)."""
    info = f.zip.getinfo(f"{name}.npy")
    with f.zip.open(info) as m:
        major, _ = np.lib.format.read_magic(m)
        read = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}.get(major)
        if read is not None:
            shape, _, dtype = read(m)
            if dtype.hasobject:
                raise ValueError(f"{path}: contains pickled data, which is refused (never unpickled); "
                                 "save numeric arrays with numpy.savez")
            body = info.file_size - m.tell()
            need = math.prod(shape) * dtype.itemsize
            if need != body:
                raise ValueError(f"{path}: array {name!r} declares shape {shape} of {dtype} ({need} bytes) "
                                 f"but holds {body} bytes")
    return f[name]


LAYOUTS = ("ntd", "ndt")


def check_layout(layout, argument: str = "layout") -> str | None:
    """``layout`` if it is one of :data:`LAYOUTS` or None (not stated: read as "ntd", with a
    warning when the array looks transposed); ValueError naming ``argument`` otherwise."""
    if layout is not None and (not isinstance(layout, str) or layout not in LAYOUTS):
        raise ValueError(f"{argument} must be 'ntd' (n, T steps, D features: lstmkit's and PyTorch's batch_first "
                         f"order) or 'ndt' (n, D channels, T steps: aeon's and sktime's order), got {layout!r}")
    return layout


def to_ntd(X: np.ndarray, layout: str | None, what: str, hint: str = "pass layout='ndt'") -> np.ndarray:
    """A 3-D array as (n, T, D): transposed from (n, D, T) under ``layout="ndt"``, as given under
    "ntd". With the layout not stated (None) it is read as "ntd", with a UserWarning ending in ``hint`` (naming the layout argument) when it looks transposed: many more features than steps
    (D >= 2T, and D >= 8: with fewer features both readings are plausible), as aeon's (n, D, T)
    arrays, univariate (n, 1, T) included, read as (n, T, D) look."""
    if check_layout(layout) == "ndt":
        return X.transpose(0, 2, 1)
    n, t, d = X.shape
    if layout is None and d >= max(2 * t, 8):
        warnings.warn(f"{what} has shape {X.shape}, read as n={n} series of T={t} steps with D={d} features each: "
                      f"far more features than steps, as an (n, channels, time) array from aeon or sktime looks; if "
                      f"it is laid out that way, {hint} (and 'ntd' to keep this reading without the warning)", UserWarning, stacklevel=3)
    return X


def load_npz(path: str | os.PathLike, layout: str | None = None) -> SeriesSet:
    """An ``.npz`` with ``X`` (n, T) or (n, T, D), optional ``y`` (n,) and ``lengths`` (n,).

    ``layout="ndt"`` reads a 3-D ``X`` as (n, D, T), aeon's and sktime's order (``lengths`` then
    count along its last axis); "ntd" warns when ``X`` looks laid out that way (:func:`to_ntd`)."""
    check_layout(layout)
    try:
        with open(path, "rb") as fh:  # we own the handle: closed on errors too
            head = fh.read(6)
            if head == b"\x93NUMPY":
                raise ValueError(f"{path}: a single .npy array, expected an .npz archive with X (and y, lengths)")
            if head[:1] == b"\x80":
                raise ValueError(f"{path}: contains pickled data, which is refused (never unpickled); "
                                 "save numeric arrays with numpy.savez")
            if head[:4] not in _NPZ_MAGIC:
                raise ValueError(f"{path}: not an .npz file (it does not start with a zip signature); "
                                 "save arrays with numpy.savez")
            fh.seek(0)
            f = np.load(fh, allow_pickle=False)
            files = set(f.files)
            if "X" not in files:
                raise ValueError(f"{path}: no array 'X' (found {sorted(files)}); expected X, optional y and lengths")
            X = _npz_member(f, "X", path)
            y = _npz_member(f, "y", path) if "y" in files else None
            lengths = _npz_member(f, "lengths", path) if "lengths" in files else None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, SyntaxError,
            KeyError, UnicodeDecodeError, MemoryError, struct.error) as e:
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    except ValueError as e:
        if str(e).startswith(f"{path}: "):
            raise
        if "pickle" in str(e).lower():
            raise ValueError(f"{path}: contains pickled data, which is refused (never unpickled); save numeric arrays with numpy.savez") from None
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if X.dtype.kind not in "iuf":
        raise ValueError(f"{path}: X must be numeric, got dtype {X.dtype}")
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3 or 0 in X.shape:
        raise ValueError(f"{path}: X must be (n, T) or (n, T, D) with n, T, D >= 1, got shape {X.shape}")
    X = to_ntd(X, layout, f"{path}: X", "pass layout='ndt' (data.layout: ndt; lstmkit predict/evaluate: --layout ndt)")
    n, total = X.shape[:2]
    if lengths is None:
        lengths = np.full(n, total)
    elif lengths.shape != (n,) or lengths.dtype.kind not in "iu":
        raise ValueError(f"{path}: lengths must be {n} integers, got shape {lengths.shape} dtype {lengths.dtype}")
    elif lengths.min() < 1 or lengths.max() > total:
        raise ValueError(f"{path}: lengths must lie in [1, T={total}], got [{lengths.min()}, {lengths.max()}]")
    seqs = [_finite_cast(path, f"X[{i}] within its length", X[i, : lengths[i]]) for i in range(n)]
    if y is not None:
        if y.shape != (n,):
            raise ValueError(f"{path}: y must have shape ({n},), got {y.shape}")
        if y.dtype.kind not in "biufUS":
            raise ValueError(f"{path}: y must hold numbers or strings, got dtype {y.dtype}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError(f"{path}: y[{int(np.flatnonzero(~np.isfinite(y))[0])}] is not a finite number")
        empty = np.flatnonzero(np.char.strip(y) == y.dtype.type()) if y.dtype.kind in "US" else []
        if len(empty):
            raise ValueError(f"{path}: y[{int(empty[0])}] is an empty label")
    return SeriesSet(seqs, y)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_MAX_DIMS = 32


def _read_at_most(f, limit: int) -> bytes:
    """Up to ``limit`` bytes, read in chunks: never allocates more than the data that is there."""
    chunks, total = [], 0
    while total < limit:
        chunk = f.read(min(limit - total, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzipped, into an array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = _read_at_most(f, 4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
                raise ValueError(f"{path}: not an IDX file (bad magic number)")
            ndim = head[3]
            if ndim == 0 or ndim > _IDX_MAX_DIMS:
                raise ValueError(f"{path}: IDX header declares {ndim} dimensions; expected 1 to {_IDX_MAX_DIMS}")
            dims = _read_at_most(f, 4 * ndim)
            if len(dims) < 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header")
            shape = struct.unpack(f">{ndim}I", dims)
            dtype = np.dtype(_IDX_TYPES[head[2]])
            expected = math.prod(shape) * dtype.itemsize  # exact: Python ints do not overflow
            body = _read_at_most(f, expected + 1)  # one byte more tells a longer body
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: cannot read ({e})") from None
    if len(body) != expected:
        more = "+" if len(body) > expected else ""
        raise ValueError(f"{path}: IDX body has {len(body)}{more} bytes, the header {shape} needs {expected}")
    try:
        return np.frombuffer(body, dtype=dtype).reshape(shape)
    except ValueError:  # an empty array whose other dimensions multiply beyond numpy's limits
        raise ValueError(f"{path}: IDX shape {shape} is larger than an array can be") from None


def load_mnist_idx(images: str | os.PathLike, labels: str | os.PathLike | None = None) -> SeriesSet:
    """MNIST-style IDX images (n, rows, cols) read row by row: each image is ``rows`` steps of
    ``cols`` features, scaled to [0, 1]."""
    x = load_idx(images)
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(f"{images}: expected images (n, rows, cols) with n, rows, cols >= 1, got shape {x.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{images}: images contain NaN or inf")
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    seqs = [(img.astype(np.float32) / scale) for img in x]
    y = None
    if labels is not None:
        y = load_idx(labels)
        if y.shape != (len(seqs),):
            raise ValueError(f"{labels}: expected {len(seqs)} labels, got shape {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError(f"{labels}: labels contain NaN or inf")
    return SeriesSet(seqs, y)


def _text_lines(path, what: str = "CSV") -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped); ValueError naming the line
    of the first byte that is not UTF-8, or why the file cannot be read."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not valid UTF-8 (byte {raw[e.start]:#04x} at offset {e.start}); "
                         f"save the {what} file as UTF-8") from None


def _label(path, line: int, text: str) -> str:
    """A label cell read as text: non-empty, and a finite number if it is a number at all."""
    if not text:
        raise ValueError(f"{path}, line {line}: empty label")
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        raise ValueError(f"{path}, line {line}: label {text!r} is not a finite number")
    return text


def parse_labels(labels) -> np.ndarray:
    """Labels read as text: int64 when all are whole numbers, float when numeric, else as given.

    Integers written as text are read exactly (a float would merge neighbours beyond 2**53);
    integers beyond int64, and non-finite floats, stay as given rather than wrap around."""
    labels = list(labels)
    if labels and all(isinstance(v, str) for v in labels):
        try:
            ints = [int(v) for v in labels]
        except ValueError:
            ints = None
        if ints is not None:
            if all(-(2**63) <= v < 2**63 for v in ints):
                return np.array(ints, dtype=np.int64)
            return np.array(labels)
    try:
        as_float = np.array([float(v) for v in labels])
    except (ValueError, TypeError):
        return np.array(labels)
    if np.isfinite(as_float).all() and np.all(as_float == np.round(as_float)) and np.all(np.abs(as_float) < 2**53):
        return as_float.astype(np.int64)
    return as_float


def load_ts(path: str | os.PathLike) -> SeriesSet:
    """A UCR/UEA (sktime) ``.ts`` classification file: ``@`` header lines, then ``@data`` and
    one case per line, dimensions separated by ``:``, the class label last. Every dimension of
    a case must have the same length; cases may differ (variable length is kept). Missing
    values (``?`` or NaN) are refused."""
    path = Path(path)
    try:
        lines = _text_lines(path, ".ts").splitlines()
    except FileNotFoundError as e:
        raise ValueError(f"{e}") from None  # the .ts loader reports every unreadable file as a ValueError
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
            label, parts = _label(path, i, parts[-1].strip()), parts[:-1]
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
                dims.append(np.array([float(c) for c in cells], dtype=np.float64))
            except ValueError:
                raise ValueError(f"{path}, line {i}: a value is not a number") from None
        if len({len(d) for d in dims}) != 1:
            raise ValueError(f"{path}, line {i}: dimensions have different lengths {[len(d) for d in dims]}")
        if seqs and len(dims) != seqs[0].shape[1]:
            raise ValueError(f"{path}, line {i}: {len(dims)} dimensions, earlier cases have {seqs[0].shape[1]}")
        seqs.append(_finite_cast(path, f"line {i}", np.stack(dims, axis=1)))
    if not seqs:
        raise ValueError(f"{path}: no cases after @data")
    return SeriesSet(seqs, parse_labels(labels) if has_labels else None)


def read_npy(path: str | os.PathLike, what: str = "array", values: str = "values") -> np.ndarray:
    """The numeric array of a ``.npy`` file as float32, uint8 scaled by 1/255 (nothing is unpickled); clear
    errors, naming the ``what`` and its ``values``, for a missing file, another format, Python objects,
    another dtype, NaN or inf."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    with open(p, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":  # np.load would take anything else for a pickle
        raise ValueError(f"{path} is not a .npy array file (it does not start with the .npy magic bytes); "
                         f"save the {what} with np.save(path, array)")
    try:
        a = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"{path} holds Python objects, not a numeric array; save the {what} with "
                         f"np.save(path, array) where array holds numbers ({e})") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} is not a .npy array file ({type(e).__name__}: {e})") from None
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{path}: {values} must be floats in [0, 1] or uint8, got dtype {a.dtype}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{path}: the {what} contains NaN or inf")
    return a
