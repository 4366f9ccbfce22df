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

Three forms (``mode``), the same maths:

- ``"parallel"``: the log-space scan above, O(log T) depth on a parallel device (GPU).
- ``"scan"``: the linear-space recurrence ``h_t = a_t h_{t-1} + b_t`` in one autograd function
  with a hand-written backward. It runs on a compiled C kernel (:mod:`._scan_kernel`: gates and
  scan in one pass per step, and for a narrow input the projection too) when one can be built,
  else as a PyTorch loop (gates for all steps at once, one fused multiply-add per step). On a CPU
  thread this is the fast form: ``torch.logcumsumexp`` along time costs some 40 element-wise
  passes there.
- ``"recurrent"``: step by step through autograd (for tests; ``step`` streams the same way).

``"auto"`` (default) takes ``"scan"`` on the CPU and ``"parallel"`` elsewhere. Differences from the paper's code:
none in the equations; a given initial state ``h_0`` enters the scan as ``log max(h_0, tiny)``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._scan_kernel import minscan_backward, minscan_forward, use_compiled_scan
from .seqstack import Modes, RecurrentStack, keep_where

__all__ = ["MinLSTM", "MinLSTMState"]

Mode = Literal["auto", "parallel", "scan", "recurrent"]
_MODES = ("auto", "parallel", "scan", "recurrent")


class MinLSTMState(NamedTuple):
    """h: (L*K, B, H), positive."""

    h: Tensor


def g(x: Tensor) -> Tensor:
    """The paper's positive activation: x + 1/2 for x >= 0, sigmoid(x) below (continuous at 0)."""
    return torch.where(x >= 0, x.clamp_min(0) + 0.5, torch.sigmoid(x.clamp_max(0)))


def log_g(x: Tensor) -> Tensor:
    """log g(x), computed without overflow on either side."""
    return torch.where(x >= 0, torch.log(x.clamp_min(0) + 0.5), -F.softplus(-x.clamp_max(0)))


class _MinScan(torch.autograd.Function):
    """One minLSTM layer from its input (``mode="scan"``), differentiated by hand.

    forward: x (T, B, D), weight (3H, D) and bias (3H,) | None (rows f~, i~, h~), h0 (B, H),
    pad (T, B, 1) bool | None -> h (T, B, H). With f = sigmoid(f~), i = sigmoid(i~), s = f + i,
    g = relu(h~) + sigmoid(min(h~, 0)) (the paper's g): a = f / s, b = i g / s (a = 1, b = 0 on
    padding), h_t = a_t h_{t-1} + b_t, one fused multiply-add per step.
    backward: G_t = dh_t + a_{t+1} G_{t+1} (reverse loop); da = G h_{t-1}, db = G;
    w = (da - db g) / s^2, df~ = w f i (1 - f), di~ = -w f i (1 - i), dh~ = db (i / s) g'(h~).

    CPU notes (profiled at T, B, H = 2000, 32, 128): each gate's pre-activation is its own
    contiguous product (element-wise ops on strided slices of one (T, B, 3H) product ran several
    times slower), element-wise work is in place where it can be, and the weight gradient is
    computed as (x^T dz)^T, which for a small input width D is ~5x faster than dz^T x.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, h0: Tensor, pad: Tensor | None) -> Tensor:
        T, B, D = x.shape
        x2 = x.reshape(T * B, D)
        w = weight.chunk(3)
        bs = bias.chunk(3) if bias is not None else (None, None, None)
        pf, pi, ph = ((torch.addmm(bs[j], x2, w[j].t()) if bias is not None else x2 @ w[j].t()).view(T, B, -1)
                      for j in range(3))
        f, i = torch.sigmoid(pf), torch.sigmoid(pi)
        inv = (f + i).reciprocal_()
        a = f * inv
        pos = ph >= 0
        sg = torch.sigmoid(ph.clamp_max(0))
        gt = torch.relu(ph).add_(sg)
        b = (i * inv).mul_(gt)
        if pad is not None:
            a.masked_fill_(pad, 1.0)
            b.masked_fill_(pad, 0.0)
        h = torch.empty_like(b)
        prev = h0
        for t in range(T):
            prev = torch.addcmul(b[t], a[t], prev, out=h[t])
        ctx.save_for_backward(x, weight, f, i, inv, gt, sg, pos, a, h, h0, pad)
        ctx.has_bias = bias is not None
        return h

    @staticmethod
    def backward(ctx, dh: Tensor):
        x, weight, f, i, inv, gt, sg, pos, a, h, h0, pad = ctx.saved_tensors
        T, B, D = x.shape
        dh = dh.contiguous()
        G = torch.empty_like(dh)
        G[-1] = dh[-1]
        for t in range(T - 2, -1, -1):
            torch.addcmul(dh[t], a[t + 1], G[t + 1], out=G[t])
        dh0 = a[0] * G[0]
        w = torch.empty_like(G)  # da = G h_{t-1}, then w = (da - G g) / s^2 in place
        torch.mul(G[0], h0, out=w[0])
        torch.mul(G[1:], h[:-1], out=w[1:])
        w.addcmul_(G, gt, value=-1.0).mul_(inv).mul_(inv)
        wfi = (f * i).mul_(w)
        dpf = torch.addcmul(wfi, wfi, f, value=-1.0)  # w f i (1 - f)
        dpi = wfi.addcmul_(wfi, i, value=-1.0).neg_()  # -w f i (1 - i)
        dph = (G * i).mul_(inv).mul_(torch.addcmul(sg, sg, sg, value=-1.0).masked_fill_(pos, 1.0))
        if pad is not None:
            for t_ in (dpf, dpi, dph):
                t_.masked_fill_(pad, 0.0)
        dz = [t_.view(T * B, -1) for t_ in (dpf, dpi, dph)]
        x2 = x.reshape(T * B, D)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            ws = weight.chunk(3)
            dx = (dz[0] @ ws[0]).addmm_(dz[1], ws[1]).addmm_(dz[2], ws[2]).view(T, B, D)
        if ctx.needs_input_grad[1]:
            dw = torch.cat([(x2.t() @ d).t() for d in dz], dim=0)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = torch.cat([d.sum(0) for d in dz])
        return dx, dw, db, dh0, None


INLINE_PROJECTION_MAX = 16  # input widths up to this are projected inside the compiled scan


class _MinScanCompiled(torch.autograd.Function):
    """``_MinScan``'s maths on the compiled kernel (:mod:`lstmkit.nn._scan_kernel`). For a narrow
    input (D <= ``INLINE_PROJECTION_MAX``) the kernel also does the input projection and its
    gradients, row by row, so nothing (T, B, 3H) is ever stored; for a wider one the projection
    is one product z = x W^T + b (saved), the kernel returns dz, and dx = dz W, dW = (x^T dz)^T,
    db = sum dz are products over all steps."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, h0: Tensor, pad: Tensor | None) -> Tensor:
        T, B, D = x.shape
        z = None
        if D > INLINE_PROJECTION_MAX:
            x2 = x.reshape(T * B, D)
            z = (torch.addmm(bias, x2, weight.t()) if bias is not None else x2 @ weight.t()).view(T, B, -1)
        pad8 = None if pad is None else pad.reshape(T, B).to(torch.uint8).contiguous()
        h = minscan_forward(x.detach(), weight.detach(), None if bias is None else bias.detach(), h0.detach(),
                            pad8, z)
        ctx.save_for_backward(x, weight, bias, h0, h, z)
        ctx.pad8 = pad8
        return h

    @staticmethod
    def backward(ctx, dh: Tensor):
        x, weight, bias, h0, h, z = ctx.saved_tensors
        T, B, D = x.shape
        needs = ctx.needs_input_grad
        dz, dx, dw, db, dh0 = minscan_backward(x, weight, bias, h0, ctx.pad8, z, h, dh,
                                               (needs[0], needs[1], bias is not None and needs[2]))
        if dz is not None:
            dz2, x2 = dz.view(T * B, -1), x.reshape(T * B, D)
            dx = dz2.mm(weight).view(T, B, D) if needs[0] else None
            dw = (x2.t() @ dz2).t() if needs[1] else None
            db = dz2.sum(0) if bias is not None and needs[2] else None
        return dx, dw, db, dh0 if needs[3] else None, None


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
        mode = self.mode if self.mode != "auto" else ("scan" if x.device.type == "cpu" else "parallel")
        if mode == "scan":
            scan = _MinScanCompiled if use_compiled_scan(x) else _MinScan
            h = scan.apply(x, self.linear.weight, self.linear.bias, state[0],
                               None if valid is None else ~valid.unsqueeze(-1))
            return h, (h[-1],)
        if mode == "recurrent":
            outs, s = [], state
            for t, x_t in enumerate(x.unbind(0)):  # unbind: see SLSTMCore.sequence
                h, new = self.step(x_t, s)
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


class MinLSTM(Modes, RecurrentStack):
    """minLSTM layers with ``torch.nn.LSTM``'s interface (equations: the module docstring).

    Args as ``torch.nn.LSTM`` (``input_size, hidden_size, num_layers, bias, batch_first, dropout,
    bidirectional, device, dtype``); keyword-only ``mode``: ``"auto"``, ``"parallel"`` (log-space
    scan), ``"scan"`` (fused linear-space loop) or ``"recurrent"``. ``forward(input, hx=None, lengths=None) -> (output, MinLSTMState(h))``;
    ``step(x_t, state) -> (h_t, state)`` for streaming.
    """

    MODES = _MODES

    State = MinLSTMState

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, mode: Mode = "auto") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.check_mode(mode)
        self._mode = mode
        self._build()

    def _make_core(self, input_size: int) -> nn.Module:
        return MinLSTMCore(input_size, self.hidden_size, self.bias, self._mode, self._factory)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mode={self._mode!r}"
