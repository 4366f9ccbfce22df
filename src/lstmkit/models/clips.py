"""Clip and volume classifiers: CNN-LSTM (LRCN-style), single-frame CNN, bidirectional LSTM over slices, single-slice 2D baseline.

LRCN (Donahue et al. 2015, "Long-term Recurrent Convolutional Networks"): a 2D CNN encodes
every frame, an LSTM reads the frame features in order, and the prediction comes from the
LSTM's outputs. Seed 004 §3.1 (video action classifier) and §3.2 (CT/MRI slice sequences with
a bidirectional LSTM). What we changed: a small CNN trained from scratch instead of an
ImageNet CaffeNet; the prediction pools the LSTM outputs with a lengths-aware pooler
(:func:`lstmkit.nn.create_pool`; ``last`` by default) instead of averaging per-frame
predictions; padded frames are never encoded (only each clip's valid frames go through the
CNN, so batch-norm statistics see no padding).

- Frame encoders are modules with ``forward_features(frames (N, C, H, W)) -> (N, F)`` and an
  ``out_features`` attribute, chosen by name (:func:`create_encoder`, ``"cnn"``) or passed in
  (``cnn_lstm(encoder=module)``; such a model cannot be rebuilt from JSON, register the encoder
  for that).
- ``cnn_lstm`` / ``slice_lstm``: :class:`ClipLSTM` (``slice_lstm`` defaults to a bidirectional
  LSTM with mean pooling, for volumes read as slice sequences). ``frame_differences=True``
  gives the encoder each frame together with its difference to the previous frame (zero for
  the first), a cheap stand-in for the optical-flow input of LRCN's best model: the encoder
  sees local motion, the LSTM still has to put the steps together.
- ``frame_cnn`` / ``slice_cnn``: :class:`FrameClassifier`, the single-frame baseline with the
  same encoder: it sees only the middle valid frame (``lengths // 2``) or the middle slice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..nn import LSTM, create_pool, list_pools
from ..checks import check_int
from ..nn.names import register_into, unknown_name
from ..nn.pooling import length_mask
from .registry import register_model

__all__ = ["FrameCNN", "ClipLSTMConfig", "ClipLSTM", "FrameClassifierConfig", "FrameClassifier", "create_encoder",
           "list_encoders", "register_encoder", "encode_frames"]

_ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name: str) -> Callable:
    """Decorator registering a frame-encoder builder ``f(in_channels, **kwargs) -> module``."""
    return register_into(_ENCODERS, "frame encoder", name)


def list_encoders() -> list[str]:
    return sorted(_ENCODERS)


def create_encoder(name: str, in_channels: int, **kwargs) -> nn.Module:
    """A frame encoder by name (one of :func:`list_encoders`)."""
    if name not in _ENCODERS:
        raise unknown_name("frame encoder", name, _ENCODERS)
    try:
        return _ENCODERS[name](in_channels, **kwargs)
    except TypeError as e:
        raise TypeError(f"encoder_kwargs {kwargs} do not fit frame encoder {name!r}: {e}") from None


# ------------------------------------------------------------------------ frame encoder


class FrameCNN(nn.Module):
    """(conv 3x3 -> batch norm -> ReLU -> max-pool 2) per entry of ``channels``, adaptive average
    pooling to a ``grid`` x ``grid`` map (any input size; the map keeps where things are, which
    motion needs), then a linear layer with ReLU to ``features``."""

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32, 64), features: int = 128,
                 grid: int = 4) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels)
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels!r}")
        channels = [check_int(f"channels[{i}]", c) for i, c in enumerate(channels)]
        features, grid = check_int("features", features), check_int("grid", grid)
        layers, c_in = [], in_channels
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c
        self.in_channels = in_channels
        self.conv = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(grid))
        self.fc = nn.Linear(c_in * grid * grid, features)
        self.out_features = features

    def forward_features(self, frames: Tensor) -> Tensor:
        """frames (N, C, H, W) -> (N, F)."""
        if frames.dim() != 4 or frames.shape[1] != self.in_channels:
            raise ValueError(f"frames must be (N, {self.in_channels}, H, W), got {tuple(frames.shape)}")
        return F.relu(self.fc(self.conv(frames).flatten(1)))  # (N, C, H, W) -> (N, c, g, g) -> (N, F)

    forward = forward_features


@register_encoder("cnn")
def _cnn(in_channels: int, **kwargs) -> FrameCNN:
    return FrameCNN(in_channels, **kwargs)


def _encoder(encoder: str | nn.Module, in_channels: int, kwargs: dict) -> nn.Module:
    if isinstance(encoder, str):
        return create_encoder(encoder, in_channels, **kwargs)
    if not isinstance(encoder, nn.Module) or not callable(getattr(encoder, "forward_features", None)) or not isinstance(
            getattr(encoder, "out_features", None), int):
        raise TypeError("encoder must be a registered name (" + ", ".join(list_encoders()) + ") or an nn.Module with "
                        f"forward_features(frames) and an int out_features, got {type(encoder).__name__}")
    if kwargs:
        raise ValueError(f"encoder_kwargs apply to an encoder built by name; a module was passed in, got {kwargs}")
    return encoder


def _check_clips(x: Tensor, in_channels: int) -> None:
    if x.dim() != 5 or x.shape[2] != in_channels:
        raise ValueError(f"x must be clips (B, T, {in_channels}, H, W), got shape {tuple(x.shape)}")


def encode_frames(encoder: nn.Module, x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Per-frame features of the valid frames only: x (B, T, C, H, W) -> (B, T, F), zero past each length."""
    b, t = x.shape[:2]
    mask = length_mask(lengths, b, t, x.device)  # (B, T)
    feats = encoder.forward_features(x[mask])  # (N_valid, C, H, W) -> (N_valid, F)
    out = feats.new_zeros(b, t, feats.shape[1])
    out[mask] = feats
    return out  # -> (B, T, F)


# ------------------------------------------------------------------------------ CNN-LSTM


@dataclass
class ClipLSTMConfig:
    num_classes: int
    in_channels: int = 1
    encoder: str = "cnn"  # a registered frame encoder (list_encoders())
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. channels, features for "cnn"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    pooling: str = "last"
    dropout: float = 0.0  # on the frame features and before the head
    frame_differences: bool = False  # encode [frame, frame - previous frame]: 2 * in_channels channels

    def __post_init__(self) -> None:
        if not isinstance(self.frame_differences, bool):
            raise ValueError(f"frame_differences must be true or false, got {self.frame_differences!r}")
        for name, minimum in (("num_classes", 2), ("in_channels", 1), ("hidden_size", 1), ("num_layers", 1)):
            setattr(self, name, check_int(name, getattr(self, name), minimum))
        if self.pooling not in list_pools():
            raise ValueError(f"pooling must be one of {list_pools()}, got {self.pooling!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.encoder_kwargs, dict):
            raise ValueError(f"encoder_kwargs must be a mapping, got {self.encoder_kwargs!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class ClipLSTM(nn.Module):
    """Frame encoder -> LSTM over the frame features (lengths-aware) -> pooling -> linear head."""

    def __init__(self, config: ClipLSTMConfig, encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.config = c = config
        channels = 2 * c.in_channels if c.frame_differences else c.in_channels
        self.encoder = _encoder(encoder if encoder is not None else c.encoder, channels, c.encoder_kwargs)
        k = 2 if c.bidirectional else 1
        self.lstm = LSTM(self.encoder.out_features, c.hidden_size, c.num_layers, batch_first=True,
                         dropout=c.dropout if c.num_layers > 1 else 0.0, bidirectional=c.bidirectional)
        self.pool = create_pool(c.pooling, k * c.hidden_size, k)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(self.pool.out_features, c.num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits (B, K) of clips x (B, T, C, H, W) with ``lengths`` (B,) valid frames (None: all T).

        Legend: B clips, T frames, C channels, H x W frame size, F frame features, D directions,
        H' hidden size, K classes.
        """
        _check_clips(x, self.config.in_channels)
        if self.config.frame_differences:
            previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)
            x = torch.cat([x, x - previous], dim=2)  # -> (B, T, 2C, H, W); step 0's difference is zero
        feats = self.drop(encode_frames(self.encoder, x, lengths))  # -> (B, T, F)
        out, _ = self.lstm(feats, lengths=lengths)  # -> (B, T, D*H')
        return self.head(self.drop(self.pool(out, lengths)))  # -> (B, D*H') -> (B, K)

    def loss(self, x: Tensor, lengths: Tensor | None, y: Tensor) -> Tensor:
        """Mean cross-entropy of the clips' logits against class indices y (B,)."""
        return F.cross_entropy(self(x, lengths), y)


# ------------------------------------------------------------------- single-frame baseline


@dataclass
class FrameClassifierConfig:
    num_classes: int
    in_channels: int = 1
    encoder: str = "cnn"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    dropout: float = 0.0  # before the head

    def __post_init__(self) -> None:
        ClipLSTMConfig(self.num_classes, self.in_channels, self.encoder, self.encoder_kwargs, dropout=self.dropout)

    def to_dict(self) -> dict:
        return asdict(self)


class FrameClassifier(nn.Module):
    """The single-frame baseline: the frame encoder on the middle valid frame (``lengths // 2``)
    of each clip -- the middle slice of a volume -- then a linear head."""

    def __init__(self, config: FrameClassifierConfig, encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = _encoder(encoder if encoder is not None else c.encoder, c.in_channels, c.encoder_kwargs)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(self.encoder.out_features, c.num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits (B, K) from the middle valid frame of clips x (B, T, C, H, W) (legend: :class:`ClipLSTM`)."""
        _check_clips(x, self.config.in_channels)
        b, t = x.shape[:2]
        length_mask(lengths, b, t, x.device)  # validates lengths
        middle = (torch.full((b,), t, device=x.device) if lengths is None
                  else torch.as_tensor(lengths, device=x.device)) // 2
        frames = x[torch.arange(b, device=x.device), middle]  # -> (B, C, H, W)
        return self.head(self.drop(self.encoder.forward_features(frames)))  # -> (B, F) -> (B, K)

    def loss(self, x: Tensor, lengths: Tensor | None, y: Tensor) -> Tensor:
        return F.cross_entropy(self(x, lengths), y)


# ------------------------------------------------------------------------------ registry


def _build(cls, config_cls, defaults: dict, kwargs: dict):
    encoder = kwargs.pop("encoder", defaults.get("encoder", "cnn"))
    module = None if isinstance(encoder, str) else encoder
    config = config_cls(**{**defaults, **kwargs, "encoder": encoder if module is None else "custom"})
    return cls(config, module)


@register_model("cnn_lstm", arguments=ClipLSTMConfig, task="action")
def cnn_lstm(**kwargs) -> ClipLSTM:
    """CNN-LSTM (LRCN-style) clip classifier: frame encoder -> LSTM (lengths) -> pooling -> head."""
    return _build(ClipLSTM, ClipLSTMConfig, {}, kwargs)


@register_model("slice_lstm", arguments=ClipLSTMConfig, task="volume")
def slice_lstm(**kwargs) -> ClipLSTM:
    """Volume classifier: per-slice CNN features -> bidirectional LSTM over the slices -> mean pooling -> head."""
    return _build(ClipLSTM, ClipLSTMConfig, {"bidirectional": True, "pooling": "mean"}, kwargs)


@register_model("frame_cnn", arguments=FrameClassifierConfig, task="action")
def frame_cnn(**kwargs) -> FrameClassifier:
    """Single-frame baseline: the CNN-LSTM's frame encoder on the middle frame, linear head."""
    return _build(FrameClassifier, FrameClassifierConfig, {}, kwargs)


@register_model("slice_cnn", arguments=FrameClassifierConfig, task="volume")
def slice_cnn(**kwargs) -> FrameClassifier:
    """Single-slice 2D baseline for volumes: the frame encoder on the middle slice, linear head."""
    return _build(FrameClassifier, FrameClassifierConfig, {}, kwargs)
