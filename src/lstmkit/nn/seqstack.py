"""The shell every modern recurrent layer (:class:`SLSTM`, :class:`MLSTM`, :class:`MinLSTM`) shares.

A layer type supplies one *core* per layer and direction, a module with

- ``init_state(batch, like) -> tuple`` of zero-state tensors, each (B, ...);
- ``sequence(x (T, B, D), state, valid (T, B) bool | None) -> (out (T, B, H), state)``: the
  whole sequence at once; steps where ``valid`` is False leave the state exactly as it was
  (a padded step is the identity), so the returned state is the one at each sequence's own
  last valid step;
- ``step(x_t (B, D), state) -> (h_t (B, H), state)``: one step, for streaming.

:class:`RecurrentStack` turns cores into a layer with ``torch.nn.LSTM``'s calling convention:
(T, B, D) or batch-first or unbatched input, ``lengths``, the backward direction of a
bidirectional layer run within each length (:func:`.lengths.reverse_padded`), stacked layers with
torch's inter-layer dropout, and a state whose tensors are stacked over layers and directions as
(L*K, B, ...) in torch's order (layer 0 forward, layer 0 backward, layer 1 forward, ...).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from .inputs import check_sequence_input
from .lengths import check_lengths, reverse_padded

__all__ = ["Modes", "RecurrentStack"]


class Modes:
    """A layer that computes in one of several equivalent forms (``mode``): the setter checks the
    name against ``MODES`` and hands it to every core."""

    MODES: tuple[str, ...] = ()

    def check_mode(self, value: str) -> None:
        if value not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {value!r}")

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.check_mode(value)
        self._mode = value
        for core in self.cores:
            core.mode = value


class RecurrentStack(nn.Module):
    """Layers x directions of cores with ``torch.nn.LSTM``'s interface (see the module docstring).

    Subclasses set ``State`` (a NamedTuple class) and implement ``_make_core(layer_input_size)``.
    """

    State: type[NamedTuple]

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size)
        self.hidden_size = check_int("hidden_size", hidden_size)
        self.num_layers = check_int("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a float in [0, 1], got {dropout!r}")
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self._factory = {"device": device, "dtype": dtype}

    def _build(self) -> None:
        """Create the cores; subclasses call it at the end of ``__init__``."""
        cores = []
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            cores += [self._make_core(layer_in) for _ in range(self.num_directions)]
        self.cores = nn.ModuleList(cores)

    @property
    def output_size(self) -> int:
        """Width of the output: K*H."""
        return self.num_directions * self.hidden_size

    def _make_core(self, input_size: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- checks -------------------------------------------------------------------------
    def _check_input(self, input: Tensor) -> tuple[Tensor, bool]:
        return check_sequence_input(input, self.input_size, self.batch_first, next(self.parameters()))

    def initial_state(self, batch: int, like: Tensor) -> NamedTuple:
        """The zero state for ``batch`` sequences: every field (L*K, B, ...)."""
        parts = [core.init_state(batch, like) for core in self.cores]
        return self.State(*(torch.stack(f) for f in zip(*parts)))

    def _check_state(self, hx, batch: int, like: Tensor, unbatched: bool) -> list[tuple[Tensor, ...]]:
        """hx (a State or tuple of its fields, each (L*K, B, ...)) -> one tuple per core."""
        zero = self.initial_state(batch, like)
        if hx is None:
            return [tuple(f[i] for f in zero) for i in range(len(self.cores))]
        names = self.State._fields
        if not isinstance(hx, (tuple, list)) or len(hx) != len(names) or not all(isinstance(t, Tensor) for t in hx):
            raise TypeError(f"hx must be a {self.State.__name__} {names} of tensors, got {type(hx).__name__}")
        fields = []
        for name, t, ref in zip(names, hx, zero):
            if unbatched:
                t = t.unsqueeze(1)
            if tuple(t.shape) != tuple(ref.shape):
                raise ValueError(f"hx.{name} must have shape {tuple(ref.shape)} (num_layers*num_directions, batch, "
                                 f"...), got {tuple(t.shape)}")
            if t.dtype != like.dtype or t.device != like.device:
                raise TypeError(f"hx.{name} has dtype {t.dtype} on {t.device}; expected {like.dtype} on {like.device}")
            fields.append(t)
        return [tuple(f[i] for f in fields) for i in range(len(self.cores))]

    # -- forward ------------------------------------------------------------------------
    def forward(self, input: Tensor, hx=None, lengths: Tensor | Sequence[int] | None = None):
        """input (T, B, D) | (B, T, D) batch first | (T, D) unbatched; hx a ``State`` with fields
        (L*K, B, ...); lengths (B,) ints in [1, T]. Returns (output (T, B, K*H), zero past each
        length, State at each sequence's last valid step, every direction)."""
        x, unbatched = self._check_input(input)
        if self.batch_first:
            x = x.transpose(0, 1)  # -> (T, B, D)
        total, batch = x.shape[0], x.shape[1]
        states = self._check_state(hx, batch, x, unbatched)
        lens = check_lengths(lengths, batch, total) if lengths is not None else None
        if lens is not None and bool((lens == total).all()):
            lens = None  # nothing is padded
        valid = None
        if lens is not None:
            valid = (torch.arange(total).unsqueeze(1) < lens.unsqueeze(0)).to(x.device)  # (T, B)
            x = x.masked_fill(~valid.unsqueeze(-1), 0.0)  # padding may hold anything, NaN included
        new_states = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                idx = layer * self.num_directions + direction
                inp = x if direction == 0 else (reverse_padded(x, lens) if lens is not None else x.flip(0))
                out, state = self.cores[idx].sequence(inp, states[idx], valid)
                if direction:
                    out = reverse_padded(out, lens) if lens is not None else out.flip(0)
                outs.append(out)
                new_states.append(state)
            x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # -> (T, B, K*H)
            if valid is not None:
                x = x * valid.unsqueeze(-1).to(x.dtype)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        state = self.State(*(torch.stack(f) for f in zip(*new_states)))
        if unbatched:  # (T, D) in, whatever batch_first says (torch's convention)
            return x.squeeze(1), self.State(*(f.squeeze(1) for f in state))
        return (x.transpose(0, 1) if self.batch_first else x), state

    def step(self, x_t: Tensor, state=None):
        """One step of a unidirectional layer: x_t (B, D) -> (h_t (B, H) of the top layer, new state).

        Equal to ``forward`` over a sequence one step at a time (``state`` None: zeros)."""
        if self.bidirectional:
            raise ValueError("a bidirectional layer cannot step: its backward direction reads the sequence from "
                             "its end; step a unidirectional layer")
        if not isinstance(x_t, Tensor) or x_t.dim() != 2 or x_t.shape[-1] != self.input_size:
            raise ValueError(f"x_t must be a (batch, input_size={self.input_size}) tensor, got "
                             f"{tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__}")
        states = self._check_state(state, x_t.shape[0], x_t, False)
        h, new_states = x_t, []
        for core, s in zip(self.cores, states):
            h, s = core.step(h, s)
            new_states.append(s)
        return h, self.State(*(torch.stack(f) for f in zip(*new_states)))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s


def keep_where(valid_t: Tensor | None, new: tuple[Tensor, ...], old: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Per batch element, the new state where ``valid_t`` (B,) is True, else the old one."""
    if valid_t is None:
        return new
    out = []
    for n, o in zip(new, old):
        m = valid_t.view(-1, *([1] * (n.dim() - 1)))
        out.append(torch.where(m, n, o))
    return tuple(out)
