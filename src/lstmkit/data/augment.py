"""Training-time augmentation: time series (padded, with lengths) and images.

Series ops (Um et al. 2017; Le Guennec et al. 2016; Iwana & Uchida 2021) take a padded batch
``x`` (B, T, D) with ``lengths`` (B,) and return ``(x, lengths)`` with the same shape and dtype:

- ``jitter(sigma)``: add N(0, sigma^2) noise to every valid value;
- ``scaling(sigma)``: multiply each series' channel by its own factor ~ N(1, sigma^2);
- ``magnitude_warp(sigma, knots)``: multiply by a smooth random curve, a natural cubic spline
  through ``knots + 2`` values ~ N(1, sigma^2) spread evenly over the series' own length
  (one curve per channel);
- ``time_warp(sigma, knots)``: resample along a smooth, strictly increasing time distortion:
  the step "speed" is a spline through ``knots + 2`` values ~ N(1, sigma^2) (clamped at 0.01),
  integrated and rescaled so the first and last steps stay in place (one warp per series,
  shared by its channels so they stay aligned);
- ``window_slice(ratio, stretch)``: a random crop of ceil(ratio * length) steps, stretched back
  to the series' length (``stretch: true``, as in Le Guennec et al. and Iwana & Uchida's code)
  or kept short, moved to the start, with the new lengths returned (``stretch: false``);
- ``window_warp(ratio, scales)``: a random window covering ``ratio`` of the series is slowed
  down or sped up by a factor drawn from ``scales``, then the series is resampled to its length.

Every series op works within each series' own length: padding is never read, output padding is
zero, and a series' output depends only on its own valid steps and the random draws. Resampling
is linear interpolation. Values are whatever the batch holds; in lstmkit's classification
pipeline they are standardised per feature, so ``sigma`` is in units of each feature's std and
scaling/warping multiplies around the feature mean.

Image ops take (B, C, H, W) and return a tensor of the same shape: ``random_crop(padding)``
(zero-pad, then crop back at a random offset: a shift of up to ``padding`` pixels) and
``horizontal_flip(p)``. Whether an op preserves the label is the user's call: a flipped digit or
letter is another symbol, so do not flip those.

:class:`Augment` composes ops from a config list such as
``[{name: jitter, sigma: 0.03}, {name: time_warp, sigma: 0.2, p: 0.5}]``: each op is applied to
each sample with probability ``p``. Randomness comes from the ``generator`` passed in, so a
seeded generator reproduces a run. :class:`AugmentedBatches` applies a pipeline to training
batches on the fly, with a generator seeded from (seed, epoch).
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ..checks import check_int

__all__ = ["jitter", "scaling", "magnitude_warp", "time_warp", "window_slice", "window_warp", "random_crop",
           "horizontal_flip", "Augment", "AugmentedBatches", "epoch_generator", "register_augmentation",
           "list_augmentations"]

Kind = Literal["series", "image"]

# ------------------------------------------------------------------------ parameter checks


def _number(ok: Callable[[float], bool], what: str) -> Callable[[str, Any], float]:
    def check(name: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or not ok(v):
            raise ValueError(f"{name} must be {what}, got {v!r}")
        return float(v)
    return check


def _count(low: int) -> Callable[[str, Any], int]:
    return lambda name, v: check_int(name, v, minimum=low)


def _flag(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be true or false, got {v!r}")
    return v


def _scales(name: str, v: Any) -> list[float]:
    ok = isinstance(v, (list, tuple)) and len(v) > 0 and all(
        not isinstance(s, bool) and isinstance(s, numbers.Real) and math.isfinite(s) and s > 0 for s in v)
    if not ok:
        raise ValueError(f"{name} must be a non-empty list of positive numbers (e.g. [0.5, 2.0]), got {v!r}")
    return [float(s) for s in v]


_SIGMA = _number(lambda v: v >= 0, "a number >= 0")
_PROBABILITY = _number(lambda v: 0 <= v <= 1, "a number in [0, 1]")

# -------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Op:
    fn: Callable
    kind: Kind
    checks: dict[str, Callable[[str, Any], Any]]  # parameter -> check(name, value) -> normalised value
    defaults: dict[str, Any]
    default_p: float
    keeps_lengths: Callable[[dict], bool]


_AUGMENTATIONS: dict[str, _Op] = {}


def register_augmentation(name: str, kind: Kind, default_p: float = 1.0,
                          keeps_lengths: Callable[[dict], bool] = lambda params: True,
                          **checks: Callable[[str, Any], Any]) -> Callable:
    """Register ``fn`` under ``name`` for :class:`Augment` configs.

    A series op is called as ``fn(x, lengths, generator=g, **params) -> (x, lengths)``, an image
    op as ``fn(x, generator=g, **params) -> x``; every keyword parameter needs a default and a
    check ``check(name, value) -> value`` (raising ValueError naming ``name``). ``keeps_lengths``
    tells from the parameters whether the op leaves lengths unchanged.
    """
    if kind not in ("series", "image"):
        raise ValueError(f"kind must be 'series' or 'image', got {kind!r}")

    def decorate(fn: Callable) -> Callable:
        if name in _AUGMENTATIONS:
            raise ValueError(f"augmentation {name!r} is already registered")
        sig = inspect.signature(fn).parameters
        missing = [k for k in checks if k not in sig or sig[k].default is inspect.Parameter.empty]
        if missing:
            raise ValueError(f"augmentation {name!r}: parameters {missing} need a default in the function")
        _AUGMENTATIONS[name] = _Op(fn, kind, dict(checks), {k: sig[k].default for k in checks}, default_p,
                                   keeps_lengths)
        return fn

    return decorate


def list_augmentations(kind: Kind | None = None) -> list[str]:
    """Registered augmentation names (of one kind, or all)."""
    return sorted(n for n, op in _AUGMENTATIONS.items() if kind is None or op.kind == kind)


def _params(name: str, **values: Any) -> dict:
    op = _AUGMENTATIONS[name]
    return {k: op.checks[k](f"{name}: {k}", v) for k, v in values.items()}

# --------------------------------------------------------------------------------- helpers


def _series(x: Tensor, lengths: Tensor | Sequence[int] | None) -> tuple[Tensor, Tensor, Tensor]:
    """(x, lengths as int64 on x's device, valid mask (B, T)); errors for malformed input."""
    if not isinstance(x, Tensor) or x.dim() != 3 or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point (B, T, D) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
                         f"{' ' + str(x.dtype) if isinstance(x, Tensor) else ''}")
    B, T, _ = x.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.int64, device=x.device)
    lengths = torch.as_tensor(lengths, dtype=torch.int64, device=x.device)
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
    if B and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"lengths must be in 1..{T} (the padded length), got {lengths.min().item()}.."
                         f"{lengths.max().item()}")
    return x, lengths, _mask(lengths, T)


def _mask(lengths: Tensor, T: int) -> Tensor:
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def _zero_padding(x: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _randn(shape: tuple, generator: torch.Generator | None, like: Tensor) -> Tensor:
    return torch.randn(shape, generator=generator, device=_device(generator), dtype=like.dtype).to(like.device)


def _rand(shape: tuple, generator: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=_device(generator), dtype=torch.float64).to(device)


def _steps(lengths: Tensor, T: int) -> Tensor:
    """(B, T) positions u in [0, 1] of each step within its series (t / (length - 1))."""
    t = torch.arange(T, device=lengths.device, dtype=torch.float64)[None, :]
    return (t / (lengths[:, None] - 1).clamp(min=1)).clamp(max=1.0)


def _spline(values: Tensor, u: Tensor) -> Tensor:
    """Natural cubic spline through K values (B, K, D) at evenly spaced knots 0..1, evaluated at
    u (B, T) in [0, 1] -> (B, T, D), in float64."""
    K = values.shape[1]
    h = 1.0 / (K - 1)
    y = values.double()
    # second derivatives M: M_0 = M_{K-1} = 0, M_{i-1} + 4 M_i + M_{i+1} = 6/h^2 (y_{i-1} - 2 y_i + y_{i+1})
    M = torch.zeros_like(y)
    if K > 2:
        A = 4 * torch.eye(K - 2, dtype=torch.float64) + torch.diag(torch.ones(K - 3, dtype=torch.float64), 1) \
            + torch.diag(torch.ones(K - 3, dtype=torch.float64), -1)
        second = torch.zeros(K - 2, K, dtype=torch.float64)
        idx = torch.arange(K - 2)
        second[idx, idx], second[idx, idx + 1], second[idx, idx + 2] = 1.0, -2.0, 1.0
        W = (torch.linalg.solve(A, second) * (6 / h**2)).to(y.device)  # (K-2, K)
        M[:, 1:-1] = torch.einsum("ik,bkd->bid", W, y)
    s = u * (K - 1)
    j = s.floor().long().clamp(0, K - 2)
    r = (s - j)[..., None]  # (B, T, 1) in [0, 1]
    D = y.shape[2]
    pick = lambda v, i: v.gather(1, i[..., None].expand(-1, -1, D))  # noqa: E731
    y0, y1, m0, m1 = pick(y, j), pick(y, j + 1), pick(M, j), pick(M, j + 1)
    a = 1 - r
    return a * y0 + r * y1 + ((a**3 - a) * m0 + (r**3 - r) * m1) * (h**2 / 6)


def _resample(x: Tensor, lengths: Tensor, src: Tensor, new_lengths: Tensor) -> Tensor:
    """Output step t of series b = x[b] linearly interpolated at position src[b, t] (clamped to
    0..lengths[b]-1, so padding is never read); steps from new_lengths[b] on are zero."""
    last = (lengths - 1)[:, None]
    src = torch.minimum(src.clamp(min=0), last.to(src.dtype))
    i0 = torch.minimum(src.floor().long(), last)
    i1 = torch.minimum(i0 + 1, last)
    frac = (src - i0).to(x.dtype)[..., None]
    D = x.shape[2]
    x0 = x.gather(1, i0[..., None].expand(-1, -1, D))
    x1 = x.gather(1, i1[..., None].expand(-1, -1, D))
    return _zero_padding(x0 + frac * (x1 - x0), _mask(new_lengths, x.shape[1]))

# ------------------------------------------------------------------------------ series ops
# Legend: B batch, T padded time, D features, K knots + 2.


@register_augmentation("jitter", "series", sigma=_SIGMA)
def jitter(x: Tensor, lengths: Tensor | None = None, sigma: float = 0.03,
           generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Add Gaussian noise N(0, sigma^2) to every valid value (Um et al. 2017)."""
    sigma = _params("jitter", sigma=sigma)["sigma"]
    x, lengths, mask = _series(x, lengths)
    return _zero_padding(x + sigma * _randn(tuple(x.shape), generator, x), mask), lengths


@register_augmentation("scaling", "series", sigma=_SIGMA)
def scaling(x: Tensor, lengths: Tensor | None = None, sigma: float = 0.1,
            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Multiply each series' channel by its own factor ~ N(1, sigma^2) (Um et al. 2017)."""
    sigma = _params("scaling", sigma=sigma)["sigma"]
    x, lengths, mask = _series(x, lengths)
    factor = 1 + sigma * _randn((x.shape[0], 1, x.shape[2]), generator, x)  # (B, 1, D)
    return _zero_padding(x * factor, mask), lengths


@register_augmentation("magnitude_warp", "series", sigma=_SIGMA, knots=_count(1))
def magnitude_warp(x: Tensor, lengths: Tensor | None = None, sigma: float = 0.2, knots: int = 4,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Multiply by a smooth random curve per channel: a natural cubic spline through
    ``knots + 2`` values ~ N(1, sigma^2), evenly spaced over each series' own length."""
    p = _params("magnitude_warp", sigma=sigma, knots=knots)
    x, lengths, mask = _series(x, lengths)
    B, T, D = x.shape
    values = 1 + p["sigma"] * _randn((B, p["knots"] + 2, D), generator, x)  # (B, K, D)
    curve = _spline(values, _steps(lengths, T)).to(x.dtype)  # (B, T, D)
    return _zero_padding(x * curve, mask), lengths


def _time_warp_positions(lengths: Tensor, T: int, sigma: float, knots: int,
                         generator: torch.Generator | None) -> Tensor:
    """(B, T) float64 source positions: strictly increasing over each series' valid steps, from 0
    to length - 1."""
    B = lengths.shape[0]
    speed_knots = 1 + sigma * torch.randn((B, knots + 2, 1), generator=generator, device=_device(generator),
                                          dtype=torch.float64).to(lengths.device)
    speed = _spline(speed_knots, _steps(lengths, T))[..., 0].clamp(min=0.01)  # (B, T)
    step = (speed[:, 1:] + speed[:, :-1]) / 2 * _mask(lengths, T)[:, 1:]  # trapezoid, zero past the end
    pos = torch.cat([torch.zeros(B, 1, dtype=torch.float64, device=lengths.device), step.cumsum(1)], 1)
    total = pos.gather(1, (lengths - 1)[:, None])  # (B, 1); 0 for one-step series
    return torch.where(total > 0, pos * (lengths[:, None] - 1) / total.clamp(min=1e-12), torch.zeros_like(pos))


@register_augmentation("time_warp", "series", sigma=_SIGMA, knots=_count(1))
def time_warp(x: Tensor, lengths: Tensor | None = None, sigma: float = 0.2, knots: int = 4,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Resample each series along a smooth, strictly increasing time distortion that keeps its
    first and last steps (Um et al. 2017); one warp per series, shared by its channels."""
    p = _params("time_warp", sigma=sigma, knots=knots)
    x, lengths, _ = _series(x, lengths)
    src = _time_warp_positions(lengths, x.shape[1], p["sigma"], p["knots"], generator)
    return _resample(x, lengths, src, lengths), lengths


@register_augmentation("window_slice", "series", keeps_lengths=lambda params: params["stretch"],
                       ratio=_number(lambda v: 0 < v <= 1, "a number in (0, 1]"), stretch=_flag)
def window_slice(x: Tensor, lengths: Tensor | None = None, ratio: float = 0.9, stretch: bool = True,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """A random crop of ceil(ratio * length) steps of each series (Le Guennec et al. 2016).

    ``stretch=True``: resampled back to the series' length, lengths unchanged (what the
    reference implementations do; needed by models that want equal lengths). ``stretch=False``:
    the crop moved to the start and kept short; the new lengths are returned.
    """
    p = _params("window_slice", ratio=ratio, stretch=stretch)
    x, lengths, _ = _series(x, lengths)
    B, T, _ = x.shape
    n = lengths.double()
    crop = torch.minimum(torch.ceil(n * p["ratio"] - 1e-9).long().clamp(min=1), lengths)
    start = (_rand((B,), generator, x.device) * (lengths - crop + 1)).floor().long()
    start = torch.minimum(start, lengths - crop)
    t = torch.arange(T, device=x.device, dtype=torch.float64)[None, :]
    if p["stretch"]:
        src = start[:, None] + t * ((crop - 1) / (n - 1).clamp(min=1))[:, None]
        return _resample(x, lengths, src, lengths), lengths
    return _resample(x, lengths, start[:, None] + t, crop), crop


@register_augmentation("window_warp", "series", ratio=_number(lambda v: 0 <= v <= 1, "a number in [0, 1]"),
                       scales=_scales)
def window_warp(x: Tensor, lengths: Tensor | None = None, ratio: float = 0.1, scales: Sequence[float] = (0.5, 2.0),
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Slow down or speed up a random window covering ``ratio`` of each series by a factor drawn
    from ``scales`` (2: twice as long, 0.5: half), then resample to the series' length
    (Le Guennec et al. 2016). Piecewise linear in time; the first and last steps stay in place."""
    p = _params("window_warp", ratio=ratio, scales=scales)
    x, lengths, _ = _series(x, lengths)
    B, T, _ = x.shape
    span = (lengths - 1).double()[:, None]  # (B, 1) the series' duration in steps
    width = p["ratio"] * span
    a = _rand((B, 1), generator, x.device) * (span - width)  # window [a, a + width]
    choice = torch.randint(len(p["scales"]), (B,), generator=generator, device=_device(generator)).to(x.device)
    s = torch.tensor(p["scales"], dtype=torch.float64, device=x.device)[choice][:, None]
    warped_span = span + width * (s - 1)  # the duration once the window is s times as long
    tau = torch.arange(T, device=x.device, dtype=torch.float64)[None, :] * warped_span / span.clamp(min=1)
    src = torch.where(tau <= a, tau, torch.where(tau <= a + width * s, a + (tau - a) / s, tau - width * (s - 1)))
    return _resample(x, lengths, src, lengths), lengths

# ------------------------------------------------------------------------------- image ops


def _image(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a (B, C, H, W) image tensor, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    return x


@register_augmentation("random_crop", "image", padding=_count(0))
def random_crop(x: Tensor, padding: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """Zero-pad each side by ``padding`` pixels and crop back to (H, W) at a random offset: a
    random shift of up to ``padding`` pixels per axis, filled with zeros."""
    padding = _params("random_crop", padding=padding)["padding"]
    B, C, H, W = _image(x).shape
    if padding == 0:
        return x
    padded = F.pad(x, (padding, padding, padding, padding)).permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C)
    offset = torch.randint(2 * padding + 1, (2, B), generator=generator, device=_device(generator)).to(x.device)
    rows = offset[0][:, None] + torch.arange(H, device=x.device)  # (B, H)
    cols = offset[1][:, None] + torch.arange(W, device=x.device)  # (B, W)
    b = torch.arange(B, device=x.device)[:, None, None]
    return padded[b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()  # -> (B, C, H, W)


@register_augmentation("horizontal_flip", "image", default_p=0.5)
def _flip(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return _image(x).flip(-1)


def horizontal_flip(x: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Mirror each image left-right with probability ``p``. Not label-preserving for digits,
    letters or anything with a handedness: use it only where a mirrored image has the same class.
    In an :class:`Augment` config, the op's ``p`` is this probability."""
    p = _PROBABILITY("horizontal_flip: p", p)
    flip = _rand((_image(x).shape[0],), generator, x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)

# ---------------------------------------------------------------------------- composition


class Augment:
    """A pipeline of registered augmentations from a config list.

    ``Augment([{"name": "jitter", "sigma": 0.03}, {"name": "time_warp", "sigma": 0.2, "p": 0.5}])``:
    ops run in order; each is applied to each sample with probability ``p`` (default 1, 0.5 for
    ``horizontal_flip``); parameters left out take the op's defaults. Unknown names, unknown
    parameters and bad values raise ValueError naming them. All ops must be of one kind.

    ``augment(x, lengths, generator)`` -> ``(x, lengths)`` for series ops on (B, T, D);
    ``augment(x, generator=generator)`` -> ``x`` for image ops on (B, C, H, W).
    ``config`` is the resolved list (every parameter and ``p``), which builds the same pipeline.
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]] = ()) -> None:
        if isinstance(specs, (str, bytes, Mapping)) or not isinstance(specs, Sequence):
            raise ValueError("augment must be a list of mappings such as [{name: jitter, sigma: 0.03, p: 0.5}], "
                             f"got {specs!r}")
        self.steps: list[tuple[str, _Op, dict, float]] = []
        for i, spec in enumerate(specs):
            where = f"augment[{i}]"
            if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
                raise ValueError(f"{where} must be a mapping with a 'name' (one of {', '.join(list_augmentations())}), "
                                 f"got {spec!r}")
            name = spec["name"]
            if name not in _AUGMENTATIONS:
                raise ValueError(f"{where}: unknown augmentation {name!r}; valid: {', '.join(list_augmentations())}")
            op = _AUGMENTATIONS[name]
            unknown = sorted(set(spec) - {"name", "p"} - set(op.defaults))
            if unknown:
                raise ValueError(f"{where} ({name}): unknown parameter(s) {', '.join(unknown)}; "
                                 f"valid: {', '.join([*op.defaults, 'p'])}")
            params = {k: check(f"{where} ({name}): {k}", spec.get(k, op.defaults[k])) for k, check in op.checks.items()}
            p = _PROBABILITY(f"{where} ({name}): p", spec.get("p", op.default_p))
            self.steps.append((name, op, params, p))
        kinds = {op.kind for _, op, _, _ in self.steps}
        if len(kinds) > 1:
            raise ValueError("augment mixes series ops and image ops ("
                             + ", ".join(f"{n}: {op.kind}" for n, op, _, _ in self.steps)
                             + "); a pipeline works on one kind of batch")
        self.kind: Kind | None = kinds.pop() if kinds else None

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def config(self) -> list[dict]:
        return [{"name": name, **params, "p": p} for name, _, params, p in self.steps]

    @property
    def keeps_lengths(self) -> bool:
        """Whether every op leaves series lengths unchanged."""
        return all(op.keeps_lengths(params) for _, op, params, _ in self.steps)

    def __repr__(self) -> str:
        return f"Augment({self.config!r})"

    def __call__(self, x: Tensor, lengths: Tensor | Sequence[int] | None = None,
                 generator: torch.Generator | None = None):
        if self.kind == "image" or (self.kind is None and lengths is None):
            if lengths is not None:
                raise ValueError("image augmentations take no lengths")
            for _, op, params, p in self.steps:
                if p > 0:
                    y = op.fn(x, generator=generator, **params)
                    x = y if p == 1 else torch.where(self._chosen(p, x, generator)[:, None, None, None], y, x)
            return x
        x, lengths, _ = _series(x, lengths)
        for _, op, params, p in self.steps:
            if p > 0:
                y, n = op.fn(x, lengths, generator=generator, **params)
                if p < 1:
                    keep = self._chosen(p, x, generator)
                    y, n = torch.where(keep[:, None, None], y, x), torch.where(keep, n, lengths)
                x, lengths = y, n
        return x, lengths

    @staticmethod
    def _chosen(p: float, x: Tensor, generator: torch.Generator | None) -> Tensor:
        return _rand((x.shape[0],), generator, x.device) < p


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded from (seed, epoch): each epoch its own, reproducible draws."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence((seed, epoch, 0xA06)).generate_state(1)[0]))


class AugmentedBatches:
    """Training batches augmented on the fly: ``batches(epoch)`` yields ``base.batches(epoch)``
    (tuples ``(x, lengths, *rest)``) with ``augment`` applied to ``(x, lengths)``, drawing from a
    generator seeded from ``(seed, epoch)`` so a run is reproducible. Batches are trimmed to their
    longest (possibly shortened) series."""

    def __init__(self, base, augment: Augment, seed: int = 0) -> None:
        if augment.kind == "image":
            raise ValueError("AugmentedBatches takes series augmentations (x (B, T, D) with lengths), "
                             f"got image ops {[c['name'] for c in augment.config]}")
        self.base, self.augment, self.seed = base, augment, seed

    def __len__(self) -> int:
        return len(self.base)

    def batches(self, epoch: int = 0) -> Iterator[tuple[Tensor, ...]]:
        generator = epoch_generator(self.seed, epoch)
        for x, lengths, *rest in self.base.batches(epoch):
            x, lengths = self.augment(x, lengths, generator)
            yield (x[:, : int(lengths.max())], lengths, *rest)
