"""The fused CPU recurrence: :func:`lstmkit.nn.lstm_recurrence`'s loop compiled, with its backward.

``_fused_recurrence.cpp`` beside this module (package data) runs the whole sequence in C++: per
step one matrix product through ATen's CPU kernel (MKL/oneDNN) and one pass over each row for all
element-wise work (gates, peepholes, layer norm, zoneout, the recurrent dropout mask, padding);
its backward does the reverse loop the same way and the parameter gradients as single products
over all steps at the end. The equations, the arguments and the masks are those of
:mod:`lstmkit.nn.recurrence`, which stays the exact fallback (masks are drawn in Python and
passed to either path, so both see the same random numbers).

Build and cache: on first use the source is compiled with the system C++ compiler
(``$LSTMKIT_CXX``, else ``c++``/``g++`` on PATH) against the installed torch's headers and
libraries into ``$LSTMKIT_CACHE_DIR`` (default ``~/.cache/lstmkit``), the file named by a hash of
the source, compiler, flags, torch version and CPU (as :mod:`lstmkit.nn._stream_kernel` does),
then loaded with ``torch.ops.load_library``. With no compiler, or when the build fails, the
PyTorch recurrence runs instead and the reason is logged once.

Which path runs: ``set_recurrence_backend("auto" | "fused" | "torch")`` (or the context manager
:func:`recurrence_backend`); the default ``"auto"`` (environment: ``LSTMKIT_RECURRENCE``) takes
the fused path for float32/float64 CPU tensors when the kernel is available.

Under ``torch.no_grad()``/``inference_mode`` (or when nothing needs a gradient) the forward runs
alone and keeps only the current step's state: nothing is saved for backward.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import sys
import sysconfig
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from ._compiled_path import CompiledPath
from ._stream_kernel import build_atomically, cache_path, open_or_build
from .inputs import input_projection

__all__ = ["BACKENDS", "FusedUnavailable", "fused_available", "fused_op", "fused_recurrence", "get_recurrence_backend",
           "input_projection", "packed_lstm", "recurrence_backend", "set_recurrence_backend", "use_fused"]

logger = logging.getLogger(__name__)

ABI_VERSION = 2
_SOURCES = ("_fused_recurrence.cpp", "_fused_small_mm.cpp", "_fused_recurrence_packed.cpp")
# Packed steps with at most this many running rows take the kernel's own small-row product
# (_fused_small_mm.cpp) instead of ATen's GEMM; -1: the threshold measured for the build's target
# (48 rows with AVX-512, 24 with AVX2, 3 otherwise); 0 turns it off (tests set several).
SMALL_ROWS = -1
FLAG_SETS = (("-O3", "-march=native"), ("-O3",))


class FusedUnavailable(RuntimeError):
    """The fused kernel cannot be built or loaded here (no compiler, no torch headers, a failed build)."""


# -- which path ----------------------------------------------------------------------------
def get_recurrence_backend() -> str:
    """The backend in force: set by :func:`set_recurrence_backend`, else ``$LSTMKIT_RECURRENCE``, else auto."""
    return PATH.backend()


def set_recurrence_backend(name: str | None) -> None:
    """``"auto"`` (fused when available), ``"fused"`` (fused or raise :class:`FusedUnavailable`),
    ``"torch"`` (the PyTorch recurrence); None returns to the environment's choice."""
    PATH.set(name)


def recurrence_backend(name: str):
    """Run a block with the given backend (see :func:`set_recurrence_backend`)."""
    return PATH.using(name)


def use_fused(like: Tensor) -> bool:
    """Whether the fused kernel runs for tensors like ``like`` under the current backend. An empty
    batch (no rows or no steps) always takes the PyTorch recurrence: there is nothing to fuse, and
    the kernel's scratch buffers assume at least one row."""
    return like.numel() != 0 and PATH.use(like)


# -- build, cache, load --------------------------------------------------------------------
@functools.cache
def source() -> str:
    """One translation unit in three files: the padded-batch recurrence, the small-row products, then
    the packed recurrence with the op registration (each continues the first's anonymous namespace)."""
    return "".join(resources.files(__package__).joinpath(name).read_text(encoding="utf-8") for name in _SOURCES)


def compiler() -> str | None:
    """``$LSTMKIT_CXX`` (a path or a name on PATH), else ``c++`` or ``g++`` on PATH."""
    chosen = os.environ.get("LSTMKIT_CXX")
    if chosen:
        return shutil.which(chosen)
    return shutil.which("c++") or shutil.which("g++")


def _cache_dir() -> Path:
    return Path(os.environ.get("LSTMKIT_CACHE_DIR") or Path.home() / ".cache" / "lstmkit")


def _library_name() -> str:
    return "lstmkit_fused_" + hashlib.sha256((source() + str(ABI_VERSION)).encode()).hexdigest()[:12]


def _torch_flags() -> tuple[list[str], list[str]]:
    root = Path(torch.__file__).parent
    include, lib = root / "include", root / "lib"
    if not (include / "ATen" / "ATen.h").exists():
        raise FusedUnavailable(f"torch's C++ headers are missing ({include / 'ATen' / 'ATen.h'})")
    abi = int(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", True))
    compile_flags = ["-std=c++20", "-shared", "-fPIC", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
                     f"-DLIBRARY_NAME={_library_name()}", f"-DABI_VERSION={ABI_VERSION}",
                     f"-I{include}", f"-I{include / 'torch' / 'csrc' / 'api' / 'include'}"]
    link_flags = [f"-L{lib}", "-lc10", "-ltorch_cpu", f"-Wl,-rpath,{lib}"]
    return compile_flags, link_flags


def library_path(cxx: str, flags: tuple[str, ...]) -> Path:
    """Cache file named by a hash of everything that decides the binary, the torch build included."""
    return cache_path("lstm_fused", source(), cxx, flags, torch.__version__, str(Path(torch.__file__).parent),
                      sysconfig.get_platform(), sys.version)


def _open(path: str):
    torch.ops.load_library(path)
    op = getattr(torch.ops, _library_name())
    if op.abi_version() != ABI_VERSION:
        raise FusedUnavailable(f"{path} has ABI {op.abi_version()}, expected {ABI_VERSION}")
    return op


def _build(cxx: str, flags: tuple[str, ...], path: Path):
    """The kernel compiled into ``path`` and loaded (:func:`lstmkit.nn._stream_kernel.build_atomically`)."""
    compile_flags, link_flags = _torch_flags()

    def command(src: str, out: str) -> list[str]:
        cmd = [cxx, *flags, *compile_flags, "-o", out, src, *link_flags]
        logger.info("building the fused LSTM recurrence (once per machine and torch version): %s", " ".join(cmd))
        return cmd

    return build_atomically(path, source(), ".cpp", command, _open, FusedUnavailable, timeout=600)


def _load():
    cxx = compiler()
    if cxx is None:
        raise FusedUnavailable("no C++ compiler found (set LSTMKIT_CXX or put `c++` on PATH)")
    return open_or_build("fused recurrence", cxx, FLAG_SETS, lambda flags: library_path(cxx, flags), _open,
                         lambda flags, path: _build(cxx, flags, path), FusedUnavailable, (OSError, RuntimeError))


def fused_op():
    """The loaded op namespace (``forward``, ``backward``); built on first use. Raises
    :class:`FusedUnavailable` with the reason (and remembers it: no retry in this process)."""
    return PATH.kernel()


def fused_available() -> bool:
    """True when the kernel loads; the first failure is logged once with its reason."""
    return PATH.available()


def unavailable_reason() -> str | None:
    """None when the kernel loads, else why not."""
    return PATH.unavailable_reason()


PATH = CompiledPath("recurrence", "fused", "LSTMKIT_RECURRENCE", _load, FusedUnavailable, "fused CPU recurrence",
                    "PyTorch recurrence", logger)
BACKENDS = PATH.backends


# -- autograd --------------------------------------------------------------------------------
_NONE = None


def _opt(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.contiguous() if t.dim() < 3 else t


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, c0, w_hh, w_hr, peep, lnh_w, lnh_b, lnc_w, lnc_b, u_c, u_h, valid, m_rec, batch_sizes):
        res = fused_op().forward(xp, h0, c0, w_hh, w_hr, peep, lnh_w, lnh_b, lnc_w, lnc_b, u_c, u_h, valid, m_rec,
                                 batch_sizes, None, None, True)
        ctx.saved = res[3:]
        ctx.save_for_backward(w_hh, w_hr, peep, lnh_w, lnc_w, u_c, u_h, valid, m_rec, batch_sizes)
        return res[0], res[1], res[2]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_hT, d_cT):
        w_hh, w_hr, peep, lnh_w, lnc_w, u_c, u_h, valid, m_rec, batch_sizes = ctx.saved_tensors
        g = fused_op().backward(d_out, d_hT, d_cT, list(ctx.saved), w_hh, w_hr, peep, lnh_w, lnc_w, u_c, u_h,
                                valid, m_rec, batch_sizes)
        grads = [t if t.numel() or i < 4 else None for i, t in enumerate(g)]
        return (*grads, None, None, None, None, None)


def _expand3(mask: Tensor | None, T: int, B: int, K: int, like: Tensor) -> Tensor | None:
    """A mask broadcastable to (T, B, K) as a (possibly stride-0) view of that shape."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:  # 0/1 zoneout masks: the forward-only kernel reads the bytes
        mask = mask.view(torch.uint8)
    elif mask.dtype != like.dtype:
        mask = mask.to(like.dtype)
    while mask.dim() < 3:
        mask = mask.unsqueeze(0)
    return mask.expand(T, B, K)


def fused_recurrence(
    xp: Tensor, h0: Tensor, c0: Tensor, weight_hh: Tensor, *, weight_hr: Tensor | None = None,
    peephole: Tensor | None = None, ln_hh: tuple[Tensor, Tensor] | None = None,
    ln_c: tuple[Tensor, Tensor] | None = None, update_c: Tensor | None = None, update_h: Tensor | None = None,
    valid: Tensor | None = None, recurrent_mask: Tensor | None = None, batch_sizes: Tensor | None = None,
    ln_input: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`lstmkit.nn.lstm_recurrence` on the fused kernel (same arguments and results), plus
    ``batch_sizes`` (T,) int64: rows ``b >= batch_sizes[t]`` are finished at step t (rows sorted
    longest first), so their state carries, their output is zero and no product touches them;
    and, for inference with layer norm only, ``ln_input = (gain, shift)``: ``xp`` is then ``W_ih x``
    without biases and the kernel applies ``LN(xp_t) * gain + shift`` row by row (``shift`` with
    both biases folded in)."""
    T, B, G = xp.shape
    H, R = G // 4, h0.shape[-1]
    lnh = ln_hh if ln_hh is not None else (None, None)
    lnc = ln_c if ln_c is not None else (None, None)
    if batch_sizes is not None:
        batch_sizes = batch_sizes.to("cpu", torch.int64).contiguous()
    args = (xp.contiguous(), h0.contiguous(), c0.contiguous(), weight_hh.contiguous(), _opt(weight_hr),
            _opt(peephole), _opt(lnh[0]), _opt(lnh[1]), _opt(lnc[0]), _opt(lnc[1]),
            _expand3(update_c, T, B, H, xp), _expand3(update_h, T, B, R, xp), _expand3(valid, T, B, 1, xp),
            _opt(recurrent_mask), batch_sizes)
    tensors = [a for a in args if isinstance(a, Tensor)]
    lni = (None, None) if ln_input is None else (ln_input[0].contiguous(), ln_input[1].contiguous())
    if needs_grad(*tensors, *(t for t in lni if t is not None)):
        if ln_input is not None:
            raise ValueError("ln_input is for inference only (no gradient is taken through it)")
        args = tuple(a.to(xp.dtype) if isinstance(a, Tensor) and a.dtype == torch.uint8 else a for a in args)
        return _Fused.apply(*args)
    out, h, c = fused_op().forward(*args, *lni, False)[:3]  # inference: nothing saved for backward
    return out, h, c


class _Packed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, bias, batch_sizes, out_index, out_rows):
        w_cat = torch.cat([w_ih, w_hh], 1).contiguous()
        res = fused_op().packed_forward(x, h0, c0, w_cat, bias, batch_sizes, True, SMALL_ROWS, out_index, out_rows)
        ctx.saved = res[3:]
        ctx.d, ctx.has_bias = w_ih.shape[1], bias is not None
        ctx.save_for_backward(c0, w_cat, batch_sizes, out_index)
        return res[0], res[1], res[2]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_hT, d_cT):
        c0, w_cat, batch_sizes, out_index = ctx.saved_tensors
        dx, dh0, dc0, d_w, d_b = fused_op().packed_backward(d_out, d_hT, d_cT, c0, list(ctx.saved), w_cat,
                                                            batch_sizes, SMALL_ROWS, out_index)
        return dx, dh0, dc0, d_w[:, :ctx.d], d_w[:, ctx.d:], d_b if ctx.has_bias else None, None, None, None


def packed_lstm(x: Tensor, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor | None,
                batch_sizes: Tensor, out_index: Tensor | None = None, out_rows: int = 0
                ) -> tuple[Tensor, Tensor, Tensor]:
    """One plain LSTM layer (no variants, no projection) over packed rows on the fused kernel.

    ``x`` (N, D) holds the steps of sequences sorted longest first, step after step with no
    padding (torch's ``PackedSequence.data`` layout): step t is ``batch_sizes[t]`` rows. ``h0``,
    ``c0`` (B, H) in the same sorted order. Returns the packed output (N, H) and the state after
    each sequence's last step, h_n and c_n (B, H). Each step is one product of ``[x_t | h]`` with
    ``[W_ih | W_hh]^T`` plus ``bias`` (``b_ih + b_hh``).

    With ``out_index`` (N,) int64, the output is instead ``(out_rows, H)``, zero but for row
    ``out_index[r]``, which holds packed row r (the kernel writes the padded output itself)."""
    batch_sizes = batch_sizes.to("cpu", torch.int64).contiguous()
    if out_index is not None:
        out_index = out_index.to("cpu", torch.int64).contiguous()
    args = (x.contiguous(), h0.contiguous(), c0.contiguous(), weight_ih, weight_hh,
            None if bias is None else bias.contiguous(), batch_sizes, out_index, out_rows)
    if needs_grad(*(a for a in args[:6] if a is not None)):
        return _Packed.apply(*args)
    w_cat = torch.cat([weight_ih, weight_hh], 1).contiguous()
    out, h, c = fused_op().packed_forward(args[0], args[1], args[2], w_cat, args[5], batch_sizes, False,
                                         SMALL_ROWS, out_index, out_rows)[:3]
    return out, h, c


def needs_grad(*tensors: Tensor | None) -> bool:
    """Whether autograd would record an operation on these tensors now."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
