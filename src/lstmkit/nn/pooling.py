"""Sequence pooling over padded, (bi)directional LSTM outputs, aware of each sequence's length.

Every pooler maps output (B, T, K*H) with lengths (B,) to (B, K*H) and reports ``out_features``.
Padding never enters a result:

- ``last``: the state after each direction has read the whole sequence -- the forward
  direction at step ``length - 1`` and the backward direction at step 0 (``output[:, -1]`` is
  wrong for padded batches and for the backward direction);
- ``mean``: the average over valid steps only;
- ``max``: the maximum over valid steps only;
- ``attention``: additive attention (Bahdanau et al. 2015; as used for classification by
  Yang et al. 2016): ``e_t = v^T tanh(W o_t + b)``, softmax over valid steps only,
  ``sum_t a_t o_t``; the weights of the last call are kept in ``last_weights`` (B, T).

``create_pool(name, in_features, num_directions)`` builds one by name; unknown names raise
``ValueError`` listing the valid ones.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from .names import unknown_name

__all__ = ["SequencePool", "LastPool", "MeanPool", "MaxPool", "AttentionPool", "create_pool", "list_pools", "length_mask"]


def length_mask(lengths: Tensor | None, batch: int, total: int, device) -> Tensor:
    """(B, T) bool mask, True at valid steps (all True when lengths is None)."""
    if lengths is None:
        return torch.ones(batch, total, dtype=torch.bool, device=device)
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > total):
        raise ValueError(f"lengths must lie in [1, T={total}], got [{int(lengths.min())}, {int(lengths.max())}]")
    return torch.arange(total, device=device).unsqueeze(0) < lengths.unsqueeze(1)


class SequencePool(nn.Module):
    """Base: ``forward(output (B, T, F), lengths (B,) | None) -> (B, F)``."""

    def __init__(self, in_features: int, num_directions: int = 1) -> None:
        super().__init__()
        if in_features <= 0 or num_directions not in (1, 2) or in_features % num_directions:
            raise ValueError(
                f"in_features must be a positive multiple of num_directions (1 or 2), got {in_features}, {num_directions}")
        self.in_features, self.num_directions = in_features, num_directions

    @property
    def out_features(self) -> int:
        return self.in_features

    def _check(self, output: Tensor, lengths: Tensor | None) -> Tensor:
        if output.dim() != 3 or output.shape[-1] != self.in_features:
            raise ValueError(f"output must be (B, T, {self.in_features}), got {tuple(output.shape)}")
        return length_mask(lengths, output.shape[0], output.shape[1], output.device)


class LastPool(SequencePool):
    def forward(self, output: Tensor, lengths: Tensor | None = None) -> Tensor:
        mask = self._check(output, lengths)
        last = mask.sum(1) - 1  # (B,) index of each sequence's last valid step
        rows = torch.arange(output.shape[0], device=output.device)
        fwd = output[rows, last]  # -> (B, F)
        if self.num_directions == 1:
            return fwd
        h = self.in_features // 2
        return torch.cat([fwd[:, :h], output[:, 0, h:]], dim=1)  # backward direction ends at step 0


class MeanPool(SequencePool):
    def forward(self, output: Tensor, lengths: Tensor | None = None) -> Tensor:
        mask = self._check(output, lengths).unsqueeze(-1).to(output.dtype)
        return (output * mask).sum(1) / mask.sum(1)


class MaxPool(SequencePool):
    def forward(self, output: Tensor, lengths: Tensor | None = None) -> Tensor:
        mask = self._check(output, lengths).unsqueeze(-1)
        return output.masked_fill(~mask, float("-inf")).amax(1)


class AttentionPool(SequencePool):
    def __init__(self, in_features: int, num_directions: int = 1, attention_size: int | None = None) -> None:
        super().__init__(in_features, num_directions)
        size = attention_size or in_features
        self.proj = nn.Linear(in_features, size)
        self.score = nn.Linear(size, 1, bias=False)
        self.last_weights: Tensor | None = None

    def forward(self, output: Tensor, lengths: Tensor | None = None) -> Tensor:
        mask = self._check(output, lengths)
        energy = self.score(torch.tanh(self.proj(output))).squeeze(-1)  # -> (B, T)
        weights = torch.softmax(energy.masked_fill(~mask, float("-inf")), dim=1)
        self.last_weights = weights.detach()
        return torch.bmm(weights.unsqueeze(1), output).squeeze(1)  # -> (B, F)


_POOLS: dict[str, Callable[..., SequencePool]] = {
    "last": LastPool,
    "mean": MeanPool,
    "max": MaxPool,
    "attention": AttentionPool,
}


def list_pools() -> list[str]:
    return sorted(_POOLS)


def create_pool(name: str, in_features: int, num_directions: int = 1, **kwargs) -> SequencePool:
    """A pooler by name: one of :func:`list_pools`."""
    if name not in _POOLS:
        raise unknown_name("pooling", name, _POOLS)
    return _POOLS[name](in_features, num_directions, **kwargs)
