"""The compiled mLSTM recurrence in input coordinates (:mod:`lstmkit.nn.mlstm_narrow`): its
source, build, cache, loading, which path runs, and its autograd function.

``_mlstm_kernel.c`` beside this module (package data) holds the forward and backward of the
recurrence over the p x p memory G (equations in its header), written out for float32 and
float64. It is built on first use the way the minLSTM scan is (:mod:`lstmkit.nn._scan_kernel`:
the system compiler, the cache ``$LSTMKIT_CACHE_DIR`` or ``~/.cache/lstmkit``, a file named by a
hash of the source, compiler, flags and CPU) and loaded through ``ctypes``. Where it cannot be
built, the PyTorch chunkwise form in input coordinates runs instead (the reason is logged once).

``mlstm_backend("auto" | "compiled" | "torch")`` (a context manager) or the environment variable
``LSTMKIT_MLSTM`` choose the path; ``"auto"`` takes the compiled one for float32/float64 CPU
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

__all__ = ["BACKENDS", "MLSTMKernelUnavailable", "gated_output", "mlstm_backend", "narrow_recurrence",
           "use_compiled_mlstm"]

logger = logging.getLogger(__name__)

ABI_VERSION = 1
_SOURCE = "_mlstm_kernel.c"
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


class MLSTMKernelUnavailable(RuntimeError):
    """The compiled mLSTM recurrence cannot be built or loaded here."""


@functools.cache
def source() -> str:
    return typed_source(_SOURCE, ABI_VERSION)


def library_path(cc: str, flags: tuple[str, ...]) -> Path:
    return cache_path("mlstm_narrow", source(), cc, flags)


def _open(path: str) -> ctypes.CDLL:
    lib = open_library(path, "lstmkit_mlstm_abi", ABI_VERSION)
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    for sfx in _SUFFIX.values():
        fwd, bwd = getattr(lib, f"lstmkit_mlstm_forward_{sfx}"), getattr(lib, f"lstmkit_mlstm_backward_{sfx}")
        fwd.argtypes, fwd.restype = [i64] * 4 + [ptr] * 12, None
        bwd.argtypes, bwd.restype = [i64] * 4 + [ptr] * 21, None
        ofwd, obwd = getattr(lib, f"lstmkit_mlstm_out_forward_{sfx}"), getattr(lib, f"lstmkit_mlstm_out_backward_{sfx}")
        ofwd.argtypes, ofwd.restype = [i64] * 4 + [ptr] * 7, None
        obwd.argtypes, obwd.restype = [i64] * 5 + [ptr] * 12, None
    return lib


def _load() -> ctypes.CDLL:
    return load_c_library("mLSTM kernel", source, library_path, _open, MLSTMKernelUnavailable)


PATH = CompiledPath("mlstm", "compiled", "LSTMKIT_MLSTM", _load, MLSTMKernelUnavailable,
                    "compiled mLSTM recurrence", "PyTorch chunkwise form", logger)
BACKENDS = PATH.backends


def mlstm_backend(name: str):
    """Run the block with MLSTM's input-coordinates form on ``name``: ``"auto"``, ``"compiled"``
    (or raise :class:`MLSTMKernelUnavailable`) or ``"torch"``."""
    return PATH.using(name)


def use_compiled_mlstm(like: Tensor) -> bool:
    """Whether the compiled recurrence runs for a tensor like ``like`` under the backend in force."""
    return PATH.use(like)


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class _NarrowRecurrence(torch.autograd.Function):
    """(x (T, B, p), P (T, p, N), ip, lf (T, N), m0 (N)) -> u (T, p, N), den, alpha, m (T, N),
    G_T (p, p, N), g_T (p, N); N = B * NH lanes (``_mlstm_kernel.c``)."""

    @staticmethod
    def forward(ctx, x, P, ip, lf, m0, heads):
        T, B, p = x.shape
        N = B * heads
        x, P, ip, lf, m0 = (t.detach().contiguous() for t in (x, P, ip, lf, m0))
        new = lambda *shape: torch.empty(*shape, dtype=x.dtype)  # noqa: E731
        u, den, alpha, m = new(T, p, N), new(T, N), new(T, N), new(T, N)
        Gs, gs, work = new(T, p, p, N), new(T, p, N), new((p + 2) * N)
        getattr(PATH.kernel(), f"lstmkit_mlstm_forward_{_SUFFIX[x.dtype]}")(
            T, B, heads, p, *map(_ptr, (x, P, ip, lf, m0, u, den, alpha, m, Gs, gs, work)))
        ctx.save_for_backward(x, P, ip, lf, m0, alpha, m, Gs, gs)
        ctx.heads = heads
        return u, den, alpha, m, Gs[-1].clone(), gs[-1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, du, dden, dalpha, dm, dGT, dgT):
        x, P, ip, lf, m0, alpha, m, Gs, gs = ctx.saved_tensors
        T, B, p = x.shape
        N = B * ctx.heads
        grads = [None if g is None else g.contiguous() for g in (du, dden, dalpha, dm, dGT, dgT)]
        dx, dP, dip, dlf = torch.empty_like(x), torch.empty_like(P), torch.empty_like(ip), torch.empty_like(lf)
        dm0, work = torch.empty_like(m0), torch.empty((p * p + 2 * p + 6) * N, dtype=x.dtype)
        getattr(PATH.kernel(), f"lstmkit_mlstm_backward_{_SUFFIX[x.dtype]}")(
            T, B, ctx.heads, p, *map(_ptr, (x, P, ip, lf, m0, alpha, m, Gs, gs, *grads, dx, dP, dip, dlf, dm0, work)))
        return dx, dP, dip, dlf, dm0, None


def narrow_recurrence(x: Tensor, P: Tensor, ip: Tensor, lf: Tensor, m0: Tensor, heads: int):
    """The compiled recurrence with autograd (see :class:`_NarrowRecurrence`)."""
    return _NarrowRecurrence.apply(x, P, ip, lf, m0, heads)


class _GatedOutput(torch.autograd.Function):
    """(x (R, p), ao (H, p), c (R, NH, p), av (H, p), extra (R, H) | None) -> out (R, H) with
    out[r, j] = sigmoid(ao x_r)_j * (av[j] . c[r, head of j] + extra[r, j]) (``_mlstm_kernel.c``)."""

    @staticmethod
    def forward(ctx, x, ao, c, av, extra):
        R, p = x.shape
        H, NH = ao.shape[0], c.shape[1]
        x, c = x.detach().contiguous(), c.detach().contiguous()
        aoT, avT = ao.detach().t().contiguous(), av.detach().t().contiguous()
        extra = None if extra is None else extra.detach().contiguous()
        out, work = torch.empty(R, H, dtype=x.dtype), torch.empty(2 * H, dtype=x.dtype)
        getattr(PATH.kernel(), f"lstmkit_mlstm_out_forward_{_SUFFIX[x.dtype]}")(
            R, H, NH, p, *map(_ptr, (x, aoT, c, avT, extra, out, work)))
        ctx.save_for_backward(x, aoT, c, avT, extra)
        ctx.block = max(1, min(256, R))
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout):
        x, aoT, c, avT, extra = ctx.saved_tensors
        R, p = x.shape
        H, NH = aoT.shape[1], c.shape[1]
        dout = dout.contiguous()
        dx, dc = torch.empty_like(x), torch.empty_like(c)
        dextra = None if extra is None else torch.empty(R, H, dtype=x.dtype)
        daoT, davT = torch.empty(p, H, dtype=torch.float64), torch.empty(p, H, dtype=torch.float64)
        work = torch.empty((4 + 2 * p) * H, dtype=x.dtype)
        getattr(PATH.kernel(), f"lstmkit_mlstm_out_backward_{_SUFFIX[x.dtype]}")(
            R, H, NH, p, ctx.block, *map(_ptr, (x, aoT, c, avT, extra, dout, dx, dc, dextra, daoT, davT, work)))
        return dx, daoT.t().to(x.dtype), dc, davT.t().to(x.dtype), dextra


def gated_output(x: Tensor, ao: Tensor, c: Tensor, av: Tensor, extra: Tensor | None) -> Tensor:
    """The output gate and the map back to the heads in one pass (see :class:`_GatedOutput`)."""
    return _GatedOutput.apply(x, ao, c, av, extra)
