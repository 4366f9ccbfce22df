"""mLSTM: the matrix-memory LSTM of xLSTM (Beck et al. 2024, "xLSTM: Extended Long Short-Term
Memory", arXiv:2405.04517, Section 2.3 and Appendix A.3), in three forms that compute the same thing.

Per head (NH heads of width d = H / NH; every projection reads x_t only)::

    q_t = W_q x_t + b_q,  k_t = (W_k x_t + b_k) / sqrt(d),  v_t = W_v x_t + b_v
    i~_t = w_i . x_t + b_i (scalar),  f~_t = w_f . x_t + b_f (scalar),  o_t = sigmoid(W_o x_t + b_o)
    log f_t = log sigmoid(f~_t)  (forget_gate="sigmoid")  or  f~_t  ("exp")
    C_t = f_t C_{t-1} + i_t v_t k_t^T        matrix memory (d x d), i_t = exp(i~_t)
    n_t = f_t n_{t-1} + i_t k_t               normaliser
    h_t = o_t * (C_t q_t) / max(|n_t^T q_t|, 1)

Stabilised (what is computed; the state holds C, n scaled by exp(-m))::

    m_t  = max(log f_t + m_{t-1}, i~_t)
    i'_t = exp(i~_t - m_t),  f'_t = exp(log f_t + m_{t-1} - m_t)
    C_t = f'_t C_{t-1} + i'_t v_t k_t^T,  n_t = f'_t n_{t-1} + i'_t k_t
    h~_t = C_t q_t / max(|n_t^T q_t|, exp(-m_t))

Forms (``mode``):

- ``"recurrent"``: the equations above, one step at a time (also ``step``, for streaming).
- ``"parallel"``: the whole sequence at once. With ``F_t = sum_{j<=t} log f_j`` (the log-sigmoid
  cumulative sum), the decay matrix is ``D~_ts = F_t - F_s + i~_s`` for s <= t (-inf above the
  diagonal); an incoming state (C_0, n_0, m_0) enters with log weight ``F_t + m_0``;
  ``m_t = max(max_s D~_ts, F_t + m_0)`` (max-stabilisation), ``D'_ts = exp(D~_ts - m_t)``,
  ``S = (Q K^T) * D'``, numerator ``S V + exp(F_t + m_0 - m_t) C_0 q_t``, normaliser
  ``max(|sum_s S_ts + exp(F_t + m_0 - m_t) n_0^T q_t|, exp(-m_t))``. O(T^2) time and memory.
- ``"chunkwise"``: the parallel form inside chunks of ``chunk_size`` steps, the recurrent state
  carried across chunks (O(T * chunk_size)); ``"parallel"`` is one chunk of length T. For an
  input no wider than a head (p = D + 1 <= d, :func:`.mlstm_narrow.narrow_pays`) the memory lives
  in a p x p space and this form runs there (:mod:`.mlstm_narrow`); for p <= 16 on a compiled
  recurrence with the output gate fused (:mod:`._mlstm_kernel`, ``LSTMKIT_MLSTM``), where
  ``chunk_size`` plays no part. Same results to rounding in every case.

A padded step has ``i~ = -inf`` and ``log f = 0``: it is the identity on the state in every
form, so the state returned is the one at each sequence's own length.

Differences from the xLSTM package's mLSTM layer: this is the cell alone (no up-projection,
causal convolution, learnable skip or multi-head group norm of the mLSTM *block*; see
:class:`lstmkit.nn.ResidualRecurrent` for the residual pre-norm stacking), the gates read x_t
directly, and the zero state has m_0 = 0 (the package starts its parallel form from m_0 = -inf;
h is invariant to m, so the outputs agree up to rounding).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from .inputs import input_projection
from ._mlstm_kernel import use_compiled_mlstm
from .mlstm_narrow import COMPILED_MAX_P, mlstm_chunkwise_narrow, mlstm_recurrent_narrow, narrow_pays
from .seqstack import Modes, RecurrentStack

__all__ = ["MLSTM", "MLSTMState", "mlstm_chunk", "mlstm_chunkwise", "mlstm_step"]

Mode = Literal["chunkwise", "parallel", "recurrent"]
_MODES = ("chunkwise", "parallel", "recurrent")
_FORGET = ("sigmoid", "exp")


class MLSTMState(NamedTuple):
    """C (L*K, B, NH, d, d), n (L*K, B, NH, d), m (L*K, B, NH)."""

    C: Tensor
    n: Tensor
    m: Tensor


def mlstm_step(q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, log_f: Tensor,
               state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """One recurrent step. q, k, v (B, NH, d) (k already scaled); i_pre, log_f (B, NH).
    Returns h~ (B, NH, d) and the new (C, n, m)."""
    C, n, m = state
    m_new = torch.maximum(log_f + m, i_pre)
    fp = torch.exp(log_f + m - m_new).unsqueeze(-1)  # -> (B, NH, 1)
    ip = torch.exp(i_pre - m_new).unsqueeze(-1)
    C = fp.unsqueeze(-1) * C + (ip * v).unsqueeze(-1) * k.unsqueeze(-2)  # -> (B, NH, d, d)
    n = fp * n + ip * k
    num = torch.einsum("bhij,bhj->bhi", C, q)
    den = torch.maximum((n * q).sum(-1).abs(), torch.exp(-m_new)).unsqueeze(-1)
    return num / den, (C, n, m_new)


def mlstm_chunk(q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, log_f: Tensor,
                state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """The parallel form over one chunk, from an incoming state. q, k, v (B, NH, L, d) (k
    scaled); i_pre, log_f (B, NH, L). Returns h~ (B, NH, L, d) and the state after the chunk."""
    C0, n0, m0 = state
    L = q.shape[2]
    cum = torch.cumsum(log_f, dim=-1)  # F_t: (B, NH, L)
    log_d = cum.unsqueeze(-1) - cum.unsqueeze(-2) + i_pre.unsqueeze(-2)  # D~_ts -> (B, NH, L, L)
    above = torch.ones(L, L, dtype=torch.bool, device=q.device).triu(1)
    log_d = log_d.masked_fill(above, float("-inf"))
    log_w0 = cum + m0.unsqueeze(-1)  # the incoming state's log weight at each t
    m = torch.maximum(log_d.amax(-1), log_w0)  # -> (B, NH, L)
    s = (q @ k.transpose(-1, -2)) * torch.exp(log_d - m.unsqueeze(-1))  # -> (B, NH, L, L)
    w0 = torch.exp(log_w0 - m)
    num = s @ v + w0.unsqueeze(-1) * (q @ C0.transpose(-1, -2))  # -> (B, NH, L, d)
    den = s.sum(-1) + w0 * (q @ n0.unsqueeze(-1)).squeeze(-1)
    h = num / torch.maximum(den.abs(), torch.exp(-m)).unsqueeze(-1)
    # state after the chunk
    log_ws = cum[..., -1:] - cum + i_pre  # weight of step s's write at the chunk's end
    log_w0_end = cum[..., -1] + m0
    m_end = torch.maximum(log_ws.amax(-1), log_w0_end)  # -> (B, NH)
    ws = torch.exp(log_ws - m_end.unsqueeze(-1))  # -> (B, NH, L)
    w0_end = torch.exp(log_w0_end - m_end)
    C = w0_end[..., None, None] * C0 + (v * ws.unsqueeze(-1)).transpose(-1, -2) @ k
    n = w0_end.unsqueeze(-1) * n0 + (ws.unsqueeze(-1) * k).sum(-2)
    return h, (C, n, m_end)


def mlstm_chunkwise(q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, log_f: Tensor, size: int,
                    state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """The chunkwise form with every chunk's parallel part batched: q, k, v (B, NH, T, d) (k
    scaled), i_pre, log_f (B, NH, T), chunks of ``size`` steps. Only the hand-over of the state
    from chunk to chunk (a few (d, d) operations per chunk) is a loop. Returns h~ (B, NH, T, d) and
    the final state. Same maths as :func:`mlstm_chunk` applied chunk after chunk."""
    B, NH, T, d = q.shape
    nc = -(-T // size)
    extra = nc * size - T
    if extra:  # identity steps at the end: i~ = -inf, log f = 0
        q, k, v = (F.pad(t, (0, 0, 0, extra)) for t in (q, k, v))
        i_pre = F.pad(i_pre, (0, extra), value=float("-inf"))
        log_f = F.pad(log_f, (0, extra))
    q, k, v = (t.view(B, NH, nc, size, d) for t in (q, k, v))
    i_pre, log_f = i_pre.view(B, NH, nc, size), log_f.view(B, NH, nc, size)
    cum = torch.cumsum(log_f, dim=-1)  # (B, NH, NC, L)
    total = cum[..., -1]  # each chunk's log decay (B, NH, NC)
    # what each chunk writes into the state by its end, scaled by its own maximum
    log_ws = total.unsqueeze(-1) - cum + i_pre
    m_loc = log_ws.amax(-1).clamp_min(torch.finfo(q.dtype).min)  # (B, NH, NC); finite for an all-padding chunk
    ws = torch.exp(log_ws - m_loc.unsqueeze(-1))
    C_loc = (v * ws.unsqueeze(-1)).transpose(-1, -2) @ k  # (B, NH, NC, d, d)
    n_loc = (ws.unsqueeze(-1) * k).sum(-2)  # (B, NH, NC, d)
    # the state entering each chunk: the only loop
    C, n, m = state
    Cs, ns, ms = [], [], []
    # unbind, not [..., c]: indexing per chunk makes the backward write a full zero tensor per chunk
    for tot, ml, Cl, nl in zip(total.unbind(-1), m_loc.unbind(-1), C_loc.unbind(2), n_loc.unbind(2)):
        Cs.append(C)
        ns.append(n)
        ms.append(m)
        m_new = torch.maximum(tot + m, ml)
        a = torch.exp(tot + m - m_new)
        b = torch.exp(ml - m_new)
        C = a[..., None, None] * C + b[..., None, None] * Cl
        n = a.unsqueeze(-1) * n + b.unsqueeze(-1) * nl
        m = m_new
    C0, n0, m0 = torch.stack(Cs, 2), torch.stack(ns, 2), torch.stack(ms, 2)  # (B, NH, NC, ...)
    # every chunk's outputs at once. D~_ts - m_t = (F_t - m_t) + (i~_s - F_s), with
    # m_t = F_t + max(max_{s<=t} (i~_s - F_s), m_0) (a running maximum): one (L, L) sum, no amax
    src = i_pre - cum  # (B, NH, NC, L)
    mt = cum + torch.maximum(torch.cummax(src, dim=-1).values, m0.unsqueeze(-1))
    above = torch.ones(size, size, dtype=torch.bool, device=q.device).triu(1)
    log_d = ((cum - mt).unsqueeze(-1) + src.unsqueeze(-2)).masked_fill_(above, float("-inf"))  # (B, NH, NC, L, L)
    sm = (q @ k.transpose(-1, -2)) * torch.exp(log_d)
    w0 = torch.exp(cum + m0.unsqueeze(-1) - mt)
    num = sm @ v + w0.unsqueeze(-1) * (q @ C0.transpose(-1, -2))
    den = sm.sum(-1) + w0 * (q @ n0.unsqueeze(-1)).squeeze(-1)
    h = num / torch.maximum(den.abs(), torch.exp(-mt)).unsqueeze(-1)
    return h.view(B, NH, nc * size, d)[:, :, :T], (C, n, m)


def _identity_where_padded(i_pre: Tensor, log_f: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor]:
    """i~ = -inf and log f = 0 where ``valid`` (T, B) is False: a padded step leaves the state as it was."""
    if valid is None:
        return i_pre, log_f
    pad = ~valid.unsqueeze(-1)
    return i_pre.masked_fill(pad, float("-inf")), log_f.masked_fill(pad, 0.0)


class MLSTMCore(nn.Module):
    """One layer, one direction: x (T, B, D) -> h (T, B, H)."""

    def __init__(self, input_size: int, hidden_size: int, num_heads: int, bias: bool, mode: str, chunk_size: int,
                 forget_gate: str, factory: dict) -> None:
        super().__init__()
        self.hidden_size, self.num_heads, self.head_size = hidden_size, num_heads, hidden_size // num_heads
        self.mode, self.chunk_size, self.forget_gate = mode, chunk_size, forget_gate
        self.qkvo = nn.Linear(input_size, 4 * hidden_size, bias=bias, **factory)
        self.gates = nn.Linear(input_size, 2 * num_heads, **factory)  # rows: i~ (NH), f~ (NH)
        with torch.no_grad():  # xLSTM's initialisation of the gates
            self.gates.weight.zero_()
            self.gates.bias[:num_heads].normal_(0.0, 0.1)
            self.gates.bias[num_heads:].copy_(torch.linspace(3.0, 6.0, num_heads))

    def init_state(self, batch: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        nh, d = self.num_heads, self.head_size
        return like.new_zeros(batch, nh, d, d), like.new_zeros(batch, nh, d), like.new_zeros(batch, nh)

    def _project(self, x: Tensor):
        """x (..., D) -> q, k, v (..., NH, d), o (..., H), i~, log f (..., NH)."""
        q, k, v, o = input_projection(x, self.qkvo.weight, self.qkvo.bias).chunk(4, dim=-1)
        i_pre, f_pre = input_projection(x, self.gates.weight, self.gates.bias).chunk(2, dim=-1)
        log_f = F.logsigmoid(f_pre) if self.forget_gate == "sigmoid" else f_pre
        heads = lambda t: t.unflatten(-1, (self.num_heads, self.head_size))  # noqa: E731
        return heads(q), heads(k) / math.sqrt(self.head_size), heads(v), o, i_pre, log_f

    def step(self, x_t: Tensor, state: tuple[Tensor, Tensor, Tensor]):
        q, k, v, o, i_pre, log_f = self._project(x_t)
        h, state = mlstm_step(q, k, v, i_pre, log_f, state)
        return torch.sigmoid(o) * h.flatten(-2), state  # -> (B, H)

    def sequence(self, x: Tensor, state: tuple[Tensor, Tensor, Tensor], valid: Tensor | None):
        if self.mode == "recurrent":
            # step by step with the very arithmetic of ``step`` (each step's own projection too), so
            # that streaming equals this form to the last bit, not just to float32 rounding
            outs = []
            for t, x_t in enumerate(x.unbind(0)):  # unbind: see SLSTMCore.sequence
                q, k, v, o, i_pre, log_f = self._project(x_t)
                if valid is not None:
                    pad = ~valid[t].unsqueeze(-1)
                    i_pre = i_pre.masked_fill(pad, float("-inf"))
                    log_f = log_f.masked_fill(pad, 0.0)
                h, state = mlstm_step(q, k, v, i_pre, log_f, state)
                outs.append(torch.sigmoid(o) * h.flatten(-2))
            return torch.stack(outs), state  # -> (T, B, H)
        if self.mode == "chunkwise" and narrow_pays(x.shape[-1] + (self.qkvo.bias is not None), self.head_size):
            return self._sequence_narrow(x, state, valid)
        q, k, v, o, i_pre, log_f = self._project(x)  # (T, B, NH, d) / (T, B, H) / (T, B, NH)
        i_pre, log_f = _identity_where_padded(i_pre, log_f, valid)
        heads_first = lambda t: t.movedim(0, -2) if t.dim() == 4 else t.movedim(0, -1)  # noqa: E731
        q, k, v, i_pre, log_f = map(heads_first, (q, k, v, i_pre, log_f))  # -> (B, NH, T, d) / (B, NH, T)
        if self.mode == "parallel":
            h, state = mlstm_chunk(q, k, v, i_pre, log_f, state)
        else:
            h, state = mlstm_chunkwise(q, k, v, i_pre, log_f, self.chunk_size, state)
        h = h.permute(2, 0, 1, 3).flatten(-2)  # (B, NH, T, d) -> (T, B, H)
        return torch.sigmoid(o) * h, state

    def _gates(self, x: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor]:
        """i~, log f (T, B, NH), padded steps the identity."""
        i_pre, f_pre = input_projection(x, self.gates.weight, self.gates.bias).chunk(2, dim=-1)
        log_f = F.logsigmoid(f_pre) if self.forget_gate == "sigmoid" else f_pre
        return _identity_where_padded(i_pre, log_f, valid)

    def _sequence_narrow(self, x: Tensor, state: tuple[Tensor, Tensor, Tensor], valid: Tensor | None):
        """The chunkwise form in input coordinates (:mod:`.mlstm_narrow`): x (T, B, D) -> (T, B, H)."""
        H, nh, d = self.hidden_size, self.num_heads, self.head_size
        w, b = self.qkvo.weight[: 3 * H], None if self.qkvo.bias is None else self.qkvo.bias[: 3 * H]
        a = w if b is None else torch.cat([w, b.unsqueeze(-1)], -1)  # [W, b]: (3H, p)
        aq, ak, av = a.view(3, nh, d, a.shape[-1]).unbind(0)  # (NH, d, p) each
        xp = x if b is None else torch.cat([x, x.new_ones(*x.shape[:-1], 1)], -1)  # x' = [x; 1]: (T, B, p)
        i_pre, log_f = self._gates(x, valid)
        if xp.shape[-1] <= COMPILED_MAX_P and use_compiled_mlstm(x):  # recurrence and output gate compiled
            wo = self.qkvo.weight[3 * H:]
            ao = wo if b is None else torch.cat([wo, self.qkvo.bias[3 * H:].unsqueeze(-1)], -1)  # (H, p)
            return mlstm_recurrent_narrow(xp, aq, ak / math.sqrt(d), av, ao, i_pre, log_f, state)
        heads_first = lambda t: t.movedim(0, -1)  # noqa: E731  (T, B, NH) -> (B, NH, T)
        h, state = mlstm_chunkwise_narrow(xp, aq, ak / math.sqrt(d), av, heads_first(i_pre), heads_first(log_f),
                                          self.chunk_size, state)
        o = input_projection(x, self.qkvo.weight[3 * H:], None if b is None else self.qkvo.bias[3 * H:])
        return torch.sigmoid(o) * h.flatten(-2), state  # -> (T, B, H)


class MLSTM(Modes, RecurrentStack):
    """mLSTM layers with ``torch.nn.LSTM``'s interface (equations and forms: the module docstring).

    Args as ``torch.nn.LSTM`` (``input_size, hidden_size, num_layers, bias, batch_first, dropout,
    bidirectional, device, dtype``); keyword-only: ``num_heads`` (divides hidden_size),
    ``mode`` (``"chunkwise"``, ``"parallel"``, ``"recurrent"``), ``chunk_size`` and
    ``forget_gate`` (``"sigmoid"`` or ``"exp"``). ``forward(input, hx=None, lengths=None) ->
    (output, MLSTMState(C, n, m))``; ``step(x_t, state) -> (h_t, state)`` for streaming.
    """

    MODES = _MODES

    State = MLSTMState

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, num_heads: int = 4, mode: Mode = "chunkwise", chunk_size: int = 64,
                 forget_gate: Literal["sigmoid", "exp"] = "sigmoid") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.num_heads = check_int("num_heads", num_heads)
        if hidden_size % num_heads:
            raise ValueError(f"num_heads must divide hidden_size={hidden_size}, got {num_heads}")
        self.check_mode(mode)
        self.chunk_size = check_int("chunk_size", chunk_size)
        if forget_gate not in _FORGET:
            raise ValueError(f"forget_gate must be one of {_FORGET}, got {forget_gate!r}")
        self.forget_gate, self._mode = forget_gate, mode
        self._build()

    def _make_core(self, input_size: int) -> nn.Module:
        return MLSTMCore(input_size, self.hidden_size, self.num_heads, self.bias, self._mode, self.chunk_size,
                         self.forget_gate, self._factory)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", num_heads={self.num_heads}, mode={self._mode!r}, chunk_size={self.chunk_size}"
