"""The compiled minLSTM scan (:class:`lstmkit.nn.MinLSTM`, ``mode="scan"``): its source, build,
cache, loading, and which path runs.

``_scan_kernel.c`` beside this module (package data) holds the forward and backward scan with
all the gates' element-wise work, written out for float32 and float64. It is built on first use
the way the stream kernel is (:mod:`lstmkit.nn._stream_kernel`: the system compiler, the cache
``$LSTMKIT_CACHE_DIR`` or ``~/.cache/lstmkit``, a file named by a hash of the source, compiler,
flags and CPU, :func:`~lstmkit.nn._stream_kernel.build_atomically`) and loaded through
``ctypes``. Where it cannot be built, the PyTorch scan runs instead (the reason is logged once).

``scan_backend("auto" | "compiled" | "torch")`` (a context manager) or the environment variable
``LSTMKIT_SCAN`` choose the path; ``"auto"`` takes the compiled one for float32/float64 CPU
tensors when it is available.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from pathlib import Path

import torch
from torch import Tensor

from ._compiled_path import CompiledPath
from ._stream_kernel import cache_path, load_c_library, open_library, typed_source

__all__ = ["BACKENDS", "ScanUnavailable", "minscan_backward", "minscan_forward", "scan_backend",
           "scan_unavailable_reason", "use_compiled_scan"]

logger = logging.getLogger(__name__)

ABI_VERSION = 1
_SOURCE = "_scan_kernel.c"
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


class ScanUnavailable(RuntimeError):
    """The compiled scan cannot be built or loaded here."""


@functools.cache
def source() -> str:
    return typed_source(_SOURCE, ABI_VERSION)


def library_path(cc: str, flags: tuple[str, ...]) -> Path:
    return cache_path("minlstm_scan", source(), cc, flags)


def _open(path: str) -> ctypes.CDLL:
    lib = open_library(path, "lstmkit_scan_abi", ABI_VERSION)
    i64, p = ctypes.c_int64, ctypes.c_void_p
    for sfx in _SUFFIX.values():
        fwd, bwd = getattr(lib, f"lstmkit_minscan_forward_{sfx}"), getattr(lib, f"lstmkit_minscan_backward_{sfx}")
        fwd.argtypes, fwd.restype = [i64] * 4 + [p] * 8, None
        bwd.argtypes, bwd.restype = [i64] * 4 + [p] * 14, None
    return lib


def _load() -> ctypes.CDLL:
    return load_c_library("minLSTM scan kernel", source, library_path, _open, ScanUnavailable)


PATH = CompiledPath("scan", "compiled", "LSTMKIT_SCAN", _load, ScanUnavailable, "compiled minLSTM scan",
                    "PyTorch scan", logger)
BACKENDS = PATH.backends


def library() -> ctypes.CDLL:
    """The loaded kernel, built on first use; raises :class:`ScanUnavailable` (remembered: no retry)."""
    return PATH.kernel()


def scan_unavailable_reason() -> str | None:
    """None when the compiled scan can run here, else why not."""
    return PATH.unavailable_reason()


def get_scan_backend() -> str:
    return PATH.backend()


def scan_backend(name: str):
    """Run the block with the minLSTM scan on ``name``: ``"auto"``, ``"compiled"`` (or raise
    :class:`ScanUnavailable`) or ``"torch"``."""
    return PATH.using(name)


def use_compiled_scan(like: Tensor) -> bool:
    """Whether the compiled scan runs for a tensor like ``like`` under the backend in force."""
    return PATH.use(like)


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def minscan_forward(x: Tensor, weight: Tensor, bias: Tensor | None, h0: Tensor, pad: Tensor | None,
                    z: Tensor | None) -> Tensor:
    """h (T, B, H) from x (T, B, D), weight (3H, D), bias (3H,) | None, h0 (B, H) and pad (T, B)
    uint8 | None; with z (T, B, 3H) (x W^T + b, contiguous) given, the kernel reads it instead of
    projecting x itself."""
    T, B, D = x.shape
    H = weight.shape[0] // 3
    x, h0 = x.contiguous(), h0.contiguous()
    wt = weight.detach().t().contiguous()
    bias = None if bias is None else bias.detach().contiguous()
    h = torch.empty(T, B, H, dtype=x.dtype)
    scratch = torch.empty(3 * H, dtype=x.dtype)
    getattr(library(), f"lstmkit_minscan_forward_{_SUFFIX[x.dtype]}")(
        T, B, H, D, _ptr(z), _ptr(x), _ptr(wt), _ptr(bias), _ptr(h0), _ptr(pad), _ptr(h), _ptr(scratch))
    return h


def minscan_backward(x: Tensor, weight: Tensor, bias: Tensor | None, h0: Tensor, pad: Tensor | None,
                     z: Tensor | None, h: Tensor, dh: Tensor, needs: tuple[bool, bool, bool]):
    """From dh (T, B, H): (dz (T, B, 3H), None, None, None, dh0) when z is given (the caller
    forms the projection's gradients), else (None, dx | None, dW | None, db | None, dh0) as
    ``needs`` (dx, dW, db) asks."""
    T, B, D = x.shape
    H = weight.shape[0] // 3
    x, h0, dh = x.contiguous(), h0.contiguous(), dh.contiguous()
    wt = weight.detach().t().contiguous()
    bias = None if bias is None else bias.detach().contiguous()
    dh0 = torch.empty(B, H, dtype=x.dtype)
    work = torch.empty(2 * B * H + 6 * H + (D + 1) * 3 * H, dtype=x.dtype)
    dz = dx = dwt = db = None
    if z is not None:
        dz = torch.empty_like(z)
    else:
        dx = torch.empty_like(x) if needs[0] else None
        dwt = torch.empty(D, 3 * H, dtype=torch.float64) if needs[1] else None
        db = torch.empty(3 * H, dtype=torch.float64) if needs[2] else None
    getattr(library(), f"lstmkit_minscan_backward_{_SUFFIX[x.dtype]}")(
        T, B, H, D, _ptr(z), _ptr(x), _ptr(wt), _ptr(bias), _ptr(h0), _ptr(pad), _ptr(h), _ptr(dh), _ptr(dz),
        _ptr(dh0), _ptr(dx), _ptr(dwt), _ptr(db), _ptr(work))
    dw = None if dwt is None else dwt.t().to(x.dtype).contiguous()
    return dz, dx, dw, None if db is None else db.to(x.dtype), dh0
