"""One LSTM step, written from the gate equations, and a ``torch.nn.LSTMCell`` twin.

Gate order and parameter names follow torch (i, f, g, o; ``weight_ih``, ``weight_hh``,
``bias_ih``, ``bias_hh``), so weights copy across with ``load_state_dict``:

    z = W_ih x + b_ih + W_hh h_{t-1} + b_hh            # (B, 4H), split into z_i z_f z_g z_o
    i = sigmoid(z_i)    f = sigmoid(z_f)    g = tanh(z_g)    o = sigmoid(z_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)                                  # then h_t = W_hr h_t with a projection

:func:`lstm_cell_step` adds the variants of :mod:`lstmkit.nn.variants` to these lines. It is
the readable statement of the math; the layer runs the same equations through a faster
recurrence with a hand-written backward (:mod:`lstmkit.nn.recurrence`), and the tests prove the
two agree.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from .variants import VariantConfig

__all__ = ["LSTMState", "LSTMCell", "lstm_cell_step", "LN_EPS"]

LN_EPS = 1e-5


class LSTMState(NamedTuple):
    """Recurrent state: ``h`` (hidden or projected output) and ``c`` (cell)."""

    h: Tensor
    c: Tensor


def lstm_cell_step(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    weight_hr: Tensor | None = None,
    peephole: Tensor | None = None,
    ln_ih: tuple[Tensor, Tensor] | None = None,
    ln_hh: tuple[Tensor, Tensor] | None = None,
    ln_c: tuple[Tensor, Tensor] | None = None,
    update_c: Tensor | float | None = None,
    update_h: Tensor | float | None = None,
    recurrent_mask: Tensor | None = None,
) -> LSTMState:
    """One step of an LSTM with any combination of variants (differentiable by autograd).

    Shapes: x (B, D), h (B, R), c (B, H) with R = proj_size or H.
    ``update_c``/``update_h`` blend old and new state, ``c_t = c + u * (c~ - c)``: zoneout masks
    (Bernoulli(1 - z) in training, 1 - z in eval) or 0/1 validity masks for padded steps.
    ``recurrent_mask`` multiplies ``h_{t-1}`` before ``W_hh`` (variational dropout).
    """
    hidden = weight_hh.shape[0] // 4
    h_in = h if recurrent_mask is None else h * recurrent_mask
    xw = F.linear(x, weight_ih)  # -> (B, 4H)
    hw = F.linear(h_in, weight_hh)  # -> (B, 4H)
    if ln_ih is not None:
        xw = F.layer_norm(xw, (4 * hidden,), ln_ih[0], ln_ih[1], LN_EPS)
    if ln_hh is not None:
        hw = F.layer_norm(hw, (4 * hidden,), ln_hh[0], ln_hh[1], LN_EPS)
    z = xw + hw
    if bias_ih is not None:
        z = z + bias_ih + bias_hh
    z_i, z_f, z_g, z_o = z.chunk(4, dim=1)  # -> 4 x (B, H)
    if peephole is not None:
        z_i = z_i + peephole[0] * c
        z_f = z_f + peephole[1] * c
    i, f, g = torch.sigmoid(z_i), torch.sigmoid(z_f), torch.tanh(z_g)
    c_new = f * c + i * g
    if update_c is not None:
        c_new = c + update_c * (c_new - c)
    if peephole is not None:
        z_o = z_o + peephole[2] * c_new
    o = torch.sigmoid(z_o)
    c_read = c_new if ln_c is None else F.layer_norm(c_new, (hidden,), ln_c[0], ln_c[1], LN_EPS)
    h_new = o * torch.tanh(c_read)  # -> (B, H)
    if weight_hr is not None:
        h_new = F.linear(h_new, weight_hr)  # -> (B, R)
    if update_h is not None:
        h_new = h + update_h * (h_new - h)
    return LSTMState(h_new, c_new)


def reset_lstm_parameters(module: nn.Module, hidden_size: int, forget_bias_pairs=(), forget_bias=None) -> None:
    """torch's initialisation, U(-1/sqrt(H), 1/sqrt(H)), for every weight, bias and peephole;
    layer-norm gains (``ln_*_weight*``) 1 and shifts 0; then the forget bias on each
    ``(bias_ih, bias_hh)`` pair given."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for name, p in module.named_parameters(recurse=False):
            if name.startswith("ln_"):
                p.fill_(1.0 if "_weight" in name else 0.0)
            else:
                p.uniform_(-bound, bound)
    if forget_bias is not None:
        for bias_ih, bias_hh in forget_bias_pairs:
            init_forget_bias(bias_ih, bias_hh, forget_bias)


def init_forget_bias(bias_ih: Tensor, bias_hh: Tensor, value: float) -> None:
    """Effective forget bias ``bias_ih[f] + bias_hh[f] = value`` (set once, not doubled)."""
    hidden = bias_ih.shape[0] // 4
    with torch.no_grad():
        bias_ih[hidden : 2 * hidden].fill_(value)
        bias_hh[hidden : 2 * hidden].zero_()


def add_variant_parameters(
    module: nn.Module, suffix: str, hidden_size: int, variant: VariantConfig, factory: dict
) -> None:
    """Register peephole (3, H) and layer-norm parameters named ``<name><suffix>``
    (initialised by :func:`reset_lstm_parameters`)."""
    if variant.peephole:
        module.register_parameter(f"peephole{suffix}", nn.Parameter(torch.empty(3, hidden_size, **factory)))
    if variant.layer_norm:
        for name, width in (("ln_ih", 4 * hidden_size), ("ln_hh", 4 * hidden_size), ("ln_c", hidden_size)):
            module.register_parameter(f"{name}_weight{suffix}", nn.Parameter(torch.empty(width, **factory)))
            module.register_parameter(f"{name}_bias{suffix}", nn.Parameter(torch.empty(width, **factory)))


def variant_parameters(module: nn.Module, suffix: str, variant: VariantConfig) -> dict:
    """The keyword arguments of :func:`lstm_cell_step` that hold variant parameters."""
    out: dict = {}
    if variant.peephole:
        out["peephole"] = getattr(module, f"peephole{suffix}")
    if variant.layer_norm:
        for name in ("ln_ih", "ln_hh", "ln_c"):
            out[name] = (getattr(module, f"{name}_weight{suffix}"), getattr(module, f"{name}_bias{suffix}"))
    return out


def zoneout_update(rate: float, shape: tuple[int, ...], like: Tensor, training: bool,
                   as_bool: bool = False) -> Tensor | None:
    """Zoneout's state-update multiplier: Bernoulli(1 - rate) in training, 1 - rate in eval.
    ``as_bool``: the training draws as a bool tensor (the same draws, no conversion to ``like``'s
    dtype; the fused kernel's forward reads them as they are)."""
    if rate <= 0:
        return None
    if training:
        return bernoulli_mask(shape, 1.0 - rate, like, as_bool)
    return like.new_full((1,) * len(shape), 1.0 - rate)


def bernoulli_mask(shape: tuple[int, ...], keep: float, like: Tensor, as_bool: bool = False) -> Tensor:
    """0/1 Bernoulli(``keep``) draws in ``like``'s dtype and device: uniform 32-bit integers
    against ``keep * 2^32`` (finer than ``torch.rand``'s 24-bit floats; on CPU about twice as fast
    as ``bernoulli_``, which dominated zoneout's cost at (T, B, H) = (500, 16, 64))."""
    n = math.prod(shape)
    bits = torch.randint(-(2**63), 2**63 - 1, ((n + 1) // 2,), dtype=torch.int64, device=like.device)
    threshold = int(round(keep * 2**32)) - 2**31
    mask = (bits.view(torch.int32)[:n] < threshold).view(shape)
    return mask if as_bool else mask.to(like.dtype)


class LSTMCell(nn.Module):
    """``torch.nn.LSTMCell`` with lstmkit's per-step variants.

    Same signature, parameter names and initialisation as torch; ``forward(input, hx)`` takes
    input (B, D) or (D,) and ``hx = (h, c)`` each (B, H) (or (H,)), and returns
    ``LSTMState(h, c)``. Keyword-only variants: ``peephole``, ``layer_norm``, ``forget_bias``
    and ``zoneout`` (see :mod:`lstmkit.nn.variants`). Locked dropout needs a mask held across a
    whole sequence, so it lives on :class:`lstmkit.nn.LSTM`, not on a single step.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        peephole: bool = False,
        layer_norm: bool = False,
        forget_bias: float | None = None,
        zoneout: float | tuple[float, float] = 0.0,
    ) -> None:
        super().__init__()
        input_size, hidden_size = check_int("input_size", input_size), check_int("hidden_size", hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bool(bias)
        self.variant = VariantConfig(peephole=peephole, layer_norm=layer_norm, forget_bias=forget_bias, zoneout=zoneout)
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True (there is no bias to initialise)")
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        add_variant_parameters(self, "", hidden_size, self.variant, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        pairs = [(self.bias_ih, self.bias_hh)] if self.bias else []
        reset_lstm_parameters(self, self.hidden_size, pairs, self.variant.forget_bias)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}, variant={self.variant}"

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> LSTMState:
        """input (B, D) or (D,); hx (h, c) each (B, H) or (H,) -> LSTMState(h, c)."""
        if not isinstance(input, Tensor):
            raise TypeError(f"input must be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise ValueError(f"input must be 2-D (B, input_size) or 1-D (input_size,), got shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input has {input.shape[-1]} features in its last dimension, expected input_size={self.input_size}")
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        batch = x.shape[0]
        if hx is None:
            zeros = x.new_zeros(batch, self.hidden_size)
            h, c = zeros, zeros
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("hx must be a pair (h, c) of tensors")
            h, c = (t.unsqueeze(0) if unbatched else t for t in hx)
            for name, t in (("hx[0] (h)", h), ("hx[1] (c)", c)):
                if tuple(t.shape) != (batch, self.hidden_size):
                    raise ValueError(f"{name} must have shape {(batch, self.hidden_size)}, got {tuple(t.shape)}")
        if not self.variant.needs_loop:
            h1, c1 = torch.lstm_cell(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        else:
            z_c, z_h = self.variant.zoneout_rates
            h1, c1 = lstm_cell_step(
                x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                update_c=zoneout_update(z_c, tuple(c.shape), c, self.training),
                update_h=zoneout_update(z_h, tuple(h.shape), h, self.training),
                **variant_parameters(self, "", self.variant),
            )
        if unbatched:
            h1, c1 = h1.squeeze(0), c1.squeeze(0)
        return LSTMState(h1, c1)

