"""Curriculum by length (``train.curriculum: length``): short sequences first, all of them later.

The schedule, with ``q0 = train.curriculum_start`` and ``E = train.curriculum_epochs``, epochs
counted from 1:

    q_e = min(1, q0 + (e - 1) / E)                      # the share of the length distribution used
    L_e = the ceil(q_e * N)-th smallest training length  # an order statistic of the N training lengths

- **Variable lengths** (the training lengths are not all equal): epoch e trains on exactly the
  sequences with length <= L_e, batched by :class:`~lstmkit.data.collate.LengthBucketSampler` over that
  subset (similar lengths together, shuffled with ``seed + epoch``), as the full data is batched.
  (Bengio et al. 2009's "easy first", with length as the difficulty; Spitkovsky et al. 2010's
  "baby steps" for sentence length.)
- **Equal lengths** T (every subset would be all of them): epoch e trains on one random window of
  ``ceil(q_e * T)`` consecutive steps of every sequence (offsets drawn with ``seed + epoch``): a
  sequence-length warm-up (Li, Zhang & He 2022), the label kept for the window.

From epoch ``1 + ceil((1 - q0) * E)`` on, every epoch is the ordinary full one. Validation and
test data never go through the curriculum.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from ..checks import check_int
from .collate import LengthBucketSampler, SequenceBatches

__all__ = ["LengthCurriculum", "CurriculumBatches", "check_curriculum_batches", "check_curriculum_fields"]


def check_curriculum_fields(mode, start, epochs) -> tuple[float, int]:
    """TrainConfig's validation of ``curriculum``, ``curriculum_start`` and ``curriculum_epochs``;
    returns (start, epochs) as float and int."""
    if mode not in ("none", "length"):
        raise ValueError(f"curriculum must be 'none' or 'length', got {mode!r}")
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 < start <= 1:
        raise ValueError(f"curriculum_start must be a quantile in (0, 1], got {start!r}")
    return float(start), check_int("curriculum_epochs", epochs)


class LengthCurriculum:
    """The schedule above over the training ``lengths``."""

    def __init__(self, lengths, start: float = 0.3, epochs: int = 10) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1 or len(self.lengths) == 0:
            raise ValueError(f"lengths must be a non-empty 1-D sequence, got shape {self.lengths.shape}")
        self.start, self.epochs = check_curriculum_fields("length", start, epochs)
        self.sorted = np.sort(self.lengths)
        self.equal = bool(self.sorted[0] == self.sorted[-1])

    def quantile(self, epoch: int) -> float:
        """q_e for ``epoch`` (1-based)."""
        return min(1.0, self.start + (epoch - 1) / self.epochs)

    def max_length(self, epoch: int) -> int:
        """L_e (variable lengths) or the window length ceil(q_e * T) (equal lengths)."""
        q = self.quantile(epoch)
        if self.equal:
            return max(1, math.ceil(q * int(self.sorted[0]) - 1e-9))
        k = max(1, math.ceil(q * len(self.sorted) - 1e-9))
        return int(self.sorted[k - 1])

    def subset(self, epoch: int) -> np.ndarray:
        """Indices of the sequences epoch ``epoch`` trains on (all of them for equal lengths)."""
        if self.equal:
            return np.arange(len(self.lengths))
        return np.flatnonzero(self.lengths <= self.max_length(epoch))

    def schedule(self, epochs: int) -> list[dict]:
        """``{"epoch", "quantile", "max_length", "samples"}`` for epochs 1..``epochs`` (a run's record)."""
        return [{"epoch": e, "quantile": round(self.quantile(e), 6), "max_length": self.max_length(e),
                 "samples": int(len(self.subset(e)))} for e in range(1, epochs + 1)]


class CurriculumBatches:
    """``base``'s training batches under a :class:`LengthCurriculum` built from its lengths."""

    def __init__(self, base: SequenceBatches, start: float = 0.3, epochs: int = 10, seed: int = 0) -> None:
        if not isinstance(base, SequenceBatches):
            raise TypeError(f"CurriculumBatches needs SequenceBatches, got {type(base).__name__}")
        self.base, self.seed = base, check_int("seed", seed, minimum=0)
        self.curriculum = LengthCurriculum(base.lengths.numpy(), start, epochs)
        self.batch_size = base.sampler.batch_size

    def __len__(self) -> int:
        return len(self.base)

    def batches(self, epoch: int = 0) -> Iterator[tuple[Tensor, ...]]:
        c, b = self.curriculum, self.base
        if c.quantile(epoch) >= 1.0:
            yield from b.batches(epoch)
            return
        if c.equal:
            window = c.max_length(epoch)
            rng = np.random.default_rng([self.seed, epoch])
            for x, lengths, *rest in b.batches(epoch):
                offsets = torch.as_tensor(rng.integers(0, x.shape[1] - window + 1, size=x.shape[0]))
                steps = offsets[:, None] + torch.arange(window)[None, :]  # -> (B, window)
                x = torch.gather(x, 1, steps[..., None].expand(-1, -1, x.shape[2])) if x.dim() == 3 else \
                    torch.gather(x, 1, steps)
                yield (x, torch.full_like(lengths, window), *rest)
            return
        keep = c.subset(epoch)
        sampler = LengthBucketSampler(b.lengths.numpy()[keep], self.batch_size, shuffle=b.shuffle, seed=b.sampler.seed)
        sampler.set_epoch(epoch)
        for idx in sampler:
            index = torch.as_tensor(keep[idx])
            lengths = b.lengths[index]
            x = b.x[index, : int(lengths.max())]
            yield (x, lengths) if b.y is None else (x, lengths, b.y[index])


def check_curriculum_batches(train_batches) -> None:
    """``fit``'s check for ``train.curriculum``: the training batches must carry it (a
    :class:`CurriculumBatches`, possibly under an augmentation, whose ``batches`` method ``fit`` was
    given); a task whose batches do not cannot ignore the setting silently."""
    owner = getattr(train_batches, "__self__", None)
    while owner is not None and getattr(owner, "curriculum", None) is None:
        owner = getattr(owner, "base", None)
    if owner is None:
        raise ValueError("train.curriculum 'length' needs length-bucketed sequence batches (task classify); this "
                         "task's training batches do not support it: set train.curriculum to 'none'")
