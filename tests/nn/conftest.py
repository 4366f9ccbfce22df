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
