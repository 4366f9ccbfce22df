"""Semantic segmentation models: ReSeg-style (ReNet encoder + upsampling decoder) and a matched fully convolutional baseline.

ReSeg (Visin et al. 2016, "ReSeg: A Recurrent Neural Network-based Model for Semantic
Segmentation"): a stack of ReNet layers (Visin et al. 2015; :class:`lstmkit.nn.ReNetLayer`,
each two bidirectional LSTM sweeps over a patch grid, so every position sees the whole image)
encodes the image at 1/(p1*p2*...) resolution, and transposed convolutions with kernel = stride
= each layer's patch size upsample back to full resolution, where a 1x1 convolution gives the
per-pixel class logits. What we changed: ReSeg starts from pretrained VGG-16 features; here the
ReNet layers read either the pixels (the default) or the output of a small convolutional stem
trained with them (``stem_channels``), and the input image is concatenated to the upsampled
features before a 3x3 convolution (``input_skip``), so thin strokes keep full-resolution edges.

``fcn_segmenter`` is the baseline: the same decoder and head over a convolutional encoder
(two 3x3 convolutions + batch norm + ReLU per level, then 2x2 max pooling), sized by ``width``;
:func:`fcn_width_for` picks the width whose parameter count is closest to a target (the ReSeg
model's), so the comparison is at a matched size.

``stem_channels`` gives ReSeg a convolutional front end as in the paper (which reads VGG-16
features): one block of two 3x3 convolutions + batch norm + ReLU at full resolution, the same
block the baseline's first level uses, before the first ReNet layer. With it, the ReNet layers
read local stroke features instead of raw 2x2 pixel patches; the matched baseline grows with it.
A list, e.g. ``[16, 32]``, gives VGG-like levels (a block per entry, 2x2 max pooling between
them), which the decoder undoes with one more transposed convolution per pooling.
``variants`` (a mapping, as in every lstmkit model) gives the sweeps' LSTMs lstmkit's variants,
e.g. ``{"forget_bias": 1.0}``.

Both models own their loss (:meth:`loss`: per-pixel cross-entropy) and decoding (:meth:`predict`).
Shapes: B batch, C image channels, H x W pixels, K classes, F features.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..nn import ReNetLayer, parse_variants
from ..checks import check_int
from .registry import register_model

__all__ = ["ReSeg", "FCNSegmenter", "fcn_width_for", "count_parameters"]


def _int_list(name: str, values, length: int | None = None) -> list[int]:
    if isinstance(values, int) or not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name} must be a non-empty list of positive ints, got {values!r}")
    out = [check_int(f"{name}[{i}]", v) for i, v in enumerate(values)]
    if length is not None and len(out) != length:
        raise ValueError(f"{name} must have {length} entries (one per encoder layer), got {len(out)}")
    return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class _Segmenter(nn.Module):
    """Shared by both models: a decoder of transposed convolutions, the input skip and the head."""

    in_channels: int
    num_classes: int
    stride: int  # total downsampling of the encoder

    def _build_decoder(self, factors: Sequence[int], encoded: int, decoder: int, input_skip: bool) -> None:
        """Transposed convolutions undoing ``factors`` (the encoder's downsampling steps) from
        ``encoded`` to ``decoder`` channels, the optional input skip, a 3x3 fusion and the 1x1 head."""
        ups, width = [], encoded
        for factor in reversed(factors):  # undo the encoder's downsampling, deepest first
            ups += [nn.ConvTranspose2d(width, decoder, kernel_size=factor, stride=factor), nn.ReLU(inplace=True)]
            width = decoder
        self.decoder = nn.Sequential(*ups)
        self.input_skip = input_skip
        fuse_in = decoder + (self.in_channels if input_skip else 0)
        self.fuse = nn.Sequential(nn.Conv2d(fuse_in, decoder, 3, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(decoder, self.num_classes, 1)

    def encode(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, H, W), H and W multiples of ``stride`` -> logits (B, K, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be (B, C={self.in_channels}, H, W), got shape {tuple(x.shape)}")
        if x.shape[2] % self.stride or x.shape[3] % self.stride:
            raise ValueError(f"image size {x.shape[2]}x{x.shape[3]} (HxW) must be a multiple of {self.stride} "
                             "(the encoder's total downsampling)")
        z = self.encode(x)  # -> (B, F, H/stride, W/stride)
        z = self.decoder(z)  # -> (B, D, H, W)
        if self.input_skip:
            z = torch.cat([z, x], dim=1)  # -> (B, D + C, H, W)
        return self.head(self.fuse(z))  # -> (B, K, H, W)

    def loss(self, x: Tensor, masks: Tensor, weight: Tensor | None = None) -> Tensor:
        """Mean per-pixel cross-entropy; masks (B, H, W) int64 class indices; ``weight`` (K,)
        optional per-class weights (the mean is then weighted: sum w[y] * nll / sum w[y])."""
        if weight is not None and (weight.dim() != 1 or weight.shape[0] != self.num_classes):
            raise ValueError(f"weight must be a ({self.num_classes},) tensor of class weights, got shape "
                             f"{tuple(weight.shape)}")
        return F.cross_entropy(self(x), masks, weight=weight)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> labels (B, H, W) int64."""
        return self(x).argmax(dim=1)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ReSeg(_Segmenter):
    """ReNet layers (patch p_i, hidden N_i per direction) -> transposed convolutions -> logits."""

    def __init__(self, in_channels: int = 1, num_classes: int = 11, hidden_sizes: Sequence[int] = (32, 32),
                 patches: Sequence[int] = (2, 2), decoder_channels: int = 32, input_skip: bool = True,
                 first: str = "vertical", dropout: float = 0.0, norm: bool = False,
                 stem_channels: int | Sequence[int] | None = None, variants: dict | None = None) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.num_classes = check_int("num_classes", num_classes)
        hidden = _int_list("hidden_sizes", hidden_sizes)
        patch = _int_list("patches", patches, len(hidden))
        if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.stride = 1
        width = in_channels
        self.stem = nn.Identity()
        factors = []  # the encoder's downsampling steps, undone by the decoder
        if stem_channels is not None:
            if isinstance(stem_channels, int) and not isinstance(stem_channels, bool):
                stem_channels = [check_int("stem_channels", stem_channels)]
            blocks = []
            for i, c in enumerate(_int_list("stem_channels", stem_channels)):
                if i:  # VGG-like levels: 2x2 max pooling between the blocks
                    blocks.append(nn.MaxPool2d(2))
                    factors.append(2)
                    self.stride *= 2
                blocks.append(_conv_block(width, c))
                width = c
            self.stem = blocks[0] if len(blocks) == 1 else nn.Sequential(*blocks)
        lstm_kwargs = parse_variants(variants).to_dict()  # lstmkit LSTM variants of every sweep
        layers, norms = [], []
        for h, p in zip(hidden, patch):
            layers.append(ReNetLayer(width, h, patch=p, first=first, **lstm_kwargs))
            norms.append(nn.BatchNorm2d(2 * h) if norm else nn.Identity())
            width, self.stride = 2 * h, self.stride * p
        self.encoder = nn.ModuleList(layers)
        self.norms = nn.ModuleList(norms)
        self.dropout = nn.Dropout(dropout)
        self._build_decoder(factors + patch, width, check_int("decoder_channels", decoder_channels), input_skip)

    def encode(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # -> (B, S_last, H / 2^(levels-1), W / 2^(levels-1)) with stem levels S, else unchanged
        for layer, norm in zip(self.encoder, self.norms):
            x = norm(layer(x))  # -> (B, 2N_i, H_i / p_i, W_i / p_i)
        return self.dropout(x)


class FCNSegmenter(_Segmenter):
    """``levels`` conv blocks (widths ``width``, 2x, 4x, 4x...) with 2x2 max pooling between them -> the same decoder."""

    def __init__(self, in_channels: int = 1, num_classes: int = 11, width: int = 32, levels: int = 3,
                 decoder_channels: int = 32, input_skip: bool = True) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.num_classes = check_int("num_classes", num_classes)
        width, levels = check_int("width", width), check_int("levels", levels)
        widths = [width * min(2 ** i, 4) for i in range(levels)]
        blocks, cin = [], in_channels
        for i, w in enumerate(widths):
            if i:
                blocks.append(nn.MaxPool2d(2))
            blocks.append(_conv_block(cin, w))
            cin = w
        self.encoder = nn.Sequential(*blocks)
        self.stride = 2 ** (levels - 1)
        self._build_decoder([2] * (levels - 1), cin, check_int("decoder_channels", decoder_channels),
                            input_skip)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # -> (B, width * 2^(levels-1), H / 2^(levels-1), W / 2^(levels-1))


def fcn_width_for(parameters: int, **kwargs) -> int:
    """The ``width`` of :class:`FCNSegmenter` (other arguments in ``kwargs``) whose parameter
    count is closest to ``parameters``."""
    check_int("parameters", parameters)
    best, best_gap = 1, None
    for width in range(1, 257):
        gap = abs(count_parameters(FCNSegmenter(width=width, **kwargs)) - parameters)
        if best_gap is None or gap < best_gap:
            best, best_gap = width, gap
        elif gap > best_gap:  # the count grows with the width: past the closest one
            break
    return best


@register_model("reseg", arguments=ReSeg, task="segment")
def reseg(**kwargs) -> ReSeg:
    """ReSeg: ReNet (2D LSTM sweep) encoder + transposed-convolution decoder, per-pixel logits."""
    return ReSeg(**kwargs)


@register_model("fcn_segmenter", arguments=FCNSegmenter, task="segment")
def fcn_segmenter(**kwargs) -> FCNSegmenter:
    """Fully convolutional segmentation baseline (conv encoder + the ReSeg decoder)."""
    return FCNSegmenter(**kwargs)
