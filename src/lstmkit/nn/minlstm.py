"""minLSTM (Feng, Tung, Ahmed, Bengio, Hajimirsadeghi 2024, "Were RNNs All We Needed?", arXiv:2410.01201).

The gates read the input only, never ``h_{t-1}``, so the recurrence is a first-order linear one,
``h_t = a_t * h_{t-1} + b_t``, which a parallel scan solves for the whole sequence at once.

Equations (per step, element-wise over the H hidden units; ``W_*`` act on x_t only)::

    f_t  = sigmoid(W_f x_t + b_f)                  forget gate
    i_t  = sigmoid(W_i x_t + b_i)                  input gate
    h~_t = g(W_h x_t + b_h)                        candidate, g(x) = x + 1/2 (x >= 0), sigmoid(x) (x < 0)
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)   normalised gates (time-independent scale)
    h_t  = f'_t * h_{t-1} + i'_t * h~_t

``g`` keeps h~ (and so every h_t) positive, which the log-space scan needs (the paper's Appendix
"log-space"). Parallel form (Heinsen 2023, "Efficient parallelization of a ubiquitous sequential
computation"): with ``a*_t = sum_{s<=t} log f'_s``,

    log h_t = a*_t + logcumsumexp_{s<=t}(log i'_s + log h~_s - a*_s)   [+ log h_0 term]

where ``log f' = -softplus(softplus(-f~) - softplus(-i~))`` and ``log i' = -softplus(softplus(-i~)
- softplus(-f~))`` are computed without forming the ratio. A padded step has ``log f' = 0`` and
``log i' = -inf``: it is the identity, so the state at the end is the one at each length.

``mode="parallel"`` (default) runs the scan; ``mode="recurrent"`` the step-by-step loop (the same
maths, for tests and for streaming, where ``step`` is used). Differences from the paper's code:
none in the equations; a given initial state ``h_0`` enters the scan as ``log max(h_0, tiny)``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .seqstack import RecurrentStack, keep_where

__all__ = ["MinLSTM", "MinLSTMState"]

Mode = Literal["parallel", "recurrent"]
_MODES = ("parallel", "recurrent")


class MinLSTMState(NamedTuple):
    """h: (L*K, B, H), positive."""

    h: Tensor


def g(x: Tensor) -> Tensor:
    """The paper's positive activation: x + 1/2 for x >= 0, sigmoid(x) below (continuous at 0)."""
    return torch.where(x >= 0, x.clamp_min(0) + 0.5, torch.sigmoid(x.clamp_max(0)))


def log_g(x: Tensor) -> Tensor:
    """log g(x), computed without overflow on either side."""
    return torch.where(x >= 0, torch.log(x.clamp_min(0) + 0.5), -F.softplus(-x.clamp_max(0)))


class MinLSTMCore(nn.Module):
    """One layer, one direction: x (T, B, D) -> h (T, B, H)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, mode: str, factory: dict) -> None:
        super().__init__()
        self.hidden_size, self.mode = hidden_size, mode
        self.linear = nn.Linear(input_size, 3 * hidden_size, bias=bias, **factory)  # rows: f, i, h~

    def init_state(self, batch: int, like: Tensor) -> tuple[Tensor]:
        return (like.new_zeros(batch, self.hidden_size),)

    def _gates(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        pf, pi, ph = self.linear(x).chunk(3, dim=-1)
        diff = F.softplus(-pf) - F.softplus(-pi)
        return -F.softplus(diff), -F.softplus(-diff), ph  # log f', log i', h~ pre-activation

    def step(self, x_t: Tensor, state: tuple[Tensor]) -> tuple[Tensor, tuple[Tensor]]:
        log_f, log_i, ph = self._gates(x_t)  # -> (B, H) each
        h = torch.exp(log_f) * state[0] + torch.exp(log_i) * g(ph)
        return h, (h,)

    def sequence(self, x: Tensor, state: tuple[Tensor], valid: Tensor | None) -> tuple[Tensor, tuple[Tensor]]:
        if self.mode == "recurrent":
            outs, s = [], state
            for t in range(x.shape[0]):
                h, new = self.step(x[t], s)
                s = keep_where(None if valid is None else valid[t], new, s)
                outs.append(h)
            return torch.stack(outs), s
        log_f, log_i, ph = self._gates(x)  # -> (T, B, H) each
        log_b = log_i + log_g(ph)
        if valid is not None:
            pad = ~valid.unsqueeze(-1)
            log_f = log_f.masked_fill(pad, 0.0)
            log_b = log_b.masked_fill(pad, float("-inf"))
        a_star = torch.cumsum(log_f, dim=0)  # -> (T, B, H)
        log_h = a_star + torch.logcumsumexp(log_b - a_star, dim=0)
        h0 = state[0]
        log_h0 = torch.log(h0.clamp_min(torch.finfo(h0.dtype).tiny))
        log_h = torch.logaddexp(log_h, a_star + log_h0)
        h = torch.exp(log_h)
        return h, (h[-1],)


class MinLSTM(RecurrentStack):
    """minLSTM layers with ``torch.nn.LSTM``'s interface (equations: the module docstring).

    Args as ``torch.nn.LSTM`` (``input_size, hidden_size, num_layers, bias, batch_first, dropout,
    bidirectional, device, dtype``); keyword-only ``mode``: ``"parallel"`` (log-space scan) or
    ``"recurrent"``. ``forward(input, hx=None, lengths=None) -> (output, MinLSTMState(h))``;
    ``step(x_t, state) -> (h_t, state)`` for streaming.
    """

    State = MinLSTMState

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, mode: Mode = "parallel") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self._mode = mode
        self._build()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {value!r}")
        self._mode = value
        for core in self.cores:
            core.mode = value

    def _make_core(self, input_size: int) -> nn.Module:
        return MinLSTMCore(input_size, self.hidden_size, self.bias, self._mode, self._factory)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mode={self._mode!r}"
