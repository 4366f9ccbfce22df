"""Recurrent sequence classifier: (LSTM | GRU | vanilla RNN | sLSTM | mLSTM | minLSTM) encoder ->
pooling -> linear head.

Seed 004 §2-3 (pooling strategies, attention) and §6 (variable length). The encoder is
lstmkit's LSTM (with any of its variants) or torch's GRU / RNN for comparison; pooling is
one of :func:`lstmkit.nn.list_pools`, always lengths-aware and correct for the backward
direction. The modern layers (``cell="slstm" | "mlstm" | "minlstm"``, :mod:`lstmkit.nn.modern`)
take their keyword options in ``cell_options`` (e.g. ``{"num_heads": 4, "mode": "chunkwise"}``) and
with ``residual=True`` are stacked as ``num_layers`` residual pre-norm blocks (xLSTM, Beck et al.
2024), whose output is H wide and pooled as one direction.

Token-input mode (seed 002 §5, text classification): with ``vocab_size`` set the model takes
token ids (B, T) (0 = padding), embeds them to ``input_size`` features and goes on as above.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..checks import check_int
from ..nn import LSTM, create_pool, create_recurrent, list_pools, list_recurrent, parse_variants
from .registry import register_model


def check_cell_options(cell: str, hidden_size: int, residual: bool, options: dict) -> None:
    """Build a tiny layer to check ``cell_options``; ValueError naming the field on a bad one."""
    if not isinstance(options, dict):
        raise ValueError(f"cell_options must be a mapping of keyword options, got {options!r}")
    try:
        create_recurrent(cell, 1, hidden_size, residual=residual, **options)
    except TypeError as e:
        raise ValueError(f"cell_options {options} are not options of cell={cell!r}: {e}") from None
    except ValueError as e:
        raise ValueError(f"cell_options: {e}") from None

__all__ = ["RNNClassifierConfig", "RNNClassifier"]

Cell = Literal["lstm", "gru", "rnn", "slstm", "mlstm", "minlstm"]
CELLS = ("lstm", "gru", "rnn", "slstm", "mlstm", "minlstm")


@dataclass
class RNNClassifierConfig:
    input_size: int
    num_classes: int
    cell: Cell = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0  # between recurrent layers and before the head
    pooling: str = "last"
    variants: dict[str, Any] = field(default_factory=dict)  # lstmkit LSTM variants (cell="lstm" only)
    vocab_size: int | None = None  # token-input mode: ids in [0, vocab_size), embedded to input_size
    cell_options: dict[str, Any] = field(default_factory=dict)  # slstm/mlstm/minlstm keyword options
    residual: bool = False  # slstm/mlstm/minlstm: num_layers residual pre-norm blocks

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "num_layers"):
            check_int(name, getattr(self, name))
        check_int("num_classes", self.num_classes, minimum=2)
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(map(repr, CELLS))}, got {self.cell!r}")
        if self.pooling not in list_pools():
            raise ValueError(f"pooling must be one of {list_pools()}, got {self.pooling!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.vocab_size is not None:  # pad, unk and at least one token
            check_int("vocab_size", self.vocab_size, minimum=3)
        parse_variants(self.variants)  # validates the names and values
        if self.variants and self.cell != "lstm":
            raise ValueError(f"variants apply to cell='lstm' only, got cell={self.cell!r} with {self.variants}")
        if (self.cell_options or self.residual) and self.cell not in list_recurrent():
            raise ValueError(f"cell_options and residual apply to cell in {list_recurrent()}, got cell={self.cell!r}")
        if self.cell in list_recurrent():
            check_cell_options(self.cell, self.hidden_size, self.residual, self.cell_options)

    def to_dict(self) -> dict:
        return asdict(self)


class RNNClassifier(nn.Module):
    """forward(x (B, T, D) features | (B, T) token ids, lengths (B,) | None) -> logits (B, C)."""

    def __init__(self, config: RNNClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embed = None if c.vocab_size is None else nn.Embedding(c.vocab_size, c.input_size, padding_idx=0)
        k = 2 if c.bidirectional else 1
        between = c.dropout if c.num_layers > 1 else 0.0
        if c.cell in list_recurrent():
            self.encoder = create_recurrent(c.cell, c.input_size, c.hidden_size, c.num_layers, batch_first=True,
                                            dropout=between, bidirectional=c.bidirectional, residual=c.residual,
                                            **c.cell_options)
            k = 1 if c.residual else k
        elif c.cell == "lstm":
            self.encoder = LSTM(c.input_size, c.hidden_size, c.num_layers, batch_first=True, dropout=between,
                                bidirectional=c.bidirectional, **parse_variants(c.variants).to_dict())
        else:
            rnn = nn.GRU if c.cell == "gru" else nn.RNN
            self.encoder = rnn(c.input_size, c.hidden_size, c.num_layers, batch_first=True, dropout=between,
                               bidirectional=c.bidirectional)
        self.pool = create_pool(c.pooling, k * c.hidden_size, k)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(self.pool.out_features, c.num_classes)

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (B, T, D) -> per-step features (B, T, K*H), zero past each length."""
        if not isinstance(self.encoder, (nn.GRU, nn.RNN)):
            out, _ = self.encoder(x, lengths=lengths)
            return out
        lens = None if lengths is None else torch.as_tensor(lengths).cpu()
        if lens is None or bool((lens == x.shape[1]).all()):  # nothing padded: packing would only cost time
            return self.encoder(x)[0]
        packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(self.encoder(packed)[0], batch_first=True, total_length=x.shape[1])[0]

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            x = self.embed(x)  # (B, T) ids -> (B, T, D)
        feats = self.encode(x, lengths)  # -> (B, T, K*H)
        pooled = self.pool(feats, lengths)  # -> (B, K*H)
        return self.head(self.drop(pooled))  # -> (B, C)


@register_model("rnn_classifier", arguments=RNNClassifierConfig, task="classify")
def rnn_classifier(**kwargs) -> RNNClassifier:
    """LSTM (any variant) / GRU / RNN encoder, pooling last|mean|max|attention, linear head; token-input mode."""
    return RNNClassifier(RNNClassifierConfig(**kwargs))
