"""sLSTM: the scalar-memory LSTM of xLSTM with exponential gating (Beck et al. 2024, "xLSTM:
Extended Long Short-Term Memory", arXiv:2405.04517, Section 2.2 and Appendix A.2).

Per step (element-wise over H units; R_* block-diagonal with NH heads of width H / NH, so
memory mixes only within a head)::

    z~_t = W_z x_t + R_z h_{t-1} + b_z,   z_t = tanh(z~_t)           cell input
    i~_t = W_i x_t + R_i h_{t-1} + b_i,   i_t = exp(i~_t)            input gate
    f~_t = W_f x_t + R_f h_{t-1} + b_f,   f_t = sigmoid(f~_t) or exp(f~_t)   forget gate
    o~_t = W_o x_t + R_o h_{t-1} + b_o,   o_t = sigmoid(o~_t)        output gate
    c_t = f_t c_{t-1} + i_t z_t                                      cell state
    n_t = f_t n_{t-1} + i_t                                          normaliser state
    h_t = o_t * c_t / n_t                                            hidden state

Stabilised (what is computed; c and n are held scaled by exp(-m), which h does not see)::

    m_t  = max(log f_t + m_{t-1}, i~_t)                              stabiliser state
    i'_t = exp(i~_t - m_t),   f'_t = exp(log f_t + m_{t-1} - m_t)

and c, n use i', f'. The state is (h, c, n, m); the zero state has n = m = 0 (h = o c / n is
taken with n clamped at the dtype's smallest normal number, which only matters if i' underflows
on the first step). sLSTM is sequential by design: h_{t-1} enters every gate, so the time loop
cannot be parallelised; the input side ``W x`` of all steps is one matrix product.

Differences from the xLSTM package's sLSTM layer: this is the cell alone (no causal
convolution feeding i and f, no group norm or up-projection of the sLSTM *block*; see
:class:`lstmkit.nn.ResidualRecurrent`), and the first step's stabiliser starts from m_0 = 0
where the package takes m_1 = i~_1 when n = 0 (h is invariant to m; outputs agree up to rounding).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from .inputs import input_projection
from .seqstack import RecurrentStack, keep_where

__all__ = ["SLSTM", "SLSTMState"]

_FORGET = ("sigmoid", "exp")


class SLSTMState(NamedTuple):
    """h, c, n, m: each (L*K, B, H)."""

    h: Tensor
    c: Tensor
    n: Tensor
    m: Tensor


class SLSTMCore(nn.Module):
    """One layer, one direction: x (T, B, D) -> h (T, B, H). Gate order i, f, z, o."""

    def __init__(self, input_size: int, hidden_size: int, num_heads: int, bias: bool, forget_gate: str,
                 factory: dict) -> None:
        super().__init__()
        self.hidden_size, self.num_heads, self.forget_gate = hidden_size, num_heads, forget_gate
        d = hidden_size // num_heads
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(4, num_heads, d, d, **factory))  # R: gate, head, in, out
        self.bias = nn.Parameter(torch.empty(4 * hidden_size, **factory)) if bias else None
        bound = 1.0 / math.sqrt(hidden_size)
        with torch.no_grad():
            self.weight_ih.uniform_(-bound, bound)
            self.weight_hh.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.zero_()
                self.bias[hidden_size:2 * hidden_size].copy_(torch.linspace(3.0, 6.0, hidden_size))  # forget gate

    def init_state(self, batch: int, like: Tensor) -> tuple[Tensor, ...]:
        z = like.new_zeros(batch, self.hidden_size)
        return z, z, z, z

    def recurrent_matrix(self) -> Tensor:
        """The block-diagonal R as one dense (H, 4H) matrix: h_{t-1} @ R gives all gates' pre-activations.

        Without autograd (streaming) the matrix is kept until the weights change (their version)."""
        if torch.is_grad_enabled():
            return torch.cat([torch.block_diag(*self.weight_hh[g]) for g in range(4)], dim=1)
        key = (self.weight_hh._version, self.weight_hh.data_ptr())
        cached = getattr(self, "_dense_r", None)
        if cached is None or cached[0] != key:
            cached = (key, torch.cat([torch.block_diag(*self.weight_hh[g]) for g in range(4)], dim=1))
            self._dense_r = cached
        return cached[1]

    def _cell(self, pre: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        _, c, n, m = state
        i_pre, f_pre, z_pre, o_pre = pre.chunk(4, dim=-1)
        log_f = F.logsigmoid(f_pre) if self.forget_gate == "sigmoid" else f_pre
        m_new = torch.maximum(log_f + m, i_pre)
        ip = torch.exp(i_pre - m_new)
        fp = torch.exp(log_f + m - m_new)
        c = fp * c + ip * torch.tanh(z_pre)
        n = fp * n + ip
        h = torch.sigmoid(o_pre) * c / n.clamp_min(torch.finfo(n.dtype).tiny)
        return h, c, n, m_new

    def step(self, x_t: Tensor, state: tuple[Tensor, ...]):
        pre = F.linear(x_t, self.weight_ih, self.bias) + state[0] @ self.recurrent_matrix()
        new = self._cell(pre, state)
        return new[0], new

    def sequence(self, x: Tensor, state: tuple[Tensor, ...], valid: Tensor | None):
        xp = input_projection(x, self.weight_ih, self.bias)  # input side of every step -> (T, B, 4H)
        r = self.recurrent_matrix()
        outs = []
        # unbind, not xp[t]: each indexing's backward writes a full (T, B, 4H) zero tensor, which
        # made training quadratic in T (30 s a step at T = 1000); unbind's backward stacks once
        for t, xp_t in enumerate(xp.unbind(0)):
            new = self._cell(torch.addmm(xp_t, state[0], r), state)
            state = keep_where(None if valid is None else valid[t], new, state)
            outs.append(new[0])
        return torch.stack(outs), state


class SLSTM(RecurrentStack):
    """sLSTM layers with ``torch.nn.LSTM``'s interface (equations: the module docstring).

    Args as ``torch.nn.LSTM`` (``input_size, hidden_size, num_layers, bias, batch_first, dropout,
    bidirectional, device, dtype``); keyword-only: ``num_heads`` (divides hidden_size; the
    recurrent matrices are block-diagonal over heads) and ``forget_gate`` (``"sigmoid"`` or
    ``"exp"``). ``forward(input, hx=None, lengths=None) -> (output, SLSTMState(h, c, n, m))``;
    ``step(x_t, state) -> (h_t, state)`` for streaming.
    """

    State = SLSTMState

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, num_heads: int = 4,
                 forget_gate: Literal["sigmoid", "exp"] = "sigmoid") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.num_heads = check_int("num_heads", num_heads)
        if hidden_size % num_heads:
            raise ValueError(f"num_heads must divide hidden_size={hidden_size}, got {num_heads}")
        if forget_gate not in _FORGET:
            raise ValueError(f"forget_gate must be one of {_FORGET}, got {forget_gate!r}")
        self.forget_gate = forget_gate
        self._build()

    def _make_core(self, input_size: int) -> nn.Module:
        return SLSTMCore(input_size, self.hidden_size, self.num_heads, self.bias, self.forget_gate, self._factory)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", num_heads={self.num_heads}, forget_gate={self.forget_gate!r}"
