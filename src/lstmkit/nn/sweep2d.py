"""ReNet 2D sweeps (Visin et al. 2015, "ReNet: A Recurrent Neural Network Based Alternative to
Convolutional Networks").

A :class:`ReNetLayer` cuts the image into non-overlapping ``ph x pw`` patches, runs a
bidirectional LSTM along one axis of the patch grid (every column is a sequence for a vertical
sweep: top-down and bottom-up), then a second bidirectional LSTM along the other axis over the
first sweep's features. After the first sweep a position has seen its whole column; after the
second, the whole image. Both sweeps are :class:`lstmkit.nn.LSTM` layers, so every variant
(peephole, layer norm, dropouts, zoneout, forget bias) applies.

Images of different sizes share a batch by padding to the largest one and passing ``sizes``:
each sweep then runs over each image's own rows/columns (the LSTM's ``lengths``), and the output
is zero outside each image. Shapes: B batch, C channels, H x W pixels, Hp x Wp patches
(H / ph, W / pw), K = 2 directions, N hidden units per direction.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ..checks import check_int, check_pair
from .lstm import LSTM

__all__ = ["ReNetLayer", "patchify"]

Axis = Literal["vertical", "horizontal"]
_AXES = ("vertical", "horizontal")


def patchify(x: Tensor, patch: tuple[int, int]) -> Tensor:
    """(B, C, H, W) -> (B, C*ph*pw, Hp, Wp): each patch's pixels stacked as features."""
    B, C, H, W = x.shape
    ph, pw = patch
    if H % ph or W % pw:
        raise ValueError(f"image size {H}x{W} (HxW) is not divisible by the patch size {ph}x{pw}")
    x = x.reshape(B, C, H // ph, ph, W // pw, pw).permute(0, 1, 3, 5, 2, 4)  # -> (B, C, ph, pw, Hp, Wp)
    return x.reshape(B, C * ph * pw, H // ph, W // pw)


class ReNetLayer(nn.Module):
    """Two bidirectional LSTM sweeps over a patch grid.

    ``forward(x, sizes=None)``: x (B, C, H, W) with H, W divisible by the patch size; ``sizes``
    (B, 2) the valid (height, width) in pixels of each padded image (multiples of the patch
    size). Returns (B, 2N, Hp, Wp). ``first`` names the axis of the first sweep (the paper sweeps
    vertically first). ``lstm_kwargs`` go to both :class:`~lstmkit.nn.LSTM` layers.
    """

    def __init__(self, in_channels: int, hidden_size: int, patch: int | tuple[int, int] = 1,
                 first: Axis = "vertical", **lstm_kwargs) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels)
        if first not in _AXES:
            raise ValueError(f"first must be one of {_AXES}, got {first!r}")
        for key in ("batch_first", "bidirectional", "num_layers", "input_size", "hidden_size"):
            if key in lstm_kwargs:
                raise ValueError(f"{key} is fixed by ReNetLayer (one bidirectional layer per sweep); remove it")
        self.in_channels, self.hidden_size, self.patch, self.first = in_channels, hidden_size, check_pair("patch", patch), first
        self.out_channels = 2 * hidden_size
        features = in_channels * self.patch[0] * self.patch[1]
        self.sweep1 = LSTM(features, hidden_size, bidirectional=True, batch_first=True, **lstm_kwargs)
        self.sweep2 = LSTM(2 * hidden_size, hidden_size, bidirectional=True, batch_first=True, **lstm_kwargs)

    @property
    def second(self) -> Axis:
        return "horizontal" if self.first == "vertical" else "vertical"

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.hidden_size}, patch={self.patch}, first={self.first!r}"

    def sweep(self, rnn: LSTM, x: Tensor, axis: Axis, sizes: Tensor | None = None) -> Tensor:
        """One bidirectional sweep of ``rnn`` along ``axis``: (B, D, Hp, Wp) -> (B, 2N, Hp, Wp);
        ``sizes`` (B, 2) in patches."""
        B, D, Hp, Wp = x.shape
        if axis == "vertical":  # every column is a sequence running down the rows
            seq = x.permute(0, 3, 2, 1).reshape(B * Wp, Hp, D)  # -> (B*Wp, Hp, D)
            lengths = None if sizes is None else sizes[:, 0].repeat_interleave(Wp)
        else:  # every row is a sequence running along the columns
            seq = x.permute(0, 2, 3, 1).reshape(B * Hp, Wp, D)  # -> (B*Hp, Wp, D)
            lengths = None if sizes is None else sizes[:, 1].repeat_interleave(Hp)
        out, _ = rnn(seq, lengths=lengths)  # -> (B*Wp, Hp, 2N) or (B*Hp, Wp, 2N)
        if axis == "vertical":
            return out.reshape(B, Wp, Hp, -1).permute(0, 3, 2, 1)  # -> (B, 2N, Hp, Wp)
        return out.reshape(B, Hp, Wp, -1).permute(0, 3, 1, 2)

    def forward(self, x: Tensor, sizes: Tensor | None = None) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be (B, C={self.in_channels}, H, W), got shape {tuple(x.shape)}")
        grid = None
        if sizes is not None:
            grid = self._grid_sizes(sizes, x)
        p = patchify(x, self.patch)  # -> (B, C*ph*pw, Hp, Wp)
        if grid is not None and bool((grid == torch.tensor(p.shape[2:], device=grid.device)).all()):
            grid = None  # nothing is padded
        y = self.sweep(self.sweep1, p, self.first, grid)  # -> (B, 2N, Hp, Wp)
        y = self.sweep(self.sweep2, y, self.second, grid)  # -> (B, 2N, Hp, Wp)
        if grid is not None:
            rows = torch.arange(p.shape[2], device=x.device)[None, :, None] < grid[:, 0, None, None].to(x.device)
            cols = torch.arange(p.shape[3], device=x.device)[None, None, :] < grid[:, 1, None, None].to(x.device)
            y = y * (rows & cols).unsqueeze(1).to(y.dtype)
        return y

    def _grid_sizes(self, sizes, x: Tensor) -> Tensor:
        s = torch.as_tensor(sizes)
        B, _, H, W = x.shape
        if s.shape != (B, 2) or s.dtype.is_floating_point or s.dtype == torch.bool:
            raise ValueError(f"sizes must be integer (B={B}, 2) valid (height, width) per image, got "
                             f"{tuple(s.shape)} {s.dtype}")
        ph, pw = self.patch
        s = s.to("cpu", torch.int64)
        if bool(((s[:, 0] % ph) != 0).any() or ((s[:, 1] % pw) != 0).any()):
            raise ValueError(f"sizes must be multiples of the patch size {ph}x{pw}, got {s.tolist()}")
        if bool((s < 1).any() or (s[:, 0] > H).any() or (s[:, 1] > W).any()):
            raise ValueError(f"sizes must be in [1, {H}] x [1, {W}] (the padded image), got {s.tolist()}")
        return torch.stack([s[:, 0] // ph, s[:, 1] // pw], dim=1)
