"""LSTM variants that ``torch.nn.LSTM`` lacks, as one validated config.

Each field names its paper and the exact form implemented (equations use torch's gate
order i, f, g, o; ``*`` is the element-wise product, ``W x`` a matrix product):

``peephole`` -- Gers & Schmidhuber (2000), "Recurrent nets that time and count".
    Diagonal peephole weights ``p_i, p_f, p_o`` (parameter ``peephole_l{k}``, shape (3, H)):
    ``i = sigmoid(W_ii x + W_hi h + b_i + p_i * c_{t-1})``,
    ``f = sigmoid(W_if x + W_hf h + b_f + p_f * c_{t-1})``,
    ``o = sigmoid(W_io x + W_ho h + b_o + p_o * c_t)`` (the output gate sees the new cell).

``layer_norm`` -- Ba, Kiros & Hinton (2016), "Layer normalization", LSTM form (their eq. 20-22):
    ``z = LN(W_ih x; a_x, b_x) + LN(W_hh h; a_h, b_h) + b_ih + b_hh``, each LN over the whole
    4H gate vector; ``h = o * tanh(LN(c_t; a_c, b_c))``. The cell state itself is kept
    un-normalised (only its read-out is). Gains start at 1, shifts at 0.

``forget_bias`` -- Jozefowicz, Zaremba & Sutskever (2015), "An empirical exploration of
    recurrent network architectures": the forget-gate bias starts at this value. torch keeps
    two biases (``bias_ih``, ``bias_hh``); the value goes into ``bias_ih`` and the forget slice
    of ``bias_hh`` is zeroed, so the effective bias is the value once, in every layer and
    direction.

``recurrent_dropout`` / ``input_dropout`` -- Gal & Ghahramani (2016), "A theoretically grounded
    application of dropout in recurrent neural networks": variational (locked) dropout, one
    Bernoulli mask per sequence (and per layer and direction), the same at every time step,
    on ``h_{t-1}`` before ``W_hh`` and on each layer's input before ``W_ih``; scaled by
    ``1/(1-p)`` in training, identity in eval. torch's own ``dropout`` argument (between layers,
    fresh mask per step) is kept as in torch.

``zoneout`` -- Krueger et al. (2017), "Zoneout: regularizing RNNs by randomly preserving hidden
    activations": ``c_t = d_c * c_{t-1} + (1 - d_c) * c~_t`` and the same for ``h`` with a
    fresh Bernoulli(z) mask ``d`` per step and unit in training and its expectation ``z`` at
    eval time. A float sets both rates; a pair is ``(z_cell, z_hidden)``. ``h_t`` (after
    zoneout) is the layer's output and the next step's input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from .names import unknown_name

__all__ = ["VariantConfig", "parse_variants"]


def _check_rate(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1), got {type(value).__name__}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


@dataclass(frozen=True)
class VariantConfig:
    """Which variants an LSTM uses. All neutral by default (a plain LSTM)."""

    peephole: bool = False
    layer_norm: bool = False
    forget_bias: float | None = None
    recurrent_dropout: float = 0.0
    input_dropout: float = 0.0
    zoneout: float | tuple[float, float] = 0.0

    def __post_init__(self) -> None:
        for name in ("peephole", "layer_norm"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.forget_bias is not None:
            if isinstance(self.forget_bias, bool) or not isinstance(self.forget_bias, (int, float)):
                raise TypeError(f"forget_bias must be a float or None, got {self.forget_bias!r}")
            if self.forget_bias != self.forget_bias or abs(self.forget_bias) == float("inf"):
                raise ValueError(f"forget_bias must be finite, got {self.forget_bias}")
        _check_rate("recurrent_dropout", self.recurrent_dropout)
        _check_rate("input_dropout", self.input_dropout)
        z = self.zoneout
        if isinstance(z, (tuple, list)):
            if len(z) != 2:
                raise ValueError(f"zoneout must be a float or a pair (z_cell, z_hidden), got {z!r}")
            _check_rate("zoneout[0] (cell)", z[0])
            _check_rate("zoneout[1] (hidden)", z[1])
            object.__setattr__(self, "zoneout", (float(z[0]), float(z[1])))
        else:
            _check_rate("zoneout", z)

    @property
    def zoneout_rates(self) -> tuple[float, float]:
        """``(z_cell, z_hidden)``."""
        z = self.zoneout
        return (z[0], z[1]) if isinstance(z, tuple) else (float(z), float(z))

    @property
    def needs_loop(self) -> bool:
        """True when the forward cannot run on torch's fused kernel."""
        return (
            self.peephole
            or self.layer_norm
            or self.recurrent_dropout > 0
            or self.input_dropout > 0
            or any(r > 0 for r in self.zoneout_rates)
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_NAMES = tuple(f.name for f in fields(VariantConfig))


def parse_variants(spec: Mapping[str, Any] | VariantConfig | None) -> VariantConfig:
    """Build a :class:`VariantConfig` from a mapping such as a YAML ``variants:`` block.

    Unknown names raise ``ValueError`` naming the closest valid ones.
    """
    if spec is None:
        return VariantConfig()
    if isinstance(spec, VariantConfig):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"variants must be a mapping of name -> value, got {type(spec).__name__}")
    for key in spec:
        if key not in _NAMES:
            raise unknown_name("LSTM variant", key, _NAMES)
    return VariantConfig(**dict(spec))
