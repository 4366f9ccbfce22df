"""Padded batches with per-sequence lengths, and torch's fused kernel run at its full speed on them.

``torch.nn.utils.rnn.pack_padded_sequence`` drops the CPU kernel off oneDNN onto a slower path.
:func:`fused_lstm_by_length` keeps oneDNN (cuDNN on GPU): the batch is sorted by length, time
is cut at each distinct length, and the fused kernel runs over each chunk on the sequences
still active in it, carrying their state (all layers at once). Each chunk is an ordinary
padded call, so results are exact; a sequence's final state is taken where it ends.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["check_lengths", "valid_mask", "reverse_padded", "fused_lstm_by_length"]


def check_lengths(lengths: Tensor | Sequence[int], batch: int, total: int) -> Tensor:
    """Validate ``lengths`` against a padded batch; returns an int64 CPU tensor of shape (B,)."""
    if isinstance(lengths, np.ndarray):
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
        lengths = torch.from_numpy(lengths.astype(np.int64))  # uint64 beyond int64 wraps negative: refused below
    if isinstance(lengths, Tensor):
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
        lens = lengths.detach().to("cpu", torch.int64)
    elif isinstance(lengths, (list, tuple)):
        for v in lengths:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"lengths must be a tensor or a sequence of ints, got an element {v!r}")
            if not -(2**63) <= int(v) < 2**63:
                raise ValueError(f"lengths must be <= the padded length T={total}, got {int(v)}")
        lens = torch.tensor([int(v) for v in lengths], dtype=torch.int64)
    else:
        raise TypeError(f"lengths must be a 1-D integer tensor, array or list of ints, got {type(lengths).__name__}")
    if lens.dim() != 1:
        raise ValueError(f"lengths must be 1-D with one entry per sequence, got shape {tuple(lens.shape)}")
    if lens.numel() != batch:
        raise ValueError(f"lengths has {lens.numel()} entries but the batch holds {batch} sequences")
    if batch and int(lens.min()) <= 0:
        raise ValueError(f"lengths must be >= 1, got min {int(lens.min())}")
    if batch and int(lens.max()) > total:
        raise ValueError(f"lengths must be <= the padded length T={total}, got max {int(lens.max())}")
    return lens


def valid_mask(lengths: Tensor, total: int, like: Tensor) -> Tensor:
    """(T, B, 1) mask, 1 where step t < length, in ``like``'s dtype and device."""
    steps = torch.arange(total).unsqueeze(1)
    return (steps < lengths.unsqueeze(0)).unsqueeze(-1).to(dtype=like.dtype, device=like.device)


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of a time-major (T, B, ...) batch within its own length.

    Steps past a sequence's length stay where they are. Applying it twice is the identity.
    """
    total = x.shape[0]
    steps = torch.arange(total).unsqueeze(1)  # (T, 1)
    idx = torch.where(steps < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - steps, steps)  # (T, B)
    idx = idx.to(x.device).view(total, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, idx)


def fused_lstm_by_length(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    lengths: Tensor,
    weights: list[Tensor],
    has_biases: bool,
    num_layers: int,
    dropout: float,
    train: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Unidirectional (stacked) LSTM over a padded time-major batch, exact per length.

    x (T, B, D); h0 (L, B, R); c0 (L, B, H); lengths (B,) int64 on CPU;
    weights in torch's flat order for L unidirectional layers.
    Returns output (T, B, R) zero past each length, h_n (L, B, R), c_n (L, B, H).
    """
    total, batch = x.shape[0], x.shape[1]
    lens_sorted, order = torch.sort(lengths, descending=True, stable=True)
    is_sorted = bool((order == torch.arange(batch)).all())
    if not is_sorted:
        dev_order = order.to(x.device)
        x, h0, c0 = x.index_select(1, dev_order), h0.index_select(1, dev_order), c0.index_select(1, dev_order)
    ends = torch.unique(lens_sorted).tolist()  # ascending distinct lengths
    active = [int((lens_sorted >= e).sum()) for e in ends]  # sorted prefix active in each chunk
    h, c = h0, c0
    outs, h_done, c_done = [], [], []
    start = 0
    for j, (end, n) in enumerate(zip(ends, active)):
        if n < h.shape[1]:
            h, c = h[:, :n], c[:, :n]
        out, h, c = torch.lstm(x[start:end, :n], (h.contiguous(), c.contiguous()), weights, has_biases,
                               num_layers, dropout, train, False, False)
        outs.append(F.pad(out, (0, 0, 0, batch - n)))  # -> (end - start, B, R)
        n_next = active[j + 1] if j + 1 < len(active) else 0
        h_done.append(h[:, n_next:n])
        c_done.append(c[:, n_next:n])
        start = end
    output = torch.cat(outs, dim=0)
    if start < total:
        output = F.pad(output, (0, 0, 0, 0, 0, total - start))
    h_n = torch.cat(h_done[::-1], dim=1)
    c_n = torch.cat(c_done[::-1], dim=1)
    if not is_sorted:
        inverse = torch.argsort(order).to(x.device)
        output, h_n, c_n = output.index_select(1, inverse), h_n.index_select(1, inverse), c_n.index_select(1, inverse)
    return output, h_n, c_n


def packed_indices(lens: Tensor, total: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """How a padded (T, B) batch with these lengths maps to packed rows (torch's
    ``PackedSequence.data`` layout: sequences sorted longest first, stable; step t holds the
    ``batch_sizes[t]`` sequences still running, one after the other). Returns, all int64 on CPU:
    ``order`` (B,), the sorted position's original sequence; ``batch_sizes`` (T,); ``flat`` (N,),
    each packed row's row in the padded batch seen as (T * B, ...); ``reverse`` (N,), the packed
    row holding the same sequence's step ``length - 1 - t`` (reversal within each length, its
    own inverse)."""
    # numpy: these dozen small index operations cost ~35 us there against ~80 us as torch ops
    lens = lens.to("cpu", torch.int64).numpy()
    order = np.argsort(-lens, kind="stable")  # longest first, ties in batch order
    lens_sorted = lens[order]
    steps = np.arange(total, dtype=np.int64)
    batch_sizes = (steps[:, None] < lens_sorted[None, :]).sum(1)
    offsets = np.cumsum(batch_sizes) - batch_sizes
    t_of = np.repeat(steps, batch_sizes)
    j_of = np.arange(t_of.size, dtype=np.int64) - offsets[t_of]
    flat = t_of * lens.size + order[j_of]
    reverse = offsets[lens_sorted[j_of] - 1 - t_of] + j_of
    return tuple(torch.from_numpy(a.astype(np.int64, copy=False)) for a in (order, batch_sizes, flat, reverse))
