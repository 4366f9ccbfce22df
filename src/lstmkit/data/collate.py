"""Variable-length batches: pad with lengths, and group batches by length.

Padding never hides data: lengths travel with every padded batch, nothing is truncated, and
non-finite values are refused where they enter.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..checks import check_int

__all__ = ["pad_sequences", "LengthBucketSampler", "SequenceBatches", "TensorBatches"]


def pad_sequences(
    sequences: Sequence[np.ndarray | Tensor],
    batch_first: bool = True,
    padding_value: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Stack sequences of shape (T_i, D) into (B, T_max, D) (or (T_max, B, D)) plus lengths (B,).

    With an integer ``dtype`` (token ids) sequences are 1-D (T_i,) and the result (B, T_max).
    Raises ValueError for an empty list, a sequence of the wrong rank or with no steps (or no
    features), differing feature counts, NaN/inf values, or token ids that are not whole numbers
    >= 0; TypeError for what is not an array of numbers (both naming the sequence index).
    """
    if not isinstance(dtype, torch.dtype) or dtype.is_complex or dtype == torch.bool:
        raise TypeError(f"dtype must be a floating-point or integer torch.dtype, got {dtype!r}")
    if isinstance(padding_value, bool) or not isinstance(padding_value, (int, float)):
        raise TypeError(f"padding_value must be a number, got {padding_value!r}")
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__") or not hasattr(sequences, "__getitem__"):
        raise TypeError(f"sequences must be a list of arrays, got {type(sequences).__name__}")
    if len(sequences) == 0:
        raise ValueError("sequences is empty: nothing to pad")
    floating = dtype.is_floating_point
    rank, what = (2, "2-D (T_i, D)") if floating else (1, "1-D (T_i,) token ids")
    arrays = []
    for i, s in enumerate(sequences):
        t = _as_tensor(s, i)
        if t.dim() != rank:
            raise ValueError(f"sequences[{i}] must be {what}, got shape {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError(f"sequences[{i}] has no time steps")
        if floating and t.shape[1] == 0:
            raise ValueError(f"sequences[{i}] has no features (shape {tuple(t.shape)})")
        if floating and arrays and t.shape[1] != arrays[0].shape[1]:
            raise ValueError(f"sequences[{i}] has {t.shape[1]} features, sequences[0] has {arrays[0].shape[1]}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ValueError(f"sequences[{i}] contains NaN or inf")
        if not floating:
            if t.is_floating_point() and not bool((t == t.round()).all()):
                raise ValueError(f"sequences[{i}] holds token ids that are not whole numbers")
            if bool((t < 0).any()):
                raise ValueError(f"sequences[{i}] holds negative token ids (min {t.min().item()}); ids are >= 0")
            if t.dtype != torch.bool and bool((t > torch.iinfo(dtype).max).any()):
                raise ValueError(f"sequences[{i}] holds token ids beyond the range of {dtype}")
        converted = t.to(dtype)
        if floating and not torch.isfinite(converted).all():
            raise ValueError(f"sequences[{i}] holds values beyond the range of {dtype}")
        arrays.append(converted)
    lengths = torch.tensor([a.shape[0] for a in arrays], dtype=torch.int64)
    padded = torch.nn.utils.rnn.pad_sequence(arrays, batch_first=batch_first, padding_value=padding_value)
    return padded, lengths


def _as_tensor(s, i: int) -> Tensor:
    """Sequence ``i`` as a real-valued tensor of its own dtype (bool and integers kept, no copy
    of a tensor); TypeError naming it when it is not an array of real numbers."""
    if isinstance(s, Tensor):
        t = s
    else:
        if isinstance(s, (str, bytes)) or s is None:
            raise TypeError(f"sequences[{i}] must be an array of numbers, got {type(s).__name__}")
        try:
            a = np.asarray(s)
        except ValueError:  # a ragged nested list
            raise ValueError(f"sequences[{i}] is ragged (rows of different lengths); pass a (T_i, D) array") from None
        if a.dtype.kind not in "biuf":
            raise TypeError(f"sequences[{i}] must hold real numbers, got dtype {a.dtype}")
        if a.dtype.byteorder == ">" or not a.flags.writeable:  # torch takes native, writable arrays only
            a = a.astype(a.dtype.newbyteorder("="), copy=True)
        t = torch.from_numpy(a)
    if t.is_complex():
        raise TypeError(f"sequences[{i}] must hold real numbers, got dtype {t.dtype}")
    return t


class LengthBucketSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of indices whose sequences have similar lengths, so padding waste stays small.

    Indices are sorted by length (ties broken at random when shuffling), cut into batches of
    ``batch_size``, and the batch order is shuffled each epoch. Every index appears exactly once
    per epoch; the last batch may be smaller unless ``drop_last``.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or len(lengths) == 0:
            raise ValueError(f"lengths must be a non-empty 1-D sequence, got shape {lengths.shape}")
        if lengths.dtype.kind not in "iu":
            raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
        batch_size, seed = check_int("batch_size", batch_size), check_int("seed", seed, minimum=0)
        self.lengths, self.batch_size, self.shuffle, self.drop_last = lengths, batch_size, shuffle, drop_last
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        tiebreak = rng.random(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        order = np.lexsort((tiebreak, self.lengths))
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            rng.shuffle(batches)
        self.epoch += 1
        yield from batches


class SequenceBatches:
    """Length-grouped batches ``(x, lengths, y)`` over sequences padded once up front.

    Each batch is cut to its own longest sequence, so with :class:`LengthBucketSampler`
    ordering the padding per batch stays small, and collation is one index-select instead of
    a per-sample loop. ``batches(epoch)`` gives the epoch's batches (shuffled with
    ``seed + epoch`` when ``shuffle``); iterating the object gives them in a fixed order.
    ``y`` is omitted from each batch when ``labels`` is None.
    """

    def __init__(self, sequences: Sequence[np.ndarray], labels: np.ndarray | None, batch_size: int,
                 shuffle: bool = False, seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        self.x, self.lengths = pad_sequences(sequences, dtype=dtype)
        self.y = None
        if labels is not None:
            y = np.asarray(labels)
            if y.ndim != 1 or y.dtype.kind not in "iu":
                raise ValueError(f"labels must be a 1-D array of integer class indices, got shape {y.shape} "
                                 f"dtype {y.dtype} (encode labels with LabelMap first)")
            if len(y) != len(self.lengths):
                raise ValueError(f"{len(self.lengths)} sequences but {len(y)} labels")
            self.y = torch.as_tensor(y.astype(np.int64))
        self.sampler = LengthBucketSampler(self.lengths.numpy(), batch_size, shuffle=shuffle, seed=seed)
        self.shuffle = shuffle

    def __len__(self) -> int:
        return len(self.sampler)

    def batches(self, epoch: int = 0) -> Iterator[tuple[Tensor, ...]]:
        self.sampler.set_epoch(epoch)
        for idx in self.sampler:
            index = torch.as_tensor(idx)
            lengths = self.lengths[index]
            x = self.x[index, : int(lengths.max())]
            yield (x, lengths) if self.y is None else (x, lengths, self.y[index])

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        if self.shuffle:
            raise ValueError("iterate a shuffled SequenceBatches with batches(epoch)")
        return self.batches(0)

    def restore_order(self, rows: Tensor) -> Tensor:
        """Rows produced batch by batch from ``iter(self)`` (unshuffled, grouped by length) ->
        the rows in the original sample order."""
        order = torch.as_tensor(np.lexsort((np.arange(len(self.lengths)), self.lengths.numpy())))
        out = torch.empty_like(rows)
        out[order] = rows
        return out


class TensorBatches:
    """Batches of aligned tensors (same first dimension N), e.g. images and labels.

    ``batches(epoch)`` (also ``self(epoch)``) yields tuples of row slices of at most
    ``batch_size`` rows: in a permutation drawn from ``numpy.random.default_rng(seed + epoch)``
    when ``shuffle``, in order otherwise, so a run is a function of its seed. Iterating the
    object gives the unshuffled batches (evaluation).
    """

    def __init__(self, tensors: Sequence[Tensor | np.ndarray], batch_size: int, shuffle: bool = False,
                 seed: int = 0) -> None:
        ts = tuple(torch.from_numpy(np.ascontiguousarray(t)) if isinstance(t, np.ndarray) else t for t in tensors)
        if not ts or not all(isinstance(t, Tensor) and t.dim() >= 1 for t in ts):
            raise ValueError("tensors must be a non-empty sequence of arrays or tensors with a first (batch) dimension")
        if len({len(t) for t in ts}) != 1 or len(ts[0]) == 0:
            raise ValueError(f"tensors must share one non-zero first dimension, got {[tuple(t.shape) for t in ts]}")
        batch_size = check_int("batch_size", batch_size)
        self.tensors, self.batch_size, self.shuffle, self.seed = ts, batch_size, bool(shuffle), seed

    def __len__(self) -> int:
        return -(-len(self.tensors[0]) // self.batch_size)

    def batches(self, epoch: int = 0) -> Iterator[tuple[Tensor, ...]]:
        n = len(self.tensors[0])
        if not self.shuffle:
            return self._in_order()
        order = torch.from_numpy(np.random.default_rng(self.seed + epoch).permutation(n))
        return (tuple(t[order[k:k + self.batch_size]] for t in self.tensors) for k in range(0, n, self.batch_size))

    __call__ = batches

    def _in_order(self) -> Iterator[tuple[Tensor, ...]]:
        n = len(self.tensors[0])
        return (tuple(t[k:k + self.batch_size] for t in self.tensors) for k in range(0, n, self.batch_size))

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        return self._in_order()
