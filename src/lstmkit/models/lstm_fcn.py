"""LSTM-FCN and MLSTM-FCN (Karim et al. 2017, "LSTM fully convolutional networks for time series
classification"; Karim et al. 2019, "Multivariate LSTM-FCNs for time series classification").

Two branches read the same series and their features are concatenated before a linear head:
- FCN: three Conv1d blocks (128 filters k=8, 256 k=5, 128 k=3; each BatchNorm + ReLU), then
  global average pooling over time. MLSTM-FCN adds a squeeze-and-excite block (reduction 16)
  after the first two blocks.
- LSTM: with ``dimension_shuffle`` (the papers' default) the LSTM reads the transposed series --
  D "steps" of T features -- and its last state is the feature; otherwise it reads the series
  over time with lengths and its states are pooled (lstmkit's lengths-aware "last").
  Dropout (the papers use 0.8) follows the LSTM.

What we changed: padding is handled exactly. After every conv block, positions past each
sequence's length are zeroed, so the next 'same'-padded convolution sees what it would see on
the sequence alone, and the average pooling and the squeeze-and-excite means run over valid steps
only. BatchNorm's training statistics still include padded positions (in eval mode it is a
per-channel affine map, so padded == alone holds there). Dimension shuffle needs equal lengths
(the transposed LSTM's width is T); variable-length data raises with a pointer to
``dimension_shuffle=False``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from ..nn import LSTM, create_pool, parse_variants
from ..nn.pooling import length_mask
from .registry import register_model

__all__ = ["LSTMFCNConfig", "LSTMFCN"]


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """x (B, C, T), mask (B, 1, T) float -> (B, C): the mean over valid steps."""
    return (x * mask).sum(-1) / mask.sum(-1)


class SqueezeExcite(nn.Module):
    """Hu et al. 2018: channel gates from the (valid-step) channel means; x (B, C, T)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, max(1, channels // reduction)), nn.ReLU(),
                                nn.Linear(max(1, channels // reduction), channels), nn.Sigmoid())

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return x * self.fc(_masked_mean(x, mask)).unsqueeze(-1)


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, squeeze_excite: bool) -> None:
        super().__init__()
        self.pad = ((kernel - 1) // 2, kernel // 2)  # 'same' output length, also for even kernels
        self.conv = nn.Conv1d(c_in, c_out, kernel)
        self.bn = nn.BatchNorm1d(c_out)
        self.se = SqueezeExcite(c_out) if squeeze_excite else None

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = torch.relu(self.bn(self.conv(F.pad(x, self.pad)))) * mask  # zero past each length
        return self.se(x, mask) if self.se is not None else x


@dataclass
class LSTMFCNConfig:
    input_size: int
    num_classes: int
    hidden_size: int = 8
    lstm_dropout: float = 0.8
    dimension_shuffle: bool = True
    squeeze_excite: bool = False  # True: MLSTM-FCN
    filters: tuple[int, int, int] = (128, 256, 128)
    kernels: tuple[int, int, int] = (8, 5, 3)
    variants: dict[str, Any] = field(default_factory=dict)
    stride: int = 1  # > 1: average the series over windows of `stride` steps (valid steps only) before both branches

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "stride"):
            check_int(name, getattr(self, name))
        check_int("num_classes", self.num_classes, minimum=2)
        if not 0.0 <= self.lstm_dropout < 1.0:
            raise ValueError(f"lstm_dropout must be in [0, 1), got {self.lstm_dropout}")
        self.filters, self.kernels = tuple(self.filters), tuple(self.kernels)
        if len(self.filters) != 3 or len(self.kernels) != 3 or min(self.filters + self.kernels) < 1:
            raise ValueError(f"filters and kernels must be three positive ints each, got {self.filters}, {self.kernels}")
        parse_variants(self.variants)

    def to_dict(self) -> dict:
        return asdict(self)


class LSTMFCN(nn.Module):
    """forward(x (B, T, D), lengths (B,) | None) -> logits (B, C)."""

    def __init__(self, config: LSTMFCNConfig, max_length: int | None = None) -> None:
        super().__init__()
        self.config = c = config
        variants = parse_variants(c.variants).to_dict()
        if c.dimension_shuffle:
            if max_length is None:
                raise ValueError("dimension_shuffle=True needs max_length (the series length T, the LSTM's input width)")
            self.lstm = LSTM(-(-max_length // c.stride), c.hidden_size, batch_first=True, **variants)
        else:
            self.lstm = LSTM(c.input_size, c.hidden_size, batch_first=True, **variants)
            self.pool = create_pool("last", c.hidden_size)
        self.max_length = max_length
        self.lstm_drop = nn.Dropout(c.lstm_dropout)
        widths = (c.input_size,) + c.filters
        self.blocks = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1], c.kernels[i], c.squeeze_excite and i < 2) for i in range(3))
        self.head = nn.Linear(c.hidden_size + c.filters[-1], c.num_classes)

    def _pool(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Average over windows of ``stride`` steps, valid steps only: x (B, T, D) -> (B, ceil(T/s), D),
        lengths -> ceil(lengths / s) (the long-series front end; a window of padding stays zero)."""
        s = self.config.stride
        batch, total, d = x.shape
        valid = length_mask(lengths, batch, total, x.device).to(x.dtype).unsqueeze(-1)  # -> (B, T, 1)
        extra = (-total) % s
        x = F.pad(x * valid, (0, 0, 0, extra)).reshape(batch, -1, s, d).sum(2)
        count = F.pad(valid, (0, 0, 0, extra)).reshape(batch, -1, s, 1).sum(2)
        x = x / count.clamp_min(1)  # -> (B, ceil(T/s), D)
        return x, None if lengths is None else torch.div(torch.as_tensor(lengths) + s - 1, s, rounding_mode="floor")

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        batch, total, _ = x.shape
        if self.config.dimension_shuffle:
            if lengths is not None and int(torch.as_tensor(lengths).min()) < total:
                raise ValueError("dimension_shuffle needs equal-length series; use dimension_shuffle=False for "
                                 "variable-length data")
            if total != self.max_length:
                raise ValueError(f"series have {total} steps but the model was built for max_length={self.max_length}")
        if self.config.stride > 1:
            x, lengths = self._pool(x, lengths)  # -> (B, T', D)
            total = x.shape[1]
        mask = length_mask(lengths, batch, total, x.device).unsqueeze(1).to(x.dtype)  # -> (B, 1, T)
        if self.config.dimension_shuffle:
            _, (h_n, _) = self.lstm(x.transpose(1, 2))  # D steps of T features
            lstm_feat = h_n[-1]  # -> (B, H)
        else:
            out, _ = self.lstm(x, lengths=lengths)
            lstm_feat = self.pool(out, lengths)  # -> (B, H)
        y = x.transpose(1, 2) * mask  # -> (B, D, T)
        for block in self.blocks:
            y = block(y, mask)
        conv_feat = _masked_mean(y, mask)  # -> (B, filters[-1])
        return self.head(torch.cat([self.lstm_drop(lstm_feat), conv_feat], dim=1))  # -> (B, C)


@register_model("lstm_fcn", arguments=LSTMFCNConfig, task="classify")
def lstm_fcn(max_length: int | None = None, **kwargs) -> LSTMFCN:
    """LSTM-FCN (Karim et al. 2017): an LSTM branch beside a 3-block fully convolutional branch."""
    return LSTMFCN(LSTMFCNConfig(**kwargs), max_length)


@register_model("mlstm_fcn", arguments=LSTMFCNConfig, task="classify")
def mlstm_fcn(max_length: int | None = None, **kwargs) -> LSTMFCN:
    """MLSTM-FCN (Karim et al. 2019): LSTM-FCN with squeeze-and-excite blocks, for multivariate series."""
    return LSTMFCN(LSTMFCNConfig(squeeze_excite=True, **kwargs), max_length)
