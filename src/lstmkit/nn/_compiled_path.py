"""One compiled kernel beside its PyTorch fallback, the way the fused recurrence
(``fused_recurrence.py``) and the minLSTM scan (``_scan_kernel.py``) use theirs.

:class:`CompiledPath` says which path runs: a backend set in code (:meth:`CompiledPath.using`,
:meth:`CompiledPath.set`), else the environment variable, else ``"auto"``. ``"auto"`` takes the
kernel when it loads for the tensor at hand (float32/float64 on the CPU), else the fallback, and
logs the reason once. The forced backend takes the kernel or raises. ``"torch"`` always takes the
fallback. The kernel is loaded on first use, and a failure is remembered for the process (no retry).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

__all__ = ["CompiledPath"]

_DTYPES = (torch.float32, torch.float64)


class CompiledPath:
    """``kind`` names the switch in errors ("recurrence backend must be one of ..."); ``forced`` is
    the backend that insists on the kernel; ``env`` the environment variable read when no backend
    is set in code; ``load`` builds or opens the kernel, raising ``error``; ``what`` and
    ``fallback`` name the two paths in messages, logged to ``log``."""

    def __init__(self, kind: str, forced: str, env: str, load: Callable[[], Any], error: type[Exception],
                 what: str, fallback: str, log: logging.Logger) -> None:
        self.kind, self.env, self.load_kernel, self.error = kind, env, load, error
        self.what, self.fallback, self.log = what, fallback, log
        self.forced, self.backends = forced, ("auto", forced, "torch")
        self.state: dict = {"backend": None, "kernel": None, "error": None, "logged": False}
        self._lock = threading.Lock()

    # -- which path ---------------------------------------------------------------------------
    def check(self, name: str) -> str:
        if name not in self.backends:
            raise ValueError(f"{self.kind} backend must be one of {self.backends}, got {name!r}")
        return name

    def backend(self) -> str:
        """The backend in force: set in code, else ``$env``, else ``"auto"``."""
        return self.state["backend"] or self.check(os.environ.get(self.env) or "auto")

    def set(self, name: str | None) -> None:
        """Set the backend; None returns to the environment's choice."""
        self.state["backend"] = None if name is None else self.check(name)

    @contextlib.contextmanager
    def using(self, name: str) -> Iterator[None]:
        """Run a block with the backend ``name``."""
        saved = self.state["backend"]
        self.set(name)
        try:
            yield
        finally:
            self.state["backend"] = saved

    def use(self, like: Tensor) -> bool:
        """Whether the kernel runs for tensors like ``like`` under the backend in force."""
        backend = self.backend()
        if backend == "torch":
            return False
        fits = like.device.type == "cpu" and like.dtype in _DTYPES
        if backend == self.forced:
            if not fits:
                raise self.error(f"the {self.what} runs on float32/float64 CPU tensors, got {like.dtype} on "
                                 f"{like.device}")
            self.kernel()
            return True
        return fits and self.available()

    # -- the kernel ---------------------------------------------------------------------------
    def kernel(self) -> Any:
        """The loaded kernel, built on first use; raises ``error`` with the reason (remembered)."""
        with self._lock:
            if self.state["kernel"] is None and self.state["error"] is None:
                try:
                    self.state["kernel"] = self.load_kernel()
                except self.error as e:
                    self.state["error"] = str(e)
            if self.state["kernel"] is None:
                raise self.error(self.state["error"])
            return self.state["kernel"]

    def available(self) -> bool:
        """True when the kernel loads; the first failure is logged once with its reason."""
        try:
            self.kernel()
            return True
        except self.error as e:
            if not self.state["logged"]:
                self.state["logged"] = True
                self.log.warning("lstmkit: the %s is unavailable (%s); using the %s", self.what, e, self.fallback)
            return False

    def unavailable_reason(self) -> str | None:
        """None when the kernel loads, else why not."""
        try:
            self.kernel()
            return None
        except self.error as e:
            return str(e)
