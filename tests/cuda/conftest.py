"""tests/cuda: the CUDA side of lstmkit, run with ``make test-cuda`` (``pytest -m cuda tests/cuda``).

Every test here carries the ``cuda`` marker (deselected by the default ``-m``) and skips when torch
sees no CUDA device, so ``make test`` and CI are unchanged. Numbers compared against the CPU use
float32 on CUDA with TF32 off (the fixture below), against a float64 CPU reference."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/cuda/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.cuda)
            if not torch.cuda.is_available():
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture(autouse=True)
def _no_tf32():
    """TF32 matrix products round inputs to 10 mantissa bits: off, so float32 means float32."""
    if not torch.cuda.is_available():
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
