"""Autoregressive image models: PixelRNN (Row LSTM, Diagonal BiLSTM), PixelCNN and an independent-pixel baseline.

For binary images ``x`` (B, 1, H, W) with values in {0, 1}, each model gives one Bernoulli logit
per pixel, the logit of pixel ``(i, j)`` computed from the pixels before it in raster order only,
so ``log p(x) = sum_ij log p(x_ij | x_<ij)`` and :meth:`nll` is the exact negative
log-likelihood in nats per image.

- ``pixel_rnn`` (van den Oord et al. 2016, arXiv:1601.06759, section 3): a 7x7 mask-A
  convolution, ``num_layers`` residual Row-LSTM or Diagonal-BiLSTM layers (2N -> N channels,
  a 1x1 convolution back to 2N, added to the layer input), then ReLU, 1x1 convolution, ReLU,
  1x1 convolution to one logit. What we changed: binary data with one sigmoid output per pixel
  (the paper's binarised-MNIST setting), spatial masks only (no R/G/B channel groups), and the
  sizes are small for 8x8 digits on a CPU. Receptive field (checked pixel by pixel in
  ``tests/nn/test_pixelrnn.py``): with Diagonal BiLSTM layers every earlier pixel except one, the
  last pixel of the row above, ``(i-1, W-1)``, for ``j < W - 1 - first_kernel // 2`` (no
  direction carries it: the mask-A features of its own row never contain it, and the
  right-to-left direction is shifted down past the current row) -- so "complete" up to that
  pixel, which the paper's construction shares; with Row LSTM layers a triangle above the pixel.
- ``pixel_cnn`` (same paper, section 3.4): the baseline of masked convolutions only -- a 7x7
  mask-A convolution, residual blocks (1x1 2N -> N, 3x3 mask B, 1x1 N -> 2N), the same output
  head. Its receptive field has the known blind spot to the upper right.
- ``independent_pixels``: one logit per pixel whatever the other pixels are. Its
  maximum-likelihood fit is the training mean of each pixel: :meth:`IndependentPixels.fit_mean`
  sets it in closed form (with a pseudo-count so pixels never seen on get a finite logit).

Every model: ``forward(x) -> logits (B, 1, H, W)``, ``nll(x) -> (B,)`` nats per image,
``sample(n, generator=None)`` and ``complete(x, rows_known)`` (pixel by pixel: one forward pass
per pixel, H*W passes per batch).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..checks import check_int
from ..nn.pixelrnn import DiagonalBiLSTM, MaskedConv2d, RowLSTM
from .registry import register_model

__all__ = ["AutoregressiveImageModel", "PixelRNN", "PixelCNN", "IndependentPixels", "check_binary_images"]

Layer = Literal["row", "diagonal"]


def check_binary_images(x, height: int, width: int, name: str = "x") -> Tensor:
    """``x`` as a float tensor (B, 1, H, W) of 0s and 1s; (B, H, W) is accepted. Raises
    TypeError/ValueError naming what is wrong: not a tensor, the wrong size, values other than 0/1."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of binary images (B, 1, {height}, {width}), got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must be binary images (B, 1, H, W) or (B, H, W) with B >= 1, got shape {tuple(x.shape)}")
    if tuple(x.shape[2:]) != (height, width):
        raise ValueError(f"{name} has images of {x.shape[2]}x{x.shape[3]} (HxW) but this model is for "
                         f"{height}x{width}")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    if not ((x == 0) | (x == 1)).all():
        bad = x[(x != 0) & (x != 1)][0].item()
        raise ValueError(f"{name} must hold binary pixels (0 or 1), found {bad!r}; binarise first "
                         "(e.g. lstmkit.data.binary.binarize at threshold 0.5)")
    return x


class AutoregressiveImageModel(nn.Module):
    """What the three models share: the likelihood, sampling and completion from ``forward``'s logits."""

    height: int
    width: int

    def _images(self, x) -> Tensor:
        """Checked binary images (B, 1, H, W) in the dtype and on the device of the weights."""
        p = next(self.parameters())
        return check_binary_images(x, self.height, self.width).to(p.device, p.dtype)

    def nll(self, x: Tensor) -> Tensor:
        """x (B, 1, H, W) binary -> (B,) negative log-likelihood in nats per image."""
        x = self._images(x)
        logits = self(x)  # -> (B, 1, H, W)
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=(1, 2, 3))

    @torch.no_grad()
    def _fill(self, x: Tensor, start: int, generator: torch.Generator | None) -> Tensor:
        """Sample pixels ``start..H*W-1`` (raster order) of ``x`` (B, 1, H, W) in place, one at a time."""
        for p in range(start, self.height * self.width):
            i, j = divmod(p, self.width)
            prob = torch.sigmoid(self(x)[:, 0, i, j])  # -> (B,)
            x[:, 0, i, j] = torch.bernoulli(prob, generator=generator)
        return x

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n binary images (n, 1, H, W), drawn pixel by pixel in raster order."""
        check_int("n", n)
        was_training = self.training
        self.eval()
        try:
            p = next(self.parameters())
            return self._fill(p.new_zeros(n, 1, self.height, self.width), 0, generator)
        finally:
            self.train(was_training)

    def complete(self, x: Tensor, rows_known: int, generator: torch.Generator | None = None) -> Tensor:
        """Keep the top ``rows_known`` rows of binary images x (B, 1, H, W) and sample the rest
        given them -> (B, 1, H, W)."""
        x = self._images(x)
        if isinstance(rows_known, bool) or not isinstance(rows_known, int) or not 0 <= rows_known <= self.height:
            raise ValueError(f"rows_known must be an int in [0, {self.height}] (the image height), got {rows_known!r}")
        was_training = self.training
        self.eval()
        try:
            out = x.clone()
            out[:, :, rows_known:] = 0
            return self._fill(out, rows_known * self.width, generator)
        finally:
            self.train(was_training)


def _check_size(height, width) -> None:
    check_int("height", height)
    check_int("width", width)


class _Head(nn.Sequential):
    """ReLU, 1x1 convolution (mask B), ReLU, 1x1 convolution to one logit per pixel."""

    def __init__(self, channels: int, output_size: int) -> None:
        super().__init__(nn.ReLU(), MaskedConv2d(channels, output_size, 1, mask="B"), nn.ReLU(),
                         MaskedConv2d(output_size, 1, 1, mask="B"))


class _ResidualLSTM(nn.Module):
    """x (B, 2N, H, W) -> x + conv1x1(LSTM(x)): the paper's residual connection around a PixelRNN layer."""

    def __init__(self, layer: Layer, hidden_size: int, kernel_size: int) -> None:
        super().__init__()
        c = 2 * hidden_size
        self.lstm = (RowLSTM(c, hidden_size, kernel_size) if layer == "row" else DiagonalBiLSTM(c, hidden_size))
        self.proj = MaskedConv2d(hidden_size, c, 1, mask="B")

    def forward(self, x: Tensor) -> Tensor:
        return x + self.proj(self.lstm(x))  # (B, 2N, H, W) -> (B, N, H, W) -> (B, 2N, H, W)


class PixelRNN(AutoregressiveImageModel):
    """PixelRNN with Row LSTM or Diagonal BiLSTM layers for binary images of ``height`` x ``width``.

    ``hidden_size`` N: LSTM channels (the residual stream has 2N); ``kernel_size``: the Row LSTM's
    k (odd; unused by the Diagonal BiLSTM, whose kernels are fixed by the paper);
    ``first_kernel``: the mask-A convolution's size; ``output_size``: the head's width.
    """

    def __init__(self, *, height: int = 8, width: int = 8, layer: Layer = "diagonal", hidden_size: int = 32,
                 num_layers: int = 2, kernel_size: int = 3, first_kernel: int = 7, output_size: int = 64) -> None:
        super().__init__()
        _check_size(height, width)
        if layer not in ("row", "diagonal"):
            raise ValueError(f"layer must be 'row' (Row LSTM) or 'diagonal' (Diagonal BiLSTM), got {layer!r}")
        for name, v in (("hidden_size", hidden_size), ("num_layers", num_layers), ("output_size", output_size)):
            check_int(name, v)
        self.height, self.width, self.layer = height, width, layer
        self.first = MaskedConv2d(1, 2 * hidden_size, first_kernel, mask="A")
        self.layers = nn.ModuleList(_ResidualLSTM(layer, hidden_size, kernel_size) for _ in range(num_layers))
        self.head = _Head(2 * hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, 1, H, W) -> logits (B, 1, H, W); logit (i, j) depends on pixels before (i, j) only."""
        h = self.first(x)  # -> (B, 2N, H, W)
        for layer in self.layers:
            h = layer(h)  # -> (B, 2N, H, W)
        return self.head(h)  # -> (B, 1, H, W)


class _ResidualConv(nn.Module):
    """PixelCNN residual block: x + 1x1(3x3 mask B(1x1(x))), ReLU before each convolution."""

    def __init__(self, hidden_size: int, kernel_size: int) -> None:
        super().__init__()
        c = 2 * hidden_size
        self.body = nn.Sequential(nn.ReLU(), MaskedConv2d(c, hidden_size, 1, mask="B"), nn.ReLU(),
                                  MaskedConv2d(hidden_size, hidden_size, kernel_size, mask="B"), nn.ReLU(),
                                  MaskedConv2d(hidden_size, c, 1, mask="B"))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)  # -> (B, 2N, H, W)


class PixelCNN(AutoregressiveImageModel):
    """PixelCNN: a 7x7 mask-A convolution, ``num_layers`` residual masked-convolution blocks, the head."""

    def __init__(self, *, height: int = 8, width: int = 8, hidden_size: int = 32, num_layers: int = 4,
                 kernel_size: int = 3, first_kernel: int = 7, output_size: int = 64) -> None:
        super().__init__()
        _check_size(height, width)
        for name, v in (("hidden_size", hidden_size), ("num_layers", num_layers), ("output_size", output_size)):
            check_int(name, v)
        self.height, self.width = height, width
        self.first = MaskedConv2d(1, 2 * hidden_size, first_kernel, mask="A")
        self.layers = nn.Sequential(*(_ResidualConv(hidden_size, kernel_size) for _ in range(num_layers)))
        self.head = _Head(2 * hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, 1, H, W) -> logits (B, 1, H, W); logit (i, j) depends on pixels before (i, j) only."""
        return self.head(self.layers(self.first(x)))  # -> (B, 2N, H, W) -> (B, 2N, H, W) -> (B, 1, H, W)


class IndependentPixels(AutoregressiveImageModel):
    """Every pixel an independent Bernoulli: one learned logit per pixel, the input is ignored."""

    def __init__(self, *, height: int = 8, width: int = 8) -> None:
        super().__init__()
        _check_size(height, width)
        self.height, self.width = height, width
        self.logits = nn.Parameter(torch.zeros(1, 1, height, width))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, 1, H, W) -> logits (B, 1, H, W), the same for every image."""
        return self.logits.expand(x.shape[0], 1, self.height, self.width)

    @torch.no_grad()
    def fit_mean(self, x: Tensor, pseudo_count: float = 0.5) -> "IndependentPixels":
        """The maximum-likelihood fit in closed form: logit of (ones + a) / (n + 2a) per pixel of
        the binary training images x (N, 1, H, W); ``pseudo_count`` a > 0 keeps the logits finite."""
        x = self._images(x)
        if isinstance(pseudo_count, bool) or not isinstance(pseudo_count, (int, float)) or not pseudo_count > 0:
            raise ValueError(f"pseudo_count must be a positive number, got {pseudo_count!r}")
        p = (x.sum(0, keepdim=True) + pseudo_count) / (x.shape[0] + 2 * pseudo_count)  # -> (1, 1, H, W)
        self.logits.copy_(torch.logit(p.double()).float())
        return self

    @torch.no_grad()
    def _fill(self, x: Tensor, start: int, generator: torch.Generator | None) -> Tensor:
        """All remaining pixels at once: they do not depend on each other."""
        draw = torch.bernoulli(torch.sigmoid(self.logits).expand_as(x).contiguous(), generator=generator)
        flat, new = x.view(x.shape[0], -1), draw.view(x.shape[0], -1)
        flat[:, start:] = new[:, start:]
        return x


@register_model("pixel_rnn", arguments=PixelRNN, task="generate")
def pixel_rnn(**kwargs) -> PixelRNN:
    """PixelRNN (van den Oord 2016) on binary images: layer row (Row LSTM) or diagonal (Diagonal BiLSTM)."""
    return PixelRNN(**kwargs)


@register_model("pixel_cnn", arguments=PixelCNN, task="generate")
def pixel_cnn(**kwargs) -> PixelCNN:
    """PixelCNN (van den Oord 2016) on binary images: masked convolutions with residual blocks."""
    return PixelCNN(**kwargs)


@register_model("independent_pixels", arguments=IndependentPixels, task="generate")
def independent_pixels(**kwargs) -> IndependentPixels:
    """Independent per-pixel Bernoulli baseline: one logit per pixel (closed-form fit: the training mean)."""
    return IndependentPixels(**kwargs)
