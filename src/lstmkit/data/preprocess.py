"""Labels and normalisation, fit on training data only (the splits: :mod:`lstmkit.data.splits`).

- :class:`LabelMap`: labels of any type (str, int, float) <-> contiguous indices, JSON-able.
- :class:`Standardizer`: per-feature mean and std over the valid steps of the training
  sequences (padding never enters the statistics, since sequences are kept unpadded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

from .text import Vocabulary

__all__ = ["LabelMap", "Standardizer", "Preprocessor", "check_series"]


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _label_array(labels: Sequence[Any], what: str = "labels") -> np.ndarray:
    """``labels`` as a 1-D array of one kind (numbers, or strings), without NaN. A list that mixes
    kinds is refused rather than turned into strings by numpy (``[0, "a"]`` -> ``["0", "a"]``)."""
    if isinstance(labels, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of labels, got a single {type(labels).__name__}")
    try:
        raw = labels if isinstance(labels, np.ndarray) else np.asarray(labels, dtype=object)
    except ValueError:  # ragged nesting
        raise ValueError(f"{what} must be a 1-D sequence of labels (ragged nested input given)") from None
    if raw.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one label per sample), got shape {raw.shape}")
    if raw.dtype.kind in "cVMm":
        raise TypeError(f"{what} must be numbers, strings or booleans, got dtype {raw.dtype}")
    if raw.dtype.kind == "O":
        kinds = {type(_plain(v)) for v in raw}
        if len({str if issubclass(k, str) else float if issubclass(k, (int, float)) else k for k in kinds}) > 1 \
                or any(not issubclass(k, (str, int, float)) for k in kinds):
            raise TypeError(f"{what} mix types {sorted(k.__name__ for k in kinds)}; use labels of one kind "
                            "(all numbers, or all strings)")
        labels = raw if isinstance(labels, np.ndarray) else np.asarray(raw.tolist())  # one kind: no coercion to str
    else:
        labels = raw
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError(f"{what}[{int(np.flatnonzero(np.isnan(labels))[0])}] is NaN; a class label must be a value")
    if labels.dtype.kind == "O" and any(isinstance(v, float) and v != v for v in labels):
        raise ValueError(f"{what} hold NaN; a class label must be a value")
    return labels


@dataclass(frozen=True)
class LabelMap:
    """Sorted distinct labels; index i <-> ``classes[i]``."""

    classes: tuple

    @classmethod
    def fit(cls, labels: Sequence[Any]) -> "LabelMap":
        labels = _label_array(labels)
        if labels.size == 0:
            raise ValueError("labels is empty: cannot fit a label map")
        classes = tuple(_plain(c) for c in np.unique(labels))
        if len(classes) < 2:
            raise ValueError(f"labels hold only one class ({classes[0]!r}); classification needs at least 2")
        return cls(classes)

    def encode(self, labels: Sequence[Any]) -> np.ndarray:
        if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__") or getattr(labels, "ndim", 1) != 1:
            raise ValueError(f"labels must be a 1-D sequence of labels, got {type(labels).__name__} "
                             f"{getattr(labels, 'shape', '')}".rstrip())
        index = {c: i for i, c in enumerate(self.classes)}
        out = np.empty(len(labels), dtype=np.int64)
        for j, v in enumerate(labels):
            v = _plain(v)
            try:
                out[j] = index[v]
            except (KeyError, TypeError):  # TypeError: an unhashable label
                raise ValueError(f"label {v!r} (position {j}) was not seen in training; known: {list(self.classes)}") from None
        return out

    def decode(self, indices: Sequence[int]) -> list:
        a = np.asarray(indices)
        if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
            raise ValueError(f"indices must be a 1-D sequence of ints, got shape {a.shape} dtype {a.dtype}")
        bad = (a < 0) | (a >= len(self.classes))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ValueError(f"indices[{j}] = {int(a[j])} is out of range [0, {len(self.classes)})")
        return [self.classes[int(i)] for i in a]

    def __len__(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        return {"classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelMap":
        if not isinstance(d, dict) or not isinstance(d.get("classes"), list) or len(d["classes"]) < 2:
            raise ValueError(f"expected a dict with 'classes': a list of at least 2 labels, got {d!r}")
        classes = d["classes"]
        if any(not isinstance(c, (str, int, float)) for c in classes) or len(set(classes)) != len(classes):
            raise ValueError(f"'classes' must be distinct numbers or strings, got {classes!r}")
        return cls(tuple(classes))


@dataclass(frozen=True)
class Standardizer:
    """Per-feature (x - mean) / std; features with std 0 keep std 1."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, sequences: Sequence[np.ndarray]) -> "Standardizer":
        if len(sequences) == 0:
            raise ValueError("sequences is empty: cannot fit normalisation statistics")
        arrays = [_steps(s, i, None) for i, s in enumerate(sequences)]
        d = arrays[0].shape[1]
        for i, a in enumerate(arrays):
            if a.shape[1] != d:
                raise ValueError(f"sequences[{i}] has {a.shape[1]} features, sequences[0] has {d}")
        steps = np.concatenate(arrays, axis=0)  # valid steps only
        if not np.isfinite(steps).all():
            raise ValueError("sequences contain NaN or inf")
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = steps.mean(axis=0), steps.std(axis=0)
            if not (np.isfinite(mean).all() and np.isfinite(std).all()):  # sums of huge values overflow: rescale
                scale = np.abs(steps).max(axis=0)
                scale = np.where(scale > 0, scale, 1.0)
                mean, std = (steps / scale).mean(axis=0) * scale, (steps / scale).std(axis=0) * scale
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise ValueError("sequences hold values too large for normalisation statistics (mean or std overflow)")
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for i, s in enumerate(sequences):
            s = _steps(s, i, len(self.mean))
            if not np.isfinite(s).all():
                raise ValueError(f"sequences[{i}] contains NaN or inf")
            with np.errstate(over="ignore"):
                z = ((s - self.mean) / self.std).astype(np.float32)
            if not np.isfinite(z).all():
                raise ValueError(f"sequences[{i}]: standardised values exceed float32's range")
            out.append(z)
        return out

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        try:
            mean, std = np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"expected a dict with 'mean' and 'std': lists of numbers ({type(e).__name__}: {e})") from None
        if mean.ndim != 1 or mean.shape != std.shape or not (np.isfinite(mean).all() and np.isfinite(std).all()
                                                             and (std > 0).all()):
            raise ValueError(f"'mean' and 'std' must be equal-length lists of finite numbers, std > 0; "
                             f"got shapes {mean.shape} and {std.shape}")
        return cls(mean, std)


def _steps(s: Any, i: int, features: int | None) -> np.ndarray:
    """Sequence ``i`` as a float64 (T, D) array with T >= 1 (and D == ``features`` when given)."""
    try:
        a = np.asarray(s)
    except ValueError:
        raise ValueError(f"sequences[{i}] is ragged; expected a (T, D) array") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"sequences[{i}] must hold real numbers, got dtype {a.dtype}")
    want = f"(T, {features})" if features is not None else "(T, D)"
    if a.ndim != 2 or a.shape[0] == 0 or (features is not None and a.shape[1] != features):
        raise ValueError(f"sequences[{i}] has shape {a.shape}; expected {want} features with T >= 1")
    return a.astype(np.float64, copy=False)


@dataclass
class Preprocessor:
    """Everything between raw inputs and the model, fit on training data only; JSON round trip."""

    kind: Literal["series", "tokens"]
    labels: LabelMap
    num_features: int | None = None
    standardizer: Standardizer | None = None
    vocab: Vocabulary | None = None

    @classmethod
    def fit(cls, inputs: Sequence, labels: np.ndarray, normalize: bool = True, min_freq: int = 1,
            max_vocab: int | None = None) -> "Preprocessor":
        if len(inputs) == 0:
            raise ValueError("the training data is empty: no samples to fit on")
        label_map = LabelMap.fit(labels)
        if isinstance(inputs[0], str):
            return cls("tokens", label_map, vocab=Vocabulary.fit(inputs, min_freq=min_freq, max_size=max_vocab))
        arrays = check_series(inputs, None)
        return cls("series", label_map, arrays[0].shape[1], Standardizer.fit(arrays) if normalize else None)

    def inputs(self, inputs: Sequence) -> list[np.ndarray]:
        """Model-ready arrays: standardised (T_i, D) float32, or (T_i,) int64 token ids."""
        if len(inputs) == 0:
            raise ValueError("inputs is empty: nothing to process")
        if self.kind == "tokens":
            if not all(isinstance(t, str) for t in inputs):
                raise TypeError("this model classifies text: pass a list of strings")
            return self.vocab.encode_many(inputs)
        arrays = check_series(inputs, self.num_features)
        return self.standardizer.transform(arrays) if self.standardizer is not None else arrays

    def targets(self, labels) -> np.ndarray:
        return self.labels.encode(labels)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "labels": self.labels.to_dict(), "num_features": self.num_features,
                "standardizer": None if self.standardizer is None else self.standardizer.to_dict(),
                "vocab": None if self.vocab is None else self.vocab.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessor":
        try:
            kind = d["kind"]
            if kind not in ("series", "tokens"):
                raise ValueError(f"kind {kind!r}")
            std = None if d.get("standardizer") is None else Standardizer.from_dict(d["standardizer"])
            vocab = None if d.get("vocab") is None else Vocabulary.from_dict(d["vocab"])
            pre = cls(kind, LabelMap.from_dict(d["labels"]), d.get("num_features"), std, vocab)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"model.json: the preprocessing description is malformed ({e})") from None
        if kind == "tokens" and vocab is None or kind == "series" and not isinstance(pre.num_features, int):
            raise ValueError("model.json: the preprocessing description is incomplete")
        if std is not None and (len(std.mean) != pre.num_features or len(std.std) != pre.num_features):
            raise ValueError("model.json: normalisation statistics do not match num_features")
        return pre


def check_series(inputs: Sequence, num_features: int | None) -> list[np.ndarray]:
    """Validate a list of (T_i, D) series (1-D -> one feature); errors name the sample."""
    out = []
    for i, s in enumerate(inputs):
        try:
            a = np.asarray(s, dtype=np.float32)
        except (ValueError, TypeError):
            raise ValueError(f"sample {i} is not a numeric array (a ragged nested list? pass each series as an "
                             "array of shape (T_i, D))") from None
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[0] == 0:
            raise ValueError(f"sample {i} must be a series of shape (T_i, D) with T_i >= 1, got shape {a.shape}")
        want = num_features if num_features is not None else (out[0].shape[1] if out else a.shape[1])
        if a.shape[1] != want:
            who = "the model was trained on" if num_features is not None else "sample 0 has"
            raise ValueError(f"sample {i} has {a.shape[1]} features per step but {who} {want}")
        if not np.isfinite(a).all():
            raise ValueError(f"sample {i} contains NaN or inf")
        out.append(a)
    return out
