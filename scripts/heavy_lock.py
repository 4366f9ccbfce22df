"""The shared machine's heavy-job lock for the measurement scripts (``--lock PATH``).

    from heavy_lock import held  # scripts/ is on sys.path when a script runs
    with held(args.lock):       # no path: nothing to hold
        train(...)
"""

from __future__ import annotations

import contextlib
import fcntl


@contextlib.contextmanager
def held(path: str | None):
    """Hold ``path`` (flock) for one training, so that heavy jobs of a shared machine take turns."""
    if not path:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
