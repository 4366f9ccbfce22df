"""LSTM forecasters trained on forking sequences (MQ-RNN; Wen et al. 2017, arXiv:1711.11053).

Shapes: B series, T steps, C targets, P past-only covariates, F known-future covariates (e.g.
calendar features), N the horizon, K outputs per forecast value (1 for ``likelihood="mse"``,
2 for ``"gaussian"`` (mean, scale), Q for ``"quantile"``), S sample paths.

The encoder reads the whole series, one step at a time: its input at step t is
``x_t = [z_t (C), past_t (P), known_t (F)]`` (z: the transformed targets). After reading step
t (the *origin*) its output ``h_t`` holds everything the model knows, and a head forecasts the
steps t+1..t+N from it:

- ``head="direct"``: an MLP of ``[h_t, known_{t+1..t+N}]`` gives all N steps at once;
- ``head="recursive"``: a linear map of ``h_t`` gives step t+1; longer horizons roll out by
  feeding the forecast (or, for sample paths, a draw) back through the encoder;
- ``head="seq2seq"``: a decoder LSTM, started from a learned map of ``h_t``, reads
  ``[z_{t+k-1}, known_{t+k}]`` for k = 1..N: the true previous value in training (teacher
  forcing), its own forecast (or draw) at inference.

Training uses every origin of every series in one pass (forking sequences): the loss averages
over origins t and steps k whose target lies inside the series. Because the state at an origin
depends only on the steps read so far, forecasting from a state carried step by step (streaming)
is the same computation as forecasting after one batched pass over the history.

``cell`` picks the encoder: lstmkit's LSTM (default, with its ``variants``) or one of the modern
layers ``"slstm" | "mlstm" | "minlstm"`` (:mod:`lstmkit.nn.modern`, options in ``cell_options``,
``residual=True`` for residual pre-norm blocks); every head works with each, since the encoder's
state is carried as an opaque tuple.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..nn import LSTM, LSTMState, create_recurrent, list_recurrent, parse_variants
from ..checks import check_int
from .registry import register_model
from .rnn_classifier import check_cell_options

__all__ = ["ForecasterConfig", "LSTMForecaster"]

Head = Literal["direct", "recursive", "seq2seq"]
Likelihood = Literal["mse", "gaussian", "quantile"]


@dataclass
class ForecasterConfig:
    num_targets: int
    horizon: int
    past_covariates: int = 0  # observed up to the origin only
    future_covariates: int = 0  # known for the forecast steps too (calendar features, planned values)
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0  # between LSTM layers and before the head
    head: Head = "direct"
    likelihood: Likelihood = "mse"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)  # likelihood="quantile"; must hold 0.5 (the point forecast)
    head_hidden: int = 0  # width of the direct head's hidden layer; 0: hidden_size
    variants: dict[str, Any] = field(default_factory=dict)  # lstmkit LSTM variants of the encoder
    cell: Literal["lstm", "slstm", "mlstm", "minlstm"] = "lstm"
    cell_options: dict[str, Any] = field(default_factory=dict)  # slstm/mlstm/minlstm keyword options
    residual: bool = False  # slstm/mlstm/minlstm: num_layers residual pre-norm blocks

    def __post_init__(self) -> None:
        for name, minimum in (("num_targets", 1), ("horizon", 1), ("past_covariates", 0), ("future_covariates", 0),
                              ("hidden_size", 1), ("num_layers", 1), ("head_hidden", 0)):
            setattr(self, name, check_int(name, getattr(self, name), minimum))
        if self.head not in ("direct", "recursive", "seq2seq"):
            raise ValueError(f"head must be 'direct', 'recursive' or 'seq2seq', got {self.head!r}")
        if self.likelihood not in ("mse", "gaussian", "quantile"):
            raise ValueError(f"likelihood must be 'mse', 'gaussian' or 'quantile', got {self.likelihood!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        q = tuple(float(v) for v in self.quantiles)
        if not q or any(not 0 < v < 1 for v in q) or list(q) != sorted(set(q)) or 0.5 not in q:
            raise ValueError(f"quantiles must be increasing, distinct, in (0, 1) and include 0.5, got {self.quantiles!r}")
        self.quantiles = q
        if self.head != "direct" and self.past_covariates and self.horizon > 1:
            raise ValueError(f"head={self.head!r} feeds its forecasts back step by step, but past-only covariates are "
                             "unknown after the origin; use head='direct', or declare the covariates as future ones")
        parse_variants(self.variants)
        cells = ("lstm", *list_recurrent())
        if self.cell not in cells:
            raise ValueError(f"cell must be one of {', '.join(map(repr, cells))}, got {self.cell!r}")
        if self.cell == "lstm" and (self.cell_options or self.residual):
            raise ValueError(f"cell_options and residual apply to cell in {list_recurrent()}, got cell='lstm'")
        if self.cell != "lstm":
            if self.variants:
                raise ValueError(f"variants apply to cell='lstm' only, got cell={self.cell!r} with {self.variants}")
            check_cell_options(self.cell, self.hidden_size, self.residual, self.cell_options)

    @property
    def outputs(self) -> int:
        """K: values the head gives per forecast value."""
        return {"mse": 1, "gaussian": 2}.get(self.likelihood, len(self.quantiles))

    def to_dict(self) -> dict:
        return asdict(self)


def _windows(seq: Tensor, n: int) -> Tensor:
    """(B, T, D) -> (B, T, n, D): element [b, t, k] is seq[b, t + 1 + k] (zeros past the end)."""
    padded = F.pad(seq, (0, 0, 0, n))
    return padded[:, 1:].unfold(1, n, 1).permute(0, 1, 3, 2)[:, : seq.shape[1]]


class LSTMForecaster(nn.Module):
    """See the module docstring. Training: ``loss(x, lengths)``; inference: ``encode`` then
    ``predict`` (point/parameters) or ``sample`` (paths)."""

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        self.config = c = config
        self.input_size = c.num_targets + c.past_covariates + c.future_covariates
        between = c.dropout if c.num_layers > 1 else 0.0
        if c.cell == "lstm":
            self.encoder = LSTM(self.input_size, c.hidden_size, c.num_layers, batch_first=True, dropout=between,
                                **parse_variants(c.variants).to_dict())
        else:
            self.encoder = create_recurrent(c.cell, self.input_size, c.hidden_size, c.num_layers, batch_first=True,
                                            dropout=between, residual=c.residual, **c.cell_options)
        self.drop = nn.Dropout(c.dropout)
        out = c.num_targets * c.outputs
        if c.head == "direct":
            width = c.head_hidden or c.hidden_size
            self.head = nn.Sequential(nn.Linear(c.hidden_size + c.horizon * c.future_covariates, width), nn.ReLU(),
                                      nn.Linear(width, c.horizon * out))
        elif c.head == "recursive":
            self.head = nn.Linear(c.hidden_size, out)
        else:
            self.bridge = nn.Linear(c.hidden_size, 2 * c.hidden_size)
            self.decoder = nn.LSTM(c.num_targets + c.future_covariates, c.hidden_size, batch_first=True)
            self.head = nn.Linear(c.hidden_size, out)

    # ----------------------------------------------------------------- pieces
    def encode(self, x: Tensor, lengths: Tensor | None = None, state: LSTMState | None = None
               ) -> tuple[Tensor, LSTMState]:
        """x (B, T, C+P+F) -> (outputs h (B, T, H), state after each series' last valid step)."""
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"x must be (B, T, {self.input_size}) = targets + past + future covariates, "
                             f"got {tuple(x.shape)}")
        return self.encoder(x, state, lengths=lengths)

    def _params(self, raw: Tensor) -> Tensor:
        """(..., C*K) raw head output -> (..., C, K) distribution parameters."""
        c = self.config
        p = raw.unflatten(-1, (c.num_targets, c.outputs))
        if c.likelihood == "gaussian":
            p = torch.stack([p[..., 0], F.softplus(p[..., 1]) + 1e-3], dim=-1)
        return p

    def point(self, params: Tensor) -> Tensor:
        """(..., C, K) parameters -> (..., C) point forecast (the mean, or the median quantile)."""
        c = self.config
        if c.likelihood == "quantile":
            return params[..., c.quantiles.index(0.5)]
        return params[..., 0]

    def _direct(self, h: Tensor, known: Tensor | None) -> Tensor:
        """h (..., H), known (..., N, F) -> (..., N, C, K)."""
        c = self.config
        inp = self.drop(h) if not c.future_covariates else torch.cat([self.drop(h), known.flatten(-2)], -1)
        return self._params(self.head(inp).unflatten(-1, (c.horizon, -1)))

    def _decode(self, h: Tensor, inputs: Tensor, state: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """seq2seq decoder: h (M, H) origin summaries (used when state is None), inputs (M, n, C+F)."""
        if state is None:
            h0, c0 = torch.tanh(self.bridge(h)).unsqueeze(0).chunk(2, dim=-1)
            state = (h0.contiguous(), c0.contiguous())
        out, state = self.decoder(inputs, state)
        return self._params(self.head(self.drop(out))), state

    def nll(self, params: Tensor, y: Tensor) -> Tensor:
        """Elementwise loss of targets y (...) under params (..., K): squared error, Gaussian
        negative log-likelihood (without the constant), or pinball loss summed over quantiles."""
        c = self.config
        if c.likelihood == "mse":
            return (params[..., 0] - y) ** 2
        if c.likelihood == "gaussian":
            mu, sigma = params[..., 0], params[..., 1]
            return torch.log(sigma) + 0.5 * ((y - mu) / sigma) ** 2
        q = torch.tensor(c.quantiles, dtype=params.dtype, device=params.device)
        diff = y.unsqueeze(-1) - params
        return torch.maximum(q * diff, (q - 1) * diff).sum(-1)

    # ----------------------------------------------------------------- training
    def _forks(self, x: Tensor, lengths: Tensor, origins: Tensor | tuple[int, int] | None
               ) -> tuple[Tensor, Tensor, Tensor]:
        """The forecast of every origin t and step t+k: (params (B, T, n, C, K), targets (B, T, n, C),
        mask (B, T, n): the target lies inside the series and t inside ``origins``)."""
        c = self.config
        B, T, _ = x.shape
        h, _ = self.encode(x, lengths)
        n = c.horizon if c.head != "recursive" else 1
        z = x[..., : c.num_targets]
        z_next = _windows(z, n)  # (B, T, n, C): the targets
        steps = torch.arange(T, device=x.device)[:, None] + 1 + torch.arange(n, device=x.device)  # (T, n)
        mask = steps.unsqueeze(0) < lengths.to(x.device)[:, None, None]  # (B, T, n)
        known = None
        if c.future_covariates:  # steps past a series' end read zeros (their targets are masked too)
            known = _windows(x[..., self.input_size - c.future_covariates:], n) * mask.unsqueeze(-1)
        if origins is not None:  # (B, 2) per-series [first, stop) or one (first, stop) for all
            o = torch.as_tensor(origins, device=x.device).reshape(-1, 2).expand(B, 2)
            t = torch.arange(T, device=x.device)
            mask &= ((t >= o[:, :1]) & (t < o[:, 1:]))[:, :, None]
        if c.head == "direct":
            params = self._direct(h, known)
        elif c.head == "recursive":
            params = self._params(self.head(self.drop(h))).unsqueeze(2)
        else:
            valid = mask[..., 0]  # origins with at least one target
            prev = torch.cat([z.unsqueeze(2), z_next[:, :, :-1]], dim=2)  # teacher forcing: true z_{t+k-1}
            inputs = prev if known is None else torch.cat([prev, known], -1)
            params = torch.ones(B, T, n, c.num_targets, c.outputs, dtype=x.dtype, device=x.device)  # safe where masked
            params[valid] = self._decode(h[valid], inputs[valid])[0]
        return params, z_next, mask

    def loss(self, x: Tensor, lengths: Tensor, origins: Tensor | tuple[int, int] | None = None) -> Tensor:
        """Mean loss over every origin t (restricted to ``origins``: (first, stop), or (B, 2) per series) and
        every step t+k (k = 1..N) inside the series. x (B, T, C+P+F), lengths (B,)."""
        return self._mean_nll(*self._forks(x, lengths, origins))

    def errors(self, x: Tensor, lengths: Tensor, origins: Tensor | tuple[int, int] | None = None
               ) -> tuple[Tensor, Tensor]:
        """The point forecasts' errors (forecast - target, (B, T, n, C); zero where masked) at every origin t and
        step t+k (k = 1..n; n = 1 for the recursive head), and the mask (B, T, n) of the pairs that count
        (as in :meth:`loss`), e.g. to score a validation end by a criterion other than the loss."""
        return self._errors(*self._forks(x, lengths, origins))

    def loss_and_errors(self, x: Tensor, lengths: Tensor, origins: Tensor | tuple[int, int] | None = None
                        ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`loss` and :meth:`errors` from one pass over the series (a validation that scores both)."""
        forks = self._forks(x, lengths, origins)
        return self._mean_nll(*forks), *self._errors(*forks)

    def _mean_nll(self, params: Tensor, z_next: Tensor, mask: Tensor) -> Tensor:
        elem = self.nll(params, z_next)  # (B, T, n, C)
        weight = mask.unsqueeze(-1).to(elem.dtype).expand_as(elem)
        count = weight.sum()
        if count == 0:
            raise ValueError("no (origin, target) pair lies inside the series: they are shorter than 2 steps "
                             "or the origin range is empty")
        return torch.where(weight > 0, elem, 0.0).sum() / count  # padding never reaches the loss or its gradient

    def _errors(self, params: Tensor, z_next: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        err = self.point(params) - z_next
        return torch.where(mask.unsqueeze(-1), err, 0.0), mask

    # ----------------------------------------------------------------- inference
    def _step_input(self, z: Tensor, known: Tensor | None) -> Tensor:
        return z if known is None else torch.cat([z, known], -1)

    def _check_known(self, known: Tensor | None, batch: int) -> Tensor | None:
        c = self.config
        if not c.future_covariates:
            return None
        if known is None or known.shape != (batch, c.horizon, c.future_covariates):
            raise ValueError(f"known future covariates must be ({batch}, {c.horizon}, {c.future_covariates}), "
                             f"got {None if known is None else tuple(known.shape)}")
        return known

    def forecast(self, h_last: Tensor, state: LSTMState, z_last: Tensor, known: Tensor | None = None,
                 draws: Tensor | None = None) -> Tensor:
        """Forecast N steps from origins: h_last (B, H) the encoder output at the origin, state the
        encoder state there, z_last (B, C) the last target, known (B, N, F) the future covariates.

        Without ``draws`` returns the distribution parameters (B, N, C, K), each step conditioned on
        the point forecasts of the steps before it (recursive/seq2seq). With ``draws`` (S, B, N, C)
        standard-uniform numbers, returns sample paths (S, B, N, C): each step is drawn by the
        inverse CDF and, for recursive/seq2seq, fed back (ancestral sampling); the direct head
        draws the steps independently.
        """
        c = self.config
        known = self._check_known(known, h_last.shape[0])
        if draws is not None:  # fold the samples into the batch
            S = draws.shape[0]
            rep = lambda t: None if t is None else t.repeat(S, *([1] * (t.dim() - 1)))  # noqa: E731
            h_last, z_last, known = rep(h_last), rep(z_last), rep(known)
            state = type(state)(*(f.repeat(1, S, *([1] * (f.dim() - 2))) for f in state))  # any encoder's state
            u = draws.flatten(0, 1)  # (S*B, N, C)
        if c.head == "direct":
            params = self._direct(h_last, known)
            out = params if draws is None else self.quantile(params, u)
        else:
            steps, prev, dec_state = [], z_last, None
            for k in range(c.horizon):
                kn = None if known is None else known[:, k]  # covariates of step t+k+1
                if c.head == "recursive":
                    if k:  # read the step-(t+k) value just forecast, with that step's covariates
                        kn_prev = None if known is None else known[:, k - 1]
                        h, state = self.encode(self._step_input(prev, kn_prev).unsqueeze(1), state=state)
                        h_last = h[:, -1]
                    p = self._params(self.head(self.drop(h_last)))
                else:
                    p, dec_state = self._decode(h_last, self._step_input(prev, kn).unsqueeze(1), dec_state)
                    p = p[:, 0]
                prev = self.point(p) if draws is None else self.quantile(p, u[:, k])
                steps.append(p if draws is None else prev)
            out = torch.stack(steps, 1)
        return out if draws is None else out.unflatten(0, (S, -1))

    def quantile(self, params: Tensor, u: Tensor) -> Tensor:
        """Inverse CDF: params (..., C, K), u (..., C) in (0, 1) -> values (..., C). Quantile heads
        interpolate linearly between the predicted quantiles (sorted) and hold the outermost ones
        flat beyond them; an mse head has no distribution and refuses."""
        c = self.config
        if c.likelihood == "mse":
            raise ValueError("likelihood='mse' gives point forecasts only; train with 'gaussian' or 'quantile' "
                             "for intervals and sample paths")
        if c.likelihood == "gaussian":
            zero = torch.zeros((), dtype=params.dtype, device=params.device)
            normal = torch.distributions.Normal(zero, torch.ones_like(zero))
            return params[..., 0] + params[..., 1] * normal.icdf(u.clamp(1e-6, 1 - 1e-6))
        q = torch.tensor(c.quantiles, dtype=params.dtype, device=params.device)
        values = params.sort(-1).values
        if len(q) == 1:
            return values[..., 0]
        idx = torch.searchsorted(q, u.contiguous()).clamp(1, len(q) - 1)
        lo, hi = q[idx - 1], q[idx]
        v_lo = values.gather(-1, (idx - 1).unsqueeze(-1)).squeeze(-1)
        v_hi = values.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
        w = ((u - lo) / (hi - lo)).clamp(0, 1)
        return v_lo + w * (v_hi - v_lo)


@register_model("lstm_forecaster", arguments=ForecasterConfig, task="forecast")
def lstm_forecaster(**kwargs) -> LSTMForecaster:
    """LSTM encoder over the whole series; direct multi-horizon, recursive or seq2seq head; mse/gaussian/quantile."""
    return LSTMForecaster(ForecasterConfig(**kwargs))
