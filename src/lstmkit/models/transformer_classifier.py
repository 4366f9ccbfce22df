"""Transformer-encoder sequence classifier (Vaswani et al. 2017, "Attention is all you need";
the encoder-only classifier as in Zerveas et al. 2021, "A transformer-based framework for
multivariate time series representation learning").

Each step's features are projected linearly to ``d_model``, positions are added (fixed
sinusoids or a learned table), ``nn.TransformerEncoder`` mixes the steps with self-attention,
the outputs are averaged over valid steps and a linear head gives the logits.

What we changed: pre-LayerNorm blocks (``norm_first``, Xiong et al. 2020) with a final
LayerNorm, which train without a learning-rate warm-up at the small sizes used here; GELU.
Padding: ``lengths`` become ``src_key_padding_mask``, so no valid step attends to a padded one,
and the mean runs over valid steps only; padded == alone. The encoder is built with
``enable_nested_tensor=False`` (torch warns that pre-LN blocks cannot use nested tensors
otherwise); its inference fast path still applies in eval mode.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..checks import check_int
from ..nn import create_pool
from ..nn.pooling import length_mask
from .registry import register_model

__all__ = ["TransformerClassifierConfig", "TransformerClassifier"]

Positions = Literal["sinusoidal", "learned"]


def sinusoidal_positions(total: int, width: int) -> Tensor:
    """(T, width) table: sin(t / 10000^(2i/width)) in even columns, cos in odd ones."""
    t = torch.arange(total, dtype=torch.float64).unsqueeze(1)
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float64) * (-math.log(10000.0) / width))
    table = torch.zeros(total, width, dtype=torch.float64)
    table[:, 0::2] = torch.sin(t * freq)
    table[:, 1::2] = torch.cos(t * freq[: width // 2])
    return table


@dataclass
class TransformerClassifierConfig:
    input_size: int
    num_classes: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    dim_feedforward: int | None = None  # None: 2 * d_model
    dropout: float = 0.1  # in every encoder layer and before the head
    positions: Positions = "sinusoidal"
    max_length: int = 1024  # longest series the position table covers

    def __post_init__(self) -> None:
        for name in ("input_size", "d_model", "num_heads", "num_layers", "max_length"):
            check_int(name, getattr(self, name))
        check_int("num_classes", self.num_classes, minimum=2)
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model must be a multiple of num_heads, got d_model={self.d_model}, "
                             f"num_heads={self.num_heads}")
        if self.dim_feedforward is not None:
            check_int("dim_feedforward", self.dim_feedforward)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be one of 'sinusoidal', 'learned', got {self.positions!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class TransformerClassifier(nn.Module):
    """forward(x (B, T, D), lengths (B,) | None) -> logits (B, C)."""

    def __init__(self, config: TransformerClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        self.proj = nn.Linear(c.input_size, c.d_model)
        if c.positions == "learned":
            self.pos = nn.Parameter(torch.zeros(c.max_length, c.d_model))
            nn.init.normal_(self.pos, std=0.02)
        else:
            self.register_buffer("pos", sinusoidal_positions(c.max_length, c.d_model).float(), persistent=False)
        layer = nn.TransformerEncoderLayer(c.d_model, c.num_heads, c.dim_feedforward or 2 * c.d_model, c.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, c.num_layers, norm=nn.LayerNorm(c.d_model),
                                             enable_nested_tensor=False)
        self.drop = nn.Dropout(c.dropout)
        self.pool = create_pool("mean", c.d_model)
        self.head = nn.Linear(c.d_model, c.num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        batch, total, _ = x.shape
        if total > self.config.max_length:
            raise ValueError(f"series have {total} steps but the position table covers max_length="
                             f"{self.config.max_length}; build the model with a larger max_length")
        pad = None if lengths is None else ~length_mask(lengths, batch, total, x.device)  # (B, T), True = padding
        h = self.drop(self.proj(x) + self.pos[:total].to(x.dtype))  # -> (B, T, d_model)
        h = self.encoder(h, src_key_padding_mask=pad)  # -> (B, T, d_model)
        pooled = self.pool(h, lengths)  # -> (B, d_model)
        return self.head(self.drop(pooled))  # -> (B, C)


@register_model("transformer_classifier", arguments=TransformerClassifierConfig, task="classify")
def transformer_classifier(**kwargs) -> TransformerClassifier:
    """Transformer encoder (pre-LN) over projected steps plus positions, masked mean pooling, linear head."""
    return TransformerClassifier(TransformerClassifierConfig(**kwargs))
