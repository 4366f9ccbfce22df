"""What every fuzz test shares: its settings and the check that an error was raised inside
lstmkit (not deep in torch or numpy)."""

import os
import traceback
from pathlib import Path

from hypothesis import HealthCheck, settings

import lstmkit

PACKAGE = str(Path(lstmkit.__file__).resolve().parent)
SCALE = int(os.environ.get("LSTMKIT_FUZZ_SCALE", "1"))  # > 1: a longer, randomised hunt (deterministic at 1)


def fuzz_settings(examples: int, slow_ok: bool = True) -> settings:
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow] if slow_ok else [])


def assert_raised_in(e: BaseException, roots: tuple[str, ...] = (PACKAGE,)) -> None:
    """The frame that raised ``e`` lies under one of ``roots``."""
    tb = e.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = str(Path(tb.tb_frame.f_code.co_filename).resolve())
    assert where.startswith(roots), f"{type(e).__name__} raised outside lstmkit:\n{''.join(traceback.format_exception(e))}"
