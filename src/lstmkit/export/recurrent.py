"""The recurrent encoder in a form ONNX expresses: :class:`ExportRecurrent`.

Variable lengths without packed sequences (packing is a long-standing PyTorch export blocker):
every recurrent layer and direction is one fused ONNX LSTM/GRU/RNN operator over the whole padded
batch, and lengths act through index gathers and masks built from ``arange`` of the runtime T:

- forward direction: padding comes after the valid steps, so the valid outputs are those of the
  sequence alone; the final state is gathered at ``length - 1``;
- backward direction: each sequence is reversed within its own length (index ``len-1-t`` for
  ``t < len``, else ``t``: the padding stays behind), run forward, and gathered back;
- outputs past each length are zeroed and fed to the next layer.

lstmkit's LSTM exports with the plain cell (``forget_bias`` is only an initialisation and the
dropout variants are identity at inference), and so do torch's LSTM, GRU and RNN. Peephole,
layer-norm and zoneout cells and projections change the recurrence ONNX's LSTM operator computes,
and raise ``ValueError``.

A recursive forecasting head continues the encoder from its state at the last valid step, and
ONNX's LSTM outputs the cell state only after the final (padded) step. The cell state at step L is
recovered in closed form from the gates: ``c_L = sum_{s<=L} (prod_{s<r<=L} f_r) i_s g_s``, the
products as exponentials of cumulative sums of ``log f`` in float64 (exact up to rounding, tested
against the recurrence).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..nn import LSTM, LSTMState

__all__ = ["ExportRecurrent", "at_step", "plain_copy"]

# ------------------------------------------------------------------------ index helpers


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    """x (B, T, F), index (B, T) -> x[b, index[b, t]] (B, T, F)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def at_step(x: Tensor, step: Tensor) -> Tensor:
    """x (B, T, F), step (B,) -> x[b, step[b]] (B, F)."""
    return x.gather(1, step.view(-1, 1, 1).expand(-1, 1, x.shape[-1])).squeeze(1)


def _cell_state_at(x: Tensor, out: Tensor, last: Tensor | None, weights: list[Tensor], bias: bool) -> Tensor:
    """The LSTM cell state after step ``last`` (B,) (None: the final step) of one layer and
    direction run from a zero state: x (B, T, D) its input, out (B, T, H) its outputs -> (B, H).

    ``c_L = sum_{s<=L} exp(sum_{s<r<=L} log f_r) i_s g_s`` with the gates recomputed from x and
    ``h_{t-1}``; the exponents are differences of a float64 cumulative sum, <= 0 where used.
    """
    h_prev = torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], dim=1)  # h_{t-1}: -> (B, T, H)
    b = weights[2] + weights[3] if bias else None
    gates = F.linear(x, weights[0], b) + F.linear(h_prev, weights[1])  # -> (B, T, 4H), gates i, f, g, o
    i, f, g, _ = gates.chunk(4, dim=-1)
    a = f.double()
    log_f = torch.clamp(a, max=0.0) - torch.log(1.0 + torch.exp(-a.abs()))  # log sigmoid(a), never -inf
    cum = log_f.cumsum(1)  # -> (B, T, H)
    if last is None:
        decay = cum[:, -1:] - cum
    else:
        end = cum.gather(1, last.view(-1, 1, 1).expand(-1, 1, cum.shape[-1]))  # -> (B, 1, H)
        steps = torch.arange(cum.shape[1], device=x.device).unsqueeze(0)
        keep = (steps <= last.unsqueeze(1)).unsqueeze(-1)  # -> (B, T, 1)
        decay = (end - cum).masked_fill(~keep, float("-inf"))  # steps after L contribute exp(-inf) = 0
    c = (torch.exp(decay) * (torch.sigmoid(i) * torch.tanh(g)).double()).sum(1)  # -> (B, H)
    return c.to(out.dtype)


def _check_plain_lstm(rnn: LSTM) -> None:
    v = rnn.variant
    used = [name for name, on in (("peephole", v.peephole), ("layer_norm", v.layer_norm),
                                  ("zoneout", any(z > 0 for z in v.zoneout_rates))) if on]
    if rnn.proj_size:
        used.append(f"proj_size={rnn.proj_size}")
    if used:
        raise ValueError(f"ONNX export supports the plain LSTM cell (ONNX's LSTM operator), but this model's LSTM uses "
                         f"{', '.join(used)}, which change the recurrence; retrain without it to export "
                         "(forget_bias, recurrent_dropout and input_dropout export fine: an initialisation, and "
                         "identity at inference)")


def plain_copy(rnn: LSTM) -> LSTM:
    """``rnn`` without its inference-neutral variants (the dropout variants are identity in eval mode,
    forget_bias only an initialisation), so its forward runs torch's fused kernel, which exports."""
    _check_plain_lstm(rnn)
    w = rnn.weight_ih_l0
    plain = LSTM(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bias, rnn.batch_first, rnn.dropout,
                 rnn.bidirectional, rnn.proj_size, device=w.device, dtype=w.dtype)
    plain.load_state_dict(rnn.state_dict())
    return plain.eval()


# ------------------------------------------------------------------------ the recurrent encoder


class ExportRecurrent(nn.Module):
    """An encoder (lstmkit ``LSTM``, ``torch.nn.LSTM/GRU/RNN``) in a form that exports to ONNX with
    dynamic batch and time axes: one fused operator per layer and direction, lengths through index
    gathers and masks (see the module docstring). It reads the wrapped module's parameters, so it
    computes what the module computes in eval mode.

    ``forward(x, hx=None, lengths=None)``: x (B, T, D) batch first, lengths (B,) int64 or None (all
    T); the initial state is zero (``hx`` must be None). Returns output (B, T, K*H), zero past each
    length, and ``LSTMState(h_n, c_n)`` at each row's last valid step, (L*K, B, H) each; ``c_n`` is
    None unless ``cell_state=True`` (LSTM only: it costs a closed-form pass over the gates).
    """

    def __init__(self, rnn: nn.Module, cell_state: bool = False) -> None:
        super().__init__()
        if isinstance(rnn, LSTM):
            _check_plain_lstm(rnn)
            self.op = "lstm"
        elif isinstance(rnn, nn.LSTM):
            if rnn.proj_size:
                raise ValueError(f"ONNX's LSTM operator has no projection; this LSTM has proj_size={rnn.proj_size}")
            self.op = "lstm"
        elif isinstance(rnn, nn.GRU):
            self.op = "gru"
        elif isinstance(rnn, nn.RNN):
            self.op = "rnn_relu" if rnn.nonlinearity == "relu" else "rnn_tanh"
        else:
            raise TypeError(f"rnn must be an lstmkit LSTM or a torch LSTM, GRU or RNN, got {type(rnn).__name__}")
        self.rnn = rnn
        self.num_layers, self.hidden_size, self.bias = rnn.num_layers, rnn.hidden_size, bool(rnn.bias)
        self.num_directions = 2 if rnn.bidirectional else 1
        self.cell_state = cell_state
        if cell_state and self.op != "lstm":
            raise ValueError(f"cell_state=True needs an LSTM, got {type(rnn).__name__}")

    def _weights(self, layer: int, direction: int) -> list[Tensor]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        return [getattr(self.rnn, name + sfx) for name in names]

    def _run(self, x: Tensor, weights: list[Tensor]) -> Tensor:
        """One layer and direction over the whole batch from a zero state: (B, T, D) -> (B, T, H)."""
        h0 = x.new_zeros(1, x.shape[0], self.hidden_size)  # from the runtime batch size
        args = (weights, self.bias, 1, 0.0, False, False, True)  # 1 layer, no dropout, eval, one way, batch first
        if self.op == "lstm":
            return torch.lstm(x, (h0, h0), *args)[0]
        return getattr(torch, self.op)(x, h0, *args)[0]

    def forward(self, x: Tensor, hx: Any = None, lengths: Tensor | None = None) -> tuple[Tensor, LSTMState]:
        if hx is not None:
            raise ValueError("ExportRecurrent starts from a zero state; hx must be None")
        valid = reverse = last = None
        if lengths is not None:
            steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # -> (1, T), the runtime T
            n = lengths.unsqueeze(1)
            valid = steps < n  # -> (B, T)
            reverse = torch.where(valid, n - 1 - steps, steps)  # within each length; padding stays behind
            last = lengths - 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                w = self._weights(layer, direction)
                inp = x if not direction else x.flip(1) if reverse is None else _gather_time(x, reverse)
                out = self._run(inp, w)  # -> (B, T, H)
                h_n.append(out[:, -1] if last is None else at_step(out, last))
                if self.cell_state:
                    c_n.append(_cell_state_at(inp, out, last, w, self.bias))
                if direction:
                    out = out.flip(1) if reverse is None else _gather_time(out, reverse)
                outs.append(out)
            x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # -> (B, T, K*H)
            if valid is not None:
                x = x * valid.unsqueeze(-1).to(x.dtype)  # zero past each length
        return x, LSTMState(torch.stack(h_n), torch.stack(c_n) if self.cell_state else None)
