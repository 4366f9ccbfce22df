"""Video prediction: ConvLSTM encoder-forecaster (Shi et al. 2015, section 3.2 / 4.1).

An encoder ConvLSTM stack reads the input frames; a forecaster stack of the same widths starts
from the encoder's final states (layer l from layer l) and runs, without input, for as many
steps as frames are predicted; at each step the hidden maps of all forecaster layers are
concatenated and a 1x1 convolution turns them into the frame. As in the paper, frames are cut
into ``patch`` x ``patch`` patches (space-to-depth: 64x64x1 -> 16x16x16 for patch 4) before the
encoder and put back after the 1x1 convolution, which keeps the recurrent grid small.

What we changed: the paper's Moving MNIST network (3 layers, 256/128/128 channels, 5x5 kernels,
cross-entropy on 2 digits of MNIST) is scaled down to run in minutes on a CPU (the preset uses
2 layers of 64 channels); the forecaster's first layer has no input at all (the paper feeds it
nothing either). Frames are in [0, 1] with ink high; the model outputs logits and
``predict`` applies the sigmoid.

Loss (``loss``): ``"bce"`` (default), binary cross-entropy of the logits against the target
intensities per pixel, averaged (the paper's cross-entropy, per pixel rather than summed per
sequence); or ``"mse"`` of the sigmoid outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from ..nn.cell import LSTMState
from ..nn.convlstm import ConvLSTM, Peephole
from .registry import register_model

__all__ = ["ConvLSTMForecasterConfig", "ConvLSTMForecaster"]

Loss = Literal["bce", "mse"]


@dataclass
class ConvLSTMForecasterConfig:
    frame_size: int = 64  # H = W of the frames
    patch: int = 4  # space-to-depth factor: the ConvLSTMs run on (frame_size / patch)^2 grids
    input_frames: int = 10
    output_frames: int = 10
    hidden_channels: list[int] = field(default_factory=lambda: [64, 64])  # per layer, encoder and forecaster
    kernel_size: int = 3
    peephole: Peephole = "pixel"  # the paper's per-pixel peepholes ("channel" or "none" also valid)
    forget_bias: float | None = 1.0
    loss: Loss = "bce"

    def __post_init__(self) -> None:
        for name in ("frame_size", "patch", "input_frames", "output_frames", "kernel_size"):
            check_int(name, getattr(self, name))
        if self.frame_size % self.patch:
            raise ValueError(f"frame_size={self.frame_size} must be a multiple of patch={self.patch}")
        if not isinstance(self.hidden_channels, (list, tuple)) or not self.hidden_channels:
            raise ValueError(f"hidden_channels must be a non-empty list of positive ints, got {self.hidden_channels!r}")
        self.hidden_channels = [check_int(f"hidden_channels[{i}]", v) for i, v in enumerate(self.hidden_channels)]
        if self.peephole not in ("none", "channel", "pixel"):
            raise ValueError(f"peephole must be one of 'none', 'channel', 'pixel', got {self.peephole!r}")
        if self.loss not in ("bce", "mse"):
            raise ValueError(f"loss must be 'bce' or 'mse', got {self.loss!r}")


class ConvLSTMForecaster(nn.Module):
    """Encoder-forecaster: ``forward(x (B, T_in, H, W), lengths=None) -> logits (B, T_out, H, W)``."""

    def __init__(self, config: ConvLSTMForecasterConfig) -> None:
        super().__init__()
        self.config = c = config
        grid = c.frame_size // c.patch
        spatial = (grid, grid) if c.peephole == "pixel" else None
        opts = dict(kernel_size=c.kernel_size, peephole=c.peephole, spatial_size=spatial, forget_bias=c.forget_bias)
        self.encoder = ConvLSTM(c.patch**2, c.hidden_channels, **opts)
        widths = [0] + c.hidden_channels  # the first forecaster layer has no input
        self.forecaster = nn.ModuleList(ConvLSTM(widths[i], widths[i + 1], **opts)
                                        for i in range(len(c.hidden_channels)))
        self.head = nn.Conv2d(sum(c.hidden_channels), c.patch**2, kernel_size=1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Legend: B batch, T_in input frames, T_out predicted frames, H x W frame size,
        P patch, G = H / P grid size, N_l hidden channels of layer l.

        x (B, T_in, H, W) frames in [0, 1]; lengths (B,) valid input frames per clip (None: all;
        the forecast then starts after each clip's last valid frame). Returns logits (B, T_out, H, W)."""
        c = self.config
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[2:] != (c.frame_size, c.frame_size):
            raise ValueError(f"x must be clips (B, T, H, W) with {c.frame_size}x{c.frame_size} frames, got shape "
                             f"{tuple(x.shape)}")
        if x.shape[1] != c.input_frames and lengths is None:
            raise ValueError(f"x has {x.shape[1]} frames but this model reads input_frames={c.input_frames} "
                             "(give lengths for shorter, padded clips)")
        batch, total = x.shape[:2]
        patches = F.pixel_unshuffle(x.reshape(batch * total, 1, c.frame_size, c.frame_size), c.patch)
        patches = patches.view(batch, total, *patches.shape[1:])  # -> (B, T_in, P*P, G, G)
        _, states = self.encoder(patches, lengths=lengths)  # L x (h, c) each (B, N_l, G, G)
        grid = patches.shape[-1]
        layer_in = patches.new_zeros(batch, c.output_frames, 0, grid, grid)  # the forecaster runs on its state
        hidden = []
        for layer, state in zip(self.forecaster, states):
            layer_in, _ = layer(layer_in, state=[LSTMState(*state)])  # -> (B, T_out, N_l, G, G)
            hidden.append(layer_in)
        z = self.head(torch.cat(hidden, dim=2).flatten(0, 1))  # -> (B*T_out, P*P, G, G)
        frames = F.pixel_shuffle(z, c.patch)  # -> (B*T_out, 1, H, W)
        return frames.view(batch, c.output_frames, c.frame_size, c.frame_size)

    @torch.no_grad()
    def predict(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Predicted frames (B, T_out, H, W) in [0, 1]."""
        return torch.sigmoid(self(x, lengths))

    def criterion(self, logits: Tensor, target: Tensor) -> Tensor:
        """Mean per-pixel loss of forecast ``logits`` against ``target`` (B, T_out, H, W) in [0, 1]."""
        if target.shape != logits.shape:
            raise ValueError(f"target must have shape {tuple(logits.shape)} (B, T_out, H, W), got {tuple(target.shape)}")
        if self.config.loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(torch.sigmoid(logits), target)

    def loss(self, x: Tensor, target: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The training loss (``config.loss``) of the forecast from ``x`` against ``target``."""
        return self.criterion(self(x, lengths), target)


@register_model("convlstm_forecaster", arguments=ConvLSTMForecasterConfig, task="video")
def convlstm_forecaster(**kwargs) -> ConvLSTMForecaster:
    """ConvLSTM encoder-forecaster for video prediction (Shi et al. 2015): next frames from past frames."""
    return ConvLSTMForecaster(ConvLSTMForecasterConfig(**kwargs))
