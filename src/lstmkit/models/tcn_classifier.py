"""Temporal convolutional network classifier (Bai, Kolter & Koltun 2018, "An empirical evaluation
of generic convolutional and recurrent networks for sequence modeling").

A stack of residual blocks; block ``i`` holds two dilated causal Conv1d layers with dilation
``2**i`` (each optionally weight-normalised, then ReLU and dropout) and a residual connection
(a 1x1 convolution where the width changes), followed by ReLU. The receptive field of
``num_levels`` blocks with kernel ``k`` is ``1 + 2 (k - 1) (2**num_levels - 1)`` steps
(:attr:`TCNClassifier.receptive_field`).

What we changed: the paper's TCN predicts from the last step of an unpadded sequence; here the
per-step features are pooled with a lengths-aware pooler of :func:`lstmkit.nn.list_pools`
(``mean`` over valid steps, or ``last``: the output at each sequence's own last valid step).
Causal padding is on the left only, so the output at step ``t`` sees steps ``<= t`` and
right-padding never reaches a valid step: padded == alone without masking between blocks.
Convolutions are padded on the left instead of padded on both sides and chomped. Weights keep
torch's default initialisation (the reference code draws N(0, 0.01) into the weight after
applying weight norm, where the weight recomputed from g and v before each call overrides it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm as apply_weight_norm

from ..checks import check_int
from ..nn import create_pool, list_pools
from .registry import register_model

__all__ = ["TCNClassifierConfig", "TCNClassifier"]


class CausalConv1d(nn.Module):
    """Conv1d over (B, C, T) with ``(k - 1) * dilation`` zeros on the left: output step t sees
    input steps t - (k-1)d, ..., t only."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, weight_norm: bool) -> None:
        super().__init__()
        self.left = (kernel - 1) * dilation
        conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)
        self.conv = apply_weight_norm(conv) if weight_norm else conv

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (self.left, 0)))


class TemporalBlock(nn.Module):
    """Two dilated causal convolutions (ReLU, dropout each) plus a residual; (B, C_in, T) -> (B, C_out, T)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float, weight_norm: bool) -> None:
        super().__init__()
        self.conv1 = CausalConv1d(c_in, c_out, kernel, dilation, weight_norm)
        self.conv2 = CausalConv1d(c_out, c_out, kernel, dilation, weight_norm)
        self.drop = nn.Dropout(dropout)
        self.downsample = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        y = self.drop(F.relu(self.conv1(x)))
        y = self.drop(F.relu(self.conv2(y)))
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(y + res)


@dataclass
class TCNClassifierConfig:
    input_size: int
    num_classes: int
    channels: int = 64  # width of every block
    num_levels: int = 4  # residual blocks; block i has dilation 2**i
    kernel_size: int = 3
    dropout: float = 0.1  # inside every block and before the head
    weight_norm: bool = True
    pooling: str = "mean"

    def __post_init__(self) -> None:
        for name in ("input_size", "channels", "num_levels"):
            check_int(name, getattr(self, name))
        check_int("num_classes", self.num_classes, minimum=2)
        check_int("kernel_size", self.kernel_size, minimum=2)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not isinstance(self.weight_norm, bool):
            raise ValueError(f"weight_norm must be true or false, got {self.weight_norm!r}")
        if self.pooling not in list_pools():
            raise ValueError(f"pooling must be one of {list_pools()}, got {self.pooling!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class TCNClassifier(nn.Module):
    """forward(x (B, T, D), lengths (B,) | None) -> logits (B, C)."""

    def __init__(self, config: TCNClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        widths = [c.input_size] + [c.channels] * c.num_levels
        self.blocks = nn.Sequential(*(
            TemporalBlock(widths[i], widths[i + 1], c.kernel_size, 2**i, c.dropout, c.weight_norm)
            for i in range(c.num_levels)))
        self.pool = create_pool(c.pooling, c.channels)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(self.pool.out_features, c.num_classes)

    @property
    def receptive_field(self) -> int:
        """How many input steps (the current one included) the features at one step can see."""
        c = self.config
        return 1 + 2 * (c.kernel_size - 1) * (2**c.num_levels - 1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        feats = self.blocks(x.transpose(1, 2)).transpose(1, 2)  # (B, D, T) -> (B, T, channels)
        pooled = self.pool(feats, lengths)  # -> (B, channels)
        return self.head(self.drop(pooled))  # -> (B, C)


@register_model("tcn_classifier", arguments=TCNClassifierConfig, task="classify")
def tcn_classifier(**kwargs) -> TCNClassifier:
    """TCN (Bai et al. 2018): residual dilated causal Conv1d blocks, lengths-aware pooling, linear head."""
    return TCNClassifier(TCNClassifierConfig(**kwargs))
