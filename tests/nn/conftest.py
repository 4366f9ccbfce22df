"""The ``recurrence`` fixture: a test that takes it runs once on the PyTorch recurrence and once
on the fused kernel (skipped, with the reason, where the kernel cannot be built)."""

import pytest

from lstmkit.nn.fused_recurrence import recurrence_backend, unavailable_reason


@pytest.fixture(params=["torch", "fused"])
def recurrence(request):
    if request.param == "fused":
        reason = unavailable_reason()
        if reason is not None:
            pytest.skip(f"fused recurrence unavailable here: {reason}")
    with recurrence_backend(request.param):
        yield request.param


@pytest.fixture(params=["torch", "compiled"])
def scan(request):
    """MinLSTM's scan on the PyTorch loop, then on the compiled kernel (skipped, with the reason,
    where it cannot be built)."""
    from lstmkit.nn._scan_kernel import scan_backend, scan_unavailable_reason

    if request.param == "compiled":
        reason = scan_unavailable_reason()
        if reason is not None:
            pytest.skip(f"compiled minLSTM scan unavailable here: {reason}")
    with scan_backend(request.param):
        yield request.param
