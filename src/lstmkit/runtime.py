"""Process-level tuning that the CLI applies (never the library on import).

glibc's malloc hands freed blocks above its mmap threshold straight back to the OS and trims the
heap top on every free above the trim threshold. A training step allocates and frees the same
large activation buffers every step, so each step pays the page faults again (6k-73k per step
at T = 1000 on this project's machines). ``tune_malloc`` keeps that memory in the process:
the same effect as starting Python with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>``.
Measured in ``lstmkit bench speed`` / ``bench scaling`` (both settings) and recorded in
docs/benchmarks.md. The cost: memory freed by a run stays mapped to the process until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

__all__ = ["tune_malloc", "malloc_tuning_wanted", "MALLOC_ENV"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_MAX = -4
_TRIM = 2**31 - 1  # mallopt takes an int: about 2 GiB, far above any single step's frees
# The environment form of the same tuning (read by glibc at start-up), for child processes.
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(_TRIM)}


def malloc_tuning_wanted(flag: bool = True) -> bool:
    """False when the caller opted out (``flag``) or ``LSTMKIT_MALLOC_TUNING=0`` is set."""
    return flag and os.environ.get("LSTMKIT_MALLOC_TUNING", "1").strip().lower() not in ("0", "false", "no", "off")


def tune_malloc() -> bool:
    """Keep freed heap memory in the process (no mmap for large blocks, no trimming). Returns
    True when applied; False (logged) on a non-glibc platform or when the user already set the
    ``MALLOC_*`` variables themselves (theirs win)."""
    if any(k in os.environ for k in MALLOC_ENV):
        log.info("malloc tuning skipped: MALLOC_MMAP_MAX_/MALLOC_TRIM_THRESHOLD_ already set in the environment")
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        log.info("malloc tuning skipped: not a glibc Linux (%s %s)", platform.system(), platform.libc_ver()[0])
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM) == 1
    except (OSError, AttributeError) as e:
        log.info("malloc tuning skipped: %s", e)
        return False
    if not ok:
        log.info("malloc tuning skipped: mallopt refused the settings")
    return ok
