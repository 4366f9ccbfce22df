"""The C kernel of :class:`lstmkit.nn.stream.LSTMStream`'s ``"c"`` backend: its source, build,
cache and loading.

The source is the template ``_stream_kernel.c`` beside this module (package data), written out
for float32 and float64 by :func:`c_source`. :func:`load_kernel` compiles it on first use with
the system compiler (``$LSTMKIT_CC``, else ``cc`` on ``PATH``) into ``$LSTMKIT_CACHE_DIR``
(default ``~/.cache/lstmkit``), the file named by a hash of the source, compiler, flags and CPU,
and loads it through ``ctypes``; :class:`KernelUnavailable` says why when it cannot.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import Callable, TypeVar

__all__ = ["ABI_VERSION", "BLOCK_BYTES", "FLAG_SETS", "Ctx", "KernelUnavailable", "c_source", "compiler",
           "kernel_path", "load_kernel", "open_kernel", "build_atomically", "cache_path", "open_or_build",
           "with_fast_exp"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

BLOCK_BYTES = 256  # columns of z accumulated at once: 64 float32 or 32 float64, in registers
ABI_VERSION = 1
_SOURCE = "_stream_kernel.c"
_TYPED_PART = "/* ---- typed part: REAL, SFX, BLOCK ---- */\n"


@functools.cache
def with_fast_exp(text: str) -> str:
    """A kernel's C source with ``_fast_exp.c`` (the branch-free exp every C kernel uses) put in place
    of its ``LSTMKIT_FAST_EXP`` line."""
    marker = "/* LSTMKIT_FAST_EXP: _fast_exp.c is put here when the source is assembled */"
    if text.count(marker) != 1:
        raise ValueError("a C kernel's source must hold the LSTMKIT_FAST_EXP line once")
    return text.replace(marker, resources.files(__package__).joinpath("_fast_exp.c").read_text(encoding="utf-8"))


def typed_source(filename: str, abi_version: int) -> str:
    """A scan-style kernel's C source (``filename`` beside this module): ``_fast_exp.c`` put in, the part
    after its "typed part: REAL, SFX" line written out for float32 and float64, ``ABI_VERSION`` filled."""
    text = with_fast_exp(resources.files(__package__).joinpath(filename).read_text(encoding="utf-8"))
    common, typed = text.split("/* ---- typed part: REAL, SFX ---- */\n")
    parts = [typed.replace("REAL", real).replace("SFX", sfx) for real, sfx in (("float", "f32"), ("double", "f64"))]
    return common.replace("ABI_VERSION", str(abi_version)) + "".join(parts)


def load_c_library(what: str, source: Callable[[], str], path_of: Callable[[str, tuple[str, ...]], Path],
                   open_: Callable[[str], ctypes.CDLL], error: type[Exception]) -> ctypes.CDLL:
    """A C kernel other than this one (the minLSTM scan, the mLSTM recurrence): the system compiler,
    the first of :data:`FLAG_SETS` that builds, from the cache (``path_of(cc, flags)``) or compiled now
    (:func:`build_atomically`) and opened with ``open_``; ``error`` with the reason otherwise."""
    cc = compiler()
    if cc is None:
        raise error("no C compiler found (set LSTMKIT_CC or put `cc` on PATH)")

    def build(flags: tuple[str, ...], path: Path) -> ctypes.CDLL:
        return build_atomically(path, source(), ".c", lambda src, out: [cc, *flags, "-o", out, src], open_, error)

    return open_or_build(what, cc, FLAG_SETS, lambda flags: path_of(cc, flags), open_, build, error)


def c_source() -> str:
    """The kernel's C source: ``_stream_kernel.c`` with its typed part written out for float32
    and float64."""
    text = with_fast_exp(resources.files(__package__).joinpath(_SOURCE).read_text(encoding="utf-8"))
    common, typed = text.split(_TYPED_PART)
    typed = [typed.replace("REAL", real).replace("SFX", sfx).replace("BLOCK", str(BLOCK_BYTES // size))
             for real, sfx, size in (("float", "f32", 4), ("double", "f64", 8))]
    return common.replace("ABI_VERSION", str(ABI_VERSION)) + "".join(typed)


class Ctx(ctypes.Structure):
    """The kernel's ``lstm_stream`` struct."""

    _fields_ = [(name, ctypes.c_int64) for name in ("batch", "input_size", "hidden", "out_size", "layers", "ld", "zld", "pld")]
    _fields_ += [(name, ctypes.c_void_p) for name in ("x", "buf", "c", "z", "hh", "pz")]
    _fields_ += [("w", ctypes.POINTER(ctypes.c_void_p)), ("wr", ctypes.POINTER(ctypes.c_void_p))]


# First flags tried, then a portable retry (e.g. a compiler that refuses -march=native).
FLAG_SETS = (("-O3", "-march=native", "-shared", "-fPIC"), ("-O3", "-shared", "-fPIC"))
_LOCK = threading.Lock()
_LOADED: dict[str, ctypes.CDLL] = {}
_FAILED: dict[str, str] = {}


class KernelUnavailable(RuntimeError):
    """The C kernel cannot be built or loaded here (no compiler, or compilation failed)."""


def _cache_dir() -> Path:
    return Path(os.environ.get("LSTMKIT_CACHE_DIR") or Path.home() / ".cache" / "lstmkit")


def compiler() -> str | None:
    """``$LSTMKIT_CC`` (a path or a name on PATH), else ``cc`` on PATH."""
    return shutil.which(os.environ.get("LSTMKIT_CC") or "cc")


@functools.cache
def _machine_id() -> str:
    """What -march=native depends on, so a cache shared between machines never loads code built
    for another CPU."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{sys.platform} {platform.machine()} {platform.processor()} {flags}"


def cache_path(prefix: str, source: str, cc: str, flags: tuple[str, ...], *extra: str) -> Path:
    """The cache file of a compiled kernel, named by a hash of everything that decides the binary:
    its source, the compiler (resolved path, size, time), the flags, the CPU and ``extra``."""
    real = os.path.realpath(cc)
    st = os.stat(real)
    key = "\n".join([source, real, str(st.st_size), str(st.st_mtime_ns), " ".join(flags), _machine_id(), *extra])
    return _cache_dir() / f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:20]}.so"


def open_or_build(what: str, cc: str, flag_sets, path_of: Callable[[tuple[str, ...]], Path],
                  open_: Callable[[str], T], build: Callable[[tuple[str, ...], Path], T], error: type[Exception],
                  open_errors: tuple[type[Exception], ...] = (OSError, AttributeError)) -> T:
    """For each flag set in turn: the cached library (``path_of(flags)``) opened, else built now; the
    first that works. A cached library that cannot be opened is rebuilt (with a warning); when every
    flag set fails, ``error`` says why for each."""
    errors = []
    for flags in flag_sets:
        try:
            path = path_of(flags)
        except OSError as e:
            raise error(f"cannot use the compiler {cc}: {e}") from None
        if path.exists():
            try:
                return open_(str(path))
            except open_errors as e:
                logger.warning("%s: cached library %s is unusable (%s); rebuilding it", what, path, e)
        try:
            return build(flags, path)
        except (error, OSError, subprocess.SubprocessError, *open_errors) as e:
            errors.append(str(e))
    raise error(f"cannot build the {what}: " + " | ".join(errors))


def kernel_path(cc: str, flags: tuple[str, ...]) -> Path:
    """The stream kernel's cache file (:func:`cache_path`)."""
    return cache_path("lstm_stream", c_source(), cc, flags)


def open_library(path: str, abi_symbol: str, expected: int) -> ctypes.CDLL:
    """Load the built library ``path`` and check that its ``abi_symbol()`` returns ``expected``: a library
    from other source (a stale cache file) raises OSError, so the caller rebuilds it."""
    lib = ctypes.CDLL(path)
    abi = getattr(lib, abi_symbol)
    abi.restype = ctypes.c_int64
    if abi() != expected:
        raise OSError(f"{path} has ABI {abi()}, expected {expected}")
    return lib


def open_kernel(path: str) -> ctypes.CDLL:
    """Load a built kernel and check that it is the one this module expects."""
    lib = open_library(path, "lstmkit_stream_abi", 1000 * ABI_VERSION + ctypes.sizeof(Ctx))
    for sfx in ("f32", "f64"):
        step, run = getattr(lib, f"lstmkit_stream_step_{sfx}"), getattr(lib, f"lstmkit_stream_run_{sfx}")
        step.argtypes, step.restype = [ctypes.POINTER(Ctx)], ctypes.c_int64
        run.argtypes = [ctypes.POINTER(Ctx), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        run.restype = ctypes.c_int64
    return lib


def build_atomically(path: Path, source: str, suffix: str, command: Callable[[str, str], list[str]],
                     load: Callable[[str], T], error: type[Exception], timeout: int = 300) -> T:
    """Write ``source`` and compile it (``command(source_file, library_file)``) to a temporary file
    beside ``path``, load it with ``load``, then move it into place: a process never sees a
    half-written library, and two processes building at once both succeed. A failed compile
    raises ``error`` with the compiler's message; the temporary files always go."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = []
    try:
        fd, src = tempfile.mkstemp(suffix=suffix, prefix=f".{path.stem}_", dir=path.parent)
        temporary.append(src)
        with os.fdopen(fd, "w") as f:
            f.write(source)
        fd, tmp = tempfile.mkstemp(suffix=".so", prefix=f".{path.stem}_", dir=path.parent)
        temporary.append(tmp)
        os.close(fd)
        cmd = command(src, tmp)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise error(f"{' '.join(cmd)[:500]} failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
        lib = load(tmp)  # loaded under its temporary name, so never confused with a stale library
        os.replace(tmp, path)
        return lib
    finally:
        for name in temporary:
            if os.path.exists(name):
                os.remove(name)


def _build(cc: str, flags: tuple[str, ...], path: Path) -> ctypes.CDLL:
    """The stream kernel compiled into ``path`` (:func:`build_atomically`)."""
    return build_atomically(path, c_source(), ".c", lambda src, out: [cc, *flags, "-o", out, src], open_kernel,
                            KernelUnavailable)


def load_kernel() -> ctypes.CDLL:
    """The compiled kernel: from this process, from the cache, or built now (once per process
    and cache file). Raises :class:`KernelUnavailable` with the reason."""
    cc = compiler()
    if cc is None:
        raise KernelUnavailable("no C compiler found (set LSTMKIT_CC or put `cc` on PATH)")
    errors = []
    with _LOCK:
        for flags in FLAG_SETS:
            try:
                path = kernel_path(cc, flags)
            except OSError as e:
                raise KernelUnavailable(f"cannot use the compiler {cc}: {e}") from None
            key = str(path)
            if key in _LOADED:
                return _LOADED[key]
            if key in _FAILED:
                errors.append(_FAILED[key])
                continue
            if path.exists():
                try:
                    _LOADED[key] = open_kernel(key)
                    return _LOADED[key]
                except (OSError, AttributeError) as e:
                    logger.warning("LSTMStream: cached kernel %s is unusable (%s); rebuilding it", path, e)
            try:
                _LOADED[key] = _build(cc, flags, path)
                return _LOADED[key]
            except (KernelUnavailable, OSError, AttributeError, subprocess.SubprocessError) as e:
                _FAILED[key] = str(e)
                errors.append(str(e))
    raise KernelUnavailable("cannot build the C kernel: " + " | ".join(errors))
