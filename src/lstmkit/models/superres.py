"""LSTM super-resolution: ReNet sweeps over low-resolution features, then sub-pixel upsampling.

The network works on the low-resolution (LR) grid and predicts the *residual* over the bicubic
upscale of its input (VDSR, Kim et al. 2016), upsampled by a sub-pixel convolution
(ESPCN, Shi et al. 2016)::

    lr (B, C, h, w) -> 3x3 conv -> ReLU -> 3x3 conv -> ReLU          features (B, F, h, w)
        -> [ReNet layer (patch 1: every LR row and column is a sequence) -> 1x1 conv, + skip] x L
        -> [3x3 conv -> ReLU] x R -> 3x3 conv -> PixelShuffle(s)    residual (B, C, s*h, s*w)
    hr = bicubic(lr, s) + residual

The head's convolutions see 5x5 LR pixels; the ReNet layer's two bidirectional sweeps (Visin
et al. 2015, :class:`lstmkit.nn.ReNetLayer`) give every LR pixel the whole image as context;
the ``refine`` convolutions after them sharpen local detail before the sub-pixel layer. What we
changed from ReNet: patch size 1 (no downsampling), a residual connection around each layer,
and the output is an image, not class scores. The last convolution starts small (weights x 0.1)
so an untrained model is close to bicubic upscaling.

Images in a batch share one size (training patches); whole images of different sizes are
upscaled one at a time, so there are no padded sizes to pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import ReNetLayer
from ..checks import check_int
from ..nn.variants import parse_variants
from .registry import register_model

__all__ = ["LSTMSuperResConfig", "LSTMSuperRes", "bicubic_upscale", "SCALES"]

SCALES = (2, 3, 4)


def bicubic_upscale(lr: Tensor, scale: int) -> Tensor:
    """(B, C, h, w) in [0, 1] -> (B, C, s*h, s*w) bicubic (a = -0.75, align_corners=False), clamped to [0, 1].

    The baseline every model is compared with, and the base the model adds its residual to.
    """
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


@dataclass
class LSTMSuperResConfig:
    scale: int = 2  # upscaling factor: 2, 3 or 4
    channels: int = 1  # image channels (1: luminance)
    features: int = 32  # F: convolution width on the LR grid
    hidden_size: int = 32  # N: LSTM units per direction in each ReNet sweep
    layers: int = 1  # L: ReNet layers
    refine: int = 2  # R: 3x3 conv + ReLU layers between the ReNet layers and the sub-pixel convolution
    variants: dict[str, Any] = field(default_factory=dict)  # LSTM variants of the sweeps (lstmkit.nn.VariantConfig)

    def __post_init__(self) -> None:
        if self.scale not in SCALES or isinstance(self.scale, bool):
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise ValueError(f"channels must be 1 (luminance) or 3 (RGB), got {self.channels!r}")
        for name, minimum in (("features", 1), ("hidden_size", 1), ("layers", 1), ("refine", 0)):
            setattr(self, name, check_int(name, getattr(self, name), minimum))
        parse_variants(self.variants)

    def to_dict(self) -> dict:
        return asdict(self)


class LSTMSuperRes(nn.Module):
    """``forward(lr (B, C, h, w) in [0, 1]) -> hr (B, C, s*h, s*w)`` (not clamped; see :meth:`upscale`)."""

    def __init__(self, config: LSTMSuperResConfig) -> None:
        super().__init__()
        self.config = c = config
        variants = parse_variants(c.variants).to_dict()
        self.head = nn.Sequential(nn.Conv2d(c.channels, c.features, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(c.features, c.features, 3, padding=1), nn.ReLU())
        self.sweeps = nn.ModuleList(ReNetLayer(c.features, c.hidden_size, patch=1, **variants) for _ in range(c.layers))
        self.mix = nn.ModuleList(nn.Conv2d(2 * c.hidden_size, c.features, 1) for _ in range(c.layers))
        self.refine = nn.Sequential(*(m for _ in range(c.refine)
                                      for m in (nn.Conv2d(c.features, c.features, 3, padding=1), nn.ReLU())))
        self.tail = nn.Conv2d(c.features, c.channels * c.scale ** 2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(c.scale)
        with torch.no_grad():
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()

    @property
    def scale(self) -> int:
        return self.config.scale

    def _check(self, lr: Tensor) -> None:
        c = self.config.channels
        if not isinstance(lr, Tensor) or lr.dim() != 4 or lr.shape[1] != c:
            shape = tuple(lr.shape) if isinstance(lr, Tensor) else type(lr).__name__
            raise ValueError(f"lr must be (B, C={c}, h, w) ({'luminance' if c == 1 else 'RGB'} images), got {shape}")
        if lr.shape[2] < 2 or lr.shape[3] < 2:
            raise ValueError(f"lr must be at least 2x2 pixels, got {lr.shape[2]}x{lr.shape[3]} (hxw)")

    def forward(self, lr: Tensor) -> Tensor:
        # B batch, C channels, h x w LR pixels, s scale, F features, N hidden units per direction
        self._check(lr)
        x = self.head(lr - 0.5)  # -> (B, F, h, w)
        for sweep, mix in zip(self.sweeps, self.mix):
            x = x + mix(sweep(x))  # (B, F, h, w) -> (B, 2N, h, w) -> (B, F, h, w)
        x = self.refine(x)  # -> (B, F, h, w)
        residual = self.shuffle(self.tail(x))  # (B, C*s*s, h, w) -> (B, C, s*h, s*w)
        return bicubic_upscale(lr, self.scale) + residual

    def loss(self, lr: Tensor, hr: Tensor) -> Tensor:
        """Mean squared error against the HR image (what PSNR measures)."""
        if hr.shape != (lr.shape[0], lr.shape[1], lr.shape[2] * self.scale, lr.shape[3] * self.scale):
            raise ValueError(f"hr must be (B, C, {self.scale}*h, {self.scale}*w) for lr {tuple(lr.shape)}, "
                             f"got {tuple(hr.shape)}")
        return F.mse_loss(self(lr), hr)

    @torch.no_grad()
    def upscale(self, lr: Tensor) -> Tensor:
        """Inference: the prediction clamped to [0, 1]."""
        return self(lr).clamp(0.0, 1.0)


@register_model("lstm_sr", arguments=LSTMSuperResConfig, task="superres")
def lstm_sr(**kwargs) -> LSTMSuperRes:
    """LSTM super-resolution (x2/x3/x4): ReNet sweeps over LR features, sub-pixel upsampled residual over bicubic."""
    return LSTMSuperRes(LSTMSuperResConfig(**kwargs))
