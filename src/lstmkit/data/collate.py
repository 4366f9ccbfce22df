"""Variable-length batches: pad with lengths, and group batches by length.

Padding never hides data: lengths travel with every padded batch, nothing is truncated, and
non-finite values are refused where they enter.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["pad_sequences", "LengthBucketSampler"]


def pad_sequences(
    sequences: Sequence[np.ndarray | Tensor],
    batch_first: bool = True,
    padding_value: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Stack sequences of shape (T_i, D) into (B, T_max, D) (or (T_max, B, D)) plus lengths (B,).

    Raises ValueError for an empty list, a sequence that is not 2-D or has no steps, differing
    feature counts, or NaN/inf values (naming the sequence index).
    """
    if len(sequences) == 0:
        raise ValueError("sequences is empty: nothing to pad")
    arrays = []
    for i, s in enumerate(sequences):
        t = torch.as_tensor(s, dtype=dtype) if not isinstance(s, Tensor) else s.to(dtype)
        if t.dim() != 2:
            raise ValueError(f"sequences[{i}] must be 2-D (T_i, D), got shape {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError(f"sequences[{i}] has no time steps")
        if arrays and t.shape[1] != arrays[0].shape[1]:
            raise ValueError(f"sequences[{i}] has {t.shape[1]} features, sequences[0] has {arrays[0].shape[1]}")
        if not torch.isfinite(t).all():
            raise ValueError(f"sequences[{i}] contains NaN or inf")
        arrays.append(t)
    lengths = torch.tensor([a.shape[0] for a in arrays], dtype=torch.int64)
    padded = torch.nn.utils.rnn.pad_sequence(arrays, batch_first=batch_first, padding_value=padding_value)
    return padded, lengths


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
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
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
