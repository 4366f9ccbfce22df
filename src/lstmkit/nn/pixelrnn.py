"""PixelRNN layers (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural
Networks", arXiv:1601.06759): masked convolutions, skewing, the Row LSTM and the Diagonal BiLSTM.

An autoregressive image model predicts pixel ``(i, j)`` from the pixels before it in raster order
(rows top to bottom, each row left to right). Every layer here keeps that property:

- :class:`MaskedConv2d` zeroes the kernel taps at and after the centre in raster order. Mask
  ``"A"`` (the first layer, which sees the image itself) also zeroes the centre tap, so output
  ``(i, j)`` depends on input pixels strictly before ``(i, j)``; mask ``"B"`` (every later layer,
  whose input at ``(i, j)`` already only depends on pixels before it) keeps the centre. We
  implement the spatial masks only, i.e. one data channel (binary or grey images); the paper's
  R/G/B channel groups are not implemented.
- :class:`RowLSTM` runs an LSTM down the rows: the input-to-state part is a ``1 x k``
  convolution along the current row with mask B (position ``j`` sees row features at columns
  ``<= j``), the state-to-state part a ``1 x k`` convolution over the whole previous row's
  hidden state. Its receptive field is a triangle above the pixel (plus the row to its left).
- :class:`DiagonalBiLSTM` skews the map (:func:`skew`: row ``i`` moves ``i`` columns right) so
  each diagonal becomes a column, and runs an LSTM along the columns: input-to-state is a
  ``1 x 1`` convolution (mask B), state-to-state a ``2 x 1`` convolution over the previous column
  (which holds the left and the upper neighbour). Two directions: the right-to-left one runs on
  the horizontally flipped map and its output is shifted down one row before being added, so it
  only brings in rows above (unshifted, it would see the pixel to the right through the mask-A
  features). Together they see every earlier pixel.

Shapes: B batch, C input channels, N hidden channels, H x W pixels, W' = W + H - 1 (skewed).
Images have no padding inside a batch, so these layers take no lengths (all images in a batch
share one size).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..checks import check_int, check_pair

__all__ = ["MaskedConv2d", "skew", "unskew", "RowLSTM", "DiagonalBiLSTM"]

Mask = Literal["A", "B"]


def _check_odd(name: str, value, sizes: tuple[int, ...]) -> None:
    if any(k % 2 == 0 for k in sizes):
        raise ValueError(f"{name} must be odd (the centre tap is the pixel itself), got {value!r}")


class MaskedConv2d(nn.Conv2d):
    """A same-size 2D convolution whose kernel sees only taps before the centre in raster order.

    ``mask="A"``: rows above the centre and the centre row left of it (excludes the pixel
    itself); ``mask="B"``: the same plus the centre tap. ``kernel_size`` is odd (int or
    (kh, kw)); padding keeps H x W. The mask is a buffer and is applied on every forward, so
    masked weights get exactly zero gradient and stay inert whatever the optimiser does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], mask: Mask,
                 bias: bool = True) -> None:
        if mask not in ("A", "B"):
            raise ValueError(f"mask must be 'A' (excludes the centre pixel: first layer) or 'B' (includes it), got {mask!r}")
        kh, kw = check_pair("kernel_size", kernel_size)
        _check_odd("kernel_size", kernel_size, (kh, kw))
        super().__init__(check_int("in_channels", in_channels), check_int("out_channels", out_channels),
                         (kh, kw), padding=(kh // 2, kw // 2), bias=bias)
        m = torch.ones(kh, kw)
        m[kh // 2, kw // 2 + (mask == "B"):] = 0
        m[kh // 2 + 1:] = 0
        self.mask_type = mask
        self.register_buffer("mask", m, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> (B, out_channels, H, W)."""
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask={self.mask_type}"


def skew(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H, W + H - 1): row ``i`` shifted ``i`` columns right, zeros elsewhere.

    Column ``c`` of the result holds the diagonal ``{(i, c - i)}`` of the input."""
    B, C, H, W = x.shape
    x = F.pad(x, (0, H))  # -> (B, C, H, W + H)
    x = x.reshape(B, C, H * (W + H))[..., : H * (W + H - 1)]
    return x.reshape(B, C, H, W + H - 1)


def unskew(x: Tensor, width: int) -> Tensor:
    """(B, C, H, width + H - 1) -> (B, C, H, width): the inverse of :func:`skew`."""
    B, C, H, Ws = x.shape
    if Ws != width + H - 1:
        raise ValueError(f"a skewed map of height {H} and width {Ws} comes from width {Ws - H + 1}, not {width}")
    x = F.pad(x.reshape(B, C, H * Ws), (0, H))  # -> (B, C, H * (width + H))
    return x.reshape(B, C, H, width + H)[..., :width]


def _lstm_update(gates: Tensor, c: Tensor, dim: int = 1) -> tuple[Tensor, Tensor]:
    """One LSTM update from pre-activations with 4N gates along ``dim`` in torch's order (i, f, g, o)."""
    sig = torch.sigmoid(gates)
    i, f, _, o = sig.chunk(4, dim=dim)
    g = torch.tanh(gates.narrow(dim, 2 * c.shape[dim], c.shape[dim]))
    c = f * c + i * g
    return o * torch.tanh(c), c


class RowLSTM(nn.Module):
    """Row LSTM: one LSTM step per image row, top to bottom, convolutional along the row.

    ``kernel_size`` (odd) is the width k of both the masked input-to-state convolution along the
    current row and the state-to-state convolution over the previous row.
    """

    def __init__(self, in_channels: int, hidden_size: int, kernel_size: int = 3) -> None:
        super().__init__()
        k = check_int("kernel_size", kernel_size)
        _check_odd("kernel_size", kernel_size, (k,))
        self.hidden_size = check_int("hidden_size", hidden_size)
        N = self.hidden_size
        self.input_to_state = MaskedConv2d(in_channels, 4 * N, (1, k), mask="B")
        self.state_to_state = nn.Conv1d(N, 4 * N, k, padding=k // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> (B, N, H, W); output (i, j) depends on input (i', j') with i' < i or
        (i' = i and j' <= j)."""
        B, _, H, W = x.shape
        s = self.input_to_state(x)  # -> (B, 4N, H, W)
        h = s.new_zeros(B, self.hidden_size, W)
        c = torch.zeros_like(h)
        rows = []
        for s_i in s.unbind(2):  # unbind, not s[:, :, i]: one gradient copy for all rows, not one per row
            h, c = _lstm_update(s_i + self.state_to_state(h), c)  # -> (B, N, W)
            rows.append(h)
        return torch.stack(rows, dim=2)  # -> (B, N, H, W)


class DiagonalBiLSTM(nn.Module):
    """Diagonal BiLSTM: two diagonal LSTMs (left to right, and right to left shifted down a row), summed.

    Both directions run in one loop over the diagonals (a grouped state-to-state convolution), so
    the layer takes W + H - 1 steps, not twice that.
    """

    def __init__(self, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = N = check_int("hidden_size", hidden_size)
        self.input_to_state = MaskedConv2d(in_channels, 4 * N, 1, mask="B")  # left to right
        self.input_to_state_reverse = MaskedConv2d(in_channels, 4 * N, 1, mask="B")  # right to left
        # a 2x1 convolution over the previous diagonal (rows i-1 and i), one group per direction
        self.state_to_state = nn.Conv1d(2 * N, 8 * N, 2, groups=2, bias=False)

    def directions(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, C, H, W) -> (left, right) each (B, N, H, W), before the shift: left (i, j) depends on
        input (i', j') with i' <= i, j' <= j; right (i, j) on i' <= i, j' >= j."""
        B, _, H, W = x.shape
        N = self.hidden_size
        s = torch.stack([skew(self.input_to_state(x)), skew(self.input_to_state_reverse(x.flip(3)))], dim=1)
        # -> (B, 2, 4N, H, W'): direction 0 on the image, direction 1 on the mirrored image
        h = s.new_zeros(B, 2, N, H)
        c = torch.zeros_like(h)
        columns = []
        for s_col in s.unbind(4):  # one gradient copy for all columns, not one per column
            above = self.state_to_state(F.pad(h.reshape(B, 2 * N, H), (1, 0)))  # -> (B, 8N, H)
            h, c = _lstm_update(s_col + above.view(B, 2, 4 * N, H), c, dim=2)  # -> (B, 2, N, H)
            columns.append(h)
        out = unskew(torch.stack(columns, dim=4).reshape(B, 2 * N, H, -1), W)  # -> (B, 2N, H, W)
        return out[:, :N], out[:, N:].flip(3)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> (B, N, H, W); output (i, j) depends on input (i', j') with i' < i or
        (i' = i and j' <= j)."""
        left, right = self.directions(x)  # -> (B, N, H, W) each
        right = F.pad(right[:, :, :-1], (0, 0, 1, 0))  # shifted down one row: sees rows < i only
        return left + right  # -> (B, N, H, W)
