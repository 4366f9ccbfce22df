"""Convolutional LSTM (Shi et al. 2015, "Convolutional LSTM Network: A Machine Learning Approach
for Precipitation Nowcasting"): the LSTM's matrix products become convolutions, so input,
hidden and cell states are feature maps ``(B, N, H, W)``.

    i_t = sigmoid(W_xi * X_t + W_hi * H_{t-1} + W_ci o C_{t-1} + b_i)
    f_t = sigmoid(W_xf * X_t + W_hf * H_{t-1} + W_cf o C_{t-1} + b_f)
    C_t = f_t o C_{t-1} + i_t o tanh(W_xc * X_t + W_hc * H_{t-1} + b_c)
    o_t = sigmoid(W_xo * X_t + W_ho * H_{t-1} + W_co o C_t + b_o)
    H_t = o_t o tanh(C_t)                      (* convolution, o Hadamard product)

Parameter names and gate order follow ``torch.nn.LSTM`` (``weight_ih`` ``(4N, C, k, k)``,
``weight_hh`` ``(4N, N, k, k)``, ``bias_ih`` / ``bias_hh`` ``(4N,)``, gates i, f, g, o), so a
1x1 kernel on 1x1 frames without peepholes *is* ``torch.nn.LSTM`` (the tests check it).
Convolutions are "same"-padded (odd kernel sizes), so frames keep their size.

Peepholes (``W_c*``), a choice:

- ``"pixel"`` (the paper): one weight per channel and pixel, ``(3, N, H, W)``; needs the frame
  size ``spatial_size`` up front and then only works at that size.
- ``"channel"`` (the default): one weight per channel, ``(3, N, 1, 1)``, broadcast over pixels;
  works at any frame size. This is the default so a ConvLSTM is size-agnostic like a conv.
- ``"none"``: the plain LSTM gates.

Initialisation: every weight, bias and peephole ``U(-1/sqrt(N k^2), 1/sqrt(N k^2))``, which is
torch's LSTM initialisation ``U(-1/sqrt(N), 1/sqrt(N))`` for ``k = 1``; ``forget_bias`` then
sets the effective forget-gate bias (``bias_ih[f] + bias_hh[f]``).

State is carried across calls: ``forward`` takes the ``(h, c)`` per layer a previous call
returned, and two calls over consecutive pieces of a clip equal one call over the whole clip.
With ``lengths`` (valid frames per clip) the state stops at each clip's last valid frame and
outputs past it are zero.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cell import LSTMState, init_forget_bias
from ..checks import check_int
from .lengths import check_lengths

__all__ = ["ConvLSTMCell", "ConvLSTM", "Peephole"]

Peephole = Literal["none", "channel", "pixel"]
_PEEPHOLES = ("none", "channel", "pixel")


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: ``forward(x (B, C, H, W), state=(h, c) each (B, N, H, W) or None)
    -> LSTMState(h, c)``.

    ``input_channels`` may be 0: a cell without input (the forecaster of an encoder-forecaster
    runs on its state alone); ``x`` is then ``None`` or a ``(B, 0, H, W)`` tensor.
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3, bias: bool = True, *,
                 peephole: Peephole = "channel", spatial_size: tuple[int, int] | None = None,
                 forget_bias: float | None = None) -> None:
        super().__init__()
        self.input_channels = check_int("input_channels", input_channels, 0)
        self.hidden_channels = check_int("hidden_channels", hidden_channels)
        self.kernel_size = check_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding keeps the frame size), got {kernel_size}")
        if peephole not in _PEEPHOLES:
            raise ValueError(f"peephole must be one of {', '.join(map(repr, _PEEPHOLES))}, got {peephole!r}")
        if peephole == "pixel":
            if (not isinstance(spatial_size, (tuple, list)) or len(spatial_size) != 2
                    or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in spatial_size)):
                raise ValueError("peephole='pixel' has one weight per pixel: give spatial_size=(H, W) of the frames "
                                 f"(positive ints), got {spatial_size!r}; or use peephole='channel'")
            spatial_size = (int(spatial_size[0]), int(spatial_size[1]))
        elif spatial_size is not None:
            raise ValueError(f"spatial_size is only used by peephole='pixel', got it with peephole={peephole!r}")
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True (there is no bias to initialise)")
        if forget_bias is not None and (isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float))
                                        or not math.isfinite(forget_bias)):
            raise ValueError(f"forget_bias must be a finite number or None, got {forget_bias!r}")
        self.bias, self.peephole, self.spatial_size, self.forget_bias = bool(bias), peephole, spatial_size, forget_bias
        n, k = hidden_channels, kernel_size
        if input_channels:
            self.weight_ih = nn.Parameter(torch.empty(4 * n, input_channels, k, k))
        else:
            self.register_parameter("weight_ih", None)
        self.weight_hh = nn.Parameter(torch.empty(4 * n, n, k, k))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * n))
            self.bias_hh = nn.Parameter(torch.empty(4 * n))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if peephole == "none":
            self.register_parameter("weight_c", None)
        else:
            self.weight_c = nn.Parameter(torch.empty(3, n, *(spatial_size if peephole == "pixel" else (1, 1))))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_channels * self.kernel_size**2)
        with torch.no_grad():
            for p in self.parameters(recurse=False):
                p.uniform_(-bound, bound)
        if self.forget_bias is not None:
            init_forget_bias(self.bias_ih, self.bias_hh, float(self.forget_bias))

    def extra_repr(self) -> str:
        return (f"{self.input_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}, bias={self.bias}, "
                f"peephole={self.peephole!r}" + (f", spatial_size={self.spatial_size}" if self.spatial_size else ""))

    def input_conv(self, x: Tensor) -> Tensor | None:
        """``W_x * x + b_ih`` for a batch of frames (B', C, H, W) -> (B', 4N, H, W); None without input.

        The input path does not depend on the state, so a layer computes it for all frames in one call."""
        if self.weight_ih is None:
            return None
        return F.conv2d(x, self.weight_ih, self.bias_ih, padding=self.kernel_size // 2)

    def zero_state(self, batch: int, height: int, width: int, like: Tensor) -> LSTMState:
        z = like.new_zeros(batch, self.hidden_channels, height, width)
        return LSTMState(z, z)

    def step(self, zx: Tensor | None, state: LSTMState) -> LSTMState:
        """One step from a precomputed input term ``zx`` (B, 4N, H, W) (or None) and ``state``."""
        h, c = state
        z = F.conv2d(h, self.weight_hh, self.bias_hh, padding=self.kernel_size // 2)  # -> (B, 4N, H, W)
        if zx is not None:
            z = z + zx
        elif self.bias_ih is not None:
            z = z + self.bias_ih[:, None, None]
        z_i, z_f, z_g, z_o = z.chunk(4, dim=1)  # -> 4 x (B, N, H, W)
        if self.weight_c is not None:
            z_i = z_i + self.weight_c[0] * c
            z_f = z_f + self.weight_c[1] * c
        c_new = torch.sigmoid(z_f) * c + torch.sigmoid(z_i) * torch.tanh(z_g)
        if self.weight_c is not None:
            z_o = z_o + self.weight_c[2] * c_new
        h_new = torch.sigmoid(z_o) * torch.tanh(c_new)
        return LSTMState(h_new, c_new)

    def check_frames(self, height: int, width: int, what: str = "x") -> None:
        if self.spatial_size is not None and (height, width) != self.spatial_size:
            raise ValueError(f"{what} frames are {height}x{width} (HxW) but this ConvLSTM has per-pixel peepholes for "
                             f"{self.spatial_size[0]}x{self.spatial_size[1]} frames")

    def check_state(self, state, batch: int, height: int, width: int, what: str = "state") -> LSTMState:
        if not isinstance(state, (tuple, list)) or len(state) != 2 or not all(isinstance(t, Tensor) for t in state):
            raise TypeError(f"{what} must be a pair (h, c) of tensors")
        want = (batch, self.hidden_channels, height, width)
        for name, t in zip(("h", "c"), state):
            if tuple(t.shape) != want:
                raise ValueError(f"{what} {name} must have shape (B, N, H, W) = {want}, got {tuple(t.shape)}")
        return LSTMState(state[0], state[1])

    def forward(self, x: Tensor | None, state: tuple[Tensor, Tensor] | None = None) -> LSTMState:
        """One step. Shapes: B batch, C input channels, N hidden channels, H x W frame size.

        x (B, C, H, W) (None when input_channels is 0 and a state is given); state (h, c) each
        (B, N, H, W), zeros when None -> LSTMState(h, c) each (B, N, H, W)."""
        if x is None:
            if self.input_channels or state is None:
                raise ValueError("x may be None only for a cell with input_channels=0 given a state")
            batch, _, height, width = state[0].shape
        else:
            if not isinstance(x, Tensor):
                raise TypeError(f"x must be a Tensor, got {type(x).__name__}")
            if x.dim() != 4 or x.shape[1] != self.input_channels:
                raise ValueError(f"x must be (B, C={self.input_channels}, H, W), got shape {tuple(x.shape)}")
            batch, _, height, width = x.shape
        self.check_frames(height, width)
        if state is None:
            state = self.zero_state(batch, height, width, x)
        state = self.check_state(state, batch, height, width)
        zx = self.input_conv(x) if x is not None and self.input_channels else None
        return self.step(zx, state)


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM layers over clips, with lengths and state carried across calls.

    ``hidden_channels``: an int (every layer) or one int per layer; ``num_layers`` must agree
    with a list. Keyword options (``peephole``, ``spatial_size``, ``forget_bias``) go to every
    :class:`ConvLSTMCell`; the layers are ``self.cells``.
    """

    def __init__(self, input_channels: int, hidden_channels: int | Sequence[int], kernel_size: int = 3,
                 num_layers: int | None = None, bias: bool = True, *, peephole: Peephole = "channel",
                 spatial_size: tuple[int, int] | None = None, forget_bias: float | None = None) -> None:
        super().__init__()
        if isinstance(hidden_channels, (list, tuple)):
            hidden = list(hidden_channels)
            if not hidden:
                raise ValueError("hidden_channels must be an int or a non-empty list of ints")
            if num_layers is not None and num_layers != len(hidden):
                raise ValueError(f"num_layers={num_layers} but hidden_channels lists {len(hidden)} layers")
        else:
            hidden = [hidden_channels] * check_int("num_layers", 1 if num_layers is None else num_layers)
        widths = [input_channels] + hidden
        self.cells = nn.ModuleList(
            ConvLSTMCell(widths[i], widths[i + 1], kernel_size, bias, peephole=peephole, spatial_size=spatial_size,
                         forget_bias=forget_bias) for i in range(len(hidden)))
        self.input_channels, self.hidden_channels = input_channels, hidden
        self.num_layers = len(hidden)

    @property
    def output_channels(self) -> int:
        return self.hidden_channels[-1]

    def forward(self, x: Tensor, state: Sequence[tuple[Tensor, Tensor]] | None = None,
                lengths: Tensor | Sequence[int] | None = None) -> tuple[Tensor, list[LSTMState]]:
        """Run the clips through every layer.

        Legend: B batch, T time (frames), C input channels, N hidden channels of the last layer,
        H x W frame size, L layers.

        x (B, T, C, H, W); state: None (zeros) or L pairs (h, c) each (B, N_l, H, W), e.g. the
        state a previous call returned; lengths (B,) valid frames per clip (None: all T).
        Returns outputs (B, T, N, H, W) (the last layer's h, zero past each length) and the
        final state per layer, each clip's at its own last valid frame."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a Tensor, got {type(x).__name__}")
        if x.dim() != 5:
            raise ValueError(f"x must be 5-D clips (B, T, C, H, W), got shape {tuple(x.shape)}")
        batch, total, channels, height, width = x.shape
        if channels != self.input_channels:
            raise ValueError(f"x has {channels} channels (dim 2 of (B, T, C, H, W)), expected "
                             f"input_channels={self.input_channels}")
        if total == 0:
            raise ValueError("x has no frames (T = 0)")
        if state is None:
            states = [cell.zero_state(batch, height, width, x) for cell in self.cells]
        else:
            if not isinstance(state, (list, tuple)) or len(state) != self.num_layers:
                raise ValueError(f"state must be a list of {self.num_layers} (h, c) pairs, one per layer")
            states = [cell.check_state(s, batch, height, width, f"state[{i}]")
                      for i, (cell, s) in enumerate(zip(self.cells, state))]
        mask = None
        if lengths is not None:
            lens = check_lengths(lengths, batch, total)
            if int(lens.min()) < total:
                mask = (torch.arange(total)[:, None] < lens[None, :]).to(x.device)  # (T, B) bool
        layer_in = x
        finals = []
        for cell, s in zip(self.cells, states):
            cell.check_frames(height, width)
            zx = cell.input_conv(layer_in.flatten(0, 1)) if cell.input_channels else None  # -> (B*T, 4N, H, W)
            zx = None if zx is None else zx.view(batch, total, *zx.shape[1:])
            outs = []
            for t in range(total):
                new = cell.step(None if zx is None else zx[:, t], s)
                if mask is not None:
                    keep = mask[t].view(batch, 1, 1, 1)
                    new = LSTMState(torch.where(keep, new.h, s.h), torch.where(keep, new.c, s.c))
                    outs.append(new.h * keep)
                else:
                    outs.append(new.h)
                s = new
            layer_in = torch.stack(outs, dim=1)  # -> (B, T, N_l, H, W)
            finals.append(s)
        return layer_in, finals
