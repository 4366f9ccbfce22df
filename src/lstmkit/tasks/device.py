"""Where a training step runs and in which precision: ``train.device`` and ``train.precision``.

``train.precision`` (in :class:`lstmkit.tasks.trainer.TrainConfig`):

- ``"32"``: float32 throughout (the default; what every recorded result used);
- ``"bf16-mixed"``: the step's forward under ``torch.autocast(device_type, torch.bfloat16)``
  (CUDA, and the CPU, where autocast also runs in bfloat16); no gradient scaler (bfloat16 has
  float32's exponent range);
- ``"16-mixed"``: ``torch.autocast(device_type, torch.float16)`` with a gradient scaler
  (:class:`torch.amp.GradScaler`) so small gradients do not flush to zero; CUDA only.

The weights, AdamW's moments and the gradients stay float32 in all three (autocast casts per op).
The LSTM recurrence itself stays float32 as well: :class:`lstmkit.nn.LSTM` runs its recurrence
with autocast switched off (its input is cast to the weights' dtype), so cuDNN's LSTM, the
variants' recurrence and its hand-written backward see float32 -- the precision every parity
test checks. What autocast speeds up is everything around it (input projections of models that
have them, heads, attention, convolutions).

Batches move to the device with ``non_blocking=True``; on CUDA from page-locked (pinned) host
memory, so the copy is asynchronous and overlaps the previous step's kernels. On the CPU nothing
is pinned or copied.
"""

from __future__ import annotations

import contextlib
import os
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["PRECISIONS", "resolve_device", "check_precision", "check_deterministic", "autocast", "grad_scaler",
           "to_device"]

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def resolve_device(name: str) -> torch.device:
    """``train.device``: "auto" (CUDA when available, else the CPU), "cpu", "cuda" or "cuda:N"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"train.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"train.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device {name!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    return device


def check_precision(precision, device: torch.device | None = None) -> str:
    """``precision`` as one of :data:`PRECISIONS` (32 and "32" are the same); ValueError naming
    ``train.precision`` otherwise, or for "16-mixed" on a device other than CUDA."""
    if isinstance(precision, int) and not isinstance(precision, bool) and precision == 32:
        precision = "32"
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    if precision == "16-mixed" and device is not None and device.type != "cuda":
        raise ValueError(f"train.precision '16-mixed' needs CUDA (float16 autocast with a gradient scaler); the run is "
                         f"on {device}: use 'bf16-mixed' or '32' there")
    return precision


def check_deterministic(deterministic: bool, device: torch.device) -> None:
    """``train.deterministic`` on CUDA needs cuBLAS's fixed workspace, chosen by an environment
    variable read when cuBLAS starts: refuse early, saying what to set, instead of failing at the
    first matrix product (lstmkit does not set process-wide variables itself)."""
    if deterministic and device.type == "cuda" and os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in (":4096:8",
                                                                                                  ":16:8"):
        raise ValueError("train.deterministic on CUDA needs CUBLAS_WORKSPACE_CONFIG=:4096:8 (or :16:8) in the "
                         "environment before Python starts (torch.use_deterministic_algorithms); set it, or "
                         "train.deterministic=false")


def autocast(device: torch.device, precision: str):
    """The context a training step's forward and loss run under: autocast for the mixed
    precisions, nothing for "32"."""
    if precision == "32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def grad_scaler(device: torch.device, precision: str):
    """A gradient scaler for "16-mixed" (``torch.amp.GradScaler``, or ``torch.cuda.amp.GradScaler``
    on torch releases before 2.3), else None."""
    if precision != "16-mixed":
        return None
    amp_scaler = getattr(torch.amp, "GradScaler", None)
    if amp_scaler is not None:
        return amp_scaler(device.type)
    return torch.cuda.amp.GradScaler()  # pragma: no cover - torch < 2.3


def to_device(batch: Sequence, device: torch.device) -> tuple:
    """``batch``'s tensors on ``device``: asynchronous copies from pinned memory on CUDA, the
    tensors themselves when already there (always, on the CPU)."""
    if device.type != "cuda":
        return tuple(t.to(device) if isinstance(t, Tensor) else t for t in batch)
    return tuple(_pinned(t).to(device, non_blocking=True) if isinstance(t, Tensor) else t for t in batch)


def _pinned(t: Tensor) -> Tensor:
    # The caching host allocator keeps the pinned block alive until the copy reading it has run.
    return t.pin_memory() if t.device.type == "cpu" and not t.is_pinned() else t
