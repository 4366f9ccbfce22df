"""The ``recurrence``, ``scan`` and ``mlstm_path`` fixtures: a test that takes one runs once on the
PyTorch path and once on the compiled kernel (skipped, with the reason, where the kernel cannot be
built)."""

import pytest

from lstmkit.nn import _mlstm_kernel, _scan_kernel, fused_recurrence


def _on(path, backend: str):
    """Run under ``backend`` of a :class:`lstmkit.nn._compiled_path.CompiledPath`; skip when that is its
    forced backend and the kernel cannot be built here."""
    if backend == path.forced:
        reason = path.unavailable_reason()
        if reason is not None:
            pytest.skip(f"{path.what} unavailable here: {reason}")
    with path.using(backend):
        yield backend


@pytest.fixture(params=["torch", "fused"])
def recurrence(request):
    yield from _on(fused_recurrence.PATH, request.param)


@pytest.fixture(params=["torch", "compiled"])
def scan(request):
    """MinLSTM's scan on the PyTorch loop, then on the compiled kernel."""
    yield from _on(_scan_kernel.PATH, request.param)


@pytest.fixture(params=["torch", "compiled"])
def mlstm_path(request):
    """MLSTM's input-coordinates form on the PyTorch chunkwise form, then on the compiled recurrence."""
    yield from _on(_mlstm_kernel.PATH, request.param)
