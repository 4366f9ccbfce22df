"""Recording what an LSTM did: per-step gates, cell and hidden states, without changing its results.

``with record_gates(model) as rec: model(x, lengths)`` hooks every :class:`lstmkit.nn.LSTM` (and
``torch.nn.LSTM``) inside ``model``. The forward pass itself is untouched -- the hook only reads the
call's arguments and result -- so outputs are bit-identical with and without recording, on the fused
kernel and on the recurrence alike. After each call the hook *replays* the layer's equations
(:mod:`lstmkit.nn.cell`: i, f, g, o, c, h per step) from the same inputs, initial state, lengths and
weights, layer by layer and direction by direction, in ``torch.no_grad``; the replayed top-layer
output is compared with the output the module returned, and the largest difference is kept in
``Trace.replay_error`` (float rounding between the fused kernel and the step equations, ~1e-7 in
float32), so a reader can see the recorded gates are the ones that produced the result.

Replay needs the module's deterministic behaviour: in training mode with dropout (between layers,
input/recurrent dropout, zoneout masks) the masks drawn inside the forward cannot be replayed, and the
hook raises; record in ``eval()`` mode. Zoneout in eval mode (the expected update ``1 - z``) and
padding (states frozen past each length) are replayed exactly as the layer applies them.

Each call adds one :class:`Trace` per layer and direction to ``rec.traces[name]`` (``name``: the
module's name in ``model``). Tensors are batch-first ``(B, T, H)`` (``h``: ``(B, T, R)``), aligned with
the input steps for both directions (the backward direction's step t is input step t); ``valid`` is
``(B, T)`` with False past each sequence's length, where gates are NaN.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .cell import LN_EPS, variant_parameters
from .lengths import check_lengths, reverse_padded, valid_mask
from .lstm import LSTM

__all__ = ["Trace", "GateRecorder", "record_gates", "replay_lstm"]


@dataclass
class Trace:
    """One layer and direction of one LSTM call: gates i, f, o (sigmoid), candidate g (tanh), cell c
    and hidden h, each (B, T, width), NaN past each length; ``valid`` (B, T)."""

    layer: int
    direction: int
    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor
    c: Tensor
    h: Tensor
    valid: Tensor
    replay_error: float = 0.0  # max |replayed - returned| of the module's output (top layer), or h_n/c_n


@dataclass
class GateRecorder:
    """What :func:`record_gates` collected: ``traces[module name]`` lists the traces of every call, in
    order (layers, then directions, per call)."""

    traces: dict[str, list[Trace]] = field(default_factory=dict)

    def of(self, name: str | None = None) -> list[Trace]:
        """The traces of module ``name`` (the only recorded module when None)."""
        if name is None:
            if len(self.traces) != 1:
                raise ValueError(f"{len(self.traces)} LSTM modules were recorded ({sorted(self.traces)}); name one")
            return next(iter(self.traces.values()))
        if name not in self.traces:
            raise ValueError(f"no LSTM named {name!r} was recorded; recorded: {sorted(self.traces)}")
        return self.traces[name]


def _stochastic(m: nn.Module) -> bool:
    if not m.training:
        return False
    if getattr(m, "dropout", 0.0) and m.num_layers > 1:
        return True
    v = getattr(m, "variant", None)
    return v is not None and (v.input_dropout > 0 or v.recurrent_dropout > 0 or any(r > 0 for r in v.zoneout_rates))


def _step(x: Tensor, h: Tensor, c: Tensor, m: nn.Module, sfx: str, vp: dict, u_c, u_h):
    """One step of :func:`lstmkit.nn.cell.lstm_cell_step` returning its gates as well."""
    hidden = m.hidden_size
    xw, hw = F.linear(x, getattr(m, f"weight_ih{sfx}")), F.linear(h, getattr(m, f"weight_hh{sfx}"))
    if "ln_ih" in vp:
        xw = F.layer_norm(xw, (4 * hidden,), *vp["ln_ih"], LN_EPS)
        hw = F.layer_norm(hw, (4 * hidden,), *vp["ln_hh"], LN_EPS)
    z = xw + hw
    if m.bias:
        z = z + getattr(m, f"bias_ih{sfx}") + getattr(m, f"bias_hh{sfx}")
    z_i, z_f, z_g, z_o = z.chunk(4, dim=1)
    peep = vp.get("peephole")
    if peep is not None:
        z_i, z_f = z_i + peep[0] * c, z_f + peep[1] * c
    i, f, g = torch.sigmoid(z_i), torch.sigmoid(z_f), torch.tanh(z_g)
    c_new = f * c + i * g
    if u_c is not None:
        c_new = c + u_c * (c_new - c)
    if peep is not None:
        z_o = z_o + peep[2] * c_new
    o = torch.sigmoid(z_o)
    c_read = c_new if "ln_c" not in vp else F.layer_norm(c_new, (hidden,), *vp["ln_c"], LN_EPS)
    h_new = o * torch.tanh(c_read)
    if getattr(m, "proj_size", 0):
        h_new = F.linear(h_new, getattr(m, f"weight_hr{sfx}"))
    if u_h is not None:
        h_new = h + u_h * (h_new - h)
    return i, f, g, o, c_new, h_new


@torch.no_grad()
def replay_lstm(m: nn.Module, input: Tensor, hx: tuple[Tensor, Tensor] | None = None,
                lengths: Tensor | None = None) -> tuple[list[Trace], Tensor, Tensor, Tensor]:
    """Run ``m`` (an lstmkit or torch LSTM) step by step on ``input`` as its forward would, recording
    every gate; returns (traces, output (T, B, K*R) time-major, h_n, c_n)."""
    if isinstance(input, PackedSequence):
        raise TypeError("record_gates does not replay PackedSequence inputs; pass padded input and lengths")
    batch_first = m.batch_first
    x = input
    if x.dim() == 2:
        x = x.unsqueeze(0 if batch_first else 1)
    xt = x.transpose(0, 1) if batch_first else x  # -> (T, B, D)
    T, B = xt.shape[0], xt.shape[1]
    K, L, H = (2 if m.bidirectional else 1), m.num_layers, m.hidden_size
    R = getattr(m, "proj_size", 0) or H
    if hx is None:
        h0, c0 = xt.new_zeros(L * K, B, R), xt.new_zeros(L * K, B, H)
    else:
        h0, c0 = hx
        if input.dim() == 2:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
    lens = check_lengths(lengths, B, T) if lengths is not None else None
    valid = valid_mask(lens, T, xt) if lens is not None else xt.new_ones(T, B, 1)  # (T, B, 1)
    xt = xt.masked_fill(valid == 0, 0.0)
    variant = getattr(m, "variant", None)
    traces, h_n, c_n = [], [], []
    layer_in = xt
    for layer in range(L):
        outs = []
        for direction in range(K):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            vp = variant_parameters(m, sfx, variant) if variant is not None else {}
            seq = (reverse_padded(layer_in, lens) if lens is not None else layer_in.flip(0)) if direction else layer_in
            upd_c = upd_h = None
            if isinstance(m, LSTM):
                masks = m.sample_masks(T, B, seq.shape[2], seq)  # eval: zoneout's constant 1 - z, or None
                upd_c, upd_h = masks.update_c, masks.update_h
            h, c = h0[layer * K + direction], c0[layer * K + direction]
            rows = {k: [] for k in "ifgoch"}
            for t in range(T):
                v = valid[t]  # padded steps are past every length in this alignment (reversal keeps lengths)
                u_c = v if upd_c is None else upd_c[t] * v
                u_h = v if upd_h is None else upd_h[t] * v
                i, f, g, o, c, h = _step(seq[t], h, c, m, sfx, vp, u_c, u_h)
                for k, val in zip("ifgoch", (i, f, g, o, c, h)):
                    rows[k].append(val)
            h_n.append(h)
            c_n.append(c)
            stacked = {k: torch.stack(v) for k, v in rows.items()}  # each (T, B, .)
            out = stacked["h"] * valid
            outs.append(reverse_padded(out, lens) if (direction and lens is not None) else
                        (out.flip(0) if direction else out))
            if direction:
                stacked = {k: (reverse_padded(v, lens) if lens is not None else v.flip(0)) for k, v in stacked.items()}
            mask = valid[..., 0].transpose(0, 1).bool()  # -> (B, T)
            nan = lambda a: a.transpose(0, 1).masked_fill(~mask[..., None], float("nan"))  # noqa: E731
            traces.append(Trace(layer, direction, *(nan(stacked[k]) for k in "ifgoch"), valid=mask))
        layer_in = outs[0] if K == 1 else torch.cat(outs, dim=-1)
    return traces, layer_in, torch.stack(h_n), torch.stack(c_n)


@contextlib.contextmanager
def record_gates(model: nn.Module) -> Iterator[GateRecorder]:
    """Record the gates of every LSTM in ``model`` (itself included) during the ``with`` block."""
    rec = GateRecorder()
    handles = []

    def hook(name):
        def after(module, args, kwargs, result):
            if _stochastic(module):
                raise RuntimeError(f"record_gates: {name or 'the LSTM'} is in training mode with dropout or zoneout, "
                                   "whose random masks cannot be replayed; call model.eval() first")
            input = args[0] if args else kwargs["input"]
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            lengths = args[2] if len(args) > 2 else kwargs.get("lengths")
            traces, out, h_n, c_n = replay_lstm(module, input, hx, lengths)
            got = result[0]
            if module.batch_first and got.dim() == 3:
                got = got.transpose(0, 1)
            if got.dim() == 2:
                got = got.unsqueeze(1)
            error = float((out - got.detach()).abs().max()) if out.numel() else 0.0
            for t in traces:
                t.replay_error = error
            rec.traces.setdefault(name, []).extend(traces)
        return after

    for name, sub in model.named_modules():
        if isinstance(sub, (LSTM, nn.LSTM)):
            handles.append(sub.register_forward_hook(hook(name), with_kwargs=True))
    if not handles:
        raise ValueError(f"record_gates: {type(model).__name__} contains no LSTM (lstmkit.nn.LSTM or torch.nn.LSTM)")
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()
