"""Modern recurrent layers by name, their residual pre-norm stacking, and streaming.

- :func:`create_recurrent` / :func:`list_recurrent`: ``"slstm"``, ``"mlstm"``, ``"minlstm"``
  (:class:`SLSTM`, :class:`MLSTM`, :class:`MinLSTM`), plain or in residual blocks.
- :class:`ResidualRecurrent`: the xLSTM paper's stacking (Beck et al. 2024, Section 2.4): an
  input projection to H, then per block ``x = x + W_o layer(LN(x))`` (the layer bidirectional
  if asked, W_o mapping K*H back to H) and ``x = x + MLP(LN(x))`` (GELU, width ``ffn_factor * H``;
  the sLSTM block's post-up-projection), and a final LayerNorm. Simpler than the paper's blocks:
  no causal convolution, group norm or gated up-projection inside them. Its state is its blocks'
  states concatenated over the layer axis, so it has the same type and shapes as the plain
  layer's with ``num_layers`` = number of blocks.
- :class:`RecurrentStream`: one step per call with the state kept between calls, the
  ``LSTMStream`` interface (``step``, ``run``, ``state``, ``reset``) for these layers (torch only).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from .lengths import check_lengths
from .minlstm import MinLSTM
from .mlstm import MLSTM
from .names import register_into, unknown_name
from .seqstack import RecurrentStack
from .slstm import SLSTM

__all__ = ["create_recurrent", "list_recurrent", "ResidualRecurrent", "RecurrentStream"]

_LAYERS: dict[str, type] = {}
for _name, _cls in (("slstm", SLSTM), ("mlstm", MLSTM), ("minlstm", MinLSTM)):
    register_into(_LAYERS, "recurrent layer", _name)(_cls)


def list_recurrent() -> list[str]:
    """Names :func:`create_recurrent` accepts."""
    return sorted(_LAYERS)


class ResidualRecurrent(nn.Module):
    """Residual pre-norm blocks of one recurrent layer type (see the module docstring).

    ``forward(input, hx=None, lengths=None) -> (output (T, B, H) or batch first, state)``: the
    output is H wide whatever the direction count (``output_size``), zero past each length.
    """

    def __init__(self, layer: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, ffn_factor: float = 2.0, **options) -> None:
        super().__init__()
        if layer not in _LAYERS:
            raise unknown_name("recurrent layer", layer, _LAYERS)
        if isinstance(ffn_factor, bool) or not isinstance(ffn_factor, (int, float)) or ffn_factor < 0:
            raise ValueError(f"ffn_factor must be a number >= 0 (0: no MLP sub-block), got {ffn_factor!r}")
        self.layer, self.input_size, self.hidden_size = layer, check_int("input_size", input_size), hidden_size
        self.num_layers, self.batch_first, self.dropout = check_int("num_layers", num_layers), bool(batch_first), dropout
        self.bidirectional = bool(bidirectional)
        k = 2 if bidirectional else 1
        fac = {"device": device, "dtype": dtype}
        self.proj_in = nn.Linear(input_size, hidden_size, bias=bias, **fac)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size, **fac) for _ in range(num_layers))
        self.layers = nn.ModuleList(_LAYERS[layer](hidden_size, hidden_size, 1, bias, False, 0.0, bidirectional,
                                                   **fac, **options) for _ in range(num_layers))
        self.proj_out = nn.ModuleList(nn.Linear(k * hidden_size, hidden_size, bias=bias, **fac)
                                      for _ in range(num_layers))
        width = int(round(ffn_factor * hidden_size))
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(hidden_size, **fac) for _ in range(num_layers if width else 0))
        self.ffns = nn.ModuleList(nn.Sequential(nn.Linear(hidden_size, width, **fac), nn.GELU(),
                                                nn.Linear(width, hidden_size, **fac))
                                  for _ in range(num_layers if width else 0))
        self.norm_out = nn.LayerNorm(hidden_size, **fac)
        self.State = self.layers[0].State
        self._k = k

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def initial_state(self, batch: int, like: Tensor):
        """The zero state: the blocks' zero states concatenated over the layer axis."""
        parts = [layer.initial_state(batch, like) for layer in self.layers]
        return self.State(*(torch.cat(f, dim=0) for f in zip(*parts)))

    def forward(self, input: Tensor, hx=None, lengths: Tensor | Sequence[int] | None = None):
        if not isinstance(input, Tensor) or input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"input must be (T, B, input_size={self.input_size}) (batch first if asked) or "
                             f"(T, input_size) unbatched, got "
                             f"{tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__}")
        x = input.transpose(0, 1) if self.batch_first and input.dim() == 3 else input  # -> (T, B, D) or (T, D)
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
        valid = None
        if lengths is not None:
            lens = check_lengths(lengths, x.shape[1], x.shape[0])
            valid = (torch.arange(x.shape[0]).unsqueeze(1) < lens.unsqueeze(0)).to(x.device).unsqueeze(-1)  # (T, B, 1)
            x = x.masked_fill(~valid, 0.0)
        states = self._split(hx, unbatched)
        x = self.proj_in(x)  # -> (T, B, H)
        new = []
        for i in range(self.num_layers):
            out, s = self.layers[i](self.norms[i](x), states[i], lengths=lengths)  # -> (T, B, K*H)
            x = x + F.dropout(self.proj_out[i](out), self.dropout, self.training)
            if self.ffns:
                x = x + F.dropout(self.ffns[i](self.ffn_norms[i](x)), self.dropout, self.training)
            new.append(s)
        x = self.norm_out(x)
        if valid is not None:
            x = x * valid.to(x.dtype)
        state = self.State(*(torch.cat(f, dim=0) for f in zip(*new)))
        if unbatched:
            x, state = x.squeeze(1), self.State(*(f.squeeze(1) for f in state))
        return (x.transpose(0, 1) if self.batch_first and not unbatched else x), state

    def _split(self, hx, unbatched: bool) -> list:
        if hx is None:
            return [None] * self.num_layers
        if not isinstance(hx, (tuple, list)) or len(hx) != len(self.State._fields):
            raise TypeError(f"hx must be a {self.State.__name__} {self.State._fields}")
        k = self._k
        return [self.State(*(f[i * k:(i + 1) * k] for f in hx)) for i in range(self.num_layers)]

    def step(self, x_t: Tensor, state=None):
        """x_t (B, D) -> (output (B, H), state); unidirectional blocks only."""
        if self.bidirectional:
            raise ValueError("a bidirectional layer cannot step; step a unidirectional one")
        states = self._split(state, False)
        x = self.proj_in(x_t)
        new = []
        for i in range(self.num_layers):
            out, s = self.layers[i].step(self.norms[i](x), states[i])
            x = x + self.proj_out[i](out)
            if self.ffns:
                x = x + self.ffns[i](self.ffn_norms[i](x))
            new.append(s)
        return self.norm_out(x), self.State(*(torch.cat(f, dim=0) for f in zip(*new)))


def create_recurrent(name: str, input_size: int, hidden_size: int, num_layers: int = 1, *, batch_first: bool = False,
                     dropout: float = 0.0, bidirectional: bool = False, residual: bool = False,
                     **options) -> RecurrentStack | ResidualRecurrent:
    """A modern recurrent layer by name (:func:`list_recurrent`); ``residual=True`` stacks
    ``num_layers`` residual pre-norm blocks (:class:`ResidualRecurrent`); ``options`` are the
    layer's keyword-only arguments (``num_heads``, ``mode``, ``chunk_size``, ``forget_gate``)."""
    if name not in _LAYERS:
        raise unknown_name("recurrent layer", name, _LAYERS)
    if residual:
        return ResidualRecurrent(name, input_size, hidden_size, num_layers, batch_first=batch_first, dropout=dropout,
                                 bidirectional=bidirectional, **options)
    return _LAYERS[name](input_size, hidden_size, num_layers, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, **options)


class RecurrentStream:
    """Step a unidirectional :class:`SLSTM`, :class:`MLSTM`, :class:`MinLSTM` or
    :class:`ResidualRecurrent` one input at a time, keeping its state (eval semantics, no grad).

    ``step(x_t)``: (B, D) or (D,) when B = 1, a tensor or NumPy array of the layer's dtype ->
    the top output (B, H) or (H,), of the same kind. ``run(x)`` steps through (T, B, D).
    ``state`` / ``reset(state)`` use the layer's own state tuple (fields (L*K, B, ...)), so a
    state moves freely between the stream and ``layer(x, state)``.
    """

    def __init__(self, layer: RecurrentStack | ResidualRecurrent, batch_size: int = 1) -> None:
        if not isinstance(layer, (RecurrentStack, ResidualRecurrent)):
            raise TypeError(f"layer must be an SLSTM, MLSTM, MinLSTM or ResidualRecurrent, got {type(layer).__name__}")
        if layer.bidirectional:
            raise ValueError("a bidirectional layer cannot stream: its backward direction reads the sequence from "
                             "its end; stream a unidirectional model")
        self.layer, self.batch_size = layer, check_int("batch_size", batch_size)
        weight = next(layer.parameters())
        self.dtype, self.device = weight.dtype, weight.device
        self._np_dtype = {torch.float32: np.float32, torch.float64: np.float64}.get(self.dtype)
        self._cores = list(layer.cores) if isinstance(layer, RecurrentStack) else None
        self.reset()

    def reset(self, state=None) -> None:
        """Zero state (None) or the given one (the layer's state tuple)."""
        if state is None:
            x = torch.zeros(1, dtype=self.dtype, device=self.device)
            self._state = self.layer.initial_state(self.batch_size, x)
            return
        fields = type(self._state)._fields
        if not isinstance(state, (tuple, list)) or len(state) != len(fields):
            raise TypeError(f"state must be a tuple of {len(fields)} tensors {fields}")
        new = []
        for name, t, ref in zip(fields, state, self._state):
            t = torch.as_tensor(t, dtype=self.dtype, device=self.device)
            if t.shape != ref.shape:
                raise ValueError(f"state.{name} must have shape {tuple(ref.shape)}, got {tuple(t.shape)}")
            new.append(t.clone())
        self._state = type(self._state)(*new)

    @property
    def state(self):
        """A copy of the current state."""
        if self._cores is not None:
            return self.layer.State(*(torch.stack(f) for f in zip(*self._core_states)))
        return type(self._state)(*(f.clone() for f in self._state))

    @property
    def _state(self):
        return self.__state

    @_state.setter
    def _state(self, value) -> None:
        self.__state = value
        if self._cores is not None:
            self._core_states = [tuple(f[j].clone() for f in value) for j in range(len(self._cores))]

    def step(self, x_t: np.ndarray | Tensor) -> np.ndarray | Tensor:
        is_array = isinstance(x_t, np.ndarray)
        x = torch.from_numpy(x_t) if is_array else x_t
        if not isinstance(x, Tensor):
            raise TypeError(f"x_t must be a NumPy array or a torch Tensor, got {type(x_t).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"x_t has dtype {x.dtype}, expected the stream's dtype {self.dtype}")
        single = x.dim() == 1 and self.batch_size == 1
        if single:
            x = x.unsqueeze(0)
        if tuple(x.shape) != (self.batch_size, self.layer.input_size):
            raise ValueError(f"x_t must have shape ({self.batch_size}, {self.layer.input_size}), got {tuple(x_t.shape)}")
        with torch.no_grad():
            if self._cores is None:
                y, self._state = self.layer.step(x.to(self.device), self._state)
            else:  # straight into the cores: no per-step checks or state stacking
                y = x.to(self.device)
                for j, core in enumerate(self._cores):
                    y, self._core_states[j] = core.step(y, self._core_states[j])
        y = y[0] if single else y
        return y.cpu().numpy() if is_array else y

    def run(self, x: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """Step through x (T, B, D) (or (T, D) when B = 1) -> outputs (T, B, H) or (T, H)."""
        outs = [self.step(x[t]) for t in range(x.shape[0])]
        return np.stack(outs) if isinstance(x, np.ndarray) else torch.stack(outs)
