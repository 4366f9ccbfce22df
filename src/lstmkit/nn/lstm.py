"""``lstmkit.nn.LSTM``: torch.nn.LSTM's interface, lengths on every call, and the variants.

Composition, bottom to top: the step equations (:mod:`.cell`) -> a layer's recurrence over time
with a hand-written backward (:mod:`.recurrence`) -> reversal within each length for the
backward direction -> bidirectional concatenation -> stacking with torch's inter-layer dropout
-> this facade, which owns the parameters under torch's names so a ``torch.nn.LSTM`` state dict
loads with no renaming.

Which code runs (``implementation="auto"``):
- no variant switched on: torch's fused kernel (oneDNN on CPU, cuDNN on GPU); with ``lengths``
  the kernel runs per chunk of time in which the set of active sequences is constant
  (:func:`.lengths.fused_lstm_by_length`), which is exact and avoids the slow packed path;
- any variant: the layer recurrence of :mod:`.recurrence`.
``implementation="loop"`` forces the recurrence (for tests and benchmarks); ``"fused"`` refuses
variants that the fused kernel cannot run.

A drop-in for code written against ``torch.nn.LSTM``: besides the parameter names, it has
``flatten_parameters()`` (torch's own, so on CUDA with cuDNN the weights become views of one
buffer that the fused kernel uses without copying; elsewhere a no-op), ``all_weights`` and the
bookkeeping ``_flat_weights_names``, ``_all_weights`` and ``_flat_weights`` with
``torch.nn.RNNBase``'s meaning. ``_flat_weights`` is read from the module's attributes on every
access, so it always holds the current parameters (after ``load_state_dict``, ``.to()``, or an
attribute replaced by a weight-dropping wrapper) and needs no refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..checks import check_int
from .cell import (
    LN_EPS,
    LSTMState,
    add_variant_parameters,
    reset_lstm_parameters,
    variant_parameters,
    zoneout_update,
)
from .fused_recurrence import fused_recurrence, input_projection, packed_lstm, use_fused
from .inputs import autocast_on, check_sequence_input
from .lengths import check_lengths, fused_lstm_by_length, packed_indices, reverse_padded, valid_mask
from .recurrence import lstm_recurrence
from .variants import VariantConfig

__all__ = ["LSTM"]

Implementation = Literal["auto", "fused", "loop"]
_IMPLEMENTATIONS = ("auto", "fused", "loop")


@dataclass
class SequenceMasks:
    """Random masks of one layer and direction for one forward call (None: not used).

    input (B, D) and recurrent (B, R) are locked across time; update_c (T, B|1, H|1) and
    update_h (T, B|1, R|1) are zoneout's update multipliers.
    """

    input: Tensor | None = None
    recurrent: Tensor | None = None
    update_c: Tensor | None = None
    update_h: Tensor | None = None


class LSTM(nn.Module):
    """Multi-layer LSTM with the signature of ``torch.nn.LSTM``.

    Its parameters are torch's (names, shapes, order) and it has torch's ``all_weights``,
    ``flatten_parameters()``, ``_flat_weights_names``, ``_all_weights`` and ``_flat_weights``;
    the variants' extra parameters (peephole, layer norm) are in none of these lists.

    Args match torch (``input_size, hidden_size, num_layers, bias, batch_first, dropout,
    bidirectional, proj_size, device, dtype``); keyword-only: the variants of
    :class:`lstmkit.nn.VariantConfig` and ``implementation``.

    ``forward(input, hx=None, lengths=None)``: input (T, B, D), (B, T, D) with
    ``batch_first``, (T, D) unbatched, or a ``PackedSequence``; ``hx = (h_0, c_0)`` with
    shapes (L*K, B, R) and (L*K, B, H) (K = 2 if bidirectional, R = proj_size or H);
    ``lengths`` (B,) ints in [1, T]. Returns ``(output, LSTMState(h_n, c_n))`` with output
    (T, B, K*R) (batch first if asked), zero past each sequence's length, and ``h_n``/``c_n``
    the state at each sequence's own last valid step, in every direction.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        peephole: bool = False,
        layer_norm: bool = False,
        forget_bias: float | None = None,
        recurrent_dropout: float = 0.0,
        input_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        implementation: Implementation = "auto",
    ) -> None:
        super().__init__()
        input_size, hidden_size = check_int("input_size", input_size), check_int("hidden_size", hidden_size)
        num_layers = check_int("num_layers", num_layers)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int):
            raise TypeError(f"proj_size must be an int, got {type(proj_size).__name__}")
        if not 0 <= proj_size < hidden_size:
            raise ValueError(f"proj_size must be 0 (no projection) or in [1, hidden_size={hidden_size}), got {proj_size}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a float in [0, 1], got {dropout!r}")
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        if implementation not in _IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {_IMPLEMENTATIONS}, got {implementation!r}")
        self.variant = VariantConfig(
            peephole=peephole, layer_norm=layer_norm, forget_bias=forget_bias,
            recurrent_dropout=recurrent_dropout, input_dropout=input_dropout, zoneout=zoneout,
        )
        if implementation == "fused" and self.variant.needs_loop:
            raise ValueError(f"implementation='fused' cannot run these variants: {self.variant}; use 'auto' or 'loop'")
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True (there is no bias to initialise)")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.proj_size = bool(bidirectional), proj_size
        self.implementation = implementation
        self.num_directions = 2 if bidirectional else 1
        factory = {"device": device, "dtype": dtype}
        out_size = proj_size or hidden_size
        gates = 4 * hidden_size
        self._flat_weights_names: list[str] = []  # torch's parameters, in torch's order
        self._all_weights: list[list[str]] = []  # the same names, one list per layer and direction
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out_size * self.num_directions
            for direction in range(self.num_directions):
                sfx = self._suffix(layer, direction)
                shapes = [(f"weight_ih{sfx}", (gates, layer_in)), (f"weight_hh{sfx}", (gates, out_size))]
                if bias:
                    shapes += [(f"bias_ih{sfx}", (gates,)), (f"bias_hh{sfx}", (gates,))]
                if proj_size:
                    shapes.append((f"weight_hr{sfx}", (proj_size, hidden_size)))
                for name, shape in shapes:
                    p = nn.Parameter(torch.empty(shape, **factory))
                    self.register_parameter(name, p)
                    self._flat_weights_names.append(name)
                self._all_weights.append([name for name, _ in shapes])
                add_variant_parameters(self, sfx, hidden_size, self.variant, factory)
        self.reset_parameters()
        self.flatten_parameters()  # as torch.nn.LSTM does on construction (for device="cuda")

    # -- parameters ---------------------------------------------------------------------
    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    mode = "LSTM"  # torch.nn.RNNBase's name for the cell kind (read by flatten_parameters)

    @property
    def _flat_weights(self) -> list[Tensor]:
        """torch's parameters in torch's order (``torch.lstm``'s weight list), as they are now."""
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """One list per layer and direction (``l0``, ``l0_reverse``, ``l1``, ...) of its
        parameters in torch's order: ``weight_ih, weight_hh[, bias_ih, bias_hh][, weight_hr]``."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Make the weights one contiguous cuDNN buffer, as ``torch.nn.LSTM.flatten_parameters``:
        this *is* torch's method (it reads only attributes the two classes share), so it acts
        exactly when torch's does -- all weights on a CUDA device, of one dtype, acceptable to
        cuDNN and not aliased -- and is a no-op otherwise (on CPU always). Without it cuDNN copies
        the weights on every fused call and warns that they are "not part of single contiguous
        chunk of memory". Called on construction and after ``.to()``/``.cuda()``, like torch."""
        nn.RNNBase.flatten_parameters(self)  # type: ignore[arg-type]

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        self.flatten_parameters()  # torch.nn.RNNBase._apply does the same after moving
        return out

    def reset_parameters(self) -> None:
        """torch's U(-1/sqrt(H), 1/sqrt(H)); LN gains 1, shifts 0; then the forget bias."""
        pairs = []
        if self.bias:
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    sfx = self._suffix(layer, direction)
                    pairs.append((getattr(self, f"bias_ih{sfx}"), getattr(self, f"bias_hh{sfx}")))
        reset_lstm_parameters(self, self.hidden_size, pairs, self.variant.forget_bias)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("proj_size", 0)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.variant != VariantConfig():
            s += f", variant={self.variant}"
        return s

    @classmethod
    def from_torch(cls, module: nn.LSTM, **variants) -> "LSTM":
        """An lstmkit LSTM with ``module``'s configuration and weights (plus optional variants)."""
        if not isinstance(module, nn.LSTM):
            raise TypeError(f"module must be a torch.nn.LSTM, got {type(module).__name__}")
        w = module.weight_ih_l0
        new = cls(module.input_size, module.hidden_size, module.num_layers, module.bias, module.batch_first,
                  module.dropout, module.bidirectional, module.proj_size, device=w.device, dtype=w.dtype, **variants)
        extra_params = new.variant.peephole or new.variant.layer_norm  # keys torch's state dict lacks
        new.load_state_dict(module.state_dict(), strict=not extra_params)
        return new

    # -- forward ------------------------------------------------------------------------
    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: tuple[Tensor, Tensor] | None = None,
        lengths: Tensor | Sequence[int] | None = None,
    ) -> tuple[Tensor | PackedSequence, LSTMState]:
        device = (input.data if isinstance(input, PackedSequence) else input).device \
            if isinstance(input, (Tensor, PackedSequence)) else None
        if device is not None and autocast_on(device.type):
            # The recurrence runs in the weights' dtype (float32 for mixed precision): cuDNN's LSTM,
            # the variants' recurrence and its hand-written backward are checked in that precision.
            with torch.autocast(device.type, enabled=False):
                return self.forward(_cast(input, self.weight_ih_l0.dtype), _cast(hx, self.weight_ih_l0.dtype), lengths)
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError("lengths must not be given with a PackedSequence (it carries its own)")
            padded, lens = pad_packed_sequence(input, batch_first=self.batch_first)
            out, state = self.forward(padded, hx, lens)
            return pack_padded_sequence(out, lens, batch_first=self.batch_first, enforce_sorted=False), state
        x, unbatched = self._check_input(input)
        time_dim = 1 if self.batch_first else 0
        total, batch = x.shape[time_dim], x.shape[1 - time_dim]
        h0, c0 = self._initial_state(hx, x, batch, unbatched)
        lens = check_lengths(lengths, batch, total) if lengths is not None else None
        if lens is not None and bool((lens == total).all()):
            lens = None  # nothing is padded
        if self.implementation != "loop" and not self.variant.needs_loop and lens is None:
            out, h_n, c_n = torch.lstm(x, (h0, c0), self._flat_weights, self.bias, self.num_layers,
                                       self.dropout, self.training, self.bidirectional, self.batch_first)
        else:
            xt = x.transpose(0, 1) if self.batch_first else x  # -> (T, B, D)
            if self.implementation != "loop" and not self.variant.needs_loop:
                out, h_n, c_n = self._forward_fused_lengths(xt, h0, c0, lens)
            else:
                out, h_n, c_n = self._forward_loop(xt, h0, c0, lens)
            if self.batch_first:
                out = out.transpose(0, 1)
        if unbatched:
            out, h_n, c_n = out.squeeze(1 - time_dim), h_n.squeeze(1), c_n.squeeze(1)
        return out, LSTMState(h_n, c_n)

    def _check_input(self, input: Tensor) -> tuple[Tensor, bool]:
        return check_sequence_input(input, self.input_size, self.batch_first, self.weight_ih_l0,
                                    "a Tensor or PackedSequence")

    def _initial_state(self, hx, x: Tensor, batch: int, unbatched: bool) -> tuple[Tensor, Tensor]:
        n = self.num_layers * self.num_directions
        r = self.proj_size or self.hidden_size
        if hx is None:
            return x.new_zeros(n, batch, r), x.new_zeros(n, batch, self.hidden_size)
        if not isinstance(hx, (tuple, list)) or len(hx) != 2 or not all(isinstance(t, Tensor) for t in hx):
            raise TypeError("hx must be a pair (h_0, c_0) of tensors")
        h0, c0 = hx
        for name, t in (("hx[0] (h_0)", h0), ("hx[1] (c_0)", c0)):
            if t.device != x.device or (t.dtype != x.dtype and not autocast_on(x.device.type)):
                raise TypeError(f"{name} has dtype {t.dtype} on {t.device}; expected the input's {x.dtype} on {x.device}")
        if unbatched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        for name, t, shape in (("hx[0] (h_0)", h0, (n, batch, r)), ("hx[1] (c_0)", c0, (n, batch, self.hidden_size))):
            if tuple(t.shape) != shape:
                want, got = shape, tuple(t.shape)
                if unbatched:
                    want, got = (shape[0], shape[2]), got[:1] + got[2:]
                raise ValueError(f"{name} must have shape {want} (num_layers*num_directions, [batch,] size), got {got}")
        return h0, c0

    def _forward_fused_lengths(self, x: Tensor, h0: Tensor, c0: Tensor, lens: Tensor):
        """Fused kernel per chunk of constant active set; x (T, B, D) -> (T, B, K*R)."""
        if use_fused(x):
            if not self.proj_size:
                return self._forward_packed_lengths(x, h0, c0, lens)
            return self._forward_sorted_lengths(x, h0, c0, lens)
        if not self.bidirectional:
            return fused_lstm_by_length(x, h0, c0, lens, self._flat_weights, self.bias, self.num_layers,
                                        self.dropout, self.training)
        per_dir = len(self._flat_weights_names) // (self.num_layers * 2)
        weights = self._flat_weights

        def run(x, idx, layer, direction):
            w = weights[idx * per_dir : (idx + 1) * per_dir]
            inp = reverse_padded(x, lens) if direction else x
            out, h, c = fused_lstm_by_length(inp, h0[idx : idx + 1], c0[idx : idx + 1], lens, w, self.bias,
                                             1, 0.0, self.training)
            return (reverse_padded(out, lens) if direction else out), h[0], c[0]

        return self._stack_layers(x, run)

    def _forward_packed_lengths(self, x: Tensor, h0: Tensor, c0: Tensor, lens: Tensor):
        """The fused kernel on packed rows (no padding anywhere: only valid steps are computed,
        input products included), one call per layer and direction; x (T, B, D) -> (T, B, K*H),
        padding zero."""
        T, B = x.shape[0], x.shape[1]
        order, batch_sizes, flat, reverse = packed_indices(lens, T)
        dev = x.device
        flat_d, order_d = flat.to(dev), order.to(dev)
        reverse_d = reverse.to(dev) if self.bidirectional else None
        xs = x.reshape(T * B, x.shape[2]).index_select(0, flat_d)  # padding (NaN included) is never read
        h0, c0 = h0.index_select(1, order_d), c0.index_select(1, order_d)
        direct = not self.bidirectional  # the last layer's kernel then writes the padded output itself

        def run(x, idx, layer, direction):
            sfx = self._suffix(layer, direction)
            inp = x.index_select(0, reverse_d) if direction else x
            bias = getattr(self, f"bias_ih{sfx}") + getattr(self, f"bias_hh{sfx}") if self.bias else None
            last = direct and layer == self.num_layers - 1
            out, h, c = packed_lstm(inp, h0[idx], c0[idx], getattr(self, f"weight_ih{sfx}"),
                                    getattr(self, f"weight_hh{sfx}"), bias, batch_sizes,
                                    flat if last else None, T * B)
            return (out.index_select(0, reverse_d) if direction else out), h, c

        out, h_n, c_n = self._stack_layers(xs, run)
        if direct:
            padded = out.view(T, B, out.shape[1])
        else:
            padded = out.new_zeros(T * B, out.shape[1]).index_copy(0, flat_d, out).view(T, B, out.shape[1])
        inverse = torch.argsort(order).to(dev)
        return padded, h_n.index_select(1, inverse), c_n.index_select(1, inverse)

    def _forward_sorted_lengths(self, x: Tensor, h0: Tensor, c0: Tensor, lens: Tensor):
        """The fused recurrence over the whole padded batch in one call per layer and direction:
        rows sorted longest first, a finished row leaves the matrix products and keeps its state
        (exact, with no per-length calls); x (T, B, D) -> (T, B, K*R)."""
        lens_sorted, order = torch.sort(lens, descending=True, stable=True)
        permuted = not bool((order == torch.arange(len(lens))).all())
        if permuted:
            dev_order = order.to(x.device)
            x, h0, c0 = x.index_select(1, dev_order), h0.index_select(1, dev_order), c0.index_select(1, dev_order)
        steps = torch.arange(x.shape[0]).unsqueeze(1)
        batch_sizes = (steps < lens_sorted.unsqueeze(0)).sum(1)  # (T,) rows still running at each step
        x = x.masked_fill(valid_mask(lens_sorted, x.shape[0], x) == 0, 0.0)  # padding may hold NaN

        def run(x, idx, layer, direction):
            sfx = self._suffix(layer, direction)
            inp = reverse_padded(x, lens_sorted) if direction else x
            bias = getattr(self, f"bias_ih{sfx}") + getattr(self, f"bias_hh{sfx}") if self.bias else None
            xp = input_projection(inp, getattr(self, f"weight_ih{sfx}"), bias)  # -> (T, B, 4H)
            out, h, c = fused_recurrence(xp, h0[idx], c0[idx], getattr(self, f"weight_hh{sfx}"),
                                         weight_hr=getattr(self, f"weight_hr{sfx}") if self.proj_size else None,
                                         batch_sizes=batch_sizes)
            return (reverse_padded(out, lens_sorted) if direction else out), h, c

        out, h_n, c_n = self._stack_layers(x, run)
        if permuted:
            inverse = torch.argsort(order).to(x.device)
            out, h_n, c_n = out.index_select(1, inverse), h_n.index_select(1, inverse), c_n.index_select(1, inverse)
        return out, h_n, c_n

    def _forward_loop(self, x: Tensor, h0: Tensor, c0: Tensor, lens: Tensor | None):
        """Stacked (bi)directional recurrence with variants; x (T, B, D) -> (T, B, K*R)."""
        valid = valid_mask(lens, x.shape[0], x) if lens is not None else None
        if valid is not None:  # padding may hold anything, NaN included: keep it out of the masked recurrence
            x = x.masked_fill(valid == 0, 0.0)
        return self._stack_layers(
            x, lambda x, idx, layer, direction: self._run_direction(x, h0[idx], c0[idx], layer, direction, lens, valid))

    def _stack_layers(self, x: Tensor, run) -> tuple[Tensor, Tensor, Tensor]:
        """Layers bottom to top, directions side by side, torch's dropout between layers.

        ``run(x, idx, layer, direction) -> (out (T, B, R), h (B, R), c (B, H))`` runs one layer
        and direction (state index ``idx``); returns output (T, B, K*R), h_n, c_n (L*K, B, ...).
        """
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                out, h, c = run(x, layer * self.num_directions + direction, layer, direction)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # -> (T, B, K*R)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, torch.stack(h_n), torch.stack(c_n)

    def _run_direction(self, x, h0, c0, layer, direction, lens, valid):
        """One layer, one direction: x (T, B, D) -> out (T, B, R), h (B, R), c (B, H)."""
        sfx = self._suffix(layer, direction)
        reverse = direction == 1
        if reverse:
            x = reverse_padded(x, lens) if lens is not None else x.flip(0)
        masks = self.sample_masks(x.shape[0], x.shape[1], x.shape[2], x)
        if masks.input is not None:
            x = x * masks.input
        # Input side of every step at once: xp = LN_ih(W_ih x) + b_ih + b_hh. Both biases fold
        # into the op that makes xp (the linear's bias, or LN's shift): a (T, B, 4H) tensor is
        # several MB, and each extra one costs milliseconds in page faults on CPU.
        vp = variant_parameters(self, sfx, self.variant)
        bias = getattr(self, f"bias_ih{sfx}") + getattr(self, f"bias_hh{sfx}") if self.bias else None
        kw = dict(weight_hr=getattr(self, f"weight_hr{sfx}") if self.proj_size else None,
                  peephole=vp.get("peephole"), ln_hh=vp.get("ln_hh"), ln_c=vp.get("ln_c"),
                  update_c=_times(masks.update_c, valid), update_h=_times(masks.update_h, valid),
                  valid=valid, recurrent_mask=masks.recurrent)
        w_ih, w_hh = getattr(self, f"weight_ih{sfx}"), getattr(self, f"weight_hh{sfx}")
        if "ln_ih" in vp:
            gain, shift = vp["ln_ih"]
            shift = shift if bias is None else shift + bias
            if not torch.is_grad_enabled() and use_fused(x):  # inference: LN_ih row by row inside the kernel
                out, h, c = fused_recurrence(input_projection(x, w_ih), h0, c0, w_hh, ln_input=(gain, shift), **kw)
            else:
                xp = F.layer_norm(input_projection(x, w_ih), (4 * self.hidden_size,), gain, shift, LN_EPS)
                out, h, c = lstm_recurrence(xp, h0, c0, w_hh, **kw)
        else:
            xp = input_projection(x, w_ih, bias)  # -> (T, B, 4H)
            out, h, c = lstm_recurrence(xp, h0, c0, w_hh, **kw)
        if reverse:
            out = reverse_padded(out, lens) if lens is not None else out.flip(0)
        return out, h, c

    def sample_masks(self, total: int, batch: int, in_size: int, like: Tensor) -> SequenceMasks:
        """Draw one layer-direction's masks for a forward call (called once per layer and direction).
        Zoneout's training draws are bool tensors when the forward-only fused kernel will read them
        (``no_grad`` and the fused path: it selects, no float copy), float otherwise; the same draws.

        Locked dropout masks have no time axis: the same mask serves every step of a sequence.
        """
        v = self.variant
        r = self.proj_size or self.hidden_size
        masks = SequenceMasks()
        if self.training:
            if v.input_dropout > 0:
                masks.input = _locked_mask(batch, in_size, v.input_dropout, like)
            if v.recurrent_dropout > 0:
                masks.recurrent = _locked_mask(batch, r, v.recurrent_dropout, like)
        z_c, z_h = v.zoneout_rates
        as_bool = self.training and (z_c > 0 or z_h > 0) and not torch.is_grad_enabled() and use_fused(like)
        masks.update_c = _over_time(zoneout_update(z_c, (total, batch, self.hidden_size), like, self.training,
                                                   as_bool), total)
        masks.update_h = _over_time(zoneout_update(z_h, (total, batch, r), like, self.training, as_bool), total)
        return masks


def _cast(value, dtype: torch.dtype):
    """Floating-point tensors of ``value`` (a tensor, PackedSequence, pair or None) in ``dtype``."""
    if isinstance(value, PackedSequence):
        return value._replace(data=_cast(value.data, dtype))
    if isinstance(value, (tuple, list)):
        items = [_cast(v, dtype) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value.to(dtype) if isinstance(value, Tensor) and value.is_floating_point() else value


def _locked_mask(batch: int, width: int, p: float, like: Tensor) -> Tensor:
    return torch.empty(batch, width, dtype=like.dtype, device=like.device).bernoulli_(1.0 - p).div_(1.0 - p)


def _over_time(mask: Tensor | None, total: int) -> Tensor | None:
    """Give an eval-time constant (1, 1, 1) multiplier a time axis the recurrence can index."""
    if mask is None or mask.shape[0] == total:
        return mask
    return mask.expand(total, *mask.shape[1:])


def _times(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    return a if b is None else a * b
